//! The paper's losses as differentiable computations, on the same sentence plan as the probe
//! (identical masked sentences run once, batched by length): the bias loss (mean over a batch of
//! professions of KL(target ‖ predicted)/2) and the masked-LM loss that WALF adds for the
//! real-world target.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::Gender;
use crate::error::{Error, Result};
use crate::measure::{MaskedSentence, MeasureInput, SentencePlan, candidate_log_probs};
use crate::model::{MaskedLm, TokenBatch};
use crate::rng::SplitMix64;
use crate::tokenizer::MaskTokenizer;

fn ints(values: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

fn floats<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The model's (male, female) distribution per profession, `[professions, 2]`, with the graph
/// that produced it.
pub fn profession_distribution(
    model: &MaskedLm,
    tokenizer: &MaskTokenizer,
    plan: &SentencePlan,
    input: MeasureInput,
    batch_size: usize,
) -> Tensor<2> {
    let device = model.device();
    let k = plan.candidate_ids.len();
    let column = plan.candidate_columns();
    let candidates = plan.candidate_tensor(&device);

    // Log-probabilities of every masked position, batch after batch; `row` says where each
    // sentence's first position landed.
    let mut parts = Vec::new();
    let mut row = vec![0usize; plan.sentences.len()];
    let mut next = 0;
    for batch in plan.batches(batch_size) {
        let sentences: Vec<&MaskedSentence> = batch.iter().map(|&i| &plan.sentences[i]).collect();
        for &i in &batch {
            row[i] = next;
            next += plan.sentences[i].positions.len();
        }
        parts.push(candidate_log_probs(
            model,
            &sentences,
            tokenizer.pad_id(),
            &candidates,
        ));
    }
    let log_probs = Tensor::cat(parts, 0).reshape([next * k]);

    // score = Σ over the word's ids and masked positions of ln p(AM) − ln p(TAM): gather the
    // terms (padded with weight 0) and sum them per instance.
    let terms = |inst: &crate::measure::Instance| {
        let mut out = Vec::new();
        for (sentence, sign) in [(inst.am, 1f32), (inst.tam, -1f32)] {
            for &id in &inst.word_ids {
                for p in 0..plan.sentences[sentence].positions.len() {
                    out.push((((row[sentence] + p) * k + column[&id]) as i64, sign));
                }
            }
        }
        out
    };
    let all: Vec<Vec<(i64, f32)>> = plan.instances.iter().map(terms).collect();
    let width = all.iter().map(Vec::len).max().unwrap_or(1);
    let n = all.len();
    let mut index = Vec::with_capacity(n * width);
    let mut weight = Vec::with_capacity(n * width);
    for t in &all {
        for j in 0..width {
            let (i, w) = t.get(j).copied().unwrap_or((0, 0.0));
            index.push(i);
            weight.push(w);
        }
    }
    let scores = (log_probs.select(0, ints(index, &device)) * floats(weight, [n * width], &device))
        .reshape([n, width])
        .sum_dim(1);

    // Σ exp(score) by profession and gender, then normalised over the two genders.
    let professions = input.professions.len();
    let mut grouping = vec![0f32; 2 * professions * n];
    for (i, inst) in plan.instances.iter().enumerate() {
        let g = (input.phrases[inst.phrase].gender == Gender::Female) as usize;
        grouping[(2 * inst.profession + g) * n + i] = 1.0;
    }
    let sums = floats(grouping, [2 * professions, n], &device)
        .matmul(scores.exp())
        .reshape([professions, 2]);
    let totals = sums.clone().sum_dim(1);
    sums / totals
}

/// Mean over professions of the paper's KL(target ‖ predicted) (PyTorch's `batchmean` over the
/// two values, predictions clamped to [1e-8, 1]). `targets` holds (male, female) per profession.
pub fn mean_kl(distribution: Tensor<2>, targets: &[(f64, f64)]) -> Tensor<1> {
    let device = distribution.device();
    let n = targets.len();
    let t: Vec<f32> = targets
        .iter()
        .flat_map(|&(m, f)| [m as f32, f as f32])
        .collect();
    // t · ln t with 0 · ln 0 = 0, as PyTorch's kl_div defines it.
    let t_log_t: Vec<f32> = t
        .iter()
        .map(|&v| if v > 0.0 { v * v.ln() } else { 0.0 })
        .collect();
    let target = floats(t, [n, 2], &device);
    let t_log_t = floats(t_log_t, [n, 2], &device);
    let kl = t_log_t - target * distribution.clamp(1e-8, 1.0).log();
    kl.sum_dim(1).div_scalar(2.0).mean()
}

/// One masked copy of a sentence: its ids with one token masked, that position, the id hidden, and
/// the weight of its cross-entropy in the loss's sum.
#[derive(Debug, Clone)]
pub struct MlmRow {
    pub ids: Vec<u32>,
    pub position: usize,
    pub label: u32,
    /// 1 when every token is masked in turn; `n / k` when `k` of a sentence's `n` tokens are drawn,
    /// times `s / m` when `m` of its profession's `s` sentences are, so that the weighted sum is an
    /// unbiased estimate of the exact one.
    pub weight: f32,
}

/// The masked copies of a batch's sentences and what their weighted sum is divided by.
#[derive(Debug, Clone)]
pub struct MlmRows {
    pub rows: Vec<MlmRow>,
    /// Maskable tokens of all sentences: the exact mean's denominator, in both modes.
    pub tokens: usize,
}

/// How much of the masked-LM loss a step runs. The default masks every token of every
/// filled-in sentence in turn, as the paper's `get_mlm_loss` does; each limit draws instead, with
/// the run's seed, and weights what it draws so that the weighted sum stays an unbiased estimate
/// of the exact one.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct MlmSampling {
    /// Masked positions drawn per sentence (all of a sentence's when it has fewer).
    pub positions: Option<usize>,
    /// Sentences drawn per profession (all of a profession's when it has fewer).
    pub sentences: Option<usize>,
}

/// The masked copies of `sentences` (each with the profession it was filled in with) for the
/// masked-LM loss. Every token but the first and last (the special tokens) is maskable.
/// Exact `sampling` masks each in turn; otherwise `sampling.sentences` of each profession's `s`
/// sentences are drawn (weight `s / m`), then `sampling.positions` of each drawn sentence's `n`
/// tokens (weight `n / k`), both without replacement. The denominator counts every maskable
/// token of every sentence in both modes.
pub fn mlm_rows(
    tokenizer: &MaskTokenizer,
    sentences: &[(usize, String)],
    max_len: usize,
    sampling: MlmSampling,
    rng: &mut SplitMix64,
) -> Result<MlmRows> {
    let mut sentence_weight = vec![1.0f32; sentences.len()];
    if let Some(m) = sampling.sentences {
        let mut professions: Vec<usize> = sentences.iter().map(|(p, _)| *p).collect();
        professions.sort_unstable();
        professions.dedup();
        for p in professions {
            let mut of_p: Vec<usize> = (0..sentences.len())
                .filter(|&i| sentences[i].0 == p)
                .collect();
            let s = of_p.len();
            if m >= s {
                continue;
            }
            draw_first(&mut of_p, m, rng);
            for &i in &of_p[m..] {
                sentence_weight[i] = 0.0;
            }
            for &i in &of_p[..m] {
                sentence_weight[i] = s as f32 / m as f32;
            }
        }
    }
    let mut rows = Vec::new();
    let mut tokens = 0;
    for ((_, s), sentence_weight) in sentences.iter().zip(sentence_weight) {
        let ids = tokenizer.encode(s)?;
        if ids.len() > max_len {
            return Err(Error::Input(format!(
                "{s:?} is longer than the model takes"
            )));
        }
        let mut positions: Vec<usize> = (1..ids.len().saturating_sub(1)).collect();
        let n = positions.len();
        tokens += n;
        if sentence_weight == 0.0 {
            continue;
        }
        let mut weight = sentence_weight;
        if let Some(k) = sampling.positions
            && k < n
        {
            draw_first(&mut positions, k, rng);
            positions.truncate(k);
            positions.sort_unstable();
            weight *= n as f32 / k as f32;
        }
        for position in positions {
            let mut masked = ids.clone();
            masked[position] = tokenizer.mask_id();
            rows.push(MlmRow {
                ids: masked,
                position,
                label: ids[position],
                weight,
            });
        }
    }
    Ok(MlmRows { rows, tokens })
}

/// Puts `k` items drawn uniformly without replacement at the front of `items` (a partial
/// Fisher–Yates).
fn draw_first(items: &mut [usize], k: usize, rng: &mut SplitMix64) {
    let n = items.len();
    for i in 0..k.min(n) {
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        items.swap(i, j);
    }
}

/// Weighted sum of the cross-entropy of the hidden tokens over `rows`, `[1]`. The vocabulary
/// projection runs at the masked position of each row only.
pub fn mlm_loss_sum(model: &MaskedLm, rows: &[MlmRow], pad_id: u32) -> Tensor<1> {
    let device = model.device();
    let batch = TokenBatch {
        ids: rows.iter().map(|r| r.ids.clone()).collect(),
        pad_id,
    };
    let positions: Vec<(usize, usize)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.position))
        .collect();
    let log_probs = log_softmax(model.logits_at(&batch, &positions), 1);
    let n = rows.len();
    let labels = Tensor::<2, Int>::from_data(
        TensorData::new(
            rows.iter().map(|r| r.label as i64).collect::<Vec<_>>(),
            [n, 1],
        ),
        &device,
    );
    // weights of 1 (the paper's mode) leave every term exactly as it is
    let weights = floats(rows.iter().map(|r| r.weight).collect(), [n], &device);
    (log_probs.gather(1, labels).reshape([n]) * weights)
        .sum()
        .neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_positions_are_distinct_and_each_equally_likely() {
        // Over many draws of 2 of 5 positions, each position is drawn 2/5 of the time: with the
        // weight n/k = 5/2 the expected weight of every position is 1, as in the exact mode.
        let mut rng = SplitMix64::new(3);
        let mut counts = [0usize; 5];
        let draws = 20_000;
        for _ in 0..draws {
            let mut items: Vec<usize> = (0..5).collect();
            draw_first(&mut items, 2, &mut rng);
            assert_ne!(items[0], items[1]);
            let mut rest = items.clone();
            rest.sort_unstable();
            assert_eq!(rest, vec![0, 1, 2, 3, 4], "a permutation of the positions");
            counts[items[0]] += 1;
            counts[items[1]] += 1;
        }
        for c in counts {
            let expected_weight = c as f64 / draws as f64 * 5.0 / 2.0;
            assert!(
                (expected_weight - 1.0).abs() < 0.03,
                "expected weight {expected_weight}"
            );
        }
        let mut all: Vec<usize> = (0..3).collect();
        draw_first(&mut all, 7, &mut rng);
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2], "k above n draws everything once");
    }
}
