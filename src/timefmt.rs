//! Instants as the gateway writes them: milliseconds since the Unix epoch in
//! storage, UTC `…Z` in the exchange log (fixed width, so text order is time
//! order), and Beijing time (UTC+08:00, no DST) for partners and clerks.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// China Standard Time, the legal time of every period (no DST since 1991).
pub const BEIJING: UtcOffset = time::macros::offset!(+8);

pub fn unix_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2026-11-23T14:43:14+08:00` (fractions kept when present).
pub fn beijing(at: OffsetDateTime) -> String {
    at.to_offset(BEIJING).format(&Rfc3339).unwrap_or_default()
}

pub fn beijing_ms(ms: i64) -> String {
    beijing(from_unix_ms(ms))
}

/// `2026-11-23T06:43:14.123Z`.
pub fn utc_ms(ms: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    from_unix_ms(ms).format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_agree_on_one_instant() {
        let ms = 1_795_416_194_123;
        assert_eq!(utc_ms(ms), "2026-11-23T06:43:14.123Z");
        assert_eq!(beijing_ms(ms), "2026-11-23T14:43:14.123+08:00");
        assert_eq!(unix_ms(from_unix_ms(ms)), ms);
    }
}
