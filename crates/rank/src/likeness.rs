//! Product-to-product likeness without the brand's house style.
//!
//! A product's embedding carries its brand: products of one house share
//! name words, marketing phrases and signature ingredient lists, so raw
//! nearest neighbours are mostly the same brand's other products. "Similar
//! products" should instead answer "what else is like this", across brands.
//!
//! The brand's style is estimated from the catalog at hand, from its own
//! brand and type columns, never from labels: each product's residual from
//! the mean of its product type, averaged over the brand's *other* products
//! (leave-one-out, so a brand's only product keeps all of its identity, and
//! shrunk toward zero for small brands), is subtracted from the product's
//! embedding. Type information stays (the type means are untouched); what
//! the brand's products share beyond their types goes.

use crate::Int8Embeddings;
use milih_catalog::Product;
use std::collections::HashMap;

/// How many products' worth of "no brand style" a brand's offset is
/// shrunk toward: a brand with two products has its sibling's residual
/// halved, a brand with fifty keeps almost all of it.
pub const BRAND_PRIOR: f32 = 1.0;

/// Rounds of alternating type means and brand offsets; the fit settles in
/// a few.
const FIT_ROUNDS: usize = 8;

/// Unit rows (row-major, `dim` values each) with each product's brand
/// style removed, for product-to-product similarity. `brands[i]` and
/// `types[i]` name row `i`'s brand and product type; they are compared
/// case-insensitively after trimming. Rows that end up zero stay zero.
///
/// # Panics
/// Never: rows beyond the shorter of `brands`, `types` and the embeddings
/// are left out.
pub fn brand_neutral(rows: &[f32], dim: usize, brands: &[&str], types: &[&str]) -> Vec<f32> {
    if dim == 0 {
        return Vec::new();
    }
    let n = (rows.len() / dim).min(brands.len()).min(types.len());
    let row = |i: usize| &rows[i * dim..(i + 1) * dim];
    let key = |s: &str| s.trim().to_lowercase();

    let type_of: Vec<usize> = group_ids(types[..n].iter().map(|t| key(t)));
    let brand_of: Vec<usize> = group_ids(brands[..n].iter().map(|b| key(b)));

    // Type means and brand offsets fitted together (an additive two-way
    // model, by alternating means): a type that one brand dominates would
    // otherwise take that brand's style into its mean.
    let residual = |type_means: &[Vec<f32>], i: usize| -> Vec<f32> {
        let mean = &type_means[type_of[i]];
        row(i).iter().zip(mean).map(|(v, m)| v - m).collect()
    };
    let brand_count = count(&brand_of);
    let mut brand_offsets = vec![vec![0f32; dim]; brand_count.len()];
    let mut type_means = Vec::new();
    for _ in 0..FIT_ROUNDS {
        type_means = group_means(n, dim, &type_of, |i| {
            let offset = &brand_offsets[brand_of[i]];
            row(i).iter().zip(offset).map(|(v, o)| v - o).collect()
        });
        let mut sums = vec![vec![0f32; dim]; brand_count.len()];
        for i in 0..n {
            add_to(&mut sums[brand_of[i]], &residual(&type_means, i));
        }
        for (offset, (sum, &c)) in brand_offsets.iter_mut().zip(sums.iter().zip(&brand_count)) {
            for (o, s) in offset.iter_mut().zip(sum) {
                *o = s / (c as f32 + BRAND_PRIOR);
            }
        }
    }
    let mut brand_sums = vec![vec![0f32; dim]; brand_count.len()];
    for i in 0..n {
        add_to(&mut brand_sums[brand_of[i]], &residual(&type_means, i));
    }

    let mut out = vec![0f32; n * dim];
    for i in 0..n {
        let b = brand_of[i];
        let others = (brand_count[b] - 1) as f32;
        let own = residual(&type_means, i);
        let target = &mut out[i * dim..(i + 1) * dim];
        for (k, value) in target.iter_mut().enumerate() {
            let offset = (brand_sums[b][k] - own[k]) / (others + BRAND_PRIOR);
            *value = row(i)[k] - offset;
        }
        normalize(target);
    }
    out
}

/// [`brand_neutral`] with each row's brand and type read from its product.
pub fn brand_neutral_products<'a>(
    rows: &[f32],
    dim: usize,
    products: impl IntoIterator<Item = &'a Product>,
) -> Vec<f32> {
    let (brands, types): (Vec<&str>, Vec<&str>) = products
        .into_iter()
        .map(|p| (p.brand.as_str(), p.product_type.as_str()))
        .unzip();
    brand_neutral(rows, dim, &brands, &types)
}

/// [`brand_neutral_products`] over int8 product embeddings, kept as int8:
/// the rows "Similar products" ranks by.
pub fn brand_neutral_int8<'a>(
    embeddings: &Int8Embeddings,
    products: impl IntoIterator<Item = &'a Product>,
) -> Int8Embeddings {
    let rows: Vec<f32> = (0..embeddings.rows())
        .flat_map(|i| embeddings.row(i))
        .collect();
    let dim = embeddings.dim();
    Int8Embeddings::quantize(&brand_neutral_products(&rows, dim, products), dim)
}

/// Dense ids, in order of first appearance, for equal keys.
fn group_ids(keys: impl Iterator<Item = String>) -> Vec<usize> {
    let mut ids = HashMap::new();
    keys.map(|k| {
        let next = ids.len();
        *ids.entry(k).or_insert(next)
    })
    .collect()
}

fn count(ids: &[usize]) -> Vec<usize> {
    let mut counts = vec![0; ids.iter().max().map_or(0, |m| m + 1)];
    for &id in ids {
        counts[id] += 1;
    }
    counts
}

fn group_means(
    n: usize,
    dim: usize,
    ids: &[usize],
    row: impl Fn(usize) -> Vec<f32>,
) -> Vec<Vec<f32>> {
    let counts = count(ids);
    let mut sums = vec![vec![0f32; dim]; counts.len()];
    for i in 0..n {
        add_to(&mut sums[ids[i]], &row(i));
    }
    for (sum, &c) in sums.iter_mut().zip(&counts) {
        sum.iter_mut().for_each(|v| *v /= c as f32);
    }
    sums
}

fn add_to(sum: &mut [f32], values: &[f32]) {
    sum.iter_mut().zip(values).for_each(|(s, v)| *s += v);
}

fn normalize(values: &mut [f32]) {
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        values.iter_mut().for_each(|v| *v /= norm);
    } else {
        values.iter_mut().for_each(|v| *v = 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        normalize(&mut v);
        v
    }

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn a_shared_brand_style_no_longer_makes_products_alike() {
        // Axis 0: cleanser; axis 1: serum; axis 2: brand A's house style;
        // axis 3: what the products are actually about (hydration).
        let a_cleanser = unit(&[1.0, 0.0, 2.0, 0.0]);
        let mut rows = vec![unit(&[0.0, 1.0, 2.0, 0.0])]; // A serum
        let mut brands = vec!["a "];
        let mut types = vec!["Serum"];
        for _ in 0..5 {
            rows.push(a_cleanser.clone());
            brands.push("A");
            types.push("cleanser");
        }
        rows.push(unit(&[0.0, 1.0, 0.0, 0.0])); // D serum
        rows.push(unit(&[1.0, 0.0, 0.0, 0.5])); // B hydrating cleanser
        rows.push(unit(&[1.0, 0.0, 0.0, 0.5])); // C hydrating cleanser
        brands.extend(["D", "B", "C"]);
        types.extend(["Serum", "Cleanser", "Cleanser"]);
        let rows = rows.concat();
        let row_of = |v: &[f32], i: usize| v[i * 4..(i + 1) * 4].to_vec();
        assert!(
            cos(&row_of(&rows, 0), &row_of(&rows, 1)) > cos(&row_of(&rows, 0), &row_of(&rows, 6))
        );

        let out = brand_neutral(&rows, 4, &brands, &types);
        let row = |i: usize| row_of(&out, i);
        for i in 0..9 {
            assert!(
                (cos(&row(i), &row(i)) - 1.0).abs() < 1e-5,
                "row {i} is unit"
            );
        }
        // Now A's serum is nearer the other brand's serum than its own
        // brand's cleansers.
        assert!(cos(&row(0), &row(6)) > cos(&row(0), &row(1)));
        // B's and C's identical products (single-product brands) keep
        // their identity and stay each other's twin.
        assert!((cos(&row(7), &row(8)) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn a_brand_of_one_keeps_its_embedding() {
        let rows = [unit(&[0.6, 0.8]), unit(&[1.0, 0.0])].concat();
        let out = brand_neutral(&rows, 2, &["A", "B"], &["Serum", "Serum"]);
        for (a, b) in out.iter().zip(&rows) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn short_or_empty_inputs_give_what_they_can() {
        assert!(brand_neutral(&[], 0, &[], &[]).is_empty());
        assert!(brand_neutral(&[1.0, 0.0], 2, &[], &[]).is_empty());
        let out = brand_neutral(&[0.0, 0.0], 2, &["A"], &["Serum"]);
        assert_eq!(out, vec![0.0, 0.0]);
    }
}
