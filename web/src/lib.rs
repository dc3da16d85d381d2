//! The Milih web app. The page (`app`, the `milih-web` binary) shows the
//! interface; the model runs in a Web Worker (`worker`, the `worker`
//! binary) so that inference never blocks the page. `protocol` is what they
//! say to each other.

pub mod map_layout;
pub mod names;
pub mod protocol;
pub mod url_state;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod offline;
#[cfg(target_arch = "wasm32")]
pub mod worker;
