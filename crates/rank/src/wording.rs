//! The words a need is said in. The page's query sentence, the templated
//! evaluation queries and the training phrasings all say "a type for a skin
//! type" through these functions, so the embedding head is trained on the
//! sentences the page sends.

/// What the page says when a search names skin types but no product type.
pub const ANY_PRODUCT: &str = "skincare";

/// "cleanser for dry skin", "moisturizer or mask for dry and oily skin":
/// `kinds` joined by "or" (or [`ANY_PRODUCT`] when empty), then the skin
/// types joined by "and". Lower case throughout.
pub fn for_skin(kinds: &[&str], skins: &[&str]) -> String {
    let kinds = if kinds.is_empty() {
        ANY_PRODUCT.to_owned()
    } else {
        lower_joined(kinds, " or ")
    };
    format!("{kinds} for {} skin", lower_joined(skins, " and "))
}

/// "toner for pores and texture": a product type and a concern's phrase.
pub fn for_concern(kind: &str, concern_phrase: &str) -> String {
    format!("{} for {concern_phrase}", kind.to_lowercase())
}

/// A need without added fragrance: "cleanser for dry skin without fragrance".
pub fn without_fragrance(need: &str) -> String {
    format!("{need} without fragrance")
}

fn lower_joined(words: &[&str], separator: &str) -> String {
    words
        .iter()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_read_as_shoppers_say_them() {
        assert_eq!(for_skin(&["Cleanser"], &["Dry"]), "cleanser for dry skin");
        assert_eq!(
            for_skin(&["Moisturizer", "Mask"], &["Dry", "Oily"]),
            "moisturizer or mask for dry and oily skin"
        );
        assert_eq!(for_skin(&[], &["Sensitive"]), "skincare for sensitive skin");
        assert_eq!(for_concern("Toner", "pores"), "toner for pores");
        assert_eq!(
            without_fragrance(&for_skin(&["Cleanser"], &["Dry"])),
            "cleanser for dry skin without fragrance"
        );
    }
}
