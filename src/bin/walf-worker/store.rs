//! The running WALF job kept in the browser's origin private file system (OPFS), so that a reload,
//! a crash or a lost GPU loses at most the epoch under way.
//!
//! One folder, `walf-run`, holds `run.json` and the weight files it names. Each file is written
//! through a writable stream, which the browser commits atomically when it closes; `run.json` is
//! written after the weights it names and old weights are removed after it, so whatever stops
//! the worker, `run.json` names files that are complete.

use js_sys::{AsyncIterator, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    File, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetDirectoryOptions,
    FileSystemGetFileOptions, FileSystemRemoveOptions, FileSystemWritableFileStream,
    WorkerGlobalScope,
};

use walf_lab::protocol::SavedRun;
use walf_lab::walf::TrainerState;

const FOLDER: &str = "walf-run";
const RECORD: &str = "run.json";
/// Changes when the record's meaning changes; an older record is discarded, not misread.
const VERSION: u32 = 1;

/// What `run.json` holds: what the page sees, and what the worker needs to go on.
#[derive(Serialize, Deserialize)]
pub struct RunRecord {
    pub version: u32,
    pub run: SavedRun,
    pub state: TrainerState,
    /// The model the run started from (`ModelFiles::fingerprint`).
    pub model_fingerprint: String,
}

/// The weights at the end of epoch `n` (1-based), f32 safetensors.
fn weights_file(epochs_done: usize) -> String {
    format!("epoch-{epochs_done}.safetensors")
}

impl RunRecord {
    /// The file of the weights at the end of the last completed epoch.
    pub fn last_file(&self) -> String {
        weights_file(self.state.epochs_done)
    }

    /// The file of the best weights: the best epoch's own, kept while it is the best.
    pub fn best_file(&self) -> Option<String> {
        self.state.best.map(|(_, epoch)| weights_file(epoch + 1))
    }
}

fn js_error(what: &str, e: JsValue) -> String {
    let why = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    format!("{what}: {why}")
}

/// The origin's private file system.
async fn root() -> Result<FileSystemDirectoryHandle, String> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let root = JsFuture::from(scope.navigator().storage().get_directory())
        .await
        .map_err(|e| js_error("the browser's storage cannot be opened", e))?;
    Ok(root.unchecked_into())
}

async fn folder() -> Result<FileSystemDirectoryHandle, String> {
    let root = root().await?;
    let options = FileSystemGetDirectoryOptions::new();
    options.set_create(true);
    let dir = JsFuture::from(root.get_directory_handle_with_options(FOLDER, &options))
        .await
        .map_err(|e| js_error("the browser's storage cannot be opened", e))?;
    Ok(dir.unchecked_into())
}

async fn write(dir: &FileSystemDirectoryHandle, name: &str, bytes: &[u8]) -> Result<(), String> {
    let what = format!("{name} cannot be written to the browser's storage");
    let options = FileSystemGetFileOptions::new();
    options.set_create(true);
    let file: FileSystemFileHandle =
        JsFuture::from(dir.get_file_handle_with_options(name, &options))
            .await
            .map_err(|e| js_error(&what, e))?
            .unchecked_into();
    let stream: FileSystemWritableFileStream = JsFuture::from(file.create_writable())
        .await
        .map_err(|e| js_error(&what, e))?
        .unchecked_into();
    let written = match stream.write_with_u8_array(bytes) {
        Ok(promise) => JsFuture::from(promise).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        // Nothing is committed: the file keeps its old contents (or stays empty when new).
        let _ = JsFuture::from(stream.abort()).await;
        return Err(js_error(&what, e));
    }
    JsFuture::from(stream.close())
        .await
        .map_err(|e| js_error(&what, e))?;
    Ok(())
}

async fn read(dir: &FileSystemDirectoryHandle, name: &str) -> Result<Vec<u8>, String> {
    let what = format!("{name} cannot be read from the browser's storage");
    let file: FileSystemFileHandle = JsFuture::from(dir.get_file_handle(name))
        .await
        .map_err(|e| js_error(&what, e))?
        .unchecked_into();
    let file: File = JsFuture::from(file.get_file())
        .await
        .map_err(|e| js_error(&what, e))?
        .unchecked_into();
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| js_error(&what, e))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

async fn names(dir: &FileSystemDirectoryHandle) -> Vec<String> {
    let keys: AsyncIterator = dir.keys();
    let mut names = Vec::new();
    while let Ok(promise) = keys.next() {
        let Ok(item) = JsFuture::from(promise).await else {
            break;
        };
        let done = js_sys::Reflect::get(&item, &"done".into()).ok();
        if done.and_then(|d| d.as_bool()).unwrap_or(true) {
            break;
        }
        if let Some(name) = js_sys::Reflect::get(&item, &"value".into())
            .ok()
            .and_then(|v| v.as_string())
        {
            names.push(name);
        }
    }
    names
}

/// The kept run's record; `Ok(None)` when there is none. A record this version cannot read is
/// removed with its files.
pub async fn load() -> Result<Option<RunRecord>, String> {
    let dir = folder().await?;
    let Ok(bytes) = read(&dir, RECORD).await else {
        return Ok(None);
    };
    match serde_json::from_slice::<RunRecord>(&bytes) {
        Ok(record) if record.version == VERSION => Ok(Some(record)),
        _ => {
            discard().await?;
            Ok(None)
        }
    }
}

pub async fn read_weights(name: &str) -> Result<Vec<u8>, String> {
    read(&folder().await?, name).await
}

/// Keeps the run after a completed epoch: `last` (the weights now) is written under the epoch's
/// own name. The best weights are always some epoch's last weights, so that epoch's file stays
/// while it is the best (and is `last` itself when this epoch improved).
pub async fn save(mut record: RunRecord, last: &[u8]) -> Result<(), String> {
    let dir = folder().await?;
    let (last_file, best_file) = (record.last_file(), record.best_file());
    write(&dir, &last_file, last).await?;
    record.version = VERSION;
    let json = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
    write(&dir, RECORD, &json).await?;
    // Only now are the files of the previous record (and any a crash left) unused.
    for name in names(&dir).await {
        if name != RECORD && name != last_file && Some(&name) != best_file.as_ref() {
            let _ = JsFuture::from(dir.remove_entry(&name)).await;
        }
    }
    Ok(())
}

pub async fn discard() -> Result<(), String> {
    let root = root().await?;
    let options = FileSystemRemoveOptions::new();
    options.set_recursive(true);
    match JsFuture::from(root.remove_entry_with_options(FOLDER, &options)).await {
        Ok(_) => Ok(()),
        // Nothing kept: nothing to remove.
        Err(e) if error_name(&e).as_deref() == Some("NotFoundError") => Ok(()),
        Err(e) => Err(js_error("the kept run cannot be removed", e)),
    }
}

fn error_name(e: &JsValue) -> Option<String> {
    js_sys::Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
}

/// Which backend `automatic` took for a model on this browser's GPU, and the times it took it
/// by: kept beside the run folder, so that a model is timed once per browser and adapter.
const BACKEND_CHOICES: &str = "backend-choices.json";

#[derive(Clone, Serialize, Deserialize)]
pub struct BackendDecision {
    pub gpu: bool,
    /// "WebGPU 412 ms/batch, CPU, 4 workers 96 ms/batch"
    pub figures: String,
}

type Decisions = std::collections::BTreeMap<String, BackendDecision>;

async fn decisions() -> Result<Decisions, String> {
    let root = root().await?;
    match read(&root, BACKEND_CHOICES).await {
        // an unreadable file is as good as none: the models are timed again
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
        Err(_) => Ok(Decisions::new()),
    }
}

/// The decision kept for `key` (the model's fingerprint and the adapter), if any.
pub async fn backend_decision(key: &str) -> Option<BackendDecision> {
    decisions().await.ok()?.remove(key)
}

pub async fn keep_backend_decision(key: &str, decision: BackendDecision) -> Result<(), String> {
    let mut all = decisions().await?;
    all.insert(key.to_string(), decision);
    let json = serde_json::to_vec(&all).map_err(|e| e.to_string())?;
    write(&root().await?, BACKEND_CHOICES, &json).await
}
