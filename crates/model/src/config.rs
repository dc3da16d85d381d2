//! Model configuration: the BERT `config.json` plus Milih's heads.

use serde::{Deserialize, Serialize};

/// A BERT `config.json` (only the fields the encoder needs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: Activation,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

fn default_act() -> Activation {
    Activation::Gelu
}
fn default_max_positions() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact (erf) GELU, what BERT calls `gelu`.
    Gelu,
    /// Tanh approximation of GELU.
    #[serde(alias = "gelu_new", alias = "gelu_pytorch_tanh")]
    GeluApproximate,
    Relu,
}

impl BertConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Parses a `config.json`, checking that the shapes are consistent.
    pub fn from_json(json: &[u8]) -> Result<Self, crate::ModelError> {
        let config: Self = serde_json::from_slice(json)
            .map_err(|e| crate::ModelError::Config(format!("BERT config.json: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), crate::ModelError> {
        let bad = |why: String| Err(crate::ModelError::Config(why));
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.num_hidden_layers == 0 {
            return bad("hidden size, heads and layers must be positive".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden size {} is not divisible by {} attention heads",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    /// A tiny configuration for fast tests.
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 64,
            hidden_act: Activation::Gelu,
            max_position_embeddings: 128,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
        }
    }
}

/// The full hybrid configuration, saved as the bundle's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HybridConfig {
    pub bert: BertConfig,
    /// Dimension of the L2-normalised embedding head.
    pub embedding_dim: usize,
    /// Output names of the classification head, in order.
    pub labels: Vec<String>,
    /// Tokens per window, special tokens included.
    pub max_length: usize,
    /// A text is read in up to this many windows of `max_length` tokens and
    /// pooled over all of them; the rest is cut.
    #[serde(default = "one")]
    pub max_windows: usize,
    /// Size of the hashed word n-gram (TF-IDF) vector that the skin-type
    /// head reads beside the pooled encoder output (0: none).
    #[serde(default)]
    pub lexical_features: usize,
    /// The skin-type head also reads ingredient-function features
    /// ([`crate::functions`]).
    #[serde(default)]
    pub ingredient_functions: bool,
}

impl HybridConfig {
    /// Width of the text features the skin-type head reads beside the
    /// pooled encoder output: TF-IDF buckets, then ingredient functions.
    pub fn text_features(&self) -> usize {
        self.lexical_features
            + if self.ingredient_functions {
                crate::functions::FUNCTION_FEATURES
            } else {
                0
            }
    }
}

fn one() -> usize {
    1
}

impl HybridConfig {
    /// Parses a bundle's `config.json`; every error names the file.
    pub fn from_json(json: &[u8]) -> Result<Self, crate::ModelError> {
        Self::parse(json).map_err(|e| crate::ModelError::Config(format!("config.json: {e}")))
    }

    fn parse(json: &[u8]) -> Result<Self, crate::ModelError> {
        let config: Self = serde_json::from_slice(json)
            .map_err(|e| crate::ModelError::Config(format!("does not parse: {e}")))?;
        config.bert.validate()?;
        if config.embedding_dim == 0 || config.labels.is_empty() || config.max_windows == 0 {
            return Err(crate::ModelError::Config(
                "embedding dim, labels and windows must be non-empty".into(),
            ));
        }
        if config.max_length == 0 || config.max_length > config.bert.max_position_embeddings {
            return Err(crate::ModelError::Config(format!(
                "max length {} must be within 1..={} positions",
                config.max_length, config.bert.max_position_embeddings
            )));
        }
        Ok(config)
    }
}
