//! The paper's bias measure (Shrestha & Srinivasan, EMNLP 2025), reproduced exactly, quirks
//! included, and computed with each distinct masked sentence run once.
//!
//! For a template, profession T and gendered phrase ("this man" = determiner "this " + word
//! "man"), the word A is masked (sentence AM), then A and T (sentence TAM);
//! `score = ln P(A|AM) − ln P(A|TAM)`, where P(A|·) multiplies the probability of *every* subword
//! id of A at *every* masked position of A, as the reference code does. Per profession,
//! `exp(score)` is summed by gender and normalised over both genders.

use std::collections::HashMap;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;

use crate::bias::ProfessionDistribution;
use crate::data::{Gender, GenderedPhrase, Profession, SplitData, Template};
use crate::error::{Error, Result};
use crate::model::{Inference, MaskedLm, TokenBatch};
use crate::readback::read_f32;
use crate::tokenizer::MaskTokenizer;

/// What to measure: the benchmark rows to combine.
#[derive(Debug, Clone, Copy)]
pub struct MeasureInput<'a> {
    pub professions: &'a [Profession],
    pub templates: &'a [Template],
    pub phrases: &'a [GenderedPhrase],
}

impl SplitData {
    pub fn input(&self) -> MeasureInput<'_> {
        MeasureInput {
            professions: &self.professions,
            templates: &self.templates,
            phrases: &self.phrases,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ProbeSettings {
    /// Distinct sentences per forward pass.
    pub batch_size: usize,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self { batch_size: 64 }
    }
}

/// One (template, profession, phrase) of the paper: a pair of masked sentences.
#[derive(Debug, Clone)]
pub struct Instance {
    pub template: usize,
    pub profession: usize,
    pub phrase: usize,
    /// The gendered word without its determiner, as the paper masks it.
    pub word: String,
    pub sentence: String,
    /// The word's subword ids, each scored at every masked position.
    pub word_ids: Vec<u32>,
    /// Indices into `SentencePlan::sentences`.
    pub am: usize,
    pub tam: usize,
}

/// A distinct masked sentence, with the positions of the gendered word's masks.
#[derive(Debug, Clone)]
pub struct MaskedSentence {
    pub text: String,
    pub ids: Vec<u32>,
    pub positions: Vec<usize>,
}

/// All the work of a measurement, decided before any model runs.
#[derive(Debug, Clone)]
pub struct SentencePlan {
    pub instances: Vec<Instance>,
    pub sentences: Vec<MaskedSentence>,
    /// Every id some gendered word needs; only these columns of the softmax are read back.
    pub candidate_ids: Vec<u32>,
}

fn masks(token: &str, n: usize) -> String {
    vec![token; n].join(" ")
}

/// Splits "this man" into ("this ", "man") and "he" into ("", "he"), as the paper does.
fn split_determiner(phrase: &str) -> (String, String) {
    let words: Vec<&str> = phrase.split_whitespace().collect();
    if words.len() > 1 {
        (format!("{} ", words[0]), words[1..].join(" "))
    } else {
        (
            String::new(),
            words.first().copied().unwrap_or("").to_string(),
        )
    }
}

impl SentencePlan {
    /// The same plan with a sentence of its own for each of its uses (an instance's AM and TAM
    /// sentences), as the paper's code runs them. Under dropout each use then draws its own mask;
    /// shared, a sentence's single mask would be shared by every profession and phrase using it,
    /// a different objective from the paper's.
    pub fn unshared(&self) -> Self {
        let mut sentences = Vec::with_capacity(2 * self.instances.len());
        let instances = self
            .instances
            .iter()
            .map(|inst| {
                let mut own = inst.clone();
                sentences.push(self.sentences[inst.am].clone());
                own.am = sentences.len() - 1;
                sentences.push(self.sentences[inst.tam].clone());
                own.tam = sentences.len() - 1;
                own
            })
            .collect();
        Self {
            instances,
            sentences,
            candidate_ids: self.candidate_ids.clone(),
        }
    }

    pub fn new(tokenizer: &MaskTokenizer, input: MeasureInput, max_len: usize) -> Result<Self> {
        let mask = tokenizer.mask_token();
        let unk = tokenizer.unk_id();
        let mut unknown_phrases = Vec::new();
        let mut unknown_professions = Vec::new();

        let mut profession_ids = Vec::with_capacity(input.professions.len());
        for p in input.professions {
            let ids = tokenizer.word_ids(&p.name, false)?;
            if ids.is_empty() || ids.iter().any(|id| Some(*id) == unk) {
                unknown_professions.push(p.name.clone());
            }
            profession_ids.push(ids.len());
        }
        // Per phrase: determiner, word, and the word's ids when it opens the sentence and when it
        // follows a space (which one applies depends on the template).
        let mut phrase_words = Vec::with_capacity(input.phrases.len());
        for ph in input.phrases {
            let (det, word) = split_determiner(&ph.phrase);
            let opening = tokenizer.word_ids(&word, true)?;
            let inner = tokenizer.word_ids(&word, false)?;
            let checked = if det.is_empty() {
                [&opening, &inner]
            } else {
                [&inner, &inner]
            };
            if checked
                .iter()
                .any(|ids| ids.is_empty() || ids.iter().any(|id| Some(*id) == unk))
            {
                unknown_phrases.push(ph.phrase.clone());
            }
            phrase_words.push((det, word, opening, inner));
        }
        if !unknown_phrases.is_empty() {
            return Err(Error::UnknownTokens {
                what: "these gendered phrases".into(),
                items: unknown_phrases.join(", "),
            });
        }
        if !unknown_professions.is_empty() {
            return Err(Error::UnknownTokens {
                what: "these professions".into(),
                items: unknown_professions.join(", "),
            });
        }

        let mut sentences: Vec<MaskedSentence> = Vec::new();
        let mut index: HashMap<(String, usize), usize> = HashMap::new();
        let mut add = |text: String, n_word: usize| -> Result<usize> {
            if let Some(&i) = index.get(&(text.clone(), n_word)) {
                return Ok(i);
            }
            let ids = tokenizer.encode(&text)?;
            if ids.len() > max_len {
                return Err(Error::Input(format!(
                    "{text:?} has {} tokens; the model takes at most {max_len}",
                    ids.len()
                )));
            }
            // The gendered word always comes first: its masks are the first `n_word` masks.
            let first = ids.iter().position(|&id| id == tokenizer.mask_id());
            let positions: Vec<usize> = match first {
                Some(f)
                    if ids[f..]
                        .iter()
                        .take(n_word)
                        .all(|&id| id == tokenizer.mask_id())
                        && ids.len() >= f + n_word =>
                {
                    (f..f + n_word).collect()
                }
                _ => {
                    return Err(Error::Input(format!(
                        "{text:?}: the tokenizer does not keep {n_word} mask token(s) together"
                    )));
                }
            };
            sentences.push(MaskedSentence {
                text: text.clone(),
                ids,
                positions,
            });
            index.insert((text, n_word), sentences.len() - 1);
            Ok(sentences.len() - 1)
        };

        let mut instances = Vec::new();
        let mut candidates: Vec<u32> = Vec::new();
        for (ti, template) in input.templates.iter().enumerate() {
            for (pi, profession) in input.professions.iter().enumerate() {
                let target_mask = masks(mask, profession_ids[pi]);
                for (hi, (det, word, opening, inner)) in phrase_words.iter().enumerate() {
                    let filled = template
                        .text
                        .replace("[ARTICLE]", &profession.article)
                        .replace("[DET]", det);
                    let word_ids = if filled.starts_with("[AAA]") {
                        opening
                    } else {
                        inner
                    }
                    .clone();
                    let word_mask = masks(mask, word_ids.len());
                    let sentence = filled
                        .replace("[AAA]", word)
                        .replace("[TTT]", &profession.name);
                    let am_text = filled
                        .replace("[AAA]", &word_mask)
                        .replace("[TTT]", &profession.name);
                    let tam_text = filled
                        .replace("[AAA]", &word_mask)
                        .replace("[TTT]", &target_mask);
                    let am = add(am_text, word_ids.len())?;
                    let tam = add(tam_text, word_ids.len())?;
                    candidates.extend(&word_ids);
                    instances.push(Instance {
                        template: ti,
                        profession: pi,
                        phrase: hi,
                        word: word.clone(),
                        sentence,
                        word_ids,
                        am,
                        tam,
                    });
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        Ok(Self {
            instances,
            sentences,
            candidate_ids: candidates,
        })
    }

    /// The column of each candidate id in `candidate_ids`.
    pub fn candidate_columns(&self) -> HashMap<u32, usize> {
        self.candidate_ids
            .iter()
            .enumerate()
            .map(|(c, &id)| (id, c))
            .collect()
    }

    /// `candidate_ids` as an index tensor on `device`.
    pub fn candidate_tensor(&self, device: &Device) -> Tensor<1, Int> {
        Self::id_tensor(&self.candidate_ids, device)
    }

    /// Token ids as an index tensor on `device`.
    pub fn id_tensor(ids: &[u32], device: &Device) -> Tensor<1, Int> {
        let ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        let n = ids.len();
        Tensor::from_data(TensorData::new(ids, [n]), device)
    }

    /// Sentences grouped into batches of similar length (less padding), as index lists.
    pub fn batches(&self, batch_size: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.sentences.len()).collect();
        order.sort_by_key(|&i| (self.sentences[i].ids.len(), i));
        order
            .chunks(batch_size.max(1))
            .map(<[usize]>::to_vec)
            .collect()
    }
}

/// Log-probabilities of the candidate ids at each masked word position of a batch of sentences:
/// `[positions, candidates]`, positions in sentence order.
pub fn candidate_log_probs(
    model: &MaskedLm,
    sentences: &[&MaskedSentence],
    pad_id: u32,
    candidates: &Tensor<1, Int>,
) -> Tensor<2> {
    let (batch, positions) = masked_batch(sentences, pad_id);
    let logits = model.logits_at(&batch, &positions);
    log_softmax(logits, 1).select(1, candidates.clone())
}

/// The sentences as one batch, and their masked positions in sentence order.
fn masked_batch(sentences: &[&MaskedSentence], pad_id: u32) -> (TokenBatch, Vec<(usize, usize)>) {
    let batch = TokenBatch {
        ids: sentences.iter().map(|s| s.ids.clone()).collect(),
        pad_id,
    };
    let positions = sentences
        .iter()
        .enumerate()
        .flat_map(|(row, s)| s.positions.iter().map(move |&p| (row, p)))
        .collect();
    (batch, positions)
}

/// One row of the paper's raw association scores.
#[derive(Debug, Clone, Serialize)]
pub struct RawScore {
    pub template_id: String,
    pub profession: String,
    pub gendered_word: String,
    pub gender: Gender,
    pub sentence: String,
    pub sentence_am: String,
    pub sentence_tam: String,
    pub masked_ids_sentence_am: Vec<usize>,
    pub masked_ids_sentence_tam: Vec<usize>,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub professions: Vec<ProfessionDistribution>,
    pub raw: Vec<RawScore>,
    /// Masked sentences the paper's procedure runs (two per template × profession × phrase).
    pub paper_sentences: usize,
    /// Distinct masked sentences actually run.
    pub forward_sentences: usize,
}

/// Progress of a measurement, in sentences.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// Runs the measure. Reads back only the candidate columns, once per batch.
pub async fn probe(
    model: &MaskedLm,
    tokenizer: &MaskTokenizer,
    input: MeasureInput<'_>,
    max_len: usize,
    settings: ProbeSettings,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<ProbeResult> {
    let plan = SentencePlan::new(tokenizer, input, max_len)?;
    let model = model.for_inference();
    let mut log_probs = SentenceLogProbs::new(&plan);
    let total = plan.sentences.len();
    let mut done = 0;
    on_progress(Progress { done, total });
    for batch in plan.batches(settings.batch_size) {
        let sentences: Vec<&MaskedSentence> = batch.iter().map(|&i| &plan.sentences[i]).collect();
        let values =
            batch_log_probs(&model, &sentences, tokenizer.pad_id(), &plan.candidate_ids).await?;
        log_probs.insert(&plan, &batch, &values)?;
        done += batch.len();
        on_progress(Progress { done, total });
    }
    log_probs.score(&plan, input)
}

/// `candidate_log_probs` of one batch, read back: per sentence, per masked position, the
/// candidates' log-probabilities. The unit of work a front end may hand to another thread.
pub async fn batch_log_probs(
    model: &Inference,
    sentences: &[&MaskedSentence],
    pad_id: u32,
    candidates: &[u32],
) -> Result<Vec<f32>> {
    let (batch, positions) = masked_batch(sentences, pad_id);
    read_f32(model.candidate_log_probs(&batch, &positions, candidates)).await
}

/// The log-probabilities of a plan's sentences as batches come in, in any order.
#[derive(Debug, Clone)]
pub struct SentenceLogProbs {
    values: Vec<Option<Vec<f32>>>,
}

impl SentenceLogProbs {
    pub fn new(plan: &SentencePlan) -> Self {
        Self {
            values: vec![None; plan.sentences.len()],
        }
    }

    /// Stores what `batch_log_probs` gave for the sentences `batch` (indices into the plan).
    pub fn insert(&mut self, plan: &SentencePlan, batch: &[usize], values: &[f32]) -> Result<()> {
        let k = plan.candidate_ids.len();
        let needed: usize = batch
            .iter()
            .map(|&i| plan.sentences.get(i).map_or(0, |s| s.positions.len() * k))
            .sum();
        if needed != values.len() || batch.iter().any(|&i| i >= plan.sentences.len()) {
            return Err(Error::Backend(format!(
                "a batch of {} sentences came back with {} values, not {needed}",
                batch.len(),
                values.len()
            )));
        }
        let mut offset = 0;
        for &i in batch {
            let n = plan.sentences[i].positions.len() * k;
            self.values[i] = Some(values[offset..offset + n].to_vec());
            offset += n;
        }
        Ok(())
    }

    /// The paper's scores and distributions, once every sentence is in.
    pub fn score(self, plan: &SentencePlan, input: MeasureInput) -> Result<ProbeResult> {
        let missing = self.values.iter().filter(|v| v.is_none()).count();
        if missing > 0 {
            return Err(Error::Backend(format!(
                "{missing} sentences were never measured"
            )));
        }
        let log_probs: Vec<Vec<f32>> = self.values.into_iter().flatten().collect();
        Ok(score_plan(
            plan,
            &log_probs,
            &plan.candidate_columns(),
            input,
        ))
    }
}

/// ln P(word | sentence): every subword id at every masked position (the paper's product).
fn word_log_prob(ids: &[u32], values: &[f32], column: &HashMap<u32, usize>, k: usize) -> f64 {
    let positions = values.len() / k;
    ids.iter()
        .map(|id| {
            let c = column[id];
            (0..positions)
                .map(|p| values[p * k + c] as f64)
                .sum::<f64>()
        })
        .sum()
}

fn score_plan(
    plan: &SentencePlan,
    log_probs: &[Vec<f32>],
    column: &HashMap<u32, usize>,
    input: MeasureInput,
) -> ProbeResult {
    let k = plan.candidate_ids.len();
    let mut sums = vec![[0f64; 2]; input.professions.len()];
    let mut raw = Vec::with_capacity(plan.instances.len());
    for inst in &plan.instances {
        let am = word_log_prob(&inst.word_ids, &log_probs[inst.am], column, k);
        let tam = word_log_prob(&inst.word_ids, &log_probs[inst.tam], column, k);
        let score = am - tam;
        let gender = input.phrases[inst.phrase].gender;
        sums[inst.profession][(gender == Gender::Female) as usize] += score.exp();
        raw.push(RawScore {
            template_id: input.templates[inst.template].id.clone(),
            profession: input.professions[inst.profession].name.clone(),
            gendered_word: inst.word.clone(),
            gender,
            sentence: inst.sentence.clone(),
            sentence_am: plan.sentences[inst.am].text.clone(),
            sentence_tam: plan.sentences[inst.tam].text.clone(),
            masked_ids_sentence_am: plan.sentences[inst.am].positions.clone(),
            masked_ids_sentence_tam: plan.sentences[inst.tam].positions.clone(),
            score,
        });
    }
    let professions = input
        .professions
        .iter()
        .zip(&sums)
        .map(|(p, [male, female])| {
            let total = male + female;
            ProfessionDistribution {
                profession: p.name.clone(),
                group: p.group,
                p_female: female / total,
                p_male: male / total,
                female_share: p.female_share,
                male_share: p.male_share,
            }
        })
        .collect();
    ProbeResult {
        professions,
        raw,
        paper_sentences: 2 * plan.instances.len(),
        forward_sentences: plan.sentences.len(),
    }
}
