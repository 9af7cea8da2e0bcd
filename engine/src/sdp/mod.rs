//! SDP offer/answer for G.711 audio with RFC 4733 telephone events.
//! Offers are read tolerantly: what we do not use (video, ICE and DTLS
//! attributes, `b=` lines, rtpmaps of other codecs, broken attributes) is
//! skipped, and only what stops a call is refused.

mod answer;
mod negotiate;
mod parse;
pub mod sdes;

#[cfg(test)]
mod fuzz;

pub use answer::{answer, offer, SessionOrigin};
pub use negotiate::{negotiate, negotiate_with, Negotiated};
pub use parse::{parse, MediaDescription, Offer, RtpMap};
pub use sdes::SrtpPolicy;

use thiserror::Error;

/// Why an offer could not be used. A body that is not SDP at all is a
/// 400; an offer we read but cannot take is a 488 with a `Warning` code
/// (RFC 3261 §20.43) saying which part stops the call, see [`SdpError::refusal`].
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
    #[error("SDP offers no audio stream")]
    NoAudio,
    #[error("SDP offers no codec we support (PCMU, PCMA)")]
    NoCommonCodec,
    #[error("SDP offers audio only over a transport we do not speak (we take RTP/AVP, RTP/AVPF)")]
    NoTransport,
    #[error("SDP audio stream has no usable connection address or port")]
    NoConnection,
    #[error("SDP offers plain RTP only; SRTP (RTP/SAVP with a=crypto) is required here")]
    SrtpRequired,
    #[error("SDP offers SRTP without an a=crypto line we can use: {0}")]
    NoUsableCrypto(sdes::CryptoError),
}

impl SdpError {
    /// The SIP status for this error, and for a 488 the Warning code.
    pub fn refusal(&self) -> (u16, Option<u16>) {
        match self {
            SdpError::NoAudio => (488, Some(304)),
            SdpError::NoCommonCodec => (488, Some(305)),
            SdpError::NoTransport => (488, Some(302)),
            SdpError::NoConnection => (488, Some(301)),
            // 302 "Incompatible transport protocol" (RFC 3261 §20.43):
            // RTP/AVP where only RTP/SAVP will do.
            SdpError::SrtpRequired => (488, Some(302)),
            // 306 "Attribute not understood": the a=crypto lines.
            SdpError::NoUsableCrypto(_) => (488, Some(306)),
            SdpError::TooLong(_)
            | SdpError::NotUtf8
            | SdpError::BadLine { .. }
            | SdpError::BadVersion => (400, None),
        }
    }

    /// `Warning:` value for a 488: `code agent "text"` (RFC 3261 §20.43).
    pub fn warning(&self, agent: &str) -> Option<String> {
        let (_, code) = self.refusal();
        // Some texts quote the offer (an a=crypto suite or parameter): keep
        // the quoted-string valid and the header short whatever it holds.
        let text: String = self
            .to_string()
            .chars()
            .map(|c| match c {
                '"' | '\\' => '\'',
                c if c.is_ascii_graphic() || c == ' ' => c,
                _ => '?',
            })
            .take(200)
            .collect();
        code.map(|c| format!("{c} {agent} \"{text}\""))
    }
}
