//! The page's state as one plain value, and the functions that change it: the engine's replies
//! ([`Page::on_reply`]) and what the user asks for (load, probe, tune, pause, cancel). Each
//! returns what the page must do besides ([`Effect`]: requests to send, files to save, a
//! worker to restart), so the page's whole behaviour is tested natively with recorded reply
//! sequences, and the Leptos components only draw this state and call these functions.
//!
//! Every request names a job; a reply changes the state of its own job only, so a refused
//! request or a late answer never touches a run it does not belong to.

use std::collections::HashMap;

use crate::bias::Target;
use crate::data::Split;
use crate::lm_loss::LossRule;
use crate::protocol::*;
use crate::share::{CurvePoint, SharedResult, SharedTuning};

use super::{LiveValidation, live_validation, shared_result, shared_tuning};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tab {
    Probe,
    Fill,
    Tune,
    Share,
}

#[derive(Clone, PartialEq, Debug)]
pub enum ModelStatus {
    Loading(String),
    Ready {
        name: String,
        architecture: String,
        parameters: usize,
        mask_token: String,
    },
    Failed(String),
    None,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum JobKind {
    Load,
    Probe { after: bool },
    Fill,
    Tune,
    LmLoss,
    Export,
}

/// The job the page's progress bar shows.
#[derive(Clone, PartialEq, Debug)]
pub struct JobStatus {
    pub job: u64,
    pub kind: JobKind,
    pub what: String,
    pub done: u64,
    pub total: u64,
}

#[derive(Clone, PartialEq, Debug)]
pub enum TuneStatus {
    Idle,
    Running,
    /// Asked to pause; the step under way ends first.
    Pausing,
    Paused,
    Finished(String),
}

#[derive(Clone, PartialEq, Debug)]
pub struct Notice {
    pub error: bool,
    pub text: String,
    /// The GPU failed: offer to go on with the CPU.
    pub offer_cpu: bool,
}

impl Notice {
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            error: true,
            text: text.into(),
            offer_cpu: false,
        }
    }

    pub fn info(text: impl Into<String>) -> Self {
        Self {
            error: false,
            ..Self::error(text)
        }
    }
}

/// What the page does besides changing its state, in order.
#[derive(Clone, PartialEq, Debug)]
pub enum Effect {
    /// Send this request to the engine. A load of local files takes the files last picked.
    /// (Boxed: a run's settings make a request several times the size of the other effects.)
    Send(Box<Request>),
    /// Save the files that came with the reply, in their order, under these names.
    Download(Vec<String>),
    /// End the engine's worker and start a fresh one; everything on the page stays.
    RestartEngine,
}

/// A text file the user chose, by name.
#[derive(Clone, PartialEq, Debug)]
pub struct ChosenText {
    pub name: String,
    pub text: String,
}

#[derive(Clone, PartialEq, Debug)]
pub struct Page {
    pub model: ModelStatus,
    /// The loaded model's files' fingerprint, which results carry.
    pub model_fingerprint: Option<String>,
    /// The model last asked for, loaded again after the engine restarts.
    pub source: Option<ModelSource>,
    pub backend: BackendChoice,
    pub backend_info: Option<BackendInfo>,
    pub job: Option<JobStatus>,
    pub split: Split,
    pub target: Target,
    pub before: Option<ProbeReply>,
    pub after: Option<ProbeReply>,
    /// Measurements answered so far: the timing line carries the count, so that a new
    /// measurement can be told from the last one even when its numbers are the same.
    pub measurements: u64,
    /// A result opened from a link, shown until the page measures one itself.
    pub shared: Option<SharedResult>,
    pub fills: Option<Vec<MaskFill>>,
    pub tune: TuneStatus,
    pub tune_settings: TuneSettings,
    /// The settings of the run the curves belong to.
    pub tune_run: Option<TuneSettings>,
    /// The job of that run: pause, resume and stop name it, and only its replies draw curves.
    pub tune_job: Option<u64>,
    pub steps: Vec<TuneStepReply>,
    pub epochs: Vec<TuneEpochReply>,
    /// The valid split before the run: the live chart's "before" and the valid-KL curve's start.
    pub baseline: Option<TuneBaselineReply>,
    /// Before, after, masked tokens and the rule scored by.
    pub lm_loss: Option<(f64, f64, usize, LossRule)>,
    /// Why the last fill-mask failed, shown beside its input (a later success clears it).
    pub fill_error: Option<String>,
    /// The same for the masked-LM loss on held-out text.
    pub lm_loss_error: Option<String>,
    /// Why the last measurement failed (a malformed edited benchmark, say), shown above the
    /// chart it did not replace.
    pub probe_error: Option<String>,
    pub edits: BenchmarkEdits,
    /// The general text a CDA run trains on, as the user chose it.
    pub cda_text: Option<ChosenText>,
    pub notice: Option<Notice>,
    pub tab: Tab,
    /// A WALF run the worker keeps in the browser's storage (from an earlier visit, or one that
    /// failed), which the page offers to go on with.
    pub saved_run: Option<SavedRun>,
    /// Epochs of the running job kept in the browser's storage so far.
    pub kept_epochs: Option<usize>,
    /// Going on with the kept run waits for its model to load.
    pub resume_after_load: bool,
    /// A split was chosen while another job held the engine: it is measured when that job
    /// ends, so that the chart comes to show what the controls say.
    measure_when_free: bool,
    /// The load whose end the model panel waits for.
    load_job: Option<u64>,
    jobs: HashMap<u64, JobKind>,
    next_job: u64,
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

impl Page {
    pub fn new() -> Self {
        Self {
            model: ModelStatus::None,
            model_fingerprint: None,
            source: None,
            backend: BackendChoice::Auto,
            backend_info: None,
            job: None,
            split: Split::Test,
            target: Target::Equal,
            before: None,
            after: None,
            measurements: 0,
            shared: None,
            fills: None,
            tune: TuneStatus::Idle,
            tune_settings: TuneSettings::paper(Target::Equal),
            tune_run: None,
            tune_job: None,
            steps: Vec::new(),
            epochs: Vec::new(),
            baseline: None,
            lm_loss: None,
            fill_error: None,
            lm_loss_error: None,
            probe_error: None,
            edits: BenchmarkEdits::default(),
            cda_text: None,
            notice: None,
            tab: Tab::Probe,
            saved_run: None,
            kept_epochs: None,
            resume_after_load: false,
            measure_when_free: false,
            load_job: None,
            jobs: HashMap::new(),
            next_job: 0,
        }
    }

    fn next_job(&mut self) -> u64 {
        self.next_job += 1;
        self.next_job
    }

    /// A job the progress bar shows: its request, with the job's id.
    pub fn start_job(&mut self, kind: JobKind, make: impl FnOnce(u64) -> Request) -> Vec<Effect> {
        let job = self.next_job();
        self.jobs.insert(job, kind);
        self.job = Some(JobStatus {
            job,
            kind,
            what: "starting".into(),
            done: 0,
            total: 0,
        });
        vec![Effect::Send(Box::new(make(job)))]
    }

    /// A request that no progress bar shows (asking for the kept run, say).
    fn request(&mut self, make: impl FnOnce(u64) -> Request) -> Effect {
        let job = self.next_job();
        Effect::Send(Box::new(make(job)))
    }

    /// The progress bar's job has ended (or, with `None`, the engine's every job).
    fn end_job(&mut self, job: Option<u64>) {
        if job.is_none() || self.job.as_ref().map(|j| j.job) == job {
            self.job = None;
        }
    }

    fn kind_of(&self, job: u64) -> Option<JobKind> {
        self.jobs.get(&job).copied()
    }

    pub fn ready(&self) -> bool {
        matches!(self.model, ModelStatus::Ready { .. })
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice::error(text));
    }

    /// A WALF run is going (or paused): the model cannot change under it.
    pub fn tuning_now(&self) -> bool {
        matches!(
            self.tune,
            TuneStatus::Running | TuneStatus::Pausing | TuneStatus::Paused
        )
    }

    /// The model's name as results give it.
    pub fn model_name(&self) -> String {
        match &self.model {
            ModelStatus::Ready { name, .. } => name.clone(),
            _ => "model".into(),
        }
    }

    pub fn load(&mut self, source: ModelSource) -> Vec<Effect> {
        if self.tuning_now() {
            // The worker would refuse it; the run and its model stay as they are.
            self.error("a tuning run is going: stop it before loading another model");
            return Vec::new();
        }
        self.source = Some(source.clone());
        self.model = ModelStatus::Loading("starting".into());
        let backend = self.backend;
        let effects = self.start_job(JobKind::Load, |job| Request::Load {
            job,
            source,
            backend,
        });
        self.load_job = self.job.as_ref().map(|j| j.job);
        if let Some(j) = &mut self.job {
            j.what = "loading the model".into();
        }
        effects
    }

    /// The last model again (after a restart of the engine, or on another backend).
    pub fn reload(&mut self) -> Vec<Effect> {
        match self.source.clone() {
            Some(source) => self.load(source),
            None => Vec::new(),
        }
    }

    /// The GPU failed: go on with the CPU, the results so far kept.
    pub fn continue_on_cpu(&mut self) -> Vec<Effect> {
        self.notice = None;
        self.backend = BackendChoice::Cpu;
        self.reload()
    }

    /// Shows `split`: measured at once when the engine is free, when the job under way ends
    /// otherwise, and at the end of a WALF run (whose last probe measures the chosen split).
    pub fn choose_split(&mut self, split: Split) -> Vec<Effect> {
        self.split = split;
        if !self.ready() || self.tuning_now() {
            // a load measures the chosen split when it ends, and so does a run
            return Vec::new();
        }
        if self.job.is_some() {
            self.measure_when_free = true;
            return Vec::new();
        }
        self.probe(false)
    }

    pub fn probe(&mut self, after: bool) -> Vec<Effect> {
        // whatever split was waiting to be measured is the one this probe measures
        self.measure_when_free = false;
        let split = self.split;
        let benchmark = self.edits.clone();
        self.start_job(JobKind::Probe { after }, |job| Request::Probe {
            job,
            split,
            benchmark,
        })
    }

    /// Stops the running job: a WALF run after its step (its best weights kept), anything
    /// else by restarting the engine, whose model then loads again; results stay.
    pub fn cancel(&mut self) -> Vec<Effect> {
        if self.job.as_ref().map(|j| j.kind) == Some(JobKind::Tune) {
            return self.stop_tuning();
        }
        self.job = None;
        self.resume_after_load = false;
        self.notice = Some(Notice::info("cancelled; the model is loaded again"));
        let mut effects = vec![Effect::RestartEngine];
        effects.extend(self.reload());
        effects
    }

    /// The request that starts a WALF run with the page's settings.
    pub fn start_tuning(&mut self) -> Vec<Effect> {
        let settings = self.tune_settings.clone();
        let cda_text = match (settings.method, &self.cda_text) {
            (TuneMethod::Walf, _) => None,
            (TuneMethod::Cda, Some(chosen)) => Some(chosen.text.clone()),
            (TuneMethod::Cda, None) => {
                self.tune = TuneStatus::Finished(
                    "CDA fine-tunes on general text: choose a plain-text file first (one \
                     sentence per line)"
                        .into(),
                );
                return Vec::new();
            }
        };
        let benchmark = self.edits.clone();
        self.steps.clear();
        self.epochs.clear();
        self.baseline = None;
        self.after = None;
        self.lm_loss = None;
        self.tune_run = Some(settings.clone());
        self.tune = TuneStatus::Running;
        // The worker replaces a kept run with the new one.
        self.saved_run = None;
        self.kept_epochs = None;
        let effects = self.start_job(JobKind::Tune, |job| Request::TuneStart {
            job,
            settings,
            benchmark,
            cda_text,
        });
        self.tune_job = self.job.as_ref().map(|j| j.job);
        effects
    }

    pub fn pause_tuning(&mut self) -> Vec<Effect> {
        match self.tune_job {
            Some(job) if self.tune == TuneStatus::Running => {
                self.tune = TuneStatus::Pausing;
                vec![Effect::Send(Box::new(Request::TunePause { job }))]
            }
            _ => Vec::new(),
        }
    }

    pub fn resume_tuning(&mut self) -> Vec<Effect> {
        match self.tune_job {
            Some(job) if matches!(self.tune, TuneStatus::Paused | TuneStatus::Pausing) => {
                self.tune = TuneStatus::Running;
                vec![Effect::Send(Box::new(Request::TuneResume { job }))]
            }
            _ => Vec::new(),
        }
    }

    pub fn stop_tuning(&mut self) -> Vec<Effect> {
        match self.tune_job {
            Some(job) if self.tuning_now() => {
                vec![Effect::Send(Box::new(Request::TuneStop { job }))]
            }
            _ => Vec::new(),
        }
    }

    /// Goes on with the run kept in the browser's storage: its model first (a Hub or bundled
    /// model loads by itself; local files must be picked again), then the run from its last
    /// epoch, its curves so far on screen.
    pub fn resume_saved_run(&mut self) -> Vec<Effect> {
        let Some(run) = self.saved_run.clone() else {
            return Vec::new();
        };
        let loaded = match &self.model {
            ModelStatus::Ready { name, .. } => *name == run.model,
            ModelStatus::Loading(_) => {
                // Decided when the model that is loading is there.
                self.resume_after_load = true;
                return Vec::new();
            }
            _ => false,
        };
        if !loaded {
            return match run.source {
                ModelSource::Local { name } => {
                    self.error(format!(
                        "the kept run was made with local files ({name}): pick the same three \
                         files, then go on with the run"
                    ));
                    Vec::new()
                }
                source => {
                    let effects = self.load(source);
                    self.resume_after_load = !effects.is_empty();
                    effects
                }
            };
        }
        self.tune_settings = run.settings.clone();
        self.tune_run = Some(run.settings);
        self.edits = run.benchmark;
        self.steps = run.steps;
        self.epochs = run.epochs;
        self.baseline = run.baseline;
        self.after = None;
        self.lm_loss = None;
        self.kept_epochs = Some(run.epochs_done);
        self.tune = TuneStatus::Running;
        self.tab = Tab::Tune;
        let effects = self.start_job(JobKind::Tune, |job| Request::TuneRestore { job });
        self.tune_job = self.job.as_ref().map(|j| j.job);
        effects
    }

    pub fn discard_saved_run(&mut self) -> Vec<Effect> {
        self.saved_run = None;
        vec![self.request(|job| Request::DiscardSavedRun { job })]
    }

    /// Shows a result opened from a link, its split, target and run settings in the controls.
    pub fn open_link(&mut self, result: SharedResult) {
        if let Some(split) = Split::parse(&result.split) {
            self.split = split;
        }
        if let Some(t) = &result.tuning {
            self.target = t.target;
            // the Tune tab's controls show the run's settings
            let mut settings = TuneSettings {
                method: t.method,
                lr: t.lr,
                gamma: t.gamma,
                beta: t.beta,
                batch_size: t.batch_size as usize,
                ..TuneSettings::paper(t.target)
            };
            if let Some(run) = &t.run {
                settings.max_epochs = run.max_epochs as usize;
                settings.patience = run.patience as usize;
                settings.dropout = run.dropout;
                settings.mlm_positions = run.mlm_positions.map(|n| n as usize);
                settings.mlm_sentences = run.mlm_sentences.map(|n| n as usize);
                settings.max_steps = run.max_steps.map(|n| n as usize);
                settings.weight_decay = run.weight_decay.unwrap_or(settings.weight_decay);
                settings.seed = run.seed.unwrap_or(settings.seed);
                settings.min_delta = run.min_delta;
            }
            self.tune_settings = settings;
        }
        self.tab = Tab::Probe;
        self.shared = Some(result);
    }

    /// The result the probe view and the share link show.
    pub fn result(&self) -> Option<SharedResult> {
        self.result_with(true)
    }

    /// What the probe chart draws: the result without the training curves, so that a training
    /// step does not redraw the chart (and lose its focused point).
    pub fn chart_result(&self) -> Option<SharedResult> {
        self.result_with(false)
    }

    fn result_with(&self, curve: bool) -> Option<SharedResult> {
        let before = self.before.as_ref()?;
        let tuning = self.tune_run.as_ref().map(|s| self.tuning(s, curve));
        let mut result = shared_result(&self.model_name(), before, self.after.as_ref(), tuning);
        result.edited_benchmark = self.edits != BenchmarkEdits::default();
        result.model_fingerprint = self.model_fingerprint.clone();
        Some(result)
    }

    /// While a run goes on (or is paused): the valid split before it and after its last
    /// validated epoch, with that epoch (None before the first one ends).
    pub fn live(&self) -> Option<LiveValidation> {
        if !self.tuning_now() {
            return None;
        }
        let settings = self.tune_run.as_ref()?;
        let baseline = self.baseline.as_ref()?;
        let tuning = self.tuning(settings, false);
        Some(live_validation(
            &self.model_name(),
            baseline,
            &self.epochs,
            tuning,
        ))
    }

    fn tuning(&self, s: &TuneSettings, curve: bool) -> SharedTuning {
        let curve = if curve { self.curve() } else { Vec::new() };
        shared_tuning(s, self.epochs.len() as u32, curve)
    }

    /// The curves as a link carries them: one point per step, the epoch's valid KL on its
    /// last step.
    fn curve(&self) -> Vec<CurvePoint> {
        self.steps
            .iter()
            .map(|s| CurvePoint {
                step: s.step as u32,
                kl: s.kl,
                mlm_loss: s.mlm_loss,
                valid_kl: (s.batch + 1 == s.batches)
                    .then(|| self.epochs.iter().find(|e| e.epoch == s.epoch))
                    .flatten()
                    .map(|e| e.valid_kl),
            })
            .collect()
    }

    /// Applies one reply of the engine.
    pub fn on_reply(&mut self, reply: Reply) -> Vec<Effect> {
        let mut effects = Vec::new();
        match reply {
            // A fresh worker: is a run kept from before?
            Reply::Ready => effects.push(self.request(|job| Request::SavedRun { job })),
            Reply::SavedRun { run } => self.saved_run = run.map(|r| *r),
            Reply::Warning { message } => self.notice = Some(Notice::info(message)),
            Reply::Backend { backend } => self.backend_info = Some(backend),
            Reply::TuneSaved { job, epochs_done } => {
                if Some(job) == self.tune_job {
                    self.kept_epochs = Some(epochs_done);
                }
            }
            Reply::Progress {
                job,
                what,
                done,
                total,
            } => {
                // Progress no request names is the load's (the model's files).
                let job = job.or(self.load_job);
                let kind = job.and_then(|j| self.kind_of(j)).unwrap_or(JobKind::Load);
                if kind == JobKind::Load && job == self.load_job {
                    self.model = ModelStatus::Loading(what.clone());
                }
                if let Some(job) = job {
                    self.job = Some(JobStatus {
                        job,
                        kind,
                        what,
                        done,
                        total,
                    });
                }
            }
            Reply::Loaded {
                name,
                architecture,
                parameters,
                vocab_size: _,
                mask_token,
                backend,
                downloaded: _,
                fingerprint,
            } => {
                self.model_fingerprint = Some(fingerprint).filter(|f| !f.is_empty());
                self.model = ModelStatus::Ready {
                    name,
                    architecture,
                    parameters,
                    mask_token,
                };
                self.backend_info = Some(backend);
                self.end_job(self.load_job);
                self.load_job = None;
                self.before = None;
                self.after = None;
                self.fills = None;
                self.steps.clear();
                self.epochs.clear();
                self.baseline = None;
                self.tune = TuneStatus::Idle;
                self.tune_run = None;
                self.tune_job = None;
                self.lm_loss = None;
                // A link's result stays on screen until the user measures again.
                if self.shared.is_none() {
                    effects.extend(self.probe(false));
                }
                if self.resume_after_load {
                    self.resume_after_load = false;
                    effects.extend(self.resume_saved_run());
                }
            }
            Reply::Probed { job, result } => {
                self.end_job(Some(job));
                self.measurements += 1;
                self.probe_error = None;
                self.shared = None;
                // After-values stand beside before-values of the same split only.
                let same_split = self.before.as_ref().map(|b| b.split) == Some(result.split);
                match self.kind_of(job) {
                    Some(JobKind::Probe { after: true }) if same_split => {
                        self.after = Some(result);
                    }
                    _ => {
                        self.before = Some(result);
                        self.after = None;
                    }
                }
            }
            Reply::Filled { job, masks } => {
                self.end_job(Some(job));
                self.fill_error = None;
                self.fills = Some(masks);
            }
            Reply::TuneStep { job, step } if Some(job) == self.tune_job => {
                self.job = Some(JobStatus {
                    job,
                    kind: JobKind::Tune,
                    what: format!(
                        "epoch {}, batch {} of {}",
                        step.epoch + 1,
                        step.batch + 1,
                        step.batches
                    ),
                    done: (step.batch + 1) as u64,
                    total: step.batches as u64,
                });
                self.steps.push(step);
            }
            Reply::TuneBaseline { job, baseline } if Some(job) == self.tune_job => {
                self.baseline = Some(baseline)
            }
            Reply::TuneEpoch { job, epoch } if Some(job) == self.tune_job => {
                self.epochs.push(epoch)
            }
            Reply::TunePaused { job, paused } if Some(job) == self.tune_job => {
                self.tune = if paused {
                    TuneStatus::Paused
                } else {
                    TuneStatus::Running
                }
            }
            Reply::TuneFinished {
                job,
                reason,
                steps: _,
            } if Some(job) == self.tune_job => {
                self.tune = TuneStatus::Finished(reason);
                self.end_job(Some(job));
                // The worker keeps a run only while it is unfinished.
                self.saved_run = None;
                self.kept_epochs = None;
                // The tuned model's distribution, beside the one before.
                effects.extend(self.probe(true));
            }
            // The replies of a run that is no longer the page's.
            Reply::TuneStep { .. }
            | Reply::TuneBaseline { .. }
            | Reply::TuneEpoch { .. }
            | Reply::TunePaused { .. }
            | Reply::TuneFinished { .. } => {}
            Reply::LmLoss {
                job,
                before,
                after,
                tokens,
                rule,
            } => {
                self.end_job(Some(job));
                self.lm_loss_error = None;
                self.lm_loss = Some((before, after, tokens, rule));
            }
            Reply::Exported { job, name } => {
                self.end_job(Some(job));
                let stem = super::file_stem(&name);
                effects.push(Effect::Download(
                    crate::hub::MODEL_FILES
                        .iter()
                        .map(|file| format!("{stem}-walf-{file}"))
                        .collect(),
                ));
            }
            Reply::Failed { job, kind, message } => effects.extend(self.failed(job, kind, message)),
        }
        if self.measure_when_free && self.job.is_none() && self.ready() && !self.tuning_now() {
            effects.extend(self.probe(false));
        }
        effects
    }

    fn failed(&mut self, job: Option<u64>, kind: FailureKind, message: String) -> Vec<Effect> {
        let job_kind = job.and_then(|j| self.kind_of(j));
        let on_gpu = self.backend_info.as_ref().is_some_and(|b| b.gpu);
        let mut effects = Vec::new();
        if kind == FailureKind::Busy {
            // Refused before it started: nothing else changes, the run least of all.
            self.end_job(job);
            if job.is_some() && job == self.load_job {
                self.load_job = None;
                self.model = ModelStatus::Failed(message.clone());
            }
            self.error(message);
            return effects;
        }
        if kind == FailureKind::Crashed {
            // The worker's instance is gone, and every job it held: start a fresh one; the
            // results on the page stay.
            self.end_job(None);
            self.load_job = None;
            self.resume_after_load = false;
            self.model = ModelStatus::Failed(message.clone());
            if self.tuning_now() {
                self.tune = TuneStatus::Finished(format!("failed: {message}"));
            }
            effects.push(Effect::RestartEngine);
            self.notice = Some(if on_gpu {
                Notice {
                    error: true,
                    text: format!(
                        "{message}. The GPU stopped working; every result so far is kept. \
                         Continue on the CPU?"
                    ),
                    offer_cpu: true,
                }
            } else {
                Notice::error(message)
            });
            return effects;
        }
        self.end_job(job);
        let device_lost = kind == FailureKind::DeviceLost;
        let mut shown = false;
        if job.is_some() && job == self.load_job {
            // the model panel says it, beside the model's name
            self.load_job = None;
            self.resume_after_load = false;
            self.model = ModelStatus::Failed(message.clone());
            shown = true;
        }
        if job.is_some() && job == self.tune_job && self.tuning_now() {
            // beside the run's buttons, in its status; the run stays kept from its last good
            // epoch: offer it again
            self.tune = TuneStatus::Finished(format!("failed: {message}"));
            effects.push(self.request(|job| Request::SavedRun { job }));
            shown = true;
        }
        // beside the input it is about; the old result would answer another one (a lost
        // GPU is said once, in the notice that offers the CPU)
        match job_kind.filter(|_| !device_lost) {
            Some(JobKind::Fill) => {
                self.fills = None;
                self.fill_error = Some(message.clone());
                shown = true;
            }
            Some(JobKind::LmLoss) => {
                self.lm_loss = None;
                self.lm_loss_error = Some(message.clone());
                shown = true;
            }
            Some(JobKind::Probe { .. }) => {
                self.probe_error = Some(message.clone());
                shown = true;
            }
            _ => {}
        }
        if device_lost {
            self.notice = Some(Notice {
                error: true,
                text: format!(
                    "{message}. The GPU stopped working; every result so far is kept. Continue \
                     on the CPU?"
                ),
                offer_cpu: on_gpu,
            });
        } else if !shown {
            self.error(message);
        }
        effects
    }
}

#[cfg(test)]
mod tests;
