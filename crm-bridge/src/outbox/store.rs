//! The outbox table in SQLite and every statement on it. Time is passed in
//! (unix milliseconds) so the schedule can be tested over simulated hours.
//!
//! No "in flight" state is stored: a record is `pending` until a delivery is
//! confirmed, so a process killed mid-delivery simply delivers it again on
//! restart (at least once; the idempotency key makes it once at the
//! target).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Durability, OutboxError, RecordState};
use crate::model::Write;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    order_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    system TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    remote_id TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox(state, id);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox(order_key, state, id);
";

/// Open the outbox database, creating it if needed.
pub fn open(path: &Path, durability: Durability) -> Result<Connection, OutboxError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| OutboxError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    let fail = |e: rusqlite::Error| OutboxError::Open {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let conn = Connection::open(path).map_err(fail)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(fail)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(fail)?;
    let sync = match durability {
        // Survives power loss: the WAL is synced at every commit.
        Durability::Full => "FULL",
        // Survives a killed process, not a power cut.
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(fail)?;
    conn.execute_batch(SCHEMA).map_err(fail)?;
    Ok(conn)
}

/// A record to insert.
pub struct NewRecord<'a> {
    pub key: &'a str,
    pub write: &'a Write,
}

/// Insert records in one transaction. A key already present is left alone
/// (the engine may enqueue the same call twice after its own restart);
/// the existing id is returned for it.
pub fn insert(
    conn: &Connection,
    records: &[NewRecord<'_>],
    now: i64,
) -> Result<Vec<i64>, OutboxError> {
    let tx = conn.unchecked_transaction()?;
    let mut ids = Vec::with_capacity(records.len());
    {
        let mut ins = tx.prepare_cached(
            "INSERT OR IGNORE INTO outbox(key, kind, order_key, payload, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?;
        let mut find = tx.prepare_cached("SELECT id FROM outbox WHERE key = ?1")?;
        for r in records {
            let payload =
                serde_json::to_string(r.write).map_err(|e| OutboxError::Encode(e.to_string()))?;
            ins.execute(params![
                r.key,
                r.write.kind(),
                r.write.order_key(),
                payload,
                now
            ])?;
            ids.push(find.query_row([r.key], |row| row.get(0))?);
        }
    }
    tx.commit()?;
    Ok(ids)
}

/// A record claimed for delivery.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub key: String,
    pub order_key: String,
    pub attempts: u32,
    pub write: Result<Write, String>,
}

/// Due records that are first in line for their customer, oldest first,
/// skipping those already in flight in this process.
pub fn claim(
    conn: &Connection,
    now: i64,
    limit: usize,
    in_flight: &HashSet<i64>,
    busy_orders: &HashSet<String>,
) -> Result<Vec<Claimed>, OutboxError> {
    let mut st = conn.prepare_cached(
        "SELECT id, key, order_key, attempts, payload FROM outbox o
         WHERE state = 'pending' AND next_attempt_at <= ?1
           AND id = (SELECT MIN(id) FROM outbox p WHERE p.order_key = o.order_key AND p.state = 'pending')
         ORDER BY id LIMIT ?2",
    )?;
    let want = i64::try_from(limit + in_flight.len()).unwrap_or(i64::MAX);
    let rows = st.query_map(params![now, want], |r| {
        let payload: String = r.get(4)?;
        Ok(Claimed {
            id: r.get(0)?,
            key: r.get(1)?,
            order_key: r.get(2)?,
            attempts: r.get(3)?,
            write: serde_json::from_str(&payload).map_err(|e| e.to_string()),
        })
    })?;
    let mut out = Vec::new();
    for row in rows {
        let c = row?;
        if in_flight.contains(&c.id) || busy_orders.contains(&c.order_key) {
            continue;
        }
        out.push(c);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// What became of one delivery.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered {
        remote_id: String,
        system: String,
    },
    /// Try again at `next_at`; `count` says whether it used up an attempt.
    Retry {
        next_at: i64,
        error: String,
        system: Option<String>,
        count: bool,
    },
    Dead {
        error: String,
        system: Option<String>,
    },
}

/// Record outcomes in one transaction.
pub fn complete(
    conn: &Connection,
    results: &[(i64, Outcome)],
    now: i64,
) -> Result<(), OutboxError> {
    if results.is_empty() {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    {
        let mut delivered = tx.prepare_cached(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?2,
                 remote_id = ?3, system = ?4, last_error = NULL
             WHERE id = ?1 AND state = 'pending'",
        )?;
        let mut retry = tx.prepare_cached(
            "UPDATE outbox SET attempts = attempts + ?2, next_attempt_at = ?3, last_error = ?4,
                 system = COALESCE(?5, system)
             WHERE id = ?1 AND state = 'pending'",
        )?;
        let mut dead = tx.prepare_cached(
            "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ?2,
                 system = COALESCE(?3, system)
             WHERE id = ?1 AND state = 'pending'",
        )?;
        for (id, outcome) in results {
            match outcome {
                Outcome::Delivered { remote_id, system } => {
                    delivered.execute(params![id, now, remote_id, system])?;
                }
                Outcome::Retry {
                    next_at,
                    error,
                    system,
                    count,
                } => {
                    retry.execute(params![id, i64::from(*count), next_at, error, system])?;
                }
                Outcome::Dead { error, system } => {
                    dead.execute(params![id, error, system])?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// After a system accepted a delivery again, records of it waiting out a
/// backoff are made due now: the outage is over, and an hour-long backlog
/// should not wait for each record's own timer.
pub fn pull_forward(conn: &Connection, system: &str, now: i64) -> Result<usize, OutboxError> {
    Ok(conn.execute(
        "UPDATE outbox SET next_attempt_at = ?2
         WHERE state = 'pending' AND system = ?1 AND attempts > 0 AND next_attempt_at > ?2",
        params![system, now],
    )?)
}

/// The earliest time a record first in line for its customer is due, if
/// any (records behind another wait for it, whatever their own time).
pub fn next_due(conn: &Connection) -> Result<Option<i64>, OutboxError> {
    Ok(conn
        .query_row(
            "SELECT MIN(next_attempt_at) FROM outbox o
             WHERE state = 'pending'
               AND id = (SELECT MIN(id) FROM outbox p WHERE p.order_key = o.order_key AND p.state = 'pending')",
            [],
            |r| r.get::<_, Option<i64>>(0),
        )
        .optional()?
        .flatten())
}

/// Records per state.
pub fn counts(conn: &Connection) -> Result<super::Counts, OutboxError> {
    let mut st = conn.prepare_cached("SELECT state, COUNT(*) FROM outbox GROUP BY state")?;
    let mut counts = super::Counts::default();
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (state, n) = row?;
        let n = u64::try_from(n).unwrap_or(0);
        match RecordState::parse(&state) {
            Some(RecordState::Pending) => counts.pending = n,
            Some(RecordState::Delivered) => counts.delivered = n,
            Some(RecordState::Dead) => counts.dead = n,
            None => {}
        }
    }
    Ok(counts)
}
