//! UTC timestamps as the CRMs want them (RFC 3339, SQL datetimes, dates),
//! from the unix milliseconds the call record carries, formatted by jiff.
//!
//! RFC 3339 has four-digit years only, so an instant outside years
//! 0000–9999 has no text form: [`in_range`] says which instants do, and the
//! formatters clamp to that range rather than write a year a CRM rejects.

use jiff::{civil, SignedDuration, Timestamp};

/// Milliseconds since the unix epoch, now.
pub fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// 0000-01-01T00:00:00Z, the first instant with a four-digit year.
const FIRST_MS: i64 = -62_167_219_200_000;
/// 9999-12-31T23:59:59.999Z, the last.
const LAST_MS: i64 = 253_402_300_799_999;

/// Whether `ms` falls in years 0000–9999 (has an RFC 3339 form).
pub fn in_range(ms: i64) -> bool {
    (FIRST_MS..=LAST_MS).contains(&ms)
}

fn format(ms: i64, pattern: &str) -> String {
    // A civil (UTC wall-clock) datetime, not a `Timestamp`: jiff's
    // timestamps stop a day short of 9999-12-31 so that every zone's
    // wall clock stays in range, and these strings are UTC only.
    const EPOCH: civil::DateTime = civil::date(1970, 1, 1).at(0, 0, 0, 0);
    let clamped = SignedDuration::from_millis(ms.clamp(FIRST_MS, LAST_MS));
    // Inside 0000–9999 the addition cannot overflow; the fallback is for
    // the type system.
    let at = EPOCH.checked_add(clamped).unwrap_or(EPOCH);
    at.strftime(pattern).to_string()
}

/// `2026-11-21T09:30:00.250Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    format(ms, "%Y-%m-%dT%H:%M:%S%.3fZ")
}

/// `2026-11-21 09:30:00`: the form SQL-backed systems (Tryton, Odoo) store.
pub fn sql_datetime(ms: i64) -> String {
    format(ms, "%Y-%m-%d %H:%M:%S")
}

/// `2026-11-21`.
pub fn date(ms: i64) -> String {
    format(ms, "%Y-%m-%d")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_253_400_250), "2026-11-21T09:30:00.250Z");
        assert_eq!(sql_datetime(1_795_253_400_250), "2026-11-21 09:30:00");
        assert_eq!(date(1_795_253_400_250), "2026-11-21");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    /// The hand-written version printed `33658-09-27T01:46:40.000Z` for a
    /// value in microseconds and `-001-…` before year 0: neither parses as
    /// RFC 3339.
    #[test]
    fn out_of_range_instants_clamp_to_four_digit_years() {
        assert_eq!(
            rfc3339_ms(1_000_000_000_000_000),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(rfc3339_ms(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_ms(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(date(LAST_MS), "9999-12-31");
        assert_eq!(sql_datetime(FIRST_MS), "0000-01-01 00:00:00");
        assert!(in_range(0) && in_range(LAST_MS) && in_range(FIRST_MS));
        assert!(!in_range(LAST_MS + 1) && !in_range(FIRST_MS - 1));
    }

    #[test]
    fn now_is_after_this_code_was_written() {
        assert!(now_ms() > 1_795_000_000_000);
    }
}
