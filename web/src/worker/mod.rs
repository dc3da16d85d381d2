//! The model worker: downloads and verifies the bundle, then answers search
//! and embedding requests from the page.

mod bench;
mod copies;
mod digest;
mod load;
mod serve;

use copies::drop_copies;
use load::{check_reproduces_catalog, load, stats};
use serve::handle;

use crate::protocol::{Request, Response};
use milih_bundle::Bundle;
use milih_model::Engine;
use milih_rank::hybrid::SearchWords;
use milih_rank::skin::Lean;
use milih_rank::Int8Embeddings;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

struct Loaded {
    engine: Engine,
    bundle: Bundle<()>,
    /// Each product's strongest skin-type lean among its type.
    leans: Vec<Option<Lean>>,
    /// The product embeddings with each brand's house style taken out:
    /// what "Similar products" ranks by ([`milih_rank::likeness`]).
    likeness: Int8Embeddings,
    /// The catalog's words and each product's concerns, for searches.
    words: SearchWords,
}

thread_local! {
    static STATE: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    /// Copies of the bundle files being written into [`INCOMING_CACHE`](crate::names::INCOMING_CACHE) as they
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

fn describe(error: &JsValue) -> String {
    error.as_string().unwrap_or_else(|| format!("{error:?}"))
}
