// The same worker as `worker.rs`, built with relaxed SIMD kernels (web/Cargo.toml).
include!("worker.rs");
