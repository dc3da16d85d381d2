//! A search in words: the sentence the model embeds, and why a product
//! answers it.

use super::intents::{understand, Understood, Wish};
use super::*;
use milih_catalog::{Product, SKIN_TYPES};
use milih_rank::avoid::{AvoidGroup, AVOID_GROUPS};
use milih_rank::concerns::Concern;
use milih_rank::skin::Answer;
use milih_rank::vocabulary::PRODUCT_TYPES;
use milih_rank::wording;
use milih_rank::SkinFit;

/// Longest query text embedded; the model truncates tokens anyway, this
/// bounds the work of tokenizing pasted novels.
pub const MAX_QUERY_CHARS: usize = 2_000;

impl Search {
    /// The sentence the model embeds: the free text, then what the filters
    /// and concerns say, e.g. "gentle | moisturizer for dry skin | acne", with
    /// each concern in the words the embedding head learned for it.
    /// Empty when the user has asked for nothing.
    pub fn query_text(&self) -> String {
        let mut parts = vec![self.clean_text(), self.kind_words()];
        let concerns: Vec<&str> = self.concerns().map(|c| c.phrase).collect();
        parts.push(concerns.join(", "));
        parts.retain(|p| !p.is_empty());
        parts.join(" | ")
    }

    /// The free text bounded, control characters (tabs, newlines, escapes)
    /// as spaces, each run of spaces as one.
    fn clean_text(&self) -> String {
        let text: String = self
            .text
            .chars()
            .take(MAX_QUERY_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// What the type and skin-type filters ask, e.g. "moisturizer for dry
    /// skin"; empty without either.
    fn kind_words(&self) -> String {
        let types: Vec<&str> = self
            .filter
            .product_types
            .iter()
            .map(String::as_str)
            .collect();
        let skins: Vec<&str> = self
            .filter
            .skin_types
            .iter()
            .filter_map(|&i| SKIN_TYPES.get(i).copied())
            .collect();
        if skins.is_empty() {
            types.join(" or ").to_lowercase()
        } else {
            wording::for_skin(&types, &skins)
        }
    }
}

impl Search {
    /// The known concerns of the search.
    pub fn concerns(&self) -> impl Iterator<Item = &'static Concern> + '_ {
        self.concerns.iter().filter_map(|k| Concern::by_key(k))
    }

    /// Why `product` answers this search, in words, and the ingredients of
    /// its list that address the search's concerns.
    pub fn explain(&self, product: &Product, fits: &[SkinFit]) -> Explanation {
        let mut reasons = Vec::new();
        let mut matched = Vec::new();
        for concern in self.concerns() {
            let found = concern.matches(product);
            if !found.is_empty() {
                reasons.push(format!("{} for {}", found.join(", "), concern.label));
                matched.extend(found.into_iter().map(str::to_owned));
            }
        }
        for &skin in &self.filter.skin_types {
            let (Some(name), Some(fit)) = (SKIN_TYPES.get(skin), fits.get(skin)) else {
                continue;
            };
            reasons.push(match fit {
                SkinFit::Labeled(true) => format!("labeled for {} skin", name.to_lowercase()),
                SkinFit::Predicted {
                    answer: Answer::Unknown,
                    ..
                } => format!(
                    "no label for {} skin, and the model cannot tell",
                    name.to_lowercase()
                ),
                SkinFit::Predicted { answer, .. } => {
                    format!(
                        "predicted {} for {} skin",
                        answer.word(),
                        name.to_lowercase()
                    )
                }
                SkinFit::Labeled(false) => continue,
            });
        }
        let haystack = format!("{} {}", product.name, product.product_type).to_lowercase();
        let mut words: Vec<String> = Vec::new();
        for word in self.text.split(|c: char| !c.is_alphanumeric()) {
            let word = word.to_lowercase();
            if word.chars().count() >= 4 && haystack.contains(&word) && !words.contains(&word) {
                words.push(word);
            }
        }
        if !words.is_empty() {
            let quoted: Vec<String> = words.iter().take(3).map(|w| format!("“{w}”")).collect();
            reasons.push(format!("mentions {}", quoted.join(", ")));
        }
        if reasons.is_empty() {
            reasons.push("close in meaning to your search".into());
        }
        matched.dedup();
        Explanation {
            why: reasons.join(" · "),
            matched,
        }
    }

    /// The filters that do not shape the query text, in words, e.g.
    /// "$20–60 · 4+ stars · without fragrance, parabens"; empty without any.
    pub fn filter_summary(&self) -> String {
        let f = &self.filter;
        let mut parts = Vec::new();
        match (f.min_price, f.max_price) {
            (Some(min), Some(max)) => parts.push(format!("${min}–{max}")),
            (Some(min), None) => parts.push(format!("${min} or more")),
            (None, Some(max)) => parts.push(format!("up to ${max}")),
            (None, None) => {}
        }
        if let Some(rating) = f.min_rating {
            parts.push(format!("{rating}+ stars"));
        }
        let avoided: Vec<&str> = f
            .avoid_ingredients
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .collect();
        if !avoided.is_empty() {
            parts.push(format!("without {}", avoided.join(", ")));
        }
        parts.join(" · ")
    }
}

impl Search {
    /// What was asked, in the shopper's words, for the results' heading: the
    /// text as typed, in quotes, then what the form chose, e.g. "“rich night
    /// cream” · moisturizer for dry skin · for acne and blemishes".
    pub fn asked_words(&self) -> String {
        let text = self.clean_text();
        let mut parts = Vec::new();
        if !text.is_empty() {
            parts.push(format!("“{text}”"));
        }
        parts.push(self.kind_words());
        parts.extend(self.concerns().map(|c| format!("for {}", c.label)));
        parts.retain(|p| !p.is_empty());
        parts.join(" · ")
    }
}

/// Why no product can match, when the price bounds contradict each other.
pub fn price_conflict(min_price: Option<f32>, max_price: Option<f32>) -> Option<String> {
    match (min_price, max_price) {
        (Some(min), Some(max)) if min > max => Some(format!(
            "No product can match: the minimum price (${min}) is above the maximum (${max}). Lower the minimum or raise the maximum."
        )),
        _ => None,
    }
}

/// What the product view says about the filters its neighbours keep to.
pub const SIMILAR_SCOPE: &str = "Within your skin-type, price and rating filters, of any product type; ingredients you avoid are marked, not removed.";

/// The part of a search's filter that a product's neighbours keep to: skin
/// types, price and rating. Product types are left out (the product's own
/// type decides what is alike), and so are avoided ingredients, which the
/// cards mark instead.
pub fn similar_filter(filter: &Filter) -> Filter {
    Filter {
        skin_types: filter.skin_types.clone(),
        min_price: filter.min_price,
        max_price: filter.max_price,
        min_rating: filter.min_rating,
        ..Filter::default()
    }
}

/// How results are ordered among the good matches, when the text asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Cheapest,
    Luxury,
    BestRated,
    /// Surest fit for the chosen skin types first, then best rated: the
    /// order of a search made of filters alone.
    BestFit,
}

/// A search with the wishes of its text taken out and applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Understanding {
    /// The search as run: the text without its wishes, their filters added.
    pub search: Search,
    pub understood: Vec<Understood>,
    pub order: Option<Order>,
    /// Concerns named in the words ("breakouts"), by index into `CONCERNS`:
    /// they raise products with their actives and explain the results, but
    /// stay words for the model rather than being added to its sentence.
    pub named_concerns: Vec<usize>,
}

impl Search {
    /// Takes the price and rating wishes out of the text ([`understand`])
    /// and applies them: a bound the text names joins the form's (the
    /// stricter of the two holds), an order applies among the good matches.
    pub fn understood(&self) -> Understanding {
        let (rest, understood) = understand(&self.text);
        let mut search = Search {
            text: rest,
            ..self.clone()
        };
        let mut order = None;
        let mut named_concerns = Vec::new();
        let form_chose_types = !search.filter.product_types.is_empty();
        let f = &mut search.filter;
        for u in &understood {
            match u.wish {
                Wish::Skin(s) => {
                    if !f.skin_types.contains(&s) {
                        f.skin_types.push(s);
                    }
                }
                // Types chosen in the form win over types named in words.
                Wish::Type(t) => {
                    let name = PRODUCT_TYPES[t.min(PRODUCT_TYPES.len() - 1)].to_owned();
                    if !form_chose_types && !f.product_types.contains(&name) {
                        f.product_types.push(name);
                    }
                }
                Wish::Concern(c) => {
                    if !named_concerns.contains(&c) {
                        named_concerns.push(c);
                    }
                }
                Wish::Avoid(g) => {
                    if let Some(group) = AVOID_GROUPS.get(g) {
                        let named =
                            |a: &String| AvoidGroup::named(a).is_some_and(|n| n.key == group.key);
                        if !f.avoid_ingredients.iter().any(named) {
                            f.avoid_ingredients.push(group.key.to_owned());
                        }
                    }
                }
                Wish::MaxPrice(p) => f.max_price = Some(f.max_price.map_or(p, |m| m.min(p))),
                Wish::MinPrice(p) => f.min_price = Some(f.min_price.map_or(p, |m| m.max(p))),
                Wish::MinRating(r) => f.min_rating = Some(f.min_rating.map_or(r, |m| m.max(r))),
                Wish::Cheapest => order = Some(Order::Cheapest),
                Wish::Luxury => order = Some(Order::Luxury),
                Wish::BestRated => order = Some(Order::BestRated),
            }
        }
        Understanding {
            search,
            understood,
            order,
            named_concerns,
        }
    }
}

/// `text` without the first `phrase` in it: what removing a chip leaves.
pub fn without_phrase(text: &str, phrase: &str) -> String {
    let cut = match text.find(phrase) {
        Some(at) => format!("{}{}", &text[..at], &text[at + phrase.len()..]),
        None => text.to_owned(),
    };
    cut.split_whitespace().collect::<Vec<_>>().join(" ")
}
