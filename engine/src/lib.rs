//! voxbridge engine: SIP signalling, call lifecycle, configuration and the CLI.
//!
//! `sip` speaks SIP through `rsipstack`; `sdp` does offer/answer; `call` runs
//! one call; `flow` decides what a call does; `admission` decides who gets
//! in, by `load` too (how late the runtime runs tasks); `cdr` keeps call
//! records, in SQLite or the shared PostgreSQL (`storage`); `health` knows
//! which parts are up; `admin` serves health and metrics; `app` wires a
//! process together.

pub mod acl;
pub mod admin;
pub mod admission;
pub mod app;
pub mod calendar;
pub mod call;
pub mod call_log;
pub mod campaign;
pub mod cdr;
pub mod config;
pub mod console;
pub mod crm;
pub mod dialing;
pub mod exposition;
pub mod flow;
pub mod health;
pub mod live_calls;
pub mod load;
pub mod metrics;
pub mod outbound;
pub mod pii;
pub mod prewarm;
pub mod recording;
pub mod screen_pop;
pub mod script_flow;
pub mod script_store;
pub mod sdp;
pub mod sip;
pub mod speech;
pub mod srtp_policy;
pub mod storage;
pub mod test_call;
pub mod transcribe;
pub mod transfer;
pub mod turn_latency;
pub mod webrtc;
