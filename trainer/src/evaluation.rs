//! The evaluation behind `trainer eval`: every protocol, every split, the
//! model beside its baselines, summarised as mean ± standard deviation.
//!
//! Skin types: the constant "suits all" predictor, TF-IDF + logistic
//! regression, frozen MiniLM + logistic regression, and Milih's skin-type
//! head. Retrieval (three query suites) and product-to-product neighbours:
//! random order, BM25, the frozen encoder's mean-pooled embedding, and
//! Milih's embedding head. Each split tunes the encoder's top layers over
//! cached lower-layer outputs (`tune.rs`), then fits the heads on pooled
//! features, so a split takes minutes, not the hours of a full fine-tune.
//!
//! `evaluate_split` is long because it is the recipe of one split, step by
//! step: fit, score every method on every suite, compare neighbours.

use crate::baselines::{bm25_scores, logistic, tfidf_logistic, unit_rows};
use crate::data::{Protocol, Split};
use crate::fsutil::{read, write_atomic};
use crate::fusion::{fit_ranking, Scored};
use crate::heads::{fit_heads, heads_from, skin_probabilities, FrozenEncoder};
use crate::metrics::{metrics, ndcg_per_query, retrieval, Retrieval};
use crate::options::TrainOptions;
use crate::queries::{
    held_out_suites, templated_queries, Facts, HeldOutSuite, Query, TEMPLATED_SUITES,
};
use crate::report::{
    intervals, markdown, method, neighbour_agreement, summarise, ClosenessCounts, FoldResult,
    ProtocolReport, Report,
};
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use milih_catalog::{Catalog, Product, SKIN_TYPES};
use milih_model::{l2_normalize, HybridConfig, TextEncoder};
use milih_rank::lexical::{Closeness, Lexicon, Ranking};
use milih_rank::likeness::brand_neutral_products;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// What every split shares: the catalog, its texts, the frozen encoder's
/// features of products, of the training queries and of every suite.
pub struct EvalData<'a> {
    pub catalog: &'a Catalog,
    pub facts: Vec<Facts<'a>>,
    pub config: HybridConfig,
    pub texts: Vec<String>,
    pub pooled: Tensor,
    pub training_queries: Vec<Query>,
    pub query_pooled: Tensor,
    /// Every benchmark suite: the templated ones (whose queries also train,
    /// over training products only), then the held-out ones.
    pub suites: Vec<SuiteData>,
    /// With `tune_layers > 0`: what each split's fine-tune starts from.
    pub tuning: Option<crate::tune::Tuning>,
    /// The tokenizer, which tells common words from names.
    pub text_encoder: TextEncoder,
}

/// One benchmark suite with its queries' frozen features.
pub struct SuiteData {
    pub name: String,
    pub queries: Vec<Query>,
    pub pooled: Tensor,
    /// Hand-written, never read by training or by the choice of settings.
    pub held_out: bool,
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
        let templated = templated_queries(catalog);
        let training_queries = training_queries(catalog, &templated, options);
        let query_texts: Vec<String> = training_queries.iter().map(|q| q.text.clone()).collect();
        let query_pooled = encoder.pooled(&query_texts, cache, "queries")?;
        let mut suites = Vec::new();
        for (index, name) in TEMPLATED_SUITES.iter().enumerate() {
            let queries: Vec<Query> = templated
                .iter()
                .filter(|(suite, _)| *suite == index)
                .map(|(_, q)| q.clone())
                .collect();
            suites.push(suite_data(encoder, name, queries, false, cache)?);
        }
        for HeldOutSuite { name, queries, .. } in held_out_suites().map_err(anyhow::Error::msg)? {
            suites.push(suite_data(encoder, name, queries, true, cache)?);
        }
        let mut config = encoder.engine.config().clone();
        config.embedding_dim = options.embedding_dim;
        config.lexical_features = options.lexical_features;
        config.ingredient_functions = options.ingredient_functions;
        let tuning = if options.tune_layers > 0 {
            let suite_texts: Vec<Vec<String>> = suites
                .iter()
                .map(|s: &SuiteData| s.queries.iter().map(|q| q.text.clone()).collect())
                .collect();
            Some(crate::tune::Tuning::prepare(
                &config,
                encoder.engine_tensors(),
                encoder.engine.encoder(),
                &texts,
                &query_texts,
                &suite_texts,
                options,
            )?)
        } else {
            None
        };
        Ok(Self {
            tuning,
            text_encoder: encoder.engine.encoder().clone(),
            catalog,
            facts: Facts::all(catalog),
            config,
            texts,
            pooled,
            training_queries,
            query_pooled,
            suites,
        })
    }
}

fn suite_data(
    encoder: &FrozenEncoder,
    name: &str,
    queries: Vec<Query>,
    held_out: bool,
    cache: &Path,
) -> Result<SuiteData> {
    let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
    let pooled = encoder.pooled(&texts, cache, name)?;
    Ok(SuiteData {
        name: name.to_owned(),
        queries,
        pooled,
        held_out,
    })
}

/// The embedding head's training queries: the templated benchmark queries
/// (relevance is only ever computed over training products), then the
/// generated phrasings, or with `phrasings = 0` every product's name.
pub fn training_queries(
    catalog: &Catalog,
    templated: &[(usize, Query)],
    options: &TrainOptions,
) -> Vec<Query> {
    let templated = templated.iter().map(|(_, q)| q.clone());
    if options.phrasings == 0 {
        templated
            .chain(catalog.products.iter().map(|p| {
                Query::named(
                    format!("{} {}", p.brand, p.name),
                    crate::queries::Need {
                        product: Some(p.id),
                        ..Default::default()
                    },
                )
            }))
            .collect()
    } else {
        templated
            .chain(crate::phrasings::training_queries(
                catalog,
                options.phrasings,
                options.seed,
            ))
            .collect()
    }
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
        let summary = summarise(&folds);
        reports.push(ProtocolReport {
            protocol,
            name: protocol.name(),
            intervals: intervals(context.catalog, &folds, &summary, options.seed),
            summary,
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

/// Product-to-product similarities as "Similar products" ranks them: the
/// house style of each brand among `ids` taken out first.
fn likeness_similarities(
    products: &Tensor,
    ids: &[usize],
    catalog: &Catalog,
) -> Result<Vec<Vec<f32>>> {
    let (n, dim) = products.dims2()?;
    let rows = products.flatten_all()?.to_vec1::<f32>()?;
    let neutral = brand_neutral_products(&rows, dim, ids.iter().map(|&i| &catalog.products[i]));
    let neutral = Tensor::from_vec(neutral, (n, dim), &Device::Cpu)?;
    similarities(&neutral, &neutral)
}

/// How often the page would say a suite's searches found nothing close or
/// named something missing, among queries with and without a relevant
/// held-out product.
fn closeness_counts(
    encoder: &TextEncoder,
    ranking: &Ranking,
    lexicon: &Lexicon,
    texts: &[String],
    scored: &[Scored],
    relevant: &[Vec<bool>],
) -> ClosenessCounts {
    let mut counts = ClosenessCounts::default();
    for ((text, scored), relevant) in texts.iter().zip(scored).zip(relevant) {
        let read = lexicon.analyze(text);
        let any_match = scored
            .extras
            .iter()
            .any(|(_, fields, _)| fields.iter().any(|&f| f > 0.0));
        let judged = ranking.closeness(&read, any_match, scored.best_dense(), |w| {
            encoder.is_whole_word(w)
        });
        let found = relevant.iter().any(|&r| r);
        let (queries, flagged) = if found {
            (&mut counts.with_relevant, &mut counts.with_relevant_flagged)
        } else {
            (
                &mut counts.without_relevant,
                &mut counts.without_relevant_flagged,
            )
        };
        *queries += 1;
        if judged != Closeness::Close {
            *flagged += 1;
        }
        if judged == Closeness::NothingClose {
            counts.nothing_close += 1;
        }
    }
    counts
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

    // Milih: both heads on frozen features, or on those of the encoder
    // fine-tuned on this split's training rows.
    let started = Instant::now();
    let tuned = match &context.tuning {
        Some(tuning) => {
            Some(tuning.run(&context.facts, split, &context.training_queries, options)?)
        }
        None => None,
    };
    let (pooled, query_pooled) = match &tuned {
        Some(t) => (&t.pooled, &t.query_pooled),
        None => (&context.pooled, &context.query_pooled),
    };
    let fitted = fit_heads(
        &context.config,
        &context.facts,
        &context.texts,
        pooled,
        split,
        &context.training_queries,
        query_pooled,
        options,
    )?;
    // How words and the embedding add up, fitted on training queries over
    // training products of brands set aside (never on a suite), then used
    // on the held-out products.
    let ranking = fit_ranking(context, pooled, query_pooled, split, options)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let heads = heads_from(&context.config, &fitted.tensors)?;
    let held_pooled = rows(pooled, held)?;
    let frozen_held = rows(&context.pooled, held)?;
    let milih_scores = skin_probabilities(&heads, pooled, &context.texts, held)?;

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

    let held_products: Vec<&Product> = held.iter().map(|&i| &catalog.products[i]).collect();
    let lexicon = Lexicon::new(held_products.iter().copied());

    // Retrieval over the held-out products, one query suite at a time.
    let milih_products = heads.embed(&held_pooled)?;
    let frozen_products = l2_normalize(&frozen_held)?;
    let mut retrieval_report = BTreeMap::new();
    let mut per_query_ndcg = BTreeMap::new();
    let mut closeness = BTreeMap::new();
    for (index, suite) in context.suites.iter().enumerate() {
        let texts: Vec<String> = suite.queries.iter().map(|q| q.text.clone()).collect();
        let milih_queries = match &tuned {
            Some(t) => &t.suites[index],
            None => &suite.pooled,
        };
        let dense = similarities(&heads.embed(milih_queries)?, &milih_products)?;
        let scored: Vec<Scored> = texts
            .iter()
            .zip(&dense)
            .map(|(text, row)| Scored::new(text, row.clone(), &lexicon, &held_products))
            .collect();
        let hybrid: Vec<Vec<f32>> = scored.iter().map(|s| s.scores(&ranking.fusion)).collect();
        let methods_scores = [
            (method::MILIH, hybrid),
            (method::MILIH_DENSE, dense),
            (
                method::FROZEN,
                similarities(&l2_normalize(&suite.pooled)?, &frozen_products)?,
            ),
            (method::BM25, bm25_scores(&held_texts, &texts)),
        ];
        let relevant: Vec<Vec<bool>> = suite
            .queries
            .iter()
            .map(|q| {
                held.iter()
                    .map(|&i| q.is_relevant(&context.facts[i]))
                    .collect()
            })
            .collect();
        let mut by_method = BTreeMap::new();
        let mut per_query = BTreeMap::new();
        for (name, scores) in &methods_scores {
            let r = retrieval(scores, &relevant, options.seed);
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
            per_query.insert(name.to_string(), ndcg_per_query(scores, &relevant));
        }
        closeness.insert(
            suite.name.clone(),
            closeness_counts(
                &context.text_encoder,
                &ranking,
                &lexicon,
                &texts,
                &scored,
                &relevant,
            ),
        );
        retrieval_report.insert(suite.name.clone(), by_method);
        per_query_ndcg.insert(suite.name.clone(), per_query);
    }

    // Product to product, among the held-out products.
    let mut neighbours = BTreeMap::new();
    for (name, scores) in [
        (
            method::MILIH,
            likeness_similarities(&milih_products, held, catalog)?,
        ),
        (
            method::MILIH_RAW,
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
            neighbour_agreement(&context.facts, held, &scores),
        );
    }

    Ok(FoldResult {
        held_out: held.clone(),
        classification,
        retrieval: retrieval_report,
        neighbours,
        milih_scores,
        tfidf_scores,
        frozen_lr_scores,
        per_query_ndcg,
        closeness,
        ranking,
        curve: fitted.curve,
        fit_seconds,
    })
}
