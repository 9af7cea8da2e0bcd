//! SIP signalling, on top of `rsipstack`. Nothing outside this module sees a
//! stack type: the engine gets [`CallLeg`]s, [`LegEvent`]s and plain strings.

mod dialer;
mod digest_compat;
mod info_dtmf;
pub mod invite_pace;
mod leg;
pub mod ratelimit;
mod registration;
pub mod screen;
mod screening_socket;
mod sent;
mod server;
mod tls;
mod user_agent;

pub use dialer::{DialCredential, DialError, Dialer, OutboundCall, Placed};
pub use invite_pace::InvitePace;
pub use leg::{CallInfo, CallLeg};
pub use registration::Registrations;
pub use sent::SentWatch;
pub use server::SipServer;
pub use user_agent::{InfoDtmf, UserAgent};

use std::net::SocketAddr;
use thiserror::Error;

/// Errors from the SIP layer.
#[derive(Debug, Error)]
pub enum SipError {
    #[error("cannot bind SIP listener on {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
    #[error("SIP stack: {0}")]
    Stack(String),
    #[error("{0}")]
    Config(String),
}

impl From<rsipstack::Error> for SipError {
    fn from(e: rsipstack::Error) -> Self {
        SipError::Stack(e.to_string())
    }
}
