//! Offer/answer (RFC 3264) for one audio stream: pick the codec, the DTMF
//! payload type, the packet time and the direction from a caller's offer.

use std::net::SocketAddr;

use voxbridge_media::{Codec, Direction};

use super::parse::{MediaDescription, Offer};
use super::SdpError;

/// Packet times we will send; outside this range we fall back to 20 ms,
/// which every G.711 endpoint accepts.
const PTIME_RANGE_MS: std::ops::RangeInclusive<u32> = 10..=60;
const DEFAULT_PTIME_MS: u32 = 20;

/// What the offer and our preferences agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP (until latching learns the real source).
    pub remote: SocketAddr,
    pub codec: Codec,
    /// The payload type the offer used for `codec` (static or dynamic).
    pub payload_type: u8,
    /// `telephone-event/8000` payload type, when offered.
    pub dtmf_payload_type: Option<u8>,
    pub ptime_ms: u32,
    /// Our direction, the answer to the offered one.
    pub direction: Direction,
    /// Index of the accepted `m=` line; every other line is refused in the answer.
    pub audio_index: usize,
    /// Kind, protocol and first format of each offered `m=` line, to refuse
    /// the others with port 0 as RFC 3264 §6 requires.
    pub offered_lines: Vec<(String, String, String)>,
}

/// Pick the first usable audio stream and our most preferred codec in it.
/// When none is usable, the error names what stopped the best candidate: a
/// stream with a codec but no address, then one with no codec of ours, then
/// one over another transport (SRTP, DTLS), then no audio at all.
pub fn negotiate(offer: &Offer, preferences: &[Codec]) -> Result<Negotiated, SdpError> {
    let (mut no_address, mut no_codec, mut no_transport) = (false, false, false);
    for (index, m) in offer.media.iter().enumerate() {
        if m.kind != "audio" {
            continue;
        }
        if !m.usable {
            no_address = true;
            continue;
        }
        if m.port == 0 {
            continue;
        }
        if !m.protocol.eq_ignore_ascii_case("RTP/AVP")
            && !m.protocol.eq_ignore_ascii_case("RTP/AVPF")
        {
            no_transport = true;
            continue;
        }
        let Some((codec, payload_type)) = pick_codec(m, preferences) else {
            no_codec = true;
            continue;
        };
        let Some(address) = m.connection.or(offer.session_connection) else {
            no_address = true;
            continue;
        };
        let offered = m
            .direction
            .or(offer.session_direction)
            .unwrap_or(Direction::SendRecv);
        // RFC 2543 hold: a 0.0.0.0 address means "do not send to me".
        let offered = if address.is_unspecified() {
            match offered {
                Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
                _ => Direction::Inactive,
            }
        } else {
            offered
        };
        let ptime_ms = m
            .ptime
            .filter(|p| PTIME_RANGE_MS.contains(p))
            .unwrap_or(DEFAULT_PTIME_MS);
        return Ok(Negotiated {
            remote: SocketAddr::new(address, m.port),
            codec,
            payload_type,
            dtmf_payload_type: telephone_event_pt(m),
            ptime_ms,
            direction: Direction::answer_to(offered),
            audio_index: index,
            offered_lines: offer
                .media
                .iter()
                .map(|m| {
                    (
                        m.kind.clone(),
                        m.protocol.clone(),
                        m.formats.first().cloned().unwrap_or_else(|| "0".into()),
                    )
                })
                .collect(),
        });
    }
    Err(if no_address {
        SdpError::NoConnection
    } else if no_codec {
        SdpError::NoCommonCodec
    } else if no_transport {
        SdpError::NoTransport
    } else {
        SdpError::NoAudio
    })
}

/// Our first preference the stream offers, with the payload type it uses.
fn pick_codec(m: &MediaDescription, preferences: &[Codec]) -> Option<(Codec, u8)> {
    let offered: Vec<(Codec, u8)> = m
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| codec_for(m, pt).map(|c| (c, pt)))
        .collect();
    preferences
        .iter()
        .find_map(|want| offered.iter().find(|(c, _)| c == want).copied())
}

/// The codec a payload type stands for: its rtpmap if present, else the static table.
fn codec_for(m: &MediaDescription, pt: u8) -> Option<Codec> {
    match m.rtpmaps.iter().find(|r| r.payload_type == pt) {
        Some(map) if map.clock_rate == Codec::CLOCK_RATE => {
            Codec::from_encoding_name(&map.encoding)
        }
        Some(_) => None,
        None => Codec::from_payload_type(pt),
    }
}

fn telephone_event_pt(m: &MediaDescription) -> Option<u8> {
    m.rtpmaps
        .iter()
        .find(|r| {
            r.encoding.eq_ignore_ascii_case("telephone-event")
                && r.clock_rate == Codec::CLOCK_RATE
                && m.formats.iter().any(|f| f == &r.payload_type.to_string())
        })
        .map(|r| r.payload_type)
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    const PREFS: &[Codec] = &[Codec::Pcmu, Codec::Pcma];

    fn neg(sdp: &str) -> Result<Negotiated, SdpError> {
        negotiate(&parse(sdp.as_bytes()).unwrap(), PREFS)
    }

    #[test]
    fn sipp_pcap_offer_gets_pcma_and_dtmf() {
        let n = neg("v=0\nc=IN IP4 127.0.0.1\nm=audio 6000 RTP/AVP 8 101\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\n").unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.payload_type, 8);
        assert_eq!(n.dtmf_payload_type, Some(101));
        assert_eq!(n.ptime_ms, 20);
        assert_eq!(n.remote, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(n.direction, Direction::SendRecv);
    }

    #[test]
    fn our_preference_wins_and_static_types_need_no_rtpmap() {
        let n = neg("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/AVP 8 0\n").unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        assert_eq!(n.payload_type, 0);
        assert_eq!(n.dtmf_payload_type, None);
    }

    #[test]
    fn dynamic_payload_type_for_g711() {
        let n = neg("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/AVP 96\na=rtpmap:96 pcmu/8000\n")
            .unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 96));
    }

    #[test]
    fn ptime_from_offer_within_range() {
        let n = neg("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/AVP 0\na=ptime:30\n").unwrap();
        assert_eq!(n.ptime_ms, 30);
        let n = neg("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/AVP 0\na=ptime:500\n").unwrap();
        assert_eq!(n.ptime_ms, 20);
    }

    #[test]
    fn directions_are_answered() {
        let hold = neg("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/AVP 0\na=sendonly\n").unwrap();
        assert_eq!(hold.direction, Direction::RecvOnly);
        let inactive = neg("v=0\nc=IN IP4 10.0.0.1\na=inactive\nm=audio 7000 RTP/AVP 0\n").unwrap();
        assert_eq!(inactive.direction, Direction::Inactive);
        let old_hold = neg("v=0\nc=IN IP4 0.0.0.0\nm=audio 7000 RTP/AVP 0\n").unwrap();
        assert_eq!(old_hold.direction, Direction::RecvOnly);
        let recvonly = neg("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/AVP 0\na=recvonly\n").unwrap();
        assert_eq!(recvonly.direction, Direction::SendOnly);
    }

    #[test]
    fn unsupported_offers_are_refused() {
        assert_eq!(
            neg("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/AVP 18 9\n"),
            Err(SdpError::NoCommonCodec)
        );
        assert_eq!(
            neg("v=0\nc=IN IP4 10.0.0.1\nm=video 7000 RTP/AVP 96\n"),
            Err(SdpError::NoAudio)
        );
        assert_eq!(
            neg("v=0\nc=IN IP4 10.0.0.1\nm=audio 0 RTP/AVP 0\n"),
            Err(SdpError::NoAudio)
        );
        assert_eq!(
            neg("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/SAVP 0\n"),
            Err(SdpError::NoTransport)
        );
        assert_eq!(
            neg("v=0\nm=audio 7000 RTP/AVP 0\n"),
            Err(SdpError::NoConnection)
        );
        // PCMU at 16 kHz is not G.711.
        assert_eq!(
            neg("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/AVP 0\na=rtpmap:0 PCMU/16000\n"),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn second_audio_line_used_when_first_unusable() {
        let n = neg("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/SAVP 0\nm=audio 7002 RTP/AVP 8\n")
            .unwrap();
        assert_eq!(n.audio_index, 1);
        assert_eq!(n.offered_lines.len(), 2);
    }
}
