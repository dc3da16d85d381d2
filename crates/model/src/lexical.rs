//! Hashed word n-gram features: the TF-IDF view of a text that the skin-type
//! head reads beside the encoder. Words and word pairs are hashed into a
//! fixed number of buckets, so no vocabulary has to ship with the model.
//!
//! The ingredient list is where most of the signal lives and most of it
//! falls beyond the encoder's window; these features see all of it.

use xxhash_rust::xxh3::xxh3_64;

/// Words read from one text at most (a hostile 5 MB field costs no more).
pub const MAX_WORDS: usize = 4096;

/// Lower-cased alphanumeric words of `text`, at most [`MAX_WORDS`].
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(str::to_lowercase)
        .collect()
}

/// Bucket of a word or word pair.
fn bucket(term: &str, buckets: usize) -> usize {
    (xxh3_64(term.as_bytes()) % buckets as u64) as usize
}

/// Sparse term counts of `text`: (bucket, count) for every word and every
/// pair of neighbouring words, sorted by bucket.
pub fn term_counts(text: &str, buckets: usize) -> Vec<(usize, f32)> {
    if buckets == 0 {
        return Vec::new();
    }
    let words = words(text);
    let mut hits: Vec<usize> = words.iter().map(|w| bucket(w, buckets)).collect();
    hits.extend(
        words
            .windows(2)
            .map(|pair| bucket(&format!("{} {}", pair[0], pair[1]), buckets)),
    );
    hits.sort_unstable();
    let mut counts: Vec<(usize, f32)> = Vec::new();
    for b in hits {
        match counts.last_mut() {
            Some((last, n)) if *last == b => *n += 1.0,
            _ => counts.push((b, 1.0)),
        }
    }
    counts
}

/// Inverse document frequency per bucket, smoothed as
/// `ln((1 + n) / (1 + df)) + 1` so that no weight is zero.
pub fn inverse_document_frequency<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    buckets: usize,
) -> Vec<f32> {
    let mut document_frequency = vec![0u32; buckets];
    let mut documents = 0u32;
    for text in texts {
        documents += 1;
        for (b, _) in term_counts(text, buckets) {
            document_frequency[b] += 1;
        }
    }
    document_frequency
        .into_iter()
        .map(|df| ((1.0 + documents as f32) / (1.0 + df as f32)).ln() + 1.0)
        .collect()
}

/// The dense feature vector of `text`: sublinear term frequency
/// (`1 + ln count`) times `idf`, scaled to unit length.
pub fn features(text: &str, idf: &[f32]) -> Vec<f32> {
    let mut dense = vec![0f32; idf.len()];
    for (b, count) in term_counts(text, idf.len()) {
        dense[b] = (1.0 + count.ln()) * idf[b];
    }
    let norm = dense.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        dense.iter_mut().for_each(|v| *v /= norm);
    }
    dense
}

/// The text features of `text` the skin-type head reads: TF-IDF over `idf`
/// (nothing when it is empty), then the ingredient functions when asked.
pub fn text_features(text: &str, idf: &[f32], functions: bool) -> Vec<f32> {
    let mut row = if idf.is_empty() {
        Vec::new()
    } else {
        features(text, idf)
    };
    if functions {
        row.extend(crate::functions::features(text));
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercase_alphanumeric_runs() {
        assert_eq!(
            words("Cetearyl Alcohol, Parfum/Fragrance (Café)"),
            ["cetearyl", "alcohol", "parfum", "fragrance", "café"]
        );
        assert!(words(" ,.;<>").is_empty());
        assert_eq!(words(&"a ".repeat(10_000)).len(), MAX_WORDS);
    }

    #[test]
    fn counts_cover_words_and_pairs() {
        let counts = term_counts("water water glycerin", 1 << 20);
        let total: f32 = counts.iter().map(|c| c.1).sum();
        assert_eq!(total, 5.0, "three words and two pairs");
        assert!(counts.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(term_counts("anything", 0).is_empty());
    }

    #[test]
    fn rare_terms_weigh_more_and_vectors_are_unit_length() {
        let texts = ["water glycerin", "water niacinamide", "water"];
        let idf = inverse_document_frequency(texts, 64);
        let water = bucket("water", 64);
        let niacinamide = bucket("niacinamide", 64);
        assert!(idf[niacinamide] > idf[water] || niacinamide == water);
        let v = features("water niacinamide", &idf);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(features("", &idf).iter().all(|&x| x == 0.0));
    }
}
