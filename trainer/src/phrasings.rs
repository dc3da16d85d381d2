//! The embedding head's training queries: each intent (a type for a skin
//! type, a concern, an ingredient, fragrance-free, a brand's products, one
//! product) said several ways, the way shoppers write: synonyms and slang
//! ("zits", "crow's feet", "combo skin"), first person ("for my oily
//! T-zone"), negations ("won't dry my skin", "without perfume").
//!
//! Phrasings are drawn with a seeded generator, so a seed fixes them. The
//! held-out suites in `data/eval/` were written apart from these lists;
//! they are read here only to drop a phrasing that happens to equal one of
//! their queries.
//!
//! Long because most of it is word lists (synonyms, slang, sentence frames);
//! they are kept beside the few functions that combine them.

use crate::queries::{fold, product_types, Need, Query};
use milih_catalog::Catalog;
use milih_rank::concerns::CONCERNS;
use milih_rank::vocabulary::{concern_words, type_words, ACTIVES, SKIN_WORDS};
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// "{type} for {skin} skin" and kin.
const TYPE_SKIN_FRAMES: &[&str] = &[
    "{t} for {s} skin",
    "best {t} for {s} skin",
    "{t} for my {s} skin",
    "{s} skin {t}",
    "a good {t} if you have {s} skin",
    "looking for a {t} that suits {s} skin",
];
const TYPE_SKIN_PHRASE_FRAMES: &[&str] = &["{t} for {p}", "a {t} for {p}"];
const SKIN_FRAMES: &[&str] = &[
    "products for {s} skin",
    "what works for {s} skin",
    "skincare for {s} skin",
];
const TYPE_CONCERN_FRAMES: &[&str] = &[
    "{t} for {c}",
    "{t} to help with {c}",
    "best {t} for {c}",
    "i need a {t} for {c}",
    "{t} that targets {c}",
    "{c} {t}",
];
const CONCERN_FRAMES: &[&str] = &[
    "something for {c}",
    "what helps with {c}",
    "how do i deal with {c}",
    "products for {c}",
];
const FRAGRANCE_FREE_FRAMES: &[&str] = &[
    "fragrance-free {t}",
    "unscented {t}",
    "{t} without fragrance",
    "{t} with no added perfume",
    "{t} without parfum",
    "scent free {t}",
];
const ACTIVE_FRAMES: &[&str] = &["{t} with {a}", "{a} {t}", "a {t} containing {a}"];
const BRAND_FRAMES: &[&str] = &["{b} {t}", "{t} by {b}", "{b} {t} recommendations"];

/// Training queries: every intent over the catalog's types, skin types,
/// concerns, actives and brands, each in `per_intent` phrasings drawn from
/// the lists above, and every product by its brand and name. Intents with
/// no relevant product anywhere in `catalog` are left out.
pub fn training_queries(catalog: &Catalog, per_intent: usize, seed: u64) -> Vec<Query> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_9a2a);
    let mut queries = Vec::new();
    let phrase =
        |frames: &[&str], fill: &dyn Fn(&str, &mut ChaCha8Rng) -> String, rng: &mut ChaCha8Rng| {
            let mut texts: Vec<String> = Vec::new();
            for _ in 0..per_intent * 3 {
                if texts.len() == per_intent {
                    break;
                }
                let frame = frames.choose(rng).expect("frames are never empty");
                let text = fill(frame, rng);
                if !texts.contains(&text) {
                    texts.push(text);
                }
            }
            texts
        };
    let pick = |words: &[&'static str], rng: &mut ChaCha8Rng| -> &'static str {
        words.choose(rng).copied().unwrap_or("")
    };
    let types = product_types(catalog);
    for t in &types {
        let tw = type_words(t);
        let tw: Vec<&str> = if tw.is_empty() { vec![] } else { tw.to_vec() };
        let own = t.to_lowercase();
        let type_word = |rng: &mut ChaCha8Rng| -> String {
            if tw.is_empty() {
                own.clone()
            } else {
                pick(&tw, rng).to_owned()
            }
        };
        for (skin, (adjectives, phrases)) in SKIN_WORDS.iter().enumerate() {
            let need = Need {
                types: vec![t.clone()],
                skins: vec![skin],
                ..Need::default()
            };
            let texts = phrase(
                TYPE_SKIN_FRAMES,
                &|f, rng| {
                    f.replace("{t}", &type_word(rng))
                        .replace("{s}", pick(adjectives, rng))
                },
                &mut rng,
            );
            queries.extend(described(texts, &need, usize::MAX));
            let texts = phrase(
                TYPE_SKIN_PHRASE_FRAMES,
                &|f, rng| {
                    f.replace("{t}", &type_word(rng))
                        .replace("{p}", pick(phrases, rng))
                },
                &mut rng,
            );
            queries.extend(described(texts, &need, 1));
            let free = Need {
                free_of_fragrance: true,
                ..need
            };
            let texts = phrase(
                FRAGRANCE_FREE_FRAMES,
                &|f, rng| {
                    format!(
                        "{} for {} skin",
                        f.replace("{t}", &type_word(rng)),
                        pick(adjectives, rng)
                    )
                },
                &mut rng,
            );
            queries.extend(described(texts, &free, 1));
        }
        for (concern, c) in CONCERNS.iter().enumerate() {
            let need = Need {
                types: vec![t.clone()],
                concerns: vec![concern],
                ..Need::default()
            };
            let mut words = concern_words(c.key).to_vec();
            words.push(c.label);
            let texts = phrase(
                TYPE_CONCERN_FRAMES,
                &|f, rng| {
                    f.replace("{t}", &type_word(rng))
                        .replace("{c}", pick(&words, rng))
                },
                &mut rng,
            );
            queries.extend(described(texts, &need, usize::MAX));
        }
        let free = Need {
            types: vec![t.clone()],
            free_of_fragrance: true,
            ..Need::default()
        };
        let texts = phrase(
            FRAGRANCE_FREE_FRAMES,
            &|f, rng| f.replace("{t}", &type_word(rng)),
            &mut rng,
        );
        queries.extend(described(texts, &free, usize::MAX));
        for (names, substrings) in ACTIVES {
            let need = Need {
                types: vec![t.clone()],
                ingredients: substrings.iter().map(|s| fold(s)).collect(),
                ..Need::default()
            };
            let texts = phrase(
                ACTIVE_FRAMES,
                &|f, rng| {
                    f.replace("{t}", &type_word(rng))
                        .replace("{a}", pick(names, rng))
                },
                &mut rng,
            );
            queries.extend(described(texts, &need, 1));
        }
    }
    for (skin, (adjectives, _)) in SKIN_WORDS.iter().enumerate() {
        let need = Need {
            skins: vec![skin],
            ..Need::default()
        };
        let texts = phrase(
            SKIN_FRAMES,
            &|f, rng| f.replace("{s}", pick(adjectives, rng)),
            &mut rng,
        );
        queries.extend(described(texts, &need, usize::MAX));
    }
    for (concern, c) in CONCERNS.iter().enumerate() {
        let need = Need {
            concerns: vec![concern],
            ..Need::default()
        };
        let mut words = concern_words(c.key).to_vec();
        words.push(c.label);
        let texts = phrase(
            CONCERN_FRAMES,
            &|f, rng| f.replace("{c}", pick(&words, rng)),
            &mut rng,
        );
        queries.extend(described(texts, &need, usize::MAX));
    }
    for (names, substrings) in ACTIVES {
        let need = Need {
            ingredients: substrings.iter().map(|s| fold(s)).collect(),
            ..Need::default()
        };
        queries.push(Query::descriptive(
            format!("products with {}", names[0]),
            need,
        ));
    }
    // A brand's products of one type, as shoppers type it ("clinique
    // moisturizer"): named queries, weighed with the product names.
    let mut brand_types: Vec<(String, String)> = catalog
        .products
        .iter()
        .map(|p| (p.brand.clone(), p.product_type.clone()))
        .collect();
    brand_types.sort();
    brand_types.dedup();
    for (brand, t) in brand_types {
        let words = type_words(&t);
        let type_word = if words.is_empty() {
            t.to_lowercase()
        } else {
            pick(words, &mut rng).to_owned()
        };
        let frame = BRAND_FRAMES
            .choose(&mut rng)
            .expect("frames are never empty");
        let text = frame
            .replace("{b}", &brand.to_lowercase())
            .replace("{t}", &type_word);
        let need = Need {
            types: vec![t],
            brand: Some(fold(&brand)),
            ..Need::default()
        };
        queries.push(Query::named(text, need));
    }
    // One product by its brand and name, and by its name alone, as shoppers
    // type a name they saw ("ultra facial cream").
    for p in &catalog.products {
        let need = Need {
            product: Some(p.id),
            ..Need::default()
        };
        queries.push(Query::named(
            format!("{} {}", p.brand, p.name),
            need.clone(),
        ));
        queries.push(Query::named(p.name.clone(), need));
    }
    let facts = crate::queries::Facts::all(catalog);
    queries.retain(|q| facts.iter().any(|f| q.is_relevant(f)));
    // Decontamination: a phrasing that happens to equal a held-out query
    // would leak it into training.
    let held_out: std::collections::HashSet<String> = crate::queries::held_out_suites()
        .map(|suites| {
            suites
                .into_iter()
                .flat_map(|s| s.queries)
                .map(|q| q.text.to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    queries.retain(|q| !held_out.contains(&q.text.to_lowercase()));
    queries
}

/// Descriptive queries of `texts` (at most `take`), all with one need.
fn described(texts: Vec<String>, need: &Need, take: usize) -> impl Iterator<Item = Query> + '_ {
    texts
        .into_iter()
        .take(take)
        .map(move |x| Query::descriptive(x, need.clone()))
}

/// Skin-type names the phrasings use, to check the lists follow
/// [`SKIN_TYPES`].
#[cfg(test)]
fn first_skin_words() -> Vec<&'static str> {
    SKIN_WORDS.iter().map(|(a, _)| a[0]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use milih_catalog::SKIN_TYPES;

    #[test]
    fn skin_words_follow_the_skin_type_order() {
        let expected: Vec<String> = SKIN_TYPES.iter().map(|s| s.to_lowercase()).collect();
        assert_eq!(first_skin_words(), expected);
    }

    #[test]
    fn every_concern_has_shoppers_words() {
        for c in CONCERNS {
            assert!(!concern_words(c.key).is_empty(), "{}", c.key);
        }
    }

    #[test]
    fn phrasings_are_seeded_varied_and_relevant() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/cosmetics.csv");
        let catalog = crate::load_catalog(std::path::Path::new(path), &[]).unwrap();
        let a = training_queries(&catalog, 3, 1);
        assert_eq!(a, training_queries(&catalog, 3, 1));
        assert_ne!(a, training_queries(&catalog, 3, 2));
        let facts = crate::queries::Facts::all(&catalog);
        assert!(a.iter().all(|q| facts.iter().any(|f| q.is_relevant(f))));
        let texts: std::collections::HashSet<&str> = a.iter().map(|q| q.text.as_str()).collect();
        assert!(
            texts.len() > a.len() * 9 / 10,
            "phrasings are mostly distinct"
        );
        // None of the held-out queries is a training phrasing.
        for suite in crate::queries::held_out_suites().unwrap() {
            for q in &suite.queries {
                assert!(
                    !texts.contains(q.text.as_str()),
                    "{:?} is in training",
                    q.text
                );
            }
        }
    }
}
