//! WALF live (or the CDA baseline): settings, start / pause / resume / stop, the curves as they
//! come, the chart before and after, the masked-LM loss on held-out text before and after, and
//! the tuned model's files.

use leptos::prelude::*;

use walf_lab::bias::Target;
use walf_lab::data::Group;
use walf_lab::lm_loss::LossRule;
use walf_lab::protocol::{Request, TuneMethod, TuneSettings, TuneStepReply};
use walf_lab::view::{SortOrder, group_title};

use crate::address::heldout_text;
use crate::chart::{BLUE, LineChart, ORANGE, ProbeChart, Series, VERMILION, group_colour};
use crate::probe_view::{GroupTable, SplitSelect, TargetSelect};
use crate::state::{AppState, ChosenText, Field, JobKind, Page, TuneStatus};

fn number_input(
    label: &'static str,
    id: &'static str,
    get: impl Fn(&TuneSettings) -> String + Send + Sync + 'static,
    set: impl Fn(&mut TuneSettings, &str) + Send + Sync + 'static,
    settings: Field<TuneSettings>,
) -> impl IntoView {
    view! {
        <label>{label}
            <input id=id type="text" inputmode="decimal" size="8" prop:value=move || settings.with(&get)
                on:change=move |ev| {
                    let v = event_target_value(&ev);
                    settings.update(|s| set(s, v.trim()));
                } />
        </label>
    }
}

fn parse_or<T: std::str::FromStr>(v: &str, old: T) -> T {
    v.parse().unwrap_or(old)
}

#[component]
pub fn TuneView() -> impl IntoView {
    let state = expect_context::<AppState>();
    let settings = state.tune_settings;
    let target = RwSignal::new(settings.get_untracked().target);
    Effect::new(move |_| {
        let t = target.get();
        if settings.with_untracked(|s| s.target != t) {
            let (old, classroom) = settings.with_untracked(|s| (s.clone(), s.is_classroom()));
            settings.set(if classroom {
                TuneSettings {
                    max_steps: old.max_steps,
                    method: old.method,
                    ..TuneSettings::classroom(t)
                }
            } else {
                TuneSettings {
                    max_steps: old.max_steps,
                    method: old.method,
                    dropout: old.dropout,
                    mlm_positions: old.mlm_positions,
                    mlm_sentences: old.mlm_sentences,
                    ..TuneSettings::paper(t)
                }
            });
        }
    });
    let heldout = RwSignal::new(String::new());
    // The project's own held-out text, loaded once.
    Effect::new(move |_| {
        if heldout.get_untracked().is_empty() {
            let url = heldout_text();
            wasm_bindgen_futures::spawn_local(async move {
                if let Ok(text) = fetch_text(&url).await {
                    heldout.set(text);
                }
            });
        }
    });
    let running = move || {
        matches!(
            state.tune.get(),
            TuneStatus::Running | TuneStatus::Pausing | TuneStatus::Paused
        )
    };
    let busy_other = move || state.job.get().is_some_and(|j| j.kind != JobKind::Tune);
    let pause = move |_| state.update(Page::pause_tuning);
    let resume = move |_| state.update(Page::resume_tuning);
    let stop = move |_| state.update(Page::stop_tuning);
    // An opened link's run, until this page runs one of its own: what it was tuned towards, with
    // which settings, and its curves.
    let shared_run = move || {
        if !state.steps.with(|s| s.is_empty()) {
            return None;
        }
        let shared = state.shared.get()?;
        let t = shared.tuning?;
        let kl = Series {
            label: "batch KL".into(),
            colour: BLUE,
            points: t
                .curve
                .iter()
                .filter_map(|p| p.kl.map(|kl| (p.step as f64, kl)))
                .collect(),
        };
        let mlm = Series {
            label: "masked-LM loss".into(),
            colour: ORANGE,
            points: t
                .curve
                .iter()
                .filter_map(|p| p.mlm_loss.map(|m| (p.step as f64, m)))
                .collect(),
        };
        let valid = Series {
            label: "valid KL".into(),
            colour: VERMILION,
            points: t
                .curve
                .iter()
                .filter_map(|p| p.valid_kl)
                .enumerate()
                .map(|(i, v)| ((i + 1) as f64, v))
                .collect(),
        };
        let has_mlm = !mlm.points.is_empty();
        let has_kl = !kl.points.is_empty();
        Some(view! {
            <p class="shared-banner" id="tune-shared" data-target=t.target.label()
                data-method=t.method.label()>{match t.method {
                TuneMethod::Walf => format!(
                    "From the link: {} tuned by WALF towards the {} target (learning rate {}, γ {}, β {}, batches of {}, {} epochs).",
                    shared.model, t.target.label(), t.lr, t.gamma, t.beta, t.batch_size, t.epochs
                ),
                TuneMethod::Cda => format!(
                    "From the link: {} fine-tuned by CDA (general text with its gendered words swapped), the best epoch chosen by the {} target (learning rate {}, {} epochs).",
                    shared.model, t.target.label(), t.lr, t.epochs
                ),
            }}</p>
            <div class="curves">
                {has_kl.then(|| view! {
                    <LineChart id="shared-curve-kl" title="Mean KL of each training batch".into() x_label="step"
                        y_label="KL" series=vec![kl] />
                })}
                {has_mlm.then(|| view! {
                    <LineChart id="shared-curve-mlm" title="Masked-LM loss of each batch".into() x_label="step"
                        y_label="loss" series=vec![mlm] />
                })}
                <LineChart id="shared-curve-valid" title="Validation KL per epoch".into() x_label="epoch"
                    y_label="KL" series=vec![valid] />
            </div>
        })
    };
    let curves = move || {
        let steps = state.steps.get();
        let epochs = state.epochs.get();
        let baseline = state.baseline.get();
        let run = state.tune_run.get();
        let cda = run.as_ref().map(|s| s.method) == Some(TuneMethod::Cda);
        let real = !cda && run.map(|s| s.target) == Some(Target::RealWorld);
        let kl = Series {
            label: "batch KL".into(),
            colour: BLUE,
            points: steps
                .iter()
                .filter_map(|s| s.kl.map(|kl| (s.step as f64, kl)))
                .collect(),
        };
        let mlm = Series {
            label: "masked-LM loss".into(),
            colour: ORANGE,
            points: steps
                .iter()
                .filter_map(|s| s.mlm_loss.map(|m| (s.step as f64, m)))
                .collect(),
        };
        // one line per group of a value the real-world target's steps carry
        let per_group = |value: fn(&TuneStepReply) -> Option<f64>| -> Vec<Series> {
            Group::ALL
                .into_iter()
                .map(|g| Series {
                    label: group_title(g).into(),
                    colour: group_colour(g),
                    points: steps
                        .iter()
                        .filter(|s| s.group == Some(g))
                        .filter_map(|s| value(s).map(|v| (s.step as f64, v)))
                        .collect(),
                })
                .collect()
        };
        let lambdas = per_group(|s| s.lambda);
        let scales = per_group(|s| s.scale);
        let valid = Series {
            label: "valid KL".into(),
            colour: VERMILION,
            // epoch 0: before tuning
            points: baseline
                .map(|b| (0.0, b.valid_kl))
                .into_iter()
                .chain(epochs.iter().map(|e| ((e.epoch + 1) as f64, e.valid_kl)))
                .collect(),
        };
        view! {
            <div class="curves">
                {(!cda).then(|| view! {
                    <LineChart id="curve-kl" title="Mean KL of each training batch".into() x_label="step"
                        y_label="KL" series=vec![kl] />
                })}
                {(real || cda).then(|| view! {
                    <LineChart id="curve-mlm" title=if cda {
                        "Masked-LM loss of each batch of swapped text".to_string()
                    } else {
                        "Masked-LM loss of each batch".to_string()
                    } x_label="step" y_label="loss" series=vec![mlm] />
                })}
                {real.then(|| view! {
                    <LineChart id="curve-lambda" title="λ per group".into() x_label="step"
                        y_label="λ" series=lambdas />
                    <LineChart id="curve-scale" title="How hard each group is pushed: λ / (its mean KL + α)".into()
                        x_label="step" y_label="scale" series=scales />
                })}
                <LineChart id="curve-valid" title="Validation KL per epoch (0: before tuning)".into() x_label="epoch"
                    y_label="KL" series=vec![valid] />
            </div>
        }
    };
    let cda = move || settings.with(|s| s.method == TuneMethod::Cda);
    let cda_error = RwSignal::new(None::<String>);
    let pick_text = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        wasm_bindgen_futures::spawn_local(async move {
            let name = file.name();
            match wasm_bindgen_futures::JsFuture::from(file.text()).await {
                Ok(text) => {
                    let text = text.as_string().unwrap_or_default();
                    cda_error.set(text.trim().is_empty().then(|| format!("{name} is empty")));
                    state.update(|p| {
                        p.cda_text = Some(ChosenText { name, text });
                        Vec::new()
                    });
                }
                Err(_) => cda_error.set(Some(format!("{name} could not be read as text"))),
            }
        });
    };
    let paper_rule = RwSignal::new(false);
    // the equal target has no masked-LM term: no empty column for it
    let has_mlm = move || state.steps.with(|s| s.iter().any(|s| s.mlm_loss.is_some()));
    // nor a KL column for CDA's steps, which have none
    let has_kl = move || state.steps.with(|s| s.iter().any(|s| s.kl.is_some()));
    let measure_loss = move |_| {
        let text = heldout.get_untracked();
        if text.trim().is_empty() {
            state.lm_loss.set(None);
            return state.lm_loss_error.set(Some(
                "paste some text to measure the masked-LM loss on".into(),
            ));
        }
        let rule = if paper_rule.get_untracked() {
            LossRule::Paper
        } else {
            LossRule::MaskedTokens
        };
        state.start_job(JobKind::LmLoss, |job| Request::LmLoss { job, text, rule });
    };
    view! {
        <section class="view" aria-label="Tune">
            <p class="hint" id="tune-defaults" hidden=cda>"The settings start at the paper's: γ and β at one point of its grids (γ from 0.001 to 1.0, β 0.6, 0.8 or 0.95). The epoch cap is this app's: the paper trains until patience stops it."</p>
            <div class="controls" id="tune-method-controls">
                <label>"method "
                    <select id="tune-method" disabled=running
                        on:change=move |ev| {
                            let method = TuneMethod::parse(&event_target_value(&ev)).unwrap_or_default();
                            settings.update(|s| s.method = method);
                        }>
                        <option value="walf" selected=move || !cda()>"WALF (the paper's)"</option>
                        <option value="cda" selected=cda>"CDA baseline"</option>
                    </select>
                </label>
                <span hidden=move || !cda()>
                    <label class="file-pick">"general text "
                        <input id="tune-cda-file" type="file" accept=".txt,text/plain" disabled=running
                            on:change=pick_text />
                    </label>
                    <span id="tune-cda-name">{move || match state.cda_text.get() {
                        Some((name, bytes)) => format!("{name} ({} kB)", bytes.div_ceil(1000)),
                        None => "no text chosen".into(),
                    }}</span>
                </span>
                {move || cda_error.get().map(|e| view! { <p id="tune-cda-error" class="field-error" role="alert">{e}</p> })}
                <p class="hint" hidden=move || !cda()>"Counterfactual data augmentation: masked-LM fine-tuning on general text (one sentence per line) in which he and she, his and her, and the benchmark's gendered phrases are swapped; each sentence with such a word is trained on as written and swapped. It never sees the benchmark's sentences; the target only chooses the best epoch, by the valid professions' KL, as for WALF."</p>
            </div>
            <div class="controls presets">
                <button id="tune-preset-paper" aria-pressed=move || (!settings.with(|s| s.is_classroom())).to_string()
                    on:click=move |_| settings.update(|s| *s = TuneSettings { max_steps: s.max_steps, method: s.method, ..TuneSettings::paper(s.target) })>
                    "The paper's settings"</button>
                <button id="tune-preset-classroom" aria-pressed=move || settings.with(|s| s.is_classroom()).to_string()
                    on:click=move |_| settings.update(|s| *s = TuneSettings { max_steps: s.max_steps, method: s.method, ..TuneSettings::classroom(s.target) })>
                    "Classroom preset"</button>
                <span id="tune-preset-note" hidden=move || !settings.with(|s| s.is_classroom())>
                    {format!("Changed from the paper: {}. It moves a small model within minutes on a laptop.",
                        walf_lab::walf::classroom::changes().join("; "))}
                </span>
            </div>
            <div class="controls">
                <TargetSelect target=target />
                <SplitSelect />
                <span class="walf-only" hidden=cda>
                    {number_input("γ ", "tune-gamma", |s| s.gamma.to_string(), |s, v| s.gamma = parse_or(v, s.gamma), settings)}
                    {number_input("β ", "tune-beta", |s| s.beta.to_string(), |s, v| s.beta = parse_or(v, s.beta), settings)}
                </span>
                {number_input("learning rate ", "tune-lr", |s| s.lr.to_string(), |s, v| s.lr = parse_or(v, s.lr), settings)}
                {number_input("batch ", "tune-batch", |s| s.batch_size.to_string(), |s, v| s.batch_size = parse_or(v, s.batch_size), settings)}
                {number_input("max epochs ", "tune-epochs", |s| s.max_epochs.to_string(), |s, v| s.max_epochs = parse_or(v, s.max_epochs), settings)}
                {number_input("patience ", "tune-patience", |s| s.patience.to_string(), |s, v| s.patience = parse_or(v, s.patience), settings)}
                <span class="walf-only" hidden=cda>
                    {number_input("masked tokens per sentence ", "tune-mlm-positions",
                        |s| s.mlm_positions.map(|m| m.to_string()).unwrap_or_else(|| "all".into()),
                        |s, v| s.mlm_positions = v.parse().ok().filter(|&m: &usize| m > 0), settings)}
                    {number_input("masked-LM sentences per profession ", "tune-mlm-sentences",
                        |s| s.mlm_sentences.map(|m| m.to_string()).unwrap_or_else(|| "all".into()),
                        |s, v| s.mlm_sentences = v.parse().ok().filter(|&m: &usize| m > 0), settings)}
                </span>
                {number_input("weight decay ", "tune-weight-decay", |s| s.weight_decay.to_string(),
                    |s, v| s.weight_decay = parse_or(v, s.weight_decay), settings)}
                {number_input("seed ", "tune-seed", |s| s.seed.to_string(), |s, v| s.seed = parse_or(v, s.seed), settings)}
                {number_input("min-delta ", "tune-min-delta", |s| s.min_delta().to_string(),
                    |s, v| s.min_delta = v.parse().ok().filter(|d: &f64| d.is_finite() && *d >= 0.0), settings)}
                {number_input("step limit ", "tune-steps",
                    |s| s.max_steps.map(|m| m.to_string()).unwrap_or_default(),
                    |s, v| s.max_steps = v.parse().ok().filter(|&m: &usize| m > 0), settings)}
                <label>
                    <input id="tune-dropout" type="checkbox" prop:checked=move || settings.with(|s| s.dropout)
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            settings.update(|s| s.dropout = on);
                        } />
                    " dropout (as the paper; off: repeatable runs)"
                </label>
            </div>
            <div class="controls">
                <button id="tune-start" disabled=move || !state.ready() || running() || busy_other()
                    on:click=move |_| state.update(Page::start_tuning)>"Start"</button>
                <button id="tune-pause" disabled=move || state.tune.get() != TuneStatus::Running on:click=pause>"Pause"</button>
                <button id="tune-resume" disabled=move || state.tune.get() != TuneStatus::Paused on:click=resume>"Resume"</button>
                <button id="tune-stop" disabled=move || !running() on:click=stop>"Stop"</button>
                <span id="tune-status">{move || match state.tune.get() {
                    TuneStatus::Idle if cda() => "CDA fine-tunes the loaded model from its original weights on the chosen text, with its gendered words swapped.".to_string(),
                    TuneStatus::Idle => "WALF tunes the loaded model from its original weights; the paper's settings are filled in.".to_string(),
                    TuneStatus::Running => "running".into(),
                    TuneStatus::Pausing => "pausing after the current step…".into(),
                    TuneStatus::Paused => "paused".into(),
                    TuneStatus::Finished(why) => why,
                }}</span>
                <span id="tune-kept" hidden=move || state.kept_epochs.get().is_none() || !running()>
                    {move || state.kept_epochs.get().map(|k| format!(
                        "kept in this browser after epoch {k}: a reload or a crash goes on from there"
                    ))}
                </span>
            </div>
            <table class="steps" id="tune-steps-table" hidden=move || state.steps.with(|s| s.is_empty())
                data-steps=move || state.steps.with(|s| s.len()).to_string()
                data-epochs=move || state.epochs.with(|e| e.len()).to_string()>
                <caption>"Last steps"</caption>
                <thead><tr><th>"step"</th><th>"epoch"</th><th>"group"</th><th hidden=move || !has_kl()>"KL"</th>
                    <th hidden=move || !has_mlm()>"masked-LM loss"</th><th>"total loss"</th></tr></thead>
                <tbody>
                {move || state.steps.with(|steps| steps.iter().rev().take(5).map(|s| view! {
                    <tr class="step-row" data-step=s.step.to_string() data-total-loss=format!("{}", s.total_loss)
                        data-kl=s.kl.map(|kl| kl.to_string())>
                        <td>{s.step}</td><td>{s.epoch + 1}</td>
                        <td>{s.group.map(group_title).unwrap_or("text (CDA)")}</td>
                        <td class="num" hidden=s.kl.is_none()>{s.kl.map(|kl| format!("{kl:.6}")).unwrap_or_default()}</td>
                        <td class="num" hidden=s.mlm_loss.is_none()>{s.mlm_loss.map(|m| format!("{m:.4}")).unwrap_or_default()}</td>
                        <td class="num">{format!("{:.6}", s.total_loss)}</td>
                    </tr>
                }).collect_view())}
                </tbody>
            </table>
            {shared_run}
            {curves}
            {move || state.result().filter(|r| r.tuning.is_some()).map(|r| view! {
                <h3>"Before and after"</h3>
                <div class="chart-scroll"><ProbeChart result=r.clone() order=SortOrder::PFemale selected=RwSignal::new(None) /></div>
                <GroupTable result=r />
            })}
            <details class="heldout" open>
                <summary>"Masked-LM loss on held-out text, before and after"</summary>
                <textarea id="heldout-text" rows="5" prop:value=move || heldout.get()
                    on:input=move |ev| heldout.set(event_target_value(&ev))></textarea>
                <button id="run-lm-loss" disabled=move || !state.ready() || state.job.get().is_some()
                    on:click=measure_loss>"Measure"</button>
                <label>
                    <input id="lm-loss-paper" type="checkbox" prop:checked=move || paper_rule.get()
                        on:change=move |ev| paper_rule.set(event_target_checked(&ev)) />
                    " score as the paper's evaluation (every token keeps its label, masked or not; ours scores the masked ones only)"
                </label>
                {move || state.lm_loss_error.get().map(|e| view! { <p id="lm-loss-error" class="field-error" role="alert">{e}</p> })}
                {move || state.lm_loss.get().map(|(before, after, tokens, rule)| view! {
                    <p id="lm-loss" data-rule=format!("{rule:?}")>{format!(
                        "{tokens} masked tokens: loss {before:.4} with the loaded weights, {after:.4} with the current ones{}",
                        if rule == LossRule::Paper { " (the paper's rule: every token scored)" } else { "" }
                    )}</p>
                })}
            </details>
            <button id="export-model" disabled=move || !state.ready() || state.job.get().is_some()
                on:click=move |_| state.start_job(JobKind::Export, |job| Request::Export { job })>
                "Download the model (config.json, tokenizer.json, model.safetensors)"</button>
        </section>
    }
}

pub async fn fetch_text(url: &str) -> Result<String, ()> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let window = web_sys::window().ok_or(())?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|_| ())?
        .dyn_into()
        .map_err(|_| ())?;
    if !response.ok() {
        return Err(());
    }
    let text = JsFuture::from(response.text().map_err(|_| ())?)
        .await
        .map_err(|_| ())?;
    text.as_string().ok_or(())
}
