//! A hybrid built from a pretrained BERT checkpoint: encoder weights
//! loaded, new heads initialised from the seed.

use crate::fsutil::read;
use crate::options::TrainOptions;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use milih_catalog::SKIN_TYPES;
use milih_model::{BertConfig, Hybrid, HybridConfig, TextEncoder, HEADS_PREFIX};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// A hybrid built from a base checkpoint: encoder weights loaded, heads
/// initialised from the seed (the embedding head as an identity map).
pub struct Initial {
    pub config: HybridConfig,
    pub tokenizer_json: Vec<u8>,
    pub encoder: TextEncoder,
    pub varmap: VarMap,
    pub model: Hybrid,
}

pub fn from_base(base: &Path, options: &TrainOptions, device: &Device) -> Result<Initial> {
    let bert = BertConfig::from_json(&read(&base.join("config.json"))?)?;
    let tokenizer_json = read(&base.join("tokenizer.json"))?;
    if options.max_length > bert.max_position_embeddings {
        bail!(
            "--max-length {} exceeds the model's {} positions",
            options.max_length,
            bert.max_position_embeddings
        );
    }
    let config = HybridConfig {
        bert,
        embedding_dim: options.embedding_dim,
        labels: SKIN_TYPES.iter().map(|s| s.to_string()).collect(),
        max_length: options.max_length,
        max_windows: options.max_windows,
        lexical_features: options.lexical_features,
        ingredient_functions: options.ingredient_functions,
    };
    let encoder = TextEncoder::from_json(&tokenizer_json, options.max_length)?;
    if encoder.vocab_size() > config.bert.vocab_size {
        bail!(
            "the tokenizer has {} tokens but the model only {}",
            encoder.vocab_size(),
            config.bert.vocab_size
        );
    }
    let varmap = VarMap::new();
    let model = Hybrid::load(
        &config,
        VarBuilder::from_varmap(&varmap, DType::F32, device),
    )?;
    let loaded = load_base_weights(&varmap, &base.join("model.safetensors"), device)?;
    milih_model::init::init_weights(&varmap, options.seed, |name| loaded.contains(name))?;
    Ok(Initial {
        config,
        tokenizer_json,
        encoder,
        varmap,
        model,
    })
}

/// Copies the base checkpoint's weights into the encoder variables and
/// returns their names. Every encoder variable must be found.
fn load_base_weights(varmap: &VarMap, path: &Path, device: &Device) -> Result<HashSet<String>> {
    let tensors = candle_core::safetensors::load(path, device)
        .with_context(|| format!("reading {}", path.display()))?;
    let vars = varmap.data().lock().expect("var map lock");
    let mut loaded = HashSet::new();
    for (name, tensor) in tensors {
        let Some(name) = milih_model::canonical_weight_name(&name) else {
            continue;
        };
        let Some(var) = vars.get(&name) else { continue };
        if var.dims() != tensor.dims() {
            bail!(
                "{}: `{name}` has shape {:?}, the config implies {:?}",
                path.display(),
                tensor.dims(),
                var.dims()
            );
        }
        var.set(&tensor.to_dtype(DType::F32)?)?;
        loaded.insert(name);
    }
    let mut missing: Vec<&String> = vars
        .keys()
        .filter(|n| !n.starts_with(HEADS_PREFIX) && !loaded.contains(*n))
        .collect();
    missing.sort();
    if let Some(first) = missing.first() {
        bail!(
            "{} lacks {} encoder weights, e.g. `{first}`",
            path.display(),
            missing.len()
        );
    }
    Ok(loaded)
}

/// The current weights as named tensors.
pub fn tensors_of(varmap: &VarMap) -> HashMap<String, Tensor> {
    varmap
        .data()
        .lock()
        .expect("var map lock")
        .iter()
        .map(|(name, var)| {
            (
                name.clone(),
                var.as_tensor().copy().expect("copy of a CPU tensor"),
            )
        })
        .collect()
}
