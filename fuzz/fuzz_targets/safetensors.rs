//! model.safetensors from anywhere, with the tiny BERT's config and tokenizer: header, tensor
//! table, dtypes, shapes, offsets and sizes are checked before anything is built, and nothing
//! panics. An accepted file gives a model that answers a fill-mask query.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walf_lab::engine::{LanguageModel, ModelFiles};

const CONFIG: &[u8] = include_bytes!("../../tests/fixtures/models/bert/config.json");
const TOKENIZER: &[u8] = include_bytes!("../../tests/fixtures/models/bert/tokenizer.json");

fuzz_target!(|data: &[u8]| {
    let device = walf_lab::device::cpu();
    let files = ModelFiles {
        config: CONFIG,
        tokenizer: TOKENIZER,
        weights: data,
        weights_name: "model.safetensors",
    };
    if let Ok(lm) = LanguageModel::load(files, &device) {
        let text = format!("{} is a nurse.", lm.tokenizer.mask_token());
        let _ = pollster::block_on(lm.fill_mask(&text, 3));
    }
});
