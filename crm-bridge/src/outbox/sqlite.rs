//! The outbox in a SQLite file (WAL): the embedded default.
//!
//! Several processes may deliver from one file (the engine and
//! `voxbridge-crm-outbox deliver` next to it): every claim is an `UPDATE …
//! RETURNING` inside `BEGIN IMMEDIATE`, which holds SQLite's one write lock
//! from the first read, so two processes never select the same record.
//! Every writing transaction is immediate for the same reason: a deferred
//! one that read first would fail at once with "database is locked" instead
//! of waiting its turn.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::admin::{Entry, ListFilter, Selection};
use super::store::{self, lease_ms, Claimed, NewRecord, Outcome, Store, COMPONENT, FIRST_IN_LINE};
use super::{Counts, Durability, OutboxError, RecordState};
use crate::mask::mask_text;
use crate::storage::migrate::{self, Migration};

/// The outbox's schema steps. Migration 1 is the table as voxbridge created
/// it before migrations existed (`IF NOT EXISTS`: a file from then is
/// accepted as version 1 unchanged).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "outbox table",
        sql: "
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
",
    },
    Migration {
        version: 2,
        name: "claims in the table (claimed_by, lease_until)",
        sql: "
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until INTEGER;
",
    },
];

/// The outbox on one SQLite connection.
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Open the outbox file, creating it if needed, and bring its schema up
    /// to date.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteStore, OutboxError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| OutboxError::Open {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let fail = |message: String| OutboxError::Open {
            path: path.display().to_string(),
            message,
        };
        let mut conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| fail(e.to_string()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| fail(e.to_string()))?;
        let sync = match durability {
            // Survives power loss: the WAL is synced at every commit.
            Durability::Full => "FULL",
            // Survives a killed process, not a power cut.
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(|e| fail(e.to_string()))?;
        migrate::sqlite(&mut conn, COMPONENT, MIGRATIONS, crate::datetime::now_ms())
            .map_err(|e| fail(e.to_string()))?;
        Ok(SqliteStore { conn })
    }

    fn write_tx(&mut self) -> Result<rusqlite::Transaction<'_>, OutboxError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }
}

impl Store for SqliteStore {
    fn insert(&mut self, records: &[NewRecord<'_>], now: i64) -> Result<Vec<i64>, OutboxError> {
        let tx = self.write_tx()?;
        let mut ids = Vec::with_capacity(records.len());
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO outbox(key, kind, order_key, payload, next_attempt_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )?;
            let mut find = tx.prepare_cached("SELECT id FROM outbox WHERE key = ?1")?;
            for r in records {
                let payload = store::encode(r.write)?;
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

    fn claim(
        &mut self,
        worker: &str,
        now: i64,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, OutboxError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let tx = self.write_tx()?;
        let mut out = {
            let mut st = tx.prepare_cached(&format!(
                "UPDATE outbox SET claimed_by = ?1, lease_until = ?2
                 WHERE id IN (
                     SELECT id FROM outbox o
                     WHERE state = 'pending' AND next_attempt_at <= ?3
                       AND (lease_until IS NULL OR lease_until <= ?3)
                       AND {FIRST_IN_LINE}
                     ORDER BY id LIMIT ?4)
                 RETURNING id, key, order_key, attempts, payload"
            ))?;
            let want = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = st.query_map(
                params![worker, now.saturating_add(lease_ms(lease)), now, want],
                |r| {
                    let payload: String = r.get(4)?;
                    Ok(Claimed {
                        id: r.get(0)?,
                        key: r.get(1)?,
                        order_key: r.get(2)?,
                        attempts: r.get(3)?,
                        write: store::decode(&payload),
                    })
                },
            )?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        // RETURNING promises no order.
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    fn complete(
        &mut self,
        worker: &str,
        results: &[(i64, Outcome)],
        now: i64,
    ) -> Result<(), OutboxError> {
        if results.is_empty() {
            return Ok(());
        }
        let tx = self.write_tx()?;
        {
            let mut delivered = tx.prepare_cached(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?2,
                     remote_id = ?3, system = ?4, last_error = NULL, claimed_by = NULL, lease_until = NULL
                 WHERE id = ?1 AND state = 'pending' AND claimed_by = ?5",
            )?;
            let mut retry = tx.prepare_cached(
                "UPDATE outbox SET attempts = attempts + ?2, next_attempt_at = ?3, last_error = ?4,
                     system = COALESCE(?5, system), claimed_by = NULL, lease_until = NULL
                 WHERE id = ?1 AND state = 'pending' AND claimed_by = ?6",
            )?;
            let mut dead = tx.prepare_cached(
                "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ?2,
                     system = COALESCE(?3, system), claimed_by = NULL, lease_until = NULL
                 WHERE id = ?1 AND state = 'pending' AND claimed_by = ?4",
            )?;
            for (id, outcome) in results {
                match outcome {
                    Outcome::Delivered { remote_id, system } => {
                        delivered.execute(params![id, now, remote_id, system, worker])?;
                    }
                    Outcome::Retry {
                        next_at,
                        error,
                        system,
                        count,
                    } => {
                        retry.execute(params![
                            id,
                            i64::from(*count),
                            next_at,
                            error,
                            system,
                            worker
                        ])?;
                    }
                    Outcome::Dead { error, system } => {
                        dead.execute(params![id, error, system, worker])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn release(&mut self, worker: &str) -> Result<usize, OutboxError> {
        Ok(self.conn.execute(
            "UPDATE outbox SET claimed_by = NULL, lease_until = NULL
             WHERE claimed_by = ?1 AND state = 'pending'",
            [worker],
        )?)
    }

    fn pull_forward(&mut self, system: &str, now: i64) -> Result<usize, OutboxError> {
        Ok(self.conn.execute(
            "UPDATE outbox SET next_attempt_at = ?2
             WHERE state = 'pending' AND system = ?1 AND attempts > 0 AND next_attempt_at > ?2",
            params![system, now],
        )?)
    }

    fn next_due(&mut self) -> Result<Option<i64>, OutboxError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT MIN(CASE WHEN lease_until > next_attempt_at THEN lease_until
                                     ELSE next_attempt_at END)
                     FROM outbox o WHERE state = 'pending' AND {FIRST_IN_LINE}"
                ),
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
    }

    fn counts(&mut self) -> Result<Counts, OutboxError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM outbox GROUP BY state")?;
        let mut counts = Counts::default();
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            counts.add(&state, n);
        }
        Ok(counts)
    }

    fn list(&mut self, filter: &ListFilter) -> Result<Vec<Entry>, OutboxError> {
        let mut st = self.conn.prepare(&store::list_sql(filter))?;
        let rows = st.query_map([], |r| {
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
                order_key: store::mask_order_key(&order_key),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn retry(&mut self, which: &Selection, now: i64) -> Result<usize, OutboxError> {
        let cond = store::selection_sql(which, &["pending", "dead"]);
        Ok(self.conn.execute(
            &format!(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1,
                     last_error = NULL WHERE {cond}"
            ),
            [now],
        )?)
    }

    fn purge(&mut self, which: &Selection) -> Result<usize, OutboxError> {
        let cond = store::selection_sql(which, &["delivered", "dead"]);
        Ok(self
            .conn
            .execute(&format!("DELETE FROM outbox WHERE {cond}"), [])?)
    }

    fn schema_version(&mut self) -> Result<u32, OutboxError> {
        migrate::sqlite_version(&self.conn, COMPONENT).map_err(|e| OutboxError::Sql(e.to_string()))
    }
}
