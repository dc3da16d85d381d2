use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use milih_model::Engine;
use milih_trainer::base::{from_base, tensors_of};
use milih_trainer::data::Protocol;
use milih_trainer::evaluation;
use milih_trainer::export::{self, load_bundle, predict_catalog, predict_texts};
use milih_trainer::heads::FrozenEncoder;
use milih_trainer::options::{Recipe, TrainOptions};
use milih_trainer::run_dir::load_run;
use milih_trainer::train::{evaluate_model, train};
use milih_trainer::{fsutil, load_catalog};
use std::io::Write;
use std::path::{Path, PathBuf};

// Training allocates and frees many tensors the size of the model on every
// step; the system allocator returns them to the OS and page-faults them
// back in each time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the same slot in mimalloc 2 and 3,
/// whose option enum keeps retired options in place).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory for reuse. By default mimalloc hands memory that
/// stayed free for a second back to the OS, and a training step (about a
/// second) then zero-fills every page of its activations again: a fifth of
/// the step's time went to page faults.
fn keep_freed_memory() {
    // SAFETY: sets one option to a documented value (-1: never purge);
    // called first thing in `main`, before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// The environment variable that sets how many rounds the idle threads of
/// candle's own thread pool (its CPU ops; the trainer's fused ops run on
/// rayon's) spin before they sleep.
const CANDLE_SPIN_LIMIT: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// Lets candle's idle threads sleep at once unless the environment says
/// otherwise. Training runs candle's pool and rayon's side by side, each
/// with a thread per core: a candle thread spinning after its op took a core
/// from rayon's matrix products (5 % of the step's samples in `perf`).
fn candle_threads_sleep_when_idle() {
    if std::env::var_os(CANDLE_SPIN_LIMIT).is_none() {
        // Read once, when candle's pool starts on its first op; set here,
        // in `main` before any other thread exists.
        std::env::set_var(CANDLE_SPIN_LIMIT, "0");
    }
}

/// Fine-tunes, evaluates and exports Milih's skin-type and embedding model.
#[derive(Parser)]
#[command(name = "trainer", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
struct CatalogArgs {
    /// Catalog CSV.
    #[arg(long, default_value = "data/cosmetics.csv")]
    catalog: PathBuf,
    /// `field=column` overrides for other column names (fields: type, brand,
    /// name, price, rating, ingredients, combination, dry, normal, oily,
    /// sensitive).
    #[arg(long = "map")]
    map: Vec<String>,
}

#[derive(Args)]
struct TrainArgs {
    /// Base checkpoint: a directory with config.json, tokenizer.json and
    /// model.safetensors.
    #[arg(long)]
    base: PathBuf,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Run directory for checkpoints, metrics and the final model.
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    /// Continue from the last checkpoint in --out with its saved options.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    knobs: Knobs,
}

#[derive(Args)]
struct EvalArgs {
    /// Base checkpoint directory, as for `train`.
    #[arg(long)]
    base: PathBuf,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Protocols to run: all, or any of labeled-folds, brand-folds, all-rows.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    protocol: Vec<String>,
    /// Folds of the labeled-folds and brand-folds protocols.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Random 85/15 splits of the all-rows protocol.
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Directory for per-split results, report.json, report.md and plots.
    /// A rerun continues an interrupted evaluation.
    #[arg(long, default_value = "runs/eval")]
    out: PathBuf,
    /// Cache of frozen-encoder features.
    #[arg(long, default_value = "runs/cache")]
    cache: PathBuf,
    #[command(flatten)]
    knobs: Knobs,
}

/// Training options shared by `train` and `eval`.
#[derive(Args)]
struct Knobs {
    #[arg(long, default_value_t = TrainOptions::default().epochs)]
    epochs: usize,
    /// Stop after this many optimizer steps in all.
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long, default_value_t = TrainOptions::default().batch_size)]
    batch_size: usize,
    /// Longest input in tokens (training and inference).
    #[arg(long, default_value_t = TrainOptions::default().max_length)]
    max_length: usize,
    /// Windows of --max-length tokens read per product (frozen recipe).
    #[arg(long, default_value_t = TrainOptions::default().max_windows)]
    max_windows: usize,
    /// Hashed TF-IDF features of the skin-type head (0: none).
    #[arg(long, default_value_t = TrainOptions::default().lexical_features)]
    lexical_features: usize,
    /// Ingredient-function features for the skin-type head (frozen recipe).
    #[arg(long, default_value_t = TrainOptions::default().ingredient_functions, action = clap::ArgAction::Set)]
    ingredient_functions: bool,
    /// frozen: fit the heads on a frozen encoder; fine-tune: train it all.
    #[arg(long, value_enum, default_value_t = TrainOptions::default().recipe)]
    recipe: Recipe,
    /// Optimizer steps of the heads (frozen recipe).
    #[arg(long, default_value_t = TrainOptions::default().head_steps)]
    head_steps: usize,
    /// Learning rate of the embedding head (frozen recipe).
    #[arg(long, default_value_t = TrainOptions::default().projector_learning_rate)]
    projector_lr: f64,
    #[arg(long, default_value_t = TrainOptions::default().embedding_dim)]
    embedding_dim: usize,
    #[arg(long, default_value_t = TrainOptions::default().learning_rate)]
    lr: f64,
    #[arg(long, default_value_t = TrainOptions::default().head_learning_rate)]
    head_lr: f64,
    /// Freeze the embeddings and this many lower encoder layers.
    #[arg(long, default_value_t = TrainOptions::default().freeze_layers)]
    freeze_layers: usize,
    /// Share of labeled products held out for evaluation.
    #[arg(long, default_value_t = TrainOptions::default().held_out_fraction)]
    held_out: f64,
    #[arg(long, default_value_t = TrainOptions::default().contrastive_weight)]
    contrastive_weight: f64,
    #[arg(long, default_value_t = TrainOptions::default().seed)]
    seed: u64,
    /// Phrasings per training intent of the embedding head (0: templated
    /// queries and product names only).
    #[arg(long, default_value_t = TrainOptions::default().phrasings)]
    phrasings: usize,
    /// Weight of product-to-product pairs in the embedding head's loss,
    /// relative to the descriptive queries (0: none).
    #[arg(long, default_value_t = TrainOptions::default().pair_share)]
    pair_share: f64,
    /// Fine-tune this many top encoder layers before fitting the heads
    /// (frozen recipe; 0: none).
    #[arg(long, default_value_t = TrainOptions::default().tune_layers)]
    tune_layers: usize,
    #[arg(long, default_value_t = TrainOptions::default().tune_steps)]
    tune_steps: usize,
    #[arg(long, default_value_t = TrainOptions::default().tune_batch)]
    tune_batch: usize,
    #[arg(long, default_value_t = TrainOptions::default().tune_learning_rate)]
    tune_lr: f64,
    /// Weight of the L2 pull toward the pretrained weights.
    #[arg(long, default_value_t = TrainOptions::default().tune_pull)]
    tune_pull: f64,
}

impl Knobs {
    fn options(&self) -> Result<TrainOptions> {
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

fn main() {
    keep_freed_memory();
    candle_threads_sleep_when_idle();
    if let Err(error) = run(Cli::parse()) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Features {
            base,
            catalog,
            max_length,
            max_windows,
            cache,
        } => {
            let catalog = load_catalog(&catalog.catalog, &catalog.map)?;
            let options = TrainOptions {
                max_length,
                max_windows,
                ..TrainOptions::default()
            };
            let texts: Vec<String> = catalog.products.iter().map(|p| p.model_text()).collect();
            let started = std::time::Instant::now();
            let encoder = FrozenEncoder::load(&base, &options)?;
            encoder.pooled(&texts, &cache, "products")?;
            eprintln!(
                "{} products, {} windows of {} tokens at most: {:.1} s",
                texts.len(),
                max_windows,
                max_length,
                started.elapsed().as_secs_f64()
            );
        }
        Command::Train(args) => {
            let catalog = load_catalog(&args.catalog.catalog, &args.catalog.map)?;
            let options = args.knobs.options()?;
            let report = train(&args.base, &catalog, &args.out, options, args.resume)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&report.final_evaluation())?
            );
            eprintln!(
                "trained in {:.0} s; run saved to {}",
                report.training_seconds,
                args.out.display()
            );
        }
        Command::Eval(args) => {
            let catalog = load_catalog(&args.catalog.catalog, &args.catalog.map)?;
            let options = args.knobs.options()?;
            if args.folds < 2 || args.repeats < 2 {
                bail!("--folds and --repeats must be at least 2");
            }
            let mut protocols = Vec::new();
            for name in &args.protocol {
                let all = name == "all";
                if all || name == "labeled-folds" {
                    protocols.push(Protocol::LabeledFolds { folds: args.folds });
                }
                if all || name == "brand-folds" {
                    protocols.push(Protocol::BrandFolds { folds: args.folds });
                }
                if all || name == "all-rows" {
                    protocols.push(Protocol::AllRows {
                        repeats: args.repeats,
                        test_fraction: 0.15,
                    });
                }
                if !all && !["labeled-folds", "brand-folds", "all-rows"].contains(&name.as_str()) {
                    bail!("unknown protocol `{name}` (all, labeled-folds, brand-folds, all-rows)");
                }
            }
            let encoder = FrozenEncoder::load(&args.base, &options)?;
            let context = evaluation::EvalData::new(&encoder, &catalog, &options, &args.cache)?;
            let report = evaluation::run(&context, &protocols, &options, &args.out)?;
            println!("{}", milih_trainer::report::markdown(&report));
        }
        Command::Evaluate { run, base, catalog } => {
            let catalog = load_catalog(&catalog.catalog, &catalog.map)?;
            let (engine, options) = match (run, base) {
                (Some(run), _) => load_run(&run)?,
                (None, Some(base)) => {
                    let options = TrainOptions::default();
                    let initial = from_base(&base, &options, &candle_core::Device::Cpu)?;
                    let engine =
                        Engine::new(initial.config, initial.encoder, tensors_of(&initial.varmap))?;
                    (engine, options)
                }
                (None, None) => bail!("give --run or --base"),
            };
            let evaluation = evaluate_model(&engine, &catalog, &options)?;
            println!("{}", serde_json::to_string_pretty(&evaluation)?);
        }
        Command::Export { run, catalog, out } => {
            let catalog = load_catalog(&catalog.catalog, &catalog.map)?;
            let (manifest, agreement) = export::export(&run, &catalog, &out)?;
            print_manifest(&manifest, &out);
            println!("quantized vs f32 over {} products: embedding cosine min {:.5} mean {:.5}, max probability difference {:.5}",
                agreement.products, agreement.min_embedding_cosine, agreement.mean_embedding_cosine, agreement.max_probability_abs_diff);
            print_bundle_summary(&out)?;
        }
        Command::Index {
            bundle,
            catalog,
            out,
        } => {
            let catalog = load_catalog(&catalog.catalog, &catalog.map)?;
            let manifest = export::index(&bundle, &catalog, &out)?;
            print_manifest(&manifest, &out);
            print_bundle_summary(&out)?;
        }
        Command::BenchTrain {
            base,
            batch_size,
            seq_len,
            steps,
            warmup,
            seed,
        } => {
            let options = milih_trainer::bench::StepBenchOptions {
                batch_size,
                seq_len,
                steps,
                warmup,
                seed,
            };
            let report = milih_trainer::bench::training_steps(&base, &options)?;
            eprintln!(
                "{} threads: {:.1} ms per step (p95 {:.1}), {:.2} sequences/s",
                report.threads, report.median_ms, report.p95_ms, report.sequences_per_second
            );
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Embed {
            bundle,
            csv,
            lines,
            map,
            out,
        } => {
            let bundle = load_bundle(&bundle)?;
            let engine =
                Engine::from_bundle(&bundle.config_json, &bundle.tokenizer_json, &bundle.weights)?;
            let (keys, predictions) = match (csv, lines) {
                (Some(csv), _) => {
                    let catalog = load_catalog(&csv, &map)?;
                    let keys = catalog
                        .products
                        .iter()
                        .map(|p| serde_json::json!({ "id": p.id, "name": p.name }))
                        .collect::<Vec<_>>();
                    (keys, predict_catalog(&engine, &catalog, "embedding")?)
                }
                (None, Some(lines)) => {
                    let text = std::fs::read_to_string(&lines)
                        .with_context(|| format!("reading {} as UTF-8 text", lines.display()))?;
                    let texts: Vec<String> = text.lines().map(str::to_owned).collect();
                    if let Some(blank) = texts.iter().position(|t| t.trim().is_empty()) {
                        bail!(
                            "{}: line {}: the text is empty (one text per line)",
                            lines.display(),
                            blank + 1
                        );
                    }
                    let keys = texts
                        .iter()
                        .map(|t| serde_json::json!({ "text": t }))
                        .collect::<Vec<_>>();
                    (keys, predict_texts(&engine, &texts, "embedding")?)
                }
                (None, None) => bail!("give --csv or --lines"),
            };
            write_embeddings(&out, &engine, keys, &predictions)?;
        }
    }
    Ok(())
}

/// How the unlabeled products of a written bundle read, per skin type.
fn print_bundle_summary(out: &Path) -> Result<()> {
    let bundle = load_bundle(out)?;
    let (raw, neutral) = export::bundle_neighbours(&bundle.embeddings, &bundle.catalog);
    for (what, n) in [("raw embedding", raw), ("similar products", neutral)] {
        println!(
            "neighbours over the whole catalog, {what}: same type @10 {:.3}, same brand @10 {:.3}, shared key active @10 {:.3}",
            n.same_type_at_10, n.same_brand_at_10, n.shared_active_at_10
        );
    }
    println!("answers for the unlabeled products (likely / unsure / unlikely / unknown):");
    for (label, counts) in bundle
        .manifest
        .labels
        .iter()
        .zip(export::unlabeled_answers(&bundle.catalog))
    {
        println!(
            "  {label:<12} {:>4} / {:>4} / {:>4} / {:>4}",
            counts[0], counts[1], counts[2], counts[3]
        );
    }
    Ok(())
}

fn print_manifest(manifest: &milih_bundle::Manifest, out: &std::path::Path) {
    println!("bundle written to {}:", out.display());
    for file in &manifest.files {
        println!(
            "  {:<16} {:>11} bytes  sha256 {}",
            file.name,
            file.bytes,
            &file.sha256[..16]
        );
    }
    println!("  total            {:>11} bytes", manifest.total_bytes());
}

fn write_embeddings(
    out: &std::path::Path,
    engine: &Engine,
    keys: Vec<serde_json::Value>,
    predictions: &[milih_model::Prediction],
) -> Result<()> {
    let labels = &engine.config().labels;
    let mut jsonl = Vec::new();
    for (mut key, p) in keys.into_iter().zip(predictions) {
        let probabilities: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .zip(&p.probabilities)
            .map(|(l, v)| (l.clone(), serde_json::json!(v)))
            .collect();
        key["probabilities"] = serde_json::Value::Object(probabilities);
        key["embedding"] = serde_json::json!(p.embedding);
        serde_json::to_writer(&mut jsonl, &key)?;
        jsonl.write_all(b"\n")?;
    }
    let jsonl_path = out.with_extension("jsonl");
    fsutil::write_atomic(&jsonl_path, &jsonl)?;
    let dim = engine.config().embedding_dim;
    let flat: Vec<f32> = predictions
        .iter()
        .flat_map(|p| p.embedding.iter().copied())
        .collect();
    let matrix =
        candle_core::Tensor::from_vec(flat, (predictions.len(), dim), &candle_core::Device::Cpu)?;
    let npy_path = out.with_extension("npy");
    let tmp = out.with_extension("npy.tmp");
    matrix.write_npy(&tmp)?;
    std::fs::rename(&tmp, &npy_path)?;
    eprintln!("wrote {} and {}", jsonl_path.display(), npy_path.display());
    Ok(())
}
