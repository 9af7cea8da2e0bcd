//! What `voxbridge outbox list|retry|purge` does, as plain functions on the
//! outbox file. They open their own connection, so an operator can run them
//! while the engine is delivering (SQLite WAL allows one writer and many
//! readers; a write waits up to ten seconds for the engine's commit).

use std::path::Path;

use rusqlite::{params_from_iter, types::Value};

use super::{store, Counts, Durability, OutboxError, RecordState};
use crate::mask::mask_text;

/// One outbox record as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub key: String,
    /// `call_log`, `ticket` or `task`.
    pub kind: String,
    /// The system it goes to, once a delivery was tried.
    pub system: Option<String>,
    pub state: RecordState,
    pub attempts: u32,
    /// Unix ms.
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    /// The id the target gave it.
    pub remote_id: Option<String>,
    /// The last failure, personal data masked.
    pub last_error: Option<String>,
    /// The per-customer ordering key, masked (`customer:C001`,
    /// `phone:+*********8000`).
    pub order_key: String,
}

impl std::fmt::Display for Entry {
    /// One line for `voxbridge outbox list`:
    /// `12  dead  call_log  crm  attempts 5  2026-11-21T09:30:00.000Z  customer:C001  HTTP 500 …`
    /// (the time is the delivery for delivered records, else the next try).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let when = match self.state {
            RecordState::Delivered => self.delivered_at.unwrap_or(self.next_attempt_at),
            _ => self.next_attempt_at,
        };
        write!(
            f,
            "{:>6}  {:<9}  {:<8}  {:<10}  attempts {:<3}  {}  {}",
            self.id,
            self.state.as_str(),
            self.kind,
            self.system.as_deref().unwrap_or("-"),
            self.attempts,
            crate::datetime::rfc3339_ms(when),
            self.order_key
        )?;
        if let Some(remote) = &self.remote_id {
            write!(f, "  → {remote}")?;
        }
        if let Some(e) = &self.last_error {
            write!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// Which records `list` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only records in this state.
    pub state: Option<RecordState>,
    /// At most this many, newest first (0 = all).
    pub limit: usize,
}

/// Which records `retry` or `purge` act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These ids.
    Ids(Vec<i64>),
    /// Every dead letter.
    AllDead,
    /// Every delivered record.
    AllDelivered,
    /// Delivered records confirmed before this time (unix ms).
    DeliveredBefore(i64),
}

/// Records per state.
pub fn counts(path: &Path) -> Result<Counts, OutboxError> {
    let conn = open_existing(path)?;
    store::counts(&conn)
}

/// Records matching `filter`, newest first.
pub fn list(path: &Path, filter: &ListFilter) -> Result<Vec<Entry>, OutboxError> {
    let conn = open_existing(path)?;
    let mut sql = String::from(
        "SELECT id, key, kind, system, state, attempts, created_at, next_attempt_at,
                delivered_at, remote_id, last_error, order_key FROM outbox",
    );
    let mut args: Vec<Value> = Vec::new();
    if let Some(state) = filter.state {
        sql.push_str(" WHERE state = ?");
        args.push(Value::Text(state.as_str().into()));
    }
    sql.push_str(" ORDER BY id DESC");
    if filter.limit > 0 {
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(
            i64::try_from(filter.limit).unwrap_or(i64::MAX),
        ));
    }
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(params_from_iter(args), |r| {
        let state: String = r.get(4)?;
        let order_key: String = r.get(11)?;
        Ok(Entry {
            id: r.get(0)?,
            key: r.get(1)?,
            kind: r.get(2)?,
            system: r.get(3)?,
            state: RecordState::parse(&state).unwrap_or(RecordState::Pending),
            attempts: r.get(5)?,
            created_at: r.get(6)?,
            next_attempt_at: r.get(7)?,
            delivered_at: r.get(8)?,
            remote_id: r.get(9)?,
            last_error: r.get::<_, Option<String>>(10)?.map(|e| mask_text(&e)),
            order_key: mask_order_key(&order_key),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Make records due again with a fresh attempt count: dead letters go back
/// to pending, pending records waiting out a backoff are tried at once.
/// Delivered records are left alone. Returns how many changed.
pub fn retry(path: &Path, which: &Selection) -> Result<usize, OutboxError> {
    let conn = open_existing(path)?;
    let now = crate::datetime::now_ms();
    let (cond, args) = selection_sql(which, &["pending", "dead"]);
    let sql = format!(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL WHERE {cond}"
    );
    let mut all = vec![Value::Integer(now)];
    all.extend(args);
    Ok(conn.execute(&sql, params_from_iter(all))?)
}

/// Delete delivered records and dead letters. Pending records are never
/// purged (they are calls not yet written anywhere else); retry or let
/// them die first. Returns how many were deleted.
pub fn purge(path: &Path, which: &Selection) -> Result<usize, OutboxError> {
    let conn = open_existing(path)?;
    let (cond, args) = selection_sql(which, &["delivered", "dead"]);
    let n = conn.execute(
        &format!("DELETE FROM outbox WHERE {cond}"),
        params_from_iter(args),
    )?;
    Ok(n)
}

/// The WHERE clause for a selection, limited to records in `states`.
fn selection_sql(which: &Selection, states: &[&str]) -> (String, Vec<Value>) {
    let in_states = states
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let in_states = format!("state IN ({in_states})");
    match which {
        Selection::Ids(ids) => {
            let marks = vec!["?"; ids.len()].join(", ");
            (
                format!("{in_states} AND id IN ({marks})"),
                ids.iter().map(|i| Value::Integer(*i)).collect(),
            )
        }
        Selection::AllDead => (format!("{in_states} AND state = 'dead'"), Vec::new()),
        Selection::AllDelivered => (format!("{in_states} AND state = 'delivered'"), Vec::new()),
        Selection::DeliveredBefore(t) => (
            format!("{in_states} AND state = 'delivered' AND delivered_at < ?"),
            vec![Value::Integer(*t)],
        ),
    }
}

fn open_existing(path: &Path) -> Result<rusqlite::Connection, OutboxError> {
    if !path.exists() {
        return Err(OutboxError::Open {
            path: path.display().to_string(),
            message: "no outbox file here (has the engine run with this configuration?)".into(),
        });
    }
    store::open(path, Durability::Full)
}

fn mask_order_key(key: &str) -> String {
    match key.split_once(':') {
        Some(("phone", number)) => format!("phone:{}", crate::mask::mask_phone(number)),
        _ => key.to_string(),
    }
}
