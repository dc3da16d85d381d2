//! Messages between the page and the model worker, and the query text the
//! worker embeds for a search.

use milih_catalog::{Product, SKIN_TYPES};
use milih_rank::concerns::Concern;
use milih_rank::{Filter, SkinFit};
use serde::{Deserialize, Serialize};

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Request {
    Search {
        id: u64,
        search: Search,
    },
    /// One product and the products nearest to it by embedding.
    Similar {
        id: u64,
        product: usize,
        limit: usize,
    },
    /// Runs both heads on one text (used by the parity test and benchmarks).
    Embed {
        id: u64,
        text: String,
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
    Loaded {
        stats: CollectionStats,
    },
    Failed {
        message: String,
    },
    Results {
        id: u64,
        query_text: String,
        /// The filters the text does not say, as [`Search::filter_summary`].
        filters: String,
        results: Vec<ResultCard>,
        millis: f64,
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

/// Longest query text embedded; the model truncates tokens anyway, this
/// bounds the work of tokenizing pasted novels.
pub const MAX_QUERY_CHARS: usize = 2_000;

impl Search {
    /// The sentence the model embeds: the free text, then what the filters
    /// and concerns say, e.g. "gentle | moisturizer for dry skin | acne", with
    /// each concern in the words the embedding head learned for it.
    /// Empty when the user has asked for nothing.
    pub fn query_text(&self) -> String {
        // Control characters (tabs, newlines, escapes) separate words like spaces.
        let text: String = self
            .text
            .chars()
            .take(MAX_QUERY_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut parts = vec![text.split_whitespace().collect::<Vec<_>>().join(" ")];
        let types: Vec<String> = self
            .filter
            .product_types
            .iter()
            .map(|t| t.to_lowercase())
            .collect();
        let skins: Vec<String> = self
            .filter
            .skin_types
            .iter()
            .filter_map(|&i| SKIN_TYPES.get(i))
            .map(|s| s.to_lowercase())
            .collect();
        let mut wanted = types.join(" or ");
        if !skins.is_empty() {
            if wanted.is_empty() {
                wanted.push_str("skincare");
            }
            wanted.push_str(&format!(" for {} skin", skins.join(" and ")));
        }
        parts.push(wanted);
        let concerns: Vec<&str> = self.concerns().map(|c| c.phrase).collect();
        parts.push(concerns.join(", "));
        parts.retain(|p| !p.is_empty());
        parts.join(" | ")
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
                SkinFit::Predicted(p) => format!(
                    "predicted for {} skin ({:.0}%)",
                    name.to_lowercase(),
                    p * 100.0
                ),
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

/// Collection statistics shown on the page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectionStats {
    pub products: usize,
    pub product_types: Vec<String>,
    pub brands: usize,
    pub labels: Vec<String>,
    pub bundle_bytes: u64,
    pub load_millis: f64,
}

/// Why `other` is shown as similar to `base`: a shared type and the
/// ingredients both lists hold.
pub fn similarity_reasons(base: &Product, other: &Product) -> String {
    let mut reasons = Vec::new();
    if base.product_type == other.product_type {
        reasons.push(format!("also a {}", base.product_type.to_lowercase()));
    }
    if let (Some(a), Some(b)) = (&base.ingredients, &other.ingredients) {
        let theirs = milih_rank::avoid::ingredient_items(b);
        let shared = milih_rank::avoid::ingredient_items(a)
            .into_iter()
            .filter(|i| theirs.contains(i))
            .count();
        if shared > 0 {
            reasons.push(format!(
                "{shared} shared ingredient{}",
                if shared == 1 { "" } else { "s" }
            ));
        }
    }
    if reasons.is_empty() {
        "close in meaning".into()
    } else {
        reasons.join(" · ")
    }
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
    pub explanation: Explanation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_text_combines_text_filters_and_concerns() {
        let search = Search {
            text: "  gentle\tcleanser \u{0007} ".into(),
            concerns: vec!["dryness".into(), "no-such-concern".into()],
            filter: Filter {
                skin_types: vec![1, 4],
                product_types: vec!["Cleanser".into()],
                ..Filter::default()
            },
            limit: 10,
        };
        assert_eq!(
            search.query_text(),
            "gentle cleanser | cleanser for dry and sensitive skin | dehydration"
        );
        let only_skin = Search {
            filter: Filter {
                skin_types: vec![3],
                ..Filter::default()
            },
            ..Search::default()
        };
        assert_eq!(only_skin.query_text(), "skincare for oily skin");
        assert_eq!(Search::default().query_text(), "");
        let blank = Search {
            text: " \n\t ".into(),
            ..Search::default()
        };
        assert_eq!(blank.query_text(), "");
    }

    #[test]
    fn filter_summary_names_price_rating_and_avoided_ingredients() {
        let mut search = Search::default();
        assert_eq!(search.filter_summary(), "");
        search.filter.min_price = Some(20.0);
        search.filter.max_price = Some(60.5);
        search.filter.min_rating = Some(4.0);
        search.filter.avoid_ingredients = vec!["fragrance".into(), " ".into(), "parabens".into()];
        assert_eq!(
            search.filter_summary(),
            "$20–60.5 · 4+ stars · without fragrance, parabens"
        );
        search.filter.min_price = None;
        assert!(search.filter_summary().starts_with("up to $60.5 · "));
    }

    #[test]
    fn explanations_name_concern_ingredients_skin_fit_and_matching_words() {
        let product = Product {
            id: 3,
            product_type: "Treatment".into(),
            brand: "B".into(),
            name: "Clarifying Serum".into(),
            price: 20.0,
            rating: 4.0,
            ingredients: Some("Water, Salicylic Acid, Niacinamide".into()),
            skin_labels: None,
        };
        let fits = [
            SkinFit::Predicted(0.2),
            SkinFit::Predicted(0.91),
            SkinFit::Predicted(0.5),
            SkinFit::Predicted(0.7),
            SkinFit::Predicted(0.4),
        ];
        let search = Search {
            text: "clarifying serum, please".into(),
            concerns: vec!["acne".into(), "dark-spots".into(), "sun".into()],
            filter: Filter {
                skin_types: vec![1],
                ..Filter::default()
            },
            ..Search::default()
        };
        let e = search.explain(&product, &fits);
        assert_eq!(
            e.why,
            "salicylic acid for acne and blemishes · niacinamide for dark spots and pigmentation · predicted for dry skin (91%) · mentions “clarifying”, “serum”"
        );
        assert_eq!(e.matched, ["salicylic acid", "niacinamide"]);
        let plain = Search::default().explain(&product, &fits);
        assert_eq!(plain.why, "close in meaning to your search");
    }

    #[test]
    fn similar_products_say_what_they_share() {
        let product = |kind: &str, ingredients: Option<&str>| Product {
            id: 0,
            product_type: kind.into(),
            brand: "B".into(),
            name: "N".into(),
            price: 1.0,
            rating: 4.0,
            ingredients: ingredients.map(str::to_owned),
            skin_labels: None,
        };
        let base = product("Face Mask", Some("Water, Kaolin, Glycerin"));
        assert_eq!(
            similarity_reasons(&base, &product("Face Mask", Some("Kaolin, water, Clay"))),
            "also a face mask · 2 shared ingredients"
        );
        assert_eq!(
            similarity_reasons(&base, &product("Cleanser", Some("Glycerin"))),
            "1 shared ingredient"
        );
        assert_eq!(
            similarity_reasons(&base, &product("Cleanser", None)),
            "close in meaning"
        );
    }

    #[test]
    fn huge_queries_are_bounded() {
        let search = Search {
            text: "a".repeat(100_000),
            ..Search::default()
        };
        assert_eq!(search.query_text().chars().count(), MAX_QUERY_CHARS);
        let mixed = Search {
            text: "🌿 crème\u{0}敏感肌\n".into(),
            ..Search::default()
        };
        assert_eq!(mixed.query_text(), "🌿 crème 敏感肌");
    }
}
