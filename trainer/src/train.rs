//! Training the hybrid. The default recipe tunes the encoder's top layers
//! (`tune`), pools every product's windows and fits both heads on those
//! features (`heads`). The full fine-tune trains everything at once: masked
//! multi-label BCE on the skin-type head plus a multi-positive contrastive
//! loss between synthetic queries and products on the embedding head,
//! checkpointed after every epoch (`--resume` picks up the last one).
//!
//! Both recipes live here side by side, each one function that reads top to
//! bottom (split, features or batches, heads, answers, report); the tools
//! they share are in `base`, `losses`, `run_dir` and `progress`.

use crate::answers::skin_answers;
use crate::base::{from_base, tensors_of, Initial};
use crate::data::{query_for, split, Split};
use crate::fsutil::{read, write_atomic};
use crate::losses::{masked_bce, multi_positive_nce};
use crate::metrics::{evaluate, retrieval, Evaluation};
use crate::optim::AdamW;
use crate::options::{Recipe, TrainOptions};
use crate::progress::progress_bar;
use crate::queries::Facts;
use crate::run_dir::{
    latest_checkpoint, run_files, save_checkpoint, settle_options, EpochRecord, TrainReport,
    CKPT_MODEL, CKPT_OPTIMIZER,
};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use milih_catalog::Catalog;
use milih_model::tokenize::batch_from_ids;
use milih_model::{Engine, HybridConfig, Mode, TextEncoder, HEADS_PREFIX};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::time::Instant;

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
    let ranking = crate::fusion::fit_ranking(&data, pooled, query_pooled, &split, &options)?;
    eprintln!(
        "search ranking: fields (brand, name, ingredients) {:?}, concern {}, nothing close below {:.3}",
        ranking.fusion.fields, ranking.fusion.concern, ranking.nothing_close_below
    );
    write_atomic(
        &out.join(run_files::RANKING),
        &serde_json::to_vec_pretty(&ranking)?,
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

fn epoch_seed(seed: u64, epoch: usize, stream: u64) -> u64 {
    seed.wrapping_mul(1_000_003)
        .wrapping_add(epoch as u64 * 16 + stream)
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
