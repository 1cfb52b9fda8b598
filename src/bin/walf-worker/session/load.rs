//! Loading a model: the bundled one beside the page, a Hub repository (cached in the browser),
//! or files the user picked; the device opened first, helpers started where they help.

use walf_lab::speed::{BackendTime, SpeedBatch, describe, fastest, step_time_ms};

use super::*;

async fn fetch_file(
    job: u64,
    url: &str,
    label: &str,
    use_cache: bool,
    on_error: &dyn Fn(FetchError) -> String,
) -> Result<(Vec<u8>, bool), String> {
    let what = format!("downloading {label}");
    let mut last = 0u64;
    let limit = MemoryBudget::default().model_bytes;
    let fetched = fetch_bytes(url, use_cache, limit, &mut |done, total| {
        // About a hundred messages per file at most, and always the first and the last.
        let step = (total / 100).clamp(64 << 10, 1 << 20);
        if done == 0 || done == total || done >= last + step {
            last = done;
            progress(Some(job), &what, done, total);
        }
    })
    .await
    .map_err(|e| {
        e.message(&format!("{label} ({url})"))
            .unwrap_or_else(|| on_error(e))
    })?;
    Ok((fetched.bytes, fetched.downloaded))
}

/// A model that cannot be loaded is the user's choice's fault (an address, a file), unless
/// building it on the device fails.
pub(super) async fn load(
    s: &Session,
    job: u64,
    source: ModelSource,
    choice: BackendChoice,
    mut files: Vec<Vec<u8>>,
) -> Result<(), (FailureKind, String)> {
    let input = |message: String| (FailureKind::Input, message);
    let (device, info) = open_device(s, job, choice).await;
    mark("backend open");
    if !info.gpu && matches!(source, ModelSource::Bundled { .. }) {
        // The bundled model is small: helpers start now and load their WebAssembly while the
        // files download.
        s.pool();
    } else if info.gpu {
        pool::end_early_helpers();
    }
    let (bytes, downloaded) = match source {
        ModelSource::Bundled { base } => {
            let mut got = Vec::new();
            for (file, url) in hub::MODEL_FILES
                .into_iter()
                .zip(ModelSource::bundled_files(&base))
            {
                let on_error = |e: FetchError| {
                    format!("the bundled model's {file} could not be read from {url}: {e:?}")
                };
                mark(&format!("fetching {file}"));
                got.push(
                    fetch_file(job, &url, file, false, &on_error)
                        .await
                        .map_err(input)?
                        .0,
                );
                mark(&format!("fetched {file}"));
            }
            let files = <[Vec<u8>; 3]>::try_from(got).expect("three files");
            let source = ModelSource::Bundled { base: base.clone() };
            (
                ModelBytes::new(ModelSource::bundled_name(&base), source, files),
                false,
            )
        }
        ModelSource::Hub { id, base } => {
            let id = hub::check_model_id(&id)
                .map_err(|e| input(e.to_string()))?
                .to_string();
            let base = hub::check_base(&base).map_err(|e| input(e.to_string()))?;
            let mut got = Vec::new();
            let mut downloaded = false;
            for file in hub::MODEL_FILES {
                let url = hub::resolve_url(&base, &id, file);
                let on_error = |e: FetchError| match e {
                    FetchError::NotFound => hub::missing_file_message(&id, file),
                    FetchError::Status(code, text) => hub::status_message(&id, file, code, &text),
                    FetchError::Network(why) => format!(
                        "{base} could not be reached for {id}'s {file} ({why}); check the \
                         connection or the mirror address"
                    ),
                    FetchError::TooLarge(..) => {
                        e.message(&format!("{id}'s {file}")).unwrap_or_default()
                    }
                };
                let (bytes, fresh) = fetch_file(job, &url, file, true, &on_error)
                    .await
                    .map_err(input)?;
                downloaded |= fresh;
                if file == "config.json" {
                    // Refuse an unsupported architecture or a model beyond the memory budget
                    // before the large download.
                    ModelConfig::from_json(&bytes)
                        .and_then(|c| c.check_memory(MemoryBudget::default()))
                        .map_err(|e| input(format!("{id}: {e}")))?;
                }
                got.push(bytes);
            }
            let files = <[Vec<u8>; 3]>::try_from(got).expect("three files");
            let source = ModelSource::Hub {
                id: id.clone(),
                base: base.clone(),
            };
            (ModelBytes::new(id, source, files), downloaded)
        }
        ModelSource::Local { name } => {
            if files.len() != 3 {
                return Err(input(
                    "pick three files: config.json, tokenizer.json and model.safetensors".into(),
                ));
            }
            let weights = files.pop().expect("three");
            let tokenizer = files.pop().expect("three");
            let config = files.pop().expect("three");
            let source = ModelSource::Local { name: name.clone() };
            (
                ModelBytes::new(name, source, [config, tokenizer, weights]),
                false,
            )
        }
    };
    let (device, info, built) = if backend::to_time(choice, &info) {
        choose(s, job, &bytes, device, info).await?
    } else {
        (device, info, None)
    };
    let generation = s.next_generation();
    if info.gpu {
        // Helpers serve the CPU backend only; they would hold memory in vain.
        s.pool.borrow_mut().take();
    } else if let Some(pool) = s.pool_for(&bytes.weights) {
        // Helpers build their copies while this worker builds its own.
        pool.load(generation, bytes.config.clone(), bytes.weights.clone());
    }
    mark("files read");
    progress(Some(job), "building the model", 0, 1);
    let lm = match built {
        Some(lm) => lm,
        None => LanguageModel::load(bytes.files(), &device)
            .map_err(|e| (FailureKind::of(&e, info.gpu), e.to_string()))?,
    };
    mark("model built");
    let reply = Reply::Loaded {
        name: bytes.name.clone(),
        architecture: lm.config.architecture.name().to_string(),
        parameters: lm.model.num_params(),
        vocab_size: lm.config.vocab_size,
        mask_token: lm.tokenizer.mask_token().to_string(),
        backend: info,
        downloaded,
        fingerprint: lm.fingerprint.clone(),
    };
    let current = lm.model.clone();
    // computed while loading: the kept runs' check does not hash the files again
    let _ = bytes.fingerprint.set(lm.fingerprint.clone());
    *s.model.borrow_mut() = Some(Loaded {
        files: Rc::new(bytes),
        lm: Rc::new(lm),
        current,
        generation,
    });
    post(&reply);
    Ok(())
}

async fn open_device(s: &Session, job: u64, choice: BackendChoice) -> (Device, BackendInfo) {
    if choice == BackendChoice::Auto {
        // timed again against the CPU for the model about to load
        if let Some(gpu) = s.auto_gpu.borrow().clone() {
            return gpu;
        }
    }
    let same = s
        .device
        .borrow()
        .as_ref()
        .filter(|(_, _, c)| *c == choice)
        .map(|(d, i, _)| (d.clone(), i.clone()));
    if let Some(opened) = same {
        return opened;
    }
    progress(Some(job), "starting the backend", 0, 1);
    let (device, info) = backend::open(choice).await;
    if backend::to_time(choice, &info) {
        *s.auto_gpu.borrow_mut() = Some((device.clone(), info.clone()));
    }
    *s.device.borrow_mut() = Some((device.clone(), info.clone(), choice));
    (device, info)
}

/// Milliseconds for `batch` on `lm`'s device; infinite when the device fails it, or when the
/// model cannot run the bundled test split (it still loads: the user may edit the benchmark).
async fn time_batch(batch: Option<&SpeedBatch>, lm: &LanguageModel) -> f64 {
    match batch {
        Some(batch) => batch
            .time_ms(lm, &js_sys::Date::now)
            .await
            .unwrap_or(f64::INFINITY),
        None => f64::INFINITY,
    }
}

/// `automatic` with a GPU: the faster of it and the CPU for this model, timed on one batch of the
/// probe the first time the model loads here and kept for the next (`store`, per model and
/// adapter). The CPU's time is per worker: a probe shares its batches between this worker and
/// its helpers. Returns the device, what the page says of it, and the model already built there.
async fn choose(
    s: &Session,
    job: u64,
    bytes: &ModelBytes,
    gpu: Device,
    gpu_info: BackendInfo,
) -> Result<(Device, BackendInfo, Option<LanguageModel>), (FailureKind, String)> {
    let key = format!("{}|{}", bytes.fingerprint(), gpu_info.detail);
    let workers = 1 + pool::helpers_for(&bytes.weights);
    let (decision, built) = match store::backend_decision(&key).await {
        Some(kept) => (
            store::BackendDecision {
                figures: format!(
                    "{} (timed when this model was first loaded here)",
                    kept.figures
                ),
                ..kept
            },
            None,
        ),
        None => {
            progress(Some(job), "timing the GPU and the CPU on this model", 0, 2);
            let on_gpu = LanguageModel::load(bytes.files(), &gpu)
                .map_err(|e| (FailureKind::of(&e, true), e.to_string()))?;
            let batch = SpeedBatch::new(&on_gpu).ok();
            let gpu_ms = time_batch(batch.as_ref(), &on_gpu).await;
            progress(Some(job), "timing the GPU and the CPU on this model", 1, 2);
            let on_cpu = LanguageModel::load(bytes.files(), &Device::flex())
                .map_err(|e| (FailureKind::of(&e, false), e.to_string()))?;
            let cpu_ms = time_batch(batch.as_ref(), &on_cpu).await / workers as f64;
            let times = [
                BackendTime {
                    label: "WebGPU".into(),
                    ms: gpu_ms,
                },
                BackendTime {
                    label: format!(
                        "CPU, {workers} worker{}",
                        if workers == 1 { "" } else { "s" }
                    ),
                    ms: cpu_ms,
                },
            ];
            let gpu_won = fastest(&times) == Some(0);
            let decision = store::BackendDecision {
                gpu: gpu_won,
                figures: describe(&times, "batch"),
            };
            if let Err(e) = store::keep_backend_decision(&key, decision.clone()).await {
                // timed again next time: costs a second, never the load
                web_sys::console::warn_1(&e.into());
            }
            (decision, Some(if gpu_won { on_gpu } else { on_cpu }))
        }
    };
    let (device, info) = if decision.gpu {
        let notice = format!("{}: running on the GPU", decision.figures);
        (
            gpu,
            BackendInfo {
                notice: Some(notice),
                ..gpu_info
            },
        )
    } else {
        backend::cpu(Some(format!(
            "{}: running on the CPU, the faster here for this model",
            decision.figures
        )))
    };
    *s.device.borrow_mut() = Some((device.clone(), info.clone(), BackendChoice::Auto));
    Ok((device, info, built))
}

/// Set between a notice's figures from the load and a run's training-step figures.
const STEP_MARK: &str = " · a training step: ";

/// `automatic` with a GPU, when a run starts: the faster of it and the CPU for a training step's
/// work of this run's kind (method, target, masked positions, dropout), timed the first time and
/// kept as the load's decision is. A probe batch and a step need not agree: a step adds the
/// backward pass and the optimizer. When the faster is not the device the model is on, the
/// session moves there: the loaded model and the current weights are built on it, the helpers
/// follow, and the page is told (`Reply::Backend`). Returns the device to train on and, when it
/// was timed now, the winner's trainer: a trial step leaves it as it was, so the run starts on it.
pub(super) async fn choose_for_training(
    s: &Session,
    job: u64,
    settings: &TuneSettings,
    bench: &Benchmark,
    cda_text: Option<&str>,
) -> Result<(Device, Option<WalfTrainer>), Error> {
    let (lm, current, files) = loaded(s)?;
    let here = lm.model.device();
    let auto = s
        .device
        .borrow()
        .as_ref()
        .filter(|(_, _, choice)| *choice == BackendChoice::Auto)
        .map(|(_, info, _)| info.clone());
    let (Some(info), Some((gpu, gpu_info))) = (auto, s.auto_gpu.borrow().clone()) else {
        return Ok((here, None));
    };
    let kind = format!(
        "step {:?} {:?} {:?} {:?} dropout {}",
        settings.method,
        settings.target,
        settings.mlm_positions,
        settings.mlm_sentences,
        settings.dropout
    );
    let key = format!("{}|{}|{kind}", files.fingerprint(), gpu_info.detail);
    let mut trainers: Vec<Option<WalfTrainer>> = Vec::new();
    let decision = match store::backend_decision(&key).await {
        Some(kept) => store::BackendDecision {
            figures: format!(
                "{} (timed when such a run first started here)",
                kept.figures
            ),
            ..kept
        },
        None => {
            let what = "timing a training step on the GPU and the CPU";
            let mut times = Vec::new();
            for (i, (label, device)) in [("WebGPU", gpu.clone()), ("CPU", Device::flex())]
                .into_iter()
                .enumerate()
            {
                progress(Some(job), what, i as u64, 2);
                let timed = match new_trainer(&files, &device, settings, bench, cda_text) {
                    Ok(mut trainer) => step_time_ms(&mut trainer, &js_sys::Date::now)
                        .await
                        .map(|ms| (ms, trainer)),
                    Err(e) => Err(e),
                };
                let ms = match timed {
                    Ok((ms, trainer)) => {
                        trainers.push(Some(trainer));
                        ms
                    }
                    Err(e) => {
                        web_sys::console::warn_1(&format!("{label}: {e}").into());
                        trainers.push(None);
                        f64::INFINITY
                    }
                };
                times.push(BackendTime {
                    label: label.into(),
                    ms,
                });
            }
            let decision = store::BackendDecision {
                gpu: fastest(&times) == Some(0),
                figures: describe(&times, "step"),
            };
            if let Err(e) = store::keep_backend_decision(&key, decision.clone()).await {
                web_sys::console::warn_1(&e.into());
            }
            decision
        }
    };
    let step = format!(
        "{}: training on the {}",
        decision.figures,
        if decision.gpu { "GPU" } else { "CPU" }
    );
    // the load's figures stay, a run's replace the last run's
    let notice = Some(match info.notice.as_deref() {
        Some(earlier) => {
            let earlier = earlier.split(STEP_MARK).next().unwrap_or(earlier);
            format!("{earlier}{STEP_MARK}{step}")
        }
        None => format!("a training step: {step}"),
    });
    let (device, info) = if decision.gpu {
        (gpu, BackendInfo { notice, ..gpu_info })
    } else {
        backend::cpu(notice)
    };
    if decision.gpu != s.on_gpu() {
        progress(Some(job), "moving the model to the faster device", 0, 1);
        let moved = LanguageModel::load(files.files(), &device)?;
        let weights = current.to_safetensors_f32().await?;
        let mut current = LanguageModel::load(
            ModelFiles {
                weights: &weights,
                weights_name: "the current weights",
                ..files.files()
            },
            &device,
        )?
        .model;
        current.keep_dtypes_of(&moved.model);
        if decision.gpu {
            s.pool.borrow_mut().take();
        } else {
            // the helpers get the current weights with the next probe
            s.pool_for(&files.weights);
        }
        if let Some(m) = s.model.borrow_mut().as_mut() {
            m.lm = Rc::new(moved);
            m.current = current;
        }
    }
    *s.device.borrow_mut() = Some((device.clone(), info.clone(), BackendChoice::Auto));
    post(&Reply::Backend { backend: info });
    let tried = trainers
        .get_mut(if decision.gpu { 0 } else { 1 })
        .and_then(Option::take);
    Ok((device, tried))
}

/// A trainer for this run on `device` (its autodiff device), from the loaded files.
pub(super) fn new_trainer(
    files: &ModelBytes,
    device: &Device,
    settings: &TuneSettings,
    bench: &Benchmark,
    cda_text: Option<&str>,
) -> Result<WalfTrainer, Error> {
    // Training needs the weights on an autodiff device, built there directly.
    let mut trainable = LanguageModel::load(files.files(), &device.clone().autodiff())?;
    if !settings.dropout {
        trainable.model.set_dropout(0.0, 0.0);
    }
    let objective = settings.objective(cda_text, bench, &trainable)?;
    WalfTrainer::with_objective(trainable, bench, settings.walf_config(), objective)
}
