//! Every kind of bad model input gets a clear error that names the file and the problem, and
//! nothing panics.

use std::collections::HashMap;

use crate::common::{fixture_model, load_bytes, read_model_files};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use walf_lab::Error;
use walf_lab::data::{Benchmark, Gender, GenderedPhrase, Split};
use walf_lab::measure::{MeasureInput, ProbeSettings};

fn bert() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    read_model_files(&fixture_model("bert"))
}

fn load_err(config: &[u8], tokenizer: &[u8], weights: &[u8]) -> Error {
    match load_bytes(config, tokenizer, weights, &walf_lab::device::cpu()) {
        Ok(_) => panic!("bad input was accepted"),
        Err(e) => e,
    }
}

/// The fixture's tensors, with `edit` applied, written back as safetensors.
fn rewrite(weights: &[u8], edit: impl Fn(&str, Vec<usize>) -> Option<Vec<usize>>) -> Vec<u8> {
    let st = SafeTensors::deserialize(weights).unwrap();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        if let Some(shape) = edit(&name, view.shape().to_vec()) {
            let n: usize = shape.iter().product::<usize>() * view.dtype().bitsize() / 8;
            let mut data = view.data().to_vec();
            data.resize(n, 0);
            tensors.push((name, view.dtype(), shape, data));
        }
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None::<HashMap<String, String>>).unwrap()
}

#[test]
fn truncated_safetensors_names_the_file() {
    let (c, t, w) = bert();
    let e = load_err(&c, &t, &w[..w.len() / 2]);
    assert!(matches!(e, Error::InvalidFile { .. }), "{e:?}");
    assert!(e.to_string().contains("model.safetensors"), "{e}");
}

#[test]
fn corrupt_safetensors_header_is_refused() {
    let (c, t, mut w) = bert();
    for b in w.iter_mut().skip(8).take(16) {
        *b = 0xff;
    }
    let e = load_err(&c, &t, &w);
    assert!(
        e.to_string().contains("not a valid safetensors file"),
        "{e}"
    );
    let e = load_err(&c, &t, b"");
    assert!(e.to_string().contains("model.safetensors"), "{e}");
}

#[test]
fn missing_tensor_is_named() {
    let (c, t, w) = bert();
    let gone = "bert.encoder.layer.1.attention.self.query.weight";
    let w = rewrite(&w, |name, shape| (name != gone).then_some(shape));
    let e = load_err(&c, &t, &w);
    assert!(matches!(e, Error::MissingTensor { .. }), "{e:?}");
    assert!(e.to_string().contains(gone), "{e}");
}

#[test]
fn wrong_shape_is_named_with_both_shapes() {
    let (c, t, w) = bert();
    let name = "bert.encoder.layer.0.intermediate.dense.weight";
    let w = rewrite(&w, |n, mut shape| {
        if n == name {
            shape[0] += 1;
        }
        Some(shape)
    });
    let e = load_err(&c, &t, &w);
    assert!(matches!(e, Error::TensorShape { .. }), "{e:?}");
    assert!(e.to_string().contains(name), "{e}");
}

#[test]
fn unsupported_architecture_is_named() {
    let (_, t, w) = bert();
    let c = br#"{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 10}"#;
    let e = load_err(c, &t, &w);
    assert!(e.to_string().contains("GPT2LMHeadModel"), "{e}");
    let c = br#"{"model_type": "t5", "vocab_size": 10}"#;
    assert!(load_err(c, &t, &w).to_string().contains("t5"));
}

#[test]
fn malformed_config_is_reported() {
    let (_, t, w) = bert();
    let e = load_err(b"{not json", &t, &w);
    assert!(e.to_string().starts_with("config.json"), "{e}");
    let e = load_err(br#"{"architectures": ["BertForMaskedLM"]}"#, &t, &w);
    assert!(e.to_string().contains("vocab_size"), "{e}");
}

#[test]
fn tokenizer_and_config_from_different_models_are_refused() {
    let (c, t, w) = bert();
    let mut config: serde_json::Value = serde_json::from_slice(&c).unwrap();
    config["vocab_size"] = serde_json::json!(20);
    let e = load_err(&serde_json::to_vec(&config).unwrap(), &t, &w);
    assert!(matches!(e, Error::Tokenizer(_)), "{e:?}");
    assert!(e.to_string().contains("vocab_size"), "{e}");
}

#[test]
fn empty_or_malformed_tokenizer_is_reported() {
    let (c, _, w) = bert();
    for bad in [&b""[..], b"   ", b"{\"model\": ", b"{}"] {
        let e = load_err(&c, bad, &w);
        assert!(e.to_string().starts_with("tokenizer.json"), "{e}");
    }
}

#[test]
fn phrases_the_tokenizer_cannot_spell_are_named() {
    let lm = crate::common::load("bert", &walf_lab::device::cpu());
    let bench = Benchmark::bundled();
    let professions = bench.professions_of(Split::Test);
    let templates = bench.templates_of(Split::Test);
    let mut phrases = bench.phrases.clone();
    phrases.push(GenderedPhrase {
        phrase: "my 🦄".into(),
        gender: Gender::Female,
    });
    let input = MeasureInput {
        professions: &professions,
        templates: &templates,
        phrases: &phrases,
    };
    let e = pollster::block_on(lm.probe(input, ProbeSettings::default(), &mut |_| {})).unwrap_err();
    assert!(matches!(e, Error::UnknownTokens { .. }), "{e:?}");
    assert!(e.to_string().contains("my 🦄"), "{e}");
}

#[test]
fn fill_mask_without_a_mask_says_how_to_write_one() {
    let lm = crate::common::load("bert", &walf_lab::device::cpu());
    let e = pollster::block_on(lm.fill_mask("no mask here.", 5)).unwrap_err();
    assert!(e.to_string().contains("[MASK]"), "{e}");
}

/// `config` with `field` set to `value`.
fn config_with(config: &[u8], field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(config).unwrap();
    json[field] = value;
    serde_json::to_vec(&json).unwrap()
}

#[test]
fn zero_or_absurd_sizes_in_the_config_are_refused_before_allocation() {
    let (c, t, w) = bert();
    for field in [
        "num_attention_heads",
        "hidden_size",
        "vocab_size",
        "num_hidden_layers",
    ] {
        let e = load_err(&config_with(&c, field, 0.into()), &t, &w);
        assert!(
            e.to_string()
                .contains(&format!("`{field}` must be positive")),
            "{e}"
        );
    }
    let e = load_err(&config_with(&c, "layer_norm_eps", (-1.0).into()), &t, &w);
    assert!(e.to_string().contains("`layer_norm_eps` -1"), "{e}");
    // ten billion rows of embeddings: refused by the memory budget, not by the allocator
    let huge = config_with(&c, "vocab_size", 10_000_000_000u64.into());
    let e = load_err(&huge, &t, &w);
    let message = e.to_string();
    assert!(message.starts_with("config.json"), "{message}");
    assert!(
        message.contains("more than the memory budget of 8.6 GB"),
        "{message}"
    );
    // sizes whose product overflows any integer are refused the same way
    let overflow = config_with(
        &config_with(&c, "hidden_size", u64::MAX.into()),
        "num_attention_heads",
        1.into(),
    );
    assert!(
        load_err(&overflow, &t, &w)
            .to_string()
            .contains("memory budget")
    );
}

#[test]
fn a_smaller_budget_refuses_the_model_and_its_file() {
    use walf_lab::config::MemoryBudget;
    use walf_lab::engine::{LanguageModel, ModelFiles};
    let (c, t, w) = bert();
    let device = walf_lab::device::cpu();
    let load = |budget: u64| {
        LanguageModel::load_within(
            ModelFiles {
                config: &c,
                tokenizer: &t,
                weights: &w,
                weights_name: "model.safetensors",
            },
            &device,
            MemoryBudget {
                model_bytes: budget,
            },
        )
    };
    let config = walf_lab::config::ModelConfig::from_json(&c).unwrap();
    let needed = (config.parameter_count() * 4.0) as u64;
    assert!(
        load(needed.max(w.len() as u64)).is_ok(),
        "exactly enough is enough"
    );
    let e = load(needed - 1).err().unwrap().to_string();
    assert!(
        e.contains("would need") && e.contains("memory budget"),
        "{e}"
    );
    // the file (f32 tensors and a header) is larger than the weights: a budget between the two
    // passes the configuration and refuses the file by its size
    let file = w.len() as u64;
    assert!(needed < file);
    let e = load(file - 1).err().unwrap().to_string();
    assert!(e.starts_with("model.safetensors: is "), "{e}");
    assert!(e.contains("more than the memory budget"), "{e}");
}

/// The parameter count behind the budget is the real one: the fixture file's tensors, counted.
#[test]
fn the_parameter_count_matches_the_checkpoints() {
    for name in ["bert", "roberta", "distilbert"] {
        let (c, _, w) = read_model_files(&fixture_model(name));
        let config = walf_lab::config::ModelConfig::from_json(&c).unwrap();
        let stored: usize = SafeTensors::deserialize(&w)
            .unwrap()
            .tensors()
            .iter()
            .filter(|(n, _)| !n.ends_with("position_ids"))
            .map(|(_, v)| v.shape().iter().product::<usize>())
            .sum();
        assert_eq!(config.parameter_count() as usize, stored, "{name}");
    }
}

#[test]
fn a_model_file_beyond_the_budget_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (c, t, _) = bert();
    std::fs::write(dir.path().join("config.json"), &c).unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), &t).unwrap();
    // sparse: nine gigabytes declared, none of them written or read
    let file = std::fs::File::create(dir.path().join("model.safetensors")).unwrap();
    file.set_len(9 << 30).unwrap();
    let e = walf_lab::folder::read_model_folder(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("more than the memory budget"),
        "{e}"
    );
}

/// Inputs that once crashed a fuzz target (fuzz/regressions/): each is refused with a message.
#[test]
fn fuzz_regressions_are_refused_without_a_panic() {
    let (c, _, _) = bert();
    let config = walf_lab::config::ModelConfig::from_json(&c).unwrap();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/tokenizer_json");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let e = walf_lab::tokenizer::MaskTokenizer::from_json(&bytes, &config)
            .err()
            .expect("a broken tokenizer.json is refused");
        assert!(e.to_string().starts_with("tokenizer.json: "), "{e}");
        seen += 1;
    }
    assert!(seen > 0);
}
