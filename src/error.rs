//! One error type for the engine. Every variant names what the user handed us (a file, a tensor,
//! a phrase) and what is wrong with it, so the message can be shown as it is.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {problem}")]
    InvalidFile { file: String, problem: String },

    #[error("{file}: missing tensor `{tensor}` (expected shape {expected:?})")]
    MissingTensor {
        file: String,
        tensor: String,
        expected: Vec<usize>,
    },

    #[error("{file}: tensor `{tensor}` has shape {found:?}, expected {expected:?}")]
    TensorShape {
        file: String,
        tensor: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },

    #[error("{file}: tensor `{tensor}` has unsupported dtype {dtype} (F32, F16 and BF16 are read)")]
    TensorDtype {
        file: String,
        tensor: String,
        dtype: String,
    },

    #[error(
        "config.json: unsupported model `{found}`; supported: BertForMaskedLM, \
         DistilBertForMaskedLM, RobertaForMaskedLM"
    )]
    UnsupportedArchitecture { found: String },

    #[error("tokenizer.json: {0}")]
    Tokenizer(String),

    #[error("{0}")]
    Input(String),

    #[error("benchmark data {file}: {problem}")]
    Data { file: String, problem: String },

    #[error("the tokenizer has no id for {what}: {items}")]
    UnknownTokens { what: String, items: String },

    #[error("training stopped: {0}")]
    Training(String),

    #[error("backend: {0}")]
    Backend(String),

    /// The device stopped answering (a read-back from the GPU failed): the results so far stand,
    /// and another backend can take over. Only the device itself raises it, so that a failed
    /// file write or a wrong shape is never taken for a lost GPU.
    #[error("the device stopped answering: {0}")]
    DeviceLost(String),
}

impl Error {
    pub fn invalid_file(file: impl Into<String>, problem: impl fmt::Display) -> Self {
        Error::InvalidFile {
            file: file.into(),
            problem: problem.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
