use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::cda::CdaText;
use super::loss::{MlmRows, MlmSampling, mean_kl, mlm_loss_sum, mlm_rows, profession_distribution};
use super::paper;
use super::tracker::{GroupKl, KlTracker, adjust_lambda, alpha};
use crate::bias::{ProfessionDistribution, Target, bias_report};
use crate::data::{Benchmark, GenderedPhrase, Group, Profession, Split, Template};
use crate::engine::LanguageModel;
use crate::error::{Error, Result};
use crate::measure::{MeasureInput, ProbeSettings, SentencePlan};
use crate::model::{MaskedLm, TokenBatch};
use crate::pretrain::{MaskedBatch, trainer::masked_lm_loss_sum};
use crate::readback::read_f32;
use crate::rng::SplitMix64;

/// WALF's hyper-parameters; `paper` gives the paper's defaults.
#[derive(Debug, Clone, Serialize)]
pub struct WalfConfig {
    pub target: Target,
    /// Weight of the masked-LM loss (real-world target only).
    pub gamma: f64,
    /// Momentum of the KL tracker's moving average.
    pub beta: f64,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub valid_batch_size: usize,
    pub patience: usize,
    pub min_delta: f64,
    pub max_epochs: usize,
    pub seed: u64,
    /// Distinct sentences per forward pass.
    pub forward_batch: usize,
    /// Masked copies per forward pass of the masked-LM loss. Each chunk is differentiated on its
    /// own and the gradients summed, which bounds memory without changing the gradient; small
    /// chunks were also faster on the CPU (64: 0.11 s per profession on the tiny BERT, one chunk
    /// of the whole batch: 0.22 s, most of it spent allocating autodiff intermediates).
    pub mlm_chunk: usize,
    /// Masked positions drawn per filled-in sentence for the masked-LM loss (real-world target);
    /// `None` masks every token in turn, as the paper. Drawing `k` gives an unbiased estimate of
    /// the same mean at a fraction of the cost (most of a paper-mode step is that loss).
    pub mlm_positions: Option<usize>,
    /// Filled-in sentences drawn per profession for that loss; `None`: all of them. With one
    /// position per sentence a profession still costs one masked copy per sentence, several
    /// times the forward passes of its KL: drawing sentences too cuts that, at the price of a
    /// noisier (still unbiased) estimate.
    pub mlm_sentences: Option<usize>,
    /// Under dropout, run every use of a masked sentence on its own so that each draws its own
    /// dropout mask, as the paper's code does (true). The default, false, shares one pass, and so
    /// one mask, among the professions and phrases that use the same sentence: a slightly
    /// different objective, measured to move an epoch's valid KL by less than the seed does,
    /// at a ninth of the cost (BENCHMARKS.md). No effect without dropout, where sharing changes
    /// nothing.
    pub dropout_per_use: bool,
    /// Sentences of the text per update of a CDA run (its steps per epoch are WALF's, so that
    /// validation comes as often).
    pub cda_batch: usize,
}

/// What a run minimises. Validation, early stopping and the best weights are the same for both:
/// the valid professions' KL against the run's target.
#[derive(Debug, Clone)]
pub enum Objective {
    /// WALF's loss on the benchmark's train professions.
    Walf,
    /// Counterfactual data augmentation: the masked-LM loss on general text beside its
    /// gender-swapped copy. It never sees the benchmark's sentences, nor the target.
    Cda(CdaText),
}

/// One update's share of the epoch: professions of one group (WALF) or sentences of the text
/// (CDA), as indices.
#[derive(Debug, Clone, PartialEq)]
enum Batch {
    Professions(Group, Vec<usize>),
    Sentences(Vec<usize>),
}

impl WalfConfig {
    pub fn paper(target: Target) -> Self {
        Self {
            target,
            gamma: paper::GAMMA,
            beta: paper::BETA,
            lr: paper::LR,
            weight_decay: paper::WEIGHT_DECAY,
            batch_size: paper::BATCH_SIZE,
            valid_batch_size: paper::VALID_BATCH_SIZE,
            patience: paper::PATIENCE,
            min_delta: paper::min_delta(target),
            max_epochs: paper::MAX_EPOCHS,
            seed: paper::SEED,
            forward_batch: 64,
            mlm_chunk: 64,
            mlm_positions: None,
            mlm_sentences: None,
            dropout_per_use: false,
            cda_batch: 32,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Input(format!("WALF setting: {what}")));
        if self.batch_size == 0
            || self.valid_batch_size == 0
            || self.forward_batch == 0
            || self.cda_batch == 0
        {
            return bad("batch sizes must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("the learning rate must be a positive number");
        }
        if !(0.0..1.0).contains(&self.beta) {
            return bad("beta must be in [0, 1)");
        }
        if !(self.gamma >= 0.0 && self.weight_decay >= 0.0 && self.min_delta >= 0.0) {
            return bad("gamma, weight decay and min-delta must not be negative");
        }
        if self.mlm_positions == Some(0) {
            return bad("at least one masked position per sentence");
        }
        if self.mlm_sentences == Some(0) {
            return bad("at least one masked-LM sentence per profession");
        }
        if self.max_epochs == 0 {
            return bad("max epochs must be at least 1");
        }
        Ok(())
    }
}

/// What one training batch did.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub epoch: usize,
    /// 0-based index within the epoch, and the epoch's number of batches.
    pub batch: usize,
    pub batches: usize,
    /// The professions' group (WALF; a CDA step trains on text).
    pub group: Option<Group>,
    pub professions: Vec<String>,
    /// The batch's mean KL (the equal target's whole WALF loss; CDA has none).
    pub kl: Option<f64>,
    pub normalized_loss: Option<f64>,
    pub lambda: Option<f64>,
    /// What the KL's gradient was multiplied by: λ / (tracker mean + α) (real-world target). The
    /// adaptive part of WALF lives here, since λ often sits at a bound.
    pub scale: Option<f64>,
    pub mlm_loss: Option<f64>,
    /// Maskable tokens of the batch's sentences, and the masked copies run (fewer when sampled);
    /// for CDA the masked tokens predicted and the sentences.
    pub mlm_tokens: Option<usize>,
    pub mlm_rows: Option<usize>,
    pub total_loss: f64,
    /// The tracker after this batch, per group (real-world target).
    pub tracker: BTreeMap<Group, GroupKl>,
}

/// The end of an epoch: validation and early stopping.
#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Mean over the epoch's professions of the loss that was minimised.
    pub train_loss: f64,
    /// Mean KL of the valid professions against the target (unweighted, as the paper).
    pub valid_kl: f64,
    /// The same per group of valid professions.
    pub valid_kl_by_group: BTreeMap<String, f64>,
    /// Each valid profession's distribution after the epoch: what a chart of the run shows
    /// moving while it trains.
    pub valid_professions: Vec<ProfessionDistribution>,
    pub improved: bool,
    pub best_valid_kl: f64,
    pub best_epoch: usize,
    /// No more epochs: patience exhausted or the epoch limit reached.
    pub finished: bool,
}

/// The valid split measured with some weights (see [`WalfTrainer::validation`]).
#[derive(Debug, Clone)]
pub struct Validation {
    /// Mean KL of the valid professions against the target (unweighted, as the paper).
    pub kl: f64,
    pub kl_by_group: BTreeMap<String, f64>,
    pub professions: Vec<ProfessionDistribution>,
}

/// Where a run stands between two epochs. With the weights at that point and the best weights it
/// is what [`WalfTrainer::resume`] needs to go on: the same epochs, batches and early stopping
/// as if the run had not been interrupted. AdamW's moment estimates are not part of it (they
/// would triple what is stored); after a resume they build up again from zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Epochs completed (and validated).
    pub epochs_done: usize,
    pub steps_done: usize,
    /// The shuffler before it drew the next epoch's batches.
    pub shuffle_state: u64,
    /// The KL tracker (real-world target).
    pub tracker: BTreeMap<Group, GroupKl>,
    /// The best validation so far: KL and 0-based epoch; the best weights go with it.
    pub best: Option<(f64, usize)>,
    pub stale_epochs: usize,
}

/// Batches holding professions of one group, groups in order of first appearance (the paper's
/// `create_batches`); shuffled within groups and in order when `shuffler` is given.
fn group_batches(
    professions: &[Profession],
    size: usize,
    mut shuffler: Option<&mut SplitMix64>,
) -> Vec<(Group, Vec<usize>)> {
    let mut groups: Vec<(Group, Vec<usize>)> = Vec::new();
    for (i, p) in professions.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| *g == p.group) {
            Some((_, items)) => items.push(i),
            None => groups.push((p.group, vec![i])),
        }
    }
    let mut batches = Vec::new();
    for (group, mut items) in groups {
        if let Some(s) = shuffler.as_deref_mut() {
            s.shuffle(&mut items);
        }
        batches.extend(items.chunks(size).map(|c| (group, c.to_vec())));
    }
    if let Some(s) = shuffler {
        s.shuffle(&mut batches);
    }
    batches
}

pub struct WalfTrainer {
    lm: LanguageModel,
    config: WalfConfig,
    objective: Objective,
    train: Vec<Profession>,
    valid: Vec<Profession>,
    templates: Vec<Template>,
    phrases: Vec<GenderedPhrase>,
    optimizer: ModuleOptimizer,
    tracker: KlTracker,
    shuffler: SplitMix64,
    /// The shuffler's state before it drew this epoch's batches.
    epoch_shuffle: u64,
    epoch: usize,
    queue: Vec<Batch>,
    next: usize,
    epoch_loss: f64,
    epoch_count: usize,
    best: Option<(f64, usize, MaskedLm)>,
    stale_epochs: usize,
    /// Updates applied since the start, over all epochs.
    steps_done: usize,
    /// Fault injection: the step (1-based, counted like `steps_done`) whose gradient is poisoned.
    poison_step: Option<(usize, f32)>,
}

/// Every float parameter's id: gradients are looked up by them.
struct ParamIds(Vec<(ParamId, usize)>);

impl ModuleVisitor for ParamIds {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push((param.id, D));
    }
}

impl WalfTrainer {
    /// `lm` must live on an autodiff device (e.g. `Device::flex().autodiff()`).
    pub fn new(lm: LanguageModel, benchmark: &Benchmark, config: WalfConfig) -> Result<Self> {
        Self::with_objective(lm, benchmark, config, Objective::Walf)
    }

    /// A run of `objective` (WALF or the CDA baseline) with the same validation and best-weights
    /// rules.
    pub fn with_objective(
        lm: LanguageModel,
        benchmark: &Benchmark,
        config: WalfConfig,
        objective: Objective,
    ) -> Result<Self> {
        let seed = config.seed;
        let mut trainer = Self::build(lm, benchmark, config, objective, seed)?;
        trainer.start_epoch();
        Ok(trainer)
    }

    /// Goes on with a run from [`state`](Self::state): `lm` holds the weights at the end of its
    /// last completed epoch (on an autodiff device), `best` the best weights when `state` has a
    /// best epoch. `benchmark` and `config` must be the run's own.
    /// The objective must be the run's own too (for CDA, the same text).
    pub fn resume(
        lm: LanguageModel,
        best: Option<MaskedLm>,
        benchmark: &Benchmark,
        config: WalfConfig,
        objective: Objective,
        state: TrainerState,
    ) -> Result<Self> {
        let mut trainer = Self::build(lm, benchmark, config, objective, state.shuffle_state)?;
        trainer.best = match (state.best, best) {
            (Some((kl, epoch)), Some(model)) if kl.is_finite() && epoch < state.epochs_done => {
                Some((kl, epoch, model))
            }
            (None, None) => None,
            _ => {
                return Err(Error::Input(
                    "the saved run's best weights do not match its record".into(),
                ));
            }
        };
        trainer.epoch = state.epochs_done;
        trainer.steps_done = state.steps_done;
        trainer.tracker.groups = state.tracker;
        trainer.stale_epochs = state.stale_epochs;
        trainer.start_epoch();
        Ok(trainer)
    }

    /// The run's state, at an epoch boundary only (after [`validate`](Self::validate), before the
    /// next [`step`](Self::step)); `None` in the middle of an epoch.
    pub fn state(&self) -> Option<TrainerState> {
        (self.next == 0).then(|| TrainerState {
            epochs_done: self.epoch,
            steps_done: self.steps_done,
            shuffle_state: self.epoch_shuffle,
            tracker: self.tracker.groups.clone(),
            best: self.best.as_ref().map(|(kl, epoch, _)| (*kl, *epoch)),
            stale_epochs: self.stale_epochs,
        })
    }

    fn build(
        lm: LanguageModel,
        benchmark: &Benchmark,
        config: WalfConfig,
        objective: Objective,
        shuffle_state: u64,
    ) -> Result<Self> {
        config.check()?;
        if !lm.model.device().is_autodiff() {
            return Err(Error::Backend(
                "fine-tuning needs the model on an autodiff device".into(),
            ));
        }
        let train = benchmark.professions_of(Split::Train);
        let valid = benchmark.professions_of(Split::Valid);
        if train.is_empty() || valid.is_empty() {
            return Err(Error::Input(
                "tuning needs train and valid professions (the valid ones choose the best weights)"
                    .into(),
            ));
        }
        let optimizer = AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8) // PyTorch's default; burn's is 1e-5
            .with_weight_decay(config.weight_decay as f32)
            .init();
        Ok(Self {
            lm,
            objective,
            train,
            valid,
            templates: benchmark.templates_of(Split::Train),
            phrases: benchmark.phrases.clone(),
            optimizer,
            tracker: KlTracker::new(config.beta),
            shuffler: SplitMix64::new(shuffle_state),
            epoch_shuffle: shuffle_state,
            config,
            epoch: 0,
            queue: Vec::new(),
            next: 0,
            epoch_loss: 0.0,
            epoch_count: 0,
            best: None,
            stale_epochs: 0,
            steps_done: 0,
            poison_step: None,
        })
    }

    fn start_epoch(&mut self) {
        self.epoch_shuffle = self.shuffler.state();
        self.queue = match &self.objective {
            Objective::Walf => group_batches(
                &self.train,
                self.config.batch_size,
                Some(&mut self.shuffler),
            )
            .into_iter()
            .map(|(group, members)| Batch::Professions(group, members))
            .collect(),
            Objective::Cda(text) => {
                // as many updates as WALF's epoch, on sentences drawn afresh each epoch
                let steps = group_batches(&self.train, self.config.batch_size, None).len();
                let mut order: Vec<usize> = (0..text.sequences.len()).collect();
                self.shuffler.shuffle(&mut order);
                order
                    .chunks(self.config.cda_batch)
                    .take(steps)
                    .map(|rows| Batch::Sentences(rows.to_vec()))
                    .collect()
            }
        };
        self.next = 0;
        self.epoch_loss = 0.0;
        self.epoch_count = 0;
    }

    pub fn config(&self) -> &WalfConfig {
        &self.config
    }

    pub fn objective(&self) -> &Objective {
        &self.objective
    }

    pub fn language_model(&self) -> &LanguageModel {
        &self.lm
    }

    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Updates applied so far, over all epochs.
    pub fn steps_done(&self) -> usize {
        self.steps_done
    }

    /// Fault injection for tests: the gradient of update number `step` (1-based, see
    /// [`steps_done`](Self::steps_done)) is multiplied by `value` (NaN or ±inf), as a numerical
    /// blow-up on the device would leave it, once. The trainer must refuse the update.
    #[doc(hidden)]
    pub fn poison_gradient_at(&mut self, step: usize, value: f32) {
        self.poison_step = Some((step, value));
    }

    /// Where training is, for messages: "step 12 (epoch 1, batch 12 of 20)".
    fn position(&self) -> String {
        format!(
            "step {} (epoch {}, batch {} of {})",
            self.steps_done + 1,
            self.epoch + 1,
            self.next + 1,
            self.queue.len().max(self.next + 1)
        )
    }

    pub fn batches_in_epoch(&self) -> usize {
        self.queue.len()
    }

    /// The weights with the best validation KL so far (the current ones before any validation).
    pub fn best_model(&self) -> MaskedLm {
        match &self.best {
            Some((_, _, model)) => model.clone(),
            None => self.lm.model.valid(),
        }
    }

    fn targets(&self, professions: &[Profession]) -> Vec<(f64, f64)> {
        professions
            .iter()
            .map(|p| match self.config.target {
                Target::Equal => (0.5, 0.5),
                Target::RealWorld => (p.male_share, p.female_share),
            })
            .collect()
    }

    /// Trains on the epoch's next batch; `None` once every batch of the epoch is done (then call
    /// [`validate`](Self::validate)).
    pub async fn step(&mut self) -> Result<Option<StepRecord>> {
        let Some(batch) = self.queue.get(self.next).cloned() else {
            return Ok(None);
        };
        let (record, items) = match batch {
            Batch::Professions(group, members) => {
                let professions: Vec<Profession> =
                    members.iter().map(|&i| self.train[i].clone()).collect();
                (self.train_on(group, &professions).await?, members.len())
            }
            Batch::Sentences(rows) => (self.train_on_text(&rows).await?, rows.len()),
        };
        self.next += 1;
        self.epoch_loss += record.total_loss * items as f64;
        self.epoch_count += items;
        Ok(Some(StepRecord {
            batch: self.next - 1,
            batches: self.queue.len(),
            ..record
        }))
    }

    /// A training step's work on the first `items` professions (WALF) or sentences (CDA) of the
    /// next batch, read back, and nothing kept: the weights, the KL tracker and the place in the
    /// epoch stay as they were. For timing a step on a device before a run starts.
    pub async fn trial_step(&mut self, items: usize) -> Result<()> {
        let Some(batch) = self.queue.get(self.next).cloned() else {
            return Err(Error::Input("the epoch has no batch left to try".into()));
        };
        let drafted = match batch {
            Batch::Professions(group, members) => {
                let professions: Vec<Profession> = members
                    .iter()
                    .take(items.max(1))
                    .map(|&i| self.train[i].clone())
                    .collect();
                self.draft(group, &professions)
            }
            Batch::Sentences(rows) => {
                let rows: Vec<usize> = rows.into_iter().take(items.max(1)).collect();
                self.text_draft(&rows)
            }
        };
        let (draft, grads) = drafted?;
        let check = gradient_check(&self.lm.model, &grads);
        read_all(draft.pending().into_iter().chain(check).collect()).await?;
        Ok(())
    }

    /// One WALF update on `professions`, all of `group`.
    pub async fn train_on(
        &mut self,
        group: Group,
        professions: &[Profession],
    ) -> Result<StepRecord> {
        let (draft, grads) = self.draft(group, professions)?;
        self.update(draft, grads).await
    }

    /// One CDA update on the text's sentences at `rows`.
    pub async fn train_on_text(&mut self, rows: &[usize]) -> Result<StepRecord> {
        let (draft, grads) = self.text_draft(rows)?;
        self.update(draft, grads).await
    }

    /// Applies a step's gradients unless a loss or a gradient is not finite. The step's losses
    /// and the gradients' check come back from the device in one read: on a GPU each read waits
    /// for everything queued before it.
    async fn update(&mut self, draft: Draft, mut grads: GradientsParams) -> Result<StepRecord> {
        if let Some((step, value)) = self.poison_step
            && step == self.steps_done + 1
        {
            self.poison_step = None;
            poison(&self.lm.model, &mut grads, value);
        }
        // A NaN or infinite gradient would spread through AdamW's moments into every weight:
        // refuse the update, so the weights stay as the last good step left them.
        let check = gradient_check(&self.lm.model, &grads);
        let has_check = check.is_some();
        let mut values = read_all(draft.pending().into_iter().chain(check).collect()).await?;
        let check = if has_check { values.pop() } else { None };
        let on = draft.on.clone();
        let record = self.finish(draft, &values)?;
        if check.is_some_and(|v| !v.is_finite()) {
            return Err(Error::Training(format!(
                "a gradient became NaN or infinite at {} on {on}; the update was not applied; {}",
                self.position(),
                self.best_note()
            )));
        }
        self.apply(grads);
        Ok(record)
    }

    /// A step's record from the values of its draft's pending tensors, in order, and the KL
    /// tracker fed the step's KL (real-world target); an error if a loss is not finite.
    fn finish(&mut self, draft: Draft, values: &[f32]) -> Result<StepRecord> {
        let Draft {
            mut record,
            kl,
            tracked,
            mlm_sums,
            on,
        } = draft;
        let mut values = values.iter().map(|&v| v as f64);
        if kl.is_some() {
            let kl = values.next().unwrap_or(f64::NAN);
            self.ensure_finite(kl, "KL", &on)?;
            record.kl = Some(kl);
            record.total_loss = kl;
            if let Some((group, professions)) = tracked {
                // the tracker sees the value only, as the scale the draft computed from it
                let stats = self.tracker.update(group, kl, professions);
                let lambda = adjust_lambda(group, stats);
                let normaliser = stats.mean + alpha(group);
                let normalized = kl / normaliser;
                record.normalized_loss = Some(normalized);
                record.lambda = Some(lambda);
                record.scale = Some(lambda / normaliser);
                record.total_loss = lambda * normalized;
                record.tracker = self.tracker.groups.clone();
            }
        }
        if !mlm_sums.is_empty() {
            let tokens = record.mlm_tokens.unwrap_or(0).max(1) as f64;
            let mlm = values.take(mlm_sums.len()).sum::<f64>() / tokens;
            self.ensure_finite(mlm, "masked-LM loss", &on)?;
            record.mlm_loss = Some(mlm);
            record.total_loss = match (record.lambda, record.normalized_loss) {
                (Some(lambda), Some(normalized)) => lambda * normalized + self.config.gamma * mlm,
                _ => mlm,
            };
        }
        Ok(record)
    }

    /// What the user keeps after a failure.
    fn best_note(&self) -> String {
        match &self.best {
            Some((kl, epoch, _)) => format!(
                "the best weights so far (epoch {}, valid KL {kl:.5}) are kept",
                epoch + 1
            ),
            None => "no epoch had finished, so the weights before tuning are kept".into(),
        }
    }

    /// Applies gradients with AdamW.
    pub fn apply(&mut self, grads: GradientsParams) {
        self.lm.model = self
            .optimizer
            .step(self.config.lr, self.lm.model.clone(), grads);
        self.steps_done += 1;
    }

    /// The losses of a WALF step on `professions` (all of `group`) and the gradients of the
    /// total loss; updates the KL tracker but not the weights.
    pub async fn gradients(
        &mut self,
        group: Group,
        professions: &[Profession],
    ) -> Result<(StepRecord, GradientsParams)> {
        let (draft, grads) = self.draft(group, professions)?;
        let values = read_all(draft.pending()).await?;
        Ok((self.finish(draft, &values)?, grads))
    }

    /// [`gradients`](Self::gradients) with the losses still on the device, read back by
    /// [`finish`](Self::finish)'s caller in one go. Nothing of the trainer changes: the KL
    /// tracker is fed the step's KL in [`finish`](Self::finish).
    fn draft(&self, group: Group, professions: &[Profession]) -> Result<(Draft, GradientsParams)> {
        let config = self.config.clone();
        let input = MeasureInput {
            professions,
            templates: &self.templates,
            phrases: &self.phrases,
        };
        let lm = &self.lm;
        let mut plan = SentencePlan::new(&lm.tokenizer, input, lm.max_len())?;
        if config.dropout_per_use && lm.model.has_dropout() {
            // every use its own dropout mask, as the paper's one pass per sentence
            plan = plan.unshared();
        }
        let distribution =
            profession_distribution(&lm.model, &lm.tokenizer, &plan, input, config.forward_batch);
        let kl = mean_kl(distribution, &self.targets(professions));
        let names: Vec<String> = professions.iter().map(|p| p.name.clone()).collect();
        let on = names.join(", ");

        let mut accumulator = GradientsAccumulator::new();
        let mut record = StepRecord {
            epoch: self.epoch,
            batch: 0,
            batches: 0,
            group: Some(group),
            professions: names,
            kl: None,
            normalized_loss: None,
            lambda: None,
            scale: None,
            mlm_loss: None,
            mlm_tokens: None,
            mlm_rows: None,
            total_loss: f64::NAN,
            tracker: BTreeMap::new(),
        };
        let pending_kl = kl.clone().detach();
        let mut tracked = None;
        let mut mlm_sums = Vec::new();
        match config.target {
            Target::Equal => {
                accumulator.accumulate(
                    &lm.model,
                    GradientsParams::from_grads(kl.backward(), &lm.model),
                );
            }
            Target::RealWorld => {
                // λ and the normaliser are constants of the step, from the KL's value. They are
                // computed where the KL is, so the step reads nothing back before its backward
                // passes (on a GPU a read waits for everything queued): the KL comes back with
                // the masked-LM sums and feeds the tracker in `finish`.
                tracked = Some((group, professions.len()));
                let scale =
                    self.tracker
                        .scale_on_device(group, kl.clone().detach(), professions.len());
                let weighted = kl.mul(scale);
                accumulator.accumulate(
                    &lm.model,
                    GradientsParams::from_grads(weighted.backward(), &lm.model),
                );

                let sentences: Vec<(usize, String)> = plan
                    .instances
                    .iter()
                    .map(|i| (i.profession, i.sentence.clone()))
                    .collect();
                // Drawn from the seed and the step, so a resumed run draws the same positions.
                let mut rng = SplitMix64::new(
                    config.seed ^ (self.steps_done as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F),
                );
                let sampling = MlmSampling {
                    positions: config.mlm_positions,
                    sentences: config.mlm_sentences,
                };
                let MlmRows { mut rows, tokens } =
                    mlm_rows(&lm.tokenizer, &sentences, lm.max_len(), sampling, &mut rng)?;
                // rows of similar length together: less padding in each chunk
                rows.sort_by_key(|r| r.ids.len());
                for chunk in rows.chunks(config.mlm_chunk) {
                    let sum = mlm_loss_sum(&lm.model, chunk, lm.tokenizer.pad_id());
                    mlm_sums.push(sum.clone().detach());
                    let part = sum.mul_scalar(config.gamma / tokens as f64);
                    accumulator.accumulate(
                        &lm.model,
                        GradientsParams::from_grads(part.backward(), &lm.model),
                    );
                }
                record.mlm_tokens = Some(tokens);
                record.mlm_rows = Some(rows.len());
            }
        }
        let draft = Draft {
            record,
            kl: Some(pending_kl),
            tracked,
            mlm_sums,
            on,
        };
        Ok((draft, accumulator.grads()))
    }

    /// The masked-LM loss of a CDA step on the text's sentences at `rows` (mean over the masked
    /// tokens) and its gradients; the weights are not updated.
    pub async fn text_gradients(
        &mut self,
        rows: &[usize],
    ) -> Result<(StepRecord, GradientsParams)> {
        let (draft, grads) = self.text_draft(rows)?;
        let values = read_all(draft.pending()).await?;
        Ok((self.finish(draft, &values)?, grads))
    }

    /// [`text_gradients`](Self::text_gradients) with the loss still on the device.
    fn text_draft(&self, rows: &[usize]) -> Result<(Draft, GradientsParams)> {
        let Objective::Cda(text) = &self.objective else {
            return Err(Error::Input(
                "a WALF run has no CDA text to train on".into(),
            ));
        };
        let lm = &self.lm;
        // Drawn from the seed and the step, so a resumed run masks the same tokens.
        let mut rng = SplitMix64::new(
            self.config.seed ^ (self.steps_done as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F),
        );
        // sentences of similar length together: less padding in each chunk
        let mut rows = rows.to_vec();
        rows.sort_by_key(|&r| (text.sequences[r].len(), r));
        let batch = text.masked(&rows, &lm.tokenizer, &mut rng);
        let tokens = batch.labels.len();
        let mut accumulator = GradientsAccumulator::new();
        let mut mlm_sums = Vec::new();
        for chunk in row_chunks(&batch, self.config.mlm_chunk) {
            let part = masked_lm_loss_sum(&lm.model, &chunk);
            mlm_sums.push(part.clone().detach());
            accumulator.accumulate(
                &lm.model,
                GradientsParams::from_grads(
                    part.mul_scalar(1.0 / tokens.max(1) as f64).backward(),
                    &lm.model,
                ),
            );
        }
        let on = format!("{} sentences of the CDA text", rows.len());
        let record = StepRecord {
            epoch: self.epoch,
            batch: 0,
            batches: 0,
            group: None,
            professions: Vec::new(),
            kl: None,
            normalized_loss: None,
            lambda: None,
            scale: None,
            mlm_loss: None,
            mlm_tokens: Some(tokens),
            mlm_rows: Some(rows.len()),
            total_loss: f64::NAN,
            tracker: BTreeMap::new(),
        };
        let draft = Draft {
            record,
            kl: None,
            tracked: None,
            mlm_sums,
            on,
        };
        Ok((draft, accumulator.grads()))
    }

    fn ensure_finite(&self, value: f64, what: &str, on: &str) -> Result<()> {
        if value.is_finite() {
            return Ok(());
        }
        Err(Error::Training(format!(
            "the {what} became {value} at {} on {on}; {}",
            self.position(),
            self.best_note()
        )))
    }

    /// Mean KL of the valid professions against the target, with the current weights.
    pub async fn valid_kl(&self) -> Result<f64> {
        Ok(self.validation().await?.kl)
    }

    /// The valid split measured with the current weights: its KL against the target, overall
    /// and per group, and each profession's distribution.
    pub async fn validation(&self) -> Result<Validation> {
        let input = MeasureInput {
            professions: &self.valid,
            templates: &self.templates,
            phrases: &self.phrases,
        };
        let settings = ProbeSettings {
            batch_size: self.config.forward_batch,
        };
        let result = self
            .lm
            .probe_weights(&self.lm.model.valid(), input, settings, &mut |_| {})
            .await?;
        let report = bias_report(&result.professions, self.config.target);
        let kl = report
            .summary
            .first()
            .map(|s| s.kl_mean)
            .unwrap_or(f64::NAN);
        let kl_by_group = report
            .summary
            .iter()
            .skip(1)
            .map(|s| (s.group.clone(), s.kl_mean))
            .collect();
        Ok(Validation {
            kl,
            kl_by_group,
            professions: result.professions,
        })
    }

    /// Ends the epoch: validation, best weights, early stopping; then starts the next epoch.
    pub async fn validate(&mut self) -> Result<EpochRecord> {
        let Validation {
            kl: valid_kl,
            kl_by_group: valid_kl_by_group,
            professions: valid_professions,
        } = self.validation().await?;
        if !valid_kl.is_finite() {
            return Err(Error::Training(format!(
                "the validation KL became {valid_kl} after epoch {}; {}",
                self.epoch + 1,
                self.best_note()
            )));
        }
        let best_so_far = self.best.as_ref().map(|b| b.0).unwrap_or(f64::INFINITY);
        let improved = best_so_far - valid_kl >= self.config.min_delta;
        if improved {
            self.best = Some((valid_kl, self.epoch, self.lm.model.valid()));
            self.stale_epochs = 0;
        } else {
            self.stale_epochs += 1;
        }
        let (best_valid_kl, best_epoch) = self
            .best
            .as_ref()
            .map(|b| (b.0, b.1))
            .unwrap_or((valid_kl, self.epoch));
        let record = EpochRecord {
            epoch: self.epoch,
            train_loss: self.epoch_loss / self.epoch_count.max(1) as f64,
            valid_kl,
            valid_kl_by_group,
            valid_professions,
            improved,
            best_valid_kl,
            best_epoch,
            finished: self.stale_epochs >= self.config.patience
                || self.epoch + 1 >= self.config.max_epochs,
        };
        self.epoch += 1;
        self.start_epoch();
        Ok(record)
    }
}

/// A masked batch cut into batches of at most `rows` sentences, so that each forward pass and
/// its autodiff graph stay small.
fn row_chunks(batch: &MaskedBatch, rows: usize) -> Vec<MaskedBatch> {
    let rows = rows.max(1);
    (0..batch.batch.ids.len())
        .step_by(rows)
        .map(|start| {
            let end = (start + rows).min(batch.batch.ids.len());
            let (positions, labels) = batch
                .positions
                .iter()
                .zip(&batch.labels)
                .filter(|((row, _), _)| (start..end).contains(row))
                .map(|(&(row, p), &label)| ((row - start, p), label))
                .unzip();
            MaskedBatch {
                batch: TokenBatch {
                    ids: batch.batch.ids[start..end].to_vec(),
                    pad_id: batch.batch.pad_id,
                },
                positions,
                labels,
            }
        })
        .collect()
}

/// One value that is finite exactly when every gradient is (NaN and ±inf survive `× 0` and a
/// sum): one read-back per step instead of one per tensor. `None` when nothing has a gradient.
fn gradient_check(model: &MaskedLm, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut ids = ParamIds(Vec::new());
    model.visit(&mut ids);
    let parts: Vec<Tensor<1>> = ids
        .0
        .iter()
        .filter_map(|&(id, rank)| {
            fn zero_sum<const D: usize>(g: Option<Tensor<D>>) -> Option<Tensor<1>> {
                g.map(|g| g.mul_scalar(0.0).sum())
            }
            match rank {
                1 => zero_sum(grads.get::<1>(id)),
                2 => zero_sum(grads.get::<2>(id)),
                3 => zero_sum(grads.get::<3>(id)),
                _ => None,
            }
        })
        .collect();
    (!parts.is_empty()).then(|| Tensor::cat(parts, 0).sum())
}

/// Multiplies the first parameter's gradient by `value` (fault injection).
fn poison(model: &MaskedLm, grads: &mut GradientsParams, value: f32) {
    let mut ids = ParamIds(Vec::new());
    model.visit(&mut ids);
    for (id, rank) in ids.0 {
        fn scale<const D: usize>(grads: &mut GradientsParams, id: ParamId, value: f32) -> bool {
            match grads.remove::<D>(id) {
                Some(g) => {
                    grads.register(id, g.mul_scalar(value));
                    true
                }
                None => false,
            }
        }
        let done = match rank {
            1 => scale::<1>(grads, id, value),
            2 => scale::<2>(grads, id, value),
            3 => scale::<3>(grads, id, value),
            _ => false,
        };
        if done {
            return;
        }
    }
}

/// A step before its losses are read back (see [`WalfTrainer::update`]).
struct Draft {
    record: StepRecord,
    /// The step's KL (WALF).
    kl: Option<Tensor<1>>,
    /// The real-world target's group and number of professions: the KL tracker is fed the KL
    /// once it is read.
    tracked: Option<(Group, usize)>,
    /// The masked-LM loss's sums, one per chunk, over `record.mlm_tokens` tokens.
    mlm_sums: Vec<Tensor<1>>,
    /// What the step trained on, for messages.
    on: String,
}

impl Draft {
    /// The values still on the device, in the order [`WalfTrainer::finish`] takes them.
    fn pending(&self) -> Vec<Tensor<1>> {
        self.kl.iter().chain(&self.mlm_sums).cloned().collect()
    }
}

/// Scalars `[1]` read back in one go.
async fn read_all(tensors: Vec<Tensor<1>>) -> Result<Vec<f32>> {
    if tensors.is_empty() {
        return Ok(Vec::new());
    }
    read_f32(Tensor::cat(tensors, 0)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_one_group_and_cover_every_profession_once() {
        let bench = Benchmark::bundled();
        let train = bench.professions_of(Split::Train);
        let mut s = SplitMix64::new(7);
        let batches = group_batches(&train, 8, Some(&mut s));
        let mut seen: Vec<usize> = batches.iter().flat_map(|(_, b)| b.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..train.len()).collect::<Vec<_>>());
        for (group, members) in &batches {
            assert!(members.len() <= 8 && members.iter().all(|&i| train[i].group == *group));
        }
        // 59, 58 and 29 professions: 8 + 8 + 4 batches
        assert_eq!(batches.len(), 20);
        let again = group_batches(&train, 8, Some(&mut SplitMix64::new(7)));
        assert_eq!(batches, again, "same seed, same batches");
        let unshuffled = group_batches(&train, 3, None);
        assert_eq!(unshuffled[0], (Group::MaleDominated, vec![0, 1, 2]));
    }
}
