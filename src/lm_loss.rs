//! Masked-LM loss on held-out text, as the paper checks that fine-tuning preserves language
//! modelling: each passage lowercased, max(1, ⌊15%⌋) of its non-special tokens masked at random.
//! Two rules for what is scored (see [`LossRule`]): ours, the masked tokens only; or the paper's
//! `evaluate_mlm_loss.py`, which scores every token.

use serde::{Deserialize, Serialize};

#[cfg(feature = "engine")]
mod compute;

/// What the loss averages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossRule {
    /// Cross-entropy of the masked tokens, averaged over every masked token of all passages: the
    /// usual masked-LM loss. The first and last tokens (the model's own markers) are never masked.
    #[default]
    MaskedTokens,
    /// The paper's `evaluate_mlm_loss.py`: the labels stay on every non-special token, masked or
    /// not, so a passage's loss is the mean cross-entropy of all its tokens (most of which the
    /// model sees); passages are then averaged weighted by their masked count. Special means any
    /// special token of the tokenizer, the unknown token included (transformers'
    /// `get_special_tokens_mask`), so an unknown token is neither masked nor scored.
    Paper,
}

/// How the loss is taken.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LmLossSettings {
    pub mask_prob: f64,
    pub seed: u64,
    /// Passages per forward pass.
    pub batch_size: usize,
    pub rule: LossRule,
}

impl Default for LmLossSettings {
    fn default() -> Self {
        Self {
            mask_prob: 0.15,
            seed: 42,
            batch_size: 16,
            rule: LossRule::MaskedTokens,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LmLoss {
    pub passages: usize,
    /// Non-special tokens of all passages.
    pub tokens: usize,
    pub masked_tokens: usize,
    /// Mean cross-entropy (nats) by `rule`.
    pub loss: f64,
    pub rule: LossRule,
}

/// Passages of a text file: one per line, or the `text` column of a TSV with a header.
pub fn passages(file_text: &str) -> Vec<String> {
    let mut lines = file_text.lines();
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let header: Vec<&str> = first.split('\t').collect();
    match header.iter().position(|h| h.trim() == "text") {
        Some(column) if header.len() > 1 || first.trim() == "text" => lines
            .filter_map(|l| l.split('\t').nth(column))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => file_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    }
}
