//! Reading the search form's fields.

use milih_rank::avoid::AVOID_GROUPS;

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
