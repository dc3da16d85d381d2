use anyhow::{bail, Context, Result};
use clap::Parser;
use milih_model::Engine;
use milih_trainer::base::{from_base, tensors_of};
use milih_trainer::cli::{Cli, Command};
use milih_trainer::data::Protocol;
use milih_trainer::evaluation;
use milih_trainer::export::{self, load_bundle, predict_catalog, predict_texts};
use milih_trainer::heads::FrozenEncoder;
use milih_trainer::options::TrainOptions;
use milih_trainer::run_dir::load_run;
use milih_trainer::train::{evaluate_model, train};
use milih_trainer::{fsutil, load_catalog};
use std::io::Write;
use std::path::Path;

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
