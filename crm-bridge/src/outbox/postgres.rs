//! The outbox in a PostgreSQL database shared by every node.
//!
//! Claims are `SELECT … FOR UPDATE SKIP LOCKED` inside the `UPDATE` that
//! writes the claim: a worker skips rows another worker is claiming at that
//! moment instead of waiting for them, and a row whose claim committed in
//! between is re-checked against the lease condition before it is taken.
//! Leases are compared with the nodes' clocks (keep them in NTP sync; a
//! skew shortens or lengthens a dead node's leases by as much).

use std::time::Duration;

use super::admin::{Entry, ListFilter, Selection};
use super::store::{self, lease_ms, Claimed, NewRecord, Outcome, Store, COMPONENT, FIRST_IN_LINE};
use super::{Counts, Durability, OutboxError, RecordState};
use crate::mask::mask_text;
use crate::storage::migrate::{self, Migration};
use crate::storage::pg::{PgClient, PgTarget};

/// The outbox's schema steps, numbered as on SQLite.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "outbox table",
        sql: "
CREATE TABLE outbox(
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    order_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    system TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    remote_id TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX outbox_state ON outbox(state, id);
CREATE INDEX outbox_order ON outbox(order_key, state, id);
",
    },
    Migration {
        version: 2,
        name: "claims in the table (claimed_by, lease_until)",
        sql: "
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until BIGINT;
CREATE INDEX outbox_pending ON outbox(id) WHERE state = 'pending';
",
    },
];

/// The outbox on one PostgreSQL connection.
pub struct PgStore {
    client: PgClient,
}

impl PgStore {
    /// Connect and bring the schema up to date. `Normal` durability turns
    /// off the wait for the commit's WAL flush on this connection (a lost
    /// commit is a redelivery the key absorbs, never a lost record, as long
    /// as enqueues use `Full`).
    pub fn open(target: &PgTarget, durability: Durability) -> Result<PgStore, OutboxError> {
        let fail = |message: String| OutboxError::Open {
            path: target.shown().to_string(),
            message,
        };
        let mut client = target.connect().map_err(|e| fail(e.to_string()))?;
        if durability == Durability::Normal {
            client
                .batch_execute("SET synchronous_commit = off")
                .map_err(|e| fail(crate::storage::pg::describe(&e)))?;
        }
        migrate::postgres(
            &mut client,
            COMPONENT,
            MIGRATIONS,
            crate::datetime::now_ms(),
        )
        .map_err(|e| fail(e.to_string()))?;
        Ok(PgStore { client })
    }
}

fn to_u32(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Store for PgStore {
    fn insert(&mut self, records: &[NewRecord<'_>], now: i64) -> Result<Vec<i64>, OutboxError> {
        let mut tx = self.client.transaction()?;
        let ins = tx.prepare(
            "INSERT INTO outbox(key, kind, order_key, payload, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (key) DO NOTHING",
        )?;
        let find = tx.prepare("SELECT id FROM outbox WHERE key = $1")?;
        let mut ids = Vec::with_capacity(records.len());
        for r in records {
            let payload = store::encode(r.write)?;
            let order_key = r.write.order_key();
            tx.execute(&ins, &[&r.key, &r.write.kind(), &order_key, &payload, &now])?;
            ids.push(tx.query_one(&find, &[&r.key])?.get::<_, i64>(0));
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
        let until = now.saturating_add(lease_ms(lease));
        let want = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.client.query(
            &format!(
                "UPDATE outbox SET claimed_by = $1, lease_until = $2
                 WHERE id IN (
                     SELECT id FROM outbox o
                     WHERE state = 'pending' AND next_attempt_at <= $3
                       AND (lease_until IS NULL OR lease_until <= $3)
                       AND {FIRST_IN_LINE}
                     ORDER BY id LIMIT $4
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id, key, order_key, attempts, payload"
            ),
            &[&worker, &until, &now, &want],
        )?;
        let mut out: Vec<Claimed> = rows
            .iter()
            .map(|r| Claimed {
                id: r.get(0),
                key: r.get(1),
                order_key: r.get(2),
                attempts: to_u32(r.get(3)),
                write: store::decode(r.get::<_, &str>(4)),
            })
            .collect();
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
        let mut tx = self.client.transaction()?;
        let delivered = tx.prepare(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = $2,
                 remote_id = $3, system = $4, last_error = NULL, claimed_by = NULL, lease_until = NULL
             WHERE id = $1 AND state = 'pending' AND claimed_by = $5",
        )?;
        let retry = tx.prepare(
            "UPDATE outbox SET attempts = attempts + $2, next_attempt_at = $3, last_error = $4,
                 system = COALESCE($5, system), claimed_by = NULL, lease_until = NULL
             WHERE id = $1 AND state = 'pending' AND claimed_by = $6",
        )?;
        let dead = tx.prepare(
            "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = $2,
                 system = COALESCE($3, system), claimed_by = NULL, lease_until = NULL
             WHERE id = $1 AND state = 'pending' AND claimed_by = $4",
        )?;
        for (id, outcome) in results {
            match outcome {
                Outcome::Delivered { remote_id, system } => {
                    tx.execute(&delivered, &[id, &now, remote_id, system, &worker])?;
                }
                Outcome::Retry {
                    next_at,
                    error,
                    system,
                    count,
                } => {
                    let add = i32::from(*count);
                    tx.execute(&retry, &[id, &add, next_at, error, system, &worker])?;
                }
                Outcome::Dead { error, system } => {
                    tx.execute(&dead, &[id, error, system, &worker])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn release(&mut self, worker: &str) -> Result<usize, OutboxError> {
        Ok(to_usize(self.client.execute(
            "UPDATE outbox SET claimed_by = NULL, lease_until = NULL
             WHERE claimed_by = $1 AND state = 'pending'",
            &[&worker],
        )?))
    }

    fn pull_forward(&mut self, system: &str, now: i64) -> Result<usize, OutboxError> {
        Ok(to_usize(self.client.execute(
            "UPDATE outbox SET next_attempt_at = $2
             WHERE state = 'pending' AND system = $1 AND attempts > 0 AND next_attempt_at > $2",
            &[&system, &now],
        )?))
    }

    fn next_due(&mut self) -> Result<Option<i64>, OutboxError> {
        let row = self.client.query_one(
            &format!(
                "SELECT MIN(CASE WHEN lease_until > next_attempt_at THEN lease_until
                                 ELSE next_attempt_at END)
                 FROM outbox o WHERE state = 'pending' AND {FIRST_IN_LINE}"
            ),
            &[],
        )?;
        Ok(row.get::<_, Option<i64>>(0))
    }

    fn counts(&mut self) -> Result<Counts, OutboxError> {
        let mut counts = Counts::default();
        for row in self
            .client
            .query("SELECT state, COUNT(*) FROM outbox GROUP BY state", &[])?
        {
            counts.add(row.get::<_, &str>(0), row.get::<_, i64>(1));
        }
        Ok(counts)
    }

    fn list(&mut self, filter: &ListFilter) -> Result<Vec<Entry>, OutboxError> {
        let rows = self.client.query(&store::list_sql(filter), &[])?;
        Ok(rows
            .iter()
            .map(|r| Entry {
                id: r.get(0),
                key: r.get(1),
                kind: r.get(2),
                system: r.get(3),
                state: RecordState::parse(r.get::<_, &str>(4)).unwrap_or(RecordState::Pending),
                attempts: to_u32(r.get(5)),
                created_at: r.get(6),
                next_attempt_at: r.get(7),
                delivered_at: r.get(8),
                remote_id: r.get(9),
                last_error: r.get::<_, Option<String>>(10).map(|e| mask_text(&e)),
                order_key: store::mask_order_key(r.get::<_, &str>(11)),
            })
            .collect())
    }

    fn retry(&mut self, which: &Selection, now: i64) -> Result<usize, OutboxError> {
        let cond = store::selection_sql(which, &["pending", "dead"]);
        Ok(to_usize(self.client.execute(
            &format!(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1,
                     last_error = NULL WHERE {cond}"
            ),
            &[&now],
        )?))
    }

    fn purge(&mut self, which: &Selection) -> Result<usize, OutboxError> {
        let cond = store::selection_sql(which, &["delivered", "dead"]);
        Ok(to_usize(self.client.execute(
            &format!("DELETE FROM outbox WHERE {cond}"),
            &[],
        )?))
    }

    fn schema_version(&mut self) -> Result<u32, OutboxError> {
        migrate::postgres_version(&mut self.client, COMPONENT)
            .map_err(|e| OutboxError::Sql(e.to_string()))
    }
}
