//! The gentle fine-tune: the top layers of the encoder learn from the
//! training queries while the lower layers stay as pretrained.
//!
//! A thousand products and generated queries wreck a pretrained encoder
//! quickly: trained whole, it learns the phrasings and loses the language.
//! So only the top `tune_layers` layers learn, at a low rate, pulled toward
//! their pretrained weights (L2-SP), for a few hundred steps, with a
//! multi-positive contrastive loss between queries and whole products (all
//! windows pooled). The lower layers' outputs never change, so they are
//! computed once ([`Lowered`]) and each step runs only the top layers.

use crate::data::Split;
use crate::losses::multi_positive_nce;
use crate::optim::AdamW;
use crate::options::TrainOptions;
use crate::progress::progress_bar;
use crate::queries::{Facts, Kind, Query};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use milih_model::{l2_normalize, Hybrid, HybridConfig, Mode, TextEncoder, HEADS_PREFIX};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Lower-layer outputs of many texts: each window's real tokens only.
pub struct Lowered {
    hidden: usize,
    /// Per window: `(tokens, hidden)` row-major states.
    windows: Vec<Vec<f32>>,
    /// Per text: its windows' indices.
    by_text: Vec<Vec<usize>>,
}

impl Lowered {
    /// Runs the embeddings and the first `layers` layers of `model` over
    /// every window of every text (inference mode: no gradient).
    pub fn compute(
        model: &Hybrid,
        encoder: &TextEncoder,
        texts: &[String],
        max_windows: usize,
        layers: usize,
        what: &str,
    ) -> Result<Self> {
        let hidden = model.config().bert.hidden_size;
        let mut jobs: Vec<(usize, Vec<u32>)> = Vec::new();
        let mut by_text = vec![Vec::new(); texts.len()];
        for (t, text) in texts.iter().enumerate() {
            for ids in encoder.windows(text, max_windows)? {
                by_text[t].push(jobs.len());
                jobs.push((t, ids));
            }
        }
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by_key(|&j| jobs[j].1.len());
        let mut windows = vec![Vec::new(); jobs.len()];
        let bar = progress_bar(jobs.len() as u64, what);
        for chunk in order.chunks(16) {
            let ids: Vec<Vec<u32>> = chunk.iter().map(|&j| jobs[j].1.clone()).collect();
            let batch = milih_model::tokenize::batch_from_ids(&ids, &Device::Cpu)?;
            let states = model
                .encoder()
                .lower(&batch.input_ids, &batch.attention_mask, layers)?;
            let states = states.to_vec3::<f32>()?;
            for ((&j, rows), ids) in chunk.iter().zip(states).zip(&ids) {
                windows[j] = rows.into_iter().take(ids.len()).flatten().collect();
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(Self {
            hidden,
            windows,
            by_text,
        })
    }

    pub fn texts(&self) -> usize {
        self.by_text.len()
    }

    /// Mean-pooled output of layers `from..` for `texts` (indices), over
    /// all their windows: `(texts, hidden)`, with gradient in training mode.
    pub fn pooled_upper(
        &self,
        model: &Hybrid,
        texts: &[usize],
        from: usize,
        mode: Mode,
    ) -> Result<Tensor> {
        let device = Device::Cpu;
        let h = self.hidden;
        let windows: Vec<(usize, usize)> = texts
            .iter()
            .enumerate()
            .flat_map(|(row, &t)| self.by_text[t].iter().map(move |&w| (row, w)))
            .collect();
        let longest = windows
            .iter()
            .map(|&(_, w)| self.windows[w].len() / h)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut x = vec![0f32; windows.len() * longest * h];
        let mut mask = vec![0u32; windows.len() * longest];
        let mut owner = vec![0f32; texts.len() * windows.len()];
        for (i, &(row, w)) in windows.iter().enumerate() {
            let states = &self.windows[w];
            let tokens = states.len() / h;
            x[i * longest * h..i * longest * h + states.len()].copy_from_slice(states);
            mask[i * longest..i * longest + tokens].fill(1);
            owner[row * windows.len() + i] = 1.0;
        }
        let x = Tensor::from_vec(x, (windows.len(), longest, h), &device)?;
        let mask = Tensor::from_vec(mask, (windows.len(), longest), &device)?;
        let out = model.encoder().upper(&x, &mask, from, mode)?;
        let weights = milih_model::bert::mask_as_f32(&mask)?.unsqueeze(2)?;
        let sums = out.broadcast_mul(&weights)?.sum(1)?;
        let counts = weights.sum(1)?;
        let owner = Tensor::from_vec(owner, (texts.len(), windows.len()), &device)?;
        let sums = owner.matmul(&sums)?;
        let counts = owner.matmul(&counts)?.clamp(1.0, f64::MAX)?;
        Ok(sums.broadcast_div(&counts)?)
    }

    /// [`Lowered::pooled_upper`] of every text in inference mode, row-major.
    pub fn pooled_all(&self, model: &Hybrid, from: usize, what: &str) -> Result<Tensor> {
        let all: Vec<usize> = (0..self.texts()).collect();
        let bar = progress_bar(all.len() as u64, what);
        let mut parts = Vec::new();
        for chunk in all.chunks(8) {
            parts.push(self.pooled_upper(model, chunk, from, Mode::Infer)?);
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(Tensor::cat(&parts, 0)?)
    }
}

/// A hybrid whose weights are trainable variables holding `tensors`.
pub fn trainable(
    config: &HybridConfig,
    tensors: &HashMap<String, Tensor>,
) -> Result<(VarMap, Hybrid)> {
    let varmap = VarMap::new();
    let model = Hybrid::load(
        config,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )?;
    {
        let vars = varmap.data().lock().expect("var map lock");
        for (name, var) in vars.iter() {
            match tensors.get(name) {
                Some(t) => var.set(t)?,
                None if name.starts_with(HEADS_PREFIX) => {}
                None => bail!("no weight `{name}` to start the fine-tune from"),
            }
        }
    }
    Ok((varmap, model))
}

/// Whether weight `name` belongs to one of the top `tuned` of `layers`.
pub fn is_tuned(name: &str, layers: usize, tuned: usize) -> bool {
    (layers.saturating_sub(tuned)..layers).any(|l| name.starts_with(&format!("encoder.layer.{l}.")))
}

/// Fine-tunes the top `options.tune_layers` layers of `model` (whose
/// variables live in `varmap`) on the training products of `split`.
/// `queries` are the training queries with their lower-layer states in
/// `query_lower`; products' are in `product_lower` (catalog order).
#[allow(clippy::too_many_arguments)]
pub fn tune(
    varmap: &VarMap,
    model: &Hybrid,
    facts: &[Facts],
    split: &Split,
    queries: &[Query],
    query_lower: &Lowered,
    product_lower: &Lowered,
    options: &TrainOptions,
) -> Result<Vec<f64>> {
    let layers = model.num_layers();
    let from = layers.saturating_sub(options.tune_layers);
    // Each usable query with its relevant training products.
    let relevant: Vec<(usize, Vec<usize>)> = queries
        .iter()
        .enumerate()
        .map(|(q, query)| {
            let hits: Vec<usize> = split
                .train
                .iter()
                .copied()
                .filter(|&i| query.is_relevant(&facts[i]))
                .collect();
            (q, hits)
        })
        .filter(|(_, hits)| !hits.is_empty())
        .collect();
    if relevant.is_empty() {
        bail!("no training query has a relevant training product");
    }
    let descriptive: Vec<usize> = (0..relevant.len())
        .filter(|&r| queries[relevant[r].0].kind == Kind::Descriptive)
        .collect();
    let named: Vec<usize> = (0..relevant.len())
        .filter(|&r| queries[relevant[r].0].kind == Kind::Named)
        .collect();
    let tuned = |name: &str| is_tuned(name, layers, options.tune_layers);
    let mut optimizer = AdamW::new(varmap, 0.0, |name| f64::from(u8::from(tuned(name))))?;
    let pretrained: Vec<(Var, Tensor)> = varmap
        .data()
        .lock()
        .expect("var map lock")
        .iter()
        .filter(|(name, _)| tuned(name))
        .map(|(_, var)| Ok((var.clone(), var.as_tensor().copy()?)))
        .collect::<Result<_>>()?;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x7e4e);
    let steps = options.tune_steps;
    let mut curve = Vec::new();
    let bar = progress_bar(steps as u64, "fine-tuning the top layers");
    for step in 0..steps {
        // A quarter of the batch names brands or products, as in the heads'
        // loss, so that the layers learn to group alike products.
        let picks: Vec<usize> = (0..options.tune_batch)
            .map(|_| {
                let pool = if !named.is_empty() && (descriptive.is_empty() || rng.random_bool(0.25))
                {
                    &named
                } else {
                    &descriptive
                };
                *pool.choose(&mut rng).expect("non-empty pool")
            })
            .collect();
        let mut products: Vec<usize> = picks
            .iter()
            .map(|&r| *relevant[r].1.choose(&mut rng).expect("relevant products"))
            .collect();
        products.sort_unstable();
        products.dedup();
        let query_ids: Vec<usize> = picks.iter().map(|&r| relevant[r].0).collect();
        let relevance: Vec<f32> = query_ids
            .iter()
            .flat_map(|&q| {
                products
                    .iter()
                    .map(move |&p| f32::from(u8::from(queries[q].is_relevant(&facts[p]))))
            })
            .collect();
        let relevance =
            Tensor::from_vec(relevance, (query_ids.len(), products.len()), &Device::Cpu)?;
        let q = l2_normalize(&query_lower.pooled_upper(model, &query_ids, from, Mode::Train)?)?;
        let p = l2_normalize(&product_lower.pooled_upper(model, &products, from, Mode::Train)?)?;
        let nce = multi_positive_nce(&q, &p, &relevance, options.temperature)?;
        let mut pull = Tensor::new(0f32, &Device::Cpu)?;
        for (var, start) in &pretrained {
            pull = (pull + (var.as_tensor() - start)?.sqr()?.sum_all()?)?;
        }
        let loss = (&nce + (pull * options.tune_pull)?)?;
        let grads = loss.backward()?;
        let lr = options.tune_learning_rate * (1.0 - step as f64 / steps as f64);
        optimizer.step(&grads, lr)?;
        let value = nce.to_scalar::<f32>()? as f64;
        curve.push(value);
        bar.set_message(format!("nce {value:.3}"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(curve)
}

/// Everything a split's fine-tune starts from: the pretrained weights and
/// the lower layers' outputs for products, training queries and suites.
pub struct Tuning {
    config: HybridConfig,
    pretrained: HashMap<String, Tensor>,
    products: Lowered,
    queries: Lowered,
    suites: Vec<Lowered>,
}

/// Features of a fine-tuned encoder, as the frozen recipe's are of the
/// pretrained one, and its encoder weights.
pub struct TunedFeatures {
    pub pooled: Tensor,
    pub query_pooled: Tensor,
    pub suites: Vec<Tensor>,
    pub encoder: HashMap<String, Tensor>,
    pub curve: Vec<f64>,
}

impl Tuning {
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        config: &HybridConfig,
        pretrained: HashMap<String, Tensor>,
        encoder: &TextEncoder,
        texts: &[String],
        query_texts: &[String],
        suite_texts: &[Vec<String>],
        options: &TrainOptions,
    ) -> Result<Self> {
        let (_, model) = trainable(config, &pretrained)?;
        let below = model.num_layers().saturating_sub(options.tune_layers);
        let windows = config.max_windows;
        let products = Lowered::compute(
            &model,
            encoder,
            texts,
            windows,
            below,
            "products, lower layers",
        )?;
        let queries = Lowered::compute(
            &model,
            encoder,
            query_texts,
            1,
            below,
            "queries, lower layers",
        )?;
        let suites = suite_texts
            .iter()
            .map(|t| Lowered::compute(&model, encoder, t, 1, below, "suites, lower layers"))
            .collect::<Result<_>>()?;
        Ok(Self {
            config: config.clone(),
            pretrained,
            products,
            queries,
            suites,
        })
    }

    /// Fine-tunes from the pretrained weights on `split` and computes every
    /// feature with the result.
    pub fn run(
        &self,
        facts: &[Facts],
        split: &Split,
        queries: &[Query],
        options: &TrainOptions,
    ) -> Result<TunedFeatures> {
        let (varmap, model) = trainable(&self.config, &self.pretrained)?;
        let curve = tune(
            &varmap,
            &model,
            facts,
            split,
            queries,
            &self.queries,
            &self.products,
            options,
        )?;
        let from = model.num_layers().saturating_sub(options.tune_layers);
        let pooled = self
            .products
            .pooled_all(&model, from, "products, tuned layers")?;
        let query_pooled = self
            .queries
            .pooled_all(&model, from, "queries, tuned layers")?;
        let suites = self
            .suites
            .iter()
            .map(|s| s.pooled_all(&model, from, "suites, tuned layers"))
            .collect::<Result<_>>()?;
        let mut encoder = crate::base::tensors_of(&varmap);
        encoder.retain(|name, _| !name.starts_with(HEADS_PREFIX));
        Ok(TunedFeatures {
            pooled,
            query_pooled,
            suites,
            encoder,
            curve,
        })
    }
}
