//! The checkpoint's own `tokenizer.json`, through the `tokenizers` crate, plus what the engine
//! needs to know of it: the mask token, padding, unknown token, and how a word is split.

use tokenizers::Tokenizer;

use crate::config::ModelConfig;
use crate::error::{Error, Result};

/// Mask spellings users may type, whatever the model's own is.
pub const MASK_SPELLINGS: [&str; 2] = ["[MASK]", "<mask>"];

pub struct MaskTokenizer {
    inner: Tokenizer,
    mask_token: String,
    mask_id: u32,
    pad_id: u32,
    unk_id: Option<u32>,
    /// Sorted.
    special_ids: Vec<u32>,
}

/// A template post-processor may only name special tokens it defines: the tokenizers crate
/// indexes its table with them and panics at the first encoding otherwise (found by fuzzing).
fn check_templates(processor: &serde_json::Value) -> Result<()> {
    if let Some(steps) = processor["processors"].as_array() {
        return steps.iter().try_for_each(check_templates);
    }
    if processor["type"] != "TemplateProcessing" {
        return Ok(());
    }
    for template in ["single", "pair"] {
        let pieces = processor[template].as_array().into_iter().flatten();
        for id in pieces.filter_map(|p| p["SpecialToken"]["id"].as_str()) {
            if processor["special_tokens"].get(id).is_none() {
                return Err(Error::Tokenizer(format!(
                    "the post-processor's {template} template uses the special token {id:?}, \
                     which it does not define"
                )));
            }
        }
    }
    Ok(())
}

impl MaskTokenizer {
    pub fn from_json(bytes: &[u8], config: &ModelConfig) -> Result<Self> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::Tokenizer("the file is empty".into()));
        }
        // The whole document must be valid JSON first: the tokenizers crate panics (instead of
        // failing) on some malformed documents, e.g. a lone surrogate escape inside `decoder`
        // (found by fuzzing, fuzz/regressions/tokenizer_json/).
        let document = serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|e| Error::Tokenizer(format!("not valid JSON ({e})")))?;
        check_templates(&document["post_processor"])?;
        let mut inner = Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer(format!("cannot be read ({e})")))?;
        // Some exported tokenizers pad or truncate every encoding; batching and length checks
        // are the engine's own.
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(format!("cannot be configured ({e})")))?;
        let (mask_token, mask_id) = MASK_SPELLINGS
            .iter()
            .find_map(|t| inner.token_to_id(t).map(|id| (t.to_string(), id)))
            .ok_or_else(|| Error::Tokenizer("has no mask token ([MASK] or <mask>)".into()))?;
        let vocab = inner.get_vocab_size(true);
        let max_id = inner.get_vocab(true).values().copied().max().unwrap_or(0) as usize;
        if vocab > config.vocab_size || max_id >= config.vocab_size {
            return Err(Error::Tokenizer(format!(
                "has {vocab} tokens (largest id {max_id}) but config.json's vocab_size is {}: \
                 the files are not from the same model",
                config.vocab_size
            )));
        }
        let unk_id = ["[UNK]", "<unk>"].iter().find_map(|t| inner.token_to_id(t));
        let pad_id = config.pad_token_id as u32;
        let mut special_ids: Vec<u32> = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .chain([mask_id, pad_id])
            .chain(unk_id)
            .collect();
        special_ids.sort_unstable();
        special_ids.dedup();
        Ok(Self {
            inner,
            mask_token,
            mask_id,
            pad_id,
            unk_id,
            special_ids,
        })
    }

    pub fn mask_token(&self) -> &str {
        &self.mask_token
    }

    pub fn mask_id(&self) -> u32 {
        self.mask_id
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.unk_id
    }

    /// A special token of the tokenizer (an added token marked special: the markers, padding,
    /// mask and unknown tokens), as transformers' `all_special_ids` counts them.
    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.binary_search(&id).is_ok()
    }

    /// Rewrites any mask spelling in user text into the model's own mask token.
    pub fn with_model_mask(&self, text: &str) -> String {
        MASK_SPELLINGS
            .iter()
            .fold(text.to_string(), |t, m| t.replace(m, &self.mask_token))
    }

    /// Ids of a whole sentence, with the model's special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Input(format!("cannot tokenize {text:?}: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Ids of a word (or words) as it stands inside a sentence: after a space unless it opens the
    /// sentence. For WordPiece this is the plain split of the word; byte-level BPE marks a
    /// leading space in the token itself, so the space matters there.
    pub fn word_ids(&self, word: &str, starts_sentence: bool) -> Result<Vec<u32>> {
        let text = if starts_sentence {
            word.to_string()
        } else {
            format!(" {word}")
        };
        let encoding = self
            .inner
            .encode(text.as_str(), false)
            .map_err(|e| Error::Input(format!("cannot tokenize {word:?}: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    pub fn token(&self, id: u32) -> String {
        self.inner
            .id_to_token(id)
            .unwrap_or_else(|| format!("<{id}>"))
    }

    /// Readable text of one token (byte-level BPE's `Ġ` shown as a space).
    pub fn display_token(&self, id: u32) -> String {
        self.inner
            .decode(&[id], false)
            .unwrap_or_else(|_| self.token(id))
    }
}
