//! The classroom preset: settings under which a lesson sees WALF move a small model towards a
//! target within minutes on a laptop's CPU. Its dropout was chosen on the train and valid splits
//! only, by the validation KL of short runs of minilm-brown beside larger learning rates (its
//! MODEL_CARD.md lists every candidate; the paper's rate stayed), its masked-LM sampling by speed
//! alone; the test split was read for the report only. Plain numbers, like [`super::paper`],
//! because the page offers them without linking the engine.

/// Dropout off: at the starting weights a batch's KL in train mode is dominated by the noise
/// dropout adds, and runs become repeatable.
pub const DROPOUT: bool = false;
/// One masked position drawn per filled-in sentence for the masked-LM term (the paper masks
/// every token in turn), an unbiased estimate of the same loss at a seventh of the cost (BENCHMARKS.md).
pub const MLM_POSITIONS: usize = 1;
/// And those sentences drawn, this many of each profession's 66 (3 templates × 22 phrases), still
/// an unbiased estimate of the paper's term. Chosen by speed alone, with room under 3× an equal
/// epoch on minilm-brown: 20 gave 2.1×, 30 2.5×, 40 3.7×, all 66 5.9× (BENCHMARKS.md).
pub const MLM_SENTENCES: usize = 20;
/// At most this many epochs: about seven minutes for minilm-brown's real-world target on two
/// cores (release build; MODEL_CARD.md). Patience still stops a run earlier.
pub const MAX_EPOCHS: usize = 8;

/// What the preset changes from the paper's settings, in words for the page and the CLI.
pub fn changes() -> [String; 3] {
    [
        "dropout off (the paper trains with the model's dropout)".into(),
        format!(
            "the masked-LM term estimated from {MLM_SENTENCES} sentences per profession, {MLM_POSITIONS} masked token each (the paper masks every token of every sentence in turn)"
        ),
        format!("at most {MAX_EPOCHS} epochs (the paper trains until patience stops it)"),
    ]
}
