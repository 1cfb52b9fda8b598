//! A loaded masked LM: configuration, tokenizer and weights together, with the operations the
//! front ends offer (measure, fill-mask). Takes bytes, never paths: the browser has no files.

use burn::tensor::Device;
use burn::tensor::activation::softmax;
use serde::Serialize;

use crate::config::{MemoryBudget, ModelConfig};
use crate::data::Gender;
use crate::error::{Error, Result};
use crate::measure::{MeasureInput, ProbeResult, ProbeSettings, Progress, probe};
use crate::model::{MaskedLm, TokenBatch};
use crate::readback::read_f32;
use crate::tokenizer::MaskTokenizer;
use crate::weights::Weights;

/// The three files of a Hugging Face model folder.
#[derive(Debug, Clone, Copy)]
pub struct ModelFiles<'a> {
    pub config: &'a [u8],
    pub tokenizer: &'a [u8],
    pub weights: &'a [u8],
    /// How to name the weights in messages (a path, a URL, a file name).
    pub weights_name: &'a str,
}

pub struct LanguageModel {
    pub config: ModelConfig,
    pub tokenizer: MaskTokenizer,
    pub model: MaskedLm,
    /// The original config.json and tokenizer.json, written out again on export.
    pub config_json: Vec<u8>,
    pub tokenizer_json: Vec<u8>,
    /// Names the three files it was loaded from ([`ModelFiles::fingerprint`]).
    pub fingerprint: String,
}

impl ModelFiles<'_> {
    /// 64-bit FNV-1a over the three files, each preceded by its length, in hex: names the exact
    /// model a result came from (a share link's manifest, `walf probe --json`, a kept run).
    /// Not a defence against a forger, only against a mix-up.
    pub fn fingerprint(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for bytes in [self.config, self.tokenizer, self.weights] {
            for &b in (bytes.len() as u64)
                .to_le_bytes()
                .iter()
                .chain(bytes.iter())
            {
                hash ^= b as u64;
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        format!("{hash:016x}")
    }
}

/// A Hugging Face model folder's three files, in memory.
#[derive(Debug, Clone)]
pub struct ExportedModel {
    pub config_json: Vec<u8>,
    pub tokenizer_json: Vec<u8>,
    pub safetensors: Vec<u8>,
}

/// One of the model's predictions at a masked position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopToken {
    pub token: String,
    pub id: u32,
    pub probability: f64,
}

/// The top predictions at one masked position.
#[derive(Debug, Clone, Serialize)]
pub struct MaskPrediction {
    pub position: usize,
    pub top: Vec<TopToken>,
    /// Full softmax over the vocabulary, for looking up any token's probability.
    #[serde(skip)]
    pub probabilities: Vec<f32>,
}

impl LanguageModel {
    pub fn load(files: ModelFiles, device: &Device) -> Result<Self> {
        Self::load_within(files, device, MemoryBudget::default())
    }

    /// `load` with another memory budget.
    pub fn load_within(files: ModelFiles, device: &Device, budget: MemoryBudget) -> Result<Self> {
        let config = ModelConfig::from_json(files.config)?;
        config.check_memory(budget)?;
        budget.check_file(files.weights_name, files.weights.len() as u64)?;
        let tokenizer = MaskTokenizer::from_json(files.tokenizer, &config)?;
        let weights = Weights::parse(files.weights_name, files.weights)?;
        let model = MaskedLm::load(&config, &weights, device)?;
        Ok(Self {
            config,
            tokenizer,
            model,
            config_json: files.config.to_vec(),
            tokenizer_json: files.tokenizer.to_vec(),
            fingerprint: files.fingerprint(),
        })
    }

    /// The model as a Hugging Face folder's files, with `model` as its weights (e.g. the best
    /// weights of a fine-tuning run), in the checkpoint's own tensor names and dtypes.
    pub async fn export(&self, model: &MaskedLm) -> Result<ExportedModel> {
        Ok(ExportedModel {
            config_json: self.config_json.clone(),
            tokenizer_json: self.tokenizer_json.clone(),
            safetensors: model.to_safetensors().await?,
        })
    }

    pub fn max_len(&self) -> usize {
        self.config.max_sequence_length()
    }

    pub async fn probe(
        &self,
        input: MeasureInput<'_>,
        settings: ProbeSettings,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<ProbeResult> {
        self.probe_weights(&self.model, input, settings, on_progress)
            .await
    }

    /// The measure with other weights of the same architecture and tokenizer (a validation
    /// snapshot, a tuned or best copy).
    pub async fn probe_weights(
        &self,
        model: &MaskedLm,
        input: MeasureInput<'_>,
        settings: ProbeSettings,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<ProbeResult> {
        probe(
            model,
            &self.tokenizer,
            input,
            self.max_len(),
            settings,
            on_progress,
        )
        .await
    }

    /// The words of `words` that the vocabulary holds as one token (as they stand inside a
    /// sentence), with their ids: those a fill-mask can give one probability for.
    pub fn single_token_words(&self, words: Vec<(String, Gender)>) -> Vec<(String, Gender, u32)> {
        words
            .into_iter()
            .filter_map(
                |(word, gender)| match self.tokenizer.word_ids(&word, false).as_deref() {
                    Ok([id]) => Some((word, gender, *id)),
                    _ => None,
                },
            )
            .collect()
    }

    /// Predictions at every mask of `text` (`[MASK]` and `<mask>` both accepted).
    pub async fn fill_mask(&self, text: &str, top: usize) -> Result<Vec<MaskPrediction>> {
        self.fill_mask_weights(&self.model, text, top).await
    }

    /// Fill-mask with other weights of the same architecture and tokenizer (e.g. tuned ones).
    pub async fn fill_mask_weights(
        &self,
        model: &MaskedLm,
        text: &str,
        top: usize,
    ) -> Result<Vec<MaskPrediction>> {
        let text = self.tokenizer.with_model_mask(text);
        let ids = self.tokenizer.encode(&text)?;
        if ids.len() > self.max_len() {
            return Err(Error::Input(format!(
                "the text has {} tokens; the model takes at most {}",
                ids.len(),
                self.max_len()
            )));
        }
        let positions: Vec<usize> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| **id == self.tokenizer.mask_id())
            .map(|(i, _)| i)
            .collect();
        if positions.is_empty() {
            return Err(Error::Input(format!(
                "the text has no mask: write {} where a word is to be predicted",
                self.tokenizer.mask_token()
            )));
        }
        let batch = TokenBatch {
            ids: vec![ids],
            pad_id: self.tokenizer.pad_id(),
        };
        let at: Vec<(usize, usize)> = positions.iter().map(|&p| (0, p)).collect();
        let logits = model.for_inference().logits_at(&batch, &at);
        let probabilities = read_f32(softmax(logits, 1)).await?;
        let vocab = self.config.vocab_size;
        Ok(positions
            .iter()
            .zip(probabilities.chunks_exact(vocab))
            .map(|(&position, row)| {
                let mut order: Vec<usize> = (0..vocab).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                MaskPrediction {
                    position,
                    top: order
                        .into_iter()
                        .take(top)
                        .map(|id| TopToken {
                            token: self.tokenizer.display_token(id as u32),
                            id: id as u32,
                            probability: row[id] as f64,
                        })
                        .collect(),
                    probabilities: row.to_vec(),
                }
            })
            .collect())
    }
}
