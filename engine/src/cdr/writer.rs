//! The thread that writes call records: call tasks queue a finished record
//! and go on; the thread batches rows into transactions, so a slow disk or
//! database delays records, not calls. Records the database refuses
//! (locked, full, PostgreSQL unreachable) are kept and tried again;
//! meanwhile the engine reports itself not ready.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{info, warn};
use voxbridge_crm::storage::Backend;

use super::{open_store, CallRecord, CdrError, CdrStore};
use crate::health::{Component, DownOnDrop};
use crate::metrics::Metrics;

enum Job {
    Write(Box<CallRecord>),
    Flush(mpsc::Sender<()>),
}

/// The writer thread's handle.
pub struct CdrWriter {
    jobs: mpsc::Sender<Job>,
    thread: Option<JoinHandle<()>>,
    /// Written into records that do not name their node.
    node: String,
}

impl CdrWriter {
    /// Open the records in `backend` (so a bad path or an unreachable
    /// database fails at start) and start the writer; `node` is this
    /// node's `node.id`.
    pub fn start(
        backend: Backend,
        node: &str,
        metrics: Arc<Metrics>,
    ) -> Result<CdrWriter, CdrError> {
        let store = open_store(&backend)?;
        metrics.health.set(Component::Cdr, true);
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("cdr-writer".into())
            .spawn(move || writer_loop(backend, store, rx, metrics))
            .map_err(CdrError::Thread)?;
        Ok(CdrWriter {
            jobs,
            thread: Some(thread),
            node: node.to_string(),
        })
    }

    /// Queue a record; never blocks.
    pub fn write(&self, mut record: CallRecord) {
        record.node.get_or_insert_with(|| self.node.clone());
        if self.jobs.send(Job::Write(Box::new(record))).is_err() {
            warn!("call record writer is gone; record lost");
        }
    }

    /// Wait until every record queued so far is committed.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.jobs.send(Job::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        }
    }
}

impl Drop for CdrWriter {
    fn drop(&mut self) {
        self.flush();
        // Closing the channel ends the loop.
        let (dead, _) = mpsc::channel();
        self.jobs = dead;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long the writer waits before trying again records it could not write.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Records kept for another try while the database refuses writes; older
/// ones are dropped (and counted) beyond this.
const MAX_UNWRITTEN: usize = 10_000;

/// Write `records` in one transaction, opening the store again first if
/// the last connection broke (a PostgreSQL restart closes it for good).
fn write_batch(
    backend: &Backend,
    store: &mut Option<Box<dyn CdrStore>>,
    records: &[Box<CallRecord>],
) -> Result<(), CdrError> {
    if store.as_ref().is_none_or(|s| s.broken()) {
        *store = None;
        *store = Some(open_store(backend)?);
    }
    match store {
        Some(s) => s.insert(records),
        None => unreachable!("opened above"),
    }
}

fn writer_loop(
    backend: Backend,
    store: Box<dyn CdrStore>,
    rx: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
) {
    // Ending this thread, by return or panic, makes the engine not ready.
    let _down = DownOnDrop {
        health: &metrics.health,
        component: Component::Cdr,
    };
    let mut store = Some(store);
    // Records that failed to commit wait here and go again with the next
    // batch or after RETRY_EVERY.
    let mut unwritten: Vec<Box<CallRecord>> = Vec::new();
    let mut closed = false;
    while !closed {
        let first = if unwritten.is_empty() {
            rx.recv().ok()
        } else {
            match rx.recv_timeout(RETRY_EVERY) {
                Ok(job) => Some(job),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    closed = true;
                    None
                }
            }
        };
        if first.is_none() && unwritten.is_empty() {
            break;
        }
        let mut batch: Vec<Job> = first.into_iter().collect();
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let mut waiters = Vec::new();
        for job in batch {
            match job {
                Job::Write(r) => unwritten.push(r),
                Job::Flush(w) => waiters.push(w),
            }
        }
        if unwritten.len() > MAX_UNWRITTEN {
            let lost = unwritten.len() - MAX_UNWRITTEN;
            unwritten.drain(..lost);
            metrics
                .cdr_write_errors
                .fetch_add(lost as u64, Ordering::Relaxed);
            warn!(lost, "call records dropped: the database refuses writes");
        }
        if !unwritten.is_empty() {
            match write_batch(&backend, &mut store, &unwritten) {
                Ok(()) => {
                    if metrics.health.state(Component::Cdr) == Some(false) {
                        info!(
                            records = unwritten.len(),
                            "call records written again; ready"
                        );
                    }
                    metrics.health.set(Component::Cdr, true);
                    unwritten.clear();
                }
                Err(e) => {
                    if metrics.health.state(Component::Cdr) != Some(false) {
                        warn!(error = %e, records = unwritten.len(), "call records not written; retrying; not ready");
                    }
                    metrics.health.set(Component::Cdr, false);
                }
            }
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
    if !unwritten.is_empty() {
        metrics
            .cdr_write_errors
            .fetch_add(unwritten.len() as u64, Ordering::Relaxed);
        warn!(records = unwritten.len(), "call records lost at shutdown");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdr::{count, open, show, Direction};
    use rusqlite::Connection;
    use std::path::{Path, PathBuf};
    use std::time::UNIX_EPOCH;

    fn record(id: &str) -> CallRecord {
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        CallRecord {
            call_id: id.into(),
            from: "sip:+15550100@pbx".into(),
            to: "sip:bot@vb".into(),
            started: start,
            answered: Some(start + Duration::from_millis(120)),
            ended: start + Duration::from_secs(42),
            end_reason: "caller_hangup".into(),
            dtmf: "1234".into(),
            recording: None,
            transfer_target: None,
            turns: vec![],
            node: Some("node-a".into()),
            direction: Some(Direction::Inbound),
        }
    }

    fn temp_db(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "voxbridge-cdr-writer-{name}-{}.db",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn writer_flushes_everything_queued() {
        let path = temp_db("writer");
        let w = CdrWriter::start(
            Backend::Sqlite(path.clone()),
            "node-w",
            Arc::new(Metrics::default()),
        )
        .unwrap();
        for i in 0..300 {
            w.write(record(&format!("c{i}")));
        }
        let mut unnamed = record("unnamed");
        unnamed.node = None;
        w.write(unnamed);
        w.flush();
        let conn = open(&path).unwrap();
        assert_eq!(count(&conn).unwrap(), 301);
        let stamped = show(&conn, "unnamed").unwrap().unwrap();
        assert_eq!(
            stamped.node.as_deref(),
            Some("node-w"),
            "the writer names its node"
        );
        drop(w);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_locked_database_makes_the_writer_down_until_it_writes_again() {
        let path = temp_db("locked");
        let metrics = Arc::new(Metrics::default());
        let w = CdrWriter::start(Backend::Sqlite(path.clone()), "node-t", metrics.clone()).unwrap();
        assert_eq!(metrics.health.state(Component::Cdr), Some(true));
        // Another process holds the write lock past the busy timeout.
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        w.write(record("held"));
        w.flush();
        assert_eq!(metrics.health.state(Component::Cdr), Some(false));
        other.execute_batch("COMMIT").unwrap();
        // The kept record goes in on a retry, and the writer is up again.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while metrics.health.state(Component::Cdr) != Some(true)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(metrics.health.state(Component::Cdr), Some(true));
        assert!(show(&open(&path).unwrap(), "held").unwrap().is_some());
        assert_eq!(metrics.cdr_write_errors.load(Ordering::Relaxed), 0);
        drop(w);
        assert_eq!(metrics.health.state(Component::Cdr), Some(false));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn unwritable_path_fails_at_start() {
        let err = CdrWriter::start(
            Backend::Sqlite(Path::new("/proc/voxbridge/x.db").to_path_buf()),
            "node-t",
            Arc::new(Metrics::default()),
        );
        assert!(err.is_err());
    }
}
