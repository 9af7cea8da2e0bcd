//! The overview page: the last hours minute by minute (calls started,
//! calls in progress, turn-latency p50/p95, the ASR queue, CRM lookup
//! errors) as SVG charts drawn on the server from the console's ring of
//! samples ([`super::samples`]), and the figures of this moment.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup, PreEscaped};

use super::auth::Identity;
use super::chart::{line_chart, Series};
use super::pages::layout;
use super::routes::html;
use super::samples::{Minute, KEEP_MINUTES};
use super::{Auth, Console};

/// What is true now, beside the charts.
#[derive(Debug, Clone, Default)]
pub struct Now {
    pub calls_active: u64,
    pub calls_started: u64,
    pub turns: u64,
    pub asr_queued: Option<u64>,
    pub crm_errors: Option<u64>,
}

pub async fn page(State(console): State<Arc<Console>>, auth: Auth) -> Response {
    let m = &console.metrics;
    let now = Now {
        calls_active: m.calls_active.load(Ordering::Relaxed),
        calls_started: m.calls_started.load(Ordering::Relaxed),
        turns: m.turns_measured(),
        asr_queued: console.speech.get().map(|s| s.queued() as u64),
        crm_errors: console.crm.as_ref().map(|c| c.lookup_failures()),
    };
    html(render(
        &auth.identity,
        auth.csrf_field(),
        &now,
        &console.minutes(),
    ))
}

/// The charts' SVG, each by its element id.
pub fn charts(minutes: &[Minute]) -> Vec<String> {
    let at: Vec<i64> = minutes.iter().map(|m| m.minute).collect();
    let of = |f: &dyn Fn(&Minute) -> Option<f64>| minutes.iter().map(f).collect::<Vec<_>>();
    vec![
        line_chart(
            "chart-calls",
            "Calls started per minute",
            "calls/min",
            &at,
            &[Series {
                name: "calls",
                colour: "#0969da",
                values: of(&|m| Some(m.calls as f64)),
            }],
        ),
        line_chart(
            "chart-active",
            "Calls in progress (highest each minute)",
            "calls",
            &at,
            &[Series {
                name: "active",
                colour: "#1a7f37",
                values: of(&|m| Some(m.active as f64)),
            }],
        ),
        line_chart(
            "chart-latency",
            "Turn latency",
            "ms",
            &at,
            &[
                Series {
                    name: "p50",
                    colour: "#0969da",
                    values: of(&|m| m.turn_p50_ms),
                },
                Series {
                    name: "p95",
                    colour: "#cf222e",
                    values: of(&|m| m.turn_p95_ms),
                },
            ],
        ),
        line_chart(
            "chart-asr",
            "ASR queue (longest each minute)",
            "utterances",
            &at,
            &[Series {
                name: "queued",
                colour: "#8250df",
                values: of(&|m| Some(m.asr_queue as f64)),
            }],
        ),
        line_chart(
            "chart-crm",
            "CRM lookup errors per minute",
            "errors/min",
            &at,
            &[Series {
                name: "errors",
                colour: "#bc4c00",
                values: of(&|m| Some(m.crm_errors as f64)),
            }],
        ),
    ]
}

pub fn render(who: &Identity, csrf: &str, now: &Now, minutes: &[Minute]) -> Markup {
    let opt = |v: Option<u64>| v.map_or("—".to_string(), |v| v.to_string());
    layout(
        "Overview",
        Some((who, csrf)),
        html! {
            h1 { "Overview" }
            dl.facts #overview data-minutes=(minutes.len()) {
                dt { "Calls in progress" } dd.active { (now.calls_active) }
                dt { "Calls since start" } dd.started { (now.calls_started) }
                dt { "Turns measured" } dd { (now.turns) }
                dt { "ASR queue" } dd { (opt(now.asr_queued)) }
                dt { "CRM lookup errors" } dd { (opt(now.crm_errors)) }
            }
            p.hint {
                "One point per finished minute, the last " (KEEP_MINUTES / 60) " hours, kept in memory (a restart starts afresh; "
                code { "/metrics" } " has the counters for Prometheus). The page reloads every minute."
            }
            div.charts {
                @for svg in charts(minutes) {
                    // Drawn by chart.rs from numbers and escaped text.
                    figure.chart-box { (PreEscaped(svg)) }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsoleRole;

    #[test]
    fn the_page_has_five_charts_with_the_minutes() {
        let minutes: Vec<Minute> = (0..30)
            .map(|i| Minute {
                minute: 29_000_000 + i,
                calls: (i % 7) as u64,
                active: 3,
                turn_p50_ms: (i % 5 != 0).then_some(180.0),
                turn_p95_ms: (i % 5 != 0).then_some(420.0),
                asr_queue: 1,
                crm_errors: u64::from(i == 12),
            })
            .collect();
        let who = Identity {
            name: "v".into(),
            role: ConsoleRole::Viewer,
        };
        let page = render(&who, "t", &Now::default(), &minutes).into_string();
        for id in [
            "chart-calls",
            "chart-active",
            "chart-latency",
            "chart-asr",
            "chart-crm",
        ] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(page.contains("data-minutes=\"30\""));
        // Latency has gaps where no turn ended: several runs per series.
        let latency = &charts(&minutes)[2];
        assert!(latency.matches("<polyline").count() >= 4, "{latency}");
        assert!(latency.contains("data-series=\"p95\""));
    }
}
