//! The paper's WALF hyper-parameters. Plain numbers, outside the engine, because the page offers
//! them as its defaults without linking the engine.

use crate::bias::Target;

/// Weight of the masked-LM loss (real-world target only).
pub const GAMMA: f64 = 0.1;
/// Momentum of the KL tracker's moving average.
pub const BETA: f64 = 0.95;
pub const LR: f64 = 2e-5;
pub const WEIGHT_DECAY: f64 = 0.01;
pub const BATCH_SIZE: usize = 8;
pub const VALID_BATCH_SIZE: usize = 3;
pub const PATIENCE: usize = 5;
pub const MAX_EPOCHS: usize = 50;
pub const SEED: u64 = 42;

/// The smallest fall of the validation KL that counts as progress for early stopping.
pub fn min_delta(target: Target) -> f64 {
    match target {
        Target::Equal => 1e-4,
        Target::RealWorld => 1e-3,
    }
}
