//! The evaluation behind `trainer eval`: every protocol, every split, the
//! model beside its baselines, summarised as mean ± standard deviation.
//!
//! Skin types: the constant "suits all" predictor, TF-IDF + logistic
//! regression, frozen MiniLM + logistic regression, and Milih's skin-type
//! head. Retrieval (three query suites) and product-to-product neighbours:
//! random order, BM25, the frozen encoder's mean-pooled embedding, and
//! Milih's embedding head. The model is the frozen recipe, so every split
//! is fitted from cached encoder features in seconds.

use crate::baselines::{bm25_scores, logistic, tfidf_logistic, unit_rows};
use crate::data::{benchmark_queries, Protocol, Query, Split, SUITES};
use crate::fsutil::{read, write_atomic};
use crate::heads::{fit_heads, heads_from, lexical_matrix, CurvePoint, FrozenEncoder};
use crate::metrics::{metrics, retrieval, Metrics, Retrieval};
use crate::train::TrainOptions;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use milih_catalog::{Catalog, SKIN_TYPES};
use milih_model::{l2_normalize, HybridConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Method names, as they appear in reports.
pub mod method {
    pub const MILIH: &str = "Milih";
    pub const CONSTANT: &str = "constant \"suits all\"";
    pub const TFIDF: &str = "TF-IDF + LR";
    pub const FROZEN_LR: &str = "frozen MiniLM + LR";
    pub const RANDOM: &str = "random";
    pub const BM25: &str = "BM25";
    pub const FROZEN: &str = "frozen MiniLM";
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
    pub curve: Vec<CurvePoint>,
    pub fit_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolReport {
    pub protocol: Protocol,
    pub name: String,
    pub folds: Vec<FoldResult>,
    /// Metric name → method → mean ± sd over the splits.
    pub summary: BTreeMap<String, BTreeMap<String, Stat>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub options: TrainOptions,
    pub products: usize,
    pub labeled: usize,
    pub protocols: Vec<ProtocolReport>,
}

/// What every split shares: the catalog, its texts, the frozen encoder's
/// features of products and of every query.
pub struct EvalData<'a> {
    pub catalog: &'a Catalog,
    pub config: HybridConfig,
    pub texts: Vec<String>,
    pub pooled: Tensor,
    pub benchmark: Vec<(usize, Query)>,
    pub training_queries: Vec<Query>,
    pub query_pooled: Tensor,
    pub benchmark_pooled: Tensor,
}

impl<'a> EvalData<'a> {
    pub fn new(
        encoder: &FrozenEncoder,
        catalog: &'a Catalog,
        options: &TrainOptions,
        cache: &Path,
    ) -> Result<Self> {
        let texts: Vec<String> = catalog.products.iter().map(|p| p.model_text()).collect();
        let pooled = encoder.pooled(&texts, cache, "products")?;
        let benchmark = benchmark_queries(catalog);
        let training_queries = training_queries(catalog, &benchmark);
        let query_texts: Vec<String> = training_queries.iter().map(Query::text).collect();
        let query_pooled = encoder.pooled(&query_texts, cache, "queries")?;
        // The training queries start with the benchmark's, in order.
        let benchmark_pooled = query_pooled.narrow(0, 0, benchmark.len())?;
        let mut config = encoder.engine.config().clone();
        config.embedding_dim = options.embedding_dim;
        config.lexical_features = options.lexical_features;
        Ok(Self {
            catalog,
            config,
            texts,
            pooled,
            benchmark,
            training_queries,
            query_pooled,
            benchmark_pooled,
        })
    }
}

/// The embedding head's training queries: every benchmark query first
/// (relevance is only ever computed over training products), then every
/// product's name.
pub fn training_queries(catalog: &Catalog, benchmark: &[(usize, Query)]) -> Vec<Query> {
    benchmark
        .iter()
        .map(|(_, q)| q.clone())
        .chain(catalog.products.iter().map(|p| Query::Named {
            id: p.id,
            brand: p.brand.clone(),
            name: p.name.clone(),
        }))
        .collect()
}

/// Runs (or reads back) every split of every protocol and writes
/// `report.json` and `report.md` under `out`.
pub fn run(
    context: &EvalData,
    protocols: &[Protocol],
    options: &TrainOptions,
    out: &Path,
) -> Result<Report> {
    let mut reports = Vec::new();
    for &protocol in protocols {
        let dir = out.join(protocol.slug());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut folds = Vec::new();
        for (i, split) in protocol
            .splits(context.catalog, options.seed)
            .into_iter()
            .enumerate()
        {
            let path = dir.join(format!("fold-{}.json", i + 1));
            let fold: FoldResult = match read(&path) {
                Ok(bytes) => serde_json::from_slice(&bytes)
                    .with_context(|| format!("parsing {}", path.display()))?,
                Err(_) => {
                    eprintln!(
                        "{}: split {} — {} training, {} held out",
                        protocol.name(),
                        i + 1,
                        split.train.len(),
                        split.held_out.len()
                    );
                    let fold = evaluate_split(context, &split, options)?;
                    write_atomic(&path, &serde_json::to_vec(&fold)?)?;
                    fold
                }
            };
            folds.push(fold);
        }
        reports.push(ProtocolReport {
            protocol,
            name: protocol.name(),
            summary: summarise(&folds),
            folds,
        });
    }
    let report = Report {
        options: options.clone(),
        products: context.catalog.products.len(),
        labeled: context.catalog.labeled().count(),
        protocols: reports,
    };
    write_atomic(
        &out.join("report.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    // Curves of the honest protocol when it ran, else of the first.
    if let Some(shown) = report
        .protocols
        .iter()
        .find(|p| matches!(p.protocol, Protocol::BrandFolds { .. }))
        .or(report.protocols.first())
    {
        crate::plots::write_all(context.catalog, shown, out)?;
    }
    write_atomic(&out.join("report.md"), markdown(&report).as_bytes())?;
    Ok(report)
}

fn rows(tensor: &Tensor, ids: &[usize]) -> Result<Tensor> {
    let index = Tensor::new(
        ids.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        &Device::Cpu,
    )?;
    Ok(tensor.index_select(&index, 0)?)
}

fn similarities(queries: &Tensor, products: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(queries.matmul(&products.t()?)?.to_vec2::<f32>()?)
}

/// Fits the model and the baselines on `split.train` and scores
/// `split.held_out`.
pub fn evaluate_split(
    context: &EvalData,
    split: &Split,
    options: &TrainOptions,
) -> Result<FoldResult> {
    let catalog = context.catalog;
    let labels: Vec<String> = SKIN_TYPES.iter().map(|s| s.to_string()).collect();
    let held = &split.held_out;
    // Only the all-rows protocol holds out unlabeled products, and it
    // defines them as negatives.
    let truth: Vec<Vec<bool>> = held
        .iter()
        .map(|&i| catalog.products[i].skin_labels.unwrap_or_default().to_vec())
        .collect();
    let holds_out_unlabeled = held.iter().any(|&i| !catalog.products[i].is_labeled());

    // Milih: both heads on frozen features.
    let started = Instant::now();
    let fitted = fit_heads(
        &context.config,
        catalog,
        &context.texts,
        &context.pooled,
        split,
        &context.training_queries,
        &context.query_pooled,
        options,
    )?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let heads = heads_from(&context.config, &fitted.tensors)?;
    let held_pooled = rows(&context.pooled, held)?;
    let idf = match heads.idf() {
        Some(idf) => idf.to_vec1::<f32>()?,
        None => Vec::new(),
    };
    let held_lexical = lexical_matrix(held.iter().map(|&i| context.texts[i].as_str()), &idf)?;
    let milih_scores =
        candle_nn::ops::sigmoid(&heads.logits(&held_pooled, held_lexical.as_ref())?)?
            .to_vec2::<f32>()?;

    // Baselines. The classic ones learn from the rows their protocol
    // defines as training data: labeled rows, or on the all-rows protocol
    // every row with unlabeled ones as negatives.
    let baseline_train: Vec<usize> = split
        .train
        .iter()
        .copied()
        .filter(|&i| holds_out_unlabeled || catalog.products[i].is_labeled())
        .collect();
    let train_targets: Vec<Vec<bool>> = baseline_train
        .iter()
        .map(|&i| catalog.products[i].skin_labels.unwrap_or_default().to_vec())
        .collect();
    let pick = |ids: &[usize]| {
        ids.iter()
            .map(|&i| context.texts[i].clone())
            .collect::<Vec<_>>()
    };
    let held_texts = pick(held);
    let tfidf_scores = tfidf_logistic(&pick(&baseline_train), &train_targets, &held_texts)?;
    let hidden = context.config.bert.hidden_size;
    let frozen_rows = |ids: &[usize]| -> Result<_> {
        Ok(unit_rows(
            &rows(&context.pooled, ids)?
                .flatten_all()?
                .to_vec1::<f32>()?,
            hidden,
        ))
    };
    let frozen_lr_scores = logistic(
        frozen_rows(&baseline_train)?,
        &train_targets,
        frozen_rows(held)?,
    )?;
    let ones: Vec<Vec<f32>> = truth.iter().map(|t| vec![1.0; t.len()]).collect();
    let mut classification = BTreeMap::new();
    for (name, scores) in [
        (method::MILIH, &milih_scores),
        (method::CONSTANT, &ones),
        (method::TFIDF, &tfidf_scores),
        (method::FROZEN_LR, &frozen_lr_scores),
    ] {
        classification.insert(name.to_string(), metrics(&labels, scores, &truth));
    }

    // Retrieval over the held-out products, one query suite at a time.
    let milih_products = heads.embed(&held_pooled)?;
    let frozen_products = l2_normalize(&held_pooled)?;
    let milih_queries = heads.embed(&context.benchmark_pooled)?;
    let frozen_queries = l2_normalize(&context.benchmark_pooled)?;
    let benchmark_texts: Vec<String> = context.benchmark.iter().map(|(_, q)| q.text()).collect();
    let methods_scores = [
        (
            method::MILIH,
            similarities(&milih_queries, &milih_products)?,
        ),
        (
            method::FROZEN,
            similarities(&frozen_queries, &frozen_products)?,
        ),
        (method::BM25, bm25_scores(&held_texts, &benchmark_texts)),
    ];
    let mut retrieval_report = BTreeMap::new();
    for (suite, suite_name) in SUITES.iter().enumerate() {
        let in_suite: Vec<usize> = (0..context.benchmark.len())
            .filter(|&q| context.benchmark[q].0 == suite)
            .collect();
        let relevant: Vec<Vec<bool>> = in_suite
            .iter()
            .map(|&q| {
                held.iter()
                    .map(|&i| context.benchmark[q].1.is_relevant(&catalog.products[i]))
                    .collect()
            })
            .collect();
        let mut by_method = BTreeMap::new();
        for (name, scores) in &methods_scores {
            let scores: Vec<Vec<f32>> = in_suite.iter().map(|&q| scores[q].clone()).collect();
            let r = retrieval(&scores, &relevant, options.seed);
            if *name == method::MILIH {
                by_method.insert(
                    method::RANDOM.to_string(),
                    Retrieval {
                        ndcg_at_10: r.random_ndcg_at_10,
                        precision_at_10: r.random_precision_at_10,
                        mrr: r.random_mrr,
                        ..r.clone()
                    },
                );
            }
            by_method.insert(name.to_string(), r);
        }
        retrieval_report.insert(suite_name.to_string(), by_method);
    }

    // Product to product, among the held-out products.
    let mut neighbours = BTreeMap::new();
    for (name, scores) in [
        (
            method::MILIH,
            similarities(&milih_products, &milih_products)?,
        ),
        (
            method::FROZEN,
            similarities(&frozen_products, &frozen_products)?,
        ),
        (method::BM25, bm25_scores(&held_texts, &held_texts)),
        (method::RANDOM, vec![vec![0.0; held.len()]; held.len()]),
    ] {
        neighbours.insert(
            name.to_string(),
            neighbour_agreement(catalog, held, &scores),
        );
    }

    Ok(FoldResult {
        held_out: held.clone(),
        classification,
        retrieval: retrieval_report,
        neighbours,
        milih_scores,
        tfidf_scores,
        curve: fitted.curve,
        fit_seconds,
    })
}

/// [`Neighbours`] of the labeled products in `ids` among all of `ids`,
/// ranked by `scores` (ties, as in the all-zero "random" scores, by a fixed
/// shuffle-free rule: every other product counts equally).
pub fn neighbour_agreement(catalog: &Catalog, ids: &[usize], scores: &[Vec<f32>]) -> Neighbours {
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
    let (mut type_sum, mut skin_sum, mut counted, mut skin_counted) = (0.0, 0.0, 0usize, 0usize);
    for (a, &i) in ids.iter().enumerate() {
        let Some(labels) = catalog.products[i].skin_labels else {
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
        let same_type = others
            .iter()
            .filter(|&&b| catalog.products[ids[b]].product_type == catalog.products[i].product_type)
            .count() as f64
            / others.len().max(1) as f64;
        let skins: Vec<f64> = others
            .iter()
            .filter_map(|&b| catalog.products[ids[b]].skin_labels)
            .map(|other| jaccard(labels, other))
            .collect();
        type_sum += same_type;
        counted += 1;
        if !skins.is_empty() {
            skin_sum += skins.iter().sum::<f64>() / skins.len() as f64;
            skin_counted += 1;
        }
    }
    Neighbours {
        same_type_at_10: type_sum / counted.max(1) as f64,
        skin_jaccard_at_10: skin_sum / skin_counted.max(1) as f64,
    }
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
            add("neighbours: same type @10".into(), m, n.same_type_at_10);
            add(
                "neighbours: skin Jaccard @10".into(),
                m,
                n.skin_jaccard_at_10,
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
        &[method::MILIH, method::RANDOM, method::BM25, method::FROZEN]
    }
}

/// The report as Markdown: per protocol, one table of skin-type metrics and
/// one of retrieval and neighbour metrics, each method beside the others.
pub fn markdown(report: &Report) -> String {
    let mut md = format!(
        "# Milih evaluation\n\n{} products, {} with retailer skin-type labels. \
         Every number is the mean ± sample standard deviation over the splits \
         of its protocol. Model recipe: `{}`.\n",
        report.products,
        report.labeled,
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
            md.push_str(&format!("\n| metric | {} |\n|---|", cols.join(" | ")));
            md.push_str(&"---|".repeat(cols.len()));
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
                md.push_str(&format!("| {metric} | {} |\n", row.join(" | ")));
            }
        }
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
}
