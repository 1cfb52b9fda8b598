//! Masked language models: one encoder for BERT, DistilBERT and RoBERTa (they share the
//! post-LayerNorm transformer block and differ in names, embeddings and head), with the
//! vocabulary projection computed only at the positions a caller asks for.

mod bert;
mod distilbert;
mod export;
mod packed;
pub mod product;
mod roberta;

use std::cell::RefCell;
use std::rc::Rc;

use burn::module::{Module, Param, ParamId};
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::activation::{gelu, gelu_approximate, log_softmax, relu, softmax};
use burn::tensor::module::{embedding, layer_norm};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::{Activation, Architecture, ModelConfig};
use crate::error::Result;
use crate::weights::Weights;
use packed::PackedModel;
use product::ProductKernel;
use safetensors::Dtype;

/// Where a parameter came from in the checkpoint, so that it can be written back under its own
/// name, layout and dtype.
#[derive(Debug, Clone)]
pub struct CheckpointTensor {
    pub name: String,
    pub id: ParamId,
    /// Stored `[out, in]`, held `[in, out]` (linear layers).
    pub transposed: bool,
    pub dtype: Dtype,
    /// The shape in the file.
    pub shape: Vec<usize>,
}

/// Reads named tensors onto a device in the layout the modules below expect, and remembers
/// where each came from.
pub(crate) struct Loader<'w, 'a> {
    pub weights: &'w Weights<'a>,
    pub device: &'w Device,
    pub read: RefCell<Vec<CheckpointTensor>>,
}

impl Loader<'_, '_> {
    fn param<const D: usize>(
        &self,
        name: &str,
        data: TensorData,
        transposed: bool,
    ) -> Param<Tensor<D>> {
        let mut shape = data.shape().to_vec();
        if transposed {
            shape.reverse();
        }
        let param = Param::from_tensor(Tensor::from_data(data, self.device));
        let (stored, dtype) = self
            .weights
            .stored(name)
            .expect("a tensor just read is stored");
        self.read.borrow_mut().push(CheckpointTensor {
            name: stored,
            id: param.id,
            transposed,
            dtype,
            shape,
        });
        param
    }

    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Param<Tensor<2>>> {
        Ok(self.param(name, self.weights.tensor(name, &[rows, cols])?, false))
    }

    pub fn vector(&self, name: &str, len: usize) -> Result<Param<Tensor<1>>> {
        Ok(self.param(name, self.weights.tensor(name, &[len])?, false))
    }

    pub fn linear(&self, prefix: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let name = format!("{prefix}.weight");
        let weight = self.weights.linear_weight(&name, d_in, d_out)?;
        Ok(Linear {
            weight: self.param(&name, weight, true),
            bias: Some(self.vector(&format!("{prefix}.bias"), d_out)?),
        })
    }

    pub fn checkpoint(&self) -> Vec<CheckpointTensor> {
        self.read.take()
    }

    pub fn layer_norm(&self, prefix: &str, dim: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: self.vector(&format!("{prefix}.weight"), dim)?,
            bias: self.vector(&format!("{prefix}.bias"), dim)?,
            eps,
        })
    }
}

#[derive(Module, Debug)]
pub struct LayerNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

impl LayerNorm {
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        layer_norm(x, self.weight.val(), Some(self.bias.val()), self.eps)
    }
}

fn activate<const D: usize>(activation: Activation, x: Tensor<D>) -> Tensor<D> {
    match activation {
        Activation::Gelu if on_cpu_outside_training(&x.device()) => gelu_on_cpu(x),
        Activation::Gelu => gelu(x),
        Activation::GeluTanh => gelu_approximate(x),
        Activation::Relu => relu(x),
    }
}

/// The CPU device without autodiff: training keeps burn's GELU, whose gradient is defined.
fn on_cpu_outside_training(device: &Device) -> bool {
    !device.is_autodiff() && *device == Device::flex()
}

/// GELU for the CPU backend outside training. burn's CPU GELU evaluates a scalar `erf` per
/// element, a quarter of a CPU forward pass; this one is branch-free, so the compiler turns it
/// into vector code (AVX natively, SIMD128 in the browser).
///
/// The model is f32 throughout (`weights` widens f16 and bf16 files as it reads them), so the
/// conversion below changes nothing; it only makes the slice's type certain.
fn gelu_on_cpu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let mut data = x.into_data().convert::<f32>();
    if let Ok(values) = data.as_mut_slice::<f32>() {
        gelu_in_place(values);
    }
    Tensor::from_data(data, &device)
}

fn gelu_in_place(values: &mut [f32]) {
    for v in values {
        *v = gelu_f32(*v);
    }
}

/// x·Φ(x) = x/2·(1 + erf(x/√2)), with erf from Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7,
/// the formula PyTorch's vectorised CPU `erf` uses too) and `exp` of a degree-6 polynomial.
#[inline(always)]
fn gelu_f32(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152_1,
        1.061_405_4,
    ];
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let erf = (1.0 - poly * exp_negative(a * a)).copysign(z);
    0.5 * x * (1.0 + erf)
}

/// e^(−y) for y ≥ 0: 2^n·e^r with |r| ≤ ln 2 / 2 and e^r to degree 6 (relative error ≤ 2e-7);
/// below e^−87 (where 2^n would leave the normal range) it answers e^−87, which is 0 beside 1.
#[inline(always)]
fn exp_negative(y: f32) -> f32 {
    let y = -y.min(87.0);
    // Rounds to the nearest integer by adding and removing 1.5·2^23: plain arithmetic, which
    // vectorises where `round` is a library call (x86-64 before SSE4.1).
    const ROUND: f32 = 12_582_912.0;
    let n = (y * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = y - n * std::f32::consts::LN_2;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// Word, position and (for BERT and RoBERTa) token-type embeddings, summed and normalised.
#[derive(Module, Debug)]
pub struct Embeddings {
    pub word: Param<Tensor<2>>,
    pub position: Param<Tensor<2>>,
    pub token_type: Option<Param<Tensor<2>>>,
    pub norm: LayerNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub position_offset: usize,
}

impl Embeddings {
    fn forward(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq_len] = input_ids.dims();
        let words = embedding(self.word.val(), input_ids);
        // Inputs are padded on the right, so every row numbers its tokens from the same offset;
        // padding positions get ids too, but no real token attends to them.
        let start = self.position_offset;
        let mut positional = self.position.val().slice(start..start + seq_len);
        if let Some(token_type) = &self.token_type {
            // Every sentence is a single segment: token type 0.
            positional = positional + token_type.val().slice(0..1);
        }
        self.dropout
            .forward(self.norm.forward(words + positional.unsqueeze::<3>()))
    }
}

#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    pub heads: usize,
}

impl SelfAttention {
    /// `queries` `[batch, q_len, hidden]` attend over every token of `x` `[batch, seq, hidden]`
    /// (the same tensor but in the last layer of `MaskedLm::logits_at`); `key_bias` is 0 for real
    /// tokens and a large negative number for padding, `[batch, 1, 1, seq]`.
    fn forward(&self, queries: Tensor<3>, x: Tensor<3>, key_bias: Tensor<4>) -> Tensor<3> {
        let [batch, q_len, hidden] = queries.dims();
        let seq_len = x.dims()[1];
        let head_dim = hidden / self.heads;
        let split = |t: Tensor<3>, len: usize| {
            t.reshape([batch, len, self.heads, head_dim])
                .swap_dims(1, 2)
        };
        let q = split(self.query.forward(queries), q_len);
        let k = split(self.key.forward(x.clone()), seq_len);
        let v = split(self.value.forward(x), seq_len);
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (head_dim as f64).sqrt());
        let weights = self.dropout.forward(softmax(scores + key_bias, 3));
        let context = weights
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([batch, q_len, hidden]);
        self.output.forward(context)
    }
}

/// A post-LayerNorm transformer block, as in BERT, RoBERTa and DistilBERT.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub attention: SelfAttention,
    pub attention_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: LayerNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub activation: Activation,
}

impl EncoderLayer {
    fn forward(&self, x: Tensor<3>, key_bias: Tensor<4>) -> Tensor<3> {
        self.forward_at(x.clone(), x, key_bias)
    }

    /// The layer's output at the tokens `queries` (taken from `x`), each attending over all of
    /// `x`: every token's output depends on the others only through attention.
    fn forward_at(&self, queries: Tensor<3>, x: Tensor<3>, key_bias: Tensor<4>) -> Tensor<3> {
        let attended = self
            .dropout
            .forward(self.attention.forward(queries.clone(), x, key_bias));
        let x = self.attention_norm.forward(queries + attended);
        let inner = activate(self.activation, self.intermediate.forward(x.clone()));
        let out = self.dropout.forward(self.output.forward(inner));
        self.output_norm.forward(x + out)
    }
}

/// Dropout as the checkpoint's config sets it. burn applies it only to tensors on an autodiff
/// device, that is while training.
pub(crate) fn dropout(p: f64) -> Dropout {
    DropoutConfig::new(p).init()
}

/// The masked-LM head: transform, normalise, project onto the vocabulary.
#[derive(Module, Debug)]
pub struct LmHead {
    pub dense: Linear,
    pub norm: LayerNorm,
    /// `[vocab, hidden]`; `None` when the decoder is tied to the word embeddings.
    pub decoder: Option<Param<Tensor<2>>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub activation: Activation,
}

#[derive(Module, Debug)]
pub struct MaskedLm {
    pub embeddings: Embeddings,
    pub layers: Vec<EncoderLayer>,
    pub head: LmHead,
    #[module(skip)]
    pub architecture: Architecture,
    /// Every parameter's checkpoint name, layout and dtype, in the order read.
    #[module(skip)]
    pub checkpoint: Vec<CheckpointTensor>,
}

/// A padded batch of token ids, right-padded, with its mask (1 for real tokens, 0 for padding).
#[derive(Debug, Clone)]
pub struct TokenBatch {
    pub ids: Vec<Vec<u32>>,
    pub pad_id: u32,
}

impl TokenBatch {
    pub fn seq_len(&self) -> usize {
        self.ids.iter().map(Vec::len).max().unwrap_or(0)
    }

    fn tensors(&self, device: &Device) -> (Tensor<2, Int>, Tensor<4>) {
        let batch = self.ids.len();
        let seq_len = self.seq_len();
        let mut ids = Vec::with_capacity(batch * seq_len);
        let mut bias = Vec::with_capacity(batch * seq_len);
        for row in &self.ids {
            ids.extend(row.iter().map(|&id| id as i64));
            ids.extend(std::iter::repeat_n(self.pad_id as i64, seq_len - row.len()));
            bias.extend(std::iter::repeat_n(0f32, row.len()));
            // Large and finite: exp() of it underflows to exactly 0, as transformers' mask does.
            bias.extend(std::iter::repeat_n(-1e9f32, seq_len - row.len()));
        }
        let ids = Tensor::from_data(TensorData::new(ids, [batch, seq_len]), device);
        let bias = Tensor::from_data(TensorData::new(bias, [batch, 1, 1, seq_len]), device);
        (ids, bias)
    }
}

fn index_tensor(index: Vec<usize>, device: &Device) -> Tensor<1, Int> {
    let len = index.len();
    let index = index.into_iter().map(|i| i as i64).collect::<Vec<_>>();
    Tensor::from_data(TensorData::new(index, [len]), device)
}

/// The tokens whose last-layer output `logits_at` needs, laid out `[rows, per_row]`: each row's
/// requested positions, the rest of the row filled with its first position again (computed and
/// dropped; rows are independent).
struct QuerySlots {
    per_row: usize,
    /// For each slot, the token's index in the flattened `[rows * seq_len]` input.
    tokens: Vec<usize>,
    /// For each requested position, in the caller's order, its slot.
    order: Vec<usize>,
}

impl QuerySlots {
    fn new(positions: &[(usize, usize)], rows: usize, seq_len: usize) -> Self {
        let mut in_row: Vec<Vec<usize>> = vec![Vec::new(); rows];
        let order_in_row: Vec<usize> = positions
            .iter()
            .map(|&(r, p)| {
                in_row[r].push(p);
                in_row[r].len() - 1
            })
            .collect();
        let per_row = in_row.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let tokens = in_row
            .iter()
            .enumerate()
            .flat_map(|(r, ps)| {
                let fill = ps.first().copied().unwrap_or(0);
                (0..per_row).map(move |k| r * seq_len + ps.get(k).copied().unwrap_or(fill))
            })
            .collect();
        let order = positions
            .iter()
            .zip(order_in_row)
            .map(|(&(r, _), k)| r * per_row + k)
            .collect();
        Self {
            per_row,
            tokens,
            order,
        }
    }
}

impl MaskedLm {
    /// Loads a checkpoint of any supported architecture.
    pub fn load(config: &ModelConfig, weights: &Weights, device: &Device) -> Result<Self> {
        let loader = Loader {
            weights,
            device,
            read: RefCell::new(Vec::new()),
        };
        match config.architecture {
            Architecture::Bert => bert::load(config, &loader),
            Architecture::Roberta => roberta::load(config, &loader),
            Architecture::DistilBert => distilbert::load(config, &loader),
        }
    }

    /// Sets every dropout probability (0 makes training deterministic).
    pub fn set_dropout(&mut self, hidden: f64, attention: f64) {
        self.embeddings.dropout.prob = hidden;
        for layer in &mut self.layers {
            layer.dropout.prob = hidden;
            layer.attention.dropout.prob = attention;
        }
    }

    pub fn device(&self) -> Device {
        self.embeddings.word.val().device()
    }

    /// Whether a forward pass on an autodiff device draws dropout masks.
    pub fn has_dropout(&self) -> bool {
        self.embeddings.dropout.prob > 0.0
            || self
                .layers
                .iter()
                .any(|l| l.dropout.prob > 0.0 || l.attention.dropout.prob > 0.0)
    }

    /// Rows of the word embedding matrix: every token id must be below it.
    pub fn vocab_size(&self) -> usize {
        self.embeddings.word.val().dims()[0]
    }

    /// Vocabulary logits at the given `(row, position)` pairs only, `[positions, vocab]`, in the
    /// order given, by burn's forward pass (training, the GPU, native runs). Callers need a few
    /// masked positions per sentence, so the projection onto the vocabulary runs only there, and
    /// so does the last layer after its keys and values (its other tokens' outputs feed
    /// nothing): about a fifth of a four-layer model's work. Inference that may run on a host's
    /// kernel goes through [`Self::for_inference`], which packs the weights once.
    pub fn logits_at(&self, batch: &TokenBatch, positions: &[(usize, usize)]) -> Tensor<2> {
        let device = self.device();
        let (ids, key_bias) = batch.tensors(&device);
        let [rows, seq_len] = ids.dims();
        let mut x = self.embeddings.forward(ids);
        let flat = |x: Tensor<3>| {
            let [rows, len, width] = x.dims();
            x.reshape([rows * len, width])
        };
        let Some((last, inner)) = self.layers.split_last() else {
            let at = positions.iter().map(|&(r, p)| r * seq_len + p).collect();
            return self.project(flat(x).select(0, index_tensor(at, &device)));
        };
        for layer in inner {
            x = layer.forward(x, key_bias.clone());
        }
        let slots = QuerySlots::new(positions, rows, seq_len);
        let width = x.dims()[2];
        let queries = flat(x.clone())
            .select(0, index_tensor(slots.tokens, &device))
            .reshape([rows, slots.per_row, width]);
        let out = last.forward_at(queries, x, key_bias);
        self.project(flat(out).select(0, index_tensor(slots.order, &device)))
    }

    fn project(&self, hidden: Tensor<2>) -> Tensor<2> {
        let head = &self.head;
        let x = activate(head.activation, head.dense.forward(hidden));
        let x = head.norm.forward(x);
        let decoder = match &head.decoder {
            Some(decoder) => decoder.val(),
            None => self.embeddings.word.val(),
        };
        x.matmul(decoder.transpose()) + head.bias.val().unsqueeze::<2>()
    }

    /// The model made ready for many forward passes outside training (a cheap clone of its
    /// tensors, plus its weights packed where the host's kernel will run them).
    pub fn for_inference(&self) -> Inference {
        let packed = product::kernel_for(&self.device())
            .and_then(|kernel| Some((kernel, Rc::new(self.packed()?))));
        Inference {
            model: self.clone(),
            packed,
        }
    }
}

/// A model ready for many forward passes outside training ([`MaskedLm::for_inference`]).
#[derive(Clone)]
pub struct Inference {
    model: MaskedLm,
    packed: Option<(ProductKernel, Rc<PackedModel>)>,
}

impl Inference {
    pub fn model(&self) -> &MaskedLm {
        &self.model
    }

    pub fn device(&self) -> Device {
        self.model.device()
    }

    /// The packed weights, where they take these sentences and positions.
    fn packed_for(
        &self,
        batch: &TokenBatch,
        positions: &[(usize, usize)],
    ) -> Option<(ProductKernel, &PackedModel)> {
        let (kernel, packed) = self.packed.as_ref()?;
        packed
            .accepts(&batch.ids, positions)
            .then_some((*kernel, packed.as_ref()))
    }

    /// [`MaskedLm::logits_at`], on the packed weights where there are some.
    pub fn logits_at(&self, batch: &TokenBatch, positions: &[(usize, usize)]) -> Tensor<2> {
        match self.packed_for(batch, positions) {
            Some((kernel, packed)) => {
                let logits = packed.logits_at(kernel, &batch.ids, positions);
                let shape = [positions.len(), packed.vocab_size()];
                Tensor::from_data(TensorData::new(logits, shape), &self.device())
            }
            None => self.model.logits_at(batch, positions),
        }
    }

    /// Log-softmax over the vocabulary at the given positions, read at the `candidates` ids
    /// only: `[positions, candidates]`.
    pub fn candidate_log_probs(
        &self,
        batch: &TokenBatch,
        positions: &[(usize, usize)],
        candidates: &[u32],
    ) -> Tensor<2> {
        let device = self.device();
        let vocab = self.model.vocab_size();
        match self.packed_for(batch, positions) {
            Some((kernel, packed)) if candidates.iter().all(|&c| (c as usize) < vocab) => {
                let values = packed.candidate_log_probs(kernel, &batch.ids, positions, candidates);
                let shape = [positions.len(), candidates.len()];
                Tensor::from_data(TensorData::new(values, shape), &device)
            }
            _ => {
                let ids = candidates.iter().map(|&c| c as usize).collect();
                log_softmax(self.model.logits_at(batch, positions), 1)
                    .select(1, index_tensor(ids, &device))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorised GELU against burn's (libm's `erf`, correct to a few ulps) over the range
    /// activations take, tails included.
    #[test]
    fn cpu_gelu_agrees_with_burns_to_float_precision() {
        let xs: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 1e-3).collect();
        let device = Device::flex();
        let exact = gelu(Tensor::<1>::from_data(
            TensorData::new(xs.clone(), [xs.len()]),
            &device,
        ))
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
        let mut fast = xs.clone();
        gelu_in_place(&mut fast);
        for ((x, e), f) in xs.iter().zip(&exact).zip(&fast) {
            // A&S 7.1.26's 1.5e-7 on erf plus f32 rounding in its polynomial: measured at most
            // 1.6e-7·(1 + |x|), well inside the 1e-5 the models are tested to against PyTorch.
            let bound = 2.5e-7 * (1.0 + x.abs());
            assert!((e - f).abs() <= bound, "gelu({x}): burn {e}, here {f}");
        }
        // The model takes this path on the CPU outside training.
        let on_cpu = activate(
            Activation::Gelu,
            Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device),
        );
        assert_eq!(on_cpu.into_data().try_into_vec::<f32>().unwrap(), fast);
    }
}
