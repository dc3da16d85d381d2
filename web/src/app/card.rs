//! One product card: match, why, skin-type answers, ingredients.

use super::state::page;
use super::Status;
use crate::protocol::{answer_title, lean_sentence, ResultCard};
use leptos::prelude::*;
use milih_catalog::SKIN_TYPES;
use milih_rank::SkinFit;

/// The model's label names, or the catalog's skin types before it loads.
pub(super) fn skin_labels(status: &Status) -> Vec<String> {
    match status {
        Status::Ready(stats) => stats.labels.clone(),
        _ => SKIN_TYPES.iter().map(|s| s.to_string()).collect(),
    }
}

/// One product card. The `main` card of a product view shows the product
/// itself: no match score or reason, its ingredients unfolded.
#[component]
pub(super) fn Card(
    card: ResultCard,
    labels: Vec<String>,
    #[prop(optional)] main: bool,
) -> impl IntoView {
    let page = page();
    let p = card.product;
    let id = p.id;
    let name_for_label = format!("Similar products to {}", p.name);
    let similarity = (card.score.clamp(0.0, 1.0) * 100.0).round();
    let type_attr = p.product_type.clone();
    let type_attr_lean = p.product_type.clone();
    view! {
        <li class="card" data-product-id=p.id data-type=type_attr>
            <p class="brand">{p.brand}</p>
            <h3 class="name">{p.name}</h3>
            <p class="meta">
                <span class="type">{p.product_type}</span>
                " · "<span class="price">{format!("${:.0}", p.price)}</span>
                " · "<span class="rating">{crate::protocol::rating_words(p.rating)}</span>
            </p>
            {(!main).then(|| view! {
                <p class="score" data-score=format!("{:.4}", card.score)>
                    <meter min="0" max="100" value=similarity.to_string()></meter>
                    {format!(" {:.0}% match", similarity)}
                </p>
                <p class="why">{format!("Why: {}", card.explanation.why)}</p>
            })}
            {(!card.avoided.warnings.is_empty()).then(|| view! {
                <ul class="warnings" aria-label="Ingredients you avoid">
                    {card.avoided.warnings.iter().map(|w| view! { <li>{format!("⚠ {w}")}</li> }).collect_view()}
                </ul>
            })}
            <ul class="fits" aria-label="Skin types">
                {labels.iter().cloned().zip(card.fits).map(|(label, fit)| {
                    let (class, code, text, title) = match fit {
                        SkinFit::Labeled(true) => ("fit labeled yes", "labeled-yes".to_string(), format!("{label} ✓"), "labeled by the retailer".to_string()),
                        SkinFit::Labeled(false) => ("fit labeled no", "labeled-no".to_string(), format!("{label} ✗"), "labeled by the retailer".to_string()),
                        SkinFit::Predicted { probability, answer } => (
                            if fit.suits() { "fit predicted yes" } else { "fit predicted no" },
                            format!("predicted-{}", answer.word()),
                            format!("{label} · {}", answer.word()),
                            answer_title(answer, probability),
                        ),
                    };
                    view! { <li class=class data-skin=label data-fit=code title=title>{text}</li> }
                }).collect_view()}
            </ul>
            {card.lean.map(|lean| {
                let skin = labels.get(lean.label).cloned().unwrap_or_default();
                let sentence = lean_sentence(&skin, &type_attr_lean, lean.beats);
                view! { <p class="lean" data-lean=skin.to_lowercase()>{sentence}</p> }
            })}
            <IngredientList ingredients=p.ingredients matched=card.explanation.matched avoided=card.avoided.items open=main />
            {(!main).then(|| view! {
                <button type="button" class="similar-link" aria-label=name_for_label
                    on:click=move |_| page.open_product(id)>"Similar products"</button>
            })}
        </li>
    }
}

/// The ingredient list, folded by default; ingredients that address the
/// chosen concerns are highlighted, avoided ones marked.
#[component]
pub(super) fn IngredientList(
    ingredients: Option<String>,
    matched: Vec<String>,
    avoided: Vec<String>,
    /// Unfolded from the start.
    open: bool,
) -> impl IntoView {
    match ingredients {
        None => view! { <p class="hint">"Ingredients unknown"</p> }.into_any(),
        Some(list) => {
            let items: Vec<(String, Mark)> = milih_catalog::ingredient_items(&list)
                .into_iter()
                .map(|i| {
                    let lower = i.to_lowercase();
                    let item = lower.trim_end_matches('.').trim();
                    let mark = if avoided.iter().any(|a| a == item) {
                        Mark::Avoided
                    } else if matched.iter().any(|m| lower.contains(m.as_str())) {
                        Mark::Matched
                    } else {
                        Mark::Plain
                    };
                    (i.to_owned(), mark)
                })
                .collect();
            let count = items.len();
            view! {
                <details class="ingredients" open=open>
                    <summary>{format!("Ingredients ({count})")}</summary>
                    <p>
                        {items.into_iter().enumerate().map(|(k, (item, mark))| {
                            let sep = if k + 1 < count { ", " } else { "" };
                            match mark {
                                Mark::Matched => view! { <mark>{item}</mark>{sep} }.into_any(),
                                Mark::Avoided => view! { <mark class="avoided" title="an ingredient you avoid">{item}</mark>{sep} }.into_any(),
                                Mark::Plain => view! { <span>{item}</span>{sep} }.into_any(),
                            }
                        }).collect_view()}
                    </p>
                </details>
            }
            .into_any()
        }
    }
}

#[derive(Clone, Copy)]
pub(super) enum Mark {
    Plain,
    Matched,
    Avoided,
}
