//! Ingredient-function features: what the ingredients of a list do
//! (humectants draw water, occlusives seal it in, clays absorb oil, acids
//! exfoliate, drying alcohols strip) and where in the list they sit, plus
//! the promises a product name makes ("oil-free", "rich", "gentle").
//!
//! These carry over to brands and catalogs the model never saw better than
//! words or encoder features alone: a humectant-rich cream is a humectant-
//! rich cream whoever sells it. The skin-type head reads them beside the
//! pooled encoder output. The lists are a short editorial selection from
//! common cosmetic chemistry (substring matches on the lower-cased
//! ingredient, no concentrations).

/// Ingredient classes by what they do, with substrings that name them.
const CLASSES: [&[&str]; 11] = [
    // humectants
    &[
        "glycerin",
        "hyaluron",
        "sodium pca",
        "urea",
        "panthenol",
        "betaine",
        "sorbitol",
        "butylene glycol",
        "propanediol",
        "honey",
    ],
    // emollients
    &[
        "squalane",
        "shea",
        "butyrospermum",
        "caprylic",
        "jojoba",
        "oil",
        "ceramide",
        "cholesterol",
        "dimethicone",
        "isononyl",
        "cetearyl",
    ],
    // occlusives
    &[
        "petrolatum",
        "mineral oil",
        "lanolin",
        "beeswax",
        "cera alba",
        "paraffin",
        "microcrystalline wax",
    ],
    // exfoliating acids
    &[
        "salicylic",
        "glycolic",
        "lactic acid",
        "mandelic",
        "gluconolactone",
        "citric acid",
    ],
    // retinoids and their plant stand-in
    &["retinol", "retinyl", "retinal", "bakuchiol"],
    // absorbents: clays, charcoal, powders
    &[
        "kaolin",
        "bentonite",
        "clay",
        "charcoal",
        "silica",
        "zinc oxide",
        "talc",
        "starch",
    ],
    // drying alcohols
    &[
        "alcohol denat",
        "sd alcohol",
        "isopropyl alcohol",
        "ethanol",
    ],
    // soothing agents
    &[
        "allantoin",
        "bisabolol",
        "centella",
        "madecassoside",
        "oat",
        "avena",
        "aloe",
        "chamomile",
        "calendula",
        "panthenol",
    ],
    // fragrance and the common fragrance allergens
    &[
        "fragrance",
        "parfum",
        "limonene",
        "linalool",
        "citral",
        "geraniol",
    ],
    // essential oils
    &[
        "lavender",
        "peppermint",
        "eucalyptus",
        "citrus",
        "lemon",
        "orange",
        "bergamot",
        "rosemary",
    ],
    // cleansing surfactants
    &[
        "sodium lauryl",
        "laureth",
        "cocamidopropyl",
        "glucoside",
        "sodium cocoyl",
    ],
];

/// Promises of a product name, by the skin they speak to.
const NAME_PROMISES: [&[&str]; 3] = [
    // oily skin
    &[
        "oil-free",
        "oil free",
        "matte",
        "mattif",
        "shine",
        "pore",
        "clarif",
        "purif",
        "acne",
        "blemish",
        "oil control",
        "balanc",
    ],
    // dry skin
    &[
        "rich", "nourish", "butter", "balm", "intense", "repair", "moistur", "hydrat", "cream",
        "comfort", "barrier", "night",
    ],
    // sensitive skin
    &[
        "gentle",
        "calm",
        "sooth",
        "sensitive",
        "fragrance-free",
        "fragrance free",
        "mild",
        "relief",
        "redness",
    ],
];

/// Ingredients read per list at most (a hostile field costs no more).
const MAX_INGREDIENTS: usize = 512;

/// Features per text: for each class, how early its first member comes
/// (`1 / sqrt(1 + position)`, 0 when absent) and how many members the list
/// holds (up to 5, scaled to 0–1); one flag per name promise; one flag for
/// an unknown (empty) ingredient list.
pub const FUNCTION_FEATURES: usize = 2 * CLASSES.len() + NAME_PROMISES.len() + 1;

/// Where a product text (`type | brand | name | ingredients: …`, as
/// `Product::model_text` writes it) keeps its name and its list. Any other
/// text is read whole as both.
fn name_and_list(text: &str) -> (&str, &str) {
    const LEAD: &str = " | ingredients: ";
    let (header, list) = match text.split_once(LEAD) {
        Some((header, list)) => (header, list),
        None if text.matches(" | ").count() >= 2 => (text, ""),
        None => return (text, text),
    };
    let name = header.splitn(3, " | ").nth(2).unwrap_or(header);
    (name, list)
}

/// The [`FUNCTION_FEATURES`] features of `text`.
pub fn features(text: &str) -> Vec<f32> {
    let (name, list) = name_and_list(text);
    let name = name.to_lowercase();
    let ingredients: Vec<String> = list
        .split(',')
        .map(|i| i.trim().to_lowercase())
        .filter(|i| !i.is_empty())
        .take(MAX_INGREDIENTS)
        .collect();
    let mut out = Vec::with_capacity(FUNCTION_FEATURES);
    for class in CLASSES {
        let positions: Vec<usize> = ingredients
            .iter()
            .enumerate()
            .filter(|(_, i)| class.iter().any(|s| i.contains(s)))
            .map(|(p, _)| p)
            .collect();
        out.push(
            positions
                .first()
                .map_or(0.0, |&p| 1.0 / (1.0 + p as f32).sqrt()),
        );
        out.push(positions.len().min(5) as f32 / 5.0);
    }
    for promise in NAME_PROMISES {
        out.push(f32::from(u8::from(
            promise.iter().any(|s| name.contains(s)),
        )));
    }
    out.push(f32::from(u8::from(ingredients.is_empty())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_text_gives_classes_positions_and_promises() {
        let f = features(
            "Moisturizer | BRAND | Oil-Free Rich Cream | ingredients: Water, Glycerin, Kaolin, Fragrance, Sodium Hyaluronate",
        );
        assert_eq!(f.len(), FUNCTION_FEATURES);
        // Humectants: glycerin second (position 1), two members.
        assert!((f[0] - 1.0 / 2f32.sqrt()).abs() < 1e-6);
        assert!((f[1] - 0.4).abs() < 1e-6);
        // Absorbents: kaolin third.
        assert!((f[10] - 1.0 / 3f32.sqrt()).abs() < 1e-6);
        // No retinoid.
        assert_eq!((f[8], f[9]), (0.0, 0.0));
        // The name promises oily and dry skin, not sensitive; the list is known.
        assert_eq!(&f[22..], &[1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn unknown_lists_free_text_and_hostile_input_are_read_safely() {
        let f = features("Cleanser | B | Gentle Wash");
        assert_eq!(f[FUNCTION_FEATURES - 1], 1.0, "no list");
        assert_eq!(f[24], 1.0, "gentle");
        let free = features("a gentle cream with glycerin, shea butter");
        assert!(free[0] > 0.0 && free[2] > 0.0);
        let huge = features(&"glycerin, ".repeat(100_000));
        assert_eq!(huge.len(), FUNCTION_FEATURES);
        assert!(features("")
            .iter()
            .take(FUNCTION_FEATURES - 1)
            .all(|&v| v == 0.0));
    }
}
