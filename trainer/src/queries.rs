//! Search queries and what makes a product relevant to them.
//!
//! A [`Query`] is a text and a [`Need`]: rules over the catalog (product
//! type, retailer skin-type labels, the concern lexicon, ingredients, brand,
//! name). The templated benchmark suites, the generated training phrasings
//! and the hand-written held-out suites in `data/eval/` all describe their
//! relevance this way, so one rule decides every judgement.
//!
//! The relevance rule, the templated suites and the held-out suites stay
//! together: every suite is judged by the same `Need`.

use milih_catalog::{Catalog, Product, SKIN_TYPES};
use milih_rank::avoid::caught_by;
use milih_rank::concerns::CONCERNS;
use milih_rank::wording;

/// What a shopper asks for. A product is relevant when it meets every rule
/// that is set; an empty `Need` would match everything and is never built.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Need {
    /// The product's type is one of these (empty: any type).
    pub types: Vec<String>,
    /// The retailer labeled the product for every one of these skin types
    /// (unlabeled products never qualify).
    pub skins: Vec<usize>,
    /// The product addresses at least one of these concerns (indices into
    /// [`CONCERNS`]).
    pub concerns: Vec<usize>,
    /// The ingredient list contains at least one of these (folded text).
    pub ingredients: Vec<String>,
    /// A known ingredient list without fragrance or parfum.
    pub free_of_fragrance: bool,
    /// The folded brand contains this.
    pub brand: Option<String>,
    /// The folded name contains every one of these words.
    pub name: Vec<String>,
    /// Exactly this product (its own name asked for, in training).
    pub product: Option<usize>,
}

/// How a query weighs in the embedding head's training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Describes a kind of product (type, skin, concern, ingredient).
    Descriptive,
    /// Names a brand or one product.
    Named,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub text: String,
    pub need: Need,
    pub kind: Kind,
}

impl Query {
    pub fn descriptive(text: impl Into<String>, need: Need) -> Self {
        Self {
            text: text.into(),
            need,
            kind: Kind::Descriptive,
        }
    }

    pub fn named(text: impl Into<String>, need: Need) -> Self {
        Self {
            text: text.into(),
            need,
            kind: Kind::Named,
        }
    }

    pub fn is_relevant(&self, facts: &Facts) -> bool {
        self.need.is_met_by(facts)
    }
}

/// The avoid group whose members mean added fragrance, as the page's
/// filter reads it ([`milih_rank::avoid`]).
const FRAGRANCE: &str = "fragrance";

/// What relevance reads of one product, computed once: folded brand, name
/// and ingredients, the concerns it addresses.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub product: &'a Product,
    brand: String,
    name: String,
    ingredients: Option<String>,
    concerns: Vec<bool>,
    /// Whether the ingredient list names no fragrance (`None`: no list).
    fragrance_free: Option<bool>,
}

impl<'a> Facts<'a> {
    pub fn of(product: &'a Product) -> Self {
        Self {
            product,
            brand: fold(&product.brand),
            name: fold(&product.name),
            ingredients: product.ingredients.as_deref().map(fold),
            concerns: CONCERNS.iter().map(|c| c.addressed_by(product)).collect(),
            fragrance_free: caught_by(FRAGRANCE, product).map(|found| found.is_empty()),
        }
    }

    /// The facts of every product, in catalog order.
    pub fn all(catalog: &'a Catalog) -> Vec<Self> {
        catalog.products.iter().map(Facts::of).collect()
    }

    /// The concerns (indices into [`CONCERNS`]) the product's list addresses.
    pub fn concerns(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.concerns.len()).filter(|&c| self.concerns[c])
    }

    /// Whether the ingredient list contains `folded` (false when unknown).
    pub fn contains_ingredient(&self, folded: &str) -> bool {
        self.ingredients
            .as_deref()
            .is_some_and(|list| list.contains(folded))
    }
}

impl Need {
    pub fn is_met_by(&self, facts: &Facts) -> bool {
        let p = facts.product;
        (self.types.is_empty() || self.types.contains(&p.product_type))
            && self
                .skins
                .iter()
                .all(|&s| p.skin_labels.is_some_and(|l| l[s]))
            && (self.concerns.is_empty() || self.concerns.iter().any(|&c| facts.concerns[c]))
            && (self.ingredients.is_empty()
                || self
                    .ingredients
                    .iter()
                    .any(|i| facts.contains_ingredient(i)))
            && (!self.free_of_fragrance || facts.fragrance_free == Some(true))
            && self
                .brand
                .as_deref()
                .is_none_or(|b| facts.brand.contains(b))
            && self.name.iter().all(|w| facts.name.contains(w.as_str()))
            && self.product.is_none_or(|id| id == p.id)
    }
}

pub use milih_rank::lexical::fold;

/// The templated benchmark suites, in report order. Their queries are also
/// training queries (relevance then only over training products).
pub const TEMPLATED_SUITES: [&str; 3] = [
    "type for skin",
    "type for concern",
    "skin type, no fragrance",
];

/// Every templated benchmark query over the product types of `catalog`,
/// with its suite index into [`TEMPLATED_SUITES`].
pub fn templated_queries(catalog: &Catalog) -> Vec<(usize, Query)> {
    let mut queries = Vec::new();
    for t in product_types(catalog) {
        let lower = t.to_lowercase();
        for (skin, name) in SKIN_TYPES.iter().enumerate() {
            let need = Need {
                types: vec![t.clone()],
                skins: vec![skin],
                ..Need::default()
            };
            let text = wording::for_skin(&[&lower], &[name]);
            queries.push((0, Query::descriptive(text, need)));
        }
        for (concern, c) in CONCERNS.iter().enumerate() {
            let need = Need {
                types: vec![t.clone()],
                concerns: vec![concern],
                ..Need::default()
            };
            queries.push((
                1,
                Query::descriptive(wording::for_concern(&lower, c.phrase), need),
            ));
        }
        for (skin, name) in SKIN_TYPES.iter().enumerate() {
            let need = Need {
                types: vec![t.clone()],
                skins: vec![skin],
                free_of_fragrance: true,
                ..Need::default()
            };
            let text = wording::without_fragrance(&wording::for_skin(&[&lower], &[name]));
            queries.push((2, Query::descriptive(text, need)));
        }
    }
    queries
}

/// The catalog's product types, sorted.
pub fn product_types(catalog: &Catalog) -> Vec<String> {
    let types: std::collections::BTreeSet<&str> = catalog
        .products
        .iter()
        .map(|p| p.product_type.as_str())
        .collect();
    types.into_iter().map(str::to_owned).collect()
}

/// A held-out query suite: hand-written queries that no training step and
/// no choice of settings ever reads.
pub struct HeldOutSuite {
    pub name: &'static str,
    pub file: &'static str,
    pub queries: Vec<Query>,
}

/// Shoppers' own words, one need per line (`data/eval/shopper-voice.tsv`).
const SHOPPER_VOICE: &str = include_str!("../../data/eval/shopper-voice.tsv");
/// Brands, products and ingredients, typos included (`data/eval/named.tsv`).
const NAMED: &str = include_str!("../../data/eval/named.tsv");

/// Suite names of the held-out suites, in report order.
pub const HELD_OUT_SUITES: [&str; 2] = [
    "shopper voice (held out)",
    "brand, product, ingredient (held out)",
];

/// Both held-out suites, parsed.
pub fn held_out_suites() -> Result<Vec<HeldOutSuite>, String> {
    Ok(vec![
        HeldOutSuite {
            name: HELD_OUT_SUITES[0],
            file: "data/eval/shopper-voice.tsv",
            queries: parse_suite(SHOPPER_VOICE, "data/eval/shopper-voice.tsv")?,
        },
        HeldOutSuite {
            name: HELD_OUT_SUITES[1],
            file: "data/eval/named.tsv",
            queries: parse_suite(NAMED, "data/eval/named.tsv")?,
        },
    ])
}

/// Parses a suite file: a header naming the columns, then one query per
/// line. Columns: `query`, and any of `types`, `skin`, `concerns`
/// (comma-separated), `ingredients` (comma-separated, any of), `free_of`
/// (`fragrance`), `brand`, `name` (words that must all appear).
pub fn parse_suite(text: &str, file: &str) -> Result<Vec<Query>, String> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = match lines.next() {
        Some((_, h)) => h.split('\t').collect(),
        None => return Err(format!("{file}: empty")),
    };
    let mut queries = Vec::new();
    for (number, line) in lines {
        let line_no = number + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split('\t').collect();
        if cells.len() != header.len() {
            return Err(format!(
                "{file} line {line_no}: {} fields, the header has {}",
                cells.len(),
                header.len()
            ));
        }
        let list = |cell: &str| -> Vec<String> {
            cell.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut text = None;
        let mut need = Need::default();
        for (column, cell) in header.iter().zip(&cells) {
            let cell = cell.trim();
            match *column {
                "query" => text = Some(cell.to_owned()),
                "types" => need.types = list(cell),
                "skin" => {
                    for s in list(cell) {
                        let index = SKIN_TYPES
                            .iter()
                            .position(|k| k.eq_ignore_ascii_case(&s))
                            .ok_or(format!("{file} line {line_no}: unknown skin type {s:?}"))?;
                        need.skins.push(index);
                    }
                }
                "concerns" => {
                    for c in list(cell) {
                        let index = CONCERNS
                            .iter()
                            .position(|k| k.key == c)
                            .ok_or(format!("{file} line {line_no}: unknown concern {c:?}"))?;
                        need.concerns.push(index);
                    }
                }
                "ingredients" => need.ingredients = list(cell).iter().map(|i| fold(i)).collect(),
                "free_of" => match cell {
                    "" => {}
                    "fragrance" => need.free_of_fragrance = true,
                    other => {
                        return Err(format!("{file} line {line_no}: unknown free_of {other:?}"))
                    }
                },
                "brand" => need.brand = (!cell.is_empty()).then(|| fold(cell)),
                "name" => {
                    need.name = fold(cell)
                        .split(' ')
                        .filter(|w| !w.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                other => return Err(format!("{file}: unknown column {other:?}")),
            }
        }
        let text = text
            .filter(|t| !t.is_empty())
            .ok_or(format!("{file} line {line_no}: no query text"))?;
        if need == Need::default() {
            return Err(format!(
                "{file} line {line_no}: the query names no rule of relevance"
            ));
        }
        let named = need.brand.is_some() || !need.name.is_empty();
        queries.push(if named {
            Query::named(text, need)
        } else {
            Query::descriptive(text, need)
        });
    }
    Ok(queries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: usize, kind: &str, brand: &str, name: &str, list: Option<&str>) -> Product {
        Product {
            id,
            product_type: kind.into(),
            brand: brand.into(),
            name: name.into(),
            price: 10.0,
            rating: 4.0,
            ingredients: list.map(str::to_owned),
            skin_labels: Some([true, false, true, true, false]),
        }
    }

    #[test]
    fn every_rule_of_a_need_must_hold() {
        let p = product(
            3,
            "Moisturizer",
            "LA MER",
            "Crème de la Mer",
            Some("Water, Niacinamide, Parfum"),
        );
        let facts = Facts::of(&p);
        let mut need = Need {
            types: vec!["Moisturizer".into()],
            skins: vec![0],
            brand: Some("la mer".into()),
            name: vec!["creme".into()],
            ingredients: vec!["niacinamide".into()],
            ..Need::default()
        };
        assert!(need.is_met_by(&facts));
        need.free_of_fragrance = true;
        assert!(!need.is_met_by(&facts), "parfum is fragrance");
        need.free_of_fragrance = false;
        need.skins = vec![1];
        assert!(!need.is_met_by(&facts), "not labeled for dry skin");
        need.skins.clear();
        need.concerns = vec![CONCERNS.iter().position(|c| c.key == "dark-spots").unwrap()];
        assert!(need.is_met_by(&facts), "niacinamide addresses dark spots");
    }

    #[test]
    fn held_out_suites_parse_and_each_query_finds_a_product_of_the_catalog() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/cosmetics.csv");
        let catalog = crate::load_catalog(std::path::Path::new(path), &[]).unwrap();
        let facts = Facts::all(&catalog);
        let suites = held_out_suites().unwrap();
        assert!(
            suites[0].queries.len() >= 80,
            "at least 80 shopper-voice queries"
        );
        assert!(
            suites[1].queries.len() >= 60,
            "at least 60 brand, product and ingredient queries"
        );
        for suite in &suites {
            for q in &suite.queries {
                assert!(
                    facts.iter().any(|f| q.is_relevant(f)),
                    "{}: no product is relevant to {:?}",
                    suite.file,
                    q.text
                );
            }
        }
    }

    #[test]
    fn malformed_suite_lines_are_errors_that_name_the_line() {
        let bad = "query\tskin\nfor me\tOily\nfor you\tScaly\n";
        let error = parse_suite(bad, "x.tsv").unwrap_err();
        assert!(
            error.contains("line 3") && error.contains("Scaly"),
            "{error}"
        );
        assert!(parse_suite("query\ttypes\nhello\t\n", "x.tsv")
            .unwrap_err()
            .contains("no rule"));
        assert!(parse_suite("query\ttypes\nhello\n", "x.tsv")
            .unwrap_err()
            .contains("line 2: 1 fields"));
    }
}
