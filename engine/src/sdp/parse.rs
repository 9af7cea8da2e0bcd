//! Reading an SDP offer (RFC 4566) into the few facts an audio-only endpoint
//! needs. Anything we do not use is skipped, never rejected, because PBXs
//! add vendor attributes freely; anything we do use is checked.

use std::net::IpAddr;

use voxbridge_media::Direction;

use super::SdpError;

/// The parts of an SDP offer that matter to voxbridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Session-level `c=` address, if any.
    pub session_connection: Option<IpAddr>,
    /// Session-level direction attribute, if any.
    pub session_direction: Option<Direction>,
    /// Every `m=` section in order (we answer each: RFC 3264 keeps the count).
    pub media: Vec<MediaDescription>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub kind: String,
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, ...
    pub protocol: String,
    /// Payload types (or other format tokens, kept as text) in offer order.
    pub formats: Vec<String>,
    /// Media-level `c=` address, if any.
    pub connection: Option<IpAddr>,
    /// `a=rtpmap` entries: payload type, encoding name, clock rate.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=ptime`, in milliseconds.
    pub ptime: Option<u32>,
    /// Media-level direction attribute, if any.
    pub direction: Option<Direction>,
    /// `a=crypto` values (SDES keys, RFC 4568), unread: the negotiation
    /// decides which it can use.
    pub crypto: Vec<String>,
    /// False when the m= line itself could not be read (a port over 65535,
    /// no formats): refused in the answer, never used.
    pub usable: bool,
}

/// `a=rtpmap:<pt> <name>/<rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
}

/// Longest SDP body we read; real offers are well under 4 KB.
const MAX_SDP_LEN: usize = 64 * 1024;

/// Parse an SDP body.
pub fn parse(body: &[u8]) -> Result<Offer, SdpError> {
    if body.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLong(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;
    let mut offer = Offer {
        session_connection: None,
        session_direction: None,
        media: Vec::new(),
    };
    let mut saw_version = false;
    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        let (kind, value) = match line.split_once('=') {
            Some((k, v)) if k.len() == 1 => (k.as_bytes()[0], v),
            _ => return Err(SdpError::BadLine { line: line_no }),
        };
        match kind {
            b'v' => {
                if value.trim() != "0" {
                    return Err(SdpError::BadVersion);
                }
                saw_version = true;
            }
            b'c' => {
                // An address we cannot use (a name, a bad number) counts as
                // none: fatal only if the audio stream needs it.
                let addr = parse_connection(value);
                match offer.media.last_mut() {
                    Some(m) => m.connection = addr,
                    None => offer.session_connection = addr,
                }
            }
            b'm' => offer.media.push(parse_media(value)),
            b'a' => {
                let (name, arg) = match value.split_once(':') {
                    Some((n, a)) => (n, Some(a)),
                    None => (value, None),
                };
                if let Some(dir) = Direction::from_attribute(name) {
                    match offer.media.last_mut() {
                        Some(m) => m.direction = Some(dir),
                        None => offer.session_direction = Some(dir),
                    }
                    continue;
                }
                let Some(m) = offer.media.last_mut() else {
                    continue;
                };
                // A broken rtpmap or ptime is skipped: it matters only for
                // a payload we use, and then the static table or 20 ms apply.
                match (name, arg) {
                    ("rtpmap", Some(arg)) => {
                        if let Some(map) = parse_rtpmap(arg) {
                            m.rtpmaps.push(map);
                        }
                    }
                    ("crypto", Some(arg)) => m.crypto.push(arg.trim().to_string()),
                    ("ptime", Some(arg)) => {
                        if let Ok(ptime) = arg.trim().parse::<u32>() {
                            m.ptime = Some(ptime);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if !saw_version {
        return Err(SdpError::BadVersion);
    }
    Ok(offer)
}

/// `IN IP4 192.0.2.1` or `IN IP6 ::1`, optionally with a `/ttl` suffix.
fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut parts = value.split_whitespace();
    if parts.next()? != "IN" {
        return None;
    }
    let family = parts.next()?;
    let addr = parts.next()?.split('/').next()?;
    let ip: IpAddr = addr.parse().ok()?;
    match (family, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(ip),
        _ => None,
    }
}

/// `audio 49170 RTP/AVP 0 8 101` (a `/count` port suffix is accepted). A
/// line we cannot read is kept, unusable, so the answer still refuses it in
/// its place (RFC 3264 §6 keeps the count of m= lines).
fn parse_media(value: &str) -> MediaDescription {
    let mut parts = value.split_whitespace();
    let kind = parts.next().unwrap_or("unknown").to_string();
    let port = parts
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse::<u16>().ok());
    let protocol = parts.next().unwrap_or("RTP/AVP").to_string();
    let formats: Vec<String> = parts.map(str::to_string).collect();
    let usable = port.is_some() && !formats.is_empty();
    MediaDescription {
        kind,
        port: port.unwrap_or(0),
        protocol,
        formats,
        connection: None,
        rtpmaps: Vec::new(),
        ptime: None,
        direction: None,
        crypto: Vec::new(),
        usable,
    }
}

/// `101 telephone-event/8000` → (101, telephone-event, 8000).
fn parse_rtpmap(arg: &str) -> Option<RtpMap> {
    let (pt, rest) = arg.trim().split_once(char::is_whitespace)?;
    let payload_type: u8 = pt.parse().ok()?;
    if payload_type > 127 {
        return None;
    }
    let mut fields = rest.trim().split('/');
    let encoding = fields.next()?.to_string();
    let clock_rate: u32 = fields.next()?.parse().ok()?;
    Some(RtpMap {
        payload_type,
        encoding,
        clock_rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-11,16\r\n";

    #[test]
    fn parses_sipp_offer() {
        let o = parse(SIPP.as_bytes()).unwrap();
        assert_eq!(o.session_connection, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(o.media.len(), 1);
        let m = &o.media[0];
        assert_eq!(m.kind, "audio");
        assert_eq!(m.port, 6000);
        assert_eq!(m.formats, vec!["8", "101"]);
        assert_eq!(m.rtpmaps.len(), 2);
        assert_eq!(m.rtpmaps[1].encoding, "telephone-event");
        assert_eq!(m.direction, None);
    }

    #[test]
    fn media_level_attributes_and_ipv6() {
        let sdp = "v=0\no=- 1 1 IN IP6 ::1\ns=-\nt=0 0\na=sendonly\nm=audio 4000 RTP/AVP 0\nc=IN IP6 ::1\na=ptime:30\na=inactive\n";
        let o = parse(sdp.as_bytes()).unwrap();
        assert_eq!(o.session_direction, Some(Direction::SendOnly));
        let m = &o.media[0];
        assert_eq!(m.connection, Some("::1".parse().unwrap()));
        assert_eq!(m.ptime, Some(30));
        assert_eq!(m.direction, Some(Direction::Inactive));
    }

    #[test]
    fn rejects_what_is_not_sdp() {
        assert!(matches!(
            parse(b"garbage"),
            Err(SdpError::BadLine { line: 1 })
        ));
        assert!(matches!(parse(b"v=1\n"), Err(SdpError::BadVersion)));
        assert!(matches!(parse(b"s=-\n"), Err(SdpError::BadVersion)));
        assert!(matches!(parse(&[0xff, 0xfe]), Err(SdpError::NotUtf8)));
    }

    #[test]
    fn tolerates_what_we_do_not_use() {
        // RFC 4475's offers carry `a=rtpmap:31 LPC` (no clock rate).
        let o = parse(b"v=0\nc=IN IP4 999.1.1.1\nm=audio 1 RTP/AVP 0\na=rtpmap:300 X/8000\na=rtpmap:31 LPC\na=ptime:fast\nm=video 99999 RTP/AVP 31\n").unwrap();
        assert_eq!(o.session_connection, None);
        let audio = &o.media[0];
        assert!(audio.usable);
        assert!(audio.rtpmaps.is_empty());
        assert_eq!(audio.ptime, None);
        assert!(!o.media[1].usable);
        assert_eq!(o.media[1].kind, "video");
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn random_sdp_lines_never_panic(lines in proptest::collection::vec("[vcmao]=[ -~]{0,40}", 0..20)) {
            let body = lines.join("\r\n");
            let _ = parse(body.as_bytes());
        }
    }
}
