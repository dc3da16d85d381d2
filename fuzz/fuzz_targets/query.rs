//! Any text as a query, through the whole query path on a tiny model:
//! tokenization into windows, the encoder, both heads, ranking. A query
//! either gives unit-length embeddings, probabilities in [0, 1] and a
//! ranking, or an error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use milih_model::tiny::tiny_bundle_files;
use milih_model::Engine;
use std::sync::OnceLock;

const CORPUS: [&str; 3] = [
    "Moisturizer | LA MER | Crème de la Mer | ingredients: Algae Extract, Mineral Oil",
    "Cleanser | CLINIQUE | Liquid Facial Soap | ingredients: Water, Sodium Laureth Sulfate",
    "serum for acne and oily skin, fragrance free, 敏感肌 🌿",
];

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let files = tiny_bundle_files(&CORPUS, 7).expect("tiny model");
        Engine::from_bundle(&files.config_json, &files.tokenizer_json, &files.gguf)
            .expect("tiny engine")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let engine = engine();
    let Ok(predictions) = engine.predict(&[text], 8) else {
        return;
    };
    let p = &predictions[0];
    assert!(p.probabilities.iter().all(|v| (0.0..=1.0).contains(v)));
    let norm: f32 = p.embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!(norm == 0.0 || (norm - 1.0).abs() < 1e-3, "norm {norm}");
    // Rank three copies of the corpus by the query.
    let rows = engine.predict(&CORPUS, 8).expect("corpus");
    let dim = p.embedding.len();
    let matrix: Vec<f32> = rows.iter().flat_map(|r| r.embedding.clone()).collect();
    let matrix = milih_rank::Int8Embeddings::quantize(&matrix, dim);
    let hits = milih_rank::top_k(&p.embedding, &matrix, 2, |_| true);
    assert!(hits.len() <= 2);
});
