//! The page's state in one place, provided by context: the question (the
//! URL mirrors it) and what the model has answered. Components take it
//! with [`page`] instead of receiving signals and setters from their parent.

use super::{Outcome, SimilarOutcome, Status, RESULTS_SHOWN};
use crate::url_state::{UrlState, View};
use leptos::prelude::*;

#[derive(Clone, Copy)]
pub(super) struct Page {
    /// The whole question: filters, text, the open product and the view.
    pub(super) question: RwSignal<UrlState>,
    /// The search field's text as typed; the question takes it after a pause.
    pub(super) typed: RwSignal<String>,
    /// How many results are shown (grows with "show more").
    pub(super) shown: RwSignal<usize>,
    /// The model's state, and its answers.
    pub(super) status: RwSignal<Status>,
    pub(super) outcome: RwSignal<Option<Outcome>>,
    pub(super) similar: RwSignal<Option<SimilarOutcome>>,
    pub(super) request_error: RwSignal<Option<String>>,
    /// The ids of the latest requests: answers to older ones are dropped.
    pub(super) latest_search: RwSignal<u64>,
    pub(super) latest_similar: RwSignal<u64>,
    /// The product whose view was just closed: its card takes the focus
    /// back when the results return.
    pub(super) returned_from: RwSignal<Option<usize>>,
}

impl Page {
    /// Provides a page state starting from `question` to every component
    /// below the caller.
    pub(super) fn provide(question: UrlState) -> Self {
        let page = Self {
            typed: RwSignal::new(question.text.clone()),
            question: RwSignal::new(question),
            shown: RwSignal::new(RESULTS_SHOWN),
            status: RwSignal::new(Status::Starting),
            outcome: RwSignal::new(None),
            similar: RwSignal::new(None),
            request_error: RwSignal::new(None),
            latest_search: RwSignal::new(0),
            latest_similar: RwSignal::new(0),
            returned_from: RwSignal::new(None),
        };
        provide_context(page);
        page
    }

    /// The question alone, not where it is shown: switching views or
    /// opening a product keeps the results (a memo notifies only on a real
    /// change).
    pub(super) fn asked(self) -> Memo<UrlState> {
        Memo::new(move |_| UrlState {
            product: None,
            view: View::List,
            ..self.question.get()
        })
    }

    /// What the content area shows: a product's view, or one of the views.
    pub(super) fn place(self) -> Memo<(Option<usize>, View)> {
        Memo::new(move |_| self.question.with(|q| (q.product, q.view)))
    }

    /// Searches for `text`, as if typed into the search field.
    pub(super) fn ask(self, text: &str) {
        self.typed.set(text.to_owned());
        self.question.update(|q| q.text = text.to_owned());
    }

    pub(super) fn open_product(self, id: usize) {
        self.question.update(|q| q.product = Some(id));
    }

    pub(super) fn close_product(self) {
        let open = self.question.with_untracked(|q| q.product);
        self.returned_from.set(open);
        self.question.update(|q| q.product = None);
    }

    pub(super) fn show_view(self, view: View) {
        self.question.update(|q| {
            q.view = view;
            q.product = None;
        });
    }

    pub(super) fn is_ready(self) -> bool {
        self.status.with(|s| matches!(s, Status::Ready(_)))
    }
}

/// The page state provided by [`Page::provide`].
pub(super) fn page() -> Page {
    expect_context::<Page>()
}
