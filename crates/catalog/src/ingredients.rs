//! Ingredient-list clean-up.

/// Returns the ingredient list, or `None` when the retailer's value is a
/// placeholder rather than a list: `#NAME?` (a spreadsheet error), `No Info`,
/// `Visit the <brand> boutique`, or a bare footnote such as `*Certified Organic`.
pub fn clean_ingredients(raw: &str) -> Option<String> {
    let text = raw.trim();
    let lower = text.to_lowercase();
    let placeholder = text.is_empty()
        || text.starts_with('#')
        || (text.starts_with('*') && !text.contains(','))
        || lower == "no info"
        || lower == "n/a"
        || (lower.starts_with("visit the") && lower.ends_with("boutique"));
    (!placeholder).then(|| text.to_owned())
}

/// Splits an ingredient list into lower-case ingredient names.
pub fn ingredient_list(ingredients: &str) -> Vec<String> {
    ingredients
        .split([',', ';'])
        .map(|s| s.trim().trim_end_matches('.').trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_missing() {
        for raw in [
            "#NAME?",
            "No Info",
            "  no info ",
            "Visit the Dior boutique",
            "Visit the Kiehl's Since 1851 boutique",
            "*Certified Organic",
            "**Natural.",
            "",
            "   ",
        ] {
            assert_eq!(clean_ingredients(raw), None, "{raw:?} should be missing");
        }
    }

    #[test]
    fn real_lists_are_kept_trimmed() {
        assert_eq!(
            clean_ingredients(" Water, Glycerin. ").as_deref(),
            Some("Water, Glycerin.")
        );
        // A single real ingredient is a list, not a placeholder.
        assert!(
            clean_ingredients("100% Unrefined Sclerocraya Birrea (Marula) Kernel Oil.").is_some()
        );
    }

    #[test]
    fn lists_split_into_lower_case_names() {
        assert_eq!(
            ingredient_list("Water, Glycerin; Alcohol Denat., "),
            vec!["water", "glycerin", "alcohol denat"]
        );
    }
}
