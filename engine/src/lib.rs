//! voxbridge engine: SIP signalling, call lifecycle, configuration and the CLI.
//!
//! `sip` speaks SIP through `rsipstack`; `sdp` does offer/answer; `call` runs
//! one call; `flow` decides what a call does; `app` wires a process together.

pub mod app;
pub mod call;
pub mod config;
pub mod flow;
pub mod metrics;
pub mod pii;
pub mod sdp;
pub mod sip;
