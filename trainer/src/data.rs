//! Training data: the held-out split and the synthetic queries that train
//! the embedding head.

use milih_catalog::{Catalog, Product, SKIN_TYPES};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which products train and which are held out for evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// Labeled and unlabeled products the model trains on.
    pub train: Vec<usize>,
    /// Labeled products held out for evaluation.
    pub held_out: Vec<usize>,
}

/// Holds out `fraction` of the labeled products (at least one when any are
/// labeled). Unlabeled products always train: they have no labels to score.
pub fn split(catalog: &Catalog, fraction: f64, seed: u64) -> Split {
    let mut labeled: Vec<usize> = catalog.labeled().map(|p| p.id).collect();
    labeled.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let count = ((labeled.len() as f64 * fraction).round() as usize)
        .clamp(usize::from(!labeled.is_empty()), labeled.len());
    let mut held_out = labeled[..count].to_vec();
    held_out.sort_unstable();
    let mut train: Vec<usize> = catalog
        .products
        .iter()
        .map(|p| p.id)
        .filter(|id| held_out.binary_search(id).is_err())
        .collect();
    train.sort_unstable();
    Split { train, held_out }
}

/// A synthetic search query and the rule that decides which products are
/// relevant to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// "moisturizer for dry skin": products of that type labeled for that skin type.
    TypeForSkin { product_type: String, skin: usize },
    /// The product's own brand and name: only that product.
    Named {
        id: usize,
        brand: String,
        name: String,
    },
}

impl Query {
    pub fn text(&self) -> String {
        match self {
            Query::TypeForSkin { product_type, skin } => {
                format!(
                    "{} for {} skin",
                    product_type.to_lowercase(),
                    SKIN_TYPES[*skin].to_lowercase()
                )
            }
            Query::Named { brand, name, .. } => format!("{brand} {name}"),
        }
    }

    pub fn is_relevant(&self, product: &Product) -> bool {
        match self {
            Query::TypeForSkin { product_type, skin } => {
                product.product_type == *product_type
                    && product.skin_labels.is_some_and(|l| l[*skin])
            }
            Query::Named { id, .. } => product.id == *id,
        }
    }
}

/// A query for which `product` is relevant: a type-for-skin query for one of
/// its labeled skin types (most of the time), otherwise its name.
pub fn query_for(product: &Product, rng: &mut impl Rng) -> Query {
    let suited: Vec<usize> = product
        .skin_labels
        .map(|labels| (0..labels.len()).filter(|&i| labels[i]).collect())
        .unwrap_or_default();
    if !suited.is_empty() && rng.random_bool(0.7) {
        Query::TypeForSkin {
            product_type: product.product_type.clone(),
            skin: suited[rng.random_range(0..suited.len())],
        }
    } else {
        Query::Named {
            id: product.id,
            brand: product.brand.clone(),
            name: product.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use milih_catalog::Product;

    fn catalog(n: usize) -> Catalog {
        let products = (0..n)
            .map(|id| Product {
                id,
                product_type: "Cleanser".into(),
                brand: "B".into(),
                name: format!("P{id}"),
                price: 1.0,
                rating: 4.0,
                ingredients: None,
                skin_labels: (id % 3 != 0).then_some([true, id % 2 == 0, true, false, true]),
            })
            .collect();
        Catalog { products }
    }

    #[test]
    fn split_holds_out_only_labeled_products_and_is_seeded() {
        let c = catalog(30);
        let s = split(&c, 0.25, 7);
        assert_eq!(s.held_out.len(), 5, "a quarter of 20 labeled products");
        assert!(s.held_out.iter().all(|&i| c.products[i].is_labeled()));
        assert_eq!(s.train.len() + s.held_out.len(), 30);
        assert_eq!(s, split(&c, 0.25, 7));
        assert_ne!(s.held_out, split(&c, 0.25, 8).held_out);
    }

    #[test]
    fn queries_are_relevant_to_their_product() {
        let c = catalog(12);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for p in &c.products {
            for _ in 0..5 {
                let q = query_for(p, &mut rng);
                assert!(q.is_relevant(p), "{q:?} for {p:?}");
            }
        }
        let q = Query::TypeForSkin {
            product_type: "Cleanser".into(),
            skin: 1,
        };
        assert_eq!(q.text(), "cleanser for dry skin");
        // Unlabeled products are never relevant to skin-type queries.
        assert!(!q.is_relevant(&c.products[0]));
    }
}
