//! The embedding map: a 2-D t-SNE projection of the product embeddings,
//! computed once at export so the browser only draws it.
//!
//! The projection is deterministic: it starts from the two principal
//! components (not a random layout) and runs on a single thread, so the same
//! embeddings always give the same bytes in `catalog.json`.

use anyhow::{anyhow, Result};

/// Perplexity for large catalogs (about the number of neighbours each point
/// keeps close); smaller catalogs get what they can hold.
const PERPLEXITY: f64 = 30.0;
const EPOCHS: usize = 750;
/// Below this many products t-SNE has too few neighbours to be meaningful
/// and the principal plane is the map.
const MIN_TSNE_PRODUCTS: usize = 12;
/// Coordinates are rounded to this many steps per unit: far finer than any
/// screen, and it keeps the catalog small.
const GRID: f32 = 10_000.0;

/// One position in [0, 1]² per embedding row, in row order.
pub fn project(embeddings: &[f32], dim: usize) -> Result<Vec<[f32; 2]>> {
    let rows: Vec<&[f32]> = embeddings.chunks_exact(dim.max(1)).collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let plane = principal_plane(&rows);
    let layout = if rows.len() < MIN_TSNE_PRODUCTS {
        plane
    } else {
        tsne(&rows, &plane)?
    };
    Ok(fit_unit_square(&layout))
}

fn tsne(rows: &[&[f32]], start: &[[f64; 2]]) -> Result<Vec<[f64; 2]>> {
    // bhtsne requires 3 × perplexity < n − 1.
    let perplexity = PERPLEXITY.min((rows.len() as f64 - 2.0) / 3.0);
    // t-SNE expects a small initial spread (standard deviation 1e-4 on the
    // first axis), keeping the shape of the principal plane.
    let spread = standard_deviation(start.iter().map(|p| p[0])).max(f64::MIN_POSITIVE);
    let initial: Vec<f64> = start
        .iter()
        .flat_map(|p| [p[0] / spread * 1e-4, p[1] / spread * 1e-4])
        .collect();
    // One thread: parallel sums would reorder floating-point additions and
    // change the last bits from run to run.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| anyhow!("cannot start the projection thread: {e}"))?;
    let flat = pool.install(|| {
        let mut tsne: bhtsne::tSNE<f64, &[f32]> = bhtsne::tSNE::new(rows);
        tsne.perplexity(perplexity)
            .epochs(EPOCHS)
            .initial_embedding(initial)
            .exact(|a, b| squared_distance(a, b));
        tsne.embedding()
    });
    Ok(flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
}

fn squared_distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            d * d
        })
        .sum()
}

fn standard_deviation(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().sum::<f64>() / n;
    (values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
}

/// Coordinates of the centred rows on their first two principal axes, by
/// power iteration from a fixed start (deterministic, no random vectors).
fn principal_plane(rows: &[&[f32]]) -> Vec<[f64; 2]> {
    let dim = rows[0].len();
    let n = rows.len() as f64;
    let mut mean = vec![0f64; dim];
    for row in rows {
        for (m, v) in mean.iter_mut().zip(*row) {
            *m += f64::from(*v) / n;
        }
    }
    let centred: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&mean)
                .map(|(v, m)| f64::from(*v) - m)
                .collect()
        })
        .collect();
    let mut axes: Vec<Vec<f64>> = Vec::new();
    for k in 0..2 {
        // A start that is not orthogonal to any axis in practice.
        let mut axis: Vec<f64> = (0..dim).map(|j| 1.0 + ((j + k) % 7) as f64).collect();
        for _ in 0..200 {
            let scores: Vec<f64> = centred.iter().map(|r| dot(r, &axis)).collect();
            let mut next = vec![0f64; dim];
            for (r, s) in centred.iter().zip(&scores) {
                for (x, v) in next.iter_mut().zip(r) {
                    *x += s * v;
                }
            }
            for previous in &axes {
                let overlap = dot(&next, previous);
                for (x, p) in next.iter_mut().zip(previous) {
                    *x -= overlap * p;
                }
            }
            let norm = dot(&next, &next).sqrt();
            if norm < 1e-12 {
                // No variance left along any further axis.
                axis = vec![0.0; dim];
                break;
            }
            axis = next.into_iter().map(|x| x / norm).collect();
        }
        axes.push(axis);
    }
    centred
        .iter()
        .map(|r| [dot(r, &axes[0]), dot(r, &axes[1])])
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales both axes by the same factor (so distances keep their meaning)
/// into [0, 1]², centred, rounded to [`GRID`].
fn fit_unit_square(points: &[[f64; 2]]) -> Vec<[f32; 2]> {
    let bounds = |axis: usize| {
        points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p[axis]), hi.max(p[axis]))
            })
    };
    let (x_lo, x_hi) = bounds(0);
    let (y_lo, y_hi) = bounds(1);
    let span = (x_hi - x_lo).max(y_hi - y_lo);
    let place = |v: f64, lo: f64, hi: f64| -> f32 {
        let unit = if span > 0.0 && span.is_finite() {
            0.5 + (v - (lo + hi) / 2.0) / span
        } else {
            0.5
        };
        ((unit.clamp(0.0, 1.0) as f32) * GRID).round() / GRID
    };
    points
        .iter()
        .map(|p| [place(p[0], x_lo, x_hi), place(p[1], y_lo, y_hi)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors in three tight groups around three orthogonal directions.
    fn clusters(per_group: usize) -> (Vec<f32>, usize) {
        let dim = 8;
        let mut data = Vec::new();
        for group in 0..3 {
            for i in 0..per_group {
                let mut v = vec![0f32; dim];
                v[group] = 1.0;
                v[3 + i % 5] = 0.05 * (1 + i % 3) as f32;
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                data.extend(v.into_iter().map(|x| x / norm));
            }
        }
        (data, dim)
    }

    fn distance(a: [f32; 2], b: [f32; 2]) -> f32 {
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
    }

    #[test]
    fn similar_products_land_together_and_the_map_fills_the_unit_square() {
        let per_group = 20;
        let (data, dim) = clusters(per_group);
        let map = project(&data, dim).unwrap();
        assert_eq!(map.len(), 3 * per_group);
        assert!(map.iter().flatten().all(|v| (0.0..=1.0).contains(v)));
        let spread = |axis: usize| {
            let values = map.iter().map(|p| p[axis]);
            values.clone().fold(f32::MIN, f32::max) - values.fold(f32::MAX, f32::min)
        };
        assert!(spread(0).max(spread(1)) > 0.99, "the layout is not scaled");
        let group = |i: usize| i / per_group;
        let mut within = (0.0, 0);
        let mut between = (0.0, 0);
        for i in 0..map.len() {
            for j in i + 1..map.len() {
                let d = distance(map[i], map[j]);
                let bucket = if group(i) == group(j) {
                    &mut within
                } else {
                    &mut between
                };
                bucket.0 += d;
                bucket.1 += 1;
            }
        }
        let within = within.0 / within.1 as f32;
        let between = between.0 / between.1 as f32;
        assert!(
            within * 3.0 < between,
            "groups are not separated: mean distance {within} within, {between} between"
        );
    }

    #[test]
    fn the_projection_is_deterministic() {
        let (data, dim) = clusters(10);
        assert_eq!(project(&data, dim).unwrap(), project(&data, dim).unwrap());
    }

    #[test]
    fn tiny_and_degenerate_catalogs_get_valid_positions() {
        assert!(project(&[], 4).unwrap().is_empty());
        assert_eq!(project(&[0.6, 0.8], 2).unwrap(), vec![[0.5, 0.5]]);
        // Identical products (duplicates in a catalog) all sit in the centre.
        let map = project(&[0.6, 0.8].repeat(20), 2).unwrap();
        assert_eq!(map.len(), 20);
        assert!(map
            .iter()
            .flatten()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    }
}
