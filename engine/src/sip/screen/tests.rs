//! Unit tests of the screening verdicts on hand-written requests.

use super::*;
use rsipstack::sip::SipMessage;

const HEADERS: &str = "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: c1@test\r\nCSeq: 1 FOO\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

fn request(method: &str) -> String {
    format!("{method} sip:b@127.0.0.1 SIP/2.0\r\n")
        + &HEADERS.replace("1 FOO", &format!("1 {method}"))
}

fn status(v: &Verdict) -> Option<String> {
    match v {
        Verdict::Reply(bytes, _) => String::from_utf8_lossy(bytes)
            .lines()
            .next()
            .map(str::to_string),
        _ => None,
    }
}

#[test]
fn well_formed_request_passes() {
    assert_eq!(screen(request("OPTIONS").as_bytes(), "vb"), Verdict::Pass);
}

#[test]
fn unknown_method_gets_501_with_headers_copied() {
    let msg = "FOO sip:b@127.0.0.1 SIP/2.0\r\n".to_string() + HEADERS;
    let v = screen(msg.as_bytes(), "vb");
    assert_eq!(status(&v).as_deref(), Some("SIP/2.0 501 Not Implemented"));
    let Verdict::Reply(bytes, why) = v else {
        unreachable!()
    };
    assert_eq!(why, Rejection::UnknownMethod);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("Call-ID: c1@test\r\n"));
    assert!(text.contains("CSeq: 1 FOO\r\n"));
    assert!(text.contains("To: <sip:b@127.0.0.1>;tag="));
    assert!(text.contains("Allow: INVITE"));
    // Our own response parses.
    assert!(SipMessage::try_from(text.as_bytes()).is_ok());
}

#[test]
fn missing_call_id_is_400_with_what_there_is_and_no_via_is_dropped() {
    let no_call_id = request("INVITE").replace("Call-ID: c1@test\r\n", "");
    let v = screen(no_call_id.as_bytes(), "vb");
    assert_eq!(status(&v).as_deref(), Some("SIP/2.0 400 Bad Request"));
    let Verdict::Reply(bytes, _) = v else {
        unreachable!()
    };
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n"));
    assert!(!text.contains("Call-ID"));
    let no_via =
        request("OPTIONS").replace("Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n", "");
    assert_eq!(
        screen(no_via.as_bytes(), "vb"),
        Verdict::Drop(Rejection::BadRequest)
    );
}

#[test]
fn broken_cseq_and_mismatched_method_are_400() {
    for bad in [
        "CSeq: abc INVITE",
        "CSeq: 1 OPTIONS",
        "CSeq: 4294967296 INVITE",
    ] {
        let msg = request("INVITE").replace("CSeq: 1 INVITE", bad);
        assert_eq!(
            status(&screen(msg.as_bytes(), "vb")).as_deref(),
            Some("SIP/2.0 400 Bad Request"),
            "{bad}"
        );
    }
}

#[test]
fn lowercase_method_is_unknown() {
    let msg = "invite sip:b@127.0.0.1 SIP/2.0\r\n".to_string() + &HEADERS.replace("FOO", "invite");
    assert_eq!(
        status(&screen(msg.as_bytes(), "vb")).as_deref(),
        Some("SIP/2.0 501 Not Implemented")
    );
}

#[test]
fn content_length_must_fit_the_datagram_and_extra_bytes_are_cut() {
    let ok = request("OPTIONS");
    for bad in [
        "Content-Length: 50",
        "Content-Length: -1",
        "Content-Length: lots",
        "Content-Length: 0\r\nl: 0",
    ] {
        let msg = ok.replace("Content-Length: 0", bad);
        assert_eq!(
            status(&screen(msg.as_bytes(), "vb")).as_deref(),
            Some("SIP/2.0 400 Bad Request"),
            "{bad}"
        );
    }
    let longer = ok.clone() + "trailing";
    assert_eq!(screen(longer.as_bytes(), "vb"), Verdict::Trim(ok.len()));
}

#[test]
fn version_scheme_require_and_body_type() {
    let v = request("OPTIONS").replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia");
    assert_eq!(
        status(&screen(v.as_bytes(), "vb")).as_deref(),
        Some("SIP/2.0 505 Version Not Supported")
    );
    let scheme = request("OPTIONS").replace("OPTIONS sip:b@", "OPTIONS mailto:b@");
    assert_eq!(
        status(&screen(scheme.as_bytes(), "vb")).as_deref(),
        Some("SIP/2.0 416 Unsupported URI Scheme")
    );
    let tel = request("OPTIONS").replace("OPTIONS sip:b@127.0.0.1", "OPTIONS tel:+15550100");
    assert_eq!(screen(tel.as_bytes(), "vb"), Verdict::Pass);
    let require = request("OPTIONS").replace("Max-Forwards", "Require: foo, bar\r\nMax-Forwards");
    let Verdict::Reply(bytes, Rejection::BadExtension) = screen(require.as_bytes(), "vb") else {
        panic!("no 420")
    };
    assert!(String::from_utf8(bytes)
        .unwrap()
        .contains("\r\nUnsupported: foo, bar\r\n"));
    let body = request("INVITE").replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
    );
    let Verdict::Reply(bytes, Rejection::UnsupportedMedia) = screen(body.as_bytes(), "vb") else {
        panic!("no 415")
    };
    assert!(String::from_utf8(bytes)
        .unwrap()
        .contains("\r\nAccept: application/sdp\r\n"));
}

#[test]
fn oversized_datagram_gets_513_unless_ack() {
    let big = request("OPTIONS");
    assert_eq!(
        status(&too_large(&big.as_bytes()[..100], "vb")).as_deref(),
        Some("SIP/2.0 513 Message Too Large")
    );
    assert_eq!(
        too_large(request("ACK").as_bytes(), "vb"),
        Verdict::Drop(Rejection::TooLarge)
    );
}

#[test]
fn broken_ack_is_dropped_not_answered() {
    let msg = request("ACK").replace("Content-Length: 0", "Content-Length: 99");
    assert_eq!(
        screen(msg.as_bytes(), "vb"),
        Verdict::Drop(Rejection::BadRequest)
    );
}

#[test]
fn garbage_is_dropped() {
    assert_eq!(
        screen(b"\x00\x01\x02hello", "vb"),
        Verdict::Drop(Rejection::Garbage)
    );
    assert_eq!(screen(b"", "vb"), Verdict::Drop(Rejection::Garbage));
    assert_eq!(
        screen(b"SIP/2.0 99999999 Whatever\r\n\r\n", "vb"),
        Verdict::Drop(Rejection::Garbage)
    );
}

/// Found by `fuzz_sip_screening`: a BOM inside the version (`SI\u{feff}P/2.0`)
/// sliced a `str` inside a character and panicked.
#[test]
fn multibyte_character_in_the_version_is_a_400_not_a_panic() {
    let msg = request("OPTIONS").replacen("SIP/2.0", "SI\u{feff}P/2.0", 1);
    assert!(matches!(
        screen(msg.as_bytes(), "vb"),
        Verdict::Reply(_, Rejection::BadRequest)
    ));
}

proptest::proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1500)) {
        let _ = screen(&bytes, "vb");
        let _ = too_large(&bytes, "vb");
    }

    #[test]
    fn random_request_lines_never_panic(method in "[A-Z]{1,10}", tail in "[ -~\r\n]{0,300}") {
        let msg = format!("{method} sip:x@y SIP/2.0\r\n{tail}");
        let _ = screen(msg.as_bytes(), "vb");
    }
}
