//! The page's side of the engine worker: starts it, sends requests, hands replies to the page.
//! When the worker dies (a panic, a lost GPU) the page keeps its results and starts a new one.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use walf_lab::protocol::{FailureKind, Reply, Request};

use crate::transport::{self, Received};

/// The worker's first script (`web/walf-worker-loader.js`, copied beside the page).
const WORKER_SCRIPT: &str = "./walf-worker-loader.js";

type OnReply = Rc<dyn Fn(Reply, Vec<Vec<u8>>)>;

struct Inner {
    worker: Option<Worker>,
    ready: bool,
    /// Requests sent before the worker said it was ready: a worker drops messages that arrive
    /// before its WebAssembly has started.
    queued: Vec<(Request, Vec<Vec<u8>>)>,
    on_reply: OnReply,
    // Kept alive as long as the worker is.
    _closures: Vec<Closure<dyn Fn(MessageEvent)>>,
    _error: Option<Closure<dyn Fn(ErrorEvent)>>,
    /// A worker being ended gets this for its errors (see `restart`).
    silence: Closure<dyn Fn(ErrorEvent)>,
}

/// A User Timing mark on the page's timeline (the benchmark reads them to split the time to the
/// first chart into its stages; the browser's performance panel shows them too).
pub fn mark(name: &str) {
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark(name);
    }
}

/// A cheap handle; clones share the worker.
#[derive(Clone)]
pub struct Engine(Rc<RefCell<Inner>>);

impl Engine {
    /// Starts the worker; it starts downloading the files at the addresses `early` (those the
    /// first request will need) while its WebAssembly compiles.
    pub fn new(early: Vec<String>, on_reply: impl Fn(Reply, Vec<Vec<u8>>) + 'static) -> Self {
        let engine = Engine(Rc::new(RefCell::new(Inner {
            worker: None,
            ready: false,
            queued: Vec::new(),
            on_reply: Rc::new(on_reply),
            _closures: Vec::new(),
            _error: None,
            silence: Closure::new(|event: ErrorEvent| event.prevent_default()),
        })));
        engine.spawn(&early);
        engine
    }

    fn spawn(&self, early: &[String]) {
        let on_reply = self.0.borrow().on_reply.clone();
        let mut script = WORKER_SCRIPT.to_string();
        for (i, url) in early.iter().enumerate() {
            let separator = if i == 0 { '?' } else { '&' };
            script.push(separator);
            script.push_str("early=");
            script.push_str(&String::from(js_sys::encode_uri_component(url)));
        }
        let worker = match Worker::new(&script) {
            Ok(w) => w,
            Err(e) => {
                on_reply(
                    Reply::Failed {
                        job: None,
                        kind: FailureKind::Crashed,
                        message: format!("the engine could not be started: {e:?}"),
                    },
                    Vec::new(),
                );
                return;
            }
        };
        let me = self.clone();
        let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
            let received = Received::new(&event.data());
            let Some(text) = received.text.as_deref() else {
                return;
            };
            let files = received.files();
            let reply = match Reply::from_json(text) {
                Ok(r) => r,
                Err(e) => Reply::Failed {
                    job: None,
                    kind: FailureKind::Internal,
                    message: e.to_string(),
                },
            };
            match &reply {
                Reply::Ready => {
                    mark("walf:worker-ready");
                    me.flush();
                }
                Reply::Loaded { .. } => mark("walf:model-loaded"),
                Reply::Probed { .. } => mark("walf:probed"),
                _ => {}
            }
            let on_reply = me.0.borrow().on_reply.clone();
            on_reply(reply, files);
        });
        let on_reply_err = on_reply.clone();
        let on_error = Closure::<dyn Fn(ErrorEvent)>::new(move |event: ErrorEvent| {
            event.prevent_default();
            on_reply_err(
                Reply::Failed {
                    job: None,
                    kind: FailureKind::Crashed,
                    message: format!("the engine stopped: {}", event.message()),
                },
                Vec::new(),
            );
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let mut inner = self.0.borrow_mut();
        inner.worker = Some(worker);
        inner.ready = false;
        inner._closures = vec![on_message];
        inner._error = Some(on_error);
    }

    fn flush(&self) {
        let queued = {
            let mut inner = self.0.borrow_mut();
            inner.ready = true;
            std::mem::take(&mut inner.queued)
        };
        for (request, files) in queued {
            self.send_with_files(request, files);
        }
    }

    pub fn send_with_files(&self, request: Request, files: Vec<Vec<u8>>) {
        let mut inner = self.0.borrow_mut();
        if !inner.ready {
            inner.queued.push((request, files));
            return;
        }
        let Some(worker) = &inner.worker else {
            return;
        };
        let (message, transfer) =
            transport::envelope(&request.to_json(), &transport::bytes(&files));
        let _ = worker.post_message_with_transfer(&message, &transfer);
    }

    /// Ends whatever the worker is doing by ending the worker; a new one starts at once.
    /// Everything the page holds stays; the model must be loaded again.
    pub fn restart(&self) {
        let mut inner = self.0.borrow_mut();
        if let Some(worker) = inner.worker.take() {
            // A crashed worker may go on sending (a GPU's validation errors each fail again)
            // until it is gone: none of it may reach its handlers, which `spawn` drops (a dropped
            // closure throws when called), nor the page as an uncaught error.
            worker.set_onmessage(None);
            worker.set_onerror(Some(inner.silence.as_ref().unchecked_ref()));
            worker.terminate();
        }
        inner.queued.clear();
        drop(inner);
        self.spawn(&[]);
    }
}
