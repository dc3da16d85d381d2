//! The training losses: masked binary cross-entropy for the skin-type head
//! and multi-positive InfoNCE for the embedding head.

use anyhow::Result;
use candle_core::{Device, Tensor, D};

/// Binary cross-entropy over the labeled products of the batch only:
/// unlabeled products carry no skin-type information and are masked out.
pub(crate) fn masked_bce(
    logits: &Tensor,
    products: &[&milih_catalog::Product],
    device: &Device,
) -> Result<Tensor> {
    let labels = logits.dim(1)?;
    let mut targets = Vec::with_capacity(products.len() * labels);
    let mut weights = Vec::with_capacity(products.len());
    for p in products {
        match p.skin_labels {
            Some(flags) => {
                targets.extend(flags.iter().map(|&f| f32::from(u8::from(f))));
                weights.push(1f32);
            }
            None => {
                targets.extend(std::iter::repeat_n(0f32, labels));
                weights.push(0f32);
            }
        }
    }
    let targets = Tensor::from_vec(targets, (products.len(), labels), device)?;
    let weights = Tensor::from_vec(weights, (products.len(), 1), device)?;
    weighted_bce(logits, &targets, &weights)
}

/// Mean binary cross-entropy of `(batch, labels)` logits against 0/1
/// targets, over the rows whose `(batch, 1)` weight is 1.
pub fn weighted_bce(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let labels = logits.dim(1)?;
    let rows = weights.sum_all()?.to_scalar::<f32>()?;
    // max(x, 0) - x·t + log(1 + e^-|x|): stable for any logit.
    let per_entry =
        ((logits.relu()? - (logits * targets)?)? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    let total = per_entry.broadcast_mul(weights)?.sum_all()?;
    Ok((total / (rows.max(1.0) as f64 * labels as f64))?)
}

/// InfoNCE with several positives per query: minus the log of the softmax
/// mass that each query puts on its relevant products, averaged over queries.
pub fn multi_positive_nce(
    queries: &Tensor,
    products: &Tensor,
    relevance: &Tensor,
    temperature: f64,
) -> Result<Tensor> {
    Ok(per_query_nce(queries, products, relevance, temperature)?.mean_all()?)
}

/// The loss of [`multi_positive_nce`] for each query, `(queries,)`.
pub(crate) fn per_query_nce(
    queries: &Tensor,
    products: &Tensor,
    relevance: &Tensor,
    temperature: f64,
) -> Result<Tensor> {
    let logits = (queries.matmul(&products.t()?)? / temperature)?;
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let positive_mass = (log_probs.exp()? * relevance)?.sum(1)?;
    Ok(positive_mass.clamp(1e-9, 1.0)?.log()?.neg()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use milih_catalog::Product;

    fn product(labels: Option<[bool; 5]>) -> Product {
        Product {
            id: 0,
            product_type: "Cleanser".into(),
            brand: "B".into(),
            name: "N".into(),
            price: 1.0,
            rating: 4.0,
            ingredients: None,
            skin_labels: labels,
        }
    }

    #[test]
    fn unlabeled_products_add_no_classification_loss() {
        let device = Device::Cpu;
        let logits = Tensor::new(
            &[[3.0f32, -2.0, 0.5, 1.0, -1.0], [5.0, 5.0, 5.0, 5.0, 5.0]],
            &device,
        )
        .unwrap();
        let unlabeled = product(None);
        let labeled = product(Some([true, false, true, true, false]));
        let only_unlabeled = masked_bce(&logits, &[&unlabeled, &unlabeled], &device).unwrap();
        assert_eq!(only_unlabeled.to_scalar::<f32>().unwrap(), 0.0);
        // The unlabeled second row, whose logits say "suits all", changes nothing.
        let mixed = masked_bce(&logits, &[&labeled, &unlabeled], &device)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let alone = masked_bce(&logits.narrow(0, 0, 1).unwrap(), &[&labeled], &device)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((mixed - alone).abs() < 1e-6);
        // And it matches the textbook formula.
        let expected: f32 = [
            (3.0f32, 1.0f32),
            (-2.0, 0.0),
            (0.5, 1.0),
            (1.0, 1.0),
            (-1.0, 0.0),
        ]
        .iter()
        .map(|&(x, t)| {
            let p = 1.0 / (1.0 + (-x).exp());
            -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        })
        .sum::<f32>()
            / 5.0;
        assert!((alone - expected).abs() < 1e-5, "{alone} vs {expected}");
    }

    #[test]
    fn contrastive_loss_is_low_when_queries_find_their_products() {
        let device = Device::Cpu;
        let eye = Tensor::eye(3, DType::F32, &device).unwrap();
        let relevance = Tensor::eye(3, DType::F32, &device).unwrap();
        let good = multi_positive_nce(&eye, &eye, &relevance, 0.05)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let shuffled = Tensor::new(
            &[[0f32, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
            &device,
        )
        .unwrap();
        let bad = multi_positive_nce(&eye, &shuffled, &relevance, 0.05)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(good < 1e-3 && bad > 10.0, "good {good}, bad {bad}");
    }
}
