//! Masked-LM loss on held-out text: the paper's WikiText-103 passages where the reference data is
//! present, a text of our own otherwise.

use std::path::PathBuf;

use walf_lab::lm_loss::{LmLossSettings, LossRule, passages};

fn settings(seed: u64, rule: LossRule) -> LmLossSettings {
    LmLossSettings {
        mask_prob: 0.15,
        seed,
        batch_size: 8,
        rule,
    }
}

fn reference_dir() -> PathBuf {
    std::env::var_os("WALF_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/reference/desired-distributions")
        })
}

#[test]
fn tsv_text_column_and_plain_lines_are_both_read() {
    assert_eq!(
        passages("text\nfirst passage\n\nsecond one\n"),
        ["first passage", "second one"]
    );
    assert_eq!(
        passages("\tID\ttext\tURL\n0\ta\tHello there\tu\n"),
        ["Hello there"]
    );
    assert_eq!(
        passages("just a line\nanother\n"),
        ["just a line", "another"]
    );
}

#[test]
fn gap_passages_are_read_from_the_text_column() {
    let path = reference_dir().join("gap_flipped.tsv");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("{} not found: skipped", path.display());
        return;
    };
    let passages = passages(&text);
    assert_eq!(passages.len(), text.lines().count() - 1);
    assert!(passages[0].starts_with("Karl Telford"), "{}", passages[0]);
    let lm = crate::common::load("distilbert", &walf_lab::device::cpu());
    let report = pollster::block_on(lm.lm_loss(
        &passages[..20],
        settings(42, LossRule::MaskedTokens),
        &mut |_| {},
    ))
    .unwrap();
    assert!(report.loss.is_finite() && report.masked_tokens >= 20);
}

#[test]
fn loss_on_wikitext_is_seeded_and_masks_fifteen_percent() {
    let path = reference_dir().join("WikiText-103-test-en.tsv");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(_) => {
            eprintln!("{} not found: using a text of our own", path.display());
            "text\nthe nurse went to the store to buy bread for her family.\nhe is a carpenter and works with wood every day of the week.\n".into()
        }
    };
    let mut passages = passages(&text);
    passages.truncate(40);
    let lm = crate::common::load("bert", &walf_lab::device::cpu());
    let run = |seed| {
        pollster::block_on(lm.lm_loss(
            &passages,
            settings(seed, LossRule::MaskedTokens),
            &mut |_| {},
        ))
        .unwrap()
    };
    let a = run(42);
    assert!(a.loss.is_finite() && a.loss > 0.0);
    // a random model of 496 tokens: close to the uniform guess, ln 496 ≈ 6.2, in nats
    assert!(a.loss < 20.0, "{}", a.loss);
    assert_eq!(a.passages, passages.len());
    // max(1, ⌊15%⌋) of each passage's non-special tokens (at most 62 fit the tiny model)
    let expected: usize = passages
        .iter()
        .map(|p| {
            let n = lm
                .tokenizer
                .encode(&p.to_lowercase())
                .unwrap()
                .len()
                .min(lm.max_len())
                - 2;
            ((n as f64 * 0.15).floor() as usize).max(1)
        })
        .sum();
    assert_eq!(a.masked_tokens, expected);
    let b = run(42);
    assert_eq!(a.loss, b.loss, "same seed, same masks");
    assert_ne!(a.loss, run(7).loss, "another seed masks other tokens");
}

#[test]
fn both_rules_match_a_port_of_the_papers_evaluation() {
    // tests/reference/paper_lm_loss.py: the paper's evaluate_mlm_loss.py and our rule, on the
    // first WikiText-103 test passages, masks drawn by the engine's seeded shuffle.
    let exp = crate::common::expected("lm_loss");
    let path = reference_dir().join(exp["file"].as_str().unwrap());
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("{} not found: skipped", path.display());
        return;
    };
    let mut passages = passages(&text);
    passages.truncate(exp["passages"].as_u64().unwrap() as usize);
    let seed = exp["seed"].as_u64().unwrap();
    for (name, want) in exp["models"].as_object().unwrap() {
        let lm = crate::common::load(name, &walf_lab::device::cpu());
        for (key, rule) in [
            ("paper", LossRule::Paper),
            ("masked_tokens", LossRule::MaskedTokens),
        ] {
            let got = pollster::block_on(lm.lm_loss(&passages, settings(seed, rule), &mut |_| {}))
                .unwrap();
            let want = &want[key];
            assert_eq!(
                (got.tokens as u64, got.masked_tokens as u64),
                (
                    want["tokens"].as_u64().unwrap(),
                    want["masked_tokens"].as_u64().unwrap()
                ),
                "{name} {key}: tokens and masked tokens"
            );
            let w = crate::common::f(&want["loss"]);
            assert!(
                (got.loss - w).abs() <= 1e-5 * w,
                "{name} {key}: loss {} vs {w}",
                got.loss
            );
            assert_eq!(got.rule, rule);
        }
    }
}
