//! Helper workers for the CPU backend. WebAssembly runs a worker on one thread, so a probe on the
//! CPU backend would use one core of many. The engine worker starts one helper per further core
//! (`web/walf-helper.js` runs this worker's compiled module under the name `walf-helper`), gives
//! each a copy of the weights, and hands out batches of masked sentences as helpers become free,
//! computing batches itself meanwhile. The numbers are those of one thread: the batches are the
//! same, only where each runs changes. A helper that fails or dies is dropped and its batches run
//! here.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use burn::tensor::Device;
use js_sys::{Array, Float32Array, Reflect, Uint8Array};
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

use crate::net::{here, js_error, scope, sleep};

/// The name a helper is started under; the script reads it to know what it is.
const HELPER_NAME: &str = "walf-helper";
/// The helper's script (`web/walf-helper.js`), beside this worker's: it waits for this
/// worker's compiled module and runs it.
const HELPER_SCRIPT: &str = "walf-helper.js";
/// At most this many helpers, whatever the core count: each holds a copy of the model.
const MAX_HELPERS: usize = 3;
/// Larger weights are not copied to helpers (the copies would cost more memory than the time
/// they save is worth): such a model probes on one core.
pub const MAX_SHARED_WEIGHTS: usize = 160 << 20;
/// A helper that has answered nothing for this long while this worker has nothing left to do,
/// and for four times the slowest batch computed here, is taken for dead (a worker can end
/// without an error event) and its batches run here.
const SILENT_HELPER_MS: f64 = 5_000.0;
/// Batches handed to a helper at once: one running, one waiting, so that it does not idle while
/// this worker computes a batch of its own and cannot read the helper's answer.
const DEPTH: usize = 2;

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
    let data = Array::of1(&JsValue::from_str(&text));
    let transfer = Array::new();
    if let Some(values) = values {
        let array = Float32Array::from(&values[..]);
        transfer.push(&array.buffer());
        data.push(&array);
    }
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
        let data = Array::from(&data);
        let request = data
            .get(0)
            .as_string()
            .and_then(|text| serde_json::from_str::<ToHelper>(&text).ok());
        let files: Vec<Vec<u8>> = (1..data.length())
            .map(|i| Uint8Array::new(&data.get(i)).to_vec())
            .collect();
        match request {
            Some(request) => wasm_bindgen_futures::spawn_local(answer(request, files)),
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

struct Helper {
    worker: Worker,
    /// The weights sent to it. It takes messages in order, so batches for them can follow at
    /// once: it computes them once it has built its copy.
    sent: Option<u64>,
    dead: bool,
    /// Batch ids sent and not answered.
    in_flight: Vec<u64>,
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
    /// The weights helpers should hold.
    model: Option<SharedModel>,
    /// Batch ids of the running probe not yet handed out.
    queue: VecDeque<u64>,
    /// Answers not yet taken in: batch id, values, helper.
    answers: Vec<(u64, Vec<f32>, usize)>,
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
                sent: None,
                dead: false,
                in_flight: Vec::new(),
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

    /// Any helper alive to share work.
    pub fn alive(&self) -> bool {
        self.shared.borrow().helpers.iter().any(|h| !h.dead)
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
        let batch_of = |id: u64| {
            id.checked_sub(first)
                .map(|i| i as usize)
                .filter(|&i| i < batches.len())
        };
        let message = |id: u64| {
            let batch = &batches[batch_of(id).expect("a batch id of this probe")];
            serde_json::to_string(&ToHelper::Batch {
                generation,
                id,
                sentences: batch
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
        // Costliest first (rows × padded length), so that the last batches, which may leave a
        // worker idle, are short.
        let cost = |b: &Vec<usize>| {
            b.len()
                * b.iter()
                    .map(|&i| plan.sentences[i].ids.len())
                    .max()
                    .unwrap_or(0)
        };
        let mut order: Vec<usize> = (0..batches.len()).collect();
        order.sort_by_key(|&b| std::cmp::Reverse(cost(&batches[b])));
        {
            let mut shared = self.0.shared.borrow_mut();
            shared.queue = order.iter().map(|&b| first + b as u64).collect();
            shared.answers.clear();
            // Before packing the weights here: the helpers start meanwhile.
            hand_out(&mut shared, generation, &message);
        }
        let model = model.for_inference();
        let candidates = &plan.candidate_ids;
        let mut got = Gathered {
            log_probs: SentenceLogProbs::new(plan),
            done: vec![false; batches.len()],
            finished: 0,
            sentences: 0,
        };
        let mut helpers_used = vec![false; self.0.shared.borrow().helpers.len()];
        let mut slowest_own = 0f64;
        on_done(0);
        let mut take_in = |got: &mut Gathered, b: usize, values: &[f32]| -> Result<bool, Error> {
            // A batch this worker took back from a helper may still be answered by it.
            if std::mem::replace(&mut got.done[b], true) {
                return Ok(false);
            }
            got.log_probs.insert(plan, &batches[b], values)?;
            got.finished += 1;
            got.sentences += batches[b].len();
            on_done(got.sentences);
            Ok(true)
        };
        while got.finished < batches.len() {
            hand_out(&mut self.0.shared.borrow_mut(), generation, &message);
            let answers = std::mem::take(&mut self.0.shared.borrow_mut().answers);
            for (id, values, helper) in answers {
                // An answer from an earlier, abandoned probe is not this one's.
                let Some(b) = batch_of(id) else { continue };
                if take_in(&mut got, b, &values)? {
                    helpers_used[helper] = true;
                }
            }
            if got.finished == batches.len() {
                break;
            }
            // The next batch nobody has, else one a busy helper has not started yet (it only
            // waits there: computing it here is not slower, and ends the probe sooner).
            let own = self.0.shared.borrow_mut().queue.pop_front();
            let own = own.and_then(batch_of).or_else(|| {
                self.0.shared.borrow().helpers.iter().find_map(|h| {
                    (!h.dead && h.in_flight.len() >= DEPTH)
                        .then(|| h.in_flight.last().copied().and_then(batch_of))
                        .flatten()
                        .filter(|&b| !got.done[b])
                })
            });
            if let Some(b) = own {
                let sentences: Vec<&MaskedSentence> =
                    batches[b].iter().map(|&i| &plan.sentences[i]).collect();
                let started = js_sys::Date::now();
                let values = batch_log_probs(&model, &sentences, pad_id, candidates).await?;
                slowest_own = slowest_own.max(js_sys::Date::now() - started);
                take_in(&mut got, b, &values)?;
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
        Ok((got.log_probs, threads))
    }

    fn waiting_on_helpers(&self) -> bool {
        self.0
            .shared
            .borrow()
            .helpers
            .iter()
            .any(|h| !h.dead && !h.in_flight.is_empty())
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
        for index in 0..shared.helpers.len() {
            let h = &shared.helpers[index];
            if !h.dead && !h.in_flight.is_empty() && now - h.last_active > ms {
                drop_helper_in(&mut shared, index, "it stopped answering");
            }
        }
    }
}

/// What a probe has gathered so far.
struct Gathered {
    log_probs: SentenceLogProbs,
    done: Vec<bool>,
    finished: usize,
    sentences: usize,
}

fn post(worker: &Worker, text: &str, files: &[&[u8]]) -> Result<(), JsValue> {
    let data = Array::of1(&JsValue::from_str(text));
    let transfer = Array::new();
    for bytes in files {
        let array = Uint8Array::from(*bytes);
        transfer.push(&array.buffer());
        data.push(&array);
    }
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
    let helper = &mut shared.helpers[index];
    if helper.dead || helper.sent == Some(generation) {
        return;
    }
    let text = serde_json::to_string(&ToHelper::Load { generation }).expect("serialises");
    helper.sent = Some(generation);
    if post(&helper.worker, &text, &[&files[0], &files[1]]).is_err() {
        drop_helper_in(shared, index, "the weights could not be sent");
    }
    // Once every helper has its copy, this worker keeps none.
    if shared
        .helpers
        .iter()
        .all(|h| h.dead || h.sent == Some(generation))
        && let Some(model) = &mut shared.model
    {
        model.files = None;
    }
}

/// Gives free helpers holding the right weights their next batches.
fn hand_out(shared: &mut Shared, generation: u64, message: &dyn Fn(u64) -> String) {
    for index in 0..shared.helpers.len() {
        loop {
            let helper = &shared.helpers[index];
            if helper.dead || helper.sent != Some(generation) || helper.in_flight.len() >= DEPTH {
                break;
            }
            let Some(id) = shared.queue.pop_front() else {
                return;
            };
            let helper = &mut shared.helpers[index];
            if post(&helper.worker, &message(id), &[]).is_err() {
                shared.queue.push_front(id);
                drop_helper_in(shared, index, "a batch could not be sent");
                break;
            }
            if helper.in_flight.is_empty() {
                helper.last_active = js_sys::Date::now();
            }
            helper.in_flight.push(id);
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
    let helper = &mut shared.helpers[index];
    if !helper.dead {
        web_sys::console::warn_1(&format!("a helper worker was dropped: {why}").into());
        helper.dead = true;
        helper.worker.terminate();
    }
    let returned = std::mem::take(&mut helper.in_flight);
    for id in returned.into_iter().rev() {
        shared.queue.push_front(id);
    }
    wake(shared);
}

fn heard(shared: &Rc<RefCell<Shared>>, index: usize, data: &JsValue) {
    let data = Array::from(data);
    let message = data
        .get(0)
        .as_string()
        .and_then(|text| serde_json::from_str::<FromHelper>(&text).ok());
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
            let helper = &mut shared.helpers[index];
            if let Some(at) = helper.in_flight.iter().position(|&i| i == id) {
                helper.in_flight.remove(at);
                let values = Float32Array::new(&data.get(1)).to_vec();
                shared.answers.push((id, values, index));
            }
            wake(&mut shared);
        }
        Some(FromHelper::Failed { message, .. }) => drop_helper_in(&mut shared, index, &message),
        None => drop_helper_in(&mut shared, index, "it sent a message not understood"),
    }
}
