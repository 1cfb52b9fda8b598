//! A lowercase WordPiece vocabulary trained by the `tokenizers` crate, in the shape of
//! bert-base-uncased's tokenizer (BERT normaliser and pre-tokeniser, `[CLS] … [SEP]`).

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{Error, Result};

/// In id order: `[PAD]` is 0, as config.json's `pad_token_id` says.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!("{what}: {e}"))
}

/// Trains the vocabulary on `sentences` and returns tokenizer.json's bytes.
///
/// `must_spell` are words the model will be asked about (the benchmark's professions and
/// gendered phrases): each is added once to the training text, so that its characters are in
/// the alphabet, and after training each must encode without `[UNK]`.
pub fn train_vocabulary(
    sentences: &[String],
    vocab_size: usize,
    must_spell: &[String],
) -> Result<Vec<u8>> {
    if vocab_size < SPECIAL_TOKENS.len() + 100 {
        return Err(Error::Input(format!(
            "a vocabulary of {vocab_size} tokens is too small (at least {})",
            SPECIAL_TOKENS.len() + 100
        )));
    }
    let model = WordPiece::builder()
        .unk_token("[UNK]".into())
        .continuing_subword_prefix("##".into())
        .build()
        .map_err(|e| failed("cannot build WordPiece", e))?;
    let mut tokenizer = Tokenizer::new(ModelWrapper::WordPiece(model));
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_decoder(Some(WordPieceDecoder::default()));
    let trainer = WordPieceTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(
            SPECIAL_TOKENS
                .iter()
                .map(|t| AddedToken::from(t.to_string(), true))
                .collect(),
        )
        .build();
    let mut trainer = TrainerWrapper::WordPieceTrainer(trainer);
    let text = sentences.iter().chain(must_spell.iter());
    tokenizer
        .train(&mut trainer, text)
        .map_err(|e| failed("vocabulary training failed", e))?;

    let id = |tokenizer: &Tokenizer, token: &str| {
        tokenizer
            .token_to_id(token)
            .ok_or_else(|| Error::Tokenizer(format!("trained vocabulary lacks {token}")))
    };
    for (expected, token) in SPECIAL_TOKENS.iter().enumerate() {
        if id(&tokenizer, token)? != expected as u32 {
            return Err(Error::Tokenizer(format!(
                "{token} did not get id {expected}"
            )));
        }
    }
    let processor = BertProcessing::new(
        ("[SEP]".into(), id(&tokenizer, "[SEP]")?),
        ("[CLS]".into(), id(&tokenizer, "[CLS]")?),
    );
    tokenizer.with_post_processor(Some(processor));

    check_spelling(&tokenizer, must_spell)?;
    tokenizer
        .to_string(true)
        .map(String::into_bytes)
        .map_err(|e| failed("cannot write tokenizer.json", e))
}

/// Refuses a vocabulary that spells one of `must_spell` with `[UNK]`: the measure would then
/// ask the model about a word it cannot see.
fn check_spelling(tokenizer: &Tokenizer, must_spell: &[String]) -> Result<()> {
    let unk = tokenizer
        .token_to_id("[UNK]")
        .ok_or_else(|| Error::Tokenizer("the vocabulary lacks [UNK]".into()))?;
    let unspellable: Vec<&str> = must_spell
        .iter()
        .filter(|word| {
            tokenizer
                .encode(word.as_str(), false)
                .map(|e| e.get_ids().contains(&unk))
                .unwrap_or(true)
        })
        .map(String::as_str)
        .collect();
    if !unspellable.is_empty() {
        return Err(Error::Tokenizer(format!(
            "the vocabulary cannot spell {} without [UNK]",
            unspellable.join(", ")
        )));
    }
    Ok(())
}

/// The same check for a vocabulary read from a tokenizer.json (a model pretraining starts from).
pub fn check_vocabulary(tokenizer_json: &[u8], must_spell: &[String]) -> Result<()> {
    let tokenizer = Tokenizer::from_bytes(tokenizer_json)
        .map_err(|e| failed("cannot read tokenizer.json", e))?;
    check_spelling(&tokenizer, must_spell)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trained_vocabulary_spells_the_required_words() {
        let sentences: Vec<String> = (0..50)
            .map(|i| format!("The nurse and the carpenter met {i} times at the market."))
            .collect();
        let must = vec!["chiropractor".to_string(), "this woman".to_string()];
        let json = train_vocabulary(&sentences, 200, &must).unwrap();
        let tokenizer = Tokenizer::from_bytes(&json).unwrap();
        assert_eq!(tokenizer.token_to_id("[PAD]"), Some(0));
        assert_eq!(tokenizer.token_to_id("[MASK]"), Some(4));
        let enc = tokenizer.encode("The Nurse", true).unwrap();
        let tokens = enc.get_tokens();
        assert_eq!(tokens.first().map(String::as_str), Some("[CLS]"));
        assert_eq!(tokens.last().map(String::as_str), Some("[SEP]"));
        assert!(tokens.contains(&"nurse".to_string()), "{tokens:?}");
        let unk = tokenizer.token_to_id("[UNK]").unwrap();
        let chiro = tokenizer.encode("chiropractor", false).unwrap();
        assert!(!chiro.get_ids().contains(&unk));
        assert!(train_vocabulary(&sentences, 10, &must).is_err());
    }

    #[test]
    fn a_given_vocabulary_is_checked_for_the_required_words() {
        let sentences: Vec<String> = (0..50)
            .map(|i| format!("The nurse and the carpenter met {i} times at the market."))
            .collect();
        let json = train_vocabulary(&sentences, 200, &[]).unwrap();
        let spelled = vec!["nurse".to_string(), "the carpenter".to_string()];
        assert!(check_vocabulary(&json, &spelled).is_ok());
        // No sentence has a "q" or a "z": the alphabet lacks them.
        let missing = vec!["nurse".to_string(), "quiz".to_string()];
        let err = check_vocabulary(&json, &missing).unwrap_err().to_string();
        assert!(err.contains("quiz") && !err.contains("nurse"), "{err}");
        assert!(check_vocabulary(b"not json", &spelled).is_err());
    }
}
