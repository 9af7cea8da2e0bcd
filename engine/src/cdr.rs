//! Call detail records: one row per call in SQLite.
//!
//! The schema is versioned like the outbox's (component `calls` in the
//! `schema_version` table, [`voxbridge_crm::storage::migrate`]); each row
//! names the node (`node.id`) that had the call, so the records of several
//! nodes can be read side by side.
//!
//! Call tasks never touch the database: they hand a finished [`CallRecord`]
//! to a writer thread, which batches rows into transactions, so a slow disk
//! delays records, not calls. Records the database refuses (locked, full)
//! are kept and tried again; meanwhile the engine reports itself not ready.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use thiserror::Error;
use tracing::{info, warn};
use voxbridge_crm::storage::migrate::{self, Migration};

use crate::health::{Component, DownOnDrop};
use crate::metrics::Metrics;
use crate::turn_latency::TurnLatency;

#[derive(Debug, Error)]
pub enum CdrError {
    #[error("call records {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("call records: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("call records: {0}")]
    Schema(#[from] voxbridge_crm::storage::StorageError),
    #[error("call records {path}: cannot create folder: {source}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What one call produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub started: SystemTime,
    pub answered: Option<SystemTime>,
    pub ended: SystemTime,
    /// `EndReason::label()`, plus `transferred`/`transfer_failed`.
    pub end_reason: String,
    pub dtmf: String,
    pub recording: Option<PathBuf>,
    pub transfer_target: Option<String>,
    /// Every measured turn: end of input to the reply's first packet.
    pub turns: Vec<TurnLatency>,
    /// The node (`node.id`) that had the call; the writer fills it in.
    pub node: Option<String>,
}

impl CallRecord {
    pub fn duration(&self) -> Duration {
        self.ended.duration_since(self.started).unwrap_or_default()
    }
}

/// The `schema_version` component of the call records.
const COMPONENT: &str = "calls";

/// The schema, in order; a new column is a new migration at the end.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "calls table",
        // IF NOT EXISTS: a database from before versioned migrations
        // already has it (see `adopt`).
        sql: "CREATE TABLE IF NOT EXISTS calls (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            call_id         TEXT NOT NULL,
            from_uri        TEXT NOT NULL,
            to_uri          TEXT NOT NULL,
            started_ms      INTEGER NOT NULL,
            answered_ms     INTEGER,
            ended_ms        INTEGER NOT NULL,
            duration_ms     INTEGER NOT NULL,
            end_reason      TEXT NOT NULL,
            dtmf            TEXT NOT NULL,
            recording_path  TEXT,
            transfer_target TEXT,
            turns_json      TEXT
        );
        CREATE INDEX IF NOT EXISTS calls_call_id ON calls(call_id);
        CREATE INDEX IF NOT EXISTS calls_started ON calls(started_ms);",
    },
    Migration {
        version: 2,
        name: "node of each call",
        sql: "ALTER TABLE calls ADD COLUMN node TEXT",
    },
];

/// Unix milliseconds (0 before the epoch).
pub(crate) fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn from_ms(v: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(v.max(0) as u64)
}

/// Open (creating if needed) the database.
pub fn open(path: &Path) -> Result<Connection, CdrError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| CdrError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let conn = Connection::open(path).map_err(|source| CdrError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    // WAL lets `voxbridge calls list` read while the engine writes.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mut conn = conn;
    adopt(&conn)?;
    migrate::sqlite(&mut conn, COMPONENT, MIGRATIONS, ms(SystemTime::now()))?;
    Ok(conn)
}

/// A database from before versioned migrations (a `calls` table, no
/// version recorded) gets the one column added since its first release
/// (`turns_json`), so that migration 1 describes it and 2 applies on top.
fn adopt(conn: &Connection) -> Result<(), CdrError> {
    if migrate::sqlite_version(conn, COMPONENT)? > 0 {
        return Ok(());
    }
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('calls')")?;
    let have: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    if !have.is_empty() && !have.iter().any(|h| h == "turns_json") {
        conn.execute_batch("ALTER TABLE calls ADD COLUMN turns_json TEXT")?;
    }
    Ok(())
}

pub fn insert(conn: &Connection, r: &CallRecord) -> Result<(), CdrError> {
    conn.execute(
        "INSERT INTO calls (call_id, from_uri, to_uri, started_ms, answered_ms, ended_ms, duration_ms,
                            end_reason, dtmf, recording_path, transfer_target, turns_json, node)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            r.call_id,
            r.from,
            r.to,
            ms(r.started),
            r.answered.map(ms),
            ms(r.ended),
            r.duration().as_millis() as i64,
            r.end_reason,
            r.dtmf,
            r.recording.as_ref().map(|p| p.display().to_string()),
            r.transfer_target,
            (!r.turns.is_empty())
                .then(|| serde_json::to_string(&r.turns).ok())
                .flatten(),
            r.node,
        ],
    )?;
    Ok(())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallRecord> {
    Ok(CallRecord {
        call_id: r.get(0)?,
        from: r.get(1)?,
        to: r.get(2)?,
        started: from_ms(r.get(3)?),
        answered: r.get::<_, Option<i64>>(4)?.map(from_ms),
        ended: from_ms(r.get(5)?),
        end_reason: r.get(6)?,
        dtmf: r.get(7)?,
        recording: r.get::<_, Option<String>>(8)?.map(PathBuf::from),
        transfer_target: r.get(9)?,
        // A row this version cannot read the turns of still lists.
        turns: r
            .get::<_, Option<String>>(10)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
        node: r.get(11)?,
    })
}

const COLUMNS: &str = "call_id, from_uri, to_uri, started_ms, answered_ms, ended_ms, end_reason, dtmf, recording_path, transfer_target, turns_json, node";

/// The newest `limit` records, newest first.
pub fn list(conn: &Connection, limit: usize) -> Result<Vec<CallRecord>, CdrError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM calls ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map(params![limit as i64], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One call by Call-ID (the latest if the id was reused).
pub fn show(conn: &Connection, call_id: &str) -> Result<Option<CallRecord>, CdrError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM calls WHERE call_id = ?1 ORDER BY id DESC LIMIT 1"),
            params![call_id],
            row,
        )
        .optional()?)
}

pub fn count(conn: &Connection) -> Result<u64, CdrError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM calls", [], |r| r.get::<_, i64>(0))? as u64)
}

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
    /// Open the database (so a bad path fails at start) and start the
    /// writer; `node` is this node's `node.id`.
    pub fn start(path: &Path, node: &str, metrics: Arc<Metrics>) -> Result<CdrWriter, CdrError> {
        let conn = open(path)?;
        metrics.health.set(Component::Cdr, true);
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("cdr-writer".into())
            .spawn(move || writer_loop(conn, rx, metrics))
            .map_err(|e| CdrError::Folder {
                path: path.to_path_buf(),
                source: e,
            })?;
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

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, metrics: Arc<Metrics>) {
    // Ending this thread, by return or panic, makes the engine not ready.
    let _down = DownOnDrop {
        health: &metrics.health,
        component: Component::Cdr,
    };
    // Records that failed to commit (a locked or full database) wait here and
    // go again with the next batch or after RETRY_EVERY.
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
                .fetch_add(lost as u64, std::sync::atomic::Ordering::Relaxed);
            warn!(lost, "call records dropped: the database refuses writes");
        }
        if !unwritten.is_empty() {
            let result = conn.transaction().map_err(CdrError::from).and_then(|tx| {
                for r in &unwritten {
                    insert(&tx, r)?;
                }
                tx.commit().map_err(CdrError::from)
            });
            match result {
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
            .fetch_add(unwritten.len() as u64, std::sync::atomic::Ordering::Relaxed);
        warn!(records = unwritten.len(), "call records lost at shutdown");
    }
}

/// A timestamp for people: RFC 3339 in UTC, to the millisecond.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            recording: Some(PathBuf::from("/rec/a.wav")),
            transfer_target: None,
            turns: vec![TurnLatency {
                kind: crate::turn_latency::TurnKind::Dtmf,
                total_ms: 180.5,
                endpointing_ms: 0.0,
                asr_ms: 0.0,
                intent_ms: 0.0,
                dialog_ms: 0.1,
                lookup_ms: 12.0,
                tts_ms: 40.0,
            }],
            node: Some("node-a".into()),
        }
    }

    fn temp_db(name: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("voxbridge-cdr-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn insert_list_show_round_trip() {
        let path = temp_db("rt");
        let conn = open(&path).unwrap();
        insert(&conn, &record("a")).unwrap();
        insert(&conn, &record("b")).unwrap();
        let all = list(&conn, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].call_id, "b");
        let a = show(&conn, "a").unwrap().unwrap();
        assert_eq!(a, record("a"));
        assert_eq!(a.duration(), Duration::from_secs(42));
        assert!(show(&conn, "zzz").unwrap().is_none());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn an_older_database_gains_the_new_columns() {
        let path = temp_db("old");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE calls (id INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL,
                 from_uri TEXT NOT NULL, to_uri TEXT NOT NULL, started_ms INTEGER NOT NULL,
                 answered_ms INTEGER, ended_ms INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
                 end_reason TEXT NOT NULL, dtmf TEXT NOT NULL, recording_path TEXT,
                 transfer_target TEXT);
                 INSERT INTO calls (call_id, from_uri, to_uri, started_ms, ended_ms, duration_ms,
                 end_reason, dtmf) VALUES ('old', 'a', 'b', 1, 2, 1, 'bot_hangup', '');",
            )
            .unwrap();
        }
        let conn = open(&path).unwrap();
        let old = show(&conn, "old").unwrap().unwrap();
        assert!(old.turns.is_empty());
        assert_eq!(old.node, None, "a row from before nodes names none");
        insert(&conn, &record("new")).unwrap();
        assert_eq!(show(&conn, "new").unwrap().unwrap(), record("new"));
        assert_eq!(
            migrate::sqlite_version(&conn, COMPONENT).unwrap(),
            MIGRATIONS.len() as u32
        );
        drop(conn);
        // Opening again applies nothing twice.
        let conn = open(&path).unwrap();
        assert_eq!(count(&conn).unwrap(), 2);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_database_of_the_first_versioned_schema_gains_the_node() {
        let path = temp_db("v1");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrate::sqlite(&mut conn, COMPONENT, &MIGRATIONS[..1], 1).unwrap();
        }
        let conn = open(&path).unwrap();
        insert(&conn, &record("n")).unwrap();
        assert_eq!(
            show(&conn, "n").unwrap().unwrap().node.as_deref(),
            Some("node-a")
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_database_newer_than_the_code_is_refused() {
        let path = temp_db("newer");
        {
            let conn = open(&path).unwrap();
            conn.execute(
                "INSERT INTO schema_version(component, version, name, applied_at) VALUES ('calls', 99, 'future', 0)",
                [],
            )
            .unwrap();
        }
        let err = open(&path).expect_err("refused").to_string();
        assert!(err.contains("version 99"), "{err}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn writer_flushes_everything_queued() {
        let path = temp_db("writer");
        let w = CdrWriter::start(&path, "node-w", Arc::new(Metrics::default())).unwrap();
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
        let w = CdrWriter::start(&path, "node-t", metrics.clone()).unwrap();
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
        assert_eq!(
            metrics
                .cdr_write_errors
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        drop(w);
        assert_eq!(metrics.health.state(Component::Cdr), Some(false));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn unwritable_path_fails_at_start() {
        let err = CdrWriter::start(
            Path::new("/proc/voxbridge/x.db"),
            "node-t",
            Arc::new(Metrics::default()),
        );
        assert!(err.is_err());
    }
}
