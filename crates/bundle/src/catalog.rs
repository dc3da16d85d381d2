//! The exported catalog (products with their predictions, map places and
//! the answers' thresholds) and the gzip packing of the JSON files.

use crate::*;
use milih_catalog::Product;
use serde::{Deserialize, Serialize};

/// A product as exported: the catalog record plus the model's skin-type
/// probabilities (for every product, labeled or not) and its place on the
/// embedding map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductEntry {
    #[serde(flatten)]
    pub product: Product,
    pub predicted: Vec<f32>,
    /// 2-D projection of the product's embedding, both coordinates in
    /// [0, 1]: nearby points are products the model finds alike.
    pub map: [f32; 2],
}

/// The catalog file's content (`catalog.jsonz`, gzipped JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedCatalog {
    pub products: Vec<ProductEntry>,
    /// How the predicted probabilities read as answers (thresholds chosen on
    /// unseen brands); absent in bundles from before they were measured,
    /// whose predictions then all read "unknown".
    #[serde(default)]
    pub skin_answers: milih_rank::skin::SkinAnswers,
    /// How searches weigh word matches against the embedding, and when they
    /// found nothing close; absent in older bundles (the embedding alone).
    #[serde(default)]
    pub ranking: milih_rank::lexical::Ranking,
}

/// The most bytes a packed file may inflate to: far beyond any real catalog
/// (1,472 products take 1.4 MB) or tokenizer (0.5 MB), small enough that a
/// hostile file cannot exhaust a tab's memory.
pub const MAX_UNPACKED: u64 = 256 << 20;

/// A file as shipped: gzipped at best compression (the catalog's JSON to a
/// quarter, the tokenizer's to 40 %, the site's wasm modules to a third; the
/// first visit downloads them all). The same bytes in always give the same
/// bytes out.
pub fn pack(content: &[u8]) -> Vec<u8> {
    use std::io::Write;
    // No name and no time in the header: the output depends on the input only.
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(content)
        .expect("writing into a Vec cannot fail");
    encoder.finish().expect("writing into a Vec cannot fail")
}

/// The content of packed bundle file `name` ([`pack`]).
pub fn unpack(name: &str, bytes: &[u8]) -> Result<Vec<u8>, BundleError> {
    use std::io::Read;
    let bad = |reason: String| BundleError::Content {
        name: name.into(),
        reason,
    };
    let mut content = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_UNPACKED + 1)
        .read_to_end(&mut content)
        .map_err(|e| bad(format!("not a whole gzip stream: {e}")))?;
    if content.len() as u64 > MAX_UNPACKED {
        return Err(bad(format!(
            "inflates to more than {} MiB",
            MAX_UNPACKED >> 20
        )));
    }
    Ok(content)
}

/// The catalog file's bytes ([`pack`]ed JSON).
pub fn catalog_to_bytes(catalog: &ExportedCatalog) -> Result<Vec<u8>, BundleError> {
    let json = serde_json::to_vec(catalog).map_err(|e| BundleError::Content {
        name: files::CATALOG.into(),
        reason: e.to_string(),
    })?;
    Ok(pack(&json))
}

/// Parses [`catalog_to_bytes`]' layout.
pub fn catalog_from_bytes(bytes: &[u8]) -> Result<ExportedCatalog, BundleError> {
    serde_json::from_slice(&unpack(files::CATALOG, bytes)?).map_err(|e| BundleError::Content {
        name: files::CATALOG.into(),
        reason: e.to_string(),
    })
}
