//! Native latency of one query through the bundle's model (tokenize, encode,
//! both heads), the texts of the browser benchmark, one thread:
//!
//! ```sh
//! RAYON_NUM_THREADS=1 cargo run --release -p milih-model --example query_latency -- public/model
//! ```

use milih_model::Engine;
use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

const TEXTS: [&str; 2] = [
    "gentle hydrating night cream for dry and sensitive skin with ceramides, squalane and niacinamide, without fragrance or parabens",
    "gentle cleanser for oily skin",
];
const WARMUPS: usize = 20;
const RUNS: usize = 200;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "public/model".into()),
    );
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    let engine = Engine::from_bundle(
        &read("config.json")?,
        &read("tokenizer.json")?,
        &read("model.gguf")?,
    )?;
    for text in TEXTS {
        let tokens = engine.encoder().windows(text, 1)?[0].len();
        for _ in 0..WARMUPS {
            engine.predict(&[text], 1)?;
        }
        let mut millis = (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                engine
                    .predict(&[text], 1)
                    .map(|_| started.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<Vec<f64>, _>>()?;
        millis.sort_by(f64::total_cmp);
        println!(
            "{tokens} tokens: median {:.2} ms, p95 {:.2} ms",
            millis[RUNS / 2],
            millis[RUNS * 95 / 100]
        );
    }
    Ok(())
}
