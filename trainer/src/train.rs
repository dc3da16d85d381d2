//! Fine-tuning the hybrid: masked multi-label BCE on the skin-type head plus
//! a multi-positive contrastive loss between synthetic queries and products
//! on the embedding head. Checkpoints after every epoch; `--resume` picks up
//! the last one.

use crate::data::{query_for, split, Split};
use crate::fsutil::{read, replace_dir_atomic, write_atomic};
use crate::metrics::{evaluate, retrieval, Evaluation};
use crate::optim::AdamW;
use crate::queries::Facts;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{VarBuilder, VarMap};
use indicatif::{ProgressBar, ProgressStyle};
use milih_catalog::{Catalog, SKIN_TYPES};
use milih_model::tokenize::batch_from_ids;
use milih_model::{BertConfig, Engine, Hybrid, HybridConfig, Mode, TextEncoder, HEADS_PREFIX};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything that decides the outcome of a run (saved with it, and reused
/// on `--resume`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    pub epochs: usize,
    /// Stop after this many optimizer steps in all (for quick runs).
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    pub max_length: usize,
    /// Windows of `max_length` tokens read per product (frozen recipe).
    #[serde(default = "one")]
    pub max_windows: usize,
    /// Hashed TF-IDF buckets the skin-type head reads (frozen recipe).
    #[serde(default)]
    pub lexical_features: usize,
    /// The skin-type head also reads ingredient-function features (frozen
    /// recipe).
    #[serde(default)]
    pub ingredient_functions: bool,
    /// Fine-tune the whole encoder, or fit the heads on a frozen one.
    #[serde(default)]
    pub recipe: Recipe,
    /// Optimizer steps of the heads in the frozen recipe.
    #[serde(default = "default_head_steps")]
    pub head_steps: usize,
    /// Learning rate of the embedding head in the frozen recipe: small, as
    /// it starts from the identity and the pretrained geometry is worth
    /// keeping.
    #[serde(default = "default_projector_learning_rate")]
    pub projector_learning_rate: f64,
    pub embedding_dim: usize,
    pub learning_rate: f64,
    pub head_learning_rate: f64,
    pub weight_decay: f64,
    /// Embeddings and this many lower encoder layers get no gradient.
    pub freeze_layers: usize,
    pub held_out_fraction: f64,
    pub contrastive_weight: f64,
    pub temperature: f64,
    pub seed: u64,
    /// Phrasings drawn per training intent for the embedding head (0: the
    /// templated benchmark queries and product names only, as runs before
    /// the phrasings had).
    #[serde(default)]
    pub phrasings: usize,
    /// Weight of all product-to-product pairs together (same type, shared
    /// key active), relative to all descriptive queries (0: none).
    #[serde(default)]
    pub pair_share: f64,
    /// Fine-tune this many top encoder layers before fitting the heads (0:
    /// the encoder stays as pretrained). See [`crate::tune`].
    #[serde(default)]
    pub tune_layers: usize,
    /// Optimizer steps, queries per step, learning rate and pull toward
    /// the pretrained weights of that fine-tune.
    #[serde(default = "default_tune_steps")]
    pub tune_steps: usize,
    #[serde(default = "default_tune_batch")]
    pub tune_batch: usize,
    #[serde(default = "default_tune_learning_rate")]
    pub tune_learning_rate: f64,
    #[serde(default = "default_tune_pull")]
    pub tune_pull: f64,
}

fn default_tune_steps() -> usize {
    TrainOptions::default().tune_steps
}
fn default_tune_batch() -> usize {
    TrainOptions::default().tune_batch
}
fn default_tune_learning_rate() -> f64 {
    TrainOptions::default().tune_learning_rate
}
fn default_tune_pull() -> f64 {
    TrainOptions::default().tune_pull
}

/// How the encoder is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// The encoder stays as pretrained; the heads are fitted on its cached
    /// features of whole texts (all windows) and on TF-IDF word features.
    #[default]
    Frozen,
    /// Encoder and heads trained together on the first window of each text.
    FineTune,
}

fn one() -> usize {
    1
}

fn default_projector_learning_rate() -> f64 {
    TrainOptions::default().projector_learning_rate
}

fn default_head_steps() -> usize {
    TrainOptions::default().head_steps
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 3,
            max_steps: None,
            batch_size: 16,
            max_length: 128,
            max_windows: 4,
            lexical_features: 8192,
            ingredient_functions: true,
            recipe: Recipe::Frozen,
            head_steps: 400,
            projector_learning_rate: 3e-5,
            embedding_dim: 384,
            learning_rate: 5e-5,
            head_learning_rate: 1e-3,
            weight_decay: 0.01,
            freeze_layers: 0,
            held_out_fraction: 0.15,
            contrastive_weight: 1.0,
            temperature: 0.05,
            seed: 42,
            phrasings: 4,
            pair_share: 0.5,
            tune_layers: 0,
            tune_steps: 200,
            tune_batch: 16,
            tune_learning_rate: 2e-5,
            tune_pull: 0.1,
        }
    }
}

/// One finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub steps: usize,
    pub classification_loss: f64,
    pub contrastive_loss: f64,
    pub seconds: f64,
    pub sequences_per_second: f64,
    pub held_out: Evaluation,
}

/// What `train` leaves in the run directory's `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub options: TrainOptions,
    pub train_products: usize,
    pub held_out_products: usize,
    pub history: Vec<EpochRecord>,
    pub training_seconds: f64,
}

impl TrainReport {
    pub fn final_evaluation(&self) -> Option<&Evaluation> {
        self.history.last().map(|r| &r.held_out)
    }
}

/// Files of a run directory.
pub mod run_files {
    pub const OPTIONS: &str = "options.json";
    pub const MODEL: &str = "model.safetensors";
    pub const CONFIG: &str = "config.json";
    pub const TOKENIZER: &str = "tokenizer.json";
    pub const METRICS: &str = "metrics.json";
    pub const SPLIT: &str = "split.json";
    /// What the skin-type probabilities mean ([`milih_rank::skin`]).
    pub const SKIN_ANSWERS: &str = "skin-answers.json";
    pub const CHECKPOINTS: &str = "checkpoints";
}

/// Checkpoint contents.
const CKPT_MODEL: &str = "model.safetensors";
const CKPT_OPTIMIZER: &str = "optimizer.safetensors";
const CKPT_STATE: &str = "state.json";

#[derive(Serialize, Deserialize)]
struct CheckpointState {
    epoch: usize,
    step: usize,
    history: Vec<EpochRecord>,
    training_seconds: f64,
}

/// Trains from the base checkpoint in `base` (a directory with
/// `config.json`, `tokenizer.json`, `model.safetensors`) on `catalog`,
/// writing checkpoints and the final model to `out`.
pub fn train(
    base: &Path,
    catalog: &Catalog,
    out: &Path,
    options: TrainOptions,
    resume: bool,
) -> Result<TrainReport> {
    train_on_split(base, catalog, out, options, resume, None)
}

/// [`train`] on a given split (an evaluation fold) instead of the seeded
/// held-out split of `options`.
pub fn train_on_split(
    base: &Path,
    catalog: &Catalog,
    out: &Path,
    options: TrainOptions,
    resume: bool,
    given_split: Option<Split>,
) -> Result<TrainReport> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let options = settle_options(out, options, resume)?;
    if options.recipe == Recipe::Frozen {
        // A frozen fit takes seconds once the features are cached: there is
        // nothing to resume, it simply runs again.
        return train_frozen(base, catalog, out, options, given_split);
    }
    if options.max_windows != 1 || options.lexical_features != 0 || options.ingredient_functions {
        bail!("the fine-tune recipe reads one window and no lexical or ingredient-function features: pass --max-windows 1 --lexical-features 0 --ingredient-functions false");
    }
    let device = Device::Cpu;

    let Initial {
        config,
        tokenizer_json,
        encoder,
        mut varmap,
        model,
    } = from_base(base, &options, &device)?;
    let mut optimizer = fine_tune_optimizer(&varmap, &options)?;

    let split = settle_split(out, catalog, &options, given_split)?;
    let ids: Vec<Vec<u32>> = catalog
        .products
        .iter()
        .map(|p| encoder.ids(&p.model_text()))
        .collect::<Result<_, _>>()?;

    let mut history = Vec::new();
    let mut start_epoch = 1;
    let mut training_seconds = 0.0;
    if resume {
        if let Some((dir, state)) = latest_checkpoint(out)? {
            varmap
                .load(dir.join(CKPT_MODEL))
                .with_context(|| format!("loading {}", dir.display()))?;
            let moments = candle_core::safetensors::load(dir.join(CKPT_OPTIMIZER), &device)?;
            optimizer.restore(moments, state.step)?;
            start_epoch = state.epoch + 1;
            history = state.history;
            training_seconds = state.training_seconds;
            eprintln!("resuming after epoch {} (step {})", state.epoch, state.step);
        }
    }

    let batches_per_epoch = split.train.len().div_ceil(options.batch_size);
    let total_steps =
        (options.epochs * batches_per_epoch).min(options.max_steps.unwrap_or(usize::MAX));
    let warmup = (total_steps / 10).max(1);
    let learning_rate = |step: usize| {
        let step = step as f64;
        if step < warmup as f64 {
            options.learning_rate * (step + 1.0) / warmup as f64
        } else {
            options.learning_rate
                * ((total_steps as f64 - step) / (total_steps - warmup).max(1) as f64).max(0.0)
        }
    };

    for epoch in start_epoch..=options.epochs {
        if optimizer.step >= total_steps {
            break;
        }
        let started = Instant::now();
        let mut order = split.train.clone();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(epoch_seed(
            options.seed,
            epoch,
            1,
        )));
        let mut query_rng = ChaCha8Rng::seed_from_u64(epoch_seed(options.seed, epoch, 2));
        let steps_this_epoch = batches_per_epoch.min(total_steps - optimizer.step);
        let bar = progress_bar(
            steps_this_epoch as u64,
            &format!("epoch {epoch}/{}", options.epochs),
        );
        let (mut cls_sum, mut con_sum, mut sequences) = (0.0, 0.0, 0usize);
        for batch in order.chunks(options.batch_size).take(steps_this_epoch) {
            let products: Vec<&milih_catalog::Product> =
                batch.iter().map(|&i| &catalog.products[i]).collect();
            let inputs = batch_from_ids(
                &batch.iter().map(|&i| ids[i].clone()).collect::<Vec<_>>(),
                &device,
            )?;
            let queries: Vec<_> = products
                .iter()
                .map(|p| query_for(p, &mut query_rng))
                .collect();
            let query_ids = queries
                .iter()
                .map(|q| encoder.ids(&q.text))
                .collect::<Result<Vec<_>, _>>()?;
            let query_inputs = batch_from_ids(&query_ids, &device)?;

            let output = model.forward(
                &inputs.input_ids,
                &inputs.attention_mask,
                None,
                Mode::Train,
                options.freeze_layers,
            )?;
            let classification = masked_bce(&output.logits, &products, &device)?;
            let query_embeddings = model.embed(
                &query_inputs.input_ids,
                &query_inputs.attention_mask,
                Mode::Train,
                options.freeze_layers,
            )?;
            let facts: Vec<Facts> = products.iter().map(|p| Facts::of(p)).collect();
            let relevance: Vec<f32> = queries
                .iter()
                .flat_map(|q| {
                    facts
                        .iter()
                        .map(move |f| f32::from(u8::from(q.is_relevant(f))))
                })
                .collect();
            let relevance = Tensor::from_vec(relevance, (batch.len(), batch.len()), &device)?;
            let contrastive = multi_positive_nce(
                &query_embeddings,
                &output.embeddings,
                &relevance,
                options.temperature,
            )?;
            let loss = (&classification + (&contrastive * options.contrastive_weight)?)?;
            let grads = loss.backward()?;
            optimizer.step(&grads, learning_rate(optimizer.step))?;

            let (c, q) = (
                classification.to_scalar::<f32>()? as f64,
                contrastive.to_scalar::<f32>()? as f64,
            );
            cls_sum += c * batch.len() as f64;
            con_sum += q * batch.len() as f64;
            sequences += batch.len();
            bar.set_message(format!("bce {c:.3} nce {q:.3}"));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        training_seconds += seconds;
        let held_out = evaluate_held_out(&varmap, &config, &encoder, catalog, &split)?;
        let record = EpochRecord {
            epoch,
            steps: optimizer.step,
            classification_loss: cls_sum / sequences.max(1) as f64,
            contrastive_loss: con_sum / sequences.max(1) as f64,
            seconds,
            sequences_per_second: sequences as f64 / seconds.max(1e-9),
            held_out,
        };
        eprintln!(
            "epoch {epoch}: bce {:.4} nce {:.4}, {:.2} seq/s; held-out macro-F1 {:.3} AUROC {:.3} AP {:.3} (all-suitable: {:.3} / {:.3} / {:.3})",
            record.classification_loss,
            record.contrastive_loss,
            record.sequences_per_second,
            record.held_out.model.macro_f1,
            record.held_out.model.macro_auroc,
            record.held_out.model.macro_ap,
            record.held_out.all_suitable_baseline.macro_f1,
            record.held_out.all_suitable_baseline.macro_auroc,
            record.held_out.all_suitable_baseline.macro_ap,
        );
        if let Some(r) = &record.held_out.retrieval {
            eprintln!(
                "         retrieval over {} queries: nDCG@10 {:.3} P@10 {:.3} MRR {:.3} (random order: nDCG@10 {:.3} P@10 {:.3})",
                r.queries, r.ndcg_at_10, r.precision_at_10, r.mrr, r.random_ndcg_at_10, r.random_precision_at_10
            );
        }
        history.push(record);
        save_checkpoint(out, &varmap, &optimizer, epoch, &history, training_seconds)?;
    }

    varmap.save(out.join(run_files::MODEL))?;
    write_atomic(
        &out.join(run_files::CONFIG),
        &serde_json::to_vec_pretty(&config)?,
    )?;
    write_atomic(&out.join(run_files::TOKENIZER), &tokenizer_json)?;
    let report = TrainReport {
        options,
        train_products: split.train.len(),
        held_out_products: split.held_out.len(),
        history,
        training_seconds,
    };
    write_report(out, report)
}

/// AdamW over the whole hybrid with the fine-tune recipe's settings: the
/// heads learn at `head_learning_rate`, the encoder at `learning_rate`.
pub fn fine_tune_optimizer(varmap: &VarMap, options: &TrainOptions) -> Result<AdamW> {
    let head_scale = options.head_learning_rate / options.learning_rate;
    Ok(AdamW::new(varmap, options.weight_decay, |name| {
        if name.starts_with(HEADS_PREFIX) {
            head_scale
        } else {
            1.0
        }
    })?)
}

/// The split of a run (the given one, or the seeded held-out split of
/// `options`), saved with it.
fn settle_split(
    out: &Path,
    catalog: &Catalog,
    options: &TrainOptions,
    given_split: Option<Split>,
) -> Result<Split> {
    let split =
        given_split.unwrap_or_else(|| split(catalog, options.held_out_fraction, options.seed));
    write_atomic(
        &out.join(run_files::SPLIT),
        &serde_json::to_vec_pretty(&split)?,
    )?;
    Ok(split)
}

fn write_report(out: &Path, report: TrainReport) -> Result<TrainReport> {
    write_atomic(
        &out.join(run_files::METRICS),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    Ok(report)
}

/// The frozen recipe: encoder features of every product and query (cached
/// in `out/features`), both heads fitted on the training products, the
/// whole model saved as a run.
fn train_frozen(
    base: &Path,
    catalog: &Catalog,
    out: &Path,
    options: TrainOptions,
    given_split: Option<Split>,
) -> Result<TrainReport> {
    let started = Instant::now();
    let split = settle_split(out, catalog, &options, given_split)?;
    let encoder = crate::heads::FrozenEncoder::load(base, &options)?;
    let data =
        crate::evaluation::EvalData::new(&encoder, catalog, &options, &out.join("features"))?;
    let tuned = match &data.tuning {
        Some(tuning) => Some(tuning.run(&data.facts, &split, &data.training_queries, &options)?),
        None => None,
    };
    let (pooled, query_pooled) = match &tuned {
        Some(t) => (&t.pooled, &t.query_pooled),
        None => (&data.pooled, &data.query_pooled),
    };
    let fitted = crate::heads::fit_heads(
        &data.config,
        &data.facts,
        &data.texts,
        pooled,
        &split,
        &data.training_queries,
        query_pooled,
        &options,
    )?;
    let answers = skin_answers(&data, pooled, catalog, &split, &options)?;
    write_atomic(
        &out.join(run_files::SKIN_ANSWERS),
        &serde_json::to_vec_pretty(&answers)?,
    )?;
    let mut tensors = match tuned {
        Some(t) => t.encoder,
        None => encoder.engine_tensors(),
    };
    tensors.retain(|name, _| !name.starts_with(HEADS_PREFIX));
    tensors.extend(fitted.tensors);
    let tokenizer_json = read(&base.join("tokenizer.json"))?;
    let training_seconds = started.elapsed().as_secs_f64();
    let engine = Engine::new(
        data.config.clone(),
        TextEncoder::from_json(&tokenizer_json, data.config.max_length)?,
        tensors.clone(),
    )?;
    let held_out = evaluate_engine(&engine, catalog, &split)?;
    let last = fitted.curve.last();
    let record = EpochRecord {
        epoch: 1,
        steps: options.head_steps,
        classification_loss: last.map_or(0.0, |p| p.classification_loss),
        contrastive_loss: last.map_or(0.0, |p| p.contrastive_loss),
        seconds: training_seconds,
        sequences_per_second: split.train.len() as f64 / training_seconds.max(1e-9),
        held_out,
    };
    candle_core::safetensors::save(&tensors, out.join(run_files::MODEL))?;
    write_atomic(
        &out.join(run_files::CONFIG),
        &serde_json::to_vec_pretty(&data.config)?,
    )?;
    write_atomic(&out.join(run_files::TOKENIZER), &tokenizer_json)?;
    write_atomic(
        &out.join("curve.json"),
        &serde_json::to_vec_pretty(&fitted.curve)?,
    )?;
    let report = TrainReport {
        options,
        train_products: split.train.len(),
        held_out_products: split.held_out.len(),
        history: vec![record],
        training_seconds,
    };
    write_report(out, report)
}

/// Products of unseen brands a threshold must rest on, at least.
const ANSWER_SUPPORT: usize = 20;

/// What the skin-type head's probabilities mean for brands it never saw:
/// the training products are split into brand folds, the skin-type head is
/// fitted without each fold and scores it, and each label's AUROC and
/// thresholds are read off those out-of-fold scores.
fn skin_answers(
    data: &crate::evaluation::EvalData,
    pooled: &Tensor,
    catalog: &Catalog,
    split: &Split,
    options: &TrainOptions,
) -> Result<milih_rank::skin::SkinAnswers> {
    use crate::data::Protocol;
    use milih_rank::skin::SkinAnswers;
    let in_training: HashSet<usize> = split.train.iter().copied().collect();
    // The skin-type head alone: no queries or product pairs, so that no
    // relevance is worked out for an embedding head that plays no part.
    let classifier_only = TrainOptions {
        contrastive_weight: 0.0,
        pair_share: 0.0,
        ..options.clone()
    };
    let in_training_only = |ids: &[usize]| -> Vec<usize> {
        ids.iter()
            .copied()
            .filter(|i| in_training.contains(i))
            .collect()
    };
    let labels = SKIN_TYPES.len();
    let mut pairs: Vec<Vec<(f32, bool)>> = vec![Vec::new(); labels];
    for fold in (Protocol::BrandFolds { folds: 5 }).splits(catalog, options.seed) {
        let held = in_training_only(&fold.held_out);
        let train = in_training_only(&fold.train);
        if held.is_empty() || train.is_empty() {
            continue;
        }
        let inner = Split {
            train,
            held_out: held.clone(),
        };
        let fitted = crate::heads::fit_heads(
            &data.config,
            &data.facts,
            &data.texts,
            pooled,
            &inner,
            &[],
            &data.query_pooled,
            &classifier_only,
        )?;
        let heads = crate::heads::heads_from(&data.config, &fitted.tensors)?;
        let probabilities = crate::heads::skin_probabilities(&heads, pooled, &data.texts, &held)?;
        for (&i, row) in held.iter().zip(probabilities) {
            if let Some(flags) = catalog.products[i].skin_labels {
                for l in 0..labels {
                    pairs[l].push((row[l], flags[l]));
                }
            }
        }
    }
    let answers = SkinAnswers {
        labels: pairs
            .iter()
            .map(|p| {
                let scores: Vec<f32> = p.iter().map(|x| x.0).collect();
                let truth: Vec<bool> = p.iter().map(|x| x.1).collect();
                let auroc = crate::metrics::auroc(&scores, &truth);
                SkinAnswers::fit_label(
                    p,
                    if auroc.is_finite() { auroc as f32 } else { 0.5 },
                    ANSWER_SUPPORT,
                )
            })
            .collect(),
    };
    for (name, l) in SKIN_TYPES.iter().zip(&answers.labels) {
        eprintln!(
            "{name}: AUROC on unseen brands {:.3}; likely from {}, unlikely up to {}",
            l.unseen_brand_auroc,
            l.likely_at.map_or("never".into(), |t| format!("{t:.3}")),
            l.unlikely_at.map_or("never".into(), |t| format!("{t:.3}")),
        );
    }
    Ok(answers)
}

/// A hybrid built from a base checkpoint: encoder weights loaded, heads
/// initialised from the seed (the embedding head as an identity map).
pub struct Initial {
    pub config: HybridConfig,
    pub tokenizer_json: Vec<u8>,
    pub encoder: TextEncoder,
    pub varmap: VarMap,
    pub model: Hybrid,
}

pub fn from_base(base: &Path, options: &TrainOptions, device: &Device) -> Result<Initial> {
    let bert = BertConfig::from_json(&read(&base.join("config.json"))?)?;
    let tokenizer_json = read(&base.join("tokenizer.json"))?;
    if options.max_length > bert.max_position_embeddings {
        bail!(
            "--max-length {} exceeds the model's {} positions",
            options.max_length,
            bert.max_position_embeddings
        );
    }
    let config = HybridConfig {
        bert,
        embedding_dim: options.embedding_dim,
        labels: SKIN_TYPES.iter().map(|s| s.to_string()).collect(),
        max_length: options.max_length,
        max_windows: options.max_windows,
        lexical_features: options.lexical_features,
        ingredient_functions: options.ingredient_functions,
    };
    let encoder = TextEncoder::from_json(&tokenizer_json, options.max_length)?;
    if encoder.vocab_size() > config.bert.vocab_size {
        bail!(
            "the tokenizer has {} tokens but the model only {}",
            encoder.vocab_size(),
            config.bert.vocab_size
        );
    }
    let varmap = VarMap::new();
    let model = Hybrid::load(
        &config,
        VarBuilder::from_varmap(&varmap, DType::F32, device),
    )?;
    let loaded = load_base_weights(&varmap, &base.join("model.safetensors"), device)?;
    milih_model::init::init_weights(&varmap, options.seed, |name| loaded.contains(name))?;
    Ok(Initial {
        config,
        tokenizer_json,
        encoder,
        varmap,
        model,
    })
}

/// The held-out evaluation of a finished run, or of an untrained base model
/// (whose embedding head is the identity: the frozen encoder's mean-pooled
/// embedding), with the split of `options`.
pub fn evaluate_model(
    engine: &Engine,
    catalog: &Catalog,
    options: &TrainOptions,
) -> Result<Evaluation> {
    let split = split(catalog, options.held_out_fraction, options.seed);
    evaluate_engine(engine, catalog, &split)
}

/// Loads a run directory's f32 model and its saved options.
pub fn load_run(run: &Path) -> Result<(Engine, TrainOptions)> {
    let options: TrainOptions = serde_json::from_slice(&read(&run.join(run_files::OPTIONS))?)
        .with_context(|| format!("parsing {}", run.join(run_files::OPTIONS).display()))?;
    let config = HybridConfig::from_json(&read(&run.join(run_files::CONFIG))?)?;
    let encoder =
        TextEncoder::from_json(&read(&run.join(run_files::TOKENIZER))?, config.max_length)?;
    let path = run.join(run_files::MODEL);
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok((Engine::new(config, encoder, tensors)?, options))
}

/// On a fresh run, saves the options; on `--resume`, the saved options win so
/// that the run continues as it started.
fn settle_options(out: &Path, options: TrainOptions, resume: bool) -> Result<TrainOptions> {
    let path = out.join(run_files::OPTIONS);
    if resume && path.exists() {
        let saved: TrainOptions = serde_json::from_slice(&read(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        if saved != options {
            eprintln!("resuming with the options saved in {}", path.display());
        }
        return Ok(saved);
    }
    write_atomic(&path, &serde_json::to_vec_pretty(&options)?)?;
    Ok(options)
}

fn epoch_seed(seed: u64, epoch: usize, stream: u64) -> u64 {
    seed.wrapping_mul(1_000_003)
        .wrapping_add(epoch as u64 * 16 + stream)
}

/// Copies the base checkpoint's weights into the encoder variables and
/// returns their names. Every encoder variable must be found.
fn load_base_weights(varmap: &VarMap, path: &Path, device: &Device) -> Result<HashSet<String>> {
    let tensors = candle_core::safetensors::load(path, device)
        .with_context(|| format!("reading {}", path.display()))?;
    let vars = varmap.data().lock().expect("var map lock");
    let mut loaded = HashSet::new();
    for (name, tensor) in tensors {
        let Some(name) = milih_model::canonical_weight_name(&name) else {
            continue;
        };
        let Some(var) = vars.get(&name) else { continue };
        if var.dims() != tensor.dims() {
            bail!(
                "{}: `{name}` has shape {:?}, the config implies {:?}",
                path.display(),
                tensor.dims(),
                var.dims()
            );
        }
        var.set(&tensor.to_dtype(DType::F32)?)?;
        loaded.insert(name);
    }
    let mut missing: Vec<&String> = vars
        .keys()
        .filter(|n| !n.starts_with(HEADS_PREFIX) && !loaded.contains(*n))
        .collect();
    missing.sort();
    if let Some(first) = missing.first() {
        bail!(
            "{} lacks {} encoder weights, e.g. `{first}`",
            path.display(),
            missing.len()
        );
    }
    Ok(loaded)
}

/// Binary cross-entropy over the labeled products of the batch only:
/// unlabeled products carry no skin-type information and are masked out.
pub(crate) fn masked_bce(
    logits: &Tensor,
    products: &[&milih_catalog::Product],
    device: &Device,
) -> Result<Tensor> {
    let labels = logits.dim(1)?;
    let mut targets = Vec::with_capacity(products.len() * labels);
    let mut weights = Vec::with_capacity(products.len());
    for p in products {
        match p.skin_labels {
            Some(flags) => {
                targets.extend(flags.iter().map(|&f| f32::from(u8::from(f))));
                weights.push(1f32);
            }
            None => {
                targets.extend(std::iter::repeat_n(0f32, labels));
                weights.push(0f32);
            }
        }
    }
    let targets = Tensor::from_vec(targets, (products.len(), labels), device)?;
    let weights = Tensor::from_vec(weights, (products.len(), 1), device)?;
    weighted_bce(logits, &targets, &weights)
}

/// Mean binary cross-entropy of `(batch, labels)` logits against 0/1
/// targets, over the rows whose `(batch, 1)` weight is 1.
pub fn weighted_bce(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let labels = logits.dim(1)?;
    let rows = weights.sum_all()?.to_scalar::<f32>()?;
    // max(x, 0) - x·t + log(1 + e^-|x|): stable for any logit.
    let per_entry =
        ((logits.relu()? - (logits * targets)?)? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    let total = per_entry.broadcast_mul(weights)?.sum_all()?;
    Ok((total / (rows.max(1.0) as f64 * labels as f64))?)
}

/// InfoNCE with several positives per query: minus the log of the softmax
/// mass that each query puts on its relevant products, averaged over queries.
pub fn multi_positive_nce(
    queries: &Tensor,
    products: &Tensor,
    relevance: &Tensor,
    temperature: f64,
) -> Result<Tensor> {
    Ok(per_query_nce(queries, products, relevance, temperature)?.mean_all()?)
}

/// The loss of [`multi_positive_nce`] for each query, `(queries,)`.
pub(crate) fn per_query_nce(
    queries: &Tensor,
    products: &Tensor,
    relevance: &Tensor,
    temperature: f64,
) -> Result<Tensor> {
    let logits = (queries.matmul(&products.t()?)? / temperature)?;
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let positive_mass = (log_probs.exp()? * relevance)?.sum(1)?;
    Ok(positive_mass.clamp(1e-9, 1.0)?.log()?.neg()?)
}

fn evaluate_held_out(
    varmap: &VarMap,
    config: &HybridConfig,
    encoder: &TextEncoder,
    catalog: &Catalog,
    split: &Split,
) -> Result<Evaluation> {
    let engine = Engine::new(config.clone(), encoder.clone(), tensors_of(varmap))?;
    evaluate_engine(&engine, catalog, split)
}

fn evaluate_engine(engine: &Engine, catalog: &Catalog, split: &Split) -> Result<Evaluation> {
    let config = engine.config();
    let held_out: Vec<&milih_catalog::Product> = split
        .held_out
        .iter()
        .map(|&i| &catalog.products[i])
        .collect();
    let texts: Vec<String> = held_out.iter().map(|p| p.model_text()).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let predictions = engine.predict(&refs, 16)?;
    let truth: Vec<Vec<bool>> = held_out
        .iter()
        // Only the all-rows protocol holds out unlabeled products, and it
        // defines them as negatives.
        .map(|p| p.skin_labels.unwrap_or_default().to_vec())
        .collect();
    let scores: Vec<Vec<f32>> = predictions
        .iter()
        .map(|p| p.probabilities.clone())
        .collect();
    let mut evaluation = evaluate(&config.labels, &scores, &truth);

    // Retrieval: "{type} for {skin} skin" over the held-out products, whose
    // labels training never saw.
    let types: std::collections::BTreeSet<&str> =
        held_out.iter().map(|p| p.product_type.as_str()).collect();
    let queries: Vec<crate::queries::Query> = crate::queries::templated_queries(catalog)
        .into_iter()
        .filter(|(suite, q)| *suite == 0 && q.need.types.iter().any(|t| types.contains(t.as_str())))
        .map(|(_, q)| q)
        .collect();
    let query_texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
    let query_refs: Vec<&str> = query_texts.iter().map(String::as_str).collect();
    let query_predictions = engine.predict(&query_refs, 16)?;
    let similarity: Vec<Vec<f32>> = query_predictions
        .iter()
        .map(|q| {
            predictions
                .iter()
                .map(|p| milih_rank::dot(&q.embedding, &p.embedding))
                .collect()
        })
        .collect();
    let facts: Vec<Facts> = held_out.iter().map(|p| Facts::of(p)).collect();
    let relevance: Vec<Vec<bool>> = queries
        .iter()
        .map(|q| facts.iter().map(|f| q.is_relevant(f)).collect())
        .collect();
    evaluation.retrieval = Some(retrieval(&similarity, &relevance, 7));
    Ok(evaluation)
}

/// The current weights as named tensors.
pub fn tensors_of(varmap: &VarMap) -> HashMap<String, Tensor> {
    varmap
        .data()
        .lock()
        .expect("var map lock")
        .iter()
        .map(|(name, var)| {
            (
                name.clone(),
                var.as_tensor().copy().expect("copy of a CPU tensor"),
            )
        })
        .collect()
}

fn save_checkpoint(
    out: &Path,
    varmap: &VarMap,
    optimizer: &AdamW,
    epoch: usize,
    history: &[EpochRecord],
    training_seconds: f64,
) -> Result<()> {
    let dir = checkpoint_dir(out, epoch);
    replace_dir_atomic(&dir, |staging| {
        varmap.save(staging.join(CKPT_MODEL))?;
        candle_core::safetensors::save(&optimizer.state()?, staging.join(CKPT_OPTIMIZER))?;
        let state = CheckpointState {
            epoch,
            step: optimizer.step,
            history: history.to_vec(),
            training_seconds,
        };
        std::fs::write(staging.join(CKPT_STATE), serde_json::to_vec_pretty(&state)?)?;
        Ok(())
    })
}

fn checkpoint_dir(out: &Path, epoch: usize) -> PathBuf {
    out.join(run_files::CHECKPOINTS)
        .join(format!("epoch-{epoch:03}"))
}

fn latest_checkpoint(out: &Path) -> Result<Option<(PathBuf, CheckpointState)>> {
    let root = out.join(run_files::CHECKPOINTS);
    if !root.exists() {
        return Ok(None);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("epoch-"))
        })
        .collect();
    dirs.sort();
    let Some(dir) = dirs.pop() else {
        return Ok(None);
    };
    let state: CheckpointState = serde_json::from_slice(&read(&dir.join(CKPT_STATE))?)?;
    Ok(Some((dir, state)))
}

pub fn progress_bar(len: u64, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use milih_catalog::Product;

    fn product(labels: Option<[bool; 5]>) -> Product {
        Product {
            id: 0,
            product_type: "Cleanser".into(),
            brand: "B".into(),
            name: "N".into(),
            price: 1.0,
            rating: 4.0,
            ingredients: None,
            skin_labels: labels,
        }
    }

    #[test]
    fn unlabeled_products_add_no_classification_loss() {
        let device = Device::Cpu;
        let logits = Tensor::new(
            &[[3.0f32, -2.0, 0.5, 1.0, -1.0], [5.0, 5.0, 5.0, 5.0, 5.0]],
            &device,
        )
        .unwrap();
        let unlabeled = product(None);
        let labeled = product(Some([true, false, true, true, false]));
        let only_unlabeled = masked_bce(&logits, &[&unlabeled, &unlabeled], &device).unwrap();
        assert_eq!(only_unlabeled.to_scalar::<f32>().unwrap(), 0.0);
        // The unlabeled second row, whose logits say "suits all", changes nothing.
        let mixed = masked_bce(&logits, &[&labeled, &unlabeled], &device)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let alone = masked_bce(&logits.narrow(0, 0, 1).unwrap(), &[&labeled], &device)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((mixed - alone).abs() < 1e-6);
        // And it matches the textbook formula.
        let expected: f32 = [
            (3.0f32, 1.0f32),
            (-2.0, 0.0),
            (0.5, 1.0),
            (1.0, 1.0),
            (-1.0, 0.0),
        ]
        .iter()
        .map(|&(x, t)| {
            let p = 1.0 / (1.0 + (-x).exp());
            -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        })
        .sum::<f32>()
            / 5.0;
        assert!((alone - expected).abs() < 1e-5, "{alone} vs {expected}");
    }

    #[test]
    fn contrastive_loss_is_low_when_queries_find_their_products() {
        let device = Device::Cpu;
        let eye = Tensor::eye(3, DType::F32, &device).unwrap();
        let relevance = Tensor::eye(3, DType::F32, &device).unwrap();
        let good = multi_positive_nce(&eye, &eye, &relevance, 0.05)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let shuffled = Tensor::new(
            &[[0f32, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
            &device,
        )
        .unwrap();
        let bad = multi_positive_nce(&eye, &shuffled, &relevance, 0.05)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(good < 1e-3 && bad > 10.0, "good {good}, bad {bad}");
    }
}
