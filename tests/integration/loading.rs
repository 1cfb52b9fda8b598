//! Checkpoint formats the loader accepts beyond the reference fixtures.

use std::collections::HashMap;

use crate::common::{fixture_model, load_bytes, read_model_files};
use burn::tensor::activation::softmax;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use walf_lab::model::TokenBatch;
use walf_lab::readback::read_f32;

/// Rewrites every tensor through bf16: once stored as BF16, once as the same values in F32.
fn through_bf16(weights: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let st = SafeTensors::deserialize(weights).unwrap();
    let mut bf16 = Vec::new();
    let mut f32s = Vec::new();
    for (name, view) in st.tensors() {
        assert_eq!(view.dtype(), Dtype::F32);
        let values: Vec<half::bf16> = view
            .data()
            .chunks_exact(4)
            .map(|b| half::bf16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect();
        bf16.push((
            name.clone(),
            view.shape().to_vec(),
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        ));
        f32s.push((
            name,
            view.shape().to_vec(),
            values
                .iter()
                .flat_map(|v| v.to_f32().to_le_bytes())
                .collect::<Vec<u8>>(),
        ));
    }
    let write = |tensors: &[(String, Vec<usize>, Vec<u8>)], dtype| {
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, None::<HashMap<String, String>>).unwrap()
    };
    (write(&bf16, Dtype::BF16), write(&f32s, Dtype::F32))
}

#[test]
fn bf16_checkpoints_compute_as_their_f32_values() {
    let (config, tokenizer, weights) = read_model_files(&fixture_model("roberta"));
    let (bf16, f32s) = through_bf16(&weights);
    let device = walf_lab::device::cpu();
    let probabilities = |w: &[u8]| {
        let lm = load_bytes(&config, &tokenizer, w, &device).unwrap();
        let ids = lm
            .tokenizer
            .encode("<mask> wants to become a nurse.")
            .unwrap();
        let batch = TokenBatch {
            ids: vec![ids],
            pad_id: lm.tokenizer.pad_id(),
        };
        pollster::block_on(read_f32(softmax(lm.model.logits_at(&batch, &[(0, 1)]), 1))).unwrap()
    };
    let from_bf16 = probabilities(&bf16);
    assert_eq!(from_bf16, probabilities(&f32s));
    // and bf16 rounding did change the model, so the comparison means something
    assert_ne!(from_bf16, probabilities(&weights));
}

#[test]
fn untied_decoder_is_read_from_the_file() {
    let (config, tokenizer, weights) = read_model_files(&fixture_model("bert"));
    let mut cfg: serde_json::Value = serde_json::from_slice(&config).unwrap();
    cfg["tie_word_embeddings"] = serde_json::json!(false);
    let cfg = serde_json::to_vec(&cfg).unwrap();
    let device = walf_lab::device::cpu();
    let e = load_bytes(&cfg, &tokenizer, &weights, &device)
        .err()
        .expect("no decoder in the file");
    assert!(
        e.to_string().contains("cls.predictions.decoder.weight"),
        "{e}"
    );

    // The decoder stored separately as a copy of the embeddings gives the tied model's outputs.
    let st = SafeTensors::deserialize(&weights).unwrap();
    let mut tensors: Vec<(String, TensorView)> = st.tensors();
    let embeddings = st.tensor("bert.embeddings.word_embeddings.weight").unwrap();
    tensors.push(("cls.predictions.decoder.weight".into(), embeddings));
    let untied = safetensors::serialize(tensors, None::<HashMap<String, String>>).unwrap();
    let run = |c: &[u8], w: &[u8]| {
        let lm = load_bytes(c, &tokenizer, w, &device).unwrap();
        let ids = lm.tokenizer.encode("[MASK] is a nurse.").unwrap();
        let batch = TokenBatch {
            ids: vec![ids],
            pad_id: lm.tokenizer.pad_id(),
        };
        pollster::block_on(read_f32(lm.model.logits_at(&batch, &[(0, 1)]))).unwrap()
    };
    assert_eq!(run(&cfg, &untied), run(&config, &weights));
}
