#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use walf_lab::engine::{LanguageModel, ModelFiles};

/// The default bundled model, checked against the reference like the fixtures.
pub const BUNDLED: &str = "minilm-brown";
/// The second bundled model, a model of 1961 English.
pub const BROWN_BERT: &str = "brown-bert";

pub fn fixture_model(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if name == BUNDLED || name == BROWN_BERT {
        return root.join("public/models").join(name);
    }
    root.join("tests/fixtures/models").join(name)
}

pub fn read_model_files(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    walf_lab::folder::read_model_folder(dir).unwrap_or_else(|e| panic!("{e}"))
}

pub fn load_bytes(
    config: &[u8],
    tokenizer: &[u8],
    weights: &[u8],
    device: &Device,
) -> walf_lab::Result<LanguageModel> {
    LanguageModel::load(
        ModelFiles {
            config,
            tokenizer,
            weights,
            weights_name: "model.safetensors",
        },
        device,
    )
}

pub fn load(name: &str, device: &Device) -> LanguageModel {
    let (c, t, w) = read_model_files(&fixture_model(name));
    load_bytes(&c, &t, &w, device).unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// A model to train: on the CPU's autodiff device, dropout off (deterministic, as the
/// references).
pub fn trainable(name: &str) -> LanguageModel {
    let mut lm = load(name, &walf_lab::device::cpu().autodiff());
    lm.model.set_dropout(0.0, 0.0);
    lm
}

pub fn expected(name: &str) -> serde_json::Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/expected/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("expected values are JSON")
}

/// The CPU once more, with a host's matrix-product kernel set (the plain reference one): the
/// forward pass the browser's worker runs, on packed weights and unpadded sentences.
pub const HOST_KERNEL: &str = "cpu with a host kernel";

/// The devices to check, with the tolerance on probabilities and KL for each: the CPU always,
/// burn's forward pass and the host-kernel one ([`HOST_KERNEL`]; call [`enter`] first); wgpu
/// where a Vulkan (or other) adapter exists, with the looser GPU tolerance.
pub fn devices() -> Vec<(&'static str, Device, f64)> {
    let mut devices = vec![
        ("cpu", walf_lab::device::cpu(), 1e-5),
        (HOST_KERNEL, walf_lab::device::cpu(), 1e-5),
    ];
    match walf_lab::device::wgpu() {
        Ok(device) => devices.push(("wgpu", device, 1e-4)),
        Err(e) => eprintln!("wgpu not checked: {e}"),
    }
    devices
}

pub fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Sets this thread up for `backend` from [`devices`]: the host kernel for [`HOST_KERNEL`],
/// burn's own products otherwise.
pub fn enter(backend: &str) {
    use walf_lab::model::product::{ProductKernel, reference_kernel, set_product_kernel};
    set_product_kernel((backend == HOST_KERNEL).then_some(reference_kernel as ProductKernel));
}

/// The bundled benchmark cut down for quick epochs: the first `train` train professions of each
/// group, and the valid ones among the first `valid_rows` rows.
pub fn few_professions(train: usize, valid_rows: usize) -> walf_lab::data::Benchmark {
    let mut kept = std::collections::HashMap::new();
    let rows: Vec<&str> = walf_lab::data::PROFESSIONS_TSV
        .lines()
        .enumerate()
        .filter(|&(i, line)| {
            let cols: Vec<&str> = line.split('\t').collect();
            let n = kept.entry((cols[5], cols[6])).or_insert(0);
            *n += 1;
            i == 0 || (cols[6] == "train" && *n <= train) || (cols[6] == "valid" && i < valid_rows)
        })
        .map(|(_, line)| line)
        .collect();
    walf_lab::data::Benchmark::from_tsv(
        &rows.join("\n"),
        walf_lab::data::TEMPLATES_TSV,
        walf_lab::data::PHRASES_TSV,
    )
    .unwrap()
}
