//! GELU in its erf form and its derivative, for inference and training
//! alike. Plain arithmetic only (no library `erf` or `exp`), so loops over
//! it vectorize and give the same values on every target.

use milih_kernels::round_small;

/// GELU in its erf form, `x Φ(x)`, with erf from Abramowitz & Stegun 7.1.26
/// (absolute error below 1.5e-7).
pub fn gelu(x: f32) -> f32 {
    x * normal_cdf(x)
}

/// The derivative of [`gelu`]: `Φ(x) + x φ(x)`.
pub fn gelu_derivative(x: f32) -> f32 {
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    normal_cdf(x) + x * FRAC_1_SQRT_2PI * exp_nonpositive(-0.5 * x * x)
}

/// The standard normal distribution function `Φ(x) = (1 + erf(x/√2)) / 2`.
fn normal_cdf(x: f32) -> f32 {
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let erf_abs = 1.0 - poly * exp_nonpositive(-a * a);
    0.5 * (1.0 + erf_abs.copysign(z))
}

/// `e^x` for `x <= 0` (relative error about 2e-7; e^-87 below -87).
/// Plain arithmetic, so that loops over it vectorize.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    let x = x.max(-87.0);
    // x = n ln2 + r with |r| <= ln2 / 2; ln2 split in two for exactness.
    let n = round_small(x * std::f32::consts::LOG2_E);
    let r = (x - n * 0.693_145_75) - n * 1.428_606_8e-6;
    // Taylor polynomial of e^r to degree 6.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2^n by building the float's exponent (n >= -126 here).
    let two_n = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * two_n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_matches_the_erf_form() {
        for i in -420..=420 {
            let x = i as f32 / 100.0;
            let exact = 0.5 * f64::from(x) * (1.0 + erf(f64::from(x) / std::f64::consts::SQRT_2));
            assert!(
                (f64::from(gelu(x)) - exact).abs() < 1e-6 * (1.0 + exact.abs()),
                "gelu({x})"
            );
        }
        // Beyond 4.2 the tails are below 6e-5 of x.
        for i in 420..=10_000 {
            let x = i as f32 / 100.0;
            assert!(
                (-1e-4..=0.0).contains(&gelu(-x)),
                "gelu(-{x}) = {}",
                gelu(-x)
            );
            assert!((gelu(x) - x).abs() <= 1e-4 * x, "gelu({x}) = {}", gelu(x));
        }
    }

    #[test]
    fn the_exponential_is_close_over_its_whole_range() {
        for i in 0..=8700 {
            let x = -(i as f32) / 100.0;
            let want = f64::from(x).exp();
            let got = f64::from(exp_nonpositive(x));
            assert!(
                (got - want).abs() <= 5e-7 * want + 1e-38,
                "exp({x}) = {got}, not {want}"
            );
        }
    }

    /// erf by its Taylor series, exact to about 1e-12 for |x| <= 3.
    fn erf(x: f64) -> f64 {
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }
}
