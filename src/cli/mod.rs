//! Command-line front end: argument parsing, files, progress bars and tables. The engine it
//! drives knows nothing of any of these.

mod backend;
mod bundled;
mod output;
mod pretrain;
mod progress;
mod tune;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use walf_lab::bias::{Target, bias_report};
use walf_lab::data::{Benchmark, Split};
use walf_lab::engine::LanguageModel;
use walf_lab::lm_loss::{LmLossSettings, LossRule};
use walf_lab::measure::{MeasureInput, ProbeSettings};

use backend::BackendChoice;
use progress::Progress;

#[derive(Parser)]
#[command(
    name = "walf",
    version,
    about = "Measure and mitigate gender bias of masked language models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetArg {
    Equal,
    RealWorld,
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SplitArg {
    Train,
    Valid,
    Test,
    All,
}

#[derive(Subcommand)]
enum Command {
    /// Measure how far the model's gender distribution over professions is from a target.
    Probe {
        /// A Hugging Face model folder (config.json, tokenizer.json, model.safetensors), or a
        /// bundled model: minilm-brown (the default) or brown-bert.
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "test")]
        split: SplitArg,
        #[arg(long, value_enum, default_value = "both")]
        target: TargetArg,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendChoice,
        /// Template ids to use instead of the split's own (e.g. T1,T4).
        #[arg(long, value_delimiter = ',')]
        templates: Option<Vec<String>>,
        /// A folder with professions.tsv, templates.tsv and gendered_phrases.tsv to use instead
        /// of the bundled benchmark (any of the three may be absent).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Distinct sentences per forward pass.
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// Write everything, raw per-sentence scores included, as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write individual.tsv and summary.tsv in the paper's column names.
        #[arg(long)]
        tsv: Option<PathBuf>,
    },
    /// Fine-tune the model towards a target with WALF; the best weights go to --out.
    Tune(tune::TuneArgs),
    /// Train a BERT masked LM from scratch on a corpus (the bundled model's recipe).
    Pretrain(pretrain::PretrainArgs),
    /// Masked-LM loss on a text file (one passage per line, or a TSV with a `text` column).
    LmLoss {
        /// A model folder, or a bundled model: minilm-brown (the default) or brown-bert.
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long)]
        text: PathBuf,
        #[arg(long, default_value_t = LmLossSettings::default().mask_prob)]
        mask_prob: f64,
        #[arg(long, default_value_t = LmLossSettings::default().seed)]
        seed: u64,
        /// Passages per forward pass.
        #[arg(long, default_value_t = LmLossSettings::default().batch_size)]
        batch_size: usize,
        /// Score as the paper's evaluate_mlm_loss.py: every non-special token keeps its label,
        /// masked or not, and passages are weighted by their masked count (much lower than the
        /// masked-only loss, since most scored tokens are visible to the model).
        #[arg(long)]
        paper: bool,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendChoice,
    },
    /// Predict the masked word(s) of a sentence.
    Fill {
        /// A model folder, or a bundled model: minilm-brown (the default) or brown-bert.
        #[arg(long)]
        model: Option<PathBuf>,
        /// A sentence with [MASK] or <mask>.
        text: String,
        #[arg(long, default_value_t = 10)]
        top: usize,
        #[arg(long, value_enum, default_value = "cpu")]
        backend: BackendChoice,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn load_model(dir: Option<&Path>, backend: BackendChoice) -> Result<LanguageModel> {
    load_model_on(dir, &backend.device_for(dir)?)
}

/// The model in `dir` (a folder, or the id of a bundled model), or the default bundled one.
pub(crate) fn load_model_on(
    dir: Option<&Path>,
    device: &burn::tensor::Device,
) -> Result<LanguageModel> {
    let bundled = match dir {
        Some(dir) => match bundled::named(dir) {
            Some(model) => model,
            None => {
                return walf_lab::folder::load_model_folder(dir, device)
                    .with_context(|| format!("cannot load the model in {}", dir.display()));
            }
        },
        None => bundled::default_model(),
    };
    LanguageModel::load(bundled.files(), device)
        .with_context(|| format!("cannot load the bundled model {}", bundled.id))
}

/// Writes `bytes` under a temporary name beside `path` and renames it into place: a crash
/// leaves the old file or the new one, never half of one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))
}

/// How results name the model.
pub(crate) fn model_name(dir: Option<&Path>) -> String {
    match dir {
        None => bundled::default_model().name(),
        Some(d) => bundled::named(d).map_or_else(|| d.display().to_string(), |m| m.name()),
    }
}

/// The bundled benchmark with the files of `data` (those it has) in their place.
pub(crate) fn benchmark(data: Option<&Path>) -> Result<Benchmark> {
    let Some(dir) = data else {
        return Ok(Benchmark::bundled());
    };
    let file = |name: &str| -> Result<Option<String>> {
        let path = dir.join(name);
        if path.exists() {
            std::fs::read_to_string(&path)
                .map(Some)
                .with_context(|| format!("cannot read {}", path.display()))
        } else {
            Ok(None)
        }
    };
    let edits = walf_lab::protocol::BenchmarkEdits {
        professions_tsv: file("professions.tsv")?,
        templates_tsv: file("templates.tsv")?,
        phrases_tsv: file("gendered_phrases.tsv")?,
    };
    Ok(edits.benchmark()?)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Probe {
            model,
            split,
            target,
            backend,
            templates,
            data,
            batch_size,
            json,
            tsv,
        } => {
            if batch_size == 0 {
                bail!("--batch-size must be at least 1");
            }
            let split = match split {
                SplitArg::Train => Split::Train,
                SplitArg::Valid => Split::Valid,
                SplitArg::Test => Split::Test,
                SplitArg::All => Split::All,
            };
            let targets: Vec<Target> = match target {
                TargetArg::Equal => vec![Target::Equal],
                TargetArg::RealWorld => vec![Target::RealWorld],
                TargetArg::Both => vec![Target::Equal, Target::RealWorld],
            };
            let bench = benchmark(data.as_deref())?;
            let professions = bench.professions_of(split);
            let templates = match &templates {
                None => bench.templates_of(split),
                Some(ids) => ids
                    .iter()
                    .map(|id| {
                        bench
                            .templates
                            .iter()
                            .find(|t| &t.id == id)
                            .cloned()
                            .with_context(|| {
                                let known: Vec<&str> =
                                    bench.templates.iter().map(|t| t.id.as_str()).collect();
                                format!("unknown template `{id}` (known: {})", known.join(", "))
                            })
                    })
                    .collect::<Result<Vec<_>>>()?,
            };
            if professions.is_empty() || templates.is_empty() || bench.phrases.is_empty() {
                bail!(
                    "nothing to measure: the {} split has no professions, templates or phrases",
                    split.label()
                );
            }
            let lm = load_model(model.as_deref(), backend)?;
            let input = MeasureInput {
                professions: &professions,
                templates: &templates,
                phrases: &bench.phrases,
            };
            let bar = Progress::new(
                "probing",
                "sentences",
                0,
                "{prefix} [{bar:40}] {pos}/{len} sentences, {eta} left",
            );
            let started = Instant::now();
            let result =
                pollster::block_on(lm.probe(input, ProbeSettings { batch_size }, &mut |p| {
                    bar.set_length(p.total as u64);
                    bar.set_position(p.done as u64);
                }))?;
            bar.finish();
            let seconds = started.elapsed().as_secs_f64();
            let reports: Vec<_> = targets
                .iter()
                .map(|&t| bias_report(&result.professions, t))
                .collect();
            output::print_probe(&result, &reports, split, seconds);
            if let Some(dir) = tsv {
                output::write_tsv(&dir, &reports)?;
            }
            if let Some(path) = json {
                output::write_json(
                    &path,
                    output::ModelId {
                        name: &model_name(model.as_deref()),
                        fingerprint: &lm.fingerprint,
                    },
                    split,
                    &templates,
                    &result,
                    &reports,
                    seconds,
                )?;
            }
            Ok(())
        }
        Command::Tune(args) => tune::run(args),
        Command::Pretrain(args) => pretrain::run(args),
        Command::LmLoss {
            model,
            text,
            mask_prob,
            seed,
            batch_size,
            paper,
            backend,
        } => {
            let content = std::fs::read_to_string(&text)
                .with_context(|| format!("cannot read {}", text.display()))?;
            let passages = walf_lab::lm_loss::passages(&content);
            if passages.is_empty() {
                bail!("{} holds no text", text.display());
            }
            let lm = load_model(model.as_deref(), backend)?;
            let bar = Progress::new(
                "masked-LM loss",
                "passages",
                passages.len() as u64,
                "{prefix} [{bar:40}] {pos}/{len} passages, {eta} left",
            );
            let settings = LmLossSettings {
                mask_prob,
                seed,
                batch_size,
                rule: if paper {
                    LossRule::Paper
                } else {
                    LossRule::MaskedTokens
                },
            };
            let report = pollster::block_on(lm.lm_loss(&passages, settings, &mut |p| {
                bar.set_position(p.done as u64)
            }))?;
            bar.finish();
            println!(
                "{} passages, {} tokens, {} masked: masked-LM loss {:.4} (perplexity {:.2}){}",
                report.passages,
                report.tokens,
                report.masked_tokens,
                report.loss,
                report.loss.exp(),
                if paper {
                    ", the paper's rule: every token scored"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Command::Fill {
            model,
            text,
            top,
            backend,
        } => {
            let lm = load_model(model.as_deref(), backend)?;
            let predictions = pollster::block_on(lm.fill_mask(&text, top))?;
            let words = lm.single_token_words(Benchmark::bundled().gendered_words());
            output::print_fill(&predictions, &words);
            Ok(())
        }
    }
}
