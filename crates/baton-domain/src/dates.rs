//! Dates on the wire (SPEC §1): in as `YYYY-MM-DD`, out as ISO-8601 UTC with
//! milliseconds (`2020-12-31T00:00:00.000Z`). Every comparison is in UTC.

use std::fmt;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::problem::Problem;

/// Parses exactly `YYYY-MM-DD` (four-digit year 0001–9999, two-digit month and day,
/// a real calendar date; no surrounding whitespace, no time part), else
/// `400 INVALID_DATE` with `field`.
pub fn parse_date(input: &str, field: &str) -> Result<Date, Problem> {
    let invalid = || Problem::invalid_field("INVALID_DATE", field, "{field} must be a date as YYYY-MM-DD.");
    let b = input.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(invalid());
    }
    let year: i32 = input[..4].parse().map_err(|_| invalid())?;
    let month: u8 = input[5..7].parse().map_err(|_| invalid())?;
    let day: u8 = input[8..].parse().map_err(|_| invalid())?;
    if year < 1 {
        return Err(invalid());
    }
    let month = Month::try_from(month).map_err(|_| invalid())?;
    Date::from_calendar_date(year, month, day).map_err(|_| invalid())
}

/// `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// An instant as ISO-8601 UTC with milliseconds: `2020-12-31T00:00:00.000Z`.
/// Sub-millisecond precision is truncated.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        format_date(at.date()),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// Midnight UTC at the start of `date`.
pub fn start_of_day(date: Date) -> OffsetDateTime {
    PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc()
}

/// Midnight UTC at the start of the day after `date`: the instant `date` has ended.
/// For the last representable date, the last representable instant of that day.
pub fn end_of_day(date: Date) -> OffsetDateTime {
    match date.next_day() {
        Some(next) => start_of_day(next),
        None => PrimitiveDateTime::new(date, Time::MAX).assume_utc(),
    }
}

/// An instruction's settle-by (or auto-take) date, `settledByDate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SettleByDate(Date);

impl SettleByDate {
    /// Parses `YYYY-MM-DD` (see [`parse_date`]); `400 INVALID_DATE` with `field`.
    pub fn parse(input: &str, field: &str) -> Result<Self, Problem> {
        parse_date(input, field).map(Self)
    }

    /// Parses an optional value: `None` or blank (`""`, as for ids) → `Ok(None)`.
    pub fn parse_optional(input: Option<&str>, field: &str) -> Result<Option<Self>, Problem> {
        match input {
            Some(s) if !s.trim().is_empty() => Self::parse(s, field).map(Some),
            _ => Ok(None),
        }
    }

    pub fn from_date(date: Date) -> Self {
        Self(date)
    }

    pub fn date(self) -> Date {
        self.0
    }

    /// `2020-12-31T00:00:00.000Z`: the output form.
    pub fn to_iso(self) -> String {
        format_timestamp(self.starts_at())
    }

    /// `2020-12-31`: the input form (and the storage form).
    pub fn to_date_string(self) -> String {
        format_date(self.0)
    }

    /// Midnight UTC at the start of the date: when the date is due (the MIT scheduler
    /// takes payment from then on).
    pub fn starts_at(self) -> OffsetDateTime {
        start_of_day(self.0)
    }

    /// Midnight UTC at the start of the next day: when the date has ended.
    pub fn ends_at(self) -> OffsetDateTime {
        end_of_day(self.0)
    }

    /// Whether the date has begun at `now` (`now ≥ date 00:00 UTC`).
    pub fn is_due(self, now: OffsetDateTime) -> bool {
        now >= self.starts_at()
    }

    /// Whether the date has ended at `now` (`now ≥ next day 00:00 UTC`): an instruction
    /// still unsettled then is `LATE` (`instruction.missed`).
    pub fn has_passed(self, now: OffsetDateTime) -> bool {
        now >= self.ends_at()
    }
}

impl fmt::Display for SettleByDate {
    /// The output form, `2020-12-31T00:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

impl serde::Serialize for SettleByDate {
    /// As the output form, `2020-12-31T00:00:00.000Z`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    #[test]
    fn parses_calendar_dates_only() {
        assert_eq!(parse_date("2020-12-31", "settledByDate"), Ok(date!(2020 - 12 - 31)));
        assert_eq!(parse_date("2024-02-29", "d"), Ok(date!(2024 - 02 - 29)));
        assert_eq!(parse_date("0001-01-01", "d"), Ok(date!(0001 - 01 - 01)));
        for bad in [
            "2023-02-29",
            "2020-13-01",
            "2020-00-10",
            "2020-01-00",
            "2020-04-31",
            "0000-01-01",
            "2020-1-01",
            "20-12-31",
            "2020/12/31",
            " 2020-12-31",
            "2020-12-31 ",
            "2020-12-31T00:00:00.000Z",
            "+020-12-31",
            "2020-+1-01",
            "２０２０-12-31",
            "",
            "{settled_by_date}",
        ] {
            let p = parse_date(bad, "settledByDate").unwrap_err();
            assert_eq!(p.code, "INVALID_DATE", "{bad:?}");
            assert_eq!(p.details, vec![("field".into(), "settledByDate".to_string())]);
        }
    }

    #[test]
    fn output_is_iso_utc_with_millis() {
        let d = SettleByDate::parse("2020-12-31", "settledByDate").unwrap();
        assert_eq!(d.to_iso(), "2020-12-31T00:00:00.000Z");
        assert_eq!(d.to_string(), "2020-12-31T00:00:00.000Z");
        assert_eq!(d.to_date_string(), "2020-12-31");
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2020-12-31T00:00:00.000Z\"");
        assert_eq!(format_timestamp(datetime!(2021-03-04 05:06:07.891234 +02:00)), "2021-03-04T03:06:07.891Z");
    }

    #[test]
    fn optional_dates() {
        assert_eq!(SettleByDate::parse_optional(None, "settledByDate"), Ok(None));
        assert_eq!(SettleByDate::parse_optional(Some(""), "settledByDate"), Ok(None));
        assert!(SettleByDate::parse_optional(Some("2020-12-31"), "settledByDate").unwrap().is_some());
        assert!(SettleByDate::parse_optional(Some("31/12/2020"), "settledByDate").is_err());
    }

    #[test]
    fn late_once_the_day_has_ended_in_utc() {
        let d = SettleByDate::from_date(date!(2020 - 12 - 31));
        assert!(!d.is_due(datetime!(2020-12-30 23:59:59.999 UTC)));
        assert!(d.is_due(datetime!(2020-12-31 00:00 UTC)));
        assert!(!d.has_passed(datetime!(2020-12-31 23:59:59.999999999 UTC)));
        assert!(d.has_passed(datetime!(2021-01-01 00:00 UTC)));
        // 2020-12-31 23:30 at UTC-1 is already 2021-01-01 00:30 UTC.
        assert!(d.has_passed(datetime!(2020-12-31 23:30 -01:00)));
        // 2021-01-01 00:30 at UTC+1 is still 2020-12-31 23:30 UTC.
        assert!(!d.has_passed(datetime!(2021-01-01 00:30 +01:00)));
        assert_eq!(d.ends_at(), datetime!(2021-01-01 00:00 UTC));
    }

    #[test]
    fn the_last_date_never_overflows() {
        let d = SettleByDate::parse("9999-12-31", "settledByDate").unwrap();
        assert!(d.ends_at() > d.starts_at());
        assert!(!d.has_passed(datetime!(9999-12-31 12:00 UTC)));
    }

    proptest! {
        #[test]
        fn format_and_parse_round_trip(days in 0i32..3_000_000) {
            let date = Date::from_julian_day(Date::from_calendar_date(1, Month::January, 1).unwrap().to_julian_day() + days)
                .unwrap_or(Date::MAX);
            prop_assume!(date.year() <= 9999);
            let text = format_date(date);
            prop_assert_eq!(parse_date(&text, "d"), Ok(date));
            let d = SettleByDate::from_date(date);
            prop_assert!(d.to_iso().starts_with(&text));
            prop_assert!(d.is_due(d.starts_at()) && !d.has_passed(d.starts_at()));
        }
    }
}
