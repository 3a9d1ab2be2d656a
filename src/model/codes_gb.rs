//! Small national code lists carried by the canonical document:
//! `CorrectionType` — 社区矫正类型, `Gender` — 性别 (GB/T 2261.1),
//! `Ethnicity` — 民族 (GB 3304).
//!
//! Each owns its wire codes; mapping a dialect's words (`男`, `汉族`, `HX`) to
//! these codes belongs to `mappings/`, never here.

use std::fmt;

use crate::model::codes;
use crate::violation::Violation;

/// The four kinds of community correction (《社区矫正法》第2条).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorrectionType {
    /// 管制
    Control,
    /// 缓刑
    Probation,
    /// 假释
    Parole,
    /// 暂予监外执行
    MedicalParole,
}

impl CorrectionType {
    pub const ALL: [CorrectionType; 4] = [
        Self::Control,
        Self::Probation,
        Self::Parole,
        Self::MedicalParole,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Probation => "probation",
            Self::Parole => "parole",
            Self::MedicalParole => "medical_parole",
        }
    }

    /// Parses the wire code; the only problem is `bad_code_value` at `path`.
    pub fn parse(s: &str, path: &str) -> Result<Self, Violation> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| codes::bad_code_value(path))
    }
}

impl fmt::Display for CorrectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// GB/T 2261.1-2003 sex codes, carried as one-digit strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    /// 0 未知的性别
    Unknown,
    /// 1 男性
    Male,
    /// 2 女性
    Female,
    /// 9 未说明的性别
    Unstated,
}

impl Gender {
    pub const ALL: [Gender; 4] = [Self::Unknown, Self::Male, Self::Female, Self::Unstated];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "0",
            Self::Male => "1",
            Self::Female => "2",
            Self::Unstated => "9",
        }
    }

    /// Parses the code; the only problem is `bad_code_value` at `path`.
    pub fn parse(s: &str, path: &str) -> Result<Self, Violation> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| codes::bad_code_value(path))
    }
}

/// A GB 3304-1991 ethnicity code: `01` 汉族 … `56` 基诺族, `97` 其他未识别民族,
/// `98` 外国血统中国籍人士.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ethnicity(u8);

impl Ethnicity {
    /// Parses the two-digit code; the only problem is `bad_code_value` at `path`.
    pub fn parse(s: &str, path: &str) -> Result<Self, Violation> {
        let n = (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u8>().ok())
            .flatten()
            .filter(|n| matches!(n, 1..=56 | 97 | 98));
        n.map(Self).ok_or_else(|| codes::bad_code_value(path))
    }

    /// The numeric code (1 = 汉族).
    pub fn code(self) -> u8 {
        self.0
    }

    /// The two-digit wire form (`01`).
    pub fn as_string(self) -> String {
        format!("{:02}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lists() {
        assert_eq!(
            CorrectionType::parse("medical_parole", "/c"),
            Ok(CorrectionType::MedicalParole)
        );
        assert_eq!(
            CorrectionType::parse("HX", "/c").map_err(|v| v.code),
            Err("bad_code_value")
        );
        assert_eq!(Gender::parse("2", "/g"), Ok(Gender::Female));
        assert!(Gender::parse("3", "/g").is_err());
        assert_eq!(
            Ethnicity::parse("05", "/e").map(Ethnicity::as_string),
            Ok("05".to_owned())
        );
        for bad in ["00", "57", "96", "99", "5", "005", "+5"] {
            assert!(Ethnicity::parse(bad, "/e").is_err(), "{bad}");
        }
    }
}
