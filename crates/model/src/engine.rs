//! Inference: texts in, embeddings and skin-type probabilities out.

use crate::bert::Mode;
use crate::config::HybridConfig;
use crate::hybrid::Hybrid;
use crate::tokenize::{batch_from_ids, TextEncoder};
use crate::ModelError;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;

/// What the model says about one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Unit-length embedding.
    pub embedding: Vec<f32>,
    /// Sigmoid probability per label, in the config's label order.
    pub probabilities: Vec<f32>,
}

/// A loaded model ready for inference.
pub struct Engine {
    model: Hybrid,
    encoder: TextEncoder,
    device: Device,
}

impl Engine {
    /// Builds an engine from a bundle's `config.json`, `tokenizer.json` and
    /// GGUF weights.
    pub fn from_bundle(
        config_json: &[u8],
        tokenizer_json: &[u8],
        gguf: &[u8],
    ) -> Result<Self, ModelError> {
        let config = HybridConfig::from_json(config_json)?;
        let device = Device::Cpu;
        let tensors = crate::quantized::from_gguf(gguf, &device)?;
        let encoder = TextEncoder::from_json(tokenizer_json, config.max_length)?;
        Self::new(config, encoder, tensors)
    }

    /// Builds an engine from f32 tensors.
    pub fn new(
        config: HybridConfig,
        encoder: TextEncoder,
        tensors: HashMap<String, Tensor>,
    ) -> Result<Self, ModelError> {
        if encoder.vocab_size() > config.bert.vocab_size {
            return Err(ModelError::Tokenizer(format!(
                "the tokenizer does not match the model: {} tokens, the model knows {}",
                encoder.vocab_size(),
                config.bert.vocab_size
            )));
        }
        let device = Device::Cpu;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = Hybrid::load(&config, vb)
            .map_err(|e| ModelError::Weights(format!("model weights: {e}")))?;
        Ok(Self {
            model,
            encoder,
            device,
        })
    }

    pub fn config(&self) -> &HybridConfig {
        self.model.config()
    }

    pub fn encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    /// Predicts for many texts, `batch_size` at a time. Texts are grouped by
    /// length so that little compute goes to padding; results keep the input
    /// order.
    pub fn predict(
        &self,
        texts: &[&str],
        batch_size: usize,
    ) -> Result<Vec<Prediction>, ModelError> {
        self.predict_with_progress(texts, batch_size, |_| {})
    }

    /// [`Engine::predict`], calling `progress(done)` after each batch.
    pub fn predict_with_progress(
        &self,
        texts: &[&str],
        batch_size: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Prediction>, ModelError> {
        let ids = texts
            .iter()
            .map(|t| self.encoder.ids(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut results: Vec<Option<Prediction>> = vec![None; texts.len()];
        let mut done = 0;
        for chunk in order.chunks(batch_size.max(1)) {
            let batch_ids: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
            let batch = batch_from_ids(&batch_ids, &self.device)?;
            let out =
                self.model
                    .forward(&batch.input_ids, &batch.attention_mask, Mode::Infer, 0)?;
            let embeddings = out.embeddings.to_vec2::<f32>()?;
            let probabilities = candle_nn::ops::sigmoid(&out.logits)?.to_vec2::<f32>()?;
            for ((&i, embedding), probabilities) in chunk.iter().zip(embeddings).zip(probabilities)
            {
                results[i] = Some(Prediction {
                    embedding,
                    probabilities,
                });
            }
            done += chunk.len();
            progress(done);
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Embeds one query text (the embedding head only).
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        let batch = self.encoder.encode(&[text], &self.device)?;
        let embedding =
            self.model
                .embed(&batch.input_ids, &batch.attention_mask, Mode::Infer, 0)?;
        Ok(embedding.squeeze(0)?.to_vec1::<f32>()?)
    }
}
