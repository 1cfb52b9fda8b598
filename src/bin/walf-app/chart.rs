//! Charts as real SVG: axis labels, a legend, a text alternative, points that take keyboard
//! focus. Colours from the Okabe–Ito palette, which colour-blind readers can tell apart.

use leptos::prelude::*;

use walf_lab::data::Group;
use walf_lab::share::SharedResult;
use walf_lab::view::{ChartRow, SortOrder, chart_groups, fit_label, group_title, percent};

pub const BLUE: &str = "#0072B2";
pub const ORANGE: &str = "#E69F00";
pub const GREEN: &str = "#009E73";
pub const VERMILION: &str = "#D55E00";

/// The charts' own stylesheet, inside each SVG: an exported chart (SVG, or PNG drawn from it)
/// carries it and looks as in the page, where an image cannot see the page's stylesheet.
pub const CHART_STYLE: &str = "\
.chart-group { font-weight: 600; font-size: 12px; }
.chart-grid { stroke: #e4e4e8; }
text, .chart-label { fill: #1d1d1f; }
.chart-row-bg { fill: #ffffff; fill-opacity: 0; }
.chart-row:hover .chart-row-bg, .chart-row.selected .chart-row-bg { fill: #f1f1f4; fill-opacity: 1; }
";

const RIGHT: f64 = 24.0;

/// Where the probe chart's parts go. Wide: each label left of its dots. Compact (a phone): each
/// label above its dots, so that the dots keep the screen's whole width. The SVG scales with its
/// box either way (viewBox); the layout only decides what fits.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Layout {
    width: f64,
    /// Where the 0% line is: right of the labels, or the left margin.
    track: f64,
    row: f64,
    top: f64,
    compact: bool,
}

const WIDE: Layout = Layout {
    width: 760.0,
    track: 210.0,
    row: 16.0,
    top: 58.0,
    compact: false,
};

const COMPACT: Layout = Layout {
    width: 380.0,
    track: 14.0,
    row: 30.0,
    top: 76.0,
    compact: true,
};

/// Characters of a label in the wide layout's label column (the full name is the row's title).
const LABEL_CHARS: usize = 34;
const COMPACT_LABEL_CHARS: usize = 62;

impl Layout {
    fn x_of(&self, p: f64) -> f64 {
        self.track + p.clamp(0.0, 1.0) * (self.width - self.track - RIGHT)
    }
}

/// An SVG coordinate: a tenth of a pixel is enough.
pub fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// The mark of the model before tuning: a filled dot, or a ring once an after mark stands beside
/// it (a ring and a diamond stay distinct where they overlap; two translucent dots would blend).
fn before_mark(x: f64, y: f64, tuned: bool) -> impl IntoView {
    if tuned {
        view! { <circle cx=fmt(x) cy=fmt(y) r="5" fill="#ffffff" stroke=BLUE stroke-width="2" class="mark-before" /> }
            .into_any()
    } else {
        view! { <circle cx=fmt(x) cy=fmt(y) r="4.5" fill=BLUE class="mark-before" /> }.into_any()
    }
}

fn after_mark(x: f64, y: f64) -> impl IntoView {
    let d = format!(
        "M{} {}L{} {}L{} {}L{} {}Z",
        fmt(x),
        fmt(y - 4.5),
        fmt(x + 4.5),
        fmt(y),
        fmt(x),
        fmt(y + 4.5),
        fmt(x - 4.5),
        fmt(y)
    );
    view! { <path d=d fill=ORANGE class="mark-after" /> }
}

/// One row per profession: the model's P(female) as a dot (and after tuning, a diamond), the
/// BLS share as a bar mark, 50% as a line. `selected` gets the name of a focused or hovered
/// point. `compact` lays it out for a narrow screen.
#[component]
pub fn ProbeChart(
    result: SharedResult,
    order: SortOrder,
    selected: RwSignal<Option<String>>,
    #[prop(optional)] compact: bool,
) -> impl IntoView {
    let layout = if compact { COMPACT } else { WIDE };
    let Layout {
        width, row, top, ..
    } = layout;
    let groups = chart_groups(&result, order);
    let tuned = result.tuning.is_some();
    let description = format!(
        "For {} professions of the {} split, the share of female gendered words the model {} \
         predicts (dots) against the share of women in the profession in the US in 2024 (bars) and \
         50% (dashed line). Rows are grouped by male-dominated, balanced and female-dominated \
         professions. Focus a point for its numbers; the tables below give all values.",
        result.professions.len(),
        result.split,
        result.model
    );
    let mut y = top;
    let mut items = Vec::new();
    for (group, members) in groups {
        y += 16.0;
        items.push(
            view! {
                <text x="4" y=fmt(y + 4.0) class="chart-group">{group_title(group)}</text>
            }
            .into_any(),
        );
        // the first row's background starts just below the group's title
        y += if compact { 5.0 } else { 8.0 };
        for member in members {
            y += row;
            items.push(point(member, y, tuned, layout, selected).into_any());
        }
        y += row * 0.5;
    }
    let height = y + 30.0;
    let x50 = layout.x_of(0.5);
    let axis_bottom = height - 30.0;
    let ticks = [0.0, 0.25, 0.5, 0.75, 1.0].map(|t| {
        // the end ticks' labels stay inside the chart
        let anchor = match t {
            0.0 if compact => "start",
            1.0 => "end",
            _ => "middle",
        };
        view! {
            <line x1=fmt(layout.x_of(t)) x2=fmt(layout.x_of(t)) y1=fmt(top) y2=fmt(axis_bottom) class="chart-grid" />
            <text x=fmt(layout.x_of(t)) y=fmt(top - 6.0) text-anchor=anchor class="chart-tick">{percent(t)}</text>
        }
    });
    // The legend in one line, or two on a narrow screen.
    let (second_x, second_y) = if compact { (14.0, 34.0) } else { (284.0, 12.0) };
    let legend = view! {
        <g class="chart-legend">
            {before_mark(14.0, 12.0, tuned)}
            <text x="24" y="16">{if tuned { "model before tuning" } else { "model: P(female)" }}</text>
            {tuned.then(|| view! {
                {after_mark(174.0, 12.0)}
                <text x="184" y="16">"after tuning"</text>
            })}
            <rect x=fmt(second_x) y=fmt(second_y - 6.0) width="3" height="12" fill=GREEN />
            <text x=fmt(second_x + 8.0) y=fmt(second_y + 4.0)>"BLS 2024 share of women"</text>
            <line x1=fmt(second_x + 170.0) x2=fmt(second_x + 186.0) y1=fmt(second_y) y2=fmt(second_y)
                stroke="#555" stroke-dasharray="4 3" />
            <text x=fmt(second_x + 192.0) y=fmt(second_y + 4.0)>"50% (equal)"</text>
        </g>
    };
    view! {
        <svg id="probe-chart" class="chart" class:compact=compact role="img"
            aria-labelledby="probe-chart-title probe-chart-desc"
            viewBox=format!("0 0 {width} {height:.0}") width=width.to_string() height=format!("{height:.0}")
            xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">
            <title id="probe-chart-title">{format!("P(female) by profession: {}", result.model)}</title>
            <desc id="probe-chart-desc">{description}</desc>
            <style>{CHART_STYLE}</style>
            <rect x="0" y="0" width=width.to_string() height=format!("{height:.0}") fill="#ffffff" />
            {legend}
            {ticks}
            <line x1=fmt(x50) x2=fmt(x50) y1=fmt(top) y2=fmt(axis_bottom) stroke="#555" stroke-dasharray="4 3" />
            {items}
            <text x=fmt(layout.x_of(0.5)) y=fmt(height - 8.0) text-anchor="middle" class="chart-axis">
                "P(female): the model's share of female words for the profession"
            </text>
        </svg>
    }
}

fn point(
    row: ChartRow,
    y: f64,
    tuned: bool,
    layout: Layout,
    selected: RwSignal<Option<String>>,
) -> impl IntoView {
    let name = row.name.clone();
    let label = match row.p_female_after {
        Some(after) => format!(
            "{}: P(female) {} before, {} after tuning; BLS {}",
            row.name,
            percent(row.p_female),
            percent(after),
            percent(row.female_share)
        ),
        None => format!(
            "{}: P(female) {}; BLS {}",
            row.name,
            percent(row.p_female),
            percent(row.female_share)
        ),
    };
    let title = label.clone();
    let focus_name = name.clone();
    let hover_name = name.clone();
    let is_selected = {
        let name = name.clone();
        move || selected.get().as_deref() == Some(name.as_str())
    };
    let (x0, xs) = (layout.x_of(row.p_female), layout.x_of(row.female_share));
    let after = row.p_female_after.map(|a| layout.x_of(a));
    // In the compact layout the label stands above the dots.
    let dots = y - 4.0;
    let text = if layout.compact {
        view! {
            <text x=fmt(layout.track) y=fmt(y - 14.0) class="chart-label">
                {fit_label(&row.name, COMPACT_LABEL_CHARS)}</text>
        }
        .into_any()
    } else {
        view! {
            <text x=fmt(layout.track - 8.0) y=fmt(y) text-anchor="end" class="chart-label">
                {fit_label(&row.name, LABEL_CHARS)}</text>
        }
        .into_any()
    };
    view! {
        <g class="chart-row" class:selected=is_selected tabindex="0" role="listitem" aria-label=label.clone()
            data-profession=row.name.clone() data-p-female=format!("{}", row.p_female)
            data-p-female-after=row.p_female_after.map(|a| format!("{a}"))
            on:focus=move |_| selected.set(Some(focus_name.clone()))
            on:mouseenter=move |_| selected.set(Some(hover_name.clone()))>
            <title>{title}</title>
            <rect x="0" y=fmt(y - layout.row + 3.0) width=layout.width.to_string() height=fmt(layout.row) class="chart-row-bg" />
            {text}
            <rect x=fmt(xs - 1.5) y=fmt(dots - 6.0) width="3" height="12" fill=GREEN />
            {after.map(|xa| view! {
                <line x1=fmt(x0) x2=fmt(xa) y1=fmt(dots) y2=fmt(dots) stroke="#999" />
            })}
            {before_mark(x0, dots, tuned)}
            {after.map(|xa| after_mark(xa, dots))}
        </g>
    }
}

/// A series of a line chart.
#[derive(Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub colour: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// A small line chart with axes, a legend and a text alternative.
#[component]
pub fn LineChart(
    id: &'static str,
    title: String,
    x_label: &'static str,
    y_label: &'static str,
    series: Vec<Series>,
) -> impl IntoView {
    let (w, h, left, bottom, top, right) = (360.0, 220.0, 68.0, 36.0, 30.0, 12.0);
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (mut x_min, mut x_max) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let (mut y_min, mut y_max) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    if all.is_empty() {
        (x_min, x_max, y_min, y_max) = (0.0, 1.0, 0.0, 1.0);
    }
    if x_max - x_min < 1e-12 {
        x_max = x_min + 1.0;
    }
    if y_max - y_min < 1e-12 {
        let pad = y_max.abs().max(1e-6) * 0.1;
        y_min -= pad;
        y_max += pad;
    }
    let sx = move |x: f64| left + (x - x_min) / (x_max - x_min) * (w - left - right);
    let sy = move |y: f64| h - bottom - (y - y_min) / (y_max - y_min) * (h - bottom - top);
    let summary = series
        .iter()
        .map(|s| match (s.points.first(), s.points.last()) {
            (Some(a), Some(b)) => format!(
                "{}: {} points, from {:.5} to {:.5}",
                s.label,
                s.points.len(),
                a.1,
                b.1
            ),
            _ => format!("{}: no points yet", s.label),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let lines = series
        .iter()
        .map(|s| {
            let d: Vec<String> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            let single = (d.len() == 1).then(|| {
                let (x, y) = s.points[0];
                view! { <circle cx=fmt(sx(x)) cy=fmt(sy(y)) r="3" fill=s.colour /> }
            });
            view! {
                <polyline points=d.join(" ") fill="none" stroke=s.colour stroke-width="1.8" />
                {single}
            }
        })
        .collect_view();
    let legend = series
        .iter()
        .scan(8.0, |next, s| {
            // each entry as wide as its label (about 5.6 px a character at this size)
            let x = *next;
            *next += 28.0 + 5.6 * s.label.chars().count() as f64;
            Some((x, s))
        })
        .map(|(x, s)| {
            view! {
                <rect x=fmt(x) y="6" width="10" height="10" fill=s.colour />
                <text x=fmt(x + 14.0) y="15">{s.label.clone()}</text>
            }
        })
        .collect_view();
    let y_ticks = [0.0, 0.5, 1.0].map(|t| {
        let v = y_min + t * (y_max - y_min);
        view! {
            <text x=fmt(left - 4.0) y=fmt(sy(v) + 3.0) text-anchor="end">{walf_lab::view::plain_number(v)}</text>
            <line x1=fmt(left) x2=fmt(w - right) y1=fmt(sy(v)) y2=fmt(sy(v)) class="chart-grid" />
        }
    });
    view! {
        <svg id=id class="chart line-chart" role="img" viewBox=format!("0 0 {w} {h}") width=w.to_string()
            height=h.to_string() xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="10">
            <title>{title.clone()}</title>
            <desc>{summary}</desc>
            <style>{CHART_STYLE}</style>
            <rect x="0" y="0" width=w.to_string() height=h.to_string() fill="#ffffff" />
            {legend}
            {y_ticks}
            <line x1=fmt(left) x2=fmt(left) y1=fmt(top) y2=fmt(h - bottom) stroke="#333" />
            <line x1=fmt(left) x2=fmt(w - right) y1=fmt(h - bottom) y2=fmt(h - bottom) stroke="#333" />
            <text x=fmt(left) y=fmt(h - bottom + 12.0) text-anchor="middle">{format!("{x_min:.0}")}</text>
            <text x=fmt(w - right) y=fmt(h - bottom + 12.0) text-anchor="end">{format!("{x_max:.0}")}</text>
            <text x=fmt((left + w - right) / 2.0) y=fmt(h - 6.0) text-anchor="middle">{x_label}</text>
            <text x="10" y=fmt((top + h - bottom) / 2.0) text-anchor="middle"
                transform=format!("rotate(-90 10 {:.1})", (top + h - bottom) / 2.0)>{y_label}</text>
            {lines}
        </svg>
    }
}

pub fn group_colour(group: Group) -> &'static str {
    match group {
        Group::MaleDominated => BLUE,
        Group::Balanced => GREEN,
        Group::FemaleDominated => VERMILION,
    }
}
