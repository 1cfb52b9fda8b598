//! Share links: a result (model, split, each profession's distribution before and, after tuning,
//! after, the tuning curves) packed into a URL fragment that opens the same view with no server.
//! `v1.` + base64url(deflate(JSON)). A link is hostile input: its length and its decompressed
//! size are capped before anything is allocated for them, and every field is checked.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::bias::{
    BiasReport, Correlation, ProfessionDistribution, Target, bias_report, correlation,
};
use crate::data::Group;
use crate::error::{Error, Result};
use crate::protocol::TuneMethod;

fn is_walf(method: &TuneMethod) -> bool {
    *method == TuneMethod::Walf
}

const PREFIX: &str = "v1.";
/// Longest fragment accepted (browsers and chat apps truncate far longer URLs anyway).
pub const MAX_LINK_CHARS: usize = 100_000;
/// Largest decompressed document accepted.
pub const MAX_JSON_BYTES: usize = 1 << 20;
const MAX_PROFESSIONS: usize = 2_000;
const MAX_CURVE_POINTS: usize = 20_000;
const MAX_TEXT_CHARS: usize = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedProfession {
    pub name: String,
    pub group: Group,
    /// The target share of women (BLS 2024, or the user's own for a profession they added).
    pub female_share: f64,
    pub p_female: f64,
    /// After tuning, when the link carries a tuning run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_female_after: Option<f64>,
}

/// One training step of the curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurvePoint {
    pub step: u32,
    /// The batch's KL (WALF's steps; a CDA step has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlm_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_kl: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedTuning {
    /// WALF (links before the CDA baseline existed say nothing) or CDA.
    #[serde(default, skip_serializing_if = "is_walf")]
    pub method: TuneMethod,
    pub target: Target,
    pub lr: f64,
    pub gamma: f64,
    pub beta: f64,
    pub batch_size: u32,
    pub epochs: u32,
    pub curve: Vec<CurvePoint>,
    /// The rest of the run's settings, so that the link says how to repeat it with `walf tune`
    /// (links written before these were carried lack them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<SharedRunSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedRunSettings {
    pub max_epochs: u32,
    pub patience: u32,
    pub dropout: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlm_positions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlm_sentences: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
    /// Where the run's weight decay, seed or early-stopping threshold were not the paper's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_delta: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedResult {
    /// A Hub model id or a name the user gave; shown as text, never as markup.
    pub model: String,
    pub split: String,
    pub professions: Vec<SharedProfession>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<SharedTuning>,
    /// The version of walf-lab that measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// The benchmark was edited in the page (the link carries the professions it measured, not
    /// the edited templates or phrases).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub edited_benchmark: bool,
    /// The model's files, as `walf probe --json` names them (16 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_fingerprint: Option<String>,
    /// A second result shown beside this one (another model, or another link's), which a
    /// comparison link carries; it carries none of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared_with: Option<Box<SharedResult>>,
}

fn bad(problem: impl Into<String>) -> Error {
    Error::Input(format!("this link cannot be opened: {}", problem.into()))
}

fn check_text(what: &str, text: &str) -> Result<()> {
    if text.chars().count() > MAX_TEXT_CHARS || text.chars().any(char::is_control) {
        return Err(bad(format!("its {what} is not a plain short text")));
    }
    Ok(())
}

fn check_share(what: &str, value: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&value) {
        return Err(bad(format!(
            "{what} {value} is not a share between 0 and 1"
        )));
    }
    Ok(())
}

impl SharedResult {
    /// A result of `professions` on `split`, untuned, with nothing else said of it.
    pub fn untuned(model: &str, split: &str, professions: Vec<SharedProfession>) -> Self {
        Self {
            model: model.into(),
            split: split.into(),
            professions,
            tuning: None,
            app_version: None,
            edited_benchmark: false,
            model_fingerprint: None,
            compared_with: None,
        }
    }

    fn check(&self) -> Result<()> {
        if let Some(other) = &self.compared_with {
            if other.compared_with.is_some() {
                return Err(bad("it nests one comparison in another"));
            }
            other.check()?;
        }
        check_text("model name", &self.model)?;
        check_text("split", &self.split)?;
        if let Some(v) = &self.app_version {
            check_text("app version", v)?;
        }
        if self.professions.is_empty() || self.professions.len() > MAX_PROFESSIONS {
            return Err(bad(format!(
                "it holds {} professions (1 to {MAX_PROFESSIONS} expected)",
                self.professions.len()
            )));
        }
        let tuned = self.tuning.is_some();
        for p in &self.professions {
            check_text("profession name", &p.name)?;
            check_share("a target share", p.female_share)?;
            check_share("a probability", p.p_female)?;
            match (p.p_female_after, tuned) {
                (Some(after), true) => check_share("a probability", after)?,
                (None, false) => {}
                _ => return Err(bad("before and after values do not match the tuning run")),
            }
        }
        if let Some(f) = &self.model_fingerprint
            && !(f.len() == 16 && f.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(bad("its model fingerprint is not 16 hex digits"));
        }
        if let Some(t) = &self.tuning {
            if t.curve.len() > MAX_CURVE_POINTS {
                return Err(bad("its curves are too long"));
            }
            let finite = |v: f64| v.is_finite();
            let run = t.run.as_ref();
            let ok = [t.lr, t.gamma, t.beta].into_iter().all(finite)
                && run.and_then(|r| r.weight_decay).is_none_or(finite)
                && run.and_then(|r| r.min_delta).is_none_or(finite)
                && t.curve.iter().all(|c| {
                    c.kl.is_none_or(finite)
                        && c.mlm_loss.is_none_or(finite)
                        && c.valid_kl.is_none_or(finite)
                });
            if !ok {
                return Err(bad("it holds a number that is not finite"));
            }
        }
        Ok(())
    }

    /// The fragment (without `#`) that encodes this result.
    pub fn to_link(&self) -> Result<String> {
        self.check()?;
        let json = serde_json::to_vec(self)
            .map_err(|e| Error::Input(format!("cannot encode the result: {e}")))?;
        let packed = miniz_oxide::deflate::compress_to_vec(&json, 9);
        let link = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(packed));
        if link.len() > MAX_LINK_CHARS {
            return Err(Error::Input(
                "this result is too large for a link; export it as JSON instead".into(),
            ));
        }
        Ok(link)
    }

    /// Reads a fragment (with or without the leading `#`); every failure is a message for the
    /// person who opened the link.
    pub fn from_link(link: &str) -> Result<Self> {
        let link = link.trim().trim_start_matches('#');
        if link.len() > MAX_LINK_CHARS {
            return Err(bad("it is longer than any link this app writes"));
        }
        let Some(body) = link.strip_prefix(PREFIX) else {
            return Err(bad(if link.starts_with('v') && link.contains('.') {
                "it was written by another version of this app"
            } else {
                "it is not a walf-lab result link"
            }));
        };
        let packed = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| bad("it is cut short or changed (not base64url)"))?;
        let json = miniz_oxide::inflate::decompress_to_vec_with_limit(&packed, MAX_JSON_BYTES)
            .map_err(|_| bad("it is cut short, changed, or too large once unpacked"))?;
        let result: SharedResult = serde_json::from_slice(&json)
            .map_err(|e| bad(format!("its contents are invalid ({e})")))?;
        result.check()?;
        Ok(result)
    }

    /// The distributions before (or, with `after`, after) tuning, for charts and group tables.
    pub fn distributions(&self, after: bool) -> Option<Vec<ProfessionDistribution>> {
        self.professions
            .iter()
            .map(|p| {
                let f = if after { p.p_female_after? } else { p.p_female };
                Some(ProfessionDistribution {
                    profession: p.name.clone(),
                    group: p.group,
                    p_female: f,
                    p_male: 1.0 - f,
                    female_share: p.female_share,
                    male_share: 1.0 - p.female_share,
                })
            })
            .collect()
    }

    /// How P(female) ranks the professions against the BLS shares, recomputed from the
    /// distributions like the group tables.
    pub fn correlation(&self, after: bool) -> Option<Correlation> {
        self.distributions(after).and_then(|d| correlation(&d))
    }

    /// Group tables, recomputed from the distributions rather than carried in the link.
    pub fn report(&self, target: Target, after: bool) -> Option<BiasReport> {
        self.distributions(after).map(|d| bias_report(&d, target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(tuned: bool) -> SharedResult {
        SharedResult {
            model: "bert-base-uncased".into(),
            split: "test".into(),
            professions: vec![
                SharedProfession {
                    name: "nurse".into(),
                    group: Group::FemaleDominated,
                    female_share: 0.87,
                    p_female: 0.61,
                    p_female_after: tuned.then_some(0.55),
                },
                SharedProfession {
                    name: "carpenter <b>".into(),
                    group: Group::MaleDominated,
                    female_share: 0.03,
                    p_female: 0.2,
                    p_female_after: tuned.then_some(0.4),
                },
            ],
            tuning: tuned.then(|| SharedTuning {
                method: TuneMethod::Walf,
                target: Target::Equal,
                lr: 2e-5,
                gamma: 0.1,
                beta: 0.95,
                batch_size: 8,
                epochs: 3,
                curve: (0..50)
                    .map(|i| CurvePoint {
                        step: i,
                        kl: Some(0.1 / (i + 1) as f64),
                        mlm_loss: Some(2.0),
                        valid_kl: None,
                    })
                    .collect(),
                run: Some(SharedRunSettings {
                    max_epochs: 8,
                    patience: 5,
                    dropout: false,
                    mlm_positions: Some(1),
                    mlm_sentences: Some(20),
                    max_steps: None,
                    weight_decay: None,
                    seed: Some(3),
                    min_delta: Some(5e-4),
                }),
            }),
            app_version: Some("0.1.0".into()),
            edited_benchmark: tuned,
            model_fingerprint: Some("0123456789abcdef".into()),
            compared_with: None,
        }
    }

    #[test]
    fn links_round_trip() {
        for tuned in [false, true] {
            let result = sample(tuned);
            let link = result.to_link().unwrap();
            assert!(link.starts_with("v1."));
            assert!(
                link.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            );
            assert_eq!(
                SharedResult::from_link(&format!("#{link}")).unwrap(),
                result
            );
        }
        let r = sample(true);
        let before = r.report(Target::Equal, false).unwrap();
        let after = r.report(Target::Equal, true).unwrap();
        assert!(after.summary[0].kl_mean < before.summary[0].kl_mean);
        assert!(sample(false).report(Target::Equal, true).is_none());
        // A link written before the run's settings and the version were carried still opens.
        let mut older = sample(true);
        older.tuning.as_mut().unwrap().run = None;
        older.app_version = None;
        older.edited_benchmark = false;
        let json = serde_json::to_string(&older).unwrap();
        assert!(!json.contains("run") && !json.contains("app_version") && !json.contains("edited"));
        assert_eq!(
            SharedResult::from_link(&older.to_link().unwrap()).unwrap(),
            older
        );
    }

    fn message(link: &str) -> String {
        SharedResult::from_link(link).unwrap_err().to_string()
    }

    #[test]
    fn hostile_links_get_messages() {
        let link = sample(true).to_link().unwrap();
        assert!(message("").contains("not a walf-lab result link"));
        assert!(message("v9.AAAA").contains("another version"));
        assert!(message("v1.***").contains("base64url"));
        assert!(message(&link[..link.len() / 2]).contains("cut short"));
        assert!(message(&"v1.".repeat(40_000)).contains("longer"));
        // A deflate bomb: 50 MB of zeros packs into a short link and is refused unpacked.
        let bomb = miniz_oxide::deflate::compress_to_vec(&vec![b' '; 50 << 20], 9);
        let bomb_link = format!("v1.{}", URL_SAFE_NO_PAD.encode(bomb));
        assert!(bomb_link.len() < MAX_LINK_CHARS);
        assert!(message(&bomb_link).contains("too large"));
        // Well-formed JSON with bad contents.
        let pack = |json: &str| {
            format!(
                "v1.{}",
                URL_SAFE_NO_PAD.encode(miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 9))
            )
        };
        let mut r = sample(false);
        r.professions[0].p_female = 7.0;
        let json = serde_json::to_string(&r).unwrap();
        assert!(message(&pack(&json)).contains("not a share"));
        r.professions[0].p_female = 0.5;
        r.model = "x\u{0}<script>".into();
        assert!(message(&pack(&serde_json::to_string(&r).unwrap())).contains("plain short text"));
        assert!(message(&pack("{\"model\":1}")).contains("invalid"));
        assert!(message(&pack("[]")).contains("invalid"));
        let mut extra: serde_json::Value = serde_json::to_value(sample(false)).unwrap();
        extra["script"] = "alert(1)".into();
        assert!(message(&pack(&extra.to_string())).contains("invalid"));
        let mut r = sample(true);
        r.model_fingerprint = Some("<img src=x>".into());
        assert!(message(&pack(&serde_json::to_string(&r).unwrap())).contains("fingerprint"));
        // a comparison carries one other result, checked as any, and no deeper
        let mut other = sample(false);
        other.professions[0].p_female = 2.0;
        let mut r = sample(true);
        r.compared_with = Some(Box::new(other));
        assert!(message(&pack(&serde_json::to_string(&r).unwrap())).contains("not a share"));
        let mut inner = sample(false);
        inner.compared_with = Some(Box::new(sample(false)));
        r.compared_with = Some(Box::new(inner));
        assert!(message(&pack(&serde_json::to_string(&r).unwrap())).contains("nests"));
        r.compared_with = Some(Box::new(sample(false)));
        let link = r.to_link().unwrap();
        assert_eq!(
            SharedResult::from_link(&link).unwrap(),
            r,
            "a comparison link round-trips"
        );
    }
}
