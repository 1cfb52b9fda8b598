//! The GPU against the CPU, natively, in one run: for each model, the probe of the test split and
//! WALF steps of each target on burn's CPU backend and on wgpu, with the GPU's ratios to the CPU
//! and how far its results are from the CPU's. `scripts/gpu-bench.sh` runs it (built once, so it
//! can be carried to a machine with a GPU and no registry). Times are printed, never asserted.
//!
//!     cargo run --release --example bench_gpu -- [MODEL_DIR ...] [--steps N] [--budget-s S]
//!         [--deadline-s S] [--batch-size N] [--software] [--no-bert-base] [--out FILE]
//!
//! Without model folders: the bundled brown-bert and minilm-brown, and a random model of
//! bert-base's shape (12 layers, hidden 768) on minilm-brown's vocabulary, made here so that
//! nothing needs downloading. Dropout is off so that the two backends train on the same loss.
//!
//! - `--steps` (20): the most WALF steps a run takes.
//! - `--budget-s` (30): the seconds after which a run stops early, never before two steps (the
//!   first compiles the GPU's kernels and is reported on its own).
//! - `--deadline-s` (420): whatever is left after that many seconds is skipped, so that the whole
//!   run ends in time.
//! - `--batch-size` (the paper's 8): professions per step.
//! - `--software`: wgpu may take a software adapter (lavapipe, for the smoke test); otherwise a
//!   graphics card only.
//!
//! With `CUBECL_DEBUG_LOG=FILE CUBECL_DEBUG_OPTION=profile` in the environment it also counts
//! the GPU's kernel launches per probe batch and per step, from cubecl's log (which times each
//! kernel, so the times of such a run are not the GPU's own).
//!
//! Exits with status 1 when a model fails or the GPU's results are not the CPU's (probabilities
//! within 1e-4, step losses within 1e-3 of their size).

#[path = "common/mod.rs"]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use common::arg;
use walf_lab::bias::{Target, bias_report};
use walf_lab::config::ModelConfig;
use walf_lab::data::{Benchmark, Split};
use walf_lab::engine::LanguageModel;
use walf_lab::measure::{ProbeSettings, SentencePlan};
use walf_lab::walf::{WalfConfig, WalfTrainer};

const TARGETS: [(Target, &str); 2] = [(Target::Equal, "equal"), (Target::RealWorld, "real-world")];

/// One backend's figures for one model.
#[derive(Default)]
struct Figures {
    load_s: f64,
    probe_cold_s: f64,
    probe_warm_s: f64,
    /// P(female) of each test profession, for comparing the backends.
    p_female: Vec<f64>,
    kl_all: Vec<f64>,
    /// Kernel launches per batch of the warm probe, where cubecl logs them.
    kernels_per_batch: Option<f64>,
    /// Per target: the first step's seconds, then ms per profession over the other steps.
    steps: Vec<Option<Steps>>,
}

struct Steps {
    first_s: f64,
    ms_per_profession: f64,
    steps: usize,
    reads_per_step: f64,
    kernels_per_step: Option<f64>,
    losses: Vec<f64>,
}

/// Kernel launches cubecl has logged so far: with `CUBECL_DEBUG_LOG=FILE` and
/// `CUBECL_DEBUG_OPTION=profile` it writes one line per launch, beginning "| ", flushed as it
/// goes (each count is taken after a read-back, so every launch before it is in). `None` without
/// that log, and always for the CPU backend, which launches none.
fn kernels_logged() -> Option<usize> {
    let path = std::env::var("CUBECL_DEBUG_LOG").ok()?;
    let text = std::fs::read(path).ok()?;
    Some(
        text.split(|&b| b == b'\n')
            .filter(|line| line.starts_with(b"| "))
            .count(),
    )
}

fn per(count: Option<(usize, usize)>, n: usize) -> Option<f64> {
    count.map(|(before, after)| (after - before) as f64 / n.max(1) as f64)
}

struct Bench {
    steps: usize,
    /// Professions per WALF step (the paper's 8 unless given).
    batch_size: Option<usize>,
    budget_s: f64,
    deadline: Instant,
    out: Option<std::fs::File>,
}

impl Bench {
    /// A line on stdout and in the --out file, at once: a run stopped at its time limit keeps
    /// every line printed before.
    fn say(&mut self, line: &str) {
        println!("{line}");
        let _ = std::io::stdout().flush();
        if let Some(file) = &mut self.out {
            let _ = writeln!(file, "{line}");
        }
    }

    fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

fn load(dir: &Path, device: &Device) -> Result<LanguageModel, String> {
    let mut lm = walf_lab::folder::load_model_folder(dir, device).map_err(|e| e.to_string())?;
    lm.model.set_dropout(0.0, 0.0);
    Ok(lm)
}

fn probe_twice(lm: &LanguageModel, figures: &mut Figures) -> Result<(), String> {
    let data = Benchmark::bundled().split(Split::Test);
    let timed = || {
        let started = Instant::now();
        let result =
            pollster::block_on(lm.probe(data.input(), ProbeSettings::default(), &mut |_| {}))
                .map_err(|e| e.to_string())?;
        Ok::<_, String>((started.elapsed().as_secs_f64(), result))
    };
    let (cold, _) = timed()?;
    let kernels = kernels_logged();
    let (warm, result) = timed()?;
    let batches = SentencePlan::new(&lm.tokenizer, data.input(), lm.max_len())
        .map_err(|e| e.to_string())?
        .batches(ProbeSettings::default().batch_size)
        .len();
    figures.kernels_per_batch = per(kernels.zip(kernels_logged()), batches);
    figures.probe_cold_s = cold;
    figures.probe_warm_s = warm;
    figures.p_female = result.professions.iter().map(|p| p.p_female).collect();
    figures.kl_all = TARGETS
        .iter()
        .map(|&(t, _)| bias_report(&result.professions, t).summary[0].kl_mean)
        .collect();
    Ok(())
}

fn train(bench: &Bench, dir: &Path, device: &Device, target: Target) -> Result<Steps, String> {
    let lm = load(dir, &device.clone().autodiff())?;
    let config = WalfConfig {
        batch_size: bench
            .batch_size
            .unwrap_or(WalfConfig::paper(target).batch_size),
        ..WalfConfig::paper(target)
    };
    let mut trainer =
        WalfTrainer::new(lm, &Benchmark::bundled(), config).map_err(|e| e.to_string())?;
    let mut step = || {
        let started = Instant::now();
        let record = pollster::block_on(trainer.step()).map_err(|e| e.to_string())?;
        Ok::<_, String>(record.map(|r| (started.elapsed().as_secs_f64(), r)))
    };
    let Some((first_s, first)) = step()? else {
        return Err("the epoch has no training batch".into());
    };
    let mut losses = vec![first.total_loss];
    let reads = walf_lab::readback::read_backs();
    let kernels = kernels_logged();
    let started = Instant::now();
    let (mut professions, mut done) = (0, 0);
    while done + 1 < bench.steps
        && (done == 0 || started.elapsed().as_secs_f64() < bench.budget_s)
        && !bench.past_deadline()
    {
        let Some((_, record)) = step()? else { break };
        professions += record.professions.len();
        losses.push(record.total_loss);
        done += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Steps {
        first_s,
        ms_per_profession: 1e3 * seconds / professions.max(1) as f64,
        steps: done + 1,
        reads_per_step: (walf_lab::readback::read_backs() - reads) as f64 / done.max(1) as f64,
        kernels_per_step: per(kernels.zip(kernels_logged()), done),
        losses,
    })
}

fn measure(bench: &mut Bench, dir: &Path, device: &Device) -> Result<Figures, String> {
    let mut figures = Figures::default();
    let started = Instant::now();
    let lm = load(dir, device)?;
    figures.load_s = started.elapsed().as_secs_f64();
    probe_twice(&lm, &mut figures)?;
    drop(lm);
    for (target, _) in TARGETS {
        figures.steps.push(if bench.past_deadline() {
            None
        } else {
            Some(train(bench, dir, device, target)?)
        });
    }
    Ok(figures)
}

/// bert-base's shape on minilm-brown's tokenizer, BERT-initialised, written once under `dir`.
fn random_bert_base(dir: &Path) -> Result<PathBuf, String> {
    let folder = dir.join("bert-base-minilm-vocab");
    if folder.join("model.safetensors").exists() {
        return Ok(folder);
    }
    let source = Path::new("public/models/minilm-brown");
    let text = std::fs::read(source.join("config.json")).map_err(|e| e.to_string())?;
    let mut config: serde_json::Value = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    for (key, value) in [
        ("num_hidden_layers", 12),
        ("hidden_size", 768),
        ("num_attention_heads", 12),
        ("intermediate_size", 3072),
    ] {
        config[key] = value.into();
    }
    config["torch_dtype"] = "float32".into();
    let json = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
    let parsed = ModelConfig::from_json(&json).map_err(|e| e.to_string())?;
    let weights =
        walf_lab::pretrain::trainer::random_weights(&parsed, 7).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
    std::fs::write(folder.join("config.json"), json).map_err(|e| e.to_string())?;
    std::fs::copy(source.join("tokenizer.json"), folder.join("tokenizer.json"))
        .map_err(|e| e.to_string())?;
    std::fs::write(folder.join("model.safetensors"), weights).map_err(|e| e.to_string())?;
    Ok(folder)
}

fn ratio(cpu: f64, gpu: f64) -> String {
    if gpu > 0.0 {
        format!("{:.2}x", cpu / gpu)
    } else {
        "-".into()
    }
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Agreement asked of the GPU: the e2e test's 1e-4 on probabilities, and on a step's loss
/// relative to its size (float sums in another order, over a few steps of training).
const MAX_P_DIFF: f64 = 1e-4;
const MAX_LOSS_DIFF: f64 = 1e-3;

/// Prints the model's lines; false when the GPU's results are not the CPU's.
fn report(bench: &mut Bench, name: &str, cpu: &Figures, gpu: &Figures) -> bool {
    let mut agree = true;
    bench.say(&format!(
        "{name}: load CPU {:.2} s, GPU {:.2} s; probe of the test split: CPU {:.3} s, GPU {:.3} s \
         warm ({} the CPU's speed; GPU cold {:.3} s)",
        cpu.load_s,
        gpu.load_s,
        cpu.probe_warm_s,
        gpu.probe_warm_s,
        ratio(cpu.probe_warm_s, gpu.probe_warm_s),
        gpu.probe_cold_s,
    ));
    let p_diff = max_abs_diff(&cpu.p_female, &gpu.p_female);
    let kl_diff = max_abs_diff(&cpu.kl_all, &gpu.kl_all);
    agree &= p_diff <= MAX_P_DIFF;
    if let Some(k) = gpu.kernels_per_batch {
        bench.say(&format!(
            "{name}: GPU kernel launches per probe batch: {k:.1}"
        ));
    }
    bench.say(&format!(
        "{name}: GPU against CPU: max |dP(female)| {p_diff:.1e}, max |dKL mean| {kl_diff:.1e}{}",
        if p_diff <= MAX_P_DIFF {
            String::new()
        } else {
            format!(": DISAGREE (more than {MAX_P_DIFF:.0e})")
        }
    ));
    for (i, (_, label)) in TARGETS.iter().enumerate() {
        match (cpu.steps.get(i), gpu.steps.get(i)) {
            (Some(Some(c)), Some(Some(g))) => {
                let loss_diff = c
                    .losses
                    .iter()
                    .zip(&g.losses)
                    .map(|(a, b)| (a - b).abs() / a.abs().max(1e-12))
                    .fold(0.0, f64::max);
                agree &= loss_diff <= MAX_LOSS_DIFF;
                bench.say(&format!(
                    "{name}: WALF {label}: CPU {:.1} ms/profession ({} steps), GPU {:.1} \
                     ms/profession ({} steps; first step {:.2} s): {} the CPU's speed; \
                     reads/step {:.1}{}; losses of the common steps agree to \
                     {loss_diff:.1e} (relative){}",
                    c.ms_per_profession,
                    c.steps,
                    g.ms_per_profession,
                    g.steps,
                    g.first_s,
                    ratio(c.ms_per_profession, g.ms_per_profession),
                    g.reads_per_step,
                    g.kernels_per_step
                        .map(|k| format!(", kernel launches/step {k:.0}"))
                        .unwrap_or_default(),
                    if loss_diff <= MAX_LOSS_DIFF {
                        String::new()
                    } else {
                        format!(": DISAGREE (more than {MAX_LOSS_DIFF:.0e})")
                    }
                ));
            }
            _ => bench.say(&format!("{name}: WALF {label}: skipped (deadline)")),
        }
    }
    agree
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |name: &str, default: f64| {
        arg(&args, name)
            .map(|v| {
                v.parse::<f64>().unwrap_or_else(|_| {
                    eprintln!("{name} takes a number, not `{v}`");
                    std::process::exit(2)
                })
            })
            .unwrap_or(default)
    };
    let started = Instant::now();
    let mut bench = Bench {
        steps: number("--steps", 20.0).max(2.0) as usize,
        budget_s: number("--budget-s", 30.0),
        batch_size: arg(&args, "--batch-size")
            .map(|_| number("--batch-size", 8.0).max(1.0) as usize),
        deadline: started + std::time::Duration::from_secs_f64(number("--deadline-s", 420.0)),
        out: arg(&args, "--out").map(|path| {
            std::fs::File::create(&path).unwrap_or_else(|e| {
                eprintln!("cannot write {path}: {e}");
                std::process::exit(2)
            })
        }),
    };
    let software = args.iter().any(|a| a == "--software");
    // folders are the arguments that are no option's value
    let mut folders: Vec<PathBuf> = Vec::new();
    let mut skip = false;
    for a in &args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a.starts_with("--") {
            skip = matches!(
                a.as_str(),
                "--steps" | "--budget-s" | "--deadline-s" | "--out" | "--batch-size"
            );
        } else {
            folders.push(PathBuf::from(a));
        }
    }
    if folders.is_empty() {
        folders = vec![
            PathBuf::from("public/models/brown-bert"),
            PathBuf::from("public/models/minilm-brown"),
        ];
        if !args.iter().any(|a| a == "--no-bert-base") {
            match random_bert_base(Path::new("target/bench-models")) {
                Ok(dir) => folders.push(dir),
                Err(e) => eprintln!("no bert-base shape: {e}"),
            }
        }
    }
    let gpu = if software {
        walf_lab::device::wgpu()
    } else {
        walf_lab::device::graphics_card()
    };
    let gpu = match gpu {
        Ok(device) => device,
        Err(e) => {
            bench.say(&format!("no GPU to measure: {e}"));
            std::process::exit(1)
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    bench.say(&format!(
        "bench_gpu: burn's CPU backend on {threads} thread(s) against wgpu ({}, fusion {}, \
         autotune {}), dropout off, up to {} WALF steps or {} s a run",
        if software {
            "any adapter"
        } else {
            "a graphics card"
        },
        on_off(cfg!(feature = "fusion")),
        on_off(cfg!(feature = "autotune")),
        bench.steps,
        bench.budget_s
    ));
    let mut failed = false;
    for dir in &folders {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        if bench.past_deadline() {
            bench.say(&format!("{name}: skipped (deadline)"));
            continue;
        }
        let outcome = measure(&mut bench, dir, &walf_lab::device::cpu())
            .and_then(|cpu| Ok((cpu, measure(&mut bench, dir, &gpu)?)));
        match outcome {
            Ok((cpu, gpu)) => failed |= !report(&mut bench, &name, &cpu, &gpu),
            Err(e) => {
                failed = true;
                bench.say(&format!("{name}: failed: {e}"))
            }
        }
    }
    bench.say(&format!(
        "bench_gpu: done in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    if failed {
        std::process::exit(1)
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}
