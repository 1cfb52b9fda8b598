//! `walf tune`: WALF with progress, JSON-lines records, the best weights saved atomically and
//! never replaced by worse ones.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use clap::{Args, ValueEnum};
use serde_json::json;

use walf_lab::bias::{BiasReport, Target, bias_report};
use walf_lab::data::{Benchmark, Group, Split};
use walf_lab::engine::{ExportedModel, LanguageModel};
use walf_lab::measure::ProbeSettings;
use walf_lab::model::MaskedLm;
use walf_lab::pretrain::hold_out;
use walf_lab::protocol::{TuneMethod, TuneSettings};
use walf_lab::walf::{Objective, StepRecord, WalfConfig, WalfTrainer, classroom};

use super::backend::BackendChoice;
use super::progress::Progress;

/// `--method`, read as the page's links write it.
fn method(s: &str) -> Result<TuneMethod, String> {
    TuneMethod::parse(s).ok_or_else(|| format!("`{s}` is not a method: walf or cda"))
}

/// `--target`, read as the page reads it (`Target::parse`).
fn target(s: &str) -> Result<Target, String> {
    Target::parse(s).ok_or_else(|| format!("`{s}` is not a target: equal or real-world"))
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The paper's settings.
    Paper,
    /// Dropout off, one masked token per sentence for the masked-LM term, at most 8 epochs:
    /// a small model moves within minutes (what it changes is printed at the start).
    Classroom,
}

#[derive(Args)]
pub struct TuneArgs {
    /// A model folder, or a bundled model: minilm-brown (the default) or brown-bert.
    #[arg(long)]
    model: Option<PathBuf>,
    /// equal or real-world
    #[arg(long, value_parser = target)]
    target: Target,
    /// walf, or cda: the baseline that fine-tunes on general text with its gendered words
    /// swapped (needs --text), chosen by the same validation.
    #[arg(long, value_parser = method, default_value = "walf")]
    method: TuneMethod,
    /// CDA's general text: a plain-text file (one sentence per line) or a Brown corpus file, or
    /// a corpus folder (as `walf pretrain --corpus` reads it; its held-out documents are left
    /// out, so that a loss measured on them stays a held-out one).
    #[arg(long, value_name = "FILE_OR_FOLDER")]
    text: Option<PathBuf>,
    /// Sentences per CDA update (default 32).
    #[arg(long)]
    cda_batch: Option<usize>,
    /// The settings to start from; any option given below overrides the preset's value.
    #[arg(long, value_enum, default_value = "paper")]
    preset: Preset,
    /// Folder for the best model (config.json, tokenizer.json, model.safetensors) and the
    /// training records (training.jsonl).
    #[arg(long)]
    out: PathBuf,
    /// A folder with professions.tsv, templates.tsv and gendered_phrases.tsv to train and
    /// measure on instead of the bundled benchmark (any of the three may be absent).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Weight of the masked-LM loss, real-world target only (default 0.1: one point of the
    /// paper's grid, 0.001 to 1.0).
    #[arg(long)]
    gamma: Option<f64>,
    /// Momentum of the KL tracker (default 0.95: one point of the paper's grid, 0.6/0.8/0.95).
    #[arg(long)]
    beta: Option<f64>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    weight_decay: Option<f64>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    valid_batch_size: Option<usize>,
    #[arg(long)]
    patience: Option<usize>,
    #[arg(long)]
    min_delta: Option<f64>,
    /// At most this many epochs (default 50; the classroom preset's 8). The cap is ours: the
    /// paper trains until patience stops it.
    #[arg(long)]
    max_epochs: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Train without dropout (deterministic; the paper trains with the model's dropout).
    #[arg(long)]
    no_dropout: bool,
    /// With dropout, give every use of a masked sentence its own pass and dropout mask, as the
    /// paper's code does; by default a sentence shared by several professions and phrases runs
    /// once (about nine times faster, the valid KL within the spread of seeds; BENCHMARKS.md).
    #[arg(long)]
    dropout_per_use: bool,
    /// Real-world target: mask this many tokens drawn per filled-in sentence for the masked-LM
    /// loss (an unbiased estimate, each weighted by the sentence's length over K) instead of
    /// every token in turn as the paper.
    #[arg(long, value_name = "K")]
    mlm_positions: Option<usize>,
    /// Real-world target: draw this many of each profession's filled-in sentences for the
    /// masked-LM loss (an unbiased estimate, each weighted by the profession's sentences over
    /// M) instead of all of them as the paper.
    #[arg(long, value_name = "M")]
    mlm_sentences: Option<usize>,
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendChoice,
}

impl TuneArgs {
    /// The preset's settings, as the page offers them.
    fn preset_settings(&self, target: Target) -> TuneSettings {
        match self.preset {
            Preset::Paper => TuneSettings::paper(target),
            Preset::Classroom => TuneSettings::classroom(target),
        }
    }

    /// The preset's settings with the options given: what the page would send.
    fn settings(&self) -> TuneSettings {
        let d = self.preset_settings(self.target);
        TuneSettings {
            method: self.method,
            gamma: self.gamma.unwrap_or(d.gamma),
            beta: self.beta.unwrap_or(d.beta),
            lr: self.lr.unwrap_or(d.lr),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            patience: self.patience.unwrap_or(d.patience),
            min_delta: self.min_delta.or(d.min_delta),
            max_epochs: self.max_epochs.unwrap_or(d.max_epochs),
            seed: self.seed.unwrap_or(d.seed),
            mlm_positions: self.mlm_positions.or(d.mlm_positions),
            mlm_sentences: self.mlm_sentences.or(d.mlm_sentences),
            dropout: d.dropout && !self.no_dropout,
            ..d
        }
    }

    /// The options given that change one of the preset's values, as flags.
    fn overrides(&self) -> Vec<&'static str> {
        let (d, s) = (self.preset_settings(self.target), self.settings());
        [
            (d.gamma != s.gamma, "--gamma"),
            (d.beta != s.beta, "--beta"),
            (d.lr != s.lr, "--lr"),
            (d.weight_decay != s.weight_decay, "--weight-decay"),
            (d.batch_size != s.batch_size, "--batch-size"),
            (d.patience != s.patience, "--patience"),
            (d.min_delta != s.min_delta, "--min-delta"),
            (d.max_epochs != s.max_epochs, "--max-epochs"),
            (d.seed != s.seed, "--seed"),
            (d.dropout != s.dropout, "--no-dropout"),
            (d.mlm_positions != s.mlm_positions, "--mlm-positions"),
            (d.mlm_sentences != s.mlm_sentences, "--mlm-sentences"),
        ]
        .into_iter()
        .filter_map(|(changed, flag)| changed.then_some(flag))
        .collect()
    }

    /// The trainer's settings: the page's mapping ([`TuneSettings::walf_config`]) and the two
    /// options only the command line has.
    fn config(&self) -> WalfConfig {
        let d = self.settings().walf_config();
        WalfConfig {
            valid_batch_size: self.valid_batch_size.unwrap_or(d.valid_batch_size),
            dropout_per_use: self.dropout_per_use,
            cda_batch: self.cda_batch.unwrap_or(d.cda_batch),
            ..d
        }
    }
}

/// Writes the three files through temporary names and renames them into place, so that a
/// crash leaves either the previous best model or the new one.
pub(crate) fn save_atomically(dir: &Path, files: &ExportedModel) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, bytes) in [
        ("config.json", &files.config_json),
        ("tokenizer.json", &files.tokenizer_json),
        ("model.safetensors", &files.safetensors),
    ] {
        super::write_atomically(&dir.join(name), bytes)?;
    }
    Ok(())
}

fn test_reports(
    lm: &LanguageModel,
    model: &MaskedLm,
    bench: &Benchmark,
) -> Result<Vec<BiasReport>> {
    let data = bench.split(Split::Test);
    let input = data.input();
    let result =
        pollster::block_on(lm.probe_weights(model, input, ProbeSettings::default(), &mut |_| {}))?;
    Ok([Target::Equal, Target::RealWorld]
        .iter()
        .map(|&t| bias_report(&result.professions, t))
        .collect())
}

/// The progress bar's message for a step: the group, its losses and, for the real-world target,
/// λ and the KL's scale λ / (mean + α), the two numbers that say how hard WALF pushes the group.
fn step_message(step: &StepRecord) -> String {
    match (step.group, step.kl, step.lambda, step.scale) {
        (Some(group), Some(kl), Some(lambda), Some(scale)) => format!(
            "{group} KL {kl:.4} λ {lambda:.2} scale {scale:.1} loss {:.4}",
            step.total_loss
        ),
        (Some(group), Some(kl), ..) => format!("{group} KL {kl:.4}"),
        _ => format!("masked-LM loss {:.4}", step.total_loss),
    }
}

/// CDA's text as one plain text: a file as it is, a corpus folder's training documents one
/// sentence per line.
fn read_cda_text(path: &Path) -> Result<String> {
    if path.is_dir() {
        let (train, _) = hold_out(super::pretrain::read_corpus(path)?);
        return Ok(train
            .iter()
            .flat_map(|d| d.sentences.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("\n"));
    }
    fs::read_to_string(path).with_context(|| format!("cannot read the CDA text {}", path.display()))
}

/// What the run minimises: WALF's loss, or CDA's on the prepared text (whose size is said).
fn objective(args: &TuneArgs, lm: &LanguageModel, bench: &Benchmark) -> Result<Objective> {
    match (args.method, &args.text) {
        (TuneMethod::Walf, None) => Ok(Objective::Walf),
        (TuneMethod::Walf, Some(_)) => {
            bail!("--text is the CDA baseline's general text: add --method cda, or leave it out")
        }
        (TuneMethod::Cda, None) => bail!(
            "--method cda fine-tunes on general text: give it with --text (a plain-text file, \
             one sentence per line, or a corpus folder)"
        ),
        (TuneMethod::Cda, Some(path)) => {
            let text = read_cda_text(path)?;
            let objective = args
                .settings()
                .objective(Some(&text), bench, lm)
                .with_context(|| format!("cannot use {} as CDA's text", path.display()))?;
            if let Objective::Cda(cda) = &objective {
                eprintln!(
                    "CDA text: {} of {} sentences have a gendered word; each is trained on as \
                     written and swapped ({} sequences)",
                    cda.sentences_swapped,
                    cda.sentences_read,
                    cda.sequences.len()
                );
            }
            Ok(objective)
        }
    }
}

/// Sums over one group's steps of an epoch.
#[derive(Default)]
struct GroupSums {
    steps: f64,
    kl: f64,
    /// NaN for the equal target, which has neither.
    lambda: f64,
    scale: f64,
}

/// Per-group means over an epoch's steps, printed beside the valid KL of each group.
#[derive(Default)]
struct GroupMeans(BTreeMap<Group, GroupSums>);

impl GroupMeans {
    fn add(&mut self, step: &StepRecord) {
        let (Some(group), Some(kl)) = (step.group, step.kl) else {
            return;
        };
        let m = self.0.entry(group).or_default();
        m.steps += 1.0;
        m.kl += kl;
        m.lambda += step.lambda.unwrap_or(f64::NAN);
        m.scale += step.scale.unwrap_or(f64::NAN);
    }

    fn print(&self, valid: &BTreeMap<String, f64>) {
        for group in Group::ALL {
            let mut parts = Vec::new();
            if let Some(m) = self.0.get(&group) {
                parts.push(format!("train KL {:.5}", m.kl / m.steps));
                if m.lambda.is_finite() {
                    parts.push(format!(
                        "λ {:.3}, scale {:.1}",
                        m.lambda / m.steps,
                        m.scale / m.steps
                    ));
                }
            }
            if let Some(v) = valid.get(group.label()) {
                parts.push(format!("valid KL {v:.5}"));
            }
            if !parts.is_empty() {
                eprintln!("  {:<17} {}", group.label(), parts.join(", "));
            }
        }
    }
}

pub fn run(args: TuneArgs) -> Result<()> {
    let config = args.config();
    if args.out.join("model.safetensors").exists() {
        bail!(
            "{} already holds a model; choose another --out (a tuned model is never overwritten by another run)",
            args.out.display()
        );
    }
    let bench = super::benchmark(args.data.as_deref())?;
    let dropout = args.settings().dropout;
    let load = |device: &Device| -> Result<LanguageModel> {
        let mut lm = super::load_model_on(args.model.as_deref(), device)?;
        if !dropout {
            lm.model.set_dropout(0.0, 0.0);
        }
        Ok(lm)
    };
    // made once: CDA's text is read and tokenized once, whatever the device
    let made = OnceCell::new();
    let objective_for = |lm: &LanguageModel| -> Result<Objective> {
        if let Some(objective) = made.get() {
            return Ok(Objective::clone(objective));
        }
        let objective = objective(&args, lm, &bench)?;
        Ok(made.get_or_init(|| objective).clone())
    };
    let item = match args.method {
        TuneMethod::Walf => "profession",
        TuneMethod::Cda => "sentence",
    };
    let device = args
        .backend
        .device_for_training(item, |device| {
            let lm = load(device)?;
            let objective = objective_for(&lm)?;
            Ok(WalfTrainer::with_objective(
                lm,
                &bench,
                config.clone(),
                objective,
            )?)
        })?
        .autodiff();
    let lm = load(&device)?;
    if args.preset == Preset::Classroom {
        eprintln!("classroom preset, changed from the paper's settings:");
        for change in classroom::changes() {
            eprintln!("  {change}");
        }
        let overrides = args.overrides();
        if !overrides.is_empty() {
            eprintln!(
                "  and {} given here in its place (training.jsonl records every setting)",
                overrides.join(", ")
            );
        }
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let log_path = args.out.join("training.jsonl");
    let mut log = fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;

    let objective = objective_for(&lm)?;
    if args.method == TuneMethod::Cda
        && (args.gamma.is_some()
            || args.beta.is_some()
            || args.mlm_positions.is_some()
            || args.mlm_sentences.is_some())
    {
        eprintln!(
            "note: --gamma, --beta, --mlm-positions and --mlm-sentences are WALF's; the CDA run does not use them"
        );
    }
    let cda_text = match &objective {
        Objective::Cda(text) => json!({
            "source": args.text.as_ref().map(|p| p.display().to_string()),
            "sentences_read": text.sentences_read,
            "sentences_swapped": text.sentences_swapped,
        }),
        Objective::Walf => serde_json::Value::Null,
    };
    eprintln!("measuring the test split before tuning…");
    let before = test_reports(&lm, &lm.model.valid(), &bench)?;
    let mut trainer = WalfTrainer::with_objective(lm, &bench, config.clone(), objective)?;
    writeln!(
        log,
        "{}",
        json!({"config": config, "method": args.method, "cda_text": cda_text})
    )?;
    let before_tuning = pollster::block_on(trainer.validation())?;
    let (valid_kl, by_group) = (before_tuning.kl, before_tuning.kl_by_group);
    writeln!(
        log,
        "{}",
        json!({"before": {"valid_kl": valid_kl, "valid_kl_by_group": by_group}})
    )?;
    eprintln!("valid KL before tuning {valid_kl:.5}");
    GroupMeans::default().print(&by_group);
    let started = Instant::now();
    let mut outcome = Ok(());
    'epochs: loop {
        let bar = Progress::new(
            &format!("epoch {}", trainer.epoch() + 1),
            "batches",
            trainer.batches_in_epoch() as u64,
            "{prefix} [{bar:30}] {pos}/{len} batches, {eta} left  {msg}",
        );
        let mut groups = GroupMeans::default();
        loop {
            match pollster::block_on(trainer.step()) {
                Ok(Some(step)) => {
                    writeln!(
                        log,
                        "{}",
                        json!({"step": step, "elapsed_s": started.elapsed().as_secs_f64()})
                    )?;
                    bar.set_message(step_message(&step));
                    groups.add(&step);
                    bar.inc(1);
                }
                Ok(None) => break,
                Err(e) => {
                    bar.abandon();
                    outcome = Err(e);
                    break 'epochs;
                }
            }
        }
        bar.finish();
        let epoch = match pollster::block_on(trainer.validate()) {
            Ok(epoch) => epoch,
            Err(e) => {
                outcome = Err(e);
                break;
            }
        };
        writeln!(
            log,
            "{}",
            json!({"epoch": epoch, "elapsed_s": started.elapsed().as_secs_f64()})
        )?;
        eprintln!(
            "epoch {}: train loss {:.5}, valid KL {:.5}{}",
            epoch.epoch + 1,
            epoch.train_loss,
            epoch.valid_kl,
            if epoch.improved { " (best, saved)" } else { "" }
        );
        groups.print(&epoch.valid_kl_by_group);
        if epoch.improved {
            let best = trainer.best_model();
            let files = pollster::block_on(trainer.language_model().export(&best))?;
            save_atomically(&args.out, &files)?;
        }
        if epoch.finished {
            eprintln!(
                "stopping: best valid KL {:.5} at epoch {}",
                epoch.best_valid_kl,
                epoch.best_epoch + 1
            );
            break;
        }
    }
    let after = test_reports(trainer.language_model(), &trainer.best_model(), &bench)?;
    println!("test split, group KL mean (variance): before → after tuning");
    for (b, a) in before.iter().zip(&after) {
        println!("target {}:", b.target.label());
        for (x, y) in b.summary.iter().zip(&a.summary) {
            println!(
                "  {:<18}{:>10.5} ({:.5}) → {:>8.5} ({:.5})",
                x.group, x.kl_mean, x.kl_variance, y.kl_mean, y.kl_variance
            );
        }
    }
    println!("best model in {}", args.out.display());
    outcome.map_err(Into::into)
}
