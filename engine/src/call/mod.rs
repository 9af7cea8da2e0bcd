//! The life of one call, from the offer to its record.
//!
//! - [`core`]: every decision of the call, sans-IO (inputs in with their
//!   time, commands and the next deadline out), shared by every kind of call;
//! - [`shell`]: the thin async side of one call, which runs the core's
//!   commands as tasks whose results come back as inputs, and sleeps until
//!   the next deadline, so nothing it waits for hides a BYE, a key, a drain
//!   or an RTP timeout;
//! - [`leg`]: the signalling of one party, behind a trait (inbound SIP today);
//! - [`task`]: the call's task, its tracing span, panic containment and the
//!   record written at the end, whatever ended the call.

pub mod context;
pub mod core;
mod end;
pub mod leg;
mod listeners;
mod machine_sink;
mod shell;
mod signalling;
mod task;
mod work;

pub use context::{CallContext, FlowFactory, FlowStart};
pub use core::{MachineCheck, MachineOutcome};
pub use end::EndReason;
pub use task::{run, run_leg, CallEnd, Party};
