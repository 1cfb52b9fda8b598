//! The worker's one session: the device, the loaded model (its files kept, so tuning and a move
//! to the CPU can rebuild it), the current weights, and a WALF run that can be paused.
//!
//! Requests are handled as they arrive; a long job awaits between steps, so a pause or stop
//! sent meanwhile is read. State is cloned out of the `RefCell` before any await.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::Module;
use burn::tensor::Device;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, WorkerGlobalScope};

use walf_lab::Error;
use walf_lab::config::{MemoryBudget, ModelConfig};
use walf_lab::data::Benchmark;
use walf_lab::engine::{LanguageModel, ModelFiles};
use walf_lab::hub;
use walf_lab::lm_loss::{LmLossSettings, LossRule, passages};
use walf_lab::measure::{MeasureInput, ProbeResult, ProbeSettings, Progress, SentencePlan};
use walf_lab::model::MaskedLm;
use walf_lab::protocol::*;
use walf_lab::walf::WalfTrainer;

use crate::backend;
use crate::net::{FetchError, fetch_bytes, sleep};
use crate::pool::{self, Pool};
use crate::product;
use crate::store::{self, RunRecord};
use crate::transport;

mod export;
mod fill;
mod lm_loss;
mod load;
mod probe;
mod tune;

struct ModelBytes {
    name: String,
    source: ModelSource,
    config: Vec<u8>,
    tokenizer: Vec<u8>,
    weights: Vec<u8>,
    fingerprint: OnceCell<String>,
}

impl ModelBytes {
    fn new(name: String, source: ModelSource, [config, tokenizer, weights]: [Vec<u8>; 3]) -> Self {
        Self {
            name,
            source,
            config,
            tokenizer,
            weights,
            fingerprint: OnceCell::new(),
        }
    }

    fn fingerprint(&self) -> &str {
        self.fingerprint.get_or_init(|| self.files().fingerprint())
    }

    fn files(&self) -> ModelFiles<'_> {
        ModelFiles {
            config: &self.config,
            tokenizer: &self.tokenizer,
            weights: &self.weights,
            weights_name: "model.safetensors",
        }
    }
}

struct Loaded {
    files: Rc<ModelBytes>,
    lm: Rc<LanguageModel>,
    /// The weights probes and exports use: the loaded ones, or the best of a WALF run.
    current: MaskedLm,
    /// Names `current`: each new load or tuned result gets the next number.
    generation: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Control {
    Run,
    Pause,
    Stop,
}

#[derive(Default)]
struct Session {
    device: RefCell<Option<(Device, BackendInfo, BackendChoice)>>,
    /// The GPU `automatic` opened: each model it loads is timed on it against the CPU
    /// (`load::choose`), so it stays open while the CPU runs a model it lost on.
    auto_gpu: RefCell<Option<(Device, BackendInfo)>>,
    model: RefCell<Option<Loaded>>,
    /// The running WALF job and what the page asked of it.
    tune_job: Cell<Option<u64>>,
    control: Cell<Option<Control>>,
    /// Requests waiting for the one being handled: jobs run one after another, as the page
    /// expects (it holds one job at a time), even where a job waits between its parts.
    queue: RefCell<VecDeque<(Request, Vec<Vec<u8>>)>>,
    handling: Cell<bool>,
    /// Helper workers sharing probes on the CPU backend, with copies of the weights.
    pool: RefCell<Option<Rc<Pool>>>,
    generations: Cell<u64>,
}

impl Session {
    fn next_generation(&self) -> u64 {
        self.generations.set(self.generations.get() + 1);
        self.generations.get()
    }

    /// The helpers, started if they are not yet (none on a machine with one core).
    fn pool(&self) -> Option<Rc<Pool>> {
        self.pool_of(pool::helper_count())
    }

    /// The helpers for a model of these weights: as many as may hold a copy of them
    /// ([`pool::helpers_for`]).
    fn pool_for(&self, weights: &[u8]) -> Option<Rc<Pool>> {
        self.pool_of(pool::helpers_for(weights))
    }

    /// A pool of `count` helpers, started again when it has another number; none (and none
    /// kept) for 0.
    fn pool_of(&self, count: usize) -> Option<Rc<Pool>> {
        if self
            .pool
            .borrow()
            .as_ref()
            .is_some_and(|p| p.size() != count)
        {
            self.pool.borrow_mut().take();
        }
        if count > 0 && self.pool.borrow().is_none() {
            *self.pool.borrow_mut() = Pool::start(count).map(Rc::new);
        }
        self.pool.borrow().clone()
    }

    fn on_cpu(&self) -> bool {
        self.device
            .borrow()
            .as_ref()
            .is_some_and(|(_, info, _)| !info.gpu)
    }

    fn on_gpu(&self) -> bool {
        self.device
            .borrow()
            .as_ref()
            .is_some_and(|(_, info, _)| info.gpu)
    }
}

thread_local! {
    static SESSION: Rc<Session> = Rc::new(Session::default());
}

fn post(reply: &Reply) {
    post_with_files(reply, &[]);
}

/// A reply with files: the bytes are moved to the page, not copied.
fn post_with_files(reply: &Reply, files: &[&[u8]]) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let (message, transfer) = transport::envelope(&reply.to_json(), &transport::bytes(files));
    let _ = scope.post_message_with_transfer(&message, &transfer);
}

fn fail(job: Option<u64>, kind: FailureKind, error: impl std::fmt::Display) {
    post(&Reply::Failed {
        job,
        kind,
        message: error.to_string(),
    });
}

fn progress(job: Option<u64>, what: &str, done: u64, total: u64) {
    post(&Reply::Progress {
        job,
        what: what.to_string(),
        done,
        total,
    });
}

pub fn start(product_checks: &[(&str, product::Check)]) {
    // A panic ends this worker's WebAssembly instance: the page hears why, keeps its results
    // and starts a fresh worker. It hears it once: a GPU's validation error panics in the
    // device's error callback, and each later call on that device panics there again, each
    // panic only repeating the first one's cause.
    static CRASHED: AtomicBool = AtomicBool::new(false);
    std::panic::set_hook(Box::new(|info| {
        if CRASHED.swap(true, Ordering::Relaxed) {
            return;
        }
        // The console gets where it panicked, for a bug report; the page only what happened.
        web_sys::console::error_1(&format!("the engine stopped unexpectedly: {info}").into());
        let what = info.payload_as_str().unwrap_or("an internal error");
        fail(
            None,
            FailureKind::Crashed,
            format!("the engine stopped unexpectedly: {what}"),
        );
    }));
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(|event: MessageEvent| {
        let received = transport::Received::new(&event.data());
        let Some(text) = received.text.as_deref() else {
            fail(
                None,
                FailureKind::Internal,
                "a message to the engine was not understood",
            );
            return;
        };
        match Request::from_json(text) {
            Ok(request) => receive(request, received.files()),
            Err(e) => fail(None, FailureKind::Internal, e),
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    for (kernel, check) in product_checks {
        mark(&format!("matrix product {kernel}: {check:?}"));
    }
    mark("ready");
    post(&Reply::Ready);
}

/// A User Timing mark on this worker's timeline (`walf-worker:NAME`): the benchmark reads them
/// to split the time to the first chart into its stages, as it reads the page's.
fn mark(name: &str) {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    if let Some(performance) = scope.performance() {
        let _ = performance.mark(&format!("walf-worker:{name}"));
    }
}

fn session() -> Rc<Session> {
    SESSION.with(Rc::clone)
}

/// Pause, resume and stop act at once on the running WALF job, and a request that cannot
/// start while it runs is refused at once; everything else waits its turn.
fn receive(request: Request, files: Vec<Vec<u8>>) {
    let s = session();
    match request {
        Request::TunePause { job } => return set_control(&s, job, Control::Pause),
        Request::TuneResume { job } => return set_control(&s, job, Control::Run),
        Request::TuneStop { job } => return set_control(&s, job, Control::Stop),
        _ => {}
    }
    if s.tune_job.get().is_some() {
        let refusal = match &request {
            Request::Load { .. } => Some("stop the tuning run before loading another model"),
            Request::TuneStart { .. } | Request::TuneRestore { .. } => {
                Some("a tuning run is already going")
            }
            Request::DiscardSavedRun { .. } => Some("a tuning run is going: stop it first"),
            _ => None,
        };
        if let Some(message) = refusal {
            return fail(Some(request.job()), FailureKind::Busy, message);
        }
    }
    s.queue.borrow_mut().push_back((request, files));
    if s.handling.replace(true) {
        return;
    }
    wasm_bindgen_futures::spawn_local(async move {
        loop {
            let next = s.queue.borrow_mut().pop_front();
            match next {
                Some((request, files)) => handle(request, files).await,
                None => break,
            }
        }
        s.handling.set(false);
    });
}

async fn handle(request: Request, files: Vec<Vec<u8>>) {
    let s = session();
    match request {
        Request::Load {
            job,
            source,
            backend,
        } => {
            if let Err((kind, message)) = load::load(&s, job, source, backend, files).await {
                fail(Some(job), kind, message);
            }
        }
        Request::Probe {
            job,
            split,
            benchmark,
        } => {
            let result = probe::probe(&s, job, split, &benchmark).await;
            finish(&s, job, result);
        }
        Request::Fill { job, text, top } => {
            let result = fill::fill(&s, job, &text, top).await;
            finish(&s, job, result);
        }
        Request::TuneStart {
            job,
            settings,
            benchmark,
            cda_text,
        } => {
            s.tune_job.set(Some(job));
            s.control.set(Some(Control::Run));
            let result = tune::tune(&s, job, settings, &benchmark, cda_text).await;
            s.tune_job.set(None);
            s.control.set(None);
            finish(&s, job, result);
        }
        Request::TuneRestore { job } => {
            s.tune_job.set(Some(job));
            s.control.set(Some(Control::Run));
            let result = tune::restore(&s, job).await;
            s.tune_job.set(None);
            s.control.set(None);
            finish(&s, job, result);
        }
        Request::SavedRun { .. } => post_saved_run().await,
        Request::DiscardSavedRun { job } => {
            if let Err(e) = store::discard().await {
                fail(Some(job), FailureKind::Internal, e);
            }
            post_saved_run().await;
        }
        // Acted on as they arrive (`receive`).
        Request::TunePause { .. } | Request::TuneResume { .. } | Request::TuneStop { .. } => {}
        Request::LmLoss { job, text, rule } => {
            let result = lm_loss::lm_loss(&s, job, &text, rule).await;
            finish(&s, job, result);
        }
        Request::Export { job } => {
            let result = export::export(&s, job).await;
            finish(&s, job, result);
        }
    }
}

/// Tells the page about the kept run. Storage that cannot be read counts as nothing kept (the
/// page has nothing to offer then), with the reason on the console.
async fn post_saved_run() {
    let run = match store::load().await {
        Ok(record) => record.map(|r| Box::new(r.run)),
        Err(e) => {
            web_sys::console::warn_1(&e.into());
            None
        }
    };
    post(&Reply::SavedRun { run });
}

/// The training loop acts on it between steps and says so itself: a step under way when the
/// message came still ends and is reported first. A control for a run that has ended (a stop
/// sent as the last epoch finished) has nothing to act on.
fn set_control(s: &Session, job: u64, control: Control) {
    if s.tune_job.get() == Some(job) && s.control.get().is_some() {
        s.control.set(Some(control));
    }
}

/// Reports a failed job; only a failed read-back from the GPU is taken as a lost device.
fn finish(s: &Session, job: u64, result: Result<(), Error>) {
    if let Err(e) = result {
        let kind = FailureKind::of(&e, s.on_gpu());
        if kind == FailureKind::DeviceLost {
            // a lost device is never handed out again
            s.auto_gpu.borrow_mut().take();
        }
        fail(Some(job), kind, e);
    }
}

fn loaded(s: &Session) -> Result<(Rc<LanguageModel>, MaskedLm, Rc<ModelBytes>), Error> {
    s.model
        .borrow()
        .as_ref()
        .map(|m| (m.lm.clone(), m.current.clone(), m.files.clone()))
        .ok_or_else(|| Error::Input("no model is loaded yet".into()))
}
