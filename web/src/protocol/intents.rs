//! Price and rating wishes said in free text ("under $20", "cheap", "best
//! rated", "4 stars and up"). They are not descriptions of a product, so
//! they are taken out of the text the model embeds and become filters or an
//! order, shown to the shopper as chips they can remove.

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
    let mut kept = Vec::new();
    let mut found = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match wish_at(&lower, i) {
            Some((wish, len)) => {
                found.push(Understood {
                    wish,
                    phrase: words[i..i + len].join(" "),
                });
                i += len;
            }
            None => {
                kept.push(words[i]);
                i += 1;
            }
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

    fn wishes(text: &str) -> (String, Vec<Wish>) {
        let (rest, found) = understand(text);
        (rest, found.into_iter().map(|u| u.wish).collect())
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
        assert_eq!(found[0].phrase, "UNDER $25,");
        assert_eq!(found[0].wish.words(), "price at most $25");
        assert_eq!(found[1].phrase, "4 stars or more");
        assert_eq!(found[1].wish.words(), "4+ stars");
    }
}
