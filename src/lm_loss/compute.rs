//! The loss itself, on any backend.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

use super::{LmLoss, LmLossSettings, LossRule};
use crate::engine::LanguageModel;
use crate::error::{Error, Result};
use crate::measure::Progress;
use crate::model::{MaskedLm, TokenBatch};
use crate::readback::read_f32;
use crate::rng::SplitMix64;

/// At most this many scored positions per forward pass: under the paper's rule every token is
/// scored, and each position's logits span the vocabulary (bert-base: 1,024 × 30,522 floats, 125
/// MB, twice over with the log-softmax), which must fit a browser's memory.
const MAX_SCORED: usize = 1024;

/// Consecutive runs of `order` of at most `batch_size` passages and, past the first passage of a
/// run, at most [`MAX_SCORED`] scored positions.
fn chunks(order: &[usize], scored: impl Fn(usize) -> usize, batch_size: usize) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let (mut start, mut positions) = (0, 0);
    for (k, &i) in order.iter().enumerate() {
        let n = scored(i);
        if k > start && (k - start >= batch_size.max(1) || positions + n > MAX_SCORED) {
            out.push(&order[start..k]);
            (start, positions) = (k, 0);
        }
        positions += n;
    }
    if start < order.len() {
        out.push(&order[start..]);
    }
    out
}

struct MaskedPassage {
    ids: Vec<u32>,
    /// The positions scored and their labels: the masked ones, or under the paper's rule every
    /// non-special one.
    positions: Vec<usize>,
    labels: Vec<u32>,
    masked: usize,
}

impl LanguageModel {
    pub async fn lm_loss(
        &self,
        passages: &[String],
        settings: LmLossSettings,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<LmLoss> {
        self.lm_loss_weights(&self.model, passages, settings, on_progress)
            .await
    }

    /// The loss with other weights of the same architecture and tokenizer (e.g. tuned ones):
    /// the same seed masks the same tokens, so the two losses compare like for like.
    pub async fn lm_loss_weights(
        &self,
        model: &MaskedLm,
        passages: &[String],
        settings: LmLossSettings,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<LmLoss> {
        let LmLossSettings {
            mask_prob,
            seed,
            batch_size,
            rule,
        } = settings;
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
            let mut candidates: Vec<usize> = match rule {
                LossRule::MaskedTokens => (1..ids.len().saturating_sub(1)).collect(),
                LossRule::Paper => (0..ids.len())
                    .filter(|&p| !self.tokenizer.is_special(ids[p]))
                    .collect(),
            };
            if candidates.is_empty() {
                continue;
            }
            tokens += candidates.len();
            let scored_all = candidates.clone();
            let n = ((candidates.len() as f64 * mask_prob).floor() as usize).max(1);
            rng.shuffle(&mut candidates);
            let mut chosen = candidates[..n].to_vec();
            chosen.sort_unstable();
            let positions = match rule {
                LossRule::MaskedTokens => chosen.clone(),
                LossRule::Paper => scored_all,
            };
            let labels = positions.iter().map(|&p| ids[p]).collect();
            for &p in &chosen {
                ids[p] = self.tokenizer.mask_id();
            }
            masked.push(MaskedPassage {
                ids,
                positions,
                labels,
                masked: n,
            });
        }
        let mut order: Vec<usize> = (0..masked.len()).collect();
        order.sort_by_key(|&i| masked[i].ids.len());
        let device = model.device();
        // packed once for every batch (where a host's kernel runs inference)
        let model = model.for_inference();
        // sum: of the cross-entropies (masked rule), or of each passage's mean times its masked
        // count (the paper's); count: what the sum is divided by, the masked tokens in both.
        let (mut sum, mut count) = (0f64, 0usize);
        on_progress(Progress {
            done: 0,
            total: masked.len(),
        });
        let mut done = 0;
        for chunk in chunks(&order, |i| masked[i].positions.len(), batch_size) {
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
            let log_probs = log_softmax(model.logits_at(&batch, &positions), 1).gather(1, labels);
            match rule {
                LossRule::MaskedTokens => {
                    sum += -(read_f32(log_probs.sum()).await?[0] as f64);
                    count += n;
                }
                LossRule::Paper => {
                    let values = read_f32(log_probs.reshape([n])).await?;
                    let mut at = 0;
                    for &i in chunk {
                        let p = &masked[i];
                        let k = p.positions.len();
                        let mean =
                            -values[at..at + k].iter().map(|&v| v as f64).sum::<f64>() / k as f64;
                        at += k;
                        sum += mean * p.masked as f64;
                        count += p.masked;
                    }
                }
            }
            done += chunk.len();
            on_progress(Progress {
                done,
                total: masked.len(),
            });
        }
        Ok(LmLoss {
            passages: masked.len(),
            tokens,
            masked_tokens: count,
            loss: sum / count.max(1) as f64,
            rule,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_order_and_bound_passages_and_positions() {
        let order: Vec<usize> = (0..10).collect();
        let scored = |i: usize| if i == 4 { 2000 } else { 300 };
        let got = chunks(&order, scored, 16);
        // 3 × 300 fit, the fourth would pass 1,024; the 2,000-position passage goes alone
        assert_eq!(
            got,
            vec![
                &[0, 1, 2][..],
                &[3][..],
                &[4][..],
                &[5, 6, 7][..],
                &[8, 9][..]
            ]
        );
        let by_count = chunks(&order, |_| 1, 4);
        assert_eq!(
            by_count.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        assert!(chunks(&[], |_| 1, 4).is_empty());
    }
}
