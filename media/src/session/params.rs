//! What the engine negotiated for a call's media (SDP offer/answer), as the
//! session needs it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use thiserror::Error;

use crate::srtp::SrtpParams;
use crate::{Codec, Direction};

/// Shortest packet interval we send or expect.
pub const MIN_PTIME: Duration = Duration::from_millis(10);
/// Longest packet interval we send or expect.
pub const MAX_PTIME: Duration = Duration::from_millis(60);

/// Negotiated media parameters; replaced as a whole on re-INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaParams {
    /// The G.711 variant.
    pub codec: Codec,
    /// Payload type used for the codec (normally its static one).
    pub payload_type: u8,
    /// Payload type of telephone-event, when the peer offered it.
    pub dtmf_payload_type: Option<u8>,
    /// Packet interval we send at: whole milliseconds within 10..=60.
    pub ptime: Duration,
    /// Where to send until RTP arrives and we latch onto its source.
    pub remote: SocketAddr,
    /// Media direction from our side.
    pub direction: Direction,
    /// Report [`MediaEvent::Inactive`](super::MediaEvent::Inactive) after
    /// this long without RTP while we expect some (sendrecv, and recvonly,
    /// where the peer holding us is expected to send music on hold; not
    /// sendonly or inactive). Zero disables it.
    pub inactivity_timeout: Duration,
    /// How long each digit we send lasts (the final RFC 4733 duration field,
    /// in 8 kHz samples, is this long; at least one packet interval).
    pub dtmf_duration: Duration,
    /// Which sources may latch (see [`Latching`]).
    pub latching: Latching,
    /// How long after the session starts (the answer), or after a re-INVITE
    /// moved the peer, a NAT'd source may still latch.
    pub latch_window: Duration,
    /// Where the call's SIP came from: behind NAT the RTP comes from this
    /// IP even when the SDP names a private one.
    pub sip_source: Option<IpAddr>,
    /// SRTP keys when SDES negotiated them; `None`: plain RTP.
    pub srtp: Option<SrtpParams>,
}

/// Which RTP sources a session takes audio from (and sends to). Packets
/// from any other source are dropped and counted, so a stranger who finds
/// the port neither hears the call nor gets audio into it (RTP bleed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Latching {
    /// Only the address and port the SDP signalled.
    Strict,
    /// The signalled address, or else the first source within the latch
    /// window whose IP is the signalled one or the SIP source's: a caller
    /// behind NAT sends from a port its SDP does not know. Once latched, a
    /// different source is never followed (only the signalled address may
    /// take over).
    #[default]
    Nat,
}

/// Default [`MediaParams::latch_window`].
pub const DEFAULT_LATCH_WINDOW: Duration = Duration::from_secs(3);

impl MediaParams {
    /// Typical parameters: static payload type, telephone-event on 101,
    /// 20 ms, send and receive, 30 s inactivity timeout, 100 ms digits,
    /// NAT latching for 3 s.
    pub fn new(codec: Codec, remote: SocketAddr) -> Self {
        MediaParams {
            codec,
            payload_type: codec.payload_type(),
            dtmf_payload_type: Some(101),
            ptime: Duration::from_millis(20),
            remote,
            direction: Direction::SendRecv,
            inactivity_timeout: Duration::from_secs(30),
            dtmf_duration: crate::dtmf::DEFAULT_DIGIT_DURATION,
            latching: Latching::Nat,
            latch_window: DEFAULT_LATCH_WINDOW,
            sip_source: None,
            srtp: None,
        }
    }

    /// Check the values the session relies on.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.payload_type > 127 {
            return Err(ParamsError::PayloadType(self.payload_type));
        }
        if let Some(pt) = self.dtmf_payload_type {
            if pt > 127 {
                return Err(ParamsError::PayloadType(pt));
            }
            if pt == self.payload_type {
                return Err(ParamsError::PayloadTypeClash(pt));
            }
        }
        if !(MIN_PTIME..=MAX_PTIME).contains(&self.ptime)
            || !self.ptime.subsec_micros().is_multiple_of(1000)
        {
            return Err(ParamsError::Ptime(self.ptime));
        }
        Ok(())
    }

    /// 8 kHz samples per packet we send.
    pub fn samples_per_frame(&self) -> usize {
        self.ptime.as_millis() as usize * (Codec::CLOCK_RATE as usize / 1000)
    }
}

/// Media parameters the session cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamsError {
    /// RTP payload types are 7 bits.
    #[error("payload type {0} is not in 0..=127")]
    PayloadType(u8),
    /// Audio and telephone-event cannot share a payload type.
    #[error("payload type {0} is used for both audio and telephone-event")]
    PayloadTypeClash(u8),
    /// ptime outside 10..=60 ms or not a whole number of milliseconds.
    #[error("ptime {0:?} is not a whole number of milliseconds in 10..=60")]
    Ptime(Duration),
    /// The SRTP keys could not be turned into contexts.
    #[error("SRTP: {0}")]
    Srtp(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let remote: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let ok = MediaParams::new(Codec::Pcma, remote);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.payload_type, 8);
        assert_eq!(ok.samples_per_frame(), 160);
        let mut p = ok.clone();
        p.ptime = Duration::from_millis(5);
        assert_eq!(p.validate(), Err(ParamsError::Ptime(p.ptime)));
        p.ptime = Duration::from_micros(22_500);
        assert!(p.validate().is_err());
        p.ptime = Duration::from_millis(30);
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.samples_per_frame(), 240);
        p.dtmf_payload_type = Some(8);
        assert_eq!(p.validate(), Err(ParamsError::PayloadTypeClash(8)));
        p.dtmf_payload_type = Some(200);
        assert_eq!(p.validate(), Err(ParamsError::PayloadType(200)));
    }
}
