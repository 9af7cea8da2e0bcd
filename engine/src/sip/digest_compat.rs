//! RFC 8760 digest algorithm names on the wire.
//!
//! The stack (rsipstack 0.7) knows SHA-256 digest but spells it `SHA256`:
//! it refuses a registrar's `algorithm=SHA-256` challenge as unparsable and
//! would answer with `algorithm=SHA256`, which registrars reject. Until that
//! is fixed upstream we translate the name in the auth headers of UDP
//! datagrams: `SHA-256` → `SHA256` coming in, and back going out. The
//! digest itself does not hash the algorithm's name, so only the label moves.

const AUTH_HEADERS: [&str; 4] = [
    "www-authenticate:",
    "proxy-authenticate:",
    "authorization:",
    "proxy-authorization:",
];

/// Rewrite `from` to `to` inside `algorithm=` parameters of auth header lines.
fn rewrite(datagram: &[u8], from: &str, to: &str) -> Option<Vec<u8>> {
    // Every datagram passes here: leave at once unless the name is present.
    let needle = from.as_bytes();
    if !datagram
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
    {
        return None;
    }
    let head_end = find(datagram, b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(datagram.len());
    let head = std::str::from_utf8(&datagram[..head_end]).ok()?;
    let mut changed = false;
    let mut out = String::with_capacity(head.len() + 8);
    for line in head.split_inclusive("\r\n") {
        let lower = line.to_ascii_lowercase();
        if AUTH_HEADERS.iter().any(|h| lower.starts_with(h)) {
            let mut fixed = line.to_string();
            for (a, b) in [
                (
                    format!("algorithm={from}-sess"),
                    format!("algorithm={to}-sess"),
                ),
                (
                    format!("algorithm=\"{from}-sess\""),
                    format!("algorithm=\"{to}-sess\""),
                ),
                (format!("algorithm={from}"), format!("algorithm={to}")),
                (
                    format!("algorithm=\"{from}\""),
                    format!("algorithm=\"{to}\""),
                ),
            ] {
                if let Some(pos) = fixed.to_ascii_lowercase().find(&a.to_ascii_lowercase()) {
                    fixed.replace_range(pos..pos + a.len(), &b);
                    changed = true;
                    break;
                }
            }
            out.push_str(&fixed);
        } else {
            out.push_str(line);
        }
    }
    if !changed {
        return None;
    }
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&datagram[head_end..]);
    Some(bytes)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A received datagram in the stack's spelling, if it needed a change.
pub fn inbound(datagram: &[u8]) -> Option<Vec<u8>> {
    rewrite(datagram, "SHA-256", "SHA256")
}

/// A datagram to send in RFC 8760 spelling, if it needed a change.
pub fn outbound(datagram: &[u8]) -> Option<Vec<u8>> {
    rewrite(datagram, "SHA256", "SHA-256")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5060\r\nWWW-Authenticate: Digest realm=\"127.0.0.1\", nonce=\"abc\", qop=\"auth\", algorithm=SHA-256\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn challenge_is_translated_for_the_stack_and_back() {
        let inb = inbound(CHALLENGE.as_bytes()).unwrap();
        let text = String::from_utf8(inb.clone()).unwrap();
        assert!(text.contains("algorithm=SHA256\r\n"), "{text}");
        assert!(rsipstack::sip::SipMessage::try_from(inb.as_slice()).is_ok());
        let auth = "REGISTER sip:x SIP/2.0\r\nAuthorization: Digest username=\"bot\", algorithm=SHA256, response=\"f\"\r\nContent-Length: 0\r\n\r\n";
        let out = String::from_utf8(outbound(auth.as_bytes()).unwrap()).unwrap();
        assert!(out.contains("algorithm=SHA-256, response"), "{out}");
    }

    #[test]
    fn other_messages_and_md5_are_untouched() {
        let md5 = CHALLENGE.replace("SHA-256", "MD5");
        assert!(inbound(md5.as_bytes()).is_none());
        // Only auth headers: a Subject mentioning the name stays.
        let subject = "OPTIONS sip:x SIP/2.0\r\nSubject: algorithm=SHA-256\r\n\r\n";
        assert!(inbound(subject.as_bytes()).is_none());
        // The body is never touched.
        let with_body = "SIP/2.0 401 X\r\nWWW-Authenticate: Digest algorithm=\"SHA-256-sess\"\r\n\r\nalgorithm=SHA-256";
        let text = String::from_utf8(inbound(with_body.as_bytes()).unwrap()).unwrap();
        assert!(
            text.contains("algorithm=\"SHA256-sess\"") && text.ends_with("algorithm=SHA-256"),
            "{text}"
        );
    }
}
