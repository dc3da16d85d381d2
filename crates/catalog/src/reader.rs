//! Reading a catalog CSV.

use crate::{clean_ingredients, Catalog, Product, NUM_SKIN_TYPES, SKIN_TYPES};
use std::collections::HashMap;
use std::io::Read;

/// Column names of each field in the CSV; [`ColumnMap::default`] is the
/// layout of `data/cosmetics.csv`. Matching ignores case and surrounding space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    pub product_type: String,
    pub brand: String,
    pub name: String,
    pub price: String,
    pub rating: String,
    pub ingredients: String,
    pub skin_types: [String; NUM_SKIN_TYPES],
}

impl Default for ColumnMap {
    fn default() -> Self {
        Self {
            product_type: "Label".into(),
            brand: "Brand".into(),
            name: "Name".into(),
            price: "Price".into(),
            rating: "Rank".into(),
            ingredients: "Ingredients".into(),
            skin_types: SKIN_TYPES.map(String::from),
        }
    }
}

impl ColumnMap {
    /// Applies `field=column` overrides, e.g. `rating=Stars`. Field names are
    /// `type`, `brand`, `name`, `price`, `rating`, `ingredients` and the skin
    /// types in lower case.
    pub fn with_overrides<'a>(
        mut self,
        overrides: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, CatalogError> {
        for item in overrides {
            let (field, column) = item
                .split_once('=')
                .ok_or_else(|| CatalogError::BadMapping(format!("`{item}` is not field=column")))?;
            let column = column.trim().to_owned();
            let field = field.trim().to_lowercase();
            let slot = match field.as_str() {
                "type" | "label" => &mut self.product_type,
                "brand" => &mut self.brand,
                "name" => &mut self.name,
                "price" => &mut self.price,
                "rating" | "rank" => &mut self.rating,
                "ingredients" => &mut self.ingredients,
                other => match SKIN_TYPES
                    .iter()
                    .position(|s| s.eq_ignore_ascii_case(other))
                {
                    Some(i) => &mut self.skin_types[i],
                    None => {
                        return Err(CatalogError::BadMapping(format!("unknown field `{field}`")))
                    }
                },
            };
            *slot = column;
        }
        Ok(self)
    }
}

/// Why a catalog could not be read. Every variant names the place (line or
/// column) and the reason.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CatalogError {
    #[error("the catalog is empty: no header line")]
    NoHeader,
    #[error("the catalog has a header but no products")]
    NoProducts,
    #[error("missing column `{column}` (columns found: {found})")]
    MissingColumn { column: String, found: String },
    #[error("line {line}: {reason}")]
    Row { line: u64, reason: String },
    #[error("bad column mapping: {0}")]
    BadMapping(String),
}

/// Reads a catalog CSV. The first malformed row stops the read with its line
/// number and reason: a catalog is never loaded with rows silently dropped.
pub fn read_catalog<R: Read>(input: R, columns: &ColumnMap) -> Result<Catalog, CatalogError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input);
    let header = reader.headers().map_err(|e| csv_error(&e, 1))?.clone();
    if header.is_empty() || (header.len() == 1 && header[0].trim().is_empty()) {
        return Err(CatalogError::NoHeader);
    }
    let find = |column: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(column.trim()))
            .ok_or_else(|| CatalogError::MissingColumn {
                column: column.to_owned(),
                found: header.iter().collect::<Vec<_>>().join(", "),
            })
    };
    let layout = Layout {
        product_type: find(&columns.product_type)?,
        brand: find(&columns.brand)?,
        name: find(&columns.name)?,
        price: find(&columns.price)?,
        rating: find(&columns.rating)?,
        ingredients: find(&columns.ingredients)?,
        skin_types: {
            let mut idx = [0; NUM_SKIN_TYPES];
            for (slot, column) in idx.iter_mut().zip(&columns.skin_types) {
                *slot = find(column)?;
            }
            idx
        },
    };

    let mut products: Vec<Product> = Vec::new();
    // Brand and name (case and spacing aside) -> line of first appearance.
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(&e, line)),
        }
        let line = record.position().map_or(line, |p| p.line());
        // A blank line at the end of a file is not a product.
        if record.len() == 1 && record[0].trim().is_empty() {
            continue;
        }
        let row_error = |reason| CatalogError::Row { line, reason };
        if let Some((i, field)) = record
            .iter()
            .enumerate()
            .find(|(_, f)| f.len() > MAX_FIELD_BYTES)
        {
            return Err(row_error(format!(
                "field {} ({}) is {} bytes long; a field may hold {MAX_FIELD_BYTES}",
                i + 1,
                header.get(i).unwrap_or("no column"),
                field.len()
            )));
        }
        let product = layout.product(&record, products.len()).map_err(row_error)?;
        let key = (fold(&product.brand), fold(&product.name));
        if let Some(first) = seen.get(&key) {
            return Err(row_error(format!(
                "duplicate product: {} {} is already on line {first}",
                clip(&product.brand),
                clip(&product.name)
            )));
        }
        seen.insert(key, line);
        products.push(product);
    }
    if products.is_empty() {
        return Err(CatalogError::NoProducts);
    }
    Ok(Catalog { products })
}

/// Longest field accepted, in bytes. The longest ingredient list of the
/// Sephora catalog is about 5.5 KB; a field far beyond that is a broken file
/// (an unclosed quote swallowing the rest) or an attack on memory.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// A brand or name as compared for duplicates: case and runs of spaces aside.
fn fold(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn csv_error(error: &csv::Error, fallback_line: u64) -> CatalogError {
    let line = error.position().map_or(fallback_line, |p| p.line());
    let reason = match error.kind() {
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("field {} is not valid UTF-8", err.field() + 1)
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            let hint = if len < expected_len {
                " (a missing separator, or a quote left open?)"
            } else {
                " (a separator inside an unquoted field?)"
            };
            format!("expected {expected_len} fields, found {len}{hint}")
        }
        _ => error.to_string(),
    };
    CatalogError::Row { line, reason }
}

struct Layout {
    product_type: usize,
    brand: usize,
    name: usize,
    price: usize,
    rating: usize,
    ingredients: usize,
    skin_types: [usize; NUM_SKIN_TYPES],
}

impl Layout {
    fn product(&self, record: &csv::StringRecord, id: usize) -> Result<Product, String> {
        let text = |i: usize, what: &str| -> Result<String, String> {
            let value = record.get(i).unwrap_or("").trim();
            if value.is_empty() {
                Err(format!("{what} is empty"))
            } else {
                Ok(value.to_owned())
            }
        };
        let number = |i: usize, what: &str, max: f32| -> Result<f32, String> {
            let raw = record.get(i).unwrap_or("").trim();
            let value: f32 = raw
                .parse()
                .map_err(|_| format!("{what} `{}` is not a number", clip(raw)))?;
            if !value.is_finite() || !(0.0..=max).contains(&value) {
                return Err(format!("{what} {value} is outside 0..={max}"));
            }
            Ok(value)
        };
        let mut flags = [false; NUM_SKIN_TYPES];
        for (k, (&i, flag)) in self.skin_types.iter().zip(flags.iter_mut()).enumerate() {
            *flag = match record.get(i).unwrap_or("").trim() {
                "1" => true,
                "0" => false,
                other => {
                    return Err(format!(
                        "{} flag `{}` is not 0 or 1",
                        SKIN_TYPES[k],
                        clip(other)
                    ))
                }
            };
        }
        Ok(Product {
            id,
            product_type: text(self.product_type, "product type")?,
            brand: text(self.brand, "brand")?,
            name: text(self.name, "name")?,
            price: number(self.price, "price", 1.0e6)?,
            rating: number(self.rating, "rating", 5.0)?,
            ingredients: clean_ingredients(record.get(self.ingredients).unwrap_or("")),
            skin_labels: flags.iter().any(|&f| f).then_some(flags),
        })
    }
}

/// Shortens a value quoted in an error message.
fn clip(value: &str) -> String {
    const MAX: usize = 40;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "Label,Brand,Name,Price,Rank,Ingredients,Combination,Dry,Normal,Oily,Sensitive\n";

    fn read(body: &str) -> Result<Catalog, CatalogError> {
        read_catalog(format!("{HEADER}{body}").as_bytes(), &ColumnMap::default())
    }

    #[test]
    fn reads_a_product_and_keeps_unlabeled_apart_from_no() {
        let catalog = read(
            "Moisturizer,LA MER,Crème,175,4.1,\"Water, Glycerin.\",1,0,1,0,0\n\
             Cleanser,X,Y,20,0,No Info,0,0,0,0,0\n",
        )
        .unwrap();
        assert_eq!(catalog.len(), 2);
        let first = &catalog.products[0];
        assert_eq!(first.name, "Crème");
        assert_eq!(first.skin_labels, Some([true, false, true, false, false]));
        assert_eq!(first.ingredients.as_deref(), Some("Water, Glycerin."));
        let second = &catalog.products[1];
        assert_eq!(second.id, 1);
        assert_eq!(second.skin_labels, None, "all-zero flags are unlabeled");
        assert_eq!(second.ingredients, None, "`No Info` is missing");
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let err = read("Moisturizer,A,B,cheap,4,x,1,1,1,1,1\n").unwrap_err();
        assert_eq!(
            err,
            CatalogError::Row {
                line: 2,
                reason: "price `cheap` is not a number".into()
            }
        );
        let err =
            read("Moisturizer,A,B,1,4,x,1,1,1,1,1\nMoisturizer,A,B,1,4,x,1,2,1,1,1\n").unwrap_err();
        assert_eq!(
            err,
            CatalogError::Row {
                line: 3,
                reason: "Dry flag `2` is not 0 or 1".into()
            }
        );
        let err = read("Moisturizer,A,B,1,4,x,1\n").unwrap_err();
        assert_eq!(
            err,
            CatalogError::Row {
                line: 2,
                reason: "expected 11 fields, found 7 (a missing separator, or a quote left open?)"
                    .into()
            }
        );
        let err = read("Moisturizer,A,B,1,7,x,1,1,1,1,1\n").unwrap_err();
        assert_eq!(
            err,
            CatalogError::Row {
                line: 2,
                reason: "rating 7 is outside 0..=5".into()
            }
        );
    }

    #[test]
    fn missing_columns_and_empty_files_are_named() {
        assert_eq!(
            read_catalog("".as_bytes(), &ColumnMap::default()),
            Err(CatalogError::NoHeader)
        );
        assert_eq!(read(""), Err(CatalogError::NoProducts));
        let err = read_catalog("Label,Brand\nA,B\n".as_bytes(), &ColumnMap::default()).unwrap_err();
        assert!(matches!(err, CatalogError::MissingColumn { ref column, .. } if column == "Name"));
    }

    #[test]
    fn invalid_utf8_is_reported_not_replaced() {
        let mut bytes = HEADER.as_bytes().to_vec();
        bytes.extend_from_slice(b"Moisturizer,A,B\xff,1,4,x,1,1,1,1,1\n");
        let err = read_catalog(bytes.as_slice(), &ColumnMap::default()).unwrap_err();
        assert_eq!(
            err,
            CatalogError::Row {
                line: 2,
                reason: "field 3 is not valid UTF-8".into()
            }
        );
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let text = format!("\u{feff}{HEADER}Moisturizer,A,B,1,4,x,1,1,1,1,1\n");
        assert_eq!(
            read_catalog(text.as_bytes(), &ColumnMap::default())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn column_map_overrides_rename_columns() {
        let map = ColumnMap::default()
            .with_overrides(["rating=Stars", "type=Category"])
            .unwrap();
        let csv =
            "Category,Brand,Name,Price,Stars,Ingredients,Combination,Dry,Normal,Oily,Sensitive\n\
                   Serum,A,B,10,3.5,x,0,1,0,0,0\n";
        let catalog = read_catalog(csv.as_bytes(), &map).unwrap();
        assert_eq!(catalog.products[0].product_type, "Serum");
        assert_eq!(catalog.products[0].rating, 3.5);
        assert!(ColumnMap::default().with_overrides(["colour=X"]).is_err());
        assert!(ColumnMap::default().with_overrides(["nonsense"]).is_err());
    }
}
