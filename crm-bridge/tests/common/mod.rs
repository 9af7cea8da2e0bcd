//! Shared helpers for the integration tests.

#![allow(dead_code)]

pub mod site_crm;

use std::time::Duration;

/// Poll `done` every 20 ms until it holds or `limit` passes.
pub async fn wait_for(mut done: impl FnMut() -> bool, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}
