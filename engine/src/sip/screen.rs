//! Screening of raw SIP datagrams before the stack sees them.
//!
//! The stack is lenient: it takes `invite` for INVITE, `SIP/7.0` for 2.0, a
//! second Content-Length, a CSeq naming another method, and it drops what it
//! cannot parse without a word. A peer deserves the answer RFC 3261 §8.2 and
//! RFC 4475 give a UAS, and an operator needs to know. This module is pure:
//! bytes in, a verdict out, in the order of §8.2 — the start line (400,
//! 505), the method (501), framing and the mandatory headers (400), the
//! Request-URI scheme (416), `Require` (420), then for an INVITE the body
//! type (415) and `Accept` (406). What passes is handed to the stack, cut at
//! Content-Length (§18.3: octets past it in a datagram are discarded).

mod head;

use head::{is_token_char, split_outside, tighten_params, trim, Field, Head};

/// What to do with one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Well-formed: hand it to the stack.
    Pass,
    /// Well-formed, but only its first `n` bytes are the message.
    Trim(usize),
    /// Well-formed, but written in a way the stack misreads (folded lines,
    /// whitespace around `;` and `=`): hand it on as these equivalent bytes.
    Rewrite(Vec<u8>),
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
    BadVersion,
    UnsupportedScheme,
    BadExtension,
    UnsupportedMedia,
    NotAcceptable,
    TooLarge,
}

impl Rejection {
    /// Every kind, in metric order.
    pub const ALL: [Rejection; 9] = [
        Rejection::UnknownMethod,
        Rejection::BadRequest,
        Rejection::Garbage,
        Rejection::BadVersion,
        Rejection::UnsupportedScheme,
        Rejection::BadExtension,
        Rejection::UnsupportedMedia,
        Rejection::NotAcceptable,
        Rejection::TooLarge,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Rejection::UnknownMethod => "unknown_method",
            Rejection::BadRequest => "bad_request",
            Rejection::Garbage => "garbage",
            Rejection::BadVersion => "bad_version",
            Rejection::UnsupportedScheme => "unsupported_scheme",
            Rejection::BadExtension => "bad_extension",
            Rejection::UnsupportedMedia => "unsupported_media",
            Rejection::NotAcceptable => "not_acceptable",
            Rejection::TooLarge => "too_large",
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

/// The one body type we read (named in `Accept:` of 415 answers).
pub const ACCEPTED_BODY: &str = "application/sdp";

/// Request-URI schemes we answer (§8.2.2.1: others get 416).
const SCHEMES: &[&str] = &["sip", "sips", "tel"];

/// Highest CSeq sequence number (§8.1.1.5: less than 2^31).
const MAX_CSEQ: u64 = (1 << 31) - 1;

/// Header fields that may appear once only (§7.3.1, RFC 4475 §3.3.8).
const SINGLE: &[&str] = &[
    "call-id",
    "content-length",
    "content-type",
    "cseq",
    "from",
    "max-forwards",
    "to",
];

/// Judge one datagram. `server` is our Server header value.
///
/// A request screening would pass must also parse in the SIP stack: the
/// stack drops what its parser refuses without an answer, so a caller whose
/// INVITE it cannot read (RFC 4475's `regaut01`, an unknown Authorization
/// scheme, damaged) would retransmit into silence. Such a request gets 400
/// here instead. That parses passed requests twice (here and in the stack);
/// a few microseconds per request, after the per-source rate limit.
pub fn screen(datagram: &[u8], server: &str) -> Verdict {
    let verdict = screen_fields(datagram, server);
    let handed_on: &[u8] = match &verdict {
        Verdict::Pass => datagram,
        Verdict::Trim(n) => &datagram[..(*n).min(datagram.len())],
        Verdict::Rewrite(bytes) => bytes,
        Verdict::Reply(..) | Verdict::Drop(_) => return verdict,
    };
    match rsipstack::sip::SipMessage::try_from(handed_on) {
        Ok(rsipstack::sip::SipMessage::Request(_)) => verdict,
        // Responses are screened by `screen_response`, which already passes
        // only what answers a transaction; a response the parser refuses is
        // dropped by the stack, as a stray response should be.
        Ok(rsipstack::sip::SipMessage::Response(_)) => verdict,
        Err(_) => {
            let head = head::read(datagram);
            if head.start.starts_with(b"SIP/") || head.start.starts_with(b"ACK ") {
                // Neither a response nor an ACK is ever answered.
                Verdict::Drop(Rejection::BadRequest)
            } else {
                reply(
                    &head,
                    400,
                    "Bad Request",
                    Rejection::BadRequest,
                    server,
                    &[],
                )
            }
        }
    }
}

/// The checks of [`screen`] on the message's own fields.
fn screen_fields(datagram: &[u8], server: &str) -> Verdict {
    let head = head::read(datagram);
    if head.start.starts_with(b"SIP/") {
        return screen_response(&head);
    }
    let Some((method, uri, version)) = request_line(&head.start) else {
        // No request line and no Via to answer: not SIP at all.
        return match reply(
            &head,
            400,
            "Bad Request",
            Rejection::BadRequest,
            server,
            &[],
        ) {
            Verdict::Drop(_) => Verdict::Drop(Rejection::Garbage),
            answered => answered,
        };
    };
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        // Bytes, not `str` indexes: a multi-byte character inside the first
        // four (a BOM the fuzzer put in `SIP/2.0`) panicked here.
        return if version.len() > 4 && version.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
            reply(
                &head,
                505,
                "Version Not Supported",
                Rejection::BadVersion,
                server,
                &[],
            )
        } else {
            reply(
                &head,
                400,
                "Bad Request",
                Rejection::BadRequest,
                server,
                &[],
            )
        };
    }
    let ack = method == "ACK";
    // Methods are case-sensitive (§7.1): `invite` is unknown, not INVITE.
    if !KNOWN_METHODS.contains(&method) {
        return reply(
            &head,
            501,
            "Not Implemented",
            Rejection::UnknownMethod,
            server,
            &[("Allow", ALLOWED_METHODS)],
        );
    }
    let bad = |head: &Head| {
        if ack {
            // ACK never gets a response (§17.2.1).
            Verdict::Drop(Rejection::BadRequest)
        } else {
            reply(head, 400, "Bad Request", Rejection::BadRequest, server, &[])
        }
    };
    let Some(body_at) = head.body_at else {
        return bad(&head);
    };
    let Some(message_len) = framed_length(&head, body_at, datagram.len()) else {
        return bad(&head);
    };
    if head.bad_line
        || !uri_is_well_formed(uri)
        || !mandatory_headers_ok(&head, method)
        || head.fields.iter().any(has_stray_control)
    {
        return bad(&head);
    }
    let scheme = uri.split(':').next().unwrap_or_default();
    if !SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return reply(
            &head,
            416,
            "Unsupported URI Scheme",
            Rejection::UnsupportedScheme,
            server,
            &[],
        );
    }
    if !ack && method != "CANCEL" {
        // We implement no extension, so every option tag is unsupported.
        let required: Vec<String> = head
            .all("require")
            .flat_map(|f| split_outside(&f.value, b','))
            .filter(|t| !t.is_empty())
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .collect();
        if !required.is_empty() {
            let list = required.join(", ");
            return reply(
                &head,
                420,
                "Bad Extension",
                Rejection::BadExtension,
                server,
                &[("Unsupported", &list)],
            );
        }
    }
    if method == "INVITE" {
        let has_body = message_len > body_at;
        let content_type = head.first("content-type").map(|f| media_type(&f.value));
        let readable = match &content_type {
            Some(t) => t == ACCEPTED_BODY,
            None => !has_body,
        };
        if !readable {
            return reply(
                &head,
                415,
                "Unsupported Media Type",
                Rejection::UnsupportedMedia,
                server,
                &[("Accept", ACCEPTED_BODY)],
            );
        }
        if let Some(accept) = head.first("accept") {
            let takes_sdp = split_outside(&accept.value, b',').iter().any(|range| {
                let t = media_type(range);
                t == ACCEPTED_BODY || t == "application/*" || t == "*/*"
            });
            // An empty Accept asks for no body at all; our 200 has one.
            if !takes_sdp {
                return reply(
                    &head,
                    406,
                    "Not Acceptable",
                    Rejection::NotAcceptable,
                    server,
                    &[("Accept", ACCEPTED_BODY)],
                );
            }
        }
    }
    if method == "INVITE" && !dialog_ready(&head) {
        return reply(
            &head,
            400,
            "Missing From Tag or Contact",
            Rejection::BadRequest,
            server,
            &[],
        );
    }
    if let Some(rewritten) = canonical(&head, &datagram[body_at..message_len]) {
        return Verdict::Rewrite(rewritten);
    }
    if message_len < datagram.len() {
        Verdict::Trim(message_len)
    } else {
        Verdict::Pass
    }
}

/// Header fields whose parameters the stack reads.
const PARAMETRISED: &[&str] = &["via", "from", "to", "contact", "route", "record-route"];

/// The same message with folds unfolded and parameter whitespace taken
/// out, when either was there; `None` when the bytes are fine as they are.
fn canonical(head: &Head, body: &[u8]) -> Option<Vec<u8>> {
    let tightened: Vec<Option<Vec<u8>>> = head
        .fields
        .iter()
        .map(|f| {
            PARAMETRISED
                .contains(&f.canonical().as_str())
                .then(|| tighten_params(&f.value))
                .filter(|t| *t != f.value)
        })
        .collect();
    if !head.folded && tightened.iter().all(Option::is_none) {
        return None;
    }
    let mut out = Vec::with_capacity(head.start.len() + body.len() + 64 * head.fields.len());
    out.extend_from_slice(&head.start);
    out.extend_from_slice(b"\r\n");
    for (f, t) in head.fields.iter().zip(&tightened) {
        out.extend_from_slice(&f.name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(t.as_deref().unwrap_or(&f.value));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Some(out)
}

/// An INVITE opens a dialog: RFC 3261 §8.1.1.3 and §8.1.1.8 make a From
/// tag and a Contact compulsory, and without them the stack can neither
/// key the dialog nor reach the caller with a BYE. RFC 2543 callers
/// (RFC 4475 §3.4.1) sent neither; they are refused out loud.
fn dialog_ready(head: &Head) -> bool {
    let from_tag = head.first("from").is_some_and(|f| {
        split_outside(&tighten_params(&f.value), b';')
            .iter()
            .skip(1)
            .any(|p| p.len() > 4 && p[..4].eq_ignore_ascii_case(b"tag="))
    });
    from_tag && head.first("contact").is_some()
}

/// A stateless response to a request we will not pass on for a reason of
/// our own (a rate limit's 503, say); `None` when it has no Via to answer.
pub fn answer(
    datagram: &[u8],
    code: u16,
    reason: &str,
    server: &str,
    extra: &[(&str, &str)],
) -> Option<Vec<u8>> {
    // The Rejection only labels a Drop, which `None` stands for here.
    match reply(
        &head::read(datagram),
        code,
        reason,
        Rejection::BadRequest,
        server,
        extra,
    ) {
        Verdict::Reply(bytes, _) => Some(bytes),
        _ => None,
    }
}

/// A datagram the stack's receive buffer could not hold whole: answer 513
/// (§21.4.11) from what did arrive, or drop it.
pub fn too_large(truncated: &[u8], server: &str) -> Verdict {
    let head = head::read(truncated);
    if head.start.starts_with(b"SIP/")
        || request_line(&head.start).is_some_and(|(m, _, _)| m == "ACK")
    {
        return Verdict::Drop(Rejection::TooLarge);
    }
    reply(
        &head,
        513,
        "Message Too Large",
        Rejection::TooLarge,
        server,
        &[],
    )
}

/// Responses are the stack's to match (and to drop when they answer
/// nothing of ours); only ones it could not parse are dropped here.
fn screen_response(head: &Head) -> Verdict {
    let status_ok = std::str::from_utf8(&head.start).ok().is_some_and(|line| {
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let code = parts.next().unwrap_or_default();
        version.eq_ignore_ascii_case("SIP/2.0")
            && code.len() == 3
            && code.parse::<u16>().is_ok_and(|c| (100..700).contains(&c))
    });
    let cseq_ok = head.first("cseq").is_some_and(|f| cseq(&f.value).is_some());
    if status_ok
        && head.body_at.is_some()
        && cseq_ok
        && head.first("via").is_some()
        && head.first("call-id").is_some()
    {
        Verdict::Pass
    } else {
        Verdict::Drop(Rejection::Garbage)
    }
}

/// `METHOD SP Request-URI SP SIP-Version`, single spaces, nothing after
/// (RFC 4475 §3.1.2.9, §3.1.2.10): the three parts.
fn request_line(line: &[u8]) -> Option<(&str, &str, &str)> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let uri = parts.next()?;
    let version = parts.next()?;
    let ok = parts.next().is_none()
        && !method.is_empty()
        && method.len() <= 64
        && method.bytes().all(is_token_char)
        && !uri.is_empty()
        && !version.is_empty();
    ok.then_some((method, uri, version))
}

/// A Request-URI: `scheme:rest`, not in `<>` (§3.1.2.7), and for SIP no
/// escaped headers (`?`, RFC 4475 §3.1.2.11: §19.1.1 forbids them here).
fn uri_is_well_formed(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let sip = scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips");
    scheme_ok
        && !rest.is_empty()
        && !uri
            .bytes()
            .any(|b| b.is_ascii_control() || b == b'<' || b == b'>')
        && (!sip || !rest.contains('?'))
}

/// The message length the Content-Length gives (§18.3): one value only
/// (RFC 4475 §3.3.9), a number, no more than the datagram holds. Without
/// one, over UDP, the body runs to the end of the datagram.
fn framed_length(head: &Head, body_at: usize, datagram_len: usize) -> Option<usize> {
    let mut lengths = head.all("content-length");
    let Some(field) = lengths.next() else {
        return Some(datagram_len);
    };
    if lengths.next().is_some() {
        return None;
    }
    let text = std::str::from_utf8(&field.value).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: usize = text.parse().ok()?;
    let end = body_at.checked_add(n)?;
    (end <= datagram_len).then_some(end)
}

/// Via, From, To, Call-ID and CSeq present and well-formed (§8.1.1), once
/// each where only one is allowed, and the CSeq naming this method
/// (RFC 4475 §3.1.2.17).
fn mandatory_headers_ok(head: &Head, method: &str) -> bool {
    for name in ["via", "from", "to", "call-id", "cseq"] {
        if head.first(name).is_none() {
            return false;
        }
    }
    if SINGLE.iter().any(|name| head.all(name).nth(1).is_some()) {
        return false;
    }
    let cseq_ok = head
        .first("cseq")
        .and_then(|f| cseq(&f.value))
        .is_some_and(|(_, m)| m == method);
    let vias_ok = head
        .all("via")
        .flat_map(|f| split_outside(&f.value, b','))
        .all(via_ok);
    let top_branch_ok = head
        .first("via")
        .map(|f| split_outside(&f.value, b','))
        .and_then(|values| values.first().map(|v| branch_ok(v)))
        .unwrap_or(false);
    let addresses_ok = ["from", "to"]
        .iter()
        .filter_map(|n| head.first(n))
        .all(|f| name_addr_ok(&f.value));
    let contacts_ok = head
        .all("contact")
        .flat_map(|f| split_outside(&f.value, b','))
        .all(|c| c == b"*" || name_addr_ok(c));
    let call_id_ok = head
        .first("call-id")
        .is_some_and(|f| !f.value.is_empty() && !f.value.iter().any(|&b| b == b' ' || b == b'\t'));
    cseq_ok && vias_ok && top_branch_ok && addresses_ok && contacts_ok && call_id_ok
}

/// `CSeq: 1*DIGIT LWS Method`, the number under 2^31 (RFC 4475 §3.1.2.4).
fn cseq(value: &[u8]) -> Option<(u64, &str)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split_whitespace();
    let number = parts.next()?;
    let method = parts.next()?;
    if parts.next().is_some() || !number.bytes().all(|b| b.is_ascii_digit()) || number.len() > 10 {
        return None;
    }
    let n: u64 = number.parse().ok()?;
    (n <= MAX_CSEQ).then_some((n, method))
}

/// One Via value: `SIP / 2.0 / transport sent-by *( ; param )` with LWS
/// allowed around the separators, and no empty parameter (RFC 4475
/// §3.1.2.1).
fn via_ok(value: &[u8]) -> bool {
    if value.is_empty() {
        return false;
    }
    let mut params = split_outside(value, b';').into_iter();
    let Some(sent) = params.next() else {
        return false;
    };
    let Ok(sent) = std::str::from_utf8(sent) else {
        return false;
    };
    let mut protocol = sent.splitn(3, '/');
    let (Some(name), Some(version), Some(rest)) =
        (protocol.next(), protocol.next(), protocol.next())
    else {
        return false;
    };
    let mut rest = rest.split_whitespace();
    let (Some(transport), Some(host)) = (rest.next(), rest.next()) else {
        return false;
    };
    let name_ok = name.trim().eq_ignore_ascii_case("SIP") && version.trim() == "2.0";
    let transport_ok = transport.bytes().all(is_token_char);
    let host_ok = rest.next().is_none()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    name_ok
        && transport_ok
        && host_ok
        && params.all(|p| {
            let name = p.split(|&b| b == b'=').next().map(trim).unwrap_or_default();
            !name.is_empty() && name.iter().all(|&b| is_token_char(b))
        })
}

/// A branch that is only the RFC 3261 magic cookie identifies nothing
/// (RFC 4475 §3.2.1): refuse it statelessly rather than guess.
fn branch_ok(via: &[u8]) -> bool {
    !split_outside(via, b';').iter().skip(1).any(|p| {
        let mut kv = p.splitn(2, |&b| b == b'=');
        let name = kv.next().map(trim).unwrap_or_default();
        let value = kv.next().map(trim).unwrap_or_default();
        name.eq_ignore_ascii_case(b"branch") && value.eq_ignore_ascii_case(b"z9hG4bK")
    })
}

/// `name-addr` or `addr-spec` with parameters (§20.10, §25.1): balanced
/// quotes (RFC 4475 §3.1.2.6), a display name of tokens or one quoted
/// string (§3.1.2.15), no whitespace inside `<…>` (§3.1.2.14), and a bare
/// addr-spec without `?` or `,` (§3.1.2.13).
fn name_addr_ok(value: &[u8]) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    let mut open = None;
    for (i, &b) in value.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'<' if !quoted => {
                open = Some(i);
                break;
            }
            _ => {}
        }
    }
    if quoted {
        return false;
    }
    match open {
        Some(open) => {
            let Some(close) = value[open..].iter().position(|&b| b == b'>') else {
                return false;
            };
            let inner = &value[open + 1..open + close];
            let display = trim(&value[..open]);
            let display_ok = if display.first() == Some(&b'"') {
                display.last() == Some(&b'"') && display.len() >= 2
            } else {
                display
                    .iter()
                    .all(|&b| is_token_char(b) || b == b' ' || b == b'\t')
            };
            display_ok
                && !inner.is_empty()
                && inner.contains(&b':')
                && !inner.iter().any(|&b| b == b' ' || b == b'\t')
        }
        None => {
            let spec = value
                .split(|&b| b == b';')
                .next()
                .map(trim)
                .unwrap_or_default();
            !spec.is_empty()
                && spec.contains(&b':')
                && !spec
                    .iter()
                    .any(|&b| b == b'?' || b == b',' || b == b' ' || b == b'"')
        }
    }
}

/// A control octet outside a quoted-pair (`\` + octet inside quotes, which
/// RFC 4475 §3.1.1.2 shows carrying NUL, BEL and DEL legally).
fn has_stray_control(field: &Field) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for &b in &field.value {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'\t' => {}
            _ if b < 0x20 || b == 0x7f => return true,
            _ => {}
        }
    }
    false
}

/// `type/subtype` of a media type or range, lower-case, parameters dropped.
fn media_type(value: &[u8]) -> String {
    let main = value.split(|&b| b == b';').next().unwrap_or_default();
    String::from_utf8_lossy(main)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Longest value we copy into a stateless answer, and most Vias.
const MAX_COPIED_VALUE: usize = 4096;
const MAX_VIAS: usize = 70;

/// Build a stateless response (§8.2.6): every Via (the peer's client
/// transaction matches on the top one, §17.1.3), and From, To, Call-ID and
/// CSeq when the request has them — RFC 4475 §3.3.1 asks for a 400 even to
/// a request missing them. Without a Via there is no one to answer.
fn reply(
    head: &Head,
    code: u16,
    reason: &str,
    why: Rejection,
    server: &str,
    extra: &[(&str, &str)],
) -> Verdict {
    let mut vias: Vec<&[u8]> = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    for f in &head.fields {
        if f.value.is_empty() || f.value.len() > MAX_COPIED_VALUE {
            continue;
        }
        match f.canonical().as_str() {
            "via" => vias.push(&f.value),
            "from" if from.is_none() => from = Some(&f.value),
            "to" if to.is_none() => to = Some(&f.value),
            "call-id" if call_id.is_none() => call_id = Some(&f.value),
            "cseq" if cseq.is_none() => cseq = Some(&f.value),
            _ => {}
        }
    }
    if vias.is_empty() || vias.len() > MAX_VIAS {
        return Verdict::Drop(why);
    }
    let mut out = format!("SIP/2.0 {code} {reason}\r\n").into_bytes();
    let mut line = |name: &str, value: &[u8], suffix: &str| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(suffix.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    for via in vias {
        line("Via", via, "");
    }
    if let Some(from) = from {
        line("From", from, "");
    }
    if let Some(to) = to {
        let tagged = split_outside(to, b';').iter().skip(1).any(|p| {
            trim(p.split(|&b| b == b'=').next().unwrap_or_default()).eq_ignore_ascii_case(b"tag")
        });
        line("To", to, if tagged { "" } else { ";tag=vbx-screen" });
    }
    if let Some(call_id) = call_id {
        line("Call-ID", call_id, "");
    }
    if let Some(cseq) = cseq {
        line("CSeq", cseq, "");
    }
    line("Server", server.as_bytes(), "");
    for (name, value) in extra {
        line(name, value.as_bytes(), "");
    }
    line("Content-Length", b"0", "\r\n");
    Verdict::Reply(out, why)
}

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
