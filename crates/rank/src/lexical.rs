//! Words that count as typed: brand names, product names and ingredient
//! names, matched in the catalog's own text beside the embedding's sense of
//! meaning. An embedding knows "moisturizer for dry skin" well but a brand
//! it never saw, or an INCI name, only vaguely; a word index knows exactly
//! which products hold "clinique" or "niacinamide".
//!
//! Each query word is weighed per field by how rare it is there (inverse
//! document frequency), so "glamglow" weighs a lot as a brand and "cream"
//! little as a name word; [`Fusion`] then weighs the fields against the
//! embedding's score with weights fitted on training queries.
//! A word the catalog lacks is corrected to a catalog word one or two
//! edits away (by length), common names of actives ("vitamin c") also look
//! for their INCI names ([`crate::vocabulary::ACTIVES`]), and a word that
//! names nothing is reported, so the page can say so.

use crate::concerns::CONCERNS;
use crate::vocabulary;
use milih_catalog::Product;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use unicode_normalization_alignments::{char::is_combining_mark, UnicodeNormalization};

/// The fields a word can be found in.
pub const NUM_FIELDS: usize = 3;
pub const BRAND: usize = 0;
pub const NAME: usize = 1;
pub const INGREDIENTS: usize = 2;

/// Words of a query read by name; a pasted page beyond them is left to
/// the embedding, which truncates too.
pub const MAX_QUERY_WORDS: usize = 64;

/// Words that say nothing about a product on their own.
const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "by",
    "can",
    "de",
    "do",
    "does",
    "for",
    "from",
    "get",
    "good",
    "have",
    "i",
    "im",
    "in",
    "is",
    "it",
    "me",
    "my",
    "need",
    "of",
    "on",
    "or",
    "please",
    "s",
    "so",
    "some",
    "something",
    "that",
    "the",
    "this",
    "to",
    "use",
    "want",
    "what",
    "which",
    "will",
    "with",
    "without",
    "won",
    "t",
    "you",
    "your",
];

/// Lower case, accents and punctuation gone, words separated by one space:
/// "Crème de la Mer™" → "creme de la mer", "KIEHL'S" → "kiehl s".
pub fn fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    let mut gap = false;
    // Symbols separate words before decomposition, which would spell "™"
    // as "tm".
    for c in text.chars() {
        if !c.is_alphanumeric() {
            gap = true;
            continue;
        }
        if gap && !folded.is_empty() {
            folded.push(' ');
        }
        gap = false;
        // Nearly every character of a catalog is ASCII, which decomposes
        // to itself (the page folds a whole catalog as it loads).
        if c.is_ascii() {
            folded.push(c.to_ascii_lowercase());
            continue;
        }
        for (part, _) in std::iter::once(c).nfkd() {
            if !is_combining_mark(part) && part.is_alphanumeric() {
                folded.extend(part.to_lowercase());
            }
        }
    }
    folded
}

/// The catalog's words: for each word of a brand, a name or an ingredient
/// list, the products whose field holds it.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    products: usize,
    postings: HashMap<String, [Vec<u32>; NUM_FIELDS]>,
    /// The same words, grouped by their first letter, for typo lookups.
    by_initial: HashMap<char, Vec<String>>,
}

/// One thing the query names: a word (or an active's common name) with
/// the catalog words it may stand for.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// As the shopper typed it (folded).
    pub typed: String,
    /// Alternatives; each is a list of words that must all be in one field.
    pub alternatives: Vec<Vec<String>>,
    /// The term's weight in each field: its rarity there, 0 where absent.
    pub weights: [f32; NUM_FIELDS],
}

/// What the word index read in a query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LexicalQuery {
    pub terms: Vec<Term>,
    /// Describing words also found in product names: they count toward a
    /// name only for products whose name a term already matched.
    pub secondary: Vec<Term>,
    /// Words that name nothing in this catalog and are no shopper's word
    /// for a type, skin type, concern or active ("cetaphil", "xqzv").
    pub unknown: Vec<String>,
    /// Concerns the text names ("breakouts" → acne), as [`CONCERNS`] indices.
    pub concerns: Vec<usize>,
}

impl Lexicon {
    pub fn new<'a>(products: impl IntoIterator<Item = &'a Product>) -> Self {
        let mut postings: HashMap<String, [Vec<u32>; NUM_FIELDS]> = HashMap::new();
        let mut count = 0;
        for (index, product) in products.into_iter().enumerate() {
            count += 1;
            let fields = [
                fold(&product.brand),
                fold(&product.name),
                product.ingredients.as_deref().map(fold).unwrap_or_default(),
            ];
            for (field, text) in fields.iter().enumerate() {
                for word in text.split(' ').filter(|w| !w.is_empty()) {
                    let list = &mut postings.entry(word.to_owned()).or_default()[field];
                    // Products come in order, so a repeat is the last entry.
                    if list.last() != Some(&(index as u32)) {
                        list.push(index as u32);
                    }
                }
            }
        }
        let mut by_initial: HashMap<char, Vec<String>> = HashMap::new();
        for word in postings.keys() {
            if let Some(c) = word.chars().next() {
                by_initial.entry(c).or_default().push(word.clone());
            }
        }
        for words in by_initial.values_mut() {
            words.sort();
        }
        Self {
            products: count,
            postings,
            by_initial,
        }
    }

    /// Reads a query: actives by their common names, every other word as
    /// typed or corrected, the concerns it names, the words it cannot place.
    pub fn analyze(&self, query: &str) -> LexicalQuery {
        let folded = fold(query);
        let all: Vec<&str> = folded
            .split(' ')
            .filter(|w| !w.is_empty())
            .take(MAX_QUERY_WORDS)
            .collect();
        // What the shopper wants left out ("fragrance free", "without
        // parabens") is never a reason to rank a product up.
        let negated = negated_words(&all);
        let mut words: Vec<&str> = all
            .iter()
            .zip(&negated)
            .filter(|(_, &n)| !n)
            .map(|(w, _)| *w)
            .collect();
        let mut terms = Vec::new();
        let mut secondary = Vec::new();
        for (name, alternatives) in actives_by_name() {
            let name_words: Vec<&str> = name.split(' ').collect();
            if let Some(at) = find_phrase(&words, &name_words) {
                terms.push(self.term(name.to_string(), alternatives.clone()));
                words.drain(at..at + name_words.len());
            }
        }
        let concerns = concerns_named(&folded);
        let mut unknown = Vec::new();
        for word in words {
            // Words that describe ("cream", "facial", "oily", "breakouts")
            // are the embedding's and the filters' to read; only words that
            // name something are matched by name.
            if STOPWORDS.contains(&word) {
                continue;
            }
            if is_shopper_word(word) {
                // Yet part of a name once a name is matched ("ultra facial
                // cream" is more than "ultra").
                if self.postings.contains_key(word) {
                    let term = self.term(word.to_owned(), vec![vec![word.to_owned()]]);
                    if term.weights[NAME] > 0.0 {
                        secondary.push(Term {
                            weights: [0.0, term.weights[NAME], 0.0],
                            ..term
                        });
                    }
                }
                continue;
            }
            let alternatives: Vec<Vec<String>> = if self.postings.contains_key(word) {
                vec![vec![word.to_owned()]]
            } else {
                let mut found: Vec<Vec<String>> =
                    self.corrected(word).into_iter().map(|w| vec![w]).collect();
                // "moisturiser" is "moisturizer", "hydrating" is "hydrate":
                // English variants a shopper's word may stand for.
                found.extend(
                    variants(word)
                        .into_iter()
                        .filter_map(|v| self.postings.contains_key(&v).then(|| vec![v])),
                );
                found
            };
            if alternatives.is_empty() {
                if !word.chars().all(|c| c.is_ascii_digit()) {
                    unknown.push(word.to_owned());
                }
                continue;
            }
            terms.push(self.term(word.to_owned(), alternatives));
        }
        terms.retain(|t| t.weights.iter().any(|&w| w > 0.0));
        LexicalQuery {
            terms,
            secondary,
            unknown,
            concerns,
        }
    }

    fn term(&self, typed: String, alternatives: Vec<Vec<String>>) -> Term {
        let mut weights = [0.0; NUM_FIELDS];
        for (field, weight) in weights.iter_mut().enumerate() {
            let df = alternatives
                .iter()
                .map(|words| self.holding(words, field).len())
                .max()
                .unwrap_or(0);
            if df > 0 {
                *weight = (self.products as f32 / df as f32).ln().max(0.0);
            }
        }
        Term {
            typed,
            alternatives,
            weights,
        }
    }

    /// The products whose `field` holds every one of `words`, ascending.
    fn holding(&self, words: &[String], field: usize) -> Vec<u32> {
        let mut lists = words
            .iter()
            .map(|w| self.postings.get(w).map(|p| &p[field]));
        let Some(Some(first)) = lists.next() else {
            return Vec::new();
        };
        let mut kept = first.clone();
        for list in lists {
            let Some(list) = list else { return Vec::new() };
            kept.retain(|i| list.binary_search(i).is_ok());
        }
        kept
    }

    /// Catalog words within one typo (words of 5–7 letters) or two (8 or
    /// more) of `word`, the same first letter kept; the nearest only.
    fn corrected(&self, word: &str) -> Vec<String> {
        let length = word.chars().count();
        let allowed = match length {
            0..=4 => return Vec::new(),
            5..=7 => 1,
            _ => 2,
        };
        let Some(initial) = word.chars().next() else {
            return Vec::new();
        };
        let mut best: Vec<String> = Vec::new();
        let mut best_distance = allowed + 1;
        for candidate in self.by_initial.get(&initial).into_iter().flatten() {
            if candidate.chars().count().abs_diff(length) > allowed {
                continue;
            }
            let distance = strsim::osa_distance(word, candidate);
            if distance < best_distance {
                best_distance = distance;
                best.clear();
            }
            if distance == best_distance {
                best.push(candidate.clone());
            }
        }
        best
    }

    /// Per product, the share of the query's lexical weight it matches in
    /// each field (0–1); products matching nothing are left out.
    pub fn matches(&self, query: &LexicalQuery) -> HashMap<u32, [f32; NUM_FIELDS]> {
        let total: f32 = query
            .terms
            .iter()
            .map(|t| t.weights.iter().copied().fold(0.0, f32::max))
            .sum();
        let mut found: HashMap<u32, [f32; NUM_FIELDS]> = HashMap::new();
        if total <= 0.0 {
            return found;
        }
        let holding_term = |term: &Term, field: usize| -> Vec<u32> {
            let mut products: Vec<u32> = term
                .alternatives
                .iter()
                .flat_map(|words| self.holding(words, field))
                .collect();
            products.sort_unstable();
            products.dedup();
            products
        };
        for term in &query.terms {
            for field in 0..NUM_FIELDS {
                if term.weights[field] <= 0.0 {
                    continue;
                }
                for product in holding_term(term, field) {
                    found.entry(product).or_default()[field] += term.weights[field] / total;
                }
            }
        }
        // A matched name is scored over all the query's name words.
        let secondary_total: f32 = query.secondary.iter().map(|t| t.weights[NAME]).sum();
        if secondary_total > 0.0 {
            let mut extra: HashMap<u32, f32> = HashMap::new();
            for term in &query.secondary {
                for product in holding_term(term, NAME) {
                    *extra.entry(product).or_default() += term.weights[NAME];
                }
            }
            for (product, fields) in found.iter_mut() {
                if fields[NAME] > 0.0 {
                    let matched = fields[NAME] * total + extra.get(product).copied().unwrap_or(0.0);
                    fields[NAME] = matched / (total + secondary_total);
                }
            }
        }
        found
    }
}

/// An active's name as typed, and the words a list may hold for it.
type ActiveName = (&'static str, Vec<Vec<String>>);

/// Actives by the names shoppers type, longest names first ("hyaluronic
/// acid" before "acid"), each with what a list may hold: its INCI names
/// folded, and the name itself. Built once.
fn actives_by_name() -> &'static [ActiveName] {
    static ACTIVES: OnceLock<Vec<ActiveName>> = OnceLock::new();
    ACTIVES.get_or_init(|| {
        let mut actives: Vec<ActiveName> = vocabulary::ACTIVES
            .iter()
            .flat_map(|(names, inci)| {
                names.iter().map(move |name| {
                    let mut alternatives: Vec<Vec<String>> = inci
                        .iter()
                        .map(|i| fold(i).split(' ').map(str::to_owned).collect())
                        .collect();
                    alternatives.push(name.split(' ').map(str::to_owned).collect());
                    (*name, alternatives)
                })
            })
            .collect();
        actives.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
        actives
    })
}

/// Which words are wanted absent: after "without", "no", "non" or "zero"
/// (and the words "or"/"and" join to it), before "free" ("fragrance free"),
/// after "free of".
fn negated_words(words: &[&str]) -> Vec<bool> {
    let mut negated = vec![false; words.len()];
    for (i, word) in words.iter().enumerate() {
        let from = match *word {
            "without" | "no" | "non" | "zero" => Some(i + 1),
            "free" if words.get(i + 1) == Some(&"of") => Some(i + 2),
            "free" if i > 0 => {
                negated[i - 1] = true;
                None
            }
            _ => None,
        };
        let Some(mut j) = from else { continue };
        while j < words.len() {
            negated[j] = true;
            if matches!(words.get(j + 1), Some(&"or") | Some(&"and")) {
                j += 2;
            } else {
                break;
            }
        }
    }
    negated
}

/// Where `phrase` starts among `words`, if it does.
fn find_phrase(words: &[&str], phrase: &[&str]) -> Option<usize> {
    (0..words.len()).find(|&i| words[i..].starts_with(phrase))
}

/// British and inflected spellings a word may stand for.
fn variants(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    if word.contains("is") {
        out.push(word.replacen("ise", "ize", 1));
        out.push(word.replacen("isi", "izi", 1));
    }
    for (end, stem) in [("s", ""), ("es", ""), ("ing", ""), ("ing", "e")] {
        if let Some(root) = word.strip_suffix(end) {
            if root.len() >= 3 {
                out.push(format!("{root}{stem}"));
            }
        }
    }
    out.retain(|v| v != word);
    out
}

/// Whether a shopper's word for a type, a skin type or a concern, or a
/// general word of skincare talk: words the embedding reads. (Actives are
/// ingredients' names, matched by name.)
fn is_shopper_word(word: &str) -> bool {
    static WORDS: OnceLock<HashSet<String>> = OnceLock::new();
    WORDS
        .get_or_init(|| {
            let mut phrases: Vec<&str> = Vec::new();
            for t in vocabulary::PRODUCT_TYPES {
                phrases.extend(vocabulary::type_words(t));
            }
            for (adjectives, sentences) in vocabulary::SKIN_WORDS {
                phrases.extend(adjectives.iter().chain(sentences.iter()));
            }
            for c in CONCERNS {
                phrases.extend(vocabulary::concern_words(c.key));
                phrases.push(c.phrase);
            }
            phrases.extend(vocabulary::GENERAL_WORDS);
            phrases
                .iter()
                .flat_map(|p| fold(p).split(' ').map(str::to_owned).collect::<Vec<_>>())
                .collect()
        })
        .contains(word)
}

/// The concerns a text names in a shopper's words, by index, each once.
pub fn concerns_named(text: &str) -> Vec<usize> {
    let words = vocabulary::phrase_words(text);
    let mut found = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match vocabulary::concern_at(&words, i) {
            Some((concern, len)) => {
                if !found.contains(&concern) {
                    found.push(concern);
                }
                i += len;
            }
            None => i += 1,
        }
    }
    found
}

/// How the embedding's score and the word matches add up to a product's
/// rank. Fitted on training queries (`trainer`), shipped in the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fusion {
    /// Added per unit of the query's weight matched in each field.
    pub fields: [f32; NUM_FIELDS],
    /// Added when the product holds an active for a concern asked for.
    pub concern: f32,
}

impl Default for Fusion {
    /// The embedding alone.
    fn default() -> Self {
        Self {
            fields: [0.0; NUM_FIELDS],
            concern: 0.0,
        }
    }
}

impl Fusion {
    pub fn score(&self, dense: f32, fields: [f32; NUM_FIELDS], concern: bool) -> f32 {
        let lexical: f32 = self.fields.iter().zip(fields).map(|(w, f)| w * f).sum();
        dense + lexical + if concern { self.concern } else { 0.0 }
    }

    /// Whether it adds anything to the embedding.
    pub fn is_dense_only(&self) -> bool {
        self.fields.iter().all(|&w| w == 0.0) && self.concern == 0.0
    }
}

/// What a bundle says about ranking searches: the fusion, and the best
/// embedding score under which a search has found nothing close.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    pub fusion: Fusion,
    /// 0 (never) where the bundle predates it.
    pub nothing_close_below: f32,
}

/// How well a search's results answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Closeness {
    Close,
    /// Some words name nothing in the catalog ("cetaphil"): the results are
    /// close in meaning to the rest.
    UnknownWords(Vec<String>),
    /// No word matched and the best match is weak: nothing is close.
    NothingClose,
}

impl Ranking {
    /// Judges a search from what the word index read, whether any product
    /// matched a word, and the embedding's best score. `is_common` tells
    /// ordinary words of the language ("thirsty", "tired"), which describe
    /// rather than name, from names and misspellings ("cetaphil"): the
    /// model's tokenizer knows the first as whole words.
    pub fn closeness(
        &self,
        read: &LexicalQuery,
        any_match: bool,
        best_dense: f32,
        is_common: impl Fn(&str) -> bool,
    ) -> Closeness {
        let unknown: Vec<String> = read
            .unknown
            .iter()
            .filter(|w| !is_common(w))
            .cloned()
            .collect();
        if !any_match && best_dense < self.nothing_close_below {
            Closeness::NothingClose
        } else if !unknown.is_empty() {
            Closeness::UnknownWords(unknown)
        } else {
            Closeness::Close
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(brand: &str, name: &str, ingredients: &str) -> Product {
        Product {
            id: 0,
            product_type: "Moisturizer".into(),
            brand: brand.into(),
            name: name.into(),
            price: 20.0,
            rating: 4.0,
            ingredients: Some(ingredients.into()).filter(|i: &String| !i.is_empty()),
            skin_labels: None,
        }
    }

    fn catalog() -> Vec<Product> {
        vec![
            product("CLINIQUE", "Moisture Surge", "Water, Glycerin"),
            product(
                "KIEHL'S SINCE 1851",
                "Ultra Facial Cream",
                "Water, Squalane",
            ),
            product("LA MER", "Crème de la Mer", "Water, Sodium Hyaluronate"),
            product("TATCHA", "The Water Cream", "Water, Niacinamide"),
            product("FRESH", "Rose Face Mask", "Water, Ascorbic Acid"),
        ]
    }

    #[test]
    fn folding_ignores_case_accents_and_punctuation() {
        assert_eq!(fold("LANCÔME"), "lancome");
        assert_eq!(fold("SK-II"), "sk ii");
        assert_eq!(fold("Crème de la Mer™"), "creme de la mer");
        assert_eq!(fold("KIEHL'S SINCE 1851"), "kiehl s since 1851");
        assert_eq!(fold("  "), "");
    }

    #[test]
    fn a_brand_matches_its_products_only_in_the_brand_field() {
        let products = catalog();
        let lexicon = Lexicon::new(&products);
        let query = lexicon.analyze("clinique moisturizer");
        let found = lexicon.matches(&query);
        assert_eq!(found.len(), 1);
        assert!(found[&0][BRAND] > 0.9, "{found:?}");
        assert!(query.unknown.is_empty(), "a type word is not unknown");
        assert_eq!(
            query.terms.len(),
            1,
            "a type word is the embedding's to read"
        );
    }

    #[test]
    fn typos_are_corrected_by_length() {
        let products = catalog();
        let lexicon = Lexicon::new(&products);
        // One typo in a 7-letter word, two in a 10-letter one.
        assert!(lexicon
            .matches(&lexicon.analyze("cliniqe"))
            .contains_key(&0));
        assert!(lexicon
            .matches(&lexicon.analyze("niacinimde"))
            .contains_key(&3));
        // Four letters: no correction, and the word is unknown.
        let query = lexicon.analyze("rsoe");
        assert!(lexicon.matches(&query).is_empty());
        assert_eq!(query.unknown, vec!["rsoe"]);
    }

    #[test]
    fn common_names_find_inci_names() {
        let products = catalog();
        let lexicon = Lexicon::new(&products);
        let found = lexicon.matches(&lexicon.analyze("vitamin c serum"));
        assert!(found[&4][INGREDIENTS] > 0.0);
        let found = lexicon.matches(&lexicon.analyze("hyaluronic acid"));
        assert!(found[&2][INGREDIENTS] > 0.0, "{found:?}");
    }

    #[test]
    fn a_word_the_catalog_lacks_is_unknown_unless_a_shopper_word() {
        let products = catalog();
        let lexicon = Lexicon::new(&products);
        let query = lexicon.analyze("Cetaphil gentle cleanser for my oily skin");
        assert_eq!(query.unknown, vec!["cetaphil"]);
        assert!(lexicon.analyze("").terms.is_empty());
    }

    #[test]
    fn a_pasted_page_is_read_up_to_a_bound() {
        let products = catalog();
        let lexicon = Lexicon::new(&products);
        let long = "zzzzzz ".repeat(10_000) + "tatcha";
        let query = lexicon.analyze(&long);
        assert!(query.terms.is_empty());
        assert_eq!(query.unknown.len(), MAX_QUERY_WORDS);
    }

    #[test]
    fn what_is_wanted_absent_is_never_matched() {
        let products = vec![
            product("ALPHA", "Calm Cream", "Water, Fragrance"),
            product("BETA", "Clear Serum", "Water, Niacinamide, Parabens"),
        ];
        let lexicon = Lexicon::new(&products);
        for text in [
            "fragrance free cream",
            "fragrance-free cream",
            "cream without fragrance",
            "cream with no niacinamide or parabens",
            "cream free of fragrance",
        ] {
            let found = lexicon.matches(&lexicon.analyze(text));
            assert!(
                found.values().all(|f| f[INGREDIENTS] == 0.0),
                "{text}: {found:?}"
            );
        }
    }

    #[test]
    fn describing_words_complete_a_matched_name_only() {
        let products = vec![
            product("KIEHL'S", "Ultra Facial Cream", "Water"),
            product("FIRST AID BEAUTY", "Ultra Repair Cream", "Water"),
            product("TATCHA", "Facial Cream", "Water"),
        ];
        let lexicon = Lexicon::new(&products);
        let found = lexicon.matches(&lexicon.analyze("ultra facial cream"));
        assert!(found[&0][NAME] > found[&1][NAME], "{found:?}");
        assert!(!found.contains_key(&2), "no name word of its own matched");
        // Describing words alone match nothing by name.
        assert!(lexicon.matches(&lexicon.analyze("facial cream")).is_empty());
    }

    #[test]
    fn rare_words_weigh_more_than_common_ones() {
        let products = catalog();
        let lexicon = Lexicon::new(&products);
        let query = lexicon.analyze("tatcha water");
        let tatcha = &query.terms[0];
        let water = &query.terms[1];
        assert!(tatcha.weights[BRAND] > water.weights[INGREDIENTS]);
        assert_eq!(
            water.weights[INGREDIENTS], 0.0,
            "in every list: says nothing"
        );
    }

    #[test]
    fn concerns_are_read_in_shoppers_words() {
        let acne = CONCERNS.iter().position(|c| c.key == "acne").unwrap();
        assert_eq!(concerns_named(&fold("serum for my Breakouts!")), vec![acne]);
        assert!(concerns_named("moisturizer").is_empty());
    }

    #[test]
    fn closeness_names_unknown_words_and_weak_matches() {
        let ranking = Ranking {
            fusion: Fusion::default(),
            nothing_close_below: 0.4,
        };
        let products = catalog();
        let lexicon = Lexicon::new(&products);
        let common = |w: &str| w == "thirsty";
        let read = lexicon.analyze("xqzvw");
        assert_eq!(
            ranking.closeness(&read, false, 0.26, common),
            Closeness::NothingClose
        );
        let read = lexicon.analyze("cetaphil cream for thirsty skin");
        assert_eq!(
            ranking.closeness(&read, true, 0.5, common),
            Closeness::UnknownWords(vec!["cetaphil".into()])
        );
        let read = lexicon.analyze("clinique");
        assert_eq!(
            ranking.closeness(&read, true, 0.3, common),
            Closeness::Close
        );
    }

    #[test]
    fn fusion_adds_weighted_matches_to_the_embedding() {
        let fusion = Fusion {
            fields: [0.5, 0.2, 0.1],
            concern: 0.05,
        };
        assert!((fusion.score(0.3, [1.0, 0.0, 0.5], true) - 0.9).abs() < 1e-6);
        assert!(Fusion::default().is_dense_only());
        assert_eq!(Fusion::default().score(0.3, [1.0; NUM_FIELDS], true), 0.3);
    }
}
