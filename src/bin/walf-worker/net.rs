//! Downloads with progress in bytes, kept in the browser's Cache Storage so that a second visit
//! reads them from disk. Only complete downloads are cached.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, ReadableStreamDefaultReader, Response, WorkerGlobalScope};

use walf_lab::hub::MODEL_CACHE;

pub fn scope() -> WorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// This worker's script address, against which relative addresses resolve.
pub fn here() -> Option<String> {
    Reflect::get(&scope(), &"location".into())
        .and_then(|l| Reflect::get(&l, &"href".into()))
        .ok()?
        .as_string()
}

/// The message of a JavaScript exception, or its text.
pub fn js_error(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

pub struct Fetched {
    pub bytes: Vec<u8>,
    /// Over the network (false: from the cache).
    pub downloaded: bool,
}

#[derive(Debug)]
pub enum FetchError {
    NotFound,
    /// HTTP status and its text.
    Status(u16, String),
    /// No answer at all (offline, refused, blocked by CORS).
    Network(String),
    /// Larger than the memory budget (bytes declared or received, the limit): refused before
    /// it is downloaded, or as soon as it outgrows the limit.
    TooLarge(u64, u64),
}

impl FetchError {
    /// The message for the user, `what` naming the file and where it comes from.
    pub fn message(&self, what: &str) -> Option<String> {
        match self {
            FetchError::TooLarge(size, limit) => Some(format!(
                "{what} is larger than the memory budget ({} MB, at most {} MB)",
                size / 1_000_000,
                limit / 1_000_000
            )),
            _ => None,
        }
    }
}

async fn open_cache() -> Option<Cache> {
    let caches = scope().caches().ok()?;
    JsFuture::from(caches.open(MODEL_CACHE))
        .await
        .ok()?
        .dyn_into()
        .ok()
}

async fn cached(cache: &Cache, url: &str) -> Option<Vec<u8>> {
    let hit = JsFuture::from(cache.match_with_str(url)).await.ok()?;
    let response: Response = hit.dyn_into().ok()?;
    let buffer = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
    Some(Uint8Array::new(&buffer).to_vec())
}

/// The download of `url` that this worker's first script started while the WebAssembly
/// compiled (`web/walf-worker-loader.js`, for the files the page named when it started the
/// worker), taken at most once; `None` when there was none or it failed there.
async fn early_download(url: &str) -> Option<Response> {
    let early: js_sys::Map = Reflect::get(&js_sys::global(), &"walfEarly".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let key = JsValue::from(web_sys::Url::new_with_base(url, &here()?).ok()?.href());
    let pending = early.get(&key);
    early.delete(&key);
    let pending: js_sys::Promise = pending.dyn_into().ok()?;
    JsFuture::from(pending).await.ok()?.dyn_into().ok()
}

/// GETs `url`; with `use_cache`, answers from Cache Storage when it can and stores what it
/// downloads. `on_progress(done, total)` in bytes (`total` 0 when the server does not say).
pub async fn fetch_bytes(
    url: &str,
    use_cache: bool,
    limit: u64,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<Fetched, FetchError> {
    let cache = if use_cache { open_cache().await } else { None };
    if let Some(cache) = &cache
        && let Some(bytes) = cached(cache, url).await
    {
        on_progress(bytes.len() as u64, bytes.len() as u64);
        return Ok(Fetched {
            bytes,
            downloaded: false,
        });
    }
    let (response, early) = match early_download(url).await {
        Some(response) => (response, true),
        None => (
            JsFuture::from(scope().fetch_with_str(url))
                .await
                .map_err(|e| FetchError::Network(js_error(&e)))?
                .dyn_into()
                .map_err(|_| FetchError::Network("the answer is not an HTTP response".into()))?,
            false,
        ),
    };
    if response.status() == 404 {
        return Err(FetchError::NotFound);
    }
    if !response.ok() {
        return Err(FetchError::Status(
            response.status(),
            response.status_text(),
        ));
    }
    let total: u64 = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if total > limit {
        return Err(FetchError::TooLarge(total, limit));
    }
    // The declared length is the server's word, not a fact: reserve at most 64 MiB up front and
    // let the buffer grow with the bytes that actually arrive.
    let mut bytes: Vec<u8> = Vec::with_capacity(total.min(64 << 20) as usize);
    on_progress(0, total);
    // An early download is already in memory, whole: read in one piece rather than as a
    // stream of small chunks.
    match response.body().filter(|_| !early) {
        Some(body) => {
            let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
            loop {
                let chunk = JsFuture::from(reader.read())
                    .await
                    .map_err(|e| FetchError::Network(js_error(&e)))?;
                let done = Reflect::get(&chunk, &"done".into())
                    .ok()
                    .and_then(|v| v.as_bool())
                    .unwrap_or(true);
                if done {
                    break;
                }
                let value: Uint8Array = Reflect::get(&chunk, &"value".into())
                    .map_err(|e| FetchError::Network(js_error(&e)))?
                    .unchecked_into();
                let start = bytes.len();
                let end = start + value.length() as usize;
                if end as u64 > limit {
                    let _ = reader.cancel();
                    return Err(FetchError::TooLarge(end as u64, limit));
                }
                bytes.resize(end, 0);
                value.copy_to(&mut bytes[start..]);
                on_progress(bytes.len() as u64, total.max(bytes.len() as u64));
            }
        }
        None => {
            let buffer = JsFuture::from(
                response
                    .array_buffer()
                    .map_err(|e| FetchError::Network(js_error(&e)))?,
            )
            .await
            .map_err(|e| FetchError::Network(js_error(&e)))?;
            let body = Uint8Array::new(&buffer);
            if body.length() as u64 > limit {
                return Err(FetchError::TooLarge(body.length() as u64, limit));
            }
            bytes = body.to_vec();
            on_progress(bytes.len() as u64, bytes.len() as u64);
        }
    }
    if let Some(cache) = &cache {
        // A full quota or a private window only costs the next visit a download.
        let copy = Uint8Array::from(&bytes[..]);
        if let Ok(stored) = Response::new_with_opt_buffer_source(Some(&copy)) {
            let _ = JsFuture::from(cache.put_with_str(url, &stored)).await;
        }
    }
    Ok(Fetched {
        bytes,
        downloaded: true,
    })
}

/// Resolves after `ms` milliseconds, letting the worker read its messages meanwhile.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}
