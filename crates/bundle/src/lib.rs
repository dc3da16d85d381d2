//! The browser bundle: the files the trainer exports and the web app loads,
//! described by `manifest.json` with the size and SHA-256 of each file.
//!
//! Pure code over bytes; the trainer writes the files, the browser fetches
//! them, and both go through [`Bundle::assemble`], which verifies everything
//! before any of it is used.
//!
//! Nearly 300 of its lines are tests: every way a bundle can be refused.

mod catalog;
mod embeddings;
mod manifest;

pub use catalog::{
    catalog_from_bytes, catalog_to_bytes, pack, unpack, ExportedCatalog, ProductEntry, MAX_UNPACKED,
};
pub use embeddings::{embeddings_from_bytes, embeddings_to_bytes};
pub use manifest::{block_digests, sha256_hex, FileEntry, Manifest, StreamDigest, BLOCK_BYTES};

pub use milih_rank::Int8Embeddings;
use std::collections::HashMap;

/// Version of the bundle layout; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 4;

/// File names inside a bundle directory.
pub mod files {
    pub const MANIFEST: &str = "manifest.json";
    pub const WEIGHTS: &str = "model.gguf";
    pub const CONFIG: &str = "config.json";
    /// The tokenizer's JSON, gzipped ([`crate::pack`]).
    pub const TOKENIZER: &str = "tokenizer.jsonz";
    pub const EMBEDDINGS: &str = "embeddings.i8";
    /// The catalog's JSON, gzipped ([`crate::catalog_to_bytes`]). Not
    /// `.gz` (nor the tokenizer's): some servers send `.gz` files with
    /// `Content-Encoding: gzip`, and the browser would then hand over
    /// inflated bytes, which do not match the manifest.
    pub const CATALOG: &str = "catalog.jsonz";
    /// Every file the manifest lists, in load order.
    pub const ALL: [&str; 5] = [CONFIG, TOKENIZER, WEIGHTS, EMBEDDINGS, CATALOG];
    /// Where the site serves the bundle, relative to its root (and to the
    /// model worker's script).
    pub const SITE_DIR: &str = "model/";
    /// The global `Map` (file name → `fetch` promise) in which the model
    /// worker's loader script leaves the bundle requests it starts before
    /// the worker's own code has loaded; the worker takes them over.
    pub const EARLY_REQUESTS: &str = "milihBundle";
    /// The model worker's URL query on a visit the service worker does not
    /// serve (yet): the worker then keeps a copy of each bundle file it
    /// downloads, for the page to have it stored for offline use. The model
    /// is downloaded once, straight into the worker, and not through the
    /// service worker first; the browser's HTTP cache is not asked to keep
    /// another copy.
    pub const KEEP_COPIES: &str = "?keep-copies";
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BundleError {
    #[error("manifest.json is not valid: {0}")]
    Manifest(String),
    #[error("bundle format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    Version { found: u32 },
    #[error("manifest.json does not list `{0}`")]
    NotListed(String),
    #[error("`{name}` is missing")]
    Missing { name: String },
    #[error("`{name}` has {actual} bytes, the manifest says {expected}: the file is truncated or replaced")]
    Size {
        name: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "`{name}` does not match its SHA-256 in the manifest: the file is corrupt or tampered with"
    )]
    Checksum { name: String },
    #[error("`{name}` is not valid: {reason}")]
    Content { name: String, reason: String },
}

/// A verified, parsed bundle. `W` is the weight file: its bytes, or
/// whatever the caller keeps them in (the browser keeps them outside wasm
/// memory, and nothing once the model is built).
pub struct Bundle<W = Vec<u8>> {
    pub manifest: Manifest,
    pub config_json: Vec<u8>,
    pub tokenizer_json: Vec<u8>,
    pub weights: W,
    pub embeddings: Int8Embeddings,
    pub catalog: ExportedCatalog,
}

impl<W> Bundle<W> {
    /// [`Bundle::assemble_with_digests`] for a weight file held apart from
    /// `contents`, as `weights`; the caller measured its size and digest,
    /// which are checked against the manifest with everything else.
    pub fn assemble_apart(
        manifest: Manifest,
        contents: HashMap<String, Vec<u8>>,
        digests: &HashMap<String, String>,
        weights: W,
        (weights_len, weights_digest): (u64, &StreamDigest),
    ) -> Result<Self, BundleError> {
        Self::assemble_parts(manifest, contents, digests, |manifest, _| {
            manifest.verify_streamed(files::WEIGHTS, weights_len, weights_digest)?;
            Ok(weights)
        })
    }

    /// The weights, and the rest of the bundle without them.
    pub fn take_weights(self) -> (W, Bundle<()>) {
        let rest = Bundle {
            manifest: self.manifest,
            config_json: self.config_json,
            tokenizer_json: self.tokenizer_json,
            weights: (),
            embeddings: self.embeddings,
            catalog: self.catalog,
        };
        (self.weights, rest)
    }

    /// Verifies and parses every file, in the manifest's order; `weights`
    /// verifies the weight file.
    fn assemble_parts(
        manifest: Manifest,
        mut contents: HashMap<String, Vec<u8>>,
        digests: &HashMap<String, String>,
        weights: impl FnOnce(&Manifest, &mut HashMap<String, Vec<u8>>) -> Result<W, BundleError>,
    ) -> Result<Self, BundleError> {
        let config_json = take_verified(&manifest, &mut contents, digests, files::CONFIG)?;
        let tokenizer_json = unpack(
            files::TOKENIZER,
            &take_verified(&manifest, &mut contents, digests, files::TOKENIZER)?,
        )?;
        let weights = weights(&manifest, &mut contents)?;
        let mut take = |name: &str| take_verified(&manifest, &mut contents, digests, name);
        let embeddings = embeddings_from_bytes(
            &take(files::EMBEDDINGS)?,
            manifest.embedding_dim,
            manifest.num_products,
        )?;
        let catalog = catalog_from_bytes(&take(files::CATALOG)?)?;
        let content_error = |reason: String| BundleError::Content {
            name: files::CATALOG.into(),
            reason,
        };
        if catalog.products.len() != manifest.num_products {
            return Err(content_error(format!(
                "{} products, the manifest says {}",
                catalog.products.len(),
                manifest.num_products
            )));
        }
        if let Some(p) = catalog
            .products
            .iter()
            .find(|p| p.predicted.len() != manifest.labels.len())
        {
            return Err(content_error(format!(
                "product {} has {} probabilities, expected {}",
                p.product.id,
                p.predicted.len(),
                manifest.labels.len()
            )));
        }
        if let Some(p) = catalog
            .products
            .iter()
            .find(|p| !p.map.iter().all(|v| (0.0..=1.0).contains(v)))
        {
            return Err(content_error(format!(
                "product {} has map position {:?}, outside [0, 1]",
                p.product.id, p.map
            )));
        }
        Ok(Self {
            manifest,
            config_json,
            tokenizer_json,
            weights,
            embeddings,
            catalog,
        })
    }
}

impl Bundle {
    /// Verifies every file against the manifest, then parses the embeddings
    /// and catalog and checks that their sizes agree with it.
    pub fn assemble(
        manifest: Manifest,
        contents: HashMap<String, Vec<u8>>,
    ) -> Result<Self, BundleError> {
        Self::assemble_with_digests(manifest, contents, &HashMap::new())
    }

    /// [`Bundle::assemble`] with SHA-256 digests (hex, by file name) that
    /// the caller computed over `contents`; files without one are hashed
    /// here. Every file is still checked against the manifest.
    pub fn assemble_with_digests(
        manifest: Manifest,
        contents: HashMap<String, Vec<u8>>,
        digests: &HashMap<String, String>,
    ) -> Result<Self, BundleError> {
        Self::assemble_parts(manifest, contents, digests, |manifest, contents| {
            take_verified(manifest, contents, digests, files::WEIGHTS)
        })
    }
}

/// Removes file `name` from `contents` and checks it against the manifest.
fn take_verified(
    manifest: &Manifest,
    contents: &mut HashMap<String, Vec<u8>>,
    digests: &HashMap<String, String>,
    name: &str,
) -> Result<Vec<u8>, BundleError> {
    let content = contents.remove(name).ok_or_else(|| BundleError::Missing {
        name: name.to_owned(),
    })?;
    manifest.verify_with(name, &content, digests.get(name).map(String::as_str))?;
    Ok(content)
}

#[cfg(test)]
mod tests {
    /// The page's skin-type filters and answers index `SKIN_TYPES`: the
    /// committed bundle must name the same labels in the same order.
    #[test]
    fn the_committed_bundle_names_the_code_s_skin_types() {
        let manifest =
            Manifest::parse(include_bytes!("../../../public/model/manifest.json")).unwrap();
        assert_eq!(manifest.labels, milih_catalog::SKIN_TYPES);
    }

    use super::*;
    use milih_catalog::Product;

    fn sample() -> (Manifest, HashMap<String, Vec<u8>>) {
        let product = Product {
            id: 0,
            product_type: "Cleanser".into(),
            brand: "B".into(),
            name: "N".into(),
            price: 1.0,
            rating: 4.0,
            ingredients: None,
            skin_labels: None,
        };
        let catalog = ExportedCatalog {
            products: vec![ProductEntry {
                product,
                predicted: vec![0.5; 5],
                map: [0.5, 0.5],
            }],
            skin_answers: Default::default(),
            ranking: Default::default(),
        };
        let embeddings = Int8Embeddings::quantize(&[0.6, 0.8], 2);
        let contents: HashMap<String, Vec<u8>> = [
            (files::CONFIG, b"{}".to_vec()),
            (files::TOKENIZER, pack(b"{}")),
            (files::WEIGHTS, b"GGUF".to_vec()),
            (files::EMBEDDINGS, embeddings_to_bytes(&embeddings)),
            (files::CATALOG, catalog_to_bytes(&catalog).unwrap()),
        ]
        .into_iter()
        .map(|(n, c)| (n.to_owned(), c))
        .collect();
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            embedding_dim: 2,
            num_products: 1,
            labels: vec!["a".into(), "b".into(), "c".into(), "d".into(), "e".into()],
            metrics: serde_json::Value::Null,
            files: files::ALL
                .iter()
                .map(|n| FileEntry::describe(n, &contents[*n]))
                .collect(),
        };
        (manifest, contents)
    }

    #[test]
    fn a_consistent_bundle_assembles_and_round_trips_the_manifest() {
        let (manifest, contents) = sample();
        let json = serde_json::to_vec(&manifest).unwrap();
        let parsed = Manifest::parse(&json).unwrap();
        let bundle = Bundle::assemble(parsed, contents).unwrap();
        let row = bundle.embeddings.row(0);
        assert!(
            (row[0] - 0.6).abs() < 0.004 && (row[1] - 0.8).abs() < 0.004,
            "{row:?}"
        );
        assert_eq!(bundle.catalog.products.len(), 1);
    }

    #[test]
    fn digests_from_the_caller_are_checked_against_the_manifest() {
        let (manifest, contents) = sample();
        let mut digests: HashMap<String, String> = contents
            .iter()
            .map(|(name, content)| (name.clone(), sha256_hex(content).to_uppercase()))
            .collect();
        assert!(
            Bundle::assemble_with_digests(manifest.clone(), contents.clone(), &digests).is_ok()
        );
        // A wrong digest is a checksum failure, whatever the bytes.
        digests.insert(files::WEIGHTS.into(), sha256_hex(b"other"));
        assert_eq!(
            Bundle::assemble_with_digests(manifest, contents, &digests).err(),
            Some(BundleError::Checksum {
                name: files::WEIGHTS.into()
            })
        );
    }

    #[test]
    fn weights_held_apart_are_checked_by_size_and_digest() {
        let (manifest, mut contents) = sample();
        let weights = contents.remove(files::WEIGHTS).unwrap();
        let digest = StreamDigest::Whole(sha256_hex(&weights));
        let size = weights.len() as u64;
        let held = "weights kept elsewhere";
        let bundle = Bundle::assemble_apart(
            manifest.clone(),
            contents.clone(),
            &HashMap::new(),
            held,
            (size, &digest),
        )
        .unwrap();
        let (weights, rest) = bundle.take_weights();
        assert_eq!(weights, held);
        assert_eq!(rest.catalog.products.len(), 1);
        let apart = |contents: &HashMap<String, Vec<u8>>, size: u64, digest: &StreamDigest| {
            let files = contents.clone();
            Bundle::assemble_apart(manifest.clone(), files, &HashMap::new(), (), (size, digest))
                .err()
        };
        assert_eq!(
            apart(&contents, size, &StreamDigest::Whole(sha256_hex(b"other"))),
            Some(BundleError::Checksum {
                name: files::WEIGHTS.into()
            })
        );
        assert!(matches!(
            apart(&contents, size + 1, &digest),
            Some(BundleError::Size { ref name, expected: 4, actual: 5 }) if name == files::WEIGHTS
        ));
        // The other files are still all checked.
        contents.get_mut(files::CONFIG).unwrap().push(b' ');
        assert!(matches!(
            apart(&contents, size, &digest),
            Some(BundleError::Size { ref name, .. }) if name == files::CONFIG
        ));
    }

    #[test]
    fn files_larger_than_a_block_are_also_checked_block_by_block() {
        let (mut manifest, mut contents) = sample();
        // Small files list no blocks.
        assert!(!serde_json::to_string(&manifest)
            .unwrap()
            .contains("block_sha256"));
        let weights: Vec<u8> = (0..2 * BLOCK_BYTES + 5).map(|i| (i % 251) as u8).collect();
        let size = weights.len() as u64;
        let entry = FileEntry::describe(files::WEIGHTS, &weights);
        assert_eq!(entry.block_sha256.len(), 3);
        assert_eq!(
            entry.block_sha256[2],
            sha256_hex(&weights[2 * BLOCK_BYTES as usize..])
        );
        manifest.files.retain(|f| f.name != files::WEIGHTS);
        manifest.files.push(entry);
        let manifest = Manifest::parse(&serde_json::to_vec(&manifest).unwrap()).unwrap();
        let streamed = |digest: StreamDigest| {
            manifest
                .verify_streamed(files::WEIGHTS, size, &digest)
                .err()
        };
        let checksum = Some(BundleError::Checksum {
            name: files::WEIGHTS.into(),
        });
        assert_eq!(
            streamed(StreamDigest::Blocks(block_digests(&weights))),
            None
        );
        assert_eq!(streamed(StreamDigest::Whole(sha256_hex(&weights))), None);
        let mut changed = weights.clone();
        changed[BLOCK_BYTES as usize + 7] ^= 1;
        assert_eq!(
            streamed(StreamDigest::Blocks(block_digests(&changed))),
            checksum
        );
        let mut two = block_digests(&weights);
        two.pop();
        assert_eq!(streamed(StreamDigest::Blocks(two)), checksum);
        assert!(matches!(
            manifest.verify_streamed(
                files::WEIGHTS,
                size - 1,
                &StreamDigest::Blocks(block_digests(&weights))
            ),
            Err(BundleError::Size { .. })
        ));
        contents.insert(files::WEIGHTS.into(), weights);
        assert!(Bundle::assemble(manifest.clone(), contents.clone()).is_ok());

        // A manifest whose blocks disagree with its whole-file digest passes
        // neither reader.
        let mut resigned = manifest.clone();
        resigned.files.last_mut().unwrap().block_sha256[0] = sha256_hex(b"other");
        assert_eq!(Bundle::assemble(resigned, contents).err(), checksum);
        // Nor does one with the wrong number of blocks.
        let mut short = manifest;
        short.files.last_mut().unwrap().block_sha256.pop();
        let err = Manifest::parse(&serde_json::to_vec(&short).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "manifest.json is not valid: `model.gguf` lists 2 block digests for 2097157 bytes, which make 3 blocks"
        );
    }

    #[test]
    fn tampered_truncated_and_missing_files_are_named() {
        let (manifest, mut contents) = sample();
        contents.get_mut(files::WEIGHTS).unwrap()[0] = b'X';
        assert_eq!(
            Bundle::assemble(manifest.clone(), contents.clone()).err(),
            Some(BundleError::Checksum {
                name: files::WEIGHTS.into()
            })
        );
        contents.get_mut(files::WEIGHTS).unwrap().pop();
        assert!(matches!(
            Bundle::assemble(manifest.clone(), contents.clone()).err(),
            Some(BundleError::Size { ref name, expected: 4, actual: 3 }) if name == files::WEIGHTS
        ));
        contents.remove(files::CATALOG);
        let (_, good) = sample();
        let mut partial = good.clone();
        partial.remove(files::CATALOG);
        assert_eq!(
            Bundle::assemble(manifest, partial).err(),
            Some(BundleError::Missing {
                name: files::CATALOG.into()
            })
        );
    }

    #[test]
    fn manifest_versions_and_listings_are_checked() {
        let (mut manifest, _) = sample();
        manifest.format_version = 99;
        let json = serde_json::to_vec(&manifest).unwrap();
        assert_eq!(
            Manifest::parse(&json),
            Err(BundleError::Version { found: 99 })
        );
        manifest.format_version = FORMAT_VERSION;
        manifest.files.retain(|f| f.name != files::TOKENIZER);
        let json = serde_json::to_vec(&manifest).unwrap();
        assert_eq!(
            Manifest::parse(&json),
            Err(BundleError::NotListed(files::TOKENIZER.into()))
        );
        assert!(matches!(
            Manifest::parse(b"not json"),
            Err(BundleError::Manifest(_))
        ));
    }

    #[test]
    fn embedding_sizes_must_match_the_manifest() {
        let (mut manifest, contents) = sample();
        manifest.embedding_dim = 3;
        let err = Bundle::assemble(manifest, contents).err().unwrap();
        assert!(
            matches!(err, BundleError::Content { ref name, .. } if name == files::EMBEDDINGS),
            "{err}"
        );
    }

    #[test]
    fn map_positions_outside_the_unit_square_are_named() {
        let (mut manifest, mut contents) = sample();
        let mut catalog = catalog_from_bytes(&contents[files::CATALOG]).unwrap();
        catalog.products[0].map = [1.5, 0.2];
        let bytes = catalog_to_bytes(&catalog).unwrap();
        manifest.files.retain(|f| f.name != files::CATALOG);
        manifest
            .files
            .push(FileEntry::describe(files::CATALOG, &bytes));
        contents.insert(files::CATALOG.into(), bytes);
        let err = Bundle::assemble(manifest, contents).err().unwrap();
        assert!(err.to_string().contains("map position"), "{err}");
    }

    #[test]
    fn a_catalog_that_is_not_gzip_or_is_cut_short_is_refused() {
        let plain = catalog_from_bytes(b"{\"products\": []}").unwrap_err();
        assert!(
            plain
                .to_string()
                .contains("`catalog.jsonz` is not valid: not a whole gzip stream"),
            "{plain}"
        );
        let (_, contents) = sample();
        let packed = &contents[files::CATALOG];
        let cut = catalog_from_bytes(&packed[..packed.len() / 2]).unwrap_err();
        assert!(cut.to_string().contains("not a whole gzip stream"), "{cut}");
        let again = catalog_to_bytes(&catalog_from_bytes(packed).unwrap()).unwrap();
        assert_eq!(&again, packed, "the same catalog gives the same bytes");
    }
}
