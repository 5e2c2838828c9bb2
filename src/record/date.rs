//! FHIR `date` and `dateTime` values, checked for real calendar dates.
//!
//! The form has dates of varying precision (a birth year alone, a day, a moment with a time zone). The
//! record keeps the value exactly as written, so that output repeats it byte for byte, and parses it
//! once so that impossible dates (2023-02-30) are refused and dates can be compared.

use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid date: {1}")]
pub struct DateError(pub String, pub &'static str);

/// A FHIR date or dateTime: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm:ss(.f+)(Z|±hh:mm)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct FhirDate {
    text: String,
    #[serde(skip)]
    year: u16,
    #[serde(skip)]
    month: Option<u8>,
    #[serde(skip)]
    day: Option<u8>,
    #[serde(skip)]
    has_time: bool,
}

fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl FhirDate {
    pub fn parse(raw: &str) -> Result<FhirDate, DateError> {
        let err = |why| DateError(raw.to_owned(), why);
        let (date, time) = match raw.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (raw, None),
        };
        let mut parts = date.split('-');
        let y = parts.next().filter(|p| p.len() == 4).and_then(digits).ok_or_else(|| err("the year must have 4 digits"))?;
        if y < 1800 {
            return Err(err("the year is before 1800"));
        }
        let year = y as u16;
        let month = match parts.next() {
            None => None,
            Some(m) => {
                let m = Some(m).filter(|p| p.len() == 2).and_then(digits).ok_or_else(|| err("the month must have 2 digits"))?;
                if !(1..=12).contains(&m) {
                    return Err(err("the month must be 01 to 12"));
                }
                Some(m as u8)
            }
        };
        let day = match parts.next() {
            None => None,
            Some(d) => {
                let d = Some(d).filter(|p| p.len() == 2).and_then(digits).ok_or_else(|| err("the day must have 2 digits"))?;
                let month = month.ok_or_else(|| err("a day needs a month"))?;
                if d < 1 || d > u32::from(days_in_month(year, month)) {
                    return Err(err("that day does not exist in that month"));
                }
                Some(d as u8)
            }
        };
        if parts.next().is_some() {
            return Err(err("too many parts; expected YYYY-MM-DD"));
        }
        if let Some(t) = time {
            if day.is_none() {
                return Err(err("a time needs a full date"));
            }
            check_time(t).map_err(err)?;
        }
        Ok(FhirDate { text: raw.to_owned(), year, month, day, has_time: time.is_some() })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The calendar date part `YYYY-MM-DD` when the value is that precise.
    pub fn date_part(&self) -> Option<String> {
        Some(format!("{:04}-{:02}-{:02}", self.year, self.month?, self.day?))
    }

    pub fn has_time(&self) -> bool {
        self.has_time
    }

    /// Compares the calendar dates at the precision both have (2024 and 2024-05-01 compare equal);
    /// the time of day is ignored, since the form's rules are about days.
    pub fn cmp_day(&self, other: &FhirDate) -> Ordering {
        self.year
            .cmp(&other.year)
            .then_with(|| match (self.month, other.month) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => Ordering::Equal,
            })
            .then_with(|| match (self.month == other.month, self.day, other.day) {
                (true, Some(a), Some(b)) => a.cmp(&b),
                _ => Ordering::Equal,
            })
    }
}

fn check_time(t: &str) -> Result<(), &'static str> {
    // hh:mm:ss(.fraction)(Z|+hh:mm|-hh:mm); FHIR requires the zone when a time is given.
    let (clock, zone) = if let Some(c) = t.strip_suffix('Z') {
        (c, "Z")
    } else if let Some(i) = t.rfind(['+', '-']) {
        (&t[..i], &t[i..])
    } else {
        return Err("a time needs a time zone (Z or +hh:mm)");
    };
    let clock = clock.split('.').collect::<Vec<_>>();
    if clock.len() > 2 || (clock.len() == 2 && digits(clock[1]).is_none()) {
        return Err("the fraction of seconds must be digits");
    }
    let hms: Vec<&str> = clock[0].split(':').collect();
    let ok = hms.len() == 3
        && hms.iter().all(|p| p.len() == 2 && digits(p).is_some())
        && digits(hms[0]).is_some_and(|h| h < 24)
        && digits(hms[1]).is_some_and(|m| m < 60)
        && digits(hms[2]).is_some_and(|s| s < 60);
    if !ok {
        return Err("the time must be hh:mm:ss within a day");
    }
    if zone != "Z" {
        let z: Vec<&str> = zone[1..].split(':').collect();
        let ok = z.len() == 2
            && digits(z[0]).is_some_and(|h| h <= 14)
            && z[0].len() == 2
            && z[1].len() == 2
            && digits(z[1]).is_some_and(|m| m < 60);
        if !ok {
            return Err("the time zone must be Z or ±hh:mm");
        }
    }
    Ok(())
}

/// The proleptic Gregorian calendar date `(year, month, day)` of a day number counted from 1970-01-01
/// (H. Hinnant's `civil_from_days`). Used where a moment is given as a Unix time (`SOURCE_DATE_EPOCH`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`), the inverse of
/// [`civil_from_days`].
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for FhirDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_fhir_precisions() {
        for ok in ["1961", "1961-01", "1961-01-01", "2020-10-01T16:27:36.364Z", "2024-02-29", "2020-10-01T09:00:00+02:00"] {
            FhirDate::parse(ok).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn refuses_impossible_dates() {
        for bad in ["2023-02-29", "2023-13-01", "2023-04-31", "23-01-01", "2023-1-1", "2020-10-01T25:00:00Z", "2020-10-01T10:00:00", "01-02-2023", "", "2023-01-01T"] {
            assert!(FhirDate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn compares_by_day_at_shared_precision() {
        let a = FhirDate::parse("2024-05-01").unwrap();
        let b = FhirDate::parse("2024-05-02T08:00:00Z").unwrap();
        let y = FhirDate::parse("2024").unwrap();
        assert_eq!(a.cmp_day(&b), Ordering::Less);
        assert_eq!(y.cmp_day(&a), Ordering::Equal);
        assert_eq!(b.date_part().as_deref(), Some("2024-05-02"));
    }
}
