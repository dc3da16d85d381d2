//! The Milih hybrid model, defined once for the trainer and the browser:
//! a BERT encoder with mean pooling, a multi-label skin-type classifier and
//! an L2-normalised embedding head; its tokenizer; and the quantized weight
//! format of the browser bundle.
//!
//! No file or network I/O: everything takes and returns bytes or tensors.

pub mod bert;
pub mod config;
pub mod engine;
pub mod functions;
pub mod fused;
pub mod gelu;
pub mod hybrid;
pub mod init;
pub mod int8;
pub mod lexical;
pub mod quantized;
#[cfg(any(test, feature = "test-support"))]
pub mod tiny;
pub mod tokenize;

pub use bert::Mode;
pub use config::{Activation, BertConfig, HybridConfig};
pub use engine::{Engine, Prediction};
pub use hybrid::{l2_normalize, Heads, Hybrid, HybridOutput, HEADS_PREFIX, LEXICAL_IDF};
pub use tokenize::{EncodedBatch, TextEncoder};

/// Why a model could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Tokenizer(String),
    #[error("{0}")]
    Weights(String),
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Maps a Hugging Face BERT weight name to the name Milih uses: no `bert.`
/// prefix, and `gamma`/`beta` of older checkpoints as `weight`/`bias`.
/// Returns `None` for entries that are not weights of the encoder (pooler,
/// pre-training heads, position-id buffers).
pub fn canonical_weight_name(name: &str) -> Option<String> {
    let name = name.strip_prefix("bert.").unwrap_or(name);
    if !(name.starts_with("embeddings.") || name.starts_with("encoder."))
        || name.ends_with("position_ids")
    {
        return None;
    }
    let name = if let Some(stem) = name.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = name.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        name.to_owned()
    };
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_names_are_canonical() {
        assert_eq!(
            canonical_weight_name("bert.encoder.layer.0.output.LayerNorm.gamma").as_deref(),
            Some("encoder.layer.0.output.LayerNorm.weight")
        );
        assert_eq!(
            canonical_weight_name("embeddings.word_embeddings.weight").as_deref(),
            Some("embeddings.word_embeddings.weight")
        );
        assert_eq!(canonical_weight_name("embeddings.position_ids"), None);
        assert_eq!(canonical_weight_name("pooler.dense.weight"), None);
        assert_eq!(canonical_weight_name("cls.predictions.bias"), None);
    }
}
