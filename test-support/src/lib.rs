//! What the test suites share, so there is one copy of each: the real
//! ticket and ERP servers the CRM connectors and the whole-call tests talk
//! to ([`tryton`], [`rt`]), started on 127.0.0.1 with the same seed data,
//! a throwaway PostgreSQL for the storage tests ([`postgres`]),
//! the process handling around them ([`process`]), and a blocking HTTP
//! client for checking what the bot wrote ([`http`]).

pub mod http;
pub mod postgres;
pub mod process;
pub mod rt;
pub mod tryton;

use std::path::{Path, PathBuf};

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A loopback TCP port free right now.
pub fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
