//! Masked-LM pretraining of a BERT from random weights: sequences packed from documents,
//! dynamic masking, AdamW with linear warm-up and decay. Step-wise like the WALF trainer, so a
//! caller drives epochs, shows progress and checkpoints.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use safetensors::Dtype;
use serde::{Deserialize, Serialize};

use super::corpus::Document;
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::model::{MaskedLm, TokenBatch};
use crate::readback::read_f32;
use crate::rng::SplitMix64;
use crate::tokenizer::MaskTokenizer;
use crate::weights::{StoredTensor, Weights, serialize};

/// The model's shape and the training recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainConfig {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub vocab_size: usize,
    /// Tokens per sequence, [CLS] and [SEP] included; also the model's position limit unless
    /// `positions` sets one.
    pub seq_len: usize,
    /// The model's position limit where it is larger than `seq_len` (a pretrained encoder's).
    #[serde(default)]
    pub positions: Option<usize>,
    /// Train the masked-LM head only: embeddings and encoder layers get no gradient (the
    /// decoder, tied to the word embeddings, stays as it is too).
    #[serde(default)]
    pub freeze_encoder: bool,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Share of all steps spent warming the learning rate up from 0.
    pub warmup: f64,
    pub weight_decay: f64,
    /// Share of tokens chosen for prediction (of which 80% masked, 10% random, 10% unchanged).
    pub mask_share: f64,
    pub seed: u64,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            layers: 4,
            hidden: 192,
            heads: 4,
            intermediate: 768,
            vocab_size: 7000,
            seq_len: 64,
            positions: None,
            freeze_encoder: false,
            epochs: 8,
            batch_size: 32,
            lr: 5e-4,
            warmup: 0.05,
            weight_decay: 0.01,
            mask_share: 0.15,
            seed: 42,
        }
    }
}

impl PretrainConfig {
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Input(format!("pretraining setting: {what}")));
        for (name, v) in [
            ("layers", self.layers),
            ("hidden", self.hidden),
            ("heads", self.heads),
            ("intermediate", self.intermediate),
            ("epochs", self.epochs),
            ("batch", self.batch_size),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        if !self.hidden.is_multiple_of(self.heads) {
            return bad(format!(
                "hidden size {} is not a multiple of {} heads",
                self.hidden, self.heads
            ));
        }
        if self.seq_len < 8 {
            return bad("the sequence length must be at least 8".into());
        }
        if self.positions.is_some_and(|p| p < self.seq_len) {
            return bad(format!(
                "sequences of {} tokens do not fit the model's {} positions",
                self.seq_len,
                self.positions.unwrap_or_default()
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("the learning rate must be a positive number".into());
        }
        let fractions =
            (0.0..1.0).contains(&self.warmup) && self.mask_share > 0.0 && self.mask_share < 1.0;
        if !fractions {
            return bad("warm-up and mask share must be fractions".into());
        }
        Ok(())
    }

    /// config.json of the model, in transformers' `BertForMaskedLM` form.
    pub fn config_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["BertForMaskedLM"],
            "model_type": "bert",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "intermediate_size": self.intermediate,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": self.positions.unwrap_or(self.seq_len),
            "type_vocab_size": 2,
            "initializer_range": 0.02,
            "layer_norm_eps": 1e-12,
            "pad_token_id": 0,
            "tie_word_embeddings": true,
        })
    }
}

/// Standard normal numbers from the seeded generator (Box–Muller).
fn normal(rng: &mut SplitMix64, n: usize, std: f32) -> Vec<f32> {
    let uniform =
        |rng: &mut SplitMix64| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(rng), uniform(rng));
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32 * std
        })
        .collect()
}

/// Every tensor of a `BertForMaskedLM` with a tied decoder, named and shaped as transformers
/// stores it (linear weights `[out, in]`), in the order a new checkpoint is written.
pub(crate) fn bert_masked_lm_tensors(config: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (h, i, v) = (
        config.hidden_size,
        config.intermediate_size,
        config.vocab_size,
    );
    let mut tensors: Vec<(String, Vec<usize>)> = Vec::new();
    let linear = |tensors: &mut Vec<_>, prefix: String, d_in: usize, d_out: usize| {
        tensors.push((format!("{prefix}.weight"), vec![d_out, d_in]));
        tensors.push((format!("{prefix}.bias"), vec![d_out]));
    };
    let layer_norm = |tensors: &mut Vec<(String, Vec<usize>)>, prefix: String, dim: usize| {
        tensors.push((format!("{prefix}.weight"), vec![dim]));
        tensors.push((format!("{prefix}.bias"), vec![dim]));
    };
    let e = "bert.embeddings";
    tensors.push((format!("{e}.word_embeddings.weight"), vec![v, h]));
    tensors.push((
        format!("{e}.position_embeddings.weight"),
        vec![config.max_position_embeddings, h],
    ));
    tensors.push((
        format!("{e}.token_type_embeddings.weight"),
        vec![config.type_vocab_size.max(1), h],
    ));
    layer_norm(&mut tensors, format!("{e}.LayerNorm"), h);
    for l in 0..config.num_hidden_layers {
        let p = format!("bert.encoder.layer.{l}");
        linear(&mut tensors, format!("{p}.attention.self.query"), h, h);
        linear(&mut tensors, format!("{p}.attention.self.key"), h, h);
        linear(&mut tensors, format!("{p}.attention.self.value"), h, h);
        linear(&mut tensors, format!("{p}.attention.output.dense"), h, h);
        linear(&mut tensors, format!("{p}.intermediate.dense"), h, i);
        linear(&mut tensors, format!("{p}.output.dense"), i, h);
        layer_norm(&mut tensors, format!("{p}.attention.output.LayerNorm"), h);
        layer_norm(&mut tensors, format!("{p}.output.LayerNorm"), h);
    }
    let t = "cls.predictions.transform";
    linear(&mut tensors, format!("{t}.dense"), h, h);
    layer_norm(&mut tensors, format!("{t}.LayerNorm"), h);
    tensors.push(("cls.predictions.bias".into(), vec![v]));
    tensors
}

/// A tensor's values as BERT initialises it: LayerNorm weights 1, biases 0, every other
/// matrix N(0, 0.02), the padding token's embedding 0.
pub(crate) fn initial_values(
    name: &str,
    shape: &[usize],
    config: &ModelConfig,
    rng: &mut SplitMix64,
) -> Vec<f32> {
    let n = shape.iter().product();
    if name.ends_with("LayerNorm.weight") {
        return vec![1.0; n];
    }
    if name.ends_with(".bias") {
        return vec![0.0; n];
    }
    let mut values = normal(rng, n, 0.02);
    if name.ends_with("word_embeddings.weight") {
        let (h, pad) = (config.hidden_size, config.pad_token_id);
        values[pad * h..(pad + 1) * h].fill(0.0);
    }
    values
}

/// A freshly initialised `BertForMaskedLM` as a safetensors file, initialised as BERT is:
/// weights N(0, 0.02), biases 0, LayerNorm 1 and 0, the padding embedding 0.
pub fn random_weights(config: &ModelConfig, seed: u64) -> Result<Vec<u8>> {
    let mut rng = SplitMix64::new(seed);
    let tensors: Vec<StoredTensor> = bert_masked_lm_tensors(config)
        .into_iter()
        .map(|(name, shape)| {
            let values = initial_values(&name, &shape, config, &mut rng);
            let bytes = values.iter().flat_map(|x| x.to_le_bytes()).collect();
            (name, Dtype::F32, shape, bytes)
        })
        .collect();
    serialize(&tensors)
}

/// Token sequences of at most `seq_len` ids, each `[CLS] … [SEP]`, filled with whole consecutive
/// sentences of one document (a sentence longer than a sequence is cut into pieces).
pub fn pack_sequences(
    tokenizer: &MaskTokenizer,
    documents: &[Document],
    seq_len: usize,
) -> Result<Vec<Vec<u32>>> {
    let room = seq_len - 2;
    let mut sequences = Vec::new();
    for doc in documents {
        let mut current: Vec<u32> = Vec::new();
        let mut wrap: Option<(u32, u32)> = None;
        for sentence in &doc.sentences {
            let ids = tokenizer.encode(sentence)?;
            if ids.len() < 3 {
                continue;
            }
            let (cls, sep) = (ids[0], ids[ids.len() - 1]);
            wrap = Some((cls, sep));
            let body = &ids[1..ids.len() - 1];
            if current.len() + body.len() > room && !current.is_empty() {
                sequences.push(wrapped(cls, &current, sep));
                current.clear();
            }
            for piece in body.chunks(room) {
                if current.len() + piece.len() > room {
                    sequences.push(wrapped(cls, &current, sep));
                    current.clear();
                }
                current.extend_from_slice(piece);
            }
        }
        if let (Some((cls, sep)), false) = (wrap, current.is_empty()) {
            sequences.push(wrapped(cls, &current, sep));
        }
    }
    Ok(sequences)
}

fn wrapped(cls: u32, body: &[u32], sep: u32) -> Vec<u32> {
    let mut ids = Vec::with_capacity(body.len() + 2);
    ids.push(cls);
    ids.extend_from_slice(body);
    ids.push(sep);
    ids
}

/// A batch with some tokens hidden: the model input, and where and what to predict.
#[derive(Debug, Clone)]
pub struct MaskedBatch {
    pub batch: TokenBatch,
    pub positions: Vec<(usize, usize)>,
    pub labels: Vec<u32>,
}

/// What masking needs of the vocabulary.
#[derive(Debug, Clone, Copy)]
pub struct MaskingVocab {
    pub mask_id: u32,
    pub pad_id: u32,
    pub vocab_size: usize,
    /// Ids below this are special tokens: never drawn as random replacements.
    pub first_ordinary: u32,
}

/// BERT's dynamic masking: each token but [CLS] and [SEP] is chosen with probability
/// `share` (at least one per sequence); a chosen token becomes [MASK] 80% of the time, a random
/// ordinary token 10%, and stays 10%. The model must predict every chosen token.
pub fn mask_batch(
    sequences: &[&[u32]],
    vocab: MaskingVocab,
    share: f64,
    rng: &mut SplitMix64,
) -> MaskedBatch {
    let uniform = |rng: &mut SplitMix64| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let mut ids = Vec::with_capacity(sequences.len());
    let mut positions = Vec::new();
    let mut labels = Vec::new();
    for (row, seq) in sequences.iter().enumerate() {
        let mut masked = seq.to_vec();
        let inner = 1..seq.len().saturating_sub(1);
        let mut chosen: Vec<usize> = inner.clone().filter(|_| uniform(rng) < share).collect();
        if chosen.is_empty() && !inner.is_empty() {
            // the remainder of the whole u64: `as usize` first would cut it to 32 bits in
            // wasm and choose another token there than natively
            chosen.push(inner.start + (rng.next_u64() % inner.len() as u64) as usize);
        }
        for p in chosen {
            let roll = uniform(rng);
            if roll < 0.8 {
                masked[p] = vocab.mask_id;
            } else if roll < 0.9 {
                let span = vocab.vocab_size as u64 - vocab.first_ordinary as u64;
                masked[p] = vocab.first_ordinary + (rng.next_u64() % span) as u32;
            }
            positions.push((row, p));
            labels.push(seq[p]);
        }
        ids.push(masked);
    }
    MaskedBatch {
        batch: TokenBatch {
            ids,
            pad_id: vocab.pad_id,
        },
        positions,
        labels,
    }
}

/// Summed cross-entropy of the labels of a masked batch, `[1]`.
pub fn masked_lm_loss_sum(model: &MaskedLm, batch: &MaskedBatch) -> Tensor<1> {
    let log_probs = log_softmax(model.logits_at(&batch.batch, &batch.positions), 1);
    let n = batch.labels.len();
    let labels = Tensor::<2, Int>::from_data(
        TensorData::new(
            batch.labels.iter().map(|&l| l as i64).collect::<Vec<_>>(),
            [n, 1],
        ),
        &model.device(),
    );
    log_probs.gather(1, labels).sum().neg()
}

/// Cross-entropy per predicted token of always answering with the training tokens' unigram
/// frequencies (add-one smoothed): the loss a model that ignores context cannot beat.
pub fn unigram_baseline(train: &[Vec<u32>], labels: &[u32], vocab_size: usize) -> f64 {
    let mut counts = vec![1u64; vocab_size];
    for seq in train {
        for &id in &seq[1..seq.len() - 1] {
            counts[id as usize] += 1;
        }
    }
    let total: u64 = counts.iter().sum();
    let nll: f64 = labels
        .iter()
        .map(|&l| -((counts[l as usize] as f64) / total as f64).ln())
        .sum();
    nll / labels.len().max(1) as f64
}

/// The learning rate at `step` of `total`: linear warm-up, then linear decay to 0.
pub fn learning_rate(config: &PretrainConfig, step: usize, total: usize) -> f64 {
    let warmup = ((config.warmup * total as f64).round() as usize).max(1);
    if step < warmup {
        config.lr * (step + 1) as f64 / warmup as f64
    } else {
        let left = total.saturating_sub(step) as f64 / (total - warmup).max(1) as f64;
        config.lr * left.max(0.0)
    }
}

/// The model and optimizer being trained, and how far they are.
pub struct Pretrainer {
    pub model: MaskedLm,
    optimizer: ModuleOptimizer,
    pub config: PretrainConfig,
    pub step: usize,
    pub total_steps: usize,
}

/// Where a checkpointed optimizer state must be re-attached: each checkpoint tensor's
/// parameter id at the time the state was saved.
pub type ParamIds = HashMap<String, u64>;

struct Reassign<'a> {
    by_current: HashMap<ParamId, ParamId>,
    _marker: std::marker::PhantomData<&'a ()>,
}

impl ModuleMapper for Reassign<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, value, mapper) = param.consume();
        let id = self.by_current.get(&id).copied().unwrap_or(id);
        Param::from_mapped_value(id, value, mapper)
    }
}

fn adamw(config: &PretrainConfig) -> ModuleOptimizer {
    // Clipping as BERT's recipe does (burn clips each parameter's gradient to norm 1): a
    // post-LayerNorm encoder trained from scratch with small batches has gradient spikes.
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(config.weight_decay as f32)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init()
}

impl Pretrainer {
    /// A new model from random weights, on `device` (which must be an autodiff device).
    pub fn new(
        config: PretrainConfig,
        model_config: &ModelConfig,
        device: &Device,
        total_steps: usize,
    ) -> Result<Self> {
        config.check()?;
        let bytes = random_weights(model_config, config.seed)?;
        let weights = Weights::parse("initial weights", &bytes)?;
        let model = MaskedLm::load(model_config, &weights, device)?;
        Self::from_model(config, model, None, 0, total_steps)
    }

    /// Continues from a checkpoint: its model (loaded on an autodiff device), the optimizer's
    /// saved state with the parameter ids it was saved under, and the steps already taken.
    pub fn from_model(
        config: PretrainConfig,
        model: MaskedLm,
        optimizer_state: Option<(Vec<u8>, ParamIds)>,
        step: usize,
        total_steps: usize,
    ) -> Result<Self> {
        config.check()?;
        if !model.device().is_autodiff() {
            return Err(Error::Backend(
                "pretraining needs the model on an autodiff device".into(),
            ));
        }
        let mut model = model;
        let mut optimizer = adamw(&config);
        if let Some((bytes, saved)) = optimizer_state {
            // The optimizer keys its state by parameter id; a reloaded model has new ids, so
            // give each parameter back the id it had when the state was saved.
            let mut by_current = HashMap::new();
            for entry in &mut model.checkpoint {
                let old = saved.get(&entry.name).ok_or_else(|| {
                    Error::Input(format!(
                        "the checkpoint's optimizer state lacks `{}`",
                        entry.name
                    ))
                })?;
                by_current.insert(entry.id, ParamId::from(*old));
                entry.id = ParamId::from(*old);
            }
            model = model.map(&mut Reassign {
                by_current,
                _marker: std::marker::PhantomData,
            });
            let record = burn::optim::OptimizerRecord::from_bytes(
                burn::tensor::Bytes::from_bytes_vec(bytes),
            )
            .map_err(|e| Error::Input(format!("the optimizer state cannot be read: {e:?}")))?;
            optimizer = optimizer.load_record(record);
        }
        if config.freeze_encoder {
            model.embeddings = model.embeddings.no_grad();
            model.layers = model.layers.into_iter().map(Module::no_grad).collect();
        }
        Ok(Self {
            model,
            optimizer,
            config,
            step,
            total_steps,
        })
    }

    /// One optimisation step on `batch`; returns its mean loss per predicted token.
    pub async fn train_step(&mut self, batch: &MaskedBatch) -> Result<f64> {
        let n = batch.labels.len().max(1);
        let loss = masked_lm_loss_sum(&self.model, batch).div_scalar(n as f64);
        let value = read_f32(loss.clone()).await?[0] as f64;
        if !value.is_finite() {
            return Err(Error::Training(format!(
                "the masked-LM loss became {value} at step {}; lower the learning rate",
                self.step + 1
            )));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let lr = learning_rate(&self.config, self.step, self.total_steps);
        self.model = self.optimizer.step(lr, self.model.clone(), grads);
        self.step += 1;
        Ok(value)
    }

    /// Summed loss and number of predicted tokens over `batches`, dropout off, no gradients.
    pub async fn evaluate(&self, batches: &[MaskedBatch]) -> Result<(f64, usize)> {
        let model = self.model.valid();
        let mut sum = 0.0;
        let mut count = 0;
        for batch in batches {
            sum += read_f32(masked_lm_loss_sum(&model, batch)).await?[0] as f64;
            count += batch.labels.len();
        }
        Ok((sum, count))
    }

    /// The optimizer's state as bytes, and the parameter ids it is keyed by.
    pub fn optimizer_state(&self) -> Result<(Vec<u8>, ParamIds)> {
        let bytes = self
            .optimizer
            .to_record()
            .into_bytes()
            .map_err(|e| Error::Backend(format!("cannot save the optimizer state: {e:?}")))?;
        let ids = self
            .model
            .checkpoint
            .iter()
            .map(|e| (e.name.clone(), e.id.val()))
            .collect();
        Ok((bytes.to_vec(), ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_follows_berts_proportions() {
        let vocab = MaskingVocab {
            mask_id: 4,
            pad_id: 0,
            vocab_size: 1000,
            first_ordinary: 5,
        };
        let seq: Vec<u32> = std::iter::once(2)
            .chain(500..562)
            .chain(std::iter::once(3))
            .collect();
        let seqs: Vec<&[u32]> = (0..400).map(|_| seq.as_slice()).collect();
        let batch = mask_batch(&seqs, vocab, 0.15, &mut SplitMix64::new(7));
        let n = batch.labels.len() as f64;
        let inner = (400 * 62) as f64;
        assert!(
            (n / inner - 0.15).abs() < 0.01,
            "chosen share {}",
            n / inner
        );
        let (mut masked, mut kept, mut random) = (0.0, 0.0, 0.0);
        for (&(row, p), &label) in batch.positions.iter().zip(&batch.labels) {
            assert!(
                p > 0 && p < seq.len() - 1,
                "[CLS] and [SEP] are never chosen"
            );
            assert_eq!(label, seq[p]);
            match batch.batch.ids[row][p] {
                4 => masked += 1.0,
                t if t == label => kept += 1.0,
                t => {
                    assert!((5..1000).contains(&t));
                    random += 1.0
                }
            }
        }
        assert!((masked / n - 0.8).abs() < 0.03, "masked {}", masked / n);
        assert!((kept / n - 0.1).abs() < 0.03, "kept {}", kept / n);
        assert!((random / n - 0.1).abs() < 0.03, "random {}", random / n);
        // A short sequence still gets one prediction.
        let short = [2u32, 600, 3];
        let b = mask_batch(&[&short], vocab, 0.01, &mut SplitMix64::new(1));
        assert_eq!(b.positions, vec![(0, 1)]);
    }

    #[test]
    fn learning_rate_warms_up_then_decays_to_zero() {
        let config = PretrainConfig {
            lr: 1e-3,
            warmup: 0.1,
            ..PretrainConfig::default()
        };
        let lr = |s| learning_rate(&config, s, 100);
        assert!((lr(0) - 1e-4).abs() < 1e-12);
        assert!((lr(9) - 1e-3).abs() < 1e-12);
        assert!(lr(10) <= 1e-3 && lr(10) > lr(50));
        assert!(lr(99) > 0.0 && lr(99) < 2e-5);
        assert_eq!(lr(100), 0.0);
    }

    #[test]
    fn random_weights_are_initialised_as_bert() {
        let config = ModelConfig::from_json(
            &serde_json::to_vec(
                &PretrainConfig {
                    layers: 1,
                    hidden: 16,
                    heads: 2,
                    intermediate: 32,
                    vocab_size: 50,
                    seq_len: 8,
                    ..PretrainConfig::default()
                }
                .config_json(),
            )
            .unwrap(),
        )
        .unwrap();
        let bytes = random_weights(&config, 3).unwrap();
        let weights = Weights::parse("w", &bytes).unwrap();
        let word = weights
            .tensor("bert.embeddings.word_embeddings.weight", &[50, 16])
            .unwrap()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(word[..16].iter().all(|&v| v == 0.0), "the padding row is 0");
        let rest = &word[16..];
        let mean = rest.iter().sum::<f32>() / rest.len() as f32;
        let std = (rest.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / rest.len() as f32).sqrt();
        assert!(
            mean.abs() < 0.005 && (std - 0.02).abs() < 0.003,
            "{mean} {std}"
        );
        let gamma = weights
            .tensor("bert.encoder.layer.0.output.LayerNorm.weight", &[16])
            .unwrap()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(gamma.iter().all(|&v| v == 1.0));
        assert!(MaskedLm::load(&config, &weights, &Device::flex()).is_ok());
        assert_eq!(random_weights(&config, 3).unwrap(), bytes, "seeded");
    }
}
