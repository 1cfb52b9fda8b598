//! The models this browser keeps (the worker's Cache Storage), their sizes, the storage
//! estimate, and a delete button for each: a shared classroom machine fills up.

use js_sys::{Array, Reflect};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, Cache, Response};

use walf_lab::hub::{KeptModel, MODEL_CACHE, kept_models};
use walf_lab::view::{bytes_label, storage_sentence};

#[derive(Clone, Debug, PartialEq)]
struct Listing {
    models: Vec<KeptModel>,
    /// Bytes used and allowed, where the browser says.
    estimate: Option<(f64, f64)>,
}

fn js_message(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "the browser refused".into())
}

async fn open_cache() -> Result<Cache, String> {
    let caches = web_sys::window()
        .ok_or("no window")?
        .caches()
        .map_err(|_| "this browser keeps no downloads here (no Cache Storage)".to_string())?;
    JsFuture::from(caches.open(MODEL_CACHE))
        .await
        .map_err(js_message)?
        .dyn_into()
        .map_err(|_| "the cache could not be opened".into())
}

async fn read_listing() -> Result<Listing, String> {
    let cache = open_cache().await?;
    let keys: Array = JsFuture::from(cache.keys())
        .await
        .map_err(js_message)?
        .unchecked_into();
    let mut entries = Vec::new();
    for request in keys.iter() {
        let Some(url) = Reflect::get(&request, &"url".into())
            .ok()
            .and_then(|u| u.as_string())
        else {
            continue;
        };
        // A body kept on disk: its size without reading it into memory.
        let size = match JsFuture::from(cache.match_with_str(&url)).await {
            Ok(hit) => match hit.dyn_into::<Response>().ok().and_then(|r| r.blob().ok()) {
                Some(blob) => JsFuture::from(blob)
                    .await
                    .ok()
                    .and_then(|b| b.dyn_into::<Blob>().ok())
                    .map_or(0, |b| b.size() as u64),
                None => 0,
            },
            Err(_) => 0,
        };
        entries.push((url, size));
    }
    Ok(Listing {
        models: kept_models(&entries),
        estimate: estimate().await,
    })
}

async fn estimate() -> Option<(f64, f64)> {
    let storage = web_sys::window()?.navigator().storage();
    let got = JsFuture::from(storage.estimate().ok()?).await.ok()?;
    let number = |name: &str| Reflect::get(&got, &name.into()).ok()?.as_f64();
    Some((number("usage")?, number("quota")?))
}

async fn delete(urls: &[String]) -> Result<(), String> {
    let cache = open_cache().await?;
    for url in urls {
        JsFuture::from(cache.delete_with_str(url))
            .await
            .map_err(js_message)?;
    }
    Ok(())
}

/// "Kept in this browser": read when opened, and again after a delete.
#[component]
pub fn KeptModels() -> impl IntoView {
    let listing = RwSignal::new(None::<Result<Listing, String>>);
    let refresh = move || {
        wasm_bindgen_futures::spawn_local(async move { listing.set(Some(read_listing().await)) })
    };
    let remove = move |urls: Vec<String>| {
        wasm_bindgen_futures::spawn_local(async move {
            match delete(&urls).await {
                Ok(()) => listing.set(Some(read_listing().await)),
                Err(e) => listing.set(Some(Err(format!("the model could not be deleted: {e}")))),
            }
        })
    };
    let on_toggle = move |ev: leptos::ev::Event| {
        let open = ev
            .target()
            .and_then(|t| Reflect::get(&t, &"open".into()).ok())
            .is_some_and(|o| o.is_truthy());
        if open {
            refresh();
        }
    };
    view! {
        <details class="kept" id="kept-models" on:toggle=on_toggle>
            <summary>"Models kept in this browser"</summary>
            {move || match listing.get() {
                None => view! { <p class="hint">"reading the browser's storage…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="field-error" role="alert">{e}</p> }.into_any(),
                Some(Ok(l)) => {
                    let estimate = l.estimate.map(|(usage, quota)| {
                        let (text, near) = storage_sentence(usage, quota);
                        view! {
                            <p id="storage-estimate" class:field-error=near
                                data-usage=usage.to_string() data-quota=quota.to_string()>{text}</p>
                        }
                    });
                    let rows = if l.models.is_empty() {
                        view! {
                            <p class="hint" id="kept-none">"No downloaded model is kept (the bundled \
                                ones come with the page)."</p>
                        }.into_any()
                    } else {
                        view! {
                            <table class="kept-table">
                                <thead><tr><th scope="col">"model"</th><th scope="col">"size"</th><th></th></tr></thead>
                                <tbody>
                                    {l.models.into_iter().map(|m| {
                                        let urls = m.urls.clone();
                                        view! {
                                            <tr class="kept-model" data-model=m.label.clone() data-bytes=m.bytes.to_string()>
                                                <td>{m.label.clone()}</td>
                                                <td class="num">{bytes_label(m.bytes)}</td>
                                                <td><button class="delete-kept"
                                                    on:click=move |_| remove(urls.clone())>"Delete"</button></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    };
                    view! {
                        {estimate}
                        {rows}
                        <p class="hint">"A deleted model is downloaded again when it is next loaded."</p>
                    }.into_any()
                }
            }}
        </details>
    }
}
