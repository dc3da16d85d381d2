//! Frozen-encoder features, computed once and cached on disk.
//!
//! With the encoder frozen, the pooled output of a text never changes, so
//! every fold, seed and head experiment reuses it. The cache key covers the
//! base weights, tokenizer, window settings and the texts themselves.

use crate::fsutil::{read, write_atomic};
use anyhow::{Context, Result};
use milih_model::Engine;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Row-major `(texts, hidden)` pooled features of `texts` under `engine`'s
/// encoder, read from `cache_dir` when an earlier call computed them.
/// `identity` names the encoder (e.g. the SHA-256 of its weights).
pub fn pooled_cached(
    engine: &Engine,
    identity: &str,
    texts: &[String],
    cache_dir: &Path,
    what: &str,
) -> Result<Vec<f32>> {
    let hidden = engine.config().bert.hidden_size;
    let path = cache_path(engine, identity, texts, cache_dir);
    if let Ok(bytes) = std::fs::read(&path) {
        if bytes.len() == texts.len() * hidden * 4 {
            return Ok(bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect());
        }
        eprintln!("ignoring {}: wrong size", path.display());
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let bar = crate::progress::progress_bar(texts.len() as u64, what);
    let pooled = engine.pooled_with_progress(&refs, 16, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating {}", cache_dir.display()))?;
    let bytes: Vec<u8> = pooled.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_atomic(&path, &bytes)?;
    Ok(pooled)
}

fn cache_path(engine: &Engine, identity: &str, texts: &[String], cache_dir: &Path) -> PathBuf {
    let config = engine.config();
    let mut hash = Sha256::new();
    hash.update(identity.as_bytes());
    hash.update(format!("|{}|{}|", config.max_length, config.max_windows).as_bytes());
    for text in texts {
        hash.update(text.as_bytes());
        hash.update([0]);
    }
    cache_dir.join(format!(
        "pooled-{}.f32",
        hex::encode(&hash.finalize()[..12])
    ))
}

/// SHA-256 of a file, as hex (identifies a base checkpoint's weights).
pub fn file_sha256(path: &Path) -> Result<String> {
    Ok(hex::encode(Sha256::digest(read(path)?)))
}
