//! The paper's WALF hyper-parameters. Plain numbers, outside the engine, because the page offers
//! them as its defaults without linking the engine.

use crate::bias::Target;

/// Weight of the masked-LM loss (real-world target only): one point of the paper's grid
/// (γ ∈ {0.001 … 1.0}), not a single value the paper prescribes.
pub const GAMMA: f64 = 0.1;
/// Momentum of the KL tracker's moving average: one point of the paper's grid
/// (β ∈ {0.6, 0.8, 0.95}).
pub const BETA: f64 = 0.95;
pub const LR: f64 = 2e-5;
pub const WEIGHT_DECAY: f64 = 0.01;
pub const BATCH_SIZE: usize = 8;
pub const VALID_BATCH_SIZE: usize = 3;
pub const PATIENCE: usize = 5;
/// Ours, not the paper's: its training loop runs until patience stops it (`while True`); a cap
/// keeps a run that never stalls from running for ever.
pub const MAX_EPOCHS: usize = 50;
pub const SEED: u64 = 42;

/// The smallest fall of the validation KL that counts as progress for early stopping.
pub fn min_delta(target: Target) -> f64 {
    match target {
        Target::Equal => 1e-4,
        Target::RealWorld => 1e-3,
    }
}
