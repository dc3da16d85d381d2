//! The collection's figures: counts by type and brand, retailer-labeled
//! and predicted skin types, every product's place on the map.

use milih_bundle::ExportedCatalog;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Collection statistics shown on the page: the overview and the map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectionStats {
    pub products: usize,
    /// Product types, alphabetical; [`MapPoint::type_index`] points here.
    pub product_types: Vec<String>,
    pub brands: usize,
    pub labels: Vec<String>,
    pub bundle_bytes: u64,
    pub load_millis: f64,
    /// Products whose skin types the retailer labeled.
    pub labeled: usize,
    /// Per product type, most products first.
    pub by_type: Vec<GroupCount>,
    /// Per brand, most products first (ties alphabetical).
    pub by_brand: Vec<GroupCount>,
    /// Per skin type, in label order: how many unlabeled products get each
    /// answer, in [`Answer::ALL`] order.
    pub predicted_answers: Vec<[usize; 4]>,
    /// Every product's place on the embedding map, in catalog order.
    pub map: Vec<MapPoint>,
}

/// Products of one type or brand, and how many carry retailer labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupCount {
    pub name: String,
    pub products: usize,
    pub labeled: usize,
}

impl GroupCount {
    /// Products whose skin types are predicted rather than labeled.
    pub fn predicted(&self) -> usize {
        self.products - self.labeled
    }
}

/// One product on the embedding map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MapPoint {
    pub id: usize,
    pub x: f32,
    pub y: f32,
    pub type_index: usize,
    pub brand: String,
    pub name: String,
}

impl CollectionStats {
    pub fn of(
        catalog: &ExportedCatalog,
        labels: &[String],
        bundle_bytes: u64,
        load_millis: f64,
    ) -> Self {
        let products = &catalog.products;
        let mut types: BTreeMap<&str, GroupCount> = BTreeMap::new();
        let mut brands: BTreeMap<&str, GroupCount> = BTreeMap::new();
        let mut predicted_answers = vec![[0usize; 4]; labels.len()];
        let mut labeled_products = 0;
        for entry in products {
            let p = &entry.product;
            let labeled = usize::from(p.skin_labels.is_some());
            labeled_products += labeled;
            for (groups, name) in [(&mut types, &p.product_type), (&mut brands, &p.brand)] {
                let group = groups.entry(name).or_insert_with(|| GroupCount {
                    name: name.clone(),
                    ..GroupCount::default()
                });
                group.products += 1;
                group.labeled += labeled;
            }
            if p.skin_labels.is_none() {
                for (label, probability) in entry.predicted.iter().enumerate().take(labels.len()) {
                    let answer = catalog.skin_answers.answer(label, *probability);
                    predicted_answers[label][answer.index()] += 1;
                }
            }
        }
        let product_types: Vec<String> = types.keys().map(|t| t.to_string()).collect();
        let map = products
            .iter()
            .map(|entry| MapPoint {
                id: entry.product.id,
                x: entry.map[0],
                y: entry.map[1],
                type_index: product_types
                    .iter()
                    .position(|t| *t == entry.product.product_type)
                    .unwrap_or(0),
                brand: entry.product.brand.clone(),
                name: entry.product.name.clone(),
            })
            .collect();
        let most_first = |groups: BTreeMap<&str, GroupCount>| {
            let mut groups: Vec<GroupCount> = groups.into_values().collect();
            // Stable sort: equal counts stay alphabetical.
            groups.sort_by_key(|g| std::cmp::Reverse(g.products));
            groups
        };
        Self {
            products: products.len(),
            brands: brands.len(),
            product_types,
            labels: labels.to_vec(),
            bundle_bytes,
            load_millis,
            labeled: labeled_products,
            by_type: most_first(types),
            by_brand: most_first(brands),
            predicted_answers,
            map,
        }
    }
}

/// `part` of `whole` as a whole percentage that never rounds to a claim it
/// is not: "100 %" only when all, "0 %" only when none (469 of 471 reads
/// 99 %, 1 of 471 reads 1 %).
pub fn percent_label(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "0%".into();
    }
    let exact = 100.0 * part as f64 / whole as f64;
    let shown = if part == whole || part == 0 {
        exact.round()
    } else {
        exact.round().clamp(1.0, 99.0)
    };
    format!("{shown:.0}%")
}
