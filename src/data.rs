//! The benchmark's definition: professions with their BLS 2024 share of women, sentence
//! templates and gendered phrases (from Shrestha & Srinivasan, EMNLP 2025; see
//! public/data/SOURCE.md). The bundled files are compiled in; users may supply their own.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const PROFESSIONS_TSV: &str = include_str!("../public/data/professions.tsv");
pub const TEMPLATES_TSV: &str = include_str!("../public/data/templates.tsv");
pub const PHRASES_TSV: &str = include_str!("../public/data/gendered_phrases.tsv");
/// The held-out passages the page scores masked-LM loss on before and after tuning.
pub const HELDOUT_TXT: &str = include_str!("../public/data/heldout.txt");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    // Declared in the order pandas' groupby sorts the paper's labels.
    Balanced,
    FemaleDominated,
    MaleDominated,
}

impl Group {
    pub const ALL: [Group; 3] = [
        Group::Balanced,
        Group::FemaleDominated,
        Group::MaleDominated,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Group::Balanced => "balanced",
            Group::FemaleDominated => "female_dominated",
            Group::MaleDominated => "male_dominated",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Group::ALL.into_iter().find(|g| g.label() == s)
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    pub fn label(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }
}

/// The paper's profession splits, plus `All` for every profession.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Valid,
    Test,
    All,
}

impl Split {
    pub fn label(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
            Split::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Split::Train, Split::Valid, Split::Test, Split::All]
            .into_iter()
            .find(|x| x.label() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profession {
    pub bls_title: String,
    /// The short name put into sentences.
    pub name: String,
    /// "a" or "an", chosen once by the profession's first sound.
    pub article: String,
    pub female_share: f64,
    pub male_share: f64,
    pub group: Group,
    /// `None` for professions a user added: they are in the `All` split only.
    pub split: Option<Split>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub id: String,
    /// With placeholders `[DET]`, `[AAA]`, `[ARTICLE]`, `[TTT]`.
    pub text: String,
    /// `Train` (used for train and valid professions) or `Test`.
    pub split: Split,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenderedPhrase {
    pub phrase: String,
    pub gender: Gender,
}

/// The rows of one split (see `Benchmark::split`); `MeasureInput` borrows them.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitData {
    pub professions: Vec<Profession>,
    pub templates: Vec<Template>,
    pub phrases: Vec<GenderedPhrase>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Benchmark {
    pub professions: Vec<Profession>,
    pub templates: Vec<Template>,
    pub phrases: Vec<GenderedPhrase>,
}

/// Rows of a TSV file with a header, as maps from column to value.
fn rows<'a>(file: &str, text: &'a str, columns: &[&str]) -> Result<Vec<Vec<&'a str>>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| Error::Data {
            file: file.into(),
            problem: "the file is empty".into(),
        })?
        .split('\t')
        .map(str::trim)
        .collect();
    let index: Vec<usize> = columns
        .iter()
        .map(|c| {
            header
                .iter()
                .position(|h| h == c)
                .ok_or_else(|| Error::Data {
                    file: file.into(),
                    problem: format!("missing column `{c}`"),
                })
        })
        .collect::<Result<_>>()?;
    lines
        .enumerate()
        .map(|(n, line)| {
            let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
            index
                .iter()
                .map(|&i| {
                    cells.get(i).copied().ok_or_else(|| Error::Data {
                        file: file.into(),
                        problem: format!("line {}: fewer than {} columns", n + 2, header.len()),
                    })
                })
                .collect()
        })
        .collect()
}

fn bad(file: &str, line: usize, problem: impl fmt::Display) -> Error {
    Error::Data {
        file: file.into(),
        problem: format!("line {}: {problem}", line + 2),
    }
}

fn share(file: &str, line: usize, column: &str, value: &str) -> Result<f64> {
    let v: f64 = value
        .parse()
        .map_err(|_| bad(file, line, format!("{column} `{value}` is not a number")))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(bad(file, line, format!("{column} {v} is outside [0, 1]")));
    }
    Ok(v)
}

impl Benchmark {
    /// The paper's benchmark as shipped with the project.
    pub fn bundled() -> Self {
        Self::from_tsv(PROFESSIONS_TSV, TEMPLATES_TSV, PHRASES_TSV)
            .expect("the bundled benchmark data is valid (checked by tests)")
    }

    pub fn from_tsv(professions: &str, templates: &str, phrases: &str) -> Result<Self> {
        let file = "professions.tsv";
        let cols = [
            "bls_title",
            "profession",
            "article",
            "female_share",
            "male_share",
            "group",
            "split",
        ];
        let professions = rows(file, professions, &cols)?
            .into_iter()
            .enumerate()
            .map(|(n, r)| {
                let name = r[1].to_string();
                if name.is_empty() {
                    return Err(bad(file, n, "empty profession name"));
                }
                if r[2] != "a" && r[2] != "an" {
                    return Err(bad(
                        file,
                        n,
                        format!("article must be `a` or `an`, not `{}`", r[2]),
                    ));
                }
                Ok(Profession {
                    bls_title: r[0].to_string(),
                    name,
                    article: r[2].to_string(),
                    female_share: share(file, n, "female_share", r[3])?,
                    male_share: share(file, n, "male_share", r[4])?,
                    group: Group::parse(r[5])
                        .ok_or_else(|| bad(file, n, format!("unknown group `{}`", r[5])))?,
                    split: match r[6] {
                        "" => None,
                        s => Some(
                            Split::parse(s)
                                .filter(|s| *s != Split::All)
                                .ok_or_else(|| bad(file, n, format!("unknown split `{s}`")))?,
                        ),
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let file = "templates.tsv";
        let templates = rows(file, templates, &["id", "template", "split"])?
            .into_iter()
            .enumerate()
            .map(|(n, r)| {
                let text = r[1].to_string();
                if !text.contains("[AAA]") || !text.contains("[TTT]") {
                    return Err(bad(file, n, "a template needs both [AAA] and [TTT]"));
                }
                if text.find("[AAA]") > text.find("[TTT]") {
                    return Err(bad(
                        file,
                        n,
                        "[AAA] must come before [TTT], as in the paper",
                    ));
                }
                let split = match r[2] {
                    "train" => Split::Train,
                    "test" => Split::Test,
                    s => {
                        return Err(bad(
                            file,
                            n,
                            format!("template split must be train or test, not `{s}`"),
                        ));
                    }
                };
                Ok(Template {
                    id: r[0].to_string(),
                    text,
                    split,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let file = "gendered_phrases.tsv";
        let phrases = rows(file, phrases, &["phrase", "gender"])?
            .into_iter()
            .enumerate()
            .map(|(n, r)| {
                if r[0].is_empty() {
                    return Err(bad(file, n, "empty phrase"));
                }
                let gender = match r[1] {
                    "male" => Gender::Male,
                    "female" => Gender::Female,
                    g => {
                        return Err(bad(
                            file,
                            n,
                            format!("gender must be male or female, not `{g}`"),
                        ));
                    }
                };
                Ok(GenderedPhrase {
                    phrase: r[0].to_string(),
                    gender,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            professions,
            templates,
            phrases,
        })
    }

    /// Everything the paper measures for a split: its professions and templates, all phrases.
    pub fn split(&self, split: Split) -> SplitData {
        SplitData {
            professions: self.professions_of(split),
            templates: self.templates_of(split),
            phrases: self.phrases.clone(),
        }
    }

    /// The words a fill-mask shows the probability of: the head word of each gendered phrase
    /// ("he", "man" of "this man", "brother" of "my brother"), each once, in the file's order.
    pub fn gendered_words(&self) -> Vec<(String, Gender)> {
        let mut words: Vec<(String, Gender)> = Vec::new();
        for p in &self.phrases {
            if let Some(word) = p.phrase.split_whitespace().last()
                && !words.iter().any(|(w, _)| w == word)
            {
                words.push((word.to_string(), p.gender));
            }
        }
        words
    }

    /// Professions of a split, in file order.
    pub fn professions_of(&self, split: Split) -> Vec<Profession> {
        self.professions
            .iter()
            .filter(|p| split == Split::All || p.split == Some(split))
            .cloned()
            .collect()
    }

    /// The templates the paper uses for a split: T1–T3 for train and valid, T4–T6 for test,
    /// all of them for `All`.
    pub fn templates_of(&self, split: Split) -> Vec<Template> {
        let wanted = match split {
            Split::Train | Split::Valid => Some(Split::Train),
            Split::Test => Some(Split::Test),
            Split::All => None,
        };
        self.templates
            .iter()
            .filter(|t| wanted.is_none_or(|w| t.split == w))
            .cloned()
            .collect()
    }
}
