//! A masked LM made from a pretrained encoder (a `BertModel` checkpoint, which has no masked-LM
//! head): its vocabulary cut down to the tokens a corpus and the benchmark use, its word
//! embeddings cut to match, and a new head initialised as BERT's. `walf pretrain
//! --init-encoder` then trains the head, and later the whole model, on general text.

use std::collections::{BTreeSet, HashMap};

use tokenizers::Tokenizer;

use super::trainer::{bert_masked_lm_tensors, initial_values};
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use crate::weights::{StoredTensor, Weights, serialize};

const FILE: &str = "config.json";

/// The encoder's config.json read as the `BertForMaskedLM` it becomes (decoder tied to the word
/// embeddings, as BERT's is). Only a BERT encoder is taken: its tensors are BERT's.
pub fn encoder_config(config_json: &[u8]) -> Result<ModelConfig> {
    let mut raw: serde_json::Value = serde_json::from_slice(config_json)
        .map_err(|e| Error::invalid_file(FILE, format!("not valid JSON: {e}")))?;
    let architecture = raw["architectures"][0].as_str().unwrap_or("");
    let is_bert = match architecture {
        "" => raw["model_type"] == "bert",
        name => name == "BertModel",
    };
    if !is_bert {
        return Err(Error::invalid_file(
            FILE,
            format!(
                "an encoder to start from must be a BERT encoder (`BertModel`), not {}",
                if architecture.is_empty() {
                    format!("model_type {}", raw["model_type"])
                } else {
                    format!("`{architecture}`")
                }
            ),
        ));
    }
    raw["architectures"] = serde_json::json!(["BertForMaskedLM"]);
    raw["tie_word_embeddings"] = serde_json::json!(true);
    ModelConfig::from_json(&serde_json::to_vec(&raw).expect("a JSON value serialises"))
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!("{what}: {e}"))
}

fn read_tokenizer(tokenizer_json: &[u8]) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_bytes(tokenizer_json)
        .map_err(|e| failed("cannot read tokenizer.json", e))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| failed("cannot configure tokenizer.json", e))?;
    Ok(tokenizer)
}

/// Which tokens of the encoder's vocabulary to keep, as old ids, `size` at most:
/// - the special tokens;
/// - every token of `exact` (the benchmark's words and the held-out text, which must tokenize
///   exactly as before);
/// - every single-character piece (`c` and `##c`) of a character that any of the texts holds or
///   that is printable ASCII, so that every word still tokenizes without `[UNK]`: a word whose
///   pieces were dropped is spelled with shorter pieces of the same vocabulary;
/// - then the tokens `frequent` (the training text) uses most, until `size` is reached.
pub fn tokens_to_keep(
    tokenizer_json: &[u8],
    exact: &[String],
    frequent: &[String],
    size: usize,
) -> Result<BTreeSet<u32>> {
    let tokenizer = read_tokenizer(tokenizer_json)?;
    let encode = |text: &str| {
        tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| failed(&format!("cannot tokenize {text:?}"), e))
    };
    let mut keep: BTreeSet<u32> = tokenizer
        .get_added_tokens_decoder()
        .iter()
        .filter(|(_, token)| token.special)
        .map(|(&id, _)| id)
        .collect();
    for text in exact {
        keep.extend(encode(text)?);
    }
    let mut characters: BTreeSet<char> = (' '..='~').collect();
    for text in exact.iter().chain(frequent) {
        characters.extend(text.to_lowercase().chars());
    }
    let vocab = tokenizer.get_vocab(false);
    for c in characters {
        for piece in [c.to_string(), format!("##{c}")] {
            if let Some(&id) = vocab.get(&piece) {
                keep.insert(id);
            }
        }
    }
    if keep.len() > size {
        return Err(Error::Input(format!(
            "a vocabulary of {size} tokens cannot hold the {} that the benchmark, the held-out \
             text and the alphabet need",
            keep.len()
        )));
    }
    let mut counts: HashMap<u32, u64> = HashMap::new();
    for text in frequent {
        for id in encode(text)? {
            *counts.entry(id).or_default() += 1;
        }
    }
    let mut by_use: Vec<(u32, u64)> = counts
        .into_iter()
        .filter(|(id, _)| !keep.contains(id))
        .collect();
    // Most used first; equal counts in id order, so the choice does not depend on hashing.
    by_use.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let room = size - keep.len();
    keep.extend(by_use.into_iter().take(room).map(|(id, _)| id));
    Ok(keep)
}

/// A WordPiece tokenizer.json with only the `keep` tokens (old ids), renumbered in their old
/// order, and every id it names (added tokens, the post-processor's special tokens) rewritten.
/// Padding and truncation are dropped: the engine and transformers set their own. Returns the
/// new file and, for each new id, the old id.
pub fn prune_vocabulary(
    tokenizer_json: &[u8],
    keep: &BTreeSet<u32>,
) -> Result<(Vec<u8>, Vec<u32>)> {
    let mut doc: serde_json::Value = serde_json::from_slice(tokenizer_json)
        .map_err(|e| failed("tokenizer.json is not valid JSON", e))?;
    if doc["model"]["type"] != "WordPiece" {
        return Err(Error::Tokenizer(format!(
            "only a WordPiece vocabulary can be pruned, not {}",
            doc["model"]["type"]
        )));
    }
    let vocab = doc["model"]["vocab"]
        .as_object()
        .ok_or_else(|| Error::Tokenizer("tokenizer.json has no vocabulary".into()))?;
    let mut kept: Vec<(u32, String)> = vocab
        .iter()
        .filter_map(|(token, id)| {
            let id = id.as_u64()? as u32;
            keep.contains(&id).then(|| (id, token.clone()))
        })
        .collect();
    kept.sort();
    if kept.len() != keep.len() {
        return Err(Error::Tokenizer(format!(
            "{} of the ids to keep are not in the vocabulary",
            keep.len() - kept.len()
        )));
    }
    let new_id: HashMap<u32, u32> = kept
        .iter()
        .enumerate()
        .map(|(new, (old, _))| (*old, new as u32))
        .collect();
    let unk = doc["model"]["unk_token"].as_str().unwrap_or("[UNK]");
    if !kept.iter().any(|(_, t)| t == unk) {
        return Err(Error::Tokenizer(format!("the kept vocabulary lacks {unk}")));
    }
    let renumber = |old: &serde_json::Value| -> Result<serde_json::Value> {
        let old = old
            .as_u64()
            .ok_or_else(|| Error::Tokenizer(format!("tokenizer.json names the id {old}")))?;
        new_id
            .get(&(old as u32))
            .map(|&id| serde_json::json!(id))
            .ok_or_else(|| Error::Tokenizer(format!("the special token with id {old} is not kept")))
    };
    doc["model"]["vocab"] = kept
        .iter()
        .map(|(old, token)| (token.clone(), serde_json::json!(new_id[old])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    if let Some(added) = doc["added_tokens"].as_array_mut() {
        added.retain(|t| {
            t["id"]
                .as_u64()
                .is_some_and(|id| keep.contains(&(id as u32)))
        });
        for token in added {
            token["id"] = renumber(&token["id"])?;
        }
    }
    rewrite_processor_ids(&mut doc["post_processor"], &renumber)?;
    doc["padding"] = serde_json::Value::Null;
    doc["truncation"] = serde_json::Value::Null;
    let bytes = serde_json::to_vec_pretty(&doc).expect("a JSON value serialises");
    let old_ids = kept.into_iter().map(|(old, _)| old).collect();
    Ok((bytes, old_ids))
}

fn rewrite_processor_ids(
    processor: &mut serde_json::Value,
    renumber: &dyn Fn(&serde_json::Value) -> Result<serde_json::Value>,
) -> Result<()> {
    match processor["type"].as_str() {
        None => Ok(()),
        Some("Sequence") => {
            let mut steps = processor["processors"].as_array_mut().into_iter().flatten();
            steps.try_for_each(|step| rewrite_processor_ids(step, renumber))
        }
        Some("TemplateProcessing") => {
            let specials = processor["special_tokens"].as_object_mut().into_iter();
            for special in specials.flat_map(|m| m.values_mut()) {
                if let Some(ids) = special["ids"].as_array_mut() {
                    for id in ids {
                        *id = renumber(id)?;
                    }
                }
            }
            Ok(())
        }
        Some("BertProcessing" | "RobertaProcessing") => {
            for key in ["sep", "cls"] {
                processor[key][1] = renumber(&processor[key][1])?;
            }
            Ok(())
        }
        Some("ByteLevel") => Ok(()),
        Some(other) => Err(Error::Tokenizer(format!(
            "cannot rewrite the ids of a {other} post-processor"
        ))),
    }
}

/// Refuses a pruned tokenizer that splits any of `texts` into other pieces than the original.
pub fn check_same_pieces(before_json: &[u8], after_json: &[u8], texts: &[String]) -> Result<()> {
    let (before, after) = (read_tokenizer(before_json)?, read_tokenizer(after_json)?);
    for text in texts {
        let pieces = |t: &Tokenizer| {
            t.encode(text.as_str(), true)
                .map(|e| e.get_tokens().to_vec())
                .map_err(|e| failed(&format!("cannot tokenize {text:?}"), e))
        };
        let (b, a) = (pieces(&before)?, pieces(&after)?);
        if a != b {
            return Err(Error::Tokenizer(format!(
                "the pruned vocabulary splits {text:?} into {a:?} instead of {b:?}"
            )));
        }
    }
    Ok(())
}

/// A `BertForMaskedLM` checkpoint (f32) from a `BertModel` encoder's weights: every encoder
/// tensor copied (names with or without `bert.`; the pooler is not read), the word embeddings'
/// rows `old_ids` in that order, and a new masked-LM head initialised as BERT's (transform
/// N(0, 0.02), LayerNorm 1 and 0, output bias 0; the decoder is the word embeddings).
/// `config` is the masked LM's, with the pruned vocabulary size.
pub fn masked_lm_from_encoder(
    config: &ModelConfig,
    encoder: &Weights,
    old_ids: &[u32],
    seed: u64,
) -> Result<Vec<u8>> {
    if old_ids.len() != config.vocab_size {
        return Err(Error::Input(format!(
            "{} kept tokens for a vocabulary of {}",
            old_ids.len(),
            config.vocab_size
        )));
    }
    let h = config.hidden_size;
    let mut rng = SplitMix64::new(seed);
    let mut tensors: Vec<StoredTensor> = Vec::new();
    for (name, shape) in bert_masked_lm_tensors(config) {
        let values = if name.starts_with("cls.") {
            initial_values(&name, &shape, config, &mut rng)
        } else if name.ends_with("word_embeddings.weight") {
            let rows = encoder
                .tensor(&name, &[encoder_vocab(encoder, &name, h)?, h])?
                .try_into_vec::<f32>()
                .expect("weights are read as f32");
            let mut picked = Vec::with_capacity(old_ids.len() * h);
            for &old in old_ids {
                let row = old as usize * h;
                let source = rows.get(row..row + h).ok_or_else(|| {
                    Error::Input(format!("token id {old} is beyond the encoder's embeddings"))
                })?;
                picked.extend_from_slice(source);
            }
            picked
        } else {
            encoder
                .tensor(&name, &shape)?
                .try_into_vec::<f32>()
                .expect("weights are read as f32")
        };
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((name, safetensors::Dtype::F32, shape, bytes));
    }
    serialize(&tensors)
}

/// Rows of the encoder's word embeddings, read from the file (the pruned config no longer says).
fn encoder_vocab(encoder: &Weights, name: &str, hidden: usize) -> Result<usize> {
    let shape = encoder.shape(name).ok_or_else(|| Error::MissingTensor {
        file: encoder.file().to_string(),
        tensor: name.to_string(),
        expected: vec![0, hidden],
    })?;
    match shape[..] {
        [rows, h] if h == hidden => Ok(rows),
        _ => Err(Error::TensorShape {
            file: encoder.file().to_string(),
            tensor: name.to_string(),
            found: shape,
            expected: vec![0, hidden],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pretrain::vocab::train_vocabulary;

    fn vocabulary() -> Vec<u8> {
        let sentences: Vec<String> = (0..60)
            .map(|i| format!("The nurse and the carpenter met {i} times at the market square."))
            .collect();
        train_vocabulary(&sentences, 300, &[]).unwrap()
    }

    #[test]
    fn a_pruned_vocabulary_is_renumbered_and_spells_words_with_shorter_pieces() {
        let json = vocabulary();
        let exact = vec!["the nurse".to_string()];
        let frequent = vec!["the market".to_string(); 3];
        let full = read_tokenizer(&json).unwrap().get_vocab_size(false);
        let keep = tokens_to_keep(&json, &exact, &frequent, 150).unwrap();
        assert!(keep.len() <= 150 && keep.len() < full);
        let (pruned, old_ids) = prune_vocabulary(&json, &keep).unwrap();
        assert_eq!(old_ids, keep.iter().copied().collect::<Vec<_>>());
        let tokenizer = read_tokenizer(&pruned).unwrap();
        assert_eq!(tokenizer.get_vocab_size(true), keep.len());
        // The special tokens keep their place at the front, and the post-processor names them
        // by their new ids.
        let enc = tokenizer.encode("The nurse", true).unwrap();
        assert_eq!(enc.get_tokens(), ["[CLS]", "the", "nurse", "[SEP]"]);
        assert_eq!(enc.get_ids()[0], tokenizer.token_to_id("[CLS]").unwrap());
        assert_eq!(tokenizer.token_to_id("[PAD]"), Some(0));
        assert_eq!(tokenizer.token_to_id("[MASK]"), Some(4));
        check_same_pieces(&json, &pruned, &exact).unwrap();
        // A word whose own token was dropped is spelled with shorter pieces, not [UNK].
        let carpenter = tokenizer.encode("carpenter", false).unwrap();
        let unk = tokenizer.token_to_id("[UNK]").unwrap();
        assert!(
            !carpenter.get_ids().contains(&unk),
            "{:?}",
            carpenter.get_tokens()
        );
        let before = read_tokenizer(&json).unwrap();
        let was = before
            .encode("carpenter", false)
            .unwrap()
            .get_tokens()
            .to_vec();
        if keep.contains(&before.token_to_id("carpenter").unwrap_or(u32::MAX)) {
            assert_eq!(carpenter.get_tokens(), was);
        } else {
            assert!(carpenter.get_tokens().len() > was.len());
            let err = check_same_pieces(&json, &pruned, &["carpenter".to_string()]).unwrap_err();
            assert!(err.to_string().contains("carpenter"), "{err}");
        }
    }

    #[test]
    fn what_cannot_be_pruned_is_refused_with_a_reason() {
        let json = vocabulary();
        let exact = vec!["the nurse and the carpenter".to_string()];
        let err = tokens_to_keep(&json, &exact, &[], 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot hold"), "{err}");
        let mut doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
        doc["model"]["type"] = "BPE".into();
        let bpe = serde_json::to_vec(&doc).unwrap();
        let keep: BTreeSet<u32> = (0..10).collect();
        assert!(
            prune_vocabulary(&bpe, &keep)
                .unwrap_err()
                .to_string()
                .contains("WordPiece")
        );
        // [CLS] (id 2) dropped: the post-processor would name a token that no longer exists.
        let without_cls: BTreeSet<u32> = (0..50).filter(|&i| i != 2).collect();
        let err = prune_vocabulary(&json, &without_cls)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not kept"), "{err}");
    }

    #[test]
    fn only_a_bert_encoder_is_taken() {
        let bert = br#"{"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 50,
            "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 32, "max_position_embeddings": 32, "type_vocab_size": 2,
            "tie_word_embeddings": false}"#;
        let config = encoder_config(bert).unwrap();
        assert!(config.tie_word_embeddings, "the new decoder is tied");
        assert_eq!(config.vocab_size, 50);
        let roberta = String::from_utf8_lossy(bert).replace("BertModel", "RobertaModel");
        let err = encoder_config(roberta.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("RobertaModel"), "{err}");
    }
}
