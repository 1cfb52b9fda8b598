//! Which model, and on which backend: the bundled one, a Hub id (or a mirror), or the user's own
//! three files by picker or drag and drop.

use leptos::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{File, FileList};

use walf_lab::hub::DEFAULT_HUB;
use walf_lab::protocol::{BUNDLED_MODELS, BackendChoice, ModelSource};

use crate::address::bundled_model;
use crate::kept::KeptModels;
use crate::state::{AppState, ModelStatus};

/// Orders picked files as config.json, tokenizer.json, weights; or says what is missing.
fn sort_files(files: &[File]) -> Result<[File; 3], String> {
    let find = |pred: &dyn Fn(&str) -> bool| files.iter().find(|f| pred(&f.name())).cloned();
    let config = find(&|n| n == "config.json" || n.ends_with("config.json"));
    let tokenizer = find(&|n| n == "tokenizer.json" || n.ends_with("tokenizer.json"));
    let weights = find(&|n| n.ends_with(".safetensors"));
    match (config, tokenizer, weights) {
        (Some(c), Some(t), Some(w)) => Ok([c, t, w]),
        (c, t, w) => {
            let mut missing = Vec::new();
            if c.is_none() {
                missing.push("config.json");
            }
            if t.is_none() {
                missing.push("tokenizer.json");
            }
            if w.is_none() {
                missing.push("model.safetensors");
            }
            Err(format!(
                "a model folder needs config.json, tokenizer.json and model.safetensors; missing: {}",
                missing.join(", ")
            ))
        }
    }
}

fn list(files: Option<FileList>) -> Vec<File> {
    let Some(files) = files else {
        return Vec::new();
    };
    (0..files.length()).filter_map(|i| files.get(i)).collect()
}

async fn read(file: &File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|_| format!("{} could not be read", file.name()))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

fn load_files(state: AppState, files: Vec<File>) {
    let files = match sort_files(&files) {
        Ok(f) => f,
        Err(e) => return state.error(e),
    };
    wasm_bindgen_futures::spawn_local(async move {
        let mut bytes = Vec::new();
        for f in &files {
            match read(f).await {
                Ok(b) => bytes.push(b),
                Err(e) => return state.error(e),
            }
        }
        let name = files[2].name().trim_end_matches(".safetensors").to_string();
        let name = if name == "model" {
            "local model".to_string()
        } else {
            name
        };
        state.load(ModelSource::Local { name }, bytes);
    });
}

fn parameters_label(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{:.1} M parameters", n as f64 / 1e6)
    } else {
        format!("{:.0} k parameters", n as f64 / 1e3)
    }
}

#[component]
pub fn ModelPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    // A `?model=` address opens on a Hub model: the Hub box shows which.
    let (first_id, first_base) = match state.source.get_untracked() {
        Some(ModelSource::Hub { id, base }) => (id, base),
        _ => (String::new(), DEFAULT_HUB.to_string()),
    };
    let hub_id = RwSignal::new(first_id);
    let hub_base = RwSignal::new(first_base);
    let dragging = RwSignal::new(false);

    let load_hub = move || {
        let id = hub_id.get_untracked();
        if id.trim().is_empty() {
            return state.error("type a Hub model id, e.g. bert-base-uncased");
        }
        state.load(
            ModelSource::Hub {
                id: id.trim().to_string(),
                base: hub_base.get_untracked(),
            },
            Vec::new(),
        );
    };
    let status = move || match state.model.get() {
        ModelStatus::Ready {
            name,
            architecture,
            parameters,
            ..
        } => format!("{name}: {architecture}, {}", parameters_label(parameters)),
        ModelStatus::Loading(what) => format!("loading: {what}"),
        ModelStatus::Failed(why) => format!("no model: {why}"),
        ModelStatus::None => "no model".into(),
    };
    let backend = move || {
        state.backend_info.get().map(|b| {
            view! {
                <span class="backend" class:gpu=b.gpu title=b.detail.clone()>{format!("runs on {}", b.name)}</span>
                {b.notice.clone().map(|n| view! { <span class="backend-notice">{n}</span> })}
                <details class="backend-detail"><summary>"how"</summary>{b.detail.clone()}</details>
            }
        })
    };
    view! {
        <section class="model-panel" aria-label="Model"
            class:dragging=move || dragging.get()
            on:dragover=move |ev: web_sys::DragEvent| { ev.prevent_default(); dragging.set(true); }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev: web_sys::DragEvent| {
                ev.prevent_default();
                dragging.set(false);
                let files = list(ev.data_transfer().and_then(|d| d.files()));
                load_files(state, files);
            }>
            <div class="model-status">
                <strong>"Model "</strong>
                <span id="model-status"
                    data-fingerprint=move || state.page.with(|p| p.model_fingerprint.clone())>{status}</span>
                " "
                {backend}
            </div>
            <div class="model-sources">
                {BUNDLED_MODELS.map(|(id, about)| view! {
                    <button class="bundled-model" data-model=id title=about
                        disabled=move || state.tuning_now() on:click=move |_| state.load(
                        bundled_model(id),
                        Vec::new(),
                    )>{format!("Bundled: {id}")}</button>
                })}
                <label>"Hub model "
                    <input id="hub-id" type="text" placeholder="bert-base-uncased" prop:value=move || hub_id.get()
                        on:input=move |ev| hub_id.set(event_target_value(&ev))
                        on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" { load_hub() } />
                </label>
                <label>"from "
                    <input id="hub-base" type="url" prop:value=move || hub_base.get()
                        on:input=move |ev| hub_base.set(event_target_value(&ev)) />
                </label>
                <button id="hub-load" disabled=move || state.tuning_now() on:click=move |_| load_hub()>"Load"</button>
                <label class="file-pick">"Your files "
                    <input id="local-files" type="file" multiple accept=".json,.safetensors"
                        disabled=move || state.tuning_now()
                        on:change=move |ev| {
                            let input: web_sys::HtmlInputElement = event_target(&ev);
                            load_files(state, list(input.files()));
                        } />
                </label>
                <span class="hint">{move || if state.tuning_now() {
                    "(another model can be loaded when the WALF run is stopped)"
                } else {
                    "(or drop config.json, tokenizer.json and model.safetensors here)"
                }}</span>
                <label>"Backend "
                    <select id="backend" title="automatic: on a graphics card, the faster of WebGPU and the CPU for the model (timed once per model in this browser); else the CPU" disabled=move || state.tuning_now() on:change=move |ev| {
                        if let Some(b) = BackendChoice::parse(&event_target_value(&ev)) {
                            state.backend.set(b);
                            state.reload();
                        }
                    }>
                        {[("auto", "automatic"), ("webgpu", "WebGPU"), ("cpu", "CPU")]
                            .map(|(v, l)| view! {
                                <option value=v selected=move || {
                                    BackendChoice::parse(v) == Some(state.backend.get())
                                }>{l}</option>
                            })}
                    </select>
                </label>
            </div>
            <KeptModels />
        </section>
    }
}
