//! Under dropout, does sharing one pass of a masked sentence among its uses change WALF? One
//! epoch of the equal target with dropout on (the paper's settings), per seed, with every use
//! drawing its own dropout mask (the paper's objective, the default) and with one mask per
//! distinct sentence; prints the validation KL after the epoch and the epoch's time. Asserts
//! nothing.
//!
//!     cargo run --release --example bench_dropout_sharing -- [MODEL_DIR] [--seeds 42,1,2]
//!         [--target equal|real-world]

use std::path::Path;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;

use common::{arg, model_or_bundled};
use walf_lab::bias::Target;
use walf_lab::data::Benchmark;
use walf_lab::walf::{WalfConfig, WalfTrainer};

fn epoch(dir: &Path, target: Target, seed: u64, per_use: bool) -> (f64, f64) {
    let lm = walf_lab::folder::load_model_folder(dir, &walf_lab::device::cpu().autodiff())
        .unwrap_or_else(|e| panic!("{e}"));
    let config = WalfConfig {
        seed,
        dropout_per_use: per_use,
        // one masked token per sentence keeps a real-world epoch short; the KL part is what differs
        mlm_positions: Some(1),
        ..WalfConfig::paper(target)
    };
    let mut trainer = WalfTrainer::new(lm, &Benchmark::bundled(), config).unwrap();
    let started = Instant::now();
    while pollster::block_on(trainer.step()).unwrap().is_some() {}
    let seconds = started.elapsed().as_secs_f64();
    let record = pollster::block_on(trainer.validate()).unwrap();
    (record.valid_kl, seconds)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = model_or_bundled(&args);
    let seeds: Vec<u64> = arg(&args, "--seeds")
        .unwrap_or("42,1,2".into())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let target = match arg(&args, "--target").as_deref() {
        Some("real-world") => Target::RealWorld,
        _ => Target::Equal,
    };
    println!(
        "{}: one WALF epoch, target {}, dropout on\n",
        model.display(),
        target.label()
    );
    println!(
        "{:>6}{:>22}{:>10}{:>22}{:>10}",
        "seed", "valid KL, own masks", "s", "valid KL, shared", "s"
    );
    let (mut own_sum, mut shared_sum, mut own_s, mut shared_s) = (0.0, 0.0, 0.0, 0.0);
    for &seed in &seeds {
        let (own, own_t) = epoch(&model, target, seed, true);
        let (shared, shared_t) = epoch(&model, target, seed, false);
        println!("{seed:>6}{own:>22.6}{own_t:>10.1}{shared:>22.6}{shared_t:>10.1}");
        own_sum += own;
        shared_sum += shared;
        own_s += own_t;
        shared_s += shared_t;
    }
    let n = seeds.len().max(1) as f64;
    println!(
        "{:>6}{:>22.6}{:>10.1}{:>22.6}{:>10.1}\nown masks / shared time: {:.2}×",
        "mean",
        own_sum / n,
        own_s / n,
        shared_sum / n,
        shared_s / n,
        own_s / shared_s
    );
}
