//! `walf pretrain` on a tiny synthetic corpus: it trains, writes a folder the engine (and
//! transformers, see tests/reference/check_pretrained.py) loads, checkpoints, and resumes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use walf_lab::device::cpu;
use walf_lab::folder::load_model_folder;

fn walf<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_walf"))
        .args(args)
        .output()
        .expect("walf runs")
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "walf failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// What the checkpoint in `dir` says of itself.
fn checkpoint_state(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("checkpoint/state.json")).unwrap()).unwrap()
}

/// A tiny corpus and a folder for the model: `walf pretrain --corpus C --out OUT/model …`.
struct TinyRun {
    _corpus: tempfile::TempDir,
    out: tempfile::TempDir,
    base: Vec<String>,
}

impl TinyRun {
    fn new() -> Self {
        let corpus = tempfile::tempdir().unwrap();
        synthetic_corpus(corpus.path());
        let out = tempfile::tempdir().unwrap();
        let model = out.path().join("model");
        let base = [
            "pretrain",
            "--corpus",
            corpus.path().to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        Self {
            _corpus: corpus,
            out,
            base,
        }
    }

    fn out_dir(&self) -> PathBuf {
        self.out.path().join("model")
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = self.base.clone();
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    /// The tiny recipe for one epoch.
    fn first_epoch(&self) -> Vec<String> {
        let mut args = self.args(&TINY);
        args.extend(["--epochs".to_string(), "1".to_string()]);
        args
    }
}

/// Three documents in the Brown format, written for this test.
fn synthetic_corpus(dir: &Path) {
    let people = ["nurse", "carpenter", "teacher", "farmer", "doctor", "clerk"];
    let places = ["market", "school", "church", "office", "river", "station"];
    for (d, name) in ["ca01", "cb02", "cc03"].iter().enumerate() {
        let mut text = String::new();
        for i in 0..40 {
            let p = people[(i + d) % people.len()];
            let q = places[(i * 7 + d) % places.len()];
            let pronoun = if i % 2 == 0 { "he/pps" } else { "she/pps" };
            text.push_str(&format!(
                "\n\n\tThe/at {p}/nn said/vbd {pronoun} went/vbd to/in the/at {q}/nn ./.\n"
            ));
        }
        std::fs::write(dir.join(name), text).unwrap();
    }
    std::fs::write(dir.join("README"), "Not part of the corpus.").unwrap();
}

const TINY: [&str; 16] = [
    "--layers",
    "1",
    "--hidden",
    "16",
    "--heads",
    "2",
    "--intermediate",
    "32",
    "--vocab",
    "200",
    "--seq-len",
    "32",
    "--batch",
    "8",
    "--lr",
    "0.003",
];

#[test]
fn pretrain_two_steps_gives_a_loadable_model() {
    let corpus = tempfile::tempdir().unwrap();
    synthetic_corpus(corpus.path());
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("model");
    let mut args = vec!["pretrain", "--corpus", corpus.path().to_str().unwrap()];
    args.extend(["--out", out_dir.to_str().unwrap(), "--max-steps", "2"]);
    args.extend(TINY);
    let o = walf(&args);
    ok(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("unigram"), "{stderr}");
    assert!(stderr.contains("2 training documents"), "{stderr}");

    let lm = load_model_folder(&out_dir, &cpu()).expect("the pretrained folder loads");
    assert_eq!(lm.config.num_hidden_layers, 1);
    assert_eq!(lm.config.hidden_size, 16);
    // Every benchmark word is spelled without [UNK].
    let bench = walf_lab::data::Benchmark::bundled();
    let unk = lm.tokenizer.unk_id().unwrap();
    for p in &bench.professions {
        let ids = lm.tokenizer.word_ids(&p.name, false).unwrap();
        assert!(!ids.contains(&unk), "{} has [UNK]", p.name);
    }
    let predictions =
        pollster::block_on(lm.fill_mask("the [MASK] went to the market.", 3)).unwrap();
    assert_eq!(predictions[0].top.len(), 3);

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("training_summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["steps"], 2);
    let held_out = summary["epochs"][0]["held_out_loss"].as_f64().unwrap();
    assert!(held_out.is_finite() && held_out > 0.0);
}

#[test]
fn pretrain_checkpoints_each_epoch_and_resumes() {
    let run = TinyRun::new();
    let out_dir = run.out_dir();
    let first = run.first_epoch();
    ok(&walf(&first));
    let after_one = checkpoint_state(&out_dir);
    assert_eq!(after_one["epochs_done"], 1);
    let steps_one = after_one["step"].as_u64().unwrap();
    assert!(steps_one > 0);

    // A second run without --resume refuses to overwrite the model.
    let again = walf(&first);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    // Changing the recipe on resume is refused too.
    assert!(
        !walf(&run.args(&["--resume", "--hidden", "32"]))
            .status
            .success()
    );

    let o = walf(&run.args(&["--resume", "--epochs", "2"]));
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("resuming after epoch 1"));
    let after_two = checkpoint_state(&out_dir);
    assert_eq!(after_two["epochs_done"], 2);
    assert_eq!(after_two["step"].as_u64().unwrap(), 2 * steps_one);
    assert_eq!(after_two["epochs"].as_array().unwrap().len(), 2);
    let log = std::fs::read_to_string(out_dir.join("training.jsonl")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("\"epoch\"")).count(), 2);
    load_model_folder(&out_dir, &cpu()).expect("the resumed model loads");
}

/// A run killed while it writes a checkpoint (half of the weights written; or between the two
/// renames that swap it in) resumes from the last complete checkpoint.
#[test]
fn a_run_killed_while_writing_a_checkpoint_resumes_from_the_last_complete_one() {
    let run = TinyRun::new();
    let out_dir = run.out_dir();
    ok(&walf(&run.first_epoch()));
    let steps_one = checkpoint_state(&out_dir)["step"].as_u64().unwrap();
    let resume = run.args(&["--resume", "--epochs", "2"]);
    let crash = |point: &str| {
        Command::new(env!("CARGO_BIN_EXE_walf"))
            .args(&resume)
            .env("WALF_TEST_CRASH", point)
            .output()
            .expect("walf runs")
    };

    let killed = crash("checkpoint-write");
    assert!(!killed.status.success(), "the crash hook ended the run");
    assert!(
        out_dir
            .join(".checkpoint.partial/model.safetensors")
            .exists()
    );
    assert_eq!(
        checkpoint_state(&out_dir)["epochs_done"],
        1,
        "the complete checkpoint is untouched"
    );

    let killed = crash("checkpoint-swap");
    assert!(!killed.status.success());
    assert!(
        !out_dir.join("checkpoint").exists(),
        "killed between the renames"
    );
    assert!(out_dir.join(".checkpoint.old/state.json").exists());

    let o = walf(&resume);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("resuming after epoch 1"));
    let after = checkpoint_state(&out_dir);
    assert_eq!(after["epochs_done"], 2);
    assert_eq!(after["step"].as_u64().unwrap(), 2 * steps_one);
    assert!(!out_dir.join(".checkpoint.old").exists());
    assert!(!out_dir.join(".checkpoint.partial").exists());
    load_model_folder(&out_dir, &cpu()).expect("the resumed model loads");
}

#[test]
fn pretrain_starts_a_new_run_from_a_model_it_wrote() {
    let corpus = tempfile::tempdir().unwrap();
    synthetic_corpus(corpus.path());
    let out = tempfile::tempdir().unwrap();
    let first = out.path().join("first");
    let second = out.path().join("second");
    let corpus_dir = corpus.path().to_str().unwrap();
    let mut args = vec!["pretrain", "--corpus", corpus_dir];
    args.extend(["--out", first.to_str().unwrap(), "--epochs", "1"]);
    args.extend(TINY);
    ok(&walf(&args));
    let summary = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("training_summary.json")).unwrap()).unwrap()
    };
    let first_loss = summary(&first)["epochs"][0]["held_out_loss"]
        .as_f64()
        .unwrap();

    let start = |extra: &[&str]| {
        let mut a = vec!["pretrain", "--corpus", corpus_dir];
        a.extend(["--out", second.to_str().unwrap()]);
        a.extend(["--init-from", first.to_str().unwrap()]);
        a.extend(extra);
        walf(&a)
    };
    // The shape is the folder's: setting it, or resuming at the same time, is refused.
    let o = start(&["--hidden", "32"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--init-from takes the model's shape"));
    assert!(!start(&["--resume"]).status.success());
    assert!(!second.exists(), "a refused run created its --out");

    // A near-zero learning rate keeps the weights: the held-out loss, scored on the same masked
    // predictions whatever the seed, is then the first run's.
    let o = start(&["--max-steps", "2", "--lr", "1e-12", "--seed", "7"]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("starting from the model in"));
    let s = summary(&second);
    assert_eq!(s["steps"], 2);
    assert!(s["initialised_from"].as_str().unwrap().ends_with("first"));
    assert_eq!(s["config"]["hidden"], 16);
    assert_eq!(s["config"]["seed"], 7);
    let second_loss = s["epochs"][0]["held_out_loss"].as_f64().unwrap();
    assert!(
        (second_loss - first_loss).abs() < 1e-4,
        "held-out loss {second_loss} after starting from a model whose loss was {first_loss}"
    );
    for file in ["tokenizer.json", "config.json"] {
        assert_eq!(
            std::fs::read(first.join(file)).unwrap(),
            std::fs::read(second.join(file)).unwrap(),
            "{file} differs"
        );
    }
    load_model_folder(&second, &cpu()).expect("the continued model loads");

    // A folder whose config.json is not the recipe's form is refused.
    let edited = out.path().join("edited");
    std::fs::create_dir(&edited).unwrap();
    for file in ["tokenizer.json", "model.safetensors"] {
        std::fs::copy(first.join(file), edited.join(file)).unwrap();
    }
    let config = std::fs::read_to_string(first.join("config.json")).unwrap();
    std::fs::write(
        edited.join("config.json"),
        config.replace("\"gelu\"", "\"relu\""),
    )
    .unwrap();
    let o = walf(&[
        "pretrain",
        "--corpus",
        corpus_dir,
        "--out",
        out.path().join("third").to_str().unwrap(),
        "--init-from",
        edited.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("is not a model `walf pretrain` wrote"),
        "{stderr}"
    );
}

#[test]
fn pretrain_reports_a_corpus_it_cannot_use() {
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = walf(&[
        "pretrain",
        "--corpus",
        empty.path().to_str().unwrap(),
        "--out",
        out.path().join("m").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("document"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The bert fixture as a pretrained encoder would come: config.json of a `BertModel`, tensors
/// named without `bert.`, a pooler, no masked-LM head.
fn encoder_folder(dir: &Path) {
    use walf_lab::weights::{Weights, serialize};
    let fixture = crate::common::fixture_model("bert");
    let config = std::fs::read_to_string(fixture.join("config.json")).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        config.replace("BertForMaskedLM", "BertModel"),
    )
    .unwrap();
    std::fs::copy(fixture.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let bytes = std::fs::read(fixture.join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<walf_lab::weights::StoredTensor> = tensors
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("cls."))
        .map(|(name, view)| {
            let name = name.trim_start_matches("bert.").to_string();
            (
                name,
                view.dtype(),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    let h = 32usize;
    let pooler = vec![0u8; h * h * 4];
    out.push((
        "pooler.dense.weight".into(),
        safetensors::Dtype::F32,
        vec![h, h],
        pooler,
    ));
    out.push((
        "pooler.dense.bias".into(),
        safetensors::Dtype::F32,
        vec![h],
        vec![0u8; h * 4],
    ));
    std::fs::write(dir.join("model.safetensors"), serialize(&out).unwrap()).unwrap();
    assert!(Weights::parse("w", &std::fs::read(dir.join("model.safetensors")).unwrap()).is_ok());
}

/// A tensor of a safetensors file as f32 values.
fn values(dir: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let weights = walf_lab::weights::Weights::parse("w", &bytes).unwrap();
    let shape = weights
        .shape(name)
        .unwrap_or_else(|| panic!("{name} is missing"));
    weights
        .tensor(name, &shape)
        .unwrap()
        .try_into_vec::<f32>()
        .unwrap()
}

fn vocab_of(dir: &Path) -> std::collections::HashMap<String, u32> {
    tokenizers::Tokenizer::from_file(dir.join("tokenizer.json"))
        .unwrap()
        .get_vocab(true)
        .into_iter()
        .collect()
}

#[test]
fn pretrain_adds_a_head_to_a_pretrained_encoder_and_cuts_its_vocabulary() {
    let corpus = tempfile::tempdir().unwrap();
    synthetic_corpus(corpus.path());
    let work = tempfile::tempdir().unwrap();
    let encoder = work.path().join("encoder");
    encoder_folder(&encoder);
    let head = work.path().join("head");
    let corpus_dir = corpus.path().to_str().unwrap();
    // Every run of this test: the corpus, its --out, a tiny recipe, and what `extra` adds.
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "pretrain",
            "--corpus",
            corpus_dir,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(["--seq-len", "32", "--batch", "8", "--lr", "0.01"]);
        args.extend(extra);
        walf(&args)
    };
    // The encoder's shape is fixed.
    let encoder_dir = encoder.to_str().unwrap();
    let o = run(
        &work.path().join("refused"),
        &["--init-encoder", encoder_dir, "--hidden", "64"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--init-encoder takes the model's shape"));

    // Phase 1: head only, vocabulary cut to at most 400 of 496 tokens, f16 on disk.
    let o = run(
        &head,
        &[
            "--init-encoder",
            encoder_dir,
            "--vocab",
            "400",
            "--freeze-encoder",
            "--max-steps",
            "3",
            "--dtype",
            "f16",
        ],
    );
    ok(&o);
    // At most 400: the tiny corpus uses fewer tokens than that.
    let stderr = String::from_utf8_lossy(&o.stderr);
    let kept: usize = stderr
        .split("vocabulary: ")
        .nth(1)
        .and_then(|s| s.split(" of the encoder's 496 tokens kept").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(kept <= 400 && kept > 100, "{kept} tokens kept");
    let lm = load_model_folder(&head, &cpu()).expect("the masked LM loads");
    assert_eq!(lm.config.vocab_size, kept);
    assert_eq!(
        lm.config.max_position_embeddings, 64,
        "the encoder's positions"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(head.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "BertForMaskedLM");
    let stored = std::fs::read(head.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&stored).unwrap();
    assert!(
        st.tensors()
            .iter()
            .all(|(_, v)| v.dtype() == safetensors::Dtype::F16)
    );
    assert!(st.tensors().iter().all(|(n, _)| !n.contains("pooler")));

    // Renumbered: the same token has the encoder's embedding row under its new id (to f16).
    let (old_vocab, new_vocab) = (vocab_of(&encoder), vocab_of(&head));
    assert_eq!(new_vocab.len(), kept);
    let old_rows = values(&encoder, "embeddings.word_embeddings.weight");
    let new_rows = values(&head, "bert.embeddings.word_embeddings.weight");
    for (token, &new) in &new_vocab {
        let old = old_vocab[token] as usize;
        let (a, b) = (
            &old_rows[old * 32..old * 32 + 32],
            &new_rows[new as usize * 32..][..32],
        );
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-3 * x.abs().max(1e-2),
                "{token}: {x} vs {y}"
            );
        }
    }
    // Frozen: the encoder's layers are as they were (to f16); the head has learnt.
    let name = "encoder.layer.1.output.dense.weight";
    for (x, y) in values(&encoder, name)
        .iter()
        .zip(values(&head, &format!("bert.{name}")))
    {
        assert!(
            (x - y).abs() <= 1e-3 * x.abs().max(1e-2),
            "{name}: {x} vs {y}"
        );
    }
    let bias = values(&head, "cls.predictions.bias");
    assert!(
        bias.iter().any(|&b| b != 0.0),
        "the new head's bias did not train"
    );

    // Every benchmark sentence is split into the same pieces as by the encoder's vocabulary.
    let before = tokenizers::Tokenizer::from_file(encoder.join("tokenizer.json")).unwrap();
    let after = tokenizers::Tokenizer::from_file(head.join("tokenizer.json")).unwrap();
    let bench = walf_lab::data::Benchmark::bundled();
    for p in bench.professions.iter().step_by(7) {
        let text = format!("my sister works as {} {}.", p.article, p.name);
        let pieces = |t: &tokenizers::Tokenizer| {
            t.encode(text.as_str(), true).unwrap().get_tokens().to_vec()
        };
        assert_eq!(pieces(&before), pieces(&after), "{text}");
    }
    let predictions = pollster::block_on(lm.fill_mask("[MASK] is a nurse.", 3)).unwrap();
    assert_eq!(predictions[0].top.len(), 3);

    // Phase 2: the whole model from phase 1's folder (f16 weights read back as f32).
    let whole = work.path().join("whole");
    let head_dir = head.to_str().unwrap();
    ok(&run(&whole, &["--init-from", head_dir, "--max-steps", "2"]));
    let moved = values(&head, &format!("bert.{name}"))
        .iter()
        .zip(values(&whole, &format!("bert.{name}")))
        .any(|(x, y)| (x - y).abs() > 1e-4);
    assert!(moved, "the unfrozen encoder did not train");
}
