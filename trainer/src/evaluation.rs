//! Cross-validated evaluation: train on each split of a protocol, score the
//! held-out products, and summarise model and constant baseline as
//! mean ± standard deviation.

use crate::data::Protocol;
use crate::fsutil::{read, write_atomic};
use crate::metrics::Evaluation;
use crate::train::{run_files, train_on_split, TrainOptions, TrainReport};
use anyhow::{Context, Result};
use milih_catalog::Catalog;
use serde::{Deserialize, Serialize};
use std::path::Path;

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub macro_f1: Stat,
    pub macro_auroc: Stat,
    pub macro_ap: Stat,
    pub baseline_macro_f1: Stat,
    pub baseline_macro_auroc: Stat,
    pub baseline_macro_ap: Stat,
    pub retrieval_ndcg_at_10: Option<Stat>,
    pub random_ndcg_at_10: Option<Stat>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolReport {
    pub protocol: Protocol,
    pub name: String,
    pub seed: u64,
    pub options: TrainOptions,
    pub folds: Vec<Evaluation>,
    pub training_seconds: f64,
    pub summary: Summary,
}

/// Trains and scores every split of `protocol` under `out/fold-N`. A fold
/// whose run finished earlier is read back, so an interrupted evaluation
/// continues where it stopped.
pub fn run_protocol(
    base: &Path,
    catalog: &Catalog,
    protocol: Protocol,
    options: &TrainOptions,
    out: &Path,
) -> Result<ProtocolReport> {
    let splits = protocol.splits(catalog, options.seed);
    let mut folds = Vec::new();
    let mut training_seconds = 0.0;
    for (i, split) in splits.into_iter().enumerate() {
        let dir = out.join(format!("fold-{}", i + 1));
        let metrics = dir.join(run_files::METRICS);
        let report: TrainReport = if metrics.exists() {
            serde_json::from_slice(&read(&metrics)?)
                .with_context(|| format!("parsing {}", metrics.display()))?
        } else {
            eprintln!(
                "{}: fold {} — {} training, {} held out",
                protocol.name(),
                i + 1,
                split.train.len(),
                split.held_out.len()
            );
            train_on_split(base, catalog, &dir, options.clone(), true, Some(split))?
        };
        training_seconds += report.training_seconds;
        folds.push(
            report
                .final_evaluation()
                .cloned()
                .context("a fold finished without an evaluation")?,
        );
    }
    let summary = summarise(&folds);
    let report = ProtocolReport {
        protocol,
        name: protocol.name(),
        seed: options.seed,
        options: options.clone(),
        folds,
        training_seconds,
        summary,
    };
    write_atomic(
        &out.join("report.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    write_atomic(&out.join("report.md"), markdown(&report).as_bytes())?;
    Ok(report)
}

pub fn summarise(folds: &[Evaluation]) -> Summary {
    let stat = |f: &dyn Fn(&Evaluation) -> f64| Stat::of(&folds.iter().map(f).collect::<Vec<_>>());
    let retrieval = |f: &dyn Fn(&crate::metrics::Retrieval) -> f64| {
        let values: Option<Vec<f64>> = folds.iter().map(|e| e.retrieval.as_ref().map(f)).collect();
        values.filter(|v| !v.is_empty()).map(|v| Stat::of(&v))
    };
    Summary {
        macro_f1: stat(&|e| e.model.macro_f1),
        macro_auroc: stat(&|e| e.model.macro_auroc),
        macro_ap: stat(&|e| e.model.macro_ap),
        baseline_macro_f1: stat(&|e| e.all_suitable_baseline.macro_f1),
        baseline_macro_auroc: stat(&|e| e.all_suitable_baseline.macro_auroc),
        baseline_macro_ap: stat(&|e| e.all_suitable_baseline.macro_ap),
        retrieval_ndcg_at_10: retrieval(&|r| r.ndcg_at_10),
        random_ndcg_at_10: retrieval(&|r| r.random_ndcg_at_10),
    }
}

/// The report as a Markdown table, model beside the constant baseline.
pub fn markdown(report: &ProtocolReport) -> String {
    let s = &report.summary;
    let mut md = format!(
        "# Evaluation: {}\n\n{} splits (seed {}), {:.0} s of training in all.\n\n\
         | metric | Milih | constant \"suits all\" |\n| --- | --- | --- |\n\
         | macro-F1 @ 0.5 | {} | {} |\n| macro AUROC | {} | {} |\n| macro AP | {} | {} |\n",
        report.name,
        report.folds.len(),
        report.seed,
        report.training_seconds,
        s.macro_f1,
        s.baseline_macro_f1,
        s.macro_auroc,
        s.baseline_macro_auroc,
        s.macro_ap,
        s.baseline_macro_ap,
    );
    if let (Some(model), Some(random)) = (&s.retrieval_ndcg_at_10, &s.random_ndcg_at_10) {
        md.push_str(&format!(
            "\nRetrieval, \"{{type}} for {{skin}} skin\" over the held-out products: nDCG@10 {model} (random order {random}).\n"
        ));
    }
    md.push_str(&format!(
        "\nTraining options: `{}`\n",
        serde_json::to_string(&report.options).unwrap_or_default()
    ));
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
