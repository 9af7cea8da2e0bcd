//! Masking of personal data before it reaches a log line or an error
//! message.
//!
//! Logs are shipped, kept and read by people who must not learn callers'
//! phone numbers, e-mail addresses or identity numbers; the last few
//! characters are enough to tell records apart when debugging.

use std::fmt;

/// Mask a phone number, keeping the last four digits and the layout:
/// `+86 138 0013 8000` → `+** *** **** 8000`.
pub fn mask_phone(value: &str) -> String {
    mask_digits_keep_last(value, 4)
}

/// Mask an identity document or account number, keeping the last four
/// characters: `110101199003074518` → `**************4518`.
pub fn mask_id(value: &str) -> String {
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

/// Mask an e-mail address, keeping the first character of the local part
/// and the domain: `alice@example.com` → `a****@example.com`.
pub fn mask_email(value: &str) -> String {
    match value.split_once('@') {
        Some((local, domain)) => {
            let mut chars = local.chars();
            let first = chars.next().map(String::from).unwrap_or_default();
            format!("{first}{}@{domain}", "*".repeat(chars.count()))
        }
        None => mask_id(value),
    }
}

/// Mask every number of six digits or more (phone numbers, identity and
/// card numbers, even with spaces or dashes inside) and every e-mail
/// address in free text, such as a transcript or a CRM's error message.
pub fn mask_text(text: &str) -> String {
    let masked_emails = mask_emails_in(text);
    mask_long_numbers(&masked_emails)
}

/// A `Display` wrapper that prints a phone number masked, for use in
/// `tracing` fields: `info!(caller = %Masked(&number))`.
pub struct Masked<'a>(pub &'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_phone(self.0))
    }
}

impl fmt::Debug for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", mask_phone(self.0))
    }
}

fn mask_digits_keep_last(value: &str, keep: usize) -> String {
    let total = value.chars().filter(char::is_ascii_digit).count();
    let hide = total.saturating_sub(keep);
    let hide = if total <= keep { total } else { hide };
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen <= hide {
                    return '*';
                }
            }
            c
        })
        .collect()
}

fn mask_emails_in(text: &str) -> String {
    let mut out = Vec::new();
    for word in text.split_inclusive(char::is_whitespace) {
        let trimmed = word.trim_end();
        let tail = &word[trimmed.len()..];
        let core = trimmed.trim_matches(|c: char| "<>()[],;:\"'".contains(c));
        if core.contains('@') && core.contains('.') && !core.starts_with('@') {
            let start = trimmed.find(core).unwrap_or(0);
            out.push(format!(
                "{}{}{}{}",
                &trimmed[..start],
                mask_email(core),
                &trimmed[start + core.len()..],
                tail
            ));
        } else {
            out.push(word.to_string());
        }
    }
    out.concat()
}

fn mask_long_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit()
            || (chars[i] == '+' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if !starts_number {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A run of digits, allowing the separators people write inside
        // numbers as long as more digits follow.
        let start = i;
        let mut end = i + 1;
        let mut digits = 0;
        let mut j = i;
        while j < chars.len() {
            let ch = chars[j];
            if ch.is_ascii_digit() {
                digits += 1;
                end = j + 1;
            } else if !((j == start && ch == '+') || (is_separator(ch) && digit_follows(&chars, j)))
            {
                break;
            }
            j += 1;
        }
        let run: String = chars[start..end].iter().collect();
        if digits >= 6 {
            out.push_str(&mask_digits_keep_last(&run, 4));
        } else {
            out.push_str(&run);
        }
        i = end;
    }
    out
}

fn is_separator(ch: char) -> bool {
    matches!(ch, ' ' | '-' | '.' | '(' | ')')
}

/// A digit within the next two characters, the ones between being
/// separators (`) 1`, `- (`).
fn digit_follows(chars: &[char], i: usize) -> bool {
    for &ch in chars.iter().skip(i + 1).take(2) {
        if ch.is_ascii_digit() {
            return true;
        }
        if !is_separator(ch) {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_keep_layout_and_last_four() {
        assert_eq!(mask_phone("+8613800138000"), "+*********8000");
        assert_eq!(mask_phone("+86 138 0013 8000"), "+** *** **** 8000");
        assert_eq!(mask_phone("(555) 123-4567"), "(***) ***-4567");
        assert_eq!(mask_phone("123"), "***");
        assert_eq!(mask_phone(""), "");
        assert_eq!(format!("{}", Masked("+15551234567")), "+*******4567");
    }

    #[test]
    fn ids_and_emails() {
        assert_eq!(mask_id("110101199003074518"), "**************4518");
        assert_eq!(mask_id("abc"), "***");
        assert_eq!(mask_email("alice@example.com"), "a****@example.com");
        assert_eq!(mask_email("@x"), "@x");
        assert_eq!(
            mask_email("nope"),
            "nope".chars().map(|_| '*').collect::<String>()
        );
    }

    #[test]
    fn free_text() {
        assert_eq!(
            mask_text("my number is 138 0013 8000, id 110101199003074518."),
            "my number is *** **** 8000, id **************4518."
        );
        assert_eq!(
            mask_text("write to <bob.smith@example.org> please"),
            "write to <b********@example.org> please"
        );
        assert_eq!(
            mask_text("order 12345 costs 20.50"),
            "order 12345 costs 20.50"
        );
        assert_eq!(
            mask_text("call +1 (555) 123-4567 now"),
            "call +* (***) ***-4567 now"
        );
        assert_eq!(mask_text("电话13800138000谢谢"), "电话*******8000谢谢");
    }
}
