//! Call records in a SQLite file (`cdr.path`): the embedded default, one
//! file per node. WAL, so `voxbridge calls list` and the console read while
//! the engine writes.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection, OptionalExtension};
use voxbridge_crm::storage::migrate::{self, Migration};

use super::{
    from_ms, ms, turns_from, turns_json, CallRecord, CdrError, CdrStore, Direction, COLUMNS,
    COMPONENT,
};

/// The schema, in order; a new column is a new migration at the end (and
/// the same step in [`super::postgres::MIGRATIONS`]).
pub const MIGRATIONS: &[Migration] = &[
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
    Migration {
        version: 3,
        name: "direction of each call",
        // Rows from before stay NULL: their direction was not recorded.
        sql: "ALTER TABLE calls ADD COLUMN direction TEXT",
    },
];

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
                            end_reason, dtmf, recording_path, transfer_target, turns_json, node,
                            direction)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            r.call_id,
            r.from,
            r.to,
            ms(r.started),
            r.answered.map(ms),
            ms(r.ended),
            i64::try_from(r.duration().as_millis()).unwrap_or(i64::MAX),
            r.end_reason,
            r.dtmf,
            r.recording.as_ref().map(|p| p.display().to_string()),
            r.transfer_target,
            turns_json(r),
            r.node,
            r.direction.map(Direction::label),
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
        turns: turns_from(r.get(10)?),
        node: r.get(11)?,
        direction: r
            .get::<_, Option<String>>(12)?
            .as_deref()
            .and_then(Direction::parse),
    })
}

/// The newest `limit` records, newest first.
pub fn list(conn: &Connection, limit: usize) -> Result<Vec<CallRecord>, CdrError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM calls ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], row)?;
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
    let n = conn.query_row("SELECT COUNT(*) FROM calls", [], |r| r.get::<_, i64>(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The call records in one SQLite file.
pub struct SqliteCdr {
    conn: Connection,
}

impl SqliteCdr {
    pub fn open(path: &Path) -> Result<SqliteCdr, CdrError> {
        Ok(SqliteCdr { conn: open(path)? })
    }
}

impl CdrStore for SqliteCdr {
    fn insert(&mut self, records: &[Box<CallRecord>]) -> Result<(), CdrError> {
        let tx = self.conn.transaction()?;
        for r in records {
            insert(&tx, r)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn list(&mut self, limit: usize) -> Result<Vec<CallRecord>, CdrError> {
        list(&self.conn, limit)
    }

    fn show(&mut self, call_id: &str) -> Result<Option<CallRecord>, CdrError> {
        show(&self.conn, call_id)
    }

    fn count(&mut self) -> Result<u64, CdrError> {
        count(&self.conn)
    }

    fn schema_version(&mut self) -> Result<u32, CdrError> {
        Ok(migrate::sqlite_version(&self.conn, COMPONENT)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn_latency::TurnLatency;
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
            direction: Some(Direction::Outbound),
        }
    }

    fn temp_db(name: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("voxbridge-cdr-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
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
        assert_eq!(old.direction, None, "nor a direction");
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
}
