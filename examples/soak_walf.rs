//! Soak run of WALF: hundreds of steps (with a validation at the end of every epoch, as a real
//! run does) on a small model, on the CPU backend and on wgpu, with this process's resident memory
//! sampled every few steps. Prints the samples and the growth per 100 steps after warm-up (a
//! least-squares slope over the second half of the run); asserts nothing.
//!
//!     cargo run --release --example soak_walf -- [MODEL_DIR] [--steps N] [--every N]
//!         [--backend cpu|wgpu|both] [--target equal|real-world]
//!
//! MODEL_DIR defaults to the tiny fixture BERT. On a machine without a GPU, wgpu runs on Mesa's
//! lavapipe (Vulkan on the CPU), whose "GPU memory" is this process's memory, so it is counted.

#[path = "common/mod.rs"]
mod common;
use common::arg;
use std::path::{Path, PathBuf};
use std::time::Instant;

use walf_lab::bias::Target;
use walf_lab::data::Benchmark;
use walf_lab::walf::{WalfConfig, WalfTrainer};

/// This process's resident memory now, in MiB (Linux).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if den > 0.0 { num / den } else { f64::NAN }
}

fn soak(dir: &Path, backend: &str, steps: usize, every: usize, target: Target) {
    let device = match backend {
        "wgpu" => match walf_lab::device::wgpu() {
            Ok(d) => d,
            Err(e) => {
                println!("wgpu: not run ({e})");
                return;
            }
        },
        _ => walf_lab::device::cpu(),
    };
    let lm = walf_lab::folder::load_model_folder(dir, &device.autodiff())
        .unwrap_or_else(|e| panic!("{e}"));
    let config = WalfConfig {
        lr: 1e-4,
        max_epochs: usize::MAX,
        patience: usize::MAX,
        ..WalfConfig::paper(target)
    };
    let mut trainer = WalfTrainer::new(lm, &Benchmark::bundled(), config).expect("trainer");
    let started = Instant::now();
    let mut samples = vec![(0.0, rss_mib())];
    let mut done = 0;
    let mut validations = 0;
    println!("## {backend}: {steps} steps, target {}", target.label());
    println!("step  RSS MiB  seconds");
    println!("{:>4}  {:>7.1}  {:>7.1}", 0, samples[0].1, 0.0);
    while done < steps {
        match pollster::block_on(trainer.step()).expect("step") {
            Some(_) => {
                done += 1;
                if done % every == 0 {
                    let rss = rss_mib();
                    samples.push((done as f64, rss));
                    println!(
                        "{done:>4}  {rss:>7.1}  {:>7.1}",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            None => {
                pollster::block_on(trainer.validate()).expect("validation");
                validations += 1;
            }
        }
    }
    let late: Vec<(f64, f64)> = samples
        .iter()
        .copied()
        .filter(|(s, _)| *s >= steps as f64 / 2.0)
        .collect();
    let first = samples.get(1).map_or(f64::NAN, |s| s.1);
    let last = samples.last().map_or(f64::NAN, |s| s.1);
    println!(
        "{backend}: {validations} validations; RSS {:.1} MiB at start, {first:.1} after {every} \
         steps, {last:.1} at the end; growth over the second half: {:.2} MiB per 100 steps; \
         {:.1} s",
        samples[0].1,
        100.0 * slope(&late),
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("tests/fixtures/models/bert"));
    let steps: usize = arg(&args, "--steps").map_or(400, |s| s.parse().expect("--steps N"));
    let every: usize = arg(&args, "--every").map_or(20, |s| s.parse().expect("--every N"));
    let target = match arg(&args, "--target").as_deref() {
        Some("equal") => Target::Equal,
        _ => Target::RealWorld,
    };
    let backends = match arg(&args, "--backend").as_deref() {
        Some("cpu") => vec!["cpu"],
        Some("wgpu") => vec!["wgpu"],
        _ => vec!["cpu", "wgpu"],
    };
    for backend in backends {
        soak(&dir, backend, steps, every.max(1), target);
    }
}
