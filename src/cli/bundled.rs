//! The bundled models, compiled into the `walf` binary so that every command works with no
//! download and no path: minilm-brown, the default (public/models/minilm-brown), and brown-bert,
//! a model of 1961 English (public/models/brown-bert); each folder's MODEL_CARD.md tells its story.

use walf_lab::engine::ModelFiles;

/// A model compiled into the binary.
pub struct Bundled {
    /// What `--model` takes to choose it, and its folder's name under public/models.
    pub id: &'static str,
    config: &'static [u8],
    tokenizer: &'static [u8],
    weights: &'static [u8],
}

impl Bundled {
    /// How results name it.
    pub fn name(&self) -> String {
        format!("{} (bundled)", self.id)
    }

    pub fn files(&self) -> ModelFiles<'static> {
        ModelFiles {
            config: self.config,
            tokenizer: self.tokenizer,
            weights: self.weights,
            weights_name: "bundled model.safetensors",
        }
    }
}

macro_rules! bundled {
    ($id:literal) => {
        Bundled {
            id: $id,
            config: include_bytes!(concat!("../../public/models/", $id, "/config.json")),
            tokenizer: include_bytes!(concat!("../../public/models/", $id, "/tokenizer.json")),
            weights: include_bytes!(concat!("../../public/models/", $id, "/model.safetensors")),
        }
    };
}

/// The default model first.
pub const MODELS: [Bundled; 2] = [bundled!("minilm-brown"), bundled!("brown-bert")];

pub fn default_model() -> &'static Bundled {
    &MODELS[0]
}

/// The bundled model `--model ID` names, where no folder of that name exists.
pub fn named(id: &std::path::Path) -> Option<&'static Bundled> {
    if id.exists() {
        return None;
    }
    MODELS.iter().find(|m| id.as_os_str() == m.id)
}
