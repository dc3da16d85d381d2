//! The benchmark hooks: timed queries and ranking over synthetic rows.

use super::{now, Loaded};
use crate::protocol::Response;
use milih_rank::{top_k, Int8Embeddings};
use wasm_bindgen::JsCast;

/// Everything a search does for `text`, with both heads: tokenize, encode,
/// classify and embed, read the words and rank the whole catalog by the
/// bundle's fusion of both. With `parts`, each step is timed on its own
/// as well (tokenizing a second time to time it apart), with the token
/// count; without, only the whole is timed and nothing else runs.
#[inline(never)]
pub(super) fn bench_query(
    id: u64,
    text: &str,
    parts: bool,
    loaded: &Loaded,
) -> Result<Response, String> {
    let engine = &loaded.engine;
    let error = |e: milih_model::ModelError| e.to_string();
    let started = now();
    let (tokens, tokenized) = if parts {
        let windows = engine
            .encoder()
            .windows(text, engine.config().max_windows)
            .map_err(error)?;
        (windows.iter().map(Vec::len).sum(), now())
    } else {
        (0, started)
    };
    let pooled = engine
        .pooled_with_progress(&[text], 1, |_| {})
        .map_err(error)?;
    let encoded = now();
    let prediction = engine
        .heads_on(&[text], pooled)
        .map_err(error)?
        .pop()
        .ok_or("no prediction")?;
    let predicted = now();
    let ranked = loaded.words.rank(
        &loaded.bundle.catalog.ranking,
        text,
        &[],
        &prediction.embedding,
        &loaded.bundle.embeddings,
        10,
        |_| true,
        |word| engine.encoder().is_whole_word(word),
    );
    std::hint::black_box(ranked);
    let ranked = now();
    let whole = ranked - tokenized;
    let millis = if parts {
        // Whole (as without parts), tokenize, encode (its own tokenizing
        // taken out), heads, rank.
        let tokenize = tokenized - started;
        vec![
            whole,
            tokenize,
            encoded - tokenized - tokenize,
            predicted - encoded,
            ranked - predicted,
        ]
    } else {
        vec![whole]
    };
    Ok(Response::Bench {
        id,
        millis,
        tokens,
        wasm_memory_bytes: wasm_memory_bytes(),
    })
}

/// Both heads on `texts` together, `batch_size` windows per encoder pass:
/// what indexing a catalog in the page costs per product.
#[inline(never)]
pub(super) fn bench_batch(
    id: u64,
    texts: &[String],
    batch_size: usize,
    loaded: &Loaded,
) -> Result<Response, String> {
    const MAX_TEXTS: usize = 4_096;
    if texts.is_empty() || texts.len() > MAX_TEXTS {
        return Err(format!("a benchmark batch holds 1 to {MAX_TEXTS} texts"));
    }
    let encoder = loaded.engine.encoder();
    let max_windows = loaded.engine.config().max_windows;
    let mut tokens = 0;
    for text in texts {
        for window in encoder
            .windows(text, max_windows)
            .map_err(|e| e.to_string())?
        {
            tokens += window.len();
        }
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let started = now();
    let predictions = loaded
        .engine
        .predict(&texts, batch_size.clamp(1, 256))
        .map_err(|e| e.to_string())?;
    std::hint::black_box(predictions);
    Ok(Response::Bench {
        id,
        millis: vec![now() - started],
        tokens,
        wasm_memory_bytes: wasm_memory_bytes(),
    })
}

/// Ranks `products` synthetic unit vectors (a fixed pseudo-random sequence,
/// stored as int8 like the catalog's) against one of them, `repeats` times.
#[inline(never)]
pub(super) fn bench_rank(
    id: u64,
    products: usize,
    repeats: usize,
    loaded: &Loaded,
) -> Result<Response, String> {
    const MAX_PRODUCTS: usize = 200_000;
    if products == 0 || products > MAX_PRODUCTS {
        return Err(format!(
            "benchmark size must be 1 to {MAX_PRODUCTS} products"
        ));
    }
    let dim = loaded.bundle.embeddings.dim();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut data: Vec<f32> = (0..products * dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    for row in data.chunks_mut(dim) {
        let norm = row
            .iter()
            .map(|v| v * v)
            .sum::<f32>()
            .sqrt()
            .max(f32::MIN_POSITIVE);
        row.iter_mut().for_each(|v| *v /= norm);
    }
    let query = data[..dim].to_vec();
    let embeddings = Int8Embeddings::quantize(&data, dim);
    drop(data);
    let millis = (0..repeats.clamp(1, 1_000))
        .map(|_| {
            let started = now();
            std::hint::black_box(top_k(&query, &embeddings, 10, |_| true));
            now() - started
        })
        .collect();
    Ok(Response::Bench {
        id,
        millis,
        tokens: 0,
        wasm_memory_bytes: wasm_memory_bytes(),
    })
}

pub(super) fn wasm_memory_bytes() -> u64 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as u64
}
