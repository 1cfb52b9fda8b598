//! The engine's Web Worker: loads models, probes, fills masks, runs WALF and exports, answering
//! the page's `protocol::Request`s with `protocol::Reply`s. Built by Trunk for the browser only.

#[cfg(target_arch = "wasm32")]
mod backend;
// Plain: natively tested (the rest of the worker builds for the browser only).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod dispatch;
#[cfg(target_arch = "wasm32")]
mod net;
#[cfg(target_arch = "wasm32")]
mod pool;
#[cfg(target_arch = "wasm32")]
mod product;
#[cfg(target_arch = "wasm32")]
mod session;
#[cfg(target_arch = "wasm32")]
mod store;
#[cfg(target_arch = "wasm32")]
mod transport;

#[cfg(target_arch = "wasm32")]
fn main() {
    let checks = product::install();
    // The same script runs as the engine and as its helpers for the CPU backend (`pool`).
    if pool::is_helper() {
        pool::serve();
    } else {
        session::start(&checks);
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("walf-worker runs in a browser: build the app with `trunk build`");
    std::process::exit(2);
}
