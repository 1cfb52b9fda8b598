//! Benchmark of the real-world target's masked-LM term: the paper's (every token of every
//! filled-in sentence masked in turn) against the sampled estimate (`--mlm-positions K`, and
//! `--mlm-sentences M` with `--m`), both against the equal target, in the same run on the same
//! weights and the same batches (the same seed shuffles them alike). Dropout off, as the
//! classroom preset. Prints seconds per profession and the ratios; asserts nothing.
//!
//!     cargo run --release --example bench_mlm_sampling -- [MODEL_DIR] [--batches N] [--k K]
//!         [--m M] [--epoch] [--mlm-chunk N] [--no-exact]
//!
//! Without MODEL_DIR the bundled minilm-brown; `--batches N` (default 4) stops each run after N
//! training batches, `--epoch` runs the whole first epoch and its validation instead (the exact
//! run then stays at `--batches`, its epoch would take most of an hour); `--k` (default 1) is
//! the sampled positions per sentence, `--m` (default: all) the sampled sentences per profession.

use std::path::Path;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;

use common::{arg, model_or_bundled};
use walf_lab::bias::Target;
use walf_lab::data::Benchmark;
use walf_lab::walf::{WalfConfig, WalfTrainer};

struct Run {
    seconds: f64,
    professions: usize,
    rows: usize,
    mlm: Vec<f64>,
    /// The epoch's validation, when the run reached it.
    validation: Option<f64>,
}

fn run(
    dir: &Path,
    target: Target,
    (mlm_positions, mlm_sentences): (Option<usize>, Option<usize>),
    batches: usize,
    mlm_chunk: usize,
) -> Run {
    let mut lm = walf_lab::folder::load_model_folder(dir, &walf_lab::device::cpu().autodiff())
        .unwrap_or_else(|e| panic!("{e}"));
    lm.model.set_dropout(0.0, 0.0);
    let config = WalfConfig {
        mlm_positions,
        mlm_sentences,
        mlm_chunk,
        ..WalfConfig::paper(target)
    };
    let mut trainer = WalfTrainer::new(lm, &Benchmark::bundled(), config).unwrap();
    let started = Instant::now();
    let (mut professions, mut rows, mut mlm) = (0, 0, Vec::new());
    let mut epoch_done = false;
    for _ in 0..batches {
        let Some(step) = pollster::block_on(trainer.step()).unwrap() else {
            epoch_done = true;
            break;
        };
        professions += step.professions.len();
        rows += step.mlm_rows.unwrap_or(0);
        mlm.extend(step.mlm_loss);
    }
    let seconds = started.elapsed().as_secs_f64();
    let validation = epoch_done.then(|| {
        let started = Instant::now();
        pollster::block_on(trainer.validate()).unwrap();
        started.elapsed().as_secs_f64()
    });
    Run {
        seconds,
        professions,
        rows,
        mlm,
        validation,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = model_or_bundled(&args);
    let batches = arg(&args, "--batches")
        .and_then(|n| n.parse().ok())
        .unwrap_or(4);
    let k = arg(&args, "--k").and_then(|n| n.parse().ok()).unwrap_or(1);
    let m: Option<usize> = arg(&args, "--m").and_then(|n| n.parse().ok());
    let chunk = arg(&args, "--mlm-chunk")
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let exact_too = !args.iter().any(|a| a == "--no-exact");
    let epoch = args.iter().any(|a| a == "--epoch");
    let sampled_batches = if epoch { usize::MAX } else { batches };
    println!(
        "{}: {} each, CPU, dropout off\n",
        model.display(),
        if epoch {
            format!("the first epoch and its validation (the exact run: {batches} batches)")
        } else {
            format!("{batches} training batches")
        }
    );
    let equal = run(&model, Target::Equal, (None, None), sampled_batches, chunk);
    let sampled = run(
        &model,
        Target::RealWorld,
        (Some(k), m),
        sampled_batches,
        chunk,
    );
    let exact = exact_too.then(|| run(&model, Target::RealWorld, (None, None), batches, chunk));
    let per = |r: &Run| r.seconds / r.professions.max(1) as f64;
    println!(
        "{:<36}{:>10}{:>12}{:>14}  masked-LM loss, batches 1-4",
        "run", "s/prof", "× equal", "masked rows"
    );
    let sentences = m.map_or("all".to_string(), |m| m.to_string());
    let mut rows = vec![
        ("equal".to_string(), &equal),
        (
            format!("real-world, {k} per sentence, {sentences}"),
            &sampled,
        ),
    ];
    if let Some(exact) = &exact {
        rows.push(("real-world, every token".to_string(), exact));
    }
    for (name, r) in &rows {
        println!(
            "{name:<36}{:>10.3}{:>11.2}×{:>14}  {}",
            per(r),
            per(r) / per(&equal),
            r.rows,
            r.mlm
                .iter()
                .take(4)
                .map(|m| format!("{m:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if let (Some(e), Some(s)) = (equal.validation, sampled.validation) {
        let whole = |r: &Run, v: f64| r.seconds + v;
        println!(
            "\nwhole epochs, validation included: equal {:.1} s, sampled real-world {:.1} s ({:.2}×); validation {e:.1} s and {s:.1} s",
            whole(&equal, e),
            whole(&sampled, s),
            whole(&sampled, s) / whole(&equal, e),
        );
    }
    if let Some(exact) = &exact {
        println!(
            "\nexact / sampled: {:.2}× (the first batch from the same weights)",
            per(exact) / per(&sampled)
        );
    }
}
