//! `DivisionCode` — 行政区划代码 (GB/T 2260): the six digits that say where an
//! agency sits, where a person lives, and which court a 案号 belongs to.
//!
//! Owns the table of provincial-level divisions (code, abbreviation), used
//! both here and by [`super::case_no`]. It must never accept a code whose
//! first two digits are not a real province: routing by division (执行地)
//! would otherwise send a document nowhere.

use std::fmt;

use crate::model::codes;
use crate::violation::{Violation, Violations};

/// The 34 provincial-level divisions of GB/T 2260 with the one-character
/// abbreviation that courts put first in a 案号's 法院代字 (最高人民法院《关于
/// 人民法院案件案号的若干规定》). Where courts use a form other than the common
/// 简称 (内 for Inner Mongolia, 云 for Yunnan), the common one is accepted too,
/// see [`ABBREVIATION_ALIASES`].
pub const PROVINCES: [(&str, char); 34] = [
    ("11", '京'),
    ("12", '津'),
    ("13", '冀'),
    ("14", '晋'),
    ("15", '内'),
    ("21", '辽'),
    ("22", '吉'),
    ("23", '黑'),
    ("31", '沪'),
    ("32", '苏'),
    ("33", '浙'),
    ("34", '皖'),
    ("35", '闽'),
    ("36", '赣'),
    ("37", '鲁'),
    ("41", '豫'),
    ("42", '鄂'),
    ("43", '湘'),
    ("44", '粤'),
    ("45", '桂'),
    ("46", '琼'),
    ("50", '渝'),
    ("51", '川'),
    ("52", '黔'),
    ("53", '云'),
    ("54", '藏'),
    ("61", '陕'),
    ("62", '甘'),
    ("63", '青'),
    ("64", '宁'),
    ("65", '新'),
    ("71", '台'),
    ("81", '港'),
    ("82", '澳'),
];

/// Other abbreviations of the same provinces (通用简称), accepted when parsing
/// because rejecting a legal document over a variant character would lose it.
pub const ABBREVIATION_ALIASES: [(&str, char); 3] = [("15", '蒙'), ("52", '贵'), ("53", '滇')];

/// The abbreviation of a two-digit province code, if it is one.
pub fn province_abbreviation(province_code: &str) -> Option<char> {
    PROVINCES
        .iter()
        .find(|(c, _)| *c == province_code)
        .map(|(_, a)| *a)
}

/// The two-digit province code of an abbreviation, if it is one.
pub fn province_of_abbreviation(abbreviation: char) -> Option<&'static str> {
    PROVINCES
        .iter()
        .find(|(_, a)| *a == abbreviation)
        .map(|(c, _)| *c)
}

/// A GB/T 2260 administrative division code: six ASCII digits whose first two
/// are a real province (`62` 甘肃), the next two a prefecture (`6201` 兰州),
/// the last two a county (`620102` 城关区). `00` pairs mean "the level above".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DivisionCode(String);

impl DivisionCode {
    /// Parses a division code; the only possible problem is `invalid_division_code` at `path`.
    pub fn parse(s: &str, path: &str) -> Result<Self, Violation> {
        let shape_ok = s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit());
        if shape_ok && province_abbreviation(&s[..2]).is_some() {
            Ok(Self(s.to_owned()))
        } else {
            let f = codes::field_name(path);
            Err(Violation::new(
                codes::INVALID_DIVISION_CODE,
                path,
                format!("字段“{f}”不是有效的行政区划代码（GB/T 2260，6 位数字，前两位为省级代码）"),
                format!(
                    "field `{f}` is not a valid GB/T 2260 division code (6 digits, the first two a province)"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The two-digit province code (`62`).
    pub fn province(&self) -> &str {
        &self.0[..2]
    }

    /// The province's one-character abbreviation (`甘`).
    pub fn province_abbreviation(&self) -> char {
        // The parser only accepts codes whose province is in the table.
        province_abbreviation(self.province()).unwrap_or('?')
    }

    /// The four-digit prefecture code (`6201`).
    pub fn prefecture(&self) -> &str {
        &self.0[..4]
    }

    /// `620000`: a whole province (e.g. a provincial prison administration).
    pub fn is_province_level(&self) -> bool {
        &self.0[2..] == "0000"
    }

    /// `620100`: a prefecture-level city.
    pub fn is_prefecture_level(&self) -> bool {
        !self.is_province_level() && &self.0[4..] == "00"
    }

    /// `620102`: a county-level division (district, county, county-level city).
    pub fn is_county_level(&self) -> bool {
        &self.0[4..] != "00"
    }

    /// Whether `self` lies within `other` (same code, or `other` is its prefecture or province).
    pub fn is_within(&self, other: &DivisionCode) -> bool {
        if other.is_province_level() {
            self.province() == other.province()
        } else if other.is_prefecture_level() {
            self.prefecture() == other.prefecture()
        } else {
            self == other
        }
    }
}

impl fmt::Display for DivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Convenience for callers that collect several problems.
pub(crate) fn parse_into(s: &str, path: &str, errs: &mut Violations) -> Option<DivisionCode> {
    DivisionCode::parse(s, path).map_err(|v| errs.push(v)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_province() {
        let d = DivisionCode::parse("620102", "/x").expect("valid");
        assert_eq!(d.province(), "62");
        assert_eq!(d.province_abbreviation(), '甘');
        assert!(d.is_county_level());
        let p = DivisionCode::parse("620000", "/x").expect("valid");
        assert!(p.is_province_level() && !p.is_county_level());
        assert!(d.is_within(&p));
        assert!(DivisionCode::parse("620100", "/x")
            .expect("valid")
            .is_prefecture_level());
    }

    #[test]
    fn rejects_bad_codes() {
        for bad in ["990102", "62010", "6201020", "62a102", "", "１２３４５６"] {
            let v = DivisionCode::parse(bad, "/subject/residence/division").expect_err(bad);
            assert_eq!(v.code, codes::INVALID_DIVISION_CODE);
            assert_eq!(v.path, "/subject/residence/division");
        }
    }
}
