//! The page's state in Leptos: one signal holds the plain [`Page`] (its state and the functions
//! that change it are in the library, tested natively); the views read its fields through
//! memos, so a training step redraws only what it changed; and the effects those functions
//! return are carried out here: requests sent to the engine, files saved, the worker restarted.

use leptos::prelude::*;

use walf_lab::bias::Target;
use walf_lab::data::Split;
use walf_lab::lm_loss::LossRule;
use walf_lab::protocol::*;
use walf_lab::share::SharedResult;
use walf_lab::view::LiveValidation;
pub use walf_lab::view::page::{
    ChosenText, Effect, JobKind, JobStatus, ModelStatus, Notice, Page, Tab, TuneStatus,
};

use crate::download::download_bytes;
use crate::engine::Engine;

/// One field of the page: read through a memo (a view that reads it is redrawn only when it
/// changes), written into the page.
pub struct Field<T: Send + Sync + 'static> {
    page: RwSignal<Page>,
    memo: Memo<T>,
    field: fn(&mut Page) -> &mut T,
}

impl<T: Send + Sync + 'static> Clone for Field<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Field<T> {}

impl<T: Clone + PartialEq + Send + Sync + 'static> Field<T> {
    fn new(page: RwSignal<Page>, read: fn(&Page) -> &T, field: fn(&mut Page) -> &mut T) -> Self {
        Self {
            page,
            memo: Memo::new(move |_| page.with(|p| read(p).clone())),
            field,
        }
    }

    pub fn get(&self) -> T {
        self.memo.get()
    }

    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.memo.with(f)
    }

    pub fn get_untracked(&self) -> T {
        self.memo.get_untracked()
    }

    pub fn with_untracked<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.memo.with_untracked(f)
    }

    pub fn set(&self, value: T) {
        let field = self.field;
        self.page.update(|p| *field(p) = value);
    }

    pub fn update(&self, f: impl FnOnce(&mut T)) {
        let field = self.field;
        self.page.update(|p| f(field(p)));
    }
}

macro_rules! field {
    ($page:ident, $name:ident) => {
        Field::new($page, |p| &p.$name, |p| &mut p.$name)
    };
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub engine: StoredValue<Option<Engine>, LocalStorage>,
    /// The local files last picked: a load of them (again, after a restart) sends them.
    local_files: StoredValue<Vec<Vec<u8>>, LocalStorage>,
    pub page: RwSignal<Page>,
    pub model: Field<ModelStatus>,
    pub source: Field<Option<ModelSource>>,
    pub backend: Field<BackendChoice>,
    pub backend_info: Field<Option<BackendInfo>>,
    pub job: Field<Option<JobStatus>>,
    pub split: Field<Split>,
    pub target: Field<Target>,
    pub before: Field<Option<ProbeReply>>,
    pub measurements: Field<u64>,
    pub shared: Field<Option<SharedResult>>,
    pub fills: Field<Option<Vec<MaskFill>>>,
    pub tune: Field<TuneStatus>,
    pub tune_settings: Field<TuneSettings>,
    pub tune_run: Field<Option<TuneSettings>>,
    pub steps: Field<Vec<TuneStepReply>>,
    pub epochs: Field<Vec<TuneEpochReply>>,
    pub baseline: Field<Option<TuneBaselineReply>>,
    pub lm_loss: Field<Option<(f64, f64, usize, LossRule)>>,
    pub fill_error: Field<Option<String>>,
    pub lm_loss_error: Field<Option<String>>,
    pub probe_error: Field<Option<String>>,
    pub edits: Field<BenchmarkEdits>,
    pub notice: Field<Option<Notice>>,
    pub tab: Field<Tab>,
    pub saved_run: Field<Option<SavedRun>>,
    pub kept_epochs: Field<Option<usize>>,
    /// The CDA text's name and size (the text itself is not compared on every change).
    pub cda_text: Memo<Option<(String, usize)>>,
    /// What the probe chart draws (no training curves, so a step does not redraw it).
    chart: Memo<Option<SharedResult>>,
    result: Memo<Option<SharedResult>>,
    live: Memo<Option<LiveValidation>>,
}

impl AppState {
    pub fn new() -> Self {
        let page = RwSignal::new(Page::new());
        Self {
            engine: StoredValue::new_local(None),
            local_files: StoredValue::new_local(Vec::new()),
            page,
            model: field!(page, model),
            source: field!(page, source),
            backend: field!(page, backend),
            backend_info: field!(page, backend_info),
            job: field!(page, job),
            split: field!(page, split),
            target: field!(page, target),
            before: field!(page, before),
            measurements: field!(page, measurements),
            shared: field!(page, shared),
            fills: field!(page, fills),
            tune: field!(page, tune),
            tune_settings: field!(page, tune_settings),
            tune_run: field!(page, tune_run),
            steps: field!(page, steps),
            epochs: field!(page, epochs),
            baseline: field!(page, baseline),
            lm_loss: field!(page, lm_loss),
            fill_error: field!(page, fill_error),
            lm_loss_error: field!(page, lm_loss_error),
            probe_error: field!(page, probe_error),
            edits: field!(page, edits),
            notice: field!(page, notice),
            tab: field!(page, tab),
            saved_run: field!(page, saved_run),
            kept_epochs: field!(page, kept_epochs),
            cda_text: Memo::new(move |_| {
                page.with(|p| p.cda_text.as_ref().map(|t| (t.name.clone(), t.text.len())))
            }),
            chart: Memo::new(move |_| page.with(Page::chart_result)),
            result: Memo::new(move |_| page.with(Page::result)),
            live: Memo::new(move |_| page.with(Page::live)),
        }
    }

    /// Changes the page with one of its functions and carries out what it returns.
    pub fn update(&self, change: impl FnOnce(&mut Page) -> Vec<Effect>) {
        let effects = self.page.try_update(change).unwrap_or_default();
        self.carry_out(effects, Vec::new());
    }

    /// Outside the page's update: a restart can report a failure at once, which changes the
    /// page again.
    fn carry_out(&self, effects: Vec<Effect>, files: Vec<Vec<u8>>) {
        for effect in effects {
            match effect {
                Effect::Send(request) => {
                    let request = *request;
                    let local = matches!(
                        request,
                        Request::Load {
                            source: ModelSource::Local { .. },
                            ..
                        }
                    );
                    let files = if local {
                        self.local_files.get_value()
                    } else {
                        Vec::new()
                    };
                    let sent = self
                        .engine
                        .with_value(|e| e.as_ref().map(|e| e.send_with_files(request, files)));
                    if sent.is_none() {
                        self.error("the engine is not running; reload the page");
                    }
                }
                Effect::Download(names) => {
                    for (name, bytes) in names.iter().zip(&files) {
                        download_bytes(name, bytes, "application/octet-stream");
                    }
                }
                Effect::RestartEngine => {
                    let engine = self.engine.get_value();
                    if let Some(engine) = engine {
                        engine.restart();
                    }
                }
            }
        }
    }

    /// Starts a job the progress bar shows.
    pub fn start_job(&self, kind: JobKind, make: impl FnOnce(u64) -> Request) {
        self.update(|p| p.start_job(kind, make));
    }

    pub fn ready(&self) -> bool {
        matches!(self.model.get(), ModelStatus::Ready { .. })
    }

    pub fn error(&self, text: impl Into<String>) {
        self.notice.set(Some(Notice::error(text)));
    }

    /// A WALF run is going (or paused): the model cannot change under it.
    pub fn tuning_now(&self) -> bool {
        matches!(
            self.tune.get(),
            TuneStatus::Running | TuneStatus::Pausing | TuneStatus::Paused
        )
    }

    /// Loads a model; local files are kept to load again after a restart.
    pub fn load(&self, source: ModelSource, files: Vec<Vec<u8>>) {
        if matches!(source, ModelSource::Local { .. }) && !self.tuning_now() {
            self.local_files.set_value(files);
        }
        self.update(|p| p.load(source));
    }

    pub fn reload(&self) {
        self.update(Page::reload);
    }

    pub fn probe(&self, after: bool) {
        self.update(|p| p.probe(after));
    }

    pub fn cancel(&self) {
        self.update(Page::cancel);
    }

    /// The result the share link carries.
    pub fn result(&self) -> Option<SharedResult> {
        self.result.get()
    }

    /// What the probe chart draws: the result without the training curves.
    pub fn chart_result(&self) -> Option<SharedResult> {
        self.chart.get()
    }

    /// While a run goes on: the valid split before it and after its last validated epoch.
    pub fn live(&self) -> Option<LiveValidation> {
        self.live.get()
    }
}

/// Applies one reply of the engine to the page (the files that came with it are saved where
/// the reply says so).
pub fn on_reply(state: AppState, reply: Reply, files: Vec<Vec<u8>>) {
    let effects = state
        .page
        .try_update(|p| p.on_reply(reply))
        .unwrap_or_default();
    state.carry_out(effects, files);
}
