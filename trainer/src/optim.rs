//! AdamW whose state can be saved and restored, so that a resumed run
//! continues exactly where the checkpoint left it.
//!
//! The update is one fused pass per variable, written into the variable's
//! own storage: composed tensor ops would allocate and walk some fifteen
//! temporaries the size of the model on every step.

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Shape, Tensor, Var};
use candle_nn::VarMap;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Mutex;

pub struct AdamW {
    names: Vec<String>,
    vars: Vec<Var>,
    /// Learning-rate multiplier per variable (the heads learn faster).
    scales: Vec<f64>,
    first: Vec<Vec<f32>>,
    second: Vec<Vec<f32>>,
    pub step: usize,
    weight_decay: f64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;
/// Elements per parallel task: large enough to amortise scheduling.
const CHUNK: usize = 1 << 14;

/// The constants of one variable's update.
#[derive(Clone, Copy)]
struct Hyper {
    lr: f32,
    decay: f32,
    bias1: f32,
    bias2: f32,
}

/// One AdamW update of `theta` in place, with its moments.
fn update(theta: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], h: Hyper) {
    let (b1, b2, eps) = (BETA1 as f32, BETA2 as f32, EPS as f32);
    theta
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((theta, grad), m), v)| {
            for i in 0..theta.len() {
                let g = grad[i];
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                let step = (m[i] / h.bias1) / ((v[i] / h.bias2).sqrt() + eps);
                theta[i] = theta[i] * h.decay - h.lr * step;
            }
        });
}

/// The in-place op: the variable's storage is the first operand, the
/// gradient the second; the moments travel with the op.
struct FusedStep<'a> {
    moments: Mutex<(&'a mut [f32], &'a mut [f32])>,
    hyper: Hyper,
}

fn contiguous<'s>(storage: &'s CpuStorage, layout: &Layout, what: &str) -> Result<&'s [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => candle_core::bail!("AdamW: the {what} is not a contiguous f32 tensor"),
    }
}

impl InplaceOp2 for FusedStep<'_> {
    fn name(&self) -> &'static str {
        "adamw-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let grad = contiguous(s2, l2, "gradient")?;
        let (start, end) = match (&*s1, l1.contiguous_offsets()) {
            (CpuStorage::F32(_), Some(range)) => range,
            _ => candle_core::bail!("AdamW: a variable is not a contiguous f32 tensor"),
        };
        let CpuStorage::F32(data) = s1 else {
            unreachable!("checked above")
        };
        let theta = &mut data[start..end];
        let mut moments = self.moments.lock().expect("moments lock");
        let (m, v) = &mut *moments;
        if theta.len() != grad.len() || m.len() != theta.len() {
            candle_core::bail!("AdamW: variable, gradient and moments differ in size");
        }
        update(theta, grad, m, v, self.hyper);
        Ok(())
    }
}

impl AdamW {
    /// Optimises every variable of `varmap`, in name order.
    pub fn new(varmap: &VarMap, weight_decay: f64, scale: impl Fn(&str) -> f64) -> Result<Self> {
        let data = varmap.data().lock().expect("var map lock");
        let mut names: Vec<String> = data.keys().cloned().collect();
        names.sort();
        let vars: Vec<Var> = names.iter().map(|n| data[n].clone()).collect();
        let zeros: Vec<Vec<f32>> = vars.iter().map(|v| vec![0f32; v.elem_count()]).collect();
        Ok(Self {
            scales: names.iter().map(|n| scale(n)).collect(),
            names,
            first: zeros.clone(),
            second: zeros,
            vars,
            step: 0,
            weight_decay,
        })
    }

    /// One update with learning rate `lr`; variables without a gradient
    /// (frozen layers) are left alone.
    pub fn step(&mut self, grads: &candle_core::backprop::GradStore, lr: f64) -> Result<()> {
        self.step += 1;
        let bias1 = (1.0 - BETA1.powi(self.step as i32)) as f32;
        let bias2 = (1.0 - BETA2.powi(self.step as i32)) as f32;
        for i in 0..self.vars.len() {
            let Some(grad) = grads.get(self.vars[i].as_tensor()) else {
                continue;
            };
            let grad = grad.contiguous()?;
            let lr = lr * self.scales[i];
            let op = FusedStep {
                moments: Mutex::new((&mut self.first[i], &mut self.second[i])),
                hyper: Hyper {
                    lr: lr as f32,
                    decay: (1.0 - lr * self.weight_decay) as f32,
                    bias1,
                    bias2,
                },
            };
            self.vars[i].as_tensor().inplace_op2(&grad, &op)?;
        }
        Ok(())
    }

    /// The moment estimates, for a checkpoint.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut state = HashMap::new();
        for (i, name) in self.names.iter().enumerate() {
            let shape = self.vars[i].shape();
            state.insert(format!("m.{name}"), moment(&self.first[i], shape)?);
            state.insert(format!("v.{name}"), moment(&self.second[i], shape)?);
        }
        Ok(state)
    }

    pub fn restore(&mut self, mut state: HashMap<String, Tensor>, step: usize) -> Result<()> {
        for (i, name) in self.names.iter().enumerate() {
            let mut take = |key: String| -> Result<Vec<f32>> {
                let tensor = state.remove(&key).ok_or_else(|| {
                    candle_core::Error::Msg(format!("optimizer state lacks {key}"))
                })?;
                if tensor.shape() != self.vars[i].shape() {
                    candle_core::bail!(
                        "optimizer state {key} has shape {:?}, the variable {:?}",
                        tensor.shape(),
                        self.vars[i].shape()
                    );
                }
                tensor.flatten_all()?.to_vec1::<f32>()
            };
            self.first[i] = take(format!("m.{name}"))?;
            self.second[i] = take(format!("v.{name}"))?;
        }
        self.step = step;
        Ok(())
    }
}

fn moment(values: &[f32], shape: &Shape) -> Result<Tensor> {
    Tensor::from_slice(values, shape, &candle_core::Device::Cpu)
}
