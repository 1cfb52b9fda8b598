//! The classroom preset: settings under which a lesson sees WALF move a small model towards a
//! target within minutes on a laptop's CPU. Chosen on the train and valid splits only, by the
//! validation KL of short runs of minilm-brown (its MODEL_CARD.md lists every candidate); the
//! test split was read once, for the report. Plain numbers, like [`super::paper`], because the
//! page offers them without linking the engine.

/// Dropout off: at the starting weights a batch's KL in train mode is dominated by the noise
/// dropout adds, and runs become repeatable.
pub const DROPOUT: bool = false;
/// One masked position drawn per filled-in sentence for the masked-LM term (the paper masks
/// every token in turn), an unbiased estimate of the same loss at a seventh of the cost (BENCHMARKS.md).
pub const MLM_POSITIONS: usize = 1;
/// At most this many epochs: about a quarter of an hour for minilm-brown's real-world target on
/// two cores. Patience still stops a run earlier.
pub const MAX_EPOCHS: usize = 8;

/// What the preset changes from the paper's settings, in words for the page and the CLI.
pub fn changes() -> [String; 3] {
    [
        "dropout off (the paper trains with the model's dropout)".into(),
        format!(
            "the masked-LM term estimated from {MLM_POSITIONS} masked token per sentence (the paper masks every token in turn)"
        ),
        format!("at most {MAX_EPOCHS} epochs (the paper trains until patience stops it)"),
    ]
}
