//! SVG plots of an evaluation: the heads' training curves and per-label ROC
//! and precision–recall curves of Milih beside TF-IDF + logistic regression.

use crate::heads::CurvePoint;
use crate::report::{FoldResult, ProtocolReport};
use anyhow::{anyhow, Result};
use milih_catalog::{Catalog, SKIN_TYPES};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const SIZE: (u32, u32) = (1500, 340);
const MILIH_COLOUR: RGBColor = RGBColor(196, 64, 96);
const BASELINE_COLOUR: RGBColor = RGBColor(70, 110, 170);

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a plot: {e:?}")
}

/// Writes `training-curves.svg`, `roc.svg` and `pr.svg` for `protocol`
/// into `dir`, and returns their paths.
pub fn write_all(catalog: &Catalog, protocol: &ProtocolReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let curves = dir.join("training-curves.svg");
    training_curves(&protocol.folds, &curves)?;
    let (truth, milih, tfidf) = pooled_predictions(catalog, &protocol.folds);
    let roc = dir.join("roc.svg");
    label_curves(&truth, &milih, &tfidf, Curve::Roc, &protocol.name, &roc)?;
    let pr = dir.join("pr.svg");
    label_curves(
        &truth,
        &milih,
        &tfidf,
        Curve::PrecisionRecall,
        &protocol.name,
        &pr,
    )?;
    Ok(vec![curves, roc, pr])
}

/// Truth, Milih's and TF-IDF's probabilities, one row per product.
type Predictions = (Vec<Vec<bool>>, Vec<Vec<f32>>, Vec<Vec<f32>>);

/// Held-out truth and scores of every split, concatenated.
fn pooled_predictions(catalog: &Catalog, folds: &[FoldResult]) -> Predictions {
    let mut truth = Vec::new();
    let (mut milih, mut tfidf) = (Vec::new(), Vec::new());
    for fold in folds {
        for (k, &id) in fold.held_out.iter().enumerate() {
            truth.push(
                catalog.products[id]
                    .skin_labels
                    .unwrap_or_default()
                    .to_vec(),
            );
            milih.push(fold.milih_scores[k].clone());
            tfidf.push(fold.tfidf_scores[k].clone());
        }
    }
    (truth, milih, tfidf)
}

/// Classification and contrastive loss of every split's head fit.
pub fn training_curves(folds: &[FoldResult], path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1000, 360)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let panels = root.split_evenly((1, 2));
    type Series = (&'static str, fn(&CurvePoint) -> f64);
    let series: [Series; 2] = [
        ("skin-type head: masked BCE", |p| p.classification_loss),
        ("embedding head: InfoNCE", |p| p.contrastive_loss),
    ];
    for (panel, (title, value)) in panels.iter().zip(series) {
        let steps = folds
            .iter()
            .flat_map(|f| f.curve.last().map(|p| p.step))
            .max()
            .unwrap_or(1);
        let top = folds
            .iter()
            .flat_map(|f| f.curve.iter().map(value))
            .fold(0.0f64, f64::max)
            .max(1e-6);
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0..steps, 0.0..top * 1.05)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("optimizer step")
            .y_desc("loss")
            .draw()
            .map_err(plot_error)?;
        for (i, fold) in folds.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    fold.curve.iter().map(|p| (p.step, value(p))),
                    colour.stroke_width(2),
                ))
                .map_err(plot_error)?
                .label(format!("split {}", i + 1))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

fn draw_legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(plot_error)
}

#[derive(Clone, Copy, PartialEq)]
pub enum Curve {
    Roc,
    PrecisionRecall,
}

/// Points of a ROC curve (false-positive rate, true-positive rate) or a
/// precision–recall curve (recall, precision), thresholds from high to low.
pub fn curve_points(scores: &[f32], truth: &[bool], kind: Curve) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let positives = truth.iter().filter(|&&t| t).count().max(1) as f64;
    let negatives = truth.iter().filter(|&&t| !t).count().max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut points = vec![match kind {
        Curve::Roc => (0.0, 0.0),
        Curve::PrecisionRecall => (0.0, 1.0),
    }];
    for (k, &i) in order.iter().enumerate() {
        if truth[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        // One point per distinct threshold.
        if order.get(k + 1).is_some_and(|&j| scores[j] == scores[i]) {
            continue;
        }
        points.push(match kind {
            Curve::Roc => (fp / negatives, tp / positives),
            Curve::PrecisionRecall => (tp / positives, tp / (tp + fp)),
        });
    }
    points
}

fn label_curves(
    truth: &[Vec<bool>],
    milih: &[Vec<f32>],
    tfidf: &[Vec<f32>],
    kind: Curve,
    protocol: &str,
    path: &Path,
) -> Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let root = root
        .titled(
            &format!(
                "{} — {protocol}, held-out predictions of every split",
                match kind {
                    Curve::Roc => "ROC",
                    Curve::PrecisionRecall => "Precision–recall",
                }
            ),
            ("sans-serif", 18),
        )
        .map_err(plot_error)?;
    let (x_desc, y_desc) = match kind {
        Curve::Roc => ("false-positive rate", "true-positive rate"),
        Curve::PrecisionRecall => ("recall", "precision"),
    };
    for (label, panel) in root.split_evenly((1, SKIN_TYPES.len())).iter().enumerate() {
        let column = |rows: &[Vec<f32>]| rows.iter().map(|r| r[label]).collect::<Vec<_>>();
        let t: Vec<bool> = truth.iter().map(|r| r[label]).collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(SKIN_TYPES[label], ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_labels(5)
            .y_labels(5)
            .draw()
            .map_err(plot_error)?;
        if kind == Curve::Roc {
            chart
                .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
                .map_err(plot_error)?;
        }
        for (name, colour, scores) in [
            ("Milih", MILIH_COLOUR, column(milih)),
            ("TF-IDF + LR", BASELINE_COLOUR, column(tfidf)),
        ] {
            chart
                .draw_series(LineSeries::new(
                    curve_points(&scores, &t, kind),
                    colour.stroke_width(2),
                ))
                .map_err(plot_error)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_runs_from_origin_to_one_and_pr_ends_at_full_recall() {
        let scores = [0.9, 0.8, 0.8, 0.1];
        let truth = [true, false, true, false];
        let roc = curve_points(&scores, &truth, Curve::Roc);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        assert_eq!(roc.len(), 4, "tied scores give one point");
        let pr = curve_points(&scores, &truth, Curve::PrecisionRecall);
        assert_eq!(pr[1], (0.5, 1.0));
        assert_eq!(pr.last(), Some(&(1.0, 0.5)));
    }
}
