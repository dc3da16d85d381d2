//! A BERT encoder whose every weight gets gradients during fine-tuning
//! (layer norm and softmax are fused ops with hand-written backward passes,
//! [`crate::fused`]). At inference the same weights run through
//! candle's fused layer-norm and softmax kernels; weights loaded from a
//! bundle run their matrix products in int8 ([`crate::int8`]).
//!
//! One file on purpose, as candle-transformers writes its models: the whole
//! encoder (embeddings, attention, feed-forward, pooling) reads top to
//! bottom in one place.

use crate::config::{Activation, BertConfig};
use crate::int8::{Epilogue, Int8Linear, Int8Matrix, Precision};
use crate::quantized::QuantizedRows;
use candle_core::{Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Weights that inference keeps in compact form rather than as f32 tensors
/// in the `VarBuilder`.
#[derive(Default)]
pub struct CompactWeights {
    /// The word-embedding table in its quantized blocks.
    pub word_table: Option<QuantizedRows>,
    /// Encoder matrices by weight name (`encoder.layer.0.intermediate.dense.weight`).
    pub matrices: HashMap<String, Int8Matrix>,
}

/// Sums of x·xᵀ over the inputs each observed f32 dense layer has seen, by
/// weight name: calibrated quantization weighs each weight's rounding error
/// by how its input varies.
#[derive(Default)]
pub struct InputStatistics {
    grams: Mutex<HashMap<String, InputGram>>,
}

/// x·xᵀ summed over `tokens` input rows of width `dim`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct InputGram {
    pub dim: usize,
    pub sum: Vec<f64>,
    pub tokens: usize,
}

impl InputStatistics {
    fn add(&self, name: &str, x: &Tensor) -> Result<()> {
        let dim = x.dim(candle_core::D::Minus1)?;
        let rows = x.reshape(((), dim))?;
        let tokens = rows.dim(0)?;
        let gram = rows.t()?.matmul(&rows)?.flatten_all()?.to_vec1::<f32>()?;
        let mut grams = self.grams.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = grams.entry(name.to_owned()).or_insert_with(|| InputGram {
            dim,
            sum: vec![0.0; dim * dim],
            tokens: 0,
        });
        if entry.dim != dim {
            candle_core::bail!("`{name}` saw inputs of width {dim}, then {}", entry.dim);
        }
        entry
            .sum
            .iter_mut()
            .zip(gram)
            .for_each(|(s, g)| *s += f64::from(g));
        entry.tokens += tokens;
        Ok(())
    }

    /// The statistics gathered so far, by weight name.
    pub fn grams(&self) -> HashMap<String, InputGram> {
        self.grams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Where an observed layer reports its inputs.
struct Observer {
    name: String,
    statistics: Arc<InputStatistics>,
}

/// How finely an int8 layer's inputs are quantized, by the layer's role.
///
/// The attention's query, key and value projections keep i16 inputs: made
/// 7-bit, they cost the most agreement with the f32 model. Over 300 catalog
/// products (embedding cosine to f32, min / mean): every layer 7-bit
/// 0.980 / 0.989; all but these three 0.985 / 0.992, as close as
/// transformers.js's q8 file is to its f32 model; none 0.989 / 0.994. The
/// other three matrices of a layer (three quarters of its products) read
/// 7-bit inputs.
pub fn activation_precision(weight_name: &str) -> Precision {
    if weight_name.contains(".attention.self.") {
        Precision::Wide
    } else {
        Precision::Narrow
    }
}

/// A dense layer: f32 (training, and any checkpoint), or int8 (inference
/// from a bundle).
enum Dense {
    Float(Linear, Option<Observer>),
    Int8(Int8Linear),
}

impl Dense {
    /// An int8 layer when `compact` holds this layer's matrix, else f32 from `vb`.
    fn load(
        inputs: usize,
        outputs: usize,
        vb: VarBuilder,
        compact: &mut CompactWeights,
    ) -> Result<Self> {
        let name = format!("{}.weight", vb.prefix());
        let Some(matrix) = compact.matrices.remove(&name) else {
            return Ok(Self::Float(candle_nn::linear(inputs, outputs, vb)?, None));
        };
        if (matrix.rows(), matrix.cols()) != (outputs, inputs) {
            candle_core::bail!(
                "`{name}` is {}x{}, the config says {outputs}x{inputs}",
                matrix.rows(),
                matrix.cols()
            );
        }
        let bias = vb.get(outputs, "bias")?.to_vec1::<f32>()?;
        let linear = Int8Linear::new(matrix, bias)
            .map_err(|e| candle_core::Error::Msg(format!("`{name}`: {e}")))?;
        let linear = linear.with_precision(activation_precision(&name));
        Ok(Self::Int8(linear))
    }

    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        match self {
            Self::Float(linear, observer) => {
                if let Some(o) = observer {
                    o.statistics.add(&o.name, x)?;
                }
                match (mode, linear.bias()) {
                    (Mode::Train, Some(bias)) => crate::fused::dense(x, linear.weight(), bias),
                    _ => linear.forward(x),
                }
            }
            Self::Int8(linear) => int8_layer(linear, x, Epilogue::Bias),
        }
    }

    /// Reports this layer's inputs to `statistics` under `name` (f32 layers only).
    fn observe(&mut self, name: String, statistics: &Arc<InputStatistics>) {
        if let Self::Float(_, observer) = self {
            *observer = Some(Observer {
                name,
                statistics: Arc::clone(statistics),
            });
        }
    }
}

/// `x` (any leading dims, last = the layer's inputs) quantized for `linear`.
fn quantize_input(linear: &Int8Linear, x: &Tensor) -> Result<crate::int8::Activations> {
    let values = x.flatten_all()?.to_vec1::<f32>()?;
    let tokens = values.len() / linear.inputs().max(1);
    Ok(linear.quantize_input(&values, tokens))
}

/// `linear` on `x`, quantized for it.
fn int8_layer(linear: &Int8Linear, x: &Tensor, epilogue: Epilogue) -> Result<Tensor> {
    int8_forward(linear, &quantize_input(linear, x)?, x, epilogue)
}

/// `linear` on quantized rows of `like`, shaped as `like` with the last
/// dimension the layer's outputs.
fn int8_forward(
    linear: &Int8Linear,
    x: &crate::int8::Activations,
    like: &Tensor,
    epilogue: Epilogue,
) -> Result<Tensor> {
    let mut dims = like.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = linear.outputs();
    }
    Tensor::from_vec(linear.forward(x, epilogue), dims, like.device())
}

/// Training needs differentiable ops; inference can use fused kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Infer,
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        match mode {
            Mode::Infer => candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps as f32),
            Mode::Train => crate::fused::layer_norm(x, &self.weight, &self.bias, self.eps),
        }
    }
}

/// The word-embedding table: f32 (training, and any checkpoint), or kept in
/// the bundle's quantized storage with only a batch's rows dequantized.
pub enum WordTable {
    Dense(Embedding),
    Quantized(QuantizedRows),
}

impl WordTable {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::Dense(table) => table.forward(ids),
            Self::Quantized(table) => table.lookup(ids),
        }
    }
}

struct Embeddings {
    words: WordTable,
    positions: Embedding,
    token_types: Embedding,
    norm: LayerNorm,
}

impl Embeddings {
    fn load(c: &BertConfig, vb: VarBuilder, words: Option<WordTable>) -> Result<Self> {
        let h = c.hidden_size;
        let words = match words {
            Some(WordTable::Quantized(table)) => {
                if (table.rows(), table.dim()) != (c.vocab_size, h) {
                    candle_core::bail!(
                        "the word table is {}x{}, the config says {}x{h}",
                        table.rows(),
                        table.dim(),
                        c.vocab_size
                    );
                }
                WordTable::Quantized(table)
            }
            Some(dense) => dense,
            None => WordTable::Dense(candle_nn::embedding(
                c.vocab_size,
                h,
                vb.pp("word_embeddings"),
            )?),
        };
        Ok(Self {
            words,
            positions: candle_nn::embedding(
                c.max_position_embeddings,
                h,
                vb.pp("position_embeddings"),
            )?,
            token_types: candle_nn::embedding(
                c.type_vocab_size,
                h,
                vb.pp("token_type_embeddings"),
            )?,
            norm: LayerNorm::load(h, c.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, input_ids: &Tensor, mode: Mode) -> Result<Tensor> {
        let (_, seq_len) = input_ids.dims2()?;
        let positions = Tensor::arange(0u32, seq_len as u32, input_ids.device())?;
        // Milih encodes single texts: every token has type 0.
        let types = positions.zeros_like()?;
        let words = self.words.forward(input_ids)?;
        let positions = self.positions.forward(&positions)?;
        let types = self.token_types.forward(&types)?;
        let x = match mode {
            Mode::Train => {
                crate::fused::add_bias(&crate::fused::add_bias(&words, &positions)?, &types)?
            }
            Mode::Infer => words.broadcast_add(&positions)?.broadcast_add(&types)?,
        };
        self.norm.forward(&x, mode)
    }
}

struct Attention {
    query: Dense,
    key: Dense,
    value: Dense,
    output: Dense,
    norm: LayerNorm,
    heads: usize,
}

impl Attention {
    fn load(c: &BertConfig, vb: VarBuilder, compact: &mut CompactWeights) -> Result<Self> {
        let h = c.hidden_size;
        let this = vb.pp("self");
        Ok(Self {
            query: Dense::load(h, h, this.pp("query"), compact)?,
            key: Dense::load(h, h, this.pp("key"), compact)?,
            value: Dense::load(h, h, this.pp("value"), compact)?,
            output: Dense::load(h, h, vb.pp("output").pp("dense"), compact)?,
            norm: LayerNorm::load(h, c.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            heads: c.num_attention_heads,
        })
    }

    /// `mask_bias` is `(batch, seq_len)`: 0 for real tokens, a large
    /// negative number for padding.
    fn forward(&self, x: &Tensor, mask_bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let (q, k, v) = match (&self.query, &self.key, &self.value) {
            // One quantization of the input serves all three.
            (Dense::Int8(query), Dense::Int8(key), Dense::Int8(value))
                if query.inputs() == key.inputs() && key.inputs() == value.inputs() =>
            {
                let quantized = quantize_input(query, x)?;
                let project = |l: &Int8Linear| int8_forward(l, &quantized, x, Epilogue::Bias);
                (project(query)?, project(key)?, project(value)?)
            }
            _ => (
                self.query.forward(x, mode)?,
                self.key.forward(x, mode)?,
                self.value.forward(x, mode)?,
            ),
        };
        let context = match mode {
            Mode::Train => crate::fused::attention(&q, &k, &v, mask_bias, self.heads)?,
            Mode::Infer => crate::fused::attention_inference(&q, &k, &v, mask_bias, self.heads)?,
        };
        self.norm
            .forward(&(self.output.forward(&context, mode)? + x)?, mode)
    }
}

struct Layer {
    attention: Attention,
    intermediate: Dense,
    output: Dense,
    norm: LayerNorm,
    activation: Activation,
}

impl Layer {
    fn load(c: &BertConfig, vb: VarBuilder, compact: &mut CompactWeights) -> Result<Self> {
        Ok(Self {
            attention: Attention::load(c, vb.pp("attention"), compact)?,
            intermediate: Dense::load(
                c.hidden_size,
                c.intermediate_size,
                vb.pp("intermediate").pp("dense"),
                compact,
            )?,
            output: Dense::load(
                c.intermediate_size,
                c.hidden_size,
                vb.pp("output").pp("dense"),
                compact,
            )?,
            norm: LayerNorm::load(
                c.hidden_size,
                c.layer_norm_eps,
                vb.pp("output").pp("LayerNorm"),
            )?,
            activation: c.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor, mask_bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let attended = self.attention.forward(x, mask_bias, mode)?;
        let inner = match (&self.intermediate, self.activation) {
            // GELU applied as the products are written out.
            (Dense::Int8(intermediate), Activation::Gelu) => {
                int8_layer(intermediate, &attended, Epilogue::BiasGelu)?
            }
            (intermediate, activation) => {
                let inner = intermediate.forward(&attended, mode)?;
                match activation {
                    Activation::Gelu => crate::fused::gelu_erf(&inner)?,
                    Activation::GeluApproximate => inner.gelu()?,
                    Activation::Relu => inner.relu()?,
                }
            }
        };
        self.norm
            .forward(&(self.output.forward(&inner, mode)? + attended)?, mode)
    }
}

/// A `u32` attention mask as f32 (1 for real tokens, 0 for padding).
///
/// Not `to_dtype`: candle's dtype conversion is one large function over
/// every pair of types (the largest in the browser's module), and a call
/// per query makes the browser optimise all of it, which briefly takes
/// over 100 MB and a core.
pub fn mask_as_f32(attention_mask: &Tensor) -> Result<Tensor> {
    let values: Vec<f32> = attention_mask
        .flatten_all()?
        .to_vec1::<u32>()?
        .into_iter()
        .map(|m| m as f32)
        .collect();
    Tensor::from_vec(values, attention_mask.dims(), attention_mask.device())
}

/// 0 where a token is real, a large negative number where it is padding:
/// added to attention scores, it keeps padding out of every softmax.
fn mask_bias(attention_mask: &Tensor) -> Result<Tensor> {
    (mask_as_f32(attention_mask)? - 1.0)? * 10_000.0
}

/// The BERT encoder: token ids in, one hidden vector per token out.
pub struct Bert {
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl Bert {
    /// Loads the encoder from `vb`, using Hugging Face weight names without
    /// the `bert.` prefix (see [`crate::canonical_weight_name`]).
    pub fn load(config: &BertConfig, vb: VarBuilder) -> Result<Self> {
        Self::load_with(config, vb, CompactWeights::default())
    }

    /// [`Bert::load`] with some weights given in compact form apart from
    /// `vb` (inference from a bundle). Every compact matrix must be used.
    pub fn load_with(
        config: &BertConfig,
        vb: VarBuilder,
        mut compact: CompactWeights,
    ) -> Result<Self> {
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                Layer::load(
                    config,
                    vb.pp("encoder.layer").pp(i.to_string()),
                    &mut compact,
                )
            })
            .collect::<Result<_>>()?;
        if let Some(name) = compact.matrices.keys().min() {
            candle_core::bail!("`{name}` is not a weight of this model");
        }
        let words = compact.word_table.take().map(WordTable::Quantized);
        Ok(Self {
            embeddings: Embeddings::load(config, vb.pp("embeddings"), words)?,
            layers,
        })
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// From now on, every f32 dense layer adds its inputs to `statistics`,
    /// under its weight name.
    pub fn observe_inputs(&mut self, statistics: &Arc<InputStatistics>) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let attention = &mut layer.attention;
            let denses = [
                (&mut attention.query, "attention.self.query"),
                (&mut attention.key, "attention.self.key"),
                (&mut attention.value, "attention.self.value"),
                (&mut attention.output, "attention.output.dense"),
                (&mut layer.intermediate, "intermediate.dense"),
                (&mut layer.output, "output.dense"),
            ];
            for (dense, part) in denses {
                dense.observe(format!("encoder.layer.{i}.{part}.weight"), statistics);
            }
        }
    }

    /// Hidden states after the embeddings and the first `layers` layers, in
    /// inference mode: the part of a partly tuned encoder that never
    /// changes, computed once ([`Bert::upper`] runs the rest).
    pub fn lower(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        layers: usize,
    ) -> Result<Tensor> {
        let mask_bias = mask_bias(attention_mask)?;
        let mut x = self.embeddings.forward(input_ids, Mode::Infer)?;
        for layer in self.layers.iter().take(layers) {
            x = layer.forward(&x, &mask_bias, Mode::Infer)?;
        }
        Ok(x.detach())
    }

    /// Runs layers `from..` on hidden states `x` (`(batch, seq, hidden)`,
    /// from [`Bert::lower`]) under `attention_mask`.
    pub fn upper(
        &self,
        x: &Tensor,
        attention_mask: &Tensor,
        from: usize,
        mode: Mode,
    ) -> Result<Tensor> {
        let mask_bias = mask_bias(attention_mask)?;
        let mut x = x.clone();
        for layer in self.layers.iter().skip(from) {
            x = layer.forward(&x, &mask_bias, mode)?;
        }
        Ok(x)
    }

    /// `input_ids` and `attention_mask` are `(batch, seq)` u32 tensors.
    /// With `frozen_layers = n > 0` the embeddings and the first `n` layers get
    /// no gradient (they still run).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        mode: Mode,
        frozen_layers: usize,
    ) -> Result<Tensor> {
        // 0 where a token is real, a large negative number where it is padding.
        let mask_bias = mask_bias(attention_mask)?;
        let mut x = self.embeddings.forward(input_ids, mode)?;
        if frozen_layers > 0 {
            x = x.detach();
        }
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, &mask_bias, mode)?;
            if i < frozen_layers {
                x = x.detach();
            }
        }
        Ok(x)
    }
}
