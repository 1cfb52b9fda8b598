//! A tuning run (WALF, or the CDA baseline): started or restored from the browser's storage, step by step with pause and
//! stop read between steps, kept after every validated epoch.

use super::*;

/// A run's records so far, as the page and the kept run hold them.
#[derive(Default)]
struct History {
    steps: Vec<TuneStepReply>,
    epochs: Vec<TuneEpochReply>,
    baseline: Option<TuneBaselineReply>,
}

pub(super) async fn tune(
    s: &Session,
    job: u64,
    settings: TuneSettings,
    edits: &BenchmarkEdits,
    cda_text: Option<String>,
) -> Result<(), Error> {
    let bench = edits.benchmark()?;
    // `automatic` with a GPU: the faster for this run's steps, which may move the model
    let (device, tried) =
        load::choose_for_training(s, job, &settings, &bench, cda_text.as_deref()).await?;
    let (_, _, files) = loaded(s)?;
    progress(Some(job), "preparing the model for training", 0, 1);
    // A new run replaces a kept one.
    if let Err(e) = store::discard().await {
        web_sys::console::warn_1(&e.into());
    }
    let trainer = match tried {
        Some(trainer) => trainer,
        None => {
            if settings.method == TuneMethod::Cda {
                progress(Some(job), "swapping the gendered words of the text", 0, 1);
            }
            load::new_trainer(&files, &device, &settings, &bench, cda_text.as_deref())?
        }
    };
    // Where the valid-KL curve and the live chart start.
    progress(Some(job), "measuring the valid split before tuning", 0, 1);
    let validation = trainer.validation().await?;
    let baseline = TuneBaselineReply {
        valid_kl: validation.kl,
        professions: validation
            .professions
            .iter()
            .map(ProfessionRow::from)
            .collect(),
    };
    post(&Reply::TuneBaseline {
        job,
        baseline: baseline.clone(),
    });
    let history = History {
        baseline: Some(baseline),
        ..History::default()
    };
    train(s, job, trainer, settings, edits, cda_text, history).await
}

/// Goes on with the run kept in the browser's storage.
pub(super) async fn restore(s: &Session, job: u64) -> Result<(), Error> {
    let (lm, _, files) = loaded(s)?;
    progress(Some(job), "reading the kept run", 0, 1);
    let record = store::load()
        .await
        .map_err(Error::Input)?
        .ok_or_else(|| Error::Input("no WALF run is kept in this browser".into()))?;
    if record.model_fingerprint != files.fingerprint() {
        return Err(Error::Input(format!(
            "the kept run was made with {}; load that model to go on with it ({} is loaded)",
            record.run.model, files.name
        )));
    }
    let settings = record.run.settings.clone();
    let edits = record.run.benchmark.clone();
    let cda_text = record.run.cda_text.clone();
    let bench = edits.benchmark()?;
    let device = lm.model.device();
    fn saved<'a>(files: &'a ModelBytes, weights: &'a [u8]) -> ModelFiles<'a> {
        ModelFiles {
            config: &files.config,
            tokenizer: &files.tokenizer,
            weights,
            weights_name: "the kept run's weights",
        }
    }
    let last_file = record.last_file();
    let last = store::read_weights(&last_file)
        .await
        .map_err(Error::Input)?;
    let mut trainable = LanguageModel::load(saved(&files, &last), &device.clone().autodiff())?;
    trainable.model.keep_dtypes_of(&lm.model);
    if !settings.dropout {
        trainable.model.set_dropout(0.0, 0.0);
    }
    let best = match record.best_file() {
        Some(name) if name == last_file => Some(trainable.model.valid()),
        Some(name) => {
            let bytes = store::read_weights(&name).await.map_err(Error::Input)?;
            let mut best = LanguageModel::load(saved(&files, &bytes), &device)?.model;
            best.keep_dtypes_of(&lm.model);
            Some(best)
        }
        None => None,
    };
    let objective = settings.objective(cda_text.as_deref(), &bench, &trainable)?;
    let trainer = WalfTrainer::resume(
        trainable,
        best,
        &bench,
        settings.walf_config(),
        objective,
        record.state.clone(),
    )?;
    let history = History {
        steps: record.run.steps,
        epochs: record.run.epochs,
        baseline: record.run.baseline,
    };
    train(s, job, trainer, settings, &edits, cda_text, history).await
}

/// Keeps the run after an epoch; a failure to keep it is reported but does not stop training.
async fn keep(
    files: &ModelBytes,
    trainer: &WalfTrainer,
    settings: &TuneSettings,
    edits: &BenchmarkEdits,
    cda_text: &Option<String>,
    history: &History,
) -> Result<usize, String> {
    let state = trainer
        .state()
        .ok_or("the run is not at the end of an epoch")?;
    let last = trainer
        .language_model()
        .model
        .valid()
        .to_safetensors_f32()
        .await
        .map_err(|e| e.to_string())?;
    let epochs_done = state.epochs_done;
    let record = RunRecord {
        version: 0,
        run: SavedRun {
            model: files.name.clone(),
            source: files.source.clone(),
            settings: settings.clone(),
            benchmark: edits.clone(),
            cda_text: cda_text.clone(),
            epochs_done,
            steps_done: state.steps_done,
            best: state.best,
            steps: history.steps.clone(),
            epochs: history.epochs.clone(),
            baseline: history.baseline.clone(),
            saved_at: js_sys::Date::now(),
        },
        state,
        model_fingerprint: files.fingerprint().to_string(),
    };
    store::save(record, &last).await?;
    Ok(epochs_done)
}

async fn train(
    s: &Session,
    job: u64,
    mut trainer: WalfTrainer,
    settings: TuneSettings,
    edits: &BenchmarkEdits,
    cda_text: Option<String>,
    mut history: History,
) -> Result<(), Error> {
    let (_, _, files) = loaded(s)?;
    let mut steps = trainer.steps_done();
    let outcome: Result<String, Error> = loop {
        // Let pause and stop messages in.
        sleep(0).await;
        if s.control.get() == Some(Control::Pause) {
            post(&Reply::TunePaused { job, paused: true });
            while s.control.get() == Some(Control::Pause) {
                sleep(100).await;
            }
            if s.control.get() != Some(Control::Stop) {
                post(&Reply::TunePaused { job, paused: false });
            }
        }
        if s.control.get() == Some(Control::Stop) {
            break Ok(format!("stopped after {steps} steps"));
        }
        match trainer.step().await {
            Ok(Some(record)) => {
                steps += 1;
                let step = TuneStepReply {
                    step: steps,
                    epoch: record.epoch,
                    batch: record.batch,
                    batches: record.batches,
                    group: record.group,
                    kl: record.kl,
                    mlm_loss: record.mlm_loss,
                    lambda: record.lambda,
                    scale: record.scale,
                    total_loss: record.total_loss,
                };
                post(&Reply::TuneStep {
                    job,
                    step: step.clone(),
                });
                history.steps.push(step);
                if settings.max_steps.is_some_and(|m| steps >= m) {
                    break Ok(format!("reached the step limit ({steps} steps)"));
                }
            }
            Ok(None) => match trainer.validate().await {
                Ok(epoch) => {
                    let reply = TuneEpochReply {
                        epoch: epoch.epoch,
                        train_loss: epoch.train_loss,
                        valid_kl: epoch.valid_kl,
                        improved: epoch.improved,
                        best_epoch: epoch.best_epoch,
                        valid_professions: epoch
                            .valid_professions
                            .iter()
                            .map(ProfessionRow::from)
                            .collect(),
                    };
                    post(&Reply::TuneEpoch {
                        job,
                        epoch: reply.clone(),
                    });
                    history.epochs.push(reply);
                    if epoch.finished {
                        break Ok(format!(
                            "finished after {} epochs; the best was epoch {}",
                            epoch.epoch + 1,
                            epoch.best_epoch + 1
                        ));
                    }
                    progress(
                        Some(job),
                        "keeping the epoch in the browser's storage",
                        0,
                        1,
                    );
                    match keep(&files, &trainer, &settings, edits, &cda_text, &history).await {
                        Ok(epochs_done) => post(&Reply::TuneSaved { job, epochs_done }),
                        Err(e) => post(&Reply::Warning {
                            message: format!(
                                "this run cannot be kept in the browser's storage ({e}); it goes \
                                 on, but a reload or a crash would lose it"
                            ),
                        }),
                    }
                }
                Err(e) => break Err(e),
            },
            Err(e) => break Err(e),
        }
    };
    // Whatever happened, the best weights so far become the model's.
    let best = trainer.best_model();
    let generation = s.next_generation();
    if let Some(m) = s.model.borrow_mut().as_mut() {
        m.current = best;
        m.generation = generation;
    }
    let reason = outcome?;
    // The run ended as asked: nothing to go on with. (After a failure the kept run stays, to
    // go on from its last good epoch, on the CPU if the GPU was lost.)
    if let Err(e) = store::discard().await {
        web_sys::console::warn_1(&e.into());
    }
    post(&Reply::TuneFinished { job, reason, steps });
    Ok(())
}
