//! A run directory: its files, the saved options, checkpoints and the
//! report `train` leaves (`metrics.json`).

use crate::fsutil::{read, replace_dir_atomic, write_atomic};
use crate::metrics::Evaluation;
use crate::optim::AdamW;
use crate::options::TrainOptions;
use anyhow::{Context, Result};
use candle_core::Device;
use candle_nn::VarMap;
use milih_model::{Engine, HybridConfig, TextEncoder};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    /// How searches weigh word matches ([`milih_rank::lexical::Ranking`]).
    pub const RANKING: &str = "ranking.json";
    pub const CHECKPOINTS: &str = "checkpoints";
}

/// Checkpoint contents.
pub(crate) const CKPT_MODEL: &str = "model.safetensors";

pub(crate) const CKPT_OPTIMIZER: &str = "optimizer.safetensors";

pub(crate) const CKPT_STATE: &str = "state.json";

#[derive(Serialize, Deserialize)]
pub(crate) struct CheckpointState {
    pub(crate) epoch: usize,
    pub(crate) step: usize,
    pub(crate) history: Vec<EpochRecord>,
    pub(crate) training_seconds: f64,
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
pub(crate) fn settle_options(
    out: &Path,
    options: TrainOptions,
    resume: bool,
) -> Result<TrainOptions> {
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

pub(crate) fn save_checkpoint(
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

pub(crate) fn checkpoint_dir(out: &Path, epoch: usize) -> PathBuf {
    out.join(run_files::CHECKPOINTS)
        .join(format!("epoch-{epoch:03}"))
}

pub(crate) fn latest_checkpoint(out: &Path) -> Result<Option<(PathBuf, CheckpointState)>> {
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
