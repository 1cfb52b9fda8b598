//! The forward pass on the CPU outside training when the host brings a matrix-product kernel
//! (the browser's worker, see [`super::product`]): the weights packed for the kernel, and every
//! other step (embeddings, attention, layer norms, GELU) as plain loops over rows of f32.
//!
//! burn's CPU backend runs each of those other steps as a tensor operation of its own, with an
//! allocation and a pass over memory each; in the browser they cost as much as the products.
//! Sentences are not padded either: each token attends only to its own sentence's tokens, which
//! is what the padded computation gives too (a padding key's weight is exactly 0), without
//! computing the padding.

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::Tensor;

use super::product::{Layout, ProductKernel, multiply, pack};
use super::{LayerNorm, MaskedLm, exp_negative, gelu_f32};
use crate::config::Activation;

/// A linear layer (`k` inputs, `n` outputs) packed for the kernel.
struct PackedLinear {
    k: usize,
    n: usize,
    packed: Vec<f32>,
    bias: Vec<f32>,
}

impl PackedLinear {
    /// `x · w + bias` for `x` `m × k` (row-major): `m × n`.
    fn apply(&self, kernel: ProductKernel, x: &[f32], m: usize) -> Vec<f32> {
        multiply(kernel, x, m, self.k, self.n, &self.packed, Some(&self.bias))
    }
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// Normalises each row of `x` in place, as burn's `layer_norm` does (biased variance).
    fn apply(&self, x: &mut [f32]) {
        let width = self.weight.len();
        for row in x.chunks_exact_mut(width) {
            let mean = sum(row.iter().copied()) / width as f32;
            let var = sum(row.iter().map(|v| (v - mean) * (v - mean))) / width as f32;
            let scale = 1.0 / (var + self.eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * scale * w + b;
            }
        }
    }
}

/// A sum in eight interleaved partial sums, which the compiler keeps in vector registers.
#[inline(always)]
fn sum(values: impl Iterator<Item = f32>) -> f32 {
    let mut lanes = [0f32; 8];
    for (i, v) in values.enumerate() {
        lanes[i % 8] += v;
    }
    lanes.iter().sum()
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    let mut total: f32 = lanes.iter().sum();
    for (x, y) in a_rest.iter().zip(b_rest) {
        total += x * y;
    }
    total
}

struct PackedLayer {
    activation: Activation,
    query: PackedLinear,
    /// Keys and values side by side: `2·hidden` outputs.
    key_value: PackedLinear,
    attention_output: PackedLinear,
    attention_norm: Norm,
    intermediate: PackedLinear,
    output: PackedLinear,
    output_norm: Norm,
}

/// A model's weights laid out for the kernel: built once per set of weights (through
/// [`MaskedLm::for_inference`]) for as many batches as wanted.
pub struct PackedModel {
    hidden: usize,
    heads: usize,
    vocab: usize,
    head_activation: Activation,
    position_offset: usize,
    /// `[vocab, hidden]`.
    word: Vec<f32>,
    /// `[positions, hidden]`, token type 0 already added.
    position: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<PackedLayer>,
    head_dense: PackedLinear,
    head_norm: Norm,
    /// The vocabulary projection with the output bias.
    decoder: PackedLinear,
}

fn activate(activation: Activation, x: &mut [f32]) {
    match activation {
        Activation::Gelu => x.iter_mut().for_each(|v| *v = gelu_f32(*v)),
        Activation::GeluTanh => x.iter_mut().for_each(|v| *v = gelu_tanh_f32(*v)),
        Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
    }
}

/// The tanh approximation of GELU, as PyTorch's `gelu(approximate="tanh")` and burn's
/// `gelu_approximate`: x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
fn gelu_tanh_f32(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh())
}

/// The model is f32 throughout (`weights` widens f16 and bf16 files as it reads them).
fn values<const D: usize>(tensor: Tensor<D>) -> Option<Vec<f32>> {
    tensor.into_data().try_into_vec_as::<f32>().ok()
}

fn param<const D: usize>(param: &Param<Tensor<D>>) -> Option<Vec<f32>> {
    values(param.val())
}

fn linear(layer: &Linear) -> Option<PackedLinear> {
    let [k, n] = layer.weight.val().dims();
    let bias = match &layer.bias {
        Some(bias) => param(bias)?,
        None => vec![0.0; n],
    };
    Some(PackedLinear {
        k,
        n,
        packed: pack(&param(&layer.weight)?, k, n, Layout::Rows),
        bias,
    })
}

fn norm(norm: &LayerNorm) -> Option<Norm> {
    Some(Norm {
        weight: param(&norm.weight)?,
        bias: param(&norm.bias)?,
        eps: norm.eps as f32,
    })
}

/// Concatenates the outputs of two layers with the same inputs.
fn side_by_side(a: &Linear, b: &Linear) -> Option<Linear> {
    let weight = Tensor::cat(vec![a.weight.val(), b.weight.val()], 1);
    let bias = match (&a.bias, &b.bias) {
        (Some(x), Some(y)) => Some(Param::from_tensor(Tensor::cat(vec![x.val(), y.val()], 0))),
        (None, None) => None,
        _ => return None,
    };
    Some(Linear {
        weight: Param::from_tensor(weight),
        bias,
    })
}

impl MaskedLm {
    /// The weights laid out for a host's kernel. Every configuration the loader accepts packs
    /// (each activation, in the layers and the head alike); `None` only where a tensor cannot
    /// be read back from the device.
    pub(super) fn packed(&self) -> Option<PackedModel> {
        let embeddings = &self.embeddings;
        let [vocab, hidden] = embeddings.word.val().dims();
        let mut position = embeddings.position.val();
        if let Some(token_type) = &embeddings.token_type {
            position = position + token_type.val().slice(0..1);
        }
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let a = &l.attention;
                Some(PackedLayer {
                    activation: l.activation,
                    query: linear(&a.query)?,
                    key_value: linear(&side_by_side(&a.key, &a.value)?)?,
                    attention_output: linear(&a.output)?,
                    attention_norm: norm(&l.attention_norm)?,
                    intermediate: linear(&l.intermediate)?,
                    output: linear(&l.output)?,
                    output_norm: norm(&l.output_norm)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let heads = self.layers.first().map_or(1, |l| l.attention.heads);
        let word = param(&embeddings.word)?;
        let decoder = match &self.head.decoder {
            Some(decoder) => pack(&param(decoder)?, hidden, vocab, Layout::Transposed),
            None => pack(&word, hidden, vocab, Layout::Transposed),
        };
        Some(PackedModel {
            hidden,
            heads,
            vocab,
            head_activation: self.head.activation,
            position_offset: embeddings.position_offset,
            word,
            position: values(position)?,
            embedding_norm: norm(&embeddings.norm)?,
            layers,
            head_dense: linear(&self.head.dense)?,
            head_norm: norm(&self.head.norm)?,
            decoder: PackedLinear {
                k: hidden,
                n: vocab,
                packed: decoder,
                bias: param(&self.head.bias)?,
            },
        })
    }
}

impl PackedModel {
    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    /// Whether [`Self::logits_at`] takes these sentences and positions: every id in the
    /// vocabulary, every sentence within the position table, every position in its sentence.
    pub fn accepts(&self, sentences: &[Vec<u32>], positions: &[(usize, usize)]) -> bool {
        let table = self.position.len() / self.hidden.max(1);
        sentences.iter().all(|ids| {
            self.position_offset + ids.len() <= table
                && ids.iter().all(|&id| (id as usize) < self.vocab)
        }) && positions
            .iter()
            .all(|&(s, p)| sentences.get(s).is_some_and(|ids| p < ids.len()))
    }

    /// Log-probabilities of `candidates` (ids below the vocabulary size) at the positions of
    /// [`Self::logits_at`]: `[positions, candidates]`, row-major. The log-softmax is burn's,
    /// `(x − max) − ln Σ exp(x − max)`, over the whole vocabulary.
    pub fn candidate_log_probs(
        &self,
        kernel: ProductKernel,
        sentences: &[Vec<u32>],
        positions: &[(usize, usize)],
        candidates: &[u32],
    ) -> Vec<f32> {
        let logits = self.logits_at(kernel, sentences, positions);
        let mut out = Vec::with_capacity(positions.len() * candidates.len());
        for row in logits.chunks_exact(self.vocab.max(1)) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_total = sum(row.iter().map(|&v| exp_negative(max - v))).ln();
            out.extend(
                candidates
                    .iter()
                    .map(|&c| (row[c as usize] - max) - log_total),
            );
        }
        out
    }

    /// Vocabulary logits at the `(sentence, position)` pairs, in the order given:
    /// `[positions, vocab]`, row-major. The sentences must be [`Self::accepts`]ed.
    pub fn logits_at(
        &self,
        kernel: ProductKernel,
        sentences: &[Vec<u32>],
        positions: &[(usize, usize)],
    ) -> Vec<f32> {
        let h = self.hidden;
        let starts: Vec<usize> = sentences
            .iter()
            .scan(0, |next, ids| {
                let start = *next;
                *next += ids.len();
                Some(start)
            })
            .collect();
        let tokens: usize = sentences.iter().map(Vec::len).sum();

        let mut x = vec![0f32; tokens * h];
        for (ids, &start) in sentences.iter().zip(&starts) {
            for (p, &id) in ids.iter().enumerate() {
                let word = &self.word[id as usize * h..][..h];
                let position = &self.position[(self.position_offset + p) * h..][..h];
                let row = &mut x[(start + p) * h..][..h];
                for ((v, w), q) in row.iter_mut().zip(word).zip(position) {
                    *v = w + q;
                }
            }
        }
        self.embedding_norm.apply(&mut x);

        // The tokens asked for.
        let rows: Vec<usize> = positions.iter().map(|&(s, p)| starts[s] + p).collect();
        let Some((last, inner)) = self.layers.split_last() else {
            return self.project(kernel, &gather(&x, &rows, h));
        };
        // Each query's sentence, as (first token, length).
        let span = |s: usize| (starts[s], sentences[s].len());
        let every_token: Vec<(usize, usize)> = (0..sentences.len())
            .flat_map(|s| std::iter::repeat_n(span(s), sentences[s].len()))
            .collect();
        for layer in inner {
            x = self.layer(kernel, layer, &x, &x, tokens, &every_token);
        }
        // The last layer only at the positions asked for; its keys and values at every token.
        let spans: Vec<(usize, usize)> = positions.iter().map(|&(s, _)| span(s)).collect();
        let out = self.layer(kernel, last, &gather(&x, &rows, h), &x, tokens, &spans);
        self.project(kernel, &out)
    }

    /// One encoder layer's output for `queries` (rows of `x`), where query `i` attends over the
    /// tokens `spans[i]` (first, length) of `x` (`tokens` rows).
    fn layer(
        &self,
        kernel: ProductKernel,
        layer: &PackedLayer,
        queries: &[f32],
        x: &[f32],
        tokens: usize,
        spans: &[(usize, usize)],
    ) -> Vec<f32> {
        let m = spans.len();
        let q = layer.query.apply(kernel, queries, m);
        let kv = layer.key_value.apply(kernel, x, tokens);
        let context = self.attend(&q, &kv, spans);
        let attended = layer.attention_output.apply(kernel, &context, m);
        let mut y: Vec<f32> = queries.iter().zip(&attended).map(|(a, b)| a + b).collect();
        layer.attention_norm.apply(&mut y);
        let mut inner = layer.intermediate.apply(kernel, &y, m);
        activate(layer.activation, &mut inner);
        let out = layer.output.apply(kernel, &inner, m);
        for (v, o) in y.iter_mut().zip(&out) {
            *v += o;
        }
        layer.output_norm.apply(&mut y);
        y
    }

    /// Scaled dot-product attention of each query row over its sentence, head by head.
    fn attend(&self, q: &[f32], kv: &[f32], spans: &[(usize, usize)]) -> Vec<f32> {
        let h = self.hidden;
        let d = h / self.heads.max(1);
        let scale = (1.0 / (d as f64).sqrt()) as f32;
        let mut context = vec![0f32; spans.len() * h];
        let mut weights = Vec::new();
        for (i, &(start, len)) in spans.iter().enumerate() {
            for head in 0..self.heads {
                let query = &q[i * h + head * d..][..d];
                weights.clear();
                weights.extend((start..start + len).map(|t| {
                    let key = &kv[t * 2 * h + head * d..][..d];
                    dot(query, key) * scale
                }));
                let max = weights.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for w in weights.iter_mut() {
                    *w = exp_negative(max - *w);
                }
                let total: f32 = weights.iter().sum();
                let out = &mut context[i * h + head * d..][..d];
                for (j, w) in weights.iter().enumerate() {
                    let w = w / total;
                    let value = &kv[(start + j) * 2 * h + h + head * d..][..d];
                    for (o, v) in out.iter_mut().zip(value) {
                        *o += w * v;
                    }
                }
            }
        }
        context
    }

    fn project(&self, kernel: ProductKernel, hidden: &[f32]) -> Vec<f32> {
        let m = hidden.len() / self.hidden.max(1);
        let mut x = self.head_dense.apply(kernel, hidden, m);
        activate(self.head_activation, &mut x);
        self.head_norm.apply(&mut x);
        self.decoder.apply(kernel, &x, m)
    }
}

fn gather(x: &[f32], rows: &[usize], width: usize) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| &x[r * width..(r + 1) * width])
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;
    use safetensors::Dtype;

    use super::super::product::{reference_kernel, set_product_kernel};
    use super::super::{MaskedLm, TokenBatch};
    use crate::config::ModelConfig;
    use crate::error::Error;
    use crate::rng::SplitMix64;
    use crate::weights::{StoredTensor, Weights, serialize};

    fn uniform(rng: &mut SplitMix64, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| ((rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * scale)
            .collect()
    }

    /// A model of `config` with random weights, its tensors found as the loader asks for them
    /// (so every architecture's names come from its own loading code, not from a list here).
    fn random_model(config: &ModelConfig, seed: u64, device: &Device) -> MaskedLm {
        let mut rng = SplitMix64::new(seed);
        let mut tensors: Vec<StoredTensor> = Vec::new();
        loop {
            let bytes = serialize(&tensors).unwrap();
            let weights = Weights::parse("model.safetensors", &bytes).unwrap();
            match MaskedLm::load(config, &weights, device) {
                Ok(model) => return model,
                Err(Error::MissingTensor {
                    tensor, expected, ..
                }) => {
                    let n = expected.iter().product();
                    let values = if tensor.contains("LayerNorm.weight")
                        || tensor.contains("layer_norm.weight")
                    {
                        uniform(&mut rng, n, 0.2).iter().map(|v| 1.0 + v).collect()
                    } else {
                        uniform(&mut rng, n, 0.5)
                    };
                    let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                    tensors.push((tensor, Dtype::F32, expected, bytes));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn config(architecture: &str, activation: &str, layers: usize) -> ModelConfig {
        let json = match architecture {
            "DistilBertForMaskedLM" => serde_json::json!({
                "architectures": [architecture], "vocab_size": 53, "dim": 16, "n_layers": layers,
                "n_heads": 2, "hidden_dim": 24, "activation": activation,
                "max_position_embeddings": 20, "pad_token_id": 0,
            }),
            _ => serde_json::json!({
                "architectures": [architecture], "vocab_size": 53, "hidden_size": 16,
                "num_hidden_layers": layers, "num_attention_heads": 2, "intermediate_size": 24,
                "hidden_act": activation, "max_position_embeddings": 22,
                "type_vocab_size": if architecture == "RobertaForMaskedLM" { 1 } else { 2 },
                "layer_norm_eps": 1e-12,
                "pad_token_id": if architecture == "RobertaForMaskedLM" { 1 } else { 0 },
            }),
        };
        ModelConfig::from_json(json.to_string().as_bytes()).unwrap()
    }

    /// The two forward passes, burn's (training, the GPU, native runs) and the packed one (the
    /// browser's CPU), over small random models of every layout, activation and depth: the same
    /// logits at the same positions, sentences of different lengths in one batch (burn pads
    /// them, the packed pass does not), positions anywhere, several per sentence.
    #[test]
    fn the_packed_forward_pass_is_burns_for_every_configuration() {
        let device = Device::flex();
        let mut rng = SplitMix64::new(11);
        let mut checked = 0;
        for architecture in [
            "BertForMaskedLM",
            "DistilBertForMaskedLM",
            "RobertaForMaskedLM",
        ] {
            for activation in ["gelu", "gelu_new", "relu"] {
                for layers in 1..=3 {
                    let config = config(architecture, activation, layers);
                    let seed = rng.next_u64();
                    let model = random_model(&config, seed, &device);
                    let ids: Vec<Vec<u32>> = [9, 4, 12]
                        .iter()
                        .map(|&len| (0..len).map(|_| 2 + (rng.next_u64() % 51) as u32).collect())
                        .collect();
                    let positions = [(0, 0), (0, 8), (1, 2), (2, 5), (2, 11), (0, 3)];
                    let batch = TokenBatch { ids, pad_id: 0 };
                    let burns = model.logits_at(&batch, &positions);
                    set_product_kernel(Some(reference_kernel));
                    let inference = model.for_inference();
                    set_product_kernel(None);
                    assert!(
                        inference.packed.is_some(),
                        "{architecture} {activation} {layers}: packed"
                    );
                    let packed = inference.logits_at(&batch, &positions);
                    assert_eq!(packed.dims(), [positions.len(), 53]);
                    let largest: f32 = burns.clone().abs().max().into_scalar();
                    let difference: f32 = (burns - packed).abs().max().into_scalar();
                    assert!(
                        largest > 0.1 && difference < 2e-5 * largest.max(1.0),
                        "{architecture} {activation} {layers} layers: logits differ by \
                         {difference} (largest {largest})"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 27);
    }
}
