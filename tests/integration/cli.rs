//! The `walf` command end to end: its files, its errors.

use std::process::Command;

use crate::common::fixture_model;

fn walf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_walf"))
        .args(args)
        .output()
        .expect("walf runs")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn probe_writes_the_papers_files() {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("result.json");
    let model = fixture_model("bert");
    let o = walf(&[
        "probe",
        "--model",
        model.to_str().unwrap(),
        "--split",
        "test",
        "--target",
        "both",
        "--tsv",
        out.path().to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("male_dominated") && stdout.contains("P(female)"),
        "{stdout}"
    );
    for target in ["equal", "real-world"] {
        let individual =
            std::fs::read_to_string(out.path().join(target).join("individual.tsv")).unwrap();
        let mut lines = individual.lines();
        assert_eq!(
            lines.next().unwrap(),
            "profession\tf before\tm before\tf true\tm true\tprof_gender\tKL_female\tKL_male\tKL_total"
        );
        assert_eq!(lines.count(), 45);
        let summary = std::fs::read_to_string(out.path().join(target).join("summary.tsv")).unwrap();
        let groups: Vec<&str> = summary
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        assert_eq!(
            groups,
            [
                "prof_gender",
                "ALL",
                "balanced",
                "female_dominated",
                "male_dominated"
            ]
        );
    }
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(value["raw"].as_array().unwrap().len(), 45 * 3 * 22);
}

#[test]
fn one_target_writes_one_pair_of_files() {
    let out = tempfile::tempdir().unwrap();
    let model = fixture_model("distilbert");
    let o = walf(&[
        "probe",
        "--model",
        model.to_str().unwrap(),
        "--split",
        "valid",
        "--target",
        "equal",
        "--tsv",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.path().join("individual.tsv").exists());
    assert!(out.path().join("summary.tsv").exists());
}

#[test]
fn fill_prints_probabilities() {
    let model = fixture_model("roberta");
    let o = walf(&[
        "fill",
        "--model",
        model.to_str().unwrap(),
        "[MASK] is a nurse.",
        "--top",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("mask at token"), "{stdout}");
    assert_eq!(
        lines[1..]
            .iter()
            .take_while(|l| l.starts_with("  ") && !l.ends_with(':'))
            .count(),
        3,
        "the top three: {stdout}"
    );
    // then the benchmark's gendered words that the vocabulary holds as one token, each with a
    // probability and its gender
    let words = walf_lab::data::Benchmark::bundled().gendered_words();
    let gendered: Vec<&str> = lines.iter().skip(5).copied().collect();
    assert_eq!(
        lines.get(4),
        Some(&"  the benchmark's gendered words here:"),
        "{stdout}"
    );
    assert!(
        !gendered.is_empty() && gendered.len() <= words.len(),
        "{stdout}"
    );
    for line in gendered {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let (word, gender) = words.iter().find(|(w, _)| w == cells[0]).expect(line);
        let p: f64 = cells[1].parse().unwrap();
        assert!((0.0..=1.0).contains(&p), "{line}");
        assert_eq!(cells[2], gender.label(), "{line}");
        assert!(!word.contains(' '));
    }
}

#[test]
fn missing_files_are_named_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let o = walf(&["probe", "--model", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("config.json"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let o = walf(&["probe", "--model", "no/such/folder"]);
    assert!(stderr(&o).contains("is not a folder"), "{}", stderr(&o));
}

#[test]
fn unknown_template_is_reported() {
    let model = fixture_model("bert");
    let o = walf(&[
        "probe",
        "--model",
        model.to_str().unwrap(),
        "--templates",
        "T9",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown template `T9`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_classroom_preset_says_what_it_changes_and_samples_the_masked_lm_term() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("tuned");
    let model = fixture_model("bert");
    let o = walf(&[
        "tune",
        "--model",
        model.to_str().unwrap(),
        "--target",
        "real-world",
        "--preset",
        "classroom",
        "--out",
        dir.to_str().unwrap(),
        "--max-epochs",
        "1",
        "--batch-size",
        "40",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("classroom preset") && err.contains("dropout off"),
        "{err}"
    );
    assert!(
        err.contains("and --batch-size, --max-epochs given here in its place"),
        "the options that change the preset are named: {err}"
    );
    assert!(err.contains("valid KL before tuning"), "{err}");
    assert!(
        err.contains("λ 0.800, scale"),
        "male-dominated λ and scale: {err}"
    );
    let log = std::fs::read_to_string(dir.join("training.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let config = &lines[0]["config"];
    assert_eq!(config["mlm_positions"], 1);
    assert_eq!(config["mlm_sentences"], 20);
    assert_eq!(config["max_epochs"], 1, "an option overrides the preset");
    assert!(lines[1]["before"]["valid_kl"].as_f64().unwrap() > 0.0);
    for step in lines.iter().filter_map(|l| l.get("step")) {
        let (rows, tokens) = (
            step["mlm_rows"].as_u64().unwrap(),
            step["mlm_tokens"].as_u64().unwrap(),
        );
        // 20 of each profession's 66 filled-in sentences, one masked token each
        assert_eq!(
            rows,
            20 * step["professions"].as_array().unwrap().len() as u64
        );
        assert!(rows < tokens, "{rows} rows for {tokens} tokens");
        assert!(step["scale"].as_f64().unwrap() > 0.0);
    }
    let epoch = &lines.last().unwrap()["epoch"];
    assert_eq!(
        epoch["valid_kl_by_group"].as_object().unwrap().len(),
        3,
        "{epoch}"
    );
}

#[test]
fn tune_saves_the_best_model_and_its_records_and_never_overwrites() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("tuned");
    let model = fixture_model("distilbert");
    let args = [
        "tune",
        "--model",
        model.to_str().unwrap(),
        "--target",
        "equal",
        "--out",
        dir.to_str().unwrap(),
        "--max-epochs",
        "1",
        "--batch-size",
        "16",
        "--lr",
        "1e-3",
        "--no-dropout",
    ];
    let o = walf(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    let log = std::fs::read_to_string(dir.join("training.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines[0].get("config").is_some());
    let steps = lines.iter().filter(|l| l.get("step").is_some()).count();
    assert_eq!(
        steps, 10,
        "146 train professions in batches of at most 16 within groups"
    );
    assert!(
        lines.last().unwrap()["epoch"]["improved"]
            .as_bool()
            .unwrap()
    );
    // the saved model loads and measures
    let o = walf(&[
        "probe",
        "--model",
        dir.to_str().unwrap(),
        "--target",
        "equal",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // a second run does not overwrite it
    let o = walf(&args);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("already holds a model"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn tune_method_cda_trains_on_the_swapped_text_and_says_what_it_needs() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("cda");
    let model = fixture_model("bert");
    let text = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/text/cda-general.txt");
    let base = [
        "tune",
        "--model",
        model.to_str().unwrap(),
        "--target",
        "equal",
        "--out",
        dir.to_str().unwrap(),
        "--max-epochs",
        "1",
        "--batch-size",
        "40",
        "--no-dropout",
    ];
    let with = |extra: &[&str]| walf(&[&base[..], extra].concat());
    // (2: the command line's own refusal, 1: the run's)
    for (extra, code, says) in [
        (&["--method", "cda"][..], 1, "give it with --text"),
        (
            &["--text", text.to_str().unwrap()][..],
            1,
            "add --method cda",
        ),
        (&["--method", "xyz"][..], 2, "`xyz` is not a method"),
    ] {
        let o = with(extra);
        assert_eq!(o.status.code(), Some(code), "{extra:?}");
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
    let empty = out.path().join("empty.txt");
    std::fs::write(&empty, "The river was high.\n").unwrap();
    let o = with(&["--method", "cda", "--text", empty.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("no sentence of the text (1 read) has a gendered word"),
        "{}",
        stderr(&o)
    );

    let o = with(&[
        "--method",
        "cda",
        "--text",
        text.to_str().unwrap(),
        "--cda-batch",
        "6",
        "--gamma",
        "0.5",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("--gamma, --beta, --mlm-positions and --mlm-sentences are WALF's"),
        "{err}"
    );
    assert!(
        err.contains("13 of 24 sentences have a gendered word"),
        "{err}"
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("training.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["method"], "cda");
    assert_eq!(lines[0]["cda_text"]["sentences_swapped"], 13);
    assert_eq!(lines[0]["config"]["cda_batch"], 6);
    let steps: Vec<&serde_json::Value> = lines.iter().filter_map(|l| l.get("step")).collect();
    // WALF's epoch with batches of 40: 2 + 2 + 1 batches of the three groups
    assert_eq!(steps.len(), 5);
    for step in &steps {
        assert!(step["kl"].is_null() && step["group"].is_null());
        assert_eq!(step["total_loss"], step["mlm_loss"]);
    }
    // the 26 sequences (13 sentences, each as written and swapped), each once, 6 at a time
    let rows: Vec<u64> = steps
        .iter()
        .map(|s| s["mlm_rows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [6, 6, 6, 6, 2]);
    assert!(lines.last().unwrap()["epoch"]["valid_kl"].is_f64());
    assert!(
        dir.join("model.safetensors").exists(),
        "the best epoch's weights"
    );
}

/// `walf probe` of the tiny BERT on the test split, on `backend`, with the given environment.
fn probe_tiny_bert(backend: &str, env: &[(&str, &str)]) -> std::process::Output {
    let model = fixture_model("bert");
    let mut command = Command::new(env!("CARGO_BIN_EXE_walf"));
    command.args(["probe", "--model"]).arg(&model).args([
        "--split",
        "test",
        "--target",
        "equal",
        "--backend",
        backend,
    ]);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("walf runs")
}

/// With stderr in a file or a pipe (as here) there is no bar to draw: long work writes a plain
/// line now and then instead, with its count, rate and time left (every 30 s unless
/// WALF_PROGRESS_SECONDS says otherwise).
#[test]
fn progress_off_a_terminal_is_written_as_lines() {
    let o = probe_tiny_bert("cpu", &[("WALF_PROGRESS_SECONDS", "0")]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("probing: ")).collect();
    assert!(!lines.is_empty(), "{err}");
    for line in &lines {
        assert!(
            line.contains(" sentences (") && line.ends_with(" left"),
            "{line}"
        );
    }
    let (err, _) = tune_tiny_bert("cpu", &[("WALF_PROGRESS_SECONDS", "0")]);
    assert!(
        err.lines().any(|l| l.starts_with("epoch 1: 1/")
            && l.contains(" batches (")
            && l.contains(" KL ")),
        "{err}"
    );
    let quiet = probe_tiny_bert("cpu", &[]);
    assert!(
        !stderr(&quiet).contains("probing: "),
        "a short run writes no progress lines by default: {}",
        stderr(&quiet)
    );
}

/// A probe's printed results, without the first line (how long it took).
fn probe_results(o: &std::process::Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    out.lines().skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn backend_auto_takes_a_graphics_card_or_the_cpu_never_a_software_adapter() {
    let auto = probe_tiny_bert("auto", &[]);
    let err = stderr(&auto);
    assert!(auto.status.success(), "{err}");
    if err.contains("running on the CPU") {
        // this machine has no graphics card (lavapipe, if installed, is passed over)
        assert!(err.contains("no graphics card that wgpu can use"), "{err}");
        assert_eq!(
            probe_results(&auto),
            probe_results(&probe_tiny_bert("cpu", &[]))
        );
    } else {
        assert!(err.contains("ms/batch"), "a graphics card is timed: {err}");
    }
}

/// `--backend auto` with a GPU times one probe batch on it and on the CPU and runs on the
/// faster; lavapipe stands in for a graphics card here (the hook counts software adapters).
#[test]
fn backend_auto_with_a_gpu_runs_on_the_faster_of_it_and_the_cpu() {
    if walf_lab::device::wgpu().is_err() {
        eprintln!("no wgpu adapter: not checked");
        return;
    }
    let auto = probe_tiny_bert("auto", &[("WALF_AUTO_COUNT_SOFTWARE_ADAPTERS", "1")]);
    let err = stderr(&auto);
    assert!(auto.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("backend: wgpu "))
        .unwrap_or_else(|| panic!("no timing line: {err}"));
    let ms = |after: &str| -> f64 {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    let (gpu, cpu) = (ms("wgpu "), ms("CPU "));
    assert!(line.contains("(a probe batch of "), "{line}");
    let on_cpu = line.ends_with("running on the CPU");
    assert!(
        on_cpu || line.ends_with("running on the graphics card, through wgpu"),
        "{line}"
    );
    assert_eq!(on_cpu, cpu < gpu, "the faster is taken: {line}");
    // the same numbers as the backend it chose, asked for by name
    let chosen = probe_tiny_bert(if on_cpu { "cpu" } else { "wgpu" }, &[]);
    assert_eq!(probe_results(&auto), probe_results(&chosen));
}

/// `walf tune` of the tiny BERT for one epoch towards the equal target, dropout off, on
/// `backend`: what it printed and its steps' losses.
fn tune_tiny_bert(backend: &str, env: &[(&str, &str)]) -> (String, Vec<f64>) {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("tuned");
    let mut command = Command::new(env!("CARGO_BIN_EXE_walf"));
    command
        .args(["tune", "--model"])
        .arg(fixture_model("bert"))
        .args(["--target", "equal", "--max-epochs", "1", "--no-dropout"])
        .args(["--batch-size", "16", "--backend", backend, "--out"])
        .arg(&dir);
    for (key, value) in env {
        command.env(key, value);
    }
    let o = command.output().expect("walf runs");
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let losses = std::fs::read_to_string(dir.join("training.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|l| l["step"]["total_loss"].as_f64())
        .collect();
    (err, losses)
}

/// `walf tune --backend auto` with a GPU times a training step's work, not a probe batch, on it
/// and on the CPU, and trains on the faster (lavapipe stands in for a graphics card).
#[test]
fn backend_auto_for_tuning_times_a_training_step() {
    if walf_lab::device::wgpu().is_err() {
        eprintln!("no wgpu adapter: not checked");
        return;
    }
    let (err, losses) = tune_tiny_bert("auto", &[("WALF_AUTO_COUNT_SOFTWARE_ADAPTERS", "1")]);
    let line = err
        .lines()
        .find(|l| l.starts_with("backend: wgpu "))
        .unwrap_or_else(|| panic!("no timing line: {err}"));
    assert!(
        line.contains("ms/step") && line.contains("(a training step's work on 1 profession"),
        "{line}"
    );
    let ms = |after: &str| -> f64 {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    let on_cpu = line.ends_with("running on the CPU");
    assert_eq!(
        on_cpu,
        ms("CPU ") < ms("wgpu "),
        "the faster is taken: {line}"
    );
    // the run itself is the one the chosen backend gives when asked for by name
    let (_, chosen) = tune_tiny_bert(if on_cpu { "cpu" } else { "wgpu" }, &[]);
    assert!(!losses.is_empty());
    for (a, b) in losses.iter().zip(&chosen) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-9), "{a} vs {b}");
    }
    assert_eq!(losses.len(), chosen.len());
}

#[test]
fn lm_loss_reads_a_text_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("held-out.txt");
    std::fs::write(
        &text,
        "she is a nurse and he is a carpenter.\n\nmy sister works as an editor.\n",
    )
    .unwrap();
    let model = fixture_model("bert");
    let o = walf(&[
        "lm-loss",
        "--model",
        model.to_str().unwrap(),
        "--text",
        text.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("2 passages"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = walf(&[
        "lm-loss",
        "--model",
        model.to_str().unwrap(),
        "--text",
        text.to_str().unwrap(),
        "--paper",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("the paper's rule"),
        "{out}{}",
        stderr(&o)
    );
    std::fs::write(&text, "\n\n").unwrap();
    let o = walf(&[
        "lm-loss",
        "--model",
        model.to_str().unwrap(),
        "--text",
        text.to_str().unwrap(),
    ]);
    assert!(stderr(&o).contains("holds no text"), "{}", stderr(&o));
}

#[test]
fn without_model_the_bundled_model_is_used() {
    let out = tempfile::tempdir().unwrap();
    let run = |json: &std::path::Path, model: Option<&std::path::Path>| {
        let mut args = vec!["probe", "--split", "valid", "--target", "equal"];
        args.extend(["--json", json.to_str().unwrap()]);
        if let Some(m) = model {
            args.extend(["--model", m.to_str().unwrap()]);
        }
        let o = walf(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        v
    };
    let bundled = run(&out.path().join("a.json"), None);
    let folder = fixture_model(crate::common::BUNDLED);
    let from_folder = run(&out.path().join("b.json"), Some(&folder));
    assert_eq!(bundled["model"], "minilm-brown (bundled)");
    assert!(!bundled["professions"].as_array().unwrap().is_empty());
    assert_eq!(bundled["professions"], from_folder["professions"]);
    // The correlation with the statistics is part of the result.
    let rho = bundled["correlation"]["spearman"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&rho), "{rho}");
    assert_eq!(
        bundled["correlation"]["professions"].as_u64(),
        Some(bundled["professions"].as_array().unwrap().len() as u64)
    );
    // The second bundled model by its id; a folder of that name would win.
    let brown = run(
        &out.path().join("c.json"),
        Some(std::path::Path::new("brown-bert")),
    );
    assert_eq!(brown["model"], "brown-bert (bundled)");
    let brown_folder = fixture_model(crate::common::BROWN_BERT);
    let brown_from_folder = run(&out.path().join("d.json"), Some(&brown_folder));
    assert_eq!(brown["professions"], brown_from_folder["professions"]);
    assert_ne!(brown["professions"], bundled["professions"]);
}

/// The command the page offers for repeating a run (Share & export) gives `walf tune` the
/// settings the page's run had: the trainer's whole configuration is the same.
#[test]
fn the_pages_walf_command_repeats_its_run() {
    use walf_lab::bias::Target;
    use walf_lab::protocol::TuneSettings;
    use walf_lab::share::SharedResult;
    use walf_lab::view::{shared_tuning, walf_commands};

    let mut settings = TuneSettings::classroom(Target::RealWorld);
    settings.max_epochs = 1;
    settings.batch_size = 40;
    settings.lr = 3.5e-5;
    // the page sets these too now: the link and the command carry them
    settings.weight_decay = 0.02;
    settings.seed = 7;
    settings.min_delta = Some(5e-4);
    let result = SharedResult {
        model: "some/hub-model".into(),
        split: "test".into(),
        professions: Vec::new(),
        tuning: Some(shared_tuning(&settings, 1, Vec::new())),
        app_version: None,
        edited_benchmark: false,
        model_fingerprint: None,
        compared_with: None,
    };
    let lines = walf_commands(&result);
    let tune = lines
        .iter()
        .find(|l| l.starts_with("walf tune "))
        .expect("a tune command");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("tuned");
    let model = fixture_model("bert");
    let mut args: Vec<String> = tune.split_whitespace().skip(1).map(String::from).collect();
    for (flag, value) in [
        ("--model", model.to_str().unwrap()),
        ("--out", dir.to_str().unwrap()),
    ] {
        let i = args.iter().position(|a| a == flag).expect(flag) + 1;
        args[i] = value.to_string();
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = walf(&args);
    assert!(o.status.success(), "{tune}: {}", stderr(&o));
    let log = std::fs::read_to_string(dir.join("training.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["config"],
        serde_json::to_value(settings.walf_config()).unwrap(),
        "{tune}"
    );
    // dropout is the model's, not the trainer's: the command turns it off as the run had it
    assert!(tune.contains(" --no-dropout"), "{tune}");
    for option in [" --weight-decay 0.02", " --seed 7", " --min-delta 0.0005"] {
        assert!(tune.contains(option), "{tune}");
    }
}
