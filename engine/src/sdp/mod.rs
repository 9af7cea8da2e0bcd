//! SDP offer/answer for G.711 audio with RFC 4733 telephone events.

mod answer;
mod negotiate;
mod parse;

pub use answer::{answer, offer, SessionOrigin};
pub use negotiate::{negotiate, Negotiated};
pub use parse::{parse, MediaDescription, Offer, RtpMap};

use thiserror::Error;

/// Why an offer could not be used. Every variant maps to a SIP response:
/// parse errors to 400, the rest to 488 Not Acceptable Here.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("SDP body is {0} bytes, over the limit")]
    TooLong(usize),
    #[error("SDP body is not UTF-8")]
    NotUtf8,
    #[error("SDP line {line} is not `<letter>=<value>`")]
    BadLine { line: usize },
    #[error("SDP has no `v=0` line")]
    BadVersion,
    #[error("SDP line {line}: bad connection address")]
    BadConnection { line: usize },
    #[error("SDP line {line}: bad media description")]
    BadMedia { line: usize },
    #[error("SDP line {line}: bad rtpmap")]
    BadRtpmap { line: usize },
    #[error("SDP line {line}: bad ptime")]
    BadPtime { line: usize },
    #[error("SDP offers no audio stream")]
    NoAudio,
    #[error("SDP offers no codec we support (PCMU, PCMA over RTP/AVP)")]
    NoCommonCodec,
    #[error("SDP audio stream has no connection address")]
    NoConnection,
}
