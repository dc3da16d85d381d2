//! The model worker: downloads and verifies the bundle, then answers search
//! and embedding requests from the page.

use crate::protocol::{
    similarity_reasons, AvoidCheck, CollectionStats, Explanation, Request, Response, ResultCard,
    Search,
};
use milih_bundle::{files, Bundle, FileEntry, Manifest, StreamDigest};
use milih_model::quantized::{GgufStream, InferenceWeights};
use milih_model::{Engine, ModelError};
use milih_rank::skin::{leans, Lean};
use milih_rank::{dot, skin_fit, top_k, Int8Embeddings, SkinFit};
use sha2::Digest;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, ReadableStreamDefaultReader};

/// The cache the bundle files go into as they download on a first visit,
/// until they have passed their checks and the service worker has named
/// its own cache. Streaming them there keeps no second copy in memory.
/// `web/sw.js` leaves it alone.
const INCOMING: &str = "milih-incoming";

struct Loaded {
    engine: Engine,
    bundle: Bundle<()>,
    /// Each product's strongest skin-type lean among its type.
    leans: Vec<Option<Lean>>,
}

thread_local! {
    static STATE: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    /// Copies of the bundle files being written into [`INCOMING`] as they
    /// download (see [`crate::protocol::KEEP_COPIES`]): the bundle file and
    /// a promise of null, or of why the copy failed.
    static COPIES: RefCell<Vec<(&'static str, js_sys::Promise)>> = const { RefCell::new(Vec::new()) };
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn now() -> f64 {
    scope()
        .performance()
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

fn send(response: &Response) {
    match serde_wasm_bindgen::to_value(response) {
        Ok(value) => {
            let _ = scope().post_message(&value);
        }
        Err(e) => web_sys::console::error_1(&format!("cannot encode a worker message: {e}").into()),
    }
}

pub fn start() {
    console_error_panic_hook::set_once();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        match serde_wasm_bindgen::from_value::<Request>(event.data()) {
            Ok(request) => handle(request),
            Err(e) => web_sys::console::error_1(&format!("unreadable request: {e}").into()),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // Messages posted before this point would have been lost: the page waits
    // for this one before sending any.
    send(&Response::Started);
    let keep_copies = scope().location().search() == crate::protocol::KEEP_COPIES;
    if !keep_copies {
        drop_copies();
    }
    wasm_bindgen_futures::spawn_local(load_and_report(keep_copies));
}

async fn load_and_report(keep_copies: bool) {
    let started = now();
    let checked = match load(keep_copies).await {
        Ok(loaded) => {
            // The page takes in the collection's figures while the model
            // checks itself.
            send(&Response::Loaded {
                stats: stats(&loaded.bundle, now() - started),
            });
            check_reproduces_catalog(&loaded.engine, &loaded.bundle).map(|()| loaded)
        }
        Err(message) => Err(message),
    };
    match checked {
        Ok(loaded) => {
            STATE.with(|s| *s.borrow_mut() = Some(loaded));
            send(&Response::Checked);
        }
        Err(message) => {
            // Files that failed their checks are not worth storing.
            drop_copies();
            send(&Response::Failed { message });
        }
    }
}

/// Moves the bundle files from [`INCOMING`] into `cache`, under the URLs
/// they were downloaded from (where the service worker looks for them).
/// Returns the files that had to be downloaded again ([`store_whole`]).
async fn store_copies(cache: &str) -> Result<Vec<String>, String> {
    let copies = COPIES.with(|c| std::mem::take(&mut *c.borrow_mut()));
    if copies.is_empty() {
        return Err("no downloaded copy of the model is left to store".into());
    }
    let failed = |e: JsValue| {
        format!(
            "the model could not be stored for offline use: {}",
            describe(&e)
        )
    };
    let caches = scope().caches().map_err(failed)?;
    let incoming: web_sys::Cache = JsFuture::from(incoming_cache())
        .await
        .map_err(failed)?
        .unchecked_into();
    let target: web_sys::Cache = JsFuture::from(caches.open(cache))
        .await
        .map_err(failed)?
        .unchecked_into();
    let mut downloaded_again = Vec::new();
    for (name, put) in copies {
        let url = format!("{}{name}", files::SITE_DIR);
        let moved = async {
            let copied = JsFuture::from(put).await.map_err(failed)?;
            if !copied.is_null() {
                return Err(failed(copied));
            }
            let copy = JsFuture::from(incoming.match_with_str(&url))
                .await
                .map_err(failed)?
                .dyn_into::<web_sys::Response>()
                .map_err(|_| format!("the downloaded copy of `{name}` went missing"))?;
            JsFuture::from(target.put_with_str(&url, &copy))
                .await
                .map_err(failed)
        };
        if let Err(streamed) = moved.await {
            // Browsers cap a cache entry written from a stream at a fraction
            // of their disk cache, which is small on a nearly full disk
            // (Chromium: 10 MB with less than about 8 GB free), below the
            // weights' size. An entry stored whole has no such cap.
            store_whole(&target, name, &url)
                .await
                .map_err(|whole| format!("{streamed}; stored whole: {whole}"))?;
            downloaded_again.push(name.to_owned());
        }
    }
    JsFuture::from(caches.delete(INCOMING))
        .await
        .map_err(failed)?;
    Ok(downloaded_again)
}

/// Downloads bundle file `name` again and stores it in `target` from one
/// buffer, once it has passed its checks against the loaded manifest.
async fn store_whole(target: &web_sys::Cache, name: &str, url: &str) -> Result<(), String> {
    let manifest = STATE
        .with(|s| s.borrow().as_ref().map(|l| l.bundle.manifest.clone()))
        .ok_or("the model has not loaded")?;
    let failed = |e: JsValue| describe(&e);
    let init = web_sys::RequestInit::new();
    init.set_cache(web_sys::RequestCache::NoStore);
    let response: web_sys::Response = JsFuture::from(scope().fetch_with_str_and_init(url, &init))
        .await
        .map_err(failed)?
        .unchecked_into();
    if !response.ok() {
        return Err(format!(
            "HTTP {} {}",
            response.status(),
            response.status_text()
        ));
    }
    // Checked and stored as a JavaScript buffer: it never enters wasm memory.
    let body: js_sys::ArrayBuffer = JsFuture::from(response.array_buffer().map_err(failed)?)
        .await
        .map_err(failed)?
        .unchecked_into();
    let subtle = subtle_crypto().ok_or("this page cannot compute SHA-256 digests")?;
    let digest = subtle
        .digest_with_str_and_buffer_source("SHA-256", &body)
        .map_err(failed)?;
    manifest
        .verify_digest(
            name,
            u64::from(body.byte_length()),
            &finish_digest(digest).await?,
        )
        .map_err(|e| e.to_string())?;
    let whole = web_sys::Response::new_with_opt_buffer_source(Some(&body)).map_err(failed)?;
    JsFuture::from(target.put_with_str(url, &whole))
        .await
        .map_err(failed)?;
    Ok(())
}

/// Deletes the copies (and any left by an earlier visit).
fn drop_copies() {
    let puts: Vec<_> = COPIES.with(|c| std::mem::take(&mut *c.borrow_mut()));
    wasm_bindgen_futures::spawn_local(async move {
        for (_, put) in puts {
            let _ = JsFuture::from(put).await;
        }
        if let Ok(caches) = scope().caches() {
            let _ = JsFuture::from(caches.delete(INCOMING)).await;
        }
    });
}

#[inline(never)]
fn stats(bundle: &Bundle<()>, load_millis: f64) -> CollectionStats {
    CollectionStats::of(
        &bundle.catalog,
        &bundle.manifest.labels,
        bundle.manifest.total_bytes(),
        load_millis,
    )
}

async fn load(keep_copies: bool) -> Result<Loaded, String> {
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
fn start_model(
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
    Ok(Loaded {
        engine,
        bundle,
        leans,
    })
}

/// [`milih_rank::skin::leans`] over the exported catalog.
fn product_leans(catalog: &milih_bundle::ExportedCatalog) -> Vec<Option<Lean>> {
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
fn check_reproduces_catalog(engine: &Engine, bundle: &Bundle<()>) -> Result<(), String> {
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
/// write a copy of it into [`INCOMING`] as it downloads.
struct Download {
    name: &'static str,
    response: js_sys::Promise,
    keep_copy: bool,
}

/// Takes over the request for bundle file `name` that the loader script
/// started ([`files::EARLY_REQUESTS`]), or starts one.
fn request(name: &'static str, keep_copy: bool) -> Download {
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
async fn fetch_bytes(
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
async fn fetch_chunks(
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

/// [`INCOMING`], opened once.
fn incoming_cache() -> js_sys::Promise {
    thread_local! {
        static OPENED: RefCell<Option<js_sys::Promise>> = const { RefCell::new(None) };
    }
    OPENED.with(|opened| {
        opened
            .borrow_mut()
            .get_or_insert_with(|| match scope().caches() {
                Ok(caches) => caches.open(INCOMING),
                Err(e) => js_sys::Promise::reject(&e),
            })
            .clone()
    })
}

/// The weight file as it downloads: read into the model, hashed and
/// measured on the way.
struct StreamedWeights {
    /// The reader, or why reading failed (reported only if the file passes
    /// its checks).
    stream: Result<GgufStream, ModelError>,
    hasher: StreamHasher,
}

impl StreamedWeights {
    fn new(entry: &FileEntry) -> Self {
        Self {
            stream: Ok(GgufStream::for_inference(entry.bytes)),
            hasher: StreamHasher::for_file(entry),
        }
    }

    /// Bytes received so far.
    fn len(&self) -> u64 {
        self.hasher.len
    }

    fn push(&mut self, bytes: &[u8]) {
        self.hasher.push(bytes);
        if let Ok(stream) = self.stream.as_mut() {
            if let Err(e) = stream.push(bytes) {
                self.stream = Err(e);
            }
        }
    }

    /// The weights (or why not), and the file's size and digest (or why
    /// they could not be computed).
    async fn finish(self) -> (Result<InferenceWeights, ModelError>, Measured) {
        let measured = self.hasher.finish().await;
        (self.stream.and_then(GgufStream::finish), measured)
    }
}

/// A file's size and digest, or why the digest could not be computed.
type Measured = Result<(u64, StreamDigest), String>;

/// Hashes and measures a bundle file as it streams in, for
/// [`Manifest::verify_streamed`].
struct StreamHasher {
    hashing: Hashing,
    len: u64,
}

enum Hashing {
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
    fn for_file(entry: &FileEntry) -> Self {
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

    fn push(&mut self, bytes: &[u8]) {
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

    async fn finish(self) -> Measured {
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
fn start_digest(subtle: &web_sys::SubtleCrypto, bytes: &[u8]) -> Result<js_sys::Promise, String> {
    subtle
        .digest_with_str_and_u8_array("SHA-256", bytes)
        .map_err(|e| format!("a file could not be checked: {}", describe(&e)))
}

/// The hex digest a [`start_digest`] promise resolves to.
async fn finish_digest(promise: js_sys::Promise) -> Result<String, String> {
    let digest = JsFuture::from(promise)
        .await
        .map_err(|e| format!("a file could not be checked: {}", describe(&e)))?;
    Ok(hex::encode(js_sys::Uint8Array::new(&digest).to_vec()))
}

/// The browser's SubtleCrypto, where the page's context has it.
fn subtle_crypto() -> Option<web_sys::SubtleCrypto> {
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
async fn native_sha256(bytes: &[u8]) -> Option<String> {
    let promise = start_digest(&subtle_crypto()?, bytes).ok()?;
    finish_digest(promise).await.ok()
}

/// Frees a downloaded chunk's memory now rather than at the next garbage
/// collection, which an idle worker may not reach for a long time: without
/// it, every byte of the model stays resident twice, once in wasm memory and
/// once as garbage. `ArrayBuffer.prototype.transfer(0)` detaches the buffer;
/// where it does not exist the chunk simply waits for the collector.
fn release(buffer: &js_sys::ArrayBuffer) {
    if let Ok(transfer) = js_sys::Reflect::get(buffer, &"transfer".into()) {
        if let Some(transfer) = transfer.dyn_ref::<js_sys::Function>() {
            let _ = transfer.call1(buffer, &JsValue::from(0));
        }
    }
}

fn describe(error: &JsValue) -> String {
    error.as_string().unwrap_or_else(|| format!("{error:?}"))
}

fn handle(request: Request) {
    STATE.with(|state| {
        let state = state.borrow();
        let (id, result) = match (&request, state.as_ref()) {
            (Request::StoreBundle { cache }, _) => {
                let cache = cache.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let (error, downloaded_again) = match store_copies(&cache).await {
                        Ok(again) => (None, again),
                        Err(why) => (Some(why), Vec::new()),
                    };
                    send(&Response::BundleStored {
                        error,
                        downloaded_again,
                    });
                });
                return;
            }
            (Request::DropCopies, _) => return drop_copies(),
            (
                Request::Search { id, .. }
                | Request::Similar { id, .. }
                | Request::Embed { id, .. }
                | Request::BenchQuery { id, .. }
                | Request::BenchRank { id, .. },
                None,
            ) => (*id, Err("the model is not loaded".to_owned())),
            (Request::Search { id, search }, Some(loaded)) => {
                (*id, search_products(*id, search, loaded))
            }
            (
                Request::Similar {
                    id,
                    product,
                    limit,
                    avoid,
                },
                Some(loaded),
            ) => (*id, similar_products(*id, *product, *limit, avoid, loaded)),
            (Request::BenchQuery { id, text }, Some(loaded)) => {
                (*id, bench_query(*id, text, loaded))
            }
            (
                Request::BenchRank {
                    id,
                    products,
                    repeats,
                },
                Some(loaded),
            ) => (*id, bench_rank(*id, *products, *repeats, loaded)),
            (Request::Embed { id, text }, Some(loaded)) => {
                let started = now();
                let result = loaded
                    .engine
                    .predict(&[text.as_str()], 1)
                    .map_err(|e| e.to_string())
                    .and_then(|mut p| p.pop().ok_or_else(|| "no prediction".to_owned()))
                    .map(|p| Response::Embedding {
                        id: *id,
                        embedding: p.embedding,
                        probabilities: p.probabilities,
                        millis: now() - started,
                    });
                (*id, result)
            }
        };
        send(&result.unwrap_or_else(|message| Response::RequestFailed { id, message }));
    });
}

/// A result card; `explain` reads the product's skin-type fits, which are
/// worked out once for both.
fn card(
    loaded: &Loaded,
    index: usize,
    score: f32,
    explain: impl FnOnce(&[SkinFit]) -> Explanation,
    avoid: &[String],
) -> ResultCard {
    let entry = &loaded.bundle.catalog.products[index];
    let answers = &loaded.bundle.catalog.skin_answers;
    let fits: Vec<SkinFit> = (0..entry.predicted.len())
        .map(|l| skin_fit(&entry.product, &entry.predicted, l, answers))
        .collect();
    // A lean speaks for the model, so only where the retailer is silent.
    let lean = entry
        .product
        .skin_labels
        .is_none()
        .then(|| loaded.leans.get(index).cloned().flatten())
        .flatten();
    ResultCard {
        product: entry.product.clone(),
        score,
        explanation: explain(&fits),
        fits,
        lean,
        avoided: AvoidCheck::of(avoid, &entry.product),
    }
}

/// The product and its nearest neighbours by embedding, filters aside.
#[inline(never)]
fn similar_products(
    id: u64,
    product: usize,
    limit: usize,
    avoid: &[String],
    loaded: &Loaded,
) -> Result<Response, String> {
    let started = now();
    let products = &loaded.bundle.catalog.products;
    let embeddings = &loaded.bundle.embeddings;
    let Some(entry) = products.get(product) else {
        return Err(format!("there is no product {product} in this catalog"));
    };
    let hits = top_k(
        &embeddings.row(product),
        embeddings,
        limit.clamp(1, 100),
        |i| i != product,
    );
    let results = hits
        .into_iter()
        .map(|hit| {
            let other = &products[hit.index];
            let why = similarity_reasons(&entry.product, &other.product);
            card(
                loaded,
                hit.index,
                hit.score,
                |_| Explanation {
                    why,
                    matched: Vec::new(),
                },
                avoid,
            )
        })
        .collect();
    Ok(Response::Similar {
        id,
        product: card(loaded, product, 1.0, |_| Explanation::default(), avoid),
        results,
        millis: now() - started,
    })
}

#[inline(never)]
fn search_products(id: u64, search: &Search, loaded: &Loaded) -> Result<Response, String> {
    let started = now();
    let query_text = search.query_text();
    if query_text.is_empty() {
        return Ok(Response::Results {
            id,
            query_text,
            filters: search.filter_summary(),
            results: Vec::new(),
            millis: 0.0,
        });
    }
    let query = loaded
        .engine
        .embed_query(&query_text)
        .map_err(|e| e.to_string())?;
    let products = &loaded.bundle.catalog.products;
    let embeddings = &loaded.bundle.embeddings;
    let hits = top_k(&query, embeddings, search.limit.clamp(1, 100), |i| {
        search.filter.accepts(
            &products[i].product,
            &products[i].predicted,
            &loaded.bundle.catalog.skin_answers,
        )
    });
    let results = hits
        .into_iter()
        .map(|hit| {
            let entry = &products[hit.index];
            // No avoid check: the filter admitted only products whose
            // lists are known and hold none of the avoided ingredients.
            card(
                loaded,
                hit.index,
                hit.score,
                |fits| search.explain(&entry.product, fits),
                &[],
            )
        })
        .collect();
    Ok(Response::Results {
        id,
        query_text,
        filters: search.filter_summary(),
        results,
        millis: now() - started,
    })
}

/// Everything a search does for `text`, with both heads: tokenize, encode,
/// classify and embed, rank the whole catalog.
#[inline(never)]
fn bench_query(id: u64, text: &str, loaded: &Loaded) -> Result<Response, String> {
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
    let embeddings = &loaded.bundle.embeddings;
    let hits = top_k(&prediction.embedding, embeddings, 10, |_| true);
    std::hint::black_box(hits);
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
fn bench_rank(
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

fn wasm_memory_bytes() -> u64 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as u64
}
