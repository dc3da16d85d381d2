//! The Milih trainer: fine-tuning, evaluation and export of the hybrid
//! model. The `trainer` binary is a thin CLI over these modules.

pub mod answers;
pub mod base;
pub mod baselines;
pub mod bench;
pub mod bootstrap;
pub mod cli;
pub mod data;
pub mod evaluation;
pub mod export;
pub mod features;
pub mod fsutil;
pub mod fusion;
pub mod gptq;
pub mod heads;
pub mod losses;
pub mod metrics;
pub mod optim;
pub mod options;
pub mod phrasings;
pub mod plots;
pub mod progress;
pub mod projection;
pub mod queries;
pub mod report;
pub mod run_dir;
pub mod train;
pub mod tune;

use anyhow::{Context, Result};
use milih_catalog::{read_catalog, Catalog, ColumnMap};
use std::path::Path;

/// Reads a catalog CSV, with optional `field=column` overrides.
pub fn load_catalog(path: &Path, map: &[String]) -> Result<Catalog> {
    let columns = ColumnMap::default().with_overrides(map.iter().map(String::as_str))?;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    read_catalog(std::io::BufReader::new(file), &columns)
        .with_context(|| format!("reading {}", path.display()))
}
