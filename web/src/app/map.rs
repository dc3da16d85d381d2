//! The embedding map: every product as a dot placed by what the model
//! reads in it, coloured by type, the results numbered on top.

use super::state::{page, Page};
use super::Status;
use crate::map_layout::spread_markers;
use crate::protocol::MapPoint;
use crate::protocol::ResultCard;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Product-type colours (Okabe–Ito, distinguishable with colour-blindness).
pub(super) const TYPE_COLOURS: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999",
];

/// The map's drawing size in SVG units, and the margin around the points.
pub(super) const MAP_SIZE: f32 = 1000.0;

pub(super) const MAP_MARGIN: f32 = 24.0;
/// Radius of a numbered result marker, in SVG units.
const MARKER_RADIUS: f32 = 13.0;

pub(super) fn type_colour(type_index: usize) -> &'static str {
    TYPE_COLOURS[type_index % TYPE_COLOURS.len()]
}

/// A map point's position in SVG units.
pub(super) fn map_xy(point: &MapPoint) -> (f32, f32) {
    let inner = MAP_SIZE - 2.0 * MAP_MARGIN;
    (MAP_MARGIN + point.x * inner, MAP_MARGIN + point.y * inner)
}

/// The `data-index` of the map point under a pointer event, if any.
pub(super) fn point_under(event: &web_sys::Event) -> Option<usize> {
    let target: web_sys::Element = event.target()?.dyn_into().ok()?;
    target.get_attribute("data-index")?.parse().ok()
}

/// Every product placed by its embedding (computed at export), coloured by
/// type, the current results numbered on top.
#[component]
pub(super) fn EmbeddingMap() -> impl IntoView {
    let page = page();
    let Page {
        status, outcome, ..
    } = page;
    let hovered = RwSignal::new(None::<usize>);
    move || {
        let Status::Ready(stats) = status.get() else {
            return view! { <p class="hint">"The map appears once the catalog has loaded."</p> }
                .into_any();
        };
        let points = std::sync::Arc::new(stats.map);
        let open = move |index: usize, points: &[MapPoint]| {
            if let Some(point) = points.get(index) {
                page.open_product(point.id);
            }
        };
        let base = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (x, y) = map_xy(p);
                view! {
                    <circle class="point" cx=format!("{x:.1}") cy=format!("{y:.1}") r="5"
                        fill=type_colour(p.type_index) data-index=i></circle>
                }
            })
            .collect_view();
        let hits = {
            let points = points.clone();
            move || {
                let results = outcome.get().map(|o| o.results).unwrap_or_default();
                let placed: Vec<(usize, usize, ResultCard)> = results
                    .into_iter()
                    .enumerate()
                    .filter_map(|(rank, card)| {
                        let index = points.iter().position(|p| p.id == card.product.id)?;
                        Some((rank, index, card))
                    })
                    .collect();
                let dots: Vec<(f32, f32)> =
                    placed.iter().map(|(_, i, _)| map_xy(&points[*i])).collect();
                let markers = spread_markers(&dots, 2.0 * MARKER_RADIUS, MAP_SIZE, MARKER_RADIUS);
                // Drawn last-first, so that better results lie on top.
                placed.into_iter().zip(dots.into_iter().zip(markers)).rev().map(|((rank, index, card), ((dot_x, dot_y), (x, y)))| {
                    let label = format!("Result {}: {} {}, open the product", rank + 1, card.product.brand, card.product.name);
                    let for_keys = points.clone();
                    let for_click = points.clone();
                    // A marker pushed off its product's dot points back to it.
                    let moved = (x - dot_x).hypot(y - dot_y) > 1.0;
                    view! {
                        <g class="hit" role="button" tabindex="0" aria-label=label data-index=index data-product-id=card.product.id
                            on:click=move |_| open(index, &for_click)
                            on:focus=move |_| hovered.set(Some(index))
                            on:blur=move |_| hovered.set(None)
                            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                                if ev.key() == "Enter" || ev.key() == " " {
                                    ev.prevent_default();
                                    open(index, &for_keys);
                                }
                            }>
                            {moved.then(|| view! {
                                <line x1=format!("{dot_x:.1}") y1=format!("{dot_y:.1}") x2=format!("{x:.1}") y2=format!("{y:.1}")></line>
                            })}
                            <circle cx=format!("{x:.1}") cy=format!("{y:.1}") r=MARKER_RADIUS.to_string() data-index=index></circle>
                            <text x=format!("{x:.1}") y=format!("{:.1}", y + 5.0) data-index=index>{rank + 1}</text>
                        </g>
                    }
                }).collect_view()
            }
        };
        let tip_points = points.clone();
        let tip = move || {
            hovered
                .get()
                .and_then(|i| tip_points.get(i).cloned())
                .map(|p| {
                    let (x, y) = map_xy(&p);
                    // Styles are set through the CSSOM (`style:`), which the
                    // Content-Security-Policy allows; style attributes it blocks.
                    let left = format!("{:.2}%", x / MAP_SIZE * 100.0);
                    let top = format!("{:.2}%", y / MAP_SIZE * 100.0);
                    view! {
                        <div class="map-tip" style:left=left style:top=top role="status">
                            <span class="brand">{p.brand}</span>" "<strong>{p.name}</strong>
                        </div>
                    }
                })
        };
        let click_points = points.clone();
        let has_hits = move || outcome.get().is_some_and(|o| !o.results.is_empty());
        let legend = stats.by_type.iter().map(|group| {
            let index = stats.product_types.iter().position(|t| *t == group.name).unwrap_or(0);
            view! {
                <li><span class="swatch" style:background-color=type_colour(index) aria-hidden="true"></span>
                    {format!("{} ({})", group.name, group.products)}</li>
            }
        }).collect_view();
        view! {
            <figure class="map">
                <div class="map-frame" on:mouseleave=move |_| hovered.set(None)>
                    <svg viewBox=format!("0 0 {MAP_SIZE} {MAP_SIZE}") role="group" aria-labelledby="map-caption"
                        class:has-hits=has_hits
                        on:mouseover=move |ev| hovered.set(point_under(&ev))
                        on:click=move |ev| if let Some(i) = point_under(&ev) { open(i, &click_points) }>
                        <g class="points">{base}</g>
                        <g class="hits">{hits}</g>
                    </svg>
                    {tip}
                </div>
                <figcaption id="map-caption">
                    {format!("All {} products placed by the model's embeddings: products close together read alike. ", stats.products)}
                    {move || if has_hits() {
                        "Your results are numbered; choose one to open it."
                    } else {
                        "Search to see where your results lie. Point at a product to see its name; click to open it."
                    }}
                </figcaption>
                <ul class="legend" aria-label="Product types">{legend}</ul>
            </figure>
        }.into_any()
    }
}
