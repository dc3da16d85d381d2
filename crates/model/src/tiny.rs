//! A tiny BERT (random weights, small WordPiece vocabulary) built in code,
//! for tests that must run in seconds. It has the same format as a real
//! checkpoint: a BERT config, a `tokenizer.json` and encoder weights.

use crate::config::{BertConfig, HybridConfig};
use crate::hybrid::{Hybrid, HEADS_PREFIX};
use crate::ModelError;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use std::collections::{BTreeSet, HashMap};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::Tokenizer;

/// The three files of a base checkpoint, in memory.
pub struct TinyBase {
    pub config: BertConfig,
    pub tokenizer_json: String,
    pub weights: HashMap<String, Tensor>,
}

const SPECIAL: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Builds a tiny base model whose vocabulary holds the lower-case words of
/// `corpus` plus single characters, so any text tokenizes.
pub fn tiny_base(corpus: &[&str], seed: u64) -> Result<TinyBase, ModelError> {
    let mut words = BTreeSet::new();
    for text in corpus {
        for word in text.to_lowercase().split(|c: char| !c.is_alphanumeric()) {
            if !word.is_empty() && word.is_ascii() {
                words.insert(word.to_owned());
            }
        }
    }
    for c in ('a'..='z').chain('0'..='9') {
        words.insert(c.to_string());
        words.insert(format!("##{c}"));
    }
    let vocab: HashMap<String, u32> = SPECIAL
        .iter()
        .map(|s| s.to_string())
        .chain(words)
        .enumerate()
        .map(|(i, w)| (w, i as u32))
        .collect();
    let vocab_size = vocab.len();
    let model = WordPiece::builder()
        .vocab(vocab.into_iter().collect::<ahash::AHashMap<String, u32>>())
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(BertNormalizer::default()))
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), 3),
        ("[CLS]".into(), 2),
    )));
    let tokenizer_json = tokenizer
        .to_string(false)
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;

    let config = BertConfig::tiny(vocab_size);
    let hybrid = HybridConfig {
        bert: config.clone(),
        embedding_dim: 16,
        labels: vec!["x".into()],
        max_length: 64,
        max_windows: 1,
        lexical_features: 0,
        ingredient_functions: false,
    };
    let varmap = VarMap::new();
    Hybrid::load(
        &hybrid,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )?;
    crate::init::init_weights(&varmap, seed, |_| false)?;
    let weights = varmap
        .data()
        .lock()
        .expect("var map lock")
        .iter()
        .filter(|(name, _)| !name.starts_with(HEADS_PREFIX))
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect();
    Ok(TinyBase {
        config,
        tokenizer_json,
        weights,
    })
}

/// Encoder weights plus heads initialised from `seed`: a whole hybrid for
/// `config`, as a trained run would hold it.
pub fn with_seeded_heads(
    config: &HybridConfig,
    mut weights: HashMap<String, Tensor>,
    seed: u64,
) -> Result<HashMap<String, Tensor>, ModelError> {
    let varmap = VarMap::new();
    Hybrid::load(
        config,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )?;
    crate::init::init_weights(&varmap, seed, |_| false)?;
    for (name, var) in varmap.data().lock().expect("var map lock").iter() {
        if name.starts_with(HEADS_PREFIX) {
            weights.insert(name.clone(), var.as_tensor().clone());
        }
    }
    Ok(weights)
}

/// The model files of a bundle, as bytes.
pub struct ModelFiles {
    pub config_json: Vec<u8>,
    pub tokenizer_json: Vec<u8>,
    pub gguf: Vec<u8>,
}

/// The three model files of a bundle (`config.json`, `tokenizer.json`, GGUF
/// weights) for a tiny hybrid with seeded heads: two windows of 32 tokens
/// and 64 lexical features, so every part of the query path runs.
pub fn tiny_bundle_files(corpus: &[&str], seed: u64) -> Result<ModelFiles, ModelError> {
    let base = tiny_base(corpus, seed)?;
    let config = HybridConfig {
        bert: base.config,
        embedding_dim: 8,
        labels: ["Combination", "Dry", "Normal", "Oily", "Sensitive"]
            .map(String::from)
            .to_vec(),
        max_length: 32,
        max_windows: 2,
        lexical_features: 64,
        ingredient_functions: true,
    };
    let weights = with_seeded_heads(&config, base.weights, seed + 1)?;
    let config_json =
        serde_json::to_vec(&config).map_err(|e| ModelError::Config(format!("config.json: {e}")))?;
    Ok(ModelFiles {
        config_json,
        tokenizer_json: base.tokenizer_json.into_bytes(),
        gguf: crate::quantized::to_gguf(&weights)?,
    })
}

/// The largest elementwise difference of two tensors of one shape (tests
/// compare outputs and weights with it).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .expect("two tensors of one shape")
}
