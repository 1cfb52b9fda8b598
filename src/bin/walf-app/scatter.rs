//! The scatter against the statistics: each profession's P(female) (up) against its share of
//! women in 2024 (across), with the two targets as lines: y = x (real-world) and y = 50% (equal).
//! After tuning, an arrow from each point before to the point after.

use leptos::prelude::*;

use walf_lab::share::SharedResult;
use walf_lab::view::{correlation_sentence, group_title, percent};

use crate::chart::{CHART_STYLE, ORANGE, fmt, group_colour};

const SIZE: f64 = 520.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 52.0;

fn sx(share: f64) -> f64 {
    LEFT + share.clamp(0.0, 1.0) * (SIZE - LEFT - RIGHT)
}

fn sy(p: f64) -> f64 {
    SIZE - BOTTOM - p.clamp(0.0, 1.0) * (SIZE - TOP - BOTTOM)
}

#[component]
pub fn ScatterChart(result: SharedResult) -> impl IntoView {
    let tuned = result.tuning.is_some();
    let caption = match (tuned, result.correlation(true)) {
        (true, Some(after)) => format!(
            "{} After tuning: ρ = {:.2}.",
            correlation_sentence(result.correlation(false)),
            after.spearman
        ),
        _ => correlation_sentence(result.correlation(false)),
    };
    let ticks = [0.0, 0.25, 0.5, 0.75, 1.0].map(|t| {
        view! {
            <line x1=fmt(sx(t)) x2=fmt(sx(t)) y1=fmt(sy(0.0)) y2=fmt(sy(1.0)) class="chart-grid" />
            <line x1=fmt(sx(0.0)) x2=fmt(sx(1.0)) y1=fmt(sy(t)) y2=fmt(sy(t)) class="chart-grid" />
            <text x=fmt(sx(t)) y=fmt(sy(0.0) + 16.0) text-anchor="middle">{percent(t)}</text>
            <text x=fmt(sx(0.0) - 6.0) y=fmt(sy(t) + 4.0) text-anchor="end">{percent(t)}</text>
        }
    });
    let points = result
        .professions
        .iter()
        .map(|p| {
            let label = match p.p_female_after {
                Some(a) => format!(
                    "{}: P(female) {} before tuning, {} after; {} women in 2024",
                    p.name,
                    percent(p.p_female),
                    percent(a),
                    percent(p.female_share)
                ),
                None => format!(
                    "{}: P(female) {}; {} women in 2024",
                    p.name,
                    percent(p.p_female),
                    percent(p.female_share)
                ),
            };
            let (x, y) = (sx(p.female_share), sy(p.p_female));
            let title = label.clone();
            view! {
                <g class="scatter-point" tabindex="0" role="listitem" aria-label=label
                    data-profession=p.name.clone() data-share=format!("{}", p.female_share)
                    data-p-female=format!("{}", p.p_female)
                    data-p-female-after=p.p_female_after.map(|a| format!("{a}"))>
                    <title>{title}</title>
                    {p.p_female_after.map(|a| view! {
                        <line x1=fmt(x) x2=fmt(x) y1=fmt(y) y2=fmt(sy(a)) stroke="#777"
                            marker-end="url(#scatter-arrow)" />
                        <circle cx=fmt(x) cy=fmt(sy(a)) r="3.5" fill=ORANGE />
                    })}
                    <circle cx=fmt(x) cy=fmt(y) r="4" fill=group_colour(p.group)
                        fill-opacity=if tuned { "0.5" } else { "0.85" } stroke="#ffffff" stroke-width="0.8" />
                </g>
            }
        })
        .collect_view();
    let legend = walf_lab::data::Group::ALL
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let x = LEFT + i as f64 * 130.0;
            view! {
                <circle cx=fmt(x + 5.0) cy="14" r="4.5" fill=group_colour(g) />
                <text x=fmt(x + 14.0) y="18">{group_title(g)}</text>
            }
        })
        .collect_view();
    let description = format!(
        "For {} professions of the {} split, the model's P(female) (up) against the share of \
         women in the profession in the US in 2024 (across). Points on the solid line match the \
         statistics; points on the dashed line are at 50%. {caption}",
        result.professions.len(),
        result.split
    );
    view! {
        <figure class="scatter">
            <svg id="probe-scatter" class="chart scatter-chart" role="img"
                aria-labelledby="probe-scatter-title probe-scatter-desc"
                viewBox=format!("0 0 {SIZE} {SIZE}") width=SIZE.to_string() height=SIZE.to_string()
                xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">
                <title id="probe-scatter-title">{format!("P(female) against the 2024 statistics: {}", result.model)}</title>
                <desc id="probe-scatter-desc">{description}</desc>
                <style>{CHART_STYLE}</style>
                <defs>
                    <marker id="scatter-arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="6"
                        markerHeight="6" orient="auto-start-reverse">
                        <path d="M0,0 L8,4 L0,8 z" fill="#777" />
                    </marker>
                </defs>
                <rect x="0" y="0" width=SIZE.to_string() height=SIZE.to_string() fill="#ffffff" />
                {legend}
                {tuned.then(|| view! {
                    <circle cx=fmt(LEFT + 395.0) cy="14" r="3.5" fill=ORANGE />
                    <text x=fmt(LEFT + 404.0) y="18">"after tuning"</text>
                })}
                {ticks}
                // the targets: real-world (y = x) and equal (y = 50%)
                // dark, not green: green marks the balanced professions here
                <line x1=fmt(sx(0.0)) y1=fmt(sy(0.0)) x2=fmt(sx(1.0)) y2=fmt(sy(1.0)) stroke="#333" stroke-width="1.2" />
                <text x=fmt(sx(0.97)) y=fmt(sy(0.97) - 6.0) text-anchor="end">"real-world: as the statistics"</text>
                <line x1=fmt(sx(0.0)) y1=fmt(sy(0.5)) x2=fmt(sx(1.0)) y2=fmt(sy(0.5)) stroke="#555" stroke-dasharray="4 3" />
                <text x=fmt(sx(0.02)) y=fmt(sy(0.5) - 6.0)>"equal: 50%"</text>
                {points}
                <text x=fmt((sx(0.0) + sx(1.0)) / 2.0) y=fmt(SIZE - 14.0) text-anchor="middle">
                    "share of women in the profession, US 2024"</text>
                <text x="14" y=fmt((sy(0.0) + sy(1.0)) / 2.0) text-anchor="middle"
                    transform=format!("rotate(-90 14 {:.1})", (sy(0.0) + sy(1.0)) / 2.0)>
                    "P(female): the model's share of female words"</text>
            </svg>
            <figcaption id="scatter-caption">{caption}</figcaption>
        </figure>
    }
}
