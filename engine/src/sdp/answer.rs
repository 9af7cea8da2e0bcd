//! Writing our SDP answer.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::negotiate::Negotiated;

/// The `o=` line's session id and version: the version must grow with every
/// answer in a dialog (RFC 3264 §8) or re-INVITEs look like retransmissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOrigin {
    pub id: u64,
    pub version: u64,
}

impl SessionOrigin {
    pub fn new(id: u64) -> Self {
        SessionOrigin { id, version: 1 }
    }

    /// The origin for the next answer in the same dialog.
    pub fn next(self) -> Self {
        SessionOrigin {
            id: self.id,
            version: self.version.wrapping_add(1),
        }
    }
}

/// Build the answer: our address and RTP port on the accepted stream, every
/// other offered stream refused with port 0.
pub fn answer(n: &Negotiated, ip: IpAddr, rtp_port: u16, origin: SessionOrigin) -> String {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(320);
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "v=0\r\no=voxbridge {} {} IN {family} {ip}\r\ns=voxbridge\r\nc=IN {family} {ip}\r\nt=0 0\r\n",
        origin.id, origin.version
    );
    for (index, (kind, protocol, first_format)) in n.offered_lines.iter().enumerate() {
        if index != n.audio_index {
            let _ = write!(s, "m={kind} 0 {protocol} {first_format}\r\n");
            continue;
        }
        let _ = write!(
            s,
            "m=audio {rtp_port} {} {}",
            n.answer_protocol(),
            n.payload_type
        );
        if let Some(te) = n.dtmf_payload_type {
            let _ = write!(s, " {te}");
        }
        let _ = write!(
            s,
            "\r\na=rtpmap:{} {}/8000\r\n",
            n.payload_type,
            n.codec.encoding_name()
        );
        if let Some(te) = n.dtmf_payload_type {
            let _ = write!(
                s,
                "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
            );
        }
        let _ = write!(
            s,
            "a=ptime:{}\r\na={}\r\n",
            n.ptime_ms,
            n.direction.attribute()
        );
        if let Some(sdes) = &n.srtp {
            let _ = write!(s, "a=crypto:{}\r\n", sdes.answer_value());
        }
    }
    s
}

/// Our offer for a call we place: every codec we take, in preference
/// order, plus telephone-event on 101, 20 ms, sendrecv.
pub fn offer(
    codecs: &[voxbridge_media::Codec],
    ip: IpAddr,
    rtp_port: u16,
    origin: SessionOrigin,
) -> String {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(320);
    let _ = write!(
        s,
        "v=0\r\no=voxbridge {} {} IN {family} {ip}\r\ns=voxbridge\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP",
        origin.id, origin.version
    );
    for c in codecs {
        let _ = write!(s, " {}", c.payload_type());
    }
    s.push_str(" 101\r\n");
    for c in codecs {
        let _ = write!(
            s,
            "a=rtpmap:{} {}/8000\r\n",
            c.payload_type(),
            c.encoding_name()
        );
    }
    s.push_str(
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::super::{negotiate::negotiate, parse::parse};
    use super::*;
    use voxbridge_media::{Codec, Direction};

    #[test]
    fn answer_round_trips_through_our_parser() {
        let offer = parse(b"v=0\nc=IN IP4 127.0.0.1\nm=audio 6000 RTP/AVP 8 101\na=rtpmap:101 telephone-event/8000\na=ptime:30\nm=video 6002 RTP/AVP 96\n").unwrap();
        let n = negotiate(&offer, &[Codec::Pcmu, Codec::Pcma]).unwrap();
        let text = answer(
            &n,
            "127.0.0.1".parse().unwrap(),
            20000,
            SessionOrigin::new(42),
        );
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(back.media.len(), 2);
        let audio = &back.media[0];
        assert_eq!(audio.port, 20000);
        assert_eq!(audio.formats, vec!["8", "101"]);
        assert_eq!(audio.ptime, Some(30));
        assert_eq!(audio.direction, Some(Direction::SendRecv));
        assert_eq!(back.media[1].port, 0);
        assert!(text.contains("o=voxbridge 42 1 IN IP4 127.0.0.1\r\n"));
        assert!(text.ends_with("\r\n"));
    }

    #[test]
    fn our_offer_negotiates_against_itself() {
        let text = offer(
            &[Codec::Pcma, Codec::Pcmu],
            "127.0.0.1".parse().unwrap(),
            20004,
            SessionOrigin::new(3),
        );
        let parsed = parse(text.as_bytes()).unwrap();
        let n = negotiate(&parsed, &[Codec::Pcmu, Codec::Pcma]).unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        assert_eq!(n.dtmf_payload_type, Some(101));
        assert_eq!(n.remote.port(), 20004);
    }

    #[test]
    fn hold_answer_and_version_bump() {
        let offer = parse(b"v=0\nc=IN IP6 ::1\nm=audio 6000 RTP/AVP 0\na=sendonly\n").unwrap();
        let n = negotiate(&offer, &[Codec::Pcmu]).unwrap();
        let origin = SessionOrigin::new(7).next();
        let text = answer(&n, "::1".parse().unwrap(), 20002, origin);
        assert!(text.contains("a=recvonly\r\n"));
        assert!(text.contains("o=voxbridge 7 2 IN IP6 ::1"));
        assert!(text.contains("c=IN IP6 ::1"));
        assert!(!text.contains("telephone-event"));
    }
}
