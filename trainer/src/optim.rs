//! AdamW whose state can be saved and restored, so that a resumed run
//! continues exactly where the checkpoint left it.

use candle_core::{Result, Tensor, Var};
use candle_nn::VarMap;
use std::collections::HashMap;

pub struct AdamW {
    names: Vec<String>,
    vars: Vec<Var>,
    /// Learning-rate multiplier per variable (the heads learn faster).
    scales: Vec<f64>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    pub step: usize,
    weight_decay: f64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl AdamW {
    /// Optimises every variable of `varmap`, in name order.
    pub fn new(varmap: &VarMap, weight_decay: f64, scale: impl Fn(&str) -> f64) -> Result<Self> {
        let data = varmap.data().lock().expect("var map lock");
        let mut names: Vec<String> = data.keys().cloned().collect();
        names.sort();
        let vars: Vec<Var> = names.iter().map(|n| data[n].clone()).collect();
        let zeros = vars
            .iter()
            .map(|v| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
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
        let bias1 = 1.0 - BETA1.powi(self.step as i32);
        let bias2 = 1.0 - BETA2.powi(self.step as i32);
        for i in 0..self.vars.len() {
            let Some(grad) = grads.get(self.vars[i].as_tensor()) else {
                continue;
            };
            let lr = lr * self.scales[i];
            let m = ((&self.first[i] * BETA1)? + (grad * (1.0 - BETA1))?)?;
            let v = ((&self.second[i] * BETA2)? + (grad.sqr()? * (1.0 - BETA2))?)?;
            let update = ((&m / bias1)? / ((&v / bias2)?.sqrt()? + EPS)?)?;
            let theta = self.vars[i].as_tensor();
            let decayed = (theta * (1.0 - lr * self.weight_decay))?;
            self.vars[i].set(&(decayed - (update * lr)?)?)?;
            self.first[i] = m;
            self.second[i] = v;
        }
        Ok(())
    }

    /// The moment estimates, for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut state = HashMap::new();
        for (i, name) in self.names.iter().enumerate() {
            state.insert(format!("m.{name}"), self.first[i].clone());
            state.insert(format!("v.{name}"), self.second[i].clone());
        }
        state
    }

    pub fn restore(&mut self, mut state: HashMap<String, Tensor>, step: usize) -> Result<()> {
        for (i, name) in self.names.iter().enumerate() {
            let mut take = |key: String| {
                state
                    .remove(&key)
                    .ok_or_else(|| candle_core::Error::Msg(format!("optimizer state lacks {key}")))
            };
            self.first[i] = take(format!("m.{name}"))?;
            self.second[i] = take(format!("v.{name}"))?;
        }
        self.step = step;
        Ok(())
    }
}
