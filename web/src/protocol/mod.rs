//! Messages between the page and the model worker, and the query text the
//! worker embeds for a search.

mod answers;
mod collection;
mod intents;
mod reasons;
mod search;
#[cfg(test)]
mod tests;

pub use answers::{answer_title, lean_sentence, plural_type, rating_words};
pub use collection::{percent_label, CollectionStats, GroupCount, MapPoint};
pub use intents::{understand, Understood, Wish};
pub use reasons::{similarity_reasons, AvoidCheck};
pub use search::{
    price_conflict, similar_filter, without_phrase, Order, Understanding, MAX_QUERY_CHARS,
    SIMILAR_SCOPE,
};

use milih_catalog::Product;
use milih_rank::lexical::Closeness;
use milih_rank::skin::Lean;
use milih_rank::{Filter, SkinFit};
use serde::{Deserialize, Serialize};

pub use milih_bundle::files::KEEP_COPIES;

fn close() -> Closeness {
    Closeness::Close
}

/// What the page says above results that are not close to the words typed;
/// nothing when they are.
pub fn closeness_sentence(closeness: &Closeness) -> Option<String> {
    match closeness {
        Closeness::Close => None,
        Closeness::UnknownWords(words) => {
            // Three words say it; a pasted page of them would bury it.
            let mut quoted: Vec<String> = words.iter().take(3).map(|w| format!("“{w}”")).collect();
            if words.len() > 3 {
                quoted.push(format!("{} more words", words.len() - 3));
            }
            Some(format!(
                "No product, brand or ingredient called {} in this catalog; closest in meaning:",
                quoted.join(" or ")
            ))
        }
        Closeness::NothingClose => Some(
            "Nothing close to your words in this catalog; the nearest in meaning, though not close:"
                .into(),
        ),
    }
}

/// An avoid term that caught nothing in the whole catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnknownTerm {
    pub term: String,
    /// A group the term may mean ("fragrance-free" → "fragrance").
    pub suggestion: Option<String>,
}

impl UnknownTerm {
    /// What the page says about it.
    pub fn sentence(&self) -> String {
        match &self.suggestion {
            Some(group) => format!(
                "No ingredient called “{}” in this catalog; did you mean {group}?",
                self.term
            ),
            None => format!(
                "No ingredient called “{}” in this catalog, so it removes nothing.",
                self.term
            ),
        }
    }
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Request {
    /// Put the worker's copies of the bundle files (see
    /// [`KEEP_COPIES`]) into this Cache Storage cache (the installing
    /// service worker's), then let them go.
    StoreBundle {
        cache: String,
    },
    /// Let the kept copies go (the site cannot be stored here).
    DropCopies,
    Search {
        id: u64,
        search: Search,
    },
    /// One product and the products nearest to it by embedding.
    Similar {
        id: u64,
        product: usize,
        limit: usize,
        /// The user's ingredients to avoid: not a filter here, but every
        /// card warns about them.
        avoid: Vec<String>,
        /// The search's skin-type, price and rating filters, which the
        /// neighbours keep to (product types and avoided ingredients do
        /// not apply: see [`SIMILAR_SCOPE`]).
        #[serde(default)]
        filter: Filter,
    },
    /// Runs both heads on one text (used by the parity test and benchmarks).
    Embed {
        id: u64,
        text: String,
    },
    /// Benchmark: a whole query (tokenize, encode, both heads, rank the
    /// catalog), timed in the worker; with `parts`, each step as well.
    BenchQuery {
        id: u64,
        text: String,
        #[serde(default)]
        parts: bool,
    },
    /// Benchmark: both heads on many texts at once, as indexing a
    /// catalog runs them (`batch_size` windows per encoder pass).
    BenchBatch {
        id: u64,
        texts: Vec<String>,
        batch_size: usize,
    },
    /// Benchmark: top-10 over `products` synthetic unit vectors of the
    /// model's dimension, `repeats` times.
    BenchRank {
        id: u64,
        products: usize,
        repeats: usize,
    },
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Response {
    /// The worker's code is running and accepts requests.
    Started,
    Progress {
        loaded_bytes: u64,
        total_bytes: u64,
        stage: String,
    },
    /// The bundle passed its checks and the model is built; it checks
    /// itself against the catalog next ([`Response::Checked`]).
    Loaded {
        stats: CollectionStats,
    },
    /// The model reproduced the bundle's own numbers: it answers requests
    /// from now on.
    Checked,
    /// The answer to [`Request::StoreBundle`]: `None`, or why storing failed;
    /// and the files downloaded once more to be stored whole (where the
    /// browser would not store them as they streamed in).
    BundleStored {
        error: Option<String>,
        downloaded_again: Vec<String>,
    },
    Failed {
        message: String,
    },
    Results {
        id: u64,
        /// What was asked, in the shopper's words ([`Search::asked_words`]).
        asked: String,
        /// The filters the text does not say, as [`Search::filter_summary`].
        filters: String,
        results: Vec<ResultCard>,
        millis: f64,
        /// Avoid terms that name no group and no ingredient of the catalog,
        /// each with what the shopper may have meant.
        #[serde(default)]
        unknown_avoid: Vec<UnknownTerm>,
        /// Wishes read in the text (the page's chips).
        #[serde(default)]
        understood: Vec<Understood>,
        /// Whether the best results are close to the words typed.
        #[serde(default = "close")]
        closeness: Closeness,
    },
    /// The answer to [`Request::Similar`].
    Similar {
        id: u64,
        product: ResultCard,
        results: Vec<ResultCard>,
        millis: f64,
    },
    /// Both heads' outputs for one text.
    Embedding {
        id: u64,
        embedding: Vec<f32>,
        probabilities: Vec<f32>,
        millis: f64,
    },
    /// The answer to the benchmark requests: worker-side times in
    /// milliseconds, and the tokens of the text (or texts) read.
    Bench {
        id: u64,
        millis: Vec<f64>,
        tokens: usize,
        /// The worker's WebAssembly memory, in bytes (it only grows, so
        /// this is its peak).
        wasm_memory_bytes: u64,
    },
    RequestFailed {
        id: u64,
        message: String,
    },
}

/// What the user asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Search {
    pub text: String,
    /// Concern keys ([`milih_rank::concerns::CONCERNS`]); unknown ones are
    /// ignored.
    pub concerns: Vec<String>,
    pub filter: Filter,
    pub limit: usize,
}

/// Why a result was found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// One line, e.g. "salicylic acid for acne and blemishes · labeled for dry skin".
    pub why: String,
    /// Lexicon terms found in the ingredient list (to highlight).
    pub matched: Vec<String>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultCard {
    pub product: Product,
    /// Cosine similarity between query and product.
    pub score: f32,
    /// Fit per skin type, in label order.
    pub fits: Vec<SkinFit>,
    /// Where the model places an unlabeled product among its type.
    pub lean: Option<Lean>,
    pub explanation: Explanation,
    /// The user's avoided ingredients in this product.
    pub avoided: AvoidCheck,
}
