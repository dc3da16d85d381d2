//! The concern lexicon: which ingredients address which skin concern.
//!
//! It is a small, documented editorial list (common knowledge of cosmetic
//! chemistry, not medical advice). It defines relevance for the concern
//! queries of the retrieval benchmark and trains the embedding head to
//! connect a concern to the ingredients that treat it.

use aho_corasick::AhoCorasick;
use milih_catalog::Product;
use std::sync::OnceLock;

/// One skin concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concern {
    /// Stable identifier (URLs, JSON).
    pub key: &'static str,
    /// What the page shows.
    pub label: &'static str,
    /// How people say it in a query ("serum for …").
    pub phrase: &'static str,
    /// Lower-case substrings of an ingredient list that address it.
    pub ingredients: &'static [&'static str],
}

pub const CONCERNS: &[Concern] = &[
    Concern {
        key: "acne",
        label: "acne and blemishes",
        phrase: "acne",
        ingredients: &[
            "salicylic acid",
            "benzoyl peroxide",
            "sulfur",
            "tea tree",
            "azelaic acid",
            "willow bark",
        ],
    },
    Concern {
        key: "pores",
        label: "blackheads and pores",
        phrase: "blackheads and large pores",
        ingredients: &[
            "salicylic acid",
            "kaolin",
            "bentonite",
            "charcoal",
            "niacinamide",
        ],
    },
    Concern {
        key: "dark-spots",
        label: "dark spots and pigmentation",
        phrase: "dark spots",
        ingredients: &[
            "ascorbic acid",
            "ascorbyl",
            "niacinamide",
            "kojic acid",
            "arbutin",
            "tranexamic acid",
            "licorice",
            "glycyrrhiza",
        ],
    },
    Concern {
        key: "dullness",
        label: "dullness",
        phrase: "dull skin",
        ingredients: &[
            "ascorbic acid",
            "ascorbyl",
            "glycolic acid",
            "lactic acid",
            "mandelic acid",
            "papain",
        ],
    },
    Concern {
        key: "wrinkles",
        label: "fine lines and wrinkles",
        phrase: "fine lines and wrinkles",
        ingredients: &["retinol", "retinyl", "retinal", "bakuchiol", "peptide"],
    },
    Concern {
        key: "dryness",
        label: "dryness",
        phrase: "dehydration",
        ingredients: &[
            "ceramide",
            "hyaluronic acid",
            "sodium hyaluronate",
            "squalane",
            "urea",
        ],
    },
    Concern {
        key: "redness",
        label: "redness and sensitivity",
        phrase: "redness",
        ingredients: &[
            "centella asiatica",
            "madecassoside",
            "allantoin",
            "bisabolol",
            "colloidal oatmeal",
            "avena sativa",
        ],
    },
    Concern {
        key: "texture",
        label: "uneven texture",
        phrase: "uneven texture",
        ingredients: &[
            "glycolic acid",
            "lactic acid",
            "mandelic acid",
            "salicylic acid",
            "gluconolactone",
        ],
    },
    Concern {
        key: "dark-circles",
        label: "dark circles",
        phrase: "dark circles",
        ingredients: &["caffeine", "phytonadione", "vitamin k", "arnica"],
    },
    Concern {
        key: "sun",
        label: "sun protection",
        phrase: "sun protection",
        ingredients: &[
            "zinc oxide",
            "titanium dioxide",
            "avobenzone",
            "octinoxate",
            "homosalate",
            "octocrylene",
            "octisalate",
            "oxybenzone",
            "ethylhexyl methoxycinnamate",
        ],
    },
];

impl Concern {
    pub fn by_key(key: &str) -> Option<&'static Concern> {
        CONCERNS.iter().find(|c| c.key == key)
    }

    /// The lexicon ingredients found in the product's list (none when the
    /// list is unknown).
    pub fn matches(&self, product: &Product) -> Vec<&'static str> {
        let Some(list) = &product.ingredients else {
            return Vec::new();
        };
        let list = list.to_lowercase();
        self.ingredients
            .iter()
            .copied()
            .filter(|i| list.contains(i))
            .collect()
    }

    pub fn addressed_by(&self, product: &Product) -> bool {
        !self.matches(product).is_empty()
    }
}

/// The concerns `product`'s list addresses, one bit per [`CONCERNS`] index:
/// what [`Concern::addressed_by`] says of each, in one pass over the list
/// (a catalog's worth of lists is read when the page loads).
pub fn concern_bits(product: &Product) -> u16 {
    static PATTERNS: OnceLock<(AhoCorasick, Vec<u16>)> = OnceLock::new();
    let (searcher, bits) = PATTERNS.get_or_init(|| {
        let (patterns, bits): (Vec<&str>, Vec<u16>) = CONCERNS
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.ingredients.iter().map(move |&p| (p, 1u16 << i)))
            .unzip();
        // The patterns are ASCII, so matching them without regard to ASCII
        // case is matching them in the lower-cased list.
        let searcher = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(patterns)
            .expect("the concern lexicon builds a searcher");
        (searcher, bits)
    });
    let Some(list) = &product.ingredients else {
        return 0;
    };
    searcher
        .find_overlapping_iter(list)
        .fold(0, |found, m| found | bits[m.pattern().as_usize()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concern_bits_say_what_each_concern_says() {
        for list in [
            None,
            Some("Water, SALICYLIC ACID, Niacinamide, Zinc Oxide"),
            Some("aqua, retinyl palmitate, caffeine, glycerin"),
            Some("water, glycerin"),
        ] {
            let p = product(list);
            let want = CONCERNS
                .iter()
                .enumerate()
                .filter(|(_, c)| c.addressed_by(&p))
                .fold(0u16, |bits, (i, _)| bits | 1 << i);
            assert_eq!(concern_bits(&p), want, "{list:?}");
        }
        assert_ne!(concern_bits(&product(Some("Water, SALICYLIC ACID"))), 0);
        assert!(CONCERNS.len() <= 16, "one bit per concern in a u16");
        for c in CONCERNS {
            assert!(c.ingredients.iter().all(|i| i.is_ascii()), "{}", c.key);
        }
    }

    fn product(ingredients: Option<&str>) -> Product {
        Product {
            id: 0,
            product_type: "Treatment".into(),
            brand: "B".into(),
            name: "N".into(),
            price: 10.0,
            rating: 4.0,
            ingredients: ingredients.map(str::to_owned),
            skin_labels: None,
        }
    }

    #[test]
    fn concerns_match_their_ingredients_case_insensitively() {
        let acne = Concern::by_key("acne").unwrap();
        let p = product(Some("Water, Salicylic Acid, Glycerin"));
        assert_eq!(acne.matches(&p), ["salicylic acid"]);
        assert!(Concern::by_key("texture").unwrap().addressed_by(&p));
        assert!(!Concern::by_key("sun").unwrap().addressed_by(&p));
        assert!(!acne.addressed_by(&product(None)));
    }

    #[test]
    fn keys_are_unique_and_lists_lower_case() {
        for (i, c) in CONCERNS.iter().enumerate() {
            assert!(CONCERNS[i + 1..].iter().all(|d| d.key != c.key));
            assert!(c.ingredients.iter().all(|s| *s == s.to_lowercase()));
        }
        assert!(Concern::by_key("nope").is_none());
    }
}
