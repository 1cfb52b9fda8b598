//! Benchmark of WALF training against the paper's fine-tuning procedure in PyTorch +
//! transformers on the same CPU, in the same run: (a) sentence by sentence as its code does,
//! (b) batched. Same weights, train split, paper's hyper-parameters, dropout on; validation
//! excluded. Prints seconds per profession trained and the ratios, and this process's peak
//! memory; asserts nothing. Needs python3 with tests/reference/requirements.txt.
//!
//!     cargo run --release --example bench_walf -- MODEL_DIR [--batches N] [--no-sequential]
//!         [--target equal|real-world] [--threads N] [--no-python] [--mlm-chunk N]
//!
//! `--batches N` stops each run after N training batches (a whole epoch by default); the
//! comparison is per profession, since the two sides shuffle batches with different generators.

#[path = "common/mod.rs"]
mod common;
use common::arg;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use walf_lab::bias::Target;
use walf_lab::data::Benchmark;
use walf_lab::walf::{WalfConfig, WalfTrainer};

/// This process's peak resident memory, in MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

struct Run {
    seconds: f64,
    professions: usize,
    peak_mib: Option<f64>,
    /// Read-backs from the device per training step (ours only): on a GPU each one waits for
    /// everything queued before it.
    reads_per_step: Option<f64>,
}

fn python(
    model: &PathBuf,
    target: &str,
    mode: &str,
    batches: Option<usize>,
    threads: usize,
) -> Option<Run> {
    let mut command = Command::new("python3");
    command
        .args(["tests/reference/walf_epoch.py", "--skip-valid", "--model"])
        .arg(model)
        .args([
            "--target",
            target,
            "--mode",
            mode,
            "--threads",
            &threads.to_string(),
        ]);
    if let Some(n) = batches {
        command.args(["--max-batches", &n.to_string()]);
    }
    let out = command.output().ok()?;
    if !out.status.success() {
        eprintln!(
            "python {mode} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    Some(Run {
        seconds: v["seconds"].as_f64()?,
        professions: v["professions"].as_u64()? as usize,
        peak_mib: v["peak_rss_mb"].as_f64(),
        reads_per_step: None,
    })
}

fn ours(dir: &Path, target: Target, batches: Option<usize>, mlm_chunk: usize) -> Run {
    let lm = walf_lab::folder::load_model_folder(dir, &walf_lab::device::cpu().autodiff())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut trainer = WalfTrainer::new(
        lm,
        &Benchmark::bundled(),
        WalfConfig {
            mlm_chunk,
            ..WalfConfig::paper(target)
        },
    )
    .unwrap();
    let started = Instant::now();
    let reads = walf_lab::readback::read_backs();
    let mut professions = 0;
    let mut done = 0;
    while batches.is_none_or(|n| done < n) {
        match pollster::block_on(trainer.step()).unwrap() {
            Some(step) => professions += step.professions.len(),
            None => break,
        }
        done += 1;
    }
    Run {
        seconds: started.elapsed().as_secs_f64(),
        professions,
        peak_mib: peak_rss_mib(),
        reads_per_step: (done > 0)
            .then(|| (walf_lab::readback::read_backs() - reads) as f64 / done as f64),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = PathBuf::from(args.first().filter(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| {
        eprintln!("usage: bench_walf MODEL_DIR [--batches N] [--no-sequential] [--target equal|real-world]");
        std::process::exit(2)
    }));
    let batches: Option<usize> = arg(&args, "--batches").and_then(|n| n.parse().ok());
    let threads = arg(&args, "--threads")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    let mlm_chunk = arg(&args, "--mlm-chunk")
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let no_python = args.iter().any(|a| a == "--no-python");
    let sequential = !no_python && !args.iter().any(|a| a == "--no-sequential");
    let targets: Vec<(Target, &str)> = match arg(&args, "--target").as_deref() {
        Some("equal") => vec![(Target::Equal, "equal")],
        Some("real-world") => vec![(Target::RealWorld, "real_world")],
        _ => vec![(Target::Equal, "equal"), (Target::RealWorld, "real_world")],
    };
    println!(
        "{}: WALF training, {} batch(es), CPU, {threads} thread(s) for PyTorch\n",
        model.display(),
        batches
            .map(|n: usize| n.to_string())
            .unwrap_or("all".into())
    );
    println!(
        "{:<12}{:>14}{:>16}{:>10}{:>18}{:>10}{:>14}{:>14}{:>14}",
        "target",
        "walf s/prof",
        "batched s/prof",
        "ratio",
        "sequential s/prof",
        "ratio",
        "walf peak MiB",
        "torch peak MiB",
        "reads/step"
    );
    for (target, key) in targets {
        let ours = ours(&model, target, batches, mlm_chunk);
        let per = |r: &Run| r.seconds / r.professions.max(1) as f64;
        let batched = if no_python {
            None
        } else {
            python(&model, key, "batched", batches, threads)
        };
        let seq = if sequential {
            python(&model, key, "sequential", batches, threads)
        } else {
            None
        };
        let show = |r: &Option<Run>| match r {
            Some(r) => (
                format!("{:.3}", per(r)),
                format!("{:.1}x", per(r) / per(&ours)),
            ),
            None => ("-".into(), "-".into()),
        };
        let (bs, br) = show(&batched);
        let (ss, sr) = show(&seq);
        let torch_peak = seq.as_ref().or(batched.as_ref()).and_then(|r| r.peak_mib);
        println!(
            "{:<12}{:>14.3}{:>16}{:>10}{:>18}{:>10}{:>14}{:>14}{:>14}",
            key,
            per(&ours),
            bs,
            br,
            ss,
            sr,
            ours.peak_mib
                .map(|m| format!("{m:.0}"))
                .unwrap_or("-".into()),
            torch_peak.map(|m| format!("{m:.0}")).unwrap_or("-".into()),
            ours.reads_per_step
                .map(|r| format!("{r:.1}"))
                .unwrap_or("-".into())
        );
    }
}
