//! `CaseNo` — 案号, the court's number for a case.
//!
//! Shape (最高人民法院《关于人民法院案件案号的若干规定》, 2016): `（收案年度）` +
//! province abbreviation (法院代字 begins with it) + court code digits (none
//! for a high court, 2 for an intermediate court, 4 for a basic court) +
//! case-type characters (类型代字, e.g. 刑初 first instance, 刑终 appeal, 刑更
//! commutation/parole, 刑执 execution) + sequence + `号`:
//! `（2024）甘0102刑初123号`. Court systems often send half-width brackets; the
//! canonical form always uses full-width `（）`. This module only parses: it
//! never decides whether the case exists or belongs to the sender.

use std::fmt;

use crate::model::codes;
use crate::model::division::province_of_abbreviation;
use crate::violation::Violation;

/// A parsed 案号. `Display` gives the normalised (full-width bracket) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaseNo {
    year: u16,
    province: char,
    court_code: String,
    case_type: String,
    sequence: u32,
}

/// The longest court code seen in practice is 4 digits; allow a little more
/// for special courts (e.g. railway and maritime courts) without guessing wider.
const MAX_COURT_CODE_DIGITS: usize = 6;
/// 类型代字 are one to four characters (刑初, 刑更, 执恢 …).
const MAX_CASE_TYPE_CHARS: usize = 4;

/// A character that can be part of a 类型代字. `第` never is: `第123号` is how
/// a number is read aloud, and a common slip when case numbers are typed.
fn is_case_type_char(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}') && c != '第'
}

impl CaseNo {
    /// Parses a 案号; the only possible problem is `invalid_case_no` at `path`.
    pub fn parse(s: &str, path: &str) -> Result<Self, Violation> {
        Self::parse_inner(s).ok_or_else(|| {
            let f = codes::field_name(path);
            Violation::new(
                codes::INVALID_CASE_NO,
                path,
                format!("字段“{f}”不是有效的案号（如“（2024）甘0102刑初123号”）"),
                format!(
                    "field `{f}` is not a valid court case number (e.g. （2024）甘0102刑初123号)"
                ),
            )
        })
    }

    fn parse_inner(s: &str) -> Option<Self> {
        let rest = s.trim();
        let rest = rest.strip_prefix('（').or_else(|| rest.strip_prefix('('))?;
        let (year, rest) = rest.split_at_checked(4)?;
        if !year.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year: u16 = year.parse().ok()?;
        // No people's court numbers before the PRC (1949).
        if year < 1949 {
            return None;
        }
        let rest = rest.strip_prefix('）').or_else(|| rest.strip_prefix(')'))?;
        let mut chars = rest.chars();
        let province = chars
            .next()
            .filter(|c| province_of_abbreviation(*c).is_some())?;
        let rest = chars.as_str();
        let code_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if code_len > MAX_COURT_CODE_DIGITS {
            return None;
        }
        let (court_code, rest) = rest.split_at(code_len);
        let rest = rest.strip_suffix('号')?;
        let type_len: usize = rest
            .chars()
            .take_while(|c| is_case_type_char(*c))
            .map(char::len_utf8)
            .sum();
        let (case_type, sequence) = rest.split_at(type_len);
        let type_chars = case_type.chars().count();
        if !(1..=MAX_CASE_TYPE_CHARS).contains(&type_chars)
            || sequence.is_empty()
            || !sequence.bytes().all(|b| b.is_ascii_digit())
            || sequence.starts_with('0')
        {
            return None;
        }
        Some(Self {
            year,
            province,
            court_code: court_code.to_owned(),
            case_type: case_type.to_owned(),
            sequence: sequence.parse().ok()?,
        })
    }

    /// 收案年度.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// Province abbreviation (`甘`).
    pub fn province(&self) -> char {
        self.province
    }

    /// Two-digit GB/T 2260 province code of the court (`62`).
    pub fn province_code(&self) -> &'static str {
        // The parser only accepts abbreviations that are in the table.
        province_of_abbreviation(self.province).unwrap_or("00")
    }

    /// Court code digits after the abbreviation (`0102`; empty for a high court).
    pub fn court_code(&self) -> &str {
        &self.court_code
    }

    /// 类型代字 (`刑初`).
    pub fn case_type(&self) -> &str {
        &self.case_type
    }

    /// 案件编号 (`123`).
    pub fn sequence(&self) -> u32 {
        self.sequence
    }
}

impl fmt::Display for CaseNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "（{}）{}{}{}{}号",
            self.year, self.province, self.court_code, self.case_type, self.sequence
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_brackets() {
        for s in [
            "(2024)甘0102刑初123号",
            "（2024）甘0102刑初123号",
            "(2024）甘0102刑初123号",
        ] {
            let c = CaseNo::parse(s, "/case_no").expect(s);
            assert_eq!(c.to_string(), "（2024）甘0102刑初123号");
            assert_eq!(
                (
                    c.year(),
                    c.province(),
                    c.court_code(),
                    c.case_type(),
                    c.sequence()
                ),
                (2024, '甘', "0102", "刑初", 123)
            );
            assert_eq!(c.province_code(), "62");
        }
        assert_eq!(
            CaseNo::parse("（2023）京刑终7号", "/x")
                .expect("high court")
                .court_code(),
            ""
        );
        assert_eq!(
            CaseNo::parse("（2024）黔01刑更15号", "/x")
                .expect("intermediate")
                .case_type(),
            "刑更"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "2024甘0102刑初123号",
            "（24）甘0102刑初123号",
            "（2024）X0102刑初123号",
            "（2024）美0102刑初123号",
            "（2024）甘0102刑初123",
            "（2024）甘0102123号",
            "（2024）甘0102刑初号",
            "（2024）甘0102刑初0123号",
            "（2024）甘0102刑初第123号",
            "（1900）甘0102刑初1号",
            "",
        ] {
            let v = CaseNo::parse(bad, "/case_no").expect_err(bad);
            assert_eq!(
                (v.code, v.path.as_str()),
                (codes::INVALID_CASE_NO, "/case_no")
            );
        }
    }
}
