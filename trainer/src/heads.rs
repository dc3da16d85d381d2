//! The frozen recipe: the encoder stays as pretrained and only the heads
//! learn, on cached pooled features of whole texts plus TF-IDF word
//! features. A fit takes seconds, so every fold and seed of an evaluation
//! can afford it.

use crate::base::{from_base, tensors_of};
use crate::data::Split;
use crate::features::{file_sha256, pooled_cached};
use crate::losses::{masked_bce, per_query_nce};
use crate::optim::AdamW;
use crate::options::TrainOptions;
use crate::queries::{Facts, Kind, Query};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use milih_catalog::Product;
use milih_model::lexical::{self, inverse_document_frequency};
use milih_model::{Engine, Heads, HybridConfig, HEADS_PREFIX, LEXICAL_IDF};
use std::collections::HashMap;
use std::path::Path;

/// The pretrained encoder, ready to produce (cached) pooled features.
pub struct FrozenEncoder {
    pub engine: Engine,
    tensors: HashMap<String, Tensor>,
    identity: String,
}

impl FrozenEncoder {
    pub fn load(base: &Path, options: &TrainOptions) -> Result<Self> {
        let device = Device::Cpu;
        let initial = from_base(base, options, &device)?;
        let tensors = tensors_of(&initial.varmap);
        let engine = Engine::new(initial.config, initial.encoder, tensors.clone())?;
        Ok(Self {
            engine,
            tensors,
            identity: file_sha256(&base.join("model.safetensors"))?,
        })
    }

    /// Every weight of the engine (encoder and untrained heads).
    pub fn engine_tensors(&self) -> HashMap<String, Tensor> {
        self.tensors.clone()
    }

    pub fn hidden(&self) -> usize {
        self.engine.config().bert.hidden_size
    }

    /// `(texts, hidden)` pooled features.
    pub fn pooled(&self, texts: &[String], cache: &Path, what: &str) -> Result<Tensor> {
        let rows = pooled_cached(&self.engine, &self.identity, texts, cache, what)?;
        Ok(Tensor::from_vec(
            rows,
            (texts.len(), self.hidden()),
            &Device::Cpu,
        )?)
    }
}

/// One point of a training curve.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    pub classification_loss: f64,
    pub contrastive_loss: f64,
}

/// Fitted head weights (`heads.*` names) and their training curve.
pub struct FittedHeads {
    pub tensors: HashMap<String, Tensor>,
    pub curve: Vec<CurvePoint>,
}

/// Learning rate of the skin-type head: it is a logistic regression on
/// fixed features, convex and fitted on the full batch, so it takes far
/// larger steps than anything inside the encoder.
const CLASSIFIER_LEARNING_RATE: f64 = 0.05;

/// Weight of all name queries together, relative to all descriptive ones.
const NAMED_SHARE: f32 = 0.25;

/// Fits both heads on frozen features.
///
/// `facts` are the catalog's products (what relevance reads of each), `pooled`
/// every product's pooled encoder output (rows in catalog order), `queries` and `query_pooled` the synthetic training queries. Only
/// `split.train` is read: labels of labeled training products for the
/// skin-type head (an L2-penalised logistic regression, unlabeled products
/// masked out) and query relevance over all training products for the
/// embedding head (multi-positive InfoNCE over the whole training set).
#[allow(clippy::too_many_arguments)]
pub fn fit_heads(
    config: &HybridConfig,
    facts: &[Facts],
    texts: &[String],
    pooled: &Tensor,
    split: &Split,
    queries: &[Query],
    query_pooled: &Tensor,
    options: &TrainOptions,
) -> Result<FittedHeads> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let heads = Heads::load(
        config,
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
    )?;
    milih_model::init::init_weights(&varmap, options.seed, |_| false)?;
    let train_texts = split.train.iter().map(|&i| texts[i].as_str());
    let idf = inverse_document_frequency(train_texts, config.lexical_features);
    if config.lexical_features > 0 {
        let vars = varmap.data().lock().expect("var map lock");
        vars[LEXICAL_IDF].set(&Tensor::new(idf.as_slice(), &device)?)?;
    }

    let labeled: Vec<usize> = split
        .train
        .iter()
        .copied()
        .filter(|&i| facts[i].product.is_labeled())
        .collect();
    let labeled_products: Vec<&Product> = labeled.iter().map(|&i| facts[i].product).collect();
    let labeled_index = Tensor::new(
        labeled.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        &device,
    )?;
    let labeled_pooled = pooled.index_select(&labeled_index, 0)?;
    let labeled_lexical = lexical_matrix(
        labeled.iter().map(|&i| texts[i].as_str()),
        &idf,
        config.ingredient_functions,
    )?;

    // Relevance of every training query to every training product; queries
    // with no relevant training product teach nothing and are dropped.
    let train_index = Tensor::new(
        split.train.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        &device,
    )?;
    let train_pooled = pooled.index_select(&train_index, 0)?;
    let train_facts: Vec<&Facts> = split.train.iter().map(|&i| &facts[i]).collect();
    let mut kept = Vec::new();
    let mut relevance = Vec::new();
    let mut weights = Vec::new();
    // Named queries (brands, one per product) left unweighted would
    // outnumber the descriptive ones and teach the head to tell every
    // product apart rather than to group alike ones.
    let named = queries.iter().filter(|q| q.kind == Kind::Named).count();
    let descriptive = queries.len() - named;
    let named_weight = NAMED_SHARE * descriptive as f32 / named.max(1) as f32;
    for (q, query) in queries.iter().enumerate() {
        let row: Vec<f32> = train_facts
            .iter()
            .map(|f| f32::from(u8::from(query.is_relevant(f))))
            .collect();
        if row.iter().any(|&r| r > 0.0) {
            kept.push(q as u32);
            relevance.extend(row);
            weights.push(match query.kind {
                Kind::Named => named_weight,
                Kind::Descriptive => 1.0,
            });
        }
    }
    // Product to product: each training product with key actives asks for
    // the training products of its type that share one of them (itself
    // included), so neighbours follow the formula rather than the brand.
    let actives = key_actives(&train_facts);
    let anchors: Vec<usize> = (0..split.train.len())
        .filter(|&a| !actives[a].is_empty())
        .collect();
    let pair_weight = if anchors.is_empty() {
        0.0
    } else {
        options.pair_share as f32 * descriptive as f32 / anchors.len() as f32
    };
    for &a in &anchors {
        let kind = &train_facts[a].product.product_type;
        relevance.extend((0..split.train.len()).map(|b| {
            let related = a == b
                || (train_facts[b].product.product_type == *kind
                    && actives[b].iter().any(|x| actives[a].contains(x)));
            f32::from(u8::from(related))
        }));
        weights.push(pair_weight);
    }
    let total_weight: f32 = weights.iter().sum();
    let count = weights.len();
    let weights = (Tensor::from_vec(weights, count, &device)? / total_weight.max(1e-9) as f64)?;
    let rows = kept.len() + anchors.len();
    let relevance = Tensor::from_vec(relevance, (rows, split.train.len()), &device)?;
    let mut parts = Vec::new();
    if !kept.is_empty() {
        parts.push(query_pooled.index_select(&Tensor::new(kept.as_slice(), &device)?, 0)?);
    }
    if !anchors.is_empty() {
        let anchors: Vec<u32> = anchors.iter().map(|&a| a as u32).collect();
        parts.push(train_pooled.index_select(&Tensor::new(anchors.as_slice(), &device)?, 0)?);
    }
    let query_pooled = if parts.is_empty() {
        Tensor::zeros((0, pooled.dim(1)?), DType::F32, &device)?
    } else {
        Tensor::cat(&parts, 0)?
    };

    let classifier_scale = CLASSIFIER_LEARNING_RATE / options.projector_learning_rate;
    let mut optimizer = AdamW::new(&varmap, 0.0, |name| {
        if name == LEXICAL_IDF {
            0.0
        } else if name.contains("classifier") {
            classifier_scale
        } else {
            1.0
        }
    })?;
    let classifier_weight = varmap.data().lock().expect("var map lock")
        [&format!("{HEADS_PREFIX}.classifier.weight")]
        .as_tensor()
        .clone();
    // sklearn's C = 1 on the summed loss, expressed per labeled entry.
    let l2 = 1.0 / (2.0 * labeled.len().max(1) as f64 * config.labels.len() as f64);
    let steps = options.head_steps;
    let mut curve = Vec::new();
    for step in 0..steps {
        let logits = heads.logits(&labeled_pooled, labeled_lexical.as_ref())?;
        let bce = masked_bce(&logits, &labeled_products, &device)?;
        let penalty = (classifier_weight.sqr()?.sum_all()? * l2)?;
        let nce = if rows == 0 || options.contrastive_weight == 0.0 {
            Tensor::new(0f32, &device)?
        } else {
            (per_query_nce(
                &heads.embed(&query_pooled)?,
                &heads.embed(&train_pooled)?,
                &relevance,
                options.temperature,
            )? * &weights)?
                .sum_all()?
        };
        let loss = ((&bce + penalty)? + (&nce * options.contrastive_weight)?)?;
        let grads = loss.backward()?;
        // Linear decay to zero: the last steps settle rather than jitter.
        let lr = options.projector_learning_rate * (1.0 - step as f64 / steps as f64);
        optimizer.step(&grads, lr)?;
        if step % 10 == 0 || step + 1 == steps {
            curve.push(CurvePoint {
                step: step + 1,
                classification_loss: bce.to_scalar::<f32>()? as f64,
                contrastive_loss: nce.to_scalar::<f32>()? as f64,
            });
        }
    }
    Ok(FittedHeads {
        tensors: tensors_of(&varmap),
        curve,
    })
}

/// `(texts, width)` text-feature rows (TF-IDF over `idf`, then ingredient
/// functions when `functions`), or `None` when the head reads neither.
pub fn lexical_matrix<'a>(
    texts: impl ExactSizeIterator<Item = &'a str>,
    idf: &[f32],
    functions: bool,
) -> Result<Option<Tensor>> {
    let width = idf.len()
        + if functions {
            milih_model::functions::FUNCTION_FEATURES
        } else {
            0
        };
    if width == 0 {
        return Ok(None);
    }
    let n = texts.len();
    let rows: Vec<f32> = texts
        .flat_map(|t| lexical::text_features(t, idf, functions))
        .collect();
    Ok(Some(Tensor::from_vec(rows, (n, width), &Device::Cpu)?))
}

/// Skin-type probabilities of the products `ids` (rows of `pooled` and
/// `texts`, in catalog order) under fitted `heads`.
pub fn skin_probabilities(
    heads: &Heads,
    pooled: &Tensor,
    texts: &[String],
    ids: &[usize],
) -> Result<Vec<Vec<f32>>> {
    let idf = match heads.idf() {
        Some(idf) => idf.to_vec1::<f32>()?,
        None => Vec::new(),
    };
    let lexical = lexical_matrix(
        ids.iter().map(|&i| texts[i].as_str()),
        &idf,
        heads.reads_functions(),
    )?;
    let index = Tensor::new(
        ids.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        &Device::Cpu,
    )?;
    let logits = heads.logits(&pooled.index_select(&index, 0)?, lexical.as_ref())?;
    Ok(candle_nn::ops::sigmoid(&logits)?.to_vec2::<f32>()?)
}

/// Heads rebuilt from fitted tensors, to score cached features.
pub fn heads_from(config: &HybridConfig, tensors: &HashMap<String, Tensor>) -> Result<Heads> {
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
    Ok(Heads::load(config, vb)?)
}

/// The concern-lexicon ingredients each product's list contains.
fn key_actives(facts: &[&Facts]) -> Vec<Vec<&'static str>> {
    facts
        .iter()
        .map(|f| {
            let mut found: Vec<&'static str> = milih_rank::concerns::CONCERNS
                .iter()
                .flat_map(|c| c.matches(f.product))
                .collect();
            found.sort_unstable();
            found.dedup();
            found
        })
        .collect()
}
