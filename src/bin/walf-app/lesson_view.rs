//! The classroom lesson (`?lesson=1`, or "Start a lesson"): six screens in large type over the
//! real app. The class predicts, sees the model's answer and the statistics, chooses a target,
//! watches WALF move the dots, sees what it cost, and gets the link. What each step shows is
//! `view::lesson`'s; this file only draws it and asks the engine.

use leptos::prelude::*;

use walf_lab::bias::Target;
use walf_lab::data::Gender;
use walf_lab::protocol::{MaskFill, Request, TuneSettings};
use walf_lab::view::lesson::{Lean, LessonStep, guesses_sentence, lesson_professions, reveal};
use walf_lab::view::{SortOrder, correlation_sentence, gendered_table, percent};

use crate::address::heldout_text;
use crate::app::Hidden;
use crate::chart::ProbeChart;
use crate::share_view::page_address;
use crate::state::{AppState, JobKind, Page, TuneStatus};
use crate::tune_view::fetch_text;

/// Whether the lesson is on, and at which step: the app shows it instead of the tabs.
#[derive(Clone, Copy)]
pub struct Lesson(pub RwSignal<Option<LessonStep>>);

/// A lesson's WALF run is short: this many steps of the classroom preset.
const LESSON_STEPS: usize = 40;

/// P(she-words) of a fill, as the lesson compares it before and after.
fn female_share(fill: &[MaskFill]) -> Option<f64> {
    fill.first()
        .and_then(|m| gendered_table(&m.gender_words).female_share())
}

#[component]
pub fn LessonView() -> impl IntoView {
    let state = expect_context::<AppState>();
    let Lesson(lesson) = expect_context::<Lesson>();
    let step = move || lesson.get().unwrap_or(LessonStep::Predict);
    let guesses = RwSignal::new(Vec::<(String, Lean)>::new());
    let target = RwSignal::new(Target::RealWorld);
    let steps = RwSignal::new(LESSON_STEPS);
    let sentence = RwSignal::new("[MASK] is a nurse.".to_string());
    // The fill-mask on the class's sentence before tuning and after, taken as they come back.
    let fill_before = RwSignal::new(None::<Vec<MaskFill>>);
    let fill_after = RwSignal::new(None::<Vec<MaskFill>>);
    let capture = RwSignal::new(None::<bool>);
    Effect::new(move |_| {
        if let Some(fills) = state.fills.get()
            && let Some(after) = capture.get_untracked()
        {
            capture.set(None);
            if after {
                fill_after.set(Some(fills));
            } else {
                fill_before.set(Some(fills));
            }
        }
    });
    let fill = move |after: bool| {
        // the answer is told apart from the last one even where it is the same
        state.fills.set(None);
        capture.set(Some(after));
        let text = sentence.get_untracked();
        state.start_job(JobKind::Fill, |job| Request::Fill { job, text, top: 5 });
    };
    let heldout = RwSignal::new(String::new());
    Effect::new(move |_| {
        let url = heldout_text();
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(text) = fetch_text(&url).await {
                heldout.set(text);
            }
        });
    });
    let result = move || state.chart_result();
    let idle = move || state.job.get().is_none();

    let predict = move || {
        let Some(r) = result() else {
            return view! { <p class="lesson-wait">"The model is being measured…"</p> }.into_any();
        };
        let names = lesson_professions(&r);
        view! {
            <p class="lesson-lead">"For each job: will the model say “he” or “she” is more likely? Decide together, then reveal."</p>
            <ul class="lesson-guesses">
                {names.into_iter().enumerate().map(|(i, name)| {
                    let pressed = move |lean: Lean, name: String| move || {
                        guesses.with(|g| g.iter().any(|(n, l)| *n == name && *l == lean)).to_string()
                    };
                    let choose = move |lean: Lean, name: String| move |_| guesses.update(|g| {
                        g.retain(|(n, _)| *n != name);
                        g.push((name.clone(), lean));
                    });
                    view! {
                        <li class="lesson-guess" id=format!("lesson-guess-{i}") data-profession=name.clone()>
                            <span class="lesson-profession">{name.clone()}</span>
                            <button class="lean-he" aria-pressed=pressed(Lean::He, name.clone())
                                on:click=choose(Lean::He, name.clone())>"he"</button>
                            <button class="lean-she" aria-pressed=pressed(Lean::She, name.clone())
                                on:click=choose(Lean::She, name.clone())>"she"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
        .into_any()
    };

    let reveal_view = move || {
        let Some(r) = result() else {
            return view! { <p class="lesson-wait">"The model is being measured…"</p> }.into_any();
        };
        let revealed = guesses.with(|g| reveal(&r, g));
        let sentence = guesses_sentence(&revealed);
        let correlation = correlation_sentence(r.correlation(false));
        view! {
            <table class="lesson-reveal">
                <thead><tr><th>"job"</th><th>"your guess"</th><th>"the model: P(female)"</th><th>"women in the job (BLS 2024)"</th><th></th></tr></thead>
                <tbody>
                {revealed.into_iter().map(|x| view! {
                    <tr data-profession=x.profession.clone() data-right=x.right.map(|r| r.to_string()).unwrap_or_default()>
                        <th scope="row">{x.profession.clone()}</th>
                        <td>{match x.guess { Some(Lean::He) => "he", Some(Lean::She) => "she", None => "–" }}</td>
                        <td class="num">{percent(x.p_female)}</td>
                        <td class="num">{percent(x.female_share)}</td>
                        <td>{match x.right { Some(true) => "✓", Some(false) => "✗", None => "" }}</td>
                    </tr>
                }).collect_view()}
                </tbody>
            </table>
            <p class="lesson-lead" id="lesson-score">{sentence}</p>
            <p class="lesson-lead" id="lesson-correlation">{correlation}</p>
            <div class="chart-scroll">
                <ProbeChart result=r order=SortOrder::PFemale selected=RwSignal::new(None) />
            </div>
        }
        .into_any()
    };

    let choose = move || {
        let option = move |t: Target, title: &'static str, text: &'static str| {
            view! {
                <button class="lesson-target" id=format!("lesson-target-{}", t.label())
                    aria-pressed=move || (target.get() == t).to_string()
                    on:click=move |_| target.set(t)>
                    <strong>{title}</strong><span>{text}</span>
                </button>
            }
        };
        view! {
            <p class="lesson-lead">"Bias here is a distance: how far the model's answers are from what we want. What should it want?"</p>
            <div class="lesson-targets">
                {option(Target::Equal, "Equal (50/50)",
                    "Every job as likely “he” as “she”: for a model that should not guess anyone's gender from their job.")}
                {option(Target::RealWorld, "Real world (BLS 2024)",
                    "Each job's share of women in the 2024 US statistics: for a model that should mirror the world as it is, no more and no less.")}
            </div>
            <label class="lesson-sentence">"A sentence to compare before and after: "
                <input id="lesson-sentence" type="text" prop:value=move || sentence.get()
                    on:input=move |ev| sentence.set(event_target_value(&ev)) />
            </label>
        }
    };

    let tune = move || {
        // the valid split while the run goes on, then the chosen split before and after
        let finished = matches!(state.tune.get(), TuneStatus::Finished(_));
        let live = state
            .live()
            .map(|l| l.result)
            .or_else(|| finished.then(|| state.chart_result()).flatten());
        let status = match state.tune.get() {
            TuneStatus::Idle => "Ready: WALF will nudge the model towards the target.".to_string(),
            TuneStatus::Running | TuneStatus::Pausing => {
                "Tuning: watch the dots move after each epoch.".into()
            }
            TuneStatus::Paused => "Paused.".into(),
            TuneStatus::Finished(why) => format!("Done: {why}."),
        };
        let last_kl = state.epochs.with(|e| e.last().map(|e| e.valid_kl));
        view! {
            <p class="lesson-lead" id="lesson-tune-status">{status}</p>
            {last_kl.map(|kl| view! { <p class="lesson-lead">{format!("Distance from the target on jobs WALF does not train on: {kl:.4}")}</p> })}
            <label>"steps "
                <input id="lesson-steps" type="text" inputmode="numeric" size="4" prop:value=move || steps.get().to_string()
                    on:change=move |ev| {
                        if let Ok(n) = event_target_value(&ev).trim().parse::<usize>() {
                            steps.set(n.max(1));
                        }
                    } />
            </label>
            <button id="lesson-tune-start" class="lesson-big"
                disabled=move || !state.ready() || state.tuning_now() || !idle()
                on:click=move |_| {
                    state.tune_settings.set(TuneSettings {
                        max_steps: Some(steps.get_untracked()),
                        ..TuneSettings::classroom(target.get_untracked())
                    });
                    state.update(Page::start_tuning);
                }>"Start tuning"</button>
            {live.map(|r| view! {
                <div class="chart-scroll">
                    <ProbeChart result=r order=SortOrder::PFemale selected=RwSignal::new(None) />
                </div>
            })}
        }
    };

    let cost = move || {
        let loss = state.lm_loss.get();
        let compare = |fill: Option<Vec<MaskFill>>| {
            fill.as_deref()
                .and_then(female_share)
                .map(percent)
                .unwrap_or_else(|| "…".into())
        };
        let words = move |fill: Option<Vec<MaskFill>>| {
            fill.and_then(|f| f.into_iter().next()).map(|m| {
                let pick = |g: Gender| {
                    m.gender_words
                        .iter()
                        .find(|w| w.gender == g)
                        .map(|w| format!("{} {}", w.word, percent(w.probability)))
                        .unwrap_or_default()
                };
                format!("{}, {}", pick(Gender::Male), pick(Gender::Female))
            })
        };
        view! {
            <p class="lesson-lead">"WALF changes the model. Did it forget how to write? Its masked-LM loss on held-out text (lower is better):"</p>
            <p class="lesson-big-number" id="lesson-loss">{match (loss, state.lm_loss_error.get()) {
                (Some((before, after, _, _)), _) => format!("{before:.3} → {after:.3} ({:+.1}%)", 100.0 * (after / before - 1.0)),
                (None, Some(e)) => format!("not measured: {e}"),
                (None, None) if heldout.get().is_empty() => "not measured: the held-out text could not be read from this site".into(),
                (None, None) => "measuring…".into(),
            }}</p>
            <p class="lesson-lead">{move || format!("“{}”: the female words' share of the gendered words", sentence.get())}</p>
            <p class="lesson-big-number" id="lesson-fill">{format!("{} before → {} after", compare(fill_before.get()), compare(fill_after.get()))}</p>
            <p class="hint">{words(fill_before.get()).map(|w| format!("before: {w}"))}" "{words(fill_after.get()).map(|w| format!("after: {w}"))}</p>
            {move || state.fill_error.get().map(|e| view! { <p class="field-error" role="alert">{format!("The sentence could not be filled in: {e}")}</p> })}
        }
    };

    let Hidden(hidden) = expect_context::<Hidden>();
    let share = move || {
        let link = state
            .result()
            .and_then(|r| r.to_link().ok())
            .map(|fragment| format!("{}#{fragment}", hidden.with_value(|h| page_address(h))));
        view! {
            <p class="lesson-lead">"This lesson's results, for anyone to open (nothing is sent to a server):"</p>
            <input id="lesson-link" type="text" readonly prop:value=link.unwrap_or_default() />
            <button class="lesson-big" id="lesson-end" on:click=move |_| lesson.set(None)>"End the lesson"</button>
        }
    };

    // Each step's work starts when the class moves on to it.
    let go = move |next: LessonStep| {
        match next {
            LessonStep::Tune if fill_before.get_untracked().is_none() => fill(false),
            LessonStep::Cost => {
                let text = heldout.get_untracked();
                if !text.is_empty() {
                    state.start_job(JobKind::LmLoss, |job| Request::LmLoss {
                        job,
                        text,
                        rule: Default::default(),
                    });
                }
                fill(true);
            }
            _ => {}
        }
        lesson.set(Some(next));
    };
    let can_go_on = move || match step() {
        LessonStep::Predict | LessonStep::Reveal => result().is_some(),
        LessonStep::Tune => matches!(state.tune.get(), TuneStatus::Finished(_)),
        LessonStep::Choose | LessonStep::Cost => idle(),
        LessonStep::Share => false,
    };
    view! {
        <section class="lesson" aria-label="Lesson" data-step=move || step().number()>
            <h2>{move || format!("Step {} of 6: {}", step().number(), step().title())}</h2>
            {move || match step() {
                LessonStep::Predict => predict().into_any(),
                LessonStep::Reveal => reveal_view().into_any(),
                LessonStep::Choose => choose().into_any(),
                LessonStep::Tune => tune().into_any(),
                LessonStep::Cost => cost().into_any(),
                LessonStep::Share => share().into_any(),
            }}
            <nav class="lesson-nav">
                <button id="lesson-back" disabled=move || step().previous().is_none() || state.tuning_now()
                    on:click=move |_| if let Some(p) = step().previous() { lesson.set(Some(p)) }>"Back"</button>
                <button id="lesson-next" class="lesson-big" disabled=move || !can_go_on()
                    on:click=move |_| if let Some(n) = step().next() { go(n) }>"Next"</button>
            </nav>
        </section>
    }
}
