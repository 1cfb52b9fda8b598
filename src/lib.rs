//! walf-lab's engine: masked language models in burn, the bias measure of Shrestha &
//! Srinivasan (EMNLP 2025) and, built on it, WALF fine-tuning. It takes bytes and returns
//! values: no files, threads or browser APIs, so the same code runs natively and in WASM.

pub mod bias;
pub mod config;
pub mod data;
#[cfg(not(target_arch = "wasm32"))]
pub mod device;
pub mod engine;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod folder;
pub mod hub;
pub mod lm_loss;
pub mod measure;
pub mod model;
pub mod pretrain;
pub mod protocol;
pub mod readback;
pub mod rng;
pub mod share;
pub mod tokenizer;
pub mod view;
pub mod walf;
pub mod weights;

pub use error::{Error, Result};
