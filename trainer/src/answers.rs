//! The thresholds behind the page's skin-type answers (likely / unsure /
//! unlikely / unknown), measured on brands the skin-type head never saw.

use crate::data::Split;
use crate::options::TrainOptions;
use anyhow::Result;
use candle_core::Tensor;
use milih_catalog::{Catalog, SKIN_TYPES};
use std::collections::HashSet;

/// Products of unseen brands a threshold must rest on, at least.
const ANSWER_SUPPORT: usize = 20;

/// What the skin-type head's probabilities mean for brands it never saw:
/// the training products are split into brand folds, the skin-type head is
/// fitted without each fold and scores it, and each label's AUROC and
/// thresholds are read off those out-of-fold scores.
pub(crate) fn skin_answers(
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
