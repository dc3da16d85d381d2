//! Calibrated low-bit quantization of the encoder's matrices (GPTQ, Frantar
//! et al. 2022, <https://arxiv.org/abs/2210.17323>).
//!
//! Rounding each weight to its nearest grid value ignores how the layer's
//! inputs vary together. GPTQ rounds the weights of a row one input column
//! at a time and moves the rounding error onto the columns not yet rounded,
//! weighted by the inputs' second moments `H = Σ x·xᵀ`, so that the layer's
//! *outputs* on real inputs change least. Columns go in order of falling
//! input energy ("act order"); each block of 32 columns gets its grid up
//! front; rows are independent given `H`, so they run in parallel.

use anyhow::{bail, Result};
use candle_core::quantized::QTensor;
use milih_model::bert::InputGram;
use milih_model::quantized::{BlockGrid, BlockParams};
use rayon::prelude::*;

/// Damping added to `H`'s diagonal, as a share of its mean: keeps the
/// inverse stable where inputs are nearly collinear (the paper's 1 %).
const DAMPING: f64 = 0.01;

/// Range shrink factors tried for each block's grid: cutting a rare extreme
/// value can lower the error of the other 31.
const CLIPS: [f32; 5] = [1.0, 0.95, 0.9, 0.85, 0.8];

/// `weights` (`rows × cols`, row-major; `cols` is the layer's inputs) on
/// `grid`, rounded against the inputs summarised in `gram`.
pub fn quantize(
    weights: &[f32],
    rows: usize,
    cols: usize,
    gram: &InputGram,
    grid: BlockGrid,
) -> Result<QTensor> {
    if gram.dim != cols || weights.len() != rows * cols {
        bail!(
            "a {rows}x{cols} matrix cannot be calibrated with inputs of width {}",
            gram.dim
        );
    }
    if !cols.is_multiple_of(BlockGrid::LEN) {
        bail!(
            "rows of {cols} values are not whole blocks of {}",
            BlockGrid::LEN
        );
    }
    // Inputs with the most energy first (GPTQ's "act order"): their error
    // can then still be spread over all the others.
    let mut order: Vec<usize> = (0..cols).collect();
    let energy = diagonal(gram);
    order.sort_by(|&a, &b| energy(b).total_cmp(&energy(a)));
    let (factor, dead) = error_factor(gram, &order)?;
    let blocks_per_row = cols / BlockGrid::LEN;
    let mut params = vec![
        BlockParams {
            scale: half::f16::ZERO,
            offset: half::f16::ZERO,
        };
        rows * blocks_per_row
    ];
    let mut codes = vec![0u8; rows * cols];
    weights
        .par_chunks_exact(cols)
        .zip(params.par_chunks_exact_mut(blocks_per_row))
        .zip(codes.par_chunks_exact_mut(cols))
        .for_each(|((row, params), codes)| {
            quantize_row(row, &order, &factor, &dead, grid, &energy, params, codes);
        });
    Ok(grid.to_qtensor(rows, cols, &params, &codes)?)
}

fn diagonal(gram: &InputGram) -> impl Fn(usize) -> f64 + '_ {
    move |i| gram.sum[i * gram.dim + i]
}

/// One row. Each block's grid is fitted first, to the row as it is (with
/// act order a block's columns come at scattered turns); then the columns
/// are rounded in `order`, each error spread over the columns still to come
/// through the upper factor `u` of the reordered `H⁻¹`.
#[allow(clippy::too_many_arguments)]
fn quantize_row(
    row: &[f32],
    order: &[usize],
    u: &[f64],
    dead: &[bool],
    grid: BlockGrid,
    h_diag: &impl Fn(usize) -> f64,
    params: &mut [BlockParams],
    codes: &mut [u8],
) {
    let n = row.len();
    let clean: Vec<f32> = row
        .iter()
        .zip(dead)
        .map(|(&v, &d)| if d { 0.0 } else { v })
        .collect();
    for (block, p) in params.iter_mut().enumerate() {
        let start = block * BlockGrid::LEN;
        *p = best_params(grid, &clean[start..start + BlockGrid::LEN], |i| {
            h_diag(start + i)
        });
    }
    let mut w: Vec<f64> = order.iter().map(|&i| f64::from(clean[i])).collect();
    for k in 0..n {
        let i = order[k];
        let p = params[i / BlockGrid::LEN];
        let code = grid.code(p, w[k] as f32);
        codes[i] = code;
        let error = (w[k] - f64::from(grid.value(p, code))) / u[k * n + k];
        let factors = &u[k * n + k + 1..(k + 1) * n];
        for (later, f) in w[k + 1..].iter_mut().zip(factors) {
            *later -= error * f;
        }
    }
}

/// The clip whose grid rounds `values` with the least input-weighted error.
fn best_params(grid: BlockGrid, values: &[f32], weight: impl Fn(usize) -> f64) -> BlockParams {
    let error = |p: BlockParams| -> f64 {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let d = f64::from(v - grid.value(p, grid.code(p, v)));
                weight(i) * d * d
            })
            .sum()
    };
    CLIPS
        .iter()
        .map(|&clip| grid.fit(values, clip))
        .min_by(|&a, &b| error(a).total_cmp(&error(b)))
        .expect("CLIPS is not empty")
}

/// The upper Cholesky factor `U` of `H⁻¹` (`H⁻¹ = Uᵀ·U`, row-major) for the
/// damped `H` with rows and columns taken in `order`, and which inputs (in
/// the original order) were always zero: their weights are moot.
///
/// With `R` the order reversal, `U = R·L⁻¹·R` where `L·Lᵀ = R·H·R`: one
/// Cholesky factorisation and one triangular inverse.
fn error_factor(gram: &InputGram, order: &[usize]) -> Result<(Vec<f64>, Vec<bool>)> {
    let n = gram.dim;
    let mut h: Vec<f64> = (0..n * n)
        .map(|k| gram.sum[order[k / n] * n + order[k % n]])
        .collect();
    let dead: Vec<bool> = (0..n).map(|i| gram.sum[i * n + i] <= 0.0).collect();
    for i in 0..n {
        if h[i * n + i] <= 0.0 {
            h[i * n + i] = 1.0;
        }
    }
    let mean_diagonal = (0..n).map(|i| h[i * n + i]).sum::<f64>() / n as f64;
    for i in 0..n {
        h[i * n + i] += DAMPING * mean_diagonal;
    }
    let reversed = |i: usize, j: usize| h[(n - 1 - i) * n + (n - 1 - j)];
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            let v = reversed(i, j) - dot;
            if i == j {
                if v <= 0.0 {
                    bail!("the input statistics are not positive definite (column {i})");
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = v / l[j * n + j];
            }
        }
    }
    // L⁻¹, lower triangular, column by column.
    let mut inverse = vec![0f64; n * n];
    for j in 0..n {
        inverse[j * n + j] = 1.0 / l[j * n + j];
        for i in j + 1..n {
            let sum: f64 = (j..i).map(|k| l[i * n + k] * inverse[k * n + j]).sum();
            inverse[i * n + j] = -sum / l[i * n + i];
        }
    }
    let mut u = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            u[i * n + j] = inverse[(n - 1 - i) * n + (n - 1 - j)];
        }
    }
    Ok((u, dead))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;
    use candle_core::Device;

    fn gram_of(inputs: &[Vec<f32>]) -> InputGram {
        let dim = inputs[0].len();
        let mut sum = vec![0f64; dim * dim];
        for x in inputs {
            for i in 0..dim {
                for j in 0..dim {
                    sum[i * dim + j] += f64::from(x[i]) * f64::from(x[j]);
                }
            }
        }
        InputGram {
            dim,
            sum,
            tokens: inputs.len(),
        }
    }

    /// A small deterministic pseudo-random sequence in [-1, 1).
    fn noise(seed: u64, len: usize) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn the_factor_is_that_of_the_inverse() {
        let inputs: Vec<Vec<f32>> = (0..50).map(|s| noise(s, 6)).collect();
        let gram = gram_of(&inputs);
        let (u, dead) = error_factor(&gram, &(0..6).collect::<Vec<_>>()).unwrap();
        assert!(dead.iter().all(|d| !d));
        let n = 6;
        // (Uᵀ·U)·H_damped = I
        let mean = (0..n).map(|i| gram.sum[i * n + i]).sum::<f64>() / n as f64;
        for i in 0..n {
            for j in 0..n {
                let product: f64 = (0..n)
                    .map(|k| {
                        let hinv_ik: f64 = (0..n).map(|m| u[m * n + i] * u[m * n + k]).sum();
                        let h_kj = gram.sum[k * n + j] + if k == j { DAMPING * mean } else { 0.0 };
                        hinv_ik * h_kj
                    })
                    .sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((product - expected).abs() < 1e-9, "({i},{j}) = {product}");
                if j < i {
                    assert_eq!(u[i * n + j], 0.0, "U is upper triangular");
                }
            }
        }
    }

    /// Inputs whose columns move together: the case where spreading the
    /// error beats rounding each weight alone.
    fn correlated_inputs(count: usize, dim: usize) -> Vec<Vec<f32>> {
        (0..count as u64)
            .map(|s| {
                let shared = noise(1000 + s, 1)[0];
                noise(s, dim)
                    .into_iter()
                    .map(|v| 0.3 * v + shared)
                    .collect()
            })
            .collect()
    }

    fn output_error(weights: &[f32], other: &[f32], inputs: &[Vec<f32>], cols: usize) -> f64 {
        inputs
            .iter()
            .map(|x| {
                weights
                    .chunks(cols)
                    .zip(other.chunks(cols))
                    .map(|(a, b)| {
                        let d: f32 = a.iter().zip(b).zip(x).map(|((a, b), x)| (a - b) * x).sum();
                        f64::from(d * d)
                    })
                    .sum::<f64>()
            })
            .sum()
    }

    fn dequantized(q: &QTensor) -> Vec<f32> {
        let values = q.dequantize(&Device::Cpu).unwrap();
        values.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn calibrated_rounding_changes_outputs_less_than_nearest_rounding() {
        let (rows, cols) = (8, 64);
        let weights = noise(7, rows * cols);
        let inputs = correlated_inputs(400, cols);
        let gram = gram_of(&inputs);
        for grid in BlockGrid::ALL {
            let dtype = grid.dtype();
            let calibrated = quantize(&weights, rows, cols, &gram, grid).unwrap();
            assert_eq!(calibrated.dtype(), dtype);
            let calibrated = dequantized(&calibrated);
            let tensor =
                candle_core::Tensor::from_vec(weights.clone(), (rows, cols), &Device::Cpu).unwrap();
            let nearest = dequantized(&QTensor::quantize(&tensor, dtype).unwrap());
            let (ours, theirs) = (
                output_error(&weights, &calibrated, &inputs, cols),
                output_error(&weights, &nearest, &inputs, cols),
            );
            assert!(
                ours < 0.7 * theirs,
                "{dtype:?}: {ours} vs nearest rounding {theirs}"
            );
        }
    }

    #[test]
    fn mismatched_statistics_are_an_error() {
        let gram = gram_of(&[noise(1, 32)]);
        let err = quantize(
            &noise(2, 64),
            1,
            64,
            &gram,
            BlockGrid::new(GgmlDType::Q4_0).unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("inputs of width 32"), "{err}");
    }
}
