//! The page's side of the model worker: starting it, posting requests,
//! matching answers to pending requests, and the benchmark hooks.

use super::state::Page;
use super::{Outcome, SimilarOutcome, Status};
use crate::offline::{self};
use crate::protocol::{CollectionStats, Request, Response, KEEP_COPIES};
use leptos::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker};

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    /// Resolvers of `window.milihEmbed` promises, by request id.
    static PENDING_EMBEDS: RefCell<HashMap<u64, js_sys::Function>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

pub(super) fn next_id() -> u64 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}

pub(super) fn post(request: &Request) {
    let Ok(value) = serde_wasm_bindgen::to_value(request) else {
        return;
    };
    WORKER.with(|w| {
        if let Some(worker) = w.borrow().as_ref() {
            let _ = worker.post_message(&value);
        }
    });
}

/// Where the model worker's copies of the bundle files are (see
/// [`KEEP_COPIES`]).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum BundleCopies {
    /// None kept: the files came from the cache, or cannot be stored.
    NotNeeded,
    /// The worker keeps them (while it loads, and after).
    Kept,
    Storing,
    /// In the site's cache; the files named were downloaded once more to
    /// be stored whole (the browser refused them as they streamed in).
    Stored {
        downloaded_again: Vec<String>,
    },
    /// Why they are not stored.
    Failed(String),
}

pub(super) const WORKER_ERROR: &str =
    "the model worker stopped with an error (see the browser console)";

/// Starts the model worker (or takes over the one `boot.js` started); its
/// answers update `page`, and `copies` follows the offline copies.
pub(super) fn start_worker(page: Page, copies: RwSignal<BundleCopies>) {
    let Page {
        status,
        outcome,
        request_error,
        latest_search,
        similar,
        latest_similar,
        ..
    } = page;
    // Started by `boot.js` while the page loaded, with what it said since;
    // else started here. Trunk's loader shim for the `worker` binary;
    // relative, so the site works under any path.
    let (worker, early, keep_copies) = match early_worker() {
        Some(started) => started,
        None => {
            let keep_copies = offline::supported() && !offline::controlled();
            let query = if keep_copies { KEEP_COPIES } else { "" };
            match Worker::new(&format!("{}{query}", worker_loader())) {
                Ok(worker) => (worker, js_sys::Array::new(), keep_copies),
                Err(e) => {
                    status.set(Status::Failed(format!(
                        "the model worker cannot start: {e:?}"
                    )));
                    return;
                }
            }
        }
    };
    if keep_copies {
        copies.set(BundleCopies::Kept);
    }
    // The collection's figures, between `Loaded` and `Checked`.
    let loaded_stats = RefCell::new(None::<CollectionStats>);
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let response = match serde_wasm_bindgen::from_value::<Response>(event.data()) {
            Ok(response) => response,
            Err(e) => {
                status.set(Status::Failed(format!(
                    "unreadable message from the model worker: {e}"
                )));
                return;
            }
        };
        match response {
            Response::Started => status.set(Status::Loading {
                loaded: 0,
                total: 0,
                stage: "manifest".into(),
            }),
            Response::Progress {
                loaded_bytes,
                total_bytes,
                stage,
            } => status.set(Status::Loading {
                loaded: loaded_bytes,
                total: total_bytes,
                stage,
            }),
            Response::Loaded { stats } => {
                status.update(|s| {
                    if let Status::Loading { stage, .. } = s {
                        *stage = "checking the model".into();
                    }
                });
                *loaded_stats.borrow_mut() = Some(stats);
            }
            Response::Checked => {
                if let Some(stats) = loaded_stats.borrow_mut().take() {
                    status.set(Status::Ready(stats));
                }
            }
            Response::Failed { message } => {
                if copies.get_untracked() == BundleCopies::Kept {
                    copies.set(BundleCopies::Failed(
                        "the model's files did not pass their checks, so they were not stored"
                            .into(),
                    ));
                }
                status.set(Status::Failed(message))
            }
            Response::BundleStored {
                error,
                downloaded_again,
            } => copies.set(match error {
                None => BundleCopies::Stored { downloaded_again },
                Some(why) => BundleCopies::Failed(why),
            }),
            Response::Results {
                id,
                asked,
                filters,
                results,
                millis,
                unknown_avoid,
                understood,
                closeness,
            } => {
                if id == latest_search.get_untracked() {
                    request_error.set(None);
                    outcome.set(Some(Outcome {
                        asked,
                        closeness,
                        filters,
                        results,
                        unknown_avoid,
                        understood,
                        millis,
                    }));
                }
            }
            Response::Similar {
                id,
                product,
                results,
                ..
            } => {
                if id == latest_similar.get_untracked() {
                    request_error.set(None);
                    similar.set(Some(SimilarOutcome { product, results }));
                }
            }
            Response::Embedding {
                id,
                embedding,
                probabilities,
                millis,
            } => {
                resolve_embed(
                    id,
                    &serde_wasm_bindgen::to_value(&(embedding, probabilities, millis))
                        .unwrap_or(JsValue::NULL),
                );
            }
            Response::Bench {
                id,
                millis,
                tokens,
                wasm_memory_bytes,
            } => {
                let answer = js_sys::Object::new();
                let times: js_sys::Array = millis.iter().map(|&m| JsValue::from_f64(m)).collect();
                let _ = js_sys::Reflect::set(&answer, &"millis".into(), &times);
                for (key, value) in [
                    ("tokens", tokens as f64),
                    ("wasmMemoryBytes", wasm_memory_bytes as f64),
                ] {
                    let _ = js_sys::Reflect::set(&answer, &key.into(), &JsValue::from_f64(value));
                }
                resolve_embed(id, &answer);
            }
            Response::RequestFailed { id, message } => {
                if id == latest_search.get_untracked() || id == latest_similar.get_untracked() {
                    request_error.set(Some(message.clone()));
                }
                resolve_embed(id, &JsValue::from_str(&message));
            }
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    WORKER.with(|w| *w.borrow_mut() = Some(worker.clone()));
    for event in early.iter() {
        if event.is_instance_of::<MessageEvent>() {
            let _ = on_message
                .as_ref()
                .unchecked_ref::<js_sys::Function>()
                .call1(&JsValue::NULL, &event);
        } else {
            status.set(Status::Failed(WORKER_ERROR.into()));
        }
    }
    on_message.forget();
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_event: web_sys::Event| {
        status.set(Status::Failed(WORKER_ERROR.into()));
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    expose_embed();
}

/// The worker `boot.js` started, the messages it has sent so far, and
/// whether it keeps copies of the model's files.
pub(super) fn early_worker() -> Option<(Worker, js_sys::Array, bool)> {
    let window = web_sys::window()?;
    let started = js_sys::Reflect::get(&window, &"milihWorker".into()).ok()?;
    let worker = js_sys::Reflect::get(&started, &"worker".into())
        .ok()?
        .dyn_into::<Worker>()
        .ok()?;
    let early = js_sys::Reflect::get(&started, &"early".into())
        .ok()?
        .dyn_into::<js_sys::Array>()
        .ok()?;
    let keep_copies = js_sys::Reflect::get(&started, &"keepCopies".into())
        .ok()?
        .as_bool()?;
    let _ = js_sys::Reflect::delete_property(&window, &"milihWorker".into());
    Some((worker, early, keep_copies))
}

/// The worker build this engine runs: relaxed SIMD where it validates
/// (as `web/boot.js` chooses).
fn worker_loader() -> &'static str {
    use crate::names::{PLAIN_SIMD, RELAXED_SIMD_PROBE, RELAXED_WORKER_LOADER, WORKER_LOADER};
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    let plain = form_urlencoded::parse(search.trim_start_matches('?').as_bytes())
        .any(|(k, v)| (k.as_ref(), v.as_ref()) == PLAIN_SIMD);
    let probe = js_sys::Uint8Array::from(&RELAXED_SIMD_PROBE[..]);
    if !plain && js_sys::WebAssembly::validate(&probe).unwrap_or(false) {
        RELAXED_WORKER_LOADER
    } else {
        WORKER_LOADER
    }
}

pub(super) fn resolve_embed(id: u64, value: &JsValue) {
    if let Some(resolve) = PENDING_EMBEDS.with(|p| p.borrow_mut().remove(&id)) {
        let _ = resolve.call1(&JsValue::NULL, value);
    }
}

/// `window.milihEmbed(text)` resolves to `[embedding, skin-type
/// probabilities, millis]` computed by
/// the worker (a string on failure): the hook the parity test and
/// benchmarks use.
pub(super) fn expose_embed() {
    let embed = Closure::<dyn Fn(String) -> js_sys::Promise>::new(|text: String| {
        ask(|id| Request::Embed { id, text })
    });
    if let Some(window) = web_sys::window() {
        let _ = js_sys::Reflect::set(&window, &"milihEmbed".into(), embed.as_ref());
    }
    embed.forget();
    // Benchmark hooks: `benchEmbed(text)` resolves to `{ millis: [worker
    // time of one whole query] }`, `benchEmbed(text, true)` to `{ millis:
    // [whole, tokenize, encode, heads, rank], tokens }`; `benchEmbedBatch(texts,
    // batchSize)` to `{ millis: [all texts], tokens }`; `benchRank(products,
    // repeats)` to `{ millis: [one per repeat] }`.
    let bench_embed = Closure::<dyn Fn(String, JsValue) -> js_sys::Promise>::new(
        |text: String, parts: JsValue| {
            let parts = parts.is_truthy();
            ask(|id| Request::BenchQuery { id, text, parts })
        },
    );
    let bench_batch = Closure::<dyn Fn(Vec<String>, u32) -> js_sys::Promise>::new(
        |texts: Vec<String>, batch_size: u32| {
            ask(|id| Request::BenchBatch {
                id,
                texts,
                batch_size: batch_size as usize,
            })
        },
    );
    let bench_rank =
        Closure::<dyn Fn(u32, u32) -> js_sys::Promise>::new(|products: u32, repeats: u32| {
            ask(|id| Request::BenchRank {
                id,
                products: products as usize,
                repeats: repeats as usize,
            })
        });
    if let Some(window) = web_sys::window() {
        let _ = js_sys::Reflect::set(&window, &"benchEmbed".into(), bench_embed.as_ref());
        let _ = js_sys::Reflect::set(&window, &"benchRank".into(), bench_rank.as_ref());
        let _ = js_sys::Reflect::set(&window, &"benchEmbedBatch".into(), bench_batch.as_ref());
    }
    bench_embed.forget();
    bench_batch.forget();
    bench_rank.forget();
}

/// Posts a request and returns a promise of its answer.
pub(super) fn ask(request: impl FnOnce(u64) -> Request) -> js_sys::Promise {
    let id = next_id();
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        PENDING_EMBEDS.with(|p| p.borrow_mut().insert(id, resolve));
    });
    post(&request(id));
    promise
}
