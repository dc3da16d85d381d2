//! The page: filters and free text in, ranked product cards out. All model
//! work is sent to the worker; this side only renders.

use crate::offline::{self, Availability};
use crate::protocol::{
    answer_title, lean_sentence, CollectionStats, MapPoint, Request, Response, ResultCard, Search,
    KEEP_COPIES,
};
use crate::url_state::{UrlState, View};
use leptos::prelude::*;
use milih_catalog::SKIN_TYPES;
use milih_rank::avoid::AVOID_GROUPS;
use milih_rank::concerns::CONCERNS;
use milih_rank::{Filter, SkinFit};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker};

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
    query_text: String,
    /// Filters beyond the query text, in words.
    filters: String,
    results: Vec<ResultCard>,
    millis: f64,
}

/// A product and its nearest neighbours.
#[derive(Debug, Clone, PartialEq)]
struct SimilarOutcome {
    product: ResultCard,
    results: Vec<ResultCard>,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    /// Resolvers of `window.milihEmbed` promises, by request id.
    static PENDING_EMBEDS: RefCell<HashMap<u64, js_sys::Function>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

fn next_id() -> u64 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}

fn post(request: &Request) {
    let Ok(value) = serde_wasm_bindgen::to_value(request) else {
        return;
    };
    WORKER.with(|w| {
        if let Some(worker) = w.borrow().as_ref() {
            let _ = worker.post_message(&value);
        }
    });
}

pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let status = RwSignal::new(Status::Starting);
    let outcome = RwSignal::new(None::<Outcome>);
    let request_error = RwSignal::new(None::<String>);
    let latest_search = RwSignal::new(0u64);

    // The question starts from the URL, so that links open the search they name.
    let initial = UrlState::from_query(&location_query());
    let skin_types = RwSignal::new(initial.skin_types.clone());
    let product_types = RwSignal::new(initial.product_types.clone());
    let concerns = RwSignal::new(initial.concerns.clone());
    let avoid = RwSignal::new(initial.avoid.clone());
    let min_price = RwSignal::new(initial.min_price.clone());
    let max_price = RwSignal::new(initial.max_price.clone());
    let min_rating = RwSignal::new(initial.min_rating.clone());
    let text = RwSignal::new(initial.text.clone());
    let typed = RwSignal::new(initial.text.clone());
    let typing_generation = RwSignal::new(0u64);
    let shown = RwSignal::new(RESULTS_SHOWN);
    let detail = RwSignal::new(initial.product);
    let view = RwSignal::new(initial.view);

    let current_state = move || UrlState {
        skin_types: skin_types.get(),
        product_types: product_types.get(),
        concerns: concerns.get(),
        avoid: avoid.get(),
        min_price: min_price.get(),
        max_price: max_price.get(),
        min_rating: min_rating.get(),
        text: text.get(),
        product: detail.get(),
        view: view.get(),
    };
    // The question alone, not where it is shown: switching views or opening
    // a product keeps the results (a memo notifies only on a real change).
    let question = Memo::new(move |_| UrlState {
        product: None,
        view: View::List,
        ..current_state()
    });
    // A new question starts again from the first results.
    Effect::new(move |_| {
        question.with(|_| ());
        shown.set(RESULTS_SHOWN);
    });
    // Every change of the question becomes a history entry (a changed text
    // replaces the entry instead, so typing does not flood the history).
    Effect::new(move |_| {
        let state = current_state();
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
        skin_types.set(state.skin_types);
        product_types.set(state.product_types);
        concerns.set(state.concerns);
        avoid.set(state.avoid);
        min_price.set(state.min_price);
        max_price.set(state.max_price);
        min_rating.set(state.min_rating);
        typed.set(state.text.clone());
        text.set(state.text);
        detail.set(state.product);
        view.set(state.view);
    });

    let similar = RwSignal::new(None::<SimilarOutcome>);
    let latest_similar = RwSignal::new(0u64);
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
    start_worker(WorkerSignals {
        status,
        outcome,
        request_error,
        latest_search,
        similar,
        latest_similar,
        copies,
    });
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
        if copies.get() != BundleCopies::Kept || !status.with(|s| matches!(s, Status::Ready(_))) {
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
    Effect::new(move |_| {
        if !status.with(|s| matches!(s, Status::Ready(_))) {
            return;
        }
        if let Some(product) = detail.get() {
            similar.set(None);
            let id = next_id();
            latest_similar.set(id);
            post(&Request::Similar {
                id,
                product,
                limit: RESULTS_SHOWN,
                avoid: avoid_terms(&avoid.get()),
            });
        }
    });

    // Search whenever the model is ready and the question changes.
    Effect::new(move |_| {
        if !status.with(|s| matches!(s, Status::Ready(_))) {
            return;
        }
        let search = Search {
            text: text.get(),
            concerns: concerns.get(),
            filter: Filter {
                skin_types: skin_types.get(),
                product_types: product_types.get(),
                avoid_ingredients: avoid_terms(&avoid.get()),
                min_price: parse_bound(&min_price.get()),
                max_price: parse_bound(&max_price.get()),
                min_rating: parse_bound(&min_rating.get()),
            },
            limit: shown.get(),
        };
        let id = next_id();
        latest_search.set(id);
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
                    text.set(value);
                }
            },
            TYPING_DEBOUNCE,
        );
    };

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
                    <fieldset>
                        <legend>"Skin type"</legend>
                        {SKIN_TYPES.iter().enumerate().map(|(i, name)| view! {
                            <label class="choice">
                                <input type="checkbox" name="skin" value=*name
                                    prop:checked=move || skin_types.get().contains(&i)
                                    on:change=move |ev| toggle(skin_types, i, event_target_checked(&ev)) />
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
                                            prop:checked=move || product_types.get().contains(&checked)
                                            on:change={
                                                let kind = kind.clone();
                                                move |ev| toggle(product_types, kind.clone(), event_target_checked(&ev))
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
                                        prop:checked=move || concerns.get().contains(&checked)
                                        on:change=move |ev| toggle(concerns, key.clone(), event_target_checked(&ev)) />
                                    {shown}
                                </label>
                            }
                        }).collect_view()}
                    </fieldset>
                    <label class="field">
                        "Ingredients to avoid (comma-separated)"
                        <input id="avoid" type="text" placeholder="fragrance, parabens, drying alcohol"
                            aria-describedby="avoid-hint"
                            prop:value=move || avoid.get()
                            on:change=move |ev| avoid.set(event_target_value(&ev)) />
                        <span id="avoid-hint" class="hint">{avoid_hint()}</span>
                    </label>
                    <fieldset class="range">
                        <legend>"Price (USD)"</legend>
                        <label>"from "
                            <input id="min-price" type="number" min="0" step="1" inputmode="decimal"
                                prop:value=move || min_price.get()
                                on:change=move |ev| min_price.set(event_target_value(&ev)) />
                        </label>
                        <label>" to "
                            <input id="max-price" type="number" min="0" step="1" inputmode="decimal"
                                prop:value=move || max_price.get()
                                on:change=move |ev| max_price.set(event_target_value(&ev)) />
                        </label>
                    </fieldset>
                    <label class="field">
                        "Minimum rating"
                        <select id="min-rating" prop:value=move || min_rating.get() on:change=move |ev| min_rating.set(event_target_value(&ev))>
                            <option value="">"any"</option>
                            <option value="3">"3 stars or more"</option>
                            <option value="4">"4 stars or more"</option>
                            <option value="4.5">"4.5 stars or more"</option>
                        </select>
                    </label>
                    <label class="field">
                        "Describe what you are looking for"
                        <input id="query" type="search" maxlength="2000" placeholder="gentle cleanser that won't dry my skin"
                            prop:value=move || typed.get() on:input=on_type />
                    </label>
                </form>
                <div class="content">
                    <nav class="views" aria-label="Views">
                        {View::ALL.into_iter().map(|v| view! {
                            <button type="button" class="view-tab" data-view=v.label()
                                aria-pressed=move || (detail.get().is_none() && view.get() == v).to_string()
                                on:click=move |_| { view.set(v); detail.set(None); }>
                                {v.label()}
                            </button>
                        }).collect_view()}
                    </nav>
                    {move || match (detail.get(), view.get()) {
                        (Some(_), _) => view! { <Detail similar=similar request_error=request_error status=status detail=detail /> }.into_any(),
                        (None, View::List) => view! { <Results outcome=outcome request_error=request_error status=status shown=shown detail=detail /> }.into_any(),
                        (None, View::Map) => view! { <EmbeddingMap status=status outcome=outcome detail=detail /> }.into_any(),
                        (None, View::Overview) => view! { <Overview status=status /> }.into_any(),
                    }}
                </div>
            </main>
        </div>
    }
}

/// The avoid field's comma-separated terms.
fn avoid_terms(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A non-negative number typed in a bound field; anything else means "no
/// bound" (the field's own validation tells the user).
fn parse_bound(text: &str) -> Option<f32> {
    text.trim()
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// The ingredient groups the avoid field understands beyond plain words.
fn avoid_hint() -> String {
    let groups: Vec<&str> = AVOID_GROUPS.iter().map(|g| g.label).collect();
    format!("Understands {} and their label names.", groups.join(", "))
}

/// The page URL's query string (with its `?`), or empty.
fn location_query() -> String {
    window().location().search().unwrap_or_default()
}

/// Shows `query` in the address bar: a new history entry, or in place.
fn set_location_query(query: &str, new_entry: bool) {
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

fn toggle<T: PartialEq + Clone + Send + Sync + 'static>(set: RwSignal<Vec<T>>, item: T, on: bool) {
    set.update(|items| {
        items.retain(|x| *x != item);
        if on {
            items.push(item);
        }
    });
}

#[component]
fn StatusPanel(
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

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

#[component]
fn Results(
    outcome: RwSignal<Option<Outcome>>,
    request_error: RwSignal<Option<String>>,
    status: RwSignal<Status>,
    shown: RwSignal<usize>,
    detail: RwSignal<Option<usize>>,
) -> impl IntoView {
    let labels = move || status.with(skin_labels);
    view! {
        <section class="results" aria-live="polite">
            <h2 class="visually-hidden">"Results"</h2>
            {move || request_error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            // An empty query (nothing chosen yet) is answered like no search at all.
            {move || match outcome.get().filter(|o| !o.query_text.is_empty()) {
                _ if status.with(|s| matches!(s, Status::Failed(_))) => ().into_any(),
                None if !status.with(|s| matches!(s, Status::Ready(_))) => view! { <p class="hint">"Results appear here as soon as the model has loaded."</p> }.into_any(),
                None => view! { <p class="hint">"Choose a skin type, a product type or a concern, or describe what you want."</p> }.into_any(),
                Some(o) if o.results.is_empty() => view! { <p class="empty">"No product matches all of these filters. Try removing one."</p> }.into_any(),
                Some(o) => {
                    let labels = labels();
                    // A full page suggests there are more.
                    let more = o.results.len() >= shown.get_untracked() && o.results.len() < RESULTS_MAX;
                    view! {
                        <p class="summary" data-millis=format!("{:.1}", o.millis)>
                            {format!("{} results for “{}”", o.results.len(), o.query_text)}
                            {(!o.filters.is_empty()).then(|| view! { <span class="filters">{format!(" · {}", o.filters)}</span> })}
                            {format!(" ({:.0} ms)", o.millis)}
                        </p>
                        <ol class="cards">
                            {o.results.into_iter().map(|card| view! { <Card card=card labels=labels.clone() detail=detail /> }).collect_view()}
                        </ol>
                        {more.then(|| view! {
                            <button type="button" class="more"
                                on:click=move |_| shown.update(|n| *n = (*n + RESULTS_SHOWN).min(RESULTS_MAX))>
                                "Show more"
                            </button>
                        })}
                    }.into_any()
                }
            }}
        </section>
    }
}

/// The model's label names, or the catalog's skin types before it loads.
fn skin_labels(status: &Status) -> Vec<String> {
    match status {
        Status::Ready(stats) => stats.labels.clone(),
        _ => SKIN_TYPES.iter().map(|s| s.to_string()).collect(),
    }
}

/// One product, its neighbours, and the way back to the results.
#[component]
fn Detail(
    similar: RwSignal<Option<SimilarOutcome>>,
    request_error: RwSignal<Option<String>>,
    status: RwSignal<Status>,
    detail: RwSignal<Option<usize>>,
) -> impl IntoView {
    let labels = move || status.with(skin_labels);
    view! {
        <section class="detail" aria-live="polite">
            <button type="button" class="back" on:click=move |_| detail.set(None)>"← Back to results"</button>
            {move || request_error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            {move || match similar.get() {
                None => view! { <p class="hint">"Finding similar products…"</p> }.into_any(),
                Some(s) => {
                    let labels = labels();
                    let name = s.product.product.name.clone();
                    view! {
                        <h2 class="visually-hidden">"Product"</h2>
                        <ol class="cards product">
                            <Card card=s.product labels=labels.clone() detail=detail main=true />
                        </ol>
                        <h2 class="similar-heading">{format!("Similar to {name}")}</h2>
                        <ol class="cards similar">
                            {s.results.into_iter().map(|card| view! { <Card card=card labels=labels.clone() detail=detail /> }).collect_view()}
                        </ol>
                    }.into_any()
                }
            }}
        </section>
    }
}

/// One product card. The `main` card of a product view shows the product
/// itself: no match score or reason, its ingredients unfolded.
#[component]
fn Card(
    card: ResultCard,
    labels: Vec<String>,
    detail: RwSignal<Option<usize>>,
    #[prop(optional)] main: bool,
) -> impl IntoView {
    let p = card.product;
    let id = p.id;
    let name_for_label = format!("Similar products to {}", p.name);
    let similarity = (card.score.clamp(0.0, 1.0) * 100.0).round();
    let type_attr = p.product_type.clone();
    let type_attr_lean = p.product_type.clone();
    view! {
        <li class="card" data-product-id=p.id data-type=type_attr>
            <p class="brand">{p.brand}</p>
            <h3 class="name">{p.name}</h3>
            <p class="meta">
                <span class="type">{p.product_type}</span>
                " · "<span class="price">{format!("${:.0}", p.price)}</span>
                " · "<span class="rating">{format!("★ {:.1}", p.rating)}</span>
            </p>
            {(!main).then(|| view! {
                <p class="score" data-score=format!("{:.4}", card.score)>
                    <meter min="0" max="100" value=similarity.to_string()></meter>
                    {format!(" {:.0}% match", similarity)}
                </p>
                <p class="why">{format!("Why: {}", card.explanation.why)}</p>
            })}
            {(!card.avoided.warnings.is_empty()).then(|| view! {
                <ul class="warnings" aria-label="Ingredients you avoid">
                    {card.avoided.warnings.iter().map(|w| view! { <li>{format!("⚠ {w}")}</li> }).collect_view()}
                </ul>
            })}
            <ul class="fits" aria-label="Skin types">
                {labels.iter().cloned().zip(card.fits).map(|(label, fit)| {
                    let (class, code, text, title) = match fit {
                        SkinFit::Labeled(true) => ("fit labeled yes", "labeled-yes".to_string(), format!("{label} ✓"), "labeled by the retailer".to_string()),
                        SkinFit::Labeled(false) => ("fit labeled no", "labeled-no".to_string(), format!("{label} ✗"), "labeled by the retailer".to_string()),
                        SkinFit::Predicted { probability, answer } => (
                            if fit.suits() { "fit predicted yes" } else { "fit predicted no" },
                            format!("predicted-{}", answer.word()),
                            format!("{label} · {}", answer.word()),
                            answer_title(answer, probability),
                        ),
                    };
                    view! { <li class=class data-skin=label data-fit=code title=title>{text}</li> }
                }).collect_view()}
            </ul>
            {card.lean.map(|lean| {
                let skin = labels.get(lean.label).cloned().unwrap_or_default();
                let sentence = lean_sentence(&skin, &type_attr_lean, lean.beats);
                view! { <p class="lean" data-lean=skin.to_lowercase()>{sentence}</p> }
            })}
            <IngredientList ingredients=p.ingredients matched=card.explanation.matched avoided=card.avoided.items open=main />
            {(!main).then(|| view! {
                <button type="button" class="similar-link" aria-label=name_for_label
                    on:click=move |_| detail.set(Some(id))>"Similar products"</button>
            })}
        </li>
    }
}

/// The ingredient list, folded by default; ingredients that address the
/// chosen concerns are highlighted, avoided ones marked.
#[component]
fn IngredientList(
    ingredients: Option<String>,
    matched: Vec<String>,
    avoided: Vec<String>,
    /// Unfolded from the start.
    open: bool,
) -> impl IntoView {
    match ingredients {
        None => view! { <p class="hint">"Ingredients unknown"</p> }.into_any(),
        Some(list) => {
            let items: Vec<(String, Mark)> = list
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(|i| {
                    let lower = i.to_lowercase();
                    let item = lower.trim_end_matches('.').trim();
                    let mark = if avoided.iter().any(|a| a == item) {
                        Mark::Avoided
                    } else if matched.iter().any(|m| lower.contains(m.as_str())) {
                        Mark::Matched
                    } else {
                        Mark::Plain
                    };
                    (i.to_owned(), mark)
                })
                .collect();
            let count = items.len();
            view! {
                <details class="ingredients" open=open>
                    <summary>{format!("Ingredients ({count})")}</summary>
                    <p>
                        {items.into_iter().enumerate().map(|(k, (item, mark))| {
                            let sep = if k + 1 < count { ", " } else { "" };
                            match mark {
                                Mark::Matched => view! { <mark>{item}</mark>{sep} }.into_any(),
                                Mark::Avoided => view! { <mark class="avoided" title="an ingredient you avoid">{item}</mark>{sep} }.into_any(),
                                Mark::Plain => view! { <span>{item}</span>{sep} }.into_any(),
                            }
                        }).collect_view()}
                    </p>
                </details>
            }
            .into_any()
        }
    }
}

#[derive(Clone, Copy)]
enum Mark {
    Plain,
    Matched,
    Avoided,
}

/// Product-type colours (Okabe–Ito, distinguishable with colour-blindness).
const TYPE_COLOURS: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999",
];
/// The map's drawing size in SVG units, and the margin around the points.
const MAP_SIZE: f32 = 1000.0;
const MAP_MARGIN: f32 = 24.0;

fn type_colour(type_index: usize) -> &'static str {
    TYPE_COLOURS[type_index % TYPE_COLOURS.len()]
}

/// A map point's position in SVG units.
fn map_xy(point: &MapPoint) -> (f32, f32) {
    let inner = MAP_SIZE - 2.0 * MAP_MARGIN;
    (MAP_MARGIN + point.x * inner, MAP_MARGIN + point.y * inner)
}

/// The `data-index` of the map point under a pointer event, if any.
fn point_under(event: &web_sys::Event) -> Option<usize> {
    let target: web_sys::Element = event.target()?.dyn_into().ok()?;
    target.get_attribute("data-index")?.parse().ok()
}

/// Every product placed by its embedding (computed at export), coloured by
/// type, the current results numbered on top.
#[component]
fn EmbeddingMap(
    status: RwSignal<Status>,
    outcome: RwSignal<Option<Outcome>>,
    detail: RwSignal<Option<usize>>,
) -> impl IntoView {
    let hovered = RwSignal::new(None::<usize>);
    move || {
        let Status::Ready(stats) = status.get() else {
            return view! { <p class="hint">"The map appears once the catalog has loaded."</p> }
                .into_any();
        };
        let points = std::sync::Arc::new(stats.map);
        let open = move |index: usize, points: &[MapPoint]| {
            if let Some(point) = points.get(index) {
                detail.set(Some(point.id));
            }
        };
        let base = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (x, y) = map_xy(p);
                view! {
                    <circle class="point" cx=format!("{x:.1}") cy=format!("{y:.1}") r="5"
                        fill=type_colour(p.type_index) data-index=i></circle>
                }
            })
            .collect_view();
        let hits = {
            let points = points.clone();
            move || {
                let results = outcome.get().map(|o| o.results).unwrap_or_default();
                // Drawn last-first, so that better results lie on top.
                results.into_iter().enumerate().rev().filter_map(|(rank, card)| {
                    let index = points.iter().position(|p| p.id == card.product.id)?;
                    let (x, y) = map_xy(&points[index]);
                    let label = format!("Result {}: {} {}, open the product", rank + 1, card.product.brand, card.product.name);
                    let for_keys = points.clone();
                    let for_click = points.clone();
                    Some(view! {
                        <g class="hit" role="button" tabindex="0" aria-label=label data-index=index data-product-id=card.product.id
                            on:click=move |_| open(index, &for_click)
                            on:focus=move |_| hovered.set(Some(index))
                            on:blur=move |_| hovered.set(None)
                            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                                if ev.key() == "Enter" || ev.key() == " " {
                                    ev.prevent_default();
                                    open(index, &for_keys);
                                }
                            }>
                            <circle cx=format!("{x:.1}") cy=format!("{y:.1}") r="13" data-index=index></circle>
                            <text x=format!("{x:.1}") y=format!("{:.1}", y + 5.0) data-index=index>{rank + 1}</text>
                        </g>
                    })
                }).collect_view()
            }
        };
        let tip_points = points.clone();
        let tip = move || {
            hovered
                .get()
                .and_then(|i| tip_points.get(i).cloned())
                .map(|p| {
                    let (x, y) = map_xy(&p);
                    // Styles are set through the CSSOM (`style:`), which the
                    // Content-Security-Policy allows; style attributes it blocks.
                    let left = format!("{:.2}%", x / MAP_SIZE * 100.0);
                    let top = format!("{:.2}%", y / MAP_SIZE * 100.0);
                    view! {
                        <div class="map-tip" style:left=left style:top=top role="status">
                            <span class="brand">{p.brand}</span>" "<strong>{p.name}</strong>
                        </div>
                    }
                })
        };
        let click_points = points.clone();
        let has_hits = move || outcome.get().is_some_and(|o| !o.results.is_empty());
        let legend = stats.by_type.iter().map(|group| {
            let index = stats.product_types.iter().position(|t| *t == group.name).unwrap_or(0);
            view! {
                <li><span class="swatch" style:background-color=type_colour(index) aria-hidden="true"></span>
                    {format!("{} ({})", group.name, group.products)}</li>
            }
        }).collect_view();
        view! {
            <figure class="map">
                <div class="map-frame" on:mouseleave=move |_| hovered.set(None)>
                    <svg viewBox=format!("0 0 {MAP_SIZE} {MAP_SIZE}") role="group" aria-labelledby="map-caption"
                        class:has-hits=has_hits
                        on:mouseover=move |ev| hovered.set(point_under(&ev))
                        on:click=move |ev| if let Some(i) = point_under(&ev) { open(i, &click_points) }>
                        <g class="points">{base}</g>
                        <g class="hits">{hits}</g>
                    </svg>
                    {tip}
                </div>
                <figcaption id="map-caption">
                    {format!("All {} products placed by the model's embeddings: products close together read alike. ", stats.products)}
                    {move || if has_hits() {
                        "Your results are numbered; choose one to open it."
                    } else {
                        "Search to see where your results lie. Point at a product to see its name; click to open it."
                    }}
                </figcaption>
                <ul class="legend" aria-label="Product types">{legend}</ul>
            </figure>
        }.into_any()
    }
}

/// The collection at a glance: products by type and brand, and how many
/// have retailer skin-type labels rather than the model's predictions.
#[component]
fn Overview(status: RwSignal<Status>) -> impl IntoView {
    move || {
        let Status::Ready(stats) = status.get() else {
            return view! { <p class="hint">"The overview appears once the catalog has loaded."</p> }.into_any();
        };
        let predicted = stats.products - stats.labeled;
        let unlabeled_share = percent(predicted, stats.products);
        let largest_type = stats.by_type.first().map_or(1, |g| g.products).max(1);
        let largest_brand = stats.by_brand.first().map_or(1, |g| g.products).max(1);
        const BRANDS_SHOWN: usize = 20;
        let more_brands = stats.by_brand.len().saturating_sub(BRANDS_SHOWN);
        let bar = |group: &crate::protocol::GroupCount, largest: usize| {
            let labeled = 100.0 * group.labeled as f64 / largest as f64;
            let predicted = 100.0 * group.predicted() as f64 / largest as f64;
            view! {
                <span class="bar" aria-hidden="true">
                    <span class="labeled" style:width=format!("{labeled:.1}%")></span>
                    <span class="predicted" style:width=format!("{predicted:.1}%")></span>
                </span>
            }
        };
        view! {
            <section class="overview">
                <h2>"The collection"</h2>
                <p class="overview-summary">
                    {format!("{} products of {} types from {} brands. ", stats.products, stats.product_types.len(), stats.brands)}
                    <span data-stat="labeled">{format!("{} have skin types labeled by the retailer", stats.labeled)}</span>"; "
                    <span data-stat="predicted">{format!("{predicted} ({unlabeled_share:.0}%) have none, so Milih predicts them")}</span>"."
                </p>
                <p class="legend-line"><span class="key labeled" aria-hidden="true"></span>" retailer-labeled "
                    <span class="key predicted" aria-hidden="true"></span>" predicted by Milih"</p>
                <table class="counts by-type">
                    <caption>"Products by type"</caption>
                    <thead><tr><th scope="col">"Type"</th><th scope="col">"Products"</th><th scope="col">"Labeled"</th><th scope="col">"Predicted"</th><th scope="col"><span class="visually-hidden">"Share"</span></th></tr></thead>
                    <tbody>
                        {stats.by_type.iter().map(|g| view! {
                            <tr><th scope="row">{g.name.clone()}</th><td>{g.products}</td><td>{g.labeled}</td><td>{g.predicted()}</td><td>{bar(g, largest_type)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <table class="counts by-skin">
                    <caption>{format!("Skin types Milih predicts for the {predicted} unlabeled products")}</caption>
                    <thead><tr><th scope="col">"Skin type"</th><th scope="col">"Likely"</th><th scope="col">"Unsure"</th><th scope="col">"Unlikely"</th><th scope="col">"Unknown"</th></tr></thead>
                    <tbody>
                        {stats.labels.iter().zip(&stats.predicted_answers).map(|(label, counts)| view! {
                            <tr><th scope="row">{label.clone()}</th>
                                {counts.iter().map(|&n| view! { <td>{format!("{n} ({:.0}%)", percent(n, predicted))}</td> }).collect_view()}
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <table class="counts by-brand">
                    <caption>{format!("Brands with the most products (top {} of {})", BRANDS_SHOWN.min(stats.by_brand.len()), stats.brands)}</caption>
                    <thead><tr><th scope="col">"Brand"</th><th scope="col">"Products"</th><th scope="col">"Labeled"</th><th scope="col">"Predicted"</th><th scope="col"><span class="visually-hidden">"Share"</span></th></tr></thead>
                    <tbody>
                        {stats.by_brand.iter().take(BRANDS_SHOWN).map(|g| view! {
                            <tr><th scope="row">{g.name.clone()}</th><td>{g.products}</td><td>{g.labeled}</td><td>{g.predicted()}</td><td>{bar(g, largest_brand)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
                {(more_brands > 0).then(|| view! { <p class="hint">{format!("…and {more_brands} more brands.")}</p> })}
            </section>
        }.into_any()
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Where the model worker's copies of the bundle files are (see
/// [`KEEP_COPIES`]).
#[derive(Debug, Clone, PartialEq)]
enum BundleCopies {
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

/// What the worker's answers update.
struct WorkerSignals {
    status: RwSignal<Status>,
    outcome: RwSignal<Option<Outcome>>,
    request_error: RwSignal<Option<String>>,
    latest_search: RwSignal<u64>,
    similar: RwSignal<Option<SimilarOutcome>>,
    latest_similar: RwSignal<u64>,
    copies: RwSignal<BundleCopies>,
}

const WORKER_ERROR: &str = "the model worker stopped with an error (see the browser console)";

fn start_worker(signals: WorkerSignals) {
    let WorkerSignals {
        status,
        outcome,
        request_error,
        latest_search,
        similar,
        latest_similar,
        copies,
    } = signals;
    // Started by `boot.js` while the page loaded, with what it said since;
    // else started here. Trunk's loader shim for the `worker` binary;
    // relative, so the site works under any path.
    let (worker, early, keep_copies) = match early_worker() {
        Some(started) => started,
        None => {
            let keep_copies = offline::supported() && !offline::controlled();
            let query = if keep_copies { KEEP_COPIES } else { "" };
            match Worker::new(&format!("./worker_loader.js{query}")) {
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
                query_text,
                filters,
                results,
                millis,
            } => {
                if id == latest_search.get_untracked() {
                    request_error.set(None);
                    outcome.set(Some(Outcome {
                        query_text,
                        filters,
                        results,
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
fn early_worker() -> Option<(Worker, js_sys::Array, bool)> {
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

fn resolve_embed(id: u64, value: &JsValue) {
    if let Some(resolve) = PENDING_EMBEDS.with(|p| p.borrow_mut().remove(&id)) {
        let _ = resolve.call1(&JsValue::NULL, value);
    }
}

/// `window.milihEmbed(text)` resolves to `[embedding, skin-type
/// probabilities, millis]` computed by
/// the worker (a string on failure): the hook the parity test and
/// benchmarks use.
fn expose_embed() {
    let embed = Closure::<dyn Fn(String) -> js_sys::Promise>::new(|text: String| {
        ask(|id| Request::Embed { id, text })
    });
    if let Some(window) = web_sys::window() {
        let _ = js_sys::Reflect::set(&window, &"milihEmbed".into(), embed.as_ref());
    }
    embed.forget();
    // Benchmark hooks: `benchEmbed(text)` resolves to `{ millis: [worker
    // time of one whole query], tokens }`; `benchRank(products, repeats)` to
    // `{ millis: [one per repeat] }`.
    let bench_embed = Closure::<dyn Fn(String) -> js_sys::Promise>::new(|text: String| {
        ask(|id| Request::BenchQuery { id, text })
    });
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
    }
    bench_embed.forget();
    bench_rank.forget();
}

/// Posts a request and returns a promise of its answer.
fn ask(request: impl FnOnce(u64) -> Request) -> js_sys::Promise {
    let id = next_id();
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        PENDING_EMBEDS.with(|p| p.borrow_mut().insert(id, resolve));
    });
    post(&request(id));
    promise
}
