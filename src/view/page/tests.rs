//! The page driven by recorded reply sequences, as the worker sends them.

use super::*;
use crate::data::Group;

fn bundled() -> ModelSource {
    ModelSource::bundled("http://127.0.0.1:8080/", "minilm-brown")
}

fn loaded(gpu: bool) -> Reply {
    Reply::Loaded {
        name: "minilm-brown (bundled)".into(),
        architecture: "BERT".into(),
        parameters: 22_000_000,
        vocab_size: 30_522,
        mask_token: "[MASK]".into(),
        backend: BackendInfo {
            name: if gpu { "GPU" } else { "CPU" }.into(),
            detail: String::new(),
            notice: None,
            gpu,
        },
        downloaded: false,
        fingerprint: "00112233445566ff".into(),
    }
}

fn rows(p_female: f64) -> Vec<ProfessionRow> {
    [
        ("nurse", Group::FemaleDominated, 0.87),
        ("carpenter", Group::MaleDominated, 0.03),
        ("baker", Group::Balanced, 0.5),
    ]
    .into_iter()
    .map(|(profession, group, female_share)| ProfessionRow {
        profession: profession.into(),
        group,
        p_female,
        female_share,
    })
    .collect()
}

fn probed(job: u64, split: Split, p_female: f64) -> Reply {
    Reply::Probed {
        job,
        result: ProbeReply {
            split,
            professions: rows(p_female),
            scores: Vec::new(),
            forward_sentences: 10,
            seconds: 0.5,
            threads: 1,
        },
    }
}

fn step(job: u64, step: usize, batch: usize) -> Reply {
    Reply::TuneStep {
        job,
        step: TuneStepReply {
            step,
            epoch: 0,
            batch,
            batches: 2,
            group: Some(Group::MaleDominated),
            kl: Some(0.1 / (step + 1) as f64),
            mlm_loss: None,
            lambda: None,
            scale: None,
            total_loss: 0.1,
        },
    }
}

/// The request each effect sends, in order (and nothing else).
fn sent(effects: &[Effect]) -> Vec<Request> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Send(r) => (**r).clone(),
            other => panic!("not a request: {other:?}"),
        })
        .collect()
}

/// A page with the bundled model loaded and measured on the test split; the next job is 3.
fn measured(gpu: bool) -> Page {
    let mut page = Page::new();
    page.load(bundled());
    page.on_reply(loaded(gpu));
    page.on_reply(probed(2, Split::Test, 0.4));
    page
}

/// `measured` with a WALF run going (job 3), its baseline in.
fn tuning(gpu: bool) -> Page {
    let mut page = measured(gpu);
    page.start_tuning();
    page.on_reply(Reply::TuneBaseline {
        job: 3,
        baseline: TuneBaselineReply {
            valid_kl: 0.2,
            professions: rows(0.4),
        },
    });
    page
}

#[test]
fn a_load_shows_its_progress_then_measures_the_loaded_model() {
    let mut page = Page::new();
    let effects = page.load(bundled());
    let [
        Request::Load {
            job,
            source,
            backend,
        },
    ] = &sent(&effects)[..]
    else {
        panic!("{effects:?}")
    };
    assert_eq!(
        (*job, source, *backend),
        (1, &bundled(), BackendChoice::Auto)
    );
    assert!(matches!(page.model, ModelStatus::Loading(_)));
    page.on_reply(Reply::Progress {
        job: Some(1),
        what: "downloading config.json".into(),
        done: 10,
        total: 100,
    });
    assert_eq!(
        page.model,
        ModelStatus::Loading("downloading config.json".into())
    );
    let bar = page.job.clone().unwrap();
    assert_eq!(
        (bar.job, bar.kind, bar.done, bar.total),
        (1, JobKind::Load, 10, 100)
    );

    let effects = page.on_reply(loaded(false));
    assert!(page.ready());
    assert_eq!(
        sent(&effects),
        [Request::Probe {
            job: 2,
            split: Split::Test,
            benchmark: BenchmarkEdits::default()
        }]
    );
    assert_eq!(
        page.job.as_ref().map(|j| (j.job, j.kind)),
        Some((2, JobKind::Probe { after: false }))
    );
    page.on_reply(probed(2, Split::Test, 0.4));
    assert!(page.job.is_none());
    let result = page.result().unwrap();
    assert_eq!(result.model, "minilm-brown (bundled)");
    assert_eq!(
        result.model_fingerprint.as_deref(),
        Some("00112233445566ff")
    );
    assert_eq!(result.professions.len(), 3);
    assert!(result.tuning.is_none());
}

#[test]
fn a_run_with_a_pause_draws_its_curves_live_and_ends_with_the_tuned_models_probe() {
    let mut page = tuning(false);
    assert_eq!(page.tune_job, Some(3));
    assert_eq!(page.tune, TuneStatus::Running);
    // before the first epoch is validated the live chart has no after dots
    let live = page.live().unwrap();
    assert_eq!(live.epoch, None);
    assert!(
        live.result
            .professions
            .iter()
            .all(|p| p.p_female_after.is_none())
    );

    page.on_reply(step(3, 0, 0));
    assert_eq!(
        page.job.as_ref().map(|j| (j.job, j.kind, j.done, j.total)),
        Some((3, JobKind::Tune, 1, 2))
    );
    assert_eq!(sent(&page.pause_tuning()), [Request::TunePause { job: 3 }]);
    assert_eq!(page.tune, TuneStatus::Pausing);
    // the step under way still ends, and is drawn
    page.on_reply(step(3, 1, 1));
    page.on_reply(Reply::TunePaused {
        job: 3,
        paused: true,
    });
    assert_eq!(page.tune, TuneStatus::Paused);
    assert!(
        page.pause_tuning().is_empty(),
        "a paused run is not paused twice"
    );
    assert_eq!(
        sent(&page.resume_tuning()),
        [Request::TuneResume { job: 3 }]
    );
    assert_eq!(page.tune, TuneStatus::Running);

    page.on_reply(Reply::TuneEpoch {
        job: 3,
        epoch: TuneEpochReply {
            epoch: 0,
            train_loss: 0.1,
            valid_kl: 0.05,
            improved: true,
            best_epoch: 0,
            valid_professions: rows(0.6),
        },
    });
    let live = page.live().unwrap();
    assert_eq!(live.epoch, Some(0));
    assert!(
        live.result
            .professions
            .iter()
            .all(|p| p.p_female_after == Some(0.6))
    );
    // the chart's result leaves the curves out, so a step does not redraw it
    assert!(
        page.chart_result().unwrap().tuning.is_none(),
        "no after values yet"
    );

    let effects = page.on_reply(Reply::TuneFinished {
        job: 3,
        reason: "the epochs ran out".into(),
        steps: 2,
    });
    assert_eq!(page.tune, TuneStatus::Finished("the epochs ran out".into()));
    assert!(page.live().is_none());
    assert_eq!(
        sent(&effects),
        [Request::Probe {
            job: 4,
            split: Split::Test,
            benchmark: BenchmarkEdits::default()
        }]
    );
    page.on_reply(probed(4, Split::Test, 0.55));
    let result = page.result().unwrap();
    let tuned = result.tuning.as_ref().unwrap();
    assert_eq!(tuned.epochs, 1);
    assert_eq!(tuned.curve.len(), 2);
    assert_eq!(tuned.curve[0].valid_kl, None);
    assert_eq!(
        tuned.curve[1].valid_kl,
        Some(0.05),
        "the epoch's last step carries its valid KL"
    );
    assert!(
        result
            .professions
            .iter()
            .all(|p| p.p_female_after == Some(0.55))
    );
    assert!(
        page.chart_result()
            .unwrap()
            .tuning
            .unwrap()
            .curve
            .is_empty()
    );
}

#[test]
fn a_load_during_a_run_is_refused_and_the_run_goes_on() {
    let mut page = tuning(false);
    page.on_reply(step(3, 0, 0));
    let before = page.clone();
    assert!(
        page.load(ModelSource::Hub {
            id: "bert-base-uncased".into(),
            base: "https://huggingface.co".into()
        })
        .is_empty()
    );
    assert_eq!(page.tune, TuneStatus::Running);
    assert!(page.ready(), "the model stays");
    assert_eq!(page.job, before.job);
    assert!(page.notice.as_ref().is_some_and(|n| n.error));
    // The worker's own refusal (a load sent from another tab of the page, say) names its job:
    // the run is not touched either.
    page.on_reply(Reply::Failed {
        job: Some(40),
        kind: FailureKind::Busy,
        message: "stop the tuning run before loading another model".into(),
    });
    assert_eq!(page.tune, TuneStatus::Running);
    assert_eq!(page.job, before.job, "the run's progress stays");
    assert_eq!(page.tune_job, Some(3));
    page.on_reply(step(3, 1, 1));
    assert_eq!(page.steps.len(), 2);
    // a second run asked for while one goes is refused by the worker: the first goes on
    let mut second = page.clone();
    second.on_reply(Reply::Failed {
        job: Some(41),
        kind: FailureKind::Busy,
        message: "a tuning run is already going".into(),
    });
    assert_eq!(second.tune, TuneStatus::Running);
}

#[test]
fn replies_of_another_run_or_job_change_nothing_of_the_current_one() {
    let mut page = tuning(false);
    page.on_reply(step(3, 0, 0));
    let before = page.clone();
    // a run that is no longer the page's (an old worker's late messages)
    page.on_reply(step(9, 5, 1));
    page.on_reply(Reply::TuneFinished {
        job: 9,
        reason: "stopped".into(),
        steps: 6,
    });
    page.on_reply(Reply::TunePaused {
        job: 9,
        paused: true,
    });
    assert_eq!(page, before);
    // a late answer to another job leaves the run's progress bar
    page.on_reply(Reply::Filled {
        job: 2,
        masks: Vec::new(),
    });
    assert_eq!(page.job, before.job);
}

#[test]
fn a_crash_restarts_the_engine_and_keeps_every_result() {
    for gpu in [false, true] {
        let mut page = tuning(gpu);
        page.on_reply(step(3, 0, 0));
        let effects = page.on_reply(Reply::Failed {
            job: None,
            kind: FailureKind::Crashed,
            message: "the engine stopped: out of memory".into(),
        });
        assert_eq!(effects, [Effect::RestartEngine]);
        assert!(page.job.is_none());
        assert!(matches!(page.model, ModelStatus::Failed(_)));
        assert!(matches!(&page.tune, TuneStatus::Finished(why) if why.contains("out of memory")));
        assert!(
            page.before.is_some() && page.steps.len() == 1,
            "results stay"
        );
        let notice = page.notice.clone().unwrap();
        assert_eq!(
            notice.offer_cpu, gpu,
            "the CPU is offered where the GPU was in use"
        );
        // the fresh worker says it is ready: the page asks for the kept run
        let effects = page.on_reply(Reply::Ready);
        assert!(matches!(sent(&effects)[..], [Request::SavedRun { .. }]));
    }
}

#[test]
fn a_lost_gpu_ends_the_run_offers_the_cpu_once_and_the_cpu_loads_the_model_again() {
    let mut page = tuning(true);
    page.on_reply(step(3, 0, 0));
    let effects = page.on_reply(Reply::Failed {
        job: Some(3),
        kind: FailureKind::DeviceLost,
        message: "the device stopped answering: reading a result back failed".into(),
    });
    assert!(matches!(&page.tune, TuneStatus::Finished(why) if why.starts_with("failed")));
    assert!(
        matches!(sent(&effects)[..], [Request::SavedRun { .. }]),
        "the kept run is offered"
    );
    let notice = page.notice.clone().unwrap();
    assert!(notice.error && notice.offer_cpu);
    let effects = page.continue_on_cpu();
    assert!(page.notice.is_none());
    let [
        Request::Load {
            source, backend, ..
        },
    ] = &sent(&effects)[..]
    else {
        panic!("{effects:?}")
    };
    assert_eq!((source, *backend), (&bundled(), BackendChoice::Cpu));

    // A lost GPU during a fill is said once, in the notice, not also beside the input.
    let mut page = measured(true);
    let effects = page.start_job(JobKind::Fill, |job| Request::Fill {
        job,
        text: "[MASK] is a nurse.".into(),
        top: 5,
    });
    let job = sent(&effects)[0].job();
    page.on_reply(Reply::Failed {
        job: Some(job),
        kind: FailureKind::DeviceLost,
        message: "lost".into(),
    });
    assert!(page.fill_error.is_none());
    assert!(page.notice.as_ref().is_some_and(|n| n.offer_cpu));
}

#[test]
fn a_run_that_moves_to_the_gpu_is_shown_there_and_its_lost_device_offers_the_cpu() {
    // loaded on the CPU, then `automatic` found the GPU faster for the run's steps
    let mut page = tuning(false);
    let Some(BackendInfo { gpu: false, .. }) = page.backend_info else {
        panic!("{:?}", page.backend_info)
    };
    let notice = "WebGPU 90 ms/batch, CPU, 2 workers 60 ms/batch: running on the CPU · a \
                  training step: WebGPU 200 ms/step, CPU 900 ms/step: training on the GPU";
    page.on_reply(Reply::Backend {
        backend: BackendInfo {
            name: "this computer's graphics card (WebGPU)".into(),
            detail: String::new(),
            notice: Some(notice.into()),
            gpu: true,
        },
    });
    assert!(
        page.backend_info
            .as_ref()
            .is_some_and(|b| b.gpu && b.notice.as_deref() == Some(notice))
    );
    assert!(page.tuning_now(), "the run goes on");
    page.on_reply(step(3, 0, 0));
    page.on_reply(Reply::Failed {
        job: Some(3),
        kind: FailureKind::DeviceLost,
        message: "the device stopped answering".into(),
    });
    assert!(page.notice.as_ref().is_some_and(|n| n.offer_cpu));
}

#[test]
fn an_internal_failure_on_the_gpu_is_not_taken_for_a_lost_device() {
    let mut page = measured(true);
    let effects = page.start_job(JobKind::Export, |job| Request::Export { job });
    let job = sent(&effects)[0].job();
    page.on_reply(Reply::Failed {
        job: Some(job),
        kind: FailureKind::Internal,
        message: "backend: cannot write safetensors".into(),
    });
    let notice = page.notice.clone().unwrap();
    assert!(notice.error && !notice.offer_cpu);
    assert!(page.job.is_none());
}

#[test]
fn a_failed_input_is_told_beside_it_and_a_later_success_clears_it() {
    let mut page = measured(false);
    let fill = |page: &mut Page| {
        let effects = page.start_job(JobKind::Fill, |job| Request::Fill {
            job,
            text: "no mask here".into(),
            top: 5,
        });
        sent(&effects)[0].job()
    };
    let job = fill(&mut page);
    page.fills = Some(Vec::new());
    page.on_reply(Reply::Failed {
        job: Some(job),
        kind: FailureKind::Input,
        message: "write [MASK] where the model should fill in a word".into(),
    });
    assert!(page.fill_error.is_some());
    assert!(
        page.fills.is_none(),
        "an old result would answer another sentence"
    );
    assert!(page.notice.is_none(), "not also above the tabs");
    let job = fill(&mut page);
    page.on_reply(Reply::Filled {
        job,
        masks: Vec::new(),
    });
    assert!(page.fill_error.is_none());
    assert_eq!(page.fills, Some(Vec::new()));

    // a malformed edited benchmark: said above the chart it did not replace
    let effects = page.probe(false);
    let job = sent(&effects)[0].job();
    let chart = page.before.clone();
    page.on_reply(Reply::Failed {
        job: Some(job),
        kind: FailureKind::Input,
        message: "benchmark data professions.tsv: line 3: no share".into(),
    });
    assert!(page.probe_error.is_some());
    assert_eq!(page.before, chart);
    page.on_reply(probed(job + 1, Split::Test, 0.4));
    assert!(page.probe_error.is_none());
}

#[test]
fn a_model_that_fails_to_load_is_said_in_the_model_panel_only() {
    let mut page = Page::new();
    page.load(ModelSource::Hub {
        id: "nobody/nothing".into(),
        base: "https://huggingface.co".into(),
    });
    page.on_reply(Reply::Failed {
        job: Some(1),
        kind: FailureKind::Input,
        message: "nobody/nothing: no such model on the Hub".into(),
    });
    assert_eq!(
        page.model,
        ModelStatus::Failed("nobody/nothing: no such model on the Hub".into())
    );
    assert!(page.notice.is_none() && page.job.is_none());
}

#[test]
fn cancel_stops_a_run_after_its_step_and_restarts_the_engine_for_anything_else() {
    let mut page = tuning(false);
    page.on_reply(step(3, 0, 0));
    assert_eq!(sent(&page.cancel()), [Request::TuneStop { job: 3 }]);

    let mut page = measured(false);
    page.probe(false);
    let effects = page.cancel();
    assert_eq!(effects[0], Effect::RestartEngine);
    assert!(matches!(
        &effects[1..],
        [Effect::Send(r)] if matches!(&**r, Request::Load { source, .. } if *source == bundled())
    ));
    assert!(page.before.is_some(), "the chart stays");
    assert_eq!(page.job.as_ref().map(|j| j.kind), Some(JobKind::Load));
}

#[test]
fn an_export_saves_the_three_files_under_the_models_name() {
    let mut page = measured(false);
    let effects = page.start_job(JobKind::Export, |job| Request::Export { job });
    let job = sent(&effects)[0].job();
    let effects = page.on_reply(Reply::Exported {
        job,
        name: "minilm-brown (bundled)".into(),
    });
    assert_eq!(
        effects,
        [Effect::Download(vec![
            "minilm-brown-bundled-walf-config.json".into(),
            "minilm-brown-bundled-walf-tokenizer.json".into(),
            "minilm-brown-bundled-walf-model.safetensors".into(),
        ])]
    );
    assert!(page.job.is_none());
}

#[test]
fn a_kept_run_of_another_model_loads_that_model_then_goes_on_from_its_epoch() {
    let mut page = measured(false);
    let hub = ModelSource::Hub {
        id: "prajjwal1/bert-tiny".into(),
        base: "https://huggingface.co".into(),
    };
    let run = SavedRun {
        model: "prajjwal1/bert-tiny".into(),
        source: hub.clone(),
        settings: TuneSettings::classroom(Target::RealWorld),
        benchmark: BenchmarkEdits::default(),
        cda_text: None,
        epochs_done: 1,
        steps_done: 2,
        best: Some((0.05, 0)),
        steps: match (step(7, 0, 0), step(7, 1, 1)) {
            (Reply::TuneStep { step: a, .. }, Reply::TuneStep { step: b, .. }) => vec![a, b],
            _ => unreachable!(),
        },
        epochs: Vec::new(),
        baseline: None,
        saved_at: 1.7e12,
    };
    page.on_reply(Reply::SavedRun {
        run: Some(Box::new(run)),
    });
    let effects = page.resume_saved_run();
    assert!(matches!(&sent(&effects)[..], [Request::Load { source, .. }] if *source == hub));
    assert!(page.resume_after_load);
    let mut named = loaded(false);
    if let Reply::Loaded { name, .. } = &mut named {
        *name = "prajjwal1/bert-tiny".into();
    }
    let effects = page.on_reply(named);
    let requests = sent(&effects);
    assert!(matches!(requests[0], Request::Probe { .. }));
    let Request::TuneRestore { job } = requests[1] else {
        panic!("{requests:?}")
    };
    assert_eq!(page.tune_job, Some(job));
    assert_eq!(page.tune, TuneStatus::Running);
    assert_eq!(page.tab, Tab::Tune);
    assert_eq!(page.steps.len(), 2, "the curves so far are on screen");
    assert_eq!(
        page.tune_settings,
        TuneSettings::classroom(Target::RealWorld)
    );
    // its replies are the page's run
    page.on_reply(step(job, 2, 0));
    assert_eq!(page.steps.len(), 3);
}

#[test]
fn a_kept_run_of_local_files_asks_for_the_files() {
    let mut page = measured(false);
    page.saved_run = Some(SavedRun {
        model: "mine".into(),
        source: ModelSource::Local {
            name: "mine".into(),
        },
        settings: TuneSettings::paper(Target::Equal),
        benchmark: BenchmarkEdits::default(),
        cda_text: None,
        epochs_done: 1,
        steps_done: 2,
        best: None,
        steps: Vec::new(),
        epochs: Vec::new(),
        baseline: None,
        saved_at: 0.0,
    });
    assert!(page.resume_saved_run().is_empty());
    assert!(
        page.notice
            .as_ref()
            .is_some_and(|n| n.text.contains("pick the same three files"))
    );
    assert_eq!(page.tune, TuneStatus::Idle);
}

#[test]
fn a_link_shows_its_result_and_its_runs_settings_until_the_page_measures() {
    let mut page = Page::new();
    let settings = TuneSettings {
        lr: 5e-5,
        max_steps: Some(30),
        ..TuneSettings::classroom(Target::RealWorld)
    };
    let before = match probed(1, Split::Valid, 0.4) {
        Reply::Probed { result, .. } => result,
        _ => unreachable!(),
    };
    let after = ProbeReply {
        professions: rows(0.5),
        ..before.clone()
    };
    let link = shared_result(
        "minilm-brown (bundled)",
        &before,
        Some(&after),
        Some(shared_tuning(&settings, 2, Vec::new())),
    );
    page.open_link(link.clone());
    assert_eq!(page.split, Split::Valid);
    assert_eq!(page.target, Target::RealWorld);
    assert_eq!(page.tune_settings, settings);
    // the model loads; its own probe waits until asked, the link stays on screen
    page.load(bundled());
    let effects = page.on_reply(loaded(false));
    assert!(effects.is_empty());
    assert_eq!(page.shared, Some(link));
    let effects = page.probe(false);
    page.on_reply(probed(sent(&effects)[0].job(), Split::Valid, 0.4));
    assert!(page.shared.is_none());
}

#[test]
fn a_cda_run_needs_its_text_sends_it_and_its_link_says_cda() {
    let mut page = measured(false);
    page.tune_settings.method = TuneMethod::Cda;
    // no text chosen: nothing is sent, and the run's status says what is missing
    assert!(page.start_tuning().is_empty());
    assert!(page.job.is_none());
    assert!(
        matches!(&page.tune, TuneStatus::Finished(why) if why.contains("choose a plain-text file")),
        "{:?}",
        page.tune
    );
    page.cda_text = Some(ChosenText {
        name: "general.txt".into(),
        text: "She left early.\nHe stayed.\n".into(),
    });
    let requests = sent(&page.start_tuning());
    let [
        Request::TuneStart {
            job,
            settings,
            cda_text,
            ..
        },
    ] = requests.as_slice()
    else {
        panic!("{requests:?}")
    };
    assert_eq!(settings.method, TuneMethod::Cda);
    assert_eq!(cda_text.as_deref(), Some("She left early.\nHe stayed.\n"));
    let job = *job;
    page.on_reply(Reply::TuneBaseline {
        job,
        baseline: TuneBaselineReply {
            valid_kl: 0.2,
            professions: rows(0.4),
        },
    });
    for (n, batch) in [(1, 0), (2, 1)] {
        page.on_reply(Reply::TuneStep {
            job,
            step: TuneStepReply {
                step: n,
                epoch: 0,
                batch,
                batches: 2,
                group: None,
                kl: None,
                mlm_loss: Some(3.0 - n as f64),
                lambda: None,
                scale: None,
                total_loss: 3.0 - n as f64,
            },
        });
    }
    page.on_reply(Reply::TuneEpoch {
        job,
        epoch: TuneEpochReply {
            epoch: 0,
            train_loss: 1.5,
            valid_kl: 0.1,
            improved: true,
            best_epoch: 0,
            valid_professions: rows(0.45),
        },
    });
    assert_eq!(page.steps.len(), 2);
    let effects = page.on_reply(Reply::TuneFinished {
        job,
        reason: "the epochs ran out".into(),
        steps: 2,
    });
    page.on_reply(probed(sent(&effects)[0].job(), Split::Test, 0.5));
    let result = page.result().expect("a result with the run");
    let tuning = result.tuning.clone().unwrap();
    assert_eq!(tuning.method, TuneMethod::Cda);
    assert!(
        tuning
            .curve
            .iter()
            .all(|p| p.kl.is_none() && p.mlm_loss.is_some())
    );
    assert_eq!(tuning.curve[1].valid_kl, Some(0.1));
    // the link keeps the method, and opening it shows a CDA run's settings
    let opened = SharedResult::from_link(&result.to_link().unwrap()).unwrap();
    assert_eq!(opened.tuning.as_ref().unwrap().method, TuneMethod::Cda);
    let commands = crate::view::walf_commands(&opened).join("\n");
    assert!(
        commands.contains("--method cda --text cda-text.txt"),
        "{commands}"
    );
    assert_eq!(
        crate::view::run_manifest(&opened)["tuning"]["method"],
        "cda"
    );
    let mut fresh = Page::new();
    fresh.open_link(opened);
    assert_eq!(fresh.tune_settings.method, TuneMethod::Cda);
}

/// The split and job of each probe the effects ask for (and nothing else).
fn probes(effects: &[Effect]) -> Vec<(Split, u64)> {
    sent(effects)
        .into_iter()
        .map(|r| match r {
            Request::Probe { job, split, .. } => (split, job),
            other => panic!("not a probe: {other:?}"),
        })
        .collect()
}

#[test]
fn a_split_chosen_during_another_job_is_measured_when_that_job_ends() {
    let mut page = measured(false);
    // while the engine is free, at once
    let [(Split::Valid, job)] = probes(&page.choose_split(Split::Valid))[..] else {
        panic!("the valid split is measured at once");
    };
    page.on_reply(probed(job, Split::Valid, 0.4));

    // during a fill-mask: nothing yet, then the chosen split once the fill is answered
    let fill = page.start_job(JobKind::Fill, |job| Request::Fill {
        job,
        text: "[MASK] is a nurse.".into(),
        top: 5,
    });
    let fill = sent(&fill)[0].job();
    assert!(page.choose_split(Split::Train).is_empty());
    assert_eq!(page.split, Split::Train, "the controls show the choice");
    let effects = page.on_reply(Reply::Filled {
        job: fill,
        masks: Vec::new(),
    });
    let [(Split::Train, job)] = probes(&effects)[..] else {
        panic!("the train split is measured after the fill: {effects:?}");
    };
    // its answer asks for nothing more
    assert!(page.on_reply(probed(job, Split::Train, 0.4)).is_empty());
    assert_eq!(page.before.as_ref().map(|b| b.split), Some(Split::Train));

    // during a probe of another split: that probe's answer, then the chosen split's; each
    // answer counted, though its numbers are the last one's
    let [(_, job)] = probes(&page.probe(false))[..] else {
        panic!("one probe");
    };
    assert!(page.choose_split(Split::Test).is_empty());
    let counted = page.measurements;
    let effects = page.on_reply(probed(job, Split::Train, 0.4));
    assert_eq!(page.measurements, counted + 1);
    assert_eq!(probes(&effects).first().map(|p| p.0), Some(Split::Test));
}

#[test]
fn a_split_chosen_during_a_run_is_measured_by_the_runs_last_probe_only() {
    let mut page = tuning(false);
    assert!(page.choose_split(Split::Valid).is_empty());
    let effects = page.on_reply(Reply::TuneFinished {
        job: 3,
        reason: "finished after 1 epoch".into(),
        steps: 2,
    });
    let [(Split::Valid, job)] = probes(&effects)[..] else {
        panic!("the run's last probe measures the chosen split: {effects:?}");
    };
    assert!(page.on_reply(probed(job, Split::Valid, 0.5)).is_empty());

    // a failed job frees the engine too
    let [(_, job)] = probes(&page.probe(false))[..] else {
        panic!("one probe");
    };
    assert!(page.choose_split(Split::Test).is_empty());
    let effects = page.on_reply(Reply::Failed {
        job: Some(job),
        kind: FailureKind::Input,
        message: "benchmark data professions.tsv: line 3: no share".into(),
    });
    assert_eq!(probes(&effects), [(Split::Test, job + 1)]);
}
