//! The outbox table behind one interface, [`Store`], with two backends:
//! [`super::sqlite`] (one file, the embedded default) and
//! [`super::postgres`] (a database shared by every node). Time is passed in
//! (unix milliseconds) so the schedule can be tested over simulated hours.
//!
//! Claims live in the table: a worker that takes a record writes its name
//! (`claimed_by`) and a lease (`lease_until`) in the same transaction that
//! selects it, so no other worker, in this process or another, on this
//! machine or another, takes it while the lease runs. The record stays
//! `pending` until a delivery is confirmed: a worker killed mid-delivery
//! leaves a claim that expires, and another worker delivers the record
//! again (at least once; the idempotency key makes it once at the target).
//!
//! In order per customer: a record is claimable only while no earlier
//! record of its `order_key` is pending (claimed or not), so one customer
//! has at most one record in flight across all workers.

use std::time::Duration;

use super::admin::{Entry, ListFilter, Selection};
use super::{Counts, OutboxError};
use crate::model::Write;

/// The outbox's schema steps are numbered the same on both backends.
pub const COMPONENT: &str = "outbox";

/// A record to insert.
pub struct NewRecord<'a> {
    pub key: &'a str,
    pub write: &'a Write,
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

/// Every statement on the outbox, on one connection.
pub trait Store: Send {
    /// Insert records in one transaction. A key already present is left
    /// alone (the engine may enqueue the same call twice after its own
    /// restart); the existing id is returned for it.
    fn insert(&mut self, records: &[NewRecord<'_>], now: i64) -> Result<Vec<i64>, OutboxError>;

    /// Claim up to `limit` due records for `worker` until `now + lease`:
    /// oldest first, each the first pending record of its customer, none
    /// claimed by anyone else under a running lease.
    fn claim(
        &mut self,
        worker: &str,
        now: i64,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, OutboxError>;

    /// Record outcomes of `worker`'s deliveries in one transaction and drop
    /// their claims. An outcome for a record this worker no longer holds
    /// (its lease ran out and another worker took it) is not recorded: the
    /// other worker's delivery decides.
    fn complete(
        &mut self,
        worker: &str,
        results: &[(i64, Outcome)],
        now: i64,
    ) -> Result<(), OutboxError>;

    /// Drop every claim `worker` holds (at shutdown, for deliveries that did
    /// not finish), so other workers need not wait out the lease.
    fn release(&mut self, worker: &str) -> Result<usize, OutboxError>;

    /// After a system accepted a delivery again, records of it waiting out a
    /// backoff are made due now: the outage is over, and an hour-long
    /// backlog should not wait for each record's own timer.
    fn pull_forward(&mut self, system: &str, now: i64) -> Result<usize, OutboxError>;

    /// The earliest time a record first in line for its customer can be
    /// claimed (its next attempt, or the end of another worker's lease), if
    /// any: records behind another wait for it, whatever their own time.
    fn next_due(&mut self) -> Result<Option<i64>, OutboxError>;

    /// Records per state.
    fn counts(&mut self) -> Result<Counts, OutboxError>;

    /// Records matching `filter`, newest first; errors and phone numbers
    /// masked.
    fn list(&mut self, filter: &ListFilter) -> Result<Vec<Entry>, OutboxError>;

    /// Make records due again with a fresh attempt count (dead letters and
    /// records waiting out a backoff). Returns how many changed.
    fn retry(&mut self, which: &Selection, now: i64) -> Result<usize, OutboxError>;

    /// Delete delivered records and dead letters (never pending ones).
    fn purge(&mut self, which: &Selection) -> Result<usize, OutboxError>;

    /// The schema version of the outbox in this database.
    fn schema_version(&mut self) -> Result<u32, OutboxError>;
}

/// A lease in milliseconds, at least 1.
pub(crate) fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis())
        .unwrap_or(i64::MAX / 4)
        .max(1)
}

/// "No earlier record of this customer is pending": the ordering rule, in
/// SQL both backends accept (`o` is the candidate row).
pub(crate) const FIRST_IN_LINE: &str = "NOT EXISTS (SELECT 1 FROM outbox p
    WHERE p.order_key = o.order_key AND p.state = 'pending' AND p.id < o.id)";

/// The columns [`Entry`] is read from, in order.
pub(crate) const ENTRY_COLUMNS: &str = "id, key, kind, system, state, attempts, created_at,
    next_attempt_at, delivered_at, remote_id, last_error, order_key";

/// `SELECT … FROM outbox` for a list filter. Only constants and integers
/// are spliced in, never text from outside.
pub(crate) fn list_sql(filter: &ListFilter) -> String {
    let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM outbox");
    if let Some(state) = filter.state {
        sql.push_str(&format!(" WHERE state = '{}'", state.as_str()));
    }
    sql.push_str(" ORDER BY id DESC");
    if filter.limit > 0 {
        sql.push_str(&format!(" LIMIT {}", filter.limit));
    }
    sql
}

/// The WHERE clause for a selection, limited to records in `states`. Only
/// constants and integers are spliced in.
pub(crate) fn selection_sql(which: &Selection, states: &[&str]) -> String {
    let in_states = states
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let in_states = format!("state IN ({in_states})");
    match which {
        Selection::Ids(ids) if ids.is_empty() => format!("{in_states} AND FALSE"),
        Selection::Ids(ids) => {
            let list = ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            format!("{in_states} AND id IN ({list})")
        }
        Selection::AllDead => format!("{in_states} AND state = 'dead'"),
        Selection::AllDelivered => format!("{in_states} AND state = 'delivered'"),
        Selection::DeliveredBefore(t) => {
            format!("{in_states} AND state = 'delivered' AND delivered_at < {t}")
        }
    }
}

/// The payload column back into a write (an error a later version of the
/// record format may cause: such a record becomes a dead letter).
pub(crate) fn decode(payload: &str) -> Result<Write, String> {
    serde_json::from_str(payload).map_err(|e| e.to_string())
}

/// A write as the payload column holds it.
pub(crate) fn encode(write: &Write) -> Result<String, OutboxError> {
    serde_json::to_string(write).map_err(|e| OutboxError::Encode(e.to_string()))
}

/// The per-customer ordering key as the operator sees it.
pub(crate) fn mask_order_key(key: &str) -> String {
    match key.split_once(':') {
        Some(("phone", number)) => format!("phone:{}", crate::mask::mask_phone(number)),
        _ => key.to_string(),
    }
}
