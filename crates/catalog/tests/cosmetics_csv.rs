//! The real training catalog loads with the documented counts.

use milih_catalog::{read_catalog, ColumnMap};

#[test]
fn the_training_catalog_loads_with_its_documented_quirks() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/cosmetics.csv");
    let file = std::fs::File::open(path).expect("data/cosmetics.csv is committed");
    let catalog = read_catalog(file, &ColumnMap::default()).unwrap();
    assert_eq!(catalog.len(), 1472);
    assert_eq!(catalog.labeled().count(), 1001);
    assert_eq!(
        catalog.products.iter().filter(|p| !p.is_labeled()).count(),
        471
    );
    assert_eq!(catalog.product_types().len(), 6);
    let missing = catalog
        .products
        .iter()
        .filter(|p| p.ingredients.is_none())
        .count();
    // `#NAME?` 25, `No Info` 23, `Visit the … boutique` 120, footnote-only 23.
    assert_eq!(missing, 191);
}
