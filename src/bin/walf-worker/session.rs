//! The worker's one session: the device, the loaded model (its files kept, so tuning and a move
//! to the CPU can rebuild it), the current weights, and a WALF run that can be paused.
//!
//! Requests are handled as they arrive; a long job awaits between steps, so a pause or stop
//! sent meanwhile is read. State is cloned out of the `RefCell` before any await.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use burn::module::Module;
use burn::tensor::Device;
use js_sys::{Array, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, WorkerGlobalScope};

use walf_lab::Error;
use walf_lab::config::{MemoryBudget, ModelConfig};
use walf_lab::data::{Benchmark, PHRASES_TSV, PROFESSIONS_TSV, TEMPLATES_TSV};
use walf_lab::engine::{LanguageModel, ModelFiles};
use walf_lab::hub;
use walf_lab::lm_loss::{LmLossSettings, LossRule, passages};
use walf_lab::measure::{MeasureInput, ProbeResult, ProbeSettings, Progress, SentencePlan};
use walf_lab::model::MaskedLm;
use walf_lab::protocol::*;
use walf_lab::walf::{WalfConfig, WalfTrainer};

use crate::backend;
use crate::net::{FetchError, fetch_bytes, sleep};
use crate::pool::{self, Pool};
use crate::product;
use crate::store::{self, RunRecord};

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
        self.fingerprint
            .get_or_init(|| store::fingerprint(&[&self.config, &self.tokenizer, &self.weights]))
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
        if self.pool.borrow().is_none() {
            *self.pool.borrow_mut() = Pool::start(pool::helper_count()).map(Rc::new);
        }
        self.pool.borrow().clone()
    }

    fn on_cpu(&self) -> bool {
        self.device
            .borrow()
            .as_ref()
            .is_some_and(|(_, info, _)| !info.gpu)
    }
}

thread_local! {
    static SESSION: Rc<Session> = Rc::new(Session::default());
}

fn post(reply: &Reply) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let message = Array::of1(&JsValue::from_str(&reply.to_json()));
    let _ = scope.post_message(&message);
}

/// A reply with files: the bytes are moved to the page, not copied.
fn post_with_files(reply: &Reply, files: &[&[u8]]) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let message = Array::of1(&JsValue::from_str(&reply.to_json()));
    let transfer = Array::new();
    for bytes in files {
        let array = Uint8Array::from(*bytes);
        transfer.push(&array.buffer());
        message.push(&array);
    }
    let _ = scope.post_message_with_transfer(&message, &transfer);
}

fn fail(job: Option<u64>, error: impl std::fmt::Display, device_lost: bool) {
    post(&Reply::Failed {
        job,
        message: error.to_string(),
        device_lost,
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
    // and starts a fresh worker.
    std::panic::set_hook(Box::new(|info| {
        let message = format!("the engine stopped unexpectedly: {info}");
        web_sys::console::error_1(&message.clone().into());
        fail(None, message, false);
    }));
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(|event: MessageEvent| {
        let data = Array::from(&event.data());
        let Some(text) = data.get(0).as_string() else {
            fail(None, "a message to the engine was not understood", false);
            return;
        };
        let files: Vec<Vec<u8>> = (1..data.length())
            .map(|i| Uint8Array::new(&data.get(i)).to_vec())
            .collect();
        match Request::from_json(&text) {
            Ok(request) => receive(request, files),
            Err(e) => fail(None, e, false),
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
        Request::TunePause => return set_control(&s, Control::Pause),
        Request::TuneResume => return set_control(&s, Control::Run),
        Request::TuneStop => return set_control(&s, Control::Stop),
        _ => {}
    }
    if s.tune_job.get().is_some() {
        let refusal = match &request {
            Request::Load { .. } => {
                Some((None, "stop the tuning run before loading another model"))
            }
            Request::TuneStart { job, .. } | Request::TuneRestore { job } => {
                Some((Some(*job), "a tuning run is already going"))
            }
            Request::DiscardSavedRun => Some((None, "a tuning run is going: stop it first")),
            _ => None,
        };
        if let Some((job, message)) = refusal {
            return fail(job, message, false);
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
        Request::Load { source, backend } => {
            if let Err(message) = load(&s, source, backend, files).await {
                fail(None, message, false);
            }
        }
        Request::Probe {
            job,
            split,
            benchmark,
        } => {
            let result = probe(&s, job, split, &benchmark).await;
            finish(&s, job, result);
        }
        Request::Fill { job, text, top } => {
            let result = fill(&s, job, &text, top).await;
            finish(&s, job, result);
        }
        Request::TuneStart {
            job,
            settings,
            benchmark,
        } => {
            s.tune_job.set(Some(job));
            s.control.set(Some(Control::Run));
            let result = tune(&s, job, settings, &benchmark).await;
            s.tune_job.set(None);
            s.control.set(None);
            finish(&s, job, result);
        }
        Request::TuneRestore { job } => {
            s.tune_job.set(Some(job));
            s.control.set(Some(Control::Run));
            let result = restore(&s, job).await;
            s.tune_job.set(None);
            s.control.set(None);
            finish(&s, job, result);
        }
        Request::SavedRun => post_saved_run().await,
        Request::DiscardSavedRun => {
            if let Err(e) = store::discard().await {
                fail(None, e, false);
            }
            post_saved_run().await;
        }
        // Acted on as they arrive (`receive`).
        Request::TunePause | Request::TuneResume | Request::TuneStop => {}
        Request::LmLoss { job, text, rule } => {
            let result = lm_loss(&s, job, &text, rule).await;
            finish(&s, job, result);
        }
        Request::Export { job } => {
            let result = export(&s, job).await;
            finish(&s, job, result);
        }
    }
}

/// Tells the page about the kept run. Storage that cannot be read counts as nothing kept (the
/// page has nothing to offer then), with the reason on the console.
async fn post_saved_run() {
    let run = match store::load().await {
        Ok(record) => record.map(|r| r.run),
        Err(e) => {
            web_sys::console::warn_1(&e.into());
            None
        }
    };
    post(&Reply::SavedRun { run });
}

/// The training loop acts on it between steps and says so itself: a step under way when the
/// message came still ends and is reported first.
fn set_control(s: &Session, control: Control) {
    if s.control.get().is_some() {
        s.control.set(Some(control));
    }
}

/// Reports a failed job; a failure reading from the GPU is taken as a lost device.
fn finish(s: &Session, job: u64, result: Result<(), Error>) {
    if let Err(e) = result {
        let on_gpu = s
            .device
            .borrow()
            .as_ref()
            .is_some_and(|(_, info, _)| info.gpu);
        let device_lost = on_gpu && matches!(e, Error::Backend(_));
        fail(Some(job), e, device_lost);
    }
}

fn loaded(s: &Session) -> Result<(Rc<LanguageModel>, MaskedLm, Rc<ModelBytes>), Error> {
    s.model
        .borrow()
        .as_ref()
        .map(|m| (m.lm.clone(), m.current.clone(), m.files.clone()))
        .ok_or_else(|| Error::Input("no model is loaded yet".into()))
}

async fn fetch_file(
    url: &str,
    label: &str,
    use_cache: bool,
    on_error: &dyn Fn(FetchError) -> String,
) -> Result<(Vec<u8>, bool), String> {
    let what = format!("downloading {label}");
    let mut last = 0u64;
    let limit = MemoryBudget::default().model_bytes;
    let fetched = fetch_bytes(url, use_cache, limit, &mut |done, total| {
        // About a hundred messages per file at most, and always the first and the last.
        let step = (total / 100).clamp(64 << 10, 1 << 20);
        if done == 0 || done == total || done >= last + step {
            last = done;
            progress(None, &what, done, total);
        }
    })
    .await
    .map_err(|e| {
        e.message(&format!("{label} ({url})"))
            .unwrap_or_else(|| on_error(e))
    })?;
    Ok((fetched.bytes, fetched.downloaded))
}

async fn load(
    s: &Session,
    source: ModelSource,
    choice: BackendChoice,
    mut files: Vec<Vec<u8>>,
) -> Result<(), String> {
    let (device, info) = open_device(s, choice).await;
    mark("backend open");
    if !info.gpu && matches!(source, ModelSource::Bundled { .. }) {
        // The bundled model is small: helpers start now and load their WebAssembly while the
        // files download.
        s.pool();
    } else if info.gpu {
        pool::end_early_helpers();
    }
    let (bytes, downloaded) = match source {
        ModelSource::Bundled { base } => {
            let mut got = Vec::new();
            for (file, url) in hub::MODEL_FILES
                .into_iter()
                .zip(ModelSource::bundled_files(&base))
            {
                let on_error = |e: FetchError| {
                    format!("the bundled model's {file} could not be read from {url}: {e:?}")
                };
                mark(&format!("fetching {file}"));
                got.push(fetch_file(&url, file, false, &on_error).await?.0);
                mark(&format!("fetched {file}"));
            }
            let files = <[Vec<u8>; 3]>::try_from(got).expect("three files");
            let source = ModelSource::Bundled { base: base.clone() };
            (
                ModelBytes::new(ModelSource::bundled_name(&base), source, files),
                false,
            )
        }
        ModelSource::Hub { id, base } => {
            let id = hub::check_model_id(&id)
                .map_err(|e| e.to_string())?
                .to_string();
            let base = hub::check_base(&base).map_err(|e| e.to_string())?;
            let mut got = Vec::new();
            let mut downloaded = false;
            for file in hub::MODEL_FILES {
                let url = hub::resolve_url(&base, &id, file);
                let on_error = |e: FetchError| match e {
                    FetchError::NotFound => hub::missing_file_message(&id, file),
                    FetchError::Status(code, text) => hub::status_message(&id, file, code, &text),
                    FetchError::Network(why) => format!(
                        "{base} could not be reached for {id}'s {file} ({why}); check the \
                         connection or the mirror address"
                    ),
                    FetchError::TooLarge(..) => {
                        e.message(&format!("{id}'s {file}")).unwrap_or_default()
                    }
                };
                let (bytes, fresh) = fetch_file(&url, file, true, &on_error).await?;
                downloaded |= fresh;
                if file == "config.json" {
                    // Refuse an unsupported architecture or a model beyond the memory budget
                    // before the large download.
                    ModelConfig::from_json(&bytes)
                        .and_then(|c| c.check_memory(MemoryBudget::default()))
                        .map_err(|e| format!("{id}: {e}"))?;
                }
                got.push(bytes);
            }
            let files = <[Vec<u8>; 3]>::try_from(got).expect("three files");
            let source = ModelSource::Hub {
                id: id.clone(),
                base: base.clone(),
            };
            (ModelBytes::new(id, source, files), downloaded)
        }
        ModelSource::Local { name } => {
            if files.len() != 3 {
                return Err(
                    "pick three files: config.json, tokenizer.json and model.safetensors".into(),
                );
            }
            let weights = files.pop().expect("three");
            let tokenizer = files.pop().expect("three");
            let config = files.pop().expect("three");
            let source = ModelSource::Local { name: name.clone() };
            (
                ModelBytes::new(name, source, [config, tokenizer, weights]),
                false,
            )
        }
    };
    let generation = s.next_generation();
    if !info.gpu && bytes.weights.len() <= pool::MAX_SHARED_WEIGHTS {
        // Helpers build their copies while this worker builds its own.
        if let Some(pool) = s.pool() {
            pool.load(generation, bytes.config.clone(), bytes.weights.clone());
        }
    } else {
        // Helpers serve the CPU backend and small models only; they would hold memory in vain.
        s.pool.borrow_mut().take();
    }
    mark("files read");
    progress(None, "building the model", 0, 1);
    let lm = LanguageModel::load(bytes.files(), &device).map_err(|e| e.to_string())?;
    mark("model built");
    let reply = Reply::Loaded {
        name: bytes.name.clone(),
        architecture: lm.config.architecture.name().to_string(),
        parameters: lm.model.num_params(),
        vocab_size: lm.config.vocab_size,
        mask_token: lm.tokenizer.mask_token().to_string(),
        backend: info,
        downloaded,
    };
    let current = lm.model.clone();
    *s.model.borrow_mut() = Some(Loaded {
        files: Rc::new(bytes),
        lm: Rc::new(lm),
        current,
        generation,
    });
    post(&reply);
    Ok(())
}

async fn open_device(s: &Session, choice: BackendChoice) -> (Device, BackendInfo) {
    let same = s
        .device
        .borrow()
        .as_ref()
        .filter(|(_, _, c)| *c == choice)
        .map(|(d, i, _)| (d.clone(), i.clone()));
    if let Some(opened) = same {
        return opened;
    }
    progress(None, "starting the backend", 0, 1);
    let (device, info) = backend::open(choice).await;
    *s.device.borrow_mut() = Some((device.clone(), info.clone(), choice));
    (device, info)
}

fn benchmark(edits: &BenchmarkEdits) -> Result<Benchmark, Error> {
    Benchmark::from_tsv(
        edits.professions_tsv.as_deref().unwrap_or(PROFESSIONS_TSV),
        edits.templates_tsv.as_deref().unwrap_or(TEMPLATES_TSV),
        edits.phrases_tsv.as_deref().unwrap_or(PHRASES_TSV),
    )
}

fn now_seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// The measure with helpers computing batches too (`pool`); `None` when the weights are too
/// large to copy (or the helpers are taken, which jobs running one at a time should prevent).
async fn probe_shared(
    pool: &Pool,
    lm: &LanguageModel,
    current: &MaskedLm,
    generation: u64,
    files: &ModelBytes,
    input: MeasureInput<'_>,
    report: &mut dyn FnMut(Progress),
) -> Result<Option<(ProbeResult, usize)>, Error> {
    let Some(claim) = pool.claim() else {
        return Ok(None);
    };
    if pool.generation() != Some(generation) {
        // Tuned weights: the helpers get a copy (the loaded ones were sent at load).
        let weights = current.to_safetensors_f32().await?;
        if weights.len() > pool::MAX_SHARED_WEIGHTS {
            return Ok(None);
        }
        pool.load(generation, files.config.clone(), weights);
    }
    let plan = SentencePlan::new(&lm.tokenizer, input, lm.max_len())?;
    let batches = plan.batches(ProbeSettings::default().batch_size);
    let total = plan.sentences.len();
    let (log_probs, threads) = claim
        .log_probs(
            &plan,
            &batches,
            generation,
            current,
            lm.tokenizer.pad_id(),
            &mut |done| report(Progress { done, total }),
        )
        .await?;
    Ok(Some((log_probs.score(&plan, input)?, threads)))
}

async fn probe(
    s: &Session,
    job: u64,
    split: walf_lab::data::Split,
    edits: &BenchmarkEdits,
) -> Result<(), Error> {
    let (lm, current, files) = loaded(s)?;
    let generation = s.model.borrow().as_ref().map_or(0, |m| m.generation);
    let bench = benchmark(edits)?;
    let data = bench.split(split);
    if data.professions.is_empty() {
        return Err(Error::Input(format!(
            "the {} split has no professions",
            split.label()
        )));
    }
    let started = now_seconds();
    mark("probe started");
    let mut report = |p: Progress| progress(Some(job), "measuring", p.done as u64, p.total as u64);
    let pool = s.on_cpu().then(|| s.pool.borrow().clone()).flatten();
    let shared = match pool.filter(|p| p.alive()) {
        Some(pool) => {
            let input = data.input();
            probe_shared(&pool, &lm, &current, generation, &files, input, &mut report).await?
        }
        None => None,
    };
    let (result, threads) = match shared {
        Some(shared) => shared,
        None => {
            let settings = ProbeSettings::default();
            let result = lm
                .probe_weights(&current, data.input(), settings, &mut report)
                .await?;
            (result, 1)
        }
    };
    let reply = ProbeReply {
        split,
        professions: result.professions.iter().map(ProfessionRow::from).collect(),
        scores: result
            .raw
            .iter()
            .map(|r| ScoreRow {
                template_id: r.template_id.clone(),
                profession: r.profession.clone(),
                word: r.gendered_word.clone(),
                gender: r.gender,
                score: r.score,
            })
            .collect(),
        forward_sentences: result.forward_sentences,
        seconds: now_seconds() - started,
        threads,
    };
    mark("probe finished");
    post(&Reply::Probed { job, result: reply });
    Ok(())
}

async fn fill(s: &Session, job: u64, text: &str, top: usize) -> Result<(), Error> {
    let (lm, current, _) = loaded(s)?;
    let predictions = lm
        .fill_mask_weights(&current, text, top.clamp(1, 50))
        .await?;
    let gender_ids: Vec<(String, Option<u32>)> = ["he", "she", "man", "woman"]
        .iter()
        .map(|w| {
            let ids = lm.tokenizer.word_ids(w, false).unwrap_or_default();
            (w.to_string(), (ids.len() == 1).then(|| ids[0]))
        })
        .collect();
    let masks = predictions
        .into_iter()
        .map(|p| MaskFill {
            position: p.position,
            gender_words: gender_ids
                .iter()
                .filter_map(|(w, id)| id.map(|id| (w.clone(), p.probabilities[id as usize] as f64)))
                .collect(),
            top: p.top,
        })
        .collect();
    post(&Reply::Filled { job, masks });
    Ok(())
}

/// A run's records so far, as the page and the kept run hold them.
#[derive(Default)]
struct History {
    steps: Vec<TuneStepReply>,
    epochs: Vec<TuneEpochReply>,
    baseline: Option<TuneBaselineReply>,
}

async fn tune(
    s: &Session,
    job: u64,
    settings: TuneSettings,
    edits: &BenchmarkEdits,
) -> Result<(), Error> {
    let (lm, _, files) = loaded(s)?;
    let bench = benchmark(edits)?;
    let device = lm.model.device();
    progress(Some(job), "preparing the model for training", 0, 1);
    // A new run replaces a kept one.
    if let Err(e) = store::discard().await {
        web_sys::console::warn_1(&e.into());
    }
    // Training needs the weights on an autodiff device, built there directly.
    let mut trainable = LanguageModel::load(files.files(), &device.autodiff())?;
    if !settings.dropout {
        trainable.model.set_dropout(0.0, 0.0);
    }
    let trainer = WalfTrainer::new(trainable, &bench, WalfConfig::from_settings(&settings))?;
    // Where the valid-KL curve and the live chart start.
    progress(Some(job), "measuring the valid split before tuning", 0, 1);
    let validation = trainer.validation().await?;
    let baseline = TuneBaselineReply {
        valid_kl: validation.kl,
        professions: validation
            .professions
            .iter()
            .map(ProfessionRow::from)
            .collect(),
    };
    post(&Reply::TuneBaseline {
        job,
        baseline: baseline.clone(),
    });
    let history = History {
        baseline: Some(baseline),
        ..History::default()
    };
    train(s, job, trainer, settings, edits, history).await
}

/// Goes on with the run kept in the browser's storage.
async fn restore(s: &Session, job: u64) -> Result<(), Error> {
    let (lm, _, files) = loaded(s)?;
    progress(Some(job), "reading the kept run", 0, 1);
    let record = store::load()
        .await
        .map_err(Error::Input)?
        .ok_or_else(|| Error::Input("no WALF run is kept in this browser".into()))?;
    if record.model_fingerprint != files.fingerprint() {
        return Err(Error::Input(format!(
            "the kept run was made with {}; load that model to go on with it ({} is loaded)",
            record.run.model, files.name
        )));
    }
    let settings = record.run.settings.clone();
    let edits = record.run.benchmark.clone();
    let bench = benchmark(&edits)?;
    let device = lm.model.device();
    fn saved<'a>(files: &'a ModelBytes, weights: &'a [u8]) -> ModelFiles<'a> {
        ModelFiles {
            config: &files.config,
            tokenizer: &files.tokenizer,
            weights,
            weights_name: "the kept run's weights",
        }
    }
    let last_file = record.last_file();
    let last = store::read_weights(&last_file)
        .await
        .map_err(Error::Input)?;
    let mut trainable = LanguageModel::load(saved(&files, &last), &device.clone().autodiff())?;
    trainable.model.keep_dtypes_of(&lm.model);
    if !settings.dropout {
        trainable.model.set_dropout(0.0, 0.0);
    }
    let best = match record.best_file() {
        Some(name) if name == last_file => Some(trainable.model.valid()),
        Some(name) => {
            let bytes = store::read_weights(&name).await.map_err(Error::Input)?;
            let mut best = LanguageModel::load(saved(&files, &bytes), &device)?.model;
            best.keep_dtypes_of(&lm.model);
            Some(best)
        }
        None => None,
    };
    let trainer = WalfTrainer::resume(
        trainable,
        best,
        &bench,
        WalfConfig::from_settings(&settings),
        record.state.clone(),
    )?;
    let history = History {
        steps: record.run.steps,
        epochs: record.run.epochs,
        baseline: record.run.baseline,
    };
    train(s, job, trainer, settings, &edits, history).await
}

/// Keeps the run after an epoch; a failure to keep it is reported but does not stop training.
async fn keep(
    files: &ModelBytes,
    trainer: &WalfTrainer,
    settings: &TuneSettings,
    edits: &BenchmarkEdits,
    history: &History,
) -> Result<usize, String> {
    let state = trainer
        .state()
        .ok_or("the run is not at the end of an epoch")?;
    let last = trainer
        .language_model()
        .model
        .valid()
        .to_safetensors_f32()
        .await
        .map_err(|e| e.to_string())?;
    let epochs_done = state.epochs_done;
    let record = RunRecord {
        version: 0,
        run: SavedRun {
            model: files.name.clone(),
            source: files.source.clone(),
            settings: settings.clone(),
            benchmark: edits.clone(),
            epochs_done,
            steps_done: state.steps_done,
            best: state.best,
            steps: history.steps.clone(),
            epochs: history.epochs.clone(),
            baseline: history.baseline.clone(),
            saved_at: js_sys::Date::now(),
        },
        state,
        model_fingerprint: files.fingerprint().to_string(),
    };
    store::save(record, &last).await?;
    Ok(epochs_done)
}

async fn train(
    s: &Session,
    job: u64,
    mut trainer: WalfTrainer,
    settings: TuneSettings,
    edits: &BenchmarkEdits,
    mut history: History,
) -> Result<(), Error> {
    let (_, _, files) = loaded(s)?;
    let mut steps = trainer.steps_done();
    let outcome: Result<String, Error> = loop {
        // Let pause and stop messages in.
        sleep(0).await;
        if s.control.get() == Some(Control::Pause) {
            post(&Reply::TunePaused { job, paused: true });
            while s.control.get() == Some(Control::Pause) {
                sleep(100).await;
            }
            if s.control.get() != Some(Control::Stop) {
                post(&Reply::TunePaused { job, paused: false });
            }
        }
        if s.control.get() == Some(Control::Stop) {
            break Ok(format!("stopped after {steps} steps"));
        }
        match trainer.step().await {
            Ok(Some(record)) => {
                steps += 1;
                let step = TuneStepReply {
                    step: steps,
                    epoch: record.epoch,
                    batch: record.batch,
                    batches: record.batches,
                    group: record.group,
                    kl: record.kl,
                    mlm_loss: record.mlm_loss,
                    lambda: record.lambda,
                    scale: record.scale,
                    total_loss: record.total_loss,
                };
                post(&Reply::TuneStep {
                    job,
                    step: step.clone(),
                });
                history.steps.push(step);
                if settings.max_steps.is_some_and(|m| steps >= m) {
                    break Ok(format!("reached the step limit ({steps} steps)"));
                }
            }
            Ok(None) => match trainer.validate().await {
                Ok(epoch) => {
                    let reply = TuneEpochReply {
                        epoch: epoch.epoch,
                        train_loss: epoch.train_loss,
                        valid_kl: epoch.valid_kl,
                        improved: epoch.improved,
                        best_epoch: epoch.best_epoch,
                        valid_professions: epoch
                            .valid_professions
                            .iter()
                            .map(ProfessionRow::from)
                            .collect(),
                    };
                    post(&Reply::TuneEpoch {
                        job,
                        epoch: reply.clone(),
                    });
                    history.epochs.push(reply);
                    if epoch.finished {
                        break Ok(format!(
                            "finished after {} epochs; the best was epoch {}",
                            epoch.epoch + 1,
                            epoch.best_epoch + 1
                        ));
                    }
                    progress(
                        Some(job),
                        "keeping the epoch in the browser's storage",
                        0,
                        1,
                    );
                    match keep(&files, &trainer, &settings, edits, &history).await {
                        Ok(epochs_done) => post(&Reply::TuneSaved { job, epochs_done }),
                        Err(e) => post(&Reply::Warning {
                            message: format!(
                                "this run cannot be kept in the browser's storage ({e}); it goes \
                                 on, but a reload or a crash would lose it"
                            ),
                        }),
                    }
                }
                Err(e) => break Err(e),
            },
            Err(e) => break Err(e),
        }
    };
    // Whatever happened, the best weights so far become the model's.
    let best = trainer.best_model();
    let generation = s.next_generation();
    if let Some(m) = s.model.borrow_mut().as_mut() {
        m.current = best;
        m.generation = generation;
    }
    let reason = outcome?;
    // The run ended as asked: nothing to go on with. (After a failure the kept run stays, to
    // go on from its last good epoch, on the CPU if the GPU was lost.)
    if let Err(e) = store::discard().await {
        web_sys::console::warn_1(&e.into());
    }
    post(&Reply::TuneFinished { job, reason, steps });
    Ok(())
}

async fn lm_loss(s: &Session, job: u64, text: &str, rule: LossRule) -> Result<(), Error> {
    let (lm, current, _) = loaded(s)?;
    let passages = passages(text);
    let mut report = |p: walf_lab::measure::Progress| {
        progress(Some(job), "masked-LM loss", p.done as u64, p.total as u64)
    };
    let settings = LmLossSettings {
        rule,
        ..LmLossSettings::default()
    };
    let before = lm
        .lm_loss_weights(&lm.model, &passages, settings, &mut report)
        .await?;
    let after = lm
        .lm_loss_weights(&current, &passages, settings, &mut report)
        .await?;
    post(&Reply::LmLoss {
        job,
        before: before.loss,
        after: after.loss,
        tokens: before.masked_tokens,
        rule,
    });
    Ok(())
}

async fn export(s: &Session, job: u64) -> Result<(), Error> {
    let (lm, current, files) = loaded(s)?;
    progress(Some(job), "exporting", 0, 1);
    let exported = lm.export(&current).await?;
    post_with_files(
        &Reply::Exported {
            job,
            name: files.name.clone(),
        },
        &[
            &exported.config_json,
            &exported.tokenizer_json,
            &exported.safetensors,
        ],
    );
    Ok(())
}
