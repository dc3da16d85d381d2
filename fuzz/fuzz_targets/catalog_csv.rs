//! Any bytes as a catalog CSV: a catalog or a clear error, never a panic;
//! a catalog that loads holds only valid products.
#![no_main]

use libfuzzer_sys::fuzz_target;
use milih_catalog::{read_catalog, ColumnMap};

fuzz_target!(|data: &[u8]| {
    if let Ok(catalog) = read_catalog(data, &ColumnMap::default()) {
        assert!(!catalog.is_empty());
        for (i, p) in catalog.products.iter().enumerate() {
            assert_eq!(p.id, i);
            assert!(!p.name.trim().is_empty() && !p.brand.trim().is_empty());
            assert!(p.price.is_finite() && p.price >= 0.0);
            assert!((0.0..=5.0).contains(&p.rating));
            let _ = p.model_text();
        }
    }
});
