//! Paired bootstrap intervals for "Milih minus a baseline".
//!
//! Each split of a protocol has its own test units (queries, or held-out
//! products). A resample draws, within every split, as many units as it has
//! with replacement; both methods are scored on the same draw, and the
//! difference is averaged over the splits, as the reported means are. The
//! 2.5th and 97.5th percentiles of that difference over the resamples make
//! the 95 % interval.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Resamples per interval.
pub const RESAMPLES: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The difference on the data as it is.
    pub difference: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// Whether the whole interval lies above zero.
    pub fn above_zero(&self) -> bool {
        self.low > 0.0
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:+.3} [{:+.3}, {:+.3}]",
            self.difference, self.low, self.high
        )
    }
}

/// The interval of `difference(split, units)` averaged over splits, where
/// `sizes[split]` is the number of test units of that split and `units`
/// the drawn unit indices (all of them, in order, for the point value).
/// `None` when some split has no units.
pub fn paired_interval(
    sizes: &[usize],
    difference: impl Fn(usize, &[usize]) -> f64,
    seed: u64,
) -> Option<Interval> {
    if sizes.is_empty() || sizes.contains(&0) {
        return None;
    }
    let mean_over_splits = |draw: &dyn Fn(usize) -> Vec<usize>| {
        (0..sizes.len())
            .map(|s| difference(s, &draw(s)))
            .sum::<f64>()
            / sizes.len() as f64
    };
    let point = mean_over_splits(&|s| (0..sizes[s]).collect());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let draws: Vec<Vec<usize>> = sizes
                .iter()
                .map(|&n| (0..n).map(|_| rng.random_range(0..n)).collect())
                .collect();
            mean_over_splits(&|s| draws[s].clone())
        })
        .filter(|v| v.is_finite())
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Some(Interval {
        difference: point,
        low: at(0.025),
        high: at(0.975),
    })
}

/// Mean of the paired differences `a[i] - b[i]` over the drawn units.
pub fn mean_difference(a: &[f64], b: &[f64], units: &[usize]) -> f64 {
    units.iter().map(|&i| a[i] - b[i]).sum::<f64>() / units.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clear_difference_gives_an_interval_above_zero() {
        let a: Vec<Vec<f64>> = (0..3)
            .map(|s| (0..40).map(|i| 0.6 + 0.01 * ((i + s) % 5) as f64).collect())
            .collect();
        let b: Vec<Vec<f64>> = a
            .iter()
            .map(|v| v.iter().map(|x| x - 0.1).collect())
            .collect();
        let sizes: Vec<usize> = a.iter().map(Vec::len).collect();
        let interval = paired_interval(&sizes, |s, u| mean_difference(&a[s], &b[s], u), 1).unwrap();
        assert!((interval.difference - 0.1).abs() < 1e-9);
        assert!(interval.above_zero());
        assert!(interval.low <= interval.difference && interval.difference <= interval.high);
    }

    #[test]
    fn noise_around_zero_gives_an_interval_across_zero() {
        let a: Vec<f64> = (0..60)
            .map(|i| if i % 2 == 0 { 1.0 } else { 0.0 })
            .collect();
        let b: Vec<f64> = (0..60)
            .map(|i| if i % 3 == 0 { 1.0 } else { 0.0 })
            .collect();
        let interval = paired_interval(&[60], |_, u| mean_difference(&a, &b, u), 7).unwrap();
        assert!(interval.low < 0.0 && interval.high > 0.0, "{interval}");
        assert_eq!(
            interval,
            paired_interval(&[60], |_, u| mean_difference(&a, &b, u), 7).unwrap()
        );
    }

    #[test]
    fn a_split_without_units_has_no_interval() {
        assert!(paired_interval(&[3, 0], |_, _| 0.0, 1).is_none());
        assert!(paired_interval(&[], |_, _| 0.0, 1).is_none());
    }
}
