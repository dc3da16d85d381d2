//! The collection view: products by type and brand, and the retailer's
//! and Milih's skin-type answers.

use super::state::page;
use super::Status;
use crate::protocol::percent_label;
use leptos::prelude::*;

/// The collection at a glance: products by type and brand, and how many
/// have retailer skin-type labels rather than the model's predictions.
#[component]
pub(super) fn Overview() -> impl IntoView {
    let status = page().status;
    move || {
        let Status::Ready(stats) = status.get() else {
            return view! { <p class="hint">"The overview appears once the catalog has loaded."</p> }.into_any();
        };
        let predicted = stats.products - stats.labeled;
        let unlabeled_share = percent_label(predicted, stats.products);
        let largest_type = stats.by_type.first().map_or(1, |g| g.products).max(1);
        let largest_brand = stats.by_brand.first().map_or(1, |g| g.products).max(1);
        const BRANDS_SHOWN: usize = 20;
        let more_brands = stats.by_brand.len().saturating_sub(BRANDS_SHOWN);
        let bar = |group: &crate::protocol::GroupCount, largest: usize| {
            let labeled = 100.0 * group.labeled as f64 / largest as f64;
            let predicted = 100.0 * group.predicted() as f64 / largest as f64;
            view! {
                <span class="bar" aria-hidden="true">
                    <span class="labeled" style:width=format!("{labeled:.1}%")></span>
                    <span class="predicted" style:width=format!("{predicted:.1}%")></span>
                </span>
            }
        };
        view! {
            <section class="overview">
                <h2>"The collection"</h2>
                <p class="overview-summary">
                    {format!("{} products of {} types from {} brands. ", stats.products, stats.product_types.len(), stats.brands)}
                    <span data-stat="labeled">{format!("{} have skin types labeled by the retailer", stats.labeled)}</span>"; "
                    <span data-stat="predicted">{format!("{predicted} ({unlabeled_share}) have none, so Milih predicts them")}</span>"."
                </p>
                <p class="legend-line"><span class="key labeled" aria-hidden="true"></span>" retailer-labeled "
                    <span class="key predicted" aria-hidden="true"></span>" predicted by Milih"</p>
                <table class="counts by-type">
                    <caption>"Products by type"</caption>
                    <thead><tr><th scope="col">"Type"</th><th scope="col">"Products"</th><th scope="col">"Labeled"</th><th scope="col">"Predicted"</th><th scope="col"><span class="visually-hidden">"Share"</span></th></tr></thead>
                    <tbody>
                        {stats.by_type.iter().map(|g| view! {
                            <tr><th scope="row">{g.name.clone()}</th><td>{g.products}</td><td>{g.labeled}</td><td>{g.predicted()}</td><td>{bar(g, largest_type)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <table class="counts by-skin">
                    <caption>{format!("Skin types Milih predicts for the {predicted} unlabeled products")}</caption>
                    <thead><tr><th scope="col">"Skin type"</th><th scope="col">"Likely"</th><th scope="col">"Unsure"</th><th scope="col">"Unlikely"</th><th scope="col">"Unknown"</th></tr></thead>
                    <tbody>
                        {stats.labels.iter().zip(&stats.predicted_answers).map(|(label, counts)| view! {
                            <tr><th scope="row">{label.clone()}</th>
                                {counts.iter().map(|&n| view! { <td>{format!("{n} ({})", percent_label(n, predicted))}</td> }).collect_view()}
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <table class="counts by-brand">
                    <caption>{format!("Brands with the most products (top {} of {})", BRANDS_SHOWN.min(stats.by_brand.len()), stats.brands)}</caption>
                    <thead><tr><th scope="col">"Brand"</th><th scope="col">"Products"</th><th scope="col">"Labeled"</th><th scope="col">"Predicted"</th><th scope="col"><span class="visually-hidden">"Share"</span></th></tr></thead>
                    <tbody>
                        {stats.by_brand.iter().take(BRANDS_SHOWN).map(|g| view! {
                            <tr><th scope="row">{g.name.clone()}</th><td>{g.products}</td><td>{g.labeled}</td><td>{g.predicted()}</td><td>{bar(g, largest_brand)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
                {(more_brands > 0).then(|| view! { <p class="hint">{format!("…and {more_brands} more brands.")}</p> })}
            </section>
        }.into_any()
    }
}
