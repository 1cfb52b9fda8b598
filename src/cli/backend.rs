//! Choosing the device at start-up.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use burn::tensor::Device;
use clap::ValueEnum;
use walf_lab::speed::{BackendTime, SpeedBatch, describe, fastest};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// burn's pure-Rust CPU backend (flex), on every core.
    Cpu,
    /// WebGPU's native API (Vulkan, Metal or DX12) through burn-wgpu.
    Wgpu,
    /// With a graphics card (never a software adapter such as lavapipe, slower than the CPU),
    /// the faster of it and the CPU on one batch of the model's probe; else the CPU. Says which
    /// and why on stderr, with both times.
    Auto,
}

/// Counts software adapters as graphics cards for `--backend auto`, so that the timed choice can
/// be exercised on a machine without a GPU (the tests do).
pub const COUNT_SOFTWARE_ADAPTERS: &str = "WALF_AUTO_COUNT_SOFTWARE_ADAPTERS";

impl BackendChoice {
    /// The device for the model in `dir` (see [`super::load_model_on`]): for `auto` with a
    /// graphics card, the faster one for this model.
    pub fn device_for(self, dir: Option<&Path>) -> Result<Device> {
        if self != BackendChoice::Auto {
            return self.device();
        }
        let gpu = if std::env::var_os(COUNT_SOFTWARE_ADAPTERS).is_some() {
            walf_lab::device::wgpu()
        } else {
            walf_lab::device::graphics_card()
        };
        let gpu = match gpu {
            Ok(gpu) => gpu,
            Err(why) => {
                eprintln!("running on the CPU: {}", reason(why));
                return Ok(walf_lab::device::cpu());
            }
        };
        let cpu = walf_lab::device::cpu();
        let clock = Instant::now();
        let now_ms = || clock.elapsed().as_secs_f64() * 1e3;
        let mut times = Vec::new();
        let mut batch = None;
        for (label, device) in [("wgpu", &gpu), ("CPU", &cpu)] {
            let lm = super::load_model_on(dir, device)?;
            // the same sentences on both: the tokenizer is the model's, whatever the device
            let batch = match &batch {
                Some(batch) => batch,
                None => match SpeedBatch::new(&lm) {
                    Ok(made) => batch.insert(made),
                    Err(e) => {
                        // the model may still run a benchmark of the user's own (--data)
                        eprintln!(
                            "running on the CPU: the bundled test split cannot be timed on \
                             this model ({e})"
                        );
                        return Ok(walf_lab::device::cpu());
                    }
                },
            };
            let ms = pollster::block_on(batch.time_ms(&lm, &now_ms)).unwrap_or_else(|e| {
                eprintln!("{label} failed the timing batch: {e}");
                f64::INFINITY
            });
            times.push(BackendTime {
                label: label.into(),
                ms_per_batch: ms,
            });
        }
        let sentences = batch.map_or(0, |b| b.len());
        let chosen = fastest(&times).unwrap_or(1);
        eprintln!(
            "backend: {} (a probe batch of {sentences} sentences): running on {}",
            describe(&times),
            if chosen == 0 {
                "the graphics card, through wgpu"
            } else {
                "the CPU"
            }
        );
        Ok(if chosen == 0 { gpu } else { cpu })
    }

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
                    eprintln!("running on the CPU: {}", reason(why));
                    walf_lab::device::cpu()
                }
            },
        })
    }
}

fn reason(why: walf_lab::Error) -> String {
    match why {
        walf_lab::Error::Backend(message) => message,
        other => other.to_string(),
    }
}
