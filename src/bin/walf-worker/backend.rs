//! Choosing the device in the browser: WebGPU through burn-wgpu when the browser offers a
//! hardware adapter, burn's CPU backend otherwise, and always a sentence saying which and why.
//! A software fallback adapter (SwiftShader, in a browser without a usable GPU) is never chosen
//! unless asked: it computed the bundled model's first chart in 268 s where the CPU takes 2 s.

use burn::tensor::{Device, Tensor};
use js_sys::Reflect;
use walf_lab::protocol::{BackendChoice, BackendInfo};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::net::{js_error, scope};
use crate::product;

/// A test's stand-in for a graphics card: `self.walfCountSoftwareAdapters = true` in the worker's
/// first script makes `automatic` take a software adapter as hardware, so that the timed choice
/// runs in a browser without a GPU (tests/e2e).
fn count_software_adapters() -> bool {
    Reflect::get(&scope(), &"walfCountSoftwareAdapters".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Whether `automatic` still has to time this model on the GPU against the CPU: it opened a
/// GPU, and a GPU is not always the faster of the two.
pub fn to_time(choice: BackendChoice, info: &BackendInfo) -> bool {
    choice == BackendChoice::Auto && info.gpu
}

pub fn cpu(notice: Option<String>) -> (Device, BackendInfo) {
    let detail = match product::chosen() {
        Some(kernel) => format!("burn's flex backend in WebAssembly; matrix products: {kernel}"),
        None => "burn's flex backend in WebAssembly".into(),
    };
    (
        Device::flex(),
        BackendInfo {
            name: "this computer's processor (CPU)".into(),
            detail,
            notice,
            gpu: false,
        },
    )
}

/// What the browser's adapter says of itself.
struct Adapter {
    /// A software implementation (`GPUAdapterInfo.isFallbackAdapter`; the older
    /// `GPUAdapter.isFallbackAdapter` where the info lacks it).
    fallback: bool,
    /// "google swiftshader", "nvidia ampere" …, for the page's detail line.
    name: String,
}

/// Asks the browser for a WebGPU adapter ourselves first: burn would panic without one.
async fn webgpu_adapter() -> Result<Adapter, String> {
    let navigator = Reflect::get(&scope(), &"navigator".into()).map_err(|e| js_error(&e))?;
    let gpu = Reflect::get(&navigator, &"gpu".into()).map_err(|e| js_error(&e))?;
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser offers no WebGPU here".into());
    }
    let request = Reflect::get(&gpu, &"requestAdapter".into()).map_err(|e| js_error(&e))?;
    let request: js_sys::Function = request
        .dyn_into()
        .map_err(|_| "navigator.gpu.requestAdapter is missing".to_string())?;
    let promise = request.call0(&gpu).map_err(|e| js_error(&e))?;
    let adapter = JsFuture::from(js_sys::Promise::from(promise))
        .await
        .map_err(|e| js_error(&e))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("the browser has WebGPU but no adapter (no usable GPU or driver)".into());
    }
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
    let flag = |on: &wasm_bindgen::JsValue| {
        Reflect::get(on, &"isFallbackAdapter".into())
            .ok()
            .and_then(|v| v.as_bool())
    };
    let text = |key: &str| {
        Reflect::get(&info, &key.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let fallback = (!info.is_undefined())
        .then(|| flag(&info))
        .flatten()
        .or_else(|| flag(&adapter))
        .unwrap_or(false);
    let name = [text("vendor"), text("architecture")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Adapter { fallback, name })
}

/// Why WebGPU is not used.
enum NoWebgpu {
    /// Only a software adapter, passed over: the CPU is the faster choice.
    Software(String),
    /// None at all, or one that fails: the CPU is the slower choice.
    Unavailable(String),
}

impl From<String> for NoWebgpu {
    fn from(why: String) -> Self {
        Self::Unavailable(why)
    }
}

async fn webgpu(choice: BackendChoice) -> Result<(Device, Adapter), NoWebgpu> {
    let adapter = webgpu_adapter().await?;
    if adapter.fallback && choice == BackendChoice::Auto && !count_software_adapters() {
        return Err(NoWebgpu::Software(format!(
            "running on the CPU: the browser's only WebGPU adapter is a software fallback ({}), \
             far slower than the CPU; choose WebGPU to use it anyway",
            if adapter.name.is_empty() {
                "no GPU"
            } else {
                &adapter.name
            }
        )));
    }
    let device = Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| format!("WebGPU could not be initialised ({e:?})"))?;
    // A small computation proves the device works before a model is put on it.
    let sum = Tensor::<1>::from_floats([1.0f32, 2.0], &device).sum();
    let value = sum
        .into_data_async()
        .await
        .map_err(|e| format!("WebGPU failed a test computation ({e:?})"))?
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    if value != [3.0] {
        return Err(format!("WebGPU computed 1 + 2 = {value:?}").into());
    }
    Ok((device, adapter))
}

pub async fn open(choice: BackendChoice) -> (Device, BackendInfo) {
    match choice {
        BackendChoice::Cpu => cpu(Some("the CPU backend was chosen".into())),
        BackendChoice::Auto | BackendChoice::Webgpu => match webgpu(choice).await {
            Ok((device, adapter)) => (
                device,
                BackendInfo {
                    name: if adapter.fallback {
                        "the browser's software WebGPU (no graphics card)".into()
                    } else {
                        "this computer's graphics card (WebGPU)".into()
                    },
                    detail: format!(
                        "burn's wgpu backend on the browser's WebGPU{}",
                        if adapter.name.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", adapter.name)
                        }
                    ),
                    notice: (adapter.fallback && choice == BackendChoice::Webgpu).then(|| {
                        "WebGPU as asked, on a software fallback adapter: slower than the CPU"
                            .into()
                    }),
                    gpu: true,
                },
            ),
            Err(NoWebgpu::Software(why)) => cpu(Some(why)),
            Err(NoWebgpu::Unavailable(why)) => cpu(Some(format!(
                "running on the CPU, slower: {why}. Chrome and Edge offer WebGPU; Firefox and \
                 Safari in recent versions"
            ))),
        },
    }
}
