//! A search's ranking as the page runs it: the embedding's cosine, plus
//! what the shopper's words match by name ([`Lexicon`]) and a boost for
//! products holding an active of a concern asked for, weighed by the
//! bundle's [`Fusion`]; and how close the best results are ([`Closeness`]).

use crate::concerns::concern_bits;
use crate::lexical::{Closeness, Lexicon, Ranking, NUM_FIELDS};
use crate::{top_k_adjusted, Hit, Int8Embeddings};
use milih_catalog::Product;
use std::cell::Cell;

/// The catalog's words and, per product, the concerns its list addresses
/// (bit `c` for [`CONCERNS`]`[c]`), built once when a catalog loads.
#[derive(Debug, Clone, Default)]
pub struct SearchWords {
    lexicon: Lexicon,
    concerns: Vec<u16>,
}

/// The best products of a search and what the page says about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub hits: Vec<Hit>,
    pub closeness: Closeness,
}

impl SearchWords {
    pub fn new(products: &[&Product]) -> Self {
        let concerns = products.iter().map(|p| concern_bits(p)).collect();
        Self {
            lexicon: Lexicon::new(products.iter().copied()),
            concerns,
        }
    }

    /// The `k` best products `accept` admits for a search whose free text
    /// is `text` (the words typed, wishes taken out), whose concerns chosen
    /// in the form are `asked`, and whose embedding is `query`;
    /// `is_common` tells ordinary words from names ([`Ranking::closeness`]).
    #[allow(clippy::too_many_arguments)]
    pub fn rank(
        &self,
        ranking: &Ranking,
        text: &str,
        asked: &[usize],
        query: &[f32],
        embeddings: &Int8Embeddings,
        k: usize,
        accept: impl Fn(usize) -> bool,
        is_common: impl Fn(&str) -> bool,
    ) -> Ranked {
        let read = self.lexicon.analyze(text);
        let matches = self.lexicon.matches(&read);
        let mut concern_bits = 0u16;
        for &c in asked.iter().chain(&read.concerns) {
            concern_bits |= 1 << c;
        }
        let best_dense = Cell::new(f32::NEG_INFINITY);
        let hits = top_k_adjusted(query, embeddings, k, accept, |index, cosine| {
            best_dense.set(best_dense.get().max(cosine));
            let fields = matches
                .get(&(index as u32))
                .copied()
                .unwrap_or([0.0; NUM_FIELDS]);
            let concern = self
                .concerns
                .get(index)
                .is_some_and(|b| b & concern_bits != 0);
            ranking.fusion.score(cosine, fields, concern)
        });
        Ranked {
            hits,
            closeness: ranking.closeness(&read, !matches.is_empty(), best_dense.get(), is_common),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concerns::CONCERNS;
    use crate::lexical::Fusion;

    fn product(brand: &str, name: &str, ingredients: &str) -> Product {
        Product {
            id: 0,
            product_type: "Treatment".into(),
            brand: brand.into(),
            name: name.into(),
            price: 20.0,
            rating: 4.0,
            ingredients: Some(ingredients.into()),
            skin_labels: None,
        }
    }

    fn setup() -> (Vec<Product>, Int8Embeddings) {
        let products = vec![
            product("ALPHA", "Clear Serum", "Water, Salicylic Acid"),
            product("BETA", "Glow Serum", "Water, Glycerin"),
            product("GAMMA", "Calm Serum", "Water, Glycerin"),
        ];
        // The embedding prefers the last product for any query.
        let rows = [0.6, 0.8, 0.8, 0.6, 1.0, 0.0];
        (products, Int8Embeddings::quantize(&rows, 2))
    }

    fn ranking() -> Ranking {
        Ranking {
            fusion: Fusion {
                fields: [0.5, 0.2, 0.2],
                concern: 0.5,
            },
            nothing_close_below: 0.5,
        }
    }

    #[test]
    fn a_brand_named_ranks_its_product_first() {
        let (products, embeddings) = setup();
        let refs: Vec<&Product> = products.iter().collect();
        let words = SearchWords::new(&refs);
        let ranked = words.rank(
            &ranking(),
            "beta",
            &[],
            &[1.0, 0.0],
            &embeddings,
            3,
            |_| true,
            |_| false,
        );
        assert_eq!(ranked.hits[0].index, 1);
        assert_eq!(ranked.closeness, Closeness::Close);
    }

    #[test]
    fn a_concern_in_words_raises_the_products_with_its_actives() {
        let (products, embeddings) = setup();
        let refs: Vec<&Product> = products.iter().collect();
        let words = SearchWords::new(&refs);
        let ranked = words.rank(
            &ranking(),
            "serum for breakouts",
            &[],
            &[1.0, 0.0],
            &embeddings,
            3,
            |_| true,
            |_| false,
        );
        assert_eq!(ranked.hits[0].index, 0);
        let acne = CONCERNS.iter().position(|c| c.key == "acne").unwrap();
        assert_eq!(
            crate::lexical::concerns_named("serum for breakouts"),
            vec![acne]
        );
        // Chosen in the form instead of typed: the same boost.
        let ranked = words.rank(
            &ranking(),
            "",
            &[acne],
            &[1.0, 0.0],
            &embeddings,
            3,
            |_| true,
            |_| false,
        );
        assert_eq!(ranked.hits[0].index, 0);
    }

    #[test]
    fn weak_matches_of_unknown_words_say_nothing_is_close() {
        let (products, embeddings) = setup();
        let refs: Vec<&Product> = products.iter().collect();
        let words = SearchWords::new(&refs);
        // Every product scores 0.2 or less against this query.
        let query = [0.2, -0.98];
        let ranked = words.rank(
            &ranking(),
            "xqzvw",
            &[],
            &query,
            &embeddings,
            3,
            |_| true,
            |_| false,
        );
        assert_eq!(ranked.closeness, Closeness::NothingClose);
        let ranked = words.rank(
            &ranking(),
            "cetaphil",
            &[],
            &[1.0, 0.0],
            &embeddings,
            3,
            |_| true,
            |_| false,
        );
        assert_eq!(
            ranked.closeness,
            Closeness::UnknownWords(vec!["cetaphil".into()])
        );
    }
}
