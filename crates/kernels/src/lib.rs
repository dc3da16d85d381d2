//! Exact integer dot products for Milih's int8 paths: the encoder's matrix
//! products and the ranking of int8 product embeddings.
//!
//! [`dot_tile`] multiplies `T` rows of i16 with `O` rows of i8 and sums in
//! i32; [`dot_tile_narrow`] does the same for 7-bit unsigned rows (0..=127),
//! which relaxed SIMD multiplies 16 at a time in one instruction. Callers
//! choose value ranges so that no sum can overflow, which makes the result
//! independent of summation order: the wasm SIMD (plain and relaxed), AVX2
//! and portable kernels return the same integers, so native and browser
//! agree bit for bit.

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
    in_steps(x, w, simd::tile, portable)
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

/// Largest value of a narrow activation: 7 bits, so that the relaxed dot
/// product reads it the same whether the engine takes its bytes as signed
/// or unsigned.
pub const NARROW_LEVELS: u8 = 127;

/// The i32 dot products of `T` narrow rows (values 0..=[`NARROW_LEVELS`])
/// with `O` rows of i8 (never -128), all of one length.
///
/// With those ranges a pair of products stays within i16 (2 · 127 · 127),
/// so instructions that add pairs in 16 bits cannot saturate, and no i32
/// sum overflows below 133,000 values.
///
/// # Panics
/// When the rows are not all of one length.
pub fn dot_tile_narrow<const T: usize, const O: usize>(
    x: [&[u8]; T],
    w: [&[i8]; O],
) -> [[i32; O]; T] {
    // A closure: the relaxed kernel is a `#[target_feature]` function, which
    // is no `Fn` itself (elsewhere the closure is redundant).
    #[allow(clippy::redundant_closure)]
    let kernel = |x: [&[u8]; T], w: [&[i8]; O]| simd::narrow_tile(x, w);
    in_steps(x, w, kernel, portable_narrow)
}

/// `simd` over the longest prefix of whole [`STEP`]s, `plain` over the rest.
fn in_steps<X, const T: usize, const O: usize>(
    x: [&[X]; T],
    w: [&[i8]; O],
    simd: impl Fn([&[X]; T], [&[i8]; O]) -> [[i32; O]; T],
    plain: impl Fn([&[X]; T], [&[i8]; O]) -> [[i32; O]; T],
) -> [[i32; O]; T] {
    let len = w.first().map_or(0, |r| r.len());
    assert!(
        x.iter().all(|r| r.len() == len) && w.iter().all(|r| r.len() == len),
        "dot_tile rows differ in length"
    );
    let simd_len = len / STEP * STEP;
    let mut out = simd(x.map(|r| &r[..simd_len]), w.map(|r| &r[..simd_len]));
    if simd_len < len {
        let tail = plain(x.map(|r| &r[simd_len..]), w.map(|r| &r[simd_len..]));
        for (row, tail_row) in out.iter_mut().zip(tail) {
            for (sum, t) in row.iter_mut().zip(tail_row) {
                *sum = sum.wrapping_add(t);
            }
        }
    }
    out
}

/// The sum of each `len`-long row of `values`: what a zero point of the
/// other operand adds to that row's products (see [`dot_tile_narrow`]).
pub fn row_sums(values: &[i8], len: usize) -> Vec<i32> {
    values
        .chunks_exact(len.max(1))
        .map(|row| row.iter().map(|&v| i32::from(v)).sum())
        .collect()
}

/// [`dot_tile_narrow`] by plain code, the reference of its SIMD kernels.
pub fn portable_narrow<const T: usize, const O: usize>(
    x: [&[u8]; T],
    w: [&[i8]; O],
) -> [[i32; O]; T] {
    std::array::from_fn(|t| {
        std::array::from_fn(|o| {
            x[t].iter().zip(w[o]).fold(0i32, |s, (&a, &b)| {
                s.wrapping_add(i32::from(a) * i32::from(b))
            })
        })
    })
}

/// Whether this build multiplies narrow rows with relaxed SIMD (a wasm
/// build with the `relaxed-simd` feature; such a module only loads in
/// engines that have it).
pub const RELAXED_SIMD: bool = cfg!(all(
    target_arch = "wasm32",
    target_feature = "simd128",
    feature = "relaxed-simd"
));

/// Quantizes `row` to narrow values in `out` (same length) with one scale
/// and zero point: `row ≈ (out - zero) · scale`. The range always holds 0,
/// so zero is exact. Returns `(scale, zero)`; `(0, 0)` with all values 0
/// for a row of zeros or one that is not finite.
pub fn quantize_narrow(row: &[f32], out: &mut [u8]) -> (f32, i32) {
    let (low, high) = extremes(row);
    let span = high - low;
    if !(span > 0.0 && span.is_finite()) {
        out.iter_mut().for_each(|q| *q = 0);
        return (0.0, 0);
    }
    let levels = f32::from(NARROW_LEVELS);
    let scale = span / levels;
    let inverse = levels / span;
    let zero = round_small(-low * inverse).clamp(0.0, levels);
    let done = simd::scale_to_narrow(row, inverse, zero, out);
    for (q, v) in out[done..].iter_mut().zip(&row[done..]) {
        *q = round_small(v * inverse + zero).clamp(0.0, levels) as u8;
    }
    (scale, zero as i32)
}

/// The smallest and largest value of `row` and 0 (NaN is skipped).
fn extremes(row: &[f32]) -> (f32, f32) {
    // Running extremes in eight lanes the compiler keeps in vector
    // registers (see `largest_magnitude`).
    let (mut lows, mut highs) = ([0f32; 8], [0f32; 8]);
    let mut blocks = row.chunks_exact(8);
    for block in &mut blocks {
        for ((lo, hi), &v) in lows.iter_mut().zip(&mut highs).zip(block) {
            *lo = if v < *lo { v } else { *lo };
            *hi = if v > *hi { v } else { *hi };
        }
    }
    let fold = |(lo, hi): (f32, f32), (l, h): (f32, f32)| {
        (if l < lo { l } else { lo }, if h > hi { h } else { hi })
    };
    let tail = blocks.remainder().iter().map(|&v| (v, v));
    lows.into_iter()
        .zip(highs)
        .chain(tail)
        .fold((0.0, 0.0), fold)
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
    let done = simd::scale_to_i16(row, inverse, levels, out);
    for (q, v) in out[done..].iter_mut().zip(&row[done..]) {
        *q = round_small((v * inverse).clamp(-levels, levels)) as i16;
    }
    top / levels
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::STEP;
    use core::arch::wasm32::*;

    pub use super::simd_narrow::narrow_tile;

    /// The first `row.len() / 16 * 16` values of [`super::quantize_narrow`]'s
    /// loop, 16 at a time; returns how many were written. The same IEEE
    /// operations in the same order (no fused multiply-add), `nearest` is
    /// round-half-to-even like `round_small`, and NaN ends as 0 as there.
    pub fn scale_to_narrow(row: &[f32], inverse: f32, zero: f32, out: &mut [u8]) -> usize {
        let (inverse, zero) = (f32x4_splat(inverse), f32x4_splat(zero));
        let (floor, ceiling) = (
            f32x4_splat(0.0),
            f32x4_splat(f32::from(super::NARROW_LEVELS)),
        );
        let n = row.len().min(out.len()) / 16 * 16;
        let four = |at: usize| {
            // SAFETY: `at + 4 <= n <= row.len()`.
            let v = unsafe { v128_load(row.as_ptr().add(at) as *const v128) };
            let scaled = f32x4_nearest(f32x4_add(f32x4_mul(v, inverse), zero));
            // `pmax(x, 0)` keeps NaN (the comparison is false), so that
            // the saturating conversion turns it into 0.
            i32x4_trunc_sat_f32x4(f32x4_pmin(f32x4_pmax(scaled, floor), ceiling))
        };
        for at in (0..n).step_by(16) {
            let low = i16x8_narrow_i32x4(four(at), four(at + 4));
            let high = i16x8_narrow_i32x4(four(at + 8), four(at + 12));
            // SAFETY: `at + 16 <= n <= out.len()`.
            unsafe {
                v128_store(
                    out.as_mut_ptr().add(at) as *mut v128,
                    u8x16_narrow_i16x8(low, high),
                )
            };
        }
        n
    }

    /// The first `row.len() / 8 * 8` values of [`super::quantize_i16`]'s
    /// loop, 8 at a time (as [`scale_to_narrow`]); returns how many.
    pub fn scale_to_i16(row: &[f32], inverse: f32, levels: f32, out: &mut [i16]) -> usize {
        let inverse = f32x4_splat(inverse);
        let (floor, ceiling) = (f32x4_splat(-levels), f32x4_splat(levels));
        let n = row.len().min(out.len()) / 8 * 8;
        let four = |at: usize| {
            // SAFETY: `at + 4 <= n <= row.len()`.
            let v = unsafe { v128_load(row.as_ptr().add(at) as *const v128) };
            let clamped = f32x4_pmin(f32x4_pmax(f32x4_mul(v, inverse), floor), ceiling);
            i32x4_trunc_sat_f32x4(f32x4_nearest(clamped))
        };
        for at in (0..n).step_by(8) {
            let both = i16x8_narrow_i32x4(four(at), four(at + 4));
            // SAFETY: `at + 8 <= n <= out.len()`.
            unsafe { v128_store(out.as_mut_ptr().add(at) as *mut v128, both) };
        }
        n
    }

    /// Rows a multiple of [`STEP`] long (checked by the caller).
    pub fn tile<const T: usize, const O: usize>(x: [&[i16]; T], w: [&[i8]; O]) -> [[i32; O]; T] {
        widened_tile(x, w, |row, c| {
            // SAFETY: `c + STEP <= len`: the 2 × 8 i16 loads stay inside the row.
            unsafe {
                let p = row.as_ptr().add(c);
                (
                    v128_load(p as *const v128),
                    v128_load(p.add(8) as *const v128),
                )
            }
        })
    }

    /// The products of rows a multiple of [`STEP`] long (checked by the
    /// caller) in i16 pairs: `load(row, c)` gives values `c..c + 16` of an
    /// activation row as two i16x8 vectors; the weights are widened here.
    #[inline(always)]
    pub(super) fn widened_tile<X, const T: usize, const O: usize>(
        x: [&[X]; T],
        w: [&[i8]; O],
        load: impl Fn(&[X], usize) -> (v128, v128),
    ) -> [[i32; O]; T] {
        let len = w.first().map_or(0, |r| r.len());
        let mut acc = [[i32x4_splat(0); O]; T];
        let mut c = 0;
        while c + STEP <= len {
            // SAFETY: `c + STEP <= len` and every row holds `len` values, so
            // the 16 i8 loads stay inside their rows.
            let weights: [(v128, v128); O] = std::array::from_fn(|o| {
                let packed = unsafe { v128_load(w[o].as_ptr().add(c) as *const v128) };
                (
                    i16x8_extend_low_i8x16(packed),
                    i16x8_extend_high_i8x16(packed),
                )
            });
            for t in 0..T {
                let (low, high) = load(x[t], c);
                for o in 0..O {
                    let (w_low, w_high) = weights[o];
                    let both =
                        i32x4_add(i32x4_dot_i16x8(low, w_low), i32x4_dot_i16x8(high, w_high));
                    acc[t][o] = i32x4_add(acc[t][o], both);
                }
            }
            c += STEP;
        }
        super::simd_narrow::lane_sums(acc)
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd_narrow {
    #[cfg(feature = "relaxed-simd")]
    use super::STEP;
    use core::arch::wasm32::*;

    /// `[Σ a, Σ b, Σ c, Σ d]` of four vectors' lanes: two rounds of
    /// pairing lanes (6 shuffles and 3 additions, where taking each lane
    /// out would cost 16 extractions and 12 additions).
    #[inline(always)]
    fn sum_four(a: v128, b: v128, c: v128, d: v128) -> v128 {
        let ab = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(a, b),
            i32x4_shuffle::<2, 6, 3, 7>(a, b),
        );
        let cd = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(c, d),
            i32x4_shuffle::<2, 6, 3, 7>(c, d),
        );
        i32x4_add(
            i32x4_shuffle::<0, 1, 4, 5>(ab, cd),
            i32x4_shuffle::<2, 3, 6, 7>(ab, cd),
        )
    }

    #[inline(always)]
    pub(super) fn lane_sums<const T: usize, const O: usize>(acc: [[v128; O]; T]) -> [[i32; O]; T] {
        let mut out = [[0i32; O]; T];
        let all: &[v128] = acc.as_flattened();
        let sums: &mut [i32] = out.as_flattened_mut();
        let mut quads = all.chunks_exact(4);
        let mut at = 0;
        for quad in &mut quads {
            let mut four = [0i32; 4];
            // SAFETY: `four` holds 16 bytes.
            unsafe {
                v128_store(
                    four.as_mut_ptr() as *mut v128,
                    sum_four(quad[0], quad[1], quad[2], quad[3]),
                )
            };
            sums[at..at + 4].copy_from_slice(&four);
            at += 4;
        }
        for (sum, &v) in sums[at..].iter_mut().zip(quads.remainder()) {
            *sum = i32x4_extract_lane::<0>(v)
                .wrapping_add(i32x4_extract_lane::<1>(v))
                .wrapping_add(i32x4_extract_lane::<2>(v))
                .wrapping_add(i32x4_extract_lane::<3>(v));
        }
        out
    }

    /// Relaxed SIMD: 16 products and their sum into 4 lanes, one
    /// instruction. Rows a multiple of [`STEP`] long (checked by the caller).
    #[cfg(feature = "relaxed-simd")]
    #[target_feature(enable = "relaxed-simd")]
    pub fn narrow_tile<const T: usize, const O: usize>(
        x: [&[u8]; T],
        w: [&[i8]; O],
    ) -> [[i32; O]; T] {
        let len = w.first().map_or(0, |r| r.len());
        let mut acc = [[i32x4_splat(0); O]; T];
        let mut c = 0;
        while c + STEP <= len {
            // SAFETY: `c + STEP <= len` and every row holds `len` values.
            let weights: [v128; O] =
                std::array::from_fn(|o| unsafe { v128_load(w[o].as_ptr().add(c) as *const v128) });
            for t in 0..T {
                let values = unsafe { v128_load(x[t].as_ptr().add(c) as *const v128) };
                for o in 0..O {
                    // The weights are the signed operand; the values, at
                    // most 127, read the same signed or unsigned.
                    acc[t][o] = i32x4_relaxed_dot_i8x16_i7x16_add(weights[o], values, acc[t][o]);
                }
            }
            c += STEP;
        }
        lane_sums(acc)
    }

    /// Plain SIMD: both sides widened to i16, then pairwise products.
    #[cfg(not(feature = "relaxed-simd"))]
    pub fn narrow_tile<const T: usize, const O: usize>(
        x: [&[u8]; T],
        w: [&[i8]; O],
    ) -> [[i32; O]; T] {
        super::simd::widened_tile(x, w, |row, c| {
            // SAFETY: `c + STEP <= len`: the 16 u8 load stays inside the row.
            let packed = unsafe { v128_load(row.as_ptr().add(c) as *const v128) };
            (
                u16x8_extend_low_u8x16(packed),
                u16x8_extend_high_u8x16(packed),
            )
        })
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod simd {
    /// No vector code here: the plain loops (which the compiler vectorizes
    /// where it can) write every value.
    pub fn scale_to_narrow(_: &[f32], _: f32, _: f32, _: &mut [u8]) -> usize {
        0
    }

    pub fn scale_to_i16(_: &[f32], _: f32, _: f32, _: &mut [i16]) -> usize {
        0
    }

    /// Rows a multiple of [`super::STEP`] long (checked by the caller).
    pub fn narrow_tile<const T: usize, const O: usize>(
        x: [&[u8]; T],
        w: [&[i8]; O],
    ) -> [[i32; O]; T] {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present; the rows are of one length, a
            // multiple of STEP.
            return unsafe { avx2::narrow_tile(x, w) };
        }
        super::portable_narrow(x, w)
    }

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
            sum_lanes(acc)
        }

        #[target_feature(enable = "avx2")]
        unsafe fn sum_lanes<const T: usize, const O: usize>(
            acc: [[__m256i; O]; T],
        ) -> [[i32; O]; T] {
            acc.map(|row| {
                row.map(|v| {
                    let mut lanes = [0i32; 8];
                    _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, v);
                    lanes.iter().fold(0i32, |s, &l| s.wrapping_add(l))
                })
            })
        }

        /// Narrow rows: unsigned × signed bytes added in pairs (at most
        /// 2 · 127 · 127, so never saturated), then pairs of those in i32.
        ///
        /// # Safety
        /// Needs AVX2, and every row of one length, a multiple of `STEP`.
        #[target_feature(enable = "avx2")]
        pub unsafe fn narrow_tile<const T: usize, const O: usize>(
            x: [&[u8]; T],
            w: [&[i8]; O],
        ) -> [[i32; O]; T] {
            let len = w.first().map_or(0, |r| r.len());
            let ones = _mm256_set1_epi16(1);
            let mut acc = [[_mm256_setzero_si256(); O]; T];
            let mut c = 0;
            while c + 2 * STEP <= len {
                let weights: [__m256i; O] = std::array::from_fn(|o| {
                    _mm256_loadu_si256(w[o].as_ptr().add(c) as *const __m256i)
                });
                for t in 0..T {
                    let values = _mm256_loadu_si256(x[t].as_ptr().add(c) as *const __m256i);
                    for o in 0..O {
                        let pairs = _mm256_maddubs_epi16(values, weights[o]);
                        acc[t][o] = _mm256_add_epi32(acc[t][o], _mm256_madd_epi16(pairs, ones));
                    }
                }
                c += 2 * STEP;
            }
            let mut out = sum_lanes(acc);
            if c < len {
                let tail = super::super::portable_narrow(x.map(|r| &r[c..]), w.map(|r| &r[c..]));
                for (row, tail_row) in out.iter_mut().zip(tail) {
                    for (sum, t) in row.iter_mut().zip(tail_row) {
                        *sum = sum.wrapping_add(t);
                    }
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    // In the browser (scripts/test.sh) the same tests check the wasm SIMD
    // kernels, plain and relaxed, against the portable sums.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

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
    fn narrow_tiles_equal_the_portable_sums_at_every_length() {
        for len in [0, 1, 15, 16, 17, 32, 48, 50, 384, 389, 1536] {
            let rows: Vec<(Vec<u8>, Vec<i8>)> = (0..4)
                .map(|s| {
                    let (x, w) = values(len, 11 + s);
                    (x.iter().map(|&v| (v as u16 % 128) as u8).collect(), w)
                })
                .collect();
            let x: [&[u8]; 4] = std::array::from_fn(|t| rows[t].0.as_slice());
            let w: [&[i8]; 2] = [&rows[0].1, &rows[1].1];
            assert_eq!(dot_tile_narrow(x, w), portable_narrow(x, w), "length {len}");
            let single: [&[i8]; 1] = [&rows[3].1];
            assert_eq!(
                dot_tile_narrow([x[2]], single),
                portable_narrow([x[2]], single)
            );
        }
    }

    #[test]
    fn vector_quantization_equals_the_plain_loops() {
        for len in [1, 7, 8, 15, 16, 17, 33, 384, 1536] {
            let mut row: Vec<f32> = (0..len)
                .map(|i| ((i * 7919 % 1000) as f32 - 380.0) / 97.0)
                .collect();
            if len > 20 {
                row[len / 2] = f32::NAN;
                row[3] = 0.5; // ties round to even
            }
            let (mut narrow, mut wide) = (vec![0u8; len], vec![0i16; len]);
            let (scale, zero) = quantize_narrow(&row, &mut narrow);
            let top = largest_magnitude(&row);
            let wide_scale = quantize_i16(&row, 8_191.0, &mut wide);
            for (i, &v) in row.iter().enumerate() {
                let span = extremes(&row);
                let inverse = f32::from(NARROW_LEVELS) / (span.1 - span.0);
                let want = round_small(v * inverse + zero as f32).clamp(0.0, 127.0) as u8;
                assert_eq!(narrow[i], want, "narrow {i} of {len}");
                let want = round_small((v * (8_191.0 / top)).clamp(-8_191.0, 8_191.0)) as i16;
                assert_eq!(wide[i], want, "wide {i} of {len}");
            }
            assert!(scale > 0.0 && wide_scale > 0.0);
        }
    }

    #[test]
    fn narrow_extremes_sum_exactly() {
        // The largest pair sums a 16-bit pairwise step can meet, both signs.
        let len = 1536;
        let x = vec![NARROW_LEVELS; len];
        for weight in [127i8, -127] {
            let w = vec![weight; len];
            let got = dot_tile_narrow([&x[..]], [&w[..]])[0][0];
            assert_eq!(i64::from(got), len as i64 * 127 * i64::from(weight));
        }
    }

    #[test]
    fn narrow_rows_come_back_within_half_a_step_with_zero_exact() {
        let row: Vec<f32> = (0..100).map(|i| (i as f32 * 0.7).sin() + 0.3).collect();
        let mut q = vec![0u8; row.len()];
        let (scale, zero) = quantize_narrow(&row, &mut q);
        assert!(q.iter().all(|&v| v <= NARROW_LEVELS));
        for (v, &q) in row.iter().zip(&q) {
            let back = (i32::from(q) - zero) as f32 * scale;
            assert!((v - back).abs() <= scale / 2.0 + 1e-6, "{v} vs {back}");
        }
        let mut zeros = [9u8; 3];
        assert_eq!(quantize_narrow(&[0.0, 2.0, -1.0], &mut zeros).1, 42);
        assert_eq!(zeros[0], 42, "0 is a whole step");
        assert_eq!(quantize_narrow(&[0.0, f32::NAN], &mut zeros[..2]), (0.0, 0));
        assert_eq!(
            quantize_narrow(&[f32::INFINITY, 1.0], &mut zeros[..2]),
            (0.0, 0)
        );
        assert_eq!(&zeros[..2], &[0, 0]);
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
    #[cfg(not(target_arch = "wasm32"))] // a panic aborts a wasm test run
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
