//! Native only: a Hugging Face model folder on disk (config.json, tokenizer.json,
//! model.safetensors), with errors that name the path.

use std::path::Path;

use burn::tensor::Device;

use crate::config::MemoryBudget;
use crate::engine::{LanguageModel, ModelFiles};
use crate::error::{Error, Result};

/// The three files' bytes.
pub fn read_model_folder(dir: &Path) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    if !dir.is_dir() {
        return Err(Error::invalid_file(
            dir.display().to_string(),
            "is not a folder (expected config.json, tokenizer.json, model.safetensors)",
        ));
    }
    if !dir.join("model.safetensors").exists() && dir.join("pytorch_model.bin").exists() {
        return Err(Error::invalid_file(
            dir.display().to_string(),
            "holds only pytorch_model.bin; convert it to model.safetensors (transformers: \
             model.save_pretrained(dir, safe_serialization=True))",
        ));
    }
    let read = |name: &str| {
        let path = dir.join(name);
        // Refused before reading: the file's size is known without allocating for it.
        if let Ok(meta) = std::fs::metadata(&path) {
            MemoryBudget::default().check_file(&path.display().to_string(), meta.len())?;
        }
        std::fs::read(&path).map_err(|e| {
            Error::invalid_file(path.display().to_string(), format!("cannot read ({e})"))
        })
    };
    Ok((
        read("config.json")?,
        read("tokenizer.json")?,
        read("model.safetensors")?,
    ))
}

pub fn load_model_folder(dir: &Path, device: &Device) -> Result<LanguageModel> {
    let (config, tokenizer, weights) = read_model_folder(dir)?;
    let name = dir.join("model.safetensors").display().to_string();
    LanguageModel::load(
        ModelFiles {
            config: &config,
            tokenizer: &tokenizer,
            weights: &weights,
            weights_name: &name,
        },
        device,
    )
}
