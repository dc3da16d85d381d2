//! Offline use, page side: registers the service worker (`web/sw.js`),
//! learns which cache a first install fills (the model worker adds the
//! bundle files it downloaded, so they are downloaded once), says when the
//! site works offline, offers new deployments, asks for a fresh download
//! when the stored model is damaged, and tracks whether the browser is
//! online.

use crate::names::{from_service_worker, to_service_worker};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ServiceWorkerContainer, ServiceWorkerRegistration, ServiceWorkerState};

/// What the page learns from the service worker.
pub struct Events {
    /// A first install stores the site into this cache; the bundle files
    /// are left to the page (the model worker's copies).
    pub storing_into: Box<dyn Fn(String)>,
    /// The site's files are stored and the service worker serves them, or
    /// the site runs without one. Called once.
    pub availability: Box<dyn Fn(Availability)>,
    /// A new deployment is stored and waits for [`use_update`].
    pub update_ready: Box<dyn Fn()>,
    /// The answer to [`download_again`] when it fails (on success the page
    /// reloads).
    pub download_failed: Box<dyn Fn(String)>,
}

/// Whether the site is stored for offline use.
#[derive(Debug, Clone, PartialEq)]
pub enum Availability {
    /// A service worker serves the site from its cache.
    Offline,
    /// No service worker (an insecure origin or an old browser), or its
    /// download failed: the site runs from the network.
    OnlineOnly(String),
}

fn container() -> Option<ServiceWorkerContainer> {
    let navigator = web_sys::window()?.navigator();
    // `navigator.serviceWorker` is undefined outside secure contexts.
    js_sys::Reflect::has(&navigator, &"serviceWorker".into())
        .ok()
        .filter(|has| *has)?;
    Some(navigator.service_worker())
}

/// Whether this browser can keep the site for offline use here.
pub fn supported() -> bool {
    container().is_some()
}

/// Whether a service worker served this page (its files, the model's
/// included, come from the cache).
pub fn controlled() -> bool {
    container().is_some_and(|c| c.controller().is_some())
}

fn field(data: &JsValue, name: &str) -> JsValue {
    js_sys::Reflect::get(data, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

fn reload() {
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

/// Why a page the stored site could serve runs from the network.
const BYPASSED: &str = "this load bypassed the offline copy";

/// Registers the service worker and calls `events.availability` once it is
/// known whether the site is stored.
pub fn register(events: Events) {
    let events = Rc::new(events);
    let started = Rc::new(Cell::new(false));
    let start = {
        let events = events.clone();
        let started = started.clone();
        move |availability: Availability| {
            if !started.replace(true) {
                (events.availability)(availability);
            }
        }
    };
    let Some(container) = container() else {
        start(Availability::OnlineOnly(
            "this browser cannot store the site here (service workers need HTTPS or localhost)"
                .into(),
        ));
        return;
    };
    let had_controller = container.controller().is_some();

    let on_message = {
        let events = events.clone();
        let start = start.clone();
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let data = event.data();
            match field(&data, "kind").as_string().as_deref() {
                Some(from_service_worker::INSTALLING)
                    if field(&data, "first").as_bool() == Some(true) =>
                {
                    if let Some(cache) = field(&data, "cache").as_string() {
                        (events.storing_into)(cache);
                    }
                }
                Some(from_service_worker::FAILED) => {
                    let message = field(&data, "message").as_string().unwrap_or_default();
                    start(Availability::OnlineOnly(format!(
                        "the site could not be stored for offline use: {message}"
                    )));
                }
                Some(from_service_worker::CLAIMED) => {
                    start(if field(&data, "controlled").as_bool() == Some(true) {
                        Availability::Offline
                    } else {
                        Availability::OnlineOnly(BYPASSED.into())
                    })
                }
                Some(from_service_worker::REFETCHED) => {
                    if field(&data, "ok").as_bool() == Some(true) {
                        reload();
                    } else {
                        let message = field(&data, "message").as_string().unwrap_or_default();
                        (events.download_failed)(message);
                    }
                }
                _ => {}
            }
        })
    };
    container.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();

    // A first install takes the page over: the site is stored. Any later
    // change of controller is a new version: reload, so the page never runs
    // on files of two versions.
    let on_controller_change = {
        let start = start.clone();
        let first_install = Cell::new(!had_controller);
        Closure::<dyn Fn()>::new(move || {
            if first_install.replace(false) {
                start(Availability::Offline);
            } else {
                reload();
            }
        })
    };
    container.set_oncontrollerchange(Some(on_controller_change.as_ref().unchecked_ref()));
    on_controller_change.forget();

    if had_controller {
        start(Availability::Offline);
    }

    let options = web_sys::RegistrationOptions::new();
    options.set_scope("./");
    let registering = container.register_with_options("./sw.js", &options);
    wasm_bindgen_futures::spawn_local(async move {
        let registration: ServiceWorkerRegistration = match JsFuture::from(registering).await {
            Ok(value) => value.unchecked_into(),
            Err(e) => {
                start(Availability::OnlineOnly(format!(
                    "the offline copy could not be set up: {}",
                    e.as_string().unwrap_or_else(|| format!("{e:?}"))
                )));
                return;
            }
        };
        if !had_controller {
            match registration.installing().or_else(|| registration.waiting()) {
                // The first download runs: wait for it to take over, or fail.
                Some(worker) => watch_first_install(&worker, start.clone()),
                // Installed while this page loaded: it takes the page over
                // as it activates (the controller change says so).
                None if container.controller().is_some()
                    || registration
                        .active()
                        .is_some_and(|w| w.state() == ServiceWorkerState::Activating) => {}
                // Active but not in control: it activated as this page
                // loaded (and its take-over has not reached the page yet),
                // or a forced reload bypassed it. Asked to take the page
                // over, it answers which (`claimed`).
                None => match registration.active() {
                    Some(active) => {
                        let message = js_sys::Object::new();
                        let _ = js_sys::Reflect::set(
                            &message,
                            &"kind".into(),
                            &to_service_worker::CLAIM.into(),
                        );
                        if active.post_message(&message).is_err() {
                            start(Availability::OnlineOnly(BYPASSED.into()));
                        }
                    }
                    None => start(Availability::OnlineOnly(BYPASSED.into())),
                },
            }
        } else if registration.waiting().is_some() {
            (events.update_ready)();
        } else if let Some(worker) = registration.installing() {
            // A new deployment was already downloading when this page opened.
            watch_installing(&worker, events.clone());
        }
        watch_updates(&registration, events.clone());
    });
}

fn watch_first_install(worker: &web_sys::ServiceWorker, start: impl Fn(Availability) + 'static) {
    let watched = worker.clone();
    let on_state = Closure::<dyn Fn()>::new(move || {
        if watched.state() == ServiceWorkerState::Redundant {
            start(Availability::OnlineOnly(
                "the site could not be stored for offline use".into(),
            ));
        }
    });
    worker.set_onstatechange(Some(on_state.as_ref().unchecked_ref()));
    on_state.forget();
}

/// A new deployment found while this page runs: say so once it is stored.
fn watch_updates(registration: &ServiceWorkerRegistration, events: Rc<Events>) {
    let watched = registration.clone();
    let on_update = Closure::<dyn Fn()>::new(move || {
        if let Some(worker) = watched.installing() {
            watch_installing(&worker, events.clone());
        }
    });
    registration.set_onupdatefound(Some(on_update.as_ref().unchecked_ref()));
    on_update.forget();
}

/// Says "update ready" once `worker` has stored its version, if an older
/// version runs this page (a first install is not an update).
fn watch_installing(worker: &web_sys::ServiceWorker, events: Rc<Events>) {
    let installing = worker.clone();
    let on_state = Closure::<dyn Fn()>::new(move || {
        let controlled = container().is_some_and(|c| c.controller().is_some());
        if installing.state() == ServiceWorkerState::Installed && controlled {
            (events.update_ready)();
        }
    });
    worker.set_onstatechange(Some(on_state.as_ref().unchecked_ref()));
    on_state.forget();
}

/// Hands over to the waiting version; the page reloads when it has taken
/// over.
pub fn use_update() {
    let Some(container) = container() else {
        return;
    };
    let ready = container.get_registration();
    wasm_bindgen_futures::spawn_local(async move {
        let Ok(registration) = JsFuture::from(ready).await else {
            return;
        };
        let registration: ServiceWorkerRegistration = registration.unchecked_into();
        if let Some(waiting) = registration.waiting() {
            let message = js_sys::Object::new();
            let _ = js_sys::Reflect::set(
                &message,
                &"kind".into(),
                &to_service_worker::ACTIVATE.into(),
            );
            let _ = waiting.post_message(&message);
        } else {
            reload();
        }
    });
}

/// Downloads every file of this version again, checked, into the cache,
/// then reloads; without a service worker, simply reloads.
pub fn download_again() {
    match container().and_then(|c| c.controller()) {
        Some(controller) => {
            let message = js_sys::Object::new();
            let _ =
                js_sys::Reflect::set(&message, &"kind".into(), &to_service_worker::REFETCH.into());
            if controller.post_message(&message).is_err() {
                reload();
            }
        }
        None => reload(),
    }
}

/// Calls `on_change(online)` now and whenever connectivity changes.
pub fn watch_connectivity(on_change: impl Fn(bool) + 'static) {
    let Some(window) = web_sys::window() else {
        return;
    };
    on_change(window.navigator().on_line());
    let on_change = Rc::new(on_change);
    for (event, online) in [("online", true), ("offline", false)] {
        let on_change = on_change.clone();
        let listener = Closure::<dyn Fn()>::new(move || on_change(online));
        let _ = window.add_event_listener_with_callback(event, listener.as_ref().unchecked_ref());
        listener.forget();
    }
}
