//! Where the engine keeps its durable state. The shared database is named
//! in one place: the `storage:` block of the CRM configuration file
//! (`crm.config`), the block the CRM outbox and its standalone tools read
//! too. With `storage.url: postgres://…` there, call records (and campaign
//! state) go to that PostgreSQL with the outbox; without it (or without a
//! CRM configuration) each store is its own SQLite file (`cdr.path`…).

use std::path::Path;

use thiserror::Error;
use voxbridge_crm::storage::{Backend, StorageConfig, StorageError};
use voxbridge_crm::CrmConfig;

use crate::config::Config;

#[derive(Debug, Error)]
pub enum StorageChoiceError {
    #[error("crm.config: {0}")]
    CrmConfig(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The `storage:` block in force: the CRM configuration's, or the default
/// (SQLite) when there is none.
pub fn storage_config(config: &Config) -> Result<StorageConfig, StorageChoiceError> {
    match &config.crm.config {
        Some(path) => CrmConfig::load(path)
            .map(|c| c.storage)
            .map_err(|e| StorageChoiceError::CrmConfig(e.to_string())),
        None => Ok(StorageConfig::default()),
    }
}

/// The backend of a store whose SQLite file would be `sqlite_path`.
pub fn backend(config: &Config, sqlite_path: &Path) -> Result<Backend, StorageChoiceError> {
    Ok(storage_config(config)?.backend(sqlite_path.to_path_buf())?)
}
