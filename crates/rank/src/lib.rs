//! Ranking: cosine similarity between a query embedding and every product
//! embedding, restricted by filters, best first.
//!
//! Embeddings are unit length, so the dot product is the cosine. Product
//! embeddings are kept as int8 with one scale per row ([`Int8Embeddings`]):
//! a quarter of the bytes of f32, scanned with exact integer dot products.
//!
//! Over 200 of its lines are tests of the filters and the top-k scan.

pub mod avoid;
pub mod concerns;
pub mod hybrid;
pub mod lexical;
pub mod likeness;
pub mod skin;
pub mod vocabulary;
pub mod wording;

use avoid::caught_by;
use milih_kernels::{largest_magnitude, quantize_i8, INT8_LEVELS};

use milih_catalog::{Product, NUM_SKIN_TYPES};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

use skin::{Answer, SkinAnswers};

/// What the user asked for. Empty lists do not restrict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// Indices into [`milih_catalog::SKIN_TYPES`]; a product must suit all.
    pub skin_types: Vec<usize>,
    /// Accepted product types (case-insensitive); any one matches.
    pub product_types: Vec<String>,
    /// Ingredients to avoid: a group ("fragrance", "parabens", …, see
    /// [`avoid::AVOID_GROUPS`]) or any other case-insensitive substring.
    pub avoid_ingredients: Vec<String>,
    /// Price bounds, inclusive (the catalog's currency, US dollars).
    #[serde(default)]
    pub min_price: Option<f32>,
    #[serde(default)]
    pub max_price: Option<f32>,
    /// Lowest accepted customer rating (0–5).
    #[serde(default)]
    pub min_rating: Option<f32>,
}

/// How a product fits one skin type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SkinFit {
    /// The retailer says whether it suits.
    Labeled(bool),
    /// No retailer label: the model's probability and what it means
    /// ([`skin`]).
    Predicted { probability: f32, answer: Answer },
}

impl SkinFit {
    /// Whether a skin-type filter keeps the product: labeled for it, or
    /// predicted anything but "unlikely".
    pub fn suits(self) -> bool {
        match self {
            SkinFit::Labeled(suits) => suits,
            SkinFit::Predicted { answer, .. } => answer != Answer::Unlikely,
        }
    }
}

/// The fit of `product` for skin type `index`, given the model's
/// probabilities for it and how they read.
pub fn skin_fit(
    product: &Product,
    predicted: &[f32],
    index: usize,
    answers: &SkinAnswers,
) -> SkinFit {
    match product.skin_labels {
        Some(labels) => SkinFit::Labeled(labels[index]),
        None => {
            let probability = predicted.get(index).copied().unwrap_or(0.0);
            SkinFit::Predicted {
                probability,
                answer: answers.answer(index, probability),
            }
        }
    }
}

impl Filter {
    /// Whether a product passes every filter. A product without a known
    /// ingredient list never passes an avoid filter: nothing shows it is safe.
    pub fn accepts(&self, product: &Product, predicted: &[f32], answers: &SkinAnswers) -> bool {
        let types_ok = self.product_types.is_empty()
            || self
                .product_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&product.product_type));
        let skin_ok = self
            .skin_types
            .iter()
            .all(|&i| i < NUM_SKIN_TYPES && skin_fit(product, predicted, i, answers).suits());
        let avoid_ok = self.avoid_ingredients.iter().all(|term| {
            term.trim().is_empty() || caught_by(term, product).is_some_and(|c| c.is_empty())
        });
        let price_ok = self.min_price.is_none_or(|min| product.price >= min)
            && self.max_price.is_none_or(|max| product.price <= max);
        let rating_ok = self.min_rating.is_none_or(|min| product.rating >= min);
        types_ok && skin_ok && avoid_ok && price_ok && rating_ok
    }
}

/// One ranked product.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub index: usize,
    /// Cosine similarity to the query.
    pub score: f32,
}

/// Row-major embeddings as int8 with one scale per row (`row ≈ values ·
/// scale`).
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Embeddings {
    dim: usize,
    values: Vec<i8>,
    scales: Vec<f32>,
    /// Each row's sum of values (see [`Int8Embeddings::scores`]).
    sums: Vec<i32>,
}

impl Int8Embeddings {
    /// Quantizes row-major f32 rows of `dim` values: each row's largest
    /// magnitude maps to 127, and the scale keeps the row's length.
    pub fn quantize(data: &[f32], dim: usize) -> Self {
        let dim_or_1 = dim.max(1);
        let mut values = vec![0i8; data.len() / dim_or_1 * dim];
        let scales = data
            .chunks_exact(dim_or_1)
            .zip(values.chunks_exact_mut(dim_or_1))
            .map(|(row, out)| {
                let top = largest_magnitude(row);
                if !(top > 0.0 && top.is_finite()) {
                    return 0.0;
                }
                quantize_i8(row, INT8_LEVELS / top, out);
                // The scale that keeps the row's length: unit rows stay unit,
                // so a dot product with them is still a cosine.
                let norm = |values: &mut dyn Iterator<Item = f64>| {
                    values.map(|v| v * v).sum::<f64>().sqrt()
                };
                let length = norm(&mut row.iter().map(|&v| f64::from(v)));
                let steps = norm(&mut out.iter().map(|&q| f64::from(q)));
                if steps > 0.0 {
                    (length / steps) as f32
                } else {
                    top / INT8_LEVELS
                }
            })
            .collect();
        Self {
            dim,
            sums: milih_kernels::row_sums(&values, dim),
            values,
            scales,
        }
    }

    /// Embeddings from stored parts; refuses sizes that do not agree,
    /// values of -128 and scales that are negative or not finite.
    pub fn from_parts(dim: usize, values: Vec<i8>, scales: Vec<f32>) -> Result<Self, String> {
        if dim == 0 || values.len() != scales.len() * dim {
            return Err(format!(
                "{} values and {} scales are not rows of {dim}",
                values.len(),
                scales.len()
            ));
        }
        if let Some(i) = scales.iter().position(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(format!("row {i} has scale {}", scales[i]));
        }
        if let Some(i) = values.iter().position(|&v| v == i8::MIN) {
            return Err(format!("row {} has value -128, outside ±127", i / dim));
        }
        Ok(Self {
            dim,
            sums: milih_kernels::row_sums(&values, dim),
            values,
            scales,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn rows(&self) -> usize {
        self.scales.len()
    }

    pub fn values(&self) -> &[i8] {
        &self.values
    }

    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Row `index` as f32.
    pub fn row(&self, index: usize) -> Vec<f32> {
        let scale = self.scales[index];
        self.values[index * self.dim..(index + 1) * self.dim]
            .iter()
            .map(|&q| f32::from(q) * scale)
            .collect()
    }

    /// The score of every row against `query`, four rows at a time,
    /// passed to `each(index, score)` in row order.
    ///
    /// The query is quantized to 14 bits and split in two 7-bit halves,
    /// `q = 128 · (high - 64) + low` with `high` and `low` in 0..=127, so
    /// that both multiply the int8 rows in the narrow kernel (one relaxed
    /// SIMD instruction per 16 products): `Σ w q = 128 · (Σ w high - 64 Σ w)
    /// + Σ w low`, exact in integers.
    fn scores(&self, query: &[f32], mut each: impl FnMut(usize, f32)) {
        const LEVELS: f32 = 8_191.0;
        let mut quantized = vec![0i16; self.dim];
        let query_scale = milih_kernels::quantize_i16(query, LEVELS, &mut quantized);
        let high: Vec<u8> = quantized.iter().map(|&q| ((q >> 7) + 64) as u8).collect();
        let low: Vec<u8> = quantized.iter().map(|&q| (q & 127) as u8).collect();
        let x = [high.as_slice(), low.as_slice()];
        let row = |i: usize| &self.values[i * self.dim..(i + 1) * self.dim];
        let score = |i: usize, high: i32, low: i32| {
            let sum = 128 * (i64::from(high) - 64 * i64::from(self.sums[i])) + i64::from(low);
            sum as f32 * (query_scale * self.scales[i])
        };
        let rows = self.rows();
        let mut i = 0;
        while i + 4 <= rows {
            let [high, low] =
                milih_kernels::dot_tile_narrow(x, [row(i), row(i + 1), row(i + 2), row(i + 3)]);
            for j in 0..4 {
                each(i + j, score(i + j, high[j], low[j]));
            }
            i += 4;
        }
        for i in i..rows {
            let [[high], [low]] = milih_kernels::dot_tile_narrow(x, [row(i)]);
            each(i, score(i, high, low));
        }
    }
}

/// The `k` rows of `embeddings` most similar to `query` among those
/// `accept` admits, best first; ties go to the lower row.
///
/// One pass, no allocation beyond the `k` best: each row's score is compared
/// with the worst kept one, so ranking 100,000 products costs their dot
/// products and little else.
pub fn top_k(
    query: &[f32],
    embeddings: &Int8Embeddings,
    k: usize,
    accept: impl Fn(usize) -> bool,
) -> Vec<Hit> {
    top_k_adjusted(query, embeddings, k, accept, |_, score| score)
}

/// [`top_k`] by `adjust(index, cosine)` instead of the cosine alone (the
/// word matches of a search, [`lexical::Fusion`]).
pub fn top_k_adjusted(
    query: &[f32],
    embeddings: &Int8Embeddings,
    k: usize,
    accept: impl Fn(usize) -> bool,
    adjust: impl Fn(usize, f32) -> f32,
) -> Vec<Hit> {
    if embeddings.dim == 0 || query.len() != embeddings.dim || k == 0 {
        return Vec::new();
    }
    let better = |a: &Hit, b: &Hit| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(Ordering::Equal)
            .then(a.index.cmp(&b.index))
    };
    let mut best: Vec<Hit> = Vec::with_capacity(k + 1);
    embeddings.scores(query, |index, cosine| {
        let score = adjust(index, cosine);
        // Rows come in index order, so an equal score never displaces a kept
        // one: only a strictly better score gets in once `k` are kept.
        let beats_worst = |worst: &Hit| score.partial_cmp(&worst.score) == Some(Ordering::Greater);
        if best.len() == k && !best.last().is_some_and(beats_worst) {
            return;
        }
        if !accept(index) {
            return;
        }
        let hit = Hit { index, score };
        let at = best.partition_point(|kept| better(kept, &hit) != Ordering::Greater);
        best.insert(at, hit);
        best.truncate(k);
    });
    best
}

/// Dot product; the cosine of two unit vectors.
///
/// Eight independent partial sums: the compiler keeps them in SIMD lanes
/// (simd128 in the browser), where a single running sum would force one
/// addition after another.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut sums = [0f32; LANES];
    let mut a_chunks = a.chunks_exact(LANES);
    let mut b_chunks = b.chunks_exact(LANES);
    for (x, y) in (&mut a_chunks).zip(&mut b_chunks) {
        for lane in 0..LANES {
            sums[lane] += x[lane] * y[lane];
        }
    }
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let [s0, s1, s2, s3, s4, s5, s6, s7] = sums;
    ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7)) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(kind: &str, labels: Option<[bool; 5]>, ingredients: Option<&str>) -> Product {
        Product {
            id: 0,
            product_type: kind.into(),
            brand: "B".into(),
            name: "N".into(),
            price: 10.0,
            rating: 4.0,
            ingredients: ingredients.map(String::from),
            skin_labels: labels,
        }
    }

    #[test]
    fn top_k_orders_by_cosine_and_respects_the_filter() {
        // Three 2-d unit vectors.
        let embeddings = Int8Embeddings::quantize(&[1.0, 0.0, 0.0, 1.0, 0.6, 0.8], 2);
        let hits = top_k(&[1.0, 0.0], &embeddings, 2, |_| true);
        assert_eq!(hits.iter().map(|h| h.index).collect::<Vec<_>>(), vec![0, 2]);
        assert!((hits[1].score - 0.6).abs() < 5e-3);
        let hits = top_k(&[1.0, 0.0], &embeddings, 5, |i| i != 0);
        assert_eq!(hits.iter().map(|h| h.index).collect::<Vec<_>>(), vec![2, 1]);
        assert!(
            top_k(&[1.0], &embeddings, 5, |_| true).is_empty(),
            "wrong query dimension"
        );
    }

    #[test]
    fn ties_go_to_the_lower_row() {
        let embeddings = Int8Embeddings::quantize(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0], 2);
        let hits = top_k(&[0.0, 1.0], &embeddings, 2, |_| true);
        assert_eq!(hits.iter().map(|h| h.index).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn skin_filter_uses_labels_and_predictions_for_unlabeled() {
        let dry = Filter {
            skin_types: vec![1],
            ..Filter::default()
        };
        let no_p = [0.0; 5];
        let answers = SkinAnswers {
            labels: vec![
                skin::LabelAnswers {
                    unseen_brand_auroc: 0.7,
                    likely_at: Some(0.8),
                    unlikely_at: Some(0.4),
                };
                5
            ],
        };
        assert!(dry.accepts(
            &product("Moisturizer", Some([true, true, false, false, false]), None),
            &no_p,
            &answers
        ));
        // Labeled "not for dry" is out whatever the model says.
        assert!(!dry.accepts(
            &product("Moisturizer", Some([true, false, true, true, true]), None),
            &[1.0; 5],
            &answers
        ));
        // Unlabeled: the answer decides; "unsure" stays in.
        assert!(dry.accepts(
            &product("Moisturizer", None, None),
            &[0.0, 0.7, 0.0, 0.0, 0.0],
            &answers
        ));
        assert!(!dry.accepts(
            &product("Moisturizer", None, None),
            &[0.9, 0.3, 0.9, 0.9, 0.9],
            &answers
        ));
        // Without thresholds every prediction is "unknown", never excluded.
        assert!(dry.accepts(
            &product("Moisturizer", None, None),
            &[0.9, 0.3, 0.9, 0.9, 0.9],
            &SkinAnswers::default()
        ));
    }

    #[test]
    fn price_range_and_minimum_rating() {
        let p = vec![0.5; 5];
        let mut cheap = product("Cleanser", None, None);
        cheap.price = 12.0;
        cheap.rating = 3.9;
        let filter = |min_price, max_price, min_rating| Filter {
            min_price,
            max_price,
            min_rating,
            ..Filter::default()
        };
        assert!(filter(Some(12.0), Some(12.0), Some(3.9)).accepts(
            &cheap,
            &p,
            &SkinAnswers::default()
        ));
        assert!(!filter(Some(12.5), None, None).accepts(&cheap, &p, &SkinAnswers::default()));
        assert!(!filter(None, Some(11.0), None).accepts(&cheap, &p, &SkinAnswers::default()));
        assert!(!filter(None, None, Some(4.0)).accepts(&cheap, &p, &SkinAnswers::default()));
        assert!(filter(None, None, None).accepts(&cheap, &p, &SkinAnswers::default()));
    }

    #[test]
    fn product_type_and_avoid_filters() {
        let filter = Filter {
            product_types: vec!["moisturizer".into(), "Cleanser".into()],
            avoid_ingredients: vec!["Fragrance".into()],
            ..Filter::default()
        };
        let p = [0.0; 5];
        assert!(filter.accepts(
            &product("Moisturizer", None, Some("Water, Glycerin")),
            &p,
            &SkinAnswers::default()
        ));
        assert!(!filter.accepts(
            &product("Moisturizer", None, Some("Water, Fragrance")),
            &p,
            &SkinAnswers::default()
        ));
        assert!(!filter.accepts(
            &product("Face Mask", None, Some("Water")),
            &p,
            &SkinAnswers::default()
        ));
        // Unknown ingredients cannot be shown to be free of fragrance.
        assert!(!filter.accepts(
            &product("Cleanser", None, None),
            &p,
            &SkinAnswers::default()
        ));
        // Blank avoid terms do not restrict.
        let blank = Filter {
            avoid_ingredients: vec![" ".into()],
            ..Filter::default()
        };
        assert!(blank.accepts(
            &product("Cleanser", None, None),
            &p,
            &SkinAnswers::default()
        ));
    }

    #[test]
    fn the_lane_parallel_dot_product_matches_a_plain_sum() {
        let a: Vec<f32> = (0..389)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let b: Vec<f32> = (0..389)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
            .collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
        assert!((f64::from(dot(&a, &b)) - plain).abs() < 1e-4);
        assert_eq!(dot(&a[..3], &b), a[0] * b[0] + a[1] * b[1] + a[2] * b[2]);
        assert_eq!(dot(&[], &b), 0.0);
    }

    #[test]
    fn one_pass_top_k_agrees_with_sorting_everything() {
        // 389 columns: SIMD steps and a tail; 501 rows: groups of four and a rest.
        let dim = 389;
        let rows = 501;
        let mut state = 7u32;
        let mut next = || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let mut data: Vec<f32> = (0..rows * dim).map(|_| next()).collect();
        for row in data.chunks_mut(dim) {
            let norm = dot(row, row).sqrt();
            row.iter_mut().for_each(|v| *v /= norm);
        }
        // Exact ties: rows 100 and 300 copy row 7.
        let seven = data[7 * dim..8 * dim].to_vec();
        data[100 * dim..101 * dim].copy_from_slice(&seven);
        data[300 * dim..301 * dim].copy_from_slice(&seven);
        let embeddings = Int8Embeddings::quantize(&data, dim);
        let query = seven;
        let accept = |i: usize| i % 3 != 2;
        let mut everything: Vec<Hit> = Vec::new();
        embeddings.scores(&query, |index, score| {
            if accept(index) {
                everything.push(Hit { index, score });
            }
        });
        everything.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
        for k in [1, 2, 3, 10, 400] {
            let hits = top_k(&query, &embeddings, k, accept);
            assert_eq!(hits, everything[..k.min(everything.len())], "k = {k}");
        }
        let tied: Vec<usize> = top_k(&query, &embeddings, 3, accept)
            .iter()
            .map(|h| h.index)
            .collect();
        assert_eq!(tied, [7, 100, 300]);
        // Unit rows stay unit, and the int8 scores stay close to the f32 dot products.
        for i in 0..rows {
            let row = embeddings.row(i);
            assert!((dot(&row, &row) - 1.0).abs() < 1e-5, "row {i}");
        }
        for hit in &everything {
            let exact = dot(&query, &data[hit.index * dim..(hit.index + 1) * dim]);
            assert!((hit.score - exact).abs() < 2e-3, "{hit:?} vs {exact}");
        }
    }

    #[test]
    fn stored_parts_are_checked() {
        let ok = Int8Embeddings::from_parts(2, vec![1, 2, 3, 4], vec![0.1, 0.2]).unwrap();
        assert_eq!(ok.row(1), vec![3.0 * 0.2, 4.0 * 0.2]);
        for (values, scales, why) in [
            (
                vec![1, 2, 3],
                vec![0.1, 0.2],
                "3 values and 2 scales are not rows of 2",
            ),
            (vec![1, 2, 3, 4], vec![0.1, f32::NAN], "row 1 has scale NaN"),
            (vec![1, 2, -128, 4], vec![0.1, 0.2], "row 1 has value -128"),
        ] {
            let error = Int8Embeddings::from_parts(2, values, scales).unwrap_err();
            assert!(error.contains(why), "{error}");
        }
    }
}
