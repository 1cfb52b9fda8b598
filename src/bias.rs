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
    /// How commands, addresses and links write it.
    pub fn label(self) -> &'static str {
        match self {
            Target::Equal => "equal",
            Target::RealWorld => "real-world",
        }
    }

    /// The one reading of a target's name (the page's address and controls, the command line):
    /// its [`Self::label`], and the spellings people write for the real-world one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "equal" => Some(Target::Equal),
            "real-world" | "real_world" | "realworld" | "bls" => Some(Target::RealWorld),
            _ => None,
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

/// How the model ranks professions against the statistics: correlations between each
/// profession's P(female) and its BLS 2024 share of women. The plainest sentence a class can be
/// told: "the model ranks professions the way the statistics do, ρ = …".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Correlation {
    /// How many professions it is computed over.
    pub professions: usize,
    /// Spearman's ρ: Pearson's r of the ranks, ties given their mean rank (as SciPy does).
    pub spearman: f64,
    /// Pearson's r of the values themselves.
    pub pearson: f64,
}

/// The correlation over `distributions`; `None` for fewer than two professions or where
/// either side is constant (the correlation is undefined there).
pub fn correlation(distributions: &[ProfessionDistribution]) -> Option<Correlation> {
    let p: Vec<f64> = distributions.iter().map(|d| d.p_female).collect();
    let s: Vec<f64> = distributions.iter().map(|d| d.female_share).collect();
    let spearman = pearson(&ranks(&p), &ranks(&s))?;
    Some(Correlation {
        professions: distributions.len(),
        spearman,
        pearson: pearson(&p, &s)?,
    })
}

fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len();
    if n < 2 || n != b.len() {
        return None;
    }
    let (ma, mb) = (
        a.iter().sum::<f64>() / n as f64,
        b.iter().sum::<f64>() / n as f64,
    );
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - ma) * (y - mb);
        va += (x - ma).powi(2);
        vb += (y - mb).powi(2);
    }
    let r = cov / (va * vb).sqrt();
    r.is_finite().then_some(r)
}

/// Ranks from 1, equal values sharing the mean of the ranks they span.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let mean_rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = mean_rank;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod correlation_tests {
    use super::*;

    fn professions(pairs: &[(f64, f64)]) -> Vec<ProfessionDistribution> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, &(p, s))| ProfessionDistribution {
                profession: format!("p{i}"),
                group: Group::Balanced,
                p_female: p,
                p_male: 1.0 - p,
                female_share: s,
                male_share: 1.0 - s,
            })
            .collect()
    }

    #[test]
    fn rank_correlation_follows_the_textbook_definitions() {
        // Ranks differ by 1, -1, 1, -1, 0: ρ = 1 − 6·4 / (5·24) = 0.8.
        let c = correlation(&professions(&[
            (0.1, 0.2),
            (0.2, 0.1),
            (0.3, 0.4),
            (0.4, 0.3),
            (0.9, 0.5),
        ]))
        .unwrap();
        assert!((c.spearman - 0.8).abs() < 1e-12, "{c:?}");
        assert_eq!(c.professions, 5);
        // Pearson of the raw values differs from the ranks' (0.9 stands far out).
        assert!(c.pearson > 0.8 && c.pearson < 1.0, "{c:?}");
        // Ties get mean ranks: x ranks 1, 2.5, 2.5, 4 against 1, 3, 2, 4 give 4.5/√(4.5·5).
        let tied = correlation(&professions(&[
            (0.1, 0.1),
            (0.2, 0.3),
            (0.2, 0.2),
            (0.3, 0.4),
        ]))
        .unwrap();
        assert!((tied.spearman - 4.5 / (4.5f64 * 5.0).sqrt()).abs() < 1e-12);
        // Reversed order: −1.
        let reversed = correlation(&professions(&[(0.9, 0.1), (0.5, 0.2), (0.1, 0.3)])).unwrap();
        assert!((reversed.spearman + 1.0).abs() < 1e-12);
        // Undefined where a side is constant or there is one profession.
        assert!(correlation(&professions(&[(0.5, 0.1), (0.5, 0.9)])).is_none());
        assert!(correlation(&professions(&[(0.5, 0.1)])).is_none());
    }
}
