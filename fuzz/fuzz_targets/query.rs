//! Any text as a query, through the whole query path on a tiny model:
//! tokenization into windows, the encoder, both heads, ranking with the
//! words read by name. A query
//! either gives unit-length embeddings, probabilities in [0, 1] and a
//! ranking, or an error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use milih_catalog::Product;
use milih_model::tiny::tiny_bundle_files;
use milih_model::Engine;
use milih_rank::hybrid::SearchWords;
use milih_rank::lexical::Ranking;
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
    // The search's reading of the words (typo correction, actives, what is
    // wanted absent) and the fused ranking.
    let ranked = words().rank(
        &Ranking::default(),
        text,
        &[],
        &p.embedding,
        &matrix,
        2,
        |_| true,
        |w| w.len() < 8,
    );
    assert!(ranked.hits.len() <= 2);
});

fn words() -> &'static SearchWords {
    static WORDS: OnceLock<SearchWords> = OnceLock::new();
    WORDS.get_or_init(|| {
        let products: Vec<Product> = CORPUS
            .iter()
            .enumerate()
            .map(|(id, line)| {
                let fields: Vec<&str> = line.split(" | ").collect();
                Product {
                    id,
                    product_type: fields[0].into(),
                    brand: fields.get(1).copied().unwrap_or_default().into(),
                    name: fields.get(2).copied().unwrap_or_default().into(),
                    price: 10.0,
                    rating: 4.0,
                    ingredients: fields.get(3).map(|i| i.to_string()),
                    skin_labels: None,
                }
            })
            .collect();
        SearchWords::new(&products.iter().collect::<Vec<_>>())
    })
}
