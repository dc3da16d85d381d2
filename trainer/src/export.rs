//! Writing and reading browser bundles.

use crate::fsutil::{read, replace_dir_atomic};
use crate::progress::progress_bar;
use crate::queries::Facts;
use crate::report::{neighbour_agreement, Neighbours};
use crate::run_dir::run_files;
use anyhow::{Context, Result};
use milih_bundle::{
    catalog_to_bytes, embeddings_to_bytes, files, pack, Bundle, ExportedCatalog, FileEntry,
    Int8Embeddings, Manifest, ProductEntry, FORMAT_VERSION,
};
use milih_catalog::{Catalog, Product};
use milih_model::bert::InputGram;
use milih_model::quantized::{self, BlockGrid};
use milih_model::{Engine, HybridConfig, Prediction, TextEncoder};
use milih_rank::dot;
use milih_rank::lexical::Ranking;
use milih_rank::likeness::brand_neutral_products;
use milih_rank::skin::SkinAnswers;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// How closely the quantized model follows the f32 model over a catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub products: usize,
    pub min_embedding_cosine: f64,
    pub mean_embedding_cosine: f64,
    pub max_probability_abs_diff: f64,
}

pub fn agreement(reference: &[Prediction], other: &[Prediction]) -> Agreement {
    let mut min_cos = f64::INFINITY;
    let mut sum_cos = 0.0;
    let mut max_diff = 0f64;
    for (a, b) in reference.iter().zip(other) {
        let cos: f64 = a
            .embedding
            .iter()
            .zip(&b.embedding)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        min_cos = min_cos.min(cos);
        sum_cos += cos;
        for (p, q) in a.probabilities.iter().zip(&b.probabilities) {
            max_diff = max_diff.max(f64::from((p - q).abs()));
        }
    }
    Agreement {
        products: reference.len(),
        min_embedding_cosine: min_cos,
        mean_embedding_cosine: sum_cos / reference.len().max(1) as f64,
        max_probability_abs_diff: max_diff,
    }
}

/// Predicts for every product of `catalog`, with a progress bar.
pub fn predict_catalog(engine: &Engine, catalog: &Catalog, what: &str) -> Result<Vec<Prediction>> {
    let texts: Vec<String> = catalog.products.iter().map(|p| p.model_text()).collect();
    predict_texts(engine, &texts, what)
}

pub fn predict_texts(engine: &Engine, texts: &[String], what: &str) -> Result<Vec<Prediction>> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let bar = progress_bar(refs.len() as u64, what);
    let predictions =
        engine.predict_with_progress(&refs, 16, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    Ok(predictions)
}

/// Quantizes a training run's model and writes the bundle for `catalog`.
pub fn export(run: &Path, catalog: &Catalog, out: &Path) -> Result<(Manifest, Agreement)> {
    let config_json = read(&run.join(run_files::CONFIG))?;
    let tokenizer_json = read(&run.join(run_files::TOKENIZER))?;
    let config = HybridConfig::from_json(&config_json)?;
    let model_path = run.join(run_files::MODEL);
    let tensors = candle_core::safetensors::load(&model_path, &candle_core::Device::Cpu)
        .with_context(|| format!("reading {}", model_path.display()))?;
    let mut reference = Engine::new(
        config.clone(),
        TextEncoder::from_json(&tokenizer_json, config.max_length)?,
        tensors.clone(),
    )?;
    // The catalog's own texts calibrate the low-bit rounding.
    let inputs = reference.observe_inputs();
    let f32_predictions = predict_catalog(&reference, catalog, "f32 model")?;
    let gguf = calibrated_gguf(&tensors, &inputs.grams())?;
    let quantized = Engine::from_bundle(&config_json, &tokenizer_json, &gguf)?;
    let predictions = predict_catalog(&quantized, catalog, "quantized model")?;
    let agreement = agreement(&f32_predictions, &predictions);
    let mut training: serde_json::Value = match read(&run.join(run_files::METRICS)) {
        Ok(bytes) => serde_json::from_slice(&bytes).context("parsing the run's metrics.json")?,
        Err(_) => serde_json::Value::Null,
    };
    // Wall-clock figures stay in the run's metrics.json: the same run must
    // always export the same bytes.
    drop_timings(&mut training);
    let metrics = serde_json::json!({ "training": training, "quantization": agreement });
    let skin_answers = match read(&run.join(run_files::SKIN_ANSWERS)) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).context("parsing the run's skin-answers.json")?
        }
        Err(_) => SkinAnswers::default(),
    };
    let ranking = run_ranking(run)?;
    println!(
        "search ranking: fields (brand, name, ingredients) {:?}, concern {}, nothing close below {:.3}",
        ranking.fusion.fields, ranking.fusion.concern, ranking.nothing_close_below
    );
    let manifest = write_bundle(
        out,
        &config,
        &config_json,
        &tokenizer_json,
        &gguf,
        catalog,
        predictions,
        metrics,
        skin_answers,
        ranking,
    )?;
    Ok((manifest, agreement))
}

/// The search ranking a run fitted (`ranking.json`); the embedding alone
/// for a run from before it was fitted.
fn run_ranking(run: &Path) -> Result<Ranking> {
    match read(&run.join(run_files::RANKING)) {
        Ok(bytes) => serde_json::from_slice(&bytes).context("parsing the run's ranking.json"),
        Err(_) => Ok(Ranking::default()),
    }
}

/// The bundle's GGUF weights, with every low-bit encoder matrix rounded
/// against the inputs its layer saw ([`crate::gptq`]).
pub fn calibrated_gguf(
    tensors: &HashMap<String, candle_core::Tensor>,
    grams: &HashMap<String, InputGram>,
) -> Result<Vec<u8>> {
    let bar = progress_bar(tensors.len() as u64, "quantizing");
    let gguf = quantized::to_gguf_with(tensors, |name, tensor| {
        bar.inc(1);
        let grid = BlockGrid::new(quantized::storage_type(name, tensor));
        match (grid, grams.get(name)) {
            (Some(grid), Some(gram)) if quantized::is_encoder_matrix(name, tensor) => {
                let (rows, cols) = tensor.dims2()?;
                let weights = tensor.flatten_all()?.to_vec1::<f32>()?;
                crate::gptq::quantize(&weights, rows, cols, gram, grid)
                    .map_err(|e| candle_core::Error::Msg(format!("`{name}`: {e:#}")))
            }
            _ => quantized::quantize(name, tensor),
        }
    })?;
    bar.finish_and_clear();
    Ok(gguf)
}

/// Re-embeds `catalog` with the model of an existing bundle and writes a
/// new bundle with the same model files.
pub fn index(bundle_dir: &Path, catalog: &Catalog, out: &Path) -> Result<Manifest> {
    let bundle = load_bundle(bundle_dir)?;
    let config = HybridConfig::from_json(&bundle.config_json)?;
    let engine = Engine::from_bundle(&bundle.config_json, &bundle.tokenizer_json, &bundle.weights)?;
    let predictions = predict_catalog(&engine, catalog, "embedding catalog")?;
    let mut metrics = bundle.manifest.metrics.clone();
    if let Some(map) = metrics.as_object_mut() {
        // Training metrics describe the model; quantization agreement was
        // measured on another catalog.
        map.remove("quantization");
    }
    write_bundle(
        out,
        &config,
        &bundle.config_json,
        &bundle.tokenizer_json,
        &bundle.weights,
        catalog,
        predictions,
        metrics,
        // The thresholds describe the model's probabilities, not a catalog;
        // the ranking weighs kinds of evidence, not particular products.
        bundle.catalog.skin_answers.clone(),
        bundle.catalog.ranking,
    )
}

/// Per label, how many unlabeled products read likely, unsure, unlikely and
/// unknown under the bundle's thresholds.
pub fn unlabeled_answers(catalog: &ExportedCatalog) -> Vec<[usize; 4]> {
    let labels = catalog
        .products
        .iter()
        .map(|p| p.predicted.len())
        .max()
        .unwrap_or(0);
    let mut counts = vec![[0usize; 4]; labels];
    for entry in catalog
        .products
        .iter()
        .filter(|p| p.product.skin_labels.is_none())
    {
        for (label, &p) in entry.predicted.iter().enumerate() {
            counts[label][catalog.skin_answers.answer(label, p).index()] += 1;
        }
    }
    counts
}

/// Neighbour agreement over a whole bundle: by the raw embeddings (the
/// brand's style kept) and as "Similar products" ranks (style removed).
pub fn bundle_neighbours(
    embeddings: &Int8Embeddings,
    catalog: &ExportedCatalog,
) -> (Neighbours, Neighbours) {
    let rows: Vec<f32> = (0..embeddings.rows())
        .flat_map(|i| embeddings.row(i))
        .collect();
    let products: Vec<&Product> = catalog.products.iter().map(|e| &e.product).collect();
    let facts: Vec<Facts> = products.iter().map(|p| Facts::of(p)).collect();
    let ids: Vec<usize> = (0..products.len()).collect();
    let dim = embeddings.dim();
    let agreement = |rows: &[f32]| {
        let row = |i: usize| &rows[i * dim..(i + 1) * dim];
        let scores: Vec<Vec<f32>> = ids
            .iter()
            .map(|&a| ids.iter().map(|&b| dot(row(a), row(b))).collect())
            .collect();
        neighbour_agreement(&facts, &ids, &scores)
    };
    let neutral = brand_neutral_products(&rows, dim, products.iter().copied());
    (agreement(&rows), agreement(&neutral))
}

/// Writes all bundle files into a staging directory and swaps it in for
/// `out`, so a failure never leaves a partial bundle.
#[allow(clippy::too_many_arguments)]
pub fn write_bundle(
    out: &Path,
    config: &HybridConfig,
    config_json: &[u8],
    tokenizer_json: &[u8],
    gguf: &[u8],
    catalog: &Catalog,
    predictions: Vec<Prediction>,
    metrics: serde_json::Value,
    skin_answers: SkinAnswers,
    ranking: Ranking,
) -> Result<Manifest> {
    let dim = config.embedding_dim;
    let vectors: Vec<f32> = predictions
        .iter()
        .flat_map(|p| p.embedding.iter().copied())
        .collect();
    let map = crate::projection::project(&vectors, dim)?;
    let embeddings = Int8Embeddings::quantize(&vectors, dim);
    let exported = ExportedCatalog {
        products: catalog
            .products
            .iter()
            .zip(predictions)
            .zip(map)
            .map(|((product, p), map)| ProductEntry {
                product: product.clone(),
                predicted: p.probabilities,
                map,
            })
            .collect(),
        skin_answers,
        ranking,
    };
    let contents: Vec<(&str, Vec<u8>)> = vec![
        (files::CONFIG, config_json.to_vec()),
        (files::TOKENIZER, pack(tokenizer_json)),
        (files::WEIGHTS, gguf.to_vec()),
        (files::EMBEDDINGS, embeddings_to_bytes(&embeddings)),
        (files::CATALOG, catalog_to_bytes(&exported)?),
    ];
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        embedding_dim: config.embedding_dim,
        num_products: catalog.len(),
        labels: config.labels.clone(),
        metrics,
        files: contents
            .iter()
            .map(|(name, bytes)| FileEntry::describe(name, bytes))
            .collect(),
    };
    replace_dir_atomic(out, |staging| {
        for (name, bytes) in &contents {
            std::fs::write(staging.join(name), bytes).with_context(|| format!("writing {name}"))?;
        }
        std::fs::write(
            staging.join(files::MANIFEST),
            serde_json::to_vec_pretty(&manifest)?,
        )?;
        Ok(())
    })?;
    Ok(manifest)
}

/// Reads and verifies a bundle directory.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let manifest = Manifest::parse(&read(&dir.join(files::MANIFEST))?)
        .with_context(|| format!("bundle {}", dir.display()))?;
    let mut contents = HashMap::new();
    for name in files::ALL {
        let path = dir.join(name);
        if path.exists() {
            contents.insert(name.to_owned(), read(&path)?);
        }
    }
    Bundle::assemble(manifest, contents).with_context(|| format!("bundle {}", dir.display()))
}

/// Removes wall-clock figures (`seconds`, `training_seconds`,
/// `sequences_per_second`) from a metrics tree.
fn drop_timings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|key, _| {
                !matches!(
                    key.as_str(),
                    "seconds" | "training_seconds" | "sequences_per_second"
                )
            });
            map.values_mut().for_each(drop_timings);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_timings),
        _ => {}
    }
}
