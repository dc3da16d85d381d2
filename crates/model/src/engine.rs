//! Inference: texts in, embeddings and skin-type probabilities out.

use crate::bert::{CompactWeights, Mode};
use crate::config::HybridConfig;
use crate::hybrid::Hybrid;
use crate::quantized::InferenceWeights;
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
        let weights = crate::quantized::inference_weights(gguf, &Device::Cpu)?;
        Self::from_weights(config_json, tokenizer_json, weights)
    }

    /// [`Engine::from_bundle`] with the weights already read (the browser
    /// reads them with [`crate::quantized::GgufStream`] as they download).
    pub fn from_weights(
        config_json: &[u8],
        tokenizer_json: &[u8],
        weights: InferenceWeights,
    ) -> Result<Self, ModelError> {
        let config = HybridConfig::from_json(config_json)?;
        let encoder = TextEncoder::from_json(tokenizer_json, config.max_length)?;
        Self::build(config, encoder, weights.tensors, weights.compact)
    }

    /// Builds an engine from f32 tensors.
    pub fn new(
        config: HybridConfig,
        encoder: TextEncoder,
        tensors: HashMap<String, Tensor>,
    ) -> Result<Self, ModelError> {
        Self::build(config, encoder, tensors, CompactWeights::default())
    }

    fn build(
        config: HybridConfig,
        encoder: TextEncoder,
        tensors: HashMap<String, Tensor>,
        compact: CompactWeights,
    ) -> Result<Self, ModelError> {
        if encoder.vocab_size() > config.bert.vocab_size {
            return Err(ModelError::Tokenizer(format!(
                "the tokenizer does not match the model: {} tokens, the model knows {}",
                encoder.vocab_size(),
                config.bert.vocab_size
            )));
        }
        if let Some(largest) = encoder.largest_id() {
            if largest as usize >= config.bert.vocab_size {
                return Err(ModelError::Tokenizer(format!(
                    "the tokenizer does not match the model: it has token id {largest}, the model knows ids below {}",
                    config.bert.vocab_size
                )));
            }
        }
        let device = Device::Cpu;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = Hybrid::load_with(&config, vb, compact)
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

    /// Makes every f32 dense layer of the encoder report its inputs to the
    /// returned statistics (the calibration of quantized export). Int8
    /// layers report nothing.
    pub fn observe_inputs(&mut self) -> std::sync::Arc<crate::bert::InputStatistics> {
        let statistics = std::sync::Arc::default();
        self.model.observe_inputs(&statistics);
        statistics
    }

    pub fn encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    /// Predicts for many texts, `batch_size` windows at a time. Windows are
    /// grouped by length so that little compute goes to padding; results
    /// keep the input order.
    pub fn predict(
        &self,
        texts: &[&str],
        batch_size: usize,
    ) -> Result<Vec<Prediction>, ModelError> {
        self.predict_with_progress(texts, batch_size, |_| {})
    }

    /// [`Engine::predict`], calling `progress(done)` as texts finish.
    pub fn predict_with_progress(
        &self,
        texts: &[&str],
        batch_size: usize,
        progress: impl FnMut(usize),
    ) -> Result<Vec<Prediction>, ModelError> {
        let pooled = self.pooled_with_progress(texts, batch_size, progress)?;
        self.heads_on(texts, pooled)
    }

    /// The heads on pooled encoder features of `texts` (one row per text).
    pub fn heads_on(
        &self,
        texts: &[&str],
        pooled: Vec<f32>,
    ) -> Result<Vec<Prediction>, ModelError> {
        let hidden = self.config().bert.hidden_size;
        let pooled = Tensor::from_vec(pooled, (texts.len(), hidden), &self.device)?;
        let lexical = self.lexical_features(texts)?;
        let heads = self.model.heads();
        let logits = heads.logits(&pooled, lexical.as_ref())?;
        let embeddings = heads.embed(&pooled)?.to_vec2::<f32>()?;
        let probabilities = candle_nn::ops::sigmoid(&logits)?.to_vec2::<f32>()?;
        Ok(embeddings
            .into_iter()
            .zip(probabilities)
            .map(|(embedding, probabilities)| Prediction {
                embedding,
                probabilities,
            })
            .collect())
    }

    /// `(texts, lexical_features)` TF-IDF features, or `None` when the model
    /// reads none.
    pub fn lexical_features(&self, texts: &[&str]) -> Result<Option<Tensor>, ModelError> {
        let heads = self.model.heads();
        let width = self.config().text_features();
        if width == 0 {
            return Ok(None);
        }
        let idf = match heads.idf() {
            Some(idf) => idf.to_vec1::<f32>()?,
            None => Vec::new(),
        };
        let rows: Vec<f32> = texts
            .iter()
            .flat_map(|t| crate::lexical::text_features(t, &idf, heads.reads_functions()))
            .collect();
        Ok(Some(Tensor::from_vec(
            rows,
            (texts.len(), width),
            &self.device,
        )?))
    }

    /// Mean-pooled encoder output of each text over all its windows,
    /// row-major `(texts, hidden)`: what the heads read, and what the trainer
    /// caches when it fits the heads on a frozen encoder.
    pub fn pooled_with_progress(
        &self,
        texts: &[&str],
        batch_size: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<f32>, ModelError> {
        let max_windows = self.config().max_windows;
        let hidden = self.config().bert.hidden_size;
        // Every window, with the text it belongs to.
        let mut windows: Vec<(usize, Vec<u32>)> = Vec::new();
        let mut remaining = vec![0usize; texts.len()];
        for (i, text) in texts.iter().enumerate() {
            for ids in self.encoder.windows(text, max_windows)? {
                windows.push((i, ids));
                remaining[i] += 1;
            }
        }
        windows.sort_by_key(|(_, ids)| ids.len());
        let mut sums = vec![0f32; texts.len() * hidden];
        let mut counts = vec![0f32; texts.len()];
        let mut done = 0;
        for chunk in windows.chunks(batch_size.max(1)) {
            let batch_ids: Vec<Vec<u32>> = chunk.iter().map(|(_, ids)| ids.clone()).collect();
            let batch = batch_from_ids(&batch_ids, &self.device)?;
            let (window_sums, window_counts) =
                self.model
                    .pooled_parts(&batch.input_ids, &batch.attention_mask, Mode::Infer, 0)?;
            let window_sums = window_sums.to_vec2::<f32>()?;
            let window_counts = window_counts.flatten_all()?.to_vec1::<f32>()?;
            let mut finished = 0;
            for (((i, _), row), count) in chunk.iter().zip(window_sums).zip(window_counts) {
                sums[i * hidden..(i + 1) * hidden]
                    .iter_mut()
                    .zip(row)
                    .for_each(|(s, v)| *s += v);
                counts[*i] += count;
                remaining[*i] -= 1;
                finished += usize::from(remaining[*i] == 0);
            }
            if finished > 0 {
                done += finished;
                progress(done);
            }
        }
        for (row, count) in sums.chunks_mut(hidden).zip(&counts) {
            row.iter_mut().for_each(|v| *v /= count.max(1.0));
        }
        Ok(sums)
    }

    /// Embeds one query text (the embedding head only).
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        let pooled = self.pooled_with_progress(&[text], 8, |_| {})?;
        let hidden = self.config().bert.hidden_size;
        let pooled = Tensor::from_vec(pooled, (1, hidden), &self.device)?;
        Ok(self
            .model
            .heads()
            .embed(&pooled)?
            .squeeze(0)?
            .to_vec1::<f32>()?)
    }
}
