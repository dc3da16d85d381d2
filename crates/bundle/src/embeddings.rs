//! The product embeddings file: int8 rows, then one f32 scale per row.

use crate::*;

/// The product embeddings as stored: `num_products × dim` int8 values,
/// row-major, then one little-endian f32 scale per row.
pub fn embeddings_to_bytes(embeddings: &Int8Embeddings) -> Vec<u8> {
    let values = embeddings.values().iter().map(|&v| v as u8);
    let scales = embeddings.scales().iter().flat_map(|s| s.to_le_bytes());
    values.chain(scales).collect()
}

/// Parses [`embeddings_to_bytes`]' layout for `rows` rows of `dim` values.
pub fn embeddings_from_bytes(
    bytes: &[u8],
    dim: usize,
    rows: usize,
) -> Result<Int8Embeddings, BundleError> {
    let bad = |reason: String| BundleError::Content {
        name: files::EMBEDDINGS.into(),
        reason,
    };
    let values_len = dim.checked_mul(rows);
    let expected = values_len.and_then(|n| n.checked_add(rows.checked_mul(4)?));
    let (Some(values_len), true) = (values_len, expected == Some(bytes.len())) else {
        return Err(bad(format!(
            "{} bytes do not hold {rows} × {dim} int8 values and {rows} f32 scales",
            bytes.len()
        )));
    };
    let (values, scales) = bytes.split_at(values_len);
    let values = values.iter().map(|&b| b as i8).collect();
    let scales = scales
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Int8Embeddings::from_parts(dim, values, scales).map_err(bad)
}
