//! The CDA baseline in the tuner: its text (swapped, two-sided, tokenized), its masking, and its
//! runs under WALF's validation, best-weights and resume rules.

use crate::common::{
    few_professions, fixture_model, load, load_bytes, read_model_files, trainable,
};
use burn::module::Module;
use walf_lab::bias::Target;
use walf_lab::cda::Swapper;
use walf_lab::data::Benchmark;
use walf_lab::walf::cda::CdaText;
use walf_lab::walf::{Objective, StepRecord, WalfConfig, WalfTrainer};

fn general_text() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/text/cda-general.txt");
    std::fs::read_to_string(path).unwrap()
}

/// Two train professions of each group and the valid ones of the first 40 rows: quick epochs
/// of one WALF batch per group (batch size 4), so three CDA steps each.
fn small_benchmark() -> Benchmark {
    few_professions(2, 40)
}

fn config(target: Target) -> WalfConfig {
    WalfConfig {
        lr: 1e-3,
        batch_size: 4,
        cda_batch: 8,
        max_epochs: 3,
        ..WalfConfig::paper(target)
    }
}

fn cda_trainer(target: Target) -> WalfTrainer {
    let lm = trainable("bert");
    let bench = small_benchmark();
    let text = CdaText::prepare(&general_text(), &bench, &lm).unwrap();
    WalfTrainer::with_objective(lm, &bench, config(target), Objective::Cda(text)).unwrap()
}

fn epoch_steps(trainer: &mut WalfTrainer) -> Vec<StepRecord> {
    let mut steps = Vec::new();
    while let Some(step) = pollster::block_on(trainer.step()).unwrap() {
        steps.push(step);
    }
    steps
}

#[test]
fn the_text_keeps_each_sentence_with_a_gendered_word_beside_its_swap() {
    for name in ["bert", "roberta"] {
        let lm = load(name, &walf_lab::device::cpu());
        let bench = Benchmark::bundled();
        let text = general_text();
        let cda = CdaText::prepare(&text, &bench, &lm).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(cda.sentences_read, 24);
        // written so: these 13 of the 24 lines mention someone by a gendered word (she, he,
        // my brother, her, man, his, woman, my aunt, him …); the others none
        let with_gender = [1, 3, 4, 6, 8, 9, 11, 13, 15, 17, 19, 21, 23];
        let gendered: Vec<&str> = with_gender.iter().map(|&n| lines[n - 1]).collect();
        let swapper = Swapper::from_benchmark(&bench);
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(
                swapper.swap(line) != *line,
                with_gender.contains(&(i + 1)),
                "{line}"
            );
        }
        assert_eq!(cda.sentences_swapped, 13, "{name}");
        assert_eq!(cda.sequences.len(), 26);
        for (k, line) in gendered.iter().enumerate() {
            assert_eq!(cda.sequences[2 * k], lm.tokenizer.encode(line).unwrap());
            assert_eq!(
                cda.sequences[2 * k + 1],
                lm.tokenizer.encode(&swapper.swap(line)).unwrap()
            );
        }
        assert_eq!(
            swapper.swap(gendered[0]),
            "He walked to the station before the rain started."
        );
    }
}

#[test]
fn long_sentences_are_cut_to_the_model_and_bad_text_is_refused() {
    let lm = load("bert", &walf_lab::device::cpu());
    let bench = Benchmark::bundled();
    let long = format!("She said {}.", "very ".repeat(200));
    let cda = CdaText::prepare(&long, &bench, &lm).unwrap();
    let full = lm.tokenizer.encode(&long).unwrap();
    assert!(full.len() > lm.max_len());
    for seq in &cda.sequences {
        assert_eq!(seq.len(), lm.max_len());
        assert_eq!(seq.last(), full.last(), "the closing token is kept");
    }
    for (text, says) in [
        ("", "empty"),
        ("The river was high.\nThe bridge is old.\n", "gendered word"),
    ] {
        let err = CdaText::prepare(text, &bench, &lm).unwrap_err();
        assert!(
            matches!(err, walf_lab::Error::Input(_)) && err.to_string().contains(says),
            "{err}"
        );
    }
}

#[test]
fn masking_hides_a_share_of_ordinary_tokens_and_never_inserts_special_ones() {
    for name in ["bert", "roberta"] {
        let lm = load(name, &walf_lab::device::cpu());
        let bench = Benchmark::bundled();
        let cda = CdaText::prepare(&general_text(), &bench, &lm).unwrap();
        let rows: Vec<usize> = (0..cda.sequences.len()).collect();
        let mut rng = walf_lab::rng::SplitMix64::new(5);
        let mut masked_tokens = 0;
        let mut maskable = 0;
        for _ in 0..20 {
            let batch = cda.masked(&rows, &lm.tokenizer, &mut rng);
            for (&(row, p), &label) in batch.positions.iter().zip(&batch.labels) {
                let seq = &cda.sequences[rows[row]];
                assert_eq!(label, seq[p]);
                assert!(p > 0 && p + 1 < seq.len(), "never the first or last token");
                let shown = batch.batch.ids[row][p];
                assert!(shown == lm.tokenizer.mask_id() || !lm.tokenizer.is_special(shown));
            }
            // unmasked tokens are as written
            for (row, ids) in batch.batch.ids.iter().enumerate() {
                for (p, &id) in ids.iter().enumerate() {
                    if !batch.positions.contains(&(row, p)) {
                        assert_eq!(id, cda.sequences[rows[row]][p]);
                    }
                }
            }
            masked_tokens += batch.labels.len();
            maskable += rows
                .iter()
                .map(|&r| cda.sequences[r].len() - 2)
                .sum::<usize>();
        }
        let share = masked_tokens as f64 / maskable as f64;
        // 15%, plus the one forced into a sentence that drew none
        assert!((0.14..0.22).contains(&share), "{name}: {share}");
    }
}

#[test]
fn a_cda_run_trains_on_the_text_alone_and_keeps_the_best_valid_epoch() {
    let mut equal = cda_trainer(Target::Equal);
    let mut real = cda_trainer(Target::RealWorld);
    let mut losses = Vec::new();
    let mut last_epoch = None;
    for epoch in 0..3 {
        let steps = epoch_steps(&mut equal);
        let same = epoch_steps(&mut real);
        // as many updates as WALF's epoch: one batch of (at most 4) professions per group
        assert_eq!(steps.len(), 3);
        assert_eq!(equal.batches_in_epoch(), 3);
        for (a, b) in steps.iter().zip(&same) {
            // the target is never trained towards: it only chooses the best epoch
            assert_eq!(a.total_loss, b.total_loss);
            assert_eq!((a.group, a.kl), (None, None));
            assert_eq!(a.mlm_loss, Some(a.total_loss));
            assert_eq!(a.mlm_rows, Some(8));
            assert!(a.mlm_tokens.unwrap() >= 8 && a.total_loss.is_finite());
        }
        losses.extend(steps.iter().map(|s| s.total_loss));
        let record = pollster::block_on(equal.validate()).unwrap();
        let other = pollster::block_on(real.validate()).unwrap();
        assert_eq!(record.epoch, epoch);
        assert_ne!(
            record.valid_kl, other.valid_kl,
            "each against its own target"
        );
        last_epoch = Some(record);
    }
    let record = last_epoch.unwrap();
    assert!(record.finished, "max_epochs 3");
    // the best weights are the best epoch's: measuring them gives its valid KL
    let best_kl = pollster::block_on(async {
        let best = equal.best_model();
        let lm = equal.language_model();
        let bench = small_benchmark();
        let valid = bench.split(walf_lab::data::Split::Valid);
        let result = lm
            .probe_weights(&best, valid.input(), Default::default(), &mut |_| {})
            .await
            .unwrap();
        walf_lab::bias::bias_report(&result.professions, Target::Equal).summary[0].kl_mean
    });
    assert!((best_kl - record.best_valid_kl).abs() < 1e-9);
    // fine-tuning on the text lowers its loss: the last epoch's steps beside the first's
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let n = losses.len() / 3;
    assert!(
        mean(&losses[2 * n..]) < mean(&losses[..n]),
        "CDA's masked-LM loss: {losses:?}"
    );
}

#[test]
fn a_cda_step_reads_its_loss_and_its_gradients_check_back_at_once() {
    let config = WalfConfig {
        mlm_chunk: 3,
        ..config(Target::Equal)
    };
    let lm = trainable("bert");
    let bench = small_benchmark();
    let text = CdaText::prepare(&general_text(), &bench, &lm).unwrap();
    let mut trainer =
        WalfTrainer::with_objective(lm, &bench, config, Objective::Cda(text)).unwrap();
    let before = walf_lab::readback::read_backs();
    let step = pollster::block_on(trainer.step()).unwrap().unwrap();
    assert_eq!(
        walf_lab::readback::read_backs() - before,
        1,
        "3 chunks of 8 sentences, one read"
    );
    assert!(step.total_loss.is_finite() && step.mlm_loss == Some(step.total_loss));
}

#[test]
fn a_resumed_cda_run_draws_and_masks_the_same_sentences() {
    let mut straight = cda_trainer(Target::Equal);
    epoch_steps(&mut straight);
    pollster::block_on(straight.validate()).unwrap();
    let second: Vec<f64> = epoch_steps(&mut straight)
        .iter()
        .map(|s| s.total_loss)
        .collect();

    let mut first = cda_trainer(Target::Equal);
    epoch_steps(&mut first);
    pollster::block_on(first.validate()).unwrap();
    let state = first.state().unwrap();
    let last =
        pollster::block_on(first.language_model().model.valid().to_safetensors_f32()).unwrap();
    let best = first.best_model();
    let objective = first.objective().clone();
    drop(first);
    let (c, t, _) = read_model_files(&fixture_model("bert"));
    let mut lm = load_bytes(&c, &t, &last, &walf_lab::device::cpu().autodiff()).unwrap();
    lm.model.set_dropout(0.0, 0.0);
    let mut resumed = WalfTrainer::resume(
        lm,
        Some(best),
        &small_benchmark(),
        config(Target::Equal),
        objective,
        state,
    )
    .unwrap();
    let again: Vec<f64> = epoch_steps(&mut resumed)
        .iter()
        .map(|s| s.total_loss)
        .collect();
    assert_eq!(again.len(), second.len());
    for (a, b) in again.iter().zip(&second) {
        // AdamW's moments start again from zero after a resume: the first step's loss is the
        // same (same weights, same sentences, same masks), later ones close
        assert!((a - b).abs() < 0.05 * b, "{again:?} vs {second:?}");
    }
    assert!((again[0] - second[0]).abs() < 1e-6);
}
