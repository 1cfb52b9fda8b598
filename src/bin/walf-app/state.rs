//! The page's state: signals for what the engine reported, and the one function that turns the
//! engine's replies into state. Components read these signals and send requests.

use std::collections::HashMap;

use leptos::prelude::*;

use walf_lab::bias::Target;
use walf_lab::data::Split;
use walf_lab::lm_loss::LossRule;
use walf_lab::protocol::*;
use walf_lab::share::{CurvePoint, SharedResult, SharedTuning};
use walf_lab::view::{LiveValidation, live_validation, shared_result, shared_tuning};

use crate::download::download_bytes;
use crate::engine::Engine;

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

#[derive(Clone, PartialEq, Debug)]
pub struct JobStatus {
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

/// The last model source, to load again after the engine restarts. Local files are kept.
#[derive(Clone)]
pub struct LastSource {
    pub source: ModelSource,
    pub files: Vec<Vec<u8>>,
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub engine: StoredValue<Option<Engine>, LocalStorage>,
    pub last_source: StoredValue<Option<LastSource>, LocalStorage>,
    pub jobs: StoredValue<HashMap<u64, JobKind>>,
    pub model: RwSignal<ModelStatus>,
    pub backend: RwSignal<BackendChoice>,
    pub backend_info: RwSignal<Option<BackendInfo>>,
    pub job: RwSignal<Option<JobStatus>>,
    pub split: RwSignal<Split>,
    pub target: RwSignal<Target>,
    pub before: RwSignal<Option<ProbeReply>>,
    pub after: RwSignal<Option<ProbeReply>>,
    /// A result opened from a link, shown until the page measures one itself.
    pub shared: RwSignal<Option<SharedResult>>,
    pub fills: RwSignal<Option<Vec<MaskFill>>>,
    pub tune: RwSignal<TuneStatus>,
    pub tune_settings: RwSignal<TuneSettings>,
    /// The settings of the run the curves belong to.
    pub tune_run: RwSignal<Option<TuneSettings>>,
    pub steps: RwSignal<Vec<TuneStepReply>>,
    pub epochs: RwSignal<Vec<TuneEpochReply>>,
    /// The valid split before the run: the live chart's "before" and the valid-KL curve's start.
    pub baseline: RwSignal<Option<TuneBaselineReply>>,
    /// Before, after, masked tokens and the rule scored by.
    pub lm_loss: RwSignal<Option<(f64, f64, usize, LossRule)>>,
    /// Why the last fill-mask failed, shown beside its input (a later success clears it).
    pub fill_error: RwSignal<Option<String>>,
    /// The same for the masked-LM loss on held-out text.
    pub lm_loss_error: RwSignal<Option<String>>,
    /// Why the last measurement failed (a malformed edited benchmark, say), shown above the
    /// chart it did not replace.
    pub probe_error: RwSignal<Option<String>>,
    pub edits: RwSignal<BenchmarkEdits>,
    pub notice: RwSignal<Option<Notice>>,
    pub tab: RwSignal<Tab>,
    /// A WALF run the worker keeps in the browser's storage (from an earlier visit, or one that
    /// failed), which the page offers to go on with.
    pub saved_run: RwSignal<Option<SavedRun>>,
    /// Epochs of the running job kept in the browser's storage so far.
    pub kept_epochs: RwSignal<Option<usize>>,
    /// Going on with the kept run waits for its model to load.
    pub resume_after_load: RwSignal<bool>,
}

impl AppState {
    pub fn new() -> Self {
        Self {
            engine: StoredValue::new_local(None),
            last_source: StoredValue::new_local(None),
            jobs: StoredValue::new(HashMap::new()),
            model: RwSignal::new(ModelStatus::None),
            backend: RwSignal::new(BackendChoice::Auto),
            backend_info: RwSignal::new(None),
            job: RwSignal::new(None),
            split: RwSignal::new(Split::Test),
            target: RwSignal::new(Target::Equal),
            before: RwSignal::new(None),
            after: RwSignal::new(None),
            shared: RwSignal::new(None),
            fills: RwSignal::new(None),
            tune: RwSignal::new(TuneStatus::Idle),
            tune_settings: RwSignal::new(TuneSettings::paper(Target::Equal)),
            tune_run: RwSignal::new(None),
            steps: RwSignal::new(Vec::new()),
            epochs: RwSignal::new(Vec::new()),
            baseline: RwSignal::new(None),
            lm_loss: RwSignal::new(None),
            fill_error: RwSignal::new(None),
            lm_loss_error: RwSignal::new(None),
            probe_error: RwSignal::new(None),
            edits: RwSignal::new(BenchmarkEdits::default()),
            notice: RwSignal::new(None),
            tab: RwSignal::new(Tab::Probe),
            saved_run: RwSignal::new(None),
            kept_epochs: RwSignal::new(None),
            resume_after_load: RwSignal::new(false),
        }
    }

    fn with_engine(&self, f: impl FnOnce(&Engine)) {
        self.engine.with_value(|e| {
            if let Some(e) = e {
                f(e)
            }
        });
    }

    /// Sends a job's request and remembers what kind of job it is.
    pub fn start_job(&self, kind: JobKind, make: impl FnOnce(u64) -> Request) {
        let mut sent = false;
        self.with_engine(|e| {
            let job = e.next_job();
            self.jobs.update_value(|j| {
                j.insert(job, kind);
            });
            self.job.set(Some(JobStatus {
                kind,
                what: "starting".into(),
                done: 0,
                total: 0,
            }));
            e.send(make(job));
            sent = true;
        });
        if !sent {
            self.error("the engine is not running; reload the page");
        }
    }

    pub fn send(&self, request: Request) {
        self.with_engine(|e| e.send(request));
    }

    pub fn ready(&self) -> bool {
        matches!(self.model.get(), ModelStatus::Ready { .. })
    }

    pub fn error(&self, text: impl Into<String>) {
        self.notice.set(Some(Notice {
            error: true,
            text: text.into(),
            offer_cpu: false,
        }));
    }

    /// A WALF run is going (or paused): the model cannot change under it.
    pub fn tuning_now(&self) -> bool {
        matches!(
            self.tune.get(),
            TuneStatus::Running | TuneStatus::Pausing | TuneStatus::Paused
        )
    }

    pub fn load(&self, source: ModelSource, files: Vec<Vec<u8>>) {
        if self.tuning_now() {
            // The worker would refuse it; the run and its model stay as they are.
            self.error("a WALF run is going: stop it before loading another model");
            return;
        }
        self.last_source.set_value(Some(LastSource {
            source: source.clone(),
            files: files.clone(),
        }));
        self.model.set(ModelStatus::Loading("starting".into()));
        self.job.set(Some(JobStatus {
            kind: JobKind::Load,
            what: "loading the model".into(),
            done: 0,
            total: 0,
        }));
        let backend = self.backend.get_untracked();
        self.with_engine(|e| e.send_with_files(Request::Load { source, backend }, files));
    }

    pub fn reload(&self) {
        if let Some(last) = self.last_source.get_value() {
            self.load(last.source, last.files);
        }
    }

    pub fn probe(&self, after: bool) {
        let split = self.split.get_untracked();
        let benchmark = self.edits.get_untracked();
        self.start_job(JobKind::Probe { after }, |job| Request::Probe {
            job,
            split,
            benchmark,
        });
    }

    /// Stops the running job by restarting the engine; results stay, the model loads again.
    pub fn cancel(&self) {
        let kind = self.job.get_untracked().map(|j| j.kind);
        if kind == Some(JobKind::Tune) {
            self.send(Request::TuneStop);
            return;
        }
        self.with_engine(Engine::restart);
        self.job.set(None);
        self.notice.set(Some(Notice {
            error: false,
            text: "cancelled; the model is loaded again".into(),
            offer_cpu: false,
        }));
        self.reload();
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
        let before = self.before.get()?;
        let name = match self.model.get() {
            ModelStatus::Ready { name, .. } => name,
            _ => "model".into(),
        };
        let after = self.after.get();
        let tuning = self.tune_run.get().map(|s| self.tuning(&s, curve));
        let mut result = shared_result(&name, &before, after.as_ref(), tuning);
        result.edited_benchmark = self.edits.with(|e| *e != BenchmarkEdits::default());
        Some(result)
    }

    /// While a run goes on (or is paused): the valid split before it and after its last
    /// validated epoch, with that epoch (None before the first one ends).
    pub fn live(&self) -> Option<LiveValidation> {
        if !self.tuning_now() {
            return None;
        }
        let name = match self.model.get() {
            ModelStatus::Ready { name, .. } => name,
            _ => "model".into(),
        };
        let settings = self.tune_run.get()?;
        let baseline = self.baseline.get()?;
        let tuning = self.tuning(&settings, false);
        Some(
            self.epochs
                .with(|epochs| live_validation(&name, &baseline, epochs, tuning)),
        )
    }

    fn tuning(&self, s: &TuneSettings, curve: bool) -> SharedTuning {
        let epochs = self.epochs.with(|e| e.len() as u32);
        shared_tuning(s, epochs, if curve { self.curve() } else { Vec::new() })
    }

    /// The curves as a link carries them: one point per step, the epoch's valid KL on its
    /// last step.
    fn curve(&self) -> Vec<CurvePoint> {
        let epochs = self.epochs.get();
        self.steps.with(|steps| {
            steps
                .iter()
                .map(|s| CurvePoint {
                    step: s.step as u32,
                    kl: s.kl,
                    mlm_loss: s.mlm_loss,
                    valid_kl: (s.batch + 1 == s.batches)
                        .then(|| epochs.iter().find(|e| e.epoch == s.epoch))
                        .flatten()
                        .map(|e| e.valid_kl),
                })
                .collect()
        })
    }
}

/// Applies one reply of the engine to the page's state.
pub fn on_reply(state: AppState, reply: Reply, files: Vec<Vec<u8>>) {
    let kind_of = |job: u64| state.jobs.with_value(|j| j.get(&job).copied());
    match reply {
        // A fresh worker: is a run kept from before?
        Reply::Ready => state.send(Request::SavedRun),
        Reply::SavedRun { run } => state.saved_run.set(run),
        Reply::Warning { message } => state.notice.set(Some(Notice {
            error: false,
            text: message,
            offer_cpu: false,
        })),
        Reply::TuneSaved {
            job: _,
            epochs_done,
        } => state.kept_epochs.set(Some(epochs_done)),
        Reply::Progress {
            job,
            what,
            done,
            total,
        } => {
            let kind = job.and_then(kind_of).unwrap_or(JobKind::Load);
            if kind == JobKind::Load {
                state.model.set(ModelStatus::Loading(what.clone()));
            }
            state.job.set(Some(JobStatus {
                kind,
                what,
                done,
                total,
            }));
        }
        Reply::Loaded {
            name,
            architecture,
            parameters,
            vocab_size: _,
            mask_token,
            backend,
            downloaded: _,
        } => {
            state.model.set(ModelStatus::Ready {
                name,
                architecture,
                parameters,
                mask_token,
            });
            state.backend_info.set(Some(backend));
            state.job.set(None);
            state.before.set(None);
            state.after.set(None);
            state.fills.set(None);
            state.steps.set(Vec::new());
            state.epochs.set(Vec::new());
            state.baseline.set(None);
            state.tune.set(TuneStatus::Idle);
            state.tune_run.set(None);
            state.lm_loss.set(None);
            // A link's result stays on screen until the user measures again.
            if state.shared.get_untracked().is_none() {
                state.probe(false);
            }
            if state.resume_after_load.get_untracked() {
                state.resume_after_load.set(false);
                resume_saved_run(state);
            }
        }
        Reply::Probed { job, result } => {
            state.job.set(None);
            state.probe_error.set(None);
            state.shared.set(None);
            // After-values stand beside before-values of the same split only.
            let same_split = state.before.get_untracked().map(|b| b.split) == Some(result.split);
            match kind_of(job) {
                Some(JobKind::Probe { after: true }) if same_split => {
                    state.after.set(Some(result));
                }
                _ => {
                    state.before.set(Some(result));
                    state.after.set(None);
                }
            }
        }
        Reply::Filled { job: _, masks } => {
            state.job.set(None);
            state.fill_error.set(None);
            state.fills.set(Some(masks));
        }
        Reply::TuneStep { job: _, step } => {
            state.job.set(Some(JobStatus {
                kind: JobKind::Tune,
                what: format!(
                    "epoch {}, batch {} of {}",
                    step.epoch + 1,
                    step.batch + 1,
                    step.batches
                ),
                done: (step.batch + 1) as u64,
                total: step.batches as u64,
            }));
            state.steps.update(|s| s.push(step));
        }
        Reply::TuneBaseline { job: _, baseline } => state.baseline.set(Some(baseline)),
        Reply::TuneEpoch { job: _, epoch } => state.epochs.update(|e| e.push(epoch)),
        Reply::TunePaused { job: _, paused } => state.tune.set(if paused {
            TuneStatus::Paused
        } else {
            TuneStatus::Running
        }),
        Reply::TuneFinished {
            job: _,
            reason,
            steps: _,
        } => {
            state.tune.set(TuneStatus::Finished(reason));
            state.job.set(None);
            // The worker keeps a run only while it is unfinished.
            state.saved_run.set(None);
            state.kept_epochs.set(None);
            // The tuned model's distribution, beside the one before.
            state.probe(true);
        }
        Reply::LmLoss {
            job: _,
            before,
            after,
            tokens,
            rule,
        } => {
            state.job.set(None);
            state.lm_loss_error.set(None);
            state.lm_loss.set(Some((before, after, tokens, rule)));
        }
        Reply::Exported { job: _, name } => {
            state.job.set(None);
            let stem = walf_lab::view::file_stem(&name);
            for (file, bytes) in ["config.json", "tokenizer.json", "model.safetensors"]
                .iter()
                .zip(&files)
            {
                download_bytes(
                    &format!("{stem}-walf-{file}"),
                    bytes,
                    "application/octet-stream",
                );
            }
        }
        Reply::Failed {
            job,
            message,
            device_lost,
        } => {
            let kind = job.and_then(kind_of);
            state.job.set(None);
            state.resume_after_load.set(false);
            if kind == Some(JobKind::Tune) {
                // A failed run stays kept from its last good epoch: offer it again.
                state.send(Request::SavedRun);
            }
            let load_failed = matches!(state.model.get_untracked(), ModelStatus::Loading(_));
            if load_failed {
                state.model.set(ModelStatus::Failed(message.clone()));
            }
            if matches!(
                state.tune.get_untracked(),
                TuneStatus::Running | TuneStatus::Pausing | TuneStatus::Paused
            ) && (kind == Some(JobKind::Tune) || job.is_none())
            {
                state
                    .tune
                    .set(TuneStatus::Finished(format!("failed: {message}")));
            }
            let on_gpu = state.backend_info.get_untracked().is_some_and(|b| b.gpu);
            let crashed = job.is_none() && message.starts_with("the engine stopped");
            if crashed {
                // The worker's instance is gone: start a fresh one; results on the page stay.
                state.engine.with_value(|e| {
                    if let Some(e) = e {
                        e.restart()
                    }
                });
                state.model.set(ModelStatus::Failed(message.clone()));
            }
            if load_failed && !crashed && !device_lost {
                // the model panel says it, beside the model's name: not twice
                return;
            }
            if !crashed && !device_lost {
                // beside the input it is about; the old result would answer another one
                match kind {
                    Some(JobKind::Fill) => {
                        state.fills.set(None);
                        state.fill_error.set(Some(message));
                        return;
                    }
                    Some(JobKind::LmLoss) => {
                        state.lm_loss.set(None);
                        state.lm_loss_error.set(Some(message));
                        return;
                    }
                    Some(JobKind::Probe { .. }) => {
                        state.probe_error.set(Some(message));
                        return;
                    }
                    // beside the run's buttons, in its status
                    Some(JobKind::Tune)
                        if matches!(state.tune.get_untracked(), TuneStatus::Finished(_)) =>
                    {
                        return;
                    }
                    _ => {}
                }
            }
            state.notice.set(Some(Notice {
                error: true,
                text: if device_lost || (crashed && on_gpu) {
                    format!(
                        "{message}. The GPU stopped working; every result so far is kept. \
                         Continue on the CPU?"
                    )
                } else {
                    message
                },
                offer_cpu: on_gpu && (device_lost || crashed),
            }));
        }
    }
}

/// Goes on with the run kept in the browser's storage: its model first (a Hub or bundled model
/// loads by itself; local files must be picked again), then the run from its last epoch, its
/// curves so far on screen.
pub fn resume_saved_run(state: AppState) {
    let Some(run) = state.saved_run.get_untracked() else {
        return;
    };
    let loaded = match state.model.get_untracked() {
        ModelStatus::Ready { name, .. } => name == run.model,
        ModelStatus::Loading(_) => {
            // Decided when the model that is loading is there.
            state.resume_after_load.set(true);
            return;
        }
        _ => false,
    };
    if !loaded {
        match run.source {
            ModelSource::Local { name } => state.error(format!(
                "the kept run was made with local files ({name}): pick the same three files, then \
                 go on with the run"
            )),
            source => {
                state.resume_after_load.set(true);
                state.load(source, Vec::new());
            }
        }
        return;
    }
    state.tune_settings.set(run.settings.clone());
    state.tune_run.set(Some(run.settings));
    state.edits.set(run.benchmark);
    state.steps.set(run.steps);
    state.epochs.set(run.epochs);
    state.baseline.set(run.baseline);
    state.after.set(None);
    state.lm_loss.set(None);
    state.kept_epochs.set(Some(run.epochs_done));
    state.tune.set(TuneStatus::Running);
    state.tab.set(Tab::Tune);
    state.start_job(JobKind::Tune, |job| Request::TuneRestore { job });
}

/// The request that starts a WALF run with the page's settings.
pub fn start_tuning(state: AppState) {
    let settings = state.tune_settings.get_untracked();
    let benchmark = state.edits.get_untracked();
    state.steps.set(Vec::new());
    state.epochs.set(Vec::new());
    state.baseline.set(None);
    state.after.set(None);
    state.lm_loss.set(None);
    state.tune_run.set(Some(settings.clone()));
    state.tune.set(TuneStatus::Running);
    // The worker replaces a kept run with the new one.
    state.saved_run.set(None);
    state.kept_epochs.set(None);
    state.start_job(JobKind::Tune, |job| Request::TuneStart {
        job,
        settings,
        benchmark,
    });
}
