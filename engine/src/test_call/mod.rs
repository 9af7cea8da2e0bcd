//! `voxbridge call`: place one scripted test call to a bot and print what
//! happens as it happens.
//!
//! The caller side is built from the engine's own pieces (the SIP user agent
//! in `sip`, SDP offer/answer in `sdp`, a media session from the media
//! crate), so a test call exercises the same code real calls do. The script
//! ([`steps`]) runs once the call is answered; the bot's words come from its
//! admin endpoint ([`admin_client`]) when given, else the bot's speech is
//! detected from its audio ([`speech`]).

pub mod admin_client;
mod runner;
pub mod speech;
pub mod steps;
pub mod transcript;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;
use voxbridge_media::Codec;

pub use runner::{run, EndedBy, Summary};
pub use steps::{parse_step, parse_steps, Step, StepError};
pub use transcript::Printer;

/// Default `--rtp-ports`: away from the bot's default 20000-29999 so a
/// test call and the bot on one host never compete for ports.
pub const DEFAULT_RTP_PORTS: (u16, u16) = (40000, 40999);

/// Default whole-call limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How keys are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtmfMode {
    /// RTP telephone events, what phones send.
    #[default]
    Rfc4733,
    /// SIP INFO with `application/dtmf-relay`, what some PBXs send.
    Info,
}

/// Everything `voxbridge call` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// `sip:bot@127.0.0.1:5060`.
    pub target: String,
    /// User part of our From (a caller number for the bot's CRM lookup).
    pub from: String,
    /// Local SIP address; port 0 picks a free one.
    pub bind: SocketAddr,
    /// RTP port range, on the `bind` IP.
    pub rtp_ports: (u16, u16),
    /// Write the bot's audio here (8 kHz mono 16-bit WAV).
    pub record: Option<PathBuf>,
    /// The bot's admin HTTP address (`host:port`) for the transcript.
    pub admin: Option<String>,
    /// Whole-call limit, from the INVITE.
    pub timeout: Duration,
    /// Offer only this codec; `None` offers PCMU and PCMA.
    pub codec: Option<Codec>,
    pub dtmf: DtmfMode,
    pub steps: Vec<Step>,
}

impl Options {
    /// Defaults for calling `target` with `steps`.
    pub fn new(target: impl Into<String>, steps: Vec<Step>) -> Self {
        Options {
            target: target.into(),
            from: DEFAULT_CALLER.to_string(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            rtp_ports: DEFAULT_RTP_PORTS,
            record: None,
            admin: None,
            timeout: DEFAULT_TIMEOUT,
            codec: None,
            dtmf: DtmfMode::Rfc4733,
            steps,
        }
    }
}

/// Our user part when `--from` is not given.
pub const DEFAULT_CALLER: &str = "voxbridge-call";

/// Why a test call failed.
#[derive(Debug, Error)]
pub enum TestCallError {
    /// Something to prepare before dialing (a WAV, TTS, the recording file).
    #[error("{0}")]
    Prepare(String),
    #[error(transparent)]
    Sip(#[from] crate::sip::SipError),
    #[error("RTP: {0}")]
    Rtp(#[from] voxbridge_media::PortPoolError),
    #[error("the bot refused the call: {}", status_text(*.code))]
    Refused { code: u16 },
    #[error("the INVITE failed: {0}")]
    DialFailed(String),
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    #[error("unusable SDP answer from the bot: {0}")]
    BadAnswer(#[from] crate::sdp::SdpError),
    #[error("media: {0}")]
    Media(#[from] voxbridge_media::StartError),
    #[error("the call was still up after {0:?}; sent BYE")]
    Timeout(Duration),
    #[error("interrupted")]
    Interrupted,
    #[error("{step} failed: {reason}")]
    Step { step: String, reason: String },
    #[error("the call was lost: {0}")]
    Lost(String),
    #[error("cannot write the recording {}: {source}", .path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `486 Busy Here`: the code with its usual reason phrase, when we know it.
pub fn status_text(code: u16) -> String {
    match reason_phrase(code) {
        "" => code.to_string(),
        reason => format!("{code} {reason}"),
    }
}

/// The usual reason phrase, for status codes a bot or PBX refuses calls with.
fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "",
    }
}

/// A SIP URI to call: `sip:bot@127.0.0.1:5060` (the stack checks the rest).
pub fn parse_target(text: &str) -> Result<String, String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"))
        .ok_or_else(|| format!("`{text}` is not a SIP URI like sip:bot@127.0.0.1:5060"))?;
    if rest.is_empty() || rest.ends_with('@') {
        return Err(format!("`{text}` has no host"));
    }
    Ok(text.to_string())
}

/// `40000-40999`.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{text}` is not a port range like 40000-40999");
    let (min, max) = text.trim().split_once('-').ok_or_else(bad)?;
    let min: u16 = min.trim().parse().map_err(|_| bad())?;
    let max: u16 = max.trim().parse().map_err(|_| bad())?;
    // RTP takes an even port and keeps the next one for RTCP.
    if min == 0 || max <= min {
        return Err(format!("`{text}`: need 0 < MIN < MAX"));
    }
    Ok((min, max))
}

/// `pcmu` or `pcma`.
pub fn parse_codec(text: &str) -> Result<Codec, String> {
    Codec::from_encoding_name(text.trim()).ok_or_else(|| format!("`{text}`: use pcmu or pcma"))
}

/// `rfc4733` or `info`.
pub fn parse_dtmf_mode(text: &str) -> Result<DtmfMode, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "rfc4733" | "rtp" => Ok(DtmfMode::Rfc4733),
        "info" | "sip-info" => Ok(DtmfMode::Info),
        _ => Err(format!("`{text}`: use rfc4733 or info")),
    }
}

/// A caller number or name usable as a SIP user part (`+15551230001`).
pub fn parse_caller(text: &str) -> Result<String, String> {
    let text = text.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+-_.!~*'()&=$,;?/".contains(c);
    if text.is_empty() {
        return Err("give a caller number, e.g. +15551230001".to_string());
    }
    if let Some(bad) = text.chars().find(|&c| !allowed(c)) {
        return Err(format!("`{text}`: `{bad}` cannot be in a SIP user part"));
    }
    Ok(text.to_string())
}

/// `host:port` of the admin endpoint (an `http://` prefix and a trailing
/// slash are forgiven).
pub fn parse_admin(text: &str) -> Result<String, String> {
    let trimmed = text
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    match trimmed.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(trimmed.to_string())
        }
        _ => Err(format!("`{text}` is not HOST:PORT, e.g. 127.0.0.1:9060")),
    }
}

/// `--timeout`: a duration like `90s`, `2m`, or whole seconds: the flag
/// is documented as `--timeout SECS`, so its name carries the unit the way
/// a `_secs` key does (every other duration needs one in the text).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let d = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => steps::parse_duration(text)?,
    };
    // The same hour as `wait:`: a typo should not hang a test run.
    if d > Duration::from_secs(3600) {
        return Err(format!("`{text}` is longer than an hour"));
    }
    if d.is_zero() {
        return Err("the timeout must be more than 0".to_string());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values() {
        assert_eq!(
            parse_target(" sip:bot@127.0.0.1:5060 "),
            Ok("sip:bot@127.0.0.1:5060".into())
        );
        assert!(parse_target("bot@127.0.0.1").is_err());
        assert!(parse_target("sip:bot@").is_err());
        assert!(parse_target("sip:").is_err());
        assert_eq!(parse_port_range("40000-40999"), Ok((40000, 40999)));
        assert!(parse_port_range("40000").is_err());
        assert!(parse_port_range("5-4").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("a-b").is_err());
        assert_eq!(parse_codec("PCMA"), Ok(Codec::Pcma));
        assert!(parse_codec("opus").is_err());
        assert_eq!(parse_dtmf_mode("info"), Ok(DtmfMode::Info));
        assert_eq!(parse_dtmf_mode("RFC4733"), Ok(DtmfMode::Rfc4733));
        assert!(parse_dtmf_mode("inband").is_err());
        assert_eq!(parse_caller(" +15551230001 "), Ok("+15551230001".into()));
        assert!(parse_caller("+1 555").unwrap_err().contains("` `"));
        assert!(parse_caller("a@b").is_err());
        assert!(parse_caller("").is_err());
        assert_eq!(
            parse_admin("http://127.0.0.1:9060/"),
            Ok("127.0.0.1:9060".into())
        );
        assert_eq!(parse_admin("localhost:9060"), Ok("localhost:9060".into()));
        assert!(parse_admin("127.0.0.1").is_err());
        assert!(parse_admin(":9060").is_err());
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_timeout("0").is_err());
    }

    #[test]
    fn refusals_read_like_sip() {
        let e = TestCallError::Refused { code: 486 };
        assert_eq!(e.to_string(), "the bot refused the call: 486 Busy Here");
        let e = TestCallError::Refused { code: 499 };
        assert_eq!(e.to_string(), "the bot refused the call: 499");
    }
}
