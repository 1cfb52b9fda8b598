//! The integration tests, linked as one binary: each test binary links the whole engine (burn,
//! wgpu, tokenizers), so one binary instead of eight saves minutes of linking and gigabytes of disk.

mod common;

mod architecture;
mod bad_input;
mod cda;
mod cli;
mod data;
mod lm_loss;
mod loading;
mod pretrain;
mod reference_outputs;
mod walf;
mod walf_reference;
