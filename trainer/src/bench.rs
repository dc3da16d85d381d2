//! Training-step throughput: the fine-tune recipe's step (forward, both
//! losses, backward, AdamW) on a fixed batch of synthetic token ids, timed
//! step by step. `bench/train/torch_step.py` runs the same step in PyTorch,
//! so that the two print comparable figures.

use crate::base::from_base;
use crate::losses::{multi_positive_nce, weighted_bce};
use crate::options::{Recipe, TrainOptions};
use crate::train::fine_tune_optimizer;
use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use milih_model::Mode;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Shapes and repetitions of a training benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct StepBenchOptions {
    pub batch_size: usize,
    pub seq_len: usize,
    /// Timed steps.
    pub steps: usize,
    /// Untimed steps first (allocator and thread-pool warm-up).
    pub warmup: usize,
    pub seed: u64,
}

/// What a training benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct StepBenchReport {
    pub implementation: &'static str,
    pub options: StepBenchOptions,
    pub threads: usize,
    pub step_ms: Vec<f64>,
    pub median_ms: f64,
    pub p95_ms: f64,
    /// Median of the optimizer update alone, within the step.
    pub optimizer_median_ms: f64,
    /// Sequences per second at the median step time.
    pub sequences_per_second: f64,
    pub first_loss: f32,
    pub last_loss: f32,
}

/// Median and 95th percentile of some timings.
pub fn median_and_p95(samples: &[f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

/// Times fine-tune steps of the hybrid built from `base` on one synthetic
/// batch: token ids drawn uniformly from the vocabulary past the special
/// tokens, every token real, random skin-type targets, each text its own
/// positive in the contrastive loss.
pub fn training_steps(base: &Path, options: &StepBenchOptions) -> Result<StepBenchReport> {
    if options.batch_size < 2 || options.seq_len < 2 || options.steps == 0 {
        bail!("the benchmark needs a batch of at least 2, sequences of at least 2 tokens and at least one timed step");
    }
    let device = Device::Cpu;
    let train_options = TrainOptions {
        recipe: Recipe::FineTune,
        max_windows: 1,
        lexical_features: 0,
        ingredient_functions: false,
        max_length: options.seq_len,
        seed: options.seed,
        ..TrainOptions::default()
    };
    let initial = from_base(base, &train_options, &device)?;
    let config = &initial.config;
    let (batch, len) = (options.batch_size, options.seq_len);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    // Ids below 1000 are BERT's special and unused tokens.
    let low = 1000.min(config.bert.vocab_size as u32 - 1);
    let ids: Vec<u32> = (0..batch * len)
        .map(|_| rng.random_range(low..config.bert.vocab_size as u32))
        .collect();
    let input_ids = Tensor::from_vec(ids, (batch, len), &device)?;
    let attention_mask = Tensor::ones((batch, len), candle_core::DType::U32, &device)?;
    let labels = config.labels.len();
    let targets: Vec<f32> = (0..batch * labels)
        .map(|_| f32::from(u8::from(rng.random_bool(0.5))))
        .collect();
    let targets = Tensor::from_vec(targets, (batch, labels), &device)?;
    let weights = Tensor::ones((batch, 1), candle_core::DType::F32, &device)?;
    let relevance = Tensor::eye(batch, candle_core::DType::F32, &device)?;

    let mut optimizer = fine_tune_optimizer(&initial.varmap, &train_options)?;
    let mut optimizer_ms = Vec::new();
    let mut step = |optimizer_ms: &mut Vec<f64>| -> Result<f32> {
        let output = initial
            .model
            .forward(&input_ids, &attention_mask, None, Mode::Train, 0)?;
        let classification = weighted_bce(&output.logits, &targets, &weights)?;
        let contrastive = multi_positive_nce(
            &output.embeddings,
            &output.embeddings,
            &relevance,
            train_options.temperature,
        )?;
        let loss = (&classification + (&contrastive * train_options.contrastive_weight)?)?;
        let grads = loss.backward()?;
        let started = Instant::now();
        optimizer.step(&grads, train_options.learning_rate)?;
        optimizer_ms.push(started.elapsed().as_secs_f64() * 1e3);
        Ok(loss.to_scalar::<f32>()?)
    };
    let mut first_loss = f32::NAN;
    for i in 0..options.warmup {
        let loss = step(&mut Vec::new())?;
        if i == 0 {
            first_loss = loss;
        }
    }
    let mut step_ms = Vec::with_capacity(options.steps);
    let mut last_loss = f32::NAN;
    for _ in 0..options.steps {
        let started = Instant::now();
        last_loss = step(&mut optimizer_ms)?;
        step_ms.push(started.elapsed().as_secs_f64() * 1e3);
        if first_loss.is_nan() {
            first_loss = last_loss;
        }
    }
    let (median_ms, p95_ms) = median_and_p95(&step_ms);
    Ok(StepBenchReport {
        implementation: "milih (candle)",
        options: options.clone(),
        threads: candle_core::utils::get_num_threads(),
        step_ms,
        median_ms,
        p95_ms,
        optimizer_median_ms: median_and_p95(&optimizer_ms).0,
        sequences_per_second: batch as f64 / (median_ms / 1e3),
        first_loss,
        last_loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95_of_known_samples() {
        let samples: Vec<f64> = (1..=20).map(f64::from).rev().collect();
        assert_eq!(median_and_p95(&samples), (11.0, 19.0));
        assert!(median_and_p95(&[]).0.is_nan());
    }
}
