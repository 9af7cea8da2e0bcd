//! Masking of personal data before it reaches a log line.
//!
//! Logs are shipped, kept and read by people who must not learn callers'
//! phone numbers; the last four digits are enough to tell calls apart.

/// Mask a phone number or SIP user part, keeping the last four characters:
/// `+8613800138000` → `*********8000`. Short values are masked whole.
pub fn mask_number(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let keep = chars.len() - 4;
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < keep { '*' } else { *c })
        .collect()
}

/// Mask the user part of a SIP URI: `sip:+15551234567@pbx` → `sip:********4567@pbx`.
pub fn mask_uri(uri: &str) -> String {
    let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let uri = uri.split('?').next().unwrap_or(uri);
    let (scheme, rest) = match uri.split_once(':') {
        Some((s, r))
            if s.eq_ignore_ascii_case("sip")
                || s.eq_ignore_ascii_case("sips")
                || s.eq_ignore_ascii_case("tel") =>
        {
            (s, r)
        }
        _ => return mask_number(uri),
    };
    match rest.split_once('@') {
        Some((user, host)) => format!("{scheme}:{}@{host}", mask_number(user)),
        None if scheme.eq_ignore_ascii_case("tel") => format!("{scheme}:{}", mask_number(rest)),
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_last_four() {
        assert_eq!(mask_number("+8613800138000"), "**********8000");
        assert_eq!(mask_number("123"), "***");
        assert_eq!(mask_number(""), "");
    }

    #[test]
    fn uris_mask_user_part_only() {
        assert_eq!(
            mask_uri("sip:+15551234567@pbx.example"),
            "sip:********4567@pbx.example"
        );
        assert_eq!(mask_uri("tel:+15551234567"), "tel:********4567");
        assert_eq!(mask_uri("sip:pbx.example"), "sip:pbx.example");
        assert_eq!(mask_uri("<sip:agent@pbx?X-VB-account=12>"), "sip:*gent@pbx");
    }
}
