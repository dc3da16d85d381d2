//! The benchmark hooks: timed queries and ranking over synthetic rows.

use super::{now, Loaded};
use crate::protocol::Response;
use milih_rank::{top_k, Int8Embeddings};
use wasm_bindgen::JsCast;

/// Everything a search does for `text`, with both heads: tokenize, encode,
/// classify and embed, read the words and rank the whole catalog by the
/// bundle's fusion of both.
#[inline(never)]
pub(super) fn bench_query(id: u64, text: &str, loaded: &Loaded) -> Result<Response, String> {
    // Counted before the clock starts: the query below tokenizes on its own.
    let tokens = loaded
        .engine
        .encoder()
        .windows(text, 1)
        .map_err(|e| e.to_string())?
        .first()
        .map_or(0, Vec::len);
    let started = now();
    let prediction = loaded
        .engine
        .predict(&[text], 1)
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or("no prediction")?;
    let ranked = loaded.words.rank(
        &loaded.bundle.catalog.ranking,
        text,
        &[],
        &prediction.embedding,
        &loaded.bundle.embeddings,
        10,
        |_| true,
        |word| loaded.engine.encoder().is_whole_word(word),
    );
    std::hint::black_box(ranked);
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
