//! Ingredients people avoid, matched the way they are written on labels.
//!
//! A user who avoids "fragrance" also means *parfum*; "parabens" are any
//! of methyl-, propyl-, butylparaben and kin; "drying alcohol" is alcohol
//! denat. or SD alcohol but never the fatty alcohols (cetyl, cetearyl)
//! that soften skin. Each group is a rule over one ingredient of the list
//! (the list is split at commas); any other term is a plain
//! case-insensitive substring.

use milih_catalog::Product;

/// A named group of ingredients with its matching rule.
#[derive(Debug, Clone, Copy)]
pub struct AvoidGroup {
    /// Stable identifier (URLs, JSON).
    pub key: &'static str,
    /// What the page shows.
    pub label: &'static str,
    matches: fn(&str) -> bool,
}

/// Fatty alcohols: waxy emollients, not the drying kind.
const FATTY_ALCOHOLS: [&str; 7] = [
    "cetyl",
    "cetearyl",
    "stearyl",
    "behenyl",
    "myristyl",
    "lauryl",
    "arachidyl",
];

/// Plants whose oil in a list is an essential (volatile, fragrant) oil.
const ESSENTIAL_OIL_PLANTS: [&str; 22] = [
    "lavender",
    "lavandula",
    "peppermint",
    "mentha",
    "eucalyptus",
    "tea tree",
    "melaleuca",
    "rosemary",
    "rosmarinus",
    "citrus",
    "lemon",
    "orange",
    "bergamot",
    "grapefruit",
    "ylang",
    "cananga",
    "geranium",
    "pelargonium",
    "clove",
    "cinnamon",
    "patchouli",
    "sandalwood",
];

/// The 26 fragrance allergens that EU labels must name when present above
/// 0.001 % (leave-on) or 0.01 % (rinse-off): Regulation (EC) No 1223/2009,
/// Annex III, entries 45–71, in their INCI names (and the common name where
/// lists use it).
const FRAGRANCE_ALLERGENS: [&str; 28] = [
    "amyl cinnamal",
    "amylcinnamyl alcohol",
    "anise alcohol",
    "benzyl alcohol",
    "benzyl benzoate",
    "benzyl cinnamate",
    "benzyl salicylate",
    "cinnamal",
    "cinnamyl alcohol",
    "citral",
    "citronellol",
    "coumarin",
    "eugenol",
    "farnesol",
    "geraniol",
    "hexyl cinnamal",
    "hydroxycitronellal",
    "hydroxyisohexyl 3-cyclohexene carboxaldehyde",
    "lyral",
    "butylphenyl methylpropional",
    "limonene",
    "linalool",
    "methyl 2-octynoate",
    "isomethyl ionone",
    "evernia prunastri",
    "evernia furfuracea",
    "oakmoss",
    "treemoss",
];

fn is_fragrance_allergen(item: &str) -> bool {
    FRAGRANCE_ALLERGENS.iter().any(|a| item.contains(a))
}

/// The stricter choice for sensitive skin: added fragrance, essential oils
/// and the declared fragrance allergens.
fn is_any_fragrance(item: &str) -> bool {
    is_fragrance(item) || is_essential_oil(item) || is_fragrance_allergen(item)
}

/// Sulfates that are minerals or actives, not cleansing surfactants.
const NON_SURFACTANT_SULFATES: [&str; 6] = [
    "magnesium sulfate",
    "zinc sulfate",
    "copper sulfate",
    "ferrous sulfate",
    "chondroitin sulfate",
    "dextran sulfate",
];

fn is_fragrance(item: &str) -> bool {
    ["fragrance", "parfum", "perfume", "aroma"]
        .iter()
        .any(|w| item.contains(w))
}

fn is_paraben(item: &str) -> bool {
    item.contains("paraben")
}

fn is_silicone(item: &str) -> bool {
    item.contains("methicone") || item.contains("siloxane") || item.contains("silanol")
}

fn is_drying_alcohol(item: &str) -> bool {
    let fatty = FATTY_ALCOHOLS.iter().any(|f| item.contains(f));
    let drying = item.contains("alcohol denat")
        || item.contains("denatured alcohol")
        || item.contains("sd alcohol")
        || item.contains("isopropyl alcohol")
        || item == "alcohol"
        || item == "ethanol";
    drying && !fatty
}

fn is_essential_oil(item: &str) -> bool {
    item.contains("essential oil")
        || (item.contains("oil") && ESSENTIAL_OIL_PLANTS.iter().any(|p| item.contains(p)))
}

fn is_sulfate(item: &str) -> bool {
    item.contains("sulfate")
        && !item.contains("sulfated")
        && !NON_SURFACTANT_SULFATES.iter().any(|m| item.contains(m))
}

pub const AVOID_GROUPS: &[AvoidGroup] = &[
    AvoidGroup {
        key: "fragrance",
        label: "fragrance (parfum)",
        matches: is_fragrance,
    },
    AvoidGroup {
        key: "fragrance-strict",
        label: "fragrance with essential oils and allergens",
        matches: is_any_fragrance,
    },
    AvoidGroup {
        key: "parabens",
        label: "parabens",
        matches: is_paraben,
    },
    AvoidGroup {
        key: "silicones",
        label: "silicones",
        matches: is_silicone,
    },
    AvoidGroup {
        key: "drying-alcohol",
        label: "drying alcohol",
        matches: is_drying_alcohol,
    },
    AvoidGroup {
        key: "essential-oils",
        label: "essential oils",
        matches: is_essential_oil,
    },
    AvoidGroup {
        key: "sulfates",
        label: "sulfates",
        matches: is_sulfate,
    },
];

impl AvoidGroup {
    /// The group a user term names: its key, its label, or a common name
    /// ("parfum", "alcohol denat", "silicone", …).
    pub fn named(term: &str) -> Option<&'static AvoidGroup> {
        let term = term.trim().to_lowercase();
        let key = match term.as_str() {
            "fragrance" | "fragrances" | "parfum" | "perfume" | "fragrance (parfum)" => "fragrance",
            "fragrance-strict"
            | "fragrance allergens"
            | "fragrance with essential oils and allergens"
            | "strict fragrance"
            | "all fragrance" => "fragrance-strict",
            "paraben" | "parabens" => "parabens",
            "silicone" | "silicones" => "silicones",
            "drying alcohol" | "drying-alcohol" | "alcohol denat" | "alcohol denat."
            | "sd alcohol" | "denatured alcohol" => "drying-alcohol",
            "essential oil" | "essential oils" | "essential-oils" => "essential-oils",
            "sulfate" | "sulfates" | "sulphates" | "sls" => "sulfates",
            _ => return None,
        };
        AVOID_GROUPS.iter().find(|g| g.key == key)
    }

    /// Whether one ingredient (lower case, trimmed) belongs to the group.
    pub fn matches(&self, item: &str) -> bool {
        (self.matches)(item)
    }
}

/// The ingredients of a list, lower-cased and trimmed
/// ([`milih_catalog::ingredient_list`]).
pub fn ingredient_items(list: &str) -> Vec<String> {
    milih_catalog::ingredient_list(list)
}

/// The ingredients of `product` that a term catches: a group's members when
/// the term names a group, else the items containing the term. `None` when
/// the product's ingredients are unknown.
pub fn caught_by(term: &str, product: &Product) -> Option<Vec<String>> {
    let list = product.ingredients.as_ref()?;
    let items = ingredient_items(list);
    let caught = match AvoidGroup::named(term) {
        Some(group) => items.into_iter().filter(|i| group.matches(i)).collect(),
        None => {
            let needle = term.trim().to_lowercase();
            if needle.is_empty() {
                Vec::new()
            } else {
                items.into_iter().filter(|i| i.contains(&needle)).collect()
            }
        }
    };
    Some(caught)
}

/// For a term that is neither a group nor in any ingredient of `lists`,
/// what the shopper may have meant: a group named by the term without its
/// "-free", "free", "no" or "without" ("fragrance-free" → fragrance), or
/// `None` when nothing is close. Terms that match something return `None`
/// too: call it only for terms that caught nothing.
pub fn did_you_mean(term: &str) -> Option<&'static AvoidGroup> {
    let term = term.trim().to_lowercase();
    let bare = term
        .trim_start_matches("without ")
        .trim_start_matches("no ")
        .trim_end_matches("-free")
        .trim_end_matches(" free")
        .trim();
    AvoidGroup::named(bare).or_else(|| {
        AVOID_GROUPS
            .iter()
            .find(|g| !bare.is_empty() && (g.key.contains(bare) || g.label.contains(bare)))
    })
}

/// Whether a term means something for `lists` (ingredient lists): it names
/// a group, or some ingredient of some list contains it.
pub fn is_known_term<'a>(term: &str, lists: impl IntoIterator<Item = &'a str>) -> bool {
    if AvoidGroup::named(term).is_some() {
        return true;
    }
    let needle = term.trim().to_lowercase();
    !needle.is_empty()
        && lists
            .into_iter()
            .any(|list| list.to_lowercase().contains(&needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(ingredients: &str) -> Product {
        Product {
            id: 0,
            product_type: "Moisturizer".into(),
            brand: "B".into(),
            name: "N".into(),
            price: 10.0,
            rating: 4.0,
            ingredients: Some(ingredients.into()),
            skin_labels: None,
        }
    }

    fn caught(term: &str, list: &str) -> Vec<String> {
        caught_by(term, &product(list)).unwrap()
    }

    #[test]
    fn the_strict_fragrance_choice_also_catches_essential_oils_and_declared_allergens() {
        let list = "Water, Lavandula Angustifolia (Lavender) Oil, Linalool, Limonene, Glycerin";
        assert!(caught("fragrance", list).is_empty());
        assert_eq!(
            caught("fragrance allergens", list),
            [
                "lavandula angustifolia (lavender) oil",
                "linalool",
                "limonene"
            ]
        );
        assert_eq!(caught("fragrance-strict", "Water, Parfum"), ["parfum"]);
    }

    #[test]
    fn unknown_terms_get_a_suggestion() {
        assert_eq!(
            did_you_mean("fragrance-free").map(|g| g.key),
            Some("fragrance")
        );
        assert_eq!(
            did_you_mean("paraben free").map(|g| g.key),
            Some("parabens")
        );
        assert_eq!(did_you_mean("no sulfates").map(|g| g.key), Some("sulfates"));
        assert!(did_you_mean("unicorn tears").is_none());
        let lists = ["Water, Glycerin, Niacinamide"];
        assert!(is_known_term("niacinamide", lists));
        assert!(is_known_term("fragrance", lists));
        assert!(!is_known_term("fragrance-free", lists));
    }

    #[test]
    fn fragrance_means_parfum_too() {
        assert_eq!(caught("fragrance", "Water, Parfum, Glycerin"), ["parfum"]);
        assert_eq!(
            caught("Parfum", "Water, Fragrance (Parfum)."),
            ["fragrance (parfum)"]
        );
        assert!(caught("fragrance", "Water, Glycerin").is_empty());
    }

    #[test]
    fn parabens_silicones_and_sulfates_are_families() {
        assert_eq!(
            caught("parabens", "Methylparaben, Water, Butylparaben"),
            ["methylparaben", "butylparaben"]
        );
        assert_eq!(
            caught(
                "silicones",
                "Dimethicone, Cyclopentasiloxane, Amodimethicone, Water"
            ),
            ["dimethicone", "cyclopentasiloxane", "amodimethicone"]
        );
        assert_eq!(
            caught(
                "sulfates",
                "Sodium Laureth Sulfate, Magnesium Sulfate, Sodium Coco-Sulfate"
            ),
            ["sodium laureth sulfate", "sodium coco-sulfate"]
        );
    }

    #[test]
    fn drying_alcohol_is_kept_apart_from_fatty_alcohols() {
        let list = "Water, Alcohol Denat., Cetyl Alcohol, Cetearyl Alcohol, SD Alcohol 40-B";
        assert_eq!(
            caught("drying alcohol", list),
            ["alcohol denat", "sd alcohol 40-b"]
        );
        assert!(caught("alcohol denat", "Cetearyl Alcohol, Stearyl Alcohol").is_empty());
        // A plain term is a plain substring: "alcohol" catches every alcohol.
        assert_eq!(caught("alcohol", "Cetyl Alcohol, Water").len(), 1);
    }

    #[test]
    fn essential_oils_are_plant_oils_that_smell() {
        let list = "Lavandula Angustifolia (Lavender) Oil, Jojoba Oil, Citrus Aurantium Dulcis (Orange) Peel Oil";
        assert_eq!(caught("essential oils", list).len(), 2);
        assert!(caught("essential oils", "Squalane, Jojoba Oil").is_empty());
    }

    #[test]
    fn unknown_lists_and_blank_terms() {
        let mut p = product("Water");
        p.ingredients = None;
        assert_eq!(caught_by("fragrance", &p), None);
        assert!(caught(" ", "Water").is_empty());
        assert!(AvoidGroup::named("glycerin").is_none());
        assert_eq!(AvoidGroup::named(" SLS ").unwrap().key, "sulfates");
    }
}
