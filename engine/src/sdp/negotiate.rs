//! Offer/answer (RFC 3264) for one audio stream: pick the codec, the DTMF
//! payload type, the packet time and the direction from a caller's offer.

use std::net::SocketAddr;

use voxbridge_media::{Codec, Direction, SrtpKey};

use super::parse::{MediaDescription, Offer};
use super::sdes::{self, CryptoError, Sdes, SrtpPolicy};
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
    /// SRTP keys when the stream is secured by SDES (RFC 4568).
    pub srtp: Option<Sdes>,
}

impl Negotiated {
    /// The profile our answer's m= line names: the offered one's family
    /// (`RTP/SAVP` for SRTP, RTP/AVP else; best-effort SRTP, an `RTP/AVP`
    /// line with `a=crypto`, is answered in kind). Feedback (AVPF) we do
    /// not do, so never claimed.
    pub fn answer_protocol(&self) -> &'static str {
        let offered = self
            .offered_lines
            .get(self.audio_index)
            .map(|(_, p, _)| p.as_str())
            .unwrap_or("RTP/AVP");
        if self.srtp.is_some() && is_savp(offered) {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        }
    }
}

fn is_savp(protocol: &str) -> bool {
    protocol.eq_ignore_ascii_case("RTP/SAVP") || protocol.eq_ignore_ascii_case("RTP/SAVPF")
}

fn is_avp(protocol: &str) -> bool {
    protocol.eq_ignore_ascii_case("RTP/AVP") || protocol.eq_ignore_ascii_case("RTP/AVPF")
}

/// Never used: [`negotiate`] runs with SRTP off, which draws no key.
const NO_KEY: SrtpKey = SrtpKey::from_bytes([0; voxbridge_media::srtp::KEY_SALT_LEN]);

/// Pick the first usable audio stream and our most preferred codec in it.
/// When none is usable, the error names what stopped the best candidate: a
/// stream with a codec but no address, then one with no codec of ours, then
/// one over another transport (SRTP, DTLS), then no audio at all.
pub fn negotiate(offer: &Offer, preferences: &[Codec]) -> Result<Negotiated, SdpError> {
    negotiate_with(offer, preferences, SrtpPolicy::Off, &NO_KEY)
}

/// [`negotiate`] under an SRTP policy: with `optional` or `required`, a
/// stream with an `a=crypto` line we can use is secured, answered with
/// `local_key` (fresh from a CSPRNG, one per call); `required` refuses
/// plain streams, `off` refuses SRTP-only ones. Errors name the best
/// candidate's problem, as [`negotiate`]'s do.
pub fn negotiate_with(
    offer: &Offer,
    preferences: &[Codec],
    policy: SrtpPolicy,
    local_key: &SrtpKey,
) -> Result<Negotiated, SdpError> {
    let (mut no_address, mut no_codec, mut no_transport) = (false, false, false);
    let (mut plain_refused, mut no_crypto) = (false, None::<CryptoError>);
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
        let savp = is_savp(&m.protocol);
        if !savp && !is_avp(&m.protocol) {
            no_transport = true;
            continue;
        }
        let srtp = match policy {
            SrtpPolicy::Off if savp => {
                no_transport = true;
                continue;
            }
            SrtpPolicy::Off => None,
            SrtpPolicy::Optional | SrtpPolicy::Required => match sdes::choose(&m.crypto) {
                Ok(c) => Some(Sdes {
                    tag: c.tag,
                    suite: c.suite,
                    remote: c.key,
                    local: local_key.clone(),
                }),
                // Plain RTP with no keys at all: refused only if required.
                Err(_) if !savp && m.crypto.is_empty() => {
                    if policy == SrtpPolicy::Required {
                        plain_refused = true;
                        continue;
                    }
                    None
                }
                // SRTP keyed some other way (DTLS, MIKEY): a transport we
                // do not speak, as with SRTP off.
                Err(CryptoError::Missing) => {
                    no_transport = true;
                    continue;
                }
                // Best-effort SRTP with keys we cannot use falls back to
                // plain RTP where that is allowed.
                Err(_) if !savp && policy == SrtpPolicy::Optional => None,
                Err(e) => {
                    no_crypto.get_or_insert(e);
                    continue;
                }
            },
        };
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
            srtp,
        });
    }
    Err(if no_address {
        SdpError::NoConnection
    } else if no_codec {
        SdpError::NoCommonCodec
    } else if let Some(e) = no_crypto {
        SdpError::NoUsableCrypto(e)
    } else if plain_refused {
        SdpError::SrtpRequired
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

    /// A desk phone offer in the shape Polycom and Yealink document: G.722
    /// first, then G.711, G.729, telephone-event, `b=`, `a=rtcp-fb`.
    const DESK_PHONE: &str = "v=0\r\no=- 1714032 1714032 IN IP4 192.168.1.50\r\ns=Polycom IP Phone\r\nc=IN IP4 192.168.1.50\r\nb=AS:512\r\nt=0 0\r\nm=audio 2222 RTP/AVP 9 0 8 18 101\r\nb=TIAS:64000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtcp-fb:* nack\r\na=sendrecv\r\nm=video 2224 RTP/AVP 109 34\r\nb=TIAS:448000\r\na=rtpmap:109 H264/90000\r\na=fmtp:109 profile-level-id=42800d\r\na=rtpmap:34 H263/90000\r\n";

    /// A WebRTC-gateway style audio offer over RTP/AVPF: BUNDLE group,
    /// ICE candidates and credentials, DTLS fingerprint and setup, rtcp-mux,
    /// Opus and extmap lines, an SSRC, and a malformed attribute.
    const WEBRTC_STYLE: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic: WMS stream\r\nm=audio 9 RTP/AVPF 111 0 8 13 110 126\r\nc=IN IP4 203.0.113.7\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=candidate:1 1 udp 2122260223 203.0.113.7 50000 typ host generation 0\r\na=ice-ufrag:F7gI\r\na=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\na=ice-options:trickle\r\na=fingerprint:sha-256 49:66:12:17:0D:1C:91:AE:57:4C:C6:36:DD:D5:97:D2:7D:62:C9:9A:7F:B9:A3:F4:70:03:E7:43:91:73:23:5A\r\na=setup:actpass\r\na=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\na=rtpmap:127 broken\r\na=ssrc:1001 cname:abc\r\na=ptime:\r\n";

    #[test]
    fn desk_phone_with_g722_first_gets_pcmu_and_video_refused() {
        let offer = parse(DESK_PHONE.as_bytes()).unwrap();
        let n = negotiate(&offer, PREFS).unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
        assert_eq!(n.dtmf_payload_type, Some(101));
        assert_eq!(n.remote, "192.168.1.50:2222".parse().unwrap());
        let text = super::super::answer(
            &n,
            "192.0.2.9".parse().unwrap(),
            20000,
            super::super::SessionOrigin::new(1),
        );
        assert!(text.contains("m=video 0 RTP/AVP 109\r\n"), "{text}");
    }

    #[test]
    fn webrtc_style_audio_offer_is_taken_and_dtls_only_is_refused() {
        let offer = parse(WEBRTC_STYLE.as_bytes()).unwrap();
        let n = negotiate(&offer, PREFS).unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
        // telephone-event/48000 is Opus's; ours is the 8 kHz one.
        assert_eq!(n.dtmf_payload_type, Some(126));
        assert_eq!(n.remote, "203.0.113.7:9".parse().unwrap());
        assert_eq!(n.ptime_ms, 20);
        // A browser's own offer is DTLS-SRTP: refused, transport named.
        let browser = WEBRTC_STYLE.replace("RTP/AVPF", "UDP/TLS/RTP/SAVPF");
        let err = negotiate(&parse(browser.as_bytes()).unwrap(), PREFS).unwrap_err();
        assert_eq!(err, SdpError::NoTransport);
        assert_eq!(err.refusal(), (488, Some(302)));
        assert!(err
            .warning("voxbridge")
            .unwrap()
            .starts_with("302 voxbridge \""));
    }

    #[test]
    fn refusals_name_what_stopped_the_call() {
        let cases = [
            ("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/AVP 18 9\n", 305),
            ("v=0\nc=IN IP4 10.0.0.1\nm=video 7000 RTP/AVP 96\n", 304),
            ("v=0\nc=IN IP4 300.1.2.3\nm=audio 7000 RTP/AVP 0\n", 301),
            (
                "v=0\nc=IN IP4 host.example.com\nm=audio 7000 RTP/AVP 0\n",
                301,
            ),
            ("v=0\nc=IN IP4 10.0.0.1\nm=audio 99999 RTP/AVP 0\n", 301),
            ("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 RTP/SAVP 0\n", 302),
        ];
        for (sdp, warning) in cases {
            let err = neg(sdp).unwrap_err();
            assert_eq!(err.refusal(), (488, Some(warning)), "{sdp}");
        }
        assert_eq!(SdpError::NotUtf8.refusal(), (400, None));
    }

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

    fn srtp(sdp: &str, policy: SrtpPolicy) -> Result<Negotiated, SdpError> {
        let ours = SrtpKey::from_bytes([0xAB; 30]);
        negotiate_with(&parse(sdp.as_bytes()).unwrap(), PREFS, policy, &ours)
    }

    fn savp(proto: &str, crypto: &str) -> String {
        format!("v=0\nc=IN IP4 10.0.0.1\nm=audio 7000 {proto} 0 101\na=rtpmap:101 telephone-event/8000\n{crypto}")
    }

    #[test]
    fn sdes_offer_is_secured_and_answered_with_our_key() {
        let offer = savp(
            "RTP/SAVP",
            &format!("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^31\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\n"),
        );
        for policy in [SrtpPolicy::Optional, SrtpPolicy::Required] {
            let n = srtp(&offer, policy).unwrap();
            let sdes = n.srtp.as_ref().unwrap();
            assert_eq!(
                (sdes.tag, sdes.suite),
                (2, voxbridge_media::SrtpSuite::AesCm128HmacSha1_32)
            );
            assert_eq!(sdes.remote.as_bytes()[29], 29);
            let text = super::super::answer(
                &n,
                "192.0.2.9".parse().unwrap(),
                20000,
                super::super::SessionOrigin::new(1),
            );
            assert!(text.contains("m=audio 20000 RTP/SAVP 0 101\r\n"), "{text}");
            let line = text.lines().find(|l| l.starts_with("a=crypto:")).unwrap();
            let back = sdes::parse_crypto(line.trim_start_matches("a=crypto:")).unwrap();
            assert_eq!((back.tag, back.key), (2, SrtpKey::from_bytes([0xAB; 30])));
            assert_eq!(text.matches("a=crypto").count(), 1);
        }
        // SRTP off: a SAVP-only offer is refused, transport named.
        assert_eq!(srtp(&offer, SrtpPolicy::Off), Err(SdpError::NoTransport));
    }

    #[test]
    fn policies_decide_plain_and_best_effort_offers() {
        let plain = savp("RTP/AVP", "");
        assert!(srtp(&plain, SrtpPolicy::Off).unwrap().srtp.is_none());
        assert!(srtp(&plain, SrtpPolicy::Optional).unwrap().srtp.is_none());
        let err = srtp(&plain, SrtpPolicy::Required).unwrap_err();
        assert_eq!(err, SdpError::SrtpRequired);
        assert_eq!(err.refusal(), (488, Some(302)));
        // Best effort (RTP/AVP with a=crypto, baresip's `mediaenc=srtp`):
        // secured unless off, answered in RTP/AVP.
        let best = savp(
            "RTP/AVP",
            &format!("a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\n"),
        );
        assert!(srtp(&best, SrtpPolicy::Off).unwrap().srtp.is_none());
        let n = srtp(&best, SrtpPolicy::Required).unwrap();
        assert_eq!(n.answer_protocol(), "RTP/AVP");
        assert_eq!(n.srtp.unwrap().tag, 5);
        // Best effort with keys we cannot use: plain if allowed.
        let mki = savp(
            "RTP/AVP",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4\n"),
        );
        assert!(srtp(&mki, SrtpPolicy::Optional).unwrap().srtp.is_none());
        assert_eq!(
            srtp(&mki, SrtpPolicy::Required),
            Err(SdpError::NoUsableCrypto(CryptoError::Mki))
        );
        // A SAVP line we cannot key is refused with the reason; the plain
        // line next to it is taken when allowed.
        let bad = savp(
            "RTP/SAVP",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:short\n",
        );
        let err = srtp(&bad, SrtpPolicy::Optional).unwrap_err();
        assert_eq!(err, SdpError::NoUsableCrypto(CryptoError::BadKey));
        assert_eq!(err.refusal(), (488, Some(306)));
        assert_eq!(
            srtp(&savp("RTP/SAVP", ""), SrtpPolicy::Required),
            Err(SdpError::NoTransport)
        );
        let both = format!("{bad}m=audio 7002 RTP/AVP 0\n");
        let n = srtp(&both, SrtpPolicy::Optional).unwrap();
        assert_eq!((n.audio_index, n.srtp.is_none()), (1, true));
        // Warnings quote offer text safely.
        let quoted = savp("RTP/SAVP", "a=crypto:1 \"EVIL\\ inline:x\n");
        let w = srtp(&quoted, SrtpPolicy::Required)
            .unwrap_err()
            .warning("voxbridge")
            .unwrap();
        assert!(
            w.starts_with("306 voxbridge \"") && w.ends_with('"') && w.matches('"').count() == 2,
            "{w}"
        );
    }
}
