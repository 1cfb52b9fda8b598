//! config.json from anywhere: parsing, validation and the memory budget never panic, and an
//! accepted configuration is one the model code can be built from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walf_lab::config::{MemoryBudget, ModelConfig};

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = ModelConfig::from_json(data) {
        assert!(config.num_attention_heads > 0);
        assert_eq!(config.hidden_size % config.num_attention_heads, 0);
        assert!(config.pad_token_id < config.vocab_size);
        assert!(config.parameter_count() > 0.0);
        let _ = config.check_memory(MemoryBudget::default());
        let _ = config.max_sequence_length();
    }
});
