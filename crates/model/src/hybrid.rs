//! The Milih hybrid: a BERT encoder, mean pooling over one or more windows
//! of a text, a multi-label skin-type head and an L2-normalised embedding
//! head.
//!
//! The skin-type head reads the pooled encoder output and, when the config
//! asks for them, hashed TF-IDF word features of the whole text
//! ([`crate::lexical`]). The embedding head reads the pooled output only.

use crate::bert::{Bert, CompactWeights, Mode};
use crate::config::HybridConfig;
use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};

/// Weight-name prefix of the heads (everything else is the encoder).
pub const HEADS_PREFIX: &str = "heads";
/// Name of the inverse-document-frequency vector of the lexical features.
pub const LEXICAL_IDF: &str = "heads.lexical.idf";

pub struct Hybrid {
    bert: Bert,
    heads: Heads,
    config: HybridConfig,
}

/// The two heads and the lexical weights, usable without the encoder (the
/// trainer fits them on cached encoder features).
pub struct Heads {
    classifier: Linear,
    projector: Linear,
    idf: Option<Tensor>,
    /// Ingredient-function features follow the TF-IDF ones.
    functions: bool,
}

/// Outputs for a batch.
pub struct HybridOutput {
    /// `(batch, labels)` skin-type logits (sigmoid gives probabilities).
    pub logits: Tensor,
    /// `(batch, embedding_dim)` unit-length embeddings.
    pub embeddings: Tensor,
}

impl Heads {
    pub fn load(config: &HybridConfig, vb: VarBuilder) -> Result<Self> {
        let hidden = config.bert.hidden_size;
        let lexical = config.lexical_features;
        let heads = vb.pp(HEADS_PREFIX);
        Ok(Self {
            classifier: candle_nn::linear(
                hidden + config.text_features(),
                config.labels.len(),
                heads.pp("classifier"),
            )?,
            projector: candle_nn::linear(hidden, config.embedding_dim, heads.pp("projector"))?,
            idf: if lexical > 0 {
                Some(heads.pp("lexical").get(lexical, "idf")?)
            } else {
                None
            },
            functions: config.ingredient_functions,
        })
    }

    /// Whether the skin-type head reads ingredient-function features.
    pub fn reads_functions(&self) -> bool {
        self.functions
    }

    /// The inverse document frequencies of the lexical features, if any.
    pub fn idf(&self) -> Option<&Tensor> {
        self.idf.as_ref()
    }

    /// Skin-type logits from pooled `(batch, hidden)` features and, when the
    /// model reads them, `(batch, text features)` TF-IDF and ingredient-
    /// function features ([`crate::lexical::text_features`]).
    pub fn logits(&self, pooled: &Tensor, lexical: Option<&Tensor>) -> Result<Tensor> {
        let reads_text = self.idf.is_some() || self.functions;
        match (reads_text, lexical) {
            // The pooled part unit length, as the TF-IDF part is, so that
            // neither drowns the other.
            (true, Some(lexical)) => self
                .classifier
                .forward(&Tensor::cat(&[&l2_normalize(pooled)?, lexical], D::Minus1)?),
            (false, None) => self.classifier.forward(pooled),
            (true, None) => candle_core::bail!("the model needs lexical features"),
            (false, Some(_)) => candle_core::bail!("the model takes no lexical features"),
        }
    }

    /// Unit-length embeddings from pooled features.
    pub fn embed(&self, pooled: &Tensor) -> Result<Tensor> {
        l2_normalize(&self.projector.forward(pooled)?)
    }
}

impl Hybrid {
    pub fn load(config: &HybridConfig, vb: VarBuilder) -> Result<Self> {
        Self::load_with(config, vb, CompactWeights::default())
    }

    /// [`Hybrid::load`] with some weights in compact form apart from `vb`.
    pub fn load_with(
        config: &HybridConfig,
        vb: VarBuilder,
        compact: CompactWeights,
    ) -> Result<Self> {
        Ok(Self {
            bert: Bert::load_with(&config.bert, vb.clone(), compact)?,
            heads: Heads::load(config, vb)?,
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &HybridConfig {
        &self.config
    }

    pub fn heads(&self) -> &Heads {
        &self.heads
    }

    /// The BERT encoder alone.
    pub fn encoder(&self) -> &Bert {
        &self.bert
    }

    pub fn num_layers(&self) -> usize {
        self.bert.num_layers()
    }

    /// See [`Bert::observe_inputs`].
    pub fn observe_inputs(&mut self, statistics: &std::sync::Arc<crate::bert::InputStatistics>) {
        self.bert.observe_inputs(statistics);
    }

    /// Sum of the hidden states of the real (unpadded) tokens, `(batch,
    /// hidden)`, and their count, `(batch, 1)`: windows of one text are
    /// pooled by adding both before dividing.
    pub fn pooled_parts(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        mode: Mode,
        frozen_layers: usize,
    ) -> Result<(Tensor, Tensor)> {
        let hidden = self
            .bert
            .forward(input_ids, attention_mask, mode, frozen_layers)?;
        let mask = crate::bert::mask_as_f32(attention_mask)?.unsqueeze(2)?;
        Ok((hidden.broadcast_mul(&mask)?.sum(1)?, mask.sum(1)?))
    }

    /// Mean of the hidden states of the real (unpadded) tokens.
    pub fn pooled(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        mode: Mode,
        frozen_layers: usize,
    ) -> Result<Tensor> {
        let (sums, counts) = self.pooled_parts(input_ids, attention_mask, mode, frozen_layers)?;
        sums.broadcast_div(&counts.clamp(1.0, f64::MAX)?)
    }

    /// Both heads on a batch of single-window texts.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        lexical: Option<&Tensor>,
        mode: Mode,
        frozen_layers: usize,
    ) -> Result<HybridOutput> {
        let pooled = self.pooled(input_ids, attention_mask, mode, frozen_layers)?;
        Ok(HybridOutput {
            logits: self.heads.logits(&pooled, lexical)?,
            embeddings: self.heads.embed(&pooled)?,
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
        self.heads.embed(&pooled)
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
