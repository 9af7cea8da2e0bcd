//! What `voxbridge outbox list|retry|purge` does, as plain functions on the
//! outbox file (or, through [`open`], on the shared PostgreSQL). They open
//! their own connection, so an operator can run them while the engine is
//! delivering (SQLite WAL allows one writer and many readers; a write waits
//! up to ten seconds for the engine's commit).

use std::path::Path;

use super::sqlite::SqliteStore;
use super::store::Store;
use super::{open_store, Counts, Durability, OutboxError, RecordState};
use crate::storage::Backend;

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
    open_existing(path)?.counts()
}

/// Records matching `filter`, newest first.
pub fn list(path: &Path, filter: &ListFilter) -> Result<Vec<Entry>, OutboxError> {
    open_existing(path)?.list(filter)
}

/// Make records due again with a fresh attempt count: dead letters go back
/// to pending, pending records waiting out a backoff are tried at once.
/// Delivered records are left alone. Returns how many changed.
pub fn retry(path: &Path, which: &Selection) -> Result<usize, OutboxError> {
    open_existing(path)?.retry(which, crate::datetime::now_ms())
}

/// Delete delivered records and dead letters. Pending records are never
/// purged (they are calls not yet written anywhere else); retry or let
/// them die first. Returns how many were deleted.
pub fn purge(path: &Path, which: &Selection) -> Result<usize, OutboxError> {
    open_existing(path)?.purge(which)
}

/// The outbox where `storage` says, for the same operations on a shared
/// PostgreSQL (`Store::counts`, `list`, `retry`, `purge`). A SQLite file
/// must exist already.
pub fn open(
    storage: &crate::storage::StorageConfig,
    sqlite_path: &Path,
) -> Result<Box<dyn Store>, OutboxError> {
    match storage.backend(sqlite_path.to_path_buf())? {
        Backend::Sqlite(path) => Ok(Box::new(open_existing(&path)?)),
        backend => open_store(&backend, Durability::Full),
    }
}

fn open_existing(path: &Path) -> Result<SqliteStore, OutboxError> {
    if !path.exists() {
        return Err(OutboxError::Open {
            path: path.display().to_string(),
            message: "no outbox file here (has the engine run with this configuration?)".into(),
        });
    }
    SqliteStore::open(path, Durability::Full)
}
