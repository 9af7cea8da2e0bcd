//! Blind transfer by REFER (RFC 3515): the context headers that travel with
//! the caller, and the progress tracker that reads the REFER's answer and
//! the NOTIFY `message/sipfrag` reports. Pure: the call task feeds it.

use std::fmt::Write as _;

/// How context is attached to a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextOptions {
    /// Put each item on the Refer-To URI as a header (`?X-VB-Account=1234`):
    /// the transferee copies them into its INVITE to the agent.
    pub in_uri: bool,
    /// Also send the items in a `User-to-User` header (hex, RFC 7433).
    pub user_to_user: bool,
    /// Name prefix of the URI headers.
    pub header_prefix: String,
    /// Upper bound of the encoded context, in bytes; items that do not fit
    /// are left out (later items first) and the call log says so.
    pub max_bytes: usize,
}

/// The Refer-To value and extra REFER headers for one transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferRequest {
    /// `<sip:agent@pbx?X-VB-Account=1234&X-VB-Intent=agent>`
    pub refer_to: String,
    /// `User-to-User` value, when enabled.
    pub user_to_user: Option<String>,
    /// Items that did not fit in `max_bytes`.
    pub dropped: Vec<String>,
}

/// Build the REFER for `target` carrying `context` (name, value) items.
pub fn refer_request(
    target: &str,
    context: &[(String, String)],
    opts: &ContextOptions,
) -> ReferRequest {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let mut size = 0;
    for (name, value) in context {
        let name = header_token(name);
        let cost = opts.header_prefix.len() + name.len() + value.len() + 2;
        if name.is_empty() || size + cost > opts.max_bytes {
            dropped.push(name);
            continue;
        }
        size += cost;
        kept.push((name, value.clone()));
    }
    let mut uri = target
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string();
    if opts.in_uri && !kept.is_empty() {
        let mut sep = if uri.contains('?') { '&' } else { '?' };
        for (name, value) in &kept {
            let _ = write!(
                uri,
                "{sep}{}{}={}",
                opts.header_prefix,
                name,
                escape_uri_header(value)
            );
            sep = '&';
        }
    }
    let user_to_user = (opts.user_to_user && !kept.is_empty()).then(|| {
        let plain: Vec<String> = kept.iter().map(|(n, v)| format!("{n}={v}")).collect();
        format!("{};encoding=hex", hex(plain.join(";").as_bytes()))
    });
    ReferRequest {
        refer_to: format!("<{uri}>"),
        user_to_user,
        dropped,
    }
}

/// Header names are RFC 3261 tokens: keep letters, digits and `-`.
fn header_token(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

/// Escape a URI header value (RFC 3261 §25.1 `hvalue`): unreserved and a
/// few marks stay, everything else is %-encoded byte by byte.
fn escape_uri_header(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/:+$".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Where a transfer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferState {
    /// Waiting for the REFER's answer or a final NOTIFY.
    Pending,
    /// The target answered (2xx sipfrag): hang up our leg.
    Succeeded,
    /// The transfer did not happen; the call stays with the bot.
    Failed(String),
}

/// Follows one REFER to its outcome.
#[derive(Debug, Default)]
pub struct TransferTracker {
    accepted: bool,
}

impl TransferTracker {
    /// The final response to our REFER.
    pub fn on_refer_response(&mut self, code: u16) -> TransferState {
        match code {
            200..=299 => {
                self.accepted = true;
                TransferState::Pending
            }
            _ => TransferState::Failed(format!("REFER answered {code}")),
        }
    }

    /// A NOTIFY for the refer subscription: its sipfrag status code and
    /// whether the subscription ended.
    pub fn on_notify(&mut self, sipfrag_code: u16, terminated: bool) -> TransferState {
        match sipfrag_code {
            100..=199 if !terminated => TransferState::Pending,
            200..=299 => TransferState::Succeeded,
            100..=199 => {
                TransferState::Failed("subscription ended before the target answered".into())
            }
            code => TransferState::Failed(format!("target answered {code}")),
        }
    }

    /// The transfer timeout passed.
    pub fn on_timeout(&self) -> TransferState {
        if self.accepted {
            TransferState::Failed("no final NOTIFY before the timeout".into())
        } else {
            TransferState::Failed("no answer to REFER before the timeout".into())
        }
    }
}

/// The status code of a `message/sipfrag` body (`SIP/2.0 200 OK`).
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("SIP/2.0"))?;
    line.split_whitespace()
        .nth(1)?
        .parse()
        .ok()
        .filter(|c| (100..700).contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(max: usize) -> ContextOptions {
        ContextOptions {
            in_uri: true,
            user_to_user: true,
            header_prefix: "X-VB-".into(),
            max_bytes: max,
        }
    }

    fn ctx(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn context_goes_on_the_uri_and_in_user_to_user() {
        let r = refer_request(
            "sip:agent@127.0.0.1:5090",
            &ctx(&[
                ("account", "1234"),
                ("intent", "agent"),
                ("summary", "order late; wants refund"),
            ]),
            &opts(256),
        );
        assert_eq!(
            r.refer_to,
            "<sip:agent@127.0.0.1:5090?X-VB-account=1234&X-VB-intent=agent&X-VB-summary=order%20late%3B%20wants%20refund>"
        );
        let uui = r.user_to_user.unwrap();
        assert!(uui.ends_with(";encoding=hex"));
        let decoded: Vec<u8> = (0..uui.len() - 13)
            .step_by(2)
            .map(|i| u8::from_str_radix(&uui[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "account=1234;intent=agent;summary=order late; wants refund"
        );
        assert!(r.dropped.is_empty());
    }

    #[test]
    fn context_is_size_bounded() {
        let r = refer_request(
            "<sip:agent@pbx>",
            &ctx(&[("account", "1234"), ("summary", &"x".repeat(500))]),
            &opts(64),
        );
        assert_eq!(r.refer_to, "<sip:agent@pbx?X-VB-account=1234>");
        assert_eq!(r.dropped, vec!["summary".to_string()]);
    }

    #[test]
    fn no_context_no_headers() {
        let r = refer_request("sip:agent@pbx", &[], &opts(64));
        assert_eq!(r.refer_to, "<sip:agent@pbx>");
        assert_eq!(r.user_to_user, None);
    }

    #[test]
    fn tracker_follows_refer_and_notify() {
        let mut t = TransferTracker::default();
        assert_eq!(t.on_refer_response(202), TransferState::Pending);
        assert_eq!(t.on_notify(100, false), TransferState::Pending);
        assert_eq!(t.on_notify(180, false), TransferState::Pending);
        assert_eq!(t.on_notify(200, true), TransferState::Succeeded);
        let mut t = TransferTracker::default();
        t.on_refer_response(202);
        assert!(matches!(t.on_notify(486, true), TransferState::Failed(m) if m.contains("486")));
        let mut t = TransferTracker::default();
        assert!(matches!(t.on_refer_response(603), TransferState::Failed(m) if m.contains("603")));
        assert!(matches!(t.on_timeout(), TransferState::Failed(m) if m.contains("REFER")));
    }

    #[test]
    fn sipfrag_bodies() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 486 Busy Here"), Some(486));
        assert_eq!(sipfrag_status(b"garbage"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 9999 X"), None);
    }
}
