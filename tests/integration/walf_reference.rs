//! WALF steps against PyTorch + transformers running the paper's fine-tuning code
//! (tests/reference/walf_step.py), from the same weights on the same batches, dropout off:
//! loss parts, gradient norms of named tensors and their values after AdamW. Two cases: two
//! female-dominated steps at the fixtures' lr and decay, and a step of every group with a decay
//! large enough that a wrong one moves the weights by ten times the tolerance.

use crate::common::{expected, f, trainable};
use walf_lab::bias::Target;
use walf_lab::data::{Benchmark, Group, Split};
use walf_lab::walf::{KlTracker, WalfConfig, WalfTrainer};

/// Within `tol`, relative once the value exceeds 1.
fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * want.abs().max(1.0)
}

fn group(label: &str) -> Group {
    Group::ALL.into_iter().find(|g| g.label() == label).unwrap()
}

fn check(name: &str) {
    let exp = expected(&format!("walf_step_{name}"));
    check_case(name, "", &exp["targets"], &exp["hyper"]);
    let decay = &exp["decay_case"];
    assert!(
        f(&decay["hyper"]["weight_decay"]) * f(&decay["hyper"]["lr"]) >= 1e-3,
        "the decay case must move weights by more than the tolerance"
    );
    check_case(name, " decay case", &decay["targets"], &decay["hyper"]);
    check_epochs(name, &exp["epochs_case"]);
}

/// Whole epochs on the same plan: validation KL after each, and the early-stopping decision.
fn check_epochs(name: &str, case: &serde_json::Value) {
    let bench = Benchmark::bundled();
    let train = bench.professions_of(Split::Train);
    let hyper = &case["hyper"];
    let first = |g: Group, n: usize| -> Vec<_> {
        train
            .iter()
            .filter(|p| p.group == g)
            .take(n)
            .cloned()
            .collect()
    };
    let plan = [
        (Group::MaleDominated, first(Group::MaleDominated, 3)),
        (Group::Balanced, first(Group::Balanced, 2)),
        (Group::FemaleDominated, first(Group::FemaleDominated, 2)),
    ];
    for (target, key) in [(Target::Equal, "equal"), (Target::RealWorld, "real_world")] {
        let lm = trainable(name);
        let config = WalfConfig {
            lr: f(&hyper["lr"]),
            weight_decay: f(&hyper["weight_decay"]),
            patience: hyper["patience"].as_u64().unwrap() as usize,
            min_delta: f(&hyper["min_delta"][key]),
            ..WalfConfig::paper(target)
        };
        let mut trainer = WalfTrainer::new(lm, &bench, config).unwrap();
        for want in case["targets"][key].as_array().unwrap() {
            let at = format!("{name} {key} epoch {}", want["epoch"]);
            for (step, (group, professions)) in plan.iter().enumerate() {
                let record = pollster::block_on(trainer.train_on(*group, professions)).unwrap();
                let loss = f(&want["step_losses"][step]);
                assert!(
                    (record.total_loss - loss).abs() <= 1e-3 * loss.abs() + 1e-7,
                    "{at}: step {step} loss {} vs {loss}",
                    record.total_loss
                );
            }
            let got = pollster::block_on(trainer.validate()).unwrap();
            let valid = f(&want["valid_kl"]);
            assert!(
                (got.valid_kl - valid).abs() <= 1e-3 * valid + 1e-7,
                "{at}: valid KL {} vs {valid}",
                got.valid_kl
            );
            assert_eq!(
                (got.improved, got.finished, got.best_epoch as u64),
                (
                    want["improved"].as_bool().unwrap(),
                    want["finished"].as_bool().unwrap(),
                    want["best_epoch"].as_u64().unwrap()
                ),
                "{at}: improved, finished, best epoch"
            );
        }
    }
}

fn check_case(name: &str, case: &str, targets: &serde_json::Value, hyper: &serde_json::Value) {
    let bench = Benchmark::bundled();
    let train = bench.professions_of(Split::Train);
    for (target, key) in [(Target::Equal, "equal"), (Target::RealWorld, "real_world")] {
        let lm = trainable(name);
        let config = WalfConfig {
            lr: f(&hyper["lr"]),
            weight_decay: f(&hyper["weight_decay"]),
            gamma: 0.1,
            beta: 0.95,
            ..WalfConfig::paper(target)
        };
        let mut trainer = WalfTrainer::new(lm, &bench, config).unwrap();
        for step in targets[key]["steps"].as_array().unwrap() {
            let professions: Vec<_> = step["professions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| {
                    train
                        .iter()
                        .find(|p| p.name == n.as_str().unwrap())
                        .unwrap()
                        .clone()
                })
                .collect();
            let (record, grads) = pollster::block_on(
                trainer.gradients(group(step["group"].as_str().unwrap()), &professions),
            )
            .unwrap();
            let at = format!("{name}{case} {key} step {}", step["step"]);
            assert!(
                close(record.kl.expect("a WALF step's KL"), f(&step["kl"]), 1e-4),
                "{at}: kl {:?} vs {}",
                record.kl,
                step["kl"]
            );
            if target == Target::RealWorld {
                let stats = record.tracker[&record.group.expect("a WALF step's group")];
                for (label, got, want) in [
                    ("kl_mean", stats.mean, &step["kl_mean"]),
                    ("kl_var", stats.variance, &step["kl_var"]),
                    (
                        "normalized_loss",
                        record.normalized_loss.unwrap(),
                        &step["normalized_loss"],
                    ),
                    ("lambda", record.lambda.unwrap(), &step["lambda"]),
                    ("mlm_loss", record.mlm_loss.unwrap(), &step["mlm_loss"]),
                    ("total_loss", record.total_loss, &step["total_loss"]),
                ] {
                    assert!(close(got, f(want), 1e-4), "{at}: {label} {got} vs {want}");
                }
                assert_eq!(
                    record.mlm_tokens.unwrap() as u64,
                    step["mlm_tokens"].as_u64().unwrap(),
                    "{at}"
                );
            }
            let model = &trainer.language_model().model;
            for (tensor, want) in step["grad_norms"].as_object().unwrap() {
                let entry = model
                    .checkpoint
                    .iter()
                    .find(|e| &e.name == tensor)
                    .unwrap_or_else(|| panic!("{tensor}"));
                let norm = match entry.shape.len() {
                    1 => grads
                        .get::<1>(entry.id)
                        .map(|g| g.square().sum().sqrt().into_scalar::<f32>()),
                    _ => grads
                        .get::<2>(entry.id)
                        .map(|g| g.square().sum().sqrt().into_scalar::<f32>()),
                }
                .unwrap_or_else(|| panic!("{at}: no gradient for {tensor}"))
                    as f64;
                assert!(
                    close(norm, f(want), 1e-4),
                    "{at}: |grad {tensor}| {norm} vs {want}"
                );
            }
            trainer.apply(grads);
            let model = &trainer.language_model().model;
            for (tensor, want) in step["after_step"].as_object().unwrap() {
                let got = pollster::block_on(model.checkpoint_tensor(tensor))
                    .unwrap()
                    .unwrap();
                let want: Vec<f64> = match want.as_array().unwrap()[0].as_array() {
                    // the first rows of a matrix
                    Some(_) => want
                        .as_array()
                        .unwrap()
                        .iter()
                        .flat_map(|r| r.as_array().unwrap().iter().map(f))
                        .collect(),
                    None => want.as_array().unwrap().iter().map(f).collect(),
                };
                let worst = want
                    .iter()
                    .zip(&got)
                    .map(|(w, g)| (w - *g as f64).abs())
                    .fold(0.0, f64::max);
                assert!(worst <= 1e-4, "{at}: {tensor} after AdamW off by {worst:e}");
            }
        }
    }
}

#[test]
fn bert_walf_steps_match_pytorch() {
    check("bert");
}

#[test]
fn distilbert_walf_steps_match_pytorch() {
    check("distilbert");
}

#[test]
fn roberta_walf_steps_match_pytorch() {
    check("roberta");
}

#[test]
fn kl_tracker_matches_the_papers_class() {
    let exp = expected("walf_step_bert");
    let mut tracker = KlTracker::new(f(&exp["hyper"]["beta"]));
    for v in exp["tracker_vectors"].as_array().unwrap() {
        let g = group(v["group"].as_str().unwrap());
        let stats = tracker.update(g, f(&v["kl"]), v["batch_size"].as_u64().unwrap() as usize);
        assert!(close(stats.mean, f(&v["kl_mean"]), 1e-6), "{v}");
        assert!(
            close(stats.variance, f(&v["kl_var"]), 1e-6),
            "{v}: variance {}",
            stats.variance
        );
        assert!(
            close(
                walf_lab::walf::adjust_lambda(g, stats),
                f(&v["lambda"]),
                1e-6
            ),
            "{v}"
        );
    }
}
