//! `AgencyId` — 机关标识: who sends and receives a document.
//!
//! Format `{kind}.{division}` with an optional `.{n}` when one division has
//! several agencies of a kind (`prison.620000.3`, a provincial prison). This
//! module owns only the *shape* of an id; whether the agency exists is the
//! registry's business, never decided here.

use std::fmt;

use crate::model::codes;
use crate::model::division::DivisionCode;
use crate::violation::{Violation, Violations};

/// The kind of a partner agency (政法机关 plus the corrections agency itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgencyKind {
    /// 人民法院
    Court,
    /// 人民检察院
    Procuratorate,
    /// 公安机关 (incl. 看守所)
    Police,
    /// 监狱
    Prison,
    /// 监狱管理局
    PrisonAdmin,
    /// 社区矫正机构
    Corrections,
}

impl AgencyKind {
    pub const ALL: [AgencyKind; 6] = [
        Self::Court,
        Self::Procuratorate,
        Self::Police,
        Self::Prison,
        Self::PrisonAdmin,
        Self::Corrections,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Court => "court",
            Self::Procuratorate => "procuratorate",
            Self::Police => "police",
            Self::Prison => "prison",
            Self::PrisonAdmin => "prison_admin",
            Self::Corrections => "corrections",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for AgencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A well-formed agency id. Holds its kind and division already parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgencyId {
    id: String,
    kind: AgencyKind,
    division: DivisionCode,
}

impl AgencyId {
    /// Parses `{kind}.{division}[.{n}]`, reporting `invalid_agency_id` for the
    /// shape or kind and `invalid_division_code` for the division, both at `path`.
    pub fn parse(s: &str, path: &str) -> Result<Self, Violations> {
        let mut parts = s.split('.');
        let (kind, division, suffix, extra) =
            (parts.next(), parts.next(), parts.next(), parts.next());
        // `n` distinguishes agencies of one kind in one division: 1, 2, … (no leading zero).
        let suffix_ok = suffix.is_none_or(|n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0')
        });
        let kind = kind.and_then(AgencyKind::from_code);
        let mut errs = Violations::new();
        if kind.is_none() || division.is_none() || !suffix_ok || extra.is_some() {
            let f = codes::field_name(path);
            errs.push(Violation::new(
                codes::INVALID_AGENCY_ID,
                path,
                format!(
                    "字段“{f}”不是有效的机关标识（机关类型.行政区划代码[.序号]，类型为 court、procuratorate、police、prison、prison_admin、corrections 之一）"
                ),
                format!(
                    "field `{f}` is not a valid agency id ({{kind}}.{{division}}[.{{n}}], kind one of court, procuratorate, police, prison, prison_admin, corrections)"
                ),
            ));
        }
        let division =
            division.and_then(|d| crate::model::division::parse_into(d, path, &mut errs));
        match (kind, division) {
            (Some(kind), Some(division)) if errs.is_empty() => Ok(Self {
                id: s.to_owned(),
                kind,
                division,
            }),
            _ => Err(errs),
        }
    }

    pub fn kind(&self) -> AgencyKind {
        self.kind
    }

    pub fn division(&self) -> &DivisionCode {
        &self.division
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids() {
        let a = AgencyId::parse("prison.620000.3", "/sender").expect("valid");
        assert_eq!(a.kind(), AgencyKind::Prison);
        assert_eq!(a.division().as_str(), "620000");
        assert_eq!(a.as_str(), "prison.620000.3");
        let c = AgencyId::parse("prison_admin.620000", "/sender").expect("valid");
        assert_eq!(c.kind().as_str(), "prison_admin");
    }

    #[test]
    fn rejects_with_codes() {
        let e = AgencyId::parse("school.620102", "/sender").expect_err("bad kind");
        assert_eq!(
            e.iter().map(|v| v.code).collect::<Vec<_>>(),
            [codes::INVALID_AGENCY_ID]
        );
        let e = AgencyId::parse("court.990102", "/recipients/0").expect_err("bad division");
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].code, e[0].path.as_str()),
            (codes::INVALID_DIVISION_CODE, "/recipients/0")
        );
        for bad in [
            "court",
            "court.620102.0",
            "court.620102.01",
            "court.620102.1.2",
            "court.620102.",
        ] {
            assert!(AgencyId::parse(bad, "/x").is_err(), "{bad}");
        }
    }
}
