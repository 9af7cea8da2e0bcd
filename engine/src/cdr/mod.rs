//! Call detail records: one row per call, behind one interface
//! ([`CdrStore`]) with two backends: [`sqlite`] (a file per node, the
//! embedded default, `cdr.path`) and [`postgres`] (one database every node
//! shares, named by `storage.url` in the CRM configuration file; see
//! [`crate::storage`]), so `voxbridge calls list` on any node shows the
//! calls of all of them with their node.
//!
//! The schema is versioned the same on both backends (component `calls` in
//! the `schema_version` table, [`voxbridge_crm::storage::migrate`]); each row
//! names the node (`node.id`) that had the call and its direction (inbound,
//! outbound, webrtc).
//!
//! Call tasks never touch the database: they hand a finished [`CallRecord`]
//! to the [`CdrWriter`]'s thread, which batches rows into transactions, so a
//! slow disk or database delays records, not calls.

pub mod postgres;
pub mod sqlite;
mod writer;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use voxbridge_crm::storage::{Backend, StorageError};

use crate::turn_latency::TurnLatency;

pub use sqlite::{count, insert, list, open, show};
pub use writer::CdrWriter;

/// The `schema_version` component of the call records, on both backends.
pub const COMPONENT: &str = "calls";

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
    Schema(#[from] StorageError),
    #[error("call records in PostgreSQL: {0}")]
    Pg(String),
    #[error("call records: cannot start the writer thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("call records {path}: cannot create folder: {source}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<::postgres::Error> for CdrError {
    fn from(e: ::postgres::Error) -> Self {
        CdrError::Pg(voxbridge_crm::storage::pg::describe(&e))
    }
}

/// How the call came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A caller rang the bot (SIP).
    Inbound,
    /// The bot placed the call (a campaign or `voxbridge dial`).
    Outbound,
    /// A browser called over WebRTC.
    Webrtc,
}

impl Direction {
    /// The word stored and shown.
    pub fn label(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Webrtc => "webrtc",
        }
    }

    /// The stored word back; `None` for one this version does not know.
    pub fn parse(text: &str) -> Option<Direction> {
        match text {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            "webrtc" => Some(Direction::Webrtc),
            _ => None,
        }
    }
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
    /// `None` only in rows written before directions were recorded.
    pub direction: Option<Direction>,
}

impl CallRecord {
    pub fn duration(&self) -> Duration {
        self.ended.duration_since(self.started).unwrap_or_default()
    }
}

/// Every statement on the call records, on one connection.
pub trait CdrStore: Send {
    /// Insert records in one transaction (all or none).
    fn insert(&mut self, records: &[Box<CallRecord>]) -> Result<(), CdrError>;
    /// The newest `limit` records, newest first.
    fn list(&mut self, limit: usize) -> Result<Vec<CallRecord>, CdrError>;
    /// One call by Call-ID (the latest if the id was reused).
    fn show(&mut self, call_id: &str) -> Result<Option<CallRecord>, CdrError>;
    /// How many records there are.
    fn count(&mut self) -> Result<u64, CdrError>;
    /// The schema version of the call records in this database.
    fn schema_version(&mut self) -> Result<u32, CdrError>;
    /// Whether the connection is gone for good (the writer opens the store
    /// again before its next try).
    fn broken(&self) -> bool {
        false
    }
}

/// Open (creating and migrating if needed) the call records in `backend`.
pub fn open_store(backend: &Backend) -> Result<Box<dyn CdrStore>, CdrError> {
    Ok(match backend {
        Backend::Sqlite(path) => Box::new(sqlite::SqliteCdr::open(path)?),
        Backend::Postgres(target) => {
            // The blocking client cannot run on a thread that drives async
            // tasks (the engine starts in one): open it on a plain thread.
            let target = target.clone();
            let opened = std::thread::spawn(move || postgres::PgCdr::open(&target))
                .join()
                .map_err(|_| CdrError::Pg("opening the call records failed".into()))??;
            Box::new(opened)
        }
    })
}

/// The place `backend` names, for messages (never a password).
pub fn describe(backend: &Backend) -> String {
    match backend {
        Backend::Sqlite(path) => path.display().to_string(),
        Backend::Postgres(target) => format!("PostgreSQL {}", target.shown()),
    }
}

/// The columns a record is read from, in order, on both backends.
pub(crate) const COLUMNS: &str = "call_id, from_uri, to_uri, started_ms, answered_ms, ended_ms, end_reason, dtmf, recording_path, transfer_target, turns_json, node, direction";

/// Unix milliseconds (0 before the epoch).
pub(crate) fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn from_ms(v: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(v).unwrap_or(0))
}

/// The turns column: `None` for a call without measured turns.
pub(crate) fn turns_json(r: &CallRecord) -> Option<String> {
    (!r.turns.is_empty())
        .then(|| serde_json::to_string(&r.turns).ok())
        .flatten()
}

/// The turns column back; a row this version cannot read the turns of
/// still lists.
pub(crate) fn turns_from(json: Option<String>) -> Vec<TurnLatency> {
    json.and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

/// A timestamp for people: RFC 3339 in UTC, to the millisecond.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
