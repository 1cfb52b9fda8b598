//! The probe: split and target, the chart, the paper's group tables for both targets, the
//! numbers behind a point, and the benchmark's rows for editing.

use leptos::prelude::*;

use walf_lab::bias::{BiasReport, Target};
use walf_lab::data::{PHRASES_TSV, PROFESSIONS_TSV, Split, TEMPLATES_TSV};
use walf_lab::protocol::BenchmarkEdits;
use walf_lab::share::SharedResult;
use walf_lab::view::{
    SortOrder, correlation_sentence, group_title, percent, plain_number, score_table,
};

use crate::app::NarrowWindow;
use crate::chart::ProbeChart;
use crate::scatter::ScatterChart;
use crate::state::AppState;

pub const SPLITS: [Split; 4] = [Split::Test, Split::Valid, Split::Train, Split::All];

#[component]
pub fn SplitSelect() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <label>"Split "
            <select id="split" on:change=move |ev| {
                // the chart shows what the controls say: the new split is measured at once, or
                // when the job under way ends
                if let Some(s) = Split::parse(&event_target_value(&ev)) {
                    state.update(|p| p.choose_split(s));
                }
            }>
                {SPLITS.map(|s| view! {
                    <option value=s.label() selected=move || state.split.get() == s>{s.label()}</option>
                })}
            </select>
        </label>
    }
}

#[component]
pub fn TargetSelect(target: RwSignal<Target>) -> impl IntoView {
    view! {
        <label>"Target "
            <select class="target" on:change=move |ev| {
                if let Some(t) = Target::parse(&event_target_value(&ev)) { target.set(t) }
            }>
                <option value="equal" selected=move || target.get() == Target::Equal>"equal (50/50)"</option>
                <option value="real-world" selected=move || target.get() == Target::RealWorld>
                    "real-world (BLS 2024)"</option>
            </select>
        </label>
    }
}

/// The paper's table: KL mean and variance per group, for both targets (and after tuning).
#[component]
pub fn GroupTable(result: SharedResult) -> impl IntoView {
    let tuned = result.tuning.is_some();
    let reports: Vec<(String, BiasReport)> = [Target::Equal, Target::RealWorld]
        .into_iter()
        .flat_map(|t| {
            let mut r = vec![(
                format!("{}{}", t.label(), if tuned { ", before" } else { "" }),
                result.report(t, false),
            )];
            if tuned {
                r.push((format!("{}, after", t.label()), result.report(t, true)));
            }
            r
        })
        .filter_map(|(l, r)| r.map(|r| (l, r)))
        .collect();
    let groups: Vec<String> = reports
        .first()
        .map(|(_, r)| r.summary.iter().map(|s| s.group.clone()).collect())
        .unwrap_or_default();
    let correlations: Vec<(String, Option<walf_lab::bias::Correlation>)> = if tuned {
        vec![
            ("Before tuning: ".into(), result.correlation(false)),
            ("After tuning: ".into(), result.correlation(true)),
        ]
    } else {
        vec![(String::new(), result.correlation(false))]
    };
    view! {
        {correlations.into_iter().map(|(when, c)| view! {
            <p class="correlation" data-spearman=c.map(|c| c.spearman.to_string())
                data-pearson=c.map(|c| c.pearson.to_string())>
                {format!("{when}{}", correlation_sentence(c))}
            </p>
        }).collect_view()}
        <table class="group-table" id="group-table">
            <caption>"KL divergence from the target, mean and sample variance per group"</caption>
            <thead>
                <tr><th scope="col">"group"</th>
                {reports.iter().map(|(l, _)| view! {
                    <th scope="col">{format!("KL mean ({l})")}</th><th scope="col">"variance"</th>
                }).collect_view()}
                </tr>
            </thead>
            <tbody>
                {groups.iter().enumerate().map(|(i, g)| view! {
                    <tr><th scope="row">{g.replace('_', "-").to_lowercase()}</th>
                    {reports.iter().map(|(_, r)| {
                        let s = &r.summary[i];
                        view! {
                            <td class="num" data-kl-mean=format!("{}", s.kl_mean)>{format!("{:.6}", s.kl_mean)}</td>
                            <td class="num">{if s.kl_variance.is_finite() { plain_number(s.kl_variance) } else { "–".into() }}</td>
                        }
                    }).collect_view()}
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The numbers behind the selected point of `result` (the chart's).
#[component]
fn Details(selected: RwSignal<Option<String>>, result: SharedResult) -> impl IntoView {
    let state = expect_context::<AppState>();
    move || {
        let Some(p) = selected
            .get()
            .and_then(|name| result.professions.iter().find(|p| p.name == name).cloned())
        else {
            return view! {
                <aside class="details idle">
                    <p class="hint">"Point at a profession, or reach it with the Tab key, for its numbers."</p>
                </aside>
            }
            .into_any();
        };
        let name = p.name.clone();
        let scores = state
            .before
            .with(|b| b.as_ref().map(|b| score_table(&name, &b.scores)));
        view! {
            <aside class="details" aria-live="polite">
                <button class="close" aria-label="Close" on:click=move |_| selected.set(None)>"×"</button>
                <h3>{p.name.clone()}</h3>
                <p>{format!("{} · P(female) {}", group_title(p.group), percent(p.p_female))}
                    {p.p_female_after.map(|a| format!(" → {} after tuning", percent(a)))}
                    {format!(" · BLS 2024 share of women {}", percent(p.female_share))}</p>
                {scores.filter(|t| !t.rows.is_empty()).map(|t| view! {
                    <table class="scores">
                        <caption title="ln P(A|AM) − ln P(A|TAM): the log of how much more likely the gendered word becomes when the profession is shown">
                            "How much each word's probability rises with the profession in view (log ratio), per template"</caption>
                        <thead><tr><th>"word"</th>
                            {t.templates.iter().map(|id| view! { <th>{id.clone()}</th> }).collect_view()}
                        </tr></thead>
                        <tbody>
                            {t.rows.iter().map(|(w, g, v)| view! {
                                <tr><th scope="row">{format!("{w} ({})", g.label())}</th>
                                {v.iter().map(|x| view! {
                                    <td class="num">{x.map(|x| format!("{x:.4}")).unwrap_or_default()}</td>
                                }).collect_view()}
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                })}
            </aside>
        }
        .into_any()
    }
}

/// The benchmark's three files, editable: add a profession with its own target share, change a
/// phrase or a template, and measure again.
#[component]
fn BenchmarkEditor() -> impl IntoView {
    let state = expect_context::<AppState>();
    let edits = state.edits.get_untracked();
    let professions = RwSignal::new(edits.professions_tsv.unwrap_or(PROFESSIONS_TSV.into()));
    let templates = RwSignal::new(edits.templates_tsv.unwrap_or(TEMPLATES_TSV.into()));
    let phrases = RwSignal::new(edits.phrases_tsv.unwrap_or(PHRASES_TSV.into()));
    let apply = move |_| {
        let keep = |text: String, bundled: &str| (text != bundled).then_some(text);
        state.edits.set(BenchmarkEdits {
            professions_tsv: keep(professions.get_untracked(), PROFESSIONS_TSV),
            templates_tsv: keep(templates.get_untracked(), TEMPLATES_TSV),
            phrases_tsv: keep(phrases.get_untracked(), PHRASES_TSV),
        });
        state.probe(false);
    };
    let reset = move |_| {
        professions.set(PROFESSIONS_TSV.into());
        templates.set(TEMPLATES_TSV.into());
        phrases.set(PHRASES_TSV.into());
        state.edits.set(BenchmarkEdits::default());
    };
    let area = |label: &'static str, id: &'static str, text: RwSignal<String>| {
        view! {
            <label class="tsv">{label}
                <textarea id=id rows="8" spellcheck="false" prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            </label>
        }
    };
    view! {
        <details class="editor">
            <summary>"Edit the benchmark: professions, templates, gendered phrases (TSV)"</summary>
            <p class="hint">"A new profession needs a row with its article, its target share of \
                women and men, its group and its split (train, valid or test)."</p>
            {area("Professions", "edit-professions", professions)}
            {area("Templates", "edit-templates", templates)}
            {area("Gendered phrases", "edit-phrases", phrases)}
            <button on:click=apply>"Measure with these"</button>
            <button on:click=reset>"Back to the paper's data"</button>
        </details>
    }
}

#[component]
pub fn ProbeView() -> impl IntoView {
    let state = expect_context::<AppState>();
    let narrow = use_context::<NarrowWindow>().map(|n| n.0);
    let order = RwSignal::new(SortOrder::PFemale);
    let selected = RwSignal::new(None::<String>);
    // rows (the paper's view, one line a profession) or the scatter against the statistics
    let scatter = RwSignal::new(false);
    let save_scatter = move |png: bool| {
        let name = state
            .shared
            .get_untracked()
            .or_else(|| state.chart_result())
            .map(|r| {
                format!(
                    "walf-{}-{}-scatter",
                    walf_lab::view::file_stem(&r.model),
                    r.split
                )
            })
            .unwrap_or_else(|| "walf-scatter".into());
        if png {
            if let Err(e) = crate::download::download_png("probe-scatter", &format!("{name}.png")) {
                state.error(e);
            }
        } else if let Some(svg) = crate::download::svg_markup("probe-scatter") {
            crate::download::download_text(&format!("{name}.svg"), &svg, "image/svg+xml");
        }
    };
    let result = move || state.shared.get().or_else(|| state.chart_result());
    view! {
        <section class="view" aria-label="Probe">
            <div class="controls">
                <SplitSelect />
                <label>"Sort within groups by "
                    <select id="sort" on:change=move |ev| {
                        if let Some(o) = SortOrder::parse(&event_target_value(&ev)) { order.set(o) }
                    }>
                        {SortOrder::ALL.map(|o| view! { <option value=o.label()>{o.label()}</option> })}
                    </select>
                </label>
                <button id="run-probe" disabled=move || !state.ready() || state.job.get().is_some()
                    on:click=move |_| state.probe(false)>"Measure"</button>
                <span class="view-switch" role="group" aria-label="Show">
                    <button id="show-rows" aria-pressed=move || (!scatter.get()).to_string()
                        on:click=move |_| scatter.set(false)>"Rows"</button>
                    <button id="show-scatter" aria-pressed=move || scatter.get().to_string()
                        on:click=move |_| scatter.set(true)>"Scatter against the statistics"</button>
                </span>
            </div>
            {move || state.probe_error.get().map(|e| view! {
                <p id="probe-error" class="field-error" role="alert">{format!(
                    "This could not be measured: {e}. {}",
                    if state.before.with(|b| b.is_some()) { "The chart below is the last one measured." } else { "" }
                )}</p>
            })}
            {move || state.shared.get().and_then(|s| crate::compare_view::opened_comparison(&s))}
            {move || state.shared.get().map(|s| view! {
                <p class="shared-banner">{format!(
                    "Opened from a link: {} on the {} split{}. Measure to replace it with this page's own result.",
                    s.model, s.split,
                    s.tuning.as_ref().map(|t| format!(
                        ", before and after {} towards the {} target (its curves are in the Tune tab)",
                        t.method.label(), t.target.label()
                    )).unwrap_or_default()
                )}</p>
            })}
            {move || {
                // During a run the valid split's dots move epoch by epoch; the chosen split is
                // measured again when the run ends.
                let live = state.live();
                let r = match &live {
                    Some(l) => Some(l.result.clone()),
                    None => result(),
                };
                let method = |r: &SharedResult| {
                    r.tuning.as_ref().map_or("tuning", |t| t.method.label())
                };
                let heading = |r: &SharedResult| match &live {
                    Some(l) => match l.epoch {
                        Some(e) => format!(
                            "{}, during {}: the {} professions of the valid split after epoch {} \
                             (the {} split is measured again when the run ends)",
                            r.model, method(r), r.professions.len(), e + 1, state.split.get().label()
                        ),
                        None => format!(
                            "{}, during {}: the {} professions of the valid split before tuning \
                             (their dots after each epoch appear here as it is validated)",
                            r.model, method(r), r.professions.len()
                        ),
                    },
                    None => format!(
                        "{}: the {} professions of the {} split", r.model, r.professions.len(), r.split
                    ),
                };
                match r {
                Some(r) => view! {
                    <h3 id="chart-heading" data-split=r.split.clone()
                        data-live=live.as_ref().map(|_| "true")
                        data-epoch=live.as_ref().and_then(|l| l.epoch).map(|e| (e + 1).to_string())>
                        {heading(&r)}</h3>
                    <div class="probe-result">
                        <div class="chart-area">{if scatter.get() {
                            view! {
                                <div class="chart-scroll"><ScatterChart result=r.clone() /></div>
                                <div class="controls">
                                    <button id="scatter-svg" on:click=move |_| save_scatter(false)>"Scatter (SVG)"</button>
                                    <button id="scatter-png" on:click=move |_| save_scatter(true)>"Scatter (PNG)"</button>
                                </div>
                            }.into_any()
                        } else {
                            // a long split scrolls inside its box, the tables stay in reach
                            let tall = r.professions.len() > 60;
                            let compact = narrow.is_some_and(|n| n.get());
                            view! {
                                <div class="chart-scroll" class:tall=tall>
                                    <ProbeChart result=r.clone() order=order.get() selected=selected compact=compact />
                                </div>
                            }.into_any()
                        }}</div>
                        <Details selected=selected result=r.clone() />
                        <div class="group-tables"><GroupTable result=r /></div>
                    </div>
                }.into_any(),
                None => view! { <p class="empty">"The chart appears once the model is measured."</p> }.into_any(),
            }}}
            {move || state.before.get().map(|b| view! {
                <p class="hint" id="probe-timing" data-seconds=b.seconds.to_string()
                    data-measurement=move || state.measurements.get().to_string()
                    data-sentences=b.forward_sentences.to_string()
                    data-threads=b.threads.to_string()>{format!(
                    "{} professions, {} distinct masked sentences, {:.1} s{}",
                    b.professions.len(), b.forward_sentences, b.seconds,
                    if b.threads > 1 { format!(" on {} threads", b.threads) } else { String::new() }
                )}</p>
            })}
            <BenchmarkEditor />
        </section>
    }
}
