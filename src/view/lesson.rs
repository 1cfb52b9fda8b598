//! The classroom lesson (`?lesson=1`): six steps over the real app, each one screen. What each
//! step shows is computed here, from the page's results, so that it is tested natively.

use crate::data::Group;
use crate::share::SharedResult;

/// The lesson's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LessonStep {
    Predict,
    Reveal,
    Choose,
    Tune,
    Cost,
    Share,
}

impl LessonStep {
    pub const ALL: [LessonStep; 6] = [
        LessonStep::Predict,
        LessonStep::Reveal,
        LessonStep::Choose,
        LessonStep::Tune,
        LessonStep::Cost,
        LessonStep::Share,
    ];

    pub fn number(self) -> usize {
        Self::ALL.iter().position(|&s| s == self).unwrap_or(0) + 1
    }

    pub fn title(self) -> &'static str {
        match self {
            LessonStep::Predict => "Predict",
            LessonStep::Reveal => "Reveal",
            LessonStep::Choose => "Choose a target",
            LessonStep::Tune => "Tune",
            LessonStep::Cost => "What did it cost?",
            LessonStep::Share => "Share",
        }
    }

    pub fn next(self) -> Option<Self> {
        Self::ALL.get(self.number()).copied()
    }

    pub fn previous(self) -> Option<Self> {
        self.number()
            .checked_sub(2)
            .and_then(|i| Self::ALL.get(i).copied())
    }
}

/// What the class guesses the model leans to for a profession.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lean {
    He,
    She,
}

/// The six professions the class guesses about: the two with the largest share of women, the
/// two with the smallest, and the two nearest to half, in the measured result, by the
/// statistics only (never by what the model says). Fewer where the result has fewer.
pub fn lesson_professions(result: &SharedResult) -> Vec<String> {
    let mut by_share: Vec<(&str, f64, Group)> = result
        .professions
        .iter()
        .map(|p| (p.name.as_str(), p.female_share, p.group))
        .collect();
    by_share.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    fn take<'a>(names: impl Iterator<Item = &'a str>, n: usize, chosen: &mut Vec<&'a str>) {
        let mut taken = 0;
        for name in names {
            if taken == n {
                break;
            }
            if !chosen.contains(&name) {
                chosen.push(name);
                taken += 1;
            }
        }
    }
    let mut chosen: Vec<&str> = Vec::new();
    take(by_share.iter().map(|p| p.0), 2, &mut chosen);
    take(by_share.iter().rev().map(|p| p.0), 2, &mut chosen);
    let mut balanced = by_share.clone();
    balanced.sort_by(|a, b| {
        (a.1 - 0.5)
            .abs()
            .total_cmp(&(b.1 - 0.5).abs())
            .then(a.0.cmp(b.0))
    });
    take(balanced.iter().map(|p| p.0), 2, &mut chosen);
    // Mixed on screen: not sorted by the answer.
    let mut order: Vec<String> = chosen.into_iter().map(String::from).collect();
    order.sort();
    order
}

/// One profession of the reveal: the class's guess, the model's P(female), and whether the
/// guess was right (the model leans "she" above one half).
#[derive(Debug, Clone, PartialEq)]
pub struct Revealed {
    pub profession: String,
    pub guess: Option<Lean>,
    pub p_female: f64,
    pub female_share: f64,
    pub right: Option<bool>,
}

pub fn reveal(result: &SharedResult, guesses: &[(String, Lean)]) -> Vec<Revealed> {
    lesson_professions(result)
        .into_iter()
        .filter_map(|name| {
            let p = result.professions.iter().find(|p| p.name == name)?;
            let guess = guesses.iter().find(|(n, _)| *n == name).map(|(_, g)| *g);
            let lean = if p.p_female > 0.5 {
                Lean::She
            } else {
                Lean::He
            };
            Some(Revealed {
                profession: name,
                guess,
                p_female: p.p_female,
                female_share: p.female_share,
                right: guess.map(|g| g == lean),
            })
        })
        .collect()
}

/// "4 of 6 guesses were right."
pub fn guesses_sentence(revealed: &[Revealed]) -> String {
    let made = revealed.iter().filter(|r| r.guess.is_some()).count();
    let right = revealed.iter().filter(|r| r.right == Some(true)).count();
    if made == 0 {
        return "No guesses were made.".into();
    }
    format!(
        "{right} of {made} guess{} right.",
        if made == 1 { " was" } else { "es were" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::SharedProfession;

    fn result() -> SharedResult {
        let rows = [
            ("nurse", 0.87, 0.45),
            ("dental hygienist", 0.93, 0.55),
            ("receptionist", 0.89, 0.48),
            ("carpenter", 0.03, 0.30),
            ("electrician", 0.02, 0.35),
            ("firefighter", 0.05, 0.40),
            ("baker", 0.52, 0.51),
            ("cashier", 0.70, 0.50),
            ("editor", 0.47, 0.42),
        ];
        let professions = rows
            .iter()
            .map(|&(name, share, p)| SharedProfession {
                name: name.into(),
                group: if share > 0.6 {
                    Group::FemaleDominated
                } else if share < 0.4 {
                    Group::MaleDominated
                } else {
                    Group::Balanced
                },
                female_share: share,
                p_female: p,
                p_female_after: None,
            })
            .collect();
        SharedResult::untuned("m", "test", professions)
    }

    #[test]
    fn six_professions_two_from_each_end_and_two_balanced_chosen_by_the_statistics() {
        let r = result();
        let chosen = lesson_professions(&r);
        assert_eq!(
            chosen,
            [
                "baker",
                "carpenter",
                "dental hygienist",
                "editor",
                "electrician",
                "receptionist"
            ]
        );
        // the model's own numbers play no part in the choice
        let mut other = r.clone();
        for p in &mut other.professions {
            p.p_female = 1.0 - p.p_female;
        }
        assert_eq!(lesson_professions(&other), chosen);
    }

    #[test]
    fn the_reveal_counts_the_guesses_the_model_bears_out() {
        let r = result();
        let guesses = vec![
            ("dental hygienist".to_string(), Lean::She),
            ("receptionist".to_string(), Lean::She),
            ("carpenter".to_string(), Lean::He),
            ("baker".to_string(), Lean::He),
        ];
        let revealed = reveal(&r, &guesses);
        assert_eq!(revealed.len(), 6);
        let of = |name: &str| revealed.iter().find(|x| x.profession == name).unwrap();
        assert_eq!(of("dental hygienist").right, Some(true), "0.55 leans she");
        assert_eq!(of("receptionist").right, Some(false), "0.48 leans he");
        assert_eq!(of("carpenter").right, Some(true));
        assert_eq!(of("baker").right, Some(false), "0.51 leans she");
        assert_eq!(of("editor").right, None, "no guess");
        assert_eq!(guesses_sentence(&revealed), "2 of 4 guesses were right.");
        assert_eq!(guesses_sentence(&reveal(&r, &[])), "No guesses were made.");
    }

    #[test]
    fn the_steps_run_in_order() {
        assert_eq!(LessonStep::Predict.number(), 1);
        assert_eq!(LessonStep::Share.number(), 6);
        assert_eq!(LessonStep::Predict.next(), Some(LessonStep::Reveal));
        assert_eq!(LessonStep::Share.next(), None);
        assert_eq!(LessonStep::Predict.previous(), None);
        assert_eq!(LessonStep::Cost.previous(), Some(LessonStep::Tune));
    }
}
