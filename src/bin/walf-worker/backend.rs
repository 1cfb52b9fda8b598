//! Choosing the device in the browser: WebGPU through burn-wgpu when the browser offers an
//! adapter, burn's CPU backend otherwise, and always a sentence saying which and why.

use burn::tensor::{Device, Tensor};
use js_sys::Reflect;
use walf_lab::protocol::{BackendChoice, BackendInfo};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::net::{js_error, scope};
use crate::product;

fn cpu(notice: Option<String>) -> (Device, BackendInfo) {
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

/// Asks the browser for a WebGPU adapter ourselves first: burn would panic without one.
async fn webgpu_adapter() -> Result<(), String> {
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
    Ok(())
}

async fn webgpu() -> Result<Device, String> {
    webgpu_adapter().await?;
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
        return Err(format!("WebGPU computed 1 + 2 = {value:?}"));
    }
    Ok(device)
}

pub async fn open(choice: BackendChoice) -> (Device, BackendInfo) {
    match choice {
        BackendChoice::Cpu => cpu(Some("the CPU backend was chosen".into())),
        BackendChoice::Auto | BackendChoice::Webgpu => match webgpu().await {
            Ok(device) => (
                device,
                BackendInfo {
                    name: "this computer's graphics card (WebGPU)".into(),
                    detail: "burn's wgpu backend on the browser's WebGPU".into(),
                    notice: None,
                    gpu: true,
                },
            ),
            Err(why) => cpu(Some(format!(
                "running on the CPU, slower: {why}. Chrome and Edge offer WebGPU; Firefox and \
                 Safari in recent versions"
            ))),
        },
    }
}
