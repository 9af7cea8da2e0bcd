//! Calendar dates without a clock: the caller passes "today" in, and date
//! slots and entities ("tomorrow", "next Monday", "明天", "12月3日") are
//! resolved against it. One type for the dialog and the models, so a slot
//! and an entity agree on what a date is. The
//! calendar arithmetic is jiff's; this type only fixes the range scripts
//! accept (years 1–9999) and the one text form (`YYYY-MM-DD`).

use std::fmt;

use jiff::civil;
use jiff::Span;

/// A day in the proleptic Gregorian calendar, year 1 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(civil::Date);

/// 1970-01-01, the origin of [`Date::days`].
const EPOCH: civil::Date = civil::date(1970, 1, 1);

impl Date {
    /// A valid date, or `None` (month 13, 30 February, year outside 1..=9999).
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(1..=9999).contains(&year) {
            return None;
        }
        let d = civil::Date::new(
            i16::try_from(year).ok()?,
            i8::try_from(month).ok()?,
            i8::try_from(day).ok()?,
        )
        .ok()?;
        Some(Date(d))
    }

    /// Exactly `YYYY-MM-DD` (surrounding white space ignored). jiff's own
    /// parser also takes `20260228` and `2026-02-28T10:00`, which a date
    /// slot or `--today` should not silently read as a date.
    pub fn parse(s: &str) -> Option<Date> {
        let s = s.trim();
        let b = s.as_bytes();
        let shaped = b.len() == 10
            && b.iter().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    *c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            });
        if !shaped {
            return None;
        }
        Date::new(
            s[0..4].parse().ok()?,
            s[5..7].parse().ok()?,
            s[8..10].parse().ok()?,
        )
    }

    pub fn year(self) -> i32 {
        i32::from(self.0.year())
    }

    pub fn month(self) -> u32 {
        u32::from(self.0.month().unsigned_abs())
    }

    pub fn day(self) -> u32 {
        u32::from(self.0.day().unsigned_abs())
    }

    /// Days since 1970-01-01 (negative before it).
    pub fn days(self) -> i64 {
        self.0.duration_since(EPOCH).as_hours() / 24
    }

    /// The date `z` days after 1970-01-01, if it is in range.
    pub fn from_days(z: i64) -> Option<Date> {
        Date::from_jiff(EPOCH.checked_add(Span::new().try_days(z).ok()?).ok()?)
    }

    /// `n` days later (earlier when negative), if still in range.
    pub fn add_days(self, n: i64) -> Option<Date> {
        Date::from_jiff(self.0.checked_add(Span::new().try_days(n).ok()?).ok()?)
    }

    /// 0 = Monday … 6 = Sunday.
    pub fn weekday(self) -> u32 {
        u32::from(self.0.weekday().to_monday_zero_offset().unsigned_abs())
    }

    /// The same day as a jiff date (for callers that compute in a zone).
    pub fn to_jiff(self) -> civil::Date {
        self.0
    }

    /// `d` if its year is in 1..=9999.
    pub fn from_jiff(d: civil::Date) -> Option<Date> {
        (d.year() >= 1).then_some(Date(d))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.year(),
            self.month(),
            self.day()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_days() {
        let d = Date::new(2026, 11, 21).unwrap();
        assert_eq!(Date::from_days(d.days()), Some(d));
        assert_eq!(Date::new(1970, 1, 1).unwrap().days(), 0);
        assert_eq!(Date::new(1969, 12, 31).unwrap().days(), -1);
        assert_eq!(d.add_days(11).unwrap().to_string(), "2026-12-02");
        assert_eq!(
            Date::new(2024, 2, 28)
                .unwrap()
                .add_days(1)
                .unwrap()
                .to_string(),
            "2024-02-29"
        );
        assert_eq!(Date::new(2026, 11, 21).unwrap().weekday(), 5); // a Saturday
        assert_eq!(Date::new(2026, 11, 23).unwrap().weekday(), 0); // a Monday
    }

    #[test]
    fn rejects_bad_dates() {
        assert!(Date::parse("2026-02-30").is_none());
        assert!(Date::parse("2026-13-01").is_none());
        assert!(Date::parse("tomorrow").is_none());
        assert_eq!(Date::parse("2026-02-28").map(Date::day), Some(28));
        assert_eq!(Date::parse(" 2026-02-28\n").map(Date::day), Some(28));
    }

    /// What the hand-written parser let through: signs and one-digit
    /// fields (`str::parse` takes `+5`), and what jiff's ISO parser would.
    #[test]
    fn only_the_iso_form_is_a_date() {
        for s in [
            "2026-2-3",
            "2026-+2-+3",
            "+2026-02-28",
            "20260228",
            "2026-02-28T10:00",
            "0000-01-01",
        ] {
            assert_eq!(Date::parse(s), None, "{s}");
        }
    }

    /// The old `days`/`from_days` pair was unbounded; these ends are now
    /// refused instead of printing a five-digit or year-0 date.
    #[test]
    fn the_ends_of_the_calendar() {
        let last = Date::new(9999, 12, 31).unwrap();
        assert_eq!(last.add_days(1), None);
        assert_eq!(Date::new(1, 1, 1).unwrap().add_days(-1), None);
        assert_eq!(Date::from_days(i64::MAX), None);
        assert_eq!(last.add_days(i64::MIN), None);
        assert_eq!(Date::new(10_000, 1, 1), None);
        assert_eq!(Date::new(2026, 1, 300), None);
        assert_eq!(Date::new(2026, 300, 1), None);
        assert_eq!(Date::from_days(last.days()), Some(last));
    }
}
