//! Two results side by side: two models, before and after a run, or this page's result and a
//! link's. The professions both measured, sorted by how far apart the two put them.

use crate::bias::Correlation;
use crate::data::Group;
use crate::share::SharedResult;

/// One side of a comparison: a result, and whether its after-tuning values are meant.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub result: &'a SharedResult,
    pub after: bool,
}

impl Side<'_> {
    /// How the comparison names it: the model, and "after WALF" (or CDA) for tuned values.
    pub fn label(&self) -> String {
        if self.after {
            let method = self
                .result
                .tuning
                .as_ref()
                .map_or("tuning", |t| t.method.label());
            format!("{} after {method}", self.result.model)
        } else {
            self.result.model.clone()
        }
    }

    fn p_female(&self, name: &str) -> Option<f64> {
        let p = self.result.professions.iter().find(|p| p.name == name)?;
        if self.after {
            p.p_female_after
        } else {
            Some(p.p_female)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ComparedProfession {
    pub name: String,
    pub group: Group,
    pub female_share: f64,
    pub first: f64,
    pub second: f64,
}

impl ComparedProfession {
    /// The second's P(female) less the first's.
    pub fn difference(&self) -> f64 {
        self.second - self.first
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub first: String,
    pub second: String,
    /// The professions both sides have, the largest difference first.
    pub rows: Vec<ComparedProfession>,
    /// Spearman ρ and Pearson r against the statistics, for each side.
    pub correlations: [Option<Correlation>; 2],
    /// Professions only one side has (different splits, an edited benchmark).
    pub unmatched: usize,
}

pub fn compare(first: Side, second: Side) -> Comparison {
    let mut rows: Vec<ComparedProfession> = first
        .result
        .professions
        .iter()
        .filter_map(|p| {
            Some(ComparedProfession {
                name: p.name.clone(),
                group: p.group,
                female_share: p.female_share,
                first: first.p_female(&p.name)?,
                second: second.p_female(&p.name)?,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        b.difference()
            .abs()
            .total_cmp(&a.difference().abs())
            .then_with(|| a.name.cmp(&b.name))
    });
    let unmatched =
        first.result.professions.len() + second.result.professions.len() - 2 * rows.len();
    Comparison {
        first: first.label(),
        second: second.label(),
        rows,
        correlations: [
            first.result.correlation(first.after),
            second.result.correlation(second.after),
        ],
        unmatched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::SharedProfession;

    fn result(model: &str, rows: &[(&str, f64, f64, Option<f64>)]) -> SharedResult {
        let professions = rows
            .iter()
            .map(|&(name, share, p, after)| SharedProfession {
                name: name.into(),
                group: Group::Balanced,
                female_share: share,
                p_female: p,
                p_female_after: after,
            })
            .collect();
        SharedResult::untuned(model, "test", professions)
    }

    #[test]
    fn two_models_line_up_by_profession_the_largest_difference_first() {
        let a = result(
            "a",
            &[
                ("nurse", 0.9, 0.6, None),
                ("baker", 0.5, 0.5, None),
                ("carpenter", 0.1, 0.3, None),
                ("judge", 0.5, 0.4, None),
            ],
        );
        let b = result(
            "b",
            &[
                ("carpenter", 0.1, 0.35, None),
                ("nurse", 0.9, 0.8, None),
                ("baker", 0.5, 0.45, None),
                ("pilot", 0.1, 0.2, None),
            ],
        );
        let c = compare(
            Side {
                result: &a,
                after: false,
            },
            Side {
                result: &b,
                after: false,
            },
        );
        let order: Vec<(&str, f64)> = c
            .rows
            .iter()
            .map(|r| (r.name.as_str(), (r.difference() * 100.0).round() / 100.0))
            .collect();
        assert_eq!(
            order,
            [("nurse", 0.2), ("baker", -0.05), ("carpenter", 0.05)]
        );
        assert_eq!(c.unmatched, 2, "judge and pilot");
        assert_eq!((c.first.as_str(), c.second.as_str()), ("a", "b"));
        assert!(c.correlations[0].is_some() && c.correlations[1].is_some());
    }

    #[test]
    fn before_and_after_a_run_are_the_two_sides_of_one_result() {
        let r = result(
            "m",
            &[
                ("nurse", 0.9, 0.4, Some(0.7)),
                ("carpenter", 0.1, 0.45, Some(0.3)),
            ],
        );
        let c = compare(
            Side {
                result: &r,
                after: false,
            },
            Side {
                result: &r,
                after: true,
            },
        );
        // the result does not say how it was tuned; a CDA run's does
        assert_eq!(c.second, "m after tuning");
        let mut cda = r.clone();
        let settings = crate::protocol::TuneSettings {
            method: crate::protocol::TuneMethod::Cda,
            ..crate::protocol::TuneSettings::paper(crate::bias::Target::Equal)
        };
        cda.tuning = Some(crate::view::shared_tuning(&settings, 1, Vec::new()));
        let tuned = Side {
            result: &cda,
            after: true,
        };
        assert_eq!(tuned.label(), "m after CDA");
        assert_eq!(c.rows[0].name, "nurse");
        assert!((c.rows[0].difference() - 0.3).abs() < 1e-12);
        assert_eq!(c.unmatched, 0);
        // an untuned result has no after side: nothing lines up
        let untuned = result("u", &[("nurse", 0.9, 0.4, None)]);
        let none = compare(
            Side {
                result: &untuned,
                after: false,
            },
            Side {
                result: &untuned,
                after: true,
            },
        );
        assert!(none.rows.is_empty());
    }
}
