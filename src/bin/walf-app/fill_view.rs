//! Fill-mask: the model's top predictions for a masked sentence, and the mass it puts on the
//! benchmark's gendered words, male and female side by side.

use leptos::prelude::*;

use walf_lab::protocol::{GenderedWord, Request};
use walf_lab::view::{gendered_table, percent};

use crate::state::{AppState, JobKind, ModelStatus};

#[component]
pub fn FillView() -> impl IntoView {
    let state = expect_context::<AppState>();
    let text = RwSignal::new("he went to the [MASK] to buy bread.".to_string());
    let top = RwSignal::new(10usize);
    let run = move || {
        let text = text.get_untracked();
        let top = top.get_untracked();
        state.start_job(JobKind::Fill, |job| Request::Fill { job, text, top });
    };
    let mask = move || match state.model.get() {
        ModelStatus::Ready { mask_token, .. } => mask_token,
        _ => "[MASK]".into(),
    };
    view! {
        <section class="view" aria-label="Fill-mask">
            <div class="controls">
                <label class="wide">"Sentence "
                    <input id="fill-text" type="text" prop:value=move || text.get()
                        on:input=move |ev| text.set(event_target_value(&ev))
                        on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" { run() } />
                </label>
                <label>"Top "
                    <input type="number" min="1" max="50" prop:value=move || top.get().to_string()
                        on:input=move |ev| top.set(event_target_value(&ev).parse().unwrap_or(10)) />
                </label>
                <button id="run-fill" disabled=move || !state.ready() || state.job.get().is_some()
                    on:click=move |_| run()>"Predict"</button>
            </div>
            {move || state.fill_error.get().map(|e| view! { <p id="fill-error" class="field-error" role="alert">{e}</p> })}
            <p class="hint">{move || format!("Write {} where a word is to be predicted ([MASK] and <mask> both work).", mask())}</p>
            {move || state.fills.get().map(|masks| masks.into_iter().enumerate().map(|(i, m)| view! {
                <div class="fill">
                    <table class="fill-top">
                        <caption title=format!("the mask is token {} of the sentence as the model reads it", m.position)>
                            {format!("Most likely words for mask {}", i + 1)}</caption>
                        <thead><tr><th>"token"</th><th>"probability"</th><th></th></tr></thead>
                        <tbody>
                        {m.top.iter().map(|t| view! {
                            <tr><td class="token">{t.token.clone()}</td>
                                <td class="num">{format!("{:.4}", t.probability)}</td>
                                <td><span class="bar" style=format!("width:{:.0}px", 200.0 * t.probability)></span></td></tr>
                        }).collect_view()}
                        </tbody>
                    </table>
                    {gendered(&m.gender_words)}
                </div>
            }).collect_view())}
        </section>
    }
}

/// The benchmark's gendered words at one mask: he beside she, man beside woman, and each side's
/// sum with the female words' share of it.
fn gendered(words: &[GenderedWord]) -> impl IntoView + use<> {
    let table = gendered_table(words);
    let cell = |w: &Option<(String, f64)>| match w {
        Some((word, p)) => view! {
            <th scope="row">{word.clone()}</th>
            <td class="num" title=format!("{p:.6}")>{percent(*p)}</td>
        }
        .into_any(),
        None => view! { <td></td><td></td> }.into_any(),
    };
    let share = table
        .female_share()
        .map(|s| {
            format!(
                "female words hold {} of the two sides' probability",
                percent(s)
            )
        })
        .unwrap_or_default();
    view! {
        <table class="fill-gender">
            <caption>"The benchmark's gendered words at this mask"</caption>
            <thead><tr><th colspan="2">"male"</th><th colspan="2">"female"</th></tr></thead>
            <tbody>
            {table.rows.iter().map(|[m, f]| view! { <tr>{cell(m)}{cell(f)}</tr> }).collect_view()}
            </tbody>
            <tfoot>
                <tr><th scope="row">"all"</th><td class="num">{percent(table.male)}</td>
                    <th scope="row">"all"</th><td class="num">{percent(table.female)}</td></tr>
                <tr><td colspan="4" class="fill-share">{share}</td></tr>
            </tfoot>
        </table>
    }
}
