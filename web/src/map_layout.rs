//! Where the map draws its numbered result markers. Products that read
//! alike sit on the same spot, so markers at their true positions would
//! hide one another (and the hidden ones could not be clicked): markers
//! closer than their diameter are pushed apart, a little each round, and a
//! marker that moved is joined to its product's dot by a line.

/// Marker centres for products at `points`, each at least `gap` from every
/// other where the `size` × `size` square allows, kept within `margin` of
/// its edges. Deterministic: coincident points part along fixed directions.
pub fn spread_markers(points: &[(f32, f32)], gap: f32, size: f32, margin: f32) -> Vec<(f32, f32)> {
    const ROUNDS: usize = 60;
    let clamp = |v: f32| v.clamp(margin, size - margin);
    let mut at: Vec<(f32, f32)> = points.iter().map(|&(x, y)| (clamp(x), clamp(y))).collect();
    for _ in 0..ROUNDS {
        let mut moved = false;
        for i in 0..at.len() {
            for j in i + 1..at.len() {
                let (dx, dy) = (at[j].0 - at[i].0, at[j].1 - at[i].1);
                let distance = (dx * dx + dy * dy).sqrt();
                if distance >= gap {
                    continue;
                }
                // Coincident markers part along a direction fixed by their
                // pair, so the layout never depends on chance.
                let (ux, uy) = if distance > 1e-3 {
                    (dx / distance, dy / distance)
                } else {
                    let angle = (i * 7 + j * 13) as f32 * 0.7;
                    (angle.cos(), angle.sin())
                };
                let push = (gap - distance) / 2.0;
                at[i] = (clamp(at[i].0 - ux * push), clamp(at[i].1 - uy * push));
                at[j] = (clamp(at[j].0 + ux * push), clamp(at[j].1 + uy * push));
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distance(a: (f32, f32), b: (f32, f32)) -> f32 {
        ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
    }

    #[test]
    fn markers_on_one_spot_part_until_none_hides_another() {
        let points = vec![(300.0, 300.0); 5];
        let at = spread_markers(&points, 26.0, 600.0, 10.0);
        for i in 0..at.len() {
            for j in i + 1..at.len() {
                assert!(distance(at[i], at[j]) >= 25.0, "{i} and {j}: {at:?}");
            }
        }
        assert_eq!(at, spread_markers(&points, 26.0, 600.0, 10.0));
    }

    #[test]
    fn markers_apart_already_stay_where_their_products_are() {
        let points = vec![(100.0, 100.0), (200.0, 100.0), (100.0, 300.0)];
        assert_eq!(spread_markers(&points, 26.0, 600.0, 10.0), points);
    }

    #[test]
    fn markers_stay_on_the_map() {
        let points = vec![(0.0, 0.0), (1.0, 1.0), (600.0, 600.0)];
        for (x, y) in spread_markers(&points, 26.0, 600.0, 10.0) {
            assert!((10.0..=590.0).contains(&x) && (10.0..=590.0).contains(&y));
        }
    }
}
