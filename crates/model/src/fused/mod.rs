//! Fused ops, each one op forward and one backward with the gradient
//! written out by hand: dense layers, attention, layer norm, GELU and bias
//! addition. Training runs them all; inference shares the exact GELU and
//! the bias addition where it runs in f32. Composed from tensor ops, each would be several graph
//! nodes, and candle allocates, zero-fills and adds into a gradient for
//! every node, the size of the activations (for attention, 12 heads × 128²
//! per sequence).
//!
//! CPU, f32, contiguous inputs; the last dimension is the one normalised.

mod attention;
mod dense;
mod matrix;

pub use attention::{attention, attention_inference};
pub use dense::dense;

use crate::gelu::{gelu, gelu_derivative};
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor,
};
use rayon::prelude::*;

fn slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => candle_core::bail!("{op}: expects a contiguous f32 tensor"),
    }
}

/// Runs `f` on the values of some contiguous f32 CPU tensors (backward
/// passes that write their gradients straight into new vectors).
fn values_of<R>(
    tensors: &[&Tensor],
    op: &str,
    f: impl FnOnce(&[&[f32]]) -> Result<R>,
) -> Result<R> {
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let values = guards
        .iter()
        .map(|(storage, layout)| match &**storage {
            Storage::Cpu(cpu) => slice(cpu, layout, op),
            _ => candle_core::bail!("{op}: runs on the CPU only"),
        })
        .collect::<Result<Vec<_>>>()?;
    f(&values)
}

/// Independent partial sums, so that reductions vectorize (a single float
/// accumulator fixes the order of the additions).
const LANES: usize = 16;

/// `Σ f(a_i, b_i)` over two slices of one length, in [`LANES`] partial sums:
/// value `i` always goes to sum `i % LANES`, the last ones too, so that
/// zeros appended to both slices (padding) change no sum's rounding.
#[inline(always)]
fn sum_pairs(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (a, b) in a_chunks.zip(b_chunks) {
        for i in 0..LANES {
            lanes[i] += f(a[i], b[i]);
        }
    }
    for ((lane, &a), &b) in lanes.iter_mut().zip(a_rest).zip(b_rest) {
        *lane += f(a, b);
    }
    lanes.iter().sum::<f32>()
}

/// `Σ a_i · b_i`.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum_pairs(a, b, |a, b| a * b)
}

/// Softmax of a row, in place. Values more than 87 below the row's largest
/// (masked scores) get exactly 0.
fn softmax_in_place(row: &mut [f32]) {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let mut max = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    for chunk in chunks {
        for i in 0..LANES {
            lanes[i] = if chunk[i] > lanes[i] {
                chunk[i]
            } else {
                lanes[i]
            };
        }
    }
    max = lanes.iter().fold(max, |m, &x| if x > m { x } else { m });
    for x in row.iter_mut() {
        let shifted = *x - max;
        let e = crate::gelu::exp_nonpositive(shifted);
        *x = if shifted < -87.0 { 0.0 } else { e };
    }
    let inverse = 1.0 / sum_pairs(row, row, |x, _| x);
    row.iter_mut().for_each(|x| *x *= inverse);
}

/// A tensor and its gradient, both contiguous f32 of one size.
fn with_gradient<'a>(
    (s1, l1): (&'a CpuStorage, &Layout),
    (s2, l2): (&'a CpuStorage, &Layout),
    op: &str,
) -> Result<(&'a [f32], &'a [f32])> {
    let (values, grad) = (slice(s1, l1, op)?, slice(s2, l2, op)?);
    if values.len() != grad.len() {
        candle_core::bail!("{op}: the tensor and its gradient differ in size");
    }
    Ok((values, grad))
}

fn last_dim(layout: &Layout, op: &str) -> Result<usize> {
    match layout.dims().last() {
        Some(&d) if d > 0 => Ok(d),
        _ => candle_core::bail!("{op}: expects a non-empty last dimension"),
    }
}

/// GELU (erf form), differentiable; elements in parallel.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

/// Elements per parallel task of the element-wise ops.
const ELEMENTS_PER_TASK: usize = 16_384;

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "train-gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(storage, layout, self.name())?;
        let mut y = vec![0f32; x.len()];
        x.par_chunks(ELEMENTS_PER_TASK)
            .zip(y.par_chunks_mut(ELEMENTS_PER_TASK))
            .for_each(|(x, y)| {
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = gelu(x);
                }
            });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &GeluGrad)?))
    }
}

/// dx = g · GELU'(x).
struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "train-gelu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = with_gradient((s1, l1), (s2, l2), self.name())?;
        let mut dx = vec![0f32; x.len()];
        x.par_chunks(ELEMENTS_PER_TASK)
            .zip(g.par_chunks(ELEMENTS_PER_TASK))
            .zip(dx.par_chunks_mut(ELEMENTS_PER_TASK))
            .for_each(|((x, g), dx)| {
                for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(g) {
                    *dx = g * gelu_derivative(x);
                }
            });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// `x + bias`, where `bias`'s shape is the trailing dims of `x` (a dense
/// layer's bias, or position embeddings added to each sequence),
/// differentiable in both. Candle's broadcast add gets the bias's gradient
/// from a generic reduction that divides per element and runs on one
/// thread; here it is a parallel sum of rows.
pub fn add_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (x_dims, bias_dims) = (x.dims(), bias.dims());
    if bias_dims.is_empty()
        || bias_dims.len() > x_dims.len()
        || x_dims[x_dims.len() - bias_dims.len()..] != *bias_dims
    {
        candle_core::bail!(
            "add_bias: a bias of shape {bias_dims:?} does not end the shape {x_dims:?}"
        );
    }
    x.contiguous()?.apply_op2(&bias.contiguous()?, AddBias)
}

struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "train-add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let bias = slice(s2, l2, self.name())?;
        let mut y = x.to_vec();
        y.par_chunks_exact_mut(bias.len()).for_each(|row| {
            row.iter_mut().zip(bias).for_each(|(y, b)| *y += b);
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let bias_grad = values_of(&[&grad.contiguous()?], self.name(), |values| {
            Ok(dense::column_sums(values[0], bias.elem_count()))
        })?;
        let bias_grad = Tensor::from_vec(bias_grad, bias.shape(), bias.device())?;
        Ok((Some(grad.clone()), Some(bias_grad)))
    }
}

/// Layer norm over the last dimension with weight and bias, differentiable
/// in all three.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { eps: eps as f32 },
    )
}

#[derive(Clone, Copy)]
struct LayerNorm {
    eps: f32,
}

/// Mean and reciprocal standard deviation of a row.
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = sum_pairs(x, x, |v, _| v) / n;
    let variance = sum_pairs(x, x, |v, _| (v - mean) * (v - mean)) / n;
    (mean, 1.0 / (variance + eps).sqrt())
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "train-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let w = slice(s2, l2, self.name())?;
        let b = slice(s3, l3, self.name())?;
        let n = last_dim(l1, self.name())?;
        if w.len() != n || b.len() != n {
            candle_core::bail!("{}: weight and bias must have {n} values", self.name());
        }
        let mut y = vec![0f32; x.len()];
        x.par_chunks_exact(n)
            .zip(y.par_chunks_exact_mut(n))
            .for_each(|(x, y)| {
                let (mean, rstd) = moments(x, self.eps);
                for i in 0..n {
                    y[i] = (x[i] - mean) * rstd * w[i] + b[i];
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = x.apply_op3_no_bwd(weight, &grad, &LayerNormInputGrad(*self))?;
        // (2, n): the weight's gradient, then the bias's.
        let params = x.apply_op2_no_bwd(&grad, &LayerNormParamGrad(*self))?;
        Ok((Some(dx), Some(params.get(0)?), Some(params.get(1)?)))
    }
}

/// dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)), with ĝ = g ⊙ w.
struct LayerNormInputGrad(LayerNorm);

impl CustomOp3 for LayerNormInputGrad {
    fn name(&self) -> &'static str {
        "train-layer-norm-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let w = slice(s2, l2, self.name())?;
        let g = slice(s3, l3, self.name())?;
        let n = last_dim(l1, self.name())?;
        let mut dx = vec![0f32; x.len()];
        x.par_chunks_exact(n)
            .zip(g.par_chunks_exact(n))
            .zip(dx.par_chunks_exact_mut(n))
            .for_each_init(
                || (vec![0f32; n], vec![0f32; n]),
                |(xhat, ghat), ((x, g), dx)| {
                    let (mean, rstd) = moments(x, self.0.eps);
                    let (mut mean_g, mut mean_gx) = (0f32, 0f32);
                    for i in 0..n {
                        xhat[i] = (x[i] - mean) * rstd;
                        ghat[i] = g[i] * w[i];
                        mean_g += ghat[i];
                        mean_gx += ghat[i] * xhat[i];
                    }
                    mean_g /= n as f32;
                    mean_gx /= n as f32;
                    for i in 0..n {
                        dx[i] = rstd * (ghat[i] - mean_g - xhat[i] * mean_gx);
                    }
                },
            );
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// Rows of dw = Σ g ⊙ x̂ and db = Σ g over all rows, as one `(2, n)` tensor.
struct LayerNormParamGrad(LayerNorm);

impl CustomOp2 for LayerNormParamGrad {
    fn name(&self) -> &'static str {
        "train-layer-norm-param-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = with_gradient((s1, l1), (s2, l2), self.name())?;
        let n = last_dim(l1, self.name())?;
        let mut out = vec![0f32; 2 * n];
        let (dw, db) = out.split_at_mut(n);
        for (x, g) in x.chunks_exact(n).zip(g.chunks_exact(n)) {
            let (mean, rstd) = moments(x, self.0.eps);
            for i in 0..n {
                dw[i] += g[i] * (x[i] - mean) * rstd;
                db[i] += g[i];
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((2, n))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    pub(super) fn input(shape: (usize, usize, usize), seed: u32) -> Tensor {
        let n = shape.0 * shape.1 * shape.2;
        let values: Vec<f32> = (0..n as u32)
            .map(|i| {
                ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 250.0 - 2.0
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    /// Asserts that Σ weights ⊙ output sends each variable the same
    /// gradient through the fused op as through the composed ops (within
    /// `tolerance`), and returns the fused op's gradients.
    pub(super) fn assert_same_gradients(
        fused: Tensor,
        composed: Tensor,
        weights: &Tensor,
        vars: &[(&str, &Var)],
        tolerance: f32,
    ) -> candle_core::backprop::GradStore {
        let backward = |t: Tensor| {
            (t * weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        };
        let (fused, composed) = (backward(fused), backward(composed));
        for (name, var) in vars {
            let d = max_diff(fused.get(var).unwrap(), composed.get(var).unwrap());
            assert!(d < tolerance, "{name}: {d}");
        }
        fused
    }

    pub(super) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn add_bias_and_its_gradients_match_broadcast_add() {
        let x = Var::from_tensor(&input((3, 5, 4), 9)).unwrap();
        let positions = Var::from_tensor(&input((1, 5, 4), 10).squeeze(0).unwrap()).unwrap();
        let weights = input((3, 5, 4), 11);
        let fused = add_bias(x.as_tensor(), positions.as_tensor()).unwrap();
        let composed = x.as_tensor().broadcast_add(positions.as_tensor()).unwrap();
        assert_eq!(max_diff(&fused, &composed), 0.0);
        assert_same_gradients(
            fused,
            composed,
            &weights,
            &[("x", &x), ("bias", &positions)],
            1e-5,
        );
        let wrong = Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap();
        let wrong = wrong.reshape((4, 1)).unwrap();
        let error = add_bias(x.as_tensor(), &wrong).unwrap_err().to_string();
        assert!(error.contains("does not end the shape"), "{error}");
    }

    #[test]
    fn gelu_and_its_gradient_match_candles() {
        let x = Var::from_tensor(&input((2, 3, 50), 7)).unwrap();
        let weights = input((2, 3, 50), 8);
        let fused = gelu_erf(x.as_tensor()).unwrap();
        let reference = x.as_tensor().gelu_erf().unwrap();
        assert!(max_diff(&fused, &reference) < 1e-6);
        assert_same_gradients(fused, reference, &weights, &[("x", &x)], 1e-5);
    }

    #[test]
    fn layer_norm_and_its_gradients_match_the_composed_ops() {
        let x = Var::from_tensor(&input((2, 3, 16), 3)).unwrap();
        let w = Var::from_tensor(&(input((1, 1, 16), 4).flatten_all().unwrap() + 1.5).unwrap())
            .unwrap();
        let b = Var::from_tensor(&input((1, 1, 16), 5).flatten_all().unwrap()).unwrap();
        let weights = input((2, 3, 16), 6);
        let eps = 1e-12;
        let fused = layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), eps).unwrap();
        let composed = {
            let x = x.as_tensor();
            let mean = x.mean_keepdim(D::Minus1).unwrap();
            let centered = x.broadcast_sub(&mean).unwrap();
            let variance = centered.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
            centered
                .broadcast_div(&(variance + eps).unwrap().sqrt().unwrap())
                .unwrap()
                .broadcast_mul(w.as_tensor())
                .unwrap()
                .broadcast_add(b.as_tensor())
                .unwrap()
        };
        assert!(max_diff(&fused, &composed) < 1e-5);
        assert_same_gradients(
            fused,
            composed,
            &weights,
            &[("x", &x), ("weight", &w), ("bias", &b)],
            1e-4,
        );
    }
}
