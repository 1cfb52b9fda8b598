//! The page: the model panel, the job bar, notices, and four views in tabs. Reads the address
//! at start: `?model=…&hub=…&split=…&target=…&backend=…` and a share link in the fragment.

use leptos::prelude::*;

use walf_lab::hub::DEFAULT_HUB;
use walf_lab::protocol::{BUNDLED_MODELS, ModelSource};
use walf_lab::share::SharedResult;
use walf_lab::view::lesson::LessonStep;
use walf_lab::view::{HiddenPart, bytes_label, parse_query};

use crate::address::{bundled_model, default_model};
use crate::engine::Engine;
use crate::fill_view::FillView;
use crate::lesson_view::{Lesson, LessonView};
use crate::model_panel::ModelPanel;
use crate::probe_view::ProbeView;
use crate::share_view::ShareView;
use crate::state::{AppState, JobKind, Notice, Page, Tab, on_reply};
use crate::tune_view::TuneView;

/// The parts of the page its address left out (`?hide=…`), fixed for the page's life.
#[derive(Clone, Copy)]
pub struct Hidden(pub StoredValue<Vec<HiddenPart>>);

/// Whether the window is as narrow as a phone's: the probe chart then puts each label above
/// its dots.
#[derive(Clone, Copy)]
pub struct NarrowWindow(pub ReadSignal<bool>);

fn window_is_narrow() -> bool {
    web_sys::window()
        .and_then(|w| w.inner_width().ok())
        .and_then(|w| w.as_f64())
        .is_some_and(|w| w < 640.0)
}

fn location() -> (String, String) {
    let loc = web_sys::window().map(|w| w.location());
    let search = loc
        .as_ref()
        .and_then(|l| l.search().ok())
        .unwrap_or_default();
    let hash = loc.as_ref().and_then(|l| l.hash().ok()).unwrap_or_default();
    (search, hash)
}

/// Shows the result a share link carries, or says why it cannot.
fn open_link(state: AppState, hash: &str) {
    if hash.len() <= 1 {
        return;
    }
    match SharedResult::from_link(hash) {
        Ok(result) => state.page.update(|p| p.open_link(result)),
        Err(e) => state.error(e.to_string()),
    }
}

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    let narrow = RwSignal::new(window_is_narrow());
    // The page lives as long as the window: the listener is never removed.
    let _ = window_event_listener(leptos::ev::resize, move |_| {
        let now = window_is_narrow();
        // only a change of layout redraws the chart
        if now != narrow.get_untracked() {
            narrow.set(now);
        }
    });
    provide_context(NarrowWindow(narrow.read_only()));
    let (search, hash) = location();
    let query = parse_query(&search);
    // The default bundled model loads at once; `?model=` picks another bundled model or a Hub
    // model instead.
    let first_model = match &query.model {
        Some(id) if BUNDLED_MODELS.iter().any(|(bundled, _)| bundled == id) => bundled_model(id),
        Some(id) => ModelSource::Hub {
            id: id.clone(),
            base: query.hub.clone().unwrap_or_else(|| DEFAULT_HUB.to_string()),
        },
        None => default_model(),
    };
    let engine = Engine::new(first_model.early_downloads(), move |reply, files| {
        on_reply(state, reply, files)
    });
    state.engine.set_value(Some(engine));

    if let Some(split) = query.split {
        state.split.set(split);
    }
    if let Some(target) = query.target {
        state.target.set(target);
        state.tune_settings.update(|s| {
            *s = walf_lab::protocol::TuneSettings::paper(target);
        });
    }
    if let Some(backend) = query.backend {
        state.backend.set(backend);
    }
    if !query.problems.is_empty() {
        state.notice.set(Some(Notice::error(format!(
            "ignored in the address: {}",
            query.problems.join("; ")
        ))));
    }
    open_link(state, &hash);
    // A link pasted into an open page changes only the fragment.
    let _ = window_event_listener(leptos::ev::hashchange, move |_| {
        open_link(state, &location().1)
    });
    state.load(first_model, Vec::new());

    // A teacher's simplified page (`?hide=…`): the parts left out are not drawn at all.
    let hidden = StoredValue::new(query.hide.clone());
    provide_context(Hidden(hidden));
    let shown = move |part: HiddenPart| !hidden.with_value(|h| h.contains(&part));
    let lesson = RwSignal::new(query.lesson.then_some(LessonStep::Predict));
    provide_context(Lesson(lesson));
    // Only entering or leaving the lesson redraws the page's body, not each of its steps.
    let in_lesson = Memo::new(move |_| lesson.get().is_some());
    let tab_button = move |tab: Tab, label: &'static str, part: Option<HiddenPart>| {
        part.is_none_or(shown).then(|| {
            view! {
                <button role="tab" class="tab" aria-selected=move || (state.tab.get() == tab).to_string()
                    on:click=move |_| state.tab.set(tab)>{label}</button>
            }
        })
    };
    view! {
        <header>
            <h1>"walf-lab"</h1>
            <p class="tagline">"How a masked language model distributes gender over 225 professions, \
                against 50/50 and the US Bureau of Labor Statistics 2024 shares; and WALF fine-tuning \
                towards either, on your own device."</p>
            <button id="start-lesson" hidden=move || lesson.get().is_some()
                on:click=move |_| lesson.set(Some(LessonStep::Predict))>"Start a lesson"</button>
        </header>
        {shown(HiddenPart::Model).then(|| view! { <ModelPanel /> })}
        <JobBar />
        <NoticeBar />
        <SavedRunOffer />
        <nav role="tablist" class="tabs" hidden=move || in_lesson.get()>
            {tab_button(Tab::Probe, "Probe", None)}
            {tab_button(Tab::Fill, "Fill-mask", Some(HiddenPart::Fill))}
            {tab_button(Tab::Tune, "Tune", Some(HiddenPart::Tune))}
            {tab_button(Tab::Share, "Share & export", Some(HiddenPart::Share))}
        </nav>
        <main>
            {move || if in_lesson.get() { view! { <LessonView /> }.into_any() } else { match state.tab.get() {
                Tab::Probe => view! { <ProbeView /> }.into_any(),
                Tab::Fill => view! { <FillView /> }.into_any(),
                Tab::Tune => view! { <TuneView /> }.into_any(),
                Tab::Share => view! { <ShareView /> }.into_any(),
            } }}
        </main>
        <footer>
            "Measure and method: Shrestha & Srinivasan, “LLM Bias Detection and Mitigation through \
             the Lens of Desired Distributions”, EMNLP 2025. Everything runs in this page; nothing \
             is sent to a server."
        </footer>
    }
}

/// What the engine is doing, with progress and a way to stop it.
#[component]
fn JobBar() -> impl IntoView {
    let state = expect_context::<AppState>();
    move || {
        state.job.get().map(|job| {
            let bytes = job.what.starts_with("downloading");
            let amount = if job.total > 0 {
                if bytes {
                    format!("{} of {}", bytes_label(job.done), bytes_label(job.total))
                } else {
                    format!("{} of {}", job.done, job.total)
                }
            } else if bytes {
                bytes_label(job.done)
            } else {
                String::new()
            };
            let stop_label = if job.kind == JobKind::Tune {
                "Stop"
            } else {
                "Cancel"
            };
            view! {
                <div class="job" role="status" aria-live="polite">
                    <span class="job-what">{job.what.clone()}</span>
                    <progress max=job.total.max(1).to_string()
                        value=(if job.total > 0 { job.done } else { 0 }).to_string()></progress>
                    <span class="job-amount">{amount}</span>
                    <button on:click=move |_| state.cancel()>{stop_label}</button>
                </div>
            }
        })
    }
}

#[component]
fn NoticeBar() -> impl IntoView {
    let state = expect_context::<AppState>();
    move || {
        state.notice.get().map(|n| {
            let to_cpu = move |_| state.update(Page::continue_on_cpu);
            view! {
                <div class=if n.error { "notice error" } else { "notice" } role="alert">
                    <span class="notice-text">{n.text.clone()}</span>
                    {n.offer_cpu.then(|| view! { <button on:click=to_cpu>"Continue on the CPU"</button> })}
                    <button class="close" aria-label="Dismiss" on:click=move |_| state.notice.set(None)>"×"</button>
                </div>
            }
        })
    }
}

/// A WALF run kept from before (a reload, a crash, a lost GPU): go on with it or let it go.
#[component]
fn SavedRunOffer() -> impl IntoView {
    let state = expect_context::<AppState>();
    move || {
        let running = state.tuning_now();
        let run = state.saved_run.get().filter(|_| !running)?;
        let best = run
            .best
            .map(|(kl, epoch)| format!("; best valid KL {kl:.5} at epoch {}", epoch + 1))
            .unwrap_or_default();
        let when = js_sys::Date::new(&run.saved_at.into())
            .to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED);
        let text = format!(
            "A {} run of {} ({} target) was interrupted after epoch {} of at most {} ({} steps{best}); \
             it was kept in this browser at {}.",
            run.settings.method.label(),
            run.model,
            run.settings.target.label(),
            run.epochs_done,
            run.settings.max_epochs,
            run.steps_done,
            String::from(when),
        );
        Some(view! {
            <div class="notice" id="resume-offer" role="region" aria-label="Interrupted run">
                <span class="notice-text">{text}</span>
                <button id="resume-run" on:click=move |_| state.update(Page::resume_saved_run)>"Go on with it"</button>
                <button id="discard-run" on:click=move |_| state.update(Page::discard_saved_run)>"Discard"</button>
            </div>
        })
    }
}
