//! Calendar dates (`YYYY-MM-DD`) and instants (RFC 3339 with offset) of the
//! canonical document: one parser and one formatter each, so every module
//! agrees on the wire form.
//!
//! A *shape* problem is `invalid_format`; a well-shaped date that does not
//! exist (2023-02-29) is `invalid_date`. Instants keep the sender's offset
//! (Beijing time is `+08:00`); conversion to UTC for storage is the store's job.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

use crate::model::codes;
use crate::violation::Violation;

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str, path: &str) -> Result<Date, Violation> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err(codes::invalid_format(
            path,
            "“YYYY-MM-DD”格式的日期",
            "a YYYY-MM-DD date",
        ));
    }
    let (y, m, d) = (
        s[..4].parse::<i32>(),
        s[5..7].parse::<u8>(),
        s[8..].parse::<u8>(),
    );
    match (y, m, d) {
        (Ok(y), Ok(m), Ok(d)) => Month::try_from(m)
            .ok()
            .and_then(|m| Date::from_calendar_date(y, m, d).ok())
            .ok_or_else(|| codes::invalid_date(path)),
        _ => Err(codes::invalid_date(path)),
    }
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// Parses an RFC 3339 date-time; the offset is mandatory (RFC 3339 §5.6).
pub fn parse_instant(s: &str, path: &str) -> Result<OffsetDateTime, Violation> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| match e {
        time::error::Parse::TryFromParsed(time::error::TryFromParsed::ComponentRange(_)) => {
            codes::invalid_date(path)
        }
        _ => codes::invalid_format(
            path,
            "带时区偏移的 RFC 3339 时间（如 2024-06-03T10:15:00+08:00）",
            "an RFC 3339 date-time with offset, e.g. 2024-06-03T10:15:00+08:00",
        ),
    })
}

/// Formats an instant as RFC 3339 with its own offset.
pub fn format_instant(t: OffsetDateTime) -> String {
    // Rfc3339 formatting fails only for years outside 0000–9999 or offsets with
    // seconds, neither of which `parse_instant` can produce.
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2024-02-29", "/d").map(format_date),
            Ok("2024-02-29".to_owned())
        );
        assert_eq!(
            parse_date("2023-02-29", "/d").map_err(|v| v.code),
            Err("invalid_date")
        );
        assert_eq!(
            parse_date("2023-13-01", "/d").map_err(|v| v.code),
            Err("invalid_date")
        );
        assert_eq!(
            parse_date("20230101", "/d").map_err(|v| v.code),
            Err("invalid_format")
        );
        assert_eq!(
            parse_date("2023-1-01", "/d").map_err(|v| v.code),
            Err("invalid_format")
        );
    }

    #[test]
    fn instants() {
        let t = parse_instant("2024-06-03T10:15:00+08:00", "/i").expect("valid");
        assert_eq!(format_instant(t), "2024-06-03T10:15:00+08:00");
        assert_eq!(
            parse_instant("2024-06-03T10:15:00", "/i").map_err(|v| v.code),
            Err("invalid_format")
        );
        assert_eq!(
            parse_instant("2023-02-29T10:15:00+08:00", "/i").map_err(|v| v.code),
            Err("invalid_date")
        );
    }
}
