//! Calling hours in the callee's local time: which days, from when to when,
//! and the next moment a window opens. Pure functions of a timestamp and a
//! zone (jiff handles daylight saving: a window opening in a skipped hour
//! opens at the first instant after it).

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// `hours: { days: mon-fri, from: "09:00", to: "20:00" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours {
    /// Monday first.
    days: [bool; 7],
    from: Time,
    to: Time,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Hours {
    /// `days`: `mon-fri`, `mon,wed,sat`, `sat-sun`, `daily`; times `HH:MM`.
    /// Errors are `(key, problem)`.
    pub fn parse(days: &str, from: &str, to: &str) -> Result<Hours, (&'static str, String)> {
        let mut set = [false; 7];
        let day = |name: &str| {
            DAY_NAMES
                .iter()
                .position(|d| name.trim().to_ascii_lowercase().starts_with(d))
                .filter(|_| name.trim().len() >= 3)
                .ok_or_else(|| ("days", format!("{name:?} is not a day (mon … sun)")))
        };
        let text = days.trim().to_ascii_lowercase();
        if text == "daily" || text == "every day" {
            set = [true; 7];
        } else {
            for part in text.split(',') {
                match part.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (day(a)?, day(b)?);
                        // `fri-mon` wraps over the weekend.
                        let mut i = a;
                        loop {
                            set[i] = true;
                            if i == b {
                                break;
                            }
                            i = (i + 1) % 7;
                        }
                    }
                    None => set[day(part)?] = true,
                }
            }
        }
        let time = |key: &'static str, s: &str| {
            let (h, m) = s
                .trim()
                .split_once(':')
                .ok_or_else(|| (key, format!("{s:?}: use HH:MM")))?;
            let (h, m): (i8, i8) = (
                h.parse().map_err(|_| (key, format!("{s:?}: use HH:MM")))?,
                m.parse().map_err(|_| (key, format!("{s:?}: use HH:MM")))?,
            );
            Time::new(h, m, 0, 0).map_err(|_| (key, format!("{s:?} is not a time of day")))
        };
        let (from, to) = (time("from", from)?, time("to", to)?);
        if from >= to {
            return Err((
                "to",
                "must be later than `from` (a window that crosses midnight is two days' windows)"
                    .into(),
            ));
        }
        Ok(Hours {
            days: set,
            from,
            to,
        })
    }

    /// `now` if the window is open at `now` in `zone`, else the next opening
    /// (within the coming week; `None` only if no day is allowed).
    pub fn next_open(&self, now: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let local = now.to_zoned(zone.clone());
        let mut date: Date = local.date();
        for _ in 0..8 {
            let weekday = date.weekday().to_monday_zero_offset() as usize;
            if self.days[weekday] {
                let open = date.to_datetime(self.from).to_zoned(zone.clone()).ok()?;
                let close = date.to_datetime(self.to).to_zoned(zone.clone()).ok()?;
                if now < close.timestamp() {
                    return Some(now.max(open.timestamp()));
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// Whether the window is open at `now` in `zone`.
    pub fn is_open(&self, now: Timestamp, zone: &TimeZone) -> bool {
        self.next_open(now, zone) == Some(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn weekday_window_in_the_callee_zone() {
        let h = Hours::parse("mon-fri", "09:00", "20:00").unwrap();
        let ny = TimeZone::get("America/New_York").unwrap();
        // Tuesday 2026-12-01 12:00 UTC is 07:00 in New York: opens at 14:00 UTC.
        let now = at("2026-12-01T12:00:00Z");
        assert_eq!(h.next_open(now, &ny), Some(at("2026-12-01T14:00:00Z")));
        assert!(h.is_open(at("2026-12-01T15:00:00Z"), &ny));
        // Friday 20:30 local → Monday 09:00 local.
        assert_eq!(
            h.next_open(at("2026-12-05T01:30:00Z"), &ny),
            Some(at("2026-12-07T14:00:00Z"))
        );
    }

    #[test]
    fn daylight_saving_moves_the_opening_in_utc() {
        let h = Hours::parse("daily", "09:00", "17:00").unwrap();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        // Before and after 2026-03-29 (CET → CEST).
        assert_eq!(
            h.next_open(at("2026-03-28T05:00:00Z"), &berlin),
            Some(at("2026-03-28T08:00:00Z"))
        );
        assert_eq!(
            h.next_open(at("2026-03-29T05:00:00Z"), &berlin),
            Some(at("2026-03-29T07:00:00Z"))
        );
    }

    #[test]
    fn bad_days_and_times_name_their_key() {
        assert_eq!(
            Hours::parse("mon-xyz", "09:00", "10:00").unwrap_err().0,
            "days"
        );
        assert_eq!(Hours::parse("mon", "9", "10:00").unwrap_err().0, "from");
        assert_eq!(Hours::parse("mon", "10:00", "09:00").unwrap_err().0, "to");
        let wrap = Hours::parse("fri-mon", "09:00", "10:00").unwrap();
        assert_eq!(wrap.days, [true, false, false, false, true, true, true]);
    }
}
