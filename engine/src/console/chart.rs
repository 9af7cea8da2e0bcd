//! Small SVG line charts for the overview, drawn on the server: a time
//! axis over the kept minutes, a y axis from 0 to a round maximum, one
//! polyline per series. Presentation attributes only (no `style`), so the
//! console's Content-Security-Policy needs no exception.

use std::fmt::Write as _;

use super::pages::when;

const W: f64 = 560.0;
const H: f64 = 170.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 26.0;

/// One line: a name for the legend, a colour, a value per minute (None:
/// nothing measured that minute, a gap in the line).
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub values: Vec<Option<f64>>,
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `v` (at least 1).
pub fn round_max(v: f64) -> f64 {
    if !v.is_finite() || v <= 1.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|m| *m >= v)
        .unwrap_or(10.0 * mag)
}

/// Escape text for SVG/XML.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A chart of `series` over the minutes `minutes` (minutes since the
/// epoch, oldest first, one value per series each). `id` names the
/// element for tests and links; `unit` follows the y maximum.
pub fn line_chart(id: &str, title: &str, unit: &str, minutes: &[i64], series: &[Series]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" id="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        id = xml(id),
        t = xml(title)
    );
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let _ = write!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="#ffffff" stroke="#d0d7de"/>"##,
        x1 - x0,
        y1 - y0
    );
    let max = series
        .iter()
        .flat_map(|se| se.values.iter().flatten())
        .fold(0.0f64, |a, b| a.max(*b));
    let top = round_max(max);
    // Grid lines and their values at 0, ½ and the top.
    for frac in [0.0, 0.5, 1.0] {
        let y = y1 - (y1 - y0) * frac;
        let v = top * frac;
        let label = if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        };
        let _ = write!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eaeef2"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#57606a">{}</text>"##,
            x0 - 4.0,
            y + 3.0,
            xml(&label)
        );
    }
    let _ = write!(
        s,
        r##"<text x="{x0}" y="{:.1}" font-size="10" fill="#57606a">{}</text>"##,
        y0 - 2.0,
        xml(unit)
    );
    match (minutes.first(), minutes.last()) {
        (Some(first), Some(last)) => {
            for (x, m, anchor) in [(x0, first, "start"), (x1, last, "end")] {
                let _ = write!(
                    s,
                    r##"<text x="{x}" y="{:.1}" font-size="10" text-anchor="{anchor}" fill="#57606a">{}</text>"##,
                    H - 8.0,
                    xml(&when(m * 60_000))
                );
            }
        }
        _ => {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#57606a">no minute finished yet</text>"##,
                (x0 + x1) / 2.0,
                (y0 + y1) / 2.0
            );
        }
    }
    // x by minute, so a gap in the samples (the process was stopped) shows.
    let span = match (minutes.first(), minutes.last()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64,
        _ => 1.0,
    };
    let first = minutes.first().copied().unwrap_or(0);
    let xy = |m: i64, v: f64| {
        let x = if minutes.len() == 1 {
            (x0 + x1) / 2.0
        } else {
            x0 + (x1 - x0) * ((m - first) as f64 / span)
        };
        (x, y1 - (y1 - y0) * (v / top).clamp(0.0, 1.0))
    };
    for se in series {
        // Runs of measured minutes, each a polyline; a lone point a dot.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (m, v) in minutes.iter().zip(&se.values) {
            match v {
                Some(v) => {
                    if let Some(r) = runs.last_mut() {
                        r.push(xy(*m, *v));
                    }
                }
                None => runs.push(Vec::new()),
            }
        }
        let _ = write!(s, r#"<g class="series" data-series="{}">"#, xml(se.name));
        for run in runs.iter().filter(|r| !r.is_empty()) {
            if run.len() == 1 {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"/>"#,
                    run[0].0,
                    run[0].1,
                    xml(se.colour)
                );
            } else {
                let points: Vec<String> =
                    run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(
                    s,
                    r#"<polyline fill="none" stroke="{}" stroke-width="1.8" points="{}"/>"#,
                    xml(se.colour),
                    points.join(" ")
                );
            }
        }
        s.push_str("</g>");
    }
    // Legend, right-aligned at the top.
    let mut x = x1 - 6.0;
    for se in series.iter().rev() {
        let width = 10.0 + 6.5 * se.name.chars().count() as f64;
        x -= width;
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="8" height="8" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#24292f">{}</text>"##,
            y0 + 6.0,
            xml(se.colour),
            x + 11.0,
            y0 + 13.5,
            xml(se.name)
        );
        x -= 8.0;
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_maxima() {
        assert_eq!(round_max(0.0), 1.0);
        assert_eq!(round_max(3.0), 5.0);
        assert_eq!(round_max(7.0), 10.0);
        assert_eq!(round_max(120.0), 200.0);
        assert_eq!(round_max(f64::NAN), 1.0);
    }

    #[test]
    fn a_chart_has_its_lines_gaps_and_escaped_names() {
        let svg = line_chart(
            "c<1>",
            "Turns & more",
            "ms",
            &[10, 11, 12, 13],
            &[Series {
                name: "p<95>",
                colour: "#cf222e",
                values: vec![Some(100.0), Some(200.0), None, Some(50.0)],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("id=\"c&lt;1&gt;\""));
        assert!(svg.contains("Turns &amp; more"));
        assert!(svg.contains("data-series=\"p&lt;95&gt;\""));
        // Two runs: a line of two minutes, then a dot after the gap.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(!svg.contains("style="), "no inline styles (CSP)");
        // The y axis tops at a round 200.
        assert!(svg.contains(">200<"), "{svg}");
    }

    #[test]
    fn an_empty_chart_says_so() {
        let svg = line_chart("e", "Empty", "", &[], &[]);
        assert!(svg.contains("no minute finished yet"));
    }
}
