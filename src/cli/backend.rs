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
    /// A graphics card through wgpu if the machine has one (never a software adapter such as
    /// lavapipe, slower than the CPU), else the CPU; says which on stderr.
    Auto,
}

impl BackendChoice {
    pub fn device(self) -> Result<Device> {
        Ok(match self {
            BackendChoice::Cpu => walf_lab::device::cpu(),
            BackendChoice::Wgpu => walf_lab::device::wgpu()?,
            BackendChoice::Auto => match walf_lab::device::graphics_card() {
                Ok(device) => {
                    eprintln!("backend: the graphics card, through wgpu");
                    device
                }
                Err(why) => {
                    let why = match why {
                        walf_lab::Error::Backend(message) => message,
                        other => other.to_string(),
                    };
                    eprintln!("running on the CPU: {why}");
                    walf_lab::device::cpu()
                }
            },
        })
    }
}
