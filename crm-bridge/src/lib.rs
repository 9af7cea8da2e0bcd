//! voxbridge CRM/ERP bridge.
//!
//! What a call needs from the systems around it: who is calling (looked up
//! while the phone rings), their orders and the stock of what they ask
//! about, and, after the call, a call log, tickets and tasks written back
//! without ever losing one.
//!
//! - [`connector::Connector`] is the one interface every system implements;
//!   [`model`] holds the plain types exchanged.
//! - [`bridge::Bridge`] is what the engine calls: it routes operations to
//!   systems through [`resilience`] (time budgets, retries for reads, a
//!   circuit breaker per system, the profile cache, coalescing).
//! - [`http`] reads replies with a size limit and names every bad reply.
//! - [`outbox`] commits every write a call produces to SQLite and delivers
//!   it in the background, at least once, idempotently; [`outbox::admin`]
//!   is the operator's list/retry/purge.
//! - [`phone`] normalises numbers to E.164; [`mask`] keeps personal data out
//!   of logs; [`secret`] reads credentials from the environment or files.
//! - [`fuzzy`] matches spoken product names against a catalogue.
//! - [`config::CrmConfig`] is the `crm:` configuration block; it builds the
//!   bridge and opens the outbox.
//! - [`connectors`] holds one module per system: the
//!   [`connectors::embedded`] SQLite CRM the default set-up uses, the
//!   YAML-driven [`connectors::rest`], [`connectors::tryton`],
//!   [`connectors::rt`], [`connectors::salesforce`], [`connectors::hubspot`],
//!   [`connectors::zendesk`] and [`connectors::odoo`].
//! - [`template`], [`mapping`] and [`context`] are the request templates,
//!   JSON paths and value maps that describe a site's fields; [`auth`] the
//!   ways to authenticate (OAuth2 client credentials included).
//!
//! The engine's part, in short:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use voxbridge_crm::model::{CallLog, Write};
//! use voxbridge_crm::CrmConfig;
//!
//! let config = CrmConfig::load(std::path::Path::new("crm.yaml"))?;
//! let bridge = Arc::new(config.build_bridge()?);
//! let outbox = config.open_outbox()?;
//! // Background delivery until shutdown.
//! let worker = outbox.clone();
//! let target = bridge.clone();
//! tokio::spawn(async move {
//!     worker.run(target, std::future::pending(), std::time::Duration::from_secs(5)).await
//! });
//! // While the phone rings: a profile or LookupFailed within the budget.
//! let caller = bridge.lookup_caller("+86 138 0013 8000").await;
//! // When the call ends: every write in one commit.
//! outbox.enqueue_all(vec![Write::CallLog(CallLog::default())]).await?;
//! # let _ = caller;
//! # Ok(())
//! # }
//! ```

pub mod auth;
pub mod bridge;
pub mod config;
pub mod connector;
pub mod connectors;
pub mod context;
pub mod datetime;
pub mod error;
pub mod fuzzy;
pub mod http;
pub mod mapping;
pub mod mask;
pub mod model;
pub mod outbox;
pub mod phone;
pub mod resilience;
pub mod secret;
pub mod storage;
pub mod template;

pub use bridge::{Bridge, LookupFailed};
pub use config::CrmConfig;
pub use connector::{Connector, Operation};
pub use error::CrmError;
pub use phone::{Country, E164};
