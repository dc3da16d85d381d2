//! The result list and the product view with its similar products.

use super::card::{skin_labels, Card};
use super::fields::filter_of;
use super::state::{page, Page};
use super::{Status, RESULTS_MAX, RESULTS_SHOWN};
use crate::protocol::{closeness_sentence, price_conflict, without_phrase, SIMILAR_SCOPE};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// What a first visit offers before anything is chosen: needs in
/// shoppers' words, each one click from its results.
const EXAMPLE_SEARCHES: [&str; 4] = [
    "gentle cleanser that won't dry my skin",
    "night cream for very dry skin",
    "serum for dark spots",
    "oil-free moisturizer for breakouts",
];

#[component]
pub(super) fn Results() -> impl IntoView {
    let page = page();
    let Page {
        returned_from,
        question,
        outcome,
        request_error,
        status,
        shown,
        ..
    } = page;
    let labels = move || status.with(skin_labels);
    // Back from a product view, its card's link takes the focus again.
    Effect::new(move |_| {
        let Some(id) = returned_from.get() else {
            return;
        };
        if outcome.with(Option::is_none) {
            return;
        }
        let selector = format!(".results .card[data-product-id=\"{id}\"] .similar-link");
        if let Some(link) = document()
            .query_selector(&selector)
            .ok()
            .flatten()
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            link.scroll_into_view_with_bool(false);
            let _ = link.focus();
        }
        returned_from.set(None);
    });
    view! {
        <section class="results" aria-live="polite">
            <h2 class="visually-hidden">"Results"</h2>
            {move || request_error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            // An empty query (nothing chosen yet) is answered like no search at all.
            {move || match outcome.get().filter(|o| !o.asked.is_empty()) {
                _ if status.with(|s| matches!(s, Status::Failed(_))) => ().into_any(),
                None if !page.is_ready() => view! { <p class="hint">"Results appear here as soon as the model has loaded."</p> }.into_any(),
                None => view! {
                    <p class="hint">"Choose a skin type, a product type or a concern, or describe what you want."</p>
                    <p class="examples-lead">"Or try one of these:"</p>
                    <ul class="examples">
                        {EXAMPLE_SEARCHES.iter().map(|&text| view! {
                            <li><button type="button" class="example" on:click=move |_| page.ask(text)>{text}</button></li>
                        }).collect_view()}
                    </ul>
                }.into_any(),
                Some(o) if o.results.is_empty() && o.unknown_avoid.is_empty() => {
                    let why = question.with(|q| {
                        let filter = filter_of(q);
                        price_conflict(filter.min_price, filter.max_price)
                    });
                    view! { <p class="empty">{why.unwrap_or_else(|| "No product matches all of these filters. Try removing one.".into())}</p> }.into_any()
                }
                Some(o) => {
                    let labels = labels();
                    // A full page suggests there are more.
                    let more = o.results.len() >= shown.get_untracked() && o.results.len() < RESULTS_MAX;
                    view! {
                        {closeness_sentence(&o.closeness).map(|sentence| view! { <p class="closeness" role="status">{sentence}</p> })}
                        <p class="summary" data-millis=format!("{:.1}", o.millis)>
                            {format!("{} results for {}", o.results.len(), o.asked)}
                            {(!o.filters.is_empty()).then(|| view! { <span class="filters">{format!(" · {}", o.filters)}</span> })}
                            {format!(" ({:.0} ms)", o.millis)}
                        </p>
                        {(!o.understood.is_empty()).then(|| view! {
                            <ul class="chips" aria-label="Understood from your words">
                                {o.understood.iter().map(|u| {
                                    let phrase = u.phrase.clone();
                                    let words = u.wish.words();
                                    view! {
                                        <li><button type="button" class="chip" aria-label=format!("Remove: {words}")
                                            on:click=move |_| {
                                                let text = question.with_untracked(|q| without_phrase(&q.text, &phrase));
                                                page.ask(&text);
                                            }>{words.clone()}" ✕"</button></li>
                                    }
                                }).collect_view()}
                            </ul>
                        })}
                        {o.unknown_avoid.iter().map(|u| view! { <p class="notice unknown-avoid" role="status">{u.sentence()}</p> }).collect_view()}
                        <ol class="cards">
                            {o.results.into_iter().map(|card| view! { <Card card=card labels=labels.clone() /> }).collect_view()}
                        </ol>
                        {more.then(|| view! {
                            <button type="button" class="more"
                                on:click=move |_| shown.update(|n| *n = (*n + RESULTS_SHOWN).min(RESULTS_MAX))>
                                "Show more"
                            </button>
                        })}
                    }.into_any()
                }
            }}
        </section>
    }
}

/// One product, its neighbours, and the way back to the results.
#[component]
pub(super) fn Detail() -> impl IntoView {
    let page = page();
    let Page {
        similar,
        request_error,
        status,
        ..
    } = page;
    let labels = move || status.with(skin_labels);
    // The view takes the focus (and the scroll) once the product is shown,
    // so keyboard and screen-reader users land on it, not on the page's top.
    let heading = NodeRef::<leptos::html::H2>::new();
    Effect::new(move |_| {
        let shown = similar.with(Option::is_some);
        if let (true, Some(heading)) = (shown, heading.get()) {
            heading.scroll_into_view();
            let _ = heading.focus();
        }
    });
    view! {
        <section class="detail" aria-live="polite">
            // First in the view, so that the next tab from it is "Back".
            <h2 class="visually-hidden product-heading" tabindex="-1" node_ref=heading>
                {move || similar.with(|s| s.as_ref().map(|s| format!("Product: {}", s.product.product.name)).unwrap_or_else(|| "Product".into()))}
            </h2>
            <button type="button" class="back" on:click=move |_| page.close_product()>"← Back to results"</button>
            {move || request_error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            {move || match similar.get() {
                None => view! { <p class="hint">"Finding similar products…"</p> }.into_any(),
                Some(s) => {
                    let labels = labels();
                    let name = s.product.product.name.clone();
                    view! {
                        <ol class="cards product">
                            <Card card=s.product labels=labels.clone() main=true />
                        </ol>
                        <h2 class="similar-heading">{format!("Similar to {name}")}</h2>
                        <p class="hint similar-scope">{SIMILAR_SCOPE}</p>
                        {s.results.is_empty().then(|| view! { <p class="empty">"No similar product is within your filters."</p> })}
                        <ol class="cards similar">
                            {s.results.into_iter().map(|card| view! { <Card card=card labels=labels.clone() /> }).collect_view()}
                        </ol>
                    }.into_any()
                }
            }}
        </section>
    }
}
