//! The engine's Web Worker: loads models, probes, fills masks, runs WALF and exports, answering
//! the page's `protocol::Request`s with `protocol::Reply`s. Built by Trunk for the browser only.

#[cfg(target_arch = "wasm32")]
mod backend;
#[cfg(target_arch = "wasm32")]
mod net;
#[cfg(target_arch = "wasm32")]
mod session;
#[cfg(target_arch = "wasm32")]
mod store;

#[cfg(target_arch = "wasm32")]
fn main() {
    session::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("walf-worker runs in a browser: build the app with `trunk build`");
    std::process::exit(2);
}
