//! Dutch civil time: the zone every human-readable date is printed in, and today's date in the
//! Netherlands for the one rule that needs the clock: whether a directive's `provision.period` has
//! ended, when the record has no date filled in to judge it by (`DirectiveNotInForce`). Everything else
//! in the gateway takes its dates from the record.
//!
//! The rules are jiff's bundled time-zone database (`tzdb-bundle-always`), so they do not depend on the
//! host's /usr/share/zoneinfo (a slim container has none). This is the one place that names the zone.

use std::time::{SystemTime, UNIX_EPOCH};

use super::FhirDate;

/// Europe/Amsterdam; `None` only if the bundled database lacked it, which its tests rule out.
pub fn dutch_zone() -> Option<&'static jiff::tz::TimeZone> {
    static ZONE: std::sync::OnceLock<Option<jiff::tz::TimeZone>> = std::sync::OnceLock::new();
    ZONE.get_or_init(|| jiff::tz::TimeZone::get("Europe/Amsterdam").ok()).as_ref()
}

/// The Dutch calendar date now.
pub fn dutch_today() -> FhirDate {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    dutch_date_at(secs)
}

/// The Dutch calendar date at a Unix time.
pub fn dutch_date_at(unix_secs: i64) -> FhirDate {
    let zone = dutch_zone().unwrap_or_else(|| panic!("jiff's bundled time-zone database has Europe/Amsterdam"));
    let zoned = jiff::Timestamp::from_second(unix_secs)
        .unwrap_or_else(|e| panic!("a Unix time from the clock: {e}"))
        .to_zoned(zone.clone());
    FhirDate::parse(&format!("{:04}-{:02}-{:02}", zoned.year(), zoned.month(), zoned.day()))
        .unwrap_or_else(|e| panic!("a calendar date from the clock: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::date::days_from_civil;

    fn at(y: i64, m: i64, d: i64, h: i64, min: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400 + h * 3_600 + min * 60
    }

    #[test]
    fn dutch_dates_change_at_local_midnight_with_summer_time() {
        let date = |secs| dutch_date_at(secs).to_string();
        // Winter (CET): 23:30 UTC is already the next day.
        assert_eq!(date(at(2025, 1, 10, 22, 59)), "2025-01-10");
        assert_eq!(date(at(2025, 1, 10, 23, 0)), "2025-01-11");
        // Summer (CEST): 22:00 UTC is midnight.
        assert_eq!(date(at(2025, 7, 10, 21, 59)), "2025-07-10");
        assert_eq!(date(at(2025, 7, 10, 22, 0)), "2025-07-11");
        // 2025: summer time from 30 March 01:00 UTC to 26 October 01:00 UTC.
        assert_eq!(date(at(2025, 3, 29, 23, 30)), "2025-03-30");
        assert_eq!(date(at(2025, 3, 30, 22, 30)), "2025-03-31");
        assert_eq!(date(at(2025, 10, 25, 22, 30)), "2025-10-26");
        assert_eq!(date(at(2025, 10, 26, 22, 30)), "2025-10-26");
    }
}
