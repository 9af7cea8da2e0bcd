//! Fuzz harness for SDP offers: the offers real phones, PBXs and the SIP
//! corpus send, damaged by `voxbridge_mutations`, through the parser, the
//! negotiation and our answer. Properties: nothing panics; a negotiated
//! codec and payload type are ones the offer's audio line listed; our
//! answer parses again and keeps the offer's count of `m=` lines (RFC 3264
//! §6). `PROPTEST_CASES` sets the count (`bench/fuzz` runs it long).

use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;
use voxbridge_media::Codec;
use voxbridge_mutations::{mutated, seeds_in};

use super::{answer, negotiate, parse, SessionOrigin};

/// Offers as real peers write them (in addition to the corpus's bodies).
const OFFERS: &[&str] = &[
    // sipp's uac_pcap.
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-11,16\r\n",
    // baresip with several codecs, ptime and direction.
    "v=0\r\no=- 1290461016 2958620374 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 10048 RTP/AVP 9 0 8 101\r\nb=AS:64\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=label:1\r\na=ssrc:1584215519 cname:4fe6b5b4-2d30-4f0f\r\na=rtcp-rsize\r\na=ptime:20\r\n",
    // linphone with ICE and RTCP-XR on audio, and a video line.
    "v=0\r\no=alice 3342 1442 IN IP6 ::1\r\ns=Talk\r\nc=IN IP6 ::1\r\nt=0 0\r\na=ice-pwd:31ec21eb38b2ec6d36e8dc7b\r\na=ice-ufrag:61a5ee6a\r\na=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\nm=audio 7078 RTP/AVP 96 0 8 101\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp:7079\r\na=candidate:1 1 UDP 2130706431 ::1 7078 typ host\r\na=candidate:1 2 UDP 2130706430 ::1 7079 typ host\r\nm=video 9078 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n",
    // SRTP with SDES next to plain RTP, LF only, session-level hold.
    "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\na=sendonly\nm=audio 4000 RTP/SAVP 0\nc=IN IP4 192.0.2.1\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\nm=audio 4002 RTP/AVP 0 8\nc=IN IP4 0.0.0.0\na=ptime:30\n",
];

/// Our preferences, both orders.
const PREFS: &[&[Codec]] = &[&[Codec::Pcmu, Codec::Pcma], &[Codec::Pcma, Codec::Pcmu]];

/// The SDP bodies of the SIP corpus files, and [`OFFERS`].
fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/sip");
    let mut out: Vec<Vec<u8>> = OFFERS.iter().map(|o| o.as_bytes().to_vec()).collect();
    for dir in [root.clone(), root.join("rfc4475")] {
        for msg in seeds_in(&dir, |n| n != "EXPECT" && !n.ends_with(".md")) {
            let body = find(&msg, b"\r\n\r\n")
                .map(|i| &msg[i + 4..])
                .or_else(|| find(&msg, b"\n\n").map(|i| &msg[i + 2..]));
            if let Some(body) = body.filter(|b| b.starts_with(b"v=")) {
                out.push(body.to_vec());
            }
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parse, negotiate and answer `body`, checking the properties.
fn check(body: &[u8]) -> Result<(), TestCaseError> {
    let Ok(offer) = parse(body) else {
        return Ok(());
    };
    for prefs in PREFS {
        let Ok(n) = negotiate(&offer, prefs) else {
            continue;
        };
        let m = &offer.media[n.audio_index];
        prop_assert_eq!(&m.kind, "audio");
        prop_assert!(prefs.contains(&n.codec), "{:?} is not ours", n.codec);
        prop_assert!(
            m.formats
                .iter()
                .any(|f| f.parse::<u8>() == Ok(n.payload_type)),
            "payload type {} is not in the offer's {:?}",
            n.payload_type,
            m.formats
        );
        if let Some(te) = n.dtmf_payload_type {
            prop_assert!(m.formats.iter().any(|f| f.parse::<u8>() == Ok(te)));
        }
        for ip in ["127.0.0.1", "::1"] {
            let ip: IpAddr = ip
                .parse()
                .map_err(|e| TestCaseError::fail(format!("{e}")))?;
            let ours = answer(&n, ip, 20_000, SessionOrigin::new(7));
            let back = parse(ours.as_bytes());
            prop_assert!(
                back.is_ok(),
                "our answer does not parse: {:?}\n{}",
                back,
                ours
            );
            let back = back.unwrap_or_else(|_| unreachable!());
            prop_assert_eq!(back.media.len(), offer.media.len(), "{}", ours);
            let again = negotiate(&back, prefs);
            prop_assert!(
                again.is_ok(),
                "our answer does not negotiate: {:?}\n{}",
                again,
                ours
            );
            let again = again.unwrap_or_else(|_| unreachable!());
            prop_assert_eq!(again.codec, n.codec);
            prop_assert_eq!(again.payload_type, n.payload_type);
            prop_assert_eq!(again.audio_index, n.audio_index);
        }
    }
    Ok(())
}

#[test]
fn every_seed_is_checked() {
    let seeds = seeds();
    assert!(seeds.len() > OFFERS.len(), "the corpus has SDP bodies");
    for s in &seeds {
        check(s).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(s)));
    }
}

proptest! {
    #[test]
    fn fuzz_sdp_offers(body in mutated(seeds(), 4)) {
        check(&body)?;
    }
}
