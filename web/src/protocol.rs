//! Messages between the page and the model worker, and the query text the
//! worker embeds for a search.

use milih_bundle::ExportedCatalog;
use milih_catalog::{Product, SKIN_TYPES};
use milih_rank::avoid::caught_by;
use milih_rank::concerns::Concern;
use milih_rank::skin::{Answer, Lean};
use milih_rank::wording;
use milih_rank::{Filter, SkinFit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use milih_bundle::files::KEEP_COPIES;

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
    },
    /// Runs both heads on one text (used by the parity test and benchmarks).
    Embed {
        id: u64,
        text: String,
    },
    /// Benchmark: a whole query (tokenize, encode, both heads, rank the
    /// catalog), timed in the worker.
    BenchQuery {
        id: u64,
        text: String,
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
    /// The answer to [`Request::BenchQuery`] and [`Request::BenchRank`]:
    /// worker-side times in milliseconds, and the query's token count.
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
        parts.push(if skins.is_empty() {
            types.join(" or ").to_lowercase()
        } else {
            wording::for_skin(&types, &skins)
        });
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

/// Collection statistics shown on the page: the overview and the map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectionStats {
    pub products: usize,
    /// Product types, alphabetical; [`MapPoint::type_index`] points here.
    pub product_types: Vec<String>,
    pub brands: usize,
    pub labels: Vec<String>,
    pub bundle_bytes: u64,
    pub load_millis: f64,
    /// Products whose skin types the retailer labeled.
    pub labeled: usize,
    /// Per product type, most products first.
    pub by_type: Vec<GroupCount>,
    /// Per brand, most products first (ties alphabetical).
    pub by_brand: Vec<GroupCount>,
    /// Per skin type, in label order: how many unlabeled products get each
    /// answer, in [`Answer::ALL`] order.
    pub predicted_answers: Vec<[usize; 4]>,
    /// Every product's place on the embedding map, in catalog order.
    pub map: Vec<MapPoint>,
}

/// What a predicted answer means, for a tooltip.
pub fn answer_title(answer: Answer, probability: f32) -> String {
    let meaning = match answer {
        Answer::Likely => "products scoring this high from brands the model never saw were nearly always labeled for it",
        Answer::Unsure => "the model's reading sits between what the retailer's labels bear out either way",
        Answer::Unlikely => "products scoring this low from brands the model never saw were mostly not labeled for it",
        Answer::Unknown => "the model cannot tell this skin type apart for brands it has not seen",
    };
    format!(
        "predicted by Milih's model (no retailer label), probability {:.0}%: {meaning}",
        probability * 100.0
    )
}

/// What a card says of a product's lean ([`Lean`]) towards `skin` among
/// the products of `product_type`.
pub fn lean_sentence(skin: &str, product_type: &str, beats: f32) -> String {
    let skin = skin.to_lowercase();
    let kind = plural_type(product_type);
    // Floored, so that only the very top reads as "all".
    let percent = (beats.clamp(0.0, 1.0) * 100.0).floor();
    if percent >= 100.0 {
        format!("Leans {skin}: Milih reads it as the most suited to {skin} skin of all {kind}.")
    } else {
        format!("Leans {skin}: Milih reads it as more suited to {skin} skin than {percent:.0}% of {kind}.")
    }
}

/// A product type as a plural noun ("Moisturizer" → "moisturizers").
pub fn plural_type(product_type: &str) -> String {
    let lower = product_type.trim().to_lowercase();
    if lower == "sun protect" {
        "sun protection products".into()
    } else if lower.ends_with('s') || lower.is_empty() {
        lower
    } else {
        format!("{lower}s")
    }
}

/// Products of one type or brand, and how many carry retailer labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupCount {
    pub name: String,
    pub products: usize,
    pub labeled: usize,
}

impl GroupCount {
    /// Products whose skin types are predicted rather than labeled.
    pub fn predicted(&self) -> usize {
        self.products - self.labeled
    }
}

/// One product on the embedding map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MapPoint {
    pub id: usize,
    pub x: f32,
    pub y: f32,
    pub type_index: usize,
    pub brand: String,
    pub name: String,
}

impl CollectionStats {
    pub fn of(
        catalog: &ExportedCatalog,
        labels: &[String],
        bundle_bytes: u64,
        load_millis: f64,
    ) -> Self {
        let products = &catalog.products;
        let mut types: BTreeMap<&str, GroupCount> = BTreeMap::new();
        let mut brands: BTreeMap<&str, GroupCount> = BTreeMap::new();
        let mut predicted_answers = vec![[0usize; 4]; labels.len()];
        let mut labeled_products = 0;
        for entry in products {
            let p = &entry.product;
            let labeled = usize::from(p.skin_labels.is_some());
            labeled_products += labeled;
            for (groups, name) in [(&mut types, &p.product_type), (&mut brands, &p.brand)] {
                let group = groups.entry(name).or_insert_with(|| GroupCount {
                    name: name.clone(),
                    ..GroupCount::default()
                });
                group.products += 1;
                group.labeled += labeled;
            }
            if p.skin_labels.is_none() {
                for (label, probability) in entry.predicted.iter().enumerate().take(labels.len()) {
                    let answer = catalog.skin_answers.answer(label, *probability);
                    predicted_answers[label][answer.index()] += 1;
                }
            }
        }
        let product_types: Vec<String> = types.keys().map(|t| t.to_string()).collect();
        let map = products
            .iter()
            .map(|entry| MapPoint {
                id: entry.product.id,
                x: entry.map[0],
                y: entry.map[1],
                type_index: product_types
                    .iter()
                    .position(|t| *t == entry.product.product_type)
                    .unwrap_or(0),
                brand: entry.product.brand.clone(),
                name: entry.product.name.clone(),
            })
            .collect();
        let most_first = |groups: BTreeMap<&str, GroupCount>| {
            let mut groups: Vec<GroupCount> = groups.into_values().collect();
            // Stable sort: equal counts stay alphabetical.
            groups.sort_by_key(|g| std::cmp::Reverse(g.products));
            groups
        };
        Self {
            products: products.len(),
            brands: brands.len(),
            product_types,
            labels: labels.to_vec(),
            bundle_bytes,
            load_millis,
            labeled: labeled_products,
            by_type: most_first(types),
            by_brand: most_first(brands),
            predicted_answers,
            map,
        }
    }
}

/// What a product holds of the ingredients the user avoids, for products
/// no filter removed (similar products, the product view).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AvoidCheck {
    /// One line per avoided term found, and one for terms that cannot be
    /// checked, e.g. "Contains fragrance: parfum".
    pub warnings: Vec<String>,
    /// The ingredient list items caught (lower case), to mark in the list.
    pub items: Vec<String>,
}

impl AvoidCheck {
    pub fn of(avoid: &[String], product: &Product) -> Self {
        let mut check = Self::default();
        let mut unchecked = Vec::new();
        for term in avoid.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            match caught_by(term, product) {
                None => unchecked.push(term),
                Some(items) if items.is_empty() => {}
                Some(items) => {
                    check
                        .warnings
                        .push(format!("Contains {term}: {}", items.join(", ")));
                    check.items.extend(items);
                }
            }
        }
        if !unchecked.is_empty() {
            check.warnings.push(format!(
                "Ingredients unknown: cannot check for {}",
                unchecked.join(", ")
            ));
        }
        check.items.dedup();
        check
    }
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
    /// Where the model places an unlabeled product among its type.
    pub lean: Option<Lean>,
    pub explanation: Explanation,
    /// The user's avoided ingredients in this product.
    pub avoided: AvoidCheck,
}

#[cfg(test)]
mod tests {
    use super::*;
    use milih_bundle::ProductEntry;

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
        let fit = |probability, answer| SkinFit::Predicted {
            probability,
            answer,
        };
        let fits = [
            fit(0.2, Answer::Unlikely),
            fit(0.91, Answer::Likely),
            fit(0.5, Answer::Unsure),
            fit(0.7, Answer::Unsure),
            fit(0.4, Answer::Unknown),
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
            "salicylic acid for acne and blemishes · niacinamide for dark spots and pigmentation · predicted likely for dry skin · mentions “clarifying”, “serum”"
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

    fn entry(id: usize, kind: &str, brand: &str, labeled: bool, predicted: f32) -> ProductEntry {
        ProductEntry {
            product: Product {
                id,
                product_type: kind.into(),
                brand: brand.into(),
                name: format!("P{id}"),
                price: 10.0,
                rating: 4.0,
                ingredients: None,
                skin_labels: labeled.then_some([true; 5]),
            },
            predicted: vec![predicted; 5],
            map: [0.1 * id as f32, 0.5],
        }
    }

    #[test]
    fn product_types_read_as_plurals_and_answers_explain_themselves() {
        assert_eq!(plural_type("Moisturizer"), "moisturizers");
        assert_eq!(plural_type("Eye cream"), "eye creams");
        assert_eq!(plural_type("Sun protect"), "sun protection products");
        assert_eq!(plural_type("Gloss"), "gloss");
        assert_eq!(
            lean_sentence("Dry", "Moisturizer", 0.869),
            "Leans dry: Milih reads it as more suited to dry skin than 86% of moisturizers."
        );
        assert_eq!(
            lean_sentence("Oily", "Eye cream", 1.0),
            "Leans oily: Milih reads it as the most suited to oily skin of all eye creams."
        );
        let title = answer_title(Answer::Likely, 0.934);
        assert!(
            title.contains("93%") && title.contains("never saw"),
            "{title}"
        );
        assert!(answer_title(Answer::Unknown, 0.5).contains("cannot tell"));
    }

    #[test]
    fn collection_stats_count_types_brands_and_predicted_labels() {
        let catalog = ExportedCatalog {
            products: vec![
                entry(0, "Moisturizer", "Zed", true, 0.2),
                entry(1, "Cleanser", "Alba", false, 0.7),
                entry(2, "Moisturizer", "Alba", false, 0.3),
                entry(3, "Moisturizer", "Bee", true, 0.9),
            ],
            skin_answers: milih_rank::skin::SkinAnswers {
                labels: vec![
                    milih_rank::skin::LabelAnswers {
                        unseen_brand_auroc: 0.7,
                        likely_at: Some(0.6),
                        unlikely_at: Some(0.3),
                    };
                    4
                ],
            },
        };
        let labels: Vec<String> = SKIN_TYPES.iter().map(|s| s.to_string()).collect();
        let stats = CollectionStats::of(&catalog, &labels, 100, 5.0);
        assert_eq!(stats.products, 4);
        assert_eq!(stats.labeled, 2);
        assert_eq!(stats.product_types, ["Cleanser", "Moisturizer"]);
        let moisturizers = &stats.by_type[0];
        assert_eq!(
            (
                moisturizers.name.as_str(),
                moisturizers.products,
                moisturizers.predicted()
            ),
            ("Moisturizer", 3, 1)
        );
        let brands: Vec<(&str, usize)> = stats
            .by_brand
            .iter()
            .map(|b| (b.name.as_str(), b.products))
            .collect();
        assert_eq!(brands, [("Alba", 2), ("Bee", 1), ("Zed", 1)]);
        // Only unlabeled products count (0.7 likely, 0.3 unlikely); the
        // fifth label has no thresholds, so both are unknown there.
        assert_eq!(stats.predicted_answers[..4], [[1, 0, 1, 0]; 4]);
        assert_eq!(stats.predicted_answers[4], [0, 0, 0, 2]);
        assert_eq!(stats.map[2].type_index, 1);
        assert_eq!((stats.map[2].x, stats.map[2].name.as_str()), (0.2, "P2"));
    }

    #[test]
    fn avoid_checks_name_what_a_product_holds_and_what_cannot_be_checked() {
        let mut product = entry(0, "Moisturizer", "B", true, 0.5).product;
        let avoid = vec![
            "fragrance".to_owned(),
            " ".to_owned(),
            "parabens".to_owned(),
        ];
        let unknown = AvoidCheck::of(&avoid, &product);
        assert_eq!(
            unknown.warnings,
            ["Ingredients unknown: cannot check for fragrance, parabens"]
        );
        product.ingredients = Some("Water, Parfum, Methylparaben, Propylparaben".into());
        let check = AvoidCheck::of(&avoid, &product);
        assert_eq!(
            check.warnings,
            [
                "Contains fragrance: parfum",
                "Contains parabens: methylparaben, propylparaben"
            ]
        );
        assert_eq!(check.items, ["parfum", "methylparaben", "propylparaben"]);
        assert_eq!(AvoidCheck::of(&[], &product), AvoidCheck::default());
    }
}
