//! Share and export: a link that opens the same result with no server, the result as JSON and
//! the paper's TSVs, and the chart as SVG or PNG.

use leptos::prelude::*;
use serde_json::json;

use walf_lab::bias::Target;

use walf_lab::view::{HiddenPart, SortOrder, hide_parameter, run_manifest, walf_commands};

use crate::app::Hidden;

use crate::chart::ProbeChart;
use crate::compare_view::CompareSection;
use crate::download::{download_png, download_text, svg_markup};
use crate::state::AppState;

/// The page's address for a link, with the simplified page's `hide=` kept.
pub fn page_address(hidden: &[HiddenPart]) -> String {
    web_sys::window()
        .and_then(|w| {
            let l = w.location();
            Some(format!(
                "{}{}{}",
                l.origin().ok()?,
                l.pathname().ok()?,
                hide_parameter(hidden)
            ))
        })
        .unwrap_or_default()
}

#[component]
pub fn ShareView() -> impl IntoView {
    let state = expect_context::<AppState>();
    let Hidden(hidden) = expect_context::<Hidden>();
    let result = move || state.shared.get().or_else(|| state.result());
    let link = move || {
        result().map(|r| {
            r.to_link()
                .map(|fragment| format!("{}#{fragment}", hidden.with_value(|h| page_address(h))))
        })
    };
    let copy = move |_| {
        if let Some(Ok(link)) = link()
            && let Some(w) = web_sys::window()
        {
            let _ = w.navigator().clipboard().write_text(&link);
        }
    };
    let stem = move || {
        result()
            .map(|r| format!("walf-{}-{}", walf_lab::view::file_stem(&r.model), r.split))
            .unwrap_or_else(|| "walf".into())
    };
    let save_json = move |_| {
        let Some(r) = result() else { return };
        let reports: Vec<_> = [Target::Equal, Target::RealWorld]
            .into_iter()
            .flat_map(|t| [r.report(t, false), r.report(t, true)])
            .flatten()
            .collect();
        let correlation = json!({
            "before": r.correlation(false),
            "after": r.correlation(true),
        });
        // enough to repeat the numbers with `walf`
        let manifest = run_manifest(&r);
        let value = json!({
            "result": r, "reports": reports, "correlation": correlation, "manifest": manifest,
        });
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        download_text(&format!("{}.json", stem()), &text, "application/json");
    };
    let save_tsv = move |target: Target, after: bool| {
        let Some(report) = result().and_then(|r| r.report(target, after)) else {
            return;
        };
        let when = if after { "after" } else { "before" };
        let name = format!("{}-{}-{when}", stem(), target.label());
        download_text(
            &format!("{name}-individual.tsv"),
            &report.individual_tsv(),
            "text/tab-separated-values",
        );
        download_text(
            &format!("{name}-summary.tsv"),
            &report.summary_tsv(),
            "text/tab-separated-values",
        );
    };
    let save_svg = move |_| match svg_markup("probe-chart") {
        Some(svg) => download_text(&format!("{}.svg", stem()), &svg, "image/svg+xml"),
        None => state.error("open the Probe view once so that its chart exists"),
    };
    let save_png = move |_| {
        if let Err(e) = download_png("probe-chart", &format!("{}.png", stem())) {
            state.error(e);
        }
    };
    view! {
        <section class="view" aria-label="Share and export">
            {move || match link() {
                None => view! { <p class="empty">"Measure a model first; its result can then be shared."</p> }.into_any(),
                Some(Err(e)) => view! { <p class="notice error">{e.to_string()}</p> }.into_any(),
                Some(Ok(l)) => view! {
                    <label class="wide">"Link to this result (opens it with nothing installed) "
                        <input id="share-link" type="text" readonly prop:value=l.clone() />
                    </label>
                    <button on:click=copy>"Copy"</button>
                    <p class="hint">{format!("{} characters; the result is in the part after #, which is never sent to a server.", l.len())}</p>
                }.into_any(),
            }}
            <h3>"Files"</h3>
            <div class="controls">
                <button on:click=save_json>"Result (JSON)"</button>
                <button on:click=move |_| save_tsv(Target::Equal, false)>"Paper TSVs, equal"</button>
                <button on:click=move |_| save_tsv(Target::RealWorld, false)>"Paper TSVs, real-world"</button>
                {move || result().filter(|r| r.tuning.is_some()).map(|_| view! {
                    <button on:click=move |_| save_tsv(Target::Equal, true)>"TSVs after tuning, equal"</button>
                    <button on:click=move |_| save_tsv(Target::RealWorld, true)>"TSVs after tuning, real-world"</button>
                })}
                <button on:click=save_svg>"Chart (SVG)"</button>
                <button on:click=save_png>"Chart (PNG)"</button>
            </div>
            <p class="hint">"The tuned model itself is downloaded from the Tune view."</p>
            {move || result().map(|r| view! {
                <h3>"Repeat it with the walf command"</h3>
                <pre id="walf-commands" class="commands">{walf_commands(&r).join("\n")}</pre>
            })}
            <CompareSection result=Signal::derive(result) />
            {move || result().map(|r| view! {
                <div class="chart-scroll">
                    <ProbeChart result=r order=SortOrder::PFemale selected=RwSignal::new(None) />
                </div>
            })}
        </section>
    }
}
