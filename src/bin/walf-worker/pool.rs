//! Helper workers for the CPU backend. WebAssembly runs a worker on one thread, so a probe on the
//! CPU backend would use one core of many. The engine worker starts one helper per further core
//! (`web/walf-helper.js` runs this worker's compiled module under the name `walf-helper`), gives
//! each a copy of the weights, and hands out batches of masked sentences as helpers become free,
//! computing batches itself meanwhile. The numbers are those of one thread: the batches are the
//! same, only where each runs changes. A helper that fails or dies is dropped and its batches run
//! here.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use burn::tensor::Device;
use js_sys::{Array, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, ErrorEvent, MessageEvent, Worker, WorkerOptions};

use walf_lab::Error;
use walf_lab::config::ModelConfig;
use walf_lab::measure::{MaskedSentence, SentenceLogProbs, SentencePlan, batch_log_probs};
use walf_lab::model::{Inference, MaskedLm};
use walf_lab::weights::Weights;

use crate::dispatch::{Dispatch, helpers_within};
use crate::net::{here, js_error, scope, sleep};
use crate::transport::{self, Buffer, Received};

/// The name a helper is started under; the script reads it to know what it is.
const HELPER_NAME: &str = "walf-helper";
/// The helper's script (`web/walf-helper.js`), beside this worker's: it waits for this
/// worker's compiled module and runs it.
const HELPER_SCRIPT: &str = "walf-helper.js";
/// At most this many helpers, whatever the core count: each holds a copy of the model.
const MAX_HELPERS: usize = 3;
/// A helper that has answered nothing for this long while this worker has nothing left to do,
/// and for four times the slowest batch computed here, is taken for dead (a worker can end
/// without an error event) and its batches run here.
const SILENT_HELPER_MS: f64 = 5_000.0;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ToHelper {
    /// Followed by config.json and model.safetensors.
    Load { generation: u64 },
    Batch {
        generation: u64,
        id: u64,
        /// Each sentence's token ids and masked positions.
        sentences: Vec<(Vec<u32>, Vec<usize>)>,
        candidates: Vec<u32>,
        pad_id: u32,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum FromHelper {
    Ready,
    Loaded {
        generation: u64,
    },
    /// Followed by the batch's log-probabilities.
    LogProbs {
        id: u64,
    },
    /// The weights could not be loaded (the engine worker says why to the page when it fails
    /// on them too): the helper is dropped.
    LoadFailed {
        generation: u64,
    },
    Failed {
        id: Option<u64>,
        message: String,
    },
}

/// True in a helper: the script then serves batches instead of the page.
pub fn is_helper() -> bool {
    js_sys::global()
        .dyn_into::<DedicatedWorkerGlobalScope>()
        .is_ok_and(|s| s.name() == HELPER_NAME)
}

// ---------------------------------------------------------------------------------------------
// The helper's side.

thread_local! {
    static HELPER_MODEL: RefCell<Option<(u64, Rc<Inference>)>> = const { RefCell::new(None) };
}

fn post_to_parent(message: &FromHelper, values: Option<Vec<f32>>) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let text = serde_json::to_string(message).expect("helper messages serialise");
    let buffers: Vec<Buffer> = values.as_deref().map(Buffer::Floats).into_iter().collect();
    let (data, transfer) = transport::envelope(&text, &buffers);
    let _ = scope.post_message_with_transfer(&data, &transfer);
}

/// A helper's life: load the weights it is sent, answer batches.
pub fn serve() {
    std::panic::set_hook(Box::new(|info| {
        post_to_parent(
            &FromHelper::Failed {
                id: None,
                message: format!("a helper stopped: {info}"),
            },
            None,
        );
    }));
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let take_in = |data: JsValue| {
        let received = Received::new(&data);
        let request = received
            .text
            .as_deref()
            .and_then(|text| serde_json::from_str::<ToHelper>(text).ok());
        match request {
            Some(request) => wasm_bindgen_futures::spawn_local(answer(request, received.files())),
            None => post_to_parent(
                &FromHelper::Failed {
                    id: None,
                    message: "a message to a helper was not understood".into(),
                },
                None,
            ),
        }
    };
    let on_message =
        Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| take_in(event.data()));
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // What arrived while the module started (`web/walf-helper.js` kept it), in order: the
    // engine worker sends the weights and the first batches without waiting for this helper.
    if let Ok(pending) = Reflect::get(&scope, &"walfPending".into())
        && let Ok(pending) = pending.dyn_into::<Array>()
    {
        for data in pending.iter() {
            take_in(data);
        }
        pending.set_length(0);
    }
    post_to_parent(&FromHelper::Ready, None);
}

fn load_model(files: &[Vec<u8>]) -> Result<MaskedLm, Error> {
    let [config, weights] = files else {
        return Err(Error::Input(
            "a helper needs config.json and weights".into(),
        ));
    };
    let config = ModelConfig::from_json(config)?;
    let weights = Weights::parse("model.safetensors", weights)?;
    MaskedLm::load(&config, &weights, &Device::flex())
}

async fn answer(request: ToHelper, files: Vec<Vec<u8>>) {
    match request {
        ToHelper::Load { generation } => match load_model(&files) {
            Ok(model) => {
                let model = Rc::new(model.for_inference());
                HELPER_MODEL.with(|m| *m.borrow_mut() = Some((generation, model)));
                post_to_parent(&FromHelper::Loaded { generation }, None);
            }
            Err(_) => {
                HELPER_MODEL.with(|m| m.borrow_mut().take());
                post_to_parent(&FromHelper::LoadFailed { generation }, None);
            }
        },
        ToHelper::Batch {
            generation,
            id,
            sentences,
            candidates,
            pad_id,
        } => {
            let model = HELPER_MODEL.with(|m| {
                m.borrow()
                    .as_ref()
                    .filter(|(g, _)| *g == generation)
                    .map(|(_, model)| model.clone())
            });
            let result = match model {
                Some(model) => run_batch(&model, sentences, &candidates, pad_id).await,
                None => Err(Error::Input(
                    "a helper was sent a batch for other weights".into(),
                )),
            };
            match result {
                Ok(values) => post_to_parent(&FromHelper::LogProbs { id }, Some(values)),
                Err(e) => post_to_parent(
                    &FromHelper::Failed {
                        id: Some(id),
                        message: e.to_string(),
                    },
                    None,
                ),
            }
        }
    }
}

async fn run_batch(
    model: &Inference,
    sentences: Vec<(Vec<u32>, Vec<usize>)>,
    candidates: &[u32],
    pad_id: u32,
) -> Result<Vec<f32>, Error> {
    let vocab = model.model().vocab_size();
    let fits = |id: u32| (id as usize) < vocab;
    if candidates.iter().any(|&c| !fits(c))
        || sentences.iter().any(|(ids, positions)| {
            ids.iter().any(|&i| !fits(i)) || positions.iter().any(|&p| p >= ids.len())
        })
    {
        return Err(Error::Input(
            "a helper was sent token ids beyond the vocabulary".into(),
        ));
    }
    let sentences: Vec<MaskedSentence> = sentences
        .into_iter()
        .map(|(ids, positions)| MaskedSentence {
            text: String::new(),
            ids,
            positions,
        })
        .collect();
    let refs: Vec<&MaskedSentence> = sentences.iter().collect();
    batch_log_probs(model, &refs, pad_id, candidates).await
}

// ---------------------------------------------------------------------------------------------
// The engine worker's side.

/// A helper's worker. Which weights it holds (it takes messages in order, so batches for them
/// can follow at once), whether it is alive and which batches it has are `Dispatch`'s.
struct Helper {
    worker: Worker,
    /// When it last answered or was given work (ms since the epoch).
    last_active: f64,
}

struct SharedModel {
    generation: u64,
    /// config.json and the weights, until every helper has been sent them.
    files: Option<Rc<[Vec<u8>; 2]>>,
}

type Listeners = (Closure<dyn Fn(MessageEvent)>, Closure<dyn Fn(ErrorEvent)>);

#[derive(Default)]
struct Shared {
    helpers: Vec<Helper>,
    dispatch: Dispatch,
    /// The running probe's first batch id: batch `b` travels as `first + b`, so that an answer
    /// of an earlier probe is known as such.
    first: u64,
    /// The weights helpers should hold.
    model: Option<SharedModel>,
    /// Answers not yet taken in: batch, values, helper.
    answers: Vec<(usize, Vec<f32>, usize)>,
    /// Wakes the probe waiting for an answer.
    wake: Option<js_sys::Function>,
}

pub struct Pool {
    shared: Rc<RefCell<Shared>>,
    next_id: Cell<u64>,
    /// A probe is using the helpers (another one, started meanwhile, runs on one core).
    busy: Cell<bool>,
    // Kept alive as long as the helpers are.
    _listeners: Vec<Listeners>,
}

/// The helpers, held by one probe.
pub struct Claim<'p>(&'p Pool);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.busy.set(false);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for helper in &self.shared.borrow().helpers {
            helper.worker.terminate();
        }
    }
}

/// The helpers this worker's first script started while the WebAssembly compiled
/// (`web/walf-worker-loader.js`), taken over at most once: they wait for the module.
fn early_helpers() -> Vec<Worker> {
    let Ok(started) = Reflect::get(&scope(), &"walfHelpers".into()) else {
        return Vec::new();
    };
    let Ok(started) = started.dyn_into::<Array>() else {
        return Vec::new();
    };
    let workers = started.iter().filter_map(|w| w.dyn_into().ok()).collect();
    started.set_length(0);
    workers
}

/// Ends the helpers started early when no pool will take them (the GPU runs the model).
pub fn end_early_helpers() {
    for worker in early_helpers() {
        worker.terminate();
    }
}

/// Helpers worth starting here: one per core beyond this worker's (`web/walf-worker-loader.js`
/// starts as many early).
pub fn helper_count() -> usize {
    let cores = scope().navigator().hardware_concurrency() as usize;
    cores.saturating_sub(1).min(MAX_HELPERS)
}

/// Memory a helper's copy of a model costs: the weights file it is sent, the model's f32
/// tensors and their packed copy (WebAssembly memory never shrinks, so its peak is what it
/// keeps). `None` for a file that is not safetensors.
fn helper_copy_bytes(weights: &[u8]) -> Option<u64> {
    let values = Weights::parse("model.safetensors", weights)
        .ok()?
        .value_count() as u64;
    Some(weights.len() as u64 + 2 * 4 * values)
}

/// How many helpers should hold a copy of these weights ([`helpers_within`], with this
/// device's memory as `navigator.deviceMemory` says). A model with no helper probes on this
/// worker's core alone.
pub fn helpers_for(weights: &[u8]) -> usize {
    let device_gib = Reflect::get(&scope().navigator(), &"deviceMemory".into())
        .ok()
        .and_then(|v| v.as_f64());
    helpers_within(
        helper_count(),
        weights.len(),
        helper_copy_bytes(weights),
        device_gib,
    )
}

impl Pool {
    /// Starts `count` helpers (they load their WebAssembly meanwhile); `None` when none could
    /// be started (a browser without workers in workers), which only costs speed.
    pub fn start(count: usize) -> Option<Self> {
        let url = web_sys::Url::new_with_base(HELPER_SCRIPT, &here()?)
            .ok()?
            .href();
        // Compiled code is shared, not compiled again (and already optimised where this
        // worker's is).
        let module = wasm_bindgen::module();
        let shared = Rc::new(RefCell::new(Shared::default()));
        let mut closures = Vec::new();
        let mut early = early_helpers().into_iter();
        for index in 0..count {
            let options = WorkerOptions::new();
            options.set_name(HELPER_NAME);
            let worker = match early
                .next()
                .map_or_else(|| Worker::new_with_options(&url, &options), Ok)
            {
                Ok(w) => w,
                Err(e) => {
                    web_sys::console::warn_1(&format!("no helper worker: {}", js_error(&e)).into());
                    break;
                }
            };
            let on_message = {
                let shared = shared.clone();
                Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
                    heard(&shared, index, &event.data());
                })
            };
            let on_error = {
                let shared = shared.clone();
                Closure::<dyn Fn(ErrorEvent)>::new(move |event: ErrorEvent| {
                    // Handled here: unhandled, it would reach the page as this worker's error.
                    event.prevent_default();
                    drop_helper(&shared, index, &event.message());
                })
            };
            worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            if let Err(e) = worker.post_message(&module) {
                web_sys::console::warn_1(&format!("no helper worker: {}", js_error(&e)).into());
                worker.terminate();
                break;
            }
            shared.borrow_mut().helpers.push(Helper {
                worker,
                last_active: js_sys::Date::now(),
            });
            closures.push((on_message, on_error));
        }
        for unused in early {
            unused.terminate();
        }
        if closures.is_empty() {
            return None;
        }
        {
            let mut shared = shared.borrow_mut();
            shared.dispatch = Dispatch::new(shared.helpers.len());
        }
        Some(Self {
            shared,
            next_id: Cell::new(1),
            busy: Cell::new(false),
            _listeners: closures,
        })
    }

    /// The helpers for one probe, unless another probe has them.
    pub fn claim(&self) -> Option<Claim<'_>> {
        if self.busy.replace(true) {
            return None;
        }
        Some(Claim(self))
    }

    /// The weights helpers hold (for probes of `generation`).
    pub fn generation(&self) -> Option<u64> {
        self.shared.borrow().model.as_ref().map(|m| m.generation)
    }

    /// Sends helpers these weights (a helper still starting takes them in when it runs).
    pub fn load(&self, generation: u64, config: Vec<u8>, weights: Vec<u8>) {
        let mut shared = self.shared.borrow_mut();
        shared.model = Some(SharedModel {
            generation,
            files: Some(Rc::new([config, weights])),
        });
        for index in 0..shared.helpers.len() {
            send_model(&mut shared, index);
        }
    }

    /// Helpers started (some may have failed since).
    pub fn size(&self) -> usize {
        self.shared.borrow().helpers.len()
    }

    /// Any helper alive to share work.
    pub fn alive(&self) -> bool {
        let shared = self.shared.borrow();
        (0..shared.helpers.len()).any(|i| shared.dispatch.alive(i))
    }
}

impl Claim<'_> {
    /// Every batch's log-probabilities, computed here and on helpers holding `generation` (the
    /// weights of `model`), and how many workers computed some (this one included). `on_done`
    /// hears the sentences done so far.
    pub async fn log_probs(
        &self,
        plan: &SentencePlan,
        batches: &[Vec<usize>],
        generation: u64,
        model: &MaskedLm,
        pad_id: u32,
        on_done: &mut dyn FnMut(usize),
    ) -> Result<(SentenceLogProbs, usize), Error> {
        let first = self.0.next_id.get();
        self.0.next_id.set(first + batches.len() as u64);
        let message = |batch: usize| {
            serde_json::to_string(&ToHelper::Batch {
                generation,
                id: first + batch as u64,
                sentences: batches[batch]
                    .iter()
                    .map(|&i| {
                        let s = &plan.sentences[i];
                        (s.ids.clone(), s.positions.clone())
                    })
                    .collect(),
                candidates: plan.candidate_ids.clone(),
                pad_id,
            })
            .expect("helper messages serialise")
        };
        // A batch's cost: rows × padded length.
        let costs: Vec<usize> = batches
            .iter()
            .map(|b| {
                b.len()
                    * b.iter()
                        .map(|&i| plan.sentences[i].ids.len())
                        .max()
                        .unwrap_or(0)
            })
            .collect();
        {
            let mut shared = self.0.shared.borrow_mut();
            shared.first = first;
            shared.dispatch.start(generation, &costs);
            shared.answers.clear();
            // Before packing the weights here: the helpers start meanwhile.
            hand_out(&mut shared, &message);
        }
        let model = model.for_inference();
        let candidates = &plan.candidate_ids;
        let mut log_probs = SentenceLogProbs::new(plan);
        let mut sentences_done = 0;
        let mut helpers_used = vec![false; self.0.shared.borrow().helpers.len()];
        let mut slowest_own = 0f64;
        on_done(0);
        let mut take_in = |b: usize, values: &[f32]| -> Result<(), Error> {
            log_probs.insert(plan, &batches[b], values)?;
            sentences_done += batches[b].len();
            on_done(sentences_done);
            Ok(())
        };
        loop {
            hand_out(&mut self.0.shared.borrow_mut(), &message);
            let answers = std::mem::take(&mut self.0.shared.borrow_mut().answers);
            for (b, values, helper) in answers {
                // A batch this worker took back from a helper may still be answered by it.
                if self
                    .0
                    .shared
                    .borrow_mut()
                    .dispatch
                    .answered(Some(helper), b)
                {
                    take_in(b, &values)?;
                    helpers_used[helper] = true;
                }
            }
            if self.0.shared.borrow().dispatch.finished() {
                break;
            }
            let own = self.0.shared.borrow_mut().dispatch.own_next();
            if let Some(b) = own {
                let sentences: Vec<&MaskedSentence> =
                    batches[b].iter().map(|&i| &plan.sentences[i]).collect();
                let started = js_sys::Date::now();
                let values = batch_log_probs(&model, &sentences, pad_id, candidates).await?;
                slowest_own = slowest_own.max(js_sys::Date::now() - started);
                if self.0.shared.borrow_mut().dispatch.answered(None, b) {
                    take_in(b, &values)?;
                }
                // Lets the helpers' answers in.
                sleep(0).await;
            } else if self.waiting_on_helpers() {
                let patience = SILENT_HELPER_MS.max(4.0 * slowest_own);
                self.next_event(patience).await;
                self.drop_silent(patience);
            } else if self.0.shared.borrow().answers.is_empty() {
                return Err(Error::Backend(
                    "a probe lost track of its batches".to_string(),
                ));
            }
        }
        let threads = 1 + helpers_used.iter().filter(|&&u| u).count();
        Ok((log_probs, threads))
    }

    fn waiting_on_helpers(&self) -> bool {
        !self.0.shared.borrow().dispatch.waiting_on().is_empty()
    }

    /// Resolves at the next answer or failure of a helper, or after `ms`.
    async fn next_event(&self, ms: f64) {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                ms.min(i32::MAX as f64) as i32,
            );
            self.0.shared.borrow_mut().wake = Some(resolve);
        });
        let _ = JsFuture::from(promise).await;
        self.0.shared.borrow_mut().wake = None;
    }

    /// Drops helpers that hold batches and have been silent for `ms`.
    fn drop_silent(&self, ms: f64) {
        let mut shared = self.0.shared.borrow_mut();
        let now = js_sys::Date::now();
        for index in shared.dispatch.waiting_on() {
            if now - shared.helpers[index].last_active > ms {
                drop_helper_in(&mut shared, index, "it stopped answering");
            }
        }
    }
}

fn post(worker: &Worker, text: &str, files: &[&[u8]]) -> Result<(), JsValue> {
    let (data, transfer) = transport::envelope(text, &transport::bytes(files));
    worker.post_message_with_transfer(&data, &transfer)
}

fn send_model(shared: &mut Shared, index: usize) {
    let Some(model) = &shared.model else {
        return;
    };
    let generation = model.generation;
    let Some(files) = model.files.clone() else {
        return;
    };
    if !shared.dispatch.alive(index) || shared.dispatch.holds(index) == Some(generation) {
        return;
    }
    let text = serde_json::to_string(&ToHelper::Load { generation }).expect("serialises");
    shared.dispatch.sent_weights(index, generation);
    if post(
        &shared.helpers[index].worker,
        &text,
        &[&files[0], &files[1]],
    )
    .is_err()
    {
        drop_helper_in(shared, index, "the weights could not be sent");
    }
    // Once every helper has its copy, this worker keeps none.
    let dispatch = &shared.dispatch;
    if (0..dispatch.helpers()).all(|i| !dispatch.alive(i) || dispatch.holds(i) == Some(generation))
        && let Some(model) = &mut shared.model
    {
        model.files = None;
    }
}

/// Gives free helpers holding the probe's weights their next batches.
fn hand_out(shared: &mut Shared, message: &dyn Fn(usize) -> String) {
    // A helper given work after a pause has been silent for no fault of its own.
    let busy = shared.dispatch.waiting_on();
    for (index, batch) in shared.dispatch.hand_out() {
        if !shared.dispatch.alive(index) {
            // dropped below while its batches were being sent: they are back in the queue
            continue;
        }
        if post(&shared.helpers[index].worker, &message(batch), &[]).is_err() {
            shared.dispatch.unsent(index, batch);
            drop_helper_in(shared, index, "a batch could not be sent");
            continue;
        }
        if !busy.contains(&index) {
            shared.helpers[index].last_active = js_sys::Date::now();
        }
    }
}

fn wake(shared: &mut Shared) {
    if let Some(resolve) = shared.wake.take() {
        let _ = resolve.call0(&JsValue::NULL);
    }
}

/// A helper that failed gives its batches back and gets none again.
fn drop_helper(shared: &Rc<RefCell<Shared>>, index: usize, why: &str) {
    drop_helper_in(&mut shared.borrow_mut(), index, why);
}

fn drop_helper_in(shared: &mut Shared, index: usize, why: &str) {
    if shared.dispatch.alive(index) {
        web_sys::console::warn_1(&format!("a helper worker was dropped: {why}").into());
        shared.helpers[index].worker.terminate();
    }
    shared.dispatch.drop_helper(index);
    wake(shared);
}

fn heard(shared: &Rc<RefCell<Shared>>, index: usize, data: &JsValue) {
    let received = Received::new(data);
    let message = received
        .text
        .as_deref()
        .and_then(|text| serde_json::from_str::<FromHelper>(text).ok());
    let mut shared = shared.borrow_mut();
    shared.helpers[index].last_active = js_sys::Date::now();
    match message {
        // Signs of life only: its weights and batches are sent without waiting for them.
        Some(FromHelper::Ready | FromHelper::Loaded { .. }) => {}
        // Batches for those weights may be on their way to it already; the weights worked here.
        Some(FromHelper::LoadFailed { .. }) => drop_helper_in(
            &mut shared,
            index,
            "it could not build its copy of the model",
        ),
        Some(FromHelper::LogProbs { id }) => {
            // An answer of an earlier probe is not this one's.
            let batch = id
                .checked_sub(shared.first)
                .map(|b| b as usize)
                .filter(|&b| b < shared.dispatch.batches());
            if let Some(batch) = batch {
                shared.answers.push((batch, received.floats(), index));
            }
            wake(&mut shared);
        }
        Some(FromHelper::Failed { message, .. }) => drop_helper_in(&mut shared, index, &message),
        None => drop_helper_in(&mut shared, index, "it sent a message not understood"),
    }
}
