//! `walf pretrain`: a BERT trained from scratch on a corpus folder, with a held-out loss per
//! epoch, a checkpoint per epoch and `--resume`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use clap::Args;
use safetensors::Dtype;
use serde::{Deserialize, Serialize};

use walf_lab::config::ModelConfig;
use walf_lab::data::Benchmark;
use walf_lab::engine::ExportedModel;
use walf_lab::folder::read_model_folder;
use walf_lab::pretrain::corpus::{Document, document, looks_tagged};
use walf_lab::pretrain::encoder::{
    check_same_pieces, encoder_config, masked_lm_from_encoder, prune_vocabulary, tokens_to_keep,
};
use walf_lab::pretrain::{
    MaskedBatch, MaskingVocab, ParamIds, PretrainConfig, Pretrainer, check_vocabulary, hold_out,
    mask_batch, pack_sequences, train_vocabulary, unigram_baseline,
};
use walf_lab::rng::SplitMix64;
use walf_lab::tokenizer::MaskTokenizer;
use walf_lab::weights::Weights;

use super::backend::BackendChoice;
use super::progress::Progress;
use super::tune::save_atomically;
use super::write_atomically;

#[derive(Args)]
pub struct PretrainArgs {
    /// A folder of Brown corpus files (`word/tag` tokens) or of plain `.txt` files.
    #[arg(long)]
    corpus: PathBuf,
    /// Folder for the model (config.json, tokenizer.json, model.safetensors), the training log
    /// and the checkpoint.
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    layers: Option<usize>,
    #[arg(long)]
    hidden: Option<usize>,
    #[arg(long)]
    heads: Option<usize>,
    #[arg(long)]
    intermediate: Option<usize>,
    #[arg(long)]
    vocab: Option<usize>,
    #[arg(long)]
    seq_len: Option<usize>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    /// Continue from the checkpoint in --out (the settings are the checkpoint's).
    #[arg(long)]
    resume: bool,
    /// Start from the weights and vocabulary of a model folder this command wrote, with a new
    /// optimizer and learning-rate schedule (the model's shape is the folder's).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// Start from a pretrained encoder: a folder with the config.json of a `BertModel`, its
    /// tokenizer.json and model.safetensors (no masked-LM head; a new one is added). With
    /// --vocab, the vocabulary is cut down to that many tokens (see `pretrain::encoder`).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["resume", "init_from"])]
    init_encoder: Option<PathBuf>,
    /// Train the masked-LM head only, the embeddings and encoder layers frozen.
    #[arg(long)]
    freeze_encoder: bool,
    /// Store the model written to --out in this dtype (default: the dtypes it started from;
    /// the checkpoint for --resume keeps those).
    #[arg(long, value_enum)]
    dtype: Option<SavedDtype>,
    /// Stop after this many optimisation steps in all (for trials and measurements).
    #[arg(long)]
    max_steps: Option<usize>,
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendChoice,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SavedDtype {
    F32,
    F16,
}

impl PretrainArgs {
    fn config(&self) -> PretrainConfig {
        let d = PretrainConfig::default();
        PretrainConfig {
            layers: self.layers.unwrap_or(d.layers),
            hidden: self.hidden.unwrap_or(d.hidden),
            heads: self.heads.unwrap_or(d.heads),
            intermediate: self.intermediate.unwrap_or(d.intermediate),
            vocab_size: self.vocab.unwrap_or(d.vocab_size),
            seq_len: self.seq_len.unwrap_or(d.seq_len),
            epochs: self.epochs.unwrap_or(d.epochs),
            batch_size: self.batch.unwrap_or(d.batch_size),
            lr: self.lr.unwrap_or(d.lr),
            seed: self.seed.unwrap_or(d.seed),
            freeze_encoder: self.freeze_encoder,
            ..d
        }
    }

    fn sets_model_shape(&self) -> bool {
        self.sets_encoder_shape() || self.vocab.is_some() || self.seq_len.is_some()
    }

    /// What a pretrained encoder fixes (the vocabulary may still be cut, sequences chosen).
    fn sets_encoder_shape(&self) -> bool {
        self.layers.is_some()
            || self.hidden.is_some()
            || self.heads.is_some()
            || self.intermediate.is_some()
    }

    fn sets_model_or_recipe(&self) -> bool {
        self.sets_model_shape()
            || self.batch.is_some()
            || self.lr.is_some()
            || self.seed.is_some()
            || self.freeze_encoder
    }

    /// The recipe for a model of `shape`'s size (a folder's or an encoder's) with a vocabulary of
    /// `vocab_size`: its positions kept, sequences of --seq-len (at most 128 by default).
    fn recipe_for(&self, shape: &ModelConfig, vocab_size: usize) -> PretrainConfig {
        let positions = shape.max_position_embeddings;
        PretrainConfig {
            layers: shape.num_hidden_layers,
            hidden: shape.hidden_size,
            heads: shape.num_attention_heads,
            intermediate: shape.intermediate_size,
            vocab_size,
            seq_len: self.seq_len.unwrap_or(positions.min(128)),
            positions: Some(positions),
            ..self.config()
        }
    }
}

/// One epoch's figures, as printed and logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EpochLog {
    epoch: usize,
    steps: usize,
    train_loss: f64,
    held_out_loss: f64,
    seconds: f64,
    tokens_per_second: f64,
}

/// What a checkpoint holds besides the model and optimizer files.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainingState {
    config: PretrainConfig,
    epochs_done: usize,
    step: usize,
    total_steps: usize,
    unigram_baseline: f64,
    epochs: Vec<EpochLog>,
    param_ids: ParamIds,
    train_documents: usize,
    held_out_documents: usize,
    train_sequences: usize,
    train_tokens: usize,
    /// The model folder the run started from, when not from random weights.
    #[serde(default)]
    initialised_from: Option<String>,
}

impl TrainingState {
    /// Before the first epoch of a run; the sequence counts are filled in once packed.
    fn new_run(
        config: PretrainConfig,
        train_documents: usize,
        held_out_documents: usize,
        initialised_from: Option<String>,
    ) -> Self {
        Self {
            config,
            epochs_done: 0,
            step: 0,
            total_steps: 0,
            unigram_baseline: 0.0,
            epochs: Vec::new(),
            param_ids: ParamIds::new(),
            train_documents,
            held_out_documents,
            train_sequences: 0,
            train_tokens: 0,
            initialised_from,
        }
    }
}

/// A model folder `walf pretrain` wrote, to start a new run from.
struct StartModel {
    /// The recipe with the folder's shape.
    config: PretrainConfig,
    tokenizer_json: Vec<u8>,
    weights: Vec<u8>,
    folder: PathBuf,
}

fn read_start_model(dir: &Path, args: &PretrainArgs) -> Result<StartModel> {
    let context = || format!("--init-from: {}", dir.display());
    let (config_json, tokenizer_json, weights) = read_model_folder(dir).context("--init-from")?;
    let found = ModelConfig::from_json(&config_json).with_context(context)?;
    let config = args.recipe_for(&found, found.vocab_size);
    config.check()?;
    // Only a BERT of the recipe's own form (tied decoder, GELU, its dropout and positions) is
    // continued: anything else would be written back under a config.json that misdescribes it.
    if ModelConfig::from_json(&serde_json::to_vec(&config.config_json())?)? != found {
        bail!(
            "--init-from: {} is not a model `walf pretrain` wrote (its config.json differs from the recipe's form)",
            dir.display()
        );
    }
    check_vocabulary(&tokenizer_json, &benchmark_words()).with_context(context)?;
    Ok(StartModel {
        config,
        tokenizer_json,
        weights,
        folder: dir.to_path_buf(),
    })
}

/// A pretrained encoder to add a masked-LM head to.
struct StartEncoder {
    /// Its config as the masked LM it becomes, with the full vocabulary.
    config: ModelConfig,
    tokenizer_json: Vec<u8>,
    weights: Vec<u8>,
    folder: PathBuf,
}

fn read_encoder(dir: &Path) -> Result<StartEncoder> {
    let context = || format!("--init-encoder: {}", dir.display());
    let (config_json, tokenizer_json, weights) =
        read_model_folder(dir).context("--init-encoder")?;
    let config = encoder_config(&config_json).with_context(context)?;
    Ok(StartEncoder {
        config,
        tokenizer_json,
        weights,
        folder: dir.to_path_buf(),
    })
}

/// Every sentence of the benchmark filled in (each template with each profession and gendered
/// phrase), and the page's held-out text: what a cut-down vocabulary must tokenize as before.
fn texts_tokenized_exactly() -> Vec<String> {
    let bench = Benchmark::bundled();
    let mut texts = Vec::new();
    for template in &bench.templates {
        for profession in &bench.professions {
            let filled = template
                .text
                .replace("[ARTICLE]", &profession.article)
                .replace("[TTT]", &profession.name)
                .replace("[DET]", "");
            texts.extend(
                bench
                    .phrases
                    .iter()
                    .map(|p| filled.replace("[AAA]", &p.phrase)),
            );
        }
    }
    texts.extend(walf_lab::data::HELDOUT_TXT.lines().map(str::to_string));
    texts
}

/// The recipe, tokenizer and first weights of a masked LM made from `encoder`: its vocabulary
/// cut to --vocab tokens (kept whole without it), the benchmark tokenized as before.
fn masked_lm_start(
    encoder: &StartEncoder,
    args: &PretrainArgs,
    train_sentences: &[String],
) -> Result<(PretrainConfig, Vec<u8>, Vec<u8>)> {
    let full = &encoder.config;
    let exact = texts_tokenized_exactly();
    let keep = match args.vocab {
        Some(size) => tokens_to_keep(&encoder.tokenizer_json, &exact, train_sentences, size)?,
        None => (0..full.vocab_size as u32).collect(),
    };
    let (tokenizer_json, old_ids) = prune_vocabulary(&encoder.tokenizer_json, &keep)?;
    check_same_pieces(&encoder.tokenizer_json, &tokenizer_json, &exact)?;
    check_vocabulary(&tokenizer_json, &benchmark_words())?;
    let config = args.recipe_for(full, old_ids.len());
    config.check()?;
    let model_config = ModelConfig::from_json(&serde_json::to_vec(&config.config_json())?)?;
    let expected = ModelConfig {
        vocab_size: old_ids.len(),
        ..full.clone()
    };
    if model_config != expected {
        bail!(
            "--init-encoder: {} is a BERT of another form than `walf pretrain` writes (activation, dropout, layer-norm epsilon, token types or padding id differ)",
            encoder.folder.display()
        );
    }
    let weights = Weights::parse(
        encoder
            .folder
            .join("model.safetensors")
            .display()
            .to_string(),
        &encoder.weights,
    )?;
    let start = masked_lm_from_encoder(&model_config, &weights, &old_ids, config.seed)?;
    Ok((config, tokenizer_json, start))
}

/// The corpus's documents, sorted by file name. A folder holding Brown files uses those only
/// (its README and index files are not text to learn from); otherwise every `.txt` file.
pub(crate) fn read_corpus(dir: &Path) -> Result<Vec<Document>> {
    let entries = fs::read_dir(dir)
        .with_context(|| format!("cannot read the corpus folder {}", dir.display()))?;
    let mut files: Vec<(String, String)> = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if !path.is_file() {
            continue;
        }
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        // Binary files (the corpus package's pickled index) are skipped, not errors.
        if let Ok(text) = fs::read_to_string(&path) {
            files.push((name, text));
        }
    }
    files.sort();
    let tagged = files.iter().any(|(_, text)| looks_tagged(text));
    let docs: Vec<Document> = files
        .iter()
        .filter(|(name, text)| {
            if tagged {
                looks_tagged(text)
            } else {
                name.ends_with(".txt")
            }
        })
        .map(|(name, text)| document(name, text))
        .filter(|d| !d.sentences.is_empty())
        .collect();
    if docs.len() < 2 {
        bail!(
            "{} holds {} document(s); a corpus folder needs Brown corpus files or .txt files (at least 2)",
            dir.display(),
            docs.len()
        );
    }
    Ok(docs)
}

/// Every word the benchmark will ask the model about.
fn benchmark_words() -> Vec<String> {
    let bench = Benchmark::bundled();
    bench
        .professions
        .iter()
        .map(|p| p.name.clone())
        .chain(bench.phrases.iter().map(|p| p.phrase.clone()))
        .collect()
}

fn masking_vocab(tokenizer: &MaskTokenizer, config: &ModelConfig) -> MaskingVocab {
    MaskingVocab {
        mask_id: tokenizer.mask_id(),
        pad_id: tokenizer.pad_id(),
        vocab_size: config.vocab_size,
        first_ordinary: walf_lab::pretrain::vocab::SPECIAL_TOKENS.len() as u32,
    }
}

/// The seed the bundled model's first run scored its held-out predictions with (its `--seed`
/// was 42, which this seed used to be derived from).
const HELD_OUT_SEED: u64 = 42 ^ 0x0048_454C_444F_5554;

/// The held-out sequences masked once, with a fixed seed whatever `--seed` is, so every epoch
/// of every run on the same corpus and vocabulary is scored on the same predictions.
fn held_out_batches(
    sequences: &[Vec<u32>],
    vocab: MaskingVocab,
    config: &PretrainConfig,
) -> Vec<MaskedBatch> {
    let mut rng = SplitMix64::new(HELD_OUT_SEED);
    sequences
        .chunks(config.batch_size)
        .map(|chunk| {
            let refs: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
            mask_batch(&refs, vocab, config.mask_share, &mut rng)
        })
        .collect()
}

pub fn run(args: PretrainArgs) -> Result<()> {
    let started = Instant::now();
    let checkpoint = args.out.join("checkpoint");
    let state_path = checkpoint.join("state.json");
    let set_aside = args.out.join(".checkpoint.old");
    if !checkpoint.exists() && set_aside.join("state.json").exists() {
        // A crash between the two renames of `save_checkpoint` left the last complete
        // checkpoint set aside.
        fs::rename(&set_aside, &checkpoint)
            .with_context(|| format!("cannot restore {}", checkpoint.display()))?;
    }
    let resuming = args.resume && state_path.exists();
    if args.resume && !resuming {
        bail!(
            "--resume: {} holds no checkpoint to resume from",
            args.out.display()
        );
    }
    if !args.resume && args.out.join("model.safetensors").exists() {
        bail!(
            "{} already holds a model; pass --resume to continue its training or choose another --out",
            args.out.display()
        );
    }
    if resuming && args.sets_model_or_recipe() {
        bail!(
            "--resume continues with the checkpoint's settings (its frozen encoder too); only --epochs and --dtype may change"
        );
    }
    if args.init_from.is_some() && (args.sets_encoder_shape() || args.vocab.is_some()) {
        bail!(
            "--init-from takes the model's shape and vocabulary from its folder; only --epochs, --seq-len, --batch, --lr, --seed and --freeze-encoder may be set"
        );
    }
    if args.init_encoder.is_some() && args.sets_encoder_shape() {
        bail!(
            "--init-encoder takes the model's shape from the encoder; --vocab cuts its vocabulary down, --seq-len sets the training sequences"
        );
    }
    // Read before anything is created, so a wrong folder leaves nothing behind.
    let start_model = match &args.init_from {
        Some(dir) if !resuming => Some(read_start_model(dir, &args)?),
        _ => None,
    };
    let start_encoder = match &args.init_encoder {
        Some(dir) if !resuming => Some(read_encoder(dir)?),
        _ => None,
    };
    if !resuming && start_model.is_none() && start_encoder.is_none() {
        // Settings first: a typo should neither wait for the corpus nor leave a folder behind.
        args.config().check()?;
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let docs = read_corpus(&args.corpus)?;
    let (train_docs, held_docs) = hold_out(docs);
    let train_sentences: Vec<String> = train_docs
        .iter()
        .flat_map(|d| d.sentences.iter().cloned())
        .collect();
    eprintln!(
        "corpus: {} training documents ({} sentences), {} held out",
        train_docs.len(),
        train_sentences.len(),
        held_docs.len()
    );

    let (mut state, tokenizer_json, optimizer_state, weights) = if resuming {
        let state: TrainingState = serde_json::from_slice(
            &fs::read(&state_path)
                .with_context(|| format!("cannot read {}", state_path.display()))?,
        )
        .with_context(|| format!("{} is not a training state", state_path.display()))?;
        let read = |name: &str| {
            let path = checkpoint.join(name);
            fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
        };
        eprintln!(
            "resuming after epoch {} (step {})",
            state.epochs_done, state.step
        );
        let optimizer = (read("optimizer.bpk")?, state.param_ids.clone());
        (
            state,
            read("tokenizer.json")?,
            Some(optimizer),
            Some((
                checkpoint.join("model.safetensors"),
                read("model.safetensors")?,
            )),
        )
    } else if let Some(start) = start_model {
        eprintln!("starting from the model in {}", start.folder.display());
        let from = Some(start.folder.display().to_string());
        let state = TrainingState::new_run(start.config, train_docs.len(), held_docs.len(), from);
        let weights = (start.folder.join("model.safetensors"), start.weights);
        (state, start.tokenizer_json, None, Some(weights))
    } else if let Some(encoder) = start_encoder {
        eprintln!("starting from the encoder in {}", encoder.folder.display());
        let t = Instant::now();
        let (config, json, weights) = masked_lm_start(&encoder, &args, &train_sentences)?;
        eprintln!(
            "vocabulary: {} of the encoder's {} tokens kept, new masked-LM head ({:.1} s)",
            config.vocab_size,
            encoder.config.vocab_size,
            t.elapsed().as_secs_f64()
        );
        let from = Some(encoder.folder.display().to_string());
        let state = TrainingState::new_run(config, train_docs.len(), held_docs.len(), from);
        let weights = (encoder.folder.join("model.safetensors"), weights);
        (state, json, None, Some(weights))
    } else {
        let config = args.config();
        let t = Instant::now();
        let json = train_vocabulary(&train_sentences, config.vocab_size, &benchmark_words())?;
        eprintln!(
            "vocabulary: {} tokens trained in {:.1} s",
            config.vocab_size,
            t.elapsed().as_secs_f64()
        );
        let state = TrainingState::new_run(config, train_docs.len(), held_docs.len(), None);
        (state, json, None, None)
    };
    if let Some(epochs) = args.epochs {
        state.config.epochs = epochs;
    }
    let config = state.config.clone();
    let config_json = serde_json::to_vec_pretty(&config.config_json())?;
    let model_config = ModelConfig::from_json(&config_json)?;
    let tokenizer = MaskTokenizer::from_json(&tokenizer_json, &model_config)?;

    let t = Instant::now();
    let train = pack_sequences(&tokenizer, &train_docs, config.seq_len)?;
    let held = pack_sequences(&tokenizer, &held_docs, config.seq_len)?;
    let train_tokens: usize = train.iter().map(Vec::len).sum();
    eprintln!(
        "{} training sequences ({} tokens), {} held out, of at most {} tokens ({:.1} s)",
        train.len(),
        train_tokens,
        held.len(),
        config.seq_len,
        t.elapsed().as_secs_f64()
    );
    let vocab = masking_vocab(&tokenizer, &model_config);
    let held_batches = held_out_batches(&held, vocab, &config);
    let held_labels: Vec<u32> = held_batches.iter().flat_map(|b| b.labels.clone()).collect();
    let baseline = unigram_baseline(&train, &held_labels, config.vocab_size);
    eprintln!("held-out loss of always predicting unigram frequencies: {baseline:.4}");

    let steps_per_epoch = train.len().div_ceil(config.batch_size);
    let total_steps = steps_per_epoch * config.epochs;
    let device = args.backend.device()?.autodiff();
    let mut trainer = match weights {
        Some((path, bytes)) => {
            let weights = Weights::parse(path.display().to_string(), &bytes)?;
            let model = walf_lab::model::MaskedLm::load(&model_config, &weights, &device)?;
            Pretrainer::from_model(
                config.clone(),
                model,
                optimizer_state,
                state.step,
                total_steps,
            )?
        }
        None => Pretrainer::new(config.clone(), &model_config, &device, total_steps)?,
    };
    state.total_steps = total_steps;
    state.unigram_baseline = baseline;
    state.train_sequences = train.len();
    state.train_tokens = train_tokens;

    let log_path = args.out.join("training.jsonl");
    let mut log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    if state.epochs_done == 0 {
        writeln!(
            log,
            "{}",
            serde_json::json!({
                "config": config,
                "unigram_baseline": baseline,
                "initialised_from": state.initialised_from,
            })
        )?;
    }

    let mut stopped_early = false;
    for epoch in state.epochs_done..config.epochs {
        // Order and masks depend on (seed, epoch) only, so a resumed run sees what an
        // uninterrupted one would have.
        let mut rng = SplitMix64::new(config.seed.wrapping_add(1_000_003 * (epoch as u64 + 1)));
        let mut order: Vec<usize> = (0..train.len()).collect();
        rng.shuffle(&mut order);
        let bar = Progress::new(
            &format!("epoch {}/{}", epoch + 1, config.epochs),
            "steps",
            steps_per_epoch as u64,
            "{prefix} [{bar:30}] {pos}/{len} steps, {per_sec}, {eta} left  {msg}",
        );
        let epoch_started = Instant::now();
        let (mut loss_sum, mut steps, mut tokens) = (0.0, 0usize, 0usize);
        for chunk in order.chunks(config.batch_size) {
            if args.max_steps.is_some_and(|m| trainer.step >= m) {
                stopped_early = true;
                break;
            }
            let refs: Vec<&[u32]> = chunk.iter().map(|&i| train[i].as_slice()).collect();
            let batch = mask_batch(&refs, vocab, config.mask_share, &mut rng);
            let loss = match pollster::block_on(trainer.train_step(&batch)) {
                Ok(loss) => loss,
                Err(e) => {
                    bar.abandon();
                    return Err(e.into());
                }
            };
            loss_sum += loss;
            steps += 1;
            tokens += refs.iter().map(|s| s.len()).sum::<usize>();
            bar.set_message(format!("loss {loss:.3}"));
            bar.inc(1);
        }
        bar.finish();
        let seconds = epoch_started.elapsed().as_secs_f64();
        let (sum, count) = pollster::block_on(trainer.evaluate(&held_batches))?;
        let entry = EpochLog {
            epoch: epoch + 1,
            steps,
            train_loss: loss_sum / steps.max(1) as f64,
            held_out_loss: sum / count.max(1) as f64,
            seconds,
            tokens_per_second: tokens as f64 / seconds.max(1e-9),
        };
        eprintln!(
            "epoch {}: train loss {:.4}, held-out loss {:.4} (unigram {:.4}), {:.0} tokens/s, {:.0} s",
            entry.epoch,
            entry.train_loss,
            entry.held_out_loss,
            baseline,
            entry.tokens_per_second,
            seconds
        );
        writeln!(log, "{}", serde_json::json!({"epoch": entry}))?;
        state.epochs.push(entry);
        let weights = pollster::block_on(trainer.model.valid().to_safetensors())?;
        if !stopped_early {
            state.epochs_done = epoch + 1;
            state.step = trainer.step;
            let (optimizer, ids) = trainer.optimizer_state()?;
            state.param_ids = ids;
            save_checkpoint(&checkpoint, &state, &tokenizer_json, &weights, &optimizer)?;
        }
        let safetensors = match args.dtype {
            None => weights,
            Some(SavedDtype::F32) => walf_lab::weights::converted(&weights, Dtype::F32)?,
            Some(SavedDtype::F16) => walf_lab::weights::converted(&weights, Dtype::F16)?,
        };
        let files = ExportedModel {
            config_json: config_json.clone(),
            tokenizer_json: tokenizer_json.clone(),
            safetensors,
        };
        save_atomically(&args.out, &files)?;
        if stopped_early {
            break;
        }
    }
    let summary = serde_json::to_vec_pretty(&serde_json::json!({
        "config": config,
        "unigram_baseline": state.unigram_baseline,
        "initialised_from": state.initialised_from,
        "epochs": state.epochs,
        "steps": trainer.step,
        "train_documents": state.train_documents,
        "held_out_documents": state.held_out_documents,
        "train_sequences": state.train_sequences,
        "train_tokens": state.train_tokens,
    }))?;
    write_atomically(&args.out.join("training_summary.json"), &summary)?;
    eprintln!(
        "model in {} ({} steps, {:.0} s)",
        args.out.display(),
        trainer.step,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Fault injection for the crash tests: `WALF_TEST_CRASH=<point>` ends the process at once, as a
/// kill would, at that point of writing a checkpoint (`checkpoint-write`: half of the weights
/// written; `checkpoint-swap`: the old checkpoint moved aside, the new one not yet in place).
fn crash_requested(point: &str) -> bool {
    std::env::var("WALF_TEST_CRASH").is_ok_and(|p| p == point)
}

/// The checkpoint folder is written beside the old one and swapped in by renames, so a crash
/// leaves a complete checkpoint: the old one or the new one.
fn save_checkpoint(
    dir: &Path,
    state: &TrainingState,
    tokenizer_json: &[u8],
    weights: &[u8],
    optimizer: &[u8],
) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let fresh = parent.join(".checkpoint.partial");
    let old = parent.join(".checkpoint.old");
    let _ = fs::remove_dir_all(&fresh);
    fs::create_dir_all(&fresh).with_context(|| format!("cannot create {}", fresh.display()))?;
    for (name, bytes) in [
        ("tokenizer.json", tokenizer_json),
        ("model.safetensors", weights),
        ("optimizer.bpk", optimizer),
        ("state.json", &serde_json::to_vec_pretty(state)?[..]),
    ] {
        if name == "model.safetensors" && crash_requested("checkpoint-write") {
            // half of the weights on disk, then the end: a kill in the middle of the write
            let _ = fs::write(fresh.join(name), &bytes[..bytes.len() / 2]);
            std::process::abort();
        }
        fs::write(fresh.join(name), bytes)
            .with_context(|| format!("cannot write {}", fresh.join(name).display()))?;
    }
    let _ = fs::remove_dir_all(&old);
    if dir.exists() {
        fs::rename(dir, &old).with_context(|| format!("cannot move {} aside", dir.display()))?;
    }
    if crash_requested("checkpoint-swap") {
        std::process::abort();
    }
    fs::rename(&fresh, dir).with_context(|| format!("cannot move {} into place", dir.display()))?;
    let _ = fs::remove_dir_all(&old);
    Ok(())
}
