//! The console's HTML, rendered on the server with `maud` (escaped by
//! construction). Numbers pass through [`shown_number`], which masks them
//! for viewers.

use maud::{html, Markup, DOCTYPE};

use super::auth::Identity;
use super::history::{Row, Search};
use crate::cdr::CallRecord;
use crate::live_calls::CallView;
use crate::pii::mask_uri;

/// A URI as this reader may see it: masked for viewers, without `<>` and
/// parameters for everyone.
pub fn shown_number(who: &Identity, uri: &str) -> String {
    let uri = uri.trim().trim_start_matches('<');
    let uri = uri.split(['>', ';', '?']).next().unwrap_or(uri);
    if who.sees_numbers() {
        uri.to_string()
    } else {
        mask_uri(uri)
    }
}

/// `m:ss` (or `h:mm:ss`) for a span in milliseconds.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A Unix-millisecond instant as `2026-12-02 08:30:05 UTC`.
pub fn when(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| "?".to_string())
}

/// The page around every console view.
pub(super) fn layout(title: &str, who: Option<(&Identity, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · voxbridge" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                header {
                    span.brand { "voxbridge" }
                    @if let Some((who, csrf)) = who {
                        nav {
                            a href="/console/overview" { "Overview" }
                            a href="/console/live" { "Live calls" }
                            a href="/console/history" { "History" }
                            a href="/console/agent" { "Agent" }
                            a href="/console/outbox" { "Outbox" }
                            a href="/console/campaigns" { "Campaigns" }
                            a href="/console/scripts" { "Scripts" }
                        }
                        form.logout method="post" action="/console/logout" {
                            span.who { (who.name) " (" (format!("{:?}", who.role).to_lowercase()) ")" }
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
                script src="/console/assets/console.js" {}
            }
        }
    }
}

pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        html! {
            h1 { "Log in" }
            @if let Some(e) = error { p.error #login-error { (e) } }
            form #login method="post" action="/console/login" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Name " input #name type="text" name="name" autocomplete="username"; }
                label { "Password " input #password type="password" name="password" autocomplete="current-password"; }
                button #submit type="submit" { "Log in" }
            }
        },
    )
}

/// The rows of the live table (also sent alone on each change).
pub fn live_rows(who: &Identity, calls: &[CallView]) -> Markup {
    html! {
        @if calls.is_empty() {
            tr.empty { td colspan="7" { "No call in progress." } }
        }
        @for c in calls {
            tr.call data-call=(c.call_id) {
                td { a href=(call_href(&c.call_id)) { (c.call_id) } }
                td.direction { (c.direction) }
                td.number { (shown_number(who, &c.party)) }
                td.customer { (c.customer.as_deref().unwrap_or("—")) }
                td.state { (c.state) }
                td.duration data-started=(c.started_ms) { }
                td.heard { (c.last_heard().unwrap_or("—")) }
            }
        }
    }
}

pub fn live(who: &Identity, csrf: &str, calls: &[CallView]) -> Markup {
    layout(
        "Live calls",
        Some((who, csrf)),
        html! {
            h1 { "Live calls" }
            table.calls {
                thead { tr {
                    th { "Call" } th { "Direction" } th { "Number" } th { "Customer" }
                    th { "State" } th { "Duration" } th { "Last heard" }
                } }
                tbody #live-rows { (live_rows(who, calls)) }
            }
        },
    )
}

fn call_href(call_id: &str) -> String {
    format!("/console/calls/{}", encode(call_id))
}

/// Percent-encode a path segment (Call-IDs may hold `@` and more).
pub fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A call's transcript lines (also sent alone on each change).
pub fn lines(view: Option<&CallView>) -> Markup {
    html! {
        @match view {
            Some(v) => {
                p.status { "Call " span #call-state { (v.state) } }
                ol.transcript {
                    @for l in &v.transcript {
                        li class=(l.speaker) { span.speaker { (l.speaker) } " " span.text { (l.text) } }
                    }
                }
            }
            None => p.status { "The transcript is no longer in memory." }
        }
    }
}

pub fn call(
    who: &Identity,
    csrf: &str,
    call_id: &str,
    view: Option<&CallView>,
    record: Option<&CallRecord>,
) -> Markup {
    let party = view
        .map(|v| v.party.clone())
        .or_else(|| record.map(|r| r.from.clone()));
    layout(
        "Call",
        Some((who, csrf)),
        html! {
            h1 { "Call " code { (call_id) } }
            dl.facts {
                @if let Some(p) = &party { dt { "Number" } dd.number { (shown_number(who, p)) } }
                @if let Some(v) = view {
                    dt { "Direction" } dd { (v.direction) }
                    dt { "Customer" } dd.customer { (v.customer.as_deref().unwrap_or("—")) }
                    dt { "Started" } dd { (when(v.started_ms as i64)) }
                }
                @if let Some(r) = record {
                    dt { "Duration" } dd { (clock(r.duration().as_millis() as u64)) }
                    dt { "End reason" } dd.reason { (r.end_reason) }
                    @if let Some(t) = &r.transfer_target { dt { "Transferred to" } dd { (shown_number(who, t)) } }
                    @if !r.dtmf.is_empty() { dt { "Keys" } dd { (r.dtmf) } }
                }
            }
            h2 { "Transcript" }
            div #lines data-call=(call_id) { (lines(view)) }
            @if let Some(r) = record {
                @if !r.turns.is_empty() {
                    h2 { "Turn latencies (ms)" }
                    table.turns {
                        thead { tr { th { "#" } th { "kind" } th { "total" } th { "endpointing" } th { "ASR" } th { "intent" } th { "dialog" } th { "lookup" } th { "TTS" } } }
                        tbody { @for (i, t) in r.turns.iter().enumerate() {
                            tr {
                                td { (i + 1) } td { (format!("{:?}", t.kind).to_lowercase()) }
                                td { (format!("{:.0}", t.total_ms)) } td { (format!("{:.0}", t.endpointing_ms)) }
                                td { (format!("{:.0}", t.asr_ms)) } td { (format!("{:.1}", t.intent_ms)) }
                                td { (format!("{:.1}", t.dialog_ms)) } td { (format!("{:.0}", t.lookup_ms)) }
                                td { (format!("{:.0}", t.tts_ms)) }
                            }
                        } }
                    }
                }
                @if r.recording.is_some() {
                    h2 { "Recording" }
                    audio #recording controls preload="metadata" src=(format!("{}/recording", call_href(call_id))) {}
                }
            }
        },
    )
}

pub fn history(
    who: &Identity,
    csrf: &str,
    search: &Search,
    reasons: &[String],
    rows: &[(Row, Option<String>)],
) -> Markup {
    layout(
        "History",
        Some((who, csrf)),
        html! {
            h1 { "History" }
            form.search #search method="get" action="/console/history" {
                label { "From " input type="datetime-local" name="from" value=(search.from); }
                label { "To " input type="datetime-local" name="to" value=(search.to); }
                label { "Number " input type="search" name="number" value=(search.number); }
                label { "Customer " input type="search" name="customer" value=(search.customer); }
                label { "End reason "
                    select name="reason" {
                        option value="" { "any" }
                        @for r in reasons { option value=(r) selected[*r == search.reason] { (r) } }
                    }
                }
                button type="submit" { "Search" }
            }
            p.hint { "Times are UTC." }
            table.calls #history-rows {
                thead { tr { th { "Started" } th { "Call" } th { "Number" } th { "Customer" } th { "Duration" } th { "End reason" } th { "Recording" } } }
                tbody {
                    @if rows.is_empty() { tr.empty { td colspan="7" { "No call matches." } } }
                    @for (r, customer) in rows {
                        tr.call data-call=(r.call_id) {
                            td { (when(r.started_ms)) }
                            td { a href=(call_href(&r.call_id)) { (r.call_id) } }
                            td.number { (shown_number(who, &r.from)) }
                            td.customer { (customer.as_deref().unwrap_or("—")) }
                            td { (clock(r.duration_ms.max(0) as u64)) }
                            td.reason { (r.end_reason) }
                            td { @if r.recording.is_some() { "yes" } }
                        }
                    }
                }
            }
        },
    )
}

/// The agent page: screen pops for transfers to `queue`, pushed by the
/// script (which renders them from the JSON with `textContent`, never as
/// HTML). Without a queue, a form to pick one.
pub fn agent(who: &Identity, csrf: &str, queue: &str) -> Markup {
    layout(
        "Agent",
        Some((who, csrf)),
        html! {
            @if queue.is_empty() {
                h1 { "Agent" }
                form.search #agent-queue method="get" action="/console/agent" {
                    label { "Queue or extension " input #queue type="search" name="queue" required; }
                    button type="submit" { "Listen" }
                }
                p.hint { "The name a script transfers to (a key of transfer.targets), or the user part of the transfer URI." }
            } @else {
                h1 { "Agent · " (queue) }
                p.status #agent-status { "Connecting…" }
                div #pops data-queue=(queue) {
                    p.empty #no-pops { "No transfer yet. A caller the bot hands to " (queue) " appears here." }
                }
            }
        },
    )
}

/// A small page for refusals (403, 429).
pub fn message(title: &str, text: &str) -> Markup {
    layout(title, None, html! { h1 { (title) } p #message { (text) } })
}

/// The stylesheet and the live-update script, embedded in the binary.
pub const CSS: &str = include_str!("assets/console.css");
pub const JS: &str = include_str!("assets/console.js");

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

    #[test]
    fn viewers_see_masked_numbers_operators_whole_ones() {
        let uri = "<sip:+15551234567@pbx;tag=1>";
        assert_eq!(
            shown_number(&who(ConsoleRole::Viewer), uri),
            "sip:********4567@pbx"
        );
        assert_eq!(
            shown_number(&who(ConsoleRole::Operator), uri),
            "sip:+15551234567@pbx"
        );
    }

    #[test]
    fn text_is_escaped() {
        let view = CallView {
            call_id: "a".into(),
            state: "active",
            transcript: vec![crate::live_calls::Line {
                speaker: "caller",
                text: "<script>x</script>".into(),
            }],
            direction: "inbound",
            party: String::new(),
            customer: None,
            started_ms: 0,
            ended_ms: None,
            open_orders: Vec::new(),
        };
        let html = lines(Some(&view)).into_string();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn the_agent_page_names_its_queue_escaped_or_asks_for_one() {
        let who = who(ConsoleRole::Viewer);
        let page = agent(&who, "t", "<b>agents</b>").into_string();
        assert!(
            page.contains("data-queue=\"&lt;b&gt;agents&lt;/b&gt;\""),
            "{page}"
        );
        assert!(!page.contains("<b>agents"));
        let page = agent(&who, "t", "").into_string();
        assert!(page.contains("id=\"agent-queue\"") && !page.contains("id=\"pops\""));
    }

    #[test]
    fn helpers() {
        assert_eq!(clock(65_000), "1:05");
        assert_eq!(clock(3_725_000), "1:02:05");
        assert_eq!(encode("a b@c/d"), "a%20b%40c%2Fd");
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
    }
}
