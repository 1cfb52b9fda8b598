//! WALF: fine-tuning a masked LM towards a desired gender distribution (Shrestha & Srinivasan,
//! EMNLP 2025). Step-wise, so that a front end can run one batch, show the numbers, and go on or
//! stop; backend-generic like the rest of the engine.

pub mod classroom;
pub mod paper;

#[cfg(feature = "engine")]
pub mod cda;
#[cfg(feature = "engine")]
pub mod loss;
#[cfg(feature = "engine")]
pub mod tracker;
#[cfg(feature = "engine")]
mod trainer;

#[cfg(feature = "engine")]
pub use tracker::{GroupKl, KlTracker, adjust_lambda, alpha};
#[cfg(feature = "engine")]
pub use trainer::{
    EpochRecord, Objective, StepRecord, TrainerState, Validation, WalfConfig, WalfTrainer,
};
