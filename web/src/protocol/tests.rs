use super::*;
use milih_bundle::ExportedCatalog;
use milih_catalog::{Product, SKIN_TYPES};
use milih_rank::skin::Answer;
use milih_rank::{Filter, SkinFit};

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
        ranking: Default::default(),
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

#[test]
fn percentages_never_round_to_all_or_none() {
    assert_eq!(percent_label(469, 471), "99%");
    assert_eq!(percent_label(471, 471), "100%");
    assert_eq!(percent_label(1, 471), "1%");
    assert_eq!(percent_label(0, 471), "0%");
    assert_eq!(percent_label(150, 300), "50%");
    assert_eq!(percent_label(3, 0), "0%");
}

#[test]
fn an_unrated_product_says_so() {
    assert_eq!(rating_words(4.1), "★ 4.1");
    assert_eq!(rating_words(0.0), "no rating");
}

#[test]
fn contradicting_price_bounds_are_explained() {
    let why = price_conflict(Some(50.0), Some(20.0)).unwrap();
    assert!(
        why.contains("minimum price ($50) is above the maximum ($20)"),
        "{why}"
    );
    assert_eq!(price_conflict(Some(20.0), Some(50.0)), None);
    assert_eq!(price_conflict(Some(20.0), None), None);
    assert_eq!(price_conflict(Some(20.0), Some(20.0)), None);
}

#[test]
fn neighbours_keep_skin_price_and_rating_but_not_type_or_avoid() {
    let filter = Filter {
        skin_types: vec![1],
        product_types: vec!["Cleanser".into()],
        avoid_ingredients: vec!["fragrance".into()],
        min_price: Some(5.0),
        max_price: Some(60.0),
        min_rating: Some(4.0),
    };
    let kept = similar_filter(&filter);
    assert_eq!(kept.skin_types, [1]);
    assert_eq!(
        (kept.min_price, kept.max_price, kept.min_rating),
        (Some(5.0), Some(60.0), Some(4.0))
    );
    assert!(kept.product_types.is_empty() && kept.avoid_ingredients.is_empty());
}

#[test]
fn an_unknown_avoid_term_says_what_it_may_mean() {
    let with = UnknownTerm {
        term: "fragrance-free".into(),
        suggestion: Some("fragrance (parfum)".into()),
    };
    assert_eq!(
        with.sentence(),
        "No ingredient called “fragrance-free” in this catalog; did you mean fragrance (parfum)?"
    );
    let without = UnknownTerm {
        term: "unicorn".into(),
        suggestion: None,
    };
    assert!(without.sentence().contains("so it removes nothing"));
}

#[test]
fn wishes_in_the_text_become_filters_and_an_order() {
    let search = Search {
        text: "cheap moisturizer under $20".into(),
        filter: Filter {
            max_price: Some(30.0),
            min_rating: Some(4.5),
            ..Filter::default()
        },
        ..Search::default()
    };
    let u = search.understood();
    assert_eq!(u.search.text, "moisturizer");
    assert_eq!(
        u.search.filter.max_price,
        Some(20.0),
        "the stricter bound holds"
    );
    assert_eq!(u.search.filter.min_rating, Some(4.5));
    assert_eq!(u.order, Some(Order::Cheapest));
    // Cheapest, the price bound, and the type "moisturizer", which stays a
    // word of the text and also filters by type.
    assert_eq!(u.understood.len(), 3);
    assert_eq!(u.search.filter.product_types, ["Moisturizer"]);
    assert_eq!(
        without_phrase("cheap moisturizer under $20", "under $20"),
        "cheap moisturizer"
    );
    assert_eq!(without_phrase("cheap moisturizer", "cheap"), "moisturizer");
}

#[test]
fn the_heading_says_what_was_asked_in_the_shoppers_words() {
    let search = Search {
        text: "  rich\tnight cream ".into(),
        filter: Filter {
            skin_types: vec![1],
            product_types: vec!["Moisturizer".into()],
            ..Filter::default()
        },
        concerns: vec!["acne".into()],
        ..Search::default()
    };
    assert_eq!(
        search.asked_words(),
        "“rich night cream” · moisturizer for dry skin · for acne and blemishes"
    );
    let filters_only = Search {
        text: String::new(),
        ..search
    };
    assert_eq!(
        filters_only.asked_words(),
        "moisturizer for dry skin · for acne and blemishes"
    );
    assert_eq!(Search::default().asked_words(), "");
}

#[test]
fn results_far_from_the_words_say_so() {
    use milih_rank::lexical::Closeness;
    assert_eq!(closeness_sentence(&Closeness::Close), None);
    let unknown = closeness_sentence(&Closeness::UnknownWords(vec!["cetaphil".into()])).unwrap();
    assert!(
        unknown.contains("called “cetaphil” in this catalog"),
        "{unknown}"
    );
    let many: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
    let many = closeness_sentence(&Closeness::UnknownWords(many)).unwrap();
    assert!(many.contains("“w2” or 7 more words"), "{many}");
    let nothing = closeness_sentence(&Closeness::NothingClose).unwrap();
    assert!(nothing.starts_with("Nothing close to your words"));
}
