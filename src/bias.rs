//! Distance from a desired distribution: the paper's KL(target ‖ predicted) per profession and
//! its mean and sample variance per group.

use std::fmt::Write as _;

use serde::Serialize;

use crate::data::Group;

/// The model's gender distribution for one profession, as the measure (`measure::probe`) finds
/// it, with the profession's BLS shares beside it. Plain numbers: a shared link carries them too.
#[derive(Debug, Clone, Serialize)]
pub struct ProfessionDistribution {
    pub profession: String,
    pub group: Group,
    pub p_female: f64,
    pub p_male: f64,
    pub female_share: f64,
    pub male_share: f64,
}

/// The desired distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// 50/50 for every profession.
    Equal,
    /// The profession's BLS 2024 share of women.
    RealWorld,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Equal => "equal",
            Target::RealWorld => "real-world",
        }
    }

    /// (male, female) shares wanted for a profession.
    pub fn shares(self, p: &ProfessionDistribution) -> (f64, f64) {
        match self {
            Target::Equal => (0.5, 0.5),
            Target::RealWorld => (p.male_share, p.female_share),
        }
    }
}

/// KL divergence of the predicted (male, female) distribution from the target, as the paper
/// computes it with PyTorch in f32: predictions clamped to [1e-8, 1], the total with
/// `reduction='batchmean'` over the two values (their sum halved), the male and female terms
/// unhalved. Returns (total, male, female).
pub fn kl_divergence(predicted: (f64, f64), target: (f64, f64)) -> (f64, f64, f64) {
    let term = |p: f64, t: f64| -> f32 {
        let (p, t) = (p as f32, t as f32);
        if t == 0.0 {
            return 0.0; // PyTorch's kl_div defines 0·log 0 as 0
        }
        t * (t.ln() - p.clamp(1e-8, 1.0).ln())
    };
    let male = term(predicted.0, target.0);
    let female = term(predicted.1, target.1);
    (((male + female) / 2.0) as f64, male as f64, female as f64)
}

/// A row of the paper's individual results.
#[derive(Debug, Clone, Serialize)]
pub struct KlRow {
    pub profession: String,
    pub f_pred: f64,
    pub m_pred: f64,
    /// The BLS shares, whatever the target: the paper's `f true`/`m true` columns hold them for
    /// the equal target too.
    pub f_true: f64,
    pub m_true: f64,
    pub prof_gender: Group,
    pub kl_female: f64,
    pub kl_male: f64,
    pub kl_total: f64,
}

/// A row of the paper's summary: `group` is "ALL" or a group label.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    pub group: String,
    pub count: usize,
    pub kl_mean: f64,
    /// Sample variance (ddof 1); NaN for a single profession, as pandas gives.
    pub kl_variance: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BiasReport {
    pub target: Target,
    pub individual: Vec<KlRow>,
    /// "ALL" first, then the groups in the paper's order (balanced, female_dominated, male_dominated).
    pub summary: Vec<GroupSummary>,
}

fn summarise(group: String, values: &[f64]) -> GroupSummary {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let variance = if n > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        f64::NAN
    };
    GroupSummary {
        group,
        count: n,
        kl_mean: mean,
        kl_variance: variance,
    }
}

pub fn bias_report(distributions: &[ProfessionDistribution], target: Target) -> BiasReport {
    let individual: Vec<KlRow> = distributions
        .iter()
        .map(|p| {
            let wanted = target.shares(p);
            let (total, male, female) = kl_divergence((p.p_male, p.p_female), wanted);
            KlRow {
                profession: p.profession.clone(),
                f_pred: p.p_female,
                m_pred: p.p_male,
                f_true: p.female_share,
                m_true: p.male_share,
                prof_gender: p.group,
                kl_female: female,
                kl_male: male,
                kl_total: total,
            }
        })
        .collect();
    let mut summary = Vec::new();
    if !individual.is_empty() {
        let all: Vec<f64> = individual.iter().map(|r| r.kl_total).collect();
        summary.push(summarise("ALL".into(), &all));
    }
    for group in Group::ALL {
        let values: Vec<f64> = individual
            .iter()
            .filter(|r| r.prof_gender == group)
            .map(|r| r.kl_total)
            .collect();
        if !values.is_empty() {
            summary.push(summarise(group.label().into(), &values));
        }
    }
    BiasReport {
        target,
        individual,
        summary,
    }
}

/// The paper's number format: NaN as an empty field (pandas' default).
fn number(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("{v}")
    }
}

impl BiasReport {
    /// The paper's `individual` table as TSV (its column names, NaN as an empty field).
    pub fn individual_tsv(&self) -> String {
        let mut s = String::from(
            "profession\tf before\tm before\tf true\tm true\tprof_gender\tKL_female\tKL_male\tKL_total\n",
        );
        for r in &self.individual {
            let _ = writeln!(
                s,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.profession,
                number(r.f_pred),
                number(r.m_pred),
                number(r.f_true),
                number(r.m_true),
                r.prof_gender,
                number(r.kl_female),
                number(r.kl_male),
                number(r.kl_total)
            );
        }
        s
    }

    /// The paper's `summary` table (mean and sample variance of KL per group) as TSV.
    pub fn summary_tsv(&self) -> String {
        let mut s = String::from("prof_gender\tKL_mean\tKL_variance\n");
        for r in &self.summary {
            let _ = writeln!(
                s,
                "{}\t{}\t{}",
                r.group,
                number(r.kl_mean),
                number(r.kl_variance)
            );
        }
        s
    }
}
