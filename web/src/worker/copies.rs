//! The offline copies: bundle files streamed into Cache Storage as they
//! download, moved into the service worker's cache once checked.

use super::digest::{finish_digest, subtle_crypto};
use super::{describe, scope, COPIES, STATE};
use crate::names::INCOMING_CACHE;
use milih_bundle::files;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Moves the bundle files from [`INCOMING_CACHE`] into `cache`, under the URLs
/// they were downloaded from (where the service worker looks for them).
/// Returns the files that had to be downloaded again ([`store_whole`]).
pub(super) async fn store_copies(cache: &str) -> Result<Vec<String>, String> {
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
    JsFuture::from(caches.delete(INCOMING_CACHE))
        .await
        .map_err(failed)?;
    Ok(downloaded_again)
}

/// Downloads bundle file `name` again and stores it in `target` from one
/// buffer, once it has passed its checks against the loaded manifest.
pub(super) async fn store_whole(
    target: &web_sys::Cache,
    name: &str,
    url: &str,
) -> Result<(), String> {
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
pub(super) fn drop_copies() {
    let puts: Vec<_> = COPIES.with(|c| std::mem::take(&mut *c.borrow_mut()));
    wasm_bindgen_futures::spawn_local(async move {
        for (_, put) in puts {
            let _ = JsFuture::from(put).await;
        }
        if let Ok(caches) = scope().caches() {
            let _ = JsFuture::from(caches.delete(INCOMING_CACHE)).await;
        }
    });
}

/// [`INCOMING_CACHE`], opened once.
pub(super) fn incoming_cache() -> js_sys::Promise {
    thread_local! {
        static OPENED: RefCell<Option<js_sys::Promise>> = const { RefCell::new(None) };
    }
    OPENED.with(|opened| {
        opened
            .borrow_mut()
            .get_or_insert_with(|| match scope().caches() {
                Ok(caches) => caches.open(INCOMING_CACHE),
                Err(e) => js_sys::Promise::reject(&e),
            })
            .clone()
    })
}
