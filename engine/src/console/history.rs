//! History search over the call records (`cdr.path`, the `calls` table
//! that [`crate::cdr`] writes), read on its own connection.

use std::path::{Path, PathBuf};

use rusqlite::{params_from_iter, Connection};
use serde::Deserialize;

/// What the history form asks for; every part optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Search {
    /// Started at or after this (`YYYY-MM-DDTHH:MM`, UTC, as the browser's
    /// `datetime-local` input sends it).
    pub from: String,
    /// Started before this.
    pub to: String,
    /// Part of the caller's or callee's number or URI.
    pub number: String,
    /// End reason (disposition), exactly.
    pub reason: String,
    /// Part of the customer's name (calls the console still remembers).
    pub customer: String,
}

/// One row of the result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub started_ms: i64,
    pub duration_ms: i64,
    pub end_reason: String,
    pub recording: Option<PathBuf>,
    pub transfer_target: Option<String>,
}

/// Rows returned at most.
pub const LIMIT: usize = 200;

/// `2026-12-02T08:30` (or with seconds) as Unix milliseconds, UTC.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let dt: jiff::civil::DateTime = text.parse().ok()?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(ts.as_millisecond())
}

/// Open the records read-only-ish (the writer owns the schema; opening
/// through [`crate::cdr::open`] creates it when the file is new).
pub fn open(path: &Path) -> Result<Connection, crate::cdr::CdrError> {
    crate::cdr::open(path)
}

/// The newest matching records, newest first. `customer` is not in the
/// records: the caller filters on it.
pub fn search(conn: &Connection, s: &Search) -> rusqlite::Result<Vec<Row>> {
    let mut sql = String::from(
        "SELECT call_id, from_uri, to_uri, started_ms, duration_ms, end_reason, recording_path, transfer_target FROM calls WHERE 1=1",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(from) = parse_time(&s.from) {
        sql.push_str(" AND started_ms >= ?");
        args.push(from.into());
    }
    if let Some(to) = parse_time(&s.to) {
        sql.push_str(" AND started_ms < ?");
        args.push(to.into());
    }
    let number = s.number.trim();
    if !number.is_empty() {
        // A LIKE pattern with the user's own wildcards escaped.
        let escaped = number
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        sql.push_str(" AND (from_uri LIKE ? ESCAPE '\\' OR to_uri LIKE ? ESCAPE '\\')");
        let pattern = format!("%{escaped}%");
        args.push(pattern.clone().into());
        args.push(pattern.into());
    }
    let reason = s.reason.trim();
    if !reason.is_empty() {
        sql.push_str(" AND end_reason = ?");
        args.push(reason.to_string().into());
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {LIMIT}"));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(Row {
            call_id: r.get(0)?,
            from: r.get(1)?,
            to: r.get(2)?,
            started_ms: r.get(3)?,
            duration_ms: r.get(4)?,
            end_reason: r.get(5)?,
            recording: r.get::<_, Option<String>>(6)?.map(PathBuf::from),
            transfer_target: r.get(7)?,
        })
    })?;
    rows.collect()
}

/// The end reasons seen so far, for the form's choice.
pub fn reasons(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT DISTINCT end_reason FROM calls ORDER BY end_reason")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdr::{insert, CallRecord};
    use std::time::{Duration, UNIX_EPOCH};

    fn record(id: &str, from: &str, at_ms: u64, reason: &str) -> CallRecord {
        let started = UNIX_EPOCH + Duration::from_millis(at_ms);
        CallRecord {
            call_id: id.into(),
            from: from.into(),
            to: "sip:bot@127.0.0.1".into(),
            started,
            answered: Some(started),
            ended: started + Duration::from_secs(5),
            end_reason: reason.into(),
            dtmf: String::new(),
            recording: None,
            transfer_target: None,
            turns: vec![],
            node: None,
            direction: Some(crate::cdr::Direction::Inbound),
        }
    }

    #[test]
    fn search_filters_by_time_number_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("cdr.db")).unwrap();
        let t0 = parse_time("2026-12-02T08:00").unwrap() as u64;
        insert(
            &conn,
            &record("a", "sip:+15551230001@pbx", t0, "caller_hangup"),
        )
        .unwrap();
        insert(
            &conn,
            &record("b", "sip:+15551230002@pbx", t0 + 3_600_000, "transferred"),
        )
        .unwrap();
        insert(
            &conn,
            &record("c", "sip:100%_x@pbx", t0 + 7_200_000, "caller_hangup"),
        )
        .unwrap();
        let ids = |s: Search| -> Vec<String> {
            search(&conn, &s)
                .unwrap()
                .into_iter()
                .map(|r| r.call_id)
                .collect()
        };
        assert_eq!(ids(Search::default()), ["c", "b", "a"]);
        assert_eq!(
            ids(Search {
                number: "0002".into(),
                ..Default::default()
            }),
            ["b"]
        );
        assert_eq!(
            ids(Search {
                reason: "caller_hangup".into(),
                ..Default::default()
            }),
            ["c", "a"]
        );
        assert_eq!(
            ids(Search {
                from: "2026-12-02T08:30".into(),
                to: "2026-12-02T09:30".into(),
                ..Default::default()
            }),
            ["b"]
        );
        // `%` and `_` are the user's characters, not wildcards.
        assert_eq!(
            ids(Search {
                number: "0%_".into(),
                ..Default::default()
            }),
            ["c"]
        );
        assert_eq!(
            ids(Search {
                number: "%".into(),
                ..Default::default()
            }),
            ["c"]
        );
        assert_eq!(reasons(&conn).unwrap(), ["caller_hangup", "transferred"]);
    }

    #[test]
    fn bad_times_are_ignored_not_fatal() {
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("1970-01-01T00:00:01"), Some(1000));
    }
}
