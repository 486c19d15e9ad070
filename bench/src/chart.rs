//! A small SVG writer for the chart on the benchmarks page: throughput of each job and its peer
//! by object size on the left, peak RSS of our process by object size on the right.

use std::fmt::Write as _;

use crate::figures::{JobFigures, size_label};
use crate::jobs::Job;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 420.0;
const PANEL_WIDTH: f64 = 400.0;
const PANEL_HEIGHT: f64 = 280.0;
const TOP: f64 = 60.0;
const OURS_COLORS: [&str; 3] = ["#1f77b4", "#2ca02c", "#9467bd"];
const PEER_COLORS: [&str; 3] = ["#aec7e8", "#98df8a", "#c5b0d5"];

/// Renders the chart for `figures` as an SVG document.
pub fn render(figures: &[JobFigures]) -> String {
    let mut sizes: Vec<u64> = figures.iter().map(|figure| figure.size).collect();
    sizes.sort_unstable();
    sizes.dedup();

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);

    let throughput_bars: Vec<Vec<(f64, &str)>> = sizes
        .iter()
        .map(|&size| {
            let mut bars = Vec::new();
            for (index, job) in Job::ALL.into_iter().enumerate() {
                if let Some(figure) = find(figures, job, size) {
                    bars.push((figure.ours_mib_s, OURS_COLORS[index]));
                    bars.push((figure.peer_mib_s, PEER_COLORS[index]));
                }
            }
            bars
        })
        .collect();
    panel(
        &mut svg,
        60.0,
        "Throughput (MiB/s): ours dark, peer light",
        &sizes,
        &throughput_bars,
        None,
    );

    let rss_bars: Vec<Vec<(f64, &str)>> = sizes
        .iter()
        .map(|&size| {
            Job::ALL
                .into_iter()
                .enumerate()
                .filter_map(|(index, job)| {
                    find(figures, job, size).map(|figure| (figure.ours_rss_mib, OURS_COLORS[index]))
                })
                .collect()
        })
        .collect();
    panel(
        &mut svg,
        540.0,
        "Peak RSS of our process (MiB); line: 96 MiB",
        &sizes,
        &rss_bars,
        Some(96.0),
    );

    legend(&mut svg);
    svg.push_str("</svg>\n");
    svg
}

fn find(figures: &[JobFigures], job: Job, size: u64) -> Option<&JobFigures> {
    figures
        .iter()
        .find(|figure| figure.job == job && figure.size == size)
}

/// Draws one bar panel whose left edge is at `left`: one group of bars per size.
fn panel(
    svg: &mut String,
    left: f64,
    title: &str,
    sizes: &[u64],
    groups: &[Vec<(f64, &str)>],
    limit: Option<f64>,
) {
    let bottom = TOP + PANEL_HEIGHT;
    let largest = groups
        .iter()
        .flatten()
        .map(|(value, _)| *value)
        .chain(limit)
        .filter(|value| value.is_finite())
        .fold(1.0_f64, f64::max)
        * 1.1;
    let scale = PANEL_HEIGHT / largest;
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="{}" font-size="14">{title}</text>"#,
        TOP - 20.0
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{left}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="black"/>"#,
        left + PANEL_WIDTH
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{left}" y1="{TOP}" x2="{left}" y2="{bottom}" stroke="black"/>"#
    );
    for step in 0..=4 {
        let value = largest * f64::from(step) / 4.0;
        let y = bottom - value * scale;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{y}" text-anchor="end">{value:.0}</text>"#,
            left - 4.0
        );
    }

    let group_width = PANEL_WIDTH / sizes.len().max(1) as f64;
    for (group_index, (size, bars)) in sizes.iter().zip(groups).enumerate() {
        let group_left = left + group_width * group_index as f64;
        let bar_width = (group_width - 20.0) / bars.len().max(1) as f64;
        for (bar_index, (value, color)) in bars.iter().enumerate() {
            if !value.is_finite() {
                continue;
            }
            let height = value * scale;
            let x = group_left + 10.0 + bar_width * bar_index as f64;
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{height:.1}" fill="{color}"><title>{value:.1}</title></rect>"#,
                bottom - height,
                bar_width - 2.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            group_left + group_width / 2.0,
            bottom + 16.0,
            size_label(*size)
        );
    }
    if let Some(limit) = limit {
        let y = bottom - limit * scale;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#d62728" stroke-dasharray="6 4"/>"##,
            left + PANEL_WIDTH
        );
    }
}

fn legend(svg: &mut String) {
    let y = TOP + PANEL_HEIGHT + 50.0;
    for (index, job) in Job::ALL.into_iter().enumerate() {
        let x = 60.0 + 300.0 * index as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/>"#,
            y - 10.0,
            OURS_COLORS[index]
        );
        let _ = writeln!(
            svg,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{}"/>"#,
            x + 14.0,
            y - 10.0,
            PEER_COLORS[index]
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{y}">{} vs {}</text>"#,
            x + 32.0,
            job.title(),
            job.peer()
        );
    }
}
