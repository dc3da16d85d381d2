//! Loading the bundle: download, size and SHA-256 checks, the engine built
//! while the weights stream in, and the self-check against the catalog.

use super::copies::incoming_cache;
use super::digest::{native_sha256, Measured, StreamHasher};
use super::{describe, scope, send, Loaded, COPIES};
use crate::protocol::{CollectionStats, Response};
use milih_bundle::{files, Bundle, FileEntry, Manifest, StreamDigest};
use milih_model::quantized::{GgufStream, InferenceWeights};
use milih_model::{Engine, ModelError};
use milih_rank::hybrid::SearchWords;
use milih_rank::likeness::brand_neutral_int8;
use milih_rank::skin::{leans, Lean};
use milih_rank::{dot, Int8Embeddings};
use std::cell::Cell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::ReadableStreamDefaultReader;

#[inline(never)]
pub(super) fn stats(bundle: &Bundle<()>, load_millis: f64) -> CollectionStats {
    CollectionStats::of(
        &bundle.catalog,
        &bundle.manifest.labels,
        bundle.manifest.total_bytes(),
        load_millis,
    )
}

pub(super) async fn load(keep_copies: bool) -> Result<Loaded, String> {
    // The service worker stores the manifest itself, checked against its
    // own list.
    let manifest_bytes = fetch_bytes(request(files::MANIFEST, false), 0, |_| {}).await?;
    let manifest = Manifest::parse(&manifest_bytes).map_err(|e| e.to_string())?;
    // Every file is requested at once, then read in order: no round trip
    // waits between files.
    let downloads = files::ALL.map(|name| request(name, keep_copies));
    let total = manifest.total_bytes();
    let mut done = 0u64;
    // Progress goes out in steps of about 2 % of the bundle: a message per
    // network chunk would keep the page busy re-rendering while it loads.
    let step = (total / 50).max(1);
    let last_sent = Cell::new(0u64);
    let mut contents = HashMap::new();
    let mut digests = HashMap::new();
    let mut weights = None;
    for download in downloads {
        let name = download.name;
        let before = done;
        let expected = manifest.entry(name).map_or(0, |e| e.bytes as usize);
        let progress = |loaded| {
            let loaded_bytes = before + loaded;
            if loaded_bytes < last_sent.get() + step && loaded_bytes < total {
                return;
            }
            last_sent.set(loaded_bytes);
            send(&Response::Progress {
                loaded_bytes,
                total_bytes: total,
                stage: format!("downloading {name}"),
            });
        };
        if name == files::WEIGHTS {
            // Read into the model as it downloads: the file is never whole
            // in memory, and the model is ready when the download is.
            let entry = manifest.entry(name).map_err(|e| e.to_string())?;
            let mut streamed = StreamedWeights::new(entry);
            let mut piece = Vec::new();
            fetch_chunks(download, |chunk| {
                piece.resize(chunk.length() as usize, 0);
                chunk.copy_to(&mut piece);
                streamed.push(&piece);
                progress(streamed.len());
            })
            .await?;
            done += streamed.len();
            weights = Some(streamed);
        } else {
            let bytes = fetch_bytes(download, expected, progress).await?;
            done += bytes.len() as u64;
            if let Some(digest) = native_sha256(&bytes).await {
                digests.insert(name.to_owned(), digest);
            }
            contents.insert(name.to_owned(), bytes);
        }
    }
    let Some(weights) = weights else {
        return Err(format!("`{}` was not downloaded", files::WEIGHTS));
    };
    send(&Response::Progress {
        loaded_bytes: total,
        total_bytes: total,
        stage: "checking files and starting the model".into(),
    });
    let (weights, measured) = weights.finish().await;
    let (size, digest) = measured?;
    start_model(manifest, contents, &digests, weights, (size, &digest))
}

/// Verifies the downloaded files and builds the engine (not yet checked
/// against the catalog: [`check_reproduces_catalog`]).
///
/// Kept out of line, like the other steps below, so that no wasm function
/// grows huge: the browser optimises a function that runs long, and
/// optimising one of some 100 KB briefly takes over 100 MB and a core.
#[inline(never)]
pub(super) fn start_model(
    manifest: Manifest,
    contents: HashMap<String, Vec<u8>>,
    digests: &HashMap<String, String>,
    weights: Result<InferenceWeights, ModelError>,
    measured: (u64, &StreamDigest),
) -> Result<Loaded, String> {
    // Size and checksum first: a damaged file is named as such, whatever
    // reading it as weights said.
    let bundle = Bundle::assemble_apart(manifest, contents, digests, weights, measured)
        .map_err(|e| e.to_string())?;
    let (weights, mut bundle) = bundle.take_weights();
    let engine = weights
        .and_then(|weights| {
            Engine::from_weights(&bundle.config_json, &bundle.tokenizer_json, weights)
        })
        .map_err(|e| format!("the model cannot be loaded: {e}"))?;
    if engine.config().embedding_dim != bundle.manifest.embedding_dim {
        return Err(format!(
            "the model embeds in {} dimensions but the product embeddings have {}",
            engine.config().embedding_dim,
            bundle.manifest.embedding_dim
        ));
    }
    // The engine holds its own copy of the model now.
    bundle.tokenizer_json = Vec::new();
    bundle.config_json = Vec::new();
    let leans = product_leans(&bundle.catalog);
    let likeness = product_likeness(&bundle);
    let products: Vec<&milih_catalog::Product> =
        bundle.catalog.products.iter().map(|p| &p.product).collect();
    let words = SearchWords::new(&products);
    Ok(Loaded {
        engine,
        bundle,
        leans,
        likeness,
        words,
    })
}

/// [`brand_neutral_int8`] over the bundle's products.
pub(super) fn product_likeness(bundle: &Bundle<()>) -> Int8Embeddings {
    let products = bundle.catalog.products.iter().map(|p| &p.product);
    brand_neutral_int8(&bundle.embeddings, products)
}

/// [`milih_rank::skin::leans`] over the exported catalog.
pub(super) fn product_leans(catalog: &milih_bundle::ExportedCatalog) -> Vec<Option<Lean>> {
    let types: Vec<&str> = catalog
        .products
        .iter()
        .map(|p| p.product.product_type.as_str())
        .collect();
    let predicted: Vec<&[f32]> = catalog
        .products
        .iter()
        .map(|p| p.predicted.as_slice())
        .collect();
    leans(&types, &predicted, &catalog.skin_answers)
}

/// Runs both heads on a few catalog products and compares with the
/// exported numbers: a model, tokenizer or config from another export
/// would pass every checksum yet rank with mismatched embeddings.
#[inline(never)]
pub(super) fn check_reproduces_catalog(engine: &Engine, bundle: &Bundle<()>) -> Result<(), String> {
    const MIN_COSINE: f32 = 0.999;
    const MAX_PROBABILITY_DIFF: f32 = 0.01;
    const CHECKED: usize = 1;
    let products = &bundle.catalog.products;
    // The shortest texts: any product shows a mismatch, and a short one
    // keeps the check to a few milliseconds of the cold start (it runs
    // before the browser has optimised the model's code). Chosen by length
    // alone, so that only their texts are written.
    let mut by_length: Vec<(usize, usize)> = products
        .iter()
        .enumerate()
        .map(|(i, p)| (p.product.model_text_len(), i))
        .collect();
    by_length.sort_unstable();
    let sample: Vec<usize> = by_length.iter().take(CHECKED).map(|&(_, i)| i).collect();
    let texts: Vec<String> = sample
        .iter()
        .map(|&i| products[i].product.model_text())
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let predictions = engine
        .predict(&refs, refs.len().max(1))
        .map_err(|e| e.to_string())?;
    for (&i, prediction) in sample.iter().zip(&predictions) {
        let cosine = dot(&prediction.embedding, &bundle.embeddings.row(i));
        let diff = prediction
            .probabilities
            .iter()
            .zip(&products[i].predicted)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        if cosine < MIN_COSINE || diff > MAX_PROBABILITY_DIFF {
            return Err(format!(
                "the model does not reproduce the bundle's own numbers for product {i} \
                 (embedding cosine {cosine:.4}, probability difference {diff:.4}): \
                 its files come from different exports"
            ));
        }
    }
    Ok(())
}

/// A requested bundle file: its name, the fetch under way, and whether to
/// write a copy of it into [`INCOMING_CACHE`](crate::names::INCOMING_CACHE) as it downloads.
pub(super) struct Download {
    pub(super) name: &'static str,
    pub(super) response: js_sys::Promise,
    pub(super) keep_copy: bool,
}

/// Takes over the request for bundle file `name` that the loader script
/// started ([`files::EARLY_REQUESTS`]), or starts one.
pub(super) fn request(name: &'static str, keep_copy: bool) -> Download {
    let early = js_sys::Reflect::get(&scope(), &files::EARLY_REQUESTS.into())
        .ok()
        .and_then(|map| map.dyn_into::<js_sys::Map>().ok())
        .and_then(|map| {
            let key = JsValue::from(name);
            let response = map.get(&key);
            // A request is read once: a later load fetches anew.
            map.delete(&key);
            response.dyn_into::<js_sys::Promise>().ok()
        });
    Download {
        name,
        response: early
            .unwrap_or_else(|| scope().fetch_with_str(&format!("{}{name}", files::SITE_DIR))),
        keep_copy,
    }
}

/// Fetches a bundle file into wasm memory, reporting bytes received as
/// they stream in. `expected` (the manifest's size) sizes the buffer once:
/// growing a large buffer by doubling would briefly hold it twice.
pub(super) async fn fetch_bytes(
    download: Download,
    expected: usize,
    mut progress: impl FnMut(u64),
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(expected);
    fetch_chunks(download, |chunk| {
        let start = bytes.len();
        bytes.resize(start + chunk.length() as usize, 0);
        chunk.copy_to(&mut bytes[start..]);
        progress(bytes.len() as u64);
    })
    .await?;
    Ok(bytes)
}

/// Streams a requested bundle file, handing each chunk to `take` and freeing it
/// right after.
pub(super) async fn fetch_chunks(
    download: Download,
    mut take: impl FnMut(&js_sys::Uint8Array),
) -> Result<(), String> {
    let name = download.name;
    let failed = |what: String| format!("`{name}` could not be downloaded: {what}");
    let response: web_sys::Response = JsFuture::from(download.response)
        .await
        .map_err(|e| failed(describe(&e)))?
        .unchecked_into();
    if !response.ok() {
        return Err(failed(format!(
            "HTTP {} {}",
            response.status(),
            response.status_text()
        )));
    }
    if download.keep_copy {
        // A copy of a response tees its body; the cache reads the copy as
        // this reader reads the original.
        let copy = web_sys::Response::clone(&response).map_err(|e| failed(describe(&e)))?;
        let put = wasm_bindgen_futures::future_to_promise(async move {
            let stored = async {
                let cache: web_sys::Cache =
                    JsFuture::from(incoming_cache()).await?.unchecked_into();
                let url = format!("{}{name}", files::SITE_DIR);
                JsFuture::from(cache.put_with_str(&url, &copy)).await
            };
            // Resolves to null, or to why the copy failed: a rejection
            // would be reported as unhandled before `store_copies` reads it.
            Ok(stored.await.map_or_else(|why| why, |_| JsValue::NULL))
        });
        COPIES.with(|c| c.borrow_mut().push((name, put)));
    }
    let Some(body) = response.body() else {
        return Ok(());
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| failed(describe(&e)))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into())
            .map(|d| d.is_truthy())
            .unwrap_or(true);
        if done {
            return Ok(());
        }
        let value =
            js_sys::Reflect::get(&chunk, &"value".into()).map_err(|e| failed(describe(&e)))?;
        let chunk = js_sys::Uint8Array::new(&value);
        take(&chunk);
        release(&chunk.buffer());
    }
}

/// The weight file as it downloads: read into the model, hashed and
/// measured on the way.
pub(super) struct StreamedWeights {
    /// The reader, or why reading failed (reported only if the file passes
    /// its checks).
    pub(super) stream: Result<GgufStream, ModelError>,
    pub(super) hasher: StreamHasher,
}

impl StreamedWeights {
    pub(super) fn new(entry: &FileEntry) -> Self {
        Self {
            stream: Ok(GgufStream::for_inference(entry.bytes)),
            hasher: StreamHasher::for_file(entry),
        }
    }

    /// Bytes received so far.
    pub(super) fn len(&self) -> u64 {
        self.hasher.len
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.hasher.push(bytes);
        if let Ok(stream) = self.stream.as_mut() {
            if let Err(e) = stream.push(bytes) {
                self.stream = Err(e);
            }
        }
    }

    /// The weights (or why not), and the file's size and digest (or why
    /// they could not be computed).
    pub(super) async fn finish(self) -> (Result<InferenceWeights, ModelError>, Measured) {
        let measured = self.hasher.finish().await;
        (self.stream.and_then(GgufStream::finish), measured)
    }
}

/// Frees a downloaded chunk's memory now rather than at the next garbage
/// collection, which an idle worker may not reach for a long time: without
/// it, every byte of the model stays resident twice, once in wasm memory and
/// once as garbage. `ArrayBuffer.prototype.transfer(0)` detaches the buffer;
/// where it does not exist the chunk simply waits for the collector.
pub(super) fn release(buffer: &js_sys::ArrayBuffer) {
    if let Ok(transfer) = js_sys::Reflect::get(buffer, &"transfer".into()) {
        if let Some(transfer) = transfer.dyn_ref::<js_sys::Function>() {
            let _ = transfer.call1(buffer, &JsValue::from(0));
        }
    }
}
