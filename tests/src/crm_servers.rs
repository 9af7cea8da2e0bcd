//! Real CRM and ticket servers for end-to-end calls: Tryton 7.0 and Request
//! Tracker 5 from the shared test-support crate (the same servers and seed
//! data the connector tests in crm-bridge use), started in this suite's
//! scratch folders.

use anyhow::Result;

pub use voxbridge_test_support::rt::{rt_missing, RtServer};
pub use voxbridge_test_support::tryton::{
    tryton_missing, tryton_venv, TrytonServer, TRYTON_ADMIN_PASSWORD, TRYTON_DATABASE,
};

use crate::scratch_dir;

/// Start Tryton in `target/e2e/<name>`.
pub fn start_tryton(name: &str) -> Result<TrytonServer> {
    TrytonServer::start_in(&scratch_dir(name)?)
}

/// Start Request Tracker in `target/e2e/<name>`.
pub fn start_rt(name: &str) -> Result<RtServer> {
    RtServer::start_in(&scratch_dir(name)?)
}
