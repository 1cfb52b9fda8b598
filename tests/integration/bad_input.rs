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
