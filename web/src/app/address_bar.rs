//! The address bar: the page URL's query string, read and written.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;

/// The page URL's query string (with its `?`), or empty.
pub(super) fn location_query() -> String {
    window().location().search().unwrap_or_default()
}

/// Shows `query` in the address bar: a new history entry, or in place.
pub(super) fn set_location_query(query: &str, new_entry: bool) {
    let location = window().location();
    let path = location.pathname().unwrap_or_default();
    let url = format!("{path}{query}");
    if let Ok(history) = window().history() {
        let _ = if new_entry {
            history.push_state_with_url(&JsValue::NULL, "", Some(&url))
        } else {
            history.replace_state_with_url(&JsValue::NULL, "", Some(&url))
        };
    }
}
