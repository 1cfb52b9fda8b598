//! Training a masked LM from scratch: the bundled model's recipe (`walf pretrain`).

pub mod corpus;
pub mod encoder;
pub mod trainer;
pub mod vocab;

pub use corpus::{Document, hold_out};
pub use trainer::{
    MaskedBatch, MaskingVocab, ParamIds, PretrainConfig, Pretrainer, learning_rate, mask_batch,
    pack_sequences, unigram_baseline,
};
pub use vocab::{check_vocabulary, train_vocabulary};
