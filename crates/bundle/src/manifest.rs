//! The bundle manifest: every file's size and SHA-256 (and, for large
//! files, every 1 MiB block's), and the checks against it.

use crate::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Size of the blocks of [`FileEntry::block_sha256`].
pub const BLOCK_BYTES: u64 = 1 << 20;

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
    /// SHA-256 (hex) of each [`BLOCK_BYTES`] block of a file larger than
    /// one block, in order (the last block may be shorter); empty for
    /// smaller files. A reader that streams the file checks it block by
    /// block with a hash that only takes whole inputs (the browser's
    /// native SubtleCrypto, off its own thread) instead of hashing every
    /// byte itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_sha256: Vec<String>,
}

impl FileEntry {
    pub fn describe(name: &str, content: &[u8]) -> Self {
        let block_sha256 = if content.len() as u64 > BLOCK_BYTES {
            block_digests(content)
        } else {
            Vec::new()
        };
        Self {
            name: name.to_owned(),
            bytes: content.len() as u64,
            sha256: sha256_hex(content),
            block_sha256,
        }
    }

    /// Whether the file has the listed size.
    fn check_size(&self, bytes: u64) -> Result<(), BundleError> {
        if self.bytes != bytes {
            return Err(BundleError::Size {
                name: self.name.clone(),
                expected: self.bytes,
                actual: bytes,
            });
        }
        Ok(())
    }

    /// How many blocks a file of `bytes` has.
    fn block_count(bytes: u64) -> u64 {
        bytes.div_ceil(BLOCK_BYTES)
    }
}

/// SHA-256 (hex) of each [`BLOCK_BYTES`] block of `content`.
pub fn block_digests(content: &[u8]) -> Vec<String> {
    content
        .chunks(BLOCK_BYTES as usize)
        .map(sha256_hex)
        .collect()
}

/// The digest a reader computed over a file it did not keep whole.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamDigest {
    /// SHA-256 (hex) of the whole file.
    Whole(String),
    /// SHA-256 (hex) of each [`BLOCK_BYTES`] block, in order.
    Blocks(Vec<String>),
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Dimension of the product and query embeddings.
    pub embedding_dim: usize,
    pub num_products: usize,
    /// Skin-type label names, in the order of the model's outputs.
    pub labels: Vec<String>,
    /// Training and export metrics, as the trainer wrote them.
    #[serde(default)]
    pub metrics: serde_json::Value,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    pub fn parse(json: &[u8]) -> Result<Self, BundleError> {
        // Read the version first so that a future layout gets a clear message.
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let version: Version =
            serde_json::from_slice(json).map_err(|e| BundleError::Manifest(e.to_string()))?;
        if version.format_version != FORMAT_VERSION {
            return Err(BundleError::Version {
                found: version.format_version,
            });
        }
        let manifest: Self =
            serde_json::from_slice(json).map_err(|e| BundleError::Manifest(e.to_string()))?;
        for name in files::ALL {
            manifest.entry(name)?;
        }
        if let Some(entry) = manifest.files.iter().find(|f| {
            !f.block_sha256.is_empty()
                && f.block_sha256.len() as u64 != FileEntry::block_count(f.bytes)
        }) {
            return Err(BundleError::Manifest(format!(
                "`{}` lists {} block digests for {} bytes, which make {} blocks",
                entry.name,
                entry.block_sha256.len(),
                entry.bytes,
                FileEntry::block_count(entry.bytes)
            )));
        }
        Ok(manifest)
    }

    pub fn entry(&self, name: &str) -> Result<&FileEntry, BundleError> {
        self.files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| BundleError::NotListed(name.to_owned()))
    }

    /// Checks a file's size and SHA-256 (and block digests, where listed)
    /// against the manifest.
    pub fn verify(&self, name: &str, content: &[u8]) -> Result<(), BundleError> {
        self.verify_with(name, content, None)
    }

    /// [`Manifest::verify`] with the file's SHA-256 (hex) already computed
    /// by the caller (the browser hashes with its native SubtleCrypto, many
    /// times faster than hashing in wasm); `None` computes it here.
    pub fn verify_with(
        &self,
        name: &str,
        content: &[u8],
        sha256: Option<&str>,
    ) -> Result<(), BundleError> {
        let bytes = content.len() as u64;
        match sha256 {
            Some(hex) => self.verify_digest(name, bytes, hex)?,
            None => self.verify_digest(name, bytes, &sha256_hex(content))?,
        }
        // A file checked whole must also pass a streaming reader's check.
        if !self.entry(name)?.block_sha256.is_empty() {
            self.verify_blocks(name, bytes, &block_digests(content))?;
        }
        Ok(())
    }

    /// Checks a file a reader did not keep whole: its size, and whichever
    /// digest the reader computed.
    pub fn verify_streamed(
        &self,
        name: &str,
        bytes: u64,
        digest: &StreamDigest,
    ) -> Result<(), BundleError> {
        match digest {
            StreamDigest::Whole(hex) => self.verify_digest(name, bytes, hex),
            StreamDigest::Blocks(blocks) => self.verify_blocks(name, bytes, blocks),
        }
    }

    /// Checks a file's size and the SHA-256 (hex) of each of its blocks.
    fn verify_blocks(&self, name: &str, bytes: u64, blocks: &[String]) -> Result<(), BundleError> {
        let entry = self.entry(name)?;
        entry.check_size(bytes)?;
        let agree = entry.block_sha256.len() == blocks.len()
            && entry
                .block_sha256
                .iter()
                .zip(blocks)
                .all(|(listed, found)| listed.eq_ignore_ascii_case(found));
        if !agree {
            return Err(BundleError::Checksum {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Checks a file's size and SHA-256 (hex) against the manifest, for a
    /// file the caller holds outside these bytes.
    pub fn verify_digest(&self, name: &str, bytes: u64, sha256: &str) -> Result<(), BundleError> {
        let entry = self.entry(name)?;
        entry.check_size(bytes)?;
        if !entry.sha256.eq_ignore_ascii_case(sha256) {
            return Err(BundleError::Checksum {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Total bytes of the listed files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

pub fn sha256_hex(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}
