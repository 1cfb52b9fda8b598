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

/// One masked copy of a sentence: its ids with one token masked, that position and the id hidden.
#[derive(Debug, Clone)]
pub struct MlmRow {
    pub ids: Vec<u32>,
    pub position: usize,
    pub label: u32,
}

/// Every token of each sentence but the first and last (the special tokens) masked in turn, as
/// the paper's `get_mlm_loss` does.
pub fn mlm_rows(
    tokenizer: &MaskTokenizer,
    sentences: &[String],
    max_len: usize,
) -> Result<Vec<MlmRow>> {
    let mut rows = Vec::new();
    for s in sentences {
        let ids = tokenizer.encode(s)?;
        if ids.len() > max_len {
            return Err(Error::Input(format!(
                "{s:?} is longer than the model takes"
            )));
        }
        for position in 1..ids.len().saturating_sub(1) {
            let mut masked = ids.clone();
            masked[position] = tokenizer.mask_id();
            rows.push(MlmRow {
                ids: masked,
                position,
                label: ids[position],
            });
        }
    }
    Ok(rows)
}

/// Sum of the cross-entropy of the hidden tokens over `rows`, `[1]`. The vocabulary projection
/// runs at the masked position of each row only.
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
    log_probs.gather(1, labels).sum().neg()
}
