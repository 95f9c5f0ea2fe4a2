//! Instants as mcpguard reads and writes them: RFC 3339 text, in UTC.
//!
//! One reader and one writer for every timestamp mcpguard keeps in text (rotation
//! annotations, exception expiry, Events, conditions, audit rows, log lines), so they all
//! accept and print the same shapes. The reader is RFC 3339 exactly (`2026-12-05T02:23:21Z`,
//! `2026-12-05T02:23:21.25+02:00`), not the wider ISO 8601 / RFC 9557 syntax jiff's own
//! parser takes (`2026-12-05T02:23Z`, `20261205T022321Z`, `…[Europe/Paris]`).

use jiff::civil::{Date, DateTime};
use jiff::tz::Offset;
use jiff::{RoundMode, SignedDuration, Timestamp, TimestampRound, Unit};

/// `at` in RFC 3339 in UTC: `2026-12-05T02:23:21Z`, with fractional seconds only when
/// there are some and without trailing zeros (`2026-12-05T02:23:21.25Z`). `None` before
/// year 0, which RFC 3339's four-digit years cannot write.
pub fn format(at: Timestamp) -> Option<String> {
    if Offset::UTC.to_datetime(at).year() < 0 {
        return None;
    }
    Some(at.to_string())
}

/// [`format()`] of the whole second `at` falls in (`2026-12-05T02:23:21Z`): what kubectl
/// prints, and what a Kubernetes `Time` keeps.
pub fn format_seconds(at: Timestamp) -> Option<String> {
    format(floor_second(at))
}

/// The start of the second `at` falls in.
pub fn floor_second(at: Timestamp) -> Timestamp {
    let second = TimestampRound::new()
        .smallest(Unit::Second)
        .mode(RoundMode::Floor);
    at.round(second).unwrap_or(at)
}

/// An RFC 3339 date and time: `YYYY-MM-DD`, one separator character (`T`, `t`, a space,
/// any), `hh:mm:ss`, optional fractional seconds (digits past the ninth are dropped), and
/// `Z`, `z` or `±hh:mm`. A leap second (`:60`) reads as the last nanosecond before it, and
/// only where one can fall (the last second of a month, UTC). `None` for anything else.
///
/// A time past the last instant jiff keeps (9999-12-30T22:00Z and later, as in the
/// `99991231235959Z` "no expiry" of X.509) reads as that last instant.
pub fn parse(text: &str) -> Option<Timestamp> {
    let mut reader = Reader(text.as_bytes());
    let (year, month, day) = reader.date()?;
    reader.any()?;
    let hour = reader.digits(2)?;
    reader.literal(b':')?;
    let minute = reader.digits(2)?;
    reader.literal(b':')?;
    let second = reader.digits(2)?;
    let mut nanosecond = 0;
    if reader.literal(b'.').is_some() {
        let mut scale = 100_000_000;
        nanosecond = reader.digits(1)? * scale;
        while let Some(digit) = reader.digits(1) {
            scale /= 10;
            nanosecond += digit * scale;
        }
    }
    let offset_seconds = match reader.any()? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let hours = reader.digits(2).filter(|h| *h <= 23)?;
            reader.literal(b':')?;
            let minutes = reader.digits(2).filter(|m| *m <= 59)?;
            let seconds = hours * 3_600 + minutes * 60;
            if sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    if !reader.0.is_empty() {
        return None;
    }
    let leap = second == 60;
    let (second, nanosecond) = if leap {
        (59, 999_999_999)
    } else {
        (second, nanosecond)
    };
    let local = DateTime::new(
        year,
        month,
        day,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        nanosecond,
    )
    .ok()?;
    let offset = SignedDuration::from_secs(i64::from(offset_seconds));
    if leap {
        let utc = local.checked_sub(offset).ok()?;
        let last_second = (utc.hour(), utc.minute(), utc.second()) == (23, 59, 59);
        if !(last_second && utc.day() == utc.days_in_month()) {
            return None;
        }
    }
    let offset = Offset::from_seconds(offset_seconds).ok()?;
    // Years 0000-9999 less at most a day of offset: only the far end can leave the range.
    Some(offset.to_timestamp(local).unwrap_or(Timestamp::MAX))
}

/// A date, `YYYY-MM-DD`; the year may carry a sign (`-0044-03-15`). `None` for anything
/// else, or a day the month does not have.
pub fn parse_date(text: &str) -> Option<Date> {
    let (negative, unsigned) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        all => (false, all),
    };
    let mut reader = Reader(unsigned);
    let (year, month, day) = reader.date()?;
    if !reader.0.is_empty() {
        return None;
    }
    let year = if negative { -year } else { year };
    Date::new(year, month, day).ok()
}

/// The input left to read.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn any(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn literal(&mut self, expected: u8) -> Option<()> {
        let rest = self.0.strip_prefix(&[expected])?;
        self.0 = rest;
        Some(())
    }

    /// `YYYY-MM-DD`, unchecked: year, month, day.
    fn date(&mut self) -> Option<(i16, i8, i8)> {
        let year = self.digits(4)?;
        self.literal(b'-')?;
        let month = self.digits(2)?;
        self.literal(b'-')?;
        let day = self.digits(2)?;
        Some((
            i16::try_from(year).ok()?,
            i8::try_from(month).ok()?,
            i8::try_from(day).ok()?,
        ))
    }

    /// Exactly `count` ASCII digits, as a number.
    fn digits(&mut self, count: usize) -> Option<i32> {
        let digits = self.0.get(..count)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = &self.0[count..];
        Some(digits.iter().fold(0, |n, d| n * 10 + i32::from(d - b'0')))
    }
}

#[cfg(test)]
mod tests;
