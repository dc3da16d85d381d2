//! How shoppers say what they want: their words for each product type,
//! skin type, concern and active ingredient. Training phrasings are drawn
//! from these lists, and the page reads the same lists to understand what a
//! search names (a skin type, a type, a concern, an active).

use std::sync::OnceLock;

/// The product types `type_words` knows (the catalog's own words).
pub const PRODUCT_TYPES: [&str; 6] = [
    "Moisturizer",
    "Cleanser",
    "Face Mask",
    "Treatment",
    "Eye cream",
    "Sun protect",
];

/// Words shoppers describe skincare with that name no product, brand or
/// ingredient: a search holding them has not asked for something missing.
pub const GENERAL_WORDS: &[&str] = &[
    "skin",
    "face",
    "facial",
    "eye",
    "eyes",
    "product",
    "products",
    "skincare",
    "routine",
    "gentle",
    "light",
    "lightweight",
    "rich",
    "daily",
    "everyday",
    "day",
    "night",
    "morning",
    "natural",
    "clean",
    "organic",
    "vegan",
    "best",
    "new",
    "nice",
    "great",
    "really",
    "very",
    "won",
    "doesn",
    "don",
    "not",
    "no",
    "free",
    "make",
    "makes",
    "feel",
    "feels",
    "look",
    "looks",
    "help",
    "helps",
    "after",
    "before",
    "under",
    "around",
    "all",
    "every",
    "too",
    // Scent is asked about to be avoided (the avoid groups handle it), never
    // to be matched in a list.
    "fragrance",
    "fragranced",
    "perfume",
    "perfumed",
    "parfum",
    "scent",
    "scented",
    "unscented",
    "scentless",
];

/// How shoppers name each product type of the catalog (the first is the
/// catalog's own word).
pub fn type_words(product_type: &str) -> &'static [&'static str] {
    match product_type {
        "Moisturizer" => &[
            "moisturizer",
            "moisturiser",
            "face cream",
            "day cream",
            "night cream",
            "lotion",
            "gel cream",
            "hydrator",
        ],
        "Cleanser" => &[
            "cleanser",
            "face wash",
            "facial cleanser",
            "cleansing gel",
            "foaming cleanser",
            "cleansing oil",
            "makeup remover",
            "toner",
        ],
        "Face Mask" => &[
            "face mask",
            "mask",
            "sheet mask",
            "overnight mask",
            "clay mask",
            "facial mask",
        ],
        "Treatment" => &[
            "treatment",
            "serum",
            "essence",
            "facial oil",
            "spot treatment",
            "peel",
        ],
        "Eye cream" => &[
            "eye cream",
            "under eye cream",
            "eye gel",
            "eye serum",
            "eye balm",
        ],
        "Sun protect" => &[
            "sunscreen",
            "spf",
            "sunblock",
            "sun cream",
            "sun protection",
            "spf moisturizer",
        ],
        _ => &[],
    }
}

/// How shoppers describe each skin type, in `SKIN_TYPES` order: phrases
/// that complete "for ... skin" and whole phrases.
pub const SKIN_WORDS: [(&[&str], &[&str]); 5] = [
    (
        &["combination", "combo", "mixed"],
        &[
            "an oily t-zone and dry cheeks",
            "skin that is oily in some places and dry in others",
        ],
    ),
    (
        &["dry", "very dry", "flaky", "parched", "dry, tight"],
        &[
            "skin that feels tight after washing",
            "dry flaky patches",
            "something that won't dry my skin out",
        ],
    ),
    (
        &["normal", "balanced", "normal to combination"],
        &[
            "skin without any particular issues",
            "everyday use on normal skin",
        ],
    ),
    (
        &["oily", "greasy", "shiny", "oily, acne-prone"],
        &[
            "an oily face",
            "shine control",
            "skin that gets greasy by midday",
        ],
    ),
    (
        &["sensitive", "reactive", "easily irritated", "delicate"],
        &[
            "skin that reacts to everything",
            "skin that stings easily",
            "sensitive, easily irritated skin",
        ],
    ),
];

/// How shoppers name each concern, by [`crate::concerns::CONCERNS`] key.
pub fn concern_words(key: &str) -> &'static [&'static str] {
    match key {
        "acne" => &[
            "acne",
            "breakouts",
            "pimples",
            "zits",
            "blemishes",
            "spots",
            "acne-prone skin",
            "clogged pores and breakouts",
        ],
        "pores" => &[
            "blackheads",
            "large pores",
            "enlarged pores",
            "congested skin",
            "visible pores",
            "clogged pores",
        ],
        "dark-spots" => &[
            "dark spots",
            "hyperpigmentation",
            "sun spots",
            "age spots",
            "uneven skin tone",
            "acne marks",
            "discoloration",
        ],
        "dullness" => &[
            "dull skin",
            "dullness",
            "a radiant glow",
            "brightening",
            "tired-looking skin",
            "lack of radiance",
        ],
        "wrinkles" => &[
            "fine lines and wrinkles",
            "wrinkles",
            "crow's feet",
            "anti-aging",
            "aging skin",
            "loss of firmness",
            "sagging skin",
        ],
        "dryness" => &[
            "dehydration",
            "dehydrated skin",
            "hydration",
            "lasting moisture",
            "thirsty skin",
            "dry skin",
        ],
        "redness" => &[
            "redness",
            "irritation",
            "rosacea",
            "calming irritated skin",
            "soothing",
            "red blotchy skin",
        ],
        "texture" => &[
            "uneven texture",
            "rough skin",
            "bumpy skin",
            "exfoliation",
            "smoother skin",
            "resurfacing",
        ],
        "dark-circles" => &[
            "dark circles",
            "puffiness",
            "puffy eyes",
            "tired eyes",
            "under-eye bags",
        ],
        "sun" => &[
            "sun protection",
            "uv protection",
            "protection from the sun",
            "preventing sunburn",
        ],
        _ => &[],
    }
}

/// Actives shoppers ask for by name: the words they type and the folded
/// substrings of an ingredient list that contain them.
pub const ACTIVES: &[(&[&str], &[&str])] = &[
    (&["niacinamide", "vitamin b3"], &["niacinamide"]),
    (&["salicylic acid", "bha"], &["salicylic acid"]),
    (&["glycolic acid", "aha"], &["glycolic acid"]),
    (&["lactic acid"], &["lactic acid"]),
    (
        &["retinol", "vitamin a", "retinoid"],
        &["retinol", "retinyl", "retinal"],
    ),
    (&["vitamin c"], &["ascorbic acid", "ascorbyl"]),
    (
        &["hyaluronic acid"],
        &["hyaluronic acid", "sodium hyaluronate"],
    ),
    (&["ceramides", "ceramide"], &["ceramide"]),
    (&["peptides", "peptide"], &["peptide"]),
    (&["squalane"], &["squalane"]),
    (&["benzoyl peroxide"], &["benzoyl peroxide"]),
    (&["sulfur"], &["sulfur"]),
    (&["tea tree", "tea tree oil"], &["tea tree"]),
    (&["charcoal"], &["charcoal"]),
    (&["clay", "kaolin"], &["kaolin", "bentonite"]),
    (&["zinc oxide", "mineral"], &["zinc oxide"]),
    (&["caffeine"], &["caffeine"]),
    (&["centella", "cica"], &["centella asiatica"]),
    (&["shea butter"], &["shea butter", "butyrospermum"]),
    (&["aloe", "aloe vera"], &["aloe"]),
    (&["collagen"], &["collagen"]),
    (&["honey"], &["honey", "mel extract"]),
];

/// A text's words as the phrase finders below read them: each word folded
/// alone ("Crow's" → "crows", "T-zone" → "tzone").
pub fn phrase_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| crate::lexical::fold(w).replace(' ', ""))
        .collect()
}

/// Phrases folded once, each with what it names.
type FoldedPhrases = Vec<(usize, Vec<String>)>;

fn folded(phrases: impl IntoIterator<Item = (usize, &'static str)>) -> FoldedPhrases {
    phrases
        .into_iter()
        .map(|(what, phrase)| (what, phrase_words(phrase)))
        .filter(|(_, words)| !words.is_empty())
        .collect()
}

/// The longest of `phrases` that starts at word `i`, and its length.
fn longest_at(words: &[String], i: usize, phrases: &FoldedPhrases) -> Option<(usize, usize)> {
    phrases
        .iter()
        .filter(|(_, wanted)| words[i..].starts_with(wanted))
        .map(|(what, wanted)| (*what, wanted.len()))
        .max_by_key(|&(_, len)| len)
}

/// A product type named at word `i` ("serum" → Treatment, "face wash" →
/// Cleanser): its index in [`PRODUCT_TYPES`] and the words it takes.
pub fn product_type_at(words: &[String], i: usize) -> Option<(usize, usize)> {
    static PHRASES: OnceLock<FoldedPhrases> = OnceLock::new();
    let phrases = PHRASES.get_or_init(|| {
        folded(
            PRODUCT_TYPES
                .iter()
                .enumerate()
                .flat_map(|(t, name)| type_words(name).iter().map(move |w| (t, *w))),
        )
    });
    longest_at(words, i, phrases)
}

/// A concern named at word `i` ("breakouts" → acne): its index in
/// [`crate::concerns::CONCERNS`] and the words it takes.
pub fn concern_at(words: &[String], i: usize) -> Option<(usize, usize)> {
    static PHRASES: OnceLock<FoldedPhrases> = OnceLock::new();
    let phrases = PHRASES.get_or_init(|| {
        folded(
            crate::concerns::CONCERNS
                .iter()
                .enumerate()
                .flat_map(|(c, concern)| {
                    concern_words(concern.key)
                        .iter()
                        .chain([&concern.phrase])
                        .map(move |w| (c, *w))
                }),
        )
    });
    longest_at(words, i, phrases)
}

/// Skin types named at word `i` as adjectives before "skin" ("oily skin",
/// "dry, sensitive skin", "combo skin"), in `SKIN_TYPES` order, and the
/// words they take with "skin".
pub fn skin_types_at(words: &[String], i: usize) -> Option<(Vec<usize>, usize)> {
    let mut skins = Vec::new();
    let mut j = i;
    while let Some(word) = words.get(j) {
        if word == "skin" && !skins.is_empty() {
            skins.sort_unstable();
            skins.dedup();
            return Some((skins, j + 1 - i));
        }
        let skin = SKIN_WORDS.iter().position(|(adjectives, _)| {
            adjectives
                .iter()
                .any(|a| !a.contains([' ', ',']) && phrase_words(a) == [word.clone()])
        })?;
        skins.push(skin);
        j += 1;
        // "dry and sensitive skin"
        if words.get(j).is_some_and(|w| w == "and") {
            j += 1;
        }
    }
    None
}
