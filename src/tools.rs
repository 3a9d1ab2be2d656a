//! Integrator and clerk tools behind the command line: `translate`,
//! `validate` and `due`. Each uses the same engines as the gateway itself
//! (formats, validator, calendar), so an answer here is the gateway's answer.

use std::path::Path;

use anyhow::Context;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use crate::config::Settings;
use crate::formats::{Dialect, Formats};
use crate::registry::Registry;
use crate::timefmt::{self, BEIJING};
use crate::validate::Validator;
use crate::violation::Violations;
use crate::workflow::calendar::Calendar;
use crate::workflow::period::{self, Period};

/// The engines the tools need, loaded from the resources directory.
pub struct Engines {
    pub formats: Formats,
    pub validator: Validator,
}

impl Engines {
    pub fn load(settings: &Settings) -> anyhow::Result<Engines> {
        // Agency names for the native formats: the gateway's registry when the
        // data directory has one, else the demo registry.
        let registry_file = Some(settings.registry.clone())
            .filter(|p| p.exists())
            .unwrap_or_else(|| settings.rules_dir().join("agencies.demo.toml"));
        let registry = Registry::load(&registry_file)?;
        let formats = Formats::load(&settings.mappings_dir())
            .map_err(|e| anyhow::anyhow!("loading mappings: {e}"))?
            .with_agency_names(registry.names());
        let validator = Validator::load(&settings.schemas_dir())
            .map_err(|e| anyhow::anyhow!("loading schemas: {e}"))?;
        Ok(Engines { formats, validator })
    }

    /// Decodes and validates a native document: the canonical JSON, or every problem.
    pub fn check(&self, dialect: Dialect, bytes: &[u8]) -> Result<serde_json::Value, Violations> {
        let canonical = self.formats.decode(dialect, bytes, None)?;
        let doc = self.validator.validate(&canonical)?;
        Ok(doc.to_json())
    }

    /// Native document in one dialect → the same document in another.
    pub fn translate(
        &self,
        from: Dialect,
        to: Dialect,
        bytes: &[u8],
    ) -> Result<Vec<u8>, Violations> {
        let canonical = self.check(from, bytes)?;
        self.formats.encode(to, &canonical)
    }
}

/// Which dialect a file is in, by its shape: the XML root element (and
/// namespace) or the JSON keys. `None` when it looks like none of them.
pub fn detect_dialect(bytes: &[u8]) -> Option<Dialect> {
    // The prolog and root are ASCII in every dialect but prison's, whose
    // root 交换文书 is GB18030; decode leniently just to look.
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes[..bytes.len().min(4096)]);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with('{') {
        return if text.contains("\"msgType\"") {
            Some(Dialect::Police)
        } else if text.contains("\"message_type\"") {
            Some(Dialect::Corrections)
        } else {
            None
        };
    }
    if text.contains("<FYJHWS") {
        Some(Dialect::Court)
    } else if text.contains("urn:procuratorate:exchange:1") {
        Some(Dialect::Procuratorate)
    } else if text.contains("<交换文书") {
        Some(Dialect::Prison)
    } else {
        None
    }
}

pub fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// One problem per line: `code  path  zh / en`.
pub fn render_problems(problems: &Violations) -> String {
    problems
        .iter()
        .map(|p| {
            let path = if p.path.is_empty() {
                "/"
            } else {
                p.path.as_str()
            };
            format!(
                "{:<28} {:<32} {} / {}\n",
                p.code, path, p.message.zh, p.message.en
            )
        })
        .collect()
}

/// Parses the start of a period for `due`: RFC 3339, or a Beijing local
/// `YYYY-MM-DDTHH:MM[:SS]`, or a date `YYYY-MM-DD` (its start, Beijing time).
pub fn parse_from(text: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let local = [
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ];
    for format in local {
        if let Ok(at) = PrimitiveDateTime::parse(text, format) {
            return Ok(at.assume_offset(BEIJING));
        }
    }
    if let Ok(date) = Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        return Ok(date.with_time(Time::MIDNIGHT).assume_offset(BEIJING));
    }
    anyhow::bail!(
        "cannot read {text:?} as a time: use RFC 3339 (2024-09-27T16:40:00+08:00), Beijing local time \
         (2024-09-27T16:40) or a date (2024-09-27) / 无法识别的时间格式"
    )
}

/// The due instant of `period` counted from `from`, in Beijing time.
pub fn due(calendar: &Calendar, period: &str, from: &str) -> anyhow::Result<String> {
    let period: Period = period.parse().map_err(|e: period::PeriodParseError| {
        let m = e.message();
        anyhow::anyhow!("{} / {}", m.zh, m.en)
    })?;
    let from = parse_from(from)?;
    let at = period::due(calendar, period, from).map_err(|e| {
        let m = e.message();
        anyhow::anyhow!("{} / {}", m.zh, m.en)
    })?;
    Ok(timefmt::beijing(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_are_recognised_by_shape() {
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/native");
        assert_eq!(
            detect_dialect(&read(&samples.join("court/handover.notice.xml")).unwrap()),
            Some(Dialect::Court)
        );
        assert_eq!(
            detect_dialect(
                &read(&samples.join("prison/handover.notice.medical_parole.xml")).unwrap()
            ),
            Some(Dialect::Prison)
        );
        assert_eq!(
            detect_dialect(&read(&samples.join("procuratorate/assessment.request.xml")).unwrap()),
            Some(Dialect::Procuratorate)
        );
        assert_eq!(
            detect_dialect(b"{\"msgType\": \"JZ_SJZX_HZ\"}"),
            Some(Dialect::Police)
        );
        assert_eq!(
            detect_dialect(b"  {\"message_type\": \"handover.notice\"}"),
            Some(Dialect::Corrections)
        );
        assert_eq!(detect_dialect(b"<html/>"), None);
    }

    #[test]
    fn start_times_in_every_accepted_form() {
        let expected = time::macros::datetime!(2024-09-27 16:40 +8);
        for text in [
            "2024-09-27T16:40:00+08:00",
            "2024-09-27T08:40:00Z",
            "2024-09-27T16:40",
            "2024-09-27 16:40",
        ] {
            assert_eq!(parse_from(text).unwrap(), expected, "{text}");
        }
        assert_eq!(
            parse_from("2024-09-27").unwrap(),
            time::macros::datetime!(2024-09-27 0:00 +8)
        );
        assert!(parse_from("27/09/2024").is_err());
    }
}
