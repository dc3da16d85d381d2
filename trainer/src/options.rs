//! The options of a training run: everything that decides its outcome,
//! saved with the run and reused on `--resume`.

use serde::{Deserialize, Serialize};

/// Everything that decides the outcome of a run (saved with it, and reused
/// on `--resume`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    pub epochs: usize,
    /// Stop after this many optimizer steps in all (for quick runs).
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    pub max_length: usize,
    /// Windows of `max_length` tokens read per product (frozen recipe).
    #[serde(default = "one")]
    pub max_windows: usize,
    /// Hashed TF-IDF buckets the skin-type head reads (frozen recipe).
    #[serde(default)]
    pub lexical_features: usize,
    /// The skin-type head also reads ingredient-function features (frozen
    /// recipe).
    #[serde(default)]
    pub ingredient_functions: bool,
    /// Fine-tune the whole encoder, or fit the heads on a frozen one.
    #[serde(default)]
    pub recipe: Recipe,
    /// Optimizer steps of the heads in the frozen recipe.
    #[serde(default = "default_head_steps")]
    pub head_steps: usize,
    /// Learning rate of the embedding head in the frozen recipe: small, as
    /// it starts from the identity and the pretrained geometry is worth
    /// keeping.
    #[serde(default = "default_projector_learning_rate")]
    pub projector_learning_rate: f64,
    pub embedding_dim: usize,
    pub learning_rate: f64,
    pub head_learning_rate: f64,
    pub weight_decay: f64,
    /// Embeddings and this many lower encoder layers get no gradient.
    pub freeze_layers: usize,
    pub held_out_fraction: f64,
    pub contrastive_weight: f64,
    pub temperature: f64,
    pub seed: u64,
    /// Phrasings drawn per training intent for the embedding head (0: the
    /// templated benchmark queries and product names only, as runs before
    /// the phrasings had).
    #[serde(default)]
    pub phrasings: usize,
    /// Weight of all product-to-product pairs together (same type, shared
    /// key active), relative to all descriptive queries (0: none).
    #[serde(default)]
    pub pair_share: f64,
    /// Fine-tune this many top encoder layers before fitting the heads (0:
    /// the encoder stays as pretrained). See [`crate::tune`].
    #[serde(default)]
    pub tune_layers: usize,
    /// Optimizer steps, queries per step, learning rate and pull toward
    /// the pretrained weights of that fine-tune.
    #[serde(default = "default_tune_steps")]
    pub tune_steps: usize,
    #[serde(default = "default_tune_batch")]
    pub tune_batch: usize,
    #[serde(default = "default_tune_learning_rate")]
    pub tune_learning_rate: f64,
    #[serde(default = "default_tune_pull")]
    pub tune_pull: f64,
}

fn default_tune_steps() -> usize {
    TrainOptions::default().tune_steps
}

fn default_tune_batch() -> usize {
    TrainOptions::default().tune_batch
}

fn default_tune_learning_rate() -> f64 {
    TrainOptions::default().tune_learning_rate
}

fn default_tune_pull() -> f64 {
    TrainOptions::default().tune_pull
}

/// How the encoder is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// The encoder stays as pretrained; the heads are fitted on its cached
    /// features of whole texts (all windows) and on TF-IDF word features.
    #[default]
    Frozen,
    /// Encoder and heads trained together on the first window of each text.
    FineTune,
}

fn one() -> usize {
    1
}

fn default_projector_learning_rate() -> f64 {
    TrainOptions::default().projector_learning_rate
}

fn default_head_steps() -> usize {
    TrainOptions::default().head_steps
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 3,
            max_steps: None,
            batch_size: 16,
            max_length: 128,
            max_windows: 4,
            lexical_features: 8192,
            ingredient_functions: true,
            recipe: Recipe::Frozen,
            head_steps: 400,
            projector_learning_rate: 3e-5,
            embedding_dim: 384,
            learning_rate: 5e-5,
            head_learning_rate: 1e-3,
            weight_decay: 0.01,
            freeze_layers: 0,
            held_out_fraction: 0.15,
            contrastive_weight: 1.0,
            temperature: 0.05,
            seed: 42,
            phrasings: 4,
            pair_share: 0.5,
            tune_layers: 2,
            tune_steps: 150,
            tune_batch: 16,
            tune_learning_rate: 2e-5,
            tune_pull: 0.1,
        }
    }
}
