//! A bundle from the network: the fuzzer writes all six files (split at a
//! separator). Two ways in: the files as given, checked against the fuzzed
//! manifest; and the same files re-signed with a fresh manifest (JSON files
//! gzipped first), as a hostile server could, which reaches the parsers behind the checksums
//! (catalog, embeddings, config, tokenizer, GGUF weights). Either way: a
//! verified bundle and a working model, or an error; never a panic or an
//! allocation the size of a lie in a header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use milih_bundle::{files, Bundle, FileEntry, Manifest, FORMAT_VERSION};
use milih_model::Engine;
use std::collections::HashMap;

const SEPARATOR: &[u8] = b"\n--8<--\n";

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        parts.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    parts.push(rest);
    parts
}

fn load(manifest: Manifest, contents: HashMap<String, Vec<u8>>) {
    let Ok(bundle) = Bundle::assemble(manifest, contents) else {
        return;
    };
    assert_eq!(bundle.embeddings.rows(), bundle.manifest.num_products);
    if let Ok(engine) =
        Engine::from_bundle(&bundle.config_json, &bundle.tokenizer_json, &bundle.weights)
    {
        let _ = engine.predict(&["gentle moisturizer for dry skin"], 4);
    }
}

fuzz_target!(|data: &[u8]| {
    let parts = split(data);
    let mut contents = HashMap::new();
    for (name, part) in files::ALL.iter().zip(parts.iter().skip(1)) {
        contents.insert(name.to_string(), part.to_vec());
    }
    // As given.
    if let Ok(manifest) = Manifest::parse(parts[0]) {
        load(manifest, contents.clone());
    }
    // Re-signed: sizes from the first bytes, checksums that match, and the
    // JSON files packed as the exporter packs them, so that the fuzzed JSON
    // reaches its parsers (gzip itself is covered by the path above).
    for name in [files::TOKENIZER, files::CATALOG] {
        if let Some(json) = contents.get_mut(name) {
            *json = milih_bundle::pack(json);
        }
    }
    let dim = usize::from(*parts[0].first().unwrap_or(&8));
    let products = usize::from(*parts[0].get(1).unwrap_or(&1));
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        embedding_dim: dim,
        num_products: products,
        labels: ["Combination", "Dry", "Normal", "Oily", "Sensitive"]
            .map(String::from)
            .to_vec(),
        metrics: serde_json::Value::Null,
        files: contents
            .iter()
            .map(|(name, content)| FileEntry::describe(name, content))
            .collect(),
    };
    load(manifest, contents);
});
