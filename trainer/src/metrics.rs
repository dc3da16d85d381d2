//! Multi-label metrics over labeled products: F1 at 0.5, AUROC and average
//! precision per label and their macro means, beside the constant
//! "suits every skin type" baseline.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelMetrics {
    pub label: String,
    pub positives: usize,
    pub count: usize,
    pub f1: f64,
    pub auroc: f64,
    pub average_precision: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub macro_f1: f64,
    pub macro_auroc: f64,
    pub macro_ap: f64,
    pub per_label: Vec<LabelMetrics>,
}

/// Model and constant-baseline metrics on the same products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub products: usize,
    pub model: Metrics,
    pub all_suitable_baseline: Metrics,
    /// Query-to-product ranking quality of the embedding head.
    #[serde(default)]
    pub retrieval: Option<Retrieval>,
}

/// Ranking quality over a set of queries, beside a random ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retrieval {
    pub queries: usize,
    pub ndcg_at_10: f64,
    pub precision_at_10: f64,
    pub mrr: f64,
    /// Mean over seeded random orders of the same candidates.
    pub random_ndcg_at_10: f64,
    pub random_precision_at_10: f64,
    #[serde(default)]
    pub random_mrr: f64,
}

/// Rank cut-off of the retrieval metrics.
pub const RETRIEVAL_K: usize = 10;

/// `scores[q][i]` is the similarity of candidate `i` to query `q`,
/// `relevant[q][i]` whether it is relevant. Queries without any relevant
/// candidate are skipped.
pub fn retrieval(scores: &[Vec<f32>], relevant: &[Vec<bool>], seed: u64) -> Retrieval {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    const RANDOM_ORDERS: usize = 50;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut n, mut ndcg, mut precision, mut mrr, mut random_ndcg, mut random_precision) =
        (0usize, 0.0, 0.0, 0.0, 0.0, 0.0);
    let mut random_mrr = 0.0;
    for (s, r) in scores.iter().zip(relevant) {
        if !r.iter().any(|&x| x) {
            continue;
        }
        let mut order: Vec<usize> = (0..s.len()).collect();
        order.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
        let ranked: Vec<bool> = order.iter().map(|&i| r[i]).collect();
        n += 1;
        ndcg += ndcg_at(&ranked, RETRIEVAL_K);
        precision += precision_at(&ranked, RETRIEVAL_K);
        mrr += reciprocal_rank(&ranked);
        for _ in 0..RANDOM_ORDERS {
            let mut shuffled = r.clone();
            shuffled.shuffle(&mut rng);
            random_ndcg += ndcg_at(&shuffled, RETRIEVAL_K) / RANDOM_ORDERS as f64;
            random_precision += precision_at(&shuffled, RETRIEVAL_K) / RANDOM_ORDERS as f64;
            random_mrr += reciprocal_rank(&shuffled) / RANDOM_ORDERS as f64;
        }
    }
    let mean = |x: f64| x / n.max(1) as f64;
    Retrieval {
        queries: n,
        ndcg_at_10: mean(ndcg),
        precision_at_10: mean(precision),
        mrr: mean(mrr),
        random_ndcg_at_10: mean(random_ndcg),
        random_precision_at_10: mean(random_precision),
        random_mrr: mean(random_mrr),
    }
}

/// nDCG@10 of every query that has a relevant item, in query order (what
/// [`retrieval`] averages).
pub fn ndcg_per_query(scores: &[Vec<f32>], relevant: &[Vec<bool>]) -> Vec<f64> {
    scores
        .iter()
        .zip(relevant)
        .filter(|(_, r)| r.iter().any(|&x| x))
        .map(|(s, r)| {
            let mut order: Vec<usize> = (0..s.len()).collect();
            order.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
            let ranked: Vec<bool> = order.iter().map(|&i| r[i]).collect();
            ndcg_at(&ranked, RETRIEVAL_K)
        })
        .collect()
}

/// Normalised discounted cumulative gain of binary relevance in rank order.
pub fn ndcg_at(ranked: &[bool], k: usize) -> f64 {
    let gain = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, &r)| r)
        .map(|(i, _)| gain(i))
        .sum();
    let relevant = ranked.iter().filter(|&&r| r).count();
    let ideal: f64 = (0..relevant.min(k)).map(gain).sum();
    if ideal == 0.0 {
        0.0
    } else {
        dcg / ideal
    }
}

pub fn precision_at(ranked: &[bool], k: usize) -> f64 {
    ranked.iter().take(k).filter(|&&r| r).count() as f64 / k as f64
}

pub fn reciprocal_rank(ranked: &[bool]) -> f64 {
    ranked
        .iter()
        .position(|&r| r)
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// `scores[i][l]` is the probability of label `l` for product `i`,
/// `truth[i][l]` the retailer label.
pub fn evaluate(labels: &[String], scores: &[Vec<f32>], truth: &[Vec<bool>]) -> Evaluation {
    let ones: Vec<Vec<f32>> = truth.iter().map(|t| vec![1.0; t.len()]).collect();
    Evaluation {
        products: truth.len(),
        model: metrics(labels, scores, truth),
        all_suitable_baseline: metrics(labels, &ones, truth),
        retrieval: None,
    }
}

pub fn metrics(labels: &[String], scores: &[Vec<f32>], truth: &[Vec<bool>]) -> Metrics {
    let per_label: Vec<LabelMetrics> = labels
        .iter()
        .enumerate()
        .map(|(l, label)| {
            let s: Vec<f32> = scores.iter().map(|r| r[l]).collect();
            let t: Vec<bool> = truth.iter().map(|r| r[l]).collect();
            LabelMetrics {
                label: label.clone(),
                positives: t.iter().filter(|&&x| x).count(),
                count: t.len(),
                f1: f1_at(&s, &t, 0.5),
                auroc: auroc(&s, &t),
                average_precision: average_precision(&s, &t),
            }
        })
        .collect();
    let mean = |f: fn(&LabelMetrics) -> f64| {
        per_label.iter().map(f).sum::<f64>() / per_label.len().max(1) as f64
    };
    Metrics {
        macro_f1: mean(|m| m.f1),
        macro_auroc: mean(|m| m.auroc),
        macro_ap: mean(|m| m.average_precision),
        per_label,
    }
}

/// F1 of the positive class with threshold `threshold` (0 when there are no
/// positives and none predicted).
pub fn f1_at(scores: &[f32], truth: &[bool], threshold: f32) -> f64 {
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for (&s, &t) in scores.iter().zip(truth) {
        match (s >= threshold, t) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            (false, false) => {}
        }
    }
    let denominator = 2 * tp + fp + fneg;
    if denominator == 0 {
        0.0
    } else {
        2.0 * tp as f64 / denominator as f64
    }
}

/// Area under the ROC curve (ties count one half); 0.5 when a class is absent.
pub fn auroc(scores: &[f32], truth: &[bool]) -> f64 {
    let positives = truth.iter().filter(|&&t| t).count();
    let negatives = truth.len() - positives;
    if positives == 0 || negatives == 0 {
        return 0.5;
    }
    // Mann-Whitney U with average ranks for ties.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| truth[k]).count() as f64 * average_rank;
        i = j + 1;
    }
    let p = positives as f64;
    (rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64)
}

/// Average precision (area under the precision-recall step curve), with
/// tied scores taken as one threshold.
pub fn average_precision(scores: &[f32], truth: &[bool]) -> f64 {
    let positives = truth.iter().filter(|&&t| t).count();
    if positives == 0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap, mut last_recall) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        tp += order[i..=j].iter().filter(|&&k| truth[k]).count();
        seen += j - i + 1;
        let recall = tp as f64 / positives as f64;
        ap += (recall - last_recall) * tp as f64 / seen as f64;
        last_recall = recall;
        i = j + 1;
    }
    ap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_constant_scores() {
        let truth = [true, true, false, false];
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &truth), 1.0);
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &truth), 0.0);
        assert_eq!(auroc(&[1.0; 4], &truth), 0.5);
        assert_eq!(average_precision(&[0.9, 0.8, 0.2, 0.1], &truth), 1.0);
        assert_eq!(average_precision(&[1.0; 4], &truth), 0.5);
        assert_eq!(f1_at(&[1.0; 4], &truth, 0.5), 2.0 * 2.0 / (2.0 * 2.0 + 2.0));
    }

    #[test]
    fn auroc_counts_ties_as_half() {
        // One positive tied with one negative, above another negative.
        assert_eq!(auroc(&[0.5, 0.5, 0.1], &[true, false, false]), 0.75);
    }

    #[test]
    fn average_precision_of_a_mixed_ranking() {
        // Ranking: P N P -> precision at hits 1/1 and 2/3.
        let ap = average_precision(&[0.9, 0.8, 0.7], &[true, false, true]);
        assert!((ap - (0.5 * 1.0 + 0.5 * 2.0 / 3.0)).abs() < 1e-12);
    }

    #[test]
    fn ranking_metrics() {
        assert_eq!(ndcg_at(&[true, false, false], 10), 1.0);
        let expected = (1.0 / 3f64.log2()) / (1.0);
        assert!((ndcg_at(&[false, true, false], 10) - expected).abs() < 1e-12);
        assert_eq!(precision_at(&[true, false, true], 2), 0.5);
        assert_eq!(reciprocal_rank(&[false, false, true]), 1.0 / 3.0);
        assert_eq!(reciprocal_rank(&[false]), 0.0);
        let perfect = retrieval(&[vec![0.9, 0.1, 0.2]], &[vec![true, false, false]], 1);
        assert_eq!(perfect.queries, 1);
        assert_eq!(perfect.ndcg_at_10, 1.0);
        assert!(perfect.random_ndcg_at_10 < 1.0);
        // A query with nothing relevant is skipped, not scored as zero.
        let skipped = retrieval(&[vec![0.5], vec![0.5]], &[vec![false], vec![true]], 1);
        assert_eq!(skipped.queries, 1);
    }

    #[test]
    fn the_constant_baseline_is_reported_beside_the_model() {
        let labels = vec!["a".to_owned()];
        let truth = vec![vec![true], vec![false], vec![true]];
        let scores = vec![vec![0.9], vec![0.1], vec![0.8]];
        let e = evaluate(&labels, &scores, &truth);
        assert_eq!(e.model.macro_auroc, 1.0);
        assert_eq!(e.all_suitable_baseline.macro_auroc, 0.5);
        assert!((e.all_suitable_baseline.macro_f1 - 0.8).abs() < 1e-12);
    }
}
