//! What `trainer eval` reports: per-split results, their summary as
//! mean ± standard deviation, Milih minus the best baseline with paired
//! bootstrap intervals, neighbour agreement, and the Markdown report.
//!
//! A tenth of it is tests; the rest is one table pipeline, split to
//! metrics, summary, intervals and Markdown.

use crate::bootstrap::{mean_difference, paired_interval, Interval};
use crate::data::Protocol;
use crate::heads::CurvePoint;
use crate::metrics::{metrics, Metrics, Retrieval};
use crate::options::TrainOptions;
use crate::queries::Facts;
use milih_catalog::{Catalog, SKIN_TYPES};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Method names, as they appear in reports.
pub mod method {
    pub const MILIH: &str = "Milih";
    pub const CONSTANT: &str = "constant \"suits all\"";
    pub const TFIDF: &str = "TF-IDF + LR";
    pub const FROZEN_LR: &str = "frozen MiniLM + LR";
    pub const RANDOM: &str = "random";
    pub const BM25: &str = "BM25";
    pub const FROZEN: &str = "frozen MiniLM";
    /// Milih's neighbours by the raw embedding, the brand's style kept
    /// (what "Similar products" ranked by before [`milih_rank::likeness`]).
    pub const MILIH_RAW: &str = "Milih, brand style kept";
    /// Milih's search by the embedding alone, without word matches and the
    /// concern boost ([`milih_rank::lexical::Fusion`]).
    pub const MILIH_DENSE: &str = "Milih, embedding only";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub mean: f64,
    pub sd: f64,
}

impl Stat {
    /// Mean and sample standard deviation (0 for a single value).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Self { mean, sd }
    }
}

impl std::fmt::Display for Stat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} ± {:.3}", self.mean, self.sd)
    }
}

/// Do a product's nearest neighbours share its type and skin profile?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbours {
    /// Share of the 10 nearest neighbours with the product's type.
    pub same_type_at_10: f64,
    /// Mean Jaccard similarity of skin-type label sets with the labeled
    /// neighbours among the 10 nearest.
    pub skin_jaccard_at_10: f64,
    /// Share of the 10 nearest neighbours from the product's brand.
    #[serde(default)]
    pub same_brand_at_10: f64,
    /// Share of the 10 nearest neighbours that contain one of the product's
    /// key actives (concern-lexicon ingredients), over products with any.
    #[serde(default)]
    pub shared_active_at_10: f64,
}

/// Everything measured on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    pub held_out: Vec<usize>,
    /// Skin-type metrics by method.
    pub classification: BTreeMap<String, Metrics>,
    /// Retrieval by suite, then by method.
    pub retrieval: BTreeMap<String, BTreeMap<String, Retrieval>>,
    pub neighbours: BTreeMap<String, Neighbours>,
    /// Held-out probabilities of Milih and of TF-IDF + LR (curves).
    pub milih_scores: Vec<Vec<f32>>,
    pub tfidf_scores: Vec<Vec<f32>>,
    #[serde(default)]
    pub frozen_lr_scores: Vec<Vec<f32>>,
    /// nDCG@10 of every query with a relevant held-out product, by suite
    /// and method (the paired bootstrap resamples these).
    #[serde(default)]
    pub per_query_ndcg: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    /// Per suite: how often the page would say "nothing close" or name a
    /// missing word.
    #[serde(default)]
    pub closeness: BTreeMap<String, ClosenessCounts>,
    /// The ranking fitted on this split's training queries.
    #[serde(default)]
    pub ranking: milih_rank::lexical::Ranking,
    pub curve: Vec<CurvePoint>,
    pub fit_seconds: f64,
}

/// Queries of one suite the page would flag (nothing close, or a word that
/// names nothing), among those with and without a relevant product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClosenessCounts {
    pub with_relevant: usize,
    pub with_relevant_flagged: usize,
    pub without_relevant: usize,
    pub without_relevant_flagged: usize,
    /// Of all, those judged "nothing close".
    pub nothing_close: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolReport {
    pub protocol: Protocol,
    pub name: String,
    pub folds: Vec<FoldResult>,
    /// Metric name → method → mean ± sd over the splits.
    pub summary: BTreeMap<String, BTreeMap<String, Stat>>,
    /// Metric name → Milih minus the best baseline, with a paired
    /// bootstrap 95 % interval.
    #[serde(default)]
    pub intervals: BTreeMap<String, Comparison>,
}

/// Milih against the best baseline of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: String,
    pub interval: Interval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub options: TrainOptions,
    pub products: usize,
    pub labeled: usize,
    pub protocols: Vec<ProtocolReport>,
}

/// [`Neighbours`] of the labeled products in `ids` among all of `ids`,
/// ranked by `scores` (ties, as in the all-zero "random" scores, by a fixed
/// shuffle-free rule: every other product counts equally).
pub fn neighbour_agreement(facts: &[Facts], ids: &[usize], scores: &[Vec<f32>]) -> Neighbours {
    const K: usize = 10;
    let jaccard = |a: [bool; 5], b: [bool; 5]| {
        let both = (0..5).filter(|&l| a[l] && b[l]).count() as f64;
        let either = (0..5).filter(|&l| a[l] || b[l]).count() as f64;
        if either == 0.0 {
            1.0
        } else {
            both / either
        }
    };
    let actives: Vec<Vec<&'static str>> = ids
        .iter()
        .map(|&i| {
            milih_rank::concerns::CONCERNS
                .iter()
                .flat_map(|c| c.matches(facts[i].product))
                .collect()
        })
        .collect();
    let (mut type_sum, mut skin_sum, mut brand_sum, mut active_sum) = (0.0, 0.0, 0.0, 0.0);
    let (mut counted, mut skin_counted, mut active_counted) = (0usize, 0usize, 0usize);
    for (a, &i) in ids.iter().enumerate() {
        let product = facts[i].product;
        let Some(labels) = product.skin_labels else {
            continue;
        };
        let all_tied = scores[a].iter().all(|&s| s == scores[a][0]);
        let mut others: Vec<usize> = (0..ids.len()).filter(|&b| b != a).collect();
        if !all_tied {
            others.sort_by(|&x, &y| scores[a][y].total_cmp(&scores[a][x]).then(x.cmp(&y)));
            others.truncate(K);
        }
        // With every score tied, the expectation over a random order is the
        // mean over all other products.
        let share = |same: &dyn Fn(usize) -> bool| {
            others.iter().filter(|&&b| same(b)).count() as f64 / others.len().max(1) as f64
        };
        type_sum += share(&|b| facts[ids[b]].product.product_type == product.product_type);
        brand_sum += share(&|b| facts[ids[b]].product.brand == product.brand);
        if !actives[a].is_empty() {
            active_sum += share(&|b| actives[b].iter().any(|x| actives[a].contains(x)));
            active_counted += 1;
        }
        let skins: Vec<f64> = others
            .iter()
            .filter_map(|&b| facts[ids[b]].product.skin_labels)
            .map(|other| jaccard(labels, other))
            .collect();
        counted += 1;
        if !skins.is_empty() {
            skin_sum += skins.iter().sum::<f64>() / skins.len() as f64;
            skin_counted += 1;
        }
    }
    Neighbours {
        same_type_at_10: type_sum / counted.max(1) as f64,
        skin_jaccard_at_10: skin_sum / skin_counted.max(1) as f64,
        same_brand_at_10: brand_sum / counted.max(1) as f64,
        shared_active_at_10: active_sum / active_counted.max(1) as f64,
    }
}

/// Milih minus the best baseline (by mean over the splits) for macro AUROC
/// and every suite's nDCG@10, with paired bootstrap intervals.
pub fn intervals(
    catalog: &Catalog,
    folds: &[FoldResult],
    summary: &BTreeMap<String, BTreeMap<String, Stat>>,
    seed: u64,
) -> BTreeMap<String, Comparison> {
    let best_baseline = |metric: &str, candidates: &[&str]| -> Option<String> {
        let stats = summary.get(metric)?;
        candidates
            .iter()
            .filter_map(|c| stats.get(*c).map(|s| (*c, s.mean)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| c.to_string())
    };
    let mut out = BTreeMap::new();
    let labels: Vec<String> = SKIN_TYPES.iter().map(|s| s.to_string()).collect();
    if let Some(baseline) = best_baseline("macro AUROC", &[method::TFIDF, method::FROZEN_LR]) {
        let scores_of = |f: &FoldResult| -> Vec<Vec<f32>> {
            if baseline == method::TFIDF {
                f.tfidf_scores.clone()
            } else {
                f.frozen_lr_scores.clone()
            }
        };
        let baseline_scores: Vec<Vec<Vec<f32>>> = folds.iter().map(scores_of).collect();
        let truths: Vec<Vec<Vec<bool>>> = folds
            .iter()
            .map(|f| {
                f.held_out
                    .iter()
                    .map(|&i| catalog.products[i].skin_labels.unwrap_or_default().to_vec())
                    .collect()
            })
            .collect();
        let usable = folds
            .iter()
            .zip(&baseline_scores)
            .all(|(f, b)| b.len() == f.held_out.len() && f.milih_scores.len() == f.held_out.len());
        let sizes: Vec<usize> = folds.iter().map(|f| f.held_out.len()).collect();
        let auroc = |scores: &[Vec<f32>], truth: &[Vec<bool>], units: &[usize]| {
            let s: Vec<Vec<f32>> = units.iter().map(|&u| scores[u].clone()).collect();
            let t: Vec<Vec<bool>> = units.iter().map(|&u| truth[u].clone()).collect();
            metrics(&labels, &s, &t).macro_auroc
        };
        if usable {
            if let Some(interval) = paired_interval(
                &sizes,
                |f, units| {
                    auroc(&folds[f].milih_scores, &truths[f], units)
                        - auroc(&baseline_scores[f], &truths[f], units)
                },
                seed,
            ) {
                out.insert("macro AUROC".to_string(), Comparison { baseline, interval });
            }
        }
    }
    let suites: Vec<String> = folds
        .first()
        .map(|f| f.per_query_ndcg.keys().cloned().collect())
        .unwrap_or_default();
    for suite in suites {
        let metric = format!("{suite}: nDCG@10");
        let Some(baseline) = best_baseline(&metric, &[method::BM25, method::FROZEN]) else {
            continue;
        };
        if let Some(c) = suite_interval(folds, &suite, method::MILIH_DENSE, seed) {
            out.insert(format!("{metric} {VERSUS_EMBEDDING}"), c);
        }
        if let Some(c) = suite_interval(folds, &suite, &baseline, seed) {
            out.insert(metric, c);
        }
    }
    out
}

/// The key suffix of a suite's "Milih minus its embedding alone" interval.
pub const VERSUS_EMBEDDING: &str = "vs embedding only";

/// Milih minus `baseline` on one suite's per-query nDCG@10, paired.
fn suite_interval(
    folds: &[FoldResult],
    suite: &str,
    baseline: &str,
    seed: u64,
) -> Option<Comparison> {
    let pairs: Vec<(&Vec<f64>, &Vec<f64>)> = folds
        .iter()
        .map(|f| {
            let by_method = f.per_query_ndcg.get(suite)?;
            Some((by_method.get(method::MILIH)?, by_method.get(baseline)?))
        })
        .collect::<Option<_>>()?;
    let sizes: Vec<usize> = pairs.iter().map(|(a, _)| a.len()).collect();
    let interval = paired_interval(
        &sizes,
        |f, units| mean_difference(pairs[f].0, pairs[f].1, units),
        seed,
    )?;
    Some(Comparison {
        baseline: baseline.to_owned(),
        interval,
    })
}

/// Metric → method → mean ± sd over the splits.
pub fn summarise(folds: &[FoldResult]) -> BTreeMap<String, BTreeMap<String, Stat>> {
    let mut values: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut add = |metric: String, method: &str, v: f64| {
        if v.is_finite() {
            values
                .entry(metric)
                .or_default()
                .entry(method.to_string())
                .or_default()
                .push(v);
        }
    };
    for fold in folds {
        for (m, metrics) in &fold.classification {
            add("macro-F1 @ 0.5".into(), m, metrics.macro_f1);
            add("macro AUROC".into(), m, metrics.macro_auroc);
            add("macro AP".into(), m, metrics.macro_ap);
        }
        for (suite, by_method) in &fold.retrieval {
            for (m, r) in by_method {
                add(format!("{suite}: nDCG@10"), m, r.ndcg_at_10);
                add(format!("{suite}: P@10"), m, r.precision_at_10);
                add(format!("{suite}: MRR"), m, r.mrr);
            }
        }
        for (m, n) in &fold.neighbours {
            // The raw-embedding neighbours get rows of their own under
            // Milih's column, beside the neighbours the page shows.
            let (rows, m) = if m == method::MILIH_RAW {
                ("neighbours, brand style kept", method::MILIH)
            } else {
                ("neighbours", m.as_str())
            };
            add(format!("{rows}: same type @10"), m, n.same_type_at_10);
            add(format!("{rows}: skin Jaccard @10"), m, n.skin_jaccard_at_10);
            add(format!("{rows}: same brand @10"), m, n.same_brand_at_10);
            add(
                format!("{rows}: shared key active @10"),
                m,
                n.shared_active_at_10,
            );
        }
    }
    values
        .into_iter()
        .map(|(metric, by_method)| {
            (
                metric,
                by_method
                    .into_iter()
                    .map(|(m, v)| (m, Stat::of(&v)))
                    .collect(),
            )
        })
        .collect()
}

/// The methods of each kind of metric, in column order.
fn columns(metric: &str) -> &'static [&'static str] {
    if metric.starts_with("macro") {
        &[
            method::MILIH,
            method::CONSTANT,
            method::TFIDF,
            method::FROZEN_LR,
        ]
    } else {
        &[
            method::MILIH,
            method::MILIH_DENSE,
            method::RANDOM,
            method::BM25,
            method::FROZEN,
        ]
    }
}

/// The report as Markdown: per protocol, one table of skin-type metrics and
/// one of retrieval and neighbour metrics, each method beside the others.
pub fn markdown(report: &Report) -> String {
    let mut md = format!(
        "# Milih evaluation\n\n{} products, {} with retailer skin-type labels. \
         Every number is the mean ± sample standard deviation over the splits \
         of its protocol; intervals are paired bootstrap 95 % intervals \
         ({} resamples of each split's queries or held-out products). Suites \
         marked \"held out\" are hand-written queries in `data/eval/` that no \
         training step and no choice of settings reads; the templated suites' \
         queries also train the embedding head, over training products only. \
         Model recipe: `{}`.\n",
        report.products,
        report.labeled,
        crate::bootstrap::RESAMPLES,
        serde_json::to_string(&report.options).unwrap_or_default()
    );
    for p in &report.protocols {
        let fit: f64 = p.folds.iter().map(|f| f.fit_seconds).sum();
        md.push_str(&format!(
            "\n## {}\n\n{} splits; {} held-out products per split on average; model fits took {:.1} s in all.\n",
            p.name,
            p.folds.len(),
            p.folds.iter().map(|f| f.held_out.len()).sum::<usize>() / p.folds.len().max(1),
            fit
        ));
        for group in [true, false] {
            let metrics: Vec<&String> = p
                .summary
                .keys()
                .filter(|m| m.starts_with("macro") == group)
                .collect();
            let Some(first) = metrics.first() else {
                continue;
            };
            let cols = columns(first);
            md.push_str(&format!(
                "\n| metric | {} | Milih − best baseline [95 % CI] | Milih − embedding only [95 % CI] |\n|---|",
                cols.join(" | ")
            ));
            md.push_str(&"---|".repeat(cols.len() + 2));
            md.push('\n');
            for metric in metrics {
                let row: Vec<String> = cols
                    .iter()
                    .map(|c| {
                        p.summary[metric]
                            .get(*c)
                            .map_or("—".into(), Stat::to_string)
                    })
                    .collect();
                let interval = p
                    .intervals
                    .get(metric)
                    .map_or("".into(), |c| format!("{} (vs {})", c.interval, c.baseline));
                let versus_embedding = p
                    .intervals
                    .get(&format!("{metric} {VERSUS_EMBEDDING}"))
                    .map_or("".into(), |c| c.interval.to_string());
                md.push_str(&format!(
                    "| {metric} | {} | {interval} | {versus_embedding} |\n",
                    row.join(" | ")
                ));
            }
        }
        md.push_str(&closeness_markdown(&p.folds));
    }
    md
}

/// What the page would say about each suite's searches, summed over the
/// splits, and the fusion weights each split fitted.
fn closeness_markdown(folds: &[FoldResult]) -> String {
    let mut totals: BTreeMap<&String, ClosenessCounts> = BTreeMap::new();
    for fold in folds {
        for (suite, c) in &fold.closeness {
            let t = totals.entry(suite).or_default();
            t.with_relevant += c.with_relevant;
            t.with_relevant_flagged += c.with_relevant_flagged;
            t.without_relevant += c.without_relevant;
            t.without_relevant_flagged += c.without_relevant_flagged;
            t.nothing_close += c.nothing_close;
        }
    }
    if totals.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\nSearches the page would flag (\"nothing close\", or a word that names nothing in \
         the held-out products), summed over the splits:\n\n\
         | suite | flagged, with a relevant product | flagged, without one | of which \"nothing close\" |\n|---|---|---|---|\n",
    );
    for (suite, t) in totals {
        md.push_str(&format!(
            "| {suite} | {} of {} | {} of {} | {} |\n",
            t.with_relevant_flagged,
            t.with_relevant,
            t.without_relevant_flagged,
            t.without_relevant,
            t.nothing_close
        ));
    }
    md.push_str("\nFitted per split (fields brand, name, ingredients; concern boost; \"nothing close\" below):\n\n");
    for (i, fold) in folds.iter().enumerate() {
        let r = &fold.ranking;
        md.push_str(&format!(
            "- split {}: {:?}; {}; {:.3}\n",
            i + 1,
            r.fusion.fields,
            r.fusion.concern,
            r.nothing_close_below
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_standard_deviation() {
        let s = Stat::of(&[1.0, 2.0, 3.0]);
        assert_eq!(s.mean, 2.0);
        assert_eq!(s.sd, 1.0);
        assert_eq!(Stat::of(&[0.5]).sd, 0.0);
        assert_eq!(s.to_string(), "2.000 ± 1.000");
    }

    fn product(id: usize, kind: &str, brand: &str, list: &str) -> milih_catalog::Product {
        milih_catalog::Product {
            id,
            product_type: kind.into(),
            brand: brand.into(),
            name: format!("P{id}"),
            price: 10.0,
            rating: 4.0,
            ingredients: Some(list.into()),
            skin_labels: Some([true; 5]),
        }
    }

    #[test]
    fn neighbours_count_type_brand_and_shared_actives() {
        let catalog = Catalog {
            products: vec![
                product(0, "Cleanser", "A", "Water, Salicylic Acid"),
                product(1, "Cleanser", "A", "Water, Glycerin"),
                product(2, "Cleanser", "B", "Water, Salicylic Acid"),
                product(3, "Mask", "B", "Kaolin"),
            ],
        };
        let facts = Facts::all(&catalog);
        let ids = [0, 1, 2, 3];
        // Everyone's nearest neighbours in id order: 10 nearest = all others.
        let scores: Vec<Vec<f32>> = (0..4)
            .map(|a| (0..4).map(|b| -((a as f32) - (b as f32)).abs()).collect())
            .collect();
        let n = neighbour_agreement(&facts, &ids, &scores);
        // Same brand: product 0 has 1 of 3, 1 has 1 of 3, 2 has 1 of 3, 3 has 1 of 3.
        assert!((n.same_brand_at_10 - 1.0 / 3.0).abs() < 1e-9);
        // Key actives: products 0 and 2 (salicylic acid) share with one of
        // three; product 3 (kaolin) with none; product 1 has none and is
        // not counted.
        assert!((n.shared_active_at_10 - (1.0 / 3.0 + 1.0 / 3.0 + 0.0) / 3.0).abs() < 1e-9);
        assert!((n.same_type_at_10 - (2.0 / 3.0 * 3.0) / 4.0).abs() < 1e-9);
    }
}
