//! The bundle's weight file: GGUF with Q8_0 encoder matrices, a Q5_0 word
//! embedding table, and f32 vectors and heads.
//!
//! The browser dequantizes the weights once at load time: on one short query
//! f32 matrix products are faster than Q8_0 ones, while the download keeps the
//! Q8_0 size.

use crate::ModelError;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::io::Cursor;

/// How each tensor is stored.
fn storage_type(name: &str, tensor: &Tensor) -> GgmlDType {
    let dims = tensor.dims();
    let is_matrix = dims.len() == 2;
    let blocks_fit = dims
        .last()
        .is_some_and(|d| d.is_multiple_of(GgmlDType::Q8_0.block_size()));
    // The heads are small and decide the output directly: keep them exact.
    if !is_matrix || !blocks_fit || name.starts_with(crate::HEADS_PREFIX) {
        GgmlDType::F32
    } else if name.ends_with("word_embeddings.weight") {
        // Half of all weights, yet only a query's few rows are ever read:
        // 5 bits keep them close while saving a third of the download.
        GgmlDType::Q5_0
    } else {
        GgmlDType::Q8_0
    }
}

/// Serialises named f32 tensors to GGUF bytes, in name order so that the
/// same weights always give the same bytes.
pub fn to_gguf(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>, ModelError> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let quantized = names
        .iter()
        .map(|name| {
            let tensor = &tensors[*name];
            QTensor::quantize(tensor, storage_type(name, tensor)).map(|q| (name.as_str(), q))
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    let refs: Vec<(&str, &QTensor)> = quantized.iter().map(|(n, q)| (*n, q)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &[], &refs)?;
    Ok(out.into_inner())
}

/// Reads GGUF bytes back into f32 tensors.
pub fn from_gguf(bytes: &[u8], device: &Device) -> Result<HashMap<String, Tensor>, ModelError> {
    let weights = |e: candle_core::Error| ModelError::Weights(format!("model weights (GGUF): {e}"));
    let mut reader = Cursor::new(bytes);
    let content = gguf_file::Content::read(&mut reader).map_err(weights)?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let q = content.tensor(&mut reader, name, device).map_err(weights)?;
            Ok((name.clone(), q.dequantize(device).map_err(weights)?))
        })
        .collect()
}
