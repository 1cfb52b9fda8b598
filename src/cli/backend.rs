//! Choosing the device at start-up.

use anyhow::Result;
use burn::tensor::Device;
use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// burn's pure-Rust CPU backend (flex), on every core.
    Cpu,
    /// WebGPU's native API (Vulkan, Metal or DX12) through burn-wgpu.
    Wgpu,
}

impl BackendChoice {
    pub fn device(self) -> Result<Device> {
        Ok(match self {
            BackendChoice::Cpu => walf_lab::device::cpu(),
            BackendChoice::Wgpu => walf_lab::device::wgpu()?,
        })
    }
}
