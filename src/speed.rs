//! Choosing a backend by speed rather than by presence: one representative batch of the probe
//! timed on each backend offered, the faster taken. A GPU is not always the faster choice for
//! models of this size (dispatch and read-back costs, software adapters).
//!
//! The engine builds and runs the batch; the caller opens the devices, holds the clock (the
//! browser's worker has no std clock) and says what it chose.

use crate::data::{Benchmark, Split};
use crate::engine::LanguageModel;
use crate::error::{Error, Result};
use crate::measure::{MaskedSentence, ProbeSettings, SentencePlan, batch_log_probs};
use crate::model::Inference;
use crate::walf::WalfTrainer;

/// A batch the size of the probe's, of the test split's sentences of middling length: what most
/// of a probe's time is spent on.
pub struct SpeedBatch {
    sentences: Vec<MaskedSentence>,
    candidates: Vec<u32>,
}

impl SpeedBatch {
    pub fn new(lm: &LanguageModel) -> Result<Self> {
        let bench = Benchmark::bundled();
        let data = bench.split(Split::Test);
        let plan = SentencePlan::new(&lm.tokenizer, data.input(), lm.max_len())?;
        // batches come sorted by length: the middle one
        let mut batches = plan.batches(ProbeSettings::default().batch_size);
        if batches.is_empty() {
            return Err(Error::Input(
                "the test split has no sentences to time".into(),
            ));
        }
        let middle = batches.swap_remove(batches.len() / 2);
        Ok(Self {
            sentences: middle
                .into_iter()
                .map(|i| plan.sentences[i].clone())
                .collect(),
            candidates: plan.candidate_ids,
        })
    }

    pub fn len(&self) -> usize {
        self.sentences.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sentences.is_empty()
    }

    /// One pass of the batch through `model` (weights prepared for inference once, as a probe
    /// prepares them), answers read back: the time of one batch of a probe.
    pub async fn run(&self, lm: &LanguageModel, model: &Inference) -> Result<()> {
        let refs: Vec<&MaskedSentence> = self.sentences.iter().collect();
        batch_log_probs(model, &refs, lm.tokenizer.pad_id(), &self.candidates)
            .await
            .map(|_| ())
    }
}

impl SpeedBatch {
    /// Milliseconds for the batch on `lm`'s device, by the caller's clock (`now_ms`): the second
    /// of two passes, since the first compiles the GPU's kernels and packs the weights.
    pub async fn time_ms(&self, lm: &LanguageModel, now_ms: &dyn Fn() -> f64) -> Result<f64> {
        let model = lm.model.for_inference();
        self.run(lm, &model).await?;
        let started = now_ms();
        self.run(lm, &model).await?;
        Ok(now_ms() - started)
    }
}

/// Professions (WALF) or text sentences (CDA) a trial step works on. One profession is a
/// twelfth of the paper's batch: in the paper's real-world mode, where a step of eight takes over
/// a minute on two cores, timing both backends costs seconds, not minutes.
pub const TRIAL_ITEMS: usize = 1;

/// Milliseconds for a training step's work on `trainer`'s device (forward, backward and the read
/// of the losses, on the next batch's first [`TRIAL_ITEMS`]), by the caller's clock: the second of
/// two passes, as [`SpeedBatch::time_ms`]. The trainer is left as it was
/// ([`WalfTrainer::trial_step`]), so the run can start on it.
pub async fn step_time_ms(trainer: &mut WalfTrainer, now_ms: &dyn Fn() -> f64) -> Result<f64> {
    trainer.trial_step(TRIAL_ITEMS).await?;
    let started = now_ms();
    trainer.trial_step(TRIAL_ITEMS).await?;
    Ok(now_ms() - started)
}

/// One backend's time for the same work (a probe batch, a trial step).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendTime {
    /// "WebGPU", "CPU, 4 workers", "wgpu (NVIDIA …)"
    pub label: String,
    pub ms: f64,
}

/// The faster of the times (the first on a tie); `None` for none.
pub fn fastest(times: &[BackendTime]) -> Option<usize> {
    times
        .iter()
        .enumerate()
        .filter(|(_, t)| t.ms.is_finite())
        .min_by(|(_, a), (_, b)| a.ms.total_cmp(&b.ms))
        .map(|(i, _)| i)
}

/// "WebGPU 412 ms/batch, CPU 96 ms/batch" (`per`: "batch"): each figure, in the order measured;
/// a timing that failed says so.
pub fn describe(times: &[BackendTime], per: &str) -> String {
    times
        .iter()
        .map(|t| match t.ms.is_finite() {
            true => format!("{} {:.0} ms/{per}", t.label, t.ms),
            false => format!("{} failed", t.label),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(label: &str, ms: f64) -> BackendTime {
        BackendTime {
            label: label.into(),
            ms,
        }
    }

    #[test]
    fn the_faster_backend_wins_and_a_failed_timing_never_does() {
        assert_eq!(
            fastest(&[time("WebGPU", 412.0), time("CPU", 96.0)]),
            Some(1)
        );
        assert_eq!(fastest(&[time("WebGPU", 40.0), time("CPU", 96.0)]), Some(0));
        assert_eq!(fastest(&[time("WebGPU", 40.0), time("CPU", 40.0)]), Some(0));
        assert_eq!(
            fastest(&[time("WebGPU", f64::NAN), time("CPU", 96.0)]),
            Some(1)
        );
        assert_eq!(fastest(&[]), None);
        assert_eq!(
            describe(
                &[time("WebGPU", 412.4), time("CPU, 4 workers", 95.6)],
                "batch"
            ),
            "WebGPU 412 ms/batch, CPU, 4 workers 96 ms/batch"
        );
        assert_eq!(
            describe(&[time("wgpu", 1.5), time("CPU", f64::INFINITY)], "step"),
            "wgpu 2 ms/step, CPU failed"
        );
    }
}
