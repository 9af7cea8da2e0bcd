//! Where voxbridge keeps its durable state: embedded SQLite files (the
//! default, nothing to run) or one PostgreSQL database shared by every node
//! (`storage.url: postgres://…`), so several voxbridge processes on several
//! machines work from the same outbox.
//!
//! - [`StorageConfig`] is the `storage:` block; [`Backend`] what it names.
//! - [`migrate`] runs numbered schema migrations, recorded per component in
//!   a `schema_version` table, on either backend: no table is altered on
//!   open outside a numbered migration.
//! - [`pg`] connects to PostgreSQL with the password from the environment
//!   or a file (never from the URL, never logged).
//!
//! The outbox is the first user ([`crate::outbox`]); call records and
//! campaign state are meant to follow with their own components in the
//! same `schema_version` table.

pub mod migrate;
pub mod pg;

use std::path::PathBuf;

use serde::Deserialize;
use thiserror::Error;

use crate::secret::SecretSource;

/// The environment variable the PostgreSQL password is read from when
/// `storage.password` does not name another place.
pub const PASSWORD_ENV: &str = "VOXBRIDGE_STORAGE_PASSWORD";

/// The `storage:` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `postgres://USER@HOST:PORT/DATABASE` for a shared PostgreSQL; unset
    /// (the default) keeps each store in its own SQLite file.
    pub url: Option<String>,
    /// Where the PostgreSQL password is: `{ env: VAR }` or `{ file: PATH }`.
    /// Unset: `$VOXBRIDGE_STORAGE_PASSWORD` if it is set, else no password.
    pub password: Option<SecretSource>,
}

/// What is wrong with the storage, in words an operator can act on.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum StorageError {
    #[error("storage.url: {0}")]
    Url(String),
    #[error("storage.password: {0}")]
    Password(String),
    #[error("PostgreSQL {target}: {message}")]
    Connect { target: String, message: String },
    #[error("schema of {component}: {message}")]
    Migrate { component: String, message: String },
    #[error("database: {0}")]
    Sql(String),
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        StorageError::Sql(e.to_string())
    }
}

impl From<postgres::Error> for StorageError {
    fn from(e: postgres::Error) -> Self {
        StorageError::Sql(pg::describe(&e))
    }
}

/// Which database a store lives in.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A SQLite file of its own (the path comes from the store's own
    /// configuration, e.g. `outbox.path`).
    Sqlite(PathBuf),
    /// The shared PostgreSQL database.
    Postgres(Box<pg::PgTarget>),
}

impl StorageConfig {
    /// The backend for a store whose SQLite file would be `sqlite_path`.
    /// Reads the PostgreSQL password now, so a missing one stops the start.
    pub fn backend(&self, sqlite_path: PathBuf) -> Result<Backend, StorageError> {
        let Some(url) = self.url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(Backend::Sqlite(sqlite_path));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(Box::new(pg::PgTarget::new(
                url,
                self.password.as_ref(),
            )?)));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            // An explicit SQLite file for this store.
            if !path.is_empty() {
                return Ok(Backend::Sqlite(PathBuf::from(path)));
            }
            return Ok(Backend::Sqlite(sqlite_path));
        }
        let scheme = url.split("://").next().unwrap_or(url);
        Err(StorageError::Url(format!(
            "`{}` is not a storage URL: use postgres://USER@HOST:PORT/DATABASE (or leave it unset for SQLite)",
            if url.contains("://") { scheme } else { "…" }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_means_sqlite_at_the_stores_path() {
        let b = StorageConfig::default()
            .backend(PathBuf::from("var/outbox.sqlite"))
            .expect("sqlite");
        assert!(matches!(b, Backend::Sqlite(p) if p == std::path::Path::new("var/outbox.sqlite")));
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_being_quoted() {
        let cfg = StorageConfig {
            url: Some("postgres://vb:hunter2@db.example:5432/voxbridge".into()),
            password: None,
        };
        let err = cfg
            .backend(PathBuf::new())
            .expect_err("refused")
            .to_string();
        assert!(err.contains("password"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn other_schemes_are_refused() {
        let cfg = StorageConfig {
            url: Some("mysql://vb@db/voxbridge".into()),
            password: None,
        };
        let err = cfg
            .backend(PathBuf::new())
            .expect_err("refused")
            .to_string();
        assert!(err.contains("`mysql`"), "{err}");
    }
}
