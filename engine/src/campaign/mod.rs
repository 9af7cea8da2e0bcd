//! Outbound campaigns: who to call, when, how fast, how often, and what
//! each attempt produced.
//!
//! `format` reads the campaign file; `list` its contacts (CSV or CRM) and
//! `zones` the zone a number's country is in; `hours` the calling window;
//! `dnc` the do-not-call list; `schedule` is the sans-IO scheduler (time
//! passed in); `store` keeps the state in SQLite; `results` builds the CRM
//! writes of an attempt; `runner` drives one campaign with the clock and a
//! [`crate::dialing::Dialer`]; `manager` holds the engine's campaigns;
//! `admin_routes` and `client` are the admin API and the CLI's side of it;
//! `metrics` the Prometheus families; `engine_dialer` hands attempts to
//! the engine's outbound SIP dialler once SIP listens.

pub mod admin_routes;
pub mod client;
pub mod dnc;
pub mod engine_dialer;
pub mod format;
pub mod hours;
pub mod list;
pub mod manager;
pub mod metrics;
pub mod results;
pub mod runner;
pub mod schedule;
pub mod store;
pub mod zones;
