//! The Milih hybrid: a BERT encoder, mean pooling, a multi-label skin-type
//! head and an L2-normalised embedding head.

use crate::bert::{Bert, Mode};
use crate::config::HybridConfig;
use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};

/// Weight-name prefix of the heads (everything else is the encoder).
pub const HEADS_PREFIX: &str = "heads";

pub struct Hybrid {
    bert: Bert,
    classifier: Linear,
    projector: Linear,
    config: HybridConfig,
}

/// Outputs for a batch.
pub struct HybridOutput {
    /// `(batch, labels)` skin-type logits (sigmoid gives probabilities).
    pub logits: Tensor,
    /// `(batch, embedding_dim)` unit-length embeddings.
    pub embeddings: Tensor,
}

impl Hybrid {
    pub fn load(config: &HybridConfig, vb: VarBuilder) -> Result<Self> {
        let hidden = config.bert.hidden_size;
        let heads = vb.pp(HEADS_PREFIX);
        Ok(Self {
            bert: Bert::load(&config.bert, vb)?,
            classifier: candle_nn::linear(hidden, config.labels.len(), heads.pp("classifier"))?,
            projector: candle_nn::linear(hidden, config.embedding_dim, heads.pp("projector"))?,
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &HybridConfig {
        &self.config
    }

    pub fn num_layers(&self) -> usize {
        self.bert.num_layers()
    }

    /// Mean of the hidden states of the real (unpadded) tokens.
    pub fn pooled(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        mode: Mode,
        frozen_layers: usize,
    ) -> Result<Tensor> {
        let hidden = self
            .bert
            .forward(input_ids, attention_mask, mode, frozen_layers)?;
        let mask = attention_mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1.0, f64::MAX)?;
        summed.broadcast_div(&counts)
    }

    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        mode: Mode,
        frozen_layers: usize,
    ) -> Result<HybridOutput> {
        let pooled = self.pooled(input_ids, attention_mask, mode, frozen_layers)?;
        Ok(HybridOutput {
            logits: self.classifier.forward(&pooled)?,
            embeddings: l2_normalize(&self.projector.forward(&pooled)?)?,
        })
    }

    /// The embedding head alone (queries need no skin-type logits).
    pub fn embed(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        mode: Mode,
        frozen_layers: usize,
    ) -> Result<Tensor> {
        let pooled = self.pooled(input_ids, attention_mask, mode, frozen_layers)?;
        l2_normalize(&self.projector.forward(&pooled)?)
    }
}

/// Scales each row to unit length (rows of zeros stay zero).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    x.broadcast_div(&norm)
}
