//! The hybrid on a tiny BERT built in code: both execution modes agree,
//! the GGUF format round-trips, and bad inputs give errors, not panics.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use milih_model::quantized::{GgufStream, Purpose};
use milih_model::tiny::{max_abs_diff, tiny_base};
use milih_model::{quantized, Engine, Hybrid, HybridConfig, Mode, TextEncoder};
use std::collections::HashMap;

const CORPUS: [&str; 3] = [
    "Moisturizer | LA MER | Crème de la Mer | ingredients: Algae Extract, Mineral Oil, Glycerin",
    "Cleanser | CLINIQUE | Liquid Facial Soap | ingredients: Water, Sodium Laureth Sulfate",
    "serum for acne and oily skin",
];

fn tiny() -> (HybridConfig, String, HashMap<String, Tensor>) {
    tiny_with(1, 0)
}

fn tiny_with(
    max_windows: usize,
    lexical_features: usize,
) -> (HybridConfig, String, HashMap<String, Tensor>) {
    let base = tiny_base(&CORPUS, 5).unwrap();
    let config = HybridConfig {
        bert: base.config.clone(),
        embedding_dim: 8,
        labels: vec!["a".into(), "b".into(), "c".into()],
        max_length: 32,
        max_windows,
        lexical_features,
        ingredient_functions: lexical_features > 0,
    };
    let weights = milih_model::tiny::with_seeded_heads(&config, base.weights, 9).unwrap();
    (config, base.tokenizer_json, weights)
}

#[test]
fn training_and_inference_modes_compute_the_same_function() {
    let (config, tokenizer, weights) = tiny();
    let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    let model = Hybrid::load(&config, vb).unwrap();
    let encoder = TextEncoder::from_json(tokenizer.as_bytes(), 32).unwrap();
    let batch = encoder.encode(&CORPUS, &Device::Cpu).unwrap();
    let train = model
        .forward(
            &batch.input_ids,
            &batch.attention_mask,
            None,
            Mode::Train,
            0,
        )
        .unwrap();
    let infer = model
        .forward(
            &batch.input_ids,
            &batch.attention_mask,
            None,
            Mode::Infer,
            0,
        )
        .unwrap();
    assert!(max_abs_diff(&train.logits, &infer.logits) < 1e-4);
    assert!(max_abs_diff(&train.embeddings, &infer.embeddings) < 1e-4);
}

#[test]
fn long_texts_are_pooled_over_all_windows_and_read_by_the_lexical_head() {
    let long = format!("{} {}", CORPUS[0], "Squalane, Ceramide NP, ".repeat(20));
    let texts = [CORPUS[2], long.as_str()];
    let predict = |windows: usize, lexical: usize| {
        let (config, tokenizer, weights) = tiny_with(windows, lexical);
        let engine = Engine::new(
            config.clone(),
            TextEncoder::from_json(tokenizer.as_bytes(), 32).unwrap(),
            weights.clone(),
        )
        .unwrap();
        // The same model through the bundle's GGUF keeps the idf vector.
        let gguf = quantized::to_gguf(&weights).unwrap();
        let config_json = serde_json::to_vec(&config).unwrap();
        let reloaded = Engine::from_bundle(&config_json, tokenizer.as_bytes(), &gguf).unwrap();
        let a = engine.predict(&texts, 4).unwrap();
        let b = reloaded.predict(&texts, 4).unwrap();
        for (x, y) in a.iter().zip(&b) {
            let cosine: f32 = x
                .embedding
                .iter()
                .zip(&y.embedding)
                .map(|(p, q)| p * q)
                .sum();
            assert!(cosine > 0.99, "GGUF round trip cosine {cosine}");
        }
        a
    };
    let one = predict(1, 0);
    let three = predict(3, 0);
    assert_eq!(one[0], three[0], "a short text has one window either way");
    assert_ne!(one[1].embedding, three[1].embedding, "later windows count");
    // Single-query embedding equals the batched product embedding.
    let (config, tokenizer, weights) = tiny_with(3, 0);
    let engine = Engine::new(
        config,
        TextEncoder::from_json(tokenizer.as_bytes(), 32).unwrap(),
        weights,
    )
    .unwrap();
    let single = engine.embed_query(&long).unwrap();
    let cosine: f32 = single
        .iter()
        .zip(&three[1].embedding)
        .map(|(p, q)| p * q)
        .sum();
    assert!(cosine > 0.9999);
    let lexical = predict(3, 64);
    assert_eq!(
        lexical[1].embedding, three[1].embedding,
        "the embedding head reads no lexical features"
    );
    assert_ne!(lexical[1].probabilities, three[1].probabilities);
}

#[test]
fn padding_does_not_change_a_text_s_outputs() {
    let (config, tokenizer, weights) = tiny();
    let encoder = TextEncoder::from_json(tokenizer.as_bytes(), 32).unwrap();
    let engine = Engine::new(config, encoder, weights).unwrap();
    let alone = engine.predict(&[CORPUS[2]], 1).unwrap();
    // In a batch with longer texts the short one is padded.
    let batched = engine.predict(&CORPUS, 3).unwrap();
    for (a, b) in alone[0].embedding.iter().zip(&batched[2].embedding) {
        assert!((a - b).abs() < 1e-4);
    }
    assert_eq!(engine.embed_query(CORPUS[2]).unwrap().len(), 8);
}

#[test]
fn gguf_round_trip_stays_close_to_f32() {
    let (config, tokenizer, weights) = tiny();
    let gguf = quantized::to_gguf(&weights).unwrap();
    assert_eq!(
        gguf,
        quantized::to_gguf(&weights).unwrap(),
        "deterministic bytes"
    );
    let config_json = serde_json::to_vec(&config).unwrap();
    let quantized = Engine::from_bundle(&config_json, tokenizer.as_bytes(), &gguf).unwrap();
    let exact = Engine::new(
        config,
        TextEncoder::from_json(tokenizer.as_bytes(), 32).unwrap(),
        weights,
    )
    .unwrap();
    let q = quantized.predict(&CORPUS, 4).unwrap();
    let f = exact.predict(&CORPUS, 4).unwrap();
    for (a, b) in q.iter().zip(&f) {
        let cosine: f32 = a
            .embedding
            .iter()
            .zip(&b.embedding)
            .map(|(x, y)| x * y)
            .sum();
        assert!(cosine > 0.99, "cosine {cosine}");
    }
}

#[test]
fn weights_streamed_in_pieces_give_the_same_model() {
    let (config, tokenizer, weights) = tiny();
    let config_json = serde_json::to_vec(&config).unwrap();
    let gguf = quantized::to_gguf(&weights).unwrap();
    let whole = Engine::from_bundle(&config_json, tokenizer.as_bytes(), &gguf).unwrap();
    let expected = whole.predict(&CORPUS, 4).unwrap();
    let streamed = |piece: usize| {
        let mut stream = GgufStream::new(gguf.len() as u64, Purpose::Inference, &Device::Cpu);
        for bytes in gguf.chunks(piece) {
            stream.push(bytes)?;
        }
        stream.finish()
    };
    // Pieces smaller than a header field, than a block, and larger than
    // most tensors.
    for piece in [1, 7, 4096, 1 << 20] {
        let weights = streamed(piece).unwrap();
        let engine = Engine::from_weights(&config_json, tokenizer.as_bytes(), weights).unwrap();
        assert_eq!(
            engine.predict(&CORPUS, 4).unwrap(),
            expected,
            "pieces of {piece}"
        );
    }
    // A file that ends early, or goes on past its stated length, is an error.
    let mut short = GgufStream::new(gguf.len() as u64, Purpose::Inference, &Device::Cpu);
    short.push(&gguf[..gguf.len() - 100]).unwrap();
    let err = short.finish().err().unwrap();
    assert!(err.to_string().contains("ended after"), "{err}");
    let mut long = GgufStream::new(gguf.len() as u64 - 1, Purpose::Inference, &Device::Cpu);
    let err = long.push(&gguf).err().unwrap();
    assert!(err.to_string().contains("more than"), "{err}");
    // A damaged header is named once all bytes are in.
    let mut damaged = gguf.clone();
    damaged[..4].copy_from_slice(b"NOPE");
    let mut stream = GgufStream::new(damaged.len() as u64, Purpose::Inference, &Device::Cpu);
    let err = damaged
        .chunks(4096)
        .try_for_each(|bytes| stream.push(bytes))
        .err()
        .unwrap();
    assert!(err.to_string().contains("model weights (GGUF)"), "{err}");
}

#[test]
fn broken_inputs_are_errors() {
    let (config, tokenizer, weights) = tiny();
    let config_json = serde_json::to_vec(&config).unwrap();
    let gguf = quantized::to_gguf(&weights).unwrap();
    let truncated =
        Engine::from_bundle(&config_json, tokenizer.as_bytes(), &gguf[..gguf.len() / 2]);
    assert!(truncated.is_err());
    assert!(Engine::from_bundle(&config_json, tokenizer.as_bytes(), b"not a gguf file").is_err());
    assert!(Engine::from_bundle(b"{", tokenizer.as_bytes(), &gguf).is_err());
    assert!(Engine::from_bundle(&config_json, b"{}", &gguf).is_err());
    // Found by fuzzing: a stray byte where the decoder's value starts made
    // the tokenizers crate panic instead of returning an error.
    let at = tokenizer.find("\"decoder\":").unwrap() + "\"decoder\":".len();
    let mut broken = tokenizer.as_bytes().to_vec();
    broken.insert(at, 0xc4);
    let err = Engine::from_bundle(&config_json, &broken, &gguf)
        .err()
        .unwrap();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    // A tokenizer with more tokens than the model's vocabulary is refused.
    let mut small = config.clone();
    small.bert.vocab_size = 10;
    let err = Engine::from_bundle(
        &serde_json::to_vec(&small).unwrap(),
        tokenizer.as_bytes(),
        &gguf,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn fixed_padding_in_a_tokenizer_file_is_turned_off() {
    let (_, tokenizer, _) = tiny();
    let mut json: serde_json::Value = serde_json::from_str(&tokenizer).unwrap();
    json["padding"] = serde_json::json!({
        "strategy": { "Fixed": 24 }, "direction": "Right", "pad_to_multiple_of": null,
        "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"
    });
    let encoder = TextEncoder::from_json(json.to_string().as_bytes(), 16).unwrap();
    assert_eq!(encoder.ids("serum").unwrap().len(), 3, "[CLS] serum [SEP]");
    let long = "acne ".repeat(100);
    assert_eq!(
        encoder.ids(&long).unwrap().len(),
        16,
        "truncated to max length"
    );
}

#[test]
fn the_tiny_bundle_loads_and_answers_any_text() {
    let files = milih_model::tiny::tiny_bundle_files(&CORPUS, 4).unwrap();
    let engine =
        Engine::from_bundle(&files.config_json, &files.tokenizer_json, &files.gguf).unwrap();
    let long = "dry skin ".repeat(5_000);
    let texts = ["", "🧴 保湿 крем", "a\u{0}b\u{1b}[31m", long.as_str()];
    for p in engine.predict(&texts, 4).unwrap() {
        let norm: f32 = p.embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
        assert!(p.probabilities.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn observed_layers_report_the_gram_of_their_inputs() {
    let (config, tokenizer, weights) = tiny();
    let encoder = TextEncoder::from_json(tokenizer.as_bytes(), 32).unwrap();
    let mut engine = Engine::new(config.clone(), encoder, weights).unwrap();
    let statistics = engine.observe_inputs();
    // One text at a time: no padding tokens among the inputs.
    let mut tokens = 0;
    for text in CORPUS {
        engine.predict(&[text], 1).unwrap();
        tokens += engine.encoder().windows(text, config.max_windows).unwrap()[0].len();
    }
    let grams = statistics.grams();
    let layers = config.bert.num_hidden_layers;
    assert_eq!(grams.len(), 6 * layers, "{:?}", grams.keys());
    for (name, gram) in &grams {
        let width = if name.ends_with("output.dense.weight") && !name.contains("attention") {
            config.bert.intermediate_size
        } else {
            config.bert.hidden_size
        };
        assert_eq!(gram.dim, width, "{name}");
        assert_eq!(gram.tokens, tokens, "{name}");
        for i in 0..width {
            assert!(
                gram.sum[i * width + i] >= 0.0,
                "{name}: a diagonal of xᵀx is a sum of squares"
            );
            for j in 0..i {
                let (a, b) = (gram.sum[i * width + j], gram.sum[j * width + i]);
                assert!(
                    (a - b).abs() <= 1e-3 * (1.0 + a.abs()),
                    "{name}: not symmetric at ({i},{j})"
                );
            }
        }
    }
    // The query, key and value projections read the same inputs.
    let query = &grams["encoder.layer.0.attention.self.query.weight"];
    assert_eq!(query, &grams["encoder.layer.0.attention.self.value.weight"]);
}
