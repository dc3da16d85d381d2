//! SHA-256 of files as they stream in: the browser's SubtleCrypto per
//! block where it exists, wasm otherwise.

use super::{describe, scope};
use milih_bundle::{FileEntry, StreamDigest};
use sha2::Digest;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// A file's size and digest, or why the digest could not be computed.
pub(super) type Measured = Result<(u64, StreamDigest), String>;

/// Hashes and measures a bundle file as it streams in, for
/// [`Manifest::verify_streamed`].
pub(super) struct StreamHasher {
    pub(super) hashing: Hashing,
    pub(super) len: u64,
}

pub(super) enum Hashing {
    /// Block by block ([`milih_bundle::BLOCK_BYTES`]) by the browser's
    /// SubtleCrypto, which copies each block when called and hashes it in
    /// native code: the block being filled, and each block's digest under
    /// way (or why it could not start).
    Blocks {
        subtle: web_sys::SubtleCrypto,
        block: Vec<u8>,
        digests: Vec<Result<js_sys::Promise, String>>,
    },
    /// Every byte in wasm, where the manifest lists no block digests or
    /// SubtleCrypto is unavailable (pages not served over HTTPS or from
    /// localhost).
    Whole(sha2::Sha256),
}

impl StreamHasher {
    pub(super) fn for_file(entry: &FileEntry) -> Self {
        let hashing = match subtle_crypto() {
            Some(subtle) if !entry.block_sha256.is_empty() => Hashing::Blocks {
                subtle,
                block: Vec::with_capacity(milih_bundle::BLOCK_BYTES as usize),
                digests: Vec::new(),
            },
            _ => Hashing::Whole(sha2::Sha256::new()),
        };
        Self { hashing, len: 0 }
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        match &mut self.hashing {
            Hashing::Whole(hasher) => hasher.update(bytes),
            Hashing::Blocks {
                subtle,
                block,
                digests,
            } => {
                let block_bytes = milih_bundle::BLOCK_BYTES as usize;
                let mut rest = bytes;
                while !rest.is_empty() {
                    let take = rest.len().min(block_bytes - block.len());
                    block.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if block.len() == block_bytes {
                        digests.push(start_digest(subtle, block));
                        block.clear();
                    }
                }
            }
        }
    }

    pub(super) async fn finish(self) -> Measured {
        let digest = match self.hashing {
            Hashing::Whole(hasher) => StreamDigest::Whole(hex::encode(hasher.finalize())),
            Hashing::Blocks {
                subtle,
                block,
                mut digests,
            } => {
                if !block.is_empty() {
                    digests.push(start_digest(&subtle, &block));
                }
                let mut blocks = Vec::with_capacity(digests.len());
                for digest in digests {
                    blocks.push(finish_digest(digest?).await?);
                }
                StreamDigest::Blocks(blocks)
            }
        };
        Ok((self.len, digest))
    }
}

/// Starts SubtleCrypto's SHA-256 of `bytes`, which it copies at once.
pub(super) fn start_digest(
    subtle: &web_sys::SubtleCrypto,
    bytes: &[u8],
) -> Result<js_sys::Promise, String> {
    subtle
        .digest_with_str_and_u8_array("SHA-256", bytes)
        .map_err(|e| format!("a file could not be checked: {}", describe(&e)))
}

/// The hex digest a [`start_digest`] promise resolves to.
pub(super) async fn finish_digest(promise: js_sys::Promise) -> Result<String, String> {
    let digest = JsFuture::from(promise)
        .await
        .map_err(|e| format!("a file could not be checked: {}", describe(&e)))?;
    Ok(hex::encode(js_sys::Uint8Array::new(&digest).to_vec()))
}

/// The browser's SubtleCrypto, where the page's context has it.
pub(super) fn subtle_crypto() -> Option<web_sys::SubtleCrypto> {
    let crypto = scope().crypto().ok()?;
    let subtle = js_sys::Reflect::get(&crypto, &"subtle".into()).ok()?;
    (!subtle.is_undefined()).then(|| subtle.unchecked_into())
}

/// SHA-256 (hex) of a file that arrived whole, by the browser's SubtleCrypto
/// (faster than hashing in wasm code that has not been optimised yet);
/// `None` where it is unavailable (pages not served over HTTPS or from
/// localhost), and the bundle crate hashes the file itself. `digest`
/// copies the bytes when called, so the view into wasm memory that
/// wasm-bindgen passes is not held across the await.
pub(super) async fn native_sha256(bytes: &[u8]) -> Option<String> {
    let promise = start_digest(&subtle_crypto()?, bytes).ok()?;
    finish_digest(promise).await.ok()
}
