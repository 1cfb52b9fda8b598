//! walf-lab's engine: masked language models in burn, the bias measure of Shrestha &
//! Srinivasan (EMNLP 2025) and, built on it, WALF fine-tuning. It takes bytes and returns
//! values: no files, threads or browser APIs, so the same code runs natively and in WASM.

//!
//! Without the `engine` feature only the plain-data half is built (benchmark data, the bias
//! report, the message protocol, share links, view logic): what the page needs to show results.

pub mod bias;
pub mod cda;
pub mod config;
pub mod data;
pub mod error;
pub mod hub;
pub mod lm_loss;
pub mod protocol;
pub mod share;
pub mod view;
pub mod walf;

#[cfg(all(feature = "engine", not(target_arch = "wasm32")))]
pub mod device;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(all(feature = "engine", not(target_arch = "wasm32")))]
pub mod folder;
#[cfg(feature = "engine")]
pub mod measure;
#[cfg(feature = "engine")]
pub mod model;
#[cfg(feature = "engine")]
pub mod pretrain;
#[cfg(feature = "engine")]
pub mod readback;
#[cfg(feature = "engine")]
pub mod rng;
#[cfg(feature = "engine")]
pub mod speed;
#[cfg(feature = "engine")]
pub mod tokenizer;
#[cfg(feature = "engine")]
pub mod weights;

pub use error::{Error, Result};
