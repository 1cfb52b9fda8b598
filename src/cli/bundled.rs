//! The bundled model (public/models/brown-bert, see its MODEL_CARD.md), compiled into the `walf`
//! binary so that every command works with no download and no path.

use walf_lab::engine::ModelFiles;

pub const NAME: &str = "brown-bert (bundled)";

const CONFIG: &[u8] = include_bytes!("../../public/models/brown-bert/config.json");
const TOKENIZER: &[u8] = include_bytes!("../../public/models/brown-bert/tokenizer.json");
const WEIGHTS: &[u8] = include_bytes!("../../public/models/brown-bert/model.safetensors");

pub fn files() -> ModelFiles<'static> {
    ModelFiles {
        config: CONFIG,
        tokenizer: TOKENIZER,
        weights: WEIGHTS,
        weights_name: "bundled model.safetensors",
    }
}
