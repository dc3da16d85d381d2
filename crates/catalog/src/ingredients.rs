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

/// The items of an ingredient list as written: split at commas and
/// semicolons, except a comma between two digits, which belongs to a
/// chemical name ("1,2-Hexanediol"); trimmed, a closing full stop dropped,
/// empty items left out.
pub fn ingredient_items(list: &str) -> Vec<&str> {
    let bytes = list.as_bytes();
    let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let mut items = Vec::new();
    let mut start = 0;
    for (i, c) in list.char_indices() {
        let inside_a_name = c == ',' && i > 0 && digit_at(i - 1) && digit_at(i + 1);
        if (c == ',' || c == ';') && !inside_a_name {
            items.push(&list[start..i]);
            start = i + 1;
        }
    }
    items.push(&list[start..]);
    items
        .into_iter()
        .map(|s| s.trim().trim_end_matches('.').trim())
        .filter(|s| !s.is_empty())
        .collect()
}

/// [`ingredient_items`] in lower case, for matching.
pub fn ingredient_list(list: &str) -> Vec<String> {
    ingredient_items(list)
        .into_iter()
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chemical_names_keep_their_commas() {
        assert_eq!(
            ingredient_items("Water, 1,2-Hexanediol, Glycerin; Citric Acid."),
            ["Water", "1,2-Hexanediol", "Glycerin", "Citric Acid"]
        );
        assert_eq!(ingredient_items("Aqua,Glycerin , ,"), ["Aqua", "Glycerin"]);
        assert_eq!(
            ingredient_list("1,3-Butylene Glycol"),
            ["1,3-butylene glycol"]
        );
        assert!(ingredient_items("").is_empty());
    }

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
