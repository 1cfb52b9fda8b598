//! Tables on stdout and the TSV/JSON files of `walf probe`. The TSV column names are the paper's
//! own, so its analysis scripts read our files.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use walf_lab::bias::{BiasReport, Target, correlation};
use walf_lab::data::{Gender, Split, Template};
use walf_lab::engine::MaskPrediction;
use walf_lab::measure::ProbeResult;

pub fn print_probe(result: &ProbeResult, reports: &[BiasReport], split: Split, seconds: f64) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} professions, split {}: {} masked sentences of the paper's procedure, {} distinct run, {:.2} s\n",
        result.professions.len(),
        split.label(),
        result.paper_sentences,
        result.forward_sentences,
        seconds
    );
    let _ = write!(out, "{:<18}", "group");
    for r in reports {
        let _ = write!(
            out,
            "{:>14}{:>14}",
            format!("KL mean {}", short(r.target)),
            "variance"
        );
    }
    out.push('\n');
    if let Some(first) = reports.first() {
        for (i, row) in first.summary.iter().enumerate() {
            let _ = write!(out, "{:<18}", row.group);
            for r in reports {
                let s = &r.summary[i];
                let _ = write!(out, "{:>14.6}{:>14.6}", s.kl_mean, s.kl_variance);
            }
            out.push('\n');
        }
    }
    let _ = writeln!(out, "\n{}", correlation_sentence(result));
    let _ = writeln!(
        out,
        "\n{:<36}{:>10}{:>10}  group",
        "profession", "P(female)", "BLS 2024"
    );
    let mut rows: Vec<_> = result.professions.iter().collect();
    rows.sort_by(|a, b| a.p_female.total_cmp(&b.p_female));
    for p in rows {
        let _ = writeln!(
            out,
            "{:<36}{:>9.1}%{:>9.1}%  {}",
            p.profession,
            100.0 * p.p_female,
            100.0 * p.female_share,
            p.group
        );
    }
    print!("{out}");
}

/// How P(female) ranks the professions against the BLS shares, in one line.
fn correlation_sentence(result: &ProbeResult) -> String {
    match correlation(&result.professions) {
        Some(c) => format!(
            "P(female) against the BLS 2024 share of women, over {} professions: Spearman rho {:.3}, Pearson r {:.3}",
            c.professions, c.spearman, c.pearson
        ),
        None => "P(female) against the BLS 2024 share of women: no correlation (fewer than two professions, or one side constant)".into(),
    }
}

fn short(target: Target) -> &'static str {
    match target {
        Target::Equal => "equal",
        Target::RealWorld => "real",
    }
}

/// `DIR/individual.tsv` and `DIR/summary.tsv`, or one such pair per target under
/// `DIR/equal/` and `DIR/real-world/` when both are reported.
pub fn write_tsv(dir: &Path, reports: &[BiasReport]) -> Result<()> {
    for report in reports {
        let folder = if reports.len() > 1 {
            dir.join(report.target.label())
        } else {
            dir.to_path_buf()
        };
        fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        for (name, text) in [
            ("individual.tsv", report.individual_tsv()),
            ("summary.tsv", report.summary_tsv()),
        ] {
            let path = folder.join(name);
            fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

/// The model a result came from: its name and its files' fingerprint (the page's results carry
/// the same).
pub struct ModelId<'a> {
    pub name: &'a str,
    pub fingerprint: &'a str,
}

pub fn write_json(
    path: &Path,
    model: ModelId,
    split: Split,
    templates: &[Template],
    result: &ProbeResult,
    reports: &[BiasReport],
    seconds: f64,
) -> Result<()> {
    let value = json!({
        "model": model.name,
        "model_fingerprint": model.fingerprint,
        "split": split.label(),
        "templates": templates.iter().map(|t| &t.id).collect::<Vec<_>>(),
        "seconds": seconds,
        "paper_sentences": result.paper_sentences,
        "forward_sentences": result.forward_sentences,
        "professions": result.professions,
        "reports": reports,
        "correlation": correlation(&result.professions),
        "raw": result.raw,
    });
    let text = serde_json::to_string_pretty(&value).context("cannot serialise the results")?;
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The top predictions at each mask, then the benchmark's gendered words that are one token
/// (`words`, with their ids), as the page shows them.
pub fn print_fill(predictions: &[MaskPrediction], words: &[(String, Gender, u32)]) {
    for p in predictions {
        println!("mask at token {}:", p.position);
        for t in &p.top {
            println!("  {:<20} {:.6}", t.token, t.probability);
        }
        if !words.is_empty() {
            println!("  the benchmark's gendered words here:");
        }
        for (word, gender, id) in words {
            let probability = p.probabilities.get(*id as usize).copied().unwrap_or(0.0);
            println!("    {word:<18} {probability:.6}  {}", gender.label());
        }
    }
}
