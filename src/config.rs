//! `config.json` of a Hugging Face masked LM, read into one description shared by the three
//! architectures. Field names follow the checkpoint's own config so that a reader of
//! `config.json` recognises them.

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Bert,
    DistilBert,
    Roberta,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Bert => "BertForMaskedLM",
            Architecture::DistilBert => "DistilBertForMaskedLM",
            Architecture::Roberta => "RobertaForMaskedLM",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The exact, erf-based GELU (`"gelu"` in transformers).
    Gelu,
    /// The tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
    Relu,
}

/// What the engine needs of a checkpoint's configuration, whatever the architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub max_position_embeddings: usize,
    /// 0 for DistilBERT, which has no token-type embeddings.
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: usize,
    pub tie_word_embeddings: bool,
    /// Dropout on hidden states while training (`hidden_dropout_prob`, DistilBERT's `dropout`).
    pub hidden_dropout: f64,
    /// Dropout on attention weights while training.
    pub attention_dropout: f64,
}

/// How much memory a model may take. The engine refuses a model (its configuration, its weights'
/// file) beyond this before allocating for it, so that a hostile or mistaken file ends in a
/// message instead of an out-of-memory crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes of the model's weights in f32; a weights file may not be larger either.
    pub model_bytes: u64,
}

impl Default for MemoryBudget {
    /// In the browser a wasm32 page has 4 GiB at most, and the CPU backend holds the file's
    /// bytes and the weights together: 1.5 GiB (roberta-large does not fit, bert-large does).
    /// Natively 8 GiB (two billion parameters).
    fn default() -> Self {
        let model_bytes = if cfg!(target_arch = "wasm32") {
            3 << 29
        } else {
            8 << 30
        };
        Self { model_bytes }
    }
}

impl MemoryBudget {
    /// Refuses a file of `len` bytes, named `file`, before it is read.
    pub fn check_file(self, file: &str, len: u64) -> Result<()> {
        if len > self.model_bytes {
            return Err(Error::invalid_file(
                file,
                format!(
                    "is {}, more than the memory budget of {}",
                    gigabytes(len as f64),
                    gigabytes(self.model_bytes as f64)
                ),
            ));
        }
        Ok(())
    }
}

fn gigabytes(bytes: f64) -> String {
    if bytes >= 1e9 {
        format!("{:.1} GB", bytes / 1e9)
    } else {
        format!("{:.0} MB", bytes / 1e6)
    }
}

/// The union of the fields of BERT, RoBERTa and DistilBERT configs, as written in config.json.
#[derive(Debug, Deserialize)]
struct RawConfig {
    architectures: Option<Vec<String>>,
    model_type: Option<String>,
    vocab_size: Option<usize>,
    // BERT, RoBERTa
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    intermediate_size: Option<usize>,
    hidden_act: Option<String>,
    max_position_embeddings: Option<usize>,
    type_vocab_size: Option<usize>,
    layer_norm_eps: Option<f64>,
    pad_token_id: Option<usize>,
    tie_word_embeddings: Option<bool>,
    hidden_dropout_prob: Option<f64>,
    attention_probs_dropout_prob: Option<f64>,
    // DistilBERT
    dim: Option<usize>,
    n_layers: Option<usize>,
    n_heads: Option<usize>,
    hidden_dim: Option<usize>,
    activation: Option<String>,
    dropout: Option<f64>,
    attention_dropout: Option<f64>,
}

const FILE: &str = "config.json";

fn required(value: Option<usize>, field: &str) -> Result<usize> {
    match value {
        Some(0) => Err(Error::invalid_file(
            FILE,
            format!("`{field}` must be positive"),
        )),
        Some(v) => Ok(v),
        None => Err(Error::invalid_file(
            FILE,
            format!("missing field `{field}`"),
        )),
    }
}

/// A dropout probability; 0.1, the value of every released BERT, when absent.
fn probability(value: Option<f64>, field: &str) -> Result<f64> {
    match value {
        None => Ok(0.1),
        Some(p) if (0.0..1.0).contains(&p) => Ok(p),
        Some(p) => Err(Error::invalid_file(
            FILE,
            format!("`{field}` {p} is not in [0, 1)"),
        )),
    }
}

fn activation(name: Option<&str>) -> Result<Activation> {
    match name.unwrap_or("gelu") {
        "gelu" => Ok(Activation::Gelu),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
        "relu" => Ok(Activation::Relu),
        other => Err(Error::invalid_file(
            FILE,
            format!("unsupported activation `{other}`"),
        )),
    }
}

fn architecture(raw: &RawConfig) -> Result<Architecture> {
    if let Some(names) = &raw.architectures {
        let name = names.first().map(String::as_str).unwrap_or("");
        return match name {
            "BertForMaskedLM" | "BertForPreTraining" => Ok(Architecture::Bert),
            "DistilBertForMaskedLM" => Ok(Architecture::DistilBert),
            "RobertaForMaskedLM" => Ok(Architecture::Roberta),
            other => Err(Error::UnsupportedArchitecture {
                found: other.to_string(),
            }),
        };
    }
    match raw.model_type.as_deref() {
        Some("bert") => Ok(Architecture::Bert),
        Some("distilbert") => Ok(Architecture::DistilBert),
        Some("roberta") => Ok(Architecture::Roberta),
        Some(other) => Err(Error::UnsupportedArchitecture {
            found: other.to_string(),
        }),
        None => Err(Error::invalid_file(
            FILE,
            "neither `architectures` nor `model_type` is given",
        )),
    }
}

impl ModelConfig {
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let raw: RawConfig = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid_file(FILE, format!("not valid JSON: {e}")))?;
        let architecture = architecture(&raw)?;
        let vocab_size = required(raw.vocab_size, "vocab_size")?;
        let config = match architecture {
            Architecture::Bert | Architecture::Roberta => ModelConfig {
                architecture,
                vocab_size,
                hidden_size: required(raw.hidden_size, "hidden_size")?,
                num_hidden_layers: required(raw.num_hidden_layers, "num_hidden_layers")?,
                num_attention_heads: required(raw.num_attention_heads, "num_attention_heads")?,
                intermediate_size: required(raw.intermediate_size, "intermediate_size")?,
                hidden_act: activation(raw.hidden_act.as_deref())?,
                max_position_embeddings: required(
                    raw.max_position_embeddings,
                    "max_position_embeddings",
                )?,
                type_vocab_size: raw.type_vocab_size.unwrap_or(2),
                layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-12),
                pad_token_id: raw.pad_token_id.unwrap_or(match architecture {
                    Architecture::Roberta => 1,
                    _ => 0,
                }),
                tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(true),
                hidden_dropout: probability(raw.hidden_dropout_prob, "hidden_dropout_prob")?,
                attention_dropout: probability(
                    raw.attention_probs_dropout_prob,
                    "attention_probs_dropout_prob",
                )?,
            },
            Architecture::DistilBert => ModelConfig {
                architecture,
                vocab_size,
                hidden_size: required(raw.dim, "dim")?,
                num_hidden_layers: required(raw.n_layers, "n_layers")?,
                num_attention_heads: required(raw.n_heads, "n_heads")?,
                intermediate_size: required(raw.hidden_dim, "hidden_dim")?,
                hidden_act: activation(raw.activation.as_deref())?,
                max_position_embeddings: required(
                    raw.max_position_embeddings,
                    "max_position_embeddings",
                )?,
                type_vocab_size: 0,
                // DistilBERT's modelling code fixes this value; its config does not carry it.
                layer_norm_eps: 1e-12,
                pad_token_id: raw.pad_token_id.unwrap_or(0),
                tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(true),
                hidden_dropout: probability(raw.dropout, "dropout")?,
                attention_dropout: probability(raw.attention_dropout, "attention_dropout")?,
            },
        };
        if !(config.layer_norm_eps.is_finite() && config.layer_norm_eps >= 0.0) {
            return Err(Error::invalid_file(
                FILE,
                format!(
                    "`layer_norm_eps` {} is not a small positive number",
                    config.layer_norm_eps
                ),
            ));
        }
        if config.hidden_size % config.num_attention_heads != 0 {
            return Err(Error::invalid_file(
                FILE,
                format!(
                    "hidden size {} is not a multiple of the {} attention heads",
                    config.hidden_size, config.num_attention_heads
                ),
            ));
        }
        if config.pad_token_id >= config.vocab_size {
            return Err(Error::invalid_file(
                FILE,
                "pad_token_id is outside the vocabulary",
            ));
        }
        Ok(config)
    }

    /// The number of parameters the configuration implies, counted in f64 so that absurd sizes
    /// give a large number rather than an overflow.
    pub fn parameter_count(&self) -> f64 {
        let h = self.hidden_size as f64;
        let i = self.intermediate_size as f64;
        let v = self.vocab_size as f64;
        let embeddings =
            (v + self.max_position_embeddings as f64 + self.type_vocab_size as f64) * h + 2.0 * h;
        // attention (4 projections with biases), feed-forward, two LayerNorms
        let layer = 4.0 * (h * h + h) + 2.0 * h * i + i + h + 4.0 * h;
        // transform, its LayerNorm, the decoder's bias (and weights when untied)
        let head = h * h + 3.0 * h + v + if self.tie_word_embeddings { 0.0 } else { v * h };
        embeddings + self.num_hidden_layers as f64 * layer + head
    }

    /// Refuses a model whose f32 weights would not fit in `budget` bytes, before anything is
    /// allocated for it.
    pub fn check_memory(&self, budget: MemoryBudget) -> Result<()> {
        let bytes = self.parameter_count() * 4.0;
        if bytes > budget.model_bytes as f64 {
            return Err(Error::invalid_file(
                FILE,
                format!(
                    "the model would need {} for its weights in f32 ({:.0} million parameters), \
                     more than the memory budget of {}",
                    gigabytes(bytes),
                    self.parameter_count() / 1e6,
                    gigabytes(budget.model_bytes as f64)
                ),
            ));
        }
        Ok(())
    }

    /// First position id. RoBERTa numbers positions from `padding_idx + 1`.
    pub fn position_offset(&self) -> usize {
        match self.architecture {
            Architecture::Roberta => self.pad_token_id + 1,
            _ => 0,
        }
    }

    /// Longest input, in tokens, that the position table allows.
    pub fn max_sequence_length(&self) -> usize {
        self.max_position_embeddings
            .saturating_sub(self.position_offset())
    }
}
