//! tokenizer.json from anywhere, against the tiny BERT's config: loading never panics, and an
//! accepted tokenizer encodes the benchmark's words without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walf_lab::config::ModelConfig;
use walf_lab::tokenizer::MaskTokenizer;

const CONFIG: &[u8] = include_bytes!("../../tests/fixtures/models/bert/config.json");

fuzz_target!(|data: &[u8]| {
    let config = ModelConfig::from_json(CONFIG).expect("the fixture's config");
    if let Ok(tokenizer) = MaskTokenizer::from_json(data, &config) {
        let text = format!("{} is a nurse.", tokenizer.mask_token());
        let _ = tokenizer.encode(&text);
        let _ = tokenizer.word_ids("electrician", false);
        let _ = tokenizer.token(tokenizer.mask_id());
    }
});
