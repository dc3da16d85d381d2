//! The Milih product catalog: the product record, the CSV reader and the
//! clean-up of the retailer's placeholder values.
//!
//! Pure code: it reads from any `std::io::Read` and never touches files, so it
//! runs unchanged in the trainer and in the browser.

mod ingredients;
mod reader;

pub use ingredients::{clean_ingredients, ingredient_items, ingredient_list};
pub use reader::{read_catalog, CatalogError, ColumnMap, MAX_FIELD_BYTES};

use serde::{Deserialize, Serialize};

/// The skin types Milih predicts, in the order of the model's outputs.
pub const SKIN_TYPES: [&str; 5] = ["Combination", "Dry", "Normal", "Oily", "Sensitive"];

/// Number of skin-type labels.
pub const NUM_SKIN_TYPES: usize = SKIN_TYPES.len();

/// One product of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Position in the catalog (0-based); also the row of its embedding.
    pub id: usize,
    /// Product type ("Moisturizer", "Cleanser", ...).
    pub product_type: String,
    pub brand: String,
    pub name: String,
    /// Price in USD.
    pub price: f32,
    /// Average customer rating, 0 to 5.
    pub rating: f32,
    /// The INCI ingredient list, `None` where the retailer gave a placeholder.
    pub ingredients: Option<String>,
    /// Retailer skin-type flags in [`SKIN_TYPES`] order, `None` where the
    /// retailer listed no skin type at all (unlabeled, not "suits nobody").
    pub skin_labels: Option<[bool; NUM_SKIN_TYPES]>,
}

/// What introduces the ingredient list in [`Product::model_text`].
const INGREDIENTS_LEAD: &str = " | ingredients: ";

impl Product {
    /// The text the model reads for this product: type, brand, name, then
    /// ingredients, so truncation drops the tail of long ingredient lists
    /// first.
    pub fn model_text(&self) -> String {
        let mut text = format!("{} | {} | {}", self.product_type, self.brand, self.name);
        if let Some(ingredients) = &self.ingredients {
            text.push_str(INGREDIENTS_LEAD);
            text.push_str(ingredients);
        }
        text
    }

    /// The length in bytes of [`Product::model_text`], without writing it.
    pub fn model_text_len(&self) -> usize {
        const SEPARATORS: usize = 2 * " | ".len();
        self.product_type.len()
            + self.brand.len()
            + self.name.len()
            + SEPARATORS
            + self
                .ingredients
                .as_ref()
                .map_or(0, |i| INGREDIENTS_LEAD.len() + i.len())
    }

    /// Whether the retailer labeled this product with any skin type.
    pub fn is_labeled(&self) -> bool {
        self.skin_labels.is_some()
    }
}

/// A whole catalog, in file order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub products: Vec<Product>,
}

impl Catalog {
    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    /// Products with retailer skin-type labels.
    pub fn labeled(&self) -> impl Iterator<Item = &Product> {
        self.products.iter().filter(|p| p.is_labeled())
    }

    /// Distinct product types, sorted.
    pub fn product_types(&self) -> Vec<String> {
        distinct(self.products.iter().map(|p| p.product_type.as_str()))
    }

    /// Distinct brands, sorted.
    pub fn brands(&self) -> Vec<String> {
        distinct(self.products.iter().map(|p| p.brand.as_str()))
    }
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> = values.collect();
    set.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_text_length_is_known_without_writing_the_text() {
        let mut product = Product {
            id: 0,
            product_type: "Moisturizer".into(),
            brand: "Brand é".into(),
            name: "Crème".into(),
            price: 1.0,
            rating: 4.0,
            ingredients: None,
            skin_labels: None,
        };
        assert_eq!(product.model_text_len(), product.model_text().len());
        product.ingredients = Some("Water, Glycerin".into());
        assert_eq!(product.model_text_len(), product.model_text().len());
    }
}
