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
use burn::tensor::{DType, Tensor};

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
    activation: Activation,
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

fn values<const D: usize>(tensor: Tensor<D>) -> Option<Vec<f32>> {
    (tensor.dtype() == DType::F32)
        .then(|| tensor.into_data().try_into_vec::<f32>().ok())
        .flatten()
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
    /// The weights laid out for a host's kernel, or `None` where this path does not apply
    /// (weights not in f32, the tanh GELU, layers activated unlike the head): burn's forward
    /// pass runs then.
    pub(super) fn packed(&self) -> Option<PackedModel> {
        let activation = self.head.activation;
        if !matches!(activation, Activation::Gelu | Activation::Relu)
            || self.layers.iter().any(|l| l.activation != activation)
        {
            return None;
        }
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
            activation,
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

    fn activate(&self, x: &mut [f32]) {
        match self.activation {
            Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
            _ => x.iter_mut().for_each(|v| *v = gelu_f32(*v)),
        }
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
        self.activate(&mut inner);
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
        self.activate(&mut x);
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
