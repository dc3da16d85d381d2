//! How word matches and the embedding add up ([`Fusion`]), fitted on
//! training queries over training products, and the score under which a
//! search's best match counts as "nothing close" ([`Ranking`]).
//!
//! The same scoring ranks the evaluation's hybrid (`evaluation.rs`) and
//! the page's searches (through the weights shipped in the bundle).

use crate::data::{Protocol, Split};
use crate::evaluation::EvalData;
use crate::heads::{fit_heads, heads_from};
use crate::metrics::ndcg_at;
use crate::options::TrainOptions;
use anyhow::Result;
use candle_core::{Device, Tensor};
use milih_catalog::Product;
use milih_rank::concerns::CONCERNS;
use milih_rank::lexical::{Fusion, Lexicon, Ranking, NUM_FIELDS};
use std::collections::HashSet;

/// At most this many training queries fit the fusion (every n-th one):
/// enough for four weights, quick on two cores.
const FITTING_QUERIES: usize = 1_500;

/// Fits the [`Ranking`] the way searches meet products: on brands the
/// embedding head never saw. A third of the training rows' brands is held
/// aside, the heads are fitted on the other rows (encoder features
/// `pooled`, training queries' features `query_pooled`), and the training
/// queries are scored over the held-aside products. Scored over products
/// the head trained on, the embedding alone would look perfect and the
/// word matches useless.
pub fn fit_ranking(
    data: &EvalData,
    pooled: &Tensor,
    query_pooled: &Tensor,
    split: &Split,
    options: &TrainOptions,
) -> Result<Ranking> {
    let training: HashSet<usize> = split.train.iter().copied().collect();
    let Some(aside) = (Protocol::BrandFolds { folds: 3 })
        .splits(data.catalog, options.seed ^ 0x5eed)
        .into_iter()
        .next()
    else {
        return Ok(Ranking::default());
    };
    let aside: Vec<usize> = aside
        .held_out
        .into_iter()
        .filter(|i| training.contains(i))
        .collect();
    let aside_brands: HashSet<&str> = aside
        .iter()
        .map(|&i| data.catalog.products[i].brand.as_str())
        .collect();
    let inner = Split {
        train: split
            .train
            .iter()
            .copied()
            .filter(|&i| !aside_brands.contains(data.catalog.products[i].brand.as_str()))
            .collect(),
        held_out: aside.clone(),
    };
    if inner.train.is_empty() || aside.is_empty() {
        return Ok(Ranking::default());
    }
    let fitted = fit_heads(
        &data.config,
        &data.facts,
        &data.texts,
        pooled,
        &inner,
        &data.training_queries,
        query_pooled,
        options,
    )?;
    let heads = heads_from(&data.config, &fitted.tensors)?;
    let products: Vec<&Product> = aside.iter().map(|&i| data.facts[i].product).collect();
    let lexicon = Lexicon::new(products.iter().copied());
    let queries = &data.training_queries;
    let step = queries.len().div_ceil(FITTING_QUERIES).max(1);
    let picked: Vec<usize> = (0..queries.len()).step_by(step).collect();
    let index = |ids: &[usize]| {
        Tensor::new(
            ids.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            &Device::Cpu,
        )
    };
    let query_vectors = heads.embed(&query_pooled.index_select(&index(&picked)?, 0)?)?;
    let product_vectors = heads.embed(&pooled.index_select(&index(&aside)?, 0)?)?;
    let dense = query_vectors
        .matmul(&product_vectors.t()?)?
        .to_vec2::<f32>()?;
    let scored: Vec<(Scored, Vec<bool>)> = picked
        .iter()
        .zip(dense)
        .map(|(&q, row)| {
            let query = &queries[q];
            let relevant = aside
                .iter()
                .map(|&i| query.is_relevant(&data.facts[i]))
                .collect();
            (Scored::new(&query.text, row, &lexicon, &products), relevant)
        })
        .collect();
    Ok(ranking(&scored))
}

/// One query over one set of products: the embedding's scores and, for the
/// products that match a word or a named concern, what they match.
pub struct Scored {
    pub dense: Vec<f32>,
    pub extras: Vec<(usize, [f32; NUM_FIELDS], bool)>,
}

impl Scored {
    /// `dense[i]` scores `products[i]`; the lexicon was built over the same
    /// products in the same order.
    pub fn new(query: &str, dense: Vec<f32>, lexicon: &Lexicon, products: &[&Product]) -> Self {
        let read = lexicon.analyze(query);
        let matches = lexicon.matches(&read);
        let concerns: Vec<_> = read.concerns.iter().map(|&c| &CONCERNS[c]).collect();
        let mut extras: Vec<(usize, [f32; NUM_FIELDS], bool)> = Vec::new();
        for (i, product) in products.iter().enumerate() {
            let fields = matches.get(&(i as u32)).copied();
            let concern = concerns.iter().any(|c| c.addressed_by(product));
            if fields.is_some() || concern {
                extras.push((i, fields.unwrap_or_default(), concern));
            }
        }
        Self { dense, extras }
    }

    pub fn scores(&self, fusion: &Fusion) -> Vec<f32> {
        let mut scores = self.dense.clone();
        for &(i, fields, concern) in &self.extras {
            scores[i] = fusion.score(self.dense[i], fields, concern);
        }
        scores
    }

    /// The best score of the embedding alone.
    pub fn best_dense(&self) -> f32 {
        self.dense.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }
}

/// nDCG@10 of one ranking.
fn ndcg_at_10(scores: &[f32], relevant: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    let by_score = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    if order.len() > 10 {
        order.select_nth_unstable_by(9, by_score);
        order.truncate(10);
    }
    order.sort_by(by_score);
    let mut ranked: Vec<bool> = order.iter().map(|&i| relevant[i]).collect();
    // The ideal gain needs every relevant product, not only those ranked.
    let missing = relevant.iter().filter(|&&r| r).count() - ranked.iter().filter(|&&r| r).count();
    ranked.extend(std::iter::repeat_n(true, missing));
    ndcg_at(&ranked, 10)
}

/// The weights each field and the concern boost may take.
const GRID: [f32; 10] = [0.0, 0.02, 0.05, 0.08, 0.12, 0.16, 0.2, 0.3, 0.45, 0.6];

/// The weights that maximise mean nDCG@10 over `queries` (those with a
/// relevant product), found by coordinate ascent over [`GRID`] from the
/// embedding alone; a weight moves only for a strict gain, so ties keep
/// the simpler ranking.
pub fn fit(queries: &[(Scored, Vec<bool>)]) -> Fusion {
    let used: Vec<&(Scored, Vec<bool>)> = queries
        .iter()
        .filter(|(_, r)| r.iter().any(|&x| x))
        .collect();
    let objective = |fusion: &Fusion| -> f64 {
        used.iter()
            .map(|(s, r)| ndcg_at_10(&s.scores(fusion), r))
            .sum::<f64>()
            / used.len().max(1) as f64
    };
    let mut fusion = Fusion::default();
    let mut best = objective(&fusion);
    for _round in 0..3 {
        let mut moved = false;
        for weight in 0..=NUM_FIELDS {
            for &value in &GRID {
                let mut candidate = fusion;
                match weight {
                    w if w < NUM_FIELDS => candidate.fields[w] = value,
                    _ => candidate.concern = value,
                }
                let score = objective(&candidate);
                if score > best + 1e-9 {
                    best = score;
                    fusion = candidate;
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    fusion
}

/// The lowest best-match score of most training queries that have a
/// relevant product: below it, a search has found nothing close. The 2nd
/// percentile, so that 1 in 50 good searches may be called weak.
pub fn nothing_close_below(queries: &[(Scored, Vec<bool>)]) -> f32 {
    let mut best: Vec<f32> = queries
        .iter()
        .filter(|(_, r)| r.iter().any(|&x| x))
        .map(|(s, _)| s.best_dense())
        .filter(|s| s.is_finite())
        .collect();
    if best.is_empty() {
        return 0.0;
    }
    best.sort_by(f32::total_cmp);
    best[(best.len() as f32 * 0.02) as usize]
}

/// Both, from the same training queries.
pub fn ranking(queries: &[(Scored, Vec<bool>)]) -> Ranking {
    Ranking {
        fusion: fit(queries),
        nothing_close_below: nothing_close_below(queries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(brand: &str, name: &str) -> Product {
        Product {
            id: 0,
            product_type: "Moisturizer".into(),
            brand: brand.into(),
            name: name.into(),
            price: 10.0,
            rating: 4.0,
            ingredients: Some("Water, Glycerin".into()),
            skin_labels: None,
        }
    }

    #[test]
    fn fitting_raises_the_brand_weight_when_the_embedding_misses_brands() {
        let products = [
            product("ALPHA", "Cream"),
            product("BETA", "Cream"),
            product("GAMMA", "Cream"),
        ];
        let refs: Vec<&Product> = products.iter().collect();
        let lexicon = Lexicon::new(refs.iter().copied());
        // The embedding prefers the wrong product for each brand query.
        let queries: Vec<(Scored, Vec<bool>)> = ["alpha", "beta", "gamma"]
            .iter()
            .enumerate()
            .map(|(q, text)| {
                let dense = (0..3).map(|i| if i == q { 0.3 } else { 0.4 }).collect();
                let relevant = (0..3).map(|i| i == q).collect();
                (Scored::new(text, dense, &lexicon, &refs), relevant)
            })
            .collect();
        let fusion = fit(&queries);
        assert!(
            fusion.fields[milih_rank::lexical::BRAND] > 0.1,
            "{fusion:?}"
        );
        for (scored, relevant) in &queries {
            assert_eq!(ndcg_at_10(&scored.scores(&fusion), relevant), 1.0);
        }
    }

    #[test]
    fn without_any_gain_the_embedding_stays_alone() {
        let products = [product("ALPHA", "Cream"), product("BETA", "Cream")];
        let refs: Vec<&Product> = products.iter().collect();
        let lexicon = Lexicon::new(refs.iter().copied());
        let queries = vec![(
            Scored::new("alpha", vec![0.9, 0.1], &lexicon, &refs),
            vec![true, false],
        )];
        assert!(fit(&queries).is_dense_only());
        assert_eq!(nothing_close_below(&queries), 0.9);
    }

    #[test]
    fn ndcg_counts_relevant_products_beyond_the_top_ten() {
        let scores: Vec<f32> = (0..20).map(|i| -(i as f32)).collect();
        let relevant: Vec<bool> = (0..20).map(|i| i == 0 || i == 15).collect();
        let expected = 1.0 / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at_10(&scores, &relevant) - expected).abs() < 1e-9);
    }
}
