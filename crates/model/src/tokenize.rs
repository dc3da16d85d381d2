//! Tokenization with the `tokenizers` crate from a `tokenizer.json`.

use crate::ModelError;
use candle_core::{Device, Tensor};
use tokenizers::{Tokenizer, TruncationParams};

/// Turns texts into padded `(batch, seq)` id and mask tensors.
#[derive(Clone)]
pub struct TextEncoder {
    tokenizer: Tokenizer,
    max_length: usize,
}

/// Token ids and attention mask of a batch, padded to its longest text.
pub struct EncodedBatch {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
}

impl TextEncoder {
    /// Parses a `tokenizer.json`. Fixed padding stored in the file is turned
    /// off (it would pad every text to its length and slow inference several
    /// times) and truncation is set to `max_length` tokens.
    pub fn from_json(json: &[u8], max_length: usize) -> Result<Self, ModelError> {
        // Syntax first: the tokenizers crate panics on some malformed JSON
        // (a broken `decoder` value) instead of returning its error.
        serde_json::from_slice::<serde::de::IgnoredAny>(json)
            .map_err(|e| ModelError::Tokenizer(format!("tokenizer.json is not valid JSON: {e}")))?;
        let mut tokenizer = Tokenizer::from_bytes(json)
            .map_err(|e| ModelError::Tokenizer(format!("tokenizer.json does not parse: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(Self {
            tokenizer,
            max_length,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The largest token id the tokenizer can produce, if it has any.
    pub fn largest_id(&self) -> Option<u32> {
        self.tokenizer.get_vocab(true).into_values().max()
    }

    /// Whether `word` is one whole token of the vocabulary: a common word
    /// of the language the model was pretrained on, rather than a name or
    /// a misspelling it reads in pieces.
    pub fn is_whole_word(&self, word: &str) -> bool {
        self.tokenizer.token_to_id(word).is_some()
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Token ids of one text, with special tokens, truncated.
    pub fn ids(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of the first `max_windows` windows of a text: consecutive
    /// pieces of `max_length` tokens, each with its own special tokens.
    pub fn windows(&self, text: &str, max_windows: usize) -> Result<Vec<Vec<u32>>, ModelError> {
        // No token is shorter than a byte: what lies beyond this many bytes
        // can never reach a window, so it is not tokenized at all.
        let budget = max_windows.max(1) * self.max_length * 16;
        let text = match text.char_indices().nth(budget) {
            Some((cut, _)) => &text[..cut],
            None => text,
        };
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut windows = vec![encoding.get_ids().to_vec()];
        windows.extend(
            encoding
                .get_overflowing()
                .iter()
                .take(max_windows.saturating_sub(1))
                .map(|e| e.get_ids().to_vec()),
        );
        Ok(windows)
    }

    /// Encodes texts into one batch padded with id 0 to the longest.
    pub fn encode(&self, texts: &[&str], device: &Device) -> Result<EncodedBatch, ModelError> {
        let ids = texts
            .iter()
            .map(|t| self.ids(t))
            .collect::<Result<Vec<_>, _>>()?;
        batch_from_ids(&ids, device)
    }
}

/// Pads token-id lists into a batch.
pub fn batch_from_ids(ids: &[Vec<u32>], device: &Device) -> Result<EncodedBatch, ModelError> {
    let longest = ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut flat_ids = Vec::with_capacity(ids.len() * longest);
    let mut flat_mask = Vec::with_capacity(ids.len() * longest);
    for row in ids {
        flat_ids.extend_from_slice(row);
        flat_ids.resize(flat_ids.len() + longest - row.len(), 0);
        flat_mask.extend(std::iter::repeat_n(1u32, row.len()));
        flat_mask.extend(std::iter::repeat_n(0u32, longest - row.len()));
    }
    let shape = (ids.len(), longest);
    Ok(EncodedBatch {
        input_ids: Tensor::from_vec(flat_ids, shape, device)?,
        attention_mask: Tensor::from_vec(flat_mask, shape, device)?,
    })
}
