//! Screening of raw SIP datagrams before the stack sees them.
//!
//! The stack drops what it cannot parse without a word. An operator needs to
//! know, and a peer deserves an answer where RFC 3261 gives one: `501 Not
//! Implemented` for a method we do not know (§8.2.1), `400 Bad Request` for a
//! request whose mandatory headers are missing or broken (§8.2.2). This module
//! is pure: bytes in, a verdict out.

use rsipstack::sip::{HeadersExt, SipMessage};

/// What to do with one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Well-formed: hand it to the stack.
    Pass,
    /// Answer it ourselves with this response and do not pass it on.
    Reply(Vec<u8>, Rejection),
    /// Not answerable (no Via to answer to, a broken response, garbage): drop it.
    Drop(Rejection),
}

/// Why a datagram did not pass; one label per metric series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    UnknownMethod,
    BadRequest,
    Garbage,
}

impl Rejection {
    pub fn label(self) -> &'static str {
        match self {
            Rejection::UnknownMethod => "unknown_method",
            Rejection::BadRequest => "bad_request",
            Rejection::Garbage => "garbage",
        }
    }
}

/// Methods the stack parses; anything else gets 501.
const KNOWN_METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// Methods we name in the Allow header of our error responses.
pub const ALLOWED_METHODS: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";

/// Judge one datagram. `server` is our Server header value.
pub fn screen(datagram: &[u8], server: &str) -> Verdict {
    // Methods are case-sensitive (RFC 3261 §7.1); the stack would accept
    // `invite` as INVITE, so judge the token before parsing.
    if let Some(method) = request_method(datagram) {
        if !KNOWN_METHODS.contains(&method) {
            return reply_or_drop(
                datagram,
                501,
                "Not Implemented",
                Rejection::UnknownMethod,
                server,
            );
        }
    }
    if let Err(why) = check_content_length(datagram) {
        return match request_method(datagram) {
            Some("ACK") | None => Verdict::Drop(why),
            Some(_) => reply_or_drop(datagram, 400, "Bad Request", why, server),
        };
    }
    match SipMessage::try_from(datagram) {
        Ok(SipMessage::Request(req)) => {
            let complete = req.via_header().is_ok()
                && req.call_id_header().is_ok()
                && req.from_header().is_ok()
                && req.to_header().is_ok()
                && req
                    .cseq_header()
                    .is_ok_and(|c| c.seq().is_ok() && c.method().is_ok());
            if complete {
                Verdict::Pass
            } else {
                reply_or_drop(datagram, 400, "Bad Request", Rejection::BadRequest, server)
            }
        }
        Ok(SipMessage::Response(resp)) => {
            if resp.via_header().is_ok()
                && resp.cseq_header().is_ok()
                && resp.call_id_header().is_ok()
            {
                Verdict::Pass
            } else {
                Verdict::Drop(Rejection::Garbage)
            }
        }
        Err(_) => match request_method(datagram) {
            // ACK never gets a response (RFC 3261 §17.2.1).
            Some("ACK") => Verdict::Drop(Rejection::BadRequest),
            Some(_) => reply_or_drop(datagram, 400, "Bad Request", Rejection::BadRequest, server),
            None => Verdict::Drop(Rejection::Garbage),
        },
    }
}

/// RFC 3261 §18.3: over UDP the body must hold at least Content-Length
/// bytes (extra bytes are ignored); a length that is not a number, or one
/// that runs past the datagram, makes the request a 400.
fn check_content_length(datagram: &[u8]) -> Result<(), Rejection> {
    let Some(split) = find(datagram, b"\r\n\r\n") else {
        return Ok(()); // no header end at all: the parser will judge
    };
    let body_len = datagram.len() - split - 4;
    let head = String::from_utf8_lossy(&datagram[..split]);
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            match value.trim().parse::<usize>() {
                Ok(n) if n <= body_len => {}
                _ => return Err(Rejection::BadRequest),
            }
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The method token of a request line `METHOD uri SIP/2.0`, if it is one.
fn request_method(datagram: &[u8]) -> Option<&str> {
    let end = datagram.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&datagram[..end])
        .ok()?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let _uri = parts.next()?;
    let version = parts.next()?;
    let token_ok = !method.is_empty()
        && method.len() <= 32
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    (token_ok && version == "SIP/2.0" && parts.next().is_none()).then_some(method)
}

/// Build a stateless response from the raw headers, copying Via, From, To,
/// Call-ID and CSeq (§8.2.6). Without all five there is no one to answer.
fn reply_or_drop(
    datagram: &[u8],
    code: u16,
    reason: &str,
    why: Rejection,
    server: &str,
) -> Verdict {
    let text = String::from_utf8_lossy(datagram);
    let mut vias = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    for line in text.split('\n').skip(1) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() || value.len() > 1024 || value.contains(['\r', '\0']) {
            continue;
        }
        match name.trim().to_ascii_lowercase().as_str() {
            "via" | "v" => vias.push(value.to_string()),
            "from" | "f" => from = Some(value.to_string()),
            "to" | "t" => to = Some(value.to_string()),
            "call-id" | "i" => call_id = Some(value.to_string()),
            "cseq" => cseq = Some(value.to_string()),
            _ => {}
        }
    }
    let (Some(from), Some(to), Some(call_id), Some(cseq)) = (from, to, call_id, cseq) else {
        return Verdict::Drop(why);
    };
    if vias.is_empty() || vias.len() > 16 {
        return Verdict::Drop(why);
    }
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for via in vias {
        out.push_str("Via: ");
        out.push_str(&via);
        out.push_str("\r\n");
    }
    let to_tag = if to.contains(";tag=") {
        ""
    } else {
        ";tag=vbx-screen"
    };
    out.push_str(&format!(
        "From: {from}\r\nTo: {to}{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nServer: {server}\r\n"
    ));
    if code == 501 || code == 405 {
        out.push_str(&format!("Allow: {ALLOWED_METHODS}\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Verdict::Reply(out.into_bytes(), why)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: &str = "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: c1@test\r\nCSeq: 1 FOO\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

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
        let msg = "OPTIONS sip:b@127.0.0.1 SIP/2.0\r\n".to_string()
            + &HEADERS.replace("1 FOO", "1 OPTIONS");
        assert_eq!(screen(msg.as_bytes(), "vb"), Verdict::Pass);
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
    fn missing_call_id_is_dropped_and_broken_cseq_is_400() {
        let no_call_id = "INVITE sip:b@127.0.0.1 SIP/2.0\r\n".to_string()
            + &HEADERS
                .replace("Call-ID: c1@test\r\n", "")
                .replace("FOO", "INVITE");
        assert!(matches!(
            screen(no_call_id.as_bytes(), "vb"),
            Verdict::Drop(Rejection::BadRequest)
        ));
        let bad_cseq = "INVITE sip:b@127.0.0.1 SIP/2.0\r\n".to_string()
            + &HEADERS.replace("CSeq: 1 FOO", "CSeq: abc INVITE");
        assert_eq!(
            status(&screen(bad_cseq.as_bytes(), "vb")).as_deref(),
            Some("SIP/2.0 400 Bad Request")
        );
    }

    #[test]
    fn lowercase_method_is_unknown() {
        let msg =
            "invite sip:b@127.0.0.1 SIP/2.0\r\n".to_string() + &HEADERS.replace("FOO", "invite");
        assert_eq!(
            status(&screen(msg.as_bytes(), "vb")).as_deref(),
            Some("SIP/2.0 501 Not Implemented")
        );
    }

    #[test]
    fn content_length_must_fit_the_datagram() {
        let ok = "OPTIONS sip:b@127.0.0.1 SIP/2.0\r\n".to_string()
            + &HEADERS.replace("1 FOO", "1 OPTIONS");
        for bad in [
            "Content-Length: 50",
            "Content-Length: -1",
            "Content-Length: lots",
        ] {
            let msg = ok.replace("Content-Length: 0", bad);
            assert_eq!(
                status(&screen(msg.as_bytes(), "vb")).as_deref(),
                Some("SIP/2.0 400 Bad Request"),
                "{bad}"
            );
        }
        // Extra bytes past Content-Length are ignored, not an error.
        let longer = ok.clone() + "trailing";
        assert_eq!(screen(longer.as_bytes(), "vb"), Verdict::Pass);
    }

    #[test]
    fn missing_from_and_to_is_400() {
        let msg = "OPTIONS sip:b@127.0.0.1 SIP/2.0\r\n".to_string()
            + &HEADERS
                .replace("1 FOO", "1 OPTIONS")
                .replace("From: <sip:a@127.0.0.1>;tag=1\r\n", "")
                .replace("To: <sip:b@127.0.0.1>\r\n", "");
        assert!(matches!(
            screen(msg.as_bytes(), "vb"),
            Verdict::Drop(Rejection::BadRequest)
        ));
    }

    #[test]
    fn garbage_is_dropped() {
        assert_eq!(
            screen(b"\x00\x01\x02hello", "vb"),
            Verdict::Drop(Rejection::Garbage)
        );
        assert_eq!(screen(b"", "vb"), Verdict::Drop(Rejection::Garbage));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1500)) {
            let _ = screen(&bytes, "vb");
        }

        #[test]
        fn random_request_lines_never_panic(method in "[A-Z]{1,10}", tail in "[ -~\r\n]{0,300}") {
            let msg = format!("{method} sip:x@y SIP/2.0\r\n{tail}");
            let _ = screen(msg.as_bytes(), "vb");
        }
    }
}
