//! Helpers shared by the trainer's integration tests.

use milih_model::tiny::tiny_base;
use std::path::Path;

/// Writes a tiny BERT checkpoint (config.json, tokenizer.json,
/// model.safetensors) whose vocabulary covers `texts` into `dir`.
pub fn write_tiny_base(dir: &Path, texts: &[String]) {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let base = tiny_base(&refs, 3).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&base.config).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("tokenizer.json"), &base.tokenizer_json).unwrap();
    candle_core::safetensors::save(&base.weights, dir.join("model.safetensors")).unwrap();
}
