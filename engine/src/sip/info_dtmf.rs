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
}
