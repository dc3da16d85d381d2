//! A BERT encoder whose every weight gets gradients during fine-tuning
//! (layer norm and softmax are fused ops with hand-written backward passes,
//! [`crate::train_ops`]). At inference the same weights run through
//! candle's fused layer-norm and softmax kernels.

use crate::config::{Activation, BertConfig};
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

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
            Mode::Train => crate::train_ops::layer_norm(x, &self.weight, &self.bias, self.eps),
        }
    }
}

/// The word-embedding table: f32 (training, and any checkpoint), or kept in
/// the bundle's quantized storage with only a batch's rows dequantized.
pub enum WordTable {
    Dense(Embedding),
    Quantized(crate::quantized::QuantizedRows),
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
        let x = self
            .words
            .forward(input_ids)?
            .broadcast_add(&self.positions.forward(&positions)?)?
            .broadcast_add(&self.token_types.forward(&types)?)?;
        self.norm.forward(&x, mode)
    }
}

struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    norm: LayerNorm,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(c: &BertConfig, vb: VarBuilder) -> Result<Self> {
        let h = c.hidden_size;
        let this = vb.pp("self");
        Ok(Self {
            query: candle_nn::linear(h, h, this.pp("query"))?,
            key: candle_nn::linear(h, h, this.pp("key"))?,
            value: candle_nn::linear(h, h, this.pp("value"))?,
            output: candle_nn::linear(h, h, vb.pp("output").pp("dense"))?,
            norm: LayerNorm::load(h, c.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            heads: c.num_attention_heads,
            head_dim: c.head_dim(),
        })
    }

    fn forward(&self, x: &Tensor, mask_bias: &Tensor, mode: Mode) -> Result<Tensor> {
        let (batch, seq_len, hidden) = x.dims3()?;
        let split = |t: Tensor| {
            t.reshape((batch, seq_len, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores =
            (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?.broadcast_add(mask_bias)?;
        let probs = match mode {
            Mode::Infer => candle_nn::ops::softmax_last_dim(&scores)?,
            Mode::Train => crate::train_ops::softmax_last_dim(&scores)?,
        };
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((batch, seq_len, hidden))?;
        self.norm
            .forward(&(self.output.forward(&context)? + x)?, mode)
    }
}

struct Layer {
    attention: Attention,
    intermediate: Linear,
    output: Linear,
    norm: LayerNorm,
    activation: Activation,
}

impl Layer {
    fn load(c: &BertConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            attention: Attention::load(c, vb.pp("attention"))?,
            intermediate: candle_nn::linear(
                c.hidden_size,
                c.intermediate_size,
                vb.pp("intermediate").pp("dense"),
            )?,
            output: candle_nn::linear(
                c.intermediate_size,
                c.hidden_size,
                vb.pp("output").pp("dense"),
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
        let inner = self.intermediate.forward(&attended)?;
        let inner = match self.activation {
            Activation::Gelu => inner.gelu_erf()?,
            Activation::GeluApproximate => inner.gelu()?,
            Activation::Relu => inner.relu()?,
        };
        self.norm
            .forward(&(self.output.forward(&inner)? + attended)?, mode)
    }
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
        Self::load_with_words(config, vb, None)
    }

    /// [`Bert::load`] with the word table given apart from `vb` (inference
    /// keeps it quantized).
    pub fn load_with_words(
        config: &BertConfig,
        vb: VarBuilder,
        words: Option<WordTable>,
    ) -> Result<Self> {
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(config, vb.pp("encoder.layer").pp(i.to_string())))
            .collect::<Result<_>>()?;
        Ok(Self {
            embeddings: Embeddings::load(config, vb.pp("embeddings"), words)?,
            layers,
        })
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
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
        let mask_bias = ((attention_mask.to_dtype(DType::F32)? - 1.0)? * 10_000.0)?
            .unsqueeze(1)?
            .unsqueeze(1)?;
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
