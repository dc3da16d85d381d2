//! Integer matrix products for inference.
//!
//! Encoder matrices are kept as int8 with one scale per output row, and
//! each token's activations are quantized on the fly with one scale per
//! token: to i16 ([`Precision::Wide`]), or to 7 bits with a zero point
//! ([`Precision::Narrow`]), which relaxed SIMD multiplies twice as fast.
//! Products are accumulated exactly in i32: the activation range is chosen
//! from the row length so that no sum can overflow. Integer sums
//! do not depend on their order, so the browser's SIMD kernels, the native
//! AVX2 kernels and the portable fallback give bit-identical results, and
//! the catalog embeddings exported natively are what the browser computes.
//!
//! Weights are read in their packed order with no per-call repacking, which
//! is where a general f32 GEMM spends much of its time on a short query.

use crate::gelu::gelu;
use milih_kernels::{
    activation_levels, dot_tile, dot_tile_narrow, largest_magnitude, quantize_i16, quantize_i8,
    quantize_narrow, row_sums, to_i8, INT8_LEVELS, STEP,
};

/// A `(rows, cols)` weight matrix, one output per row, as int8 with one
/// scale per row.
pub struct Int8Matrix {
    rows: usize,
    cols: usize,
    /// Row length in memory: `cols` rounded up to [`STEP`].
    stride: usize,
    values: Vec<i8>,
    scales: Vec<f32>,
    /// Each row's sum of values: what a zero point adds to its products.
    sums: Vec<i32>,
}

impl Int8Matrix {
    /// Quantizes row-major f32 weights: each row is scaled so that its
    /// largest magnitude maps to 127.
    pub fn quantize(weights: &[f32], rows: usize, cols: usize) -> Self {
        Self::quantize_with(weights, rows, cols, |row| {
            largest_magnitude(row) / INT8_LEVELS
        })
    }

    /// [`Int8Matrix::quantize`] with each row's scale chosen by `scale_of`
    /// (values beyond 127 steps are clipped).
    pub fn quantize_with(
        weights: &[f32],
        rows: usize,
        cols: usize,
        scale_of: impl Fn(&[f32]) -> f32,
    ) -> Self {
        assert_eq!(weights.len(), rows * cols, "weights are not {rows}x{cols}");
        Self::quantize_rows(
            rows,
            cols,
            |r, row| row.copy_from_slice(&weights[r * cols..(r + 1) * cols]),
            scale_of,
        )
    }

    /// [`Int8Matrix::quantize`] of a matrix handed over row by row:
    /// `fill(r, row)` writes row `r`'s values, so that the whole matrix is
    /// never held in f32.
    pub fn quantize_by_row(rows: usize, cols: usize, fill: impl FnMut(usize, &mut [f32])) -> Self {
        Self::quantize_rows(rows, cols, fill, |row| largest_magnitude(row) / INT8_LEVELS)
    }

    fn quantize_rows(
        rows: usize,
        cols: usize,
        mut fill: impl FnMut(usize, &mut [f32]),
        scale_of: impl Fn(&[f32]) -> f32,
    ) -> Self {
        let stride = cols.div_ceil(STEP) * STEP;
        let mut values = vec![0i8; rows * stride];
        let mut scales = vec![0f32; rows];
        let mut row = vec![0f32; cols];
        for (r, (packed, scale)) in values
            .chunks_exact_mut(stride.max(1))
            .zip(&mut scales)
            .enumerate()
        {
            fill(r, &mut row);
            let rounded = scale_of(&row);
            if rounded > 0.0 && rounded.is_finite() {
                *scale = rounded;
                quantize_i8(&row, 1.0 / rounded, packed);
            }
        }
        Self::with_sums(rows, cols, stride, values, scales)
    }

    fn with_sums(
        rows: usize,
        cols: usize,
        stride: usize,
        values: Vec<i8>,
        scales: Vec<f32>,
    ) -> Self {
        // The padding past `cols` is zeros, so whole strides sum the same.
        let sums = row_sums(&values, stride);
        Self {
            rows,
            cols,
            stride,
            values,
            scales,
            sums,
        }
    }

    /// A matrix from its int8 rows (row-major, `cols` each) and one scale
    /// per row. `None` if the sizes disagree or a value is -128, which the
    /// symmetric products never use.
    pub fn from_rows(rows: usize, cols: usize, values: &[i8], scales: Vec<f32>) -> Option<Self> {
        if values.len() != rows.checked_mul(cols)?
            || scales.len() != rows
            || values.contains(&i8::MIN)
        {
            return None;
        }
        let stride = cols.div_ceil(STEP) * STEP;
        let mut padded = vec![0i8; rows * stride];
        for (row, packed) in values
            .chunks_exact(cols.max(1))
            .zip(padded.chunks_exact_mut(stride.max(1)))
        {
            packed[..cols].copy_from_slice(row);
        }
        Some(Self::with_sums(rows, cols, stride, padded, scales))
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The weights as the products see them, row-major f32.
    pub fn dequantize(&self) -> Vec<f32> {
        self.values
            .chunks_exact(self.stride.max(1))
            .zip(&self.scales)
            .flat_map(|(row, &scale)| row[..self.cols].iter().map(move |&q| q as f32 * scale))
            .collect()
    }

    fn row(&self, i: usize) -> &[i8] {
        &self.values[i * self.stride..(i + 1) * self.stride]
    }

    /// Each row's values with its scale, `(values[..cols], scale)`.
    pub fn rows_with_scales(&self) -> impl Iterator<Item = (&[i8], f32)> {
        (0..self.rows).map(|i| (&self.row(i)[..self.cols], self.scales[i]))
    }

    /// Largest activation magnitude for rows of this length: `stride`
    /// products of at most `127 * levels` each must fit in an i32.
    fn activation_levels(&self) -> f32 {
        activation_levels(self.stride)
    }
}

/// The scale for `row` with the least squared quantization error, trying
/// clipping points from 60 % to 100 % of the largest magnitude: a single
/// outlier otherwise coarsens the steps of the whole row.
pub fn least_error_scale(row: &[f32]) -> f32 {
    let top = largest_magnitude(row);
    if !(top > 0.0 && top.is_finite()) {
        return 0.0;
    }
    let error = |scale: f32| -> f64 {
        let inverse = 1.0 / scale;
        row.iter()
            .map(|&w| f64::from(w - f32::from(to_i8(w * inverse)) * scale).powi(2))
            .sum()
    };
    (60..=100)
        .map(|percent| top * percent as f32 / 100.0 / INT8_LEVELS)
        .map(|scale| (error(scale), scale))
        .fold((f64::INFINITY, top / INT8_LEVELS), |best, next| {
            if next.0 < best.0 {
                next
            } else {
                best
            }
        })
        .1
}

/// How finely a layer's input activations are quantized, one scale per
/// token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// i16, as fine as the row length lets the i32 sums stay exact.
    Wide,
    /// 7 bits (0..=127) with a zero point: half the bytes, and one relaxed
    /// SIMD instruction per 16 products.
    Narrow,
}

/// Token activations quantized for one row length, padded like the
/// weights.
pub struct Activations {
    tokens: usize,
    stride: usize,
    values: Values,
    scales: Vec<f32>,
    /// Per token: the narrow value that stands for 0 (0 when wide).
    zeros: Vec<i32>,
}

enum Values {
    Wide(Vec<i16>),
    Narrow(Vec<u8>),
}

/// What happens to each output after the bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    Bias,
    /// GELU (the erf form) after the bias.
    BiasGelu,
}

/// A linear layer `y = x Wᵀ + b` over an [`Int8Matrix`].
pub struct Int8Linear {
    weight: Int8Matrix,
    bias: Vec<f32>,
    precision: Precision,
}

impl Int8Linear {
    pub fn new(weight: Int8Matrix, bias: Vec<f32>) -> Result<Self, String> {
        if bias.len() != weight.rows {
            return Err(format!(
                "a bias of {} values for a matrix of {} outputs",
                bias.len(),
                weight.rows
            ));
        }
        Ok(Self {
            weight,
            bias,
            precision: Precision::Wide,
        })
    }

    /// The same layer quantizing its inputs at `precision`.
    pub fn with_precision(self, precision: Precision) -> Self {
        Self { precision, ..self }
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    pub fn inputs(&self) -> usize {
        self.weight.cols
    }

    pub fn outputs(&self) -> usize {
        self.weight.rows
    }

    /// Quantizes `tokens` rows of `inputs()` f32 values for this layer (and
    /// any other layer with the same number of inputs and precision).
    pub fn quantize_input(&self, x: &[f32], tokens: usize) -> Activations {
        let (cols, stride) = (self.weight.cols, self.weight.stride);
        assert_eq!(x.len(), tokens * cols, "input is not {tokens}x{cols}");
        let rows = x.chunks_exact(cols.max(1));
        match self.precision {
            Precision::Wide => {
                let levels = self.weight.activation_levels();
                let mut values = vec![0i16; tokens * stride];
                let scales = rows
                    .zip(values.chunks_exact_mut(stride.max(1)))
                    .map(|(row, packed)| quantize_i16(row, levels, &mut packed[..cols]))
                    .collect();
                Activations {
                    tokens,
                    stride,
                    values: Values::Wide(values),
                    scales,
                    zeros: vec![0; tokens],
                }
            }
            Precision::Narrow => {
                let mut values = vec![0u8; tokens * stride];
                let (scales, zeros) = rows
                    .zip(values.chunks_exact_mut(stride.max(1)))
                    .map(|(row, packed)| quantize_narrow(row, &mut packed[..cols]))
                    .unzip();
                Activations {
                    tokens,
                    stride,
                    values: Values::Narrow(values),
                    scales,
                    zeros,
                }
            }
        }
    }

    /// `(tokens, outputs())` row-major outputs for quantized inputs.
    pub fn forward(&self, x: &Activations, epilogue: Epilogue) -> Vec<f32> {
        assert_eq!(
            x.stride, self.weight.stride,
            "activations of another row length"
        );
        let outputs = self.weight.rows;
        let mut out = vec![0f32; x.tokens * outputs];
        for_token_blocks(&mut out, outputs, |first, block| {
            let mut sums = vec![0i32; block.len()];
            products(x, &self.weight, first, &mut sums);
            for (t, (row, sums)) in block
                .chunks_exact_mut(outputs)
                .zip(sums.chunks_exact(outputs))
                .enumerate()
            {
                let (token_scale, zero) = (x.scales[first + t], x.zeros[first + t]);
                for ((((y, &sum), &weight_scale), &bias), &row_sum) in row
                    .iter_mut()
                    .zip(sums)
                    .zip(&self.weight.scales)
                    .zip(&self.bias)
                    .zip(&self.weight.sums)
                {
                    // Exact: |sum| and |zero · row_sum| stay below 2^31.
                    let centred = sum.wrapping_sub(zero.wrapping_mul(row_sum));
                    *y = centred as f32 * (token_scale * weight_scale) + bias;
                }
                if epilogue == Epilogue::BiasGelu {
                    row.iter_mut().for_each(|y| *y = gelu(*y));
                }
            }
        });
        out
    }
}

/// Tokens handled together by one task (native builds run tasks in parallel).
const TOKENS_PER_TASK: usize = 16;

/// Calls `work(first_token, rows)` over blocks of whole output rows.
fn for_token_blocks(out: &mut [f32], outputs: usize, work: impl Fn(usize, &mut [f32]) + Sync) {
    let block = TOKENS_PER_TASK * outputs.max(1);
    // A short query is done before threads would have woken up.
    #[cfg(not(target_arch = "wasm32"))]
    if out.len() > 4 * block {
        use rayon::prelude::*;
        out.par_chunks_mut(block)
            .enumerate()
            .for_each(|(i, rows)| work(i * TOKENS_PER_TASK, rows));
        return;
    }
    out.chunks_mut(block)
        .enumerate()
        .for_each(|(i, rows)| work(i * TOKENS_PER_TASK, rows));
}

/// Integer products of tokens `first..` (as many as `sums` holds rows for)
/// with every weight row, into `sums` (row-major, one row per token): tiles
/// of 4 tokens × 2 outputs, with smaller ones at the edges.
fn products(x: &Activations, w: &Int8Matrix, first: usize, sums: &mut [i32]) {
    let outputs = w.rows;
    let tokens = sums.len() / outputs.max(1);
    let mut t = 0;
    while t < tokens {
        let take = if tokens - t >= 4 { 4 } else { 1 };
        let mut o = 0;
        while o < outputs {
            let pair = outputs - o >= 2;
            let at = (first + t, o);
            match (take, pair) {
                (4, true) => tile_into::<4, 2>(x, w, at, &mut sums[t * outputs..], outputs),
                (4, false) => tile_into::<4, 1>(x, w, at, &mut sums[t * outputs..], outputs),
                (_, true) => tile_into::<1, 2>(x, w, at, &mut sums[t * outputs..], outputs),
                (_, false) => tile_into::<1, 1>(x, w, at, &mut sums[t * outputs..], outputs),
            }
            o += if pair { 2 } else { 1 };
        }
        t += take;
    }
}

/// One `T × O` tile of products: tokens `token..token + T` with weight rows
/// `output..output + O`, written into `sums` (rows of `outputs`, the first
/// for `token`).
fn tile_into<const T: usize, const O: usize>(
    x: &Activations,
    w: &Int8Matrix,
    (token, output): (usize, usize),
    sums: &mut [i32],
    outputs: usize,
) {
    let (stride, weights) = (x.stride, std::array::from_fn(|j| w.row(output + j)));
    let tile = match &x.values {
        Values::Wide(values) => dot_tile::<T, O>(
            std::array::from_fn(|i| &values[(token + i) * stride..(token + i + 1) * stride]),
            weights,
        ),
        Values::Narrow(values) => dot_tile_narrow::<T, O>(
            std::array::from_fn(|i| &values[(token + i) * stride..(token + i + 1) * stride]),
            weights,
        ),
    };
    for (i, row) in tile.iter().enumerate() {
        let at = i * outputs + output;
        sums[at..at + O].copy_from_slice(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, seed: u64, range: f32) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-range..range)).collect()
    }

    fn reference(x: &[f32], w: &[f32], b: &[f32], tokens: usize, cols: usize) -> Vec<f32> {
        let outputs = b.len();
        let mut y = vec![0f32; tokens * outputs];
        for t in 0..tokens {
            for o in 0..outputs {
                let dot: f64 = (0..cols)
                    .map(|c| f64::from(x[t * cols + c]) * f64::from(w[o * cols + c]))
                    .sum();
                y[t * outputs + o] = dot as f32 + b[o];
            }
        }
        y
    }

    #[test]
    fn products_match_f32_within_quantization_error_for_every_tile_shape() {
        // Odd sizes: remainder tokens, a lone last output, padded columns.
        for (tokens, cols, outputs) in [(7, 50, 5), (4, 16, 2), (1, 384, 3), (33, 1536, 9)] {
            let x = random(tokens * cols, 1, 2.0);
            let w = random(outputs * cols, 2, 0.1);
            let b = random(outputs, 3, 0.5);
            let layer =
                Int8Linear::new(Int8Matrix::quantize(&w, outputs, cols), b.clone()).unwrap();
            let y = layer.forward(&layer.quantize_input(&x, tokens), Epilogue::Bias);
            let exact = reference(&x, &w, &b, tokens, cols);
            // Error of the int8 weights, measured against the dequantized ones.
            let bound = 0.01 * (cols as f32).sqrt();
            for (got, want) in y.iter().zip(&exact) {
                assert!(
                    (got - want).abs() < bound,
                    "{got} vs {want} ({tokens}x{cols}x{outputs})"
                );
            }
            let dequantized = layer.weight.dequantize();
            let close = reference(&x, &dequantized, &b, tokens, cols);
            for (got, want) in y.iter().zip(&close) {
                assert!(
                    (got - want).abs() < 1e-3 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn narrow_inputs_match_f32_within_their_steps_for_every_tile_shape() {
        for (tokens, cols, outputs) in [(7, 50, 5), (4, 16, 2), (1, 384, 3), (33, 1536, 9)] {
            // Shifted inputs: the zero point is not in the middle.
            let x: Vec<f32> = random(tokens * cols, 4, 2.0)
                .iter()
                .map(|v| v + 0.7)
                .collect();
            let w = random(outputs * cols, 5, 0.1);
            let b = random(outputs, 6, 0.5);
            let layer = Int8Linear::new(Int8Matrix::quantize(&w, outputs, cols), b.clone())
                .unwrap()
                .with_precision(Precision::Narrow);
            let y = layer.forward(&layer.quantize_input(&x, tokens), Epilogue::Bias);
            // The same sums from the dequantized inputs and weights.
            let mut q = vec![0u8; cols];
            let dequantized_x: Vec<f32> = x
                .chunks(cols)
                .flat_map(|row| {
                    let (scale, zero) = quantize_narrow(row, &mut q);
                    q.iter()
                        .map(|&v| (i32::from(v) - zero) as f32 * scale)
                        .collect::<Vec<_>>()
                })
                .collect();
            let close = reference(&dequantized_x, &layer.weight.dequantize(), &b, tokens, cols);
            for (got, want) in y.iter().zip(&close) {
                assert!(
                    (got - want).abs() < 1e-3 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
            let exact = reference(&x, &w, &b, tokens, cols);
            let bound = 0.02 * (cols as f32).sqrt();
            for (got, want) in y.iter().zip(&exact) {
                assert!((got - want).abs() < bound, "{got} vs {want}");
            }
        }
    }

    #[test]
    fn no_sum_can_overflow_at_the_extremes() {
        let cols = 4096;
        let layer =
            Int8Linear::new(Int8Matrix::quantize(&vec![-1.0; cols], 1, cols), vec![0.0]).unwrap();
        let acts = layer.quantize_input(&vec![1.0; cols], 1);
        let y = layer.forward(&acts, Epilogue::Bias);
        assert!((y[0] + cols as f32).abs() < 1e-3 * cols as f32, "{}", y[0]);
    }

    #[test]
    fn zero_and_non_finite_rows_quantize_to_zero() {
        let m = Int8Matrix::quantize(&[0.0, 0.0, f32::INFINITY, 1.0], 2, 2);
        assert_eq!(m.dequantize(), vec![0.0; 4]);
    }
}
