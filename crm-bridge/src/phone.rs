//! Phone numbers as people type them, normalised to E.164.
//!
//! CRMs store numbers however the agent typed them (`(555) 123-4567`,
//! `+86 138 0013 8000`, `013800138000`), and callers arrive from the trunk in
//! yet another form. Every lookup key and cache key is the E.164 form, so one
//! customer is one key. National numbers are read in a configured default
//! country. This is deliberately a small table, not libphonenumber: it knows
//! each country's calling code, trunk prefix, international prefix and the
//! length of national numbers, which is what normalisation needs.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a string is not a usable phone number.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PhoneError {
    #[error("empty phone number")]
    Empty,
    #[error("unexpected character {0:?} in phone number")]
    InvalidCharacter(char),
    #[error("phone number has {digits} digits, too few for {country}")]
    TooShort { digits: usize, country: String },
    #[error("phone number has {digits} digits, too many for {country}")]
    TooLong { digits: usize, country: String },
    #[error("unknown country {0:?} (use an ISO 3166 alpha-2 code such as CN, US, GB)")]
    UnknownCountry(String),
    #[error("country calling codes cannot start with 0")]
    BadCountryCode,
}

/// What normalisation needs to know about one country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country {
    /// ISO 3166-1 alpha-2.
    pub iso: &'static str,
    /// ITU calling code, without `+`.
    pub calling_code: &'static str,
    /// Dialled before national numbers inside the country (`0`, `1` in
    /// NANP, `8` in Russia), dropped in E.164.
    pub trunk_prefix: Option<&'static str>,
    /// Dialled before a calling code to call abroad (`00`, `011`).
    pub international_prefix: &'static str,
    /// Shortest and longest national significant number (without trunk
    /// prefix).
    pub national_len: (usize, usize),
}

const fn c(
    iso: &'static str,
    calling_code: &'static str,
    trunk_prefix: Option<&'static str>,
    international_prefix: &'static str,
    min: usize,
    max: usize,
) -> Country {
    Country {
        iso,
        calling_code,
        trunk_prefix,
        international_prefix,
        national_len: (min, max),
    }
}

/// The countries a default can be set to. Numbers written with `+` or an
/// international prefix may be in any country; unlisted calling codes are
/// accepted on length alone.
pub const COUNTRIES: &[Country] = &[
    c("CN", "86", Some("0"), "00", 9, 11),
    c("US", "1", Some("1"), "011", 10, 10),
    c("CA", "1", Some("1"), "011", 10, 10),
    c("GB", "44", Some("0"), "00", 9, 10),
    c("IE", "353", Some("0"), "00", 7, 9),
    c("DE", "49", Some("0"), "00", 6, 13),
    c("FR", "33", Some("0"), "00", 9, 9),
    c("NL", "31", Some("0"), "00", 9, 9),
    c("BE", "32", Some("0"), "00", 8, 9),
    c("ES", "34", None, "00", 9, 9),
    // Italy keeps the leading 0 of landlines in E.164: no trunk prefix.
    c("IT", "39", None, "00", 6, 11),
    c("CH", "41", Some("0"), "00", 9, 9),
    c("AT", "43", Some("0"), "00", 7, 13),
    c("SE", "46", Some("0"), "00", 7, 9),
    c("PL", "48", None, "00", 9, 9),
    c("RU", "7", Some("8"), "810", 10, 10),
    c("IN", "91", Some("0"), "00", 10, 10),
    c("JP", "81", Some("0"), "010", 9, 10),
    c("KR", "82", Some("0"), "001", 8, 10),
    c("HK", "852", None, "001", 8, 8),
    c("MO", "853", None, "00", 8, 8),
    c("TW", "886", Some("0"), "002", 8, 9),
    c("SG", "65", None, "000", 8, 8),
    c("MY", "60", Some("0"), "00", 8, 10),
    c("TH", "66", Some("0"), "001", 8, 9),
    c("VN", "84", Some("0"), "00", 9, 10),
    c("PH", "63", Some("0"), "00", 8, 10),
    c("ID", "62", Some("0"), "001", 8, 12),
    c("AU", "61", Some("0"), "0011", 9, 9),
    c("NZ", "64", Some("0"), "00", 8, 10),
    c("BR", "55", Some("0"), "00", 10, 11),
    c("MX", "52", None, "00", 10, 10),
    c("AE", "971", Some("0"), "00", 8, 9),
    c("ZA", "27", Some("0"), "00", 9, 9),
];

impl Country {
    /// Look a country up by ISO code (case-insensitive).
    pub fn by_iso(iso: &str) -> Result<&'static Country, PhoneError> {
        COUNTRIES
            .iter()
            .find(|c| c.iso.eq_ignore_ascii_case(iso.trim()))
            .ok_or_else(|| PhoneError::UnknownCountry(iso.to_string()))
    }

    fn fits(&self, national_digits: usize) -> bool {
        (self.national_len.0..=self.national_len.1).contains(&national_digits)
    }
}

/// A phone number in E.164: `+` and 8 to 15 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

impl E164 {
    /// Normalise `input` reading national numbers in `default_country`.
    pub fn parse(input: &str, default_country: &Country) -> Result<E164, PhoneError> {
        normalise(input, default_country)
    }

    /// `+8613800138000`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without `+`: `8613800138000`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// The national significant number if the number belongs to `country`
    /// (`13800138000` for CN), else `None`.
    pub fn national(&self, country: &Country) -> Option<&str> {
        self.digits().strip_prefix(country.calling_code)
    }

    /// Whether a number as some system stored it (any format, read in this
    /// number's own country when national) is this number.
    pub fn matches(&self, stored: &str) -> bool {
        let country = self.country().unwrap_or(&COUNTRIES[0]);
        E164::parse(stored, country).is_ok_and(|e| &e == self)
    }

    /// The country among [`COUNTRIES`] whose calling code and length match.
    /// For `+1` this is the US (NANP numbers do not say which country).
    pub fn country(&self) -> Option<&'static Country> {
        COUNTRIES.iter().find(|c| {
            self.digits()
                .strip_prefix(c.calling_code)
                .is_some_and(|n| c.fits(n.len()))
        })
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for E164 {
    type Error = PhoneError;
    /// Accepts only text already in E.164 (for values read back from
    /// storage).
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let digits = s.strip_prefix('+').ok_or(PhoneError::InvalidCharacter(
            s.chars().next().unwrap_or(' '),
        ))?;
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(PhoneError::InvalidCharacter(bad));
        }
        check_international(digits)?;
        Ok(E164(s))
    }
}

impl From<E164> for String {
    fn from(e: E164) -> String {
        e.0
    }
}

/// What was typed before the digits.
enum Lead {
    Plus,
    None,
}

fn normalise(input: &str, country: &Country) -> Result<E164, PhoneError> {
    let text = strip_uri(input.trim());
    let text = strip_extension(text);
    // "+44 (0)20 7946 0018": the bracketed trunk prefix is a hint for
    // national dialling and not part of the number.
    let text = text.replace("(0)", "");

    let mut lead = Lead::None;
    let mut digits = String::with_capacity(text.len());
    for (i, ch) in text.chars().enumerate() {
        let ch = fold_fullwidth(ch);
        match ch {
            '0'..='9' => digits.push(ch),
            '+' if i == 0 => lead = Lead::Plus,
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\t' => {}
            other => return Err(PhoneError::InvalidCharacter(other)),
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }

    if let Lead::Plus = lead {
        return international(&digits);
    }
    if let Some(rest) = digits.strip_prefix(country.international_prefix) {
        if !rest.is_empty() {
            return international(rest);
        }
    }
    // "00" is the international prefix in most of the world; people moving
    // between countries type it even where the local one differs.
    if country.international_prefix != "00" {
        if let Some(rest) = digits.strip_prefix("00") {
            if rest.len() >= 8 {
                return international(rest);
            }
        }
    }
    if let Some(trunk) = country.trunk_prefix {
        if let Some(rest) = digits.strip_prefix(trunk) {
            if country.fits(rest.len()) {
                return Ok(E164(format!("+{}{}", country.calling_code, rest)));
            }
        }
    }
    if country.fits(digits.len()) {
        return Ok(E164(format!("+{}{}", country.calling_code, digits)));
    }
    // The country code typed without `+` ("8613800138000").
    if let Some(rest) = digits.strip_prefix(country.calling_code) {
        if country.fits(rest.len()) {
            return Ok(E164(format!("+{digits}")));
        }
    }
    if digits.len() < country.national_len.0 {
        Err(PhoneError::TooShort {
            digits: digits.len(),
            country: country.iso.to_string(),
        })
    } else {
        Err(PhoneError::TooLong {
            digits: digits.len(),
            country: country.iso.to_string(),
        })
    }
}

/// A number written with its calling code. Where the code is one we know
/// with a trunk prefix and the national part still carries it
/// (`+44 020…`), the prefix is dropped, as any phone would.
fn international(digits: &str) -> Result<E164, PhoneError> {
    for country in COUNTRIES {
        let Some(national) = digits.strip_prefix(country.calling_code) else {
            continue;
        };
        if let Some(trunk) = country.trunk_prefix {
            if let Some(rest) = national.strip_prefix(trunk) {
                if !country.fits(national.len()) && country.fits(rest.len()) {
                    return Ok(E164(format!("+{}{}", country.calling_code, rest)));
                }
            }
        }
    }
    check_international(digits)?;
    Ok(E164(format!("+{digits}")))
}

fn check_international(digits: &str) -> Result<(), PhoneError> {
    if digits.starts_with('0') {
        return Err(PhoneError::BadCountryCode);
    }
    if let Some(country) = COUNTRIES
        .iter()
        .find(|c| digits.starts_with(c.calling_code))
    {
        let national = digits.len() - country.calling_code.len();
        if national < country.national_len.0 {
            return Err(PhoneError::TooShort {
                digits: digits.len(),
                country: country.iso.to_string(),
            });
        }
        if national > country.national_len.1 {
            return Err(PhoneError::TooLong {
                digits: digits.len(),
                country: country.iso.to_string(),
            });
        }
        return Ok(());
    }
    match digits.len() {
        0..=7 => Err(PhoneError::TooShort {
            digits: digits.len(),
            country: "E.164".into(),
        }),
        8..=15 => Ok(()),
        n => Err(PhoneError::TooLong {
            digits: n,
            country: "E.164".into(),
        }),
    }
}

/// `sip:+8613800138000@pbx;user=phone` and `tel:+1-555-123-4567` → the
/// number part.
fn strip_uri(s: &str) -> &str {
    let lower = s.get(..5).map(str::to_ascii_lowercase).unwrap_or_default();
    let rest = if lower.starts_with("sips:") {
        &s[5..]
    } else if lower.starts_with("sip:") || lower.starts_with("tel:") {
        &s[4..]
    } else {
        return s;
    };
    let rest = rest.split('@').next().unwrap_or(rest);
    rest.split(';').next().unwrap_or(rest)
}

/// Drops an extension (`x123`, `ext. 123`, `#123`): the customer is found
/// by the main number.
fn strip_extension(s: &str) -> &str {
    let lower = s.to_ascii_lowercase();
    for marker in ["ext.", "ext", "x", "#", ",", ";"] {
        if let Some(pos) = lower.find(marker) {
            let tail = &lower[pos + marker.len()..];
            if tail.trim().chars().all(|c| c.is_ascii_digit()) && !tail.trim().is_empty() {
                return s[..pos].trim_end();
            }
        }
    }
    s
}

/// Full-width digits and plus (`＋８６ １３８…`) as typed with a Chinese or
/// Japanese input method.
fn fold_fullwidth(ch: char) -> char {
    match ch {
        '\u{ff10}'..='\u{ff19}' => {
            char::from_u32(u32::from(ch) - 0xff10 + u32::from('0')).unwrap_or(ch)
        }
        '\u{ff0b}' => '+',
        '\u{3000}' => ' ',
        '\u{ff08}' => '(',
        '\u{ff09}' => ')',
        '\u{ff0d}' => '-',
        _ => ch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(input: &str, iso: &str) -> Result<String, PhoneError> {
        let country = Country::by_iso(iso).expect("country in table");
        E164::parse(input, country).map(String::from)
    }

    #[test]
    fn china() {
        let table = [
            ("+86 138 0013 8000", "+8613800138000"),
            ("013800138000", "+8613800138000"),
            ("13800138000", "+8613800138000"),
            ("138-0013-8000", "+8613800138000"),
            ("0086 138 0013 8000", "+8613800138000"),
            ("8613800138000", "+8613800138000"),
            ("+86 (0)10 6552 9988", "+861065529988"),
            ("010-6552-9988", "+861065529988"),
            ("(010) 65529988", "+861065529988"),
            ("0755 8888 8888", "+8675588888888"),
            ("0591-1234567", "+865911234567"),
            ("＋８６ １３８ ００１３ ８０００", "+8613800138000"),
            ("tel:+86-138-0013-8000", "+8613800138000"),
            ("sip:013800138000@pbx.local;user=phone", "+8613800138000"),
        ];
        for (input, want) in table {
            assert_eq!(norm(input, "CN").as_deref(), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn united_states() {
        let table = [
            ("(555) 123-4567", "+15551234567"),
            ("555.123.4567", "+15551234567"),
            ("555-123-4567", "+15551234567"),
            ("1-555-123-4567", "+15551234567"),
            ("1 (555) 123-4567", "+15551234567"),
            ("+1 555 123 4567", "+15551234567"),
            ("011 44 20 7946 0018", "+442079460018"),
            ("011 86 138 0013 8000", "+8613800138000"),
            ("0044 20 7946 0018", "+442079460018"),
            ("555-123-4567 x89", "+15551234567"),
            ("(555) 123-4567 ext. 12", "+15551234567"),
        ];
        for (input, want) in table {
            assert_eq!(norm(input, "US").as_deref(), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn united_kingdom() {
        let table = [
            ("07700 900123", "+447700900123"),
            ("07700900123", "+447700900123"),
            ("020 7946 0018", "+442079460018"),
            ("(020) 7946 0018", "+442079460018"),
            ("+44 (0)20 7946 0018", "+442079460018"),
            ("+44 020 7946 0018", "+442079460018"),
            ("+44 20 7946 0018", "+442079460018"),
            ("0044 7700 900123", "+447700900123"),
            ("0161 496 0000", "+441614960000"),
            ("+1 (555) 123-4567", "+15551234567"),
        ];
        for (input, want) in table {
            assert_eq!(norm(input, "GB").as_deref(), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn other_defaults() {
        assert_eq!(norm("030 123456", "DE").as_deref(), Ok("+4930123456"));
        assert_eq!(norm("06 12 34 56 78", "FR").as_deref(), Ok("+33612345678"));
        assert_eq!(norm("02 1234 5678", "IT").as_deref(), Ok("+390212345678"));
        assert_eq!(norm("9123 4567", "HK").as_deref(), Ok("+85291234567"));
        assert_eq!(norm("8 912 345-67-89", "RU").as_deref(), Ok("+79123456789"));
        assert_eq!(norm("+61 2 9876 5432", "CN").as_deref(), Ok("+61298765432"));
    }

    #[test]
    fn rejects() {
        assert_eq!(norm("", "CN"), Err(PhoneError::Empty));
        assert_eq!(norm("  -- ", "CN"), Err(PhoneError::Empty));
        assert_eq!(
            norm("call me", "US"),
            Err(PhoneError::InvalidCharacter('c'))
        );
        assert_eq!(
            norm("555-CALL-NOW", "US"),
            Err(PhoneError::InvalidCharacter('C'))
        );
        assert!(matches!(
            norm("123-4567", "US"),
            Err(PhoneError::TooShort { .. })
        ));
        assert!(matches!(
            norm("12345", "CN"),
            Err(PhoneError::TooShort { .. })
        ));
        assert!(matches!(
            norm("1380013800012345", "CN"),
            Err(PhoneError::TooLong { .. })
        ));
        assert!(matches!(
            norm("+86 138 0013 8000 1234", "CN"),
            Err(PhoneError::TooLong { .. })
        ));
        assert_eq!(
            norm("+0 123 456 789", "CN"),
            Err(PhoneError::BadCountryCode)
        );
        assert_eq!(norm("5+55", "US"), Err(PhoneError::InvalidCharacter('+')));
        assert!(matches!(
            Country::by_iso("XX"),
            Err(PhoneError::UnknownCountry(_))
        ));
    }

    #[test]
    fn accessors_and_serde() {
        let cn = Country::by_iso("cn").expect("CN");
        let e = E164::parse("13800138000", cn).expect("valid");
        assert_eq!(e.digits(), "8613800138000");
        assert_eq!(e.national(cn), Some("13800138000"));
        assert_eq!(e.country().map(|c| c.iso), Some("CN"));
        let json = serde_json::to_string(&e).expect("serialise");
        assert_eq!(json, "\"+8613800138000\"");
        let back: E164 = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, e);
        assert!(serde_json::from_str::<E164>("\"13800138000\"").is_err());
    }
}
