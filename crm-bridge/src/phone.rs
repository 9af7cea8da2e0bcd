//! Phone numbers as people type them, normalised to E.164.
//!
//! CRMs store numbers however the agent typed them (`(555) 123-4567`,
//! `+86 138 0013 8000`, `013800138000`), and callers arrive from the trunk in
//! yet another form. Every lookup key and cache key is the E.164 form, so one
//! customer is one key. National numbers are read in a configured default
//! country.
//!
//! What a country's numbers look like (calling code, trunk and international
//! prefixes, lengths) comes from libphonenumber's metadata through the
//! `phonenumber` crate, for every country it knows. This module only cleans
//! the text first (URIs, extensions, full-width digits, `(0)`) so that the
//! library sees nothing but digits and an optional `+`.
//!
//! **Possible, not valid.** A number is accepted when its calling code exists
//! and its national length is one the country uses ("possible" in
//! libphonenumber's terms); it need not be in an allocated range ("valid").
//! Allocations change faster than any metadata shipped in a binary, and a
//! caller from a new range must still be found in the CRM; fictitious
//! numbers (`+1 555 …`, Ofcom's drama ranges) used in test data stay usable.
//! [`E164::is_valid`] tells the two apart for whoever needs to.

use std::fmt;
use std::sync::OnceLock;

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use phonenumber::{ParseError, PhoneNumber};
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
    #[error("phone number has {digits} digits, a length {country} does not use")]
    ImpossibleLength { digits: usize, country: String },
    #[error("unknown country {0:?} (use an ISO 3166 alpha-2 code such as CN, US, GB)")]
    UnknownCountry(String),
    #[error("country calling codes cannot start with 0")]
    BadCountryCode,
    #[error("no country has the calling code of {0:?}")]
    UnknownCallingCode(String),
}

/// A country numbers can be read in: one of libphonenumber's regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    id: Id,
    calling_code: String,
}

/// Every region in the metadata, built once.
fn countries() -> &'static [Country] {
    static ALL: OnceLock<Vec<Country>> = OnceLock::new();
    ALL.get_or_init(|| {
        DATABASE
            .iter()
            .filter_map(|m| {
                // "001" holds the non-geographic codes (+800, +882…): numbers
                // can be in them, but nobody's default country is one.
                let id: Id = m.id().parse().ok()?;
                Some(Country {
                    id,
                    calling_code: m.country_code().to_string(),
                })
            })
            .collect()
    })
}

impl Country {
    /// Look a country up by ISO code (case-insensitive).
    pub fn by_iso(iso: &str) -> Result<&'static Country, PhoneError> {
        let wanted = iso.trim();
        countries()
            .iter()
            .find(|c| c.iso().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| PhoneError::UnknownCountry(iso.to_string()))
    }

    /// ISO 3166-1 alpha-2 (`CN`).
    pub fn iso(&self) -> &str {
        self.id.as_ref()
    }

    /// ITU calling code, without `+` (`86`).
    pub fn calling_code(&self) -> &str {
        &self.calling_code
    }

    fn by_id(id: Id) -> Option<&'static Country> {
        countries().iter().find(|c| c.id == id)
    }

    /// The main country of a calling code (the US for `+1`).
    fn main_for_code(code: u16) -> Option<&'static Country> {
        let metas = DATABASE.by_code(&code)?;
        let main = metas
            .iter()
            .find(|m| m.is_main_country_for_code())
            .or(metas.first())?;
        let id: Id = main.id().parse().ok()?;
        Country::by_id(id)
    }
}

/// A phone number in E.164: `+`, a calling code that exists, and a national
/// number of a length its country uses.
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
        self.digits().strip_prefix(country.calling_code())
    }

    /// Whether a number as some system stored it (any format, read in this
    /// number's own country when national) is this number.
    pub fn matches(&self, stored: &str) -> bool {
        let Some(country) = self.country() else {
            return false;
        };
        E164::parse(stored, country).is_ok_and(|e| &e == self)
    }

    /// The country the number belongs to, by its calling code and leading
    /// digits (`+1 416…` is Canada). A number in no allocated range goes to
    /// the main country of its calling code (`+1 555…` is the US).
    pub fn country(&self) -> Option<&'static Country> {
        let number = self.parsed()?;
        number
            .country()
            .id()
            .and_then(Country::by_id)
            .or_else(|| Country::main_for_code(number.code().value()))
    }

    /// Whether the number is in a range its country has allocated
    /// (libphonenumber's "valid"); `+1 555 123 4567` is possible, not valid.
    pub fn is_valid(&self) -> bool {
        self.parsed().is_some_and(|n| n.is_valid())
    }

    fn parsed(&self) -> Option<PhoneNumber> {
        phonenumber::parse(None, &self.0).ok()
    }
}

impl crate::resilience::cache::Weight for E164 {
    fn weight(&self) -> usize {
        self.0.len()
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
        let e = international_once(digits)?;
        if e.0 != s || digits.len() > MAX_E164_DIGITS {
            // Canonical E.164 has no trunk prefix after the calling code.
            return Err(PhoneError::InvalidCharacter('0'));
        }
        Ok(e)
    }
}

impl From<E164> for String {
    fn from(e: E164) -> String {
        e.0
    }
}

fn normalise(input: &str, country: &Country) -> Result<E164, PhoneError> {
    let text = strip_uri(input.trim());
    let text = strip_extension(text);
    // "+44 (0)20 7946 0018": the bracketed trunk prefix is a hint for
    // national dialling and not part of the number.
    let text = text.replace("(0)", "");

    let mut plus = false;
    let mut digits = String::with_capacity(text.len());
    for (i, ch) in text.chars().enumerate() {
        let ch = fold_fullwidth(ch);
        match ch {
            '0'..='9' => digits.push(ch),
            '+' if i == 0 => plus = true,
            // Letters are refused rather than read as a keypad would
            // (libphonenumber turns `555-CALL-NOW` into digits): a caller id
            // with letters is not a number.
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\t' => {}
            other => return Err(PhoneError::InvalidCharacter(other)),
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }
    if plus {
        return international(&digits);
    }
    // The country's own international prefix ("011 44…" in the US) is
    // handled here: the crate would read the rest with the default
    // country's trunk prefix (a US "1" dropped from "011 86 138…").
    let idd = DATABASE
        .by_id(country.iso())
        .and_then(|m| m.international_prefix())
        .and_then(|re| re.find(&digits))
        .filter(|m| m.start() == 0)
        .map(|m| m.end());
    if let Some(rest) = idd.and_then(|end| digits.get(end..)) {
        if !rest.is_empty() {
            return international(rest);
        }
    }
    // What the crate read in the country, in the form the number has when
    // read back with its calling code: one number, one key.
    let national = checked(
        phonenumber::parse(Some(country.id), &digits),
        &digits,
        country,
    )
    .and_then(|e| international(e.digits()));
    // "00" is the international prefix in most of the world; people moving
    // between countries type it even where the local one differs ("0044…"
    // in the US).
    match (&national, digits.strip_prefix("00")) {
        (Err(_), Some(rest)) if rest.len() >= 7 => international(rest).or(national),
        _ => national,
    }
}

/// E.164 allows at most 15 digits after the `+`.
const MAX_E164_DIGITS: usize = 15;

/// A number written with its calling code (`digits` without the `+`), in
/// the form that reads back as itself. libphonenumber drops one trunk zero
/// after the calling code per reading ("+62 00 34…" → "+62 0 34…"), so the
/// reading is repeated until it holds, and a number longer than E.164
/// allows is refused.
fn international(digits: &str) -> Result<E164, PhoneError> {
    let mut e = international_once(digits)?;
    for _ in 0..3 {
        let again = international_once(e.digits())?;
        if again == e {
            break;
        }
        e = again;
    }
    let len = e.digits().len();
    if len > MAX_E164_DIGITS {
        return Err(PhoneError::TooLong {
            digits: len,
            country: "E.164".to_string(),
        });
    }
    Ok(e)
}

fn international_once(digits: &str) -> Result<E164, PhoneError> {
    if digits.starts_with('0') {
        return Err(PhoneError::BadCountryCode);
    }
    let text = format!("+{digits}");
    let parsed = phonenumber::parse(None, &text);
    let code_len = (1..=3)
        .find(|n| {
            digits
                .get(..*n)
                .and_then(|c| c.parse::<u16>().ok())
                .is_some_and(|c| DATABASE.by_code(&c).is_some())
        })
        .ok_or_else(|| PhoneError::UnknownCallingCode(digits.chars().take(3).collect()))?;
    let code = &digits[..code_len];
    let named = Country::main_for_code(code.parse().unwrap_or(0))
        .map(|c| c.iso().to_string())
        .unwrap_or_else(|| format!("+{code}"));
    checked_named(parsed, digits, &named)
}

fn checked(
    parsed: Result<PhoneNumber, ParseError>,
    digits: &str,
    country: &Country,
) -> Result<E164, PhoneError> {
    checked_named(parsed, digits, country.iso())
}

/// The E.164 form of a parsed number, if its length is possible.
fn checked_named(
    parsed: Result<PhoneNumber, ParseError>,
    digits: &str,
    country: &str,
) -> Result<E164, PhoneError> {
    let too_short = || PhoneError::TooShort {
        digits: digits.len(),
        country: country.to_string(),
    };
    let too_long = || PhoneError::TooLong {
        digits: digits.len(),
        country: country.to_string(),
    };
    let number = parsed.map_err(|e| match e {
        ParseError::TooLong => too_long(),
        ParseError::InvalidCountryCode => {
            PhoneError::UnknownCallingCode(digits.chars().take(3).collect())
        }
        _ => too_short(),
    })?;
    let code = number.code().value();
    let national = number.national().to_string();
    // The lengths every region of the calling code uses for full national
    // numbers; "local only" lengths (7 digits in the US) lack the area code
    // and cannot be written in E.164.
    let mut lengths: Vec<u16> = DATABASE
        .by_code(&code)
        .into_iter()
        .flatten()
        .flat_map(|m| {
            let d = m.descriptors();
            // The metadata keeps lengths per number type; the general
            // descriptor's list is often empty.
            [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
            .into_iter()
            .flatten()
            .flat_map(|t| t.possible_length().to_vec())
            .collect::<Vec<_>>()
        })
        .collect();
    lengths.sort_unstable();
    lengths.dedup();
    let len = u16::try_from(national.len()).unwrap_or(u16::MAX);
    match (lengths.first(), lengths.last()) {
        (Some(_), Some(_)) if lengths.contains(&len) => Ok(E164(format!("+{code}{national}"))),
        (Some(min), _) if len < *min => Err(too_short()),
        (_, Some(max)) if len > *max => Err(too_long()),
        (Some(_), Some(_)) => Err(PhoneError::ImpossibleLength {
            digits: digits.len(),
            country: country.to_string(),
        }),
        _ => Err(PhoneError::UnknownCallingCode(code.to_string())),
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
        assert_eq!(e.country().map(Country::iso), Some("CN"));
        let json = serde_json::to_string(&e).expect("serialise");
        assert_eq!(json, "\"+8613800138000\"");
        let back: E164 = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, e);
        assert!(serde_json::from_str::<E164>("\"13800138000\"").is_err());
    }

    // The old table knew 35 countries and took any other calling code on
    // length alone (8 to 15 digits), and could not be a default outside them.
    #[test]
    fn countries_the_table_did_not_list() {
        let table = [
            ("+353 85 123 4567", "CN", "+353851234567", "IE"),
            ("085 123 4567", "IE", "+353851234567", "IE"),
            ("+880 1712-345678", "CN", "+8801712345678", "BD"),
            ("01712-345678", "BD", "+8801712345678", "BD"),
            ("+20 10 1234 5678", "US", "+201012345678", "EG"),
            ("+420 601 123 456", "GB", "+420601123456", "CZ"),
            ("+1 416 555 0199", "CN", "+14165550199", "CA"),
        ];
        for (input, default, want, country) in table {
            let e = E164::parse(input, Country::by_iso(default).expect("country"))
                .unwrap_or_else(|err| panic!("{input:?}: {err}"));
            assert_eq!(e.as_str(), want, "input {input:?}");
            assert_eq!(e.country().map(Country::iso), Some(country), "{input:?}");
        }
    }

    #[test]
    fn numbers_the_table_accepted_wrongly() {
        // An unassigned calling code.
        assert!(matches!(
            norm("+999 1234 5678", "CN"),
            Err(PhoneError::UnknownCallingCode(_))
        ));
        // Bangladesh, Ukraine, Czechia: lengths their numbers never have,
        // which passed as "8 to 15 digits".
        for input in ["+880 17123", "+380 44 123", "+420 123 456 78"] {
            assert!(
                matches!(norm(input, "CN"), Err(PhoneError::TooShort { .. })),
                "{input:?}: {:?}",
                norm(input, "CN")
            );
        }
        // A calling code in storage that no country has.
        assert!(serde_json::from_str::<E164>("\"+99912345678\"").is_err());
    }

    #[test]
    fn possible_numbers_are_kept_valid_ones_are_told_apart() {
        let us = Country::by_iso("US").expect("US");
        let fictitious = E164::parse("(555) 123-4567", us).expect("possible");
        assert!(!fictitious.is_valid(), "555 is not an allocated area code");
        assert_eq!(fictitious.country().map(Country::iso), Some("US"));
        assert_eq!(fictitious.national(us), Some("5551234567"));
        let cn = Country::by_iso("CN").expect("CN");
        assert!(E164::parse("138 0013 8000", cn).expect("mobile").is_valid());
    }

    #[test]
    fn a_number_reads_back_as_itself_and_is_at_most_15_digits() {
        let cn = Country::by_iso("CN").expect("CN");
        // libphonenumber dropped one zero per reading: parse gave
        // +620342978709445635, which storage then refused.
        assert!(matches!(
            E164::parse("+62000342978709445635", cn),
            Err(PhoneError::TooLong { digits: 17, .. })
        ));
        let e = E164::parse("+62 0 21 5790 0000", cn).expect("Jakarta, trunk zero typed");
        assert_eq!(E164::try_from(e.to_string()).as_ref(), Ok(&e));
        assert!(E164::try_from("+1234567890123456".to_string()).is_err());
    }

    #[test]
    fn any_digits_give_an_answer_not_a_panic() {
        use rand::Rng;
        let mut rng = rand::rng();
        let cn = Country::by_iso("CN").expect("CN");
        for _ in 0..3000 {
            let len = rng.random_range(0..24);
            let digits: String = (0..len)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect();
            for text in [digits.clone(), format!("+{digits}"), format!("00{digits}")] {
                if let Ok(e) = E164::parse(&text, cn) {
                    // What parse gives, storage gives back.
                    assert_eq!(E164::try_from(e.to_string()).as_ref(), Ok(&e), "{text:?}");
                }
            }
        }
    }
}
