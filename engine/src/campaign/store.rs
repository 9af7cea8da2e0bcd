//! Campaign state in SQLite (next to the call records): campaigns, their
//! contacts (attempts made, next due time, final disposition), every
//! attempt (started, ended, disposition, SIP status, the CRM writes it
//! produced) and the do-not-call list.
//!
//! The attempt row is committed before the dial starts, together with the
//! contact's attempt count, and its primary key (campaign, contact,
//! attempt) makes a second start of the same attempt impossible. The result
//! and the CRM writes are committed in one transaction when it ends; the
//! writes are marked `reported` once the outbox has them, so a crash
//! between the two re-sends them (the outbox key absorbs a repeat).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use thiserror::Error;

use super::list::Contact;
use super::schedule::After;
use crate::dialing::Disposition;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("campaign store {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("campaign store {path}: cannot create folder: {source}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("campaign store: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("campaign store: attempt {attempt} of {contact} in {campaign} was already started")]
    AttemptTaken {
        campaign: String,
        contact: String,
        attempt: u32,
    },
    #[error("campaign store: bad row: {0}")]
    BadRow(String),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS campaigns (
    name        TEXT PRIMARY KEY,
    file        TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS contacts (
    campaign     TEXT NOT NULL,
    id           TEXT NOT NULL,
    number       TEXT NOT NULL,
    name         TEXT,
    customer_id  TEXT,
    language     TEXT,
    time_zone    TEXT NOT NULL,
    fields_json  TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_due_ms  INTEGER,
    disposition  TEXT,
    PRIMARY KEY (campaign, id)
);
CREATE TABLE IF NOT EXISTS attempts (
    campaign     TEXT NOT NULL,
    contact_id   TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    number       TEXT NOT NULL,
    started_ms   INTEGER NOT NULL,
    ended_ms     INTEGER,
    disposition  TEXT,
    sip_status   INTEGER,
    -- 1: closed at restart, the process died while it was in flight.
    recovered    INTEGER NOT NULL DEFAULT 0,
    writes_json  TEXT,
    reported     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign, contact_id, attempt)
);
CREATE TABLE IF NOT EXISTS dnc (
    number    TEXT PRIMARY KEY,
    source    TEXT NOT NULL,
    added_ms  INTEGER NOT NULL
);
";

/// A campaign's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Paused,
    Stopped,
    /// Every contact finished.
    Done,
}

impl RunState {
    pub fn label(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Stopped => "stopped",
            RunState::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        [
            RunState::Running,
            RunState::Paused,
            RunState::Stopped,
            RunState::Done,
        ]
        .into_iter()
        .find(|r| r.label() == s)
    }
}

/// Every disposition, for reading labels back.
pub const DISPOSITIONS: [Disposition; 8] = [
    Disposition::Answered,
    Disposition::Busy,
    Disposition::NoAnswer,
    Disposition::Rejected,
    Disposition::NotFound,
    Disposition::Failed,
    Disposition::Machine,
    Disposition::DoNotCall,
];

pub fn disposition(label: &str) -> Option<Disposition> {
    DISPOSITIONS.into_iter().find(|d| d.label() == label)
}

/// A campaign row.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    pub name: String,
    pub file: PathBuf,
    pub state: RunState,
}

/// A contact as stored, with what the scheduler needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredContact {
    pub contact: Contact,
    pub attempts: u32,
    /// Ended attempts by disposition.
    pub counts: BTreeMap<Disposition, u32>,
    pub next_due: Option<Timestamp>,
    pub disposition: Option<Disposition>,
    /// The attempt started and not ended (the process died mid-call).
    pub open_attempt: Option<u32>,
}

/// An ended attempt whose CRM writes the outbox may not have.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreported {
    pub contact: String,
    pub attempt: u32,
    pub writes_json: String,
}

/// One attempt row.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub contact: String,
    pub attempt: u32,
    pub number: String,
    pub started: Timestamp,
    pub ended: Option<Timestamp>,
    pub disposition: Option<Disposition>,
    pub sip_status: Option<u16>,
    pub recovered: bool,
    pub reported: bool,
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn from_ms(v: i64) -> Timestamp {
    Timestamp::from_millisecond(v).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The store; one connection behind a lock (writes are one short
/// transaction each).
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open = |path: &Path| -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // FULL: a committed attempt row survives a power cut too, so
            // nobody is called twice for one attempt after a crash.
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        };
        let conn = open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (each
        // write is one transaction), so the connection stays usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Create the campaign (or find it) and add the contacts it does not
    /// have yet, all due at `now`. Returns how many were added.
    pub fn add_campaign(
        &self,
        name: &str,
        file: &Path,
        contacts: &[Contact],
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO campaigns (name, file, state, created_ms, updated_ms) VALUES (?1, ?2, 'running', ?3, ?3)
             ON CONFLICT(name) DO UPDATE SET file = excluded.file, updated_ms = excluded.updated_ms",
            params![name, file.display().to_string(), ms(now)],
        )?;
        let mut added = 0;
        {
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO contacts (campaign, id, number, name, customer_id, language, time_zone, fields_json, next_due_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for c in contacts {
                let fields = serde_json::to_string(&c.fields).unwrap_or_else(|_| "{}".into());
                added += insert.execute(params![
                    name,
                    c.id,
                    c.number,
                    c.name,
                    c.customer_id,
                    c.language,
                    c.time_zone,
                    fields,
                    ms(now)
                ])?;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    pub fn set_state(&self, name: &str, state: RunState, now: Timestamp) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE campaigns SET state = ?2, updated_ms = ?3 WHERE name = ?1",
            params![name, state.label(), ms(now)],
        )?;
        Ok(())
    }

    pub fn campaigns(&self) -> Result<Vec<CampaignRow>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT name, file, state FROM campaigns ORDER BY created_ms, name")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(name, file, state)| {
                Ok(CampaignRow {
                    state: RunState::parse(&state).ok_or_else(|| {
                        StoreError::BadRow(format!("campaign {name}: state {state:?}"))
                    })?,
                    name,
                    file: PathBuf::from(file),
                })
            })
            .collect()
    }

    pub fn campaign(&self, name: &str) -> Result<Option<CampaignRow>, StoreError> {
        Ok(self.campaigns()?.into_iter().find(|c| c.name == name))
    }

    /// Every contact of a campaign with its attempts.
    pub fn load(&self, name: &str) -> Result<Vec<StoredContact>, StoreError> {
        let conn = self.conn();
        let mut counts: BTreeMap<String, BTreeMap<Disposition, u32>> = BTreeMap::new();
        let mut open: BTreeMap<String, u32> = BTreeMap::new();
        {
            let mut stmt = conn.prepare(
                "SELECT contact_id, attempt, disposition FROM attempts WHERE campaign = ?1",
            )?;
            let rows = stmt.query_map([name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?;
            for row in rows {
                let (contact, attempt, d) = row?;
                match d {
                    Some(label) => {
                        let d = disposition(&label)
                            .ok_or_else(|| StoreError::BadRow(format!("disposition {label:?}")))?;
                        *counts.entry(contact).or_default().entry(d).or_default() += 1;
                    }
                    None => {
                        open.insert(contact, attempt);
                    }
                }
            }
        }
        let mut stmt = conn.prepare(
            "SELECT id, number, name, customer_id, language, time_zone, fields_json, attempts, next_due_ms, disposition
             FROM contacts WHERE campaign = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([name], |r| {
            Ok((
                Contact {
                    id: r.get(0)?,
                    number: r.get(1)?,
                    name: r.get(2)?,
                    customer_id: r.get(3)?,
                    language: r.get(4)?,
                    time_zone: r.get(5)?,
                    zone_source: super::list::ZoneSource::List,
                    fields: BTreeMap::new(),
                },
                r.get::<_, String>(6)?,
                r.get::<_, u32>(7)?,
                r.get::<_, Option<i64>>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut contact, fields, attempts, due, d) = row?;
            contact.fields = serde_json::from_str(&fields).unwrap_or_default();
            let disposition = match d {
                Some(label) => Some(
                    disposition(&label)
                        .ok_or_else(|| StoreError::BadRow(format!("disposition {label:?}")))?,
                ),
                None => None,
            };
            out.push(StoredContact {
                counts: counts.remove(&contact.id).unwrap_or_default(),
                open_attempt: open.remove(&contact.id),
                attempts,
                next_due: due.map(from_ms),
                disposition,
                contact,
            });
        }
        Ok(out)
    }

    /// Commit the start of an attempt: its row and the contact's count, in
    /// one transaction, before the dial. A second start of the same
    /// attempt is refused.
    pub fn begin_attempt(
        &self,
        name: &str,
        contact: &str,
        attempt: u32,
        number: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO attempts (campaign, contact_id, attempt, number, started_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, contact, attempt, number, ms(now)],
        )?;
        if inserted == 0 {
            return Err(StoreError::AttemptTaken {
                campaign: name.to_string(),
                contact: contact.to_string(),
                attempt,
            });
        }
        tx.execute(
            "UPDATE contacts SET attempts = ?3, next_due_ms = NULL WHERE campaign = ?1 AND id = ?2",
            params![name, contact, attempt],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Commit how an attempt ended, what follows for the contact, and the
    /// CRM writes it produced (not yet reported).
    #[allow(clippy::too_many_arguments)]
    pub fn end_attempt(
        &self,
        name: &str,
        contact: &str,
        attempt: u32,
        now: Timestamp,
        disposition: Disposition,
        sip_status: Option<u16>,
        after: After,
        writes_json: &str,
        recovered: bool,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE attempts SET ended_ms = ?4, disposition = ?5, sip_status = ?6, recovered = ?7, writes_json = ?8
             WHERE campaign = ?1 AND contact_id = ?2 AND attempt = ?3 AND ended_ms IS NULL",
            params![
                name,
                contact,
                attempt,
                ms(now),
                disposition.label(),
                sip_status,
                recovered,
                writes_json
            ],
        )?;
        let (due, done) = match after {
            After::Retry(at) => (Some(ms(at)), None),
            After::Done(d) => (None, Some(d.label())),
        };
        tx.execute(
            "UPDATE contacts SET next_due_ms = ?3, disposition = ?4 WHERE campaign = ?1 AND id = ?2",
            params![name, contact, due, done],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A contact finished without an attempt (do-not-call).
    pub fn finish_contact(
        &self,
        name: &str,
        contact: &str,
        disposition: Disposition,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE contacts SET next_due_ms = NULL, disposition = ?3 WHERE campaign = ?1 AND id = ?2",
            params![name, contact, disposition.label()],
        )?;
        Ok(())
    }

    /// The outbox has this attempt's writes.
    pub fn mark_reported(&self, name: &str, contact: &str, attempt: u32) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE attempts SET reported = 1 WHERE campaign = ?1 AND contact_id = ?2 AND attempt = ?3",
            params![name, contact, attempt],
        )?;
        Ok(())
    }

    /// Ended attempts whose writes may not be in the outbox yet.
    pub fn unreported(&self, name: &str) -> Result<Vec<Unreported>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT contact_id, attempt, writes_json FROM attempts
             WHERE campaign = ?1 AND ended_ms IS NOT NULL AND reported = 0 AND writes_json IS NOT NULL",
        )?;
        let rows = stmt
            .query_map([name], |r| {
                Ok(Unreported {
                    contact: r.get(0)?,
                    attempt: r.get(1)?,
                    writes_json: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every attempt of a campaign, in start order.
    pub fn attempts(&self, name: &str) -> Result<Vec<AttemptRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT contact_id, attempt, number, started_ms, ended_ms, disposition, sip_status, recovered, reported
             FROM attempts WHERE campaign = ?1 ORDER BY started_ms, rowid",
        )?;
        let rows = stmt
            .query_map([name], |r| {
                Ok(AttemptRow {
                    contact: r.get(0)?,
                    attempt: r.get(1)?,
                    number: r.get(2)?,
                    started: from_ms(r.get(3)?),
                    ended: r.get::<_, Option<i64>>(4)?.map(from_ms),
                    disposition: r
                        .get::<_, Option<String>>(5)?
                        .as_deref()
                        .and_then(disposition),
                    sip_status: r.get(6)?,
                    recovered: r.get(7)?,
                    reported: r.get(8)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Add numbers (E.164) to the do-not-call list; returns how many were new.
    pub fn add_dnc(
        &self,
        numbers: &[String],
        source: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut added = 0;
        {
            let mut stmt = tx.prepare(
                "INSERT OR IGNORE INTO dnc (number, source, added_ms) VALUES (?1, ?2, ?3)",
            )?;
            for n in numbers {
                added += stmt.execute(params![n, source, ms(now)])?;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    pub fn dnc(&self) -> Result<HashSet<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT number FROM dnc")?;
        let set = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<HashSet<_>, _>>()?;
        Ok(set)
    }

    pub fn is_dnc(&self, number: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT 1 FROM dnc WHERE number = ?1", [number], |_| Ok(()))
            .optional()?
            .is_some())
    }
}
