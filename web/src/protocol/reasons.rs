//! Why two products are alike, and which avoided ingredients a product
//! holds.

use milih_catalog::Product;
use milih_rank::avoid::caught_by;
use serde::{Deserialize, Serialize};

/// What a product holds of the ingredients the user avoids, for products
/// no filter removed (similar products, the product view).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AvoidCheck {
    /// One line per avoided term found, and one for terms that cannot be
    /// checked, e.g. "Contains fragrance: parfum".
    pub warnings: Vec<String>,
    /// The ingredient list items caught (lower case), to mark in the list.
    pub items: Vec<String>,
}

impl AvoidCheck {
    pub fn of(avoid: &[String], product: &Product) -> Self {
        let mut check = Self::default();
        let mut unchecked = Vec::new();
        for term in avoid.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            match caught_by(term, product) {
                None => unchecked.push(term),
                Some(items) if items.is_empty() => {}
                Some(items) => {
                    check
                        .warnings
                        .push(format!("Contains {term}: {}", items.join(", ")));
                    check.items.extend(items);
                }
            }
        }
        if !unchecked.is_empty() {
            check.warnings.push(format!(
                "Ingredients unknown: cannot check for {}",
                unchecked.join(", ")
            ));
        }
        check.items.dedup();
        check
    }
}

/// Why `other` is shown as similar to `base`: a shared type and the
/// ingredients both lists hold.
pub fn similarity_reasons(base: &Product, other: &Product) -> String {
    let mut reasons = Vec::new();
    if base.product_type == other.product_type {
        reasons.push(format!("also a {}", base.product_type.to_lowercase()));
    }
    if let (Some(a), Some(b)) = (&base.ingredients, &other.ingredients) {
        let theirs = milih_rank::avoid::ingredient_items(b);
        let shared = milih_rank::avoid::ingredient_items(a)
            .into_iter()
            .filter(|i| theirs.contains(i))
            .count();
        if shared > 0 {
            reasons.push(format!(
                "{shared} shared ingredient{}",
                if shared == 1 { "" } else { "s" }
            ));
        }
    }
    if reasons.is_empty() {
        "close in meaning".into()
    } else {
        reasons.join(" · ")
    }
}
