//! The official calendar: which days are working days in the PRC.
//!
//! Owns the reading of `rules/calendar/cn-official-days.tsv` (the State
//! Council's yearly 部分节假日安排 notices as data) and the one question the
//! deadline rules ask of it: is this date a working day?
//!
//! A working day is Monday–Friday unless the notice makes it a day off
//! (`holiday`, incl. bridged days), or a Saturday/Sunday the notice designates a
//! working day (`workday`, 调休).
//!
//! It must never answer for a date outside the years the file covers: a
//! missing year would otherwise look like a year without holidays and every
//! deadline in it would be silently wrong. Such a date is
//! [`CalendarError::OutOfRange`]. Counting periods is not its job
//! (see [`super::period`]).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use time::{Date, Month, OffsetDateTime, Weekday};

use super::period::Period;
use crate::violation::Bilingual;

/// Where the project keeps the calendar, relative to the working directory.
pub const DEFAULT_PATH: &str = "rules/calendar/cn-official-days.tsv";

/// What the State Council's notice says about one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// A statutory day off (放假), including bridged weekdays.
    Holiday,
    /// A Saturday or Sunday designated a working day (调休上班).
    Workday,
}

#[derive(Debug, Clone)]
struct Entry {
    kind: DayKind,
    name: String,
}

/// The official calendar for a contiguous range of years. Immutable once
/// loaded, so it can be shared between threads (`Send + Sync`).
#[derive(Debug, Clone)]
pub struct Calendar {
    first_year: i32,
    last_year: i32,
    entries: BTreeMap<Date, Entry>,
}

/// Why the calendar could not be loaded or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// A date (or a deadline computation) reached a year the calendar does not cover.
    OutOfRange {
        date: Date,
        first_year: i32,
        last_year: i32,
    },
    /// The calendar file could not be read.
    Load {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The calendar file is malformed; `line` is 1-based, `None` for the file as a whole.
    Invalid {
        origin: String,
        line: Option<usize>,
        reason: Bilingual,
    },
    /// An hours period ran past the largest instant `time` can represent.
    Unrepresentable {
        from: OffsetDateTime,
        period: Period,
    },
}

impl CalendarError {
    /// Stable snake_case code for problem+json and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OutOfRange { .. } => "date_outside_calendar",
            Self::Load { .. } => "calendar_unreadable",
            Self::Invalid { .. } => "calendar_invalid",
            Self::Unrepresentable { .. } => "deadline_unrepresentable",
        }
    }

    /// What went wrong, in Chinese and English. Holds no personal data.
    pub fn message(&self) -> Bilingual {
        match self {
            Self::OutOfRange {
                date,
                first_year,
                last_year,
            } => Bilingual::new(
                format!(
                    "日期 {date} 超出官方节假日日历的覆盖范围（{first_year}–{last_year} 年），\
                     无法计算期限：请将该年度国务院办公厅节假日安排通知补录到 {DEFAULT_PATH}"
                ),
                format!(
                    "date {date} is outside the official holiday calendar, which covers \
                     {first_year}–{last_year}; the deadline cannot be computed: add that year's \
                     State Council holiday notice to {DEFAULT_PATH}"
                ),
            ),
            Self::Load { path, source } => Bilingual::new(
                format!("无法读取官方节假日日历 {}：{source}", path.display()),
                format!(
                    "cannot read the official holiday calendar {}: {source}",
                    path.display()
                ),
            ),
            Self::Invalid {
                origin,
                line,
                reason,
            } => {
                let (zh_at, en_at) = match line {
                    Some(n) => (format!("第 {n} 行"), format!("line {n}")),
                    None => ("整体".to_owned(), "file".to_owned()),
                };
                Bilingual::new(
                    format!("官方节假日日历 {origin} {zh_at} 有误：{}", reason.zh),
                    format!(
                        "invalid official holiday calendar {origin}, {en_at}: {}",
                        reason.en
                    ),
                )
            }
            Self::Unrepresentable { from, period } => Bilingual::new(
                format!("自 {from} 起 {period} 的期限超出可表示的时间范围"),
                format!("a {period} period from {from} ends beyond the representable time range"),
            ),
        }
    }
}

impl fmt::Display for CalendarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message().en)
    }
}

impl Calendar {
    /// Reads and checks the calendar file (see [`Calendar::parse`] for the format).
    pub fn load(path: &Path) -> Result<Self, CalendarError> {
        let text = std::fs::read_to_string(path).map_err(|source| CalendarError::Load {
            path: path.to_owned(),
            source,
        })?;
        parse_from(&text, &path.display().to_string())
    }

    /// Parses calendar text: `#` comments, blank lines, and tab-separated
    /// `date<TAB>kind<TAB>name` rows (`2024-10-01<TAB>holiday<TAB>National Day`).
    ///
    /// The covered years are the years that have entries; they must be
    /// contiguous. A comment line `# years: 2020-2026` may declare them, and
    /// then must match the entries exactly, so a half-finished edit (years
    /// widened but entries missing, or the reverse) is refused at load time.
    pub fn parse(text: &str) -> Result<Self, CalendarError> {
        parse_from(text, "<text>")
    }

    /// The years the calendar covers.
    pub fn years(&self) -> RangeInclusive<i32> {
        self.first_year..=self.last_year
    }

    /// Ok if `date` lies in a covered year, else [`CalendarError::OutOfRange`].
    pub fn ensure_covers(&self, date: Date) -> Result<(), CalendarError> {
        if self.years().contains(&date.year()) {
            Ok(())
        } else {
            Err(self.out_of_range(date))
        }
    }

    /// Monday–Friday that is not a statutory day off, or a designated makeup
    /// working day (调休). Errors for a date outside the covered years.
    pub fn is_working_day(&self, date: Date) -> Result<bool, CalendarError> {
        self.ensure_covers(date)?;
        Ok(match self.entries.get(&date).map(|e| e.kind) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            None => !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday),
        })
    }

    /// The notice's entry for `date`, e.g. `(Holiday, "National Day")`, if any
    /// (for explaining a deadline to a clerk). `None` also outside the years.
    pub fn entry(&self, date: Date) -> Option<(DayKind, &str)> {
        self.entries.get(&date).map(|e| (e.kind, e.name.as_str()))
    }

    /// The day after `date`; running past the last covered year is
    /// [`CalendarError::OutOfRange`] (never a panic, even at `Date::MAX`).
    pub(crate) fn next_day(&self, date: Date) -> Result<Date, CalendarError> {
        let next = date.next_day().ok_or_else(|| self.past_end())?;
        self.ensure_covers(next)?;
        Ok(next)
    }

    /// The error for a computation that ran past the end of the calendar
    /// without a representable date: it names the first uncovered day.
    pub(crate) fn past_end(&self) -> CalendarError {
        let date = self
            .last_year
            .checked_add(1)
            .and_then(|y| Date::from_calendar_date(y, Month::January, 1).ok())
            .unwrap_or(Date::MAX);
        self.out_of_range(date)
    }

    fn out_of_range(&self, date: Date) -> CalendarError {
        CalendarError::OutOfRange {
            date,
            first_year: self.first_year,
            last_year: self.last_year,
        }
    }
}

fn parse_from(text: &str, origin: &str) -> Result<Calendar, CalendarError> {
    let invalid = |line: Option<usize>, zh: String, en: String| CalendarError::Invalid {
        origin: origin.to_owned(),
        line,
        reason: Bilingual::new(zh, en),
    };
    let date_format = time::macros::format_description!("[year]-[month]-[day]");

    let mut declared: Option<(usize, i32, i32)> = None;
    let mut entries: BTreeMap<Date, Entry> = BTreeMap::new();
    let mut first_line_of: BTreeMap<Date, usize> = BTreeMap::new();

    for (index, raw) in text.lines().enumerate() {
        let n = index + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.trim_start().strip_prefix('#') {
            if let Some(spec) = comment.trim().strip_prefix("years:") {
                if declared.is_some() {
                    return Err(invalid(
                        Some(n),
                        "重复的 years: 声明".into(),
                        "`years:` declared twice".into(),
                    ));
                }
                let (a, b) = parse_year_range(spec.trim()).ok_or_else(|| {
                    invalid(
                        Some(n),
                        format!("years: 应形如 2020-2026，实为 {:?}", spec.trim()),
                        format!("`years:` must look like 2020-2026, found {:?}", spec.trim()),
                    )
                })?;
                declared = Some((n, a, b));
            }
            continue;
        }

        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let [date_text, kind_text, name] = fields[..] else {
            return Err(invalid(
                Some(n),
                format!(
                    "应有 3 个以制表符分隔的列（日期、类型、名称），实有 {} 列",
                    fields.len()
                ),
                format!(
                    "expected 3 tab-separated columns (date, kind, name), found {}",
                    fields.len()
                ),
            ));
        };
        let date = Date::parse(date_text, date_format).map_err(|_| {
            invalid(
                Some(n),
                format!("日期 {date_text:?} 不是有效的 YYYY-MM-DD 日期"),
                format!("date {date_text:?} is not a valid YYYY-MM-DD date"),
            )
        })?;
        let kind = match kind_text {
            "holiday" => DayKind::Holiday,
            "workday" => DayKind::Workday,
            other => {
                return Err(invalid(
                    Some(n),
                    format!("类型 {other:?} 无效，应为 holiday 或 workday"),
                    format!("kind {other:?} is neither holiday nor workday"),
                ))
            }
        };
        // A makeup working day only means something on a weekend; on a weekday it is a typo.
        if kind == DayKind::Workday
            && !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
        {
            return Err(invalid(
                Some(n),
                format!(
                    "{date} 是{}，调休上班日只能是周六或周日",
                    weekday_zh(date.weekday())
                ),
                format!(
                    "{date} is a {}; a makeup workday must be a Saturday or Sunday",
                    date.weekday()
                ),
            ));
        }
        if name.is_empty() {
            return Err(invalid(
                Some(n),
                "缺少节日名称".into(),
                "the name column is empty".into(),
            ));
        }
        if let Some(first) = first_line_of.get(&date) {
            return Err(invalid(
                Some(n),
                format!("日期 {date} 重复（第 {first} 行已列出）"),
                format!("date {date} is listed twice (first on line {first})"),
            ));
        }
        first_line_of.insert(date, n);
        entries.insert(
            date,
            Entry {
                kind,
                name: name.to_owned(),
            },
        );
    }

    let (Some(first), Some(last)) = (entries.keys().next(), entries.keys().next_back()) else {
        return Err(invalid(
            None,
            "没有任何日期条目".into(),
            "no date entries".into(),
        ));
    };
    let (first_year, last_year) = (first.year(), last.year());

    // Every year in the range must have entries: a year without any would be
    // read as "no holidays", which no State Council notice has ever said.
    for year in first_year..=last_year {
        if !entries.keys().any(|d| d.year() == year) {
            return Err(invalid(
                None,
                format!("{year} 年没有任何条目：请补录该年度的节假日安排通知"),
                format!("year {year} has no entries: add that year's holiday notice"),
            ));
        }
    }
    if let Some((n, a, b)) = declared {
        if (a, b) != (first_year, last_year) {
            return Err(invalid(
                Some(n),
                format!("声明的年份 {a}–{b} 与条目覆盖的年份 {first_year}–{last_year} 不一致"),
                format!(
                    "declared years {a}–{b} do not match the years with entries, \
                     {first_year}–{last_year}"
                ),
            ));
        }
    }

    Ok(Calendar {
        first_year,
        last_year,
        entries,
    })
}

fn parse_year_range(spec: &str) -> Option<(i32, i32)> {
    let (a, b) = spec.split_once('-')?;
    let year = |s: &str| -> Option<i32> {
        let s = s.trim();
        (s.len() == 4 && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (a, b) = (year(a)?, year(b)?);
    (a <= b).then_some((a, b))
}

fn weekday_zh(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "周一",
        Weekday::Tuesday => "周二",
        Weekday::Wednesday => "周三",
        Weekday::Thursday => "周四",
        Weekday::Friday => "周五",
        Weekday::Saturday => "周六",
        Weekday::Sunday => "周日",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    /// The project's own data file, so the tests check the facts we ship.
    pub(crate) fn official() -> Calendar {
        Calendar::parse(include_str!("../../rules/calendar/cn-official-days.tsv"))
            .expect("rules/calendar/cn-official-days.tsv must load")
    }

    fn working(cal: &Calendar, d: Date) -> bool {
        cal.is_working_day(d).expect("date inside the calendar")
    }

    fn invalid_reason(text: &str) -> (Option<usize>, String) {
        match Calendar::parse(text) {
            Err(CalendarError::Invalid { line, reason, .. }) => (line, reason.en),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn shipped_file_loads_from_disk_and_covers_2020_to_2026() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_PATH);
        let cal = Calendar::load(&path).unwrap();
        assert_eq!(cal.years(), 2020..=2026);
        // 256 rows as in the shared fact sheet: 210 days off, 46 makeup workdays.
        let count = |k: DayKind| cal.entries.values().filter(|e| e.kind == k).count();
        assert_eq!(
            (count(DayKind::Holiday), count(DayKind::Workday)),
            (210, 46)
        );
    }

    #[test]
    fn calendar_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<Calendar>();
    }

    #[test]
    fn spring_festival_2024() {
        let cal = official();
        // Makeup workdays: Sunday 02-04 before, Sunday 02-18 after.
        assert_eq!(date!(2024 - 02 - 04).weekday(), Weekday::Sunday);
        assert!(working(&cal, date!(2024 - 02 - 04)));
        assert_eq!(date!(2024 - 02 - 18).weekday(), Weekday::Sunday);
        assert!(working(&cal, date!(2024 - 02 - 18)));
        // 02-10 .. 02-17 off, including the weekdays 02-12 .. 02-16.
        let mut d = date!(2024 - 02 - 10);
        while d <= date!(2024 - 02 - 17) {
            assert!(!working(&cal, d), "{d} is a Spring Festival day off");
            d = d.next_day().unwrap();
        }
        // 除夕 2024-02-09 (Friday) is not in the notice: a working day.
        assert!(working(&cal, date!(2024 - 02 - 09)));
        // An ordinary weekend just before: not working.
        assert!(!working(&cal, date!(2024 - 02 - 03)));
        assert_eq!(
            cal.entry(date!(2024 - 02 - 12)),
            Some((DayKind::Holiday, "Spring Festival"))
        );
    }

    #[test]
    fn makeup_saturdays_are_working_days_ordinary_saturdays_are_not() {
        let cal = official();
        assert_eq!(date!(2024 - 09 - 14).weekday(), Weekday::Saturday);
        assert!(working(&cal, date!(2024 - 09 - 14)));
        assert_eq!(date!(2024 - 10 - 12).weekday(), Weekday::Saturday);
        assert!(working(&cal, date!(2024 - 10 - 12)));
        assert!(!working(&cal, date!(2024 - 09 - 21)));
        assert!(!working(&cal, date!(2024 - 10 - 13)));
        // National Day 2024: 10-01 .. 10-07 off, 10-08 back to work.
        assert!(!working(&cal, date!(2024 - 10 - 07)));
        assert!(working(&cal, date!(2024 - 10 - 08)));
    }

    #[test]
    fn dates_outside_the_years_are_errors_with_a_clear_message() {
        let cal = official();
        for d in [date!(2019 - 12 - 31), date!(2027 - 01 - 04)] {
            let err = cal.is_working_day(d).unwrap_err();
            assert!(matches!(
                err,
                CalendarError::OutOfRange { date, first_year: 2020, last_year: 2026 } if date == d
            ));
            assert_eq!(err.code(), "date_outside_calendar");
            let msg = err.message();
            assert!(msg.en.contains("covers 2020–2026"), "{}", msg.en);
            assert!(
                msg.en.contains("rules/calendar/cn-official-days.tsv"),
                "{}",
                msg.en
            );
            assert!(msg.zh.contains("2020–2026"), "{}", msg.zh);
            assert_eq!(err.to_string(), msg.en);
        }
        assert!(cal.is_working_day(date!(2020 - 01 - 02)).unwrap());
        assert!(cal.is_working_day(date!(2026 - 12 - 31)).unwrap());
    }

    #[test]
    fn format_details_crlf_comments_and_blank_lines() {
        let cal = Calendar::parse(
            "# years: 2024-2024\r\n\r\n2024-10-01\tholiday\tNational Day\r\n  # note\n2024-10-12\tworkday\tNational Day\n",
        )
        .unwrap();
        assert_eq!(cal.years(), 2024..=2024);
        assert!(!working(&cal, date!(2024 - 10 - 01)));
        assert!(working(&cal, date!(2024 - 10 - 12)));
    }

    #[test]
    fn malformed_files_are_refused_with_line_numbers() {
        let (line, why) = invalid_reason("2024-10-01\tholiday\tNational Day\n2024-10-02 holiday\n");
        assert_eq!(line, Some(2));
        assert!(why.contains("3 tab-separated columns"), "{why}");

        let (line, why) = invalid_reason("2024-02-30\tholiday\tX\n");
        assert_eq!(line, Some(1));
        assert!(why.contains("not a valid YYYY-MM-DD"), "{why}");

        let (_, why) = invalid_reason("2024-10-01\tday-off\tX\n");
        assert!(why.contains("neither holiday nor workday"), "{why}");

        // 2024-10-11 is a Friday: a "workday" there is a typo.
        let (_, why) = invalid_reason("2024-10-11\tworkday\tNational Day\n");
        assert!(why.contains("is a Friday"), "{why}");

        let (line, why) = invalid_reason("2024-10-01\tholiday\tA\n2024-10-01\tholiday\tB\n");
        assert_eq!(line, Some(2));
        assert!(why.contains("listed twice (first on line 1)"), "{why}");

        let (_, why) = invalid_reason("2024-10-01\tholiday\t\n");
        assert!(why.contains("name column is empty"), "{why}");

        let (line, why) = invalid_reason("# only comments\n");
        assert_eq!(line, None);
        assert!(why.contains("no date entries"), "{why}");
    }

    #[test]
    fn a_year_without_entries_is_never_a_year_without_holidays() {
        // Gap: 2025 missing between 2024 and 2026.
        let (_, why) = invalid_reason("2024-10-01\tholiday\tA\n2026-10-01\tholiday\tB\n");
        assert!(why.contains("year 2025 has no entries"), "{why}");

        // Declared 2024-2025 but only 2024 entered (half-finished edit).
        let (line, why) = invalid_reason("# years: 2024-2025\n2024-10-01\tholiday\tA\n");
        assert_eq!(line, Some(1));
        assert!(why.contains("declared years 2024–2025"), "{why}");

        // Entries for 2025 added but the declaration not widened.
        let (_, why) =
            invalid_reason("# years: 2024-2024\n2024-10-01\tholiday\tA\n2025-01-01\tholiday\tB\n");
        assert!(why.contains("do not match"), "{why}");

        let (_, why) = invalid_reason("# years: 2026-2024\n2024-10-01\tholiday\tA\n");
        assert!(why.contains("must look like 2020-2026"), "{why}");
    }

    #[test]
    fn unreadable_file_is_a_load_error() {
        let err = Calendar::load(Path::new("/nonexistent/cn-official-days.tsv")).unwrap_err();
        assert!(matches!(err, CalendarError::Load { .. }));
        assert_eq!(err.code(), "calendar_unreadable");
        assert!(std::error::Error::source(&err).is_some());
    }
}
