//! Seeded initialisation, so that the same seed gives the same model.

use candle_core::{Result, Tensor};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Standard deviation of BERT's weight initialisation.
const INIT_STD: f32 = 0.02;

/// Sets every variable whose name `keep` rejects to a seeded initial value:
/// layer-norm weights to one, biases to zero, the embedding projector to an
/// identity-like map (so the untrained head passes the encoder's geometry
/// through), other weights uniformly with BERT's standard deviation.
/// Variables are visited in name order, so the result depends only on `seed`.
pub fn init_weights(varmap: &VarMap, seed: u64, keep: impl Fn(&str) -> bool) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let vars = varmap.data().lock().expect("var map lock");
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let bound = INIT_STD * 3f32.sqrt();
    for name in names {
        if keep(name) {
            continue;
        }
        let var = &vars[name];
        let dims = var.dims().to_vec();
        let count: usize = dims.iter().product();
        let values: Vec<f32> = if name.ends_with("LayerNorm.weight") {
            vec![1.0; count]
        } else if name.ends_with("bias") {
            vec![0.0; count]
        } else if name.ends_with("projector.weight") && dims.len() == 2 {
            let (rows, cols) = (dims[0], dims[1]);
            (0..count)
                .map(|k| {
                    if k / cols == k % cols && k / cols < rows {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        } else {
            (0..count)
                .map(|_| rng.random_range(-bound..bound))
                .collect()
        };
        var.set(&Tensor::from_vec(values, dims.as_slice(), var.device())?)?;
    }
    Ok(())
}
