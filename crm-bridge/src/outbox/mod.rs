//! The durable outbox: every write a call produces (call log, tickets,
//! tasks) is committed to SQLite (WAL) when the call ends, then delivered in
//! the background, at least once, with an idempotency key the target uses to
//! keep it once.
//!
//! - Failed deliveries are retried with exponential backoff and jitter; a
//!   record that keeps failing (or is rejected outright) becomes a dead
//!   letter for the operator (`voxbridge outbox list|retry|purge`, see
//!   [`admin`]).
//! - Records of one customer are delivered in the order they were written:
//!   only the oldest pending record of a customer is ever in flight.
//! - Nothing is marked delivered before the target confirmed it, so a
//!   process killed at any moment redelivers on restart; and records wait
//!   out a CRM outage of hours (the default schedule spans more than three
//!   even with the shortest jitter before a record is dead).
//! - Any number of workers, in any number of processes and on any number of
//!   nodes, deliver from one outbox: claims are rows in the database with a
//!   lease ([`store`]), on SQLite ([`sqlite`], one file) or a shared
//!   PostgreSQL ([`postgres`], `storage.url`).

pub mod admin;
pub mod postgres;
pub mod sqlite;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use thiserror::Error;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::bridge::Bridge;
use crate::datetime::now_ms;
use crate::error::CrmError;
use crate::model::{Write, WriteRef};
use crate::resilience::retry::{exponential, jitter_upper_half};
use crate::storage::{Backend, StorageConfig, StorageError};
use store::{Claimed, NewRecord, Outcome, Store};

/// Outbox failures (storage, not delivery: delivery failures are retried).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum OutboxError {
    #[error("outbox {path}: {message}")]
    Open { path: String, message: String },
    #[error("outbox database: {0}")]
    Sql(String),
    #[error("outbox record cannot be encoded: {0}")]
    Encode(String),
    #[error("outbox task failed: {0}")]
    Task(String),
}

impl From<rusqlite::Error> for OutboxError {
    fn from(e: rusqlite::Error) -> Self {
        OutboxError::Sql(e.to_string())
    }
}

impl From<::postgres::Error> for OutboxError {
    fn from(e: ::postgres::Error) -> Self {
        OutboxError::Sql(crate::storage::pg::describe(&e))
    }
}

impl From<StorageError> for OutboxError {
    fn from(e: StorageError) -> Self {
        OutboxError::Open {
            path: "storage".into(),
            message: e.to_string(),
        }
    }
}

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Enqueued records survive a power cut (the WAL is synced per commit).
    #[default]
    Full,
    /// Enqueued records survive the process being killed, not a power cut.
    Normal,
}

/// Outbox tuning.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// The SQLite file.
    pub path: PathBuf,
    /// Deliveries tried before a record becomes a dead letter.
    pub max_attempts: u32,
    /// First retry delay, doubled per attempt.
    #[serde(with = "crate::resilience::millis")]
    pub backoff_base: Duration,
    /// Longest delay between two attempts.
    #[serde(with = "crate::resilience::millis")]
    pub backoff_max: Duration,
    /// Deliveries in flight at once (across customers).
    pub concurrency: usize,
    /// How often to look for due records when nothing wakes the worker.
    #[serde(with = "crate::resilience::millis")]
    pub poll_interval: Duration,
    /// Disk sync of enqueues (`full` or `normal`). Delivery marks always use
    /// `normal`: losing one only causes a redelivery the key absorbs.
    pub durability: Durability,
    /// How long a worker's claim on a record holds: a worker that dies
    /// mid-delivery delays its records by this much, and a delivery is cut
    /// off (and retried) after half of it, so it never outlives its claim.
    #[serde(with = "crate::resilience::millis")]
    pub lease: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            path: PathBuf::from("var/outbox.sqlite"),
            max_attempts: 100,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            concurrency: 32,
            poll_interval: Duration::from_millis(500),
            durability: Durability::Full,
            lease: Duration::from_secs(30),
        }
    }
}

impl OutboxConfig {
    /// The delay after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        jitter_upper_half(exponential(
            self.backoff_base,
            self.backoff_max,
            attempt.saturating_sub(1),
        ))
    }
}

/// A record's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordState {
    Pending,
    Delivered,
    Dead,
}

impl RecordState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Pending => "pending",
            RecordState::Delivered => "delivered",
            RecordState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<RecordState> {
        match s {
            "pending" => Some(RecordState::Pending),
            "delivered" => Some(RecordState::Delivered),
            "dead" => Some(RecordState::Dead),
            _ => None,
        }
    }
}

/// Records per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
}

impl Counts {
    /// Add `n` records of state `state` (as the table spells it).
    pub(crate) fn add(&mut self, state: &str, n: i64) {
        let n = u64::try_from(n).unwrap_or(0);
        match RecordState::parse(state) {
            Some(RecordState::Pending) => self.pending += n,
            Some(RecordState::Delivered) => self.delivered += n,
            Some(RecordState::Dead) => self.dead += n,
            None => {}
        }
    }
}

/// A record accepted into the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub id: i64,
    /// The idempotency key the target will see.
    pub key: String,
}

/// Where the worker delivers. [`Bridge`] is the real one.
#[async_trait]
pub trait DeliveryTarget: Send + Sync {
    /// Deliver one write; idempotent by `key`.
    async fn deliver(&self, write: &Write, key: &str) -> Result<WriteRef, CrmError>;
    /// The system a write of this kind goes to.
    fn system_for(&self, write: &Write) -> Option<String>;
}

#[async_trait]
impl DeliveryTarget for Bridge {
    async fn deliver(&self, write: &Write, key: &str) -> Result<WriteRef, CrmError> {
        Bridge::deliver(self, write, key).await
    }
    fn system_for(&self, write: &Write) -> Option<String> {
        Bridge::system_for(self, write).map(str::to_string)
    }
}

/// The outbox of one process.
#[derive(Clone)]
pub struct Outbox {
    config: OutboxConfig,
    backend: Backend,
    writer: Arc<Mutex<Box<dyn Store>>>,
    wake: Arc<Notify>,
}

/// Open a connection to the outbox in `backend`, creating its table or
/// bringing its schema up to date.
pub fn open_store(
    backend: &Backend,
    durability: Durability,
) -> Result<Box<dyn Store>, OutboxError> {
    Ok(match backend {
        Backend::Sqlite(path) => Box::new(sqlite::SqliteStore::open(path, durability)?),
        Backend::Postgres(target) => {
            // The blocking client cannot run on a thread that drives async
            // tasks, and this may be called from one: open it on a plain
            // thread.
            let target = target.clone();
            let opened = std::thread::spawn(move || postgres::PgStore::open(&target, durability))
                .join()
                .map_err(|_| OutboxError::Task("opening the PostgreSQL outbox failed".into()))??;
            Box::new(opened)
        }
    })
}

impl Outbox {
    /// Open (creating if needed) the SQLite outbox at `config.path`.
    pub fn open(config: OutboxConfig) -> Result<Outbox, OutboxError> {
        let backend = Backend::Sqlite(config.path.clone());
        Outbox::open_in(config, backend)
    }

    /// Open the outbox where `storage` says (SQLite at `config.path` unless
    /// `storage.url` names a PostgreSQL database).
    pub fn open_with(config: OutboxConfig, storage: &StorageConfig) -> Result<Outbox, OutboxError> {
        let backend = storage.backend(config.path.clone())?;
        Outbox::open_in(config, backend)
    }

    /// Open the outbox in `backend`.
    pub fn open_in(config: OutboxConfig, backend: Backend) -> Result<Outbox, OutboxError> {
        let store = open_store(&backend, config.durability)?;
        Ok(Outbox {
            config,
            backend,
            writer: Arc::new(Mutex::new(store)),
            wake: Arc::new(Notify::new()),
        })
    }

    /// The SQLite file (meaningless when the backend is PostgreSQL).
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Where the records are.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn config(&self) -> &OutboxConfig {
        &self.config
    }

    /// Commit one write; its key is derived from the record (see
    /// [`idempotency_key`]). Returns once the record is on disk.
    pub async fn enqueue(&self, write: Write) -> Result<Enqueued, OutboxError> {
        let mut all = self.enqueue_all(vec![write]).await?;
        all.pop()
            .ok_or_else(|| OutboxError::Task("enqueue returned nothing".into()))
    }

    /// Commit several writes in one transaction: what the engine calls in
    /// the step that ends a call (the call log and any ticket or task), so
    /// either all of them are in the outbox or none.
    pub async fn enqueue_all(&self, writes: Vec<Write>) -> Result<Vec<Enqueued>, OutboxError> {
        let keyed: Vec<(String, Write)> = writes
            .into_iter()
            .enumerate()
            .map(|(i, w)| (idempotency_key(&w, i), w))
            .collect();
        self.enqueue_keyed(keyed).await
    }

    /// Commit writes with keys of the caller's choosing. A key already in the
    /// outbox is not added twice.
    pub async fn enqueue_keyed(
        &self,
        writes: Vec<(String, Write)>,
    ) -> Result<Vec<Enqueued>, OutboxError> {
        let now = now_ms();
        let ids = self
            .with_writer(move |store| {
                let records: Vec<NewRecord<'_>> = writes
                    .iter()
                    .map(|(key, write)| NewRecord { key, write })
                    .collect();
                store.insert(&records, now).map(|ids| {
                    ids.into_iter()
                        .zip(writes.iter())
                        .map(|(id, (key, _))| Enqueued {
                            id,
                            key: key.clone(),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .await?;
        self.wake.notify_one();
        Ok(ids)
    }

    /// Run `f` on this process's writing connection, off the async threads.
    async fn with_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let store = Arc::clone(&self.writer);
        tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
            f(store.as_mut())
        })
        .await
        .map_err(|e| OutboxError::Task(e.to_string()))?
    }

    /// Records per state.
    pub async fn counts(&self) -> Result<Counts, OutboxError> {
        self.with_writer(|store| store.counts()).await
    }

    /// Records matching `filter`, newest first, personal data masked
    /// ([`admin::list`] on this process's connection).
    pub async fn list(&self, filter: admin::ListFilter) -> Result<Vec<admin::Entry>, OutboxError> {
        self.with_writer(move |store| store.list(&filter)).await
    }

    /// [`admin::retry`], then wake the worker so the records go out now.
    pub async fn retry(&self, which: admin::Selection) -> Result<usize, OutboxError> {
        let n = self
            .with_writer(move |store| store.retry(&which, now_ms()))
            .await?;
        self.wake.notify_one();
        Ok(n)
    }

    /// [`admin::purge`] (delivered records and dead letters only).
    pub async fn purge(&self, which: admin::Selection) -> Result<usize, OutboxError> {
        self.with_writer(move |store| store.purge(&which)).await
    }

    /// Deliver until `shutdown` completes, then wait up to `grace` for
    /// deliveries in flight (those not finished stay pending and go out on
    /// the next start).
    pub async fn run(
        &self,
        target: Arc<dyn DeliveryTarget>,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> Result<(), OutboxError> {
        let store = {
            let backend = self.backend.clone();
            tokio::task::spawn_blocking(move || open_store(&backend, Durability::Normal))
                .await
                .map_err(|e| OutboxError::Task(e.to_string()))??
        };
        let mut worker = Worker {
            config: self.config.clone(),
            store: Arc::new(Mutex::new(store)),
            id: worker_id(),
            target,
            in_flight: HashMap::new(),
            tasks: JoinSet::new(),
        };
        tokio::pin!(shutdown);
        loop {
            worker.fill().await?;
            let sleep_for = worker.idle_wait().await?;
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                done = worker.tasks.join_next(), if !worker.tasks.is_empty() => {
                    let mut results = Vec::new();
                    if let Some(done) = done {
                        results.push(done);
                    }
                    // Everything else already finished goes in the same
                    // commit.
                    while let Some(more) = worker.tasks.try_join_next() {
                        results.push(more);
                    }
                    worker.settle(results).await?;
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep_for) => {}
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while !worker.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, worker.tasks.join_next()).await {
                Ok(Some(done)) => worker.settle(vec![done]).await?,
                Ok(None) | Err(_) => break,
            }
        }
        worker.tasks.abort_all();
        // Deliveries cut off here go out on the next claim, by any worker,
        // without waiting for their lease to end.
        worker.db(|store, id| store.release(id)).await?;
        Ok(())
    }
}

/// A name no other worker has: the host, this process, and a random part
/// (a restarted process is a new worker; its old claims simply expire).
fn worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}/{}/{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

type DeliveryResult = (i64, Result<WriteRef, CrmError>, Option<String>);

struct Worker {
    config: OutboxConfig,
    store: Arc<Mutex<Box<dyn Store>>>,
    /// The name written into this worker's claims.
    id: String,
    target: Arc<dyn DeliveryTarget>,
    /// id → (order key, attempts so far)
    in_flight: HashMap<i64, (String, u32)>,
    tasks: JoinSet<DeliveryResult>,
}

impl Worker {
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store, &str) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let store = Arc::clone(&self.store);
        let id = self.id.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
            f(store.as_mut(), &id)
        })
        .await
        .map_err(|e| OutboxError::Task(e.to_string()))?
    }

    /// Start deliveries up to the concurrency limit.
    async fn fill(&mut self) -> Result<(), OutboxError> {
        let room = self
            .config
            .concurrency
            .max(1)
            .saturating_sub(self.in_flight.len());
        if room == 0 {
            return Ok(());
        }
        let now = now_ms();
        let lease = self.config.lease;
        let claimed = self
            .db(move |store, id| store.claim(id, now, lease, room))
            .await?;
        // A delivery still running when its claim ends could run twice (the
        // record is free for another worker): cut it off well before.
        let budget = (lease / 2).max(Duration::from_millis(1));
        let mut unreadable = Vec::new();
        for Claimed {
            id,
            key,
            order_key,
            attempts,
            write,
        } in claimed
        {
            let write = match write {
                Ok(w) => w,
                Err(e) => {
                    // A record this version cannot read will not get better.
                    unreadable.push((
                        id,
                        Outcome::Dead {
                            error: format!("stored record unreadable: {e}"),
                            system: None,
                        },
                    ));
                    continue;
                }
            };
            self.in_flight.insert(id, (order_key, attempts));
            let target = Arc::clone(&self.target);
            self.tasks.spawn(async move {
                let system = target.system_for(&write);
                // A panicking connector must not take the outbox down: the
                // delivery runs in its own task and a panic is a failed
                // attempt like any other.
                let delivery = tokio::spawn(async move { target.deliver(&write, &key).await });
                let result = match tokio::time::timeout(budget, delivery).await {
                    Ok(joined) => joined.unwrap_or_else(|e| {
                        Err(CrmError::Protocol {
                            system: system.clone().unwrap_or_default(),
                            message: format!("connector failed: {e}"),
                        })
                    }),
                    Err(_) => Err(CrmError::Timeout {
                        system: system.clone().unwrap_or_default(),
                        after_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
                    }),
                };
                (id, result, system)
            });
        }
        if !unreadable.is_empty() {
            let now = now_ms();
            self.db(move |store, id| store.complete(id, &unreadable, now))
                .await?;
        }
        Ok(())
    }

    /// How long to sleep when no delivery finishes first.
    async fn idle_wait(&self) -> Result<Duration, OutboxError> {
        let poll = self.config.poll_interval;
        let next = self.db(|store, _| store.next_due()).await?;
        let now = now_ms();
        Ok(match next {
            Some(at) if at > now => {
                Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(poll)
            }
            // Due now but not claimable (its customer has one in flight, or
            // no room): the completion will wake us.
            Some(_) if !self.in_flight.is_empty() => poll,
            Some(_) => Duration::from_millis(10),
            None => poll,
        })
    }

    /// Record finished deliveries.
    async fn settle(
        &mut self,
        results: Vec<Result<DeliveryResult, tokio::task::JoinError>>,
    ) -> Result<(), OutboxError> {
        let now = now_ms();
        let mut outcomes = Vec::with_capacity(results.len());
        let mut recovered = HashSet::new();
        for joined in results {
            let (id, result, system) = match joined {
                Ok(r) => r,
                // Only cancellation gets here (the delivery itself runs in an
                // inner task); the record stays pending.
                Err(_) => continue,
            };
            let attempts = self.in_flight.remove(&id).map(|(_, a)| a).unwrap_or(0);
            let outcome = match result {
                Ok(r) => {
                    let system = system.unwrap_or(r.system);
                    if attempts > 0 {
                        recovered.insert(system.clone());
                    }
                    Outcome::Delivered {
                        remote_id: r.id,
                        system,
                    }
                }
                Err(e) => {
                    tracing::debug!(id, error = %e, "outbox delivery failed");
                    failure_outcome(&self.config, attempts, &e, system, now)
                }
            };
            outcomes.push((id, outcome));
        }
        self.db(move |store, id| {
            store.complete(id, &outcomes, now)?;
            for system in &recovered {
                store.pull_forward(system, now)?;
            }
            Ok(())
        })
        .await
    }
}

/// What a failed delivery means for its record: retry later (with or
/// without spending an attempt), or give up.
fn failure_outcome(
    config: &OutboxConfig,
    attempts: u32,
    e: &CrmError,
    system: Option<String>,
    now: i64,
) -> Outcome {
    let error = e.to_string();
    let permanent = matches!(
        e,
        CrmError::Rejected { .. }
            | CrmError::Invalid { .. }
            | CrmError::Unsupported { .. }
            | CrmError::NotConfigured(_)
    );
    if permanent {
        tracing::warn!(error = %error, "outbox record rejected, moved to dead letters");
        return Outcome::Dead { error, system };
    }
    // An open circuit is the breaker speaking, not the target: wait for it
    // without spending one of the record's attempts.
    if let CrmError::CircuitOpen { retry_in_ms, .. } = e {
        let wait =
            jitter_upper_half(Duration::from_millis((*retry_in_ms).max(50)).saturating_mul(2));
        return Outcome::Retry {
            next_at: now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2),
            error,
            system,
            count: false,
        };
    }
    let attempt = attempts + 1;
    if attempt >= config.max_attempts.max(1) {
        tracing::warn!(attempts = attempt, error = %error, "outbox record failed too often, moved to dead letters");
        return Outcome::Dead { error, system };
    }
    let wait = config.backoff(attempt);
    Outcome::Retry {
        next_at: now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2),
        error,
        system,
        count: true,
    }
}

/// The idempotency key of a write: stable for the same call and kind, so an
/// engine that enqueues the same call twice (after its own crash) adds it
/// once. `index` tells apart several writes of one kind from one call.
/// Keys are short and safe for any target field: `vb-` and 32 hex digits.
pub fn idempotency_key(write: &Write, index: usize) -> String {
    let call_id = match write {
        Write::CallLog(c) => Some(c.call_id.as_str()),
        Write::Ticket(t) => t.call_id.as_deref(),
        Write::Task(t) => t.call_id.as_deref(),
    };
    let seed = match call_id {
        Some(id) if !id.is_empty() => format!("{}\u{0}{id}\u{0}{index}", write.kind()),
        // No call to tie it to: a random key, fixed once stored.
        _ => format!("{}\u{0}{:032x}", write.kind(), rand::random::<u128>()),
    };
    format!(
        "vb-{:016x}{:016x}",
        fnv1a(seed.as_bytes(), 0xcbf2_9ce4_8422_2325),
        fnv1a(seed.as_bytes(), 0x8422_2325_cbf2_9ce4)
    )
}

fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod simulation;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CallLog, NewTicket};

    #[test]
    fn keys_are_stable_per_call_and_kind() {
        let log = Write::CallLog(CallLog {
            call_id: "a84b4c76e66710@pc33.atlanta.com".into(),
            ..CallLog::default()
        });
        let k = idempotency_key(&log, 0);
        assert_eq!(k, idempotency_key(&log, 0));
        assert_ne!(k, idempotency_key(&log, 1));
        assert_eq!(k.len(), 35);
        assert!(k.starts_with("vb-") && k[3..].chars().all(|c| c.is_ascii_hexdigit()));
        let ticket = Write::Ticket(NewTicket {
            call_id: Some("a84b4c76e66710@pc33.atlanta.com".into()),
            ..NewTicket::default()
        });
        assert_ne!(k, idempotency_key(&ticket, 0));
        let orphan = Write::Ticket(NewTicket::default());
        assert_ne!(idempotency_key(&orphan, 0), idempotency_key(&orphan, 0));
    }

    #[test]
    fn default_schedule_outlasts_three_hours() {
        let c = OutboxConfig::default();
        // Jitter takes each delay down to half at worst.
        let worst: Duration = (1..c.max_attempts)
            .map(|a| exponential(c.backoff_base, c.backoff_max, a - 1) / 2)
            .sum();
        assert!(worst > Duration::from_secs(3 * 3600), "{worst:?}");
    }
}
