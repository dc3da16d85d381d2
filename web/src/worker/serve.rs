//! Answering the page's requests: search, similar products, product
//! cards and the collection figures.

use super::bench::{bench_batch, bench_query, bench_rank};
use super::copies::{drop_copies, store_copies};
use super::{now, send, Loaded, STATE};
use crate::protocol::UnknownTerm;
use crate::protocol::{
    similarity_reasons, AvoidCheck, Explanation, Request, Response, ResultCard, Search,
};
use crate::protocol::{Order, Understanding};
use milih_rank::avoid::{did_you_mean, is_known_term};
use milih_rank::concerns::CONCERNS;
use milih_rank::lexical::Closeness;
use milih_rank::wording;
use milih_rank::Filter;
use milih_rank::{skin_fit, top_k, SkinFit};

pub(super) fn handle(request: Request) {
    STATE.with(|state| {
        let state = state.borrow();
        let (id, result) = match (&request, state.as_ref()) {
            (Request::StoreBundle { cache }, _) => {
                let cache = cache.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let (error, downloaded_again) = match store_copies(&cache).await {
                        Ok(again) => (None, again),
                        Err(why) => (Some(why), Vec::new()),
                    };
                    send(&Response::BundleStored {
                        error,
                        downloaded_again,
                    });
                });
                return;
            }
            (Request::DropCopies, _) => return drop_copies(),
            (
                Request::Search { id, .. }
                | Request::Similar { id, .. }
                | Request::Embed { id, .. }
                | Request::BenchQuery { id, .. }
                | Request::BenchBatch { id, .. }
                | Request::BenchRank { id, .. },
                None,
            ) => (*id, Err("the model is not loaded".to_owned())),
            (Request::Search { id, search }, Some(loaded)) => {
                (*id, search_products(*id, search, loaded))
            }
            (
                Request::Similar {
                    id,
                    product,
                    limit,
                    avoid,
                    filter,
                },
                Some(loaded),
            ) => (
                *id,
                similar_products(*id, *product, *limit, avoid, filter, loaded),
            ),
            (Request::BenchQuery { id, text, parts }, Some(loaded)) => {
                (*id, bench_query(*id, text, *parts, loaded))
            }
            (
                Request::BenchBatch {
                    id,
                    texts,
                    batch_size,
                },
                Some(loaded),
            ) => (*id, bench_batch(*id, texts, *batch_size, loaded)),
            (
                Request::BenchRank {
                    id,
                    products,
                    repeats,
                },
                Some(loaded),
            ) => (*id, bench_rank(*id, *products, *repeats, loaded)),
            (Request::Embed { id, text }, Some(loaded)) => {
                let started = now();
                let result = loaded
                    .engine
                    .predict(&[text.as_str()], 1)
                    .map_err(|e| e.to_string())
                    .and_then(|mut p| p.pop().ok_or_else(|| "no prediction".to_owned()))
                    .map(|p| Response::Embedding {
                        id: *id,
                        embedding: p.embedding,
                        probabilities: p.probabilities,
                        millis: now() - started,
                    });
                (*id, result)
            }
        };
        send(&result.unwrap_or_else(|message| Response::RequestFailed { id, message }));
    });
}

/// A result card; `explain` reads the product's skin-type fits, which are
/// worked out once for both.
pub(super) fn card(
    loaded: &Loaded,
    index: usize,
    score: f32,
    explain: impl FnOnce(&[SkinFit]) -> Explanation,
    avoid: &[String],
) -> ResultCard {
    let entry = &loaded.bundle.catalog.products[index];
    let answers = &loaded.bundle.catalog.skin_answers;
    let fits: Vec<SkinFit> = (0..entry.predicted.len())
        .map(|l| skin_fit(&entry.product, &entry.predicted, l, answers))
        .collect();
    // A lean speaks for the model, so only where the retailer is silent.
    let lean = entry
        .product
        .skin_labels
        .is_none()
        .then(|| loaded.leans.get(index).cloned().flatten())
        .flatten();
    ResultCard {
        product: entry.product.clone(),
        score,
        explanation: explain(&fits),
        fits,
        lean,
        avoided: AvoidCheck::of(avoid, &entry.product),
    }
}

/// The product and its nearest neighbours by embedding, the brand's house
/// style taken out, filters aside.
#[inline(never)]
pub(super) fn similar_products(
    id: u64,
    product: usize,
    limit: usize,
    avoid: &[String],
    filter: &Filter,
    loaded: &Loaded,
) -> Result<Response, String> {
    let started = now();
    let products = &loaded.bundle.catalog.products;
    let embeddings = &loaded.likeness;
    let answers = &loaded.bundle.catalog.skin_answers;
    let Some(entry) = products.get(product) else {
        return Err(format!("there is no product {product} in this catalog"));
    };
    let hits = top_k(
        &embeddings.row(product),
        embeddings,
        limit.clamp(1, 100),
        |i| i != product && filter.accepts(&products[i].product, &products[i].predicted, answers),
    );
    let results = hits
        .into_iter()
        .map(|hit| {
            let other = &products[hit.index];
            let why = similarity_reasons(&entry.product, &other.product);
            card(
                loaded,
                hit.index,
                hit.score,
                |_| Explanation {
                    why,
                    matched: Vec::new(),
                },
                avoid,
            )
        })
        .collect();
    Ok(Response::Similar {
        id,
        product: card(loaded, product, 1.0, |_| Explanation::default(), avoid),
        results,
        millis: now() - started,
    })
}

#[inline(never)]
pub(super) fn search_products(
    id: u64,
    asked: &Search,
    loaded: &Loaded,
) -> Result<Response, String> {
    let started = now();
    let Understanding {
        search,
        understood,
        order,
        named_concerns,
    } = asked.understood();
    let query_text = search.query_text();
    let asked_words = asked.asked_words();
    if query_text.is_empty() && order.is_none() && understood.is_empty() {
        return Ok(Response::Results {
            id,
            asked: asked_words,
            filters: search.filter_summary(),
            results: Vec::new(),
            millis: 0.0,
            unknown_avoid: Vec::new(),
            understood,
            closeness: Closeness::Close,
        });
    }
    // Wishes alone ("best rated") still need a query to score the cards:
    // the sentence of any skincare product.
    let embedded = if query_text.is_empty() {
        wording::ANY_PRODUCT.to_owned()
    } else {
        query_text.clone()
    };
    let query = loaded
        .engine
        .embed_query(&embedded)
        .map_err(|e| e.to_string())?;
    let products = &loaded.bundle.catalog.products;
    let answers = &loaded.bundle.catalog.skin_answers;
    let limit = search.limit.clamp(1, 100);
    let mut concerns: Vec<usize> = search
        .concerns()
        .filter_map(|c| CONCERNS.iter().position(|k| k.key == c.key))
        .collect();
    concerns.extend(&named_concerns);
    // Filters alone (no words of their own, no concern) describe no
    // product to be close to: the products that pass them come surest fit
    // first, then best rated, rather than by the words of their sentence.
    let browse = search.text.trim().is_empty() && concerns.is_empty();
    let order = order.or(browse.then_some(Order::BestFit));
    // An order applies among the good matches: the best 100 by meaning, or
    // every product that passes the filters when there is no text.
    let pool = match (order, search.text.trim().is_empty()) {
        (None, _) => limit,
        (Some(_), false) => ORDERED_POOL,
        (Some(_), true) => products.len(),
    };
    let ranked = loaded.words.rank(
        &loaded.bundle.catalog.ranking,
        &search.text,
        &concerns,
        &query,
        &loaded.bundle.embeddings,
        pool,
        |i| {
            search
                .filter
                .accepts(&products[i].product, &products[i].predicted, answers)
        },
        |word| loaded.engine.encoder().is_whole_word(word),
    );
    let mut hits = ranked.hits;
    if let Some(order) = order {
        let fit = |i: usize| -> f32 {
            let entry = &products[i];
            search
                .filter
                .skin_types
                .iter()
                .map(
                    |&s| match skin_fit(&entry.product, &entry.predicted, s, answers) {
                        SkinFit::Labeled(true) => 1.0,
                        SkinFit::Labeled(false) => 0.0,
                        SkinFit::Predicted { probability, .. } => probability.min(0.99),
                    },
                )
                .sum()
        };
        let key = |i: usize| {
            let p = &products[i].product;
            match order {
                Order::Cheapest => (0.0, p.price),
                Order::Luxury => (0.0, -p.price),
                Order::BestRated => (0.0, -p.rating),
                Order::BestFit => (-fit(i), -p.rating),
            }
        };
        hits.sort_by(|a, b| {
            let (a, b) = (key(a.index), key(b.index));
            a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1))
        });
        hits.truncate(limit);
    }
    // The "why" of each card names the concerns asked in words too.
    let explained = Search {
        concerns: concerns
            .iter()
            .map(|&c| CONCERNS[c].key.to_owned())
            .collect(),
        ..search.clone()
    };
    let results = hits
        .into_iter()
        .map(|hit| {
            let entry = &products[hit.index];
            // No avoid check: the filter admitted only products whose
            // lists are known and hold none of the avoided ingredients.
            card(
                loaded,
                hit.index,
                hit.score,
                |fits| explained.explain(&entry.product, fits),
                &[],
            )
        })
        .collect();
    Ok(Response::Results {
        id,
        asked: asked_words,
        filters: search.filter_summary(),
        results,
        millis: now() - started,
        unknown_avoid: unknown_avoid_terms(&search.filter.avoid_ingredients, loaded),
        understood,
        // Judged on words typed; the filters' sentence always finds something.
        closeness: if search.text.trim().is_empty() {
            Closeness::Close
        } else {
            ranked.closeness
        },
    })
}

/// How many of the best matches by meaning an order ("cheapest first")
/// rearranges.
const ORDERED_POOL: usize = 100;

/// The avoid terms that name no group and no ingredient in the catalog.
fn unknown_avoid_terms(terms: &[String], loaded: &Loaded) -> Vec<UnknownTerm> {
    let lists = || {
        loaded
            .bundle
            .catalog
            .products
            .iter()
            .filter_map(|p| p.product.ingredients.as_deref())
    };
    terms
        .iter()
        .filter(|term| !is_known_term(term, lists()))
        .map(|term| UnknownTerm {
            term: term.clone(),
            suggestion: did_you_mean(term).map(|g| g.label.to_owned()),
        })
        .collect()
}
