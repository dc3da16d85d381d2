//! The `trainer` command line: its commands and options (clap). `main.rs`
//! parses them and dispatches to the library.

use crate::options::{Recipe, TrainOptions};
use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Fine-tunes, evaluates and exports Milih's skin-type and embedding model.
#[derive(Parser)]
#[command(name = "trainer", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Fine-tune the hybrid from a local BERT checkpoint directory.
    Train(TrainArgs),
    /// Cross-validate the training recipe under an evaluation protocol and
    /// write report.md and report.json (model beside the constant baseline).
    Eval(EvalArgs),
    /// Held-out skin-type and retrieval metrics of a trained run (with its
    /// saved split), or of an untrained base checkpoint with `--base`.
    Evaluate {
        /// Run directory written by `train`.
        #[arg(long, conflicts_with = "base", required_unless_present = "base")]
        run: Option<PathBuf>,
        /// A base checkpoint directory: its frozen mean-pooled embedding and
        /// an untrained classifier, evaluated on the default split.
        #[arg(long)]
        base: Option<PathBuf>,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
    /// Compute (or find in the cache) the frozen base encoder's pooled
    /// features of every product, the first step of the frozen recipe.
    Features {
        #[arg(long)]
        base: PathBuf,
        #[command(flatten)]
        catalog: CatalogArgs,
        #[arg(long, default_value_t = TrainOptions::default().max_length)]
        max_length: usize,
        #[arg(long, default_value_t = TrainOptions::default().max_windows)]
        max_windows: usize,
        #[arg(long, default_value = "runs/cache")]
        cache: PathBuf,
    },
    /// Quantize a trained run and write the browser bundle.
    Export {
        /// Run directory written by `train`.
        #[arg(long, default_value = "runs/latest")]
        run: PathBuf,
        #[command(flatten)]
        catalog: CatalogArgs,
        #[arg(long, default_value = "public/model")]
        out: PathBuf,
    },
    /// Re-embed another catalog with an existing bundle's model (no training).
    Index {
        #[arg(long, default_value = "public/model")]
        bundle: PathBuf,
        #[command(flatten)]
        catalog: CatalogArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// Time fine-tune steps (forward, backward, AdamW) on a synthetic batch
    /// and print JSON; `bench/train/run.sh` sets it beside PyTorch.
    BenchTrain {
        /// Base checkpoint directory, as for `train`.
        #[arg(long)]
        base: PathBuf,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        #[arg(long, default_value_t = 128)]
        seq_len: usize,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Write embeddings and skin-type probabilities for a CSV or for lines of
    /// text, as `<out>.jsonl` and `<out>.npy`.
    Embed {
        #[arg(long, default_value = "public/model")]
        bundle: PathBuf,
        /// A catalog CSV to embed (product texts as the model reads them).
        #[arg(long, conflicts_with = "lines", required_unless_present = "lines")]
        csv: Option<PathBuf>,
        /// A text file with one query or text per line.
        #[arg(long)]
        lines: Option<PathBuf>,
        /// `field=column` overrides for --csv.
        #[arg(long = "map")]
        map: Vec<String>,
        /// Output path without extension.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
pub struct CatalogArgs {
    /// Catalog CSV.
    #[arg(long, default_value = "data/cosmetics.csv")]
    pub catalog: PathBuf,
    /// `field=column` overrides for other column names (fields: type, brand,
    /// name, price, rating, ingredients, combination, dry, normal, oily,
    /// sensitive).
    #[arg(long = "map")]
    pub map: Vec<String>,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Base checkpoint: a directory with config.json, tokenizer.json and
    /// model.safetensors.
    #[arg(long)]
    pub base: PathBuf,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Run directory for checkpoints, metrics and the final model.
    #[arg(long, default_value = "runs/latest")]
    pub out: PathBuf,
    /// Continue from the last checkpoint in --out with its saved options.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub knobs: Knobs,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Base checkpoint directory, as for `train`.
    #[arg(long)]
    pub base: PathBuf,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Protocols to run: all, or any of labeled-folds, brand-folds, all-rows.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub protocol: Vec<String>,
    /// Folds of the labeled-folds and brand-folds protocols.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Random 85/15 splits of the all-rows protocol.
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
    /// Directory for per-split results, report.json, report.md and plots.
    /// A rerun continues an interrupted evaluation.
    #[arg(long, default_value = "runs/eval")]
    pub out: PathBuf,
    /// Cache of frozen-encoder features.
    #[arg(long, default_value = "runs/cache")]
    pub cache: PathBuf,
    #[command(flatten)]
    pub knobs: Knobs,
}

/// Training options shared by `train` and `eval`.
#[derive(Args)]
pub struct Knobs {
    #[arg(long, default_value_t = TrainOptions::default().epochs)]
    pub epochs: usize,
    /// Stop after this many optimizer steps in all.
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long, default_value_t = TrainOptions::default().batch_size)]
    pub batch_size: usize,
    /// Longest input in tokens (training and inference).
    #[arg(long, default_value_t = TrainOptions::default().max_length)]
    pub max_length: usize,
    /// Windows of --max-length tokens read per product (frozen recipe).
    #[arg(long, default_value_t = TrainOptions::default().max_windows)]
    pub max_windows: usize,
    /// Hashed TF-IDF features of the skin-type head (0: none).
    #[arg(long, default_value_t = TrainOptions::default().lexical_features)]
    pub lexical_features: usize,
    /// Ingredient-function features for the skin-type head (frozen recipe).
    #[arg(long, default_value_t = TrainOptions::default().ingredient_functions, action = clap::ArgAction::Set)]
    pub ingredient_functions: bool,
    /// frozen: fit the heads on a frozen encoder; fine-tune: train it all.
    #[arg(long, value_enum, default_value_t = TrainOptions::default().recipe)]
    pub recipe: Recipe,
    /// Optimizer steps of the heads (frozen recipe).
    #[arg(long, default_value_t = TrainOptions::default().head_steps)]
    pub head_steps: usize,
    /// Learning rate of the embedding head (frozen recipe).
    #[arg(long, default_value_t = TrainOptions::default().projector_learning_rate)]
    pub projector_lr: f64,
    #[arg(long, default_value_t = TrainOptions::default().embedding_dim)]
    pub embedding_dim: usize,
    #[arg(long, default_value_t = TrainOptions::default().learning_rate)]
    pub lr: f64,
    #[arg(long, default_value_t = TrainOptions::default().head_learning_rate)]
    pub head_lr: f64,
    /// Freeze the embeddings and this many lower encoder layers.
    #[arg(long, default_value_t = TrainOptions::default().freeze_layers)]
    pub freeze_layers: usize,
    /// Share of labeled products held out for evaluation.
    #[arg(long, default_value_t = TrainOptions::default().held_out_fraction)]
    pub held_out: f64,
    #[arg(long, default_value_t = TrainOptions::default().contrastive_weight)]
    pub contrastive_weight: f64,
    #[arg(long, default_value_t = TrainOptions::default().seed)]
    pub seed: u64,
    /// Phrasings per training intent of the embedding head (0: templated
    /// queries and product names only).
    #[arg(long, default_value_t = TrainOptions::default().phrasings)]
    pub phrasings: usize,
    /// Weight of product-to-product pairs in the embedding head's loss,
    /// relative to the descriptive queries (0: none).
    #[arg(long, default_value_t = TrainOptions::default().pair_share)]
    pub pair_share: f64,
    /// Fine-tune this many top encoder layers before fitting the heads
    /// (frozen recipe; 0: none).
    #[arg(long, default_value_t = TrainOptions::default().tune_layers)]
    pub tune_layers: usize,
    #[arg(long, default_value_t = TrainOptions::default().tune_steps)]
    pub tune_steps: usize,
    #[arg(long, default_value_t = TrainOptions::default().tune_batch)]
    pub tune_batch: usize,
    #[arg(long, default_value_t = TrainOptions::default().tune_learning_rate)]
    pub tune_lr: f64,
    /// Weight of the L2 pull toward the pretrained weights.
    #[arg(long, default_value_t = TrainOptions::default().tune_pull)]
    pub tune_pull: f64,
}

impl Knobs {
    pub fn options(&self) -> Result<TrainOptions> {
        if self.batch_size == 0 || self.epochs == 0 || self.max_length < 2 {
            bail!("--batch-size and --epochs must be positive and --max-length at least 2");
        }
        Ok(TrainOptions {
            epochs: self.epochs,
            max_steps: self.steps,
            batch_size: self.batch_size,
            max_length: self.max_length,
            max_windows: self.max_windows,
            lexical_features: self.lexical_features,
            ingredient_functions: self.ingredient_functions,
            recipe: self.recipe,
            head_steps: self.head_steps,
            projector_learning_rate: self.projector_lr,
            embedding_dim: self.embedding_dim,
            learning_rate: self.lr,
            head_learning_rate: self.head_lr,
            freeze_layers: self.freeze_layers,
            held_out_fraction: self.held_out,
            contrastive_weight: self.contrastive_weight,
            seed: self.seed,
            phrasings: self.phrasings,
            pair_share: self.pair_share,
            tune_layers: self.tune_layers,
            tune_steps: self.tune_steps,
            tune_batch: self.tune_batch,
            tune_learning_rate: self.tune_lr,
            tune_pull: self.tune_pull,
            ..TrainOptions::default()
        })
    }
}
