//! What the page says about a skin type the retailer did not label.
//!
//! The model's probability alone misleads: the retailer marks 76–97 % of
//! its labeled products as suiting each skin type, so a fitted model says
//! "suits" nearly everywhere. The trainer therefore measures, on products
//! of brands the model never saw in training, how well each label's
//! probability ranks products and which probabilities the retailer's
//! labels bear out, and ships those thresholds ([`SkinAnswers`]). The page
//! answers in words from them, and adds where a product stands among its
//! own type ([`Lean`]).

use serde::{Deserialize, Serialize};

/// Below this AUROC on unseen brands a label's probability says too little
/// to answer with: the page shows "unknown".
pub const MIN_USEFUL_AUROC: f32 = 0.6;

/// A product counts as leaning towards a skin type when its probability for
/// it beats this share of the products of its type.
pub const LEAN_SHARE: f32 = 0.8;

/// How probabilities read as answers, one entry per label in label order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SkinAnswers {
    pub labels: Vec<LabelAnswers>,
}

/// Thresholds of one label, chosen on out-of-fold predictions for products
/// of brands held out of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelAnswers {
    /// How well the probability ranks products of unseen brands.
    pub unseen_brand_auroc: f32,
    /// At or above this probability the answer is "likely": there, at least
    /// [`LIKELY_SHARE`] of unseen-brand products carried the label.
    pub likely_at: Option<f32>,
    /// At or below this probability the answer is "unlikely": there, at most
    /// [`UNLIKELY_SHARE`] of unseen-brand products carried the label.
    pub unlikely_at: Option<f32>,
}

/// Share of labeled products that "likely" must bear out.
pub const LIKELY_SHARE: f32 = 0.9;
/// Largest share of labeled products that "unlikely" may cover.
pub const UNLIKELY_SHARE: f32 = 0.5;

/// The page's answer for a skin type without a retailer label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    Likely,
    Unsure,
    Unlikely,
    /// The model cannot tell this skin type apart (or the bundle carries no
    /// thresholds).
    Unknown,
}

impl Answer {
    /// Every answer, in the order the page and the trainer count them.
    pub const ALL: [Answer; 4] = [
        Answer::Likely,
        Answer::Unsure,
        Answer::Unlikely,
        Answer::Unknown,
    ];

    /// Position in [`Answer::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn word(self) -> &'static str {
        match self {
            Answer::Likely => "likely",
            Answer::Unsure => "unsure",
            Answer::Unlikely => "unlikely",
            Answer::Unknown => "unknown",
        }
    }
}

impl SkinAnswers {
    /// The answer for probability `p` of label `label`.
    pub fn answer(&self, label: usize, p: f32) -> Answer {
        let Some(l) = self.labels.get(label) else {
            return Answer::Unknown;
        };
        if l.unseen_brand_auroc.is_nan()
            || l.unseen_brand_auroc < MIN_USEFUL_AUROC
            || !p.is_finite()
        {
            return Answer::Unknown;
        }
        if l.likely_at.is_some_and(|t| p >= t) {
            Answer::Likely
        } else if l.unlikely_at.is_some_and(|t| p <= t) {
            Answer::Unlikely
        } else {
            Answer::Unsure
        }
    }

    /// Whether label `label` is worth a relative statement.
    pub fn is_informative(&self, label: usize) -> bool {
        self.labels
            .get(label)
            .is_some_and(|l| l.unseen_brand_auroc >= MIN_USEFUL_AUROC)
    }

    /// Chooses the thresholds of one label from out-of-fold `(probability,
    /// labeled for it)` pairs. The share of labeled products is fitted as a
    /// non-decreasing function of the probability (isotonic regression, pool
    /// adjacent violators); "likely" starts at the lowest probability where
    /// it reaches [`LIKELY_SHARE`], "unlikely" ends at the highest where it
    /// is at most [`UNLIKELY_SHARE`]. Each side needs `min_support` products.
    pub fn fit_label(pairs: &[(f32, bool)], auroc: f32, min_support: usize) -> LabelAnswers {
        let mut sorted: Vec<(f32, bool)> =
            pairs.iter().copied().filter(|p| p.0.is_finite()).collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = sorted.len();
        // Blocks of (first index, count, labeled count), merged while a
        // block's share falls below the one before it; ties pooled first.
        let mut blocks: Vec<(usize, usize, usize)> = Vec::new();
        let mut i = 0;
        while i < n {
            let mut j = i;
            let mut labeled = 0;
            while j < n && sorted[j].0 == sorted[i].0 {
                labeled += usize::from(sorted[j].1);
                j += 1;
            }
            blocks.push((i, j - i, labeled));
            while blocks.len() > 1 {
                let (_, c1, l1) = blocks[blocks.len() - 1];
                let (s0, c0, l0) = blocks[blocks.len() - 2];
                if (l0 as f64) * (c1 as f64) <= (l1 as f64) * (c0 as f64) {
                    break;
                }
                blocks.truncate(blocks.len() - 2);
                blocks.push((s0, c0 + c1, l0 + l1));
            }
            i = j;
        }
        let share = |b: &(usize, usize, usize)| b.2 as f32 / b.1 as f32;
        let likely_at = blocks
            .iter()
            .find(|b| share(b) >= LIKELY_SHARE && n - b.0 >= min_support)
            .map(|b| sorted[b.0].0);
        let unlikely_at = blocks
            .iter()
            .rev()
            .find(|b| share(b) <= UNLIKELY_SHARE && b.0 + b.1 >= min_support)
            .map(|b| sorted[b.0 + b.1 - 1].0);
        LabelAnswers {
            unseen_brand_auroc: auroc,
            likely_at,
            unlikely_at,
        }
    }
}

/// A product's strongest lean among its own type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lean {
    pub label: usize,
    /// Share of the products of its type with a lower probability, 0–1.
    pub beats: f32,
}

/// For each product, the informative label whose probability beats the
/// largest share (at least [`LEAN_SHARE`]) of the products of the same
/// type, if any. `types[i]` is product `i`'s type, `predicted[i]` its
/// probabilities in label order.
pub fn leans(types: &[&str], predicted: &[&[f32]], answers: &SkinAnswers) -> Vec<Option<Lean>> {
    let labels = predicted.iter().map(|p| p.len()).max().unwrap_or(0);
    // Per type and label, every probability of that type, sorted.
    let mut by_type: std::collections::HashMap<&str, Vec<Vec<f32>>> =
        std::collections::HashMap::new();
    for (t, p) in types.iter().zip(predicted) {
        let columns = by_type.entry(t).or_insert_with(|| vec![Vec::new(); labels]);
        for (l, &v) in p.iter().enumerate() {
            columns[l].push(v);
        }
    }
    for columns in by_type.values_mut() {
        for c in columns.iter_mut() {
            c.sort_by(f32::total_cmp);
        }
    }
    types
        .iter()
        .zip(predicted)
        .map(|(t, p)| {
            let columns = &by_type[t];
            (0..p.len())
                .filter(|&l| answers.is_informative(l))
                .filter_map(|l| {
                    let column = &columns[l];
                    if column.len() < 2 {
                        return None;
                    }
                    let lower = column.partition_point(|&v| v < p[l]);
                    let beats = lower as f32 / (column.len() - 1) as f32;
                    (beats >= LEAN_SHARE).then_some(Lean { label: l, beats })
                })
                .max_by(|a, b| a.beats.total_cmp(&b.beats))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(auroc: f32, likely: Option<f32>, unlikely: Option<f32>) -> SkinAnswers {
        SkinAnswers {
            labels: vec![LabelAnswers {
                unseen_brand_auroc: auroc,
                likely_at: likely,
                unlikely_at: unlikely,
            }],
        }
    }

    #[test]
    fn answers_follow_the_thresholds_and_a_weak_label_is_unknown() {
        let a = answers(0.7, Some(0.8), Some(0.3));
        assert_eq!(a.answer(0, 0.9), Answer::Likely);
        assert_eq!(a.answer(0, 0.5), Answer::Unsure);
        assert_eq!(a.answer(0, 0.2), Answer::Unlikely);
        assert_eq!(
            a.answer(1, 0.9),
            Answer::Unknown,
            "no thresholds for the label"
        );
        assert_eq!(a.answer(0, f32::NAN), Answer::Unknown);
        assert_eq!(
            answers(0.52, Some(0.8), None).answer(0, 0.99),
            Answer::Unknown
        );
        assert_eq!(SkinAnswers::default().answer(0, 0.99), Answer::Unknown);
        for (i, a) in Answer::ALL.into_iter().enumerate() {
            assert_eq!(a.index(), i);
        }
    }

    #[test]
    fn thresholds_are_where_the_labels_bear_them_out() {
        // Low probabilities: 2 of 8 labeled; high ones: 19 of 20.
        let mut pairs: Vec<(f32, bool)> = (0..8).map(|i| (0.1 + 0.01 * i as f32, i < 2)).collect();
        pairs.extend((0..20).map(|i| (0.7 + 0.01 * i as f32, i != 0)));
        let l = SkinAnswers::fit_label(&pairs, 0.8, 5);
        let likely = l.likely_at.unwrap();
        let unlikely = l.unlikely_at.unwrap();
        assert!((0.1..=0.71).contains(&likely), "{likely}");
        assert!((0.17 - 1e-6..=0.7).contains(&unlikely), "{unlikely}");
        // Every product labeled: never "unlikely".
        let all: Vec<(f32, bool)> = (0..30).map(|i| (i as f32 / 30.0, true)).collect();
        let l = SkinAnswers::fit_label(&all, 0.5, 5);
        assert_eq!(l.likely_at, Some(0.0));
        assert_eq!(l.unlikely_at, None);
        // Too few products: no threshold.
        assert_eq!(SkinAnswers::fit_label(&all[..3], 0.9, 5).likely_at, None);
    }

    #[test]
    fn a_product_leans_where_it_beats_most_of_its_type() {
        let a = SkinAnswers {
            labels: vec![
                LabelAnswers {
                    unseen_brand_auroc: 0.7,
                    likely_at: None,
                    unlikely_at: None,
                },
                LabelAnswers {
                    unseen_brand_auroc: 0.5,
                    likely_at: None,
                    unlikely_at: None,
                },
            ],
        };
        let types = ["Cream"; 6];
        let rows: Vec<[f32; 2]> = (0..6)
            .map(|i| [i as f32 / 10.0, 1.0 - i as f32 / 10.0])
            .collect();
        let predicted: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
        let l = leans(&types, &predicted, &a);
        assert_eq!(
            l[5],
            Some(Lean {
                label: 0,
                beats: 1.0
            })
        );
        assert_eq!(
            l[4],
            Some(Lean {
                label: 0,
                beats: 0.8
            })
        );
        // Label 1 is not informative, so the first product leans nowhere.
        assert_eq!(l[0], None);
        assert_eq!(l[2], None);
    }
}
