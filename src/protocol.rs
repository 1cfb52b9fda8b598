//! The messages between the page and the engine's Web Worker. The page never touches a tensor:
//! it sends a `Request`, the worker answers with `Reply`s (progress, then a result or a
//! failure). Messages travel as JSON text; model files travel beside them as byte arrays.

use serde::{Deserialize, Serialize};

use crate::bias::{ProfessionDistribution, Target};
use crate::data::{Gender, Group, Split};
use crate::lm_loss::LossRule;

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSource {
    /// The model shipped with the app: `base` is the address of its folder.
    Bundled { base: String },
    /// A Hugging Face Hub repository (or a mirror with the Hub's `resolve` URLs).
    Hub { id: String, base: String },
    /// Files the user picked: config.json, tokenizer.json and model.safetensors travel with the
    /// message, in that order.
    Local { name: String },
}

/// The models shipped with the app, in `public/models/<id>/` beside the page (the CLI compiles
/// the same folders in); the default first. Each with the words the page shows for it.
pub const BUNDLED_MODELS: [(&str, &str); 2] = [
    (
        "minilm-brown",
        "minilm-brown: a pretrained MiniLM encoder with a masked-LM head learnt on the Brown corpus",
    ),
    ("brown-bert", "brown-bert: a small BERT of 1961 English"),
];

impl ModelSource {
    /// A bundled model (an id of [`BUNDLED_MODELS`]) in the app at `base_url`.
    pub fn bundled(base_url: &str, id: &str) -> Self {
        ModelSource::Bundled {
            base: format!("{}/models/{id}", base_url.trim_end_matches('/')),
        }
    }

    /// The default bundled model in the app at `base_url`.
    pub fn default_bundled(base_url: &str) -> Self {
        Self::bundled(base_url, BUNDLED_MODELS[0].0)
    }

    /// How results name a bundled model: its folder's name.
    pub fn bundled_name(base: &str) -> String {
        let id = base
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(base);
        format!("{id} (bundled)")
    }

    /// The addresses of the bundled model's files (config.json, tokenizer.json,
    /// model.safetensors) in the folder `base`.
    pub fn bundled_files(base: &str) -> [String; 3] {
        crate::hub::MODEL_FILES.map(|file| format!("{}/{file}", base.trim_end_matches('/')))
    }

    /// What the engine will download for this source, which it may start downloading before it
    /// is ready for the request: the bundled model's files. A Hub model is looked up in the
    /// browser's cache first, and local files come with the request.
    pub fn early_downloads(&self) -> Vec<String> {
        match self {
            ModelSource::Bundled { base } => Self::bundled_files(base).to_vec(),
            ModelSource::Hub { .. } | ModelSource::Local { .. } => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendChoice {
    /// WebGPU when the browser offers an adapter, the CPU otherwise.
    Auto,
    Webgpu,
    Cpu,
}

impl BackendChoice {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "webgpu" | "gpu" => Some(Self::Webgpu),
            "cpu" => Some(Self::Cpu),
            _ => None,
        }
    }
}

/// What a tuning run minimises: WALF's loss, or the CDA baseline's (masked-LM fine-tuning on
/// general text with its gendered words swapped), under the same validation and best-weights
/// rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TuneMethod {
    #[default]
    Walf,
    Cda,
}

impl TuneMethod {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "walf" => Some(Self::Walf),
            "cda" => Some(Self::Cda),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Walf => "WALF",
            Self::Cda => "CDA",
        }
    }
}

/// WALF's settings as the page offers them (the rest are the paper's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneSettings {
    /// WALF, or the CDA baseline (which needs a text: `Request::TuneStart::cda_text`). γ and β
    /// are WALF's only; the target chooses CDA's best weights, as WALF's.
    #[serde(default)]
    pub method: TuneMethod,
    pub target: Target,
    pub gamma: f64,
    pub beta: f64,
    pub lr: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    pub patience: usize,
    /// Stop after this many training steps in all (a quick classroom demo); `None`: run to the
    /// end of the epochs.
    pub max_steps: Option<usize>,
    /// The model's dropout while training, as the paper; off makes runs repeatable.
    pub dropout: bool,
    /// Masked positions drawn per sentence for the real-world target's masked-LM term; `None`:
    /// every token in turn, as the paper.
    #[serde(default)]
    pub mlm_positions: Option<usize>,
    /// Filled-in sentences drawn per profession for that term; `None`: all, as the paper.
    #[serde(default)]
    pub mlm_sentences: Option<usize>,
    /// AdamW's decoupled weight decay.
    #[serde(default = "paper_weight_decay")]
    pub weight_decay: f64,
    /// Seeds the shuffles and the sampled masked positions.
    #[serde(default = "paper_seed")]
    pub seed: u64,
    /// The smallest fall of the valid KL that counts for early stopping; `None`: the paper's
    /// for the target.
    #[serde(default)]
    pub min_delta: Option<f64>,
}

fn paper_weight_decay() -> f64 {
    crate::walf::paper::WEIGHT_DECAY
}

fn paper_seed() -> u64 {
    crate::walf::paper::SEED
}

impl TuneSettings {
    pub fn paper(target: Target) -> Self {
        use crate::walf::paper;
        Self {
            method: TuneMethod::Walf,
            target,
            gamma: paper::GAMMA,
            beta: paper::BETA,
            lr: paper::LR,
            batch_size: paper::BATCH_SIZE,
            max_epochs: paper::MAX_EPOCHS,
            patience: paper::PATIENCE,
            max_steps: None,
            dropout: true,
            mlm_positions: None,
            mlm_sentences: None,
            weight_decay: paper::WEIGHT_DECAY,
            seed: paper::SEED,
            min_delta: None,
        }
    }

    /// The early-stopping threshold in force: the user's, or the paper's for the target.
    pub fn min_delta(&self) -> f64 {
        self.min_delta
            .unwrap_or_else(|| crate::walf::paper::min_delta(self.target))
    }

    /// The classroom preset ([`crate::walf::classroom`]): the paper's settings with what it lists
    /// changed.
    pub fn classroom(target: Target) -> Self {
        use crate::walf::classroom;
        Self {
            dropout: classroom::DROPOUT,
            mlm_positions: Some(classroom::MLM_POSITIONS),
            mlm_sentences: Some(classroom::MLM_SENTENCES),
            max_epochs: classroom::MAX_EPOCHS,
            ..Self::paper(target)
        }
    }

    /// Whether these are the classroom preset's settings.
    pub fn is_classroom(&self) -> bool {
        *self
            == Self {
                max_steps: self.max_steps,
                method: self.method,
                ..Self::classroom(self.target)
            }
    }
}

#[cfg(feature = "engine")]
impl TuneSettings {
    /// The trainer's settings for these (the paper's, or a preset, with the user's changes):
    /// the one mapping, for the page's worker and `walf tune`. It lives here so that the
    /// engine never reads the page's messages. Dropout is the model's, set by the caller from
    /// `dropout`.
    pub fn walf_config(&self) -> crate::walf::WalfConfig {
        crate::walf::WalfConfig {
            gamma: self.gamma,
            beta: self.beta,
            lr: self.lr,
            batch_size: self.batch_size,
            max_epochs: self.max_epochs,
            patience: self.patience,
            mlm_positions: self.mlm_positions,
            mlm_sentences: self.mlm_sentences,
            weight_decay: self.weight_decay,
            seed: self.seed,
            min_delta: self.min_delta(),
            ..crate::walf::WalfConfig::paper(self.target)
        }
    }

    /// What the run minimises: WALF's loss, or CDA's on `cda_text` (swapped and tokenized for
    /// `lm`), which CDA needs; the same mapping for the worker and `walf tune`.
    pub fn objective(
        &self,
        cda_text: Option<&str>,
        benchmark: &crate::data::Benchmark,
        lm: &crate::engine::LanguageModel,
    ) -> crate::Result<crate::walf::Objective> {
        use crate::walf::{Objective, cda::CdaText};
        match (self.method, cda_text) {
            (TuneMethod::Walf, _) => Ok(Objective::Walf),
            (TuneMethod::Cda, None) => Err(crate::Error::Input(
                "CDA fine-tunes on general text: choose a plain-text file first".into(),
            )),
            (TuneMethod::Cda, Some(text)) => {
                Ok(Objective::Cda(CdaText::prepare(text, benchmark, lm)?))
            }
        }
    }
}

/// The benchmark rows the user edited; `None` fields keep the bundled ones. Each is the text of
/// the corresponding TSV file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkEdits {
    pub professions_tsv: Option<String>,
    pub templates_tsv: Option<String>,
    pub phrases_tsv: Option<String>,
}

impl BenchmarkEdits {
    /// The benchmark with these files in place of the bundled ones: the one reading of an
    /// override, for the page's edits and `walf --data` alike.
    pub fn benchmark(&self) -> crate::Result<crate::data::Benchmark> {
        use crate::data::{PHRASES_TSV, PROFESSIONS_TSV, TEMPLATES_TSV};
        crate::data::Benchmark::from_tsv(
            self.professions_tsv.as_deref().unwrap_or(PROFESSIONS_TSV),
            self.templates_tsv.as_deref().unwrap_or(TEMPLATES_TSV),
            self.phrases_tsv.as_deref().unwrap_or(PHRASES_TSV),
        )
    }
}

/// Every request carries a job id, chosen by the page: the replies to it, and a refusal, name
/// it, so that an answer never changes the state of a job it does not belong to. Pause, resume
/// and stop carry the id of the run they act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    Load {
        job: u64,
        source: ModelSource,
        backend: BackendChoice,
    },
    /// Measure with the loaded model's current weights (the tuned ones after tuning).
    Probe {
        job: u64,
        split: Split,
        benchmark: BenchmarkEdits,
    },
    Fill {
        job: u64,
        text: String,
        top: usize,
    },
    TuneStart {
        job: u64,
        settings: TuneSettings,
        benchmark: BenchmarkEdits,
        /// The general text a CDA run trains on (plain text, one sentence per line, or a Brown
        /// corpus file); absent for WALF.
        #[serde(default)]
        cda_text: Option<String>,
    },
    TunePause {
        job: u64,
    },
    TuneResume {
        job: u64,
    },
    /// Ends the run after the current step; the best weights so far become the model's.
    TuneStop {
        job: u64,
    },
    /// Masked-LM loss of `text` (one passage per line) under the original and current weights.
    LmLoss {
        job: u64,
        text: String,
        /// Ours (masked tokens only) unless the paper's rule is asked for.
        #[serde(default)]
        rule: LossRule,
    },
    /// The current model as config.json, tokenizer.json and model.safetensors.
    Export {
        job: u64,
    },
    /// Is a WALF run kept in the browser's storage? Answered with `Reply::SavedRun`.
    SavedRun {
        job: u64,
    },
    /// Goes on with the kept run from its last completed epoch, with the loaded model (which
    /// must be the run's own).
    TuneRestore {
        job: u64,
    },
    /// Deletes the kept run; answered with `Reply::SavedRun`.
    DiscardSavedRun {
        job: u64,
    },
}

impl Request {
    /// The job this request starts or, for pause, resume and stop, acts on.
    pub fn job(&self) -> u64 {
        match self {
            Request::Load { job, .. }
            | Request::Probe { job, .. }
            | Request::Fill { job, .. }
            | Request::TuneStart { job, .. }
            | Request::TunePause { job }
            | Request::TuneResume { job }
            | Request::TuneStop { job }
            | Request::LmLoss { job, .. }
            | Request::Export { job }
            | Request::SavedRun { job }
            | Request::TuneRestore { job }
            | Request::DiscardSavedRun { job } => *job,
        }
    }
}

/// Why a job failed, which decides what the page does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Refused at once because a WALF run holds the model: nothing was changed.
    Busy,
    /// What the user gave (files, an address, text, an edited benchmark) cannot be used; the
    /// message says why. Shown beside the input it is about.
    Input,
    /// The GPU stopped answering: the results so far stand, and the CPU can take over.
    DeviceLost,
    /// The engine's worker ended (a panic, an error it could not catch): the page starts a
    /// fresh one and loads the model again.
    Crashed,
    /// A fault of the engine itself; the message is for a bug report.
    Internal,
}

impl FailureKind {
    /// The kind of an engine error on a device that is a GPU (`on_gpu`) or not: only a failed
    /// read-back from a GPU is a lost device.
    pub fn of(error: &crate::Error, on_gpu: bool) -> Self {
        use crate::Error;
        match error {
            Error::DeviceLost(_) if on_gpu => FailureKind::DeviceLost,
            Error::DeviceLost(_) | Error::Backend(_) => FailureKind::Internal,
            Error::InvalidFile { .. }
            | Error::MissingTensor { .. }
            | Error::TensorShape { .. }
            | Error::TensorDtype { .. }
            | Error::UnsupportedArchitecture { .. }
            | Error::Tokenizer(_)
            | Error::Input(_)
            | Error::Data { .. }
            | Error::UnknownTokens { .. }
            | Error::Training(_) => FailureKind::Input,
        }
    }
}

/// A WALF run kept in the browser's storage as it trains (weights at the end of its last
/// completed epoch, the best weights, its records), so that a reload or a crash can go on
/// from there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRun {
    /// The model's name as the page shows it.
    pub model: String,
    pub source: ModelSource,
    pub settings: TuneSettings,
    pub benchmark: BenchmarkEdits,
    /// A CDA run's text, which going on with it needs.
    #[serde(default)]
    pub cda_text: Option<String>,
    pub epochs_done: usize,
    pub steps_done: usize,
    /// The best validation so far: KL and 0-based epoch.
    pub best: Option<(f64, usize)>,
    pub steps: Vec<TuneStepReply>,
    pub epochs: Vec<TuneEpochReply>,
    /// The valid split before the run (absent in runs kept by an older page).
    #[serde(default)]
    pub baseline: Option<TuneBaselineReply>,
    /// When it was saved, in milliseconds since 1970.
    pub saved_at: f64,
}

/// Which device runs the engine, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// In plain words: "this computer's processor (CPU)".
    pub name: String,
    /// The technical detail (library, kernel), shown on request.
    #[serde(default)]
    pub detail: String,
    /// Why this one (e.g. no WebGPU adapter), shown to the user.
    pub notice: Option<String>,
    pub gpu: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfessionRow {
    pub profession: String,
    pub group: Group,
    pub p_female: f64,
    pub female_share: f64,
}

impl From<&ProfessionDistribution> for ProfessionRow {
    fn from(p: &ProfessionDistribution) -> Self {
        Self {
            profession: p.profession.clone(),
            group: p.group,
            p_female: p.p_female,
            female_share: p.female_share,
        }
    }
}

/// One association score of the paper (template × phrase) for a profession.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRow {
    pub template_id: String,
    pub profession: String,
    pub word: String,
    pub gender: Gender,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReply {
    pub split: Split,
    pub professions: Vec<ProfessionRow>,
    pub scores: Vec<ScoreRow>,
    pub forward_sentences: usize,
    pub seconds: f64,
    /// Workers that computed part of it (the engine's and its helpers, on the CPU backend).
    #[serde(default = "one")]
    pub threads: usize,
}

fn one() -> usize {
    1
}

/// One of the model's predictions at a masked position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenProbability {
    pub token: String,
    pub id: u32,
    pub probability: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskFill {
    pub position: usize,
    pub top: Vec<TokenProbability>,
    /// The benchmark's gendered words ([`crate::data::Benchmark::gendered_words`]) that the
    /// vocabulary holds as one token, with their probability here.
    pub gender_words: Vec<GenderedWord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenderedWord {
    pub word: String,
    pub gender: Gender,
    pub probability: f64,
}

/// One WALF training step, as the curves need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneStepReply {
    pub step: usize,
    pub epoch: usize,
    pub batch: usize,
    pub batches: usize,
    /// The professions' group and their KL: WALF's steps only (a CDA step trains on text).
    pub group: Option<Group>,
    pub kl: Option<f64>,
    pub mlm_loss: Option<f64>,
    pub lambda: Option<f64>,
    /// What the KL's gradient is multiplied by, λ / (tracker mean + α) (real-world target).
    #[serde(default)]
    pub scale: Option<f64>,
    pub total_loss: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneEpochReply {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_kl: f64,
    pub improved: bool,
    pub best_epoch: usize,
    /// The valid professions' distributions after this epoch, which the page draws beside the
    /// baseline while the run goes on (empty in runs kept by an older page).
    #[serde(default)]
    pub valid_professions: Vec<ProfessionRow>,
}

/// The valid split measured before a run's first step: where its valid-KL curve and its live
/// chart start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneBaselineReply {
    pub valid_kl: f64,
    pub professions: Vec<ProfessionRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// The worker has started and takes requests.
    Ready,
    Progress {
        job: Option<u64>,
        what: String,
        done: u64,
        total: u64,
    },
    Loaded {
        name: String,
        architecture: String,
        parameters: usize,
        vocab_size: usize,
        mask_token: String,
        backend: BackendInfo,
        /// Downloaded now (false: read from the browser's cache or bundled).
        downloaded: bool,
        /// Names the exact files (`engine::ModelFiles::fingerprint`), as `walf probe --json`
        /// does.
        #[serde(default)]
        fingerprint: String,
    },
    Probed {
        job: u64,
        result: ProbeReply,
    },
    Filled {
        job: u64,
        masks: Vec<MaskFill>,
    },
    TuneStep {
        job: u64,
        step: TuneStepReply,
    },
    TuneEpoch {
        job: u64,
        epoch: TuneEpochReply,
    },
    TunePaused {
        job: u64,
        paused: bool,
    },
    /// The valid split before tuning, sent before a new run's first step.
    TuneBaseline {
        job: u64,
        baseline: TuneBaselineReply,
    },
    /// The run ended; the model now holds the best weights.
    TuneFinished {
        job: u64,
        reason: String,
        steps: usize,
    },
    LmLoss {
        job: u64,
        before: f64,
        after: f64,
        tokens: usize,
        rule: LossRule,
    },
    /// The run was kept in the browser's storage after this many epochs.
    TuneSaved {
        job: u64,
        epochs_done: usize,
    },
    /// The engine moved to another device, or says more of why it runs where it does:
    /// `automatic` timed a training step when a run started.
    Backend {
        backend: BackendInfo,
    },
    /// Something the user should know that does not stop the job (e.g. the run cannot be kept
    /// in the browser's storage).
    Warning {
        message: String,
    },
    /// The WALF run kept in the browser's storage, if any.
    SavedRun {
        run: Option<Box<SavedRun>>,
    },
    /// The files travel beside the message.
    Exported {
        job: u64,
        name: String,
    },
    /// A job failed or was refused. `job` is `None` only where no request is to blame: a
    /// message the engine could not read, or the worker's end.
    Failed {
        job: Option<u64>,
        #[serde(rename = "failure")]
        kind: FailureKind,
        message: String,
    },
}

impl Request {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("requests serialize")
    }

    pub fn from_json(text: &str) -> crate::Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| crate::Error::Input(format!("malformed request to the engine: {e}")))
    }
}

impl Reply {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("replies serialize")
    }

    pub fn from_json(text: &str) -> crate::Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| crate::Error::Input(format!("malformed reply from the engine: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classroom_preset_changes_only_what_it_lists() {
        for target in [Target::Equal, Target::RealWorld] {
            let paper = TuneSettings::paper(target);
            let classroom = TuneSettings::classroom(target);
            assert!(classroom.is_classroom() && !paper.is_classroom());
            assert_eq!(
                TuneSettings {
                    dropout: paper.dropout,
                    mlm_positions: paper.mlm_positions,
                    mlm_sentences: paper.mlm_sentences,
                    max_epochs: paper.max_epochs,
                    ..classroom.clone()
                },
                paper,
                "dropout, the masked-LM sampling and epochs are all it changes"
            );
            assert_ne!(classroom.dropout, paper.dropout);
            assert_ne!(classroom.mlm_positions, paper.mlm_positions);
            assert_ne!(classroom.mlm_sentences, paper.mlm_sentences);
            // a step limit is the user's, not the preset's
            let limited = TuneSettings {
                max_steps: Some(5),
                ..classroom.clone()
            };
            assert!(limited.is_classroom());
            let changed = TuneSettings {
                lr: 1e-4,
                ..classroom
            };
            assert!(!changed.is_classroom());
        }
        assert_eq!(crate::walf::classroom::changes().len(), 3);
    }

    #[test]
    fn settings_saved_before_masked_positions_existed_still_read() {
        let mut old = serde_json::to_value(TuneSettings::paper(Target::RealWorld)).unwrap();
        for field in [
            "mlm_positions",
            "mlm_sentences",
            "weight_decay",
            "seed",
            "min_delta",
        ] {
            old.as_object_mut().unwrap().remove(field);
        }
        let read: TuneSettings = serde_json::from_value(old).unwrap();
        assert_eq!(read, TuneSettings::paper(Target::RealWorld));
    }

    #[test]
    fn only_the_bundled_model_is_downloaded_early_and_its_addresses_are_its_files() {
        let bundled = ModelSource::Bundled {
            base: "http://127.0.0.1:8080/models/brown-bert/".into(),
        };
        assert_eq!(
            bundled.early_downloads(),
            [
                "http://127.0.0.1:8080/models/brown-bert/config.json",
                "http://127.0.0.1:8080/models/brown-bert/tokenizer.json",
                "http://127.0.0.1:8080/models/brown-bert/model.safetensors",
            ]
        );
        let hub = ModelSource::Hub {
            id: "bert-base-uncased".into(),
            base: "https://huggingface.co".into(),
        };
        assert!(hub.early_downloads().is_empty());
        let local = ModelSource::Local {
            name: "mine".into(),
        };
        assert!(local.early_downloads().is_empty());
    }

    #[test]
    fn requests_and_replies_round_trip_as_json() {
        let requests = [
            Request::Load {
                job: 1,
                source: ModelSource::Hub {
                    id: "bert-base-uncased".into(),
                    base: "https://huggingface.co".into(),
                },
                backend: BackendChoice::Auto,
            },
            Request::TuneStart {
                job: 3,
                settings: TuneSettings::paper(Target::RealWorld),
                benchmark: BenchmarkEdits::default(),
                cda_text: Some("He said so.".into()),
            },
            Request::TunePause { job: 3 },
            Request::TuneRestore { job: 4 },
            Request::SavedRun { job: 5 },
            Request::DiscardSavedRun { job: 6 },
        ];
        for (r, job) in requests.into_iter().zip([1, 3, 3, 4, 5, 6]) {
            assert_eq!(r.job(), job);
            assert_eq!(Request::from_json(&r.to_json()).unwrap(), r);
        }
        let reply = Reply::Failed {
            job: Some(2),
            kind: FailureKind::DeviceLost,
            message: "no adapter".into(),
        };
        assert_eq!(Reply::from_json(&reply.to_json()).unwrap(), reply);
        // the reply's own tag is `kind`: the failure's travels beside it
        assert!(reply.to_json().contains(r#""failure":"device_lost""#));
        let kept = Reply::SavedRun {
            run: Some(Box::new(SavedRun {
                model: "fixtures/tiny-bert".into(),
                source: ModelSource::Local {
                    name: "three files".into(),
                },
                settings: TuneSettings::paper(Target::Equal),
                benchmark: BenchmarkEdits::default(),
                cda_text: None,
                epochs_done: 2,
                steps_done: 40,
                best: Some((0.0123456789012345, 1)),
                steps: Vec::new(),
                epochs: vec![TuneEpochReply {
                    epoch: 0,
                    train_loss: 0.1,
                    valid_kl: 0.2,
                    improved: true,
                    best_epoch: 0,
                    valid_professions: vec![ProfessionRow {
                        profession: "nurse".into(),
                        group: Group::FemaleDominated,
                        p_female: 0.75,
                        female_share: 0.87,
                    }],
                }],
                baseline: Some(TuneBaselineReply {
                    valid_kl: 0.25,
                    professions: Vec::new(),
                }),
                saved_at: 1.7e12,
            })),
        };
        assert_eq!(Reply::from_json(&kept.to_json()).unwrap(), kept);
        // A run kept by an older page has no baseline and no valid distributions: it still opens.
        let mut older: serde_json::Value = serde_json::from_str(&kept.to_json()).unwrap();
        older["run"].as_object_mut().unwrap().remove("baseline");
        older["run"]["epochs"][0]
            .as_object_mut()
            .unwrap()
            .remove("valid_professions");
        match Reply::from_json(&older.to_string()).unwrap() {
            Reply::SavedRun { run: Some(run) } => {
                assert!(run.baseline.is_none() && run.epochs[0].valid_professions.is_empty())
            }
            other => panic!("not a kept run: {other:?}"),
        }
        assert!(Reply::from_json("{\"kind\":\"launch_missiles\"}").is_err());
    }

    #[test]
    fn only_a_failed_read_back_from_a_gpu_is_a_lost_device() {
        use crate::Error;
        let read_back = Error::DeviceLost("mapping the buffer failed".into());
        assert_eq!(FailureKind::of(&read_back, true), FailureKind::DeviceLost);
        assert_eq!(FailureKind::of(&read_back, false), FailureKind::Internal);
        // a failed write of the weights, a wrong batch: the engine's fault, not the device's
        let write = Error::Backend("cannot write safetensors: too large".into());
        assert_eq!(FailureKind::of(&write, true), FailureKind::Internal);
        for input in [
            Error::Input("no [MASK] in the text".into()),
            Error::invalid_file("config.json", "not JSON"),
            Error::Tokenizer("no vocabulary".into()),
            Error::UnsupportedArchitecture {
                found: "GPT2".into(),
            },
        ] {
            assert_eq!(FailureKind::of(&input, true), FailureKind::Input, "{input}");
        }
    }

    #[test]
    fn paper_settings_are_walfs_defaults() {
        let s = TuneSettings::paper(Target::Equal);
        assert_eq!(
            (s.lr, s.batch_size, s.max_epochs, s.patience),
            (2e-5, 8, 50, 5)
        );
    }
}
