//! c7n's `parse_date`: dateutil-style strings, epoch seconds and epoch milliseconds.
//! Naive times are read as UTC (c7n reads them in the host's zone; Lambda and our
//! workers run in UTC). Strings dateutil would guess at (`"30"`, `"next tuesday"`) are not
//! parsed: they give `None` here.

use crate::pyval::Py;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// S3's launch date, c7n's floor for reading numbers as epoch timestamps.
const DATE_FLOOR: f64 = 1_142_726_400.0;
/// `datetime.fromtimestamp` fails past year 9999.
const MAX_TS: f64 = 253_402_300_799.0;

pub(crate) fn parse_date(v: &Py) -> Option<DateTime<Utc>> {
    match v {
        Py::DateTime(d) => Some(*d),
        Py::Str(s) if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) => {
            parse_str(s).or_else(|| epoch(crate::pyval::py_float(s)?))
        }
        Py::Str(s) => epoch(s.parse::<f64>().ok()?),
        Py::Int(i) => epoch(*i as f64),
        Py::Float(f) => epoch(*f),
        _ => None,
    }
}

fn epoch(f: f64) -> Option<DateTime<Utc>> {
    // NaN is not past the floor either.
    if f.partial_cmp(&DATE_FLOOR) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let secs = if f <= MAX_TS { f } else { f / 1000.0 };
    if secs > MAX_TS {
        return None;
    }
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round() as u32;
    Utc.timestamp_opt(whole as i64, nanos.min(999_999_999))
        .single()
}

const WITH_ZONE: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M%:z",
    "%Y-%m-%d %H:%M:%S%.f %z",
    "%a, %d %b %Y %H:%M:%S %z",
    "%a %b %d %H:%M:%S %z %Y",
];

const NAIVE: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%d %b %Y %H:%M:%S",
    "%b %d %Y %H:%M:%S",
    "%b %d, %Y %H:%M:%S",
    "%a, %d %b %Y %H:%M:%S",
    "%a %b %d %H:%M:%S %Y",
    "%Y%m%dT%H%M%S",
];

const DATES: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%m-%d-%Y",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d %Y",
    "%B %d %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%Y%m%d",
];

fn parse_str(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    // `Z`, `UTC` and `GMT` suffixes mean +00:00.
    let mut zoned = s.to_string();
    for suffix in ["Z", " UTC", " GMT", "UTC", "GMT"] {
        if let Some(base) = s.strip_suffix(suffix) {
            zoned = format!("{}+00:00", base.trim_end());
            break;
        }
    }
    for f in WITH_ZONE {
        if let Ok(d) = DateTime::parse_from_str(&zoned, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d.with_timezone(&Utc));
    }
    for f in NAIVE {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&d));
        }
    }
    for f in DATES {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        parse_date(&Py::Str(s.into())).map(|d| d.to_rfc3339())
    }

    #[test]
    fn formats() {
        assert_eq!(
            p("2024-01-02").as_deref(),
            Some("2024-01-02T00:00:00+00:00")
        );
        assert_eq!(
            p("2024-01-02T03:04:05.123Z").as_deref(),
            Some("2024-01-02T03:04:05.123+00:00")
        );
        assert_eq!(
            p("2024-01-02T03:04:05+02:00").as_deref(),
            Some("2024-01-02T01:04:05+00:00")
        );
        assert_eq!(
            p("Tue, 02 Jan 2024 03:04:05 GMT").as_deref(),
            Some("2024-01-02T03:04:05+00:00")
        );
        assert_eq!(
            p("1700000000").as_deref(),
            Some("2023-11-14T22:13:20+00:00")
        );
        assert_eq!(
            p("1700000000000").as_deref(),
            Some("2023-11-14T22:13:20+00:00")
        );
        assert_eq!(p("100"), None);
        assert_eq!(p("garbage"), None);
    }
}
