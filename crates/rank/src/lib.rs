//! Ranking: cosine similarity between a query embedding and every product
//! embedding, restricted by filters, best first.
//!
//! Embeddings are unit length, so the dot product is the cosine.

pub mod avoid;
pub mod concerns;

use avoid::caught_by;

use milih_catalog::{Product, NUM_SKIN_TYPES};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Probability at or above which a predicted skin type counts as suitable.
pub const PREDICTED_SUITABLE: f32 = 0.5;

/// What the user asked for. Empty lists do not restrict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// Indices into [`milih_catalog::SKIN_TYPES`]; a product must suit all.
    pub skin_types: Vec<usize>,
    /// Accepted product types (case-insensitive); any one matches.
    pub product_types: Vec<String>,
    /// Ingredients to avoid: a group ("fragrance", "parabens", …, see
    /// [`avoid::AVOID_GROUPS`]) or any other case-insensitive substring.
    pub avoid_ingredients: Vec<String>,
    /// Price bounds, inclusive (the catalog's currency, US dollars).
    #[serde(default)]
    pub min_price: Option<f32>,
    #[serde(default)]
    pub max_price: Option<f32>,
    /// Lowest accepted customer rating (0–5).
    #[serde(default)]
    pub min_rating: Option<f32>,
}

/// How a product fits one skin type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SkinFit {
    /// The retailer says whether it suits.
    Labeled(bool),
    /// No retailer label: the model's probability.
    Predicted(f32),
}

impl SkinFit {
    pub fn suits(self) -> bool {
        match self {
            SkinFit::Labeled(suits) => suits,
            SkinFit::Predicted(p) => p >= PREDICTED_SUITABLE,
        }
    }
}

/// The fit of `product` for skin type `index`, given the model's
/// probabilities for it.
pub fn skin_fit(product: &Product, predicted: &[f32], index: usize) -> SkinFit {
    match product.skin_labels {
        Some(labels) => SkinFit::Labeled(labels[index]),
        None => SkinFit::Predicted(predicted.get(index).copied().unwrap_or(0.0)),
    }
}

impl Filter {
    /// Whether a product passes every filter. A product without a known
    /// ingredient list never passes an avoid filter: nothing shows it is safe.
    pub fn accepts(&self, product: &Product, predicted: &[f32]) -> bool {
        let types_ok = self.product_types.is_empty()
            || self
                .product_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&product.product_type));
        let skin_ok = self
            .skin_types
            .iter()
            .all(|&i| i < NUM_SKIN_TYPES && skin_fit(product, predicted, i).suits());
        let avoid_ok = self.avoid_ingredients.iter().all(|term| {
            term.trim().is_empty() || caught_by(term, product).is_some_and(|c| c.is_empty())
        });
        let price_ok = self.min_price.is_none_or(|min| product.price >= min)
            && self.max_price.is_none_or(|max| product.price <= max);
        let rating_ok = self.min_rating.is_none_or(|min| product.rating >= min);
        types_ok && skin_ok && avoid_ok && price_ok && rating_ok
    }
}

/// One ranked product.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub index: usize,
    /// Cosine similarity to the query.
    pub score: f32,
}

/// The `k` rows of `embeddings` (row-major, `dim` columns) most similar to
/// `query` among those `accept` admits, best first; ties go to the lower row.
pub fn top_k(
    query: &[f32],
    embeddings: &[f32],
    dim: usize,
    k: usize,
    accept: impl Fn(usize) -> bool,
) -> Vec<Hit> {
    if dim == 0 || query.len() != dim || k == 0 {
        return Vec::new();
    }
    let mut hits: Vec<Hit> = embeddings
        .chunks_exact(dim)
        .enumerate()
        .filter(|(index, _)| accept(*index))
        .map(|(index, row)| Hit {
            index,
            score: dot(query, row),
        })
        .collect();
    let better = |a: &Hit, b: &Hit| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(Ordering::Equal)
            .then(a.index.cmp(&b.index))
    };
    if hits.len() > k {
        hits.select_nth_unstable_by(k - 1, better);
        hits.truncate(k);
    }
    hits.sort_by(better);
    hits
}

/// Dot product; the cosine of two unit vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(kind: &str, labels: Option<[bool; 5]>, ingredients: Option<&str>) -> Product {
        Product {
            id: 0,
            product_type: kind.into(),
            brand: "B".into(),
            name: "N".into(),
            price: 10.0,
            rating: 4.0,
            ingredients: ingredients.map(String::from),
            skin_labels: labels,
        }
    }

    #[test]
    fn top_k_orders_by_cosine_and_respects_the_filter() {
        // Three 2-d unit vectors.
        let embeddings = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
        let hits = top_k(&[1.0, 0.0], &embeddings, 2, 2, |_| true);
        assert_eq!(hits.iter().map(|h| h.index).collect::<Vec<_>>(), vec![0, 2]);
        assert!((hits[1].score - 0.6).abs() < 1e-6);
        let hits = top_k(&[1.0, 0.0], &embeddings, 2, 5, |i| i != 0);
        assert_eq!(hits.iter().map(|h| h.index).collect::<Vec<_>>(), vec![2, 1]);
        assert!(
            top_k(&[1.0], &embeddings, 2, 5, |_| true).is_empty(),
            "wrong query dimension"
        );
    }

    #[test]
    fn ties_go_to_the_lower_row() {
        let embeddings = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let hits = top_k(&[0.0, 1.0], &embeddings, 2, 2, |_| true);
        assert_eq!(hits.iter().map(|h| h.index).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn skin_filter_uses_labels_and_predictions_for_unlabeled() {
        let dry = Filter {
            skin_types: vec![1],
            ..Filter::default()
        };
        let no_p = [0.0; 5];
        assert!(dry.accepts(
            &product("Moisturizer", Some([true, true, false, false, false]), None),
            &no_p
        ));
        // Labeled "not for dry" is out whatever the model says.
        assert!(!dry.accepts(
            &product("Moisturizer", Some([true, false, true, true, true]), None),
            &[1.0; 5]
        ));
        // Unlabeled: the prediction decides.
        assert!(dry.accepts(
            &product("Moisturizer", None, None),
            &[0.0, 0.7, 0.0, 0.0, 0.0]
        ));
        assert!(!dry.accepts(
            &product("Moisturizer", None, None),
            &[0.9, 0.3, 0.9, 0.9, 0.9]
        ));
    }

    #[test]
    fn price_range_and_minimum_rating() {
        let p = vec![0.5; 5];
        let mut cheap = product("Cleanser", None, None);
        cheap.price = 12.0;
        cheap.rating = 3.9;
        let filter = |min_price, max_price, min_rating| Filter {
            min_price,
            max_price,
            min_rating,
            ..Filter::default()
        };
        assert!(filter(Some(12.0), Some(12.0), Some(3.9)).accepts(&cheap, &p));
        assert!(!filter(Some(12.5), None, None).accepts(&cheap, &p));
        assert!(!filter(None, Some(11.0), None).accepts(&cheap, &p));
        assert!(!filter(None, None, Some(4.0)).accepts(&cheap, &p));
        assert!(filter(None, None, None).accepts(&cheap, &p));
    }

    #[test]
    fn product_type_and_avoid_filters() {
        let filter = Filter {
            product_types: vec!["moisturizer".into(), "Cleanser".into()],
            avoid_ingredients: vec!["Fragrance".into()],
            ..Filter::default()
        };
        let p = [0.0; 5];
        assert!(filter.accepts(&product("Moisturizer", None, Some("Water, Glycerin")), &p));
        assert!(!filter.accepts(&product("Moisturizer", None, Some("Water, Fragrance")), &p));
        assert!(!filter.accepts(&product("Face Mask", None, Some("Water")), &p));
        // Unknown ingredients cannot be shown to be free of fragrance.
        assert!(!filter.accepts(&product("Cleanser", None, None), &p));
        // Blank avoid terms do not restrict.
        let blank = Filter {
            avoid_ingredients: vec![" ".into()],
            ..Filter::default()
        };
        assert!(blank.accepts(&product("Cleanser", None, None), &p));
    }
}
