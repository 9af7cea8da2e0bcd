//! The date a live call runs on: "today" for a script's date slots
//! ("tomorrow", weekdays, `valid: "value >= today"`), in the configured
//! `calls.time_zone` (an IANA name) or the machine's zone.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use voxbridge_dialog::date::Date;

/// The zone `name` names, or the machine's zone (`TZ`, then
/// `/etc/localtime`; UTC when neither says) for `None`.
pub fn zone(name: Option<&str>) -> Result<TimeZone, String> {
    match name {
        Some(name) => TimeZone::get(name).map_err(|e| {
            format!("`{name}` is not a known IANA time zone (e.g. Europe/Berlin, America/New_York): {e}")
        }),
        None => Ok(TimeZone::system()),
    }
}

/// The zone's name as logged: the IANA name when it has one.
pub fn zone_name(zone: &TimeZone) -> String {
    zone.iana_name().unwrap_or("the machine's zone").to_string()
}

/// The date in `zone` at `at`.
pub fn date_at(at: Timestamp, zone: &TimeZone) -> Option<Date> {
    let d = at.to_zoned(zone.clone()).date();
    Date::new(
        i32::from(d.year()),
        u32::try_from(d.month()).ok()?,
        u32::try_from(d.day()).ok()?,
    )
}

/// Today in `zone`, by the system clock.
pub fn today(zone: &TimeZone) -> Option<Date> {
    date_at(Timestamp::now(), zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_depends_on_the_zone() {
        let at: Timestamp = "2026-12-01T12:30:00Z".parse().unwrap();
        let utc = zone(Some("UTC")).unwrap();
        let kiritimati = zone(Some("Pacific/Kiritimati")).unwrap(); // UTC+14
        let honolulu = zone(Some("Pacific/Honolulu")).unwrap(); // UTC−10
        assert_eq!(date_at(at, &utc), Date::new(2026, 12, 1));
        assert_eq!(date_at(at, &kiritimati), Date::new(2026, 12, 2));
        let early: Timestamp = "2026-12-01T05:00:00Z".parse().unwrap();
        assert_eq!(date_at(early, &honolulu), Date::new(2026, 11, 30));
        assert_eq!(zone_name(&kiritimati), "Pacific/Kiritimati");
    }

    #[test]
    fn unknown_zones_are_refused_and_none_is_the_machines() {
        let err = zone(Some("Mars/Olympus_Mons")).unwrap_err();
        assert!(err.contains("Mars/Olympus_Mons"), "{err}");
        assert!(zone(Some("")).is_err());
        assert!(zone(None).is_ok());
        assert!(today(&zone(None).unwrap()).is_some());
    }
}
