//! DTMF carried in SIP INFO bodies, for PBXs that send keys in signalling
//! instead of RFC 4733: `application/dtmf-relay` (`Signal=5\r\nDuration=160`)
//! and `application/dtmf` (the bare key).

/// The key in an INFO body, if it is a DTMF body we understand.
pub fn parse(content_type: &str, body: &[u8]) -> Option<char> {
    let mime = content_type.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let raw = match mime.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| value.trim())
        })?,
        "application/dtmf" => text.trim(),
        _ => return None,
    };
    key(raw)
}

/// `5`, `*`, `#`, `A`..`D`, or the numeric event codes 10 (`*`) and 11 (`#`)
/// that some gateways send.
fn key(raw: &str) -> Option<char> {
    match raw {
        "10" => return Some('*'),
        "11" => return Some('#'),
        _ => {}
    }
    let mut chars = raw.chars();
    let c = chars.next()?.to_ascii_uppercase();
    if chars.next().is_some() {
        return None;
    }
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_bodies() {
        assert_eq!(
            parse("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            parse("application/dtmf-relay", b"Signal= #\nDuration=100"),
            Some('#')
        );
        assert_eq!(
            parse("Application/DTMF-Relay; charset=x", b"signal=11\r\n"),
            Some('#')
        );
        assert_eq!(parse("application/dtmf-relay", b"Duration=160\r\n"), None);
        assert_eq!(parse("application/dtmf-relay", b"Signal=55\r\n"), None);
    }

    #[test]
    fn dtmf_bodies() {
        assert_eq!(parse("application/dtmf", b"7"), Some('7'));
        assert_eq!(parse("application/dtmf", b"*\r\n"), Some('*'));
        assert_eq!(parse("application/dtmf", b"10"), Some('*'));
        assert_eq!(parse("application/dtmf", b"x"), None);
    }

    #[test]
    fn other_bodies_are_not_dtmf() {
        assert_eq!(parse("application/media_control+xml", b"<x/>"), None);
        assert_eq!(parse("application/dtmf", &[0xff, 0x00]), None);
    }

    /// The fuzz harness: INFO bodies as PBXs send them, damaged by
    /// `voxbridge_mutations`, under content types as they are written.
    /// Properties: nothing panics, a key is always one of the sixteen, and
    /// a `Signal=` line we write is read back as its key.
    mod fuzz {
        use proptest::prelude::*;
        use voxbridge_mutations::mutated;

        use super::parse;

        const BODIES: &[&[u8]] = &[
            b"Signal=5\r\nDuration=160\r\n",
            b"Signal=#\r\nDuration=250\r\n",
            b"Signal= 11\nDuration=100\n",
            b"Duration=160\r\nSignal=*\r\n",
            b"signal=A\r\n",
            b"7",
            b"10\r\n",
        ];
        const TYPES: &[&str] = &[
            "application/dtmf-relay",
            "application/dtmf",
            "Application/DTMF-Relay; charset=utf-8",
            "application/dtmf ;x=y",
            "application/sdp",
            "",
            ";",
        ];
        const KEYS: &str = "0123456789*#ABCD";

        proptest! {
            #[test]
            fn fuzz_sip_info_dtmf(
                body in mutated(BODIES.iter().map(|b| b.to_vec()).collect(), 4),
                content_type in mutated(TYPES.iter().map(|t| t.as_bytes().to_vec()).collect(), 2),
            ) {
                let content_type = String::from_utf8_lossy(&content_type);
                if let Some(key) = parse(&content_type, &body) {
                    prop_assert!(KEYS.contains(key), "{:?}", key);
                }
            }

            #[test]
            fn fuzz_sip_info_dtmf_round_trip(
                key in proptest::sample::select(KEYS.chars().collect::<Vec<_>>()),
                duration in 0u32..100_000,
                lf in any::<bool>(),
            ) {
                let eol = if lf { "\n" } else { "\r\n" };
                let body = format!("Signal={key}{eol}Duration={duration}{eol}");
                prop_assert_eq!(parse("application/dtmf-relay", body.as_bytes()), Some(key));
                prop_assert_eq!(parse("application/dtmf", key.to_string().as_bytes()), Some(key));
            }
        }
    }
}
