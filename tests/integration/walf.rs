//! WALF fine-tuning end to end on the tiny models.

use crate::common::{few_professions, fixture_model, load_bytes, read_model_files, trainable};
use burn::module::Module;
use walf_lab::bias::Target;
use walf_lab::data::Benchmark;
use walf_lab::walf::{EpochRecord, Objective, WalfConfig, WalfTrainer};

fn train(name: &str, config: WalfConfig, epochs: usize) -> (Vec<EpochRecord>, Vec<f64>) {
    let bench = Benchmark::bundled();
    let mut trainer = WalfTrainer::new(trainable(name), &bench, config).unwrap();
    let before = pollster::block_on(trainer.valid_kl()).unwrap();
    let mut epochs_done = Vec::new();
    let mut losses = Vec::new();
    for _ in 0..epochs {
        while let Some(step) = pollster::block_on(trainer.step()).unwrap() {
            assert!(step.total_loss.is_finite());
            losses.push(step.total_loss);
        }
        epochs_done.push(pollster::block_on(trainer.validate()).unwrap());
    }
    losses.insert(0, before);
    (epochs_done, losses)
}

#[test]
fn a_few_epochs_reduce_the_valid_kl_and_repeat_exactly() {
    let config = WalfConfig {
        lr: 1e-3,
        max_epochs: 3,
        batch_size: 16,
        ..WalfConfig::paper(Target::Equal)
    };
    let (epochs, losses) = train("distilbert", config.clone(), 3);
    let before = losses[0];
    let after = epochs.last().unwrap().valid_kl;
    assert!(after < 0.5 * before, "valid KL {before} -> {after}");
    assert!(epochs[0].improved);
    let (again, losses_again) = train("distilbert", config, 3);
    assert_eq!(losses, losses_again, "same seed, same run on the CPU");
    assert_eq!(
        epochs.last().unwrap().valid_kl,
        again.last().unwrap().valid_kl
    );
}

#[test]
fn real_world_steps_report_every_part_of_the_loss() {
    let bench = Benchmark::bundled();
    let config = WalfConfig {
        lr: 1e-3,
        ..WalfConfig::paper(Target::RealWorld)
    };
    let mut trainer = WalfTrainer::new(trainable("bert"), &bench, config).unwrap();
    let step = pollster::block_on(trainer.step()).unwrap().unwrap();
    let (lambda, normalized, mlm) = (
        step.lambda.unwrap(),
        step.normalized_loss.unwrap(),
        step.mlm_loss.unwrap(),
    );
    assert!((0.8..=1.5).contains(&lambda));
    assert!(mlm > 0.0 && step.mlm_tokens.unwrap() > 0);
    assert!((step.total_loss - (lambda * normalized + 0.1 * mlm)).abs() < 1e-9);
    let stats = step.tracker[&step.group.expect("a WALF step's group")];
    assert_eq!(
        Some(stats.mean),
        step.kl,
        "the first batch of a group initialises the tracker"
    );
}

#[test]
fn export_then_reload_gives_the_same_measure() {
    use walf_lab::data::Split;
    use walf_lab::measure::ProbeSettings;
    for name in ["bert", "roberta", "bert-legacy", "distilbert"] {
        let (c, t, w) = read_model_files(&fixture_model(name));
        let cpu = walf_lab::device::cpu();
        let original = load_bytes(&c, &t, &w, &cpu).unwrap();
        let exported = pollster::block_on(original.export(&original.model)).unwrap();
        // same names, dtypes and shapes as the file it came from; identical values
        let a = safetensors::SafeTensors::deserialize(&w).unwrap();
        let b = safetensors::SafeTensors::deserialize(&exported.safetensors).unwrap();
        let mut names_a = a.names();
        let mut names_b = b.names();
        names_a.sort();
        names_b.sort();
        assert_eq!(names_a, names_b, "{name}");
        for n in names_a {
            let (x, y) = (a.tensor(n).unwrap(), b.tensor(n).unwrap());
            assert_eq!(
                (x.dtype(), x.shape(), x.data()),
                (y.dtype(), y.shape(), y.data()),
                "{name}: {n}"
            );
        }
        // and after training, the reloaded export measures exactly as the trained model
        let bench = Benchmark::bundled();
        let config = WalfConfig {
            lr: 1e-3,
            ..WalfConfig::paper(Target::Equal)
        };
        let mut trainer = WalfTrainer::new(trainable(name), &bench, config).unwrap();
        pollster::block_on(trainer.step()).unwrap();
        let tuned = trainer.language_model().model.valid();
        let files = pollster::block_on(trainer.language_model().export(&tuned)).unwrap();
        let reloaded = load_bytes(
            &files.config_json,
            &files.tokenizer_json,
            &files.safetensors,
            &cpu,
        )
        .unwrap();
        let data = bench.split(Split::Test);
        let input = data.input();
        let measure = |model: &walf_lab::model::MaskedLm| {
            pollster::block_on(reloaded.probe_weights(
                model,
                input,
                ProbeSettings::default(),
                &mut |_| {},
            ))
            .unwrap()
            .professions
            .iter()
            .map(|p| p.p_female)
            .collect::<Vec<_>>()
        };
        let (tuned_p, reloaded_p) = (measure(&tuned), measure(&reloaded.model));
        if name == "bert-legacy" {
            // f16 storage rounds the tuned weights
            assert!(
                tuned_p
                    .iter()
                    .zip(&reloaded_p)
                    .all(|(a, b)| (a - b).abs() < 1e-2),
                "{name}"
            );
        } else {
            assert_eq!(tuned_p, reloaded_p, "{name}");
        }
        assert_ne!(
            measure(&original.model),
            tuned_p,
            "{name}: the step changed the model"
        );
    }
}

/// The same WALF step on wgpu (where a Vulkan device exists) as on the CPU.
#[test]
fn a_walf_step_on_wgpu_matches_the_cpu() {
    let Ok(gpu) = walf_lab::device::wgpu() else {
        eprintln!("wgpu not checked: no adapter");
        return;
    };
    let bench = Benchmark::bundled();
    let step_on = |device: burn::tensor::Device| {
        let (c, t, w) = read_model_files(&fixture_model("roberta"));
        let mut lm = load_bytes(&c, &t, &w, &device.autodiff()).unwrap();
        lm.model.set_dropout(0.0, 0.0);
        let config = WalfConfig {
            lr: 1e-3,
            ..WalfConfig::paper(Target::RealWorld)
        };
        let mut trainer = WalfTrainer::new(lm, &bench, config).unwrap();
        let step = pollster::block_on(trainer.step()).unwrap().unwrap();
        let after = pollster::block_on(trainer.valid_kl()).unwrap();
        (step, after)
    };
    let (cpu_step, cpu_after) = step_on(walf_lab::device::cpu());
    let (gpu_step, gpu_after) = step_on(gpu);
    assert_eq!(cpu_step.professions, gpu_step.professions);
    assert!(
        (cpu_step.kl.unwrap() - gpu_step.kl.unwrap()).abs() < 1e-5,
        "{:?} vs {:?}",
        cpu_step.kl,
        gpu_step.kl
    );
    assert!((cpu_step.total_loss - gpu_step.total_loss).abs() < 1e-4);
    assert!(
        (cpu_after - gpu_after).abs() < 1e-4,
        "valid KL after the step: {cpu_after} vs {gpu_after}"
    );
}

/// A NaN or infinite gradient (injected as a numerical blow-up would leave it) is refused before
/// AdamW applies it: training stops with the step named, the weights stay as the last good step
/// left them, and the best weights of the finished epoch are still there.
#[test]
fn a_poisoned_gradient_stops_training_and_keeps_the_best_weights() {
    let bench = Benchmark::bundled();
    for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let config = WalfConfig {
            lr: 1e-3,
            batch_size: 16,
            ..WalfConfig::paper(Target::Equal)
        };
        let mut trainer = WalfTrainer::new(trainable("bert"), &bench, config).unwrap();
        while pollster::block_on(trainer.step()).unwrap().is_some() {}
        let epoch = pollster::block_on(trainer.validate()).unwrap();
        assert!(epoch.improved);
        let weights =
            |model: &walf_lab::model::MaskedLm| pollster::block_on(model.to_safetensors()).unwrap();
        let best = weights(&trainer.best_model());
        let poisoned = trainer.steps_done() + 2;
        trainer.poison_gradient_at(poisoned, value);
        pollster::block_on(trainer.step()).unwrap().unwrap();
        let last_good = weights(&trainer.language_model().model.valid());
        let message = pollster::block_on(trainer.step()).unwrap_err().to_string();
        for part in [
            format!("a gradient became NaN or infinite at step {poisoned} (epoch 2, batch 2 of "),
            "the update was not applied".to_string(),
            format!(
                "the best weights so far (epoch 1, valid KL {:.5}) are kept",
                epoch.valid_kl
            ),
        ] {
            assert!(message.contains(&part), "{message:?} lacks {part:?}");
        }
        assert_eq!(trainer.steps_done(), poisoned - 1);
        assert!(
            last_good == weights(&trainer.language_model().model.valid()),
            "the poisoned update changed the weights"
        );
        assert!(
            best == weights(&trainer.best_model()),
            "the best weights changed"
        );
        // the weights carry on: the next step (no fault now) trains normally
        let next = pollster::block_on(trainer.step()).unwrap().unwrap();
        assert!(next.total_loss.is_finite());
    }
}

/// A KL that is not a number (weights gone bad) stops the step before anything moves: the KL is
/// read back only at the step's end, with the other losses, so the KL tracker must not have been
/// fed it, nor AdamW the gradients computed from it.
#[test]
fn a_step_whose_kl_is_not_a_number_changes_nothing() {
    let (c, t, w) = read_model_files(&fixture_model("bert"));
    let weights = safetensors::SafeTensors::deserialize(&w).unwrap();
    let spoiled = weights
        .names()
        .into_iter()
        .find(|n| n.ends_with("LayerNorm.weight"))
        .unwrap()
        .to_string();
    let nan: Vec<u8> = {
        let view = weights.tensor(&spoiled).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::F32);
        f32::NAN.to_le_bytes().repeat(view.data().len() / 4)
    };
    let tensors: Vec<(String, safetensors::tensor::TensorView)> = weights
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = if name == spoiled { &nan } else { view.data() };
            let view =
                safetensors::tensor::TensorView::new(view.dtype(), view.shape().to_vec(), data)
                    .unwrap();
            (name, view)
        })
        .collect();
    let w = safetensors::serialize(tensors, None).unwrap();

    let bench = few_professions(2, 40);
    for target in [Target::Equal, Target::RealWorld] {
        let mut lm = load_bytes(&c, &t, &w, &walf_lab::device::cpu().autodiff()).unwrap();
        lm.model.set_dropout(0.0, 0.0);
        let config = WalfConfig {
            mlm_positions: Some(1),
            ..WalfConfig::paper(target)
        };
        let mut trainer = WalfTrainer::new(lm, &bench, config).unwrap();
        let before =
            pollster::block_on(trainer.language_model().model.to_safetensors_f32()).unwrap();
        let message = pollster::block_on(trainer.step()).unwrap_err().to_string();
        assert!(
            message.contains("the KL became NaN at step 1 (epoch 1, batch 1 of "),
            "{target:?}: {message}"
        );
        assert_eq!(trainer.steps_done(), 0, "{target:?}");
        let state = trainer.state().expect("still at the epoch's start");
        assert!(state.tracker.is_empty(), "{target:?}: {:?}", state.tracker);
        let after =
            pollster::block_on(trainer.language_model().model.to_safetensors_f32()).unwrap();
        assert!(before == after, "{target:?}: the weights moved");
    }
}

/// A run saved at an epoch boundary (state as JSON, weights as f32 safetensors, as the browser
/// stores them) and resumed in a fresh trainer goes on as the uninterrupted run: the same
/// batches in the same order, the same first step (the weights are the same numbers), the same
/// KL tracker, best epoch and patience. Only AdamW's moments start afresh, so later steps drift.
#[test]
fn a_run_resumed_from_a_saved_epoch_goes_on_where_it_stopped() {
    // Four train professions of each group and the valid ones of the first 60 rows: short epochs.
    let bench = few_professions(4, 60);
    let config = WalfConfig {
        lr: 1e-3,
        batch_size: 3,
        ..WalfConfig::paper(Target::RealWorld)
    };
    let f32_bytes =
        |model: &walf_lab::model::MaskedLm| pollster::block_on(model.to_safetensors_f32()).unwrap();

    // Uninterrupted: epoch 1, then all of epoch 2's batches.
    let mut straight = WalfTrainer::new(trainable("bert"), &bench, config.clone()).unwrap();
    while pollster::block_on(straight.step()).unwrap().is_some() {}
    pollster::block_on(straight.validate()).unwrap();
    let mut second_epoch = Vec::new();
    while let Some(step) = pollster::block_on(straight.step()).unwrap() {
        second_epoch.push(step);
    }

    // Interrupted after epoch 1: saved, then resumed from the saved bytes.
    let mut first = WalfTrainer::new(trainable("bert"), &bench, config.clone()).unwrap();
    pollster::block_on(first.step()).unwrap().unwrap();
    assert!(
        first.state().is_none(),
        "no state in the middle of an epoch"
    );
    while pollster::block_on(first.step()).unwrap().is_some() {}
    let epoch = pollster::block_on(first.validate()).unwrap();
    let state = first.state().unwrap();
    assert_eq!(state.epochs_done, 1);
    assert_eq!(state.best, Some((epoch.valid_kl, 0)));
    let saved_state = serde_json::to_string(&state).unwrap();
    let last = f32_bytes(&first.language_model().model.valid());
    let best = f32_bytes(&first.best_model());
    drop(first);

    let (c, t, _) = read_model_files(&fixture_model("bert"));
    let state: walf_lab::walf::TrainerState = serde_json::from_str(&saved_state).unwrap();
    let mut lm = load_bytes(&c, &t, &last, &walf_lab::device::cpu().autodiff()).unwrap();
    lm.model.set_dropout(0.0, 0.0);
    let best_model = load_bytes(&c, &t, &best, &walf_lab::device::cpu())
        .unwrap()
        .model;
    // A record that claims a best epoch needs its weights.
    let lm_again = load_bytes(&c, &t, &last, &walf_lab::device::cpu().autodiff()).unwrap();
    let refused = WalfTrainer::resume(
        lm_again,
        None,
        &bench,
        config.clone(),
        Objective::Walf,
        state.clone(),
    );
    assert!(refused.is_err());

    let mut resumed = WalfTrainer::resume(
        lm,
        Some(best_model),
        &bench,
        config,
        Objective::Walf,
        state.clone(),
    )
    .unwrap();
    assert_eq!(
        resumed.state().unwrap(),
        state,
        "the state survives the resume"
    );
    assert_eq!(resumed.epoch(), 1);
    assert_eq!(f32_bytes(&resumed.best_model()), best);
    let mut resumed_epoch = Vec::new();
    while let Some(step) = pollster::block_on(resumed.step()).unwrap() {
        resumed_epoch.push(step);
    }
    assert!(second_epoch.len() >= 4, "{} batches", second_epoch.len());
    assert_eq!(resumed_epoch.len(), second_epoch.len());
    for (a, b) in resumed_epoch.iter().zip(&second_epoch) {
        assert_eq!(
            (a.epoch, a.batch, &a.professions),
            (b.epoch, b.batch, &b.professions)
        );
    }
    // The first step sees the same weights and tracker: the same numbers exactly.
    let (a, b) = (&resumed_epoch[0], &second_epoch[0]);
    assert_eq!(
        (a.kl, a.lambda, a.mlm_loss, a.total_loss),
        (b.kl, b.lambda, b.mlm_loss, b.total_loss)
    );
    assert_eq!(a.tracker, b.tracker);
    assert_eq!(resumed.steps_done(), straight.steps_done());
}

/// The masked-LM loss of one real-world step on two train professions, with `mlm_positions`.
fn mlm_step(mlm_positions: Option<usize>, seed: u64) -> walf_lab::walf::StepRecord {
    mlm_step_drawing((mlm_positions, None), seed)
}

/// [`mlm_step`] with (positions per sentence, sentences per profession) drawn.
fn mlm_step_drawing(
    (mlm_positions, mlm_sentences): (Option<usize>, Option<usize>),
    seed: u64,
) -> walf_lab::walf::StepRecord {
    use walf_lab::data::Split;
    let bench = Benchmark::bundled();
    let config = WalfConfig {
        mlm_positions,
        mlm_sentences,
        seed,
        ..WalfConfig::paper(Target::RealWorld)
    };
    let train = bench.professions_of(Split::Train);
    let group = train[0].group;
    let pair: Vec<_> = train
        .iter()
        .filter(|p| p.group == group)
        .take(2)
        .cloned()
        .collect();
    let mut trainer = WalfTrainer::new(trainable("bert"), &bench, config).unwrap();
    pollster::block_on(trainer.gradients(group, &pair))
        .unwrap()
        .0
}

#[test]
fn sampled_masked_lm_loss_estimates_the_exact_one() {
    let exact = mlm_step(None, 42);
    let tokens = exact.mlm_tokens.unwrap();
    assert_eq!(exact.mlm_rows, Some(tokens), "every token masked in turn");

    // drawing more positions than any sentence has is the exact loss
    let all = mlm_step(Some(1000), 7);
    assert_eq!(
        (all.mlm_rows, all.mlm_loss, all.total_loss),
        (exact.mlm_rows, exact.mlm_loss, exact.total_loss)
    );

    // one position per sentence: 3 templates × 22 phrases × 2 professions rows
    assert_estimates_the_exact_loss((Some(1), None), 4, 3 * 22 * 2, &exact);
}

/// Steps drawing `(positions, sentences)` with seeds 0..`seeds`: each runs `rows` masked copies
/// with the exact step's denominator and KL, and their masked-LM losses differ between seeds,
/// repeat for a seed and average within 5% of the exact one.
fn assert_estimates_the_exact_loss(
    sampling: (Option<usize>, Option<usize>),
    seeds: u64,
    rows: usize,
    exact: &walf_lab::walf::StepRecord,
) {
    let (tokens, mlm) = (exact.mlm_tokens.unwrap(), exact.mlm_loss.unwrap());
    let estimates: Vec<f64> = (0..seeds)
        .map(|seed| {
            let step = mlm_step_drawing(sampling, seed);
            assert_eq!(step.mlm_rows, Some(rows));
            assert_eq!(step.mlm_tokens, Some(tokens));
            assert_eq!(
                step.kl, exact.kl,
                "sampling touches the masked-LM loss only"
            );
            step.mlm_loss.unwrap()
        })
        .collect();
    assert!(estimates.windows(2).any(|w| w[0] != w[1]), "{estimates:?}");
    let mean = estimates.iter().sum::<f64>() / estimates.len() as f64;
    assert!(
        (mean - mlm).abs() < 0.05 * mlm,
        "sampled {estimates:?} against exact {mlm}"
    );
    assert_eq!(
        mlm_step_drawing(sampling, 1).mlm_loss,
        Some(estimates[1]),
        "same seed, same draw"
    );
}

#[test]
fn the_sentences_drawn_per_profession_estimate_the_same_loss() {
    let exact = mlm_step(None, 42);
    let tokens = exact.mlm_tokens.unwrap();

    // drawing at least as many sentences as a profession has is the exact loss
    let all = mlm_step_drawing((None, Some(66)), 7);
    assert_eq!(
        (all.mlm_rows, all.mlm_loss, all.total_loss),
        (exact.mlm_rows, exact.mlm_loss, exact.total_loss)
    );

    // 20 of each profession's 66 sentences, one token each: 40 rows
    assert_estimates_the_exact_loss((Some(1), Some(20)), 6, 20 * 2, &exact);
    // sentences drawn, every token of each: the rows are those sentences' tokens
    let whole = mlm_step_drawing((None, Some(20)), 1);
    let rows = whole.mlm_rows.unwrap();
    assert!(rows > 40 && rows < tokens, "{rows} rows of {tokens} tokens");
}

#[test]
fn every_sentence_and_position_weighs_one_on_average_when_drawn() {
    // Unbiasedness without a model: over many draws, the weights given to each (sentence,
    // position) of the exact loss average 1, so the weighted sum's expectation is the exact sum.
    use std::collections::BTreeMap;
    use walf_lab::rng::SplitMix64;
    use walf_lab::walf::loss::{MlmSampling, mlm_rows};
    let lm = trainable("bert");
    let sentences: Vec<(usize, String)> = [
        (0, "he is a nurse."),
        (0, "my sister is a nurse at the hospital."),
        (0, "this woman is a nurse."),
        (1, "she is a carpenter."),
        (1, "my brother is a carpenter."),
        (2, "he is a baker."),
    ]
    .iter()
    .map(|&(p, s)| (p, s.to_string()))
    .collect();
    let key = |r: &walf_lab::walf::loss::MlmRow| {
        let mut ids = r.ids.clone();
        ids[r.position] = r.label;
        (ids, r.position)
    };
    let mut rng = SplitMix64::new(5);
    let exact = mlm_rows(
        &lm.tokenizer,
        &sentences,
        512,
        MlmSampling::default(),
        &mut rng,
    )
    .unwrap();
    assert!(exact.rows.iter().all(|r| r.weight == 1.0));
    let mut weight: BTreeMap<_, f64> = exact.rows.iter().map(|r| (key(r), 0.0)).collect();
    let draws = 20_000;
    let sampling = MlmSampling {
        positions: Some(2),
        sentences: Some(2),
    };
    for _ in 0..draws {
        let drawn = mlm_rows(&lm.tokenizer, &sentences, 512, sampling, &mut rng).unwrap();
        assert_eq!(
            drawn.tokens, exact.tokens,
            "the denominator counts every sentence"
        );
        // two sentences of profession 0's three, all of 1's two and 2's one; two tokens each
        assert_eq!(drawn.rows.len(), (2 + 2 + 1) * 2);
        for r in &drawn.rows {
            *weight.get_mut(&key(r)).expect("a row of the exact loss") += r.weight as f64;
        }
    }
    for (k, w) in weight {
        let mean = w / draws as f64;
        assert!((mean - 1.0).abs() < 0.1, "{k:?}: mean weight {mean}");
    }
}

#[test]
fn zero_masked_positions_is_refused() {
    let bench = Benchmark::bundled();
    let config = WalfConfig {
        mlm_positions: Some(0),
        ..WalfConfig::paper(Target::RealWorld)
    };
    let err = WalfTrainer::new(trainable("bert"), &bench, config)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("masked position"), "{err}");
    let config = WalfConfig {
        mlm_sentences: Some(0),
        ..WalfConfig::paper(Target::RealWorld)
    };
    let err = WalfTrainer::new(trainable("bert"), &bench, config)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("masked-LM sentence"), "{err}");
}

#[test]
fn a_gendered_word_of_many_pieces_keeps_the_papers_values_in_training() {
    // brown-bert splits "boyfriend" and "girlfriend" into four pieces: sixteen probabilities per
    // sentence (every piece at every masked position), whose float32 product, as the paper's
    // training code forms it, underflows to 0 and gives 0/0. WALF's differentiable scores sum
    // log-probabilities instead and must give the paper's detection values (float64) there too.
    use walf_lab::data::Split;
    use walf_lab::measure::SentencePlan;
    use walf_lab::walf::loss::profession_distribution;
    let name = crate::common::BROWN_BERT;
    let lm = trainable(name);
    let exp = crate::common::expected(name);
    let raw = exp["measure"]["test"]["equal"]["raw"].as_array().unwrap();
    let many: Vec<&serde_json::Value> = raw
        .iter()
        .filter(|r| r["masked_ids_sentence_AM"].as_array().unwrap().len() >= 4)
        .collect();
    assert!(!many.is_empty(), "no gendered word of four pieces or more");
    let mut underflows = 0;
    for row in &many {
        let word = row["gendered_word"].as_str().unwrap();
        let ids = lm.tokenizer.word_ids(word, false).unwrap();
        for sentence in [&row["sentence_AM"], &row["sentence_TAM"]] {
            let masks = pollster::block_on(lm.fill_mask(sentence.as_str().unwrap(), 1)).unwrap();
            // the attribute's masks come first in both sentences of these templates
            let product = ids.iter().fold(1f32, |p, &id| {
                masks[..ids.len()]
                    .iter()
                    .fold(p, |p, m| p * m.probabilities[id as usize])
            });
            underflows += (product == 0.0) as usize;
        }
    }
    assert!(
        underflows > 0,
        "the float32 product never underflows: the test would not test it"
    );

    let bench = Benchmark::bundled();
    let data = bench.split(Split::Test);
    let input = data.input();
    let plan = SentencePlan::new(&lm.tokenizer, input, lm.max_len()).unwrap();
    let distribution = profession_distribution(&lm.model, &lm.tokenizer, &plan, input, 64);
    let values = distribution.into_data().try_to_vec::<f32>().unwrap();
    let individual = exp["measure"]["test"]["equal"]["individual"]
        .as_array()
        .unwrap();
    assert_eq!(individual.len(), input.professions.len());
    for (i, row) in individual.iter().enumerate() {
        let (male, female) = (values[2 * i] as f64, values[2 * i + 1] as f64);
        assert!(male.is_finite() && female.is_finite(), "{row}");
        for (got, want) in [(male, &row["m before"]), (female, &row["f before"])] {
            let want = crate::common::f(want);
            assert!(
                (got - want).abs() <= 1e-5,
                "{}: {got} vs {want}",
                row["profession"]
            );
        }
    }
}

#[test]
fn an_unshared_plan_gives_each_use_its_own_sentence_and_the_same_distribution() {
    use walf_lab::data::Split;
    use walf_lab::measure::SentencePlan;
    use walf_lab::walf::loss::profession_distribution;
    let lm = trainable("bert");
    let bench = Benchmark::bundled();
    let data = bench.split(Split::Valid);
    let input = data.input();
    let shared = SentencePlan::new(&lm.tokenizer, input, lm.max_len()).unwrap();
    let own = shared.unshared();
    assert!(shared.sentences.len() < own.sentences.len());
    assert_eq!(own.sentences.len(), 2 * own.instances.len());
    let mut uses: Vec<usize> = own.instances.iter().flat_map(|i| [i.am, i.tam]).collect();
    uses.sort_unstable();
    assert_eq!(uses, (0..own.sentences.len()).collect::<Vec<_>>());
    for (a, b) in shared.instances.iter().zip(&own.instances) {
        assert_eq!(shared.sentences[a.am].text, own.sentences[b.am].text);
        assert_eq!(shared.sentences[a.tam].text, own.sentences[b.tam].text);
    }
    // without dropout the two plans are the same computation
    let values = |plan: &SentencePlan| {
        profession_distribution(&lm.model, &lm.tokenizer, plan, input, 64)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    for (x, y) in values(&shared).iter().zip(values(&own)) {
        assert!((x - y).abs() < 1e-6, "{x} vs {y}");
    }
    assert!(!lm.model.has_dropout());
}

#[test]
fn a_step_waits_for_the_device_once_whatever_its_target() {
    // On a GPU a read-back waits for everything queued before it: a step's losses and its
    // gradients' check come back together. The real-world target's λ and the KL's scale depend
    // on the KL's value, so they are computed on the device rather than read first.
    let bench = few_professions(2, 40);
    for target in [Target::Equal, Target::RealWorld] {
        let config = WalfConfig {
            mlm_positions: Some(1),
            mlm_chunk: 4,
            ..WalfConfig::paper(target)
        };
        let mut trainer = WalfTrainer::new(trainable("bert"), &bench, config).unwrap();
        let before = walf_lab::readback::read_backs();
        let step = pollster::block_on(trainer.step()).unwrap().unwrap();
        assert_eq!(walf_lab::readback::read_backs() - before, 1, "{target:?}");
        assert!(step.total_loss.is_finite() && step.kl.is_some_and(f64::is_finite));
        if target == Target::RealWorld {
            // several chunks of the masked-LM term, still one read for them all
            assert!(step.mlm_rows.unwrap() > 4, "{:?}", step.mlm_rows);
            let mlm = step.mlm_loss.unwrap();
            let want = step.lambda.unwrap() * step.normalized_loss.unwrap() + 0.1 * mlm;
            assert!((step.total_loss - want).abs() < 1e-12);
        }
    }
}

#[test]
fn a_trial_step_for_timing_leaves_the_run_as_it_was() {
    // `automatic` times a step's work on each device before a run starts, on the trainer the run
    // then uses: the weights, the KL tracker (which λ reads) and the place in the epoch must not
    // move, so the run's steps are those of a trainer never tried.
    let bench = few_professions(4, 40);
    for target in [Target::Equal, Target::RealWorld] {
        let config = WalfConfig {
            mlm_positions: Some(2),
            batch_size: 2,
            ..WalfConfig::paper(target)
        };
        let run = |trial: bool| {
            let mut trainer = WalfTrainer::new(trainable("bert"), &bench, config.clone()).unwrap();
            if trial {
                let reads = walf_lab::readback::read_backs();
                let clock = std::time::Instant::now();
                let now_ms = || clock.elapsed().as_secs_f64() * 1e3;
                let ms = pollster::block_on(walf_lab::speed::step_time_ms(&mut trainer, &now_ms))
                    .unwrap();
                assert!(ms.is_finite() && ms >= 0.0, "{ms}");
                // each pass reads its losses back once, as a step does
                assert_eq!(walf_lab::readback::read_backs() - reads, 2);
                assert_eq!(trainer.steps_done(), 0);
            }
            let steps: Vec<_> = (0..3)
                .map(|_| pollster::block_on(trainer.step()).unwrap().unwrap())
                .collect();
            steps
                .iter()
                .map(|s| (s.professions.clone(), s.total_loss, s.lambda, s.kl))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(true), run(false), "{target:?}");
    }
}
