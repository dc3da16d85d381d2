//! Training data: the held-out split, the evaluation protocols, and the
//! query the fine-tune recipe draws for a product.

use crate::queries::{Need, Query};
use milih_catalog::{Catalog, Product, SKIN_TYPES};
use milih_rank::wording;
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

/// How products are split for evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Repeated random splits of all rows, unlabeled rows scored as
    /// negatives (how the original project measured; kept for comparison).
    AllRows { repeats: usize, test_fraction: f64 },
    /// K folds of the labeled rows; unlabeled rows always train.
    LabeledFolds { folds: usize },
    /// K folds of the labeled rows grouped by brand: a test brand is never
    /// seen in training, labeled or not.
    BrandFolds { folds: usize },
}

impl Protocol {
    pub fn name(&self) -> String {
        match self {
            Protocol::AllRows {
                repeats,
                test_fraction,
            } => {
                format!(
                    "all rows, {repeats} random {:.0}/{:.0} splits",
                    100.0 * (1.0 - test_fraction),
                    100.0 * test_fraction
                )
            }
            Protocol::LabeledFolds { folds } => format!("labeled rows, {folds}-fold"),
            Protocol::BrandFolds { folds } => {
                format!("labeled rows, {folds}-fold grouped by brand")
            }
        }
    }

    /// A short name for file and directory names.
    pub fn slug(&self) -> &'static str {
        match self {
            Protocol::AllRows { .. } => "all-rows",
            Protocol::LabeledFolds { .. } => "labeled-folds",
            Protocol::BrandFolds { .. } => "brand-folds",
        }
    }

    /// The splits of this protocol, fixed by `seed`.
    pub fn splits(&self, catalog: &Catalog, seed: u64) -> Vec<Split> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let all: Vec<usize> = catalog.products.iter().map(|p| p.id).collect();
        let labeled: Vec<usize> = catalog.labeled().map(|p| p.id).collect();
        let complement = |held_out: &[usize], candidates: &[usize]| -> Vec<usize> {
            let held: std::collections::HashSet<usize> = held_out.iter().copied().collect();
            candidates
                .iter()
                .copied()
                .filter(|i| !held.contains(i))
                .collect()
        };
        match *self {
            Protocol::AllRows {
                repeats,
                test_fraction,
            } => (0..repeats)
                .map(|_| {
                    let mut order = all.clone();
                    order.shuffle(&mut rng);
                    let count = ((order.len() as f64 * test_fraction).round() as usize)
                        .clamp(1, order.len());
                    let mut held_out = order[..count].to_vec();
                    held_out.sort_unstable();
                    Split {
                        train: complement(&held_out, &all),
                        held_out,
                    }
                })
                .collect(),
            Protocol::LabeledFolds { folds } => {
                let mut order = labeled;
                order.shuffle(&mut rng);
                (0..folds)
                    .map(|f| {
                        let mut held_out: Vec<usize> =
                            order.iter().copied().skip(f).step_by(folds).collect();
                        held_out.sort_unstable();
                        Split {
                            train: complement(&held_out, &all),
                            held_out,
                        }
                    })
                    .collect()
            }
            Protocol::BrandFolds { folds } => {
                // Largest brands first, each to the currently smallest fold,
                // so folds stay balanced.
                let mut brands: Vec<(String, usize)> = Vec::new();
                for p in catalog.labeled() {
                    match brands.iter_mut().find(|(b, _)| *b == p.brand) {
                        Some((_, n)) => *n += 1,
                        None => brands.push((p.brand.clone(), 1)),
                    }
                }
                brands.shuffle(&mut rng);
                brands.sort_by_key(|b| std::cmp::Reverse(b.1));
                let mut fold_brands: Vec<Vec<String>> = vec![Vec::new(); folds];
                let mut sizes = vec![0usize; folds];
                for (brand, n) in brands {
                    let smallest = (0..folds).min_by_key(|&f| (sizes[f], f)).unwrap_or(0);
                    sizes[smallest] += n;
                    fold_brands[smallest].push(brand);
                }
                fold_brands
                    .iter()
                    .map(|brands| {
                        let in_fold = |i: &usize| brands.contains(&catalog.products[*i].brand);
                        let held_out: Vec<usize> =
                            labeled.iter().copied().filter(in_fold).collect();
                        let train = all.iter().copied().filter(|i| !in_fold(i)).collect();
                        Split { train, held_out }
                    })
                    .collect()
            }
        }
    }
}

/// A query for which `product` is relevant (the fine-tune recipe draws one
/// per product and batch): "{type} for {skin} skin" for one of its labeled
/// skin types most of the time, otherwise its brand and name.
pub fn query_for(product: &Product, rng: &mut impl Rng) -> Query {
    let suited: Vec<usize> = product
        .skin_labels
        .map(|labels| (0..labels.len()).filter(|&i| labels[i]).collect())
        .unwrap_or_default();
    if !suited.is_empty() && rng.random_bool(0.7) {
        let skin = suited[rng.random_range(0..suited.len())];
        Query::descriptive(
            wording::for_skin(&[&product.product_type], &[SKIN_TYPES[skin]]),
            Need {
                types: vec![product.product_type.clone()],
                skins: vec![skin],
                ..Need::default()
            },
        )
    } else {
        Query::named(
            format!("{} {}", product.brand, product.name),
            Need {
                product: Some(product.id),
                ..Need::default()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queries::Facts;
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

    fn branded_catalog(n: usize) -> Catalog {
        let mut c = catalog(n);
        for p in &mut c.products {
            p.brand = format!("BRAND{}", p.id % 7);
        }
        c
    }

    #[test]
    fn labeled_folds_cover_every_labeled_product_once() {
        let c = catalog(40);
        let splits = Protocol::LabeledFolds { folds: 5 }.splits(&c, 3);
        assert_eq!(splits.len(), 5);
        let mut seen: Vec<usize> = splits.iter().flat_map(|s| s.held_out.clone()).collect();
        seen.sort_unstable();
        let labeled: Vec<usize> = c.labeled().map(|p| p.id).collect();
        assert_eq!(seen, labeled);
        for s in &splits {
            assert_eq!(
                s.train.len() + s.held_out.len(),
                40,
                "unlabeled rows always train"
            );
        }
    }

    #[test]
    fn brand_folds_never_share_a_brand_between_train_and_test() {
        let c = branded_catalog(60);
        let splits = Protocol::BrandFolds { folds: 3 }.splits(&c, 3);
        let mut seen = 0;
        for s in &splits {
            let test_brands: std::collections::HashSet<&str> = s
                .held_out
                .iter()
                .map(|&i| c.products[i].brand.as_str())
                .collect();
            assert!(s
                .train
                .iter()
                .all(|&i| !test_brands.contains(c.products[i].brand.as_str())));
            assert!(s.held_out.iter().all(|&i| c.products[i].is_labeled()));
            seen += s.held_out.len();
        }
        assert_eq!(seen, c.labeled().count());
    }

    #[test]
    fn all_rows_splits_hold_out_unlabeled_rows_too() {
        let c = catalog(60);
        let splits = Protocol::AllRows {
            repeats: 4,
            test_fraction: 0.25,
        }
        .splits(&c, 3);
        assert_eq!(splits.len(), 4);
        assert!(splits
            .iter()
            .all(|s| s.held_out.len() == 15 && s.train.len() == 45));
        assert!(splits
            .iter()
            .any(|s| s.held_out.iter().any(|&i| !c.products[i].is_labeled())));
        assert_ne!(splits[0].held_out, splits[1].held_out);
    }

    #[test]
    fn queries_are_relevant_to_their_product() {
        let c = catalog(12);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for p in &c.products {
            for _ in 0..5 {
                let q = query_for(p, &mut rng);
                assert!(q.is_relevant(&Facts::of(p)), "{q:?} for {p:?}");
            }
        }
        let q = crate::queries::templated_queries(&c)
            .into_iter()
            .map(|(_, q)| q)
            .find(|q| q.text == "cleanser for dry skin")
            .unwrap();
        // Unlabeled products are never relevant to skin-type queries.
        assert!(!q.is_relevant(&Facts::of(&c.products[0])));
    }
}
