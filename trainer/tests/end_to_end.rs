//! The trainer end to end on a tiny BERT built in code: train a few steps,
//! export, reload the bundle and get the exported outputs back; resume a
//! run cut short; re-index another catalog.

mod common;

use milih_bundle::files;
use milih_catalog::Catalog;
use milih_model::tiny::max_abs_diff;
use milih_model::Engine;
use milih_trainer::export::{export, index, load_bundle};
use milih_trainer::load_catalog;
use milih_trainer::options::{Recipe, TrainOptions};
use milih_trainer::run_dir::run_files;
use milih_trainer::train::train;
use std::path::Path;

fn small_catalog(n: usize) -> Catalog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/cosmetics.csv");
    let mut catalog = load_catalog(&path, &[]).unwrap();
    // Every 7th product: all six types, labeled and unlabeled rows.
    catalog.products = catalog.products.into_iter().step_by(7).take(n).collect();
    for (id, p) in catalog.products.iter_mut().enumerate() {
        p.id = id;
    }
    catalog
}

fn write_tiny_base(dir: &Path, catalog: &Catalog) {
    let texts: Vec<String> = catalog.products.iter().map(|p| p.model_text()).collect();
    common::write_tiny_base(dir, &texts);
}

/// The fine-tune recipe, a few steps.
fn options() -> TrainOptions {
    TrainOptions {
        recipe: Recipe::FineTune,
        epochs: 2,
        max_steps: Some(8),
        batch_size: 8,
        max_length: 48,
        max_windows: 1,
        lexical_features: 0,
        ingredient_functions: false,
        embedding_dim: 16,
        learning_rate: 1e-3,
        head_learning_rate: 1e-2,
        seed: 11,
        ..TrainOptions::default()
    }
}

/// The frozen recipe: two windows per product and hashed TF-IDF features.
fn frozen_options() -> TrainOptions {
    TrainOptions {
        recipe: Recipe::Frozen,
        max_length: 24,
        max_windows: 2,
        lexical_features: 256,
        ingredient_functions: true,
        head_steps: 20,
        tune_layers: 0,
        ..options()
    }
}

#[test]
fn fine_tune_export_reload_gives_identical_outputs() {
    train_export_reload(options(), 2);
}

#[test]
fn frozen_export_reload_gives_identical_outputs() {
    train_export_reload(frozen_options(), 1);
}

/// The frozen recipe with the top layer fine-tuned first, a few steps.
fn tuned_options() -> TrainOptions {
    TrainOptions {
        tune_layers: 1,
        tune_steps: 4,
        tune_batch: 4,
        tune_learning_rate: 1e-3,
        ..frozen_options()
    }
}

#[test]
fn tuned_export_reload_gives_identical_outputs() {
    train_export_reload(tuned_options(), 1);
}

#[test]
fn the_gentle_fine_tune_changes_only_the_top_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = small_catalog(32);
    let base = tmp.path().join("base");
    write_tiny_base(&base, &catalog);
    let run = tmp.path().join("run");
    train(&base, &catalog, &run, tuned_options(), false).unwrap();
    let device = candle_core::Device::Cpu;
    let before = candle_core::safetensors::load(base.join("model.safetensors"), &device).unwrap();
    let after = candle_core::safetensors::load(run.join(run_files::MODEL), &device).unwrap();
    let (mut top_changed, mut compared) = (false, 0);
    for (name, tensor) in &before {
        let Some(name) = milih_model::canonical_weight_name(name) else {
            continue;
        };
        let Some(tuned) = after.get(&name) else {
            continue;
        };
        let diff = max_abs_diff(tensor, tuned);
        compared += 1;
        if name.starts_with("encoder.layer.1.") {
            top_changed |= diff > 0.0;
        } else {
            assert_eq!(diff, 0.0, "{name} is below the tuned layers");
        }
    }
    assert!(compared > 10 && top_changed, "{compared} weights compared");
}

fn train_export_reload(options: TrainOptions, epochs: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = small_catalog(48);
    assert!(
        catalog.products.iter().any(|p| !p.is_labeled()),
        "the sample holds unlabeled rows"
    );
    let base = tmp.path().join("base");
    write_tiny_base(&base, &catalog);
    let run = tmp.path().join("run");
    let report = train(&base, &catalog, &run, options.clone(), false).unwrap();
    assert_eq!(report.history.len(), epochs);
    let eval = report.final_evaluation().unwrap();
    assert_eq!(eval.all_suitable_baseline.macro_auroc, 0.5);
    assert!(eval.model.macro_auroc.is_finite());
    for name in [
        run_files::MODEL,
        run_files::CONFIG,
        run_files::TOKENIZER,
        run_files::METRICS,
    ] {
        assert!(run.join(name).exists(), "{name} written");
    }

    let out = tmp.path().join("bundle");
    let (manifest, agreement) = export(&run, &catalog, &out).unwrap();
    assert_eq!(manifest.num_products, 48);
    assert!(agreement.min_embedding_cosine > 0.99, "{agreement:?}");
    for name in files::ALL.iter().chain([&files::MANIFEST]) {
        assert!(out.join(name).exists(), "{name} exported");
    }

    // Reload through the same verified path the browser uses.
    let bundle = load_bundle(&out).unwrap();
    let engine =
        Engine::from_bundle(&bundle.config_json, &bundle.tokenizer_json, &bundle.weights).unwrap();
    let texts: Vec<String> = catalog.products.iter().map(|p| p.model_text()).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let predictions = engine.predict(&refs, 16).unwrap();
    for (i, p) in predictions.iter().enumerate() {
        // Stored as int8 with one scale per row: the row quantized alone.
        let stored = milih_bundle::Int8Embeddings::quantize(&p.embedding, p.embedding.len());
        assert_eq!(
            stored.row(0),
            bundle.embeddings.row(i),
            "embedding of product {i}"
        );
        assert_eq!(
            p.probabilities, bundle.catalog.products[i].predicted,
            "probabilities of product {i}"
        );
        let norm: f32 = p.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    // The query path agrees with the batched product path.
    let single = engine.embed_query(refs[0]).unwrap();
    let cosine: f32 = single
        .iter()
        .zip(&predictions[0].embedding)
        .map(|(a, b)| a * b)
        .sum();
    assert!(cosine > 0.9999, "query path cosine {cosine}");

    // Exporting again gives byte-identical files.
    let again = tmp.path().join("bundle-again");
    let (manifest_again, _) = export(&run, &catalog, &again).unwrap();
    assert_eq!(manifest.files, manifest_again.files);

    // Re-indexing another catalog keeps the model and re-embeds products.
    let other = small_catalog(20);
    let indexed = tmp.path().join("indexed");
    let manifest_indexed = index(&out, &other, &indexed).unwrap();
    assert_eq!(manifest_indexed.num_products, 20);
    assert_eq!(
        manifest_indexed
            .files
            .iter()
            .find(|f| f.name == files::WEIGHTS),
        manifest.files.iter().find(|f| f.name == files::WEIGHTS)
    );
    assert_eq!(
        load_bundle(&indexed).unwrap().catalog.products[1].product,
        other.products[1]
    );
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = small_catalog(32);
    let base = tmp.path().join("base");
    write_tiny_base(&base, &catalog);
    let full = tmp.path().join("full");
    let report = train(&base, &catalog, &full, options(), false).unwrap();

    // A run killed after its first epoch: only the first checkpoint survives.
    let cut = tmp.path().join("cut");
    copy_dir(&full, &cut);
    std::fs::remove_dir_all(cut.join(run_files::CHECKPOINTS).join("epoch-002")).unwrap();
    for name in [run_files::MODEL, run_files::METRICS] {
        std::fs::remove_file(cut.join(name)).unwrap();
    }
    // Different command-line options are ignored in favour of the saved ones.
    let resumed = train(
        &base,
        &catalog,
        &cut,
        TrainOptions {
            seed: 999,
            ..options()
        },
        true,
    )
    .unwrap();
    assert_eq!(resumed.history.len(), 2);
    assert_eq!(resumed.history[1].held_out, report.history[1].held_out);
    let a = candle_core::safetensors::load(full.join(run_files::MODEL), &candle_core::Device::Cpu)
        .unwrap();
    let b = candle_core::safetensors::load(cut.join(run_files::MODEL), &candle_core::Device::Cpu)
        .unwrap();
    for (name, tensor) in &a {
        let diff = max_abs_diff(tensor, &b[name]);
        assert_eq!(diff, 0.0, "{name} differs after resume");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn evaluation_reports_every_split_with_baselines_and_plots_and_resumes() {
    use milih_trainer::data::Protocol;
    use milih_trainer::evaluation::{run, EvalData};
    use milih_trainer::heads::FrozenEncoder;
    use milih_trainer::report::method;
    let tmp = tempfile::tempdir().unwrap();
    let catalog = small_catalog(60);
    let base = tmp.path().join("base");
    write_tiny_base(&base, &catalog);
    let options = frozen_options();
    let encoder = FrozenEncoder::load(&base, &options).unwrap();
    let data = EvalData::new(&encoder, &catalog, &options, &tmp.path().join("cache")).unwrap();
    let out = tmp.path().join("eval");
    let protocols = [
        Protocol::BrandFolds { folds: 2 },
        Protocol::AllRows {
            repeats: 2,
            test_fraction: 0.15,
        },
    ];
    let report = run(&data, &protocols, &options, &out).unwrap();
    let brand = &report.protocols[0];
    assert_eq!(brand.folds.len(), 2);
    let held_out: usize = brand.folds.iter().map(|f| f.held_out.len()).sum();
    assert_eq!(
        held_out,
        catalog.labeled().count(),
        "every labeled product scored once"
    );
    let auroc = &brand.summary["macro AUROC"];
    assert_eq!(auroc[method::CONSTANT].mean, 0.5);
    for m in [method::MILIH, method::TFIDF, method::FROZEN_LR] {
        assert!(auroc[m].mean.is_finite(), "{m}");
    }
    let ndcg = &brand.summary["type for skin: nDCG@10"];
    for m in [method::MILIH, method::RANDOM, method::BM25, method::FROZEN] {
        assert!((0.0..=1.0).contains(&ndcg[m].mean), "{m}");
    }
    assert_eq!(
        report.protocols[1].folds[0].held_out.len(),
        9,
        "15% of 60 rows"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("grouped by brand") && md.contains(" ± ") && md.contains("BM25"),
        "{md}"
    );
    for plot in ["training-curves.svg", "roc.svg", "pr.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("<polyline"),
            "{plot}"
        );
    }
    // A second run reads the finished splits back instead of refitting.
    let again = run(&data, &protocols, &options, &out).unwrap();
    assert_eq!(again, report);
}

#[test]
fn evaluation_fine_tunes_on_each_split_and_keeps_frozen_baselines() {
    use milih_trainer::data::Protocol;
    use milih_trainer::evaluation::{run, EvalData};
    use milih_trainer::heads::FrozenEncoder;
    use milih_trainer::report::method;
    let tmp = tempfile::tempdir().unwrap();
    let catalog = small_catalog(40);
    let base = tmp.path().join("base");
    write_tiny_base(&base, &catalog);
    let cache = tmp.path().join("cache");
    let protocols = [Protocol::BrandFolds { folds: 2 }];
    let frozen = frozen_options();
    let frozen_data = EvalData::new(
        &FrozenEncoder::load(&base, &frozen).unwrap(),
        &catalog,
        &frozen,
        &cache,
    )
    .unwrap();
    let plain = run(
        &frozen_data,
        &protocols,
        &frozen,
        &tmp.path().join("frozen"),
    )
    .unwrap();
    let tuned = tuned_options();
    let tuned_data = EvalData::new(
        &FrozenEncoder::load(&base, &tuned).unwrap(),
        &catalog,
        &tuned,
        &cache,
    )
    .unwrap();
    let report = run(&tuned_data, &protocols, &tuned, &tmp.path().join("tuned")).unwrap();
    let metric = "type for skin: nDCG@10";
    let (a, b) = (
        &plain.protocols[0].summary[metric],
        &report.protocols[0].summary[metric],
    );
    // The baselines read the pretrained encoder either way; Milih reads the
    // encoder tuned on each split.
    assert_eq!(a[method::FROZEN], b[method::FROZEN]);
    assert_eq!(a[method::BM25], b[method::BM25]);
    assert_ne!(
        plain.protocols[0].folds[0].milih_scores,
        report.protocols[0].folds[0].milih_scores
    );
}

#[test]
fn training_benchmark_times_real_steps_that_learn() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    write_tiny_base(&base, &small_catalog(12));
    let options = milih_trainer::bench::StepBenchOptions {
        batch_size: 4,
        seq_len: 16,
        steps: 6,
        warmup: 1,
        seed: 5,
    };
    let report = milih_trainer::bench::training_steps(&base, &options).unwrap();
    assert_eq!(report.step_ms.len(), 6);
    assert!(report.step_ms.iter().all(|ms| *ms > 0.0));
    assert!(report.sequences_per_second > 0.0);
    assert!(report.first_loss.is_finite() && report.last_loss.is_finite());
    // Seven steps on one batch: the loss must go down.
    assert!(
        report.last_loss < report.first_loss,
        "{} -> {}",
        report.first_loss,
        report.last_loss
    );
}
