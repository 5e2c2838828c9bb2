//! Today's date in the Netherlands, for the one rule that needs the clock: whether a directive's
//! `provision.period` has ended, when the record has no date filled in to judge it by
//! (`DirectiveNotInForce`). Everything else in the gateway takes its dates from the record.
//!
//! Dutch civil time is CET (UTC+1), and CEST (UTC+2) from the last Sunday of March 01:00 UTC to the
//! last Sunday of October 01:00 UTC (the EU rule since 1996); this is computed here rather than with a
//! time-zone database, since it is the only zone and the only rule the gateway needs.

use std::time::{SystemTime, UNIX_EPOCH};

use super::date::{civil_from_days, days_from_civil};
use super::FhirDate;

/// The Dutch calendar date now.
pub fn dutch_today() -> FhirDate {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    dutch_date_at(secs)
}

/// The Dutch calendar date at a Unix time.
pub fn dutch_date_at(unix_secs: i64) -> FhirDate {
    let (year, _, _) = civil_from_days(unix_secs.div_euclid(86_400));
    let summer = (last_sunday_0100_utc(year, 3)..last_sunday_0100_utc(year, 10)).contains(&unix_secs);
    let local = unix_secs + if summer { 7_200 } else { 3_600 };
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    FhirDate::parse(&format!("{y:04}-{m:02}-{d:02}")).unwrap_or_else(|e| panic!("a calendar date from the clock: {e}"))
}

/// The Unix time of 01:00 UTC on the last Sunday of a month with 31 days (March, October).
fn last_sunday_0100_utc(year: i64, month: i64) -> i64 {
    let day_31 = days_from_civil(year, month, 31);
    // 1970-01-01 was a Thursday: (days + 4) mod 7 is 0 on a Sunday.
    let sunday = day_31 - (day_31 + 4).rem_euclid(7);
    sunday * 86_400 + 3_600
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(last_sunday_0100_utc(2025, 3), at(2025, 3, 30, 1, 0));
        assert_eq!(last_sunday_0100_utc(2025, 10), at(2025, 10, 26, 1, 0));
        assert_eq!(date(at(2025, 10, 25, 22, 30)), "2025-10-26");
        assert_eq!(date(at(2025, 10, 26, 22, 30)), "2025-10-26");
    }
}
