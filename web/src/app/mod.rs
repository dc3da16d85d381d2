//! The page: filters and free text in, ranked product cards out. All model
//! work is sent to the worker; this side only renders.

mod address_bar;
mod card;
mod collection;
mod fields;
mod map;
mod results;
mod state;
mod status;
mod worker_client;

use address_bar::{location_query, set_location_query};
use collection::Overview;
use fields::{avoid_hint, avoid_terms, filter_of, toggle};
use map::EmbeddingMap;
use results::{Detail, Results};
use state::Page;
use status::StatusPanel;
use worker_client::{next_id, post, start_worker, BundleCopies};

use crate::offline::{self, Availability};
use crate::protocol::{
    similar_filter, CollectionStats, Request, ResultCard, Search, Understood, UnknownTerm,
};
use crate::url_state::{UrlState, View};
use leptos::prelude::*;
use milih_catalog::SKIN_TYPES;
use milih_rank::concerns::CONCERNS;
use milih_rank::lexical::Closeness;
use std::cell::RefCell;
use std::time::Duration;

/// Results shown per search, and added by each "show more".
const RESULTS_SHOWN: usize = 10;

/// The most results one search shows (the worker's limit too).
const RESULTS_MAX: usize = 100;

/// Quiet time after typing before the text is searched.
const TYPING_DEBOUNCE: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Starting,
    Loading {
        loaded: u64,
        total: u64,
        stage: String,
    },
    Ready(CollectionStats),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    /// What was asked, in the shopper's words.
    asked: String,
    /// Filters beyond the query text, in words.
    filters: String,
    results: Vec<ResultCard>,
    millis: f64,
    /// Avoid terms that caught nothing in the catalog.
    unknown_avoid: Vec<UnknownTerm>,
    /// Wishes read in the text, shown as chips.
    understood: Vec<Understood>,
    /// Whether the results are close to the words typed.
    closeness: Closeness,
}

/// A product and its nearest neighbours.
#[derive(Debug, Clone, PartialEq)]
struct SimilarOutcome {
    product: ResultCard,
    results: Vec<ResultCard>,
}

pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    // The question starts from the URL, so that links open the search they name.
    let page = Page::provide(UrlState::from_query(&location_query()));
    let Page {
        question,
        typed,
        shown,
        status,
        ..
    } = page;
    let typing_generation = RwSignal::new(0u64);

    let asked = page.asked();
    // A new question starts again from the first results.
    Effect::new(move |_| {
        asked.with(|_| ());
        shown.set(RESULTS_SHOWN);
    });
    // Every change of the question becomes a history entry (a changed text
    // replaces the entry instead, so typing does not flood the history).
    Effect::new(move |_| {
        let state = question.get();
        let shown = UrlState::from_query(&location_query());
        if state != shown {
            let text_only = UrlState {
                text: state.text.clone(),
                ..shown
            } == state;
            set_location_query(&state.to_query(), !text_only);
        }
    });
    // Back and forward restore the question of that entry.
    let _ = window_event_listener(leptos::ev::popstate, move |_| {
        let state = UrlState::from_query(&location_query());
        typed.set(state.text.clone());
        question.set(state);
    });

    let update_ready = RwSignal::new(false);
    let online = RwSignal::new(true);
    offline::watch_connectivity(move |now| online.set(now));
    // The model starts at once. On a first visit it downloads the bundle
    // straight from the network and streams a copy of each file aside,
    // which goes into the cache the installing service worker fills with
    // the rest of the site once the files pass their checks: the bundle is
    // downloaded once, and the model does not wait for the site to be
    // stored.
    let copies = RwSignal::new(BundleCopies::NotNeeded);
    let site_stored = RwSignal::new(None::<Availability>);
    let store_into = RwSignal::new(None::<String>);
    start_worker(page, copies);
    // The service worker registers once the model has loaded (or failed
    // to): a first visit's install would otherwise compete with the
    // model's download for the processor.
    let offline_events = RefCell::new(Some(offline::Events {
        storing_into: Box::new(move |cache| store_into.set(Some(cache))),
        availability: Box::new(move |now| site_stored.set(Some(now))),
        update_ready: Box::new(move || update_ready.set(true)),
        download_failed: Box::new(move |message| {
            status.set(Status::Failed(format!(
                "downloading the model again failed: {message}"
            )))
        }),
    }));
    Effect::new(move |_| {
        if status.with(|s| matches!(s, Status::Ready(_) | Status::Failed(_))) {
            if let Some(events) = offline_events.borrow_mut().take() {
                offline::register(events);
            }
        }
    });
    // Once the model has loaded from verified files and the service worker
    // has named its cache, the copies go there; if the site cannot be
    // stored (or another tab's install stores it), they are let go.
    Effect::new(move |_| {
        if copies.get() != BundleCopies::Kept || !page.is_ready() {
            return;
        }
        match (store_into.get(), site_stored.get()) {
            (_, Some(Availability::OnlineOnly(_))) | (None, Some(Availability::Offline)) => {
                copies.set(BundleCopies::NotNeeded);
                post(&Request::DropCopies);
            }
            (Some(cache), _) => {
                copies.set(BundleCopies::Storing);
                post(&Request::StoreBundle { cache });
            }
            (None, None) => {}
        }
    });
    let downloaded_again = Memo::new(move |_| {
        copies.with(|c| match c {
            BundleCopies::Stored { downloaded_again } => downloaded_again.join(", "),
            _ => String::new(),
        })
    });
    let availability = Memo::new(move |_| match (site_stored.get(), copies.get()) {
        (Some(Availability::Offline), BundleCopies::NotNeeded | BundleCopies::Stored { .. }) => {
            Some(Availability::Offline)
        }
        (Some(Availability::Offline), BundleCopies::Failed(why)) => {
            Some(Availability::OnlineOnly(why))
        }
        (Some(Availability::Offline), BundleCopies::Kept | BundleCopies::Storing) => None,
        (stored, _) => stored,
    });

    // The detail view asks the worker for the product's neighbours.
    let open_product = Memo::new(move |_| {
        question.with(|q| (q.product, q.avoid.clone(), similar_filter(&filter_of(q))))
    });
    Effect::new(move |_| {
        if !page.is_ready() {
            return;
        }
        if let (Some(product), avoid, filter) = open_product.get() {
            page.similar.set(None);
            let id = next_id();
            page.latest_similar.set(id);
            post(&Request::Similar {
                id,
                product,
                limit: RESULTS_SHOWN,
                avoid: avoid_terms(&avoid),
                filter,
            });
        }
    });

    // Search whenever the model is ready and the question changes.
    Effect::new(move |_| {
        if !page.is_ready() {
            return;
        }
        let search = asked.with(|q| Search {
            text: q.text.clone(),
            concerns: q.concerns.clone(),
            filter: filter_of(q),
            limit: shown.get(),
        });
        let id = next_id();
        page.latest_search.set(id);
        post(&Request::Search { id, search });
    });

    let on_type = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        typed.set(value.clone());
        let generation = typing_generation.get_untracked() + 1;
        typing_generation.set(generation);
        set_timeout(
            move || {
                if typing_generation.get_untracked() == generation {
                    question.update(|q| q.text = value);
                }
            },
            TYPING_DEBOUNCE,
        );
    };

    let place = page.place();
    let state_name = move || {
        status.with(|s| match s {
            Status::Starting | Status::Loading { .. } => "loading",
            Status::Ready(_) => "ready",
            Status::Failed(_) => "error",
        })
    };

    view! {
        <div class="page" data-state=state_name>
            <header>
                <h1>"Milih"</h1>
                <p class="tagline">"Skincare picks from product ingredients, computed privately in your browser."</p>
                {move || (!online.get()).then(|| view! {
                    <p class="connectivity" role="status">
                        {match availability.get() {
                            Some(Availability::Offline) => "You are offline. Milih keeps working from its saved copy.",
                            _ => "You are offline.",
                        }}
                    </p>
                })}
                {move || update_ready.get().then(|| view! {
                    <p class="update-banner" role="status">
                        "A new version of Milih is ready. "
                        <button type="button" class="use-update" on:click=move |_| offline::use_update()>"Use it now"</button>
                    </p>
                })}
            </header>
            <main>
                <StatusPanel status=status availability=availability downloaded_again=downloaded_again />
                <form class="filters" on:submit=|ev| ev.prevent_default()>
                    // Free text first: it is what most people reach for.
                    <label class="field">
                        "Describe what you are looking for"
                        <input id="query" type="search" maxlength="2000" placeholder="gentle cleanser that won't dry my skin"
                            prop:value=move || typed.get() on:input=on_type />
                    </label>
                    <fieldset>
                        <legend>"Skin type"</legend>
                        {SKIN_TYPES.iter().enumerate().map(|(i, name)| view! {
                            <label class="choice">
                                <input type="checkbox" name="skin" value=*name
                                    prop:checked=move || question.with(|q| q.skin_types.contains(&i))
                                    on:change=move |ev| question.update(|q| toggle(&mut q.skin_types, i, event_target_checked(&ev))) />
                                {*name}
                            </label>
                        }).collect_view()}
                    </fieldset>
                    <fieldset>
                        <legend>"Product type"</legend>
                        {move || match status.get() {
                            Status::Ready(stats) => stats.product_types.into_iter().map(|kind| {
                                let value = kind.clone();
                                let checked = kind.clone();
                                view! {
                                    <label class="choice">
                                        <input type="checkbox" name="type" value=value
                                            prop:checked=move || question.with(|q| q.product_types.contains(&checked))
                                            on:change={
                                                let kind = kind.clone();
                                                move |ev| question.update(|q| toggle(&mut q.product_types, kind.clone(), event_target_checked(&ev)))
                                            } />
                                        {kind.clone()}
                                    </label>
                                }
                            }).collect_view().into_any(),
                            _ => view! { <p class="hint">"Available once the catalog has loaded."</p> }.into_any(),
                        }}
                    </fieldset>
                    <fieldset>
                        <legend>"Concerns"</legend>
                        {CONCERNS.iter().map(|concern| {
                            let key = concern.key.to_string();
                            let shown = concern.label;
                            let checked = key.clone();
                            view! {
                                <label class="choice">
                                    <input type="checkbox" name="concern" value=concern.key
                                        prop:checked=move || question.with(|q| q.concerns.contains(&checked))
                                        on:change=move |ev| question.update(|q| toggle(&mut q.concerns, key.clone(), event_target_checked(&ev))) />
                                    {shown}
                                </label>
                            }
                        }).collect_view()}
                    </fieldset>
                    <label class="field">
                        "Ingredients to avoid (comma-separated)"
                        <input id="avoid" type="text" placeholder="fragrance, parabens, drying alcohol"
                            aria-describedby="avoid-hint"
                            prop:value=move || question.with(|q| q.avoid.clone())
                            on:change=move |ev| question.update(|q| q.avoid = event_target_value(&ev)) />
                        <span id="avoid-hint" class="hint">{avoid_hint()}</span>
                    </label>
                    <fieldset class="range">
                        <legend>"Price (USD)"</legend>
                        <label>"from "
                            <input id="min-price" type="number" min="0" step="1" inputmode="decimal"
                                prop:value=move || question.with(|q| q.min_price.clone())
                                on:change=move |ev| question.update(|q| q.min_price = event_target_value(&ev)) />
                        </label>
                        <label>" to "
                            <input id="max-price" type="number" min="0" step="1" inputmode="decimal"
                                prop:value=move || question.with(|q| q.max_price.clone())
                                on:change=move |ev| question.update(|q| q.max_price = event_target_value(&ev)) />
                        </label>
                    </fieldset>
                    <label class="field">
                        "Minimum rating"
                        <select id="min-rating" prop:value=move || question.with(|q| q.min_rating.clone())
                            on:change=move |ev| question.update(|q| q.min_rating = event_target_value(&ev))>
                            <option value="">"any"</option>
                            <option value="3">"3 stars or more"</option>
                            <option value="4">"4 stars or more"</option>
                            <option value="4.5">"4.5 stars or more"</option>
                        </select>
                    </label>
                </form>
                <div class="content">
                    <nav class="views" aria-label="Views">
                        {View::ALL.into_iter().map(|v| view! {
                            <button type="button" class="view-tab" data-view=v.label()
                                aria-pressed=move || (place.get() == (None, v)).to_string()
                                on:click=move |_| page.show_view(v)>
                                {v.label()}
                            </button>
                        }).collect_view()}
                    </nav>
                    {move || match place.get() {
                        (Some(_), _) => view! { <Detail /> }.into_any(),
                        (None, View::List) => view! { <Results /> }.into_any(),
                        (None, View::Map) => view! { <EmbeddingMap /> }.into_any(),
                        (None, View::Overview) => view! { <Overview /> }.into_any(),
                    }}
                </div>
            </main>
        </div>
    }
}
