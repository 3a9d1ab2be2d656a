//! `IdNumber` — 公民身份号码 (GB 11643-1999).
//!
//! Owns the check-digit algorithm, the birth date embedded in the number, the
//! upgrade of legacy 15-digit numbers and the masked form for display. It must
//! never print or log the full number: use [`IdNumber::masked`] wherever a
//! human needs to recognise it (a clerk's screen), and nothing in a log.

use std::fmt;

use time::{Date, Month, OffsetDateTime, UtcOffset};

use crate::model::codes;
use crate::violation::{Violation, Violations};

/// Weights of positions 1–17 (GB 11643-1999 §7.2: 2^(18-i) mod 11).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character indexed by the weighted sum mod 11 (ISO 7064 MOD 11-2).
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// A 18-character citizen ID number whose check digit and birth date are valid.
/// Always stored upper-case (`X`) and always 18 characters (15-digit legacy
/// numbers are upgraded on parse).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdNumber {
    number: String,
    birth_date: Date,
}

/// The check character for 17 ASCII digits. Callers guarantee the input is
/// 17 ASCII digits.
fn check_char(body17: &[u8]) -> u8 {
    let sum: u32 = body17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

/// Today in Beijing time (UTC+08:00, no DST), the reference for "not in the future".
pub(crate) fn today_in_beijing() -> Date {
    let offset = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    OffsetDateTime::now_utc().to_offset(offset).date()
}

/// `YYYYMMDD` (ASCII digits guaranteed by the caller) as a real date.
fn yyyymmdd(s: &[u8]) -> Option<Date> {
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        std::str::from_utf8(&s[r]).ok()?.parse().ok()
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

impl IdNumber {
    /// Parses an ID number, judging "future" birth dates against today in Beijing.
    pub fn parse(s: &str, path: &str) -> Result<Self, Violations> {
        Self::parse_at(s, path, today_in_beijing())
    }

    /// Parses an ID number with an explicit "today" (for tests and replays).
    ///
    /// Reports `invalid_id_number` (length, characters), and otherwise every
    /// one of `invalid_id_check_digit` and `invalid_id_birth_date` that applies.
    pub fn parse_at(s: &str, path: &str, today: Date) -> Result<Self, Violations> {
        let f = codes::field_name(path);
        let bytes = s.as_bytes();
        let digits = |b: &[u8]| b.iter().all(u8::is_ascii_digit);
        // Legacy 15-digit numbers (issued before 1999) have a 2-digit year, all 19xx,
        // and no check digit: GB 11643-1999 §8 upgrade inserts "19" and computes one.
        let (body17, given_check): (Vec<u8>, Option<u8>) = match bytes.len() {
            18 if digits(&bytes[..17]) && (bytes[17].is_ascii_digit() || bytes[17] == b'X' || bytes[17] == b'x') => {
                (bytes[..17].to_vec(), Some(bytes[17].to_ascii_uppercase()))
            }
            15 if digits(bytes) => {
                let mut b = bytes[..6].to_vec();
                b.extend_from_slice(b"19");
                b.extend_from_slice(&bytes[6..]);
                (b, None)
            }
            _ => {
                return Err(vec![Violation::new(
                    codes::INVALID_ID_NUMBER,
                    path,
                    format!("字段“{f}”不是有效的公民身份号码（18 位，前 17 位为数字，末位为数字或 X；或 15 位数字）"),
                    format!(
                        "field `{f}` is not a citizen ID number (18 characters: 17 digits and a digit or X; or 15 legacy digits)"
                    ),
                )])
            }
        };
        let mut errs = Violations::new();
        let check = check_char(&body17);
        if given_check.is_some_and(|c| c != check) {
            errs.push(Violation::new(
                codes::INVALID_ID_CHECK_DIGIT,
                path,
                format!("字段“{f}”的公民身份号码校验位错误（GB 11643-1999）"),
                format!("field `{f}`: the ID number's check digit is wrong (GB 11643-1999)"),
            ));
        }
        let birth_date = yyyymmdd(&body17[6..14]).filter(|d| *d <= today);
        if birth_date.is_none() {
            errs.push(Violation::new(
                codes::INVALID_ID_BIRTH_DATE,
                path,
                format!("字段“{f}”的公民身份号码中的出生日期不存在或晚于今天"),
                format!("field `{f}`: the birth date inside the ID number is impossible or in the future"),
            ));
        }
        match birth_date {
            Some(birth_date) if errs.is_empty() => {
                let mut number = body17;
                number.push(check);
                // All bytes are ASCII digits or 'X'.
                let number = String::from_utf8(number).map_err(|_| errs.clone())?;
                Ok(Self { number, birth_date })
            }
            _ => Err(errs),
        }
    }

    /// The number of a person registered in `division` (6 digits), born on
    /// `birth_date`, with sequence code `sequence` (0–999; odd for men): the
    /// check character is computed. For generated test and demo people
    /// (`crate::demo`); `None` when the parts do not make a valid number.
    pub fn compose(division: &str, birth_date: Date, sequence: u16) -> Option<IdNumber> {
        let body = format!(
            "{division}{:04}{:02}{:02}{:03}",
            birth_date.year(),
            u8::from(birth_date.month()),
            birth_date.day(),
            sequence
        );
        if body.len() != 17 || !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number = format!("{body}{}", check_char(body.as_bytes()) as char);
        IdNumber::parse(&number, "").ok()
    }

    /// The normalised 18-character number. Personal data: keep out of logs.
    pub fn as_str(&self) -> &str {
        &self.number
    }

    /// The birth date embedded in positions 7–14.
    pub fn birth_date(&self) -> Date {
        self.birth_date
    }

    /// The 6-digit division of first registration (positions 1–6); not
    /// necessarily a division that still exists, hence a plain `&str`.
    pub fn registration_division(&self) -> &str {
        &self.number[..6]
    }

    /// Position 17 (sequence code): odd for men, even for women (GB 11643-1999 §6.3).
    pub fn is_male(&self) -> bool {
        self.number.as_bytes()[16] % 2 == 1
    }

    /// The form shown to people unless they ask (and the asking is logged):
    /// province and city kept, county, birth date and sequence hidden, the
    /// last four kept (`6201**********0026`), enough to tell two people of a
    /// case list apart without identifying either.
    pub fn masked(&self) -> String {
        format!("{}**********{}", &self.number[..4], &self.number[14..])
    }
}

/// Debug shows the masked form so that an accidental `{:?}` in a log leaks nothing.
impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    const TODAY: Date = date!(2025 - 01 - 01);

    fn codes_of(r: Result<IdNumber, Violations>) -> Vec<&'static str> {
        r.err().unwrap_or_default().iter().map(|v| v.code).collect()
    }

    #[test]
    fn valid_numbers_from_the_samples() {
        let id =
            IdNumber::parse_at("620102199003070026", "/subject/id_number", TODAY).expect("valid");
        assert_eq!(id.birth_date(), date!(1990 - 03 - 07));
        assert!(!id.is_male());
        assert_eq!(id.masked(), "6201**********0026");
        assert_eq!(format!("{id:?}"), "IdNumber(6201**********0026)");
        let id = IdNumber::parse_at("620102197805140031", "/p", TODAY).expect("valid");
        assert!(id.is_male());
    }

    #[test]
    fn lower_case_x_is_normalised() {
        // 11010519491231002X is the standard's own example.
        let id = IdNumber::parse_at("11010519491231002x", "/p", TODAY).expect("valid");
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn composed_numbers_carry_their_check_character() {
        let born = time::macros::date!(1990 - 03 - 07);
        let id = IdNumber::compose("620102", born, 2).unwrap();
        assert_eq!(id.as_str(), "620102199003070026");
        assert_eq!(id.birth_date(), born);
        assert!(!id.is_male());
        assert!(IdNumber::compose("62010", born, 2).is_none());
        assert!(IdNumber::compose("620102", born, 1000).is_none());
    }

    #[test]
    fn legacy_15_digits_are_upgraded() {
        let id = IdNumber::parse_at("110105491231002", "/p", TODAY).expect("valid");
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), date!(1949 - 12 - 31));
    }

    #[test]
    fn problems_have_codes() {
        assert_eq!(
            codes_of(IdNumber::parse_at("620102199003070027", "/p", TODAY)),
            ["invalid_id_check_digit"]
        );
        assert_eq!(
            codes_of(IdNumber::parse_at("62010219900307002", "/p", TODAY)),
            ["invalid_id_number"]
        );
        assert_eq!(
            codes_of(IdNumber::parse_at("6201021990030700A6", "/p", TODAY)),
            ["invalid_id_number"]
        );
        assert_eq!(
            codes_of(IdNumber::parse_at("", "/p", TODAY)),
            ["invalid_id_number"]
        );
        // 2023-02-29 does not exist; check digit computed so only the date is wrong.
        let mut body = b"62010220230229002".to_vec();
        body.push(check_char(&body));
        let s = String::from_utf8(body).expect("ascii");
        assert_eq!(
            codes_of(IdNumber::parse_at(&s, "/p", TODAY)),
            ["invalid_id_birth_date"]
        );
        // Both wrong at once: both reported.
        let wrong = format!("{}{}", &s[..17], if s.ends_with('0') { '1' } else { '0' });
        assert_eq!(
            codes_of(IdNumber::parse_at(&wrong, "/p", TODAY)),
            ["invalid_id_check_digit", "invalid_id_birth_date"]
        );
        // Born after "today".
        let mut body = b"62010220250601002".to_vec();
        body.push(check_char(&body));
        let s = String::from_utf8(body).expect("ascii");
        assert_eq!(
            codes_of(IdNumber::parse_at(&s, "/p", TODAY)),
            ["invalid_id_birth_date"]
        );
    }

    fn date_strategy() -> impl Strategy<Value = Date> {
        (1900i32..2024, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| {
            Date::from_calendar_date(y, Month::try_from(m).unwrap_or(Month::January), d)
                .unwrap_or(TODAY)
        })
    }

    proptest! {
        #[test]
        fn any_17_digit_body_with_computed_check_parses(div in 110000u32..830000, born in date_strategy(), seq in 0u32..1000) {
            let body = format!("{div:06}{:04}{:02}{:02}{seq:03}", born.year(), born.month() as u8, born.day());
            let mut b = body.clone().into_bytes();
            b.push(check_char(body.as_bytes()));
            let s = String::from_utf8(b).unwrap_or_default();
            let id = IdNumber::parse_at(&s, "/p", TODAY);
            prop_assert!(id.is_ok());
            prop_assert_eq!(id.map(|i| i.birth_date()).ok(), Some(born));
        }

        #[test]
        fn legacy_upgrade_round_trip(div in 110000u32..830000, born in date_strategy(), seq in 0u32..1000) {
            prop_assume!((1900..2000).contains(&born.year()));
            let legacy = format!("{div:06}{:02}{:02}{:02}{seq:03}", born.year() % 100, born.month() as u8, born.day());
            let id = IdNumber::parse_at(&legacy, "/p", TODAY).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            // Dropping "19" and the check digit gives back the legacy number,
            // and the upgraded number parses to itself.
            let up = id.as_str();
            prop_assert_eq!(format!("{}{}", &up[..6], &up[8..17]), legacy);
            let again = IdNumber::parse_at(up, "/p", TODAY).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(again, id);
        }
    }
}
