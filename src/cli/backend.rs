//! Choosing the device at start-up.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use burn::tensor::Device;
use clap::ValueEnum;
use walf_lab::speed::{BackendTime, SpeedBatch, TRIAL_ITEMS, describe, fastest, step_time_ms};
use walf_lab::walf::WalfTrainer;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// burn's pure-Rust CPU backend (flex), on every core.
    Cpu,
    /// WebGPU's native API (Vulkan, Metal or DX12) through burn-wgpu.
    Wgpu,
    /// With a graphics card (never a software adapter such as lavapipe, slower than the CPU),
    /// the faster of it and the CPU on one batch of the model's probe (for `tune`, on a training
    /// step's work); else the CPU. Says which and why on stderr, with both times.
    Auto,
}

/// Counts software adapters as graphics cards for `--backend auto`, so that the timed choice can
/// be exercised on a machine without a GPU (the tests do).
pub const COUNT_SOFTWARE_ADAPTERS: &str = "WALF_AUTO_COUNT_SOFTWARE_ADAPTERS";

impl BackendChoice {
    /// The device for the model in `dir` (see [`super::load_model_on`]): for `auto` with a
    /// graphics card, the faster one for this model on a batch of its probe.
    pub fn device_for(self, dir: Option<&Path>) -> Result<Device> {
        if self != BackendChoice::Auto {
            return self.device();
        }
        let Some(gpu) = auto_gpu() else {
            return Ok(walf_lab::device::cpu());
        };
        // the same sentences on both: the tokenizer is the model's, whatever the device
        let mut batch: Option<SpeedBatch> = None;
        let mut sentences = 0;
        let chosen = faster(gpu, "batch", |device, now_ms| {
            let lm = super::load_model_on(dir, device)?;
            let batch = match &mut batch {
                Some(batch) => batch,
                // a model that cannot run the bundled test split may still run the user's own
                // benchmark (--data): both timings fail, and the CPU is taken
                None => batch.insert(SpeedBatch::new(&lm)?),
            };
            sentences = batch.len();
            Ok(pollster::block_on(batch.time_ms(&lm, now_ms))?)
        });
        eprintln!(
            "backend: {} (a probe batch of {sentences} sentences): running on {}",
            chosen.figures, chosen.on
        );
        Ok(chosen.device)
    }

    /// The device for a tuning run: for `auto` with a graphics card, the faster one for a
    /// training step of this run's kind, each trainer made by `trainer` on the device given
    /// (an autodiff device: the one to train on).
    /// `item` names what a step trains on ("profession", "sentence").
    pub fn device_for_training(
        self,
        item: &str,
        trainer: impl Fn(&Device) -> Result<WalfTrainer>,
    ) -> Result<Device> {
        if self != BackendChoice::Auto {
            return self.device();
        }
        let Some(gpu) = auto_gpu() else {
            return Ok(walf_lab::device::cpu());
        };
        let chosen = faster(gpu, "step", |device, now_ms| {
            let mut trainer = trainer(&device.clone().autodiff())?;
            Ok(pollster::block_on(step_time_ms(&mut trainer, now_ms))?)
        });
        eprintln!(
            "backend: {} (a training step's work on {TRIAL_ITEMS} {item}{} of the first batch): \
             running on {}",
            chosen.figures,
            if TRIAL_ITEMS == 1 { "" } else { "s" },
            chosen.on
        );
        Ok(chosen.device)
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

/// The GPU `auto` may time, or `None` (said on stderr: the CPU is taken).
fn auto_gpu() -> Option<Device> {
    let gpu = if std::env::var_os(COUNT_SOFTWARE_ADAPTERS).is_some() {
        walf_lab::device::wgpu()
    } else {
        walf_lab::device::graphics_card()
    };
    gpu.map_err(|why| eprintln!("running on the CPU: {}", reason(why)))
        .ok()
}

/// What [`faster`] chose.
struct Chosen {
    device: Device,
    /// Both figures, e.g. "wgpu 216 ms/batch, CPU 14 ms/batch".
    figures: String,
    /// "the CPU" or "the graphics card, through wgpu".
    on: &'static str,
}

/// Times the same work on the GPU and on the CPU (`time` by the clock it is given) and takes
/// the faster; a device whose timing fails (said on stderr) loses, and the CPU is taken when
/// both fail.
fn faster(
    gpu: Device,
    per: &str,
    mut time: impl FnMut(&Device, &dyn Fn() -> f64) -> Result<f64>,
) -> Chosen {
    let cpu = walf_lab::device::cpu();
    let clock = Instant::now();
    let now_ms = || clock.elapsed().as_secs_f64() * 1e3;
    let times: Vec<BackendTime> = [("wgpu", &gpu), ("CPU", &cpu)]
        .into_iter()
        .map(|(label, device)| BackendTime {
            label: label.into(),
            ms: time(device, &now_ms).unwrap_or_else(|e| {
                eprintln!("{label} failed the timing: {e:#}");
                f64::INFINITY
            }),
        })
        .collect();
    let on_gpu = fastest(&times) == Some(0);
    Chosen {
        figures: describe(&times, per),
        on: if on_gpu {
            "the graphics card, through wgpu"
        } else {
            "the CPU"
        },
        device: if on_gpu { gpu } else { cpu },
    }
}

fn reason(why: walf_lab::Error) -> String {
    match why {
        walf_lab::Error::Backend(message) => message,
        other => other.to_string(),
    }
}
