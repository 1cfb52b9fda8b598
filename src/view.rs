//! What the web page shows, computed without a browser: the chart's rows and their order, the
//! numbers behind a point, the deep-link parameters, the result document behind a share link.
//! The Leptos components only draw these, so this logic is tested natively; [`page`] holds the
//! page's state and the functions that change it.

pub mod compare;
pub mod lesson;
pub mod page;

use crate::bias::{Correlation, Target};
use crate::data::{Gender, Group, Split};
use crate::protocol::{
    BackendChoice, GenderedWord, ProbeReply, ProfessionRow, ScoreRow, TuneBaselineReply,
    TuneEpochReply, TuneSettings,
};
use crate::share::{CurvePoint, SharedProfession, SharedResult, SharedRunSettings, SharedTuning};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Within each group, by name.
    Name,
    /// Within each group, from the most male to the most female prediction.
    PFemale,
    /// Within each group, the farthest from the BLS share first.
    GapToBls,
}

impl SortOrder {
    pub const ALL: [SortOrder; 3] = [SortOrder::PFemale, SortOrder::GapToBls, SortOrder::Name];

    pub fn label(self) -> &'static str {
        match self {
            SortOrder::Name => "name",
            SortOrder::PFemale => "P(female)",
            SortOrder::GapToBls => "distance from BLS",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.label() == s)
    }
}

/// A chart row: one profession.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRow {
    pub name: String,
    pub group: Group,
    pub p_female: f64,
    pub p_female_after: Option<f64>,
    pub female_share: f64,
}

/// Groups in the order the chart shows them: from male- to female-dominated.
pub const CHART_GROUPS: [Group; 3] = [
    Group::MaleDominated,
    Group::Balanced,
    Group::FemaleDominated,
];

/// A group's name for readers (the data files use the paper's `male_dominated`).
pub fn group_title(group: Group) -> &'static str {
    match group {
        Group::MaleDominated => "male-dominated",
        Group::Balanced => "balanced",
        Group::FemaleDominated => "female-dominated",
    }
}

/// The rows of each group (male-dominated, balanced, female-dominated), sorted within groups.
pub fn chart_groups(result: &SharedResult, order: SortOrder) -> Vec<(Group, Vec<ChartRow>)> {
    CHART_GROUPS
        .into_iter()
        .filter_map(|group| {
            let mut rows: Vec<ChartRow> = result
                .professions
                .iter()
                .filter(|p| p.group == group)
                .map(|p| ChartRow {
                    name: p.name.clone(),
                    group,
                    p_female: p.p_female,
                    p_female_after: p.p_female_after,
                    female_share: p.female_share,
                })
                .collect();
            let value = |r: &ChartRow| r.p_female_after.unwrap_or(r.p_female);
            match order {
                SortOrder::Name => rows.sort_by(|a, b| a.name.cmp(&b.name)),
                SortOrder::PFemale => rows.sort_by(|a, b| value(a).total_cmp(&value(b))),
                SortOrder::GapToBls => rows.sort_by(|a, b| {
                    (value(b) - b.female_share)
                        .abs()
                        .total_cmp(&(value(a) - a.female_share).abs())
                }),
            }
            (!rows.is_empty()).then_some((group, rows))
        })
        .collect()
}

/// The association scores behind one profession's point: per template, each phrase's score.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTable {
    pub templates: Vec<String>,
    /// (phrase word, gender, one score per template; `None` where absent).
    pub rows: Vec<(String, Gender, Vec<Option<f64>>)>,
}

pub fn score_table(profession: &str, scores: &[ScoreRow]) -> ScoreTable {
    let mine: Vec<&ScoreRow> = scores
        .iter()
        .filter(|s| s.profession == profession)
        .collect();
    let mut templates: Vec<String> = Vec::new();
    let mut words: Vec<(String, Gender)> = Vec::new();
    for s in &mine {
        if !templates.contains(&s.template_id) {
            templates.push(s.template_id.clone());
        }
        if !words.iter().any(|(w, g)| *w == s.word && *g == s.gender) {
            words.push((s.word.clone(), s.gender));
        }
    }
    let rows = words
        .into_iter()
        .map(|(word, gender)| {
            let values = templates
                .iter()
                .map(|t| {
                    mine.iter()
                        .find(|s| s.template_id == *t && s.word == word && s.gender == gender)
                        .map(|s| s.score)
                })
                .collect();
            (word, gender, values)
        })
        .collect();
    ScoreTable { templates, rows }
}

/// The result document of a probe (and, after tuning, the probe of the tuned model): what the
/// page draws and what a share link carries.
pub fn shared_result(
    model: &str,
    before: &ProbeReply,
    after: Option<&ProbeReply>,
    tuning: Option<SharedTuning>,
) -> SharedResult {
    let professions = before
        .professions
        .iter()
        .map(|p| SharedProfession {
            name: p.profession.clone(),
            group: p.group,
            female_share: p.female_share,
            p_female: p.p_female,
            p_female_after: after.and_then(|a| {
                a.professions
                    .iter()
                    .find(|q| q.profession == p.profession)
                    .map(|q| q.p_female)
            }),
        })
        .collect::<Vec<_>>();
    // A link carries after-values only when every profession has one.
    let complete = professions.iter().all(|p| p.p_female_after.is_some());
    let (professions, tuning) = if after.is_some() && complete && tuning.is_some() {
        (professions, tuning)
    } else {
        (
            professions
                .into_iter()
                .map(|p| SharedProfession {
                    p_female_after: None,
                    ..p
                })
                .collect(),
            None,
        )
    };
    SharedResult {
        model: model.chars().take(200).collect(),
        split: before.split.label().to_string(),
        professions,
        tuning,
        app_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        edited_benchmark: false,
        model_fingerprint: None,
        compared_with: None,
    }
}

/// The benchmark's gendered words at one mask, as the fill-mask view shows them: male and
/// female words side by side in the benchmark's order (he beside she, man beside woman), and
/// the probability of each side in all.
#[derive(Debug, Clone, PartialEq)]
pub struct GenderedTable {
    pub rows: Vec<[Option<(String, f64)>; 2]>,
    pub male: f64,
    pub female: f64,
}

impl GenderedTable {
    /// The female words' share of the mass the two sides hold (None when both are 0).
    pub fn female_share(&self) -> Option<f64> {
        let all = self.male + self.female;
        (all > 0.0).then(|| self.female / all)
    }
}

pub fn gendered_table(words: &[GenderedWord]) -> GenderedTable {
    let side = |gender: Gender| -> Vec<(String, f64)> {
        words
            .iter()
            .filter(|w| w.gender == gender)
            .map(|w| (w.word.clone(), w.probability))
            .collect()
    };
    let (male, female) = (side(Gender::Male), side(Gender::Female));
    let sum = |v: &[(String, f64)]| v.iter().map(|(_, p)| p).sum::<f64>();
    GenderedTable {
        rows: (0..male.len().max(female.len()))
            .map(|i| [male.get(i).cloned(), female.get(i).cloned()])
            .collect(),
        male: sum(&male),
        female: sum(&female),
    }
}

/// What to say about the browser's storage for this page: its use against the quota, and a
/// warning when little is left (a model download that does not fit is not kept, so every visit
/// downloads it again).
pub fn storage_sentence(usage: f64, quota: f64) -> (String, bool) {
    let near = quota > 0.0 && usage / quota >= 0.8;
    let text = format!(
        "This page keeps {} of the {} the browser allows it.{}",
        bytes_label(usage as u64),
        bytes_label(quota as u64),
        if near {
            " That is nearly all: delete a kept model to make room, or the next download is \
             not kept."
        } else {
            ""
        }
    );
    (text, near)
}

/// A label cut to `max` characters with an ellipsis, at a word boundary where one is near: a
/// chart's label column has a fixed width (the full name stays in the row's title).
pub fn fit_label(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_string();
    }
    let head: String = name.chars().take(max.saturating_sub(1)).collect();
    let cut = match head.rfind(' ') {
        Some(i) if i * 3 >= head.len() * 2 => head[..i].trim_end_matches([',', ' ']).to_string(),
        _ => head,
    };
    format!("{cut}…")
}

/// The valid split while a WALF run goes on: the professions before the run beside their
/// distributions after the last validated epoch, so that a class sees the dots move epoch by
/// epoch rather than only when the run ends.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveValidation {
    pub result: SharedResult,
    /// The epoch (0-based) whose distributions are the "after" dots; None before the first
    /// epoch is validated.
    pub epoch: Option<usize>,
}

pub fn live_validation(
    model: &str,
    baseline: &TuneBaselineReply,
    epochs: &[TuneEpochReply],
    tuning: SharedTuning,
) -> LiveValidation {
    let as_probe = |professions: &[ProfessionRow]| ProbeReply {
        split: Split::Valid,
        professions: professions.to_vec(),
        scores: Vec::new(),
        forward_sentences: 0,
        seconds: 0.0,
        threads: 1,
    };
    let before = as_probe(&baseline.professions);
    let last = epochs
        .iter()
        .rev()
        .find(|e| !e.valid_professions.is_empty());
    let after = last.map(|e| as_probe(&e.valid_professions));
    let result = shared_result(model, &before, after.as_ref(), Some(tuning));
    // An epoch that lacks a profession of the baseline (an edited benchmark cannot change
    // within a run, so this is a kept run of an older page) draws no after dots.
    let epoch = last.map(|e| e.epoch).filter(|_| result.tuning.is_some());
    LiveValidation { result, epoch }
}

/// A run as a link carries it: its settings (those every link has and the rest) and its curves.
pub fn shared_tuning(s: &TuneSettings, epochs: u32, curve: Vec<CurvePoint>) -> SharedTuning {
    SharedTuning {
        method: s.method,
        target: s.target,
        lr: s.lr,
        gamma: s.gamma,
        beta: s.beta,
        batch_size: u32::try_from(s.batch_size).unwrap_or(u32::MAX),
        epochs,
        curve,
        run: Some(shared_run_settings(s)),
    }
}

/// The settings of a run beyond the ones every link carries.
pub fn shared_run_settings(s: &TuneSettings) -> SharedRunSettings {
    let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    SharedRunSettings {
        max_epochs: small(s.max_epochs),
        patience: small(s.patience),
        dropout: s.dropout,
        mlm_positions: s.mlm_positions.map(small),
        mlm_sentences: s.mlm_sentences.map(small),
        max_steps: s.max_steps.map(small),
        weight_decay: (s.weight_decay != crate::walf::paper::WEIGHT_DECAY)
            .then_some(s.weight_decay),
        seed: (s.seed != crate::walf::paper::SEED).then_some(s.seed),
        min_delta: s.min_delta,
    }
}

/// The `walf` commands that measure (and tune) as this result did, one per line, a comment
/// first where the model must be fetched into a folder. Numbers are written as Rust prints
/// them, which the command line reads back to the same value.
pub fn walf_commands(result: &SharedResult) -> Vec<String> {
    let bundled = crate::protocol::BUNDLED_MODELS
        .iter()
        .map(|(id, _)| *id)
        .find(|id| result.model == *id || result.model.starts_with(&format!("{id} (")));
    let mut lines = Vec::new();
    let model = match bundled {
        Some(id) => id.to_string(),
        None => {
            let folder = format!("./{}", file_stem(&result.model));
            lines.push(format!(
                "# {folder}: a folder with {}'s config.json, tokenizer.json and model.safetensors",
                result.model
            ));
            folder
        }
    };
    if result.edited_benchmark {
        lines.push(
            "# the benchmark was edited in the page: add --data with a folder of the edited \
             professions.tsv, templates.tsv and gendered_phrases.tsv"
                .into(),
        );
    }
    lines.push(format!(
        "walf probe --model {model} --split {} --target both",
        result.split
    ));
    if let Some(t) = &result.tuning {
        let mut tune = format!(
            "walf tune --model {model} --target {} --lr {} --gamma {} --beta {} --batch-size {}",
            t.target.label(),
            t.lr,
            t.gamma,
            t.beta,
            t.batch_size
        );
        if t.method == crate::protocol::TuneMethod::Cda {
            lines.push(
                "# cda-text.txt: the general text the CDA run trained on (a link does not carry it)"
                    .into(),
            );
            tune += " --method cda --text cda-text.txt";
        }
        if let Some(run) = &t.run {
            tune += &format!(
                " --max-epochs {} --patience {}",
                run.max_epochs, run.patience
            );
            if !run.dropout {
                tune += " --no-dropout";
            }
            if let Some(k) = run.mlm_positions {
                tune += &format!(" --mlm-positions {k}");
            }
            if let Some(m) = run.mlm_sentences {
                tune += &format!(" --mlm-sentences {m}");
            }
            if let Some(d) = run.weight_decay {
                tune += &format!(" --weight-decay {d}");
            }
            if let Some(seed) = run.seed {
                tune += &format!(" --seed {seed}");
            }
            if let Some(d) = run.min_delta {
                tune += &format!(" --min-delta {d}");
            }
            if let Some(steps) = run.max_steps {
                lines.push(format!(
                    "# the page stopped this run after {steps} steps; walf tune runs its epochs"
                ));
            }
        }
        lines.push(format!("{tune} --out walf-tuned"));
    }
    lines
}

/// What the JSON export says about how its numbers were made, enough to repeat them with
/// `walf`: the app's version, the model and its files' fingerprint, the split, whether the
/// benchmark was edited, and for a tuned result the method, target and every setting
/// (the seed included).
pub fn run_manifest(result: &SharedResult) -> serde_json::Value {
    let run = result.tuning.as_ref().map(|t| {
        let r = t.run.as_ref();
        serde_json::json!({
            "method": match t.method {
                crate::protocol::TuneMethod::Walf => "walf",
                crate::protocol::TuneMethod::Cda => "cda",
            },
            "target": t.target.label(),
            "lr": t.lr,
            "gamma": t.gamma,
            "beta": t.beta,
            "batch_size": t.batch_size,
            "epochs_run": t.epochs,
            "max_epochs": r.map(|r| r.max_epochs),
            "patience": r.map(|r| r.patience),
            "dropout": r.map(|r| r.dropout),
            "mlm_positions": r.and_then(|r| r.mlm_positions),
            "mlm_sentences": r.and_then(|r| r.mlm_sentences),
            "max_steps": r.and_then(|r| r.max_steps),
            "weight_decay": r.map(|r| r.weight_decay.unwrap_or(crate::walf::paper::WEIGHT_DECAY)),
            "seed": r.map(|r| r.seed.unwrap_or(crate::walf::paper::SEED)),
            "min_delta": r.map(|r| r.min_delta.unwrap_or(crate::walf::paper::min_delta(t.target))),
        })
    });
    serde_json::json!({
        "app_version": result.app_version,
        "model": result.model,
        "model_fingerprint": result.model_fingerprint,
        "split": result.split,
        "edited_benchmark": result.edited_benchmark,
        "tuning": run,
        "walf_commands": walf_commands(result),
    })
}

/// A part of the page a teacher can leave out of a simplified page (`?hide=tune,fill,model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenPart {
    /// The model panel: the class sees the model the link names, and cannot change it.
    Model,
    Fill,
    Tune,
    Share,
}

impl HiddenPart {
    pub const ALL: [HiddenPart; 4] = [
        HiddenPart::Model,
        HiddenPart::Fill,
        HiddenPart::Tune,
        HiddenPart::Share,
    ];

    pub fn label(self) -> &'static str {
        match self {
            HiddenPart::Model => "model",
            HiddenPart::Fill => "fill",
            HiddenPart::Tune => "tune",
            HiddenPart::Share => "share",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.label() == s)
    }
}

/// The `hide=` parameter that gives the same simplified page (empty when nothing is hidden):
/// the Share tab's links keep it, so a class's links open as the teacher's page did.
pub fn hide_parameter(hidden: &[HiddenPart]) -> String {
    if hidden.is_empty() {
        return String::new();
    }
    let parts: Vec<&str> = hidden.iter().map(|p| p.label()).collect();
    format!("?hide={}", parts.join(","))
}

/// The page's address parameters (`?model=…&hub=…&split=…&target=…&backend=…&hide=…`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageQuery {
    pub model: Option<String>,
    pub hub: Option<String>,
    pub split: Option<Split>,
    pub target: Option<Target>,
    pub backend: Option<BackendChoice>,
    /// The parts a teacher left out, each once.
    pub hide: Vec<HiddenPart>,
    /// `lesson=1`: open on the classroom lesson.
    pub lesson: bool,
    /// Parameters that were given but not understood, as messages.
    pub problems: Vec<String>,
}

/// Decodes `%XX` escapes and `+` as in a query string; invalid escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(search: &str) -> PageQuery {
    let mut q = PageQuery::default();
    for pair in search.trim_start_matches('?').split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        let value = value.trim();
        match key {
            "model" if !value.is_empty() => q.model = Some(value.to_string()),
            "hub" if !value.is_empty() => q.hub = Some(value.to_string()),
            "split" => match Split::parse(value) {
                Some(s) => q.split = Some(s),
                None => q.problems.push(format!(
                    "split={value} is not a split (train, valid, test or all)"
                )),
            },
            "target" => match Target::parse(value) {
                Some(t) => q.target = Some(t),
                None => q.problems.push(format!(
                    "target={value} is not a target (equal or real-world)"
                )),
            },
            "backend" => match BackendChoice::parse(value) {
                Some(b) => q.backend = Some(b),
                None => q.problems.push(format!(
                    "backend={value} is not a backend (auto, webgpu or cpu)"
                )),
            },
            "lesson" => q.lesson = matches!(value, "1" | "true" | "yes" | ""),
            "hide" => {
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match HiddenPart::parse(part) {
                        Some(p) if !q.hide.contains(&p) => q.hide.push(p),
                        Some(_) => {}
                        None => q.problems.push(format!(
                            "hide={part} is not a part of the page (model, fill, tune or share)"
                        )),
                    }
                }
            }
            _ => {}
        }
    }
    q
}

/// `1234567` bytes as `1.2 MB`.
pub fn bytes_label(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.0} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// The correlation in words a class can be told, e.g. "The model ranks the 225 professions
/// much as the 2024 statistics do: Spearman ρ = 0.62 (Pearson r = 0.58)."
pub fn correlation_sentence(c: Option<Correlation>) -> String {
    let Some(c) = c else {
        return "No ranking against the statistics: it needs two professions or more, with \
                different values."
            .into();
    };
    let how = match c.spearman {
        r if r >= 0.7 => "closely as",
        r if r >= 0.4 => "much as",
        r if r >= 0.1 => "a little as",
        r if r > -0.1 => "unlike how",
        _ => "opposite to how",
    };
    format!(
        "The model ranks the {} professions {how} the 2024 statistics do: Spearman ρ = {:.2} \
         (Pearson r = {:.2}) between its P(female) and the BLS share of women.",
        c.professions, c.spearman, c.pearson
    )
}

/// `0.4523` as `45.2%`.
pub fn percent(p: f64) -> String {
    format!("{:.1}%", 100.0 * p)
}

/// A number for a class to read at a glance (chart ticks, variances): three significant digits
/// in plain notation (0.0941, 0.0000714, 5.23, 360), not 9.408e-2 or 0.000000; e-notation only
/// below 1e-8.
pub fn plain_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() < 1e-8 {
        return format!("{v:.2e}");
    }
    let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

/// A name made fit for a downloaded file: every run of characters other than letters, digits,
/// dots and underscores becomes one dash ("brown-bert (bundled)" → "brown-bert-bundled").
pub fn file_stem(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simplified_page_hides_the_parts_its_address_names() {
        let q = parse_query("?hide=tune,fill%2Cmodel,tune&split=valid");
        assert_eq!(
            q.hide,
            [HiddenPart::Tune, HiddenPart::Fill, HiddenPart::Model]
        );
        assert_eq!(q.split, Some(Split::Valid));
        assert!(q.problems.is_empty());
        assert_eq!(hide_parameter(&q.hide), "?hide=tune,fill,model");
        assert_eq!(parse_query(&hide_parameter(&q.hide)).hide, q.hide);
        assert_eq!(hide_parameter(&[]), "");
        assert!(parse_query("?lesson=1").lesson && !parse_query("?split=test").lesson);
        let q = parse_query("?hide=probe,share");
        assert_eq!(q.hide, [HiddenPart::Share]);
        assert!(q.problems[0].contains("hide=probe"), "{:?}", q.problems);
    }

    #[test]
    fn the_manifest_names_the_model_the_method_and_every_setting() {
        let settings = TuneSettings {
            seed: 9,
            ..TuneSettings::classroom(Target::RealWorld)
        };
        let before = ProbeReply {
            split: Split::Test,
            professions: Vec::new(),
            scores: Vec::new(),
            forward_sentences: 0,
            seconds: 0.0,
            threads: 1,
        };
        let mut result = shared_result(
            "minilm-brown (bundled)",
            &before,
            Some(&before),
            Some(shared_tuning(&settings, 3, Vec::new())),
        );
        result.model_fingerprint = Some("0123456789abcdef".into());
        let m = run_manifest(&result);
        assert_eq!(m["model_fingerprint"], "0123456789abcdef");
        assert_eq!(m["split"], "test");
        let t = &m["tuning"];
        assert_eq!(t["method"], "walf");
        assert_eq!(t["target"], "real-world");
        assert_eq!(t["seed"], 9);
        assert_eq!(t["weight_decay"], crate::walf::paper::WEIGHT_DECAY);
        assert_eq!(
            t["min_delta"],
            crate::walf::paper::min_delta(Target::RealWorld)
        );
        assert_eq!(t["mlm_positions"], crate::walf::classroom::MLM_POSITIONS);
        assert_eq!(t["mlm_sentences"], crate::walf::classroom::MLM_SENTENCES);
        assert_eq!(t["dropout"], false);
        assert!(m["walf_commands"][1].as_str().unwrap().contains("--seed 9"));
        let untuned = shared_result("m", &before, None, None);
        assert!(run_manifest(&untuned)["tuning"].is_null());
    }

    #[test]
    fn a_target_reads_back_from_its_label_and_the_usual_spellings() {
        for t in [Target::Equal, Target::RealWorld] {
            assert_eq!(Target::parse(t.label()), Some(t));
        }
        assert_eq!(Target::parse("bls"), Some(Target::RealWorld));
        assert_eq!(Target::parse("real_world"), Some(Target::RealWorld));
        assert_eq!(Target::parse("fair"), None);
        assert_eq!(parse_query("?target=bls").target, Some(Target::RealWorld));
    }

    #[test]
    fn gendered_words_stand_in_pairs_with_each_sides_sum() {
        let word = |w: &str, gender, probability| GenderedWord {
            word: w.into(),
            gender,
            probability,
        };
        let table = gendered_table(&[
            word("he", Gender::Male, 0.3),
            word("man", Gender::Male, 0.1),
            word("son", Gender::Male, 0.05),
            word("she", Gender::Female, 0.2),
            word("woman", Gender::Female, 0.05),
        ]);
        assert_eq!(table.rows.len(), 3);
        assert_eq!(
            table.rows[0],
            [Some(("he".into(), 0.3)), Some(("she".into(), 0.2))]
        );
        assert_eq!(table.rows[2], [Some(("son".into(), 0.05)), None]);
        assert!((table.male - 0.45).abs() < 1e-12 && (table.female - 0.25).abs() < 1e-12);
        assert!((table.female_share().unwrap() - 0.25 / 0.7).abs() < 1e-12);
        assert_eq!(gendered_table(&[]).female_share(), None);
    }

    #[test]
    fn plain_numbers_have_three_significant_digits_in_plain_notation() {
        assert_eq!(plain_number(0.09408), "0.0941");
        assert_eq!(plain_number(7.136e-5), "0.0000714");
        assert_eq!(plain_number(5.2345), "5.23");
        assert_eq!(plain_number(360.4), "360");
        assert_eq!(plain_number(-0.5), "-0.500");
        assert_eq!(plain_number(0.0), "0");
        assert_eq!(plain_number(3e-10), "3.00e-10");
    }

    #[test]
    fn a_result_names_the_walf_commands_that_repeat_it() {
        let before = reply(&[("nurse", Group::FemaleDominated, 0.7, 0.87)]);
        let mut r = shared_result("minilm-brown (bundled)", &before, None, None);
        assert_eq!(
            walf_commands(&r),
            ["walf probe --model minilm-brown --split test --target both"]
        );
        let mut settings = TuneSettings::classroom(Target::RealWorld);
        settings.max_steps = Some(40);
        r.tuning = Some(shared_tuning(&settings, 2, Vec::new()));
        r.model = "org/some model".into();
        r.edited_benchmark = true;
        let lines = walf_commands(&r);
        assert!(lines[0].starts_with("# ./org-some-model: a folder with org/some model's"));
        assert!(lines[1].contains("--data"));
        assert_eq!(
            lines[2],
            "walf probe --model ./org-some-model --split test --target both"
        );
        assert!(lines[3].contains("after 40 steps"));
        assert_eq!(
            lines[4],
            "walf tune --model ./org-some-model --target real-world --lr 0.00002 --gamma 0.1 \
             --beta 0.95 --batch-size 8 --max-epochs 8 --patience 5 --no-dropout \
             --mlm-positions 1 --mlm-sentences 20 --out walf-tuned"
        );
    }

    #[test]
    fn the_storage_sentence_warns_when_little_is_left() {
        let (text, near) = storage_sentence(12e6, 1e9);
        assert!(!near && text.starts_with("This page keeps 12"), "{text}");
        let (text, near) = storage_sentence(850e6, 1e9);
        assert!(near && text.contains("nearly all"), "{text}");
        assert!(!storage_sentence(0.0, 0.0).1);
    }

    #[test]
    fn long_labels_are_cut_with_an_ellipsis() {
        assert_eq!(fit_label("nurse", 34), "nurse");
        let exact = "computer controlled tool operator";
        assert_eq!(fit_label(exact, 33), exact);
        let long = "Secretaries and administrative assistants, except legal";
        let cut = fit_label(long, 34);
        assert!(cut.chars().count() <= 34, "{cut}");
        assert_eq!(cut, "Secretaries and administrative…");
        // no space near the end: cut inside the word
        let word = "a".repeat(50);
        assert_eq!(fit_label(&word, 10), format!("{}…", "a".repeat(9)));
        assert_eq!(fit_label("ééééé", 3), "éé…");
    }

    #[test]
    fn file_stems_have_single_dashes() {
        assert_eq!(file_stem("brown-bert (bundled)"), "brown-bert-bundled");
        assert_eq!(file_stem("org/model name"), "org-model-name");
        assert_eq!(file_stem("  (x)  "), "x");
        assert_eq!(file_stem("minilm_brown.v2"), "minilm_brown.v2");
    }

    #[test]
    fn the_correlation_is_said_in_words_with_its_numbers() {
        let c = |spearman| Correlation {
            professions: 45,
            spearman,
            pearson: 0.5,
        };
        let strong = correlation_sentence(Some(c(0.745)));
        assert!(strong.contains("45 professions closely as"), "{strong}");
        assert!(
            strong.contains("ρ = 0.74") || strong.contains("ρ = 0.75"),
            "{strong}"
        );
        assert!(correlation_sentence(Some(c(-0.25))).contains("opposite to how"));
        assert!(correlation_sentence(Some(c(0.0))).contains("unlike how"));
        assert!(correlation_sentence(None).starts_with("No ranking"));
    }

    fn rows(values: &[(&str, f64)]) -> Vec<ProfessionRow> {
        values
            .iter()
            .map(|(n, p)| ProfessionRow {
                profession: n.to_string(),
                group: Group::Balanced,
                p_female: *p,
                female_share: 0.5,
            })
            .collect()
    }

    fn epoch(epoch: usize, values: &[(&str, f64)]) -> TuneEpochReply {
        TuneEpochReply {
            epoch,
            train_loss: 1.0,
            valid_kl: 0.1,
            improved: true,
            best_epoch: epoch,
            valid_professions: rows(values),
        }
    }

    #[test]
    fn the_live_chart_shows_the_last_validated_epoch_beside_the_baseline() {
        let tuning = SharedTuning {
            method: crate::protocol::TuneMethod::Walf,
            target: Target::Equal,
            lr: 2e-5,
            gamma: 1.0,
            beta: 0.9,
            batch_size: 8,
            epochs: 0,
            curve: Vec::new(),
            run: None,
        };
        let baseline = TuneBaselineReply {
            valid_kl: 0.2,
            professions: rows(&[("nurse", 0.8), ("baker", 0.3)]),
        };
        let after = |live: &LiveValidation| -> Vec<Option<f64>> {
            live.result
                .professions
                .iter()
                .map(|p| p.p_female_after)
                .collect()
        };
        // before the first epoch ends: the baseline alone
        let live = live_validation("m", &baseline, &[], tuning.clone());
        assert_eq!((live.epoch, after(&live)), (None, vec![None, None]));
        assert!(live.result.tuning.is_none());
        assert_eq!(live.result.split, "valid");
        assert_eq!(live.result.professions[0].p_female, 0.8);
        // the last epoch that carries distributions, in the baseline's order
        let epochs = [
            epoch(0, &[("nurse", 0.7), ("baker", 0.35)]),
            epoch(1, &[("baker", 0.45), ("nurse", 0.6)]),
            epoch(2, &[]),
        ];
        let live = live_validation("m", &baseline, &epochs, tuning.clone());
        assert_eq!(live.epoch, Some(1));
        assert_eq!(after(&live), vec![Some(0.6), Some(0.45)]);
        assert!(live.result.tuning.is_some());
        // an epoch that lacks a profession draws no after dots
        let partial = [epoch(0, &[("nurse", 0.7)])];
        let live = live_validation("m", &baseline, &partial, tuning);
        assert_eq!((live.epoch, after(&live)), (None, vec![None, None]));
    }

    fn reply(values: &[(&str, Group, f64, f64)]) -> ProbeReply {
        ProbeReply {
            threads: 1,
            split: Split::Test,
            professions: values
                .iter()
                .map(|(n, g, p, s)| ProfessionRow {
                    profession: n.to_string(),
                    group: *g,
                    p_female: *p,
                    female_share: *s,
                })
                .collect(),
            scores: Vec::new(),
            forward_sentences: 0,
            seconds: 0.0,
        }
    }

    #[test]
    fn rows_are_grouped_in_group_order_and_sorted_within() {
        let r = reply(&[
            ("nurse", Group::FemaleDominated, 0.7, 0.87),
            ("pilot", Group::MaleDominated, 0.3, 0.05),
            ("carpenter", Group::MaleDominated, 0.1, 0.03),
            ("baker", Group::Balanced, 0.5, 0.6),
        ]);
        let result = shared_result("m", &r, None, None);
        let groups = chart_groups(&result, SortOrder::PFemale);
        let names: Vec<Vec<&str>> = groups
            .iter()
            .map(|(_, rows)| rows.iter().map(|r| r.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            vec![vec!["carpenter", "pilot"], vec!["baker"], vec!["nurse"]]
        );
        let by_gap = chart_groups(&result, SortOrder::GapToBls);
        assert_eq!(by_gap[0].1[0].name, "pilot"); // 0.25 from BLS, carpenter 0.07
        let by_name = chart_groups(&result, SortOrder::Name);
        assert_eq!(by_name[0].1[0].name, "carpenter");
    }

    #[test]
    fn after_values_only_with_a_complete_tuning_run() {
        let before = reply(&[
            ("nurse", Group::FemaleDominated, 0.7, 0.87),
            ("pilot", Group::MaleDominated, 0.3, 0.05),
        ]);
        let after = reply(&[
            ("nurse", Group::FemaleDominated, 0.6, 0.87),
            ("pilot", Group::MaleDominated, 0.4, 0.05),
        ]);
        let tuning = SharedTuning {
            method: crate::protocol::TuneMethod::Walf,
            target: Target::Equal,
            lr: 2e-5,
            gamma: 0.1,
            beta: 0.95,
            batch_size: 8,
            epochs: 1,
            curve: Vec::new(),
            run: None,
        };
        let r = shared_result("m", &before, Some(&after), Some(tuning.clone()));
        assert_eq!(r.professions[1].p_female_after, Some(0.4));
        let link = r.to_link().unwrap();
        assert_eq!(SharedResult::from_link(&link).unwrap(), r);
        let partial = reply(&[("nurse", Group::FemaleDominated, 0.6, 0.87)]);
        let r = shared_result("m", &before, Some(&partial), Some(tuning));
        assert!(r.tuning.is_none() && r.professions.iter().all(|p| p.p_female_after.is_none()));
        assert!(r.to_link().is_ok());
    }

    #[test]
    fn score_table_has_a_column_per_template() {
        let row = |t: &str, w: &str, g, s| ScoreRow {
            template_id: t.into(),
            profession: "nurse".into(),
            word: w.into(),
            gender: g,
            score: s,
        };
        let scores = vec![
            row("T4", "he", Gender::Male, -0.5),
            row("T5", "he", Gender::Male, -0.25),
            row("T4", "she", Gender::Female, 0.5),
        ];
        let t = score_table("nurse", &scores);
        assert_eq!(t.templates, ["T4", "T5"]);
        assert_eq!(t.rows[0].2, vec![Some(-0.5), Some(-0.25)]);
        assert_eq!(t.rows[1].2, vec![Some(0.5), None]);
        assert!(score_table("pilot", &scores).rows.is_empty());
    }

    #[test]
    fn query_parameters() {
        let q = parse_query(
            "?model=distilbert%2Fdistilbert-base-uncased&hub=http%3A%2F%2F127.0.0.1%3A9000&split=test&target=real-world&backend=cpu",
        );
        assert_eq!(
            q.model.as_deref(),
            Some("distilbert/distilbert-base-uncased")
        );
        assert_eq!(q.hub.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(q.split, Some(Split::Test));
        assert_eq!(q.target, Some(Target::RealWorld));
        assert_eq!(q.backend, Some(BackendChoice::Cpu));
        assert!(q.problems.is_empty());
        let q = parse_query("?split=banana&target=%&x=1&model=");
        assert_eq!(q.problems.len(), 2);
        assert_eq!(q.model, None);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%é%"), "%é%");
        assert_eq!(percent_decode("%E2%9C%93+ok"), "✓ ok");
    }

    #[test]
    fn labels() {
        assert_eq!(bytes_label(12_700_000), "12.7 MB");
        assert_eq!(bytes_label(999), "999 B");
        assert_eq!(percent(0.4523), "45.2%");
    }
}
