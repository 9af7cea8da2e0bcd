//! Connecting to the shared PostgreSQL.
//!
//! The blocking `postgres` client runs a small tokio runtime of its own, so
//! it must not be created, used or dropped on a thread that is running
//! async tasks. voxbridge calls it from `spawn_blocking` sections (like
//! rusqlite); [`connect`] and [`PgClient`]'s drop move to a plain thread so
//! that opening a store from async code and dropping it there are safe too.
//!
//! The password never appears in the URL (refused there) nor in any
//! message: targets are shown as `user@host:port/database`. Connections are
//! unencrypted (`NoTls`): keep PostgreSQL on a private network or loopback.

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::time::Duration;

use postgres::{Client, Config, NoTls};

use super::{StorageError, PASSWORD_ENV};
use crate::secret::SecretSource;

/// A PostgreSQL database to connect to, password included.
#[derive(Clone)]
pub struct PgTarget {
    config: Config,
    shown: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgTarget({})", self.shown)
    }
}

impl PgTarget {
    /// Parse `url` and read the password from `password` (or
    /// `$VOXBRIDGE_STORAGE_PASSWORD` when unset).
    pub fn new(url: &str, password: Option<&SecretSource>) -> Result<PgTarget, StorageError> {
        let mut config = Config::from_str(url).map_err(|e| {
            // The parser's message never includes the URL itself.
            StorageError::Url(format!("not a PostgreSQL URL: {e}"))
        })?;
        if config.get_password().is_some() {
            return Err(StorageError::Url(format!(
                "a password cannot be written in the URL; put it in ${PASSWORD_ENV} or name it with storage.password: {{ file: PATH }}"
            )));
        }
        match password {
            Some(source) => {
                let secret = source
                    .load()
                    .map_err(|e| StorageError::Password(e.to_string()))?;
                config.password(secret.expose());
            }
            None => {
                if let Ok(value) = std::env::var(PASSWORD_ENV) {
                    if !value.is_empty() {
                        config.password(value);
                    }
                }
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("voxbridge");
        }
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let shown = format!(
            "{}@{host}:{port}/{}",
            config.get_user().unwrap_or(""),
            config.get_dbname().unwrap_or("")
        );
        Ok(PgTarget { config, shown })
    }

    /// `user@host:port/database`, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A new connection.
    pub fn connect(&self) -> Result<PgClient, StorageError> {
        let config = self.config.clone();
        // A plain thread: the client's own runtime cannot start on a thread
        // that runs async tasks.
        let joined = std::thread::scope(|s| s.spawn(move || config.connect(NoTls)).join());
        match joined {
            Ok(Ok(client)) => Ok(PgClient(Some(client))),
            Ok(Err(e)) => Err(StorageError::Connect {
                target: self.shown.clone(),
                message: describe(&e),
            }),
            Err(_) => Err(StorageError::Connect {
                target: self.shown.clone(),
                message: "the connecting thread failed".into(),
            }),
        }
    }
}

/// A connection; closed on a plain thread when dropped.
pub struct PgClient(Option<Client>);

impl Deref for PgClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Only `drop` takes the client out.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("client used after drop"))
    }
}

impl DerefMut for PgClient {
    fn deref_mut(&mut self) -> &mut Client {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("client used after drop"))
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            // Closing blocks on the client's runtime: not on this thread,
            // which may be running async tasks.
            let _ = std::thread::spawn(move || drop(client));
        }
    }
}

/// A PostgreSQL error in one line: the server's message and detail when it
/// sent one (the client's own text is only "db error").
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => e.to_string(),
    }
}
