//! walf-lab's web page: a Leptos app that talks to the engine in a Web Worker (`walf-worker`)
//! through `walf_lab::protocol`. Built by Trunk (index.html at the repository root).

#[cfg(target_arch = "wasm32")]
mod address;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod chart;
#[cfg(target_arch = "wasm32")]
mod compare_view;
#[cfg(target_arch = "wasm32")]
mod download;
#[cfg(target_arch = "wasm32")]
mod engine;
#[cfg(target_arch = "wasm32")]
mod fill_view;
#[cfg(target_arch = "wasm32")]
mod kept;
#[cfg(target_arch = "wasm32")]
mod lesson_view;
#[cfg(target_arch = "wasm32")]
mod model_panel;
#[cfg(target_arch = "wasm32")]
mod probe_view;
#[cfg(target_arch = "wasm32")]
mod scatter;
#[cfg(target_arch = "wasm32")]
mod share_view;
#[cfg(target_arch = "wasm32")]
mod state;
#[cfg(target_arch = "wasm32")]
// The wire format the worker and its helpers speak too (the page sends and receives bytes
// only: the f32 buffers are the helpers').
#[allow(dead_code)]
#[path = "../walf-worker/transport.rs"]
mod transport;
#[cfg(target_arch = "wasm32")]
mod tune_view;

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    engine::mark("walf:app-start");
    leptos::mount::mount_to_body(app::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "walf-app runs in a browser: build it with `trunk build` or serve it with `trunk serve`"
    );
    std::process::exit(2);
}
