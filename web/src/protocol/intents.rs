//! Wishes said in free text, shown to the shopper as chips they can remove:
//! price and rating ("under $20", "cheap", "best rated", "4 stars and up")
//! and skin types ("for my oily skin") are no description of a product, so
//! they leave the text the model embeds and become filters or an order;
//! product types ("serum") and concerns ("breakouts") stay in the text, as
//! they describe what is sought, and also become a type filter and a concern.

use milih_catalog::SKIN_TYPES;
use milih_rank::avoid::{AvoidGroup, AVOID_GROUPS};
use milih_rank::concerns::CONCERNS;
use milih_rank::vocabulary::{
    concern_at, phrase_words, product_type_at, skin_types_at, PRODUCT_TYPES,
};
use serde::{Deserialize, Serialize};

/// One wish understood in the text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Wish {
    MaxPrice(f32),
    MinPrice(f32),
    MinRating(f32),
    /// Cheapest first among the good matches.
    Cheapest,
    /// Most expensive first among the good matches.
    Luxury,
    /// Best rated first among the good matches.
    BestRated,
    /// A skin type, by index into `SKIN_TYPES`.
    Skin(usize),
    /// A product type, by index into `PRODUCT_TYPES`.
    Type(usize),
    /// A concern, by index into `CONCERNS`.
    Concern(usize),
    /// An avoid group ("fragrance free", "without parabens"), by index into
    /// `AVOID_GROUPS`.
    Avoid(usize),
}

impl Wish {
    /// What the chip says.
    pub fn words(self) -> String {
        match self {
            Wish::MaxPrice(p) => format!("price at most ${p}"),
            Wish::MinPrice(p) => format!("price at least ${p}"),
            Wish::MinRating(r) => format!("{r}+ stars"),
            Wish::Cheapest => "cheapest first".into(),
            Wish::Luxury => "most expensive first".into(),
            Wish::BestRated => "best rated first".into(),
            Wish::Skin(i) => format!(
                "for {} skin",
                SKIN_TYPES.get(i).copied().unwrap_or("any").to_lowercase()
            ),
            Wish::Type(i) => format!(
                "type: {}",
                PRODUCT_TYPES
                    .get(i)
                    .copied()
                    .unwrap_or("any")
                    .to_lowercase()
            ),
            Wish::Concern(i) => format!("for {}", CONCERNS.get(i).map_or("a concern", |c| c.label)),
            Wish::Avoid(i) => format!(
                "without {}",
                AVOID_GROUPS.get(i).map_or("these", |g| g.label)
            ),
        }
    }
}

/// A wish and the words of the text it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Understood {
    pub wish: Wish,
    /// The phrase as typed, so that removing the chip removes it.
    pub phrase: String,
}

const CHEAP: [&str; 6] = [
    "cheap",
    "cheapest",
    "affordable",
    "inexpensive",
    "budget",
    "drugstore",
];
const LUXURY: [&str; 3] = ["luxury", "luxurious", "splurge"];
const BEST_RATED: [&[&str]; 6] = [
    &["best", "rated"],
    &["top", "rated"],
    &["highest", "rated"],
    &["best", "reviewed"],
    &["top-rated"],
    &["best-rated"],
];
const AT_MOST: [&[&str]; 7] = [
    &["under"],
    &["below"],
    &["less", "than"],
    &["cheaper", "than"],
    &["up", "to"],
    &["max"],
    &["at", "most"],
];
const AT_LEAST: [&[&str]; 4] = [&["over"], &["above"], &["more", "than"], &["at", "least"]];
/// Words that lead to a skin type ("for my oily skin").
const LEADS_TO_SKIN: [&str; 3] = ["for", "my", "your"];
const CURRENCY_WORDS: [&str; 4] = ["dollars", "dollar", "usd", "bucks"];
const STAR_WORDS: [&str; 2] = ["stars", "star"];
const AND_UP: [&[&str]; 4] = [
    &["and", "up"],
    &["or", "more"],
    &["and", "above"],
    &["or", "higher"],
];

/// The text without its wishes, and the wishes, in the order they appear.
pub fn understand(text: &str) -> (String, Vec<Understood>) {
    let words: Vec<&str> = text.split_whitespace().collect();
    let lower: Vec<String> = words
        .iter()
        .map(|w| {
            w.trim_matches(|c: char| matches!(c, ',' | '.' | '!' | '?'))
                .to_lowercase()
        })
        .collect();
    let folded: Vec<String> = words.iter().map(|w| phrase_words(w).concat()).collect();
    let mut kept = Vec::new();
    let mut found = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let phrase = |len: usize| words[i..i + len].join(" ");
        if let Some((wish, len)) = wish_at(&lower, i) {
            found.push(Understood {
                wish,
                phrase: phrase(len),
            });
            i += len;
        } else if let Some((group, len)) = avoid_at(&lower, i) {
            found.push(Understood {
                wish: Wish::Avoid(group),
                phrase: phrase(len),
            });
            i += len;
        } else if let Some((skins, len)) = skin_types_at(&folded, i) {
            // "for my oily skin" goes whole: the words leading to it say
            // nothing once the skin type is a filter.
            let mut start = i;
            while start > 0
                && LEADS_TO_SKIN.contains(&lower[start - 1].as_str())
                && kept.last() == Some(&words[start - 1])
            {
                kept.pop();
                start -= 1;
            }
            let phrase = words[start..i + len].join(" ");
            found.extend(skins.into_iter().map(|s| Understood {
                wish: Wish::Skin(s),
                phrase: phrase.clone(),
            }));
            i += len;
        } else if let Some((wish, len)) = product_type_at(&folded, i)
            .map(|(t, len)| (Wish::Type(t), len))
            .or_else(|| concern_at(&folded, i).map(|(c, len)| (Wish::Concern(c), len)))
        {
            // Descriptive: the words stay for the model to read.
            found.push(Understood {
                wish,
                phrase: phrase(len),
            });
            kept.extend(&words[i..i + len]);
            i += len;
        } else {
            kept.push(words[i]);
            i += 1;
        }
    }
    (kept.join(" "), found)
}

/// The wish that starts at word `i`, and how many words it takes.
fn wish_at(words: &[String], i: usize) -> Option<(Wish, usize)> {
    let starts = |phrase: &[&str]| {
        phrase.len() <= words.len() - i && phrase.iter().zip(&words[i..]).all(|(p, w)| p == w)
    };
    // "4 stars and up", "4+ stars", "4.5 stars"
    if let Some((stars, used)) = rating_at(words, i) {
        return Some((Wish::MinRating(stars), used));
    }
    for phrase in AT_MOST {
        if starts(phrase) {
            if let Some((price, used)) = price_at(words, i + phrase.len()) {
                return Some((Wish::MaxPrice(price), phrase.len() + used));
            }
        }
    }
    for phrase in AT_LEAST {
        if starts(phrase) {
            if let Some((price, used)) = price_at(words, i + phrase.len()) {
                return Some((Wish::MinPrice(price), phrase.len() + used));
            }
        }
    }
    if let Some(phrase) = BEST_RATED.iter().find(|p| starts(p)) {
        return Some((Wish::BestRated, phrase.len()));
    }
    if CHEAP.contains(&words[i].as_str()) {
        return Some((Wish::Cheapest, 1));
    }
    if LUXURY.contains(&words[i].as_str()) {
        return Some((Wish::Luxury, 1));
    }
    None
}

/// An avoid group named at word `i` as something to leave out
/// ("fragrance-free", "paraben free", "without sulfates", "no perfume"):
/// its index in `AVOID_GROUPS` and the words it takes.
fn avoid_at(words: &[String], i: usize) -> Option<(usize, usize)> {
    let group = |word: &str| {
        AvoidGroup::named(word).and_then(|g| AVOID_GROUPS.iter().position(|a| a.key == g.key))
    };
    let word = words[i].as_str();
    if let Some(named) = word.strip_suffix("-free") {
        return group(named).map(|g| (g, 1));
    }
    if matches!(word, "without" | "no") {
        return words.get(i + 1).and_then(|w| group(w)).map(|g| (g, 2));
    }
    if words.get(i + 1).is_some_and(|w| w == "free") {
        return group(word).map(|g| (g, 2));
    }
    None
}

/// A price at word `i` ("$20", "20", "20$", "20 dollars"), and the words it
/// takes. A bare number needs a currency word after it or a "$" on it.
fn price_at(words: &[String], i: usize) -> Option<(f32, usize)> {
    let word = words.get(i)?;
    let has_sign = word.starts_with('$') || word.ends_with('$');
    let number: f32 = word.trim_matches('$').parse().ok()?;
    if !(number.is_finite() && number >= 0.0) {
        return None;
    }
    let currency_after = words
        .get(i + 1)
        .is_some_and(|w| CURRENCY_WORDS.contains(&w.as_str()));
    match (has_sign, currency_after) {
        (_, true) => Some((number, 2)),
        (true, false) => Some((number, 1)),
        (false, false) => None,
    }
}

/// A minimum rating at word `i` ("4 stars and up", "4+ stars", "4.5
/// stars"), and the words it takes.
fn rating_at(words: &[String], i: usize) -> Option<(f32, usize)> {
    let number: f32 = words.get(i)?.trim_end_matches('+').parse().ok()?;
    if !(0.0..=5.0).contains(&number) {
        return None;
    }
    if !words
        .get(i + 1)
        .is_some_and(|w| STAR_WORDS.contains(&w.as_str()))
    {
        return None;
    }
    let rest = &words[(i + 2).min(words.len())..];
    let tail = AND_UP
        .iter()
        .find(|p| p.len() <= rest.len() && p.iter().zip(rest).all(|(a, b)| a == b))
        .map_or(0, |p| p.len());
    Some((number, 2 + tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text left and the price and rating wishes (the words' other
    /// wishes are tested apart).
    fn wishes(text: &str) -> (String, Vec<Wish>) {
        let (rest, found) = understand(text);
        let priced = found
            .into_iter()
            .map(|u| u.wish)
            .filter(|w| {
                !matches!(
                    w,
                    Wish::Skin(_) | Wish::Type(_) | Wish::Concern(_) | Wish::Avoid(_)
                )
            })
            .collect();
        (rest, priced)
    }

    fn position<T>(list: &[T], wanted: impl Fn(&T) -> bool) -> usize {
        list.iter().position(wanted).unwrap()
    }

    #[test]
    fn what_to_leave_out_becomes_an_avoid_chip() {
        let fragrance = position(AVOID_GROUPS, |g| g.key == "fragrance");
        let parabens = position(AVOID_GROUPS, |g| g.key == "parabens");
        for text in [
            "fragrance-free lotion",
            "Fragrance free lotion",
            "lotion without perfume",
            "lotion, no fragrance",
        ] {
            let (rest, found) = understand(text);
            let wishes: Vec<Wish> = found.iter().map(|u| u.wish).collect();
            assert!(
                wishes.contains(&Wish::Avoid(fragrance)),
                "{text}: {wishes:?}"
            );
            assert!(!rest.to_lowercase().contains("fragrance"), "{text}: {rest}");
        }
        let (_, found) = understand("paraben-free serum");
        assert_eq!(found[0].wish, Wish::Avoid(parabens));
        assert_eq!(found[0].wish.words(), "without parabens");
        // Words that only look alike stay words.
        assert!(understand("no makeup look")
            .1
            .iter()
            .all(|u| !matches!(u.wish, Wish::Avoid(_))));
    }

    #[test]
    fn skin_types_types_and_concerns_become_chips() {
        let oily = position(&SKIN_TYPES, |s| *s == "Oily");
        let dry = position(&SKIN_TYPES, |s| *s == "Dry");
        let sensitive = position(&SKIN_TYPES, |s| *s == "Sensitive");
        let treatment = position(&PRODUCT_TYPES, |t| *t == "Treatment");
        let eye = position(&PRODUCT_TYPES, |t| *t == "Eye cream");
        let acne = position(CONCERNS, |c| c.key == "acne");
        let (rest, found) = understand("Serum for my oily skin and breakouts");
        let wishes: Vec<Wish> = found.iter().map(|u| u.wish).collect();
        assert_eq!(
            wishes,
            [Wish::Type(treatment), Wish::Skin(oily), Wish::Concern(acne)]
        );
        // The skin type leaves the text; the type and the concern stay.
        assert_eq!(rest, "Serum and breakouts");
        assert_eq!(found[1].phrase, "for my oily skin");
        assert_eq!(found[1].wish.words(), "for oily skin");
        assert_eq!(found[2].wish.words(), "for acne and blemishes");
        let (_, found) = understand("cream for dry, sensitive skin under eye cream");
        let wishes: Vec<Wish> = found.iter().map(|u| u.wish).collect();
        assert_eq!(
            wishes,
            [Wish::Skin(dry), Wish::Skin(sensitive), Wish::Type(eye)]
        );
        assert_eq!(found[0].phrase, "for dry, sensitive skin");
        // No adjective, no skin type; a lone "cream" is no type.
        assert!(understand("skin cream").1.is_empty());
    }

    #[test]
    fn prices_said_many_ways() {
        assert_eq!(
            wishes("moisturizer under $20"),
            ("moisturizer".into(), vec![Wish::MaxPrice(20.0)])
        );
        assert_eq!(
            wishes("serum less than 30 dollars"),
            ("serum".into(), vec![Wish::MaxPrice(30.0)])
        );
        assert_eq!(
            wishes("over $100 night cream"),
            ("night cream".into(), vec![Wish::MinPrice(100.0)])
        );
        assert_eq!(
            wishes("cheap moisturizer"),
            ("moisturizer".into(), vec![Wish::Cheapest])
        );
        assert_eq!(
            wishes("Affordable toner."),
            ("toner.".into(), vec![Wish::Cheapest])
        );
        assert_eq!(
            wishes("luxury eye cream"),
            ("eye cream".into(), vec![Wish::Luxury])
        );
    }

    #[test]
    fn ratings_said_many_ways() {
        assert_eq!(
            wishes("best rated cleanser"),
            ("cleanser".into(), vec![Wish::BestRated])
        );
        assert_eq!(
            wishes("top rated serum"),
            ("serum".into(), vec![Wish::BestRated])
        );
        assert_eq!(
            wishes("mask 4 stars and up"),
            ("mask".into(), vec![Wish::MinRating(4.0)])
        );
        assert_eq!(
            wishes("4.5+ stars sunscreen"),
            ("sunscreen".into(), vec![Wish::MinRating(4.5)])
        );
    }

    #[test]
    fn numbers_and_words_that_are_not_wishes_stay() {
        for text in [
            "spf 50 sunscreen",
            "vitamin c 15 serum",
            "under eye cream",
            "cream for over 40 skin",
            "10 step routine",
        ] {
            assert_eq!(wishes(text), (text.into(), vec![]), "{text}");
        }
    }

    #[test]
    fn the_phrase_is_kept_as_typed_for_its_chip() {
        let (rest, found) = understand("Gentle cleanser UNDER $25, 4 stars or more");
        assert_eq!(rest, "Gentle cleanser");
        assert_eq!(found[0].phrase, "cleanser");
        assert_eq!(found[1].phrase, "UNDER $25,");
        assert_eq!(found[1].wish.words(), "price at most $25");
        assert_eq!(found[2].phrase, "4 stars or more");
        assert_eq!(found[2].wish.words(), "4+ stars");
    }
}
