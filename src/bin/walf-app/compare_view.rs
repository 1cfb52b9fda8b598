//! Two results side by side (`view::compare`): in the Share tab against another link or
//! before and after a run, and wherever a comparison link opens.

use leptos::prelude::*;

use walf_lab::share::SharedResult;
use walf_lab::view::compare::{Comparison, Side, compare};
use walf_lab::view::{group_title, percent};

use crate::app::Hidden;
use crate::probe_view::GroupTable;
use crate::share_view::page_address;

fn rho(c: &Option<walf_lab::bias::Correlation>) -> String {
    c.map(|c| format!("ρ = {:.2}", c.spearman))
        .unwrap_or_else(|| "no ρ".into())
}

/// The comparison: each side's correlation with the statistics and KL tables, and the
/// professions by how far apart the two put them.
#[component]
pub fn ComparisonTable(
    comparison: Comparison,
    first: SharedResult,
    second: SharedResult,
) -> impl IntoView {
    let Comparison {
        first: first_name,
        second: second_name,
        rows,
        correlations,
        unmatched,
    } = comparison;
    let summary = format!(
        "{first_name}: {} against the statistics; {second_name}: {}.{}",
        rho(&correlations[0]),
        rho(&correlations[1]),
        if unmatched > 0 {
            format!(" {unmatched} professions are in one result only and left out.")
        } else {
            String::new()
        }
    );
    view! {
        <div class="comparison" id="comparison">
            <p id="compare-summary">{summary}</p>
            <div class="compare-tables">
                <div><h4>{first_name.clone()}</h4><GroupTable result=first /></div>
                <div><h4>{second_name.clone()}</h4><GroupTable result=second /></div>
            </div>
            <table id="compare-rows">
                <caption>"P(female), the largest difference first"</caption>
                <thead><tr><th>"profession"</th><th>"group"</th><th>"BLS 2024"</th>
                    <th>{first_name}</th><th>{second_name}</th><th>"difference"</th></tr></thead>
                <tbody>
                {rows.into_iter().map(|r| view! {
                    <tr data-profession=r.name.clone() data-first=format!("{}", r.first) data-second=format!("{}", r.second)>
                        <th scope="row">{r.name.clone()}</th>
                        <td>{group_title(r.group)}</td>
                        <td class="num">{percent(r.female_share)}</td>
                        <td class="num">{percent(r.first)}</td>
                        <td class="num">{percent(r.second)}</td>
                        <td class="num">{format!("{:+.1}", 100.0 * r.difference())}</td>
                    </tr>
                }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// A comparison link's two results, where it opens.
pub fn opened_comparison(result: &SharedResult) -> Option<impl IntoView + use<>> {
    let other = result.compared_with.as_deref()?.clone();
    let mut first = result.clone();
    first.compared_with = None;
    let comparison = compare(
        Side {
            result: &first,
            after: false,
        },
        Side {
            result: &other,
            after: false,
        },
    );
    Some(view! { <ComparisonTable comparison=comparison first=first second=other /> })
}

/// The Share tab's part: this result against another link's, or before and after its run,
/// and a link that carries both.
#[component]
pub fn CompareSection(result: Signal<Option<SharedResult>>) -> impl IntoView {
    let Hidden(hidden) = expect_context::<Hidden>();
    let other_link = RwSignal::new(String::new());
    let other = RwSignal::new(None::<SharedResult>);
    let run = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let open_other = move || {
        let text = other_link.get_untracked();
        let fragment = text
            .rsplit_once('#')
            .map_or(text.as_str(), |(_, f)| f)
            .trim()
            .to_string();
        match SharedResult::from_link(&fragment) {
            Ok(mut r) => {
                r.compared_with = None;
                other.set(Some(r));
                run.set(false);
                error.set(None);
            }
            Err(e) => error.set(Some(e.to_string())),
        }
    };
    let shown = move || {
        let mut first = result.get()?;
        first.compared_with = None;
        if run.get() {
            first.tuning.as_ref()?;
            let comparison = compare(
                Side {
                    result: &first,
                    after: false,
                },
                Side {
                    result: &first,
                    after: true,
                },
            );
            let before = SharedResult {
                tuning: None,
                ..first.clone()
            };
            return Some((comparison, before, first.clone(), None));
        }
        let second = other.get()?;
        let comparison = compare(
            Side {
                result: &first,
                after: false,
            },
            Side {
                result: &second,
                after: false,
            },
        );
        let link = SharedResult {
            compared_with: Some(Box::new(second.clone())),
            ..first.clone()
        }
        .to_link()
        .map(|f| format!("{}#{f}", hidden.with_value(|h| page_address(h))));
        Some((comparison, first, second, Some(link)))
    };
    view! {
        <h3>"Compare"</h3>
        <div class="controls">
            <label class="wide">"Another result's link "
                <input id="compare-with" type="text" prop:value=move || other_link.get()
                    on:input=move |ev| other_link.set(event_target_value(&ev))
                    on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" { open_other() } />
            </label>
            <button id="compare-go" on:click=move |_| open_other()>"Compare"</button>
            {move || result.get().filter(|r| r.tuning.is_some()).map(|_| view! {
                <button id="compare-run" on:click=move |_| run.set(true)>"Before and after this run"</button>
            })}
        </div>
        {move || error.get().map(|e| view! { <p class="field-error" id="compare-error" role="alert">{e}</p> })}
        {move || shown().map(|(comparison, first, second, link)| view! {
            {link.map(|l| match l {
                Ok(l) => view! {
                    <label class="wide">"Link to this comparison "
                        <input id="compare-link" type="text" readonly prop:value=l />
                    </label>
                }.into_any(),
                Err(e) => view! { <p class="field-error">{e.to_string()}</p> }.into_any(),
            })}
            <ComparisonTable comparison=comparison first=first second=second />
        })}
    }
}
