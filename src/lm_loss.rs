//! Masked-LM loss on held-out text, as the paper checks that fine-tuning preserves language
//! modelling: each passage lowercased, max(1, ⌊15%⌋) of its non-special tokens masked at random,
//! cross-entropy averaged over every masked token of all passages.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use serde::Serialize;

use crate::engine::LanguageModel;
use crate::error::{Error, Result};
use crate::measure::Progress;
use crate::model::{MaskedLm, TokenBatch};
use crate::readback::read_f32;
use crate::rng::SplitMix64;

#[derive(Debug, Clone, Serialize)]
pub struct LmLoss {
    pub passages: usize,
    /// Non-special tokens of all passages.
    pub tokens: usize,
    pub masked_tokens: usize,
    /// Mean cross-entropy over the masked tokens (nats).
    pub loss: f64,
}

struct MaskedPassage {
    ids: Vec<u32>,
    positions: Vec<usize>,
    labels: Vec<u32>,
}

/// Passages of a text file: one per line, or the `text` column of a TSV with a header.
pub fn passages(file_text: &str) -> Vec<String> {
    let mut lines = file_text.lines();
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let header: Vec<&str> = first.split('\t').collect();
    match header.iter().position(|h| h.trim() == "text") {
        Some(column) if header.len() > 1 || first.trim() == "text" => lines
            .filter_map(|l| l.split('\t').nth(column))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => file_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    }
}

impl LanguageModel {
    pub async fn lm_loss(
        &self,
        passages: &[String],
        mask_prob: f64,
        seed: u64,
        batch_size: usize,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<LmLoss> {
        self.lm_loss_weights(
            &self.model,
            passages,
            mask_prob,
            seed,
            batch_size,
            on_progress,
        )
        .await
    }

    /// The loss with other weights of the same architecture and tokenizer (e.g. tuned ones):
    /// the same seed masks the same tokens, so the two losses compare like for like.
    pub async fn lm_loss_weights(
        &self,
        model: &MaskedLm,
        passages: &[String],
        mask_prob: f64,
        seed: u64,
        batch_size: usize,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<LmLoss> {
        if !(mask_prob > 0.0 && mask_prob <= 1.0) {
            return Err(Error::Input(format!(
                "the mask probability must be in (0, 1], not {mask_prob}"
            )));
        }
        if passages.is_empty() {
            return Err(Error::Input("no text to evaluate".into()));
        }
        let mut rng = SplitMix64::new(seed);
        let mut masked = Vec::with_capacity(passages.len());
        let mut tokens = 0;
        for text in passages {
            let mut ids = self.tokenizer.encode(&text.to_lowercase())?;
            // Too long for the model: keep its first tokens and the closing special token, as
            // transformers' truncation does.
            if ids.len() > self.max_len() {
                let last = *ids.last().expect("non-empty");
                ids.truncate(self.max_len() - 1);
                ids.push(last);
            }
            let mut candidates: Vec<usize> = (1..ids.len().saturating_sub(1)).collect();
            if candidates.is_empty() {
                continue;
            }
            tokens += candidates.len();
            let n = ((candidates.len() as f64 * mask_prob).floor() as usize).max(1);
            rng.shuffle(&mut candidates);
            let mut positions = candidates[..n].to_vec();
            positions.sort_unstable();
            let labels = positions.iter().map(|&p| ids[p]).collect();
            for &p in &positions {
                ids[p] = self.tokenizer.mask_id();
            }
            masked.push(MaskedPassage {
                ids,
                positions,
                labels,
            });
        }
        let mut order: Vec<usize> = (0..masked.len()).collect();
        order.sort_by_key(|&i| masked[i].ids.len());
        let device = model.device();
        let (mut sum, mut count) = (0f64, 0usize);
        on_progress(Progress {
            done: 0,
            total: masked.len(),
        });
        for (b, chunk) in order.chunks(batch_size.max(1)).enumerate() {
            let batch = TokenBatch {
                ids: chunk.iter().map(|&i| masked[i].ids.clone()).collect(),
                pad_id: self.tokenizer.pad_id(),
            };
            let positions: Vec<(usize, usize)> = chunk
                .iter()
                .enumerate()
                .flat_map(|(row, &i)| masked[i].positions.iter().map(move |&p| (row, p)))
                .collect();
            let labels: Vec<i64> = chunk
                .iter()
                .flat_map(|&i| masked[i].labels.iter().map(|&l| l as i64))
                .collect();
            let n = labels.len();
            let labels = Tensor::<2, Int>::from_data(TensorData::new(labels, [n, 1]), &device);
            let nll = log_softmax(model.logits_at(&batch, &positions), 1)
                .gather(1, labels)
                .sum()
                .neg();
            sum += read_f32(nll).await?[0] as f64;
            count += n;
            on_progress(Progress {
                done: (b * batch_size.max(1) + chunk.len()).min(masked.len()),
                total: masked.len(),
            });
        }
        Ok(LmLoss {
            passages: masked.len(),
            tokens,
            masked_tokens: count,
            loss: sum / count.max(1) as f64,
        })
    }
}
