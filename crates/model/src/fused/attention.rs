//! Multi-head self-attention (scores, mask, softmax, weighted values) as one
//! differentiable op. Composed from tensor ops it is a dozen nodes per layer
//! (splitting the heads out and back takes three copies per tensor), and the
//! per-head products, 128 × 32 × 128 each, are too small for the batched
//! matmul to spread over threads well. Here each sequence is a task and its
//! heads run one after another on that thread, reading the heads in place.
//!
//! The backward pass recomputes each head's probabilities rather than
//! keeping them: a fifth of the op's arithmetic, and no 12 × 128² values
//! per sequence and layer held between the passes.

use super::matrix::{product, Threads, View};
use super::{dot, slice, softmax_in_place, values_of};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `(batch, seq, hidden)` of attention inputs that fit together.
fn check_shapes(
    queries: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    mask_bias: &Tensor,
    heads: usize,
) -> Result<(usize, usize, usize)> {
    let (batch, seq, hidden) = queries.dims3()?;
    if keys.dims() != queries.dims() || values.dims() != queries.dims() {
        candle_core::bail!(
            "attention: queries {:?}, keys {:?} and values {:?} differ",
            queries.dims(),
            keys.dims(),
            values.dims()
        );
    }
    if heads == 0 || hidden % heads != 0 {
        candle_core::bail!("attention: {hidden} values do not split into {heads} heads");
    }
    if mask_bias.dims() != [batch, seq] {
        candle_core::bail!(
            "attention: a mask of shape {:?} does not fit {batch} sequences of {seq}",
            mask_bias.dims()
        );
    }
    Ok((batch, seq, hidden))
}

/// Attention of `queries` over `keys` and `values`, each `(batch, seq,
/// hidden)` with the heads side by side in `hidden`; `mask_bias` is `(batch,
/// seq)`, added to every score of a key (0 for real tokens, a large
/// negative number for padding). Scores are scaled by 1/√(head size).
/// Differentiable in the first three.
pub fn attention(
    queries: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    mask_bias: &Tensor,
    heads: usize,
) -> Result<Tensor> {
    check_shapes(queries, keys, values, mask_bias, heads)?;
    let op = Attention {
        heads,
        mask: mask_bias.flatten_all()?.to_vec1::<f32>()?,
    };
    queries
        .contiguous()?
        .apply_op3(&keys.contiguous()?, &values.contiguous()?, op)
}

struct Attention {
    heads: usize,
    /// `(batch, seq)` score biases.
    mask: Vec<f32>,
}

/// Sizes of one call.
#[derive(Clone, Copy)]
struct Sizes {
    seq: usize,
    hidden: usize,
    head: usize,
    scale: f32,
}

impl Attention {
    fn sizes(&self, layout: &Layout) -> Result<Sizes> {
        let &[batch, seq, hidden] = layout.dims() else {
            candle_core::bail!("attention: expects (batch, seq, hidden) tensors");
        };
        if self.mask.len() != batch * seq {
            candle_core::bail!("attention: the mask does not fit {batch} sequences of {seq}");
        }
        let head = hidden / self.heads;
        Ok(Sizes {
            seq,
            hidden,
            head,
            scale: 1.0 / (head as f32).sqrt(),
        })
    }
}

/// Head `h` of one sequence's `(seq, hidden)` rows.
fn head<'a>(rows: &'a [f32], h: usize, s: Sizes) -> View<'a> {
    View::rows(&rows[h * s.head..], s.seq, s.head, s.hidden)
}

/// `probs` (seq × seq) = softmax(scale · q·kᵀ + mask) of one head.
fn probabilities(probs: &mut [f32], q: View, k: View, mask: &[f32], s: Sizes) -> Result<()> {
    product(probs, s.seq, q, k.t(), false, Threads::One)?;
    for row in probs.chunks_exact_mut(s.seq) {
        for (p, &m) in row.iter_mut().zip(mask) {
            *p = *p * s.scale + m;
        }
        softmax_in_place(row);
    }
    Ok(())
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "train-attention"
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
        let (q, k, v) = (
            slice(s1, l1, self.name())?,
            slice(s2, l2, self.name())?,
            slice(s3, l3, self.name())?,
        );
        let s = self.sizes(l1)?;
        let per_sequence = s.seq * s.hidden;
        let mut out = vec![0f32; q.len()];
        out.par_chunks_exact_mut(per_sequence)
            .enumerate()
            .try_for_each_init(
                || vec![0f32; s.seq * s.seq],
                |probs, (b, out)| -> Result<()> {
                    let rows = b * per_sequence..(b + 1) * per_sequence;
                    let (q, k, v) = (&q[rows.clone()], &k[rows.clone()], &v[rows]);
                    let mask = &self.mask[b * s.seq..(b + 1) * s.seq];
                    for h in 0..self.heads {
                        probabilities(probs, head(q, h, s), head(k, h, s), mask, s)?;
                        product(
                            &mut out[h * s.head..],
                            s.hidden,
                            View::dense(probs, s.seq, s.seq),
                            head(v, h, s),
                            false,
                            Threads::One,
                        )?;
                    }
                    Ok(())
                },
            )?;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        queries: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let s = self.sizes(queries.layout())?;
        let per_sequence = s.seq * s.hidden;
        let (dq, dk, dv) = values_of(&[queries, keys, values, &grad], self.name(), |inputs| {
            let [q, k, v, g] = inputs else {
                unreachable!("four tensors in, four slices out")
            };
            let (mut dq, mut dk, mut dv) = (
                vec![0f32; q.len()],
                vec![0f32; q.len()],
                vec![0f32; q.len()],
            );
            dq.par_chunks_exact_mut(per_sequence)
                .zip(dk.par_chunks_exact_mut(per_sequence))
                .zip(dv.par_chunks_exact_mut(per_sequence))
                .enumerate()
                .try_for_each_init(
                    || (vec![0f32; s.seq * s.seq], vec![0f32; s.seq * s.seq]),
                    |(probs, dprobs), (b, ((dq, dk), dv))| -> Result<()> {
                        let rows = b * per_sequence..(b + 1) * per_sequence;
                        let (q, k) = (&q[rows.clone()], &k[rows.clone()]);
                        let (v, g) = (&v[rows.clone()], &g[rows]);
                        let mask = &self.mask[b * s.seq..(b + 1) * s.seq];
                        for h in 0..self.heads {
                            let (qh, kh, vh, gh) =
                                (head(q, h, s), head(k, h, s), head(v, h, s), head(g, h, s));
                            probabilities(probs, qh, kh, mask, s)?;
                            let p = View::dense(probs, s.seq, s.seq);
                            // dV = Pᵀ·G and dP = G·Vᵀ.
                            product(
                                &mut dv[h * s.head..],
                                s.hidden,
                                p.t(),
                                gh,
                                false,
                                Threads::One,
                            )?;
                            product(dprobs, s.seq, gh, vh.t(), false, Threads::One)?;
                            // Through the softmax and the scale:
                            // dS = scale · P ⊙ (dP − Σ_row dP ⊙ P).
                            for (dp, p) in dprobs
                                .chunks_exact_mut(s.seq)
                                .zip(probs.chunks_exact(s.seq))
                            {
                                let dot = dot(dp, p);
                                for (d, &p) in dp.iter_mut().zip(p) {
                                    *d = s.scale * p * (*d - dot);
                                }
                            }
                            let ds = View::dense(dprobs, s.seq, s.seq);
                            // dQ = dS·K and dK = dSᵀ·Q.
                            product(&mut dq[h * s.head..], s.hidden, ds, kh, false, Threads::One)?;
                            product(
                                &mut dk[h * s.head..],
                                s.hidden,
                                ds.t(),
                                qh,
                                false,
                                Threads::One,
                            )?;
                        }
                        Ok(())
                    },
                )?;
            Ok((dq, dk, dv))
        })?;
        let (shape, device) = (queries.shape(), queries.device());
        Ok((
            Some(Tensor::from_vec(dq, shape, device)?),
            Some(Tensor::from_vec(dk, shape, device)?),
            Some(Tensor::from_vec(dv, shape, device)?),
        ))
    }
}

/// Attention for inference, in plain loops whose every sum runs in one
/// fixed order: the same values natively and in the browser, whatever
/// vector width each target has (a blocked matrix product sums in an order
/// that depends on its kernels, and 7-bit activations downstream would turn
/// those last-bit differences into whole quantization steps). Same inputs
/// and result as [`attention`].
pub fn attention_inference(
    queries: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    mask_bias: &Tensor,
    heads: usize,
) -> Result<Tensor> {
    let (batch, seq, hidden) = check_shapes(queries, keys, values, mask_bias, heads)?;
    let q = queries.flatten_all()?.to_vec1::<f32>()?;
    let k = keys.flatten_all()?.to_vec1::<f32>()?;
    let v = values.flatten_all()?.to_vec1::<f32>()?;
    let mask = mask_bias.flatten_all()?.to_vec1::<f32>()?;
    let head = hidden / heads;
    let scale = 1.0 / (head as f32).sqrt();
    let per_sequence = seq * hidden;
    let mut out = vec![0f32; q.len()];
    out.par_chunks_exact_mut(per_sequence.max(1))
        .enumerate()
        .for_each_init(
            || (vec![0f32; head * seq], vec![0f32; seq]),
            |(values_t, scores), (b, out)| {
                let at = b * per_sequence;
                let mask = &mask[b * seq..(b + 1) * seq];
                // Token `t`'s values of head `h` in `q`, `k` or `v`.
                let row = |t: usize, h: usize| {
                    let start = at + t * hidden + h * head;
                    start..start + head
                };
                for h in 0..heads {
                    // This head's values, transposed: row d holds dimension
                    // d of every value, so each output is one dot product.
                    for j in 0..seq {
                        for (d, &x) in v[row(j, h)].iter().enumerate() {
                            values_t[d * seq + j] = x;
                        }
                    }
                    for i in 0..seq {
                        let query = &q[row(i, h)];
                        for ((s, &m), j) in scores.iter_mut().zip(mask).zip(0..) {
                            *s = dot(query, &k[row(j, h)]) * scale + m;
                        }
                        softmax_in_place(scores);
                        let context = &mut out[i * hidden + h * head..][..head];
                        for (c, d) in context.iter_mut().zip(0..) {
                            *c = dot(scores, &values_t[d * seq..(d + 1) * seq]);
                        }
                    }
                }
            },
        );
    Tensor::from_vec(out, (batch, seq, hidden), queries.device())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_same_gradients, input, max_diff};
    use super::*;
    use candle_core::{Device, Var, D};

    /// The attention of `bert.rs`'s inference path, from tensor ops.
    fn composed(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, heads: usize) -> Tensor {
        let (batch, seq, hidden) = q.dims3().unwrap();
        let split = |t: &Tensor| {
            t.reshape((batch, seq, heads, hidden / heads))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let scale = 1.0 / ((hidden / heads) as f64).sqrt();
        let scores = (split(q).matmul(&split(k).t().unwrap()).unwrap() * scale)
            .unwrap()
            .broadcast_add(&mask.unsqueeze(1).unwrap().unsqueeze(1).unwrap())
            .unwrap();
        candle_nn::ops::softmax(&scores, D::Minus1)
            .unwrap()
            .matmul(&split(v))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((batch, seq, hidden))
            .unwrap()
    }

    #[test]
    fn attention_and_its_gradients_match_the_composed_ops() {
        let (batch, seq, hidden, heads) = (2, 5, 12, 3);
        let q = Var::from_tensor(&input((batch, seq, hidden), 1)).unwrap();
        let k = Var::from_tensor(&input((batch, seq, hidden), 2)).unwrap();
        let v = Var::from_tensor(&input((batch, seq, hidden), 3)).unwrap();
        // The second sequence's last two tokens are padding.
        let mask: Vec<f32> = (0..batch * seq)
            .map(|i| if i >= 2 * seq - 2 { -10_000.0 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (batch, seq), &Device::Cpu).unwrap();
        let weights = input((batch, seq, hidden), 4);
        let (qt, kt, vt) = (q.as_tensor(), k.as_tensor(), v.as_tensor());
        let fused = attention(qt, kt, vt, &mask, heads).unwrap();
        let reference = composed(qt, kt, vt, &mask, heads);
        assert!(max_diff(&fused, &reference) < 1e-5);
        let vars = [("queries", &q), ("keys", &k), ("values", &v)];
        let gf = assert_same_gradients(fused, reference, &weights, &vars, 1e-4);
        // Padding keys get no attention, so their values no gradient.
        let padded = gf
            .get(&v)
            .unwrap()
            .get(1)
            .unwrap()
            .narrow(0, seq - 2, 2)
            .unwrap();
        assert_eq!(
            padded
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
    }

    #[test]
    fn inference_attention_matches_the_composed_ops() {
        let (batch, seq, hidden, heads) = (2, 5, 12, 3);
        let (q, k, v) = (
            input((batch, seq, hidden), 1),
            input((batch, seq, hidden), 2),
            input((batch, seq, hidden), 3),
        );
        let mask: Vec<f32> = (0..batch * seq)
            .map(|i| if i >= 2 * seq - 2 { -10_000.0 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (batch, seq), &Device::Cpu).unwrap();
        let ours = attention_inference(&q, &k, &v, &mask, heads).unwrap();
        assert!(max_diff(&ours, &composed(&q, &k, &v, &mask, heads)) < 1e-5);
        let short = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(attention_inference(&q, &k, &v, &short, heads).is_err());
        assert!(attention_inference(&q, &k, &v, &mask, 5).is_err());
    }

    #[test]
    fn inference_attention_is_the_same_to_the_bit_with_padding() {
        // A batch pads short windows to its longest; the browser runs a
        // query alone. Both must give the same bits for the real tokens.
        let (seq, padded, hidden, heads) = (19, 24, 12, 3);
        let full = |seed| input((1, padded, hidden), seed);
        let (q, k, v) = (full(1), full(2), full(3));
        let alone = |t: &Tensor| t.narrow(1, 0, seq).unwrap().contiguous().unwrap();
        let mask: Vec<f32> = (0..padded)
            .map(|j| if j >= seq { -10_000.0 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, (1, padded), &Device::Cpu).unwrap();
        let no_mask = Tensor::zeros((1, seq), candle_core::DType::F32, &Device::Cpu).unwrap();
        let batched = attention_inference(&q, &k, &v, &mask, heads).unwrap();
        let single =
            attention_inference(&alone(&q), &alone(&k), &alone(&v), &no_mask, heads).unwrap();
        let bits = |t: &Tensor| -> Vec<u32> {
            t.flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        assert_eq!(bits(&alone(&batched)), bits(&single));
    }

    #[test]
    fn attention_rejects_mismatched_shapes() {
        let q = input((2, 5, 12), 1);
        let mask = Tensor::zeros((2, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
        let error = attention(&q, &q, &q, &mask, 5).unwrap_err().to_string();
        assert!(error.contains("do not split into 5 heads"), "{error}");
        let short = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let error = attention(&q, &q, &q, &short, 3).unwrap_err().to_string();
        assert!(error.contains("does not fit 2 sequences of 5"), "{error}");
    }
}
