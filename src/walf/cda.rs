//! The CDA baseline's training text: general text whose sentences mention someone by a gendered
//! word, each kept beside its counterfactual ([`crate::cda::Swapper`]), tokenized once. Two-sided,
//! as counterfactual augmentation is usually run: the original and the swapped sentence are
//! both trained on, so the text's own pairings are balanced rather than inverted. Sentences
//! without a gendered word are left out: swapping changes nothing in them, and they would only
//! make each step slower at teaching the same thing.

use crate::cda::Swapper;
use crate::data::Benchmark;
use crate::engine::LanguageModel;
use crate::error::{Error, Result};
use crate::pretrain::corpus::{brown_sentences, looks_tagged, plain_sentences};
use crate::pretrain::{MaskedBatch, MaskingVocab, mask_batch};
use crate::rng::SplitMix64;
use crate::tokenizer::MaskTokenizer;

/// Share of tokens masked in each sentence, as BERT's pretraining.
pub const MASKED_SHARE: f64 = 0.15;

/// At most this many sentences of a text are read: a larger file takes long to tokenize in a
/// browser, and a run never gets through that many anyway.
pub const MAX_SENTENCES: usize = 100_000;

/// The tokenized two-sided text, and what it was made from.
#[derive(Debug, Clone)]
pub struct CdaText {
    /// Token ids with the model's special tokens: each original sentence followed by its swap.
    pub sequences: Vec<Vec<u32>>,
    /// Sentences the text held (up to [`MAX_SENTENCES`]).
    pub sentences_read: usize,
    /// Of those, the ones with a gendered word, each trained on twice (as written and swapped).
    pub sentences_swapped: usize,
    /// The model's vocabulary as masking draws from it, found once.
    vocab: MaskingVocab,
}

impl CdaText {
    /// Reads plain text (one sentence per line) or a Brown corpus file (`word/tag`), swaps, and
    /// tokenizes; a sentence longer than the model takes is cut, keeping its closing token.
    pub fn prepare(text: &str, benchmark: &Benchmark, lm: &LanguageModel) -> Result<Self> {
        let (tokenizer, max_len) = (&lm.tokenizer, lm.max_len());
        let mut sentences = if looks_tagged(text) {
            brown_sentences(text)
        } else {
            plain_sentences(text)
        };
        sentences.truncate(MAX_SENTENCES);
        if sentences.is_empty() {
            return Err(Error::Input(
                "CDA needs general text to train on, and the text is empty".into(),
            ));
        }
        let swapper = Swapper::from_benchmark(benchmark);
        let mut sequences = Vec::new();
        let mut swapped_count = 0;
        for sentence in &sentences {
            let swapped = swapper.swap(sentence);
            if swapped == *sentence {
                continue;
            }
            swapped_count += 1;
            for s in [sentence, &swapped] {
                let mut ids = tokenizer.encode(s)?;
                if ids.len() > max_len {
                    let last = ids[ids.len() - 1];
                    ids.truncate(max_len - 1);
                    ids.push(last);
                }
                sequences.push(ids);
            }
        }
        if swapped_count == 0 {
            return Err(Error::Input(format!(
                "no sentence of the text ({} read) has a gendered word to swap (he, she, his, \
                 her, man, woman, the benchmark's phrases …): CDA needs general text that \
                 mentions people",
                sentences.len()
            )));
        }
        Ok(Self {
            sequences,
            sentences_read: sentences.len(),
            sentences_swapped: swapped_count,
            vocab: MaskingVocab {
                mask_id: tokenizer.mask_id(),
                pad_id: tokenizer.pad_id(),
                vocab_size: lm.config.vocab_size,
                // random replacements are drawn from here on
                first_ordinary: (0..lm.config.vocab_size as u32)
                    .find(|&id| !tokenizer.is_special(id))
                    .unwrap_or(0),
            },
        })
    }

    /// The sentences at `rows`, each with 15% of its tokens hidden the way BERT's pretraining
    /// hides them. A random replacement never is a special token other than the mask (a
    /// padding id in mid-sentence would be taken for padding): such a draw keeps the token.
    /// `tokenizer` is the model's that [`prepare`](Self::prepare) was given.
    pub fn masked(
        &self,
        rows: &[usize],
        tokenizer: &MaskTokenizer,
        rng: &mut SplitMix64,
    ) -> MaskedBatch {
        let vocab = self.vocab;
        let sequences: Vec<&[u32]> = rows.iter().map(|&r| self.sequences[r].as_slice()).collect();
        let mut batch = mask_batch(&sequences, vocab, MASKED_SHARE, rng);
        for (&(row, p), &label) in batch.positions.iter().zip(&batch.labels) {
            let id = &mut batch.batch.ids[row][p];
            if *id != vocab.mask_id && tokenizer.is_special(*id) {
                *id = label;
            }
        }
        batch
    }
}
