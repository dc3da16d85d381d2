//! The model's status: loading progress, errors with their remedy, and
//! the offline and update hints.

use super::Status;
use crate::offline::{self, Availability};
use leptos::prelude::*;

#[component]
pub(super) fn StatusPanel(
    status: RwSignal<Status>,
    availability: Memo<Option<Availability>>,
    /// The bundle files a first visit downloaded twice to store them.
    downloaded_again: Memo<String>,
) -> impl IntoView {
    move || {
        match status.get() {
        Status::Starting => view! {
            <section class="status" aria-live="polite"><p>"Starting…"</p></section>
        }
        .into_any(),
        Status::Loading { loaded, total, stage } => {
            let percent = if total == 0 { 0.0 } else { 100.0 * loaded as f64 / total as f64 };
            view! {
                <section class="status" aria-live="polite">
                    <label for="load-progress">{format!("Loading the model: {stage} ({:.0}%)", percent)}</label>
                    <progress id="load-progress" max=total.to_string() value=loaded.to_string()></progress>
                    <p class="hint">{format!("{:.1} of {:.1} MB, downloaded once.", mb(loaded), mb(total))}</p>
                </section>
            }
            .into_any()
        }
        Status::Failed(message) => view! {
            <section class="status error" role="alert">
                <h2>"Milih could not start"</h2>
                <p class="error-message">{message}</p>
                <p>"Milih shows no results from a damaged model. Download it again; if that keeps failing, the site's own files are damaged."</p>
                <button type="button" class="download-again" on:click=move |_| {
                    status.set(Status::Loading { loaded: 0, total: 0, stage: "downloading the model again".into() });
                    offline::download_again();
                }>"Download the model again"</button>
            </section>
        }
        .into_any(),
        Status::Ready(stats) => view! {
            <section class="status ready">
                <p class="stats">
                    <span data-stat="products">{stats.products}" products"</span>
                    " · "<span data-stat="types">{stats.product_types.len()}" types"</span>
                    " · "<span data-stat="brands">{stats.brands}" brands"</span>
                    <span class="hint">{format!(" · model ready in {:.1} s ({:.1} MB)", stats.load_millis / 1000.0, mb(stats.bundle_bytes))}</span>
                    {match availability.get() {
                        Some(Availability::Offline) => {
                            let again = downloaded_again.get();
                            // Said where it happened: the first visit downloaded these twice.
                            let why = (!again.is_empty()).then(|| format!(
                                "stored; the browser would not store {again} as it downloaded (a nearly full disk), so it was downloaded once more"
                            ));
                            view! { <span class="hint" data-offline="ready" data-downloaded-again=again title=why>" · works offline"</span> }.into_any()
                        }
                        Some(Availability::OnlineOnly(why)) => view! { <span class="hint" data-offline="unavailable" title=why>" · online only"</span> }.into_any(),
                        None => ().into_any(),
                    }}
                </p>
            </section>
        }
        .into_any(),
    }
    }
}

pub(super) fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}
