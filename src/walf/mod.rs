//! WALF: fine-tuning a masked LM towards a desired gender distribution (Shrestha & Srinivasan,
//! EMNLP 2025). Step-wise, so that a front end can run one batch, show the numbers, and go on or
//! stop; backend-generic like the rest of the engine.

pub mod loss;
pub mod tracker;
mod trainer;

pub use tracker::{GroupKl, KlTracker, adjust_lambda, alpha};
pub use trainer::{EpochRecord, StepRecord, WalfConfig, WalfTrainer};
