//! Call records in the PostgreSQL database every node shares
//! (`storage.url`): one `calls` table, each row naming its node, so any
//! node's `voxbridge calls list` shows the whole cluster's calls.

use std::path::PathBuf;

use voxbridge_crm::storage::migrate::{self, Migration};
use voxbridge_crm::storage::pg::{PgClient, PgTarget};

use super::{
    from_ms, ms, turns_from, turns_json, CallRecord, CdrError, CdrStore, Direction, COLUMNS,
    COMPONENT,
};

/// The schema steps, numbered as on SQLite ([`super::sqlite::MIGRATIONS`]).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "calls table",
        sql: "CREATE TABLE calls (
            id              BIGSERIAL PRIMARY KEY,
            call_id         TEXT NOT NULL,
            from_uri        TEXT NOT NULL,
            to_uri          TEXT NOT NULL,
            started_ms      BIGINT NOT NULL,
            answered_ms     BIGINT,
            ended_ms        BIGINT NOT NULL,
            duration_ms     BIGINT NOT NULL,
            end_reason      TEXT NOT NULL,
            dtmf            TEXT NOT NULL,
            recording_path  TEXT,
            transfer_target TEXT,
            turns_json      TEXT
        );
        CREATE INDEX calls_call_id ON calls(call_id);
        CREATE INDEX calls_started ON calls(started_ms);",
    },
    Migration {
        version: 2,
        name: "node of each call",
        sql: "ALTER TABLE calls ADD COLUMN node TEXT",
    },
    Migration {
        version: 3,
        name: "direction of each call",
        sql: "ALTER TABLE calls ADD COLUMN direction TEXT",
    },
];

/// The call records on one PostgreSQL connection.
pub struct PgCdr {
    client: PgClient,
}

impl PgCdr {
    /// Connect and bring the schema up to date.
    pub fn open(target: &PgTarget) -> Result<PgCdr, CdrError> {
        let mut client = target.connect()?;
        // A call record lost with the last commits before a database crash
        // is a record, not a call: no wait for the WAL flush per batch.
        client.batch_execute("SET synchronous_commit = off")?;
        migrate::postgres(
            &mut client,
            COMPONENT,
            MIGRATIONS,
            ms(std::time::SystemTime::now()),
        )?;
        Ok(PgCdr { client })
    }
}

fn row(r: &::postgres::Row) -> CallRecord {
    CallRecord {
        call_id: r.get(0),
        from: r.get(1),
        to: r.get(2),
        started: from_ms(r.get(3)),
        answered: r.get::<_, Option<i64>>(4).map(from_ms),
        ended: from_ms(r.get(5)),
        end_reason: r.get(6),
        dtmf: r.get(7),
        recording: r.get::<_, Option<String>>(8).map(PathBuf::from),
        transfer_target: r.get(9),
        turns: turns_from(r.get(10)),
        node: r.get(11),
        direction: r.get::<_, Option<&str>>(12).and_then(Direction::parse),
    }
}

impl CdrStore for PgCdr {
    fn insert(&mut self, records: &[Box<CallRecord>]) -> Result<(), CdrError> {
        let mut tx = self.client.transaction()?;
        let ins = tx.prepare(
            "INSERT INTO calls (call_id, from_uri, to_uri, started_ms, answered_ms, ended_ms,
                 duration_ms, end_reason, dtmf, recording_path, transfer_target, turns_json,
                 node, direction)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )?;
        for r in records {
            let duration = i64::try_from(r.duration().as_millis()).unwrap_or(i64::MAX);
            let recording = r.recording.as_ref().map(|p| p.display().to_string());
            tx.execute(
                &ins,
                &[
                    &r.call_id,
                    &r.from,
                    &r.to,
                    &ms(r.started),
                    &r.answered.map(ms),
                    &ms(r.ended),
                    &duration,
                    &r.end_reason,
                    &r.dtmf,
                    &recording,
                    &r.transfer_target,
                    &turns_json(r),
                    &r.node,
                    &r.direction.map(Direction::label),
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn list(&mut self, limit: usize) -> Result<Vec<CallRecord>, CdrError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.client.query(
            &format!("SELECT {COLUMNS} FROM calls ORDER BY id DESC LIMIT $1"),
            &[&limit],
        )?;
        Ok(rows.iter().map(row).collect())
    }

    fn show(&mut self, call_id: &str) -> Result<Option<CallRecord>, CdrError> {
        let found = self.client.query_opt(
            &format!("SELECT {COLUMNS} FROM calls WHERE call_id = $1 ORDER BY id DESC LIMIT 1"),
            &[&call_id],
        )?;
        Ok(found.as_ref().map(row))
    }

    fn count(&mut self) -> Result<u64, CdrError> {
        let n: i64 = self
            .client
            .query_one("SELECT COUNT(*) FROM calls", &[])?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn schema_version(&mut self) -> Result<u32, CdrError> {
        Ok(migrate::postgres_version(&mut self.client, COMPONENT)?)
    }

    fn broken(&self) -> bool {
        self.client.is_closed()
    }
}
