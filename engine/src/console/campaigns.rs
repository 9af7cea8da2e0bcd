//! The campaigns page: each campaign's progress, its contacts and attempts
//! by disposition, what is due next and why nothing starts, with pause and
//! resume for operators. Everything comes from the engine's campaign
//! manager ([`Manager::list`], [`Manager::control`]), the same calls as
//! the JSON admin routes (`GET /campaigns`, `POST /campaigns/{name}/pause`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::auth::Identity;
use super::pages::{encode, layout};
use super::routes::{form_body, html, no_csrf, not_allowed, refused, see_other};
use super::{Auth, Console};
use crate::campaign::manager::{Manager, ManagerError, StatusView};
use crate::campaign::runner::Control;

/// What the last action asked for (a fixed word, never echoed input).
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    #[serde(default)]
    done: Option<String>,
}

impl Notice {
    fn text(&self) -> Option<&'static str> {
        match self.done.as_deref()? {
            "pause" => Some("Pause requested: no new call starts; calls in progress finish."),
            "resume" => Some("Resume requested."),
            _ => None,
        }
    }
}

/// Read off the async threads: the manager reads SQLite.
async fn list(m: Arc<Manager>) -> Result<Vec<StatusView>, String> {
    tokio::task::spawn_blocking(move || m.list().map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

pub async fn page(
    State(console): State<Arc<Console>>,
    auth: Auth,
    Query(notice): Query<Notice>,
) -> Response {
    let Some(m) = console.campaigns.clone() else {
        return html(render(&auth.identity, auth.csrf_field(), &[], &notice));
    };
    match list(m).await {
        Ok(all) => html(render(&auth.identity, auth.csrf_field(), &all, &notice)),
        Err(e) => {
            tracing::warn!(error = %e, "console campaigns: unreadable");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "Campaigns unavailable",
                "The campaign store cannot be read right now.",
            )
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /console/campaigns/{name}/pause|resume`.
pub async fn act(
    State(console): State<Arc<Console>>,
    auth: Auth,
    Path((name, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: CsrfOnly = form_body(&headers, &body).unwrap_or_default();
    if !auth.csrf_ok(form.csrf.as_deref(), &headers) {
        return no_csrf();
    }
    if !auth.may_act() {
        tracing::warn!(user = %auth.identity.name, action = %action, "console campaign action refused: not an operator");
        return not_allowed();
    }
    let c = match action.as_str() {
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        _ => {
            return refused(
                StatusCode::NOT_FOUND,
                "No such action",
                "Use pause or resume.",
            )
        }
    };
    let Some(m) = &console.campaigns else {
        return refused(
            StatusCode::NOT_FOUND,
            "No campaigns",
            "This engine runs no campaigns.",
        );
    };
    match m.control(&name, c) {
        Ok(()) => {
            tracing::info!(user = %auth.identity.name, campaign = %name, action = %action, "console campaign action");
            see_other(&format!("/console/campaigns?done={action}"))
        }
        Err(e) => {
            let status = match e {
                ManagerError::Unknown(_) => StatusCode::NOT_FOUND,
                ManagerError::BadState { .. } | ManagerError::Running(_) => StatusCode::CONFLICT,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            refused(status, "Not done", &e.to_string())
        }
    }
}

/// Finished contacts over all contacts, 0–100.
fn percent(c: &StatusView) -> u64 {
    let done: usize = c.finished.values().sum();
    if c.contacts == 0 {
        return 100;
    }
    (done as u64 * 100) / c.contacts as u64
}

fn button(csrf: &str, name: &str, action: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(format!("/console/campaigns/{}/{action}", encode(name))) {
            input type="hidden" name="csrf" value=(csrf);
            button class=(action) type="submit" { (label) }
        }
    }
}

pub fn render(who: &Identity, csrf: &str, campaigns: &[StatusView], notice: &Notice) -> Markup {
    let acts = who.role >= crate::config::ConsoleRole::Operator;
    layout(
        "Campaigns",
        Some((who, csrf)),
        html! {
            h1 { "Campaigns" }
            @if let Some(t) = notice.text() { p.notice #notice { (t) } }
            @if campaigns.is_empty() {
                p.empty { "No campaign has run on this engine. Start one with " code { "voxbridge campaign start FILE" } "." }
            }
            @for c in campaigns {
                section.campaign data-campaign=(c.name) data-state=(c.state) {
                    h2 { (c.name) " " span class=(format!("state state-{}", c.state)) { (c.state) } }
                    @if acts {
                        div.actions {
                            @if c.state == "running" { (button(csrf, &c.name, "pause", "Pause")) }
                            @if c.state == "paused" { (button(csrf, &c.name, "resume", "Resume")) }
                        }
                    }
                    @let done: usize = c.finished.values().sum();
                    p.progress {
                        progress max="100" value=(percent(c)) {}
                        " " span.done { (done) " of " (c.contacts) " contacts finished" }
                        " · " (c.in_flight) " calling · " (c.waiting) " waiting · " (c.attempts) " attempts"
                    }
                    div.columns {
                        table.totals.finished {
                            caption { "Contacts by disposition" }
                            tbody {
                                @if c.finished.is_empty() { tr.empty { td colspan="2" { "none yet" } } }
                                @for (d, n) in &c.finished { tr { th { (d) } td { (n) } } }
                            }
                        }
                        table.totals.outcomes {
                            caption { "Attempts by outcome" }
                            tbody {
                                @if c.outcomes.is_empty() { tr.empty { td colspan="2" { "none yet" } } }
                                @for (d, n) in &c.outcomes { tr { th { (d) } td { (n) } } }
                            }
                        }
                        table.totals.due {
                            caption { "Due next (UTC)" }
                            tbody {
                                @if c.due.is_empty() { tr.empty { td colspan="2" { "nothing due" } } }
                                @for (at, n) in &c.due { tr { th { (at) } td { (n) } } }
                            }
                        }
                    }
                    @if let Some(b) = c.blocked { p.blocked { "Held back by " (b) "." } }
                    p.hint { "File: " code { (c.file.display().to_string()) } }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsoleRole;
    use std::collections::BTreeMap;

    fn view(state: &'static str) -> StatusView {
        StatusView {
            name: "spring <follow-up>".into(),
            file: "campaigns/spring.yaml".into(),
            state,
            contacts: 4,
            in_flight: 1,
            waiting: 1,
            finished: BTreeMap::from([("answered", 1), ("no_answer", 1)]),
            attempts: 3,
            outcomes: BTreeMap::from([("answered", 1), ("no_answer", 2)]),
            due: vec![("2026-12-02T10:00:00Z".into(), 1)],
            blocked: Some("max_concurrent"),
        }
    }

    fn who(role: ConsoleRole) -> Identity {
        Identity {
            name: "x".into(),
            role,
        }
    }

    #[test]
    fn a_campaign_shows_progress_totals_and_what_is_due() {
        let page = render(
            &who(ConsoleRole::Operator),
            "t",
            &[view("running")],
            &Notice::default(),
        )
        .into_string();
        assert!(page.contains("2 of 4 contacts finished"), "{page}");
        assert!(page.contains("value=\"50\""));
        assert!(page.contains("<th>no_answer</th><td>2</td>"), "{page}");
        assert!(page.contains("2026-12-02T10:00:00Z"));
        assert!(page.contains("Held back by max_concurrent"));
        assert!(page.contains("spring &lt;follow-up&gt;"));
        // The button's URL encodes the name; a running campaign pauses.
        assert!(
            page.contains("/console/campaigns/spring%20%3Cfollow-up%3E/pause"),
            "{page}"
        );
        assert!(!page.contains("/resume"));
        let paused = render(
            &who(ConsoleRole::Operator),
            "t",
            &[view("paused")],
            &Notice::default(),
        )
        .into_string();
        assert!(paused.contains("/resume") && !paused.contains("/pause\""));
    }

    #[test]
    fn viewers_get_no_buttons() {
        let page = render(
            &who(ConsoleRole::Viewer),
            "t",
            &[view("running")],
            &Notice::default(),
        )
        .into_string();
        assert!(!page.contains("/pause"));
        assert!(page.contains("2 of 4"));
    }

    #[test]
    fn nothing_to_show() {
        let page = render(&who(ConsoleRole::Viewer), "t", &[], &Notice::default()).into_string();
        assert!(page.contains("No campaign has run"));
        assert_eq!(
            Notice {
                done: Some("x".into())
            }
            .text(),
            None
        );
    }
}
