//! What the page says about a predicted skin type: the answer's title
//! and a product's lean among its type.

use milih_rank::skin::Answer;

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

/// A product's customer rating in words: the catalog's 0 means nobody has
/// rated it, not a rating of zero stars.
pub fn rating_words(rating: f32) -> String {
    if rating > 0.0 && rating.is_finite() {
        format!("★ {rating:.1}")
    } else {
        "no rating".into()
    }
}
