//! The bundled benchmark carries the paper's data faithfully.

use walf_lab::data::{Benchmark, Gender, Group, Split};

fn counts(bench: &Benchmark, split: Split) -> (usize, [usize; 3]) {
    let ps = bench.professions_of(split);
    let by = |g| ps.iter().filter(|p| p.group == g).count();
    (
        ps.len(),
        [
            by(Group::MaleDominated),
            by(Group::FemaleDominated),
            by(Group::Balanced),
        ],
    )
}

#[test]
fn splits_and_groups_are_the_papers() {
    let bench = Benchmark::bundled();
    assert_eq!(bench.professions.len(), 225);
    assert_eq!(counts(&bench, Split::Train), (146, [59, 58, 29]));
    assert_eq!(counts(&bench, Split::Valid), (34, [13, 14, 7]));
    assert_eq!(counts(&bench, Split::Test), (45, [18, 18, 9]));
    assert_eq!(counts(&bench, Split::All).0, 225);
}

#[test]
fn templates_follow_the_splits() {
    let bench = Benchmark::bundled();
    let ids = |s| {
        bench
            .templates_of(s)
            .into_iter()
            .map(|t| t.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(Split::Train), ["T1", "T2", "T3"]);
    assert_eq!(ids(Split::Valid), ["T1", "T2", "T3"]);
    assert_eq!(ids(Split::Test), ["T4", "T5", "T6"]);
    assert_eq!(ids(Split::All).len(), 6);
}

#[test]
fn eleven_phrases_per_gender() {
    let bench = Benchmark::bundled();
    let male = bench
        .phrases
        .iter()
        .filter(|p| p.gender == Gender::Male)
        .count();
    assert_eq!((male, bench.phrases.len() - male), (11, 11));
    assert!(bench.phrases.iter().any(|p| p.phrase == "this woman"));
}

#[test]
fn shares_are_fractions_that_sum_to_one() {
    for p in Benchmark::bundled().professions {
        assert!(
            (p.female_share + p.male_share - 1.0).abs() < 1e-9,
            "{}",
            p.name
        );
        let expected = match p.female_share {
            s if s < 0.5 && p.group == Group::MaleDominated => true,
            s if s > 0.5 && p.group == Group::FemaleDominated => true,
            _ => p.group == Group::Balanced,
        };
        assert!(expected, "{} ({}) is {:?}", p.name, p.female_share, p.group);
    }
}

/// The article of every profession agrees with the paper's own rule (its `is_vowel` over the
/// CMU pronunciation), as computed by tests/reference/make_fixtures.py.
#[test]
fn articles_agree_with_the_papers_rule() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/expected/paper_articles.tsv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let bench = Benchmark::bundled();
    let mut checked = 0;
    for line in text.lines().skip(1) {
        let (name, article) = line.split_once('\t').unwrap();
        let p = bench
            .professions
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(p.article, article, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 225);
}

#[test]
fn malformed_user_data_is_reported_by_line() {
    let header = "bls_title\tprofession\tarticle\tfemale_share\tmale_share\tgroup\tsplit\n";
    let bad = format!("{header}Nurses\tnurse\ta\t1.5\t-0.5\tfemale_dominated\ttest\n");
    let e = Benchmark::from_tsv(
        &bad,
        walf_lab::data::TEMPLATES_TSV,
        walf_lab::data::PHRASES_TSV,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("line 2") && e.to_string().contains("female_share"),
        "{e}"
    );
    let e = Benchmark::from_tsv(
        "profession\n",
        walf_lab::data::TEMPLATES_TSV,
        walf_lab::data::PHRASES_TSV,
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing column"), "{e}");
}

#[test]
fn the_fill_masks_gendered_words_are_the_phrases_head_words() {
    let bench = Benchmark::bundled();
    let words = bench.gendered_words();
    assert_eq!(words.len(), 22, "one per phrase, none repeated");
    assert_eq!(words[0], ("he".to_string(), Gender::Male));
    assert!(
        words.contains(&("man".to_string(), Gender::Male)),
        "of `this man`"
    );
    assert!(words.contains(&("grandmother".to_string(), Gender::Female)));
    assert_eq!(
        words.iter().filter(|(_, g)| *g == Gender::Female).count(),
        11
    );
    // an edited list that repeats a head word keeps its first gender once
    let phrases = "phrase\tgender\nmy man\tmale\nthis man\tmale\nher\tfemale\n";
    let edited = Benchmark::from_tsv(
        walf_lab::data::PROFESSIONS_TSV,
        walf_lab::data::TEMPLATES_TSV,
        phrases,
    )
    .unwrap();
    assert_eq!(
        edited.gendered_words(),
        [
            ("man".to_string(), Gender::Male),
            ("her".to_string(), Gender::Female)
        ]
    );
}
