//! Legal periods (法定期限): what they are (data in `rules/periods.toml`) and
//! when they run out ([`due`]).
//!
//! # How a period is counted (刑事诉讼法 第105条, as applied to 社区矫正)
//!
//! All counting is in Beijing time ([`BEIJING`], UTC+08:00, no DST): the
//! *start day* is the Beijing calendar day of the triggering instant (judgment
//! in force, document received, request received), whatever offset the
//! instant was given in.
//!
//! - **Days** (`"5d"`): 第105条第2款 — the hour and day on which a period
//!   begins are not counted, so the last day is *start day + n*. 第105条第4款
//!   — if the last day falls on a holiday (a statutory day off or a weekend day
//!   off) the period ends on the first working day after it. A Saturday or
//!   Sunday the State Council designates a working day (调休) is a working day,
//!   so a period ending on it is not extended. Days in between are not looked at.
//! - **Working days** (`"10wd"`, 实施办法 for 调查评估): the start day is not
//!   counted either; the period ends on the *n*-th working day after it.
//! - **Hours** (`"48h"`, 法 第47条): exactly *n* hours after the triggering
//!   instant, never extended, and independent of the calendar (so it also works
//!   outside the calendar's years). Counting from the exact instant rather than
//!   from the next whole hour is the project's reading of 第2款 for hours
//!   (domain spec, "How periods are counted").
//!
//! Not modelled here: 第105条第4款's exception that a period running while the
//! person is in custody (在押) is not extended for holidays, and 第3款's
//! rule that a document posted before expiry is in time. No period in
//! `rules/periods.toml` needs them today; a flow that does must say so
//! explicitly rather than reuse [`Period::Days`].
//!
//! A days or working-days period is **due by the end of its last day**: [`due`]
//! returns that day at `23:59:59+08:00` (whole seconds; an act at or before
//! that second is in time). Every returned instant carries the `+08:00` offset;
//! convert to UTC for storage.
//!
//! The calendar must cover every day from the start day to the due day; a
//! computation that touches any other day fails with
//! [`CalendarError::OutOfRange`] instead of guessing (a year without its
//! State Council notice would look like a year without holidays).
//!
//! This module must never hold a period as a constant: provinces shorten
//! periods in their 实施细则, so every period is looked up in [`PeriodRules`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use time::macros::time;
use time::{Date, Duration, OffsetDateTime};

use super::calendar::{Calendar, CalendarError};
use crate::violation::Bilingual;

/// Beijing time, the legal time of every period: UTC+08:00 all year.
pub use crate::timefmt::BEIJING;

/// Where the project keeps the period rules, relative to the working directory.
pub const DEFAULT_PATH: &str = "rules/periods.toml";

/// A legal period, written `5d` (days), `10wd` (working days) or `48h` (hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Days(u32),
    WorkingDays(u32),
    Hours(u32),
}

/// A period written in a form other than `<n>d`, `<n>wd` or `<n>h` with n > 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid period {input:?}: expected a whole number greater than zero followed by \
     d (days), wd (working days) or h (hours), e.g. \"5d\", \"10wd\", \"48h\""
)]
pub struct PeriodParseError {
    pub input: String,
}

impl PeriodParseError {
    pub fn message(&self) -> Bilingual {
        Bilingual::new(
            format!(
                "期限 {:?} 无效：应为大于零的整数加单位 d（日）、wd（工作日）或 h（小时），\
                 如 \"5d\"、\"10wd\"、\"48h\"",
                self.input
            ),
            self.to_string(),
        )
    }
}

impl FromStr for Period {
    type Err = PeriodParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PeriodParseError {
            input: s.to_owned(),
        };
        let digits_end = s
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(s.len());
        let (digits, unit) = s.split_at(digits_end);
        if digits.is_empty() {
            return Err(err());
        }
        let n: u32 = digits.parse().map_err(|_| err())?;
        if n == 0 {
            return Err(err());
        }
        match unit {
            "d" => Ok(Self::Days(n)),
            "wd" => Ok(Self::WorkingDays(n)),
            "h" => Ok(Self::Hours(n)),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Days(n) => write!(f, "{n}d"),
            Self::WorkingDays(n) => write!(f, "{n}wd"),
            Self::Hours(n) => write!(f, "{n}h"),
        }
    }
}

/// When `period`, triggered at `from`, runs out (see the module docs for the
/// rules and their legal basis). The result is always at `+08:00`.
pub fn due(
    calendar: &Calendar,
    period: Period,
    from: OffsetDateTime,
) -> Result<OffsetDateTime, CalendarError> {
    let unrepresentable = || CalendarError::Unrepresentable { from, period };
    match period {
        Period::Hours(n) => from
            .checked_add(Duration::hours(i64::from(n)))
            .and_then(|t| t.checked_to_offset(BEIJING))
            .ok_or_else(unrepresentable),
        Period::Days(n) => {
            let start = beijing_day(from).ok_or_else(unrepresentable)?;
            calendar.ensure_covers(start)?;
            // 第105条第2款: the start day is not counted.
            let mut last = start
                .checked_add(Duration::days(i64::from(n)))
                .ok_or_else(|| calendar.past_end())?;
            // 第105条第4款: a last day off moves to the next working day.
            while !calendar.is_working_day(last)? {
                last = calendar.next_day(last)?;
            }
            Ok(end_of_day(last))
        }
        Period::WorkingDays(n) => {
            let start = beijing_day(from).ok_or_else(unrepresentable)?;
            calendar.ensure_covers(start)?;
            let mut day = start;
            let mut counted = 0;
            while counted < n {
                day = calendar.next_day(day)?;
                if calendar.is_working_day(day)? {
                    counted += 1;
                }
            }
            Ok(end_of_day(day))
        }
    }
}

/// The Beijing calendar day of an instant (`None` only at the edge of the
/// representable range).
fn beijing_day(at: OffsetDateTime) -> Option<Date> {
    at.checked_to_offset(BEIJING).map(OffsetDateTime::date)
}

/// "Due by the end of the day": the last whole second of `day` in Beijing.
fn end_of_day(day: Date) -> OffsetDateTime {
    day.with_time(time!(23:59:59)).assume_offset(BEIJING)
}

/// The period rules: defaults for the whole country plus province overrides,
/// read from `rules/periods.toml` (format documented in that file).
#[derive(Debug, Clone)]
pub struct PeriodRules {
    defaults: BTreeMap<String, Period>,
    /// Two-digit GB/T 2260 province prefix → the periods its 实施细则 replaces.
    provinces: BTreeMap<String, BTreeMap<String, Period>>,
}

/// Why the period rules could not be loaded or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum PeriodRulesError {
    /// The rules file could not be read.
    Load {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The rules file is not valid TOML.
    Syntax {
        origin: String,
        source: Box<toml::de::Error>,
    },
    /// The rules file is TOML but breaks the rules' format.
    Invalid { origin: String, reason: Bilingual },
    /// No period with this name (e.g. `handover.notify`) is defined.
    UnknownPeriod { name: String },
    /// A division code that is not 6 ASCII digits (GB/T 2260).
    InvalidDivision { division: String },
}

impl PeriodRulesError {
    /// Stable snake_case code for problem+json and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Load { .. } => "period_rules_unreadable",
            Self::Syntax { .. } | Self::Invalid { .. } => "period_rules_invalid",
            Self::UnknownPeriod { .. } => "unknown_period",
            Self::InvalidDivision { .. } => "invalid_division_code",
        }
    }

    /// What went wrong, in Chinese and English.
    pub fn message(&self) -> Bilingual {
        match self {
            Self::Load { path, source } => Bilingual::new(
                format!("无法读取期限规则 {}：{source}", path.display()),
                format!("cannot read the period rules {}: {source}", path.display()),
            ),
            Self::Syntax { origin, source } => Bilingual::new(
                format!("期限规则 {origin} 不是有效的 TOML：{source}"),
                format!("period rules {origin} are not valid TOML: {source}"),
            ),
            Self::Invalid { origin, reason } => Bilingual::new(
                format!("期限规则 {origin} 有误：{}", reason.zh),
                format!("invalid period rules {origin}: {}", reason.en),
            ),
            Self::UnknownPeriod { name } => Bilingual::new(
                format!("期限规则中没有名为 {name:?} 的期限"),
                format!("no period named {name:?} in the period rules"),
            ),
            Self::InvalidDivision { division } => Bilingual::new(
                format!("行政区划代码 {division:?} 无效：应为 6 位数字（GB/T 2260）"),
                format!("division code {division:?} is not 6 digits (GB/T 2260)"),
            ),
        }
    }
}

impl fmt::Display for PeriodRulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message().en)
    }
}

/// The top-level table holding province overrides.
const PROVINCE_TABLE: &str = "province";

impl PeriodRules {
    /// Reads and checks the rules file.
    pub fn load(path: &Path) -> Result<Self, PeriodRulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| PeriodRulesError::Load {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_from(&text, &path.display().to_string())
    }

    /// Parses rules text (for tests and embedded defaults).
    pub fn parse(text: &str) -> Result<Self, PeriodRulesError> {
        Self::parse_from(text, "<text>")
    }

    /// The period `name` (e.g. `"assessment.opinion"`) for an agency in
    /// `division` (6-digit GB/T 2260 code): the province's override if its
    /// 实施细则 sets one, else the national default. `None` → the default.
    pub fn period(&self, name: &str, division: Option<&str>) -> Result<Period, PeriodRulesError> {
        if let Some(division) = division {
            if division.len() != 6 || !division.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PeriodRulesError::InvalidDivision {
                    division: division.to_owned(),
                });
            }
            let overridden = self.provinces.get(&division[..2]).and_then(|p| p.get(name));
            if let Some(period) = overridden {
                return Ok(*period);
            }
        }
        self.defaults
            .get(name)
            .copied()
            .ok_or_else(|| PeriodRulesError::UnknownPeriod {
                name: name.to_owned(),
            })
    }

    /// The names of all periods with a default, sorted (e.g. for a start-up
    /// check that every period a flow uses is defined).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defaults.keys().map(String::as_str)
    }

    fn parse_from(text: &str, origin: &str) -> Result<Self, PeriodRulesError> {
        let invalid = |zh: String, en: String| PeriodRulesError::Invalid {
            origin: origin.to_owned(),
            reason: Bilingual::new(zh, en),
        };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|source| PeriodRulesError::Syntax {
                origin: origin.to_owned(),
                source: Box::new(source),
            })?;

        let province_tables = table.remove(PROVINCE_TABLE);
        let mut defaults = BTreeMap::new();
        flatten(&table, "", &mut defaults).map_err(|(zh, en)| invalid(zh, en))?;
        if defaults.is_empty() {
            return Err(invalid(
                "没有定义任何期限".into(),
                "no periods defined".into(),
            ));
        }

        let mut provinces = BTreeMap::new();
        if let Some(value) = province_tables {
            let toml::Value::Table(by_prefix) = value else {
                return Err(invalid(
                    "province 应为表，如 [province.62.handover]".into(),
                    "`province` must be a table like [province.62.handover]".into(),
                ));
            };
            for (prefix, value) in by_prefix {
                if prefix.len() != 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(
                        format!("省级代码 {prefix:?} 应为 GB/T 2260 的两位省级前缀，如 62"),
                        format!(
                            "province key {prefix:?} must be the two-digit GB/T 2260 \
                             province prefix, e.g. 62"
                        ),
                    ));
                }
                let toml::Value::Table(groups) = value else {
                    return Err(invalid(
                        format!("province.{prefix} 应为表"),
                        format!("province.{prefix} must be a table"),
                    ));
                };
                let mut overrides = BTreeMap::new();
                flatten(&groups, "", &mut overrides).map_err(|(zh, en)| {
                    invalid(
                        format!("province.{prefix}: {zh}"),
                        format!("province.{prefix}: {en}"),
                    )
                })?;
                // An override of a period that has no default is almost surely a typo,
                // and it would silently never apply.
                if let Some(name) = overrides.keys().find(|n| !defaults.contains_key(*n)) {
                    return Err(invalid(
                        format!("province.{prefix} 覆盖了未定义默认值的期限 {name:?}"),
                        format!("province.{prefix} overrides {name:?}, which has no default"),
                    ));
                }
                provinces.insert(prefix, overrides);
            }
        }
        Ok(Self {
            defaults,
            provinces,
        })
    }
}

/// Collects `group.name = "5d"` pairs from nested tables into dotted names.
/// Errors are `(zh, en)` reasons.
fn flatten(
    table: &toml::Table,
    prefix: &str,
    out: &mut BTreeMap<String, Period>,
) -> Result<(), (String, String)> {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::String(text) => {
                let period = text.parse::<Period>().map_err(|e| {
                    let msg = e.message();
                    (format!("{name}: {}", msg.zh), format!("{name}: {}", msg.en))
                })?;
                out.insert(name, period);
            }
            toml::Value::Table(inner) => flatten(inner, &name, out)?,
            _ => {
                return Err((
                    format!("{name} 应为字符串，如 \"5d\""),
                    format!("{name} must be a string such as \"5d\""),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn official() -> Calendar {
        Calendar::parse(include_str!("../../rules/calendar/cn-official-days.tsv"))
            .expect("rules/calendar/cn-official-days.tsv must load")
    }

    /// Due instant for a trigger at noon Beijing time on `day`.
    fn due_from_day(
        cal: &Calendar,
        period: &str,
        day: Date,
    ) -> Result<OffsetDateTime, CalendarError> {
        due(
            cal,
            period.parse().unwrap(),
            day.with_time(time!(12:00)).assume_offset(BEIJING),
        )
    }

    fn due_day(cal: &Calendar, period: &str, day: Date) -> Date {
        let at = due_from_day(cal, period, day).unwrap();
        assert_eq!(at.offset(), BEIJING);
        assert_eq!(at.time(), time!(23:59:59));
        at.date()
    }

    fn out_of_range_date(result: Result<OffsetDateTime, CalendarError>) -> Date {
        match result {
            Err(CalendarError::OutOfRange {
                date,
                first_year: 2020,
                last_year: 2026,
            }) => date,
            other => panic!("expected OutOfRange for 2020–2026, got {other:?}"),
        }
    }

    // ---- Period syntax ----

    #[test]
    fn periods_parse_and_display_round_trip() {
        for (text, period) in [
            ("5d", Period::Days(5)),
            ("10wd", Period::WorkingDays(10)),
            ("48h", Period::Hours(48)),
            ("1d", Period::Days(1)),
        ] {
            assert_eq!(text.parse::<Period>(), Ok(period));
            assert_eq!(period.to_string(), text);
        }
    }

    #[test]
    fn malformed_periods_are_refused_clearly() {
        for bad in [
            "",
            "d",
            "5",
            "0d",
            "0wd",
            "5 d",
            " 5d",
            "5d ",
            "-5d",
            "+5d",
            "5D",
            "5days",
            "1.5d",
            "5w",
            "5dd",
            "99999999999d",
            "五日",
        ] {
            let err = bad.parse::<Period>().unwrap_err();
            assert_eq!(err.input, bad);
            assert!(
                err.to_string().contains("e.g. \"5d\", \"10wd\", \"48h\""),
                "{err}"
            );
            assert!(err.message().zh.contains("工作日"));
        }
        assert_eq!(
            "5 days".parse::<Period>().unwrap_err().to_string(),
            "invalid period \"5 days\": expected a whole number greater than zero followed by \
             d (days), wd (working days) or h (hours), e.g. \"5d\", \"10wd\", \"48h\""
        );
    }

    // ---- Days (刑事诉讼法 第105条) ----

    #[test]
    fn days_period_ending_on_national_day_moves_to_the_next_working_day() {
        let cal = official();
        // 2024-09-26 + 5d = 2024-10-01 (holiday); 10-01..10-07 off → Tuesday 10-08.
        assert_eq!(
            due_from_day(&cal, "5d", date!(2024 - 09 - 26)).unwrap(),
            datetime!(2024-10-08 23:59:59 +08:00)
        );
    }

    #[test]
    fn days_period_ending_in_spring_festival_2024_moves_to_the_makeup_sunday() {
        let cal = official();
        // 2024-02-05 + 5d = 02-10 (holiday); 02-11..02-17 off; 02-18 is a makeup Sunday.
        assert_eq!(
            due_day(&cal, "5d", date!(2024 - 02 - 05)),
            date!(2024 - 02 - 18)
        );
        // 2024-01-30 + 5d = 02-04, a makeup Sunday: not extended.
        assert_eq!(
            due_day(&cal, "5d", date!(2024 - 01 - 30)),
            date!(2024 - 02 - 04)
        );
    }

    #[test]
    fn days_period_ending_on_a_makeup_saturday_is_not_extended() {
        let cal = official();
        // 2024-09-09 + 5d = Saturday 09-14, a makeup workday before Mid-Autumn.
        assert_eq!(
            due_day(&cal, "5d", date!(2024 - 09 - 09)),
            date!(2024 - 09 - 14)
        );
        // 2024-10-07 + 5d = Saturday 10-12, a makeup workday after National Day.
        assert_eq!(
            due_day(&cal, "5d", date!(2024 - 10 - 07)),
            date!(2024 - 10 - 12)
        );
        // An ordinary Saturday (2024-09-21) moves to Monday 09-23.
        assert_eq!(
            due_day(&cal, "5d", date!(2024 - 09 - 16)),
            date!(2024 - 09 - 23)
        );
    }

    #[test]
    fn days_period_counts_only_the_last_day_not_the_days_in_between() {
        let cal = official();
        // 2024-09-30 + 10d = Thursday 10-10: the seven days off in between do not matter.
        assert_eq!(
            due_day(&cal, "10d", date!(2024 - 09 - 30)),
            date!(2024 - 10 - 10)
        );
        // 30-day ruling period across National Day 2024: 09-20 + 30d = Sunday 10-20 → Monday 10-21.
        assert_eq!(
            due_day(&cal, "30d", date!(2024 - 09 - 20)),
            date!(2024 - 10 - 21)
        );
    }

    #[test]
    fn days_period_across_the_year_boundary() {
        let cal = official();
        // 2023-12-29 (Fri) + 5d = Wednesday 2024-01-03.
        assert_eq!(
            due_day(&cal, "5d", date!(2023 - 12 - 29)),
            date!(2024 - 01 - 03)
        );
        // 2023-12-27 + 5d = 2024-01-01 (New Year's Day) → Tuesday 01-02.
        assert_eq!(
            due_day(&cal, "5d", date!(2023 - 12 - 27)),
            date!(2024 - 01 - 02)
        );
        // 2023-12-25 + 5d = Saturday 12-30 (holiday), 12-31, 01-01 off → 2024-01-02.
        assert_eq!(
            due_day(&cal, "5d", date!(2023 - 12 - 25)),
            date!(2024 - 01 - 02)
        );
    }

    #[test]
    fn days_period_over_leap_day() {
        let cal = official();
        // 2024 has 02-29, 2023 does not.
        assert_eq!(
            due_day(&cal, "1d", date!(2024 - 02 - 28)),
            date!(2024 - 02 - 29)
        );
        assert_eq!(
            due_day(&cal, "1d", date!(2023 - 02 - 28)),
            date!(2023 - 03 - 01)
        );
        assert_eq!(
            due_day(&cal, "1d", date!(2024 - 02 - 29)),
            date!(2024 - 03 - 01)
        );
        assert_eq!(
            due_day(&cal, "5d", date!(2024 - 02 - 24)),
            date!(2024 - 02 - 29)
        );
        assert_eq!(
            due_day(&cal, "5d", date!(2023 - 02 - 24)),
            date!(2023 - 03 - 01)
        );
        // 2024-02-28 + 10d = Saturday 03-09 → Monday 03-11; 2023: Friday 03-10.
        assert_eq!(
            due_day(&cal, "10d", date!(2024 - 02 - 28)),
            date!(2024 - 03 - 11)
        );
        assert_eq!(
            due_day(&cal, "10d", date!(2023 - 02 - 28)),
            date!(2023 - 03 - 10)
        );
    }

    #[test]
    fn the_start_day_is_the_beijing_day_of_the_trigger() {
        let cal = official();
        // 2024-09-25 17:30 UTC is 2024-09-26 01:30 in Beijing: start day 09-26.
        assert_eq!(
            due(&cal, Period::Days(5), datetime!(2024-09-25 17:30 UTC)).unwrap(),
            datetime!(2024-10-08 23:59:59 +08:00)
        );
        // 2024-09-25 15:59:59 UTC is still 09-25 in Beijing: 09-30, a Monday.
        assert_eq!(
            due(&cal, Period::Days(5), datetime!(2024-09-25 15:59:59 UTC)).unwrap(),
            datetime!(2024-09-30 23:59:59 +08:00)
        );
        // Trigger time of day does not matter for day periods.
        assert_eq!(
            due(&cal, Period::Days(5), datetime!(2024-09-26 00:00 +08:00)).unwrap(),
            due(
                &cal,
                Period::Days(5),
                datetime!(2024-09-26 23:59:59.999 +08:00)
            )
            .unwrap(),
        );
    }

    // ---- Working days (调查评估) ----

    #[test]
    fn expedited_assessment_across_national_day_2024() {
        let cal = official();
        // Request received Friday 2024-09-27 16:40 Beijing time (start day, not counted).
        // 09-28 Sat off; 09-29 Sun makeup (1); 09-30 Mon (2); 10-01..10-07 off;
        // 10-08 (3); 10-09 (4); 10-10 (5).
        let received = datetime!(2024-09-27 16:40 +08:00);
        let counted = [
            date!(2024 - 09 - 29),
            date!(2024 - 09 - 30),
            date!(2024 - 10 - 08),
            date!(2024 - 10 - 09),
            date!(2024 - 10 - 10),
        ];
        for (n, day) in (1..).zip(counted) {
            let at = due(&cal, Period::WorkingDays(n), received).unwrap();
            assert_eq!(at.date(), day, "working day {n}");
        }
        let at = due(&cal, Period::WorkingDays(5), received).unwrap();
        assert_eq!(at, datetime!(2024-10-10 23:59:59 +08:00));
        assert_eq!(at.offset(), BEIJING);
    }

    #[test]
    fn ordinary_assessment_across_national_day_2024() {
        let cal = official();
        // Continuing from the expedited case: 10-11 Fri (6); 10-12 Sat makeup (7); 10-13 Sun off;
        // 10-14 (8); 10-15 (9); 10-16 (10).
        let received = datetime!(2024-09-27 16:40 +08:00);
        assert_eq!(
            due(&cal, Period::WorkingDays(10), received).unwrap(),
            datetime!(2024-10-16 23:59:59 +08:00)
        );
        // The same instant given in UTC gives the same due instant, at +08:00.
        let at = due(
            &cal,
            Period::WorkingDays(10),
            datetime!(2024-09-27 08:40 UTC),
        )
        .unwrap();
        assert_eq!(at, datetime!(2024-10-16 23:59:59 +08:00));
        assert_eq!(at.offset(), BEIJING);
    }

    #[test]
    fn working_days_across_spring_festival_2024() {
        let cal = official();
        // From Wed 02-07: 02-08 (1), 02-09 (2), 02-10..02-17 off, Sunday 02-18 makeup (3).
        assert_eq!(
            due_day(&cal, "3wd", date!(2024 - 02 - 07)),
            date!(2024 - 02 - 18)
        );
        // From Thu 02-01: 02-02 (1), 02-03 Sat off, Sunday 02-04 makeup (2), 02-05..02-09 (3–7),
        // 02-10..02-17 off, 02-18 (8), 02-19 (9), 02-20 (10).
        assert_eq!(
            due_day(&cal, "10wd", date!(2024 - 02 - 01)),
            date!(2024 - 02 - 20)
        );
    }

    #[test]
    fn working_days_from_a_day_off_and_across_new_year() {
        let cal = official();
        // Received on a holiday (2024-10-03): the first working day is 10-08.
        assert_eq!(
            due_day(&cal, "1wd", date!(2024 - 10 - 03)),
            date!(2024 - 10 - 08)
        );
        // From Thu 2023-12-28: 12-29 (1); 12-30, 12-31, 01-01 off; 01-02 (2); 01-03 (3).
        assert_eq!(
            due_day(&cal, "3wd", date!(2023 - 12 - 28)),
            date!(2024 - 01 - 03)
        );
    }

    // ---- Hours (法 第47条) ----

    #[test]
    fn hours_are_exact_and_never_extended() {
        let cal = official();
        // Ends on National Day 2024 at the same minute: not moved.
        assert_eq!(
            due(
                &cal,
                Period::Hours(48),
                datetime!(2024-09-29 10:15:30.25 +08:00)
            )
            .unwrap(),
            datetime!(2024-10-01 10:15:30.25 +08:00)
        );
        // Across Spring Festival 2024, given in UTC, returned at +08:00.
        let at = due(&cal, Period::Hours(48), datetime!(2024-02-09 02:00 UTC)).unwrap();
        assert_eq!(at, datetime!(2024-02-11 10:00 +08:00));
        assert_eq!(at.offset(), BEIJING);
        // 48h is 48h, not "two days to the end of the day".
        assert_eq!(
            due(&cal, Period::Hours(48), datetime!(2024-10-08 23:30 +08:00)).unwrap(),
            datetime!(2024-10-10 23:30 +08:00)
        );
    }

    #[test]
    fn hours_need_no_calendar_year() {
        let cal = official();
        assert_eq!(
            due(&cal, Period::Hours(48), datetime!(2030-12-31 20:00 +08:00)).unwrap(),
            datetime!(2031-01-02 20:00 +08:00)
        );
        assert_eq!(
            due(&cal, Period::Hours(48), datetime!(2019-12-30 09:00 +08:00)).unwrap(),
            datetime!(2020-01-01 09:00 +08:00)
        );
    }

    #[test]
    fn hours_beyond_the_representable_range_are_an_error_not_a_panic() {
        let cal = official();
        let err = due(
            &cal,
            Period::Hours(u32::MAX),
            datetime!(2024-01-01 00:00 UTC),
        )
        .unwrap_err();
        assert_eq!(err.code(), "deadline_unrepresentable");
    }

    // ---- Outside the calendar ----

    #[test]
    fn a_start_day_before_the_calendar_is_an_error() {
        let cal = official();
        // 2019-12-30 + 5d would land in 2020, but the start day has no notice in the file.
        let result = due_from_day(&cal, "5d", date!(2019 - 12 - 30));
        assert_eq!(out_of_range_date(result), date!(2019 - 12 - 30));
        assert_eq!(
            out_of_range_date(due_from_day(&cal, "5wd", date!(2019 - 12 - 30))),
            date!(2019 - 12 - 30)
        );
        // 2019-12-31 20:00 UTC is already 2020-01-01 in Beijing: covered.
        // 2020-01-01 + 5d = Monday 2020-01-06.
        assert_eq!(
            due(&cal, Period::Days(5), datetime!(2019-12-31 20:00 UTC)).unwrap(),
            datetime!(2020-01-06 23:59:59 +08:00)
        );
    }

    #[test]
    fn a_period_running_past_the_calendar_is_an_error() {
        let cal = official();
        // 2026-12-28 + 10d = 2027-01-07: no 2027 notice yet.
        let err = due_from_day(&cal, "10d", date!(2026 - 12 - 28)).unwrap_err();
        assert_eq!(err.code(), "date_outside_calendar");
        assert!(
            err.message().en.contains("2027-01-07"),
            "{}",
            err.message().en
        );
        assert!(err
            .message()
            .en
            .contains("rules/calendar/cn-official-days.tsv"));
        assert_eq!(out_of_range_date(Err(err)), date!(2027 - 01 - 07));
        // Working days: 12-30 (1), 12-31 (2), then 2027-01-01 is unknown.
        assert_eq!(
            out_of_range_date(due_from_day(&cal, "5wd", date!(2026 - 12 - 29))),
            date!(2027 - 01 - 01)
        );
        // Inside the last year it still works: 2026-12-28 + 3d = Thursday 12-31.
        assert_eq!(
            due_day(&cal, "3d", date!(2026 - 12 - 28)),
            date!(2026 - 12 - 31)
        );
        // A huge period cannot overflow into a panic.
        assert_eq!(
            out_of_range_date(due(
                &cal,
                Period::Days(u32::MAX),
                datetime!(2024-01-01 12:00 +08:00)
            )),
            date!(2027 - 01 - 01)
        );
        assert_eq!(
            out_of_range_date(due(
                &cal,
                Period::WorkingDays(u32::MAX),
                datetime!(2024-01-01 12:00 +08:00)
            )),
            date!(2027 - 01 - 01)
        );
    }

    // ---- Period rules ----

    #[test]
    fn shipped_rules_hold_every_period_of_the_domain() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_PATH);
        let rules = PeriodRules::load(&path).unwrap();
        let expected = [
            ("assessment.opinion", Period::WorkingDays(10)),
            ("assessment.opinion_expedited", Period::WorkingDays(5)),
            ("assessment.supplement", Period::Days(3)),
            ("handover.correction", Period::Days(5)),
            ("handover.documents", Period::Days(10)),
            ("handover.medical_parole_transfer", Period::Days(10)),
            ("handover.notify", Period::Days(5)),
            ("handover.receipt", Period::Days(5)),
            ("handover.report", Period::Days(10)),
            ("revocation.arrest_decision", Period::Hours(48)),
            ("revocation.ruling", Period::Days(30)),
        ];
        assert_eq!(
            rules.names().collect::<Vec<_>>(),
            expected.map(|(n, _)| n).to_vec()
        );
        for (name, period) in expected {
            assert_eq!(rules.period(name, None).unwrap(), period, "{name}");
            assert_eq!(
                rules.period(name, Some("620102")).unwrap(),
                period,
                "{name}"
            );
        }
    }

    const WITH_GANSU: &str = r#"
        [handover]
        notify = "5d"
        receipt = "5d"
        [assessment]
        opinion = "10wd"

        # 甘肃省 实施细则 (example)
        [province.62.handover]
        receipt = "3d"
        [province.62]
        assessment.opinion = "7wd"
    "#;

    #[test]
    fn province_override_replaces_only_what_it_names() {
        let rules = PeriodRules::parse(WITH_GANSU).unwrap();
        // Agencies in Gansu (62xxxx).
        assert_eq!(
            rules.period("handover.receipt", Some("620102")).unwrap(),
            Period::Days(3)
        );
        assert_eq!(
            rules.period("assessment.opinion", Some("620000")).unwrap(),
            Period::WorkingDays(7)
        );
        assert_eq!(
            rules.period("handover.notify", Some("620102")).unwrap(),
            Period::Days(5)
        );
        // Elsewhere, and without a division: the national default.
        assert_eq!(
            rules.period("handover.receipt", Some("110101")).unwrap(),
            Period::Days(5)
        );
        assert_eq!(
            rules.period("handover.receipt", None).unwrap(),
            Period::Days(5)
        );
        assert_eq!(rules.names().count(), 3);
    }

    #[test]
    fn unknown_names_and_bad_divisions_are_errors() {
        let rules = PeriodRules::parse(WITH_GANSU).unwrap();
        let err = rules.period("handover.notice", None).unwrap_err();
        assert_eq!(err.code(), "unknown_period");
        assert_eq!(
            err.to_string(),
            "no period named \"handover.notice\" in the period rules"
        );
        let err = rules.period("handover.notice", Some("620102")).unwrap_err();
        assert_eq!(err.code(), "unknown_period");
        for bad in ["62", "6201020", "62010a", "", "６２０１０２"] {
            let err = rules.period("handover.receipt", Some(bad)).unwrap_err();
            assert_eq!(err.code(), "invalid_division_code", "{bad}");
        }
    }

    fn invalid_rules(text: &str) -> String {
        match PeriodRules::parse(text) {
            Err(e @ PeriodRulesError::Invalid { .. }) => {
                assert_eq!(e.code(), "period_rules_invalid");
                e.to_string()
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn malformed_rules_are_refused_at_load_time() {
        let why = invalid_rules("[handover]\nnotify = \"5 days\"\n");
        assert!(
            why.contains("handover.notify: invalid period \"5 days\""),
            "{why}"
        );
        let why = invalid_rules("[handover]\nnotify = 5\n");
        assert!(why.contains("handover.notify must be a string"), "{why}");
        let why = invalid_rules("");
        assert!(why.contains("no periods defined"), "{why}");
        // Override of a period with no default (typo).
        let why =
            invalid_rules("[handover]\nnotify = \"5d\"\n[province.62.handover]\nnotfy = \"3d\"\n");
        assert!(
            why.contains("province.62 overrides \"handover.notfy\", which has no default"),
            "{why}"
        );
        let why = invalid_rules(
            "[handover]\nnotify = \"5d\"\n[province.620000.handover]\nnotify = \"3d\"\n",
        );
        assert!(why.contains("two-digit GB/T 2260 province prefix"), "{why}");
        let why = invalid_rules("province = \"62\"\n[handover]\nnotify = \"5d\"\n");
        assert!(why.contains("`province` must be a table"), "{why}");
        let why =
            invalid_rules("[handover]\nnotify = \"5d\"\n[province.62.handover]\nnotify = \"0d\"\n");
        assert!(
            why.contains("province.62: handover.notify: invalid period \"0d\""),
            "{why}"
        );

        let err = PeriodRules::parse("[handover\nnotify = \"5d\"").unwrap_err();
        assert!(matches!(err, PeriodRulesError::Syntax { .. }));
        assert_eq!(err.code(), "period_rules_invalid");

        let err = PeriodRules::load(Path::new("/nonexistent/periods.toml")).unwrap_err();
        assert_eq!(err.code(), "period_rules_unreadable");
    }
}
