//! Reading the search form's fields.

use crate::url_state::UrlState;
use milih_rank::avoid::AVOID_GROUPS;
use milih_rank::Filter;

/// The avoid field's comma-separated terms.
pub(super) fn avoid_terms(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A non-negative number typed in a bound field; anything else means "no
/// bound" (the field's own validation tells the user).
pub(super) fn parse_bound(text: &str) -> Option<f32> {
    text.trim()
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// The ingredient groups the avoid field understands beyond plain words.
pub(super) fn avoid_hint() -> String {
    let groups: Vec<&str> = AVOID_GROUPS.iter().map(|g| g.label).collect();
    format!("Understands {} and their label names.", groups.join(", "))
}

/// Adds `item` to `items` or takes it out.
pub(super) fn toggle<T: PartialEq>(items: &mut Vec<T>, item: T, on: bool) {
    items.retain(|x| *x != item);
    if on {
        items.push(item);
    }
}

/// The filters the question's fields say.
pub(super) fn filter_of(question: &UrlState) -> Filter {
    Filter {
        skin_types: question.skin_types.clone(),
        product_types: question.product_types.clone(),
        avoid_ingredients: avoid_terms(&question.avoid),
        min_price: parse_bound(&question.min_price),
        max_price: parse_bound(&question.max_price),
        min_rating: parse_bound(&question.min_rating),
    }
}
