//! Numbered schema migrations, the same scheme on both backends.
//!
//! Each store (a *component*: `outbox`, later `calls`, `campaigns`) lists
//! its migrations in order, 1, 2, 3…; the `schema_version` table records
//! which ones a database has had. Opening a store applies the missing ones,
//! each in the transaction that records it, under a lock (SQLite `BEGIN
//! IMMEDIATE`, a PostgreSQL advisory lock) so that two processes starting
//! together do not both apply one. A database newer than the code (a
//! rollback after an upgrade) is refused rather than guessed at.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::StorageError;

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3… in the order they apply.
    pub version: u32,
    /// What it does, stored with the version.
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

const SQLITE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version(
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    PRIMARY KEY(component, version)
)";

const PG_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version(
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY(component, version)
)";

/// Serialises migrations of all voxbridge processes on one PostgreSQL
/// database ("vox" in ASCII).
const PG_LOCK: i64 = 0x0076_6f78;

fn check(component: &str, current: u32, migrations: &[Migration]) -> Result<(), StorageError> {
    for (i, m) in migrations.iter().enumerate() {
        if usize::try_from(m.version).ok() != Some(i + 1) {
            return Err(StorageError::Migrate {
                component: component.into(),
                message: format!("migration {} is listed as number {}", m.version, i + 1),
            });
        }
    }
    let known = u32::try_from(migrations.len()).unwrap_or(u32::MAX);
    if current > known {
        return Err(StorageError::Migrate {
            component: component.into(),
            message: format!(
                "the database is at version {current}, this voxbridge knows versions up to {known} (a newer voxbridge wrote it)"
            ),
        });
    }
    Ok(())
}

/// Bring a SQLite database up to the last migration; its version after.
pub fn sqlite(
    conn: &mut Connection,
    component: &str,
    migrations: &[Migration],
    now: i64,
) -> Result<u32, StorageError> {
    let fail = |m: &Migration, e: rusqlite::Error| StorageError::Migrate {
        component: component.into(),
        message: format!("migration {} ({}): {e}", m.version, m.name),
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(SQLITE_TABLE)?;
    let current = sqlite_version_in(&tx, component)?;
    check(component, current, migrations)?;
    for m in migrations.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql).map_err(|e| fail(m, e))?;
        tx.execute(
            "INSERT INTO schema_version(component, version, name, applied_at) VALUES (?1, ?2, ?3, ?4)",
            params![component, m.version, m.name, now],
        )?;
    }
    tx.commit()?;
    Ok(current.max(u32::try_from(migrations.len()).unwrap_or(u32::MAX)))
}

fn sqlite_version_in(conn: &Connection, component: &str) -> Result<u32, StorageError> {
    Ok(conn
        .query_row(
            "SELECT MAX(version) FROM schema_version WHERE component = ?1",
            [component],
            |r| r.get::<_, Option<u32>>(0),
        )
        .optional()?
        .flatten()
        .unwrap_or(0))
}

/// The version a SQLite database is at (0: none applied).
pub fn sqlite_version(conn: &Connection, component: &str) -> Result<u32, StorageError> {
    let has_table: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(0);
    }
    sqlite_version_in(conn, component)
}

/// Bring a PostgreSQL database up to the last migration; its version after.
pub fn postgres(
    client: &mut postgres::Client,
    component: &str,
    migrations: &[Migration],
    now: i64,
) -> Result<u32, StorageError> {
    let mut tx = client.transaction()?;
    // Held to the end of the transaction; taken before the table exists,
    // since two CREATE TABLE IF NOT EXISTS can collide.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PG_LOCK])?;
    tx.batch_execute(PG_TABLE)?;
    let current = postgres_version_in(&mut tx, component)?;
    check(component, current, migrations)?;
    for m in migrations.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql).map_err(|e| StorageError::Migrate {
            component: component.into(),
            message: format!(
                "migration {} ({}): {}",
                m.version,
                m.name,
                super::pg::describe(&e)
            ),
        })?;
        let version = i32::try_from(m.version).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO schema_version(component, version, name, applied_at) VALUES ($1, $2, $3, $4)",
            &[&component, &version, &m.name, &now],
        )?;
    }
    tx.commit()?;
    Ok(current.max(u32::try_from(migrations.len()).unwrap_or(u32::MAX)))
}

fn postgres_version_in(
    client: &mut impl postgres::GenericClient,
    component: &str,
) -> Result<u32, StorageError> {
    let row = client.query_one(
        "SELECT MAX(version) FROM schema_version WHERE component = $1",
        &[&component],
    )?;
    let v: Option<i32> = row.get(0);
    Ok(v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0))
}

/// The version a PostgreSQL database is at (0: none applied).
pub fn postgres_version(
    client: &mut postgres::Client,
    component: &str,
) -> Result<u32, StorageError> {
    let row = client.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?;
    if !row.get::<_, bool>(0) {
        return Ok(0);
    }
    postgres_version_in(client, component)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: [Migration; 2] = [
        Migration {
            version: 1,
            name: "table",
            sql: "CREATE TABLE IF NOT EXISTS t(a INTEGER)",
        },
        Migration {
            version: 2,
            name: "column",
            sql: "ALTER TABLE t ADD COLUMN b TEXT",
        },
    ];

    #[test]
    fn sqlite_applies_each_step_once_and_refuses_a_newer_database() {
        let mut conn = Connection::open_in_memory().expect("open");
        assert_eq!(sqlite_version(&conn, "x").expect("version"), 0);
        assert_eq!(sqlite(&mut conn, "x", &STEPS[..1], 1).expect("v1"), 1);
        assert_eq!(sqlite(&mut conn, "x", &STEPS, 2).expect("v2"), 2);
        // Again: nothing to do (an ALTER applied twice would fail).
        assert_eq!(sqlite(&mut conn, "x", &STEPS, 3).expect("again"), 2);
        // Another component has its own numbering.
        assert_eq!(sqlite_version(&conn, "y").expect("y"), 0);
        let err = sqlite(&mut conn, "x", &STEPS[..1], 4).expect_err("newer");
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn a_failing_step_leaves_the_database_as_it_was() {
        let mut conn = Connection::open_in_memory().expect("open");
        let bad = [
            STEPS[0],
            Migration {
                version: 2,
                name: "broken",
                sql: "ALTER TABLE nowhere ADD COLUMN b TEXT",
            },
        ];
        let err = sqlite(&mut conn, "x", &bad, 1).expect_err("fails");
        assert!(err.to_string().contains("migration 2 (broken)"), "{err}");
        assert_eq!(sqlite_version(&conn, "x").expect("version"), 0);
    }
}
