//! Exact integer dot products for Milih's int8 paths: the encoder's matrix
//! products and the ranking of int8 product embeddings.
//!
//! [`dot_tile`] multiplies `T` rows of i16 with `O` rows of i8 and sums in
//! i32. Callers choose value ranges so that no sum can overflow, which makes
//! the result independent of summation order: the wasm SIMD, AVX2 and
//! portable kernels return the same integers, so native and browser agree
//! bit for bit.

/// Values per SIMD step. Rows need not be a multiple of it; the tail is
/// summed by plain code.
pub const STEP: usize = 16;

/// The i32 dot products of `T` i16 rows with `O` i8 rows, all of one length:
/// `out[t][o] = Σ x[t][i] · w[o][i]`.
///
/// Sums wrap rather than panic on overflow; callers keep
/// `len · max|x| · max|w| <= i32::MAX` so that they never do.
///
/// # Panics
/// When the rows are not all of one length.
pub fn dot_tile<const T: usize, const O: usize>(x: [&[i16]; T], w: [&[i8]; O]) -> [[i32; O]; T] {
    let len = w.first().map_or(0, |r| r.len());
    assert!(
        x.iter().all(|r| r.len() == len) && w.iter().all(|r| r.len() == len),
        "dot_tile rows differ in length"
    );
    let simd_len = len / STEP * STEP;
    let mut out = simd::tile(x.map(|r| &r[..simd_len]), w.map(|r| &r[..simd_len]));
    if simd_len < len {
        let tail = portable(x.map(|r| &r[simd_len..]), w.map(|r| &r[simd_len..]));
        for (row, tail_row) in out.iter_mut().zip(tail) {
            for (sum, t) in row.iter_mut().zip(tail_row) {
                *sum = sum.wrapping_add(t);
            }
        }
    }
    out
}

/// The same products by plain code, the reference of every SIMD kernel.
pub fn portable<const T: usize, const O: usize>(x: [&[i16]; T], w: [&[i8]; O]) -> [[i32; O]; T] {
    std::array::from_fn(|t| {
        std::array::from_fn(|o| {
            x[t].iter().zip(w[o]).fold(0i32, |s, (&a, &b)| {
                s.wrapping_add(i32::from(a) * i32::from(b))
            })
        })
    })
}

/// Rounds half to even for |x| < 2^22: adding and removing 1.5 · 2^23
/// leaves no fraction bits. Plain arithmetic, so loops using it vectorize on
/// every target (a library call on x86-64 without SSE4.1 otherwise).
#[inline(always)]
pub fn round_small(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// Largest magnitude of an int8 value. The range is symmetric: -128 is
/// never written, so stored values can be checked for it.
pub const INT8_LEVELS: f32 = 127.0;

/// The largest magnitude in `row` (0 for an empty row; NaN is skipped, an
/// infinity is returned as such).
pub fn largest_magnitude(row: &[f32]) -> f32 {
    // Eight running maxima the compiler can keep in vector lanes; the
    // largest of a set does not depend on the order it is taken in, and a
    // comparison with NaN is false, so NaN is skipped as before.
    let larger = |m: f32, v: f32| if v.abs() > m { v.abs() } else { m };
    let mut lanes = [0f32; 8];
    let mut blocks = row.chunks_exact(8);
    for block in &mut blocks {
        for (m, &v) in lanes.iter_mut().zip(block) {
            *m = larger(*m, v);
        }
    }
    let tail = blocks.remainder().iter().fold(0f32, |m, &v| larger(m, v));
    lanes.into_iter().fold(tail, larger)
}

/// `scaled` rounded half to even and clipped to ±[`INT8_LEVELS`].
#[inline(always)]
pub fn to_i8(scaled: f32) -> i8 {
    round_small(scaled.clamp(-INT8_LEVELS, INT8_LEVELS)) as i8
}

/// Quantizes `row` to int8 in `out` (same length): `out = to_i8(row ·
/// inverse)`, where `inverse` is the reciprocal of the caller's scale.
pub fn quantize_i8(row: &[f32], inverse: f32, out: &mut [i8]) {
    for (q, v) in out.iter_mut().zip(row) {
        *q = to_i8(v * inverse);
    }
}

/// The largest i16 magnitude for rows of `len` values multiplied with int8
/// values (at most [`INT8_LEVELS`]), such that no i32 sum can overflow.
pub fn activation_levels(len: usize) -> f32 {
    let bound = i32::MAX as usize / (len.max(1) * INT8_LEVELS as usize);
    bound.min(i16::MAX as usize) as f32
}

/// Quantizes `row` to i16 in `out` (same length) with magnitudes up to
/// `levels`; returns the scale (`row ≈ out · scale`), 0 for a row of zeros
/// or one that is not finite.
pub fn quantize_i16(row: &[f32], levels: f32, out: &mut [i16]) -> f32 {
    let top = largest_magnitude(row);
    if !(top > 0.0 && top.is_finite()) {
        out.iter_mut().for_each(|q| *q = 0);
        return 0.0;
    }
    let inverse = levels / top;
    for (q, v) in out.iter_mut().zip(row) {
        *q = round_small((v * inverse).clamp(-levels, levels)) as i16;
    }
    top / levels
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::STEP;
    use core::arch::wasm32::*;

    /// Rows a multiple of [`STEP`] long (checked by the caller).
    pub fn tile<const T: usize, const O: usize>(x: [&[i16]; T], w: [&[i8]; O]) -> [[i32; O]; T] {
        let len = w.first().map_or(0, |r| r.len());
        let mut acc = [[i32x4_splat(0); O]; T];
        let mut c = 0;
        while c + STEP <= len {
            // SAFETY: `c + STEP <= len` and every row holds `len` values, so
            // the 16 i8 and 2 × 8 i16 loads stay inside their rows.
            let weights: [(v128, v128); O] = std::array::from_fn(|o| {
                let packed = unsafe { v128_load(w[o].as_ptr().add(c) as *const v128) };
                (
                    i16x8_extend_low_i8x16(packed),
                    i16x8_extend_high_i8x16(packed),
                )
            });
            for t in 0..T {
                let (low, high) = unsafe {
                    let p = x[t].as_ptr().add(c);
                    (
                        v128_load(p as *const v128),
                        v128_load(p.add(8) as *const v128),
                    )
                };
                for o in 0..O {
                    let (w_low, w_high) = weights[o];
                    let both =
                        i32x4_add(i32x4_dot_i16x8(low, w_low), i32x4_dot_i16x8(high, w_high));
                    acc[t][o] = i32x4_add(acc[t][o], both);
                }
            }
            c += STEP;
        }
        acc.map(|row| {
            row.map(|v| {
                i32x4_extract_lane::<0>(v)
                    .wrapping_add(i32x4_extract_lane::<1>(v))
                    .wrapping_add(i32x4_extract_lane::<2>(v))
                    .wrapping_add(i32x4_extract_lane::<3>(v))
            })
        })
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod simd {
    /// Rows a multiple of [`super::STEP`] long (checked by the caller).
    pub fn tile<const T: usize, const O: usize>(x: [&[i16]; T], w: [&[i8]; O]) -> [[i32; O]; T] {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present; the rows are of one length, a
            // multiple of STEP.
            return unsafe { avx2::tile(x, w) };
        }
        super::portable(x, w)
    }

    #[cfg(target_arch = "x86_64")]
    mod avx2 {
        use super::super::STEP;
        use std::arch::x86_64::*;

        /// # Safety
        /// Needs AVX2, and every row of one length, a multiple of `STEP`.
        #[target_feature(enable = "avx2")]
        pub unsafe fn tile<const T: usize, const O: usize>(
            x: [&[i16]; T],
            w: [&[i8]; O],
        ) -> [[i32; O]; T] {
            let len = w.first().map_or(0, |r| r.len());
            let mut acc = [[_mm256_setzero_si256(); O]; T];
            let mut c = 0;
            while c + STEP <= len {
                let weights: [__m256i; O] = std::array::from_fn(|o| {
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(w[o].as_ptr().add(c) as *const __m128i))
                });
                for t in 0..T {
                    let values = _mm256_loadu_si256(x[t].as_ptr().add(c) as *const __m256i);
                    for o in 0..O {
                        acc[t][o] =
                            _mm256_add_epi32(acc[t][o], _mm256_madd_epi16(values, weights[o]));
                    }
                }
                c += STEP;
            }
            acc.map(|row| {
                row.map(|v| {
                    let mut lanes = [0i32; 8];
                    _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, v);
                    lanes.iter().fold(0i32, |s, &l| s.wrapping_add(l))
                })
            })
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_largest_magnitude_is_that_of_a_plain_fold() {
        let fold = |row: &[f32]| row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let mut row: Vec<f32> = (0..37).map(|i| ((i * 7919) % 23) as f32 - 11.5).collect();
        for len in [0, 1, 7, 8, 9, 16, 37] {
            assert_eq!(largest_magnitude(&row[..len]), fold(&row[..len]), "{len}");
        }
        row[3] = f32::NAN;
        row[30] = -40.0;
        assert_eq!(largest_magnitude(&row), 40.0);
        row[12] = f32::NEG_INFINITY;
        assert_eq!(largest_magnitude(&row), f32::INFINITY);
        assert_eq!(largest_magnitude(&[f32::NAN; 9]), 0.0);
    }
    use super::*;

    /// A fixed pseudo-random sequence (xorshift) of i16 and i8 values.
    fn values(n: usize, seed: u64) -> (Vec<i16>, Vec<i8>) {
        let mut state = seed | 1;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let x = (0..n)
            .map(|_| (next() % 65_535) as i32 - 32_767)
            .map(|v| v as i16)
            .collect();
        let w = (0..n)
            .map(|_| ((next() % 255) as i32 - 127) as i8)
            .collect();
        (x, w)
    }

    #[test]
    fn simd_tiles_equal_the_portable_sums_at_every_length() {
        for len in [0, 1, 15, 16, 17, 50, 384, 389, 1536] {
            let rows: Vec<(Vec<i16>, Vec<i8>)> = (0..4).map(|s| values(len, 7 + s)).collect();
            let x: [&[i16]; 4] = std::array::from_fn(|t| rows[t].0.as_slice());
            let w: [&[i8]; 2] = [&rows[0].1, &rows[1].1];
            assert_eq!(dot_tile(x, w), portable(x, w), "length {len}");
            let single: [&[i8]; 1] = [&rows[3].1];
            assert_eq!(dot_tile([x[2]], single), portable([x[2]], single));
            let four: [&[i8]; 4] = std::array::from_fn(|o| rows[o].1.as_slice());
            assert_eq!(dot_tile([x[0]], four), portable([x[0]], four));
        }
    }

    #[test]
    fn extreme_values_sum_exactly_within_the_activation_range() {
        let len = 1536;
        let levels = activation_levels(len) as i16;
        let x = vec![-levels; len];
        let w = vec![-127i8; len];
        let got = dot_tile([&x[..]], [&w[..]])[0][0];
        assert_eq!(i64::from(got), len as i64 * i64::from(levels) * 127);
    }

    #[test]
    #[should_panic(expected = "differ in length")]
    fn rows_of_different_lengths_are_refused() {
        dot_tile([&[1i16, 2][..]], [&[1i8][..]]);
    }

    #[test]
    fn rounding_is_half_to_even() {
        for (x, want) in [(0.5, 0.0), (1.5, 2.0), (2.5, 2.0), (-1.5, -2.0), (3.7, 4.0)] {
            assert_eq!(round_small(x), want, "round({x})");
        }
        for i in -40_000..40_000 {
            let x = i as f32 * 0.37;
            assert_eq!(round_small(x), x.round_ties_even(), "round({x})");
        }
    }

    #[test]
    fn int8_values_round_to_even_and_stay_within_127() {
        let mut q = [0i8; 6];
        quantize_i8(
            &[0.5, 1.5, -2.5, 300.0, -300.0, f32::NEG_INFINITY],
            1.0,
            &mut q,
        );
        assert_eq!(q, [0, 2, -2, 127, -127, -127]);
        assert_eq!(largest_magnitude(&[0.5, -3.0, 2.0]), 3.0);
        assert_eq!(largest_magnitude(&[]), 0.0);
    }

    #[test]
    fn quantized_rows_come_back_within_half_a_step() {
        let row: Vec<f32> = (0..100).map(|i| (i as f32 * 0.7).sin()).collect();
        let mut q = vec![0i16; row.len()];
        let scale = quantize_i16(&row, 1000.0, &mut q);
        for (v, q) in row.iter().zip(&q) {
            assert!((v - f32::from(*q) * scale).abs() <= scale / 2.0 + 1e-7);
        }
        assert_eq!(quantize_i16(&[0.0, f32::NAN], 1000.0, &mut q[..2]), 0.0);
        assert_eq!(&q[..2], &[0, 0]);
    }
}
