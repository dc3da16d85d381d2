//! A dense layer, `x · wᵀ + b`, as one differentiable op. Composed, it is a
//! reshape, a transpose, a matmul and a broadcast add, each a node whose
//! gradient candle allocates, zero-fills and adds to; and the bias's
//! gradient comes from a generic reduction on one thread.

use super::matrix::{product, Threads, View};
use super::{slice, values_of};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `x · weightᵀ + bias` over the last dimension of `x`, differentiable in
/// all three. `weight` is `(outputs, inputs)`, `bias` `(outputs,)`.
pub fn dense(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (outputs, inputs) = weight.dims2()?;
    if x.dims().last() != Some(&inputs) || bias.dims() != [outputs] {
        candle_core::bail!(
            "dense: input {:?}, weight {outputs}x{inputs} and bias {:?} do not fit",
            x.dims(),
            bias.dims()
        );
    }
    x.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, Dense)
}

struct Dense;

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "train-dense"
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
        let (outputs, inputs) = (b.len(), w.len() / b.len().max(1));
        let rows = x.len() / inputs.max(1);
        // Start from the bias and add the product to it.
        let mut y = vec![0f32; rows * outputs];
        y.chunks_exact_mut(outputs.max(1))
            .for_each(|row| row.copy_from_slice(b));
        product(
            &mut y,
            outputs,
            View::dense(x, rows, inputs),
            View::dense(w, outputs, inputs).t(),
            true,
            Threads::All,
        )?;
        let mut dims = l1.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = outputs;
        }
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (outputs, inputs) = weight.dims2()?;
        let (dx, dw, db) = values_of(&[x, weight, &grad], self.name(), |values| {
            let [x, w, g] = values else {
                unreachable!("three tensors in, three slices out")
            };
            let rows = x.len() / inputs;
            let (x, w, g) = (
                View::dense(x, rows, inputs),
                View::dense(w, outputs, inputs),
                View::dense(g, rows, outputs),
            );
            // dx = g · w, dw = gᵀ · x, db = Σ rows of g.
            let mut dx = vec![0f32; rows * inputs];
            product(&mut dx, inputs, g, w, false, Threads::All)?;
            let mut dw = vec![0f32; outputs * inputs];
            product(&mut dw, inputs, g.t(), x, false, Threads::All)?;
            Ok((dx, dw, column_sums(values[2], outputs)))
        })?;
        let device = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), device)?),
            Some(Tensor::from_vec(dw, weight.shape(), device)?),
            Some(Tensor::from_vec(db, bias.shape(), device)?),
        ))
    }
}

/// Sums consecutive rows of `width` values: bands of rows in parallel, then
/// the bands' sums.
pub(super) fn column_sums(values: &[f32], width: usize) -> Vec<f32> {
    let rows_per_task = (super::ELEMENTS_PER_TASK / width.max(1)).max(1);
    values
        .par_chunks(rows_per_task * width.max(1))
        .map(|band| {
            let mut sum = vec![0f32; width];
            for row in band.chunks_exact(width) {
                sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            sum
        })
        .reduce(
            || vec![0f32; width],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            },
        )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_same_gradients, input, max_diff};
    use super::*;
    use candle_core::Var;

    #[test]
    fn dense_and_its_gradients_match_candles_linear() {
        let x = Var::from_tensor(&input((2, 5, 6), 1)).unwrap();
        let w = Var::from_tensor(&input((1, 4, 6), 2).squeeze(0).unwrap()).unwrap();
        let b = Var::from_tensor(&input((1, 1, 4), 3).flatten_all().unwrap()).unwrap();
        let weights = input((2, 5, 4), 4);
        let fused = dense(x.as_tensor(), w.as_tensor(), b.as_tensor()).unwrap();
        let composed = x
            .as_tensor()
            .broadcast_matmul(&w.as_tensor().t().unwrap())
            .unwrap()
            .broadcast_add(b.as_tensor())
            .unwrap();
        assert!(max_diff(&fused, &composed) < 1e-4);
        assert_same_gradients(
            fused,
            composed,
            &weights,
            &[("x", &x), ("weight", &w), ("bias", &b)],
            1e-4,
        );
    }

    #[test]
    fn dense_rejects_a_weight_of_another_width() {
        let x = input((2, 5, 6), 1);
        let w = input((1, 4, 5), 2).squeeze(0).unwrap();
        let b = input((1, 1, 4), 3).flatten_all().unwrap();
        let error = dense(&x, &w, &b).unwrap_err().to_string();
        assert!(error.contains("do not fit"), "{error}");
    }
}
