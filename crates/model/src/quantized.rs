//! The bundle's weight file: GGUF with the encoder's matrices in Q8_0 and
//! Q5_0, a Q4_0 word-embedding table, and f32 vectors and heads.
//!
//! For inference the encoder matrices become int8 with one scale per row
//! as they are read ([`crate::int8`]), the word table stays in its Q4_0
//! blocks, and the rest is dequantized to f32. Every read goes through
//! [`GgufStream`], which takes the file in pieces as they arrive.
//!
//! Writing and reading the format live in one file on purpose: the block
//! layouts, scales and names that export writes are the ones the stream
//! reads back, and a change to one side shows up next to the other.

use crate::bert::CompactWeights;
use crate::int8::{least_error_scale, Int8Matrix};
use crate::ModelError;
use candle_core::quantized::{ggml_file, gguf_file, GgmlDType, QStorage, QTensor};
use candle_core::{Device, Tensor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Cursor;
use std::ops::Range;

/// How each tensor is stored.
///
/// Bytes are the first-visit download, so each group gets the fewest bits
/// that keep the exported model close to f32 (min / mean cosine of the
/// catalog embeddings, measured with the trainer's calibrated rounding):
/// the value and attention-output projections lose the most at 5 bits and
/// keep 8; the other encoder matrices (query, key, both feed-forward
/// matrices: three quarters of the encoder) take 5; the word table 4.
pub fn storage_type(name: &str, tensor: &Tensor) -> GgmlDType {
    let dims = tensor.dims();
    let is_matrix = dims.len() == 2;
    let blocks_fit = dims
        .last()
        .is_some_and(|d| d.is_multiple_of(GgmlDType::Q8_0.block_size()));
    // The heads are small and decide the output directly: keep them exact.
    if !is_matrix || !blocks_fit || name.starts_with(crate::HEADS_PREFIX) {
        GgmlDType::F32
    } else if name.ends_with(WORD_TABLE) {
        // Half of all weights, yet only a query's few rows are ever read.
        GgmlDType::Q4_0
    } else if is_encoder_matrix_name(name)
        && !(name.contains("attention.self.value") || name.contains("attention.output.dense"))
    {
        GgmlDType::Q5_0
    } else {
        GgmlDType::Q8_0
    }
}

/// Serialises named f32 tensors to GGUF bytes, in name order so that the
/// same weights always give the same bytes.
pub fn to_gguf(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>, ModelError> {
    to_gguf_with(tensors, quantize)
}

/// A tensor in its bundle storage ([`storage_type`]), each weight rounded
/// to its nearest value (the trainer's export rounds 5-bit encoder matrices
/// against calibration inputs instead).
pub fn quantize(name: &str, tensor: &Tensor) -> candle_core::Result<QTensor> {
    let dtype = storage_type(name, tensor);
    if dtype == GgmlDType::Q8_0 && is_encoder_matrix(name, tensor) {
        row_scaled_q8_0(tensor)
    } else {
        QTensor::quantize(tensor, dtype)
    }
}

/// [`to_gguf`] with another quantizer for some tensors.
pub fn to_gguf_with(
    tensors: &HashMap<String, Tensor>,
    quantize: impl Fn(&str, &Tensor) -> candle_core::Result<QTensor>,
) -> Result<Vec<u8>, ModelError> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let quantized = names
        .iter()
        .map(|name| quantize(name, &tensors[*name]).map(|q| (name.as_str(), q)))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let refs: Vec<(&str, &QTensor)> = quantized.iter().map(|(n, q)| (*n, q)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &[], &refs)?;
    Ok(out.into_inner())
}

/// Q8_0 blocks that all share their row's scale: the int8 matrix the
/// browser computes with ([`Int8Matrix`], one scale per row), written in a
/// standard GGUF type. Reading it back gives that matrix exactly.
fn row_scaled_q8_0(tensor: &Tensor) -> candle_core::Result<QTensor> {
    let (rows, cols) = tensor.dims2()?;
    let values = tensor.flatten_all()?.to_vec1::<f32>()?;
    // The block scale is an f16: round each row's scale to one first.
    let matrix = Int8Matrix::quantize_with(&values, rows, cols, |row| {
        half::f16::from_f32(least_error_scale(row)).to_f32()
    });
    let block = GgmlDType::Q8_0.block_size();
    let mut bytes = Vec::with_capacity(rows * cols / block * GgmlDType::Q8_0.type_size());
    for (row, scale) in matrix.rows_with_scales() {
        let scale = half::f16::from_f32(scale).to_le_bytes();
        for values in row.chunks_exact(block) {
            bytes.extend_from_slice(&scale);
            bytes.extend(values.iter().map(|&q| q as u8));
        }
    }
    let storage = QStorage::from_data(Cow::Owned(bytes), &Device::Cpu, GgmlDType::Q8_0)?;
    QTensor::new(storage, (rows, cols))
}

/// The value grid of a 32-weight GGUF block type with 4 or 5 bits: the
/// codes a calibrated quantizer ([GPTQ]-style, in the trainer) picks from,
/// and their encoding into standard blocks.
///
/// [GPTQ]: https://arxiv.org/abs/2210.17323
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockGrid {
    dtype: GgmlDType,
    bits: u32,
    /// `code·scale + offset` with a free offset (Q4_1, Q5_1), or centred
    /// `(code − 2^(bits−1))·scale` (Q4_0, Q5_0).
    with_offset: bool,
}

/// A block's scale and offset, as stored (f16).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockParams {
    pub scale: half::f16,
    pub offset: half::f16,
}

impl BlockGrid {
    /// Values per block.
    pub const LEN: usize = 32;

    /// Every grid: Q4_0, Q4_1, Q5_0, Q5_1.
    pub const ALL: [Self; 4] = [
        Self::of(GgmlDType::Q4_0, 4, false),
        Self::of(GgmlDType::Q4_1, 4, true),
        Self::of(GgmlDType::Q5_0, 5, false),
        Self::of(GgmlDType::Q5_1, 5, true),
    ];

    const fn of(dtype: GgmlDType, bits: u32, with_offset: bool) -> Self {
        Self {
            dtype,
            bits,
            with_offset,
        }
    }

    /// The grid of `dtype`, if it is one of [`BlockGrid::ALL`].
    pub fn new(dtype: GgmlDType) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.dtype == dtype)
    }

    pub fn dtype(&self) -> GgmlDType {
        self.dtype
    }

    fn levels(&self) -> u32 {
        1 << self.bits
    }

    /// The grid for `values` (one block), the range shrunk by `clip` (1 =
    /// the whole range) as ggml chooses it: min to max with an offset (shrunk
    /// about its middle), else the largest magnitude on the grid's longer side.
    pub fn fit(&self, values: &[f32], clip: f32) -> BlockParams {
        let f16 = half::f16::from_f32;
        if self.with_offset {
            let min = values.iter().copied().fold(f32::INFINITY, f32::min);
            let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let (middle, half_range) = ((min + max) / 2.0, (max - min) / 2.0 * clip);
            let (lo, hi) = (middle - half_range, middle + half_range);
            BlockParams {
                scale: f16((hi - lo) / (self.levels() - 1) as f32),
                offset: f16(lo),
            }
        } else {
            let extreme = values
                .iter()
                .copied()
                .fold(0f32, |e, v| if v.abs() > e.abs() { v } else { e });
            let half_levels = (self.levels() / 2) as f32;
            BlockParams {
                scale: f16(-extreme * clip / half_levels),
                offset: f16(0.0),
            }
        }
    }

    /// The nearest code to `value`.
    pub fn code(&self, params: BlockParams, value: f32) -> u8 {
        let scale = params.scale.to_f32();
        let top = (self.levels() - 1) as f32;
        if scale == 0.0 {
            return if self.with_offset {
                0
            } else {
                (self.levels() / 2) as u8
            };
        }
        let position = if self.with_offset {
            (value - params.offset.to_f32()) / scale
        } else {
            value / scale + (self.levels() / 2) as f32
        };
        position.round().clamp(0.0, top) as u8
    }

    /// The value a code stands for.
    pub fn value(&self, params: BlockParams, code: u8) -> f32 {
        let scale = params.scale.to_f32();
        if self.with_offset {
            f32::from(code) * scale + params.offset.to_f32()
        } else {
            (f32::from(code) - (self.levels() / 2) as f32) * scale
        }
    }

    /// A `(rows, cols)` tensor of these blocks from each block's params and
    /// codes, row by row.
    pub fn to_qtensor(
        &self,
        rows: usize,
        cols: usize,
        params: &[BlockParams],
        codes: &[u8],
    ) -> candle_core::Result<QTensor> {
        let blocks = rows * cols / Self::LEN;
        if !cols.is_multiple_of(Self::LEN) || params.len() != blocks || codes.len() != rows * cols {
            candle_core::bail!("{rows}x{cols} codes do not fill {} blocks", params.len());
        }
        let mut bytes = Vec::with_capacity(blocks * self.dtype.type_size());
        for (p, block) in params.iter().zip(codes.chunks_exact(Self::LEN)) {
            bytes.extend_from_slice(&p.scale.to_le_bytes());
            if self.with_offset {
                bytes.extend_from_slice(&p.offset.to_le_bytes());
            }
            let (low, high) = block.split_at(Self::LEN / 2);
            if self.bits == 5 {
                // Fifth bits: bit j of a little-endian u32 for code j.
                let fifth = block
                    .iter()
                    .enumerate()
                    .fold(0u32, |acc, (j, &c)| acc | (u32::from(c >> 4) << j));
                bytes.extend_from_slice(&fifth.to_le_bytes());
            }
            // Byte j: code j in the low nibble, code j + 16 in the high one.
            bytes.extend(
                low.iter()
                    .zip(high)
                    .map(|(&l, &h)| (l & 0xF) | ((h & 0xF) << 4)),
            );
        }
        let storage = QStorage::from_data(Cow::Owned(bytes), &Device::Cpu, self.dtype)?;
        QTensor::new(storage, (rows, cols))
    }
}

/// Reads GGUF bytes back into f32 tensors.
pub fn from_gguf(bytes: &[u8], device: &Device) -> Result<HashMap<String, Tensor>, ModelError> {
    Ok(GgufStream::read_whole(bytes, Purpose::Tensors, device)?.tensors)
}

/// GGUF weights for inference: the encoder's matrices and the word table in
/// compact form, every other tensor in f32.
pub struct InferenceWeights {
    pub tensors: HashMap<String, Tensor>,
    pub compact: CompactWeights,
}

/// Reads GGUF bytes for inference (see [`InferenceWeights`]).
pub fn inference_weights(bytes: &[u8], device: &Device) -> Result<InferenceWeights, ModelError> {
    GgufStream::read_whole(bytes, Purpose::Inference, device)
}

fn gguf_error(e: candle_core::Error) -> ModelError {
    ModelError::Weights(format!("model weights (GGUF): {e}"))
}

/// What the weights are read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Every tensor in f32 (training, checks).
    Tensors,
    /// [`InferenceWeights`].
    Inference,
}

/// A tensor's place in the file.
struct Placed {
    name: String,
    dtype: GgmlDType,
    dims: Vec<usize>,
    range: Range<u64>,
}

/// Reads a GGUF file of known length as its bytes arrive, in order: the
/// header is parsed once it is in, and each tensor is converted as soon as
/// its last byte arrives. Only the tensor being received is held besides
/// the weights built so far, so the file is never whole in memory (the
/// browser builds the model while the file downloads).
pub struct GgufStream {
    file_len: u64,
    purpose: Purpose,
    device: Device,
    received: u64,
    /// The file's start, until the header in it parses.
    header: Vec<u8>,
    /// Header size at which to try parsing next (doubling: a damaged header
    /// is not re-parsed for every chunk).
    next_parse: usize,
    /// Tensors by offset, once the header is parsed.
    tensors: Option<Vec<Placed>>,
    next_tensor: usize,
    /// The bytes of the tensor being received.
    current: Vec<u8>,
    weights: InferenceWeights,
}

impl GgufStream {
    pub fn new(file_len: u64, purpose: Purpose, device: &Device) -> Self {
        Self {
            file_len,
            purpose,
            device: device.clone(),
            received: 0,
            header: Vec::new(),
            next_parse: 1 << 16,
            tensors: None,
            next_tensor: 0,
            current: Vec::new(),
            weights: InferenceWeights {
                tensors: HashMap::new(),
                compact: CompactWeights::default(),
            },
        }
    }

    /// A stream of [`InferenceWeights`] on the CPU (the browser's case).
    pub fn for_inference(file_len: u64) -> Self {
        Self::new(file_len, Purpose::Inference, &Device::Cpu)
    }

    /// A whole file held in memory, read in one piece.
    fn read_whole(
        bytes: &[u8],
        purpose: Purpose,
        device: &Device,
    ) -> Result<InferenceWeights, ModelError> {
        let mut stream = Self::new(bytes.len() as u64, purpose, device);
        stream.push(bytes)?;
        stream.finish()
    }

    /// Takes the file's next bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), ModelError> {
        let at = self.received;
        self.received += bytes.len() as u64;
        if self.received > self.file_len {
            return Err(ModelError::Weights(format!(
                "model weights (GGUF): more than the {} bytes stated",
                self.file_len
            )));
        }
        if self.tensors.is_some() {
            return self.take(bytes, at);
        }
        self.header.extend_from_slice(bytes);
        let complete = self.received == self.file_len;
        if self.header.len() < self.next_parse && !complete {
            return Ok(());
        }
        match gguf_file::Content::read(&mut Cursor::new(&self.header)) {
            Ok(content) => {
                self.tensors = Some(self.layout(&content)?);
                let header = std::mem::take(&mut self.header);
                self.take(&header, 0)
            }
            // The header may not be all in yet.
            Err(_) if !complete => {
                self.next_parse = self.header.len().saturating_mul(2);
                Ok(())
            }
            Err(e) => Err(gguf_error(e)),
        }
    }

    /// The weights, once every byte has arrived.
    pub fn finish(mut self) -> Result<InferenceWeights, ModelError> {
        if self.received < self.file_len {
            return Err(ModelError::Weights(format!(
                "model weights (GGUF): the file ended after {} of {} bytes",
                self.received, self.file_len
            )));
        }
        if self.tensors.is_none() {
            // Every push of the last bytes parses the header, so only a file
            // of no bytes at all, never pushed, gets here.
            self.push(&[])?;
        }
        match self.tensors.as_ref().and_then(|t| t.get(self.next_tensor)) {
            Some(missing) => Err(ModelError::Weights(format!(
                "model weights (GGUF): tensor `{}` was not received",
                missing.name
            ))),
            None => Ok(self.weights),
        }
    }

    /// The tensors in file order, each checked to lie in the file and to
    /// start after the one before.
    fn layout(&self, content: &gguf_file::Content) -> Result<Vec<Placed>, ModelError> {
        let mut placed = content
            .tensor_infos
            .iter()
            .map(|(name, info)| {
                Ok(Placed {
                    name: name.clone(),
                    dtype: info.ggml_dtype,
                    dims: info.shape.dims().to_vec(),
                    range: check_fits(name, info, content, self.file_len)?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        placed.sort_by(|a, b| (a.range.start, &a.name).cmp(&(b.range.start, &b.name)));
        for pair in placed.windows(2) {
            if pair[1].range.start < pair[0].range.end {
                return Err(ModelError::Weights(format!(
                    "model weights (GGUF): tensors `{}` and `{}` overlap",
                    pair[0].name, pair[1].name
                )));
            }
        }
        Ok(placed)
    }

    /// Hands `bytes`, which start at file offset `at`, to the tensors they
    /// belong to.
    fn take(&mut self, mut bytes: &[u8], mut at: u64) -> Result<(), ModelError> {
        let Some(tensors) = self.tensors.take() else {
            return Ok(());
        };
        let result = (|| {
            while let Some(tensor) = tensors.get(self.next_tensor) {
                // Padding and bytes of no tensor are skipped.
                if at < tensor.range.start {
                    let skip = (tensor.range.start - at).min(bytes.len() as u64);
                    bytes = &bytes[skip as usize..];
                    at += skip;
                    if at < tensor.range.start {
                        return Ok(());
                    }
                }
                if self.current.is_empty() {
                    // Sized once: growing the word table's buffer by
                    // doubling would briefly hold twice its size.
                    let size = (tensor.range.end - tensor.range.start) as usize;
                    self.current.reserve_exact(size);
                }
                let wanted = (tensor.range.end - at).min(bytes.len() as u64) as usize;
                self.current.extend_from_slice(&bytes[..wanted]);
                bytes = &bytes[wanted..];
                at += wanted as u64;
                if at < tensor.range.end {
                    return Ok(());
                }
                let raw = std::mem::take(&mut self.current);
                self.convert(tensor, raw)?;
                self.next_tensor += 1;
            }
            Ok(())
        })();
        self.tensors = Some(tensors);
        result
    }

    /// Turns one tensor's bytes into its weights.
    fn convert(&mut self, tensor: &Placed, raw: Vec<u8>) -> Result<(), ModelError> {
        let inference = self.purpose == Purpose::Inference;
        let name = &tensor.name;
        if inference && name.ends_with(WORD_TABLE) && tensor.dtype != GgmlDType::F32 {
            // Kept in its blocks, as received.
            let [rows, dim] = tensor.dims[..] else {
                return Err(ModelError::Weights(format!(
                    "model weights (GGUF): `{name}` has shape {:?}, not a table",
                    tensor.dims
                )));
            };
            self.weights.compact.word_table =
                Some(QuantizedRows::from_raw(tensor.dtype, raw, rows, dim)?);
            return Ok(());
        }
        if inference && tensor.dtype == GgmlDType::Q8_0 && is_encoder_matrix_name(name) {
            if let Some(matrix) = row_scaled_matrix(&raw, &tensor.dims) {
                self.weights.compact.matrices.insert(name.clone(), matrix);
                return Ok(());
            }
        }
        if inference && tensor.dtype == GgmlDType::Q5_0 && is_encoder_matrix_name(name) {
            if let Some(matrix) = q5_0_matrix(&raw, &tensor.dims) {
                self.weights.compact.matrices.insert(name.clone(), matrix);
                return Ok(());
            }
        }
        let q = ggml_file::qtensor_from_ggml(tensor.dtype, &raw, tensor.dims.clone(), &self.device)
            .map_err(gguf_error)?;
        drop(raw);
        let values = q.dequantize(&self.device).map_err(gguf_error)?;
        if inference && is_encoder_matrix(name, &values) {
            // Converted one at a time: the f32 copy never outlives this step.
            let (rows, cols) = values.dims2().map_err(gguf_error)?;
            let flat = values.flatten_all().and_then(|t| t.to_vec1::<f32>());
            let flat = flat.map_err(gguf_error)?;
            let matrix = Int8Matrix::quantize(&flat, rows, cols);
            self.weights.compact.matrices.insert(name.clone(), matrix);
        } else {
            self.weights.tensors.insert(name.clone(), values);
        }
        Ok(())
    }
}

/// The matrices of the encoder's dense layers (not embeddings, not heads).
pub fn is_encoder_matrix(name: &str, tensor: &Tensor) -> bool {
    is_encoder_matrix_name(name) && tensor.rank() == 2
}

fn is_encoder_matrix_name(name: &str) -> bool {
    name.starts_with("encoder.") && name.ends_with(".weight")
}

/// The int8 matrix of Q8_0 blocks that share their row's scale (as
/// [`row_scaled_q8_0`] writes them), taken as it is: no trip through f32.
/// `None` for any other Q8_0 matrix, which is requantized instead.
fn row_scaled_matrix(raw: &[u8], dims: &[usize]) -> Option<Int8Matrix> {
    let &[rows, cols] = dims else {
        return None;
    };
    let (block, block_bytes) = (GgmlDType::Q8_0.block_size(), GgmlDType::Q8_0.type_size());
    if cols == 0 || !cols.is_multiple_of(block) || raw.len() != rows * cols / block * block_bytes {
        return None;
    }
    let mut values = Vec::with_capacity(rows * cols);
    let mut scales = Vec::with_capacity(rows);
    for row in raw.chunks_exact(cols / block * block_bytes) {
        let scale_bits = &row[..2];
        for blocks in row.chunks_exact(block_bytes) {
            if &blocks[..2] != scale_bits {
                return None;
            }
            values.extend(blocks[2..].iter().map(|&b| b as i8));
        }
        let scale = half::f16::from_le_bytes([scale_bits[0], scale_bits[1]]).to_f32();
        if !(scale.is_finite() && scale >= 0.0) {
            return None;
        }
        scales.push(scale);
    }
    Int8Matrix::from_rows(rows, cols, &values, scales)
}

/// The int8 matrix of a Q5_0 matrix, decoded a row at a time straight from
/// its blocks (the same values as candle's dequantization, without a
/// tensor of the whole matrix in f32 and two copies of it). `None` if the
/// bytes do not hold `dims` in whole blocks.
fn q5_0_matrix(raw: &[u8], dims: &[usize]) -> Option<Int8Matrix> {
    const BLOCK: usize = 32;
    const BLOCK_BYTES: usize = 22;
    let &[rows, cols] = dims else {
        return None;
    };
    if cols == 0 || !cols.is_multiple_of(BLOCK) || raw.len() != rows * (cols / BLOCK) * BLOCK_BYTES
    {
        return None;
    }
    let row_bytes = cols / BLOCK * BLOCK_BYTES;
    Some(Int8Matrix::quantize_by_row(rows, cols, |r, row| {
        let blocks = raw[r * row_bytes..(r + 1) * row_bytes].chunks_exact(BLOCK_BYTES);
        for (block, out) in blocks.zip(row.chunks_exact_mut(BLOCK)) {
            // A block: f16 scale, 32 fifth bits, 32 low nibbles; value
            // j and j + 16 share byte j of the nibbles.
            let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
            let high = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
            // The 5-bit codes first, then one pass of plain arithmetic over
            // all 32, which the compiler turns into vector instructions.
            let mut codes = [0u8; BLOCK];
            for (j, &nibbles) in block[6..].iter().enumerate() {
                codes[j] = (nibbles & 0x0F) | ((high >> j) << 4 & 0x10) as u8;
                codes[j + BLOCK / 2] = (nibbles >> 4) | ((high >> (j + 12)) & 0x10) as u8;
            }
            for (value, &code) in out.iter_mut().zip(&codes) {
                *value = (i32::from(code) - 16) as f32 * d;
            }
        }
    }))
}

/// Checks, in overflow-free arithmetic, that a tensor's declared shape fits
/// in the bytes it points at. The GGUF header is untrusted: a shape whose
/// element count overflows would otherwise pass the reader's size check
/// and ask for an impossible allocation when dequantized.
fn check_fits(
    name: &str,
    info: &gguf_file::TensorInfo,
    content: &gguf_file::Content,
    file_len: u64,
) -> Result<Range<u64>, ModelError> {
    let bad =
        |why: String| ModelError::Weights(format!("model weights (GGUF): tensor `{name}` {why}"));
    let dims = info.shape.dims();
    let elements = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(format!("has shape {dims:?}, too many elements")))?;
    let (block, block_bytes) = (info.ggml_dtype.block_size(), info.ggml_dtype.type_size());
    if !elements.is_multiple_of(block) {
        return Err(bad(format!(
            "has {elements} elements, not whole {:?} blocks",
            info.ggml_dtype
        )));
    }
    let size = (elements / block)
        .checked_mul(block_bytes)
        .ok_or_else(|| bad(format!("has shape {dims:?}, too large")))?;
    let start = content.tensor_data_offset.checked_add(info.offset);
    let end = start.and_then(|start| start.checked_add(size as u64));
    match (start, end) {
        (Some(start), Some(end)) if end <= file_len => Ok(start..end),
        _ => Err(bad(format!(
            "has shape {dims:?} ({size} bytes at offset {}), beyond the end of the {file_len}-byte file",
            info.offset
        ))),
    }
}

/// Name (suffix) of the word-embedding table.
pub const WORD_TABLE: &str = "word_embeddings.weight";

/// A `(rows, dim)` table in a quantized block format, read a few rows at a
/// time: a query needs the rows of its tokens only, so the 30,522-row word
/// table stays at its download size in memory instead of 47 MB of f32.
pub struct QuantizedRows {
    dtype: GgmlDType,
    data: Vec<u8>,
    rows: usize,
    dim: usize,
    row_bytes: usize,
}

impl QuantizedRows {
    pub fn new(table: &QTensor) -> Result<Self, ModelError> {
        let (rows, dim) = table.shape().dims2().map_err(gguf_error)?;
        let data = table.data().map_err(gguf_error)?.into_owned();
        Self::from_raw(table.dtype(), data, rows, dim)
    }

    /// A table from its raw blocks, `rows` rows of `dim` values.
    pub fn from_raw(
        dtype: GgmlDType,
        data: Vec<u8>,
        rows: usize,
        dim: usize,
    ) -> Result<Self, ModelError> {
        if !dim.is_multiple_of(dtype.block_size()) {
            return Err(ModelError::Weights(format!(
                "model weights (GGUF): a row of {dim} values is not whole {dtype:?} blocks"
            )));
        }
        let row_bytes = dim / dtype.block_size() * dtype.type_size();
        if Some(data.len()) != rows.checked_mul(row_bytes) {
            return Err(ModelError::Weights(format!(
                "model weights (GGUF): the word table holds {} bytes, {rows} rows need {}",
                data.len(),
                rows.saturating_mul(row_bytes)
            )));
        }
        Ok(Self {
            dtype,
            data,
            rows,
            dim,
            row_bytes,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The f32 rows of `ids` (any shape of u32), shaped `(ids..., dim)`.
    pub fn lookup(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let device = ids.device();
        let flat = ids.flatten_all()?.to_vec1::<u32>()?;
        let mut bytes = Vec::with_capacity(flat.len() * self.row_bytes);
        for &id in &flat {
            let id = id as usize;
            if id >= self.rows {
                candle_core::bail!("token id {id} is outside the {}-row word table", self.rows);
            }
            bytes.extend_from_slice(&self.data[id * self.row_bytes..(id + 1) * self.row_bytes]);
        }
        let mut shape = ids.dims().to_vec();
        shape.push(self.dim);
        let picked = candle_core::quantized::ggml_file::qtensor_from_ggml(
            self.dtype,
            &bytes,
            vec![flat.len(), self.dim],
            device,
        )?;
        picked.dequantize(device)?.reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GGUF bytes of one (2, 32) f32 tensor named `w`, no metadata.
    fn small_gguf() -> Vec<u8> {
        let tensor = Tensor::zeros((2, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
        to_gguf(&HashMap::from([("w".to_owned(), tensor)])).unwrap()
    }

    #[test]
    fn a_shape_that_overflows_is_an_error_not_a_panic() {
        // Found by the `bundle` fuzz target: a dimension so large that the
        // element count wraps. Header: magic, version, tensor and metadata
        // counts (24 bytes); then the name (u64 length + "w"), the number of
        // dimensions (u32) and the dimensions (u64 each, innermost first).
        let mut bytes = small_gguf();
        assert!(from_gguf(&bytes, &Device::Cpu).is_ok());
        let first_dim = 24 + 8 + 1 + 4;
        bytes[first_dim..first_dim + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
        let error = from_gguf(&bytes, &Device::Cpu).unwrap_err().to_string();
        assert!(error.contains("tensor `w` has shape"), "{error}");
        // A shape that does not overflow but is larger than the file.
        let mut bytes = small_gguf();
        bytes[first_dim..first_dim + 8].copy_from_slice(&(1u64 << 20).to_le_bytes());
        let error = from_gguf(&bytes, &Device::Cpu).unwrap_err().to_string();
        assert!(error.contains("beyond the end of the"), "{error}");
    }

    #[test]
    fn quantized_rows_give_the_rows_of_the_dequantized_table() {
        let device = Device::Cpu;
        let values: Vec<f32> = (0..50 * 64)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let table = Tensor::from_vec(values, (50, 64), &device).unwrap();
        let q = QTensor::quantize(&table, GgmlDType::Q5_0).unwrap();
        let rows = QuantizedRows::new(&q).unwrap();
        let ids = Tensor::new(&[[3u32, 7], [0, 49]], &device).unwrap();
        let looked_up = rows.lookup(&ids).unwrap();
        assert_eq!(looked_up.dims(), &[2, 2, 64]);
        let dense = q.dequantize(&device).unwrap();
        let expected = dense
            .index_select(&ids.flatten_all().unwrap(), 0)
            .unwrap()
            .reshape((2, 2, 64))
            .unwrap();
        let diff = (looked_up - expected)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0);
        let outside = Tensor::new(&[[50u32]], &device).unwrap();
        let error = rows.lookup(&outside).unwrap_err().to_string();
        assert!(
            error.contains("token id 50 is outside the 50-row word table"),
            "{error}"
        );
    }

    #[test]
    fn encoder_matrices_round_trip_to_the_same_int8_matrix() {
        let name = "encoder.layer.0.attention.self.value.weight";
        let values: Vec<f32> = (0..6 * 64)
            .map(|i| ((i * 53) % 97) as f32 / 40.0 - 1.2)
            .collect();
        let tensor = Tensor::from_vec(values.clone(), (6, 64), &Device::Cpu).unwrap();
        let bytes = to_gguf(&HashMap::from([(name.to_owned(), tensor)])).unwrap();
        let mut weights = inference_weights(&bytes, &Device::Cpu).unwrap();
        let read = weights.compact.matrices.remove(name).unwrap();
        let written = Int8Matrix::quantize_with(&values, 6, 64, |row| {
            half::f16::from_f32(least_error_scale(row)).to_f32()
        });
        assert_eq!(read.dequantize(), written.dequantize());
        // Other readers see ordinary Q8_0 with the same values.
        let dense = from_gguf(&bytes, &Device::Cpu).unwrap()[name]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(dense, written.dequantize());
    }

    #[test]
    fn block_grids_encode_what_ggml_decodes() {
        let (rows, cols) = (3, 64);
        for grid in BlockGrid::ALL {
            let dtype = grid.dtype();
            let values: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 29) % 41) as f32 / 17.0 - 1.1)
                .collect();
            let params: Vec<BlockParams> = values
                .chunks(BlockGrid::LEN)
                .map(|block| grid.fit(block, 1.0))
                .collect();
            let codes: Vec<u8> = values
                .chunks(BlockGrid::LEN)
                .zip(&params)
                .flat_map(|(block, &p)| block.iter().map(move |&v| grid.code(p, v)))
                .collect();
            let expected: Vec<f32> = codes
                .chunks(BlockGrid::LEN)
                .zip(&params)
                .flat_map(|(block, &p)| block.iter().map(move |&c| grid.value(p, c)))
                .collect();
            let decoded = grid
                .to_qtensor(rows, cols, &params, &codes)
                .unwrap()
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for (i, (d, e)) in decoded.iter().zip(&expected).enumerate() {
                assert!(
                    (d - e).abs() < 1e-6,
                    "{dtype:?} value {i}: ggml {d}, grid {e}"
                );
            }
            let error = values
                .iter()
                .zip(&expected)
                .map(|(v, e)| (v - e).abs())
                .fold(0f32, f32::max);
            assert!(error < 0.1, "{dtype:?} rounds within a step: {error}");
        }
    }

    #[test]
    fn five_bit_encoder_matrices_are_read_as_int8() {
        let name = "encoder.layer.0.intermediate.dense.weight";
        let values: Vec<f32> = (0..4 * 64)
            .map(|i| ((i * 31) % 53) as f32 / 50.0 - 0.5)
            .collect();
        let tensor = Tensor::from_vec(values.clone(), (4, 64), &Device::Cpu).unwrap();
        assert_eq!(storage_type(name, &tensor), GgmlDType::Q5_0);
        let bytes = to_gguf(&HashMap::from([(name.to_owned(), tensor)])).unwrap();
        let mut weights = inference_weights(&bytes, &Device::Cpu).unwrap();
        let read = weights.compact.matrices.remove(name).unwrap().dequantize();
        let error = values
            .iter()
            .zip(&read)
            .map(|(v, r)| (v - r).abs())
            .fold(0f32, f32::max);
        // Within one 5-bit step (the range over 31) after both roundings.
        assert!(error < 1.04 / 31.0, "largest error {error}");
    }

    #[test]
    fn five_bit_blocks_decode_as_candle_dequantizes_them() {
        let (rows, cols) = (3, 96);
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 211) as f32 / 40.0 - 2.6)
            .collect();
        let tensor = Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&tensor, GgmlDType::Q5_0).unwrap();
        let raw = q.data().unwrap().into_owned();
        let direct = q5_0_matrix(&raw, &[rows, cols]).unwrap();
        let through_f32 = q.dequantize(&Device::Cpu).unwrap();
        let through_f32 = through_f32.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let expected = Int8Matrix::quantize(&through_f32, rows, cols);
        assert_eq!(direct.dequantize(), expected.dequantize());
        assert_eq!(q5_0_matrix(&raw[1..], &[rows, cols]).map(|_| ()), None);
        assert_eq!(q5_0_matrix(&raw, &[rows, cols + 32]).map(|_| ()), None);
    }

    #[test]
    fn encoder_matrices_in_plain_q8_0_blocks_are_requantized() {
        // Another writer's Q8_0: a scale per block of 32, not per row.
        let name = "encoder.layer.0.output.dense.weight";
        let values: Vec<f32> = (0..4 * 64)
            .map(|i| if i % 64 < 32 { 0.01 } else { 3.0 } * (((i * 37) % 23) as f32 - 11.0))
            .collect();
        let tensor = Tensor::from_vec(values.clone(), (4, 64), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&tensor, GgmlDType::Q8_0).unwrap();
        let mut bytes = Cursor::new(Vec::new());
        gguf_file::write(&mut bytes, &[], &[(name, &q)]).unwrap();
        let bytes = bytes.into_inner();
        let mut weights = inference_weights(&bytes, &Device::Cpu).unwrap();
        let read = weights.compact.matrices.remove(name).unwrap().dequantize();
        let largest = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (r, v) in read.iter().zip(&values) {
            assert!((r - v).abs() <= largest / 127.0, "{r} vs {v}");
        }
    }
}
