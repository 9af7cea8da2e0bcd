//! The outbox page: the CRM writes not yet delivered (pending) and those
//! that gave up (dead letters), each with its last error; operators retry
//! or purge them. The engine's own outbox does the work
//! ([`voxbridge_crm::outbox::Outbox::list`], `retry`, `purge`: the same
//! statements as `voxbridge outbox list|retry|purge`). Errors and ordering
//! keys come masked from the outbox itself, for every reader.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;
use voxbridge_crm::outbox::admin::{Entry, ListFilter, Selection};
use voxbridge_crm::outbox::{Counts, RecordState};

use super::auth::Identity;
use super::pages::{layout, when};
use super::routes::{form_body, html, no_csrf, not_allowed, refused, see_other};
use super::{Auth, Console};

/// Records shown per state, newest first.
const SHOWN: usize = 200;

/// What the last action did, carried on the redirect (numbers and a fixed
/// word only: nothing from the request is echoed).
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    n: Option<usize>,
}

impl Notice {
    fn text(&self) -> Option<String> {
        let n = self.n?;
        match self.done.as_deref()? {
            "retry" => Some(format!("{n} record(s) due again.")),
            "purge" => Some(format!("{n} record(s) deleted.")),
            _ => None,
        }
    }
}

pub async fn page(
    State(console): State<Arc<Console>>,
    auth: Auth,
    Query(notice): Query<Notice>,
) -> Response {
    let Some(crm) = &console.crm else {
        return html(render(&auth.identity, auth.csrf_field(), None, &notice));
    };
    let outbox = crm.outbox();
    let read = async {
        let counts = outbox.counts().await?;
        let mut rows = outbox
            .list(ListFilter {
                state: Some(RecordState::Dead),
                limit: SHOWN,
            })
            .await?;
        rows.extend(
            outbox
                .list(ListFilter {
                    state: Some(RecordState::Pending),
                    limit: SHOWN,
                })
                .await?,
        );
        Ok::<_, voxbridge_crm::outbox::OutboxError>((counts, rows))
    };
    match read.await {
        Ok((counts, rows)) => html(render(
            &auth.identity,
            auth.csrf_field(),
            Some((&counts, &rows)),
            &notice,
        )),
        Err(e) => {
            tracing::warn!(error = %e, "console outbox: unreadable");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "Outbox unavailable",
                "The outbox cannot be read right now.",
            )
        }
    }
}

/// A retry or purge form.
#[derive(Debug, Default, Deserialize)]
struct ActForm {
    #[serde(default)]
    csrf: Option<String>,
    /// One record.
    #[serde(default)]
    id: Option<i64>,
    /// `dead` (every dead letter) or, for purge, `delivered`.
    #[serde(default)]
    all: Option<String>,
}

/// Which records a form names, or None for a form that names none.
fn selection(action: &str, form: &ActForm) -> Option<Selection> {
    match (action, form.id, form.all.as_deref()) {
        (_, Some(id), None) => Some(Selection::Ids(vec![id])),
        (_, None, Some("dead")) => Some(Selection::AllDead),
        ("purge", None, Some("delivered")) => Some(Selection::AllDelivered),
        _ => None,
    }
}

/// `POST /console/outbox/retry|purge`: CSRF token, then the role, then
/// the outbox.
pub async fn act(
    State(console): State<Arc<Console>>,
    auth: Auth,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: ActForm = form_body(&headers, &body).unwrap_or_default();
    if !auth.csrf_ok(form.csrf.as_deref(), &headers) {
        return no_csrf();
    }
    if !auth.may_act() {
        tracing::warn!(user = %auth.identity.name, action = %action, "console outbox action refused: not an operator");
        return not_allowed();
    }
    if action != "retry" && action != "purge" {
        return refused(
            StatusCode::NOT_FOUND,
            "No such action",
            "Use retry or purge.",
        );
    }
    let Some(which) = selection(&action, &form) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "Nothing selected",
            "Name a record (id) or all=dead.",
        );
    };
    let Some(crm) = &console.crm else {
        return refused(
            StatusCode::NOT_FOUND,
            "No outbox",
            "This engine has no CRM configured.",
        );
    };
    let outbox = crm.outbox();
    let done = if action == "retry" {
        outbox.retry(which.clone()).await
    } else {
        outbox.purge(which.clone()).await
    };
    match done {
        Ok(n) => {
            tracing::info!(user = %auth.identity.name, action = %action, selection = ?which, changed = n, "console outbox action");
            see_other(&format!("/console/outbox?done={action}&n={n}"))
        }
        Err(e) => {
            tracing::warn!(error = %e, action = %action, "console outbox action failed");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "Outbox unavailable",
                "The outbox refused the change; try again.",
            )
        }
    }
}

fn action_form(csrf: &str, action: &str, field: (&str, &str), label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(format!("/console/outbox/{action}")) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name=(field.0) value=(field.1);
            button class=(class) type="submit" { (label) }
        }
    }
}

/// The page: counts, then the dead letters and the pending records.
/// `outbox` is None when the engine has no CRM.
pub fn render(
    who: &Identity,
    csrf: &str,
    outbox: Option<(&Counts, &[Entry])>,
    notice: &Notice,
) -> Markup {
    let acts = who.role >= crate::config::ConsoleRole::Operator;
    layout(
        "Outbox",
        Some((who, csrf)),
        html! {
            h1 { "Outbox" }
            @if let Some(t) = notice.text() { p.notice #notice { (t) } }
            @match outbox {
                None => p.empty { "This engine has no CRM (crm.config), so no outbox." },
                Some((counts, rows)) => {
                    dl.facts #outbox-counts {
                        dt { "Pending" } dd.pending { (counts.pending) }
                        dt { "Dead letters" } dd.dead { (counts.dead) }
                        dt { "Delivered" } dd.delivered { (counts.delivered) }
                    }
                    @if acts && counts.dead > 0 {
                        div.actions {
                            (action_form(csrf, "retry", ("all", "dead"), "Retry every dead letter", "retry-all"))
                            (action_form(csrf, "purge", ("all", "dead"), "Purge every dead letter", "purge-all danger"))
                        }
                    }
                    @if acts && counts.delivered > 0 {
                        div.actions {
                            (action_form(csrf, "purge", ("all", "delivered"), "Purge delivered records", "purge-delivered"))
                        }
                    }
                    table.calls #outbox-rows {
                        thead { tr {
                            th { "#" } th { "State" } th { "Kind" } th { "System" } th { "Attempts" }
                            th { "Written" } th { "Next try" } th { "Customer" } th { "Last error" }
                            @if acts { th { "" } }
                        } }
                        tbody {
                            @if rows.is_empty() { tr.empty { td colspan="10" { "Nothing waiting: every write was delivered." } } }
                            @for e in rows {
                                tr.record data-id=(e.id) data-state=(e.state.as_str()) {
                                    td { (e.id) }
                                    td.state { (e.state.as_str()) }
                                    td { (e.kind) }
                                    td { (e.system.as_deref().unwrap_or("—")) }
                                    td { (e.attempts) }
                                    td { (when(e.created_at)) }
                                    td { @if e.state == RecordState::Pending { (when(e.next_attempt_at)) } @else { "—" } }
                                    td.order-key { (e.order_key) }
                                    td.error { (e.last_error.as_deref().unwrap_or("—")) }
                                    @if acts {
                                        td.buttons {
                                            (action_form(csrf, "retry", ("id", &e.id.to_string()), "Retry", "retry"))
                                            @if e.state == RecordState::Dead {
                                                (action_form(csrf, "purge", ("id", &e.id.to_string()), "Purge", "purge danger"))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p.hint { "Numbers and addresses in errors are masked. A retry makes a record due now with a fresh attempt count; purge deletes dead letters (pending records are never purged)." }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsoleRole;

    fn who(role: ConsoleRole) -> Identity {
        Identity {
            name: "x".into(),
            role,
        }
    }

    fn dead() -> Entry {
        Entry {
            id: 7,
            key: "vb-1".into(),
            kind: "call_log".into(),
            system: Some("crm".into()),
            state: RecordState::Dead,
            attempts: 5,
            created_at: 0,
            next_attempt_at: 0,
            delivered_at: None,
            remote_id: None,
            last_error: Some("HTTP 500 for +*********8000 <b>".into()),
            order_key: "phone:+*********8000".into(),
        }
    }

    #[test]
    fn operators_get_buttons_viewers_only_the_rows() {
        let counts = Counts {
            pending: 0,
            delivered: 0,
            dead: 1,
        };
        let rows = [dead()];
        let op = render(
            &who(ConsoleRole::Operator),
            "tok",
            Some((&counts, &rows)),
            &Notice::default(),
        )
        .into_string();
        assert!(op.contains("data-id=\"7\"") && op.contains("data-state=\"dead\""));
        assert!(op.contains("class=\"retry\"") && op.contains("class=\"purge danger\""));
        assert!(op.contains("name=\"csrf\" value=\"tok\""));
        // Escaped, and masked as the outbox gave it.
        assert!(op.contains("+*********8000 &lt;b&gt;"), "{op}");
        let viewer = render(
            &who(ConsoleRole::Viewer),
            "tok",
            Some((&counts, &rows)),
            &Notice::default(),
        )
        .into_string();
        assert!(viewer.contains("data-id=\"7\""));
        assert!(!viewer.contains("class=\"retry\"") && !viewer.contains("/console/outbox/"));
    }

    #[test]
    fn no_crm_no_outbox() {
        let page = render(&who(ConsoleRole::Admin), "t", None, &Notice::default()).into_string();
        assert!(page.contains("no outbox"));
    }

    #[test]
    fn forms_select_records_and_notices_echo_nothing() {
        let by_id = ActForm {
            id: Some(3),
            ..Default::default()
        };
        assert_eq!(selection("retry", &by_id), Some(Selection::Ids(vec![3])));
        let all = |s: &str| ActForm {
            all: Some(s.into()),
            ..Default::default()
        };
        assert_eq!(selection("retry", &all("dead")), Some(Selection::AllDead));
        assert_eq!(selection("retry", &all("delivered")), None);
        assert_eq!(
            selection("purge", &all("delivered")),
            Some(Selection::AllDelivered)
        );
        assert_eq!(selection("purge", &ActForm::default()), None);
        let n = Notice {
            done: Some("<script>".into()),
            n: Some(1),
        };
        assert_eq!(n.text(), None);
        let n = Notice {
            done: Some("retry".into()),
            n: Some(2),
        };
        assert_eq!(n.text().as_deref(), Some("2 record(s) due again."));
    }
}
