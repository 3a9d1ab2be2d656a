//! Native dialects ⇄ the canonical JSON document, driven by `mappings/`.
//!
//! Every partner system speaks its own dialect (court pinyin-tag XML, the
//! procuratorate's namespaced XML, police JSON, prison GB18030 XML); the
//! corrections platform speaks the canonical document itself. This module
//! decodes a native document into one canonical `serde_json::Value` and
//! encodes a canonical document into a recipient's dialect. What a dialect
//! looks like is data (`mappings/<dialect>.toml`, format documented in
//! [`mapping`] and at the top of `mappings/court.toml`); this code is the
//! engine.
//!
//! Layout: [`charset`] (which encodings, strict conversions) → [`xml`] /
//! [`json`] (safe parsing and writing; a JSON dialect is bridged to the same
//! element tree as XML, so one engine serves both) → [`mapping`] (the files, compiled at
//! start-up) → [`engine`] (rules applied both ways) → this file (dispatch).
//!
//! Owns: syntax, charset and shape of native documents. Must never: expand
//! entities or follow a DOCTYPE, replace an unencodable character with `?`,
//! put a field's value into a violation, or judge content that validation
//! judges (ID check digits, 案号 syntax and bracket normalisation, dates
//! against the ID number): a decoder keeps text exactly as sent.
//!
//! Violation codes produced here: `malformed_xml`, `malformed_json`,
//! `doctype_forbidden`, `document_too_large`, `unsupported_encoding`,
//! `invalid_encoding`, `encoding_mismatch`, `unexpected_root_element`,
//! `unknown_message_type`, `missing_field`, `duplicate_field`,
//! `bad_code_value`, `invalid_date`, `invalid_datetime`, `invalid_number`,
//! `wrong_type`, `conflicting_fields`, `unsupported_value`,
//! `unrepresentable_character`,
//! `dialect_not_configured`.

mod charset;
mod engine;
mod json;
pub mod mapping;
mod xml;

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

pub use mapping::FormatSetupError;
use mapping::{DialectMapping, Syntax};

use crate::violation::{Violation, Violations};

/// A partner system's document dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// 法院
    Court,
    /// 检察院
    Procuratorate,
    /// 公安
    Police,
    /// 监狱
    Prison,
    /// 社区矫正 (the canonical document itself)
    Corrections,
}

impl Dialect {
    pub const ALL: [Dialect; 5] = [
        Dialect::Court,
        Dialect::Procuratorate,
        Dialect::Police,
        Dialect::Prison,
        Dialect::Corrections,
    ];

    /// Also the stem of the dialect's mapping file.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Court => "court",
            Dialect::Procuratorate => "procuratorate",
            Dialect::Police => "police",
            Dialect::Prison => "prison",
            Dialect::Corrections => "corrections",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every configured dialect, compiled once at start-up; immutable afterwards
/// (so `Send + Sync` and shareable behind an `Arc`).
#[derive(Debug)]
pub struct Formats {
    dialects: HashMap<Dialect, DialectMapping>,
    /// Agency id → display name, for native fields that show an agency's
    /// name next to its code (from the agency registry; empty by default).
    agency_names: HashMap<String, String>,
}

impl Formats {
    /// Loads `mappings_dir/<dialect>.toml` for every dialect that has a file,
    /// plus the shared code tables in `mappings_dir/codes/`. A dialect
    /// without a file is simply not configured; a file with a mistake fails
    /// start-up.
    pub fn load(mappings_dir: &Path) -> Result<Self, FormatSetupError> {
        let shared = mapping::load_shared_codes(mappings_dir)?;
        let mut dialects = HashMap::new();
        for dialect in Dialect::ALL {
            let path = mappings_dir.join(format!("{}.toml", dialect.as_str()));
            if path.is_file() {
                dialects.insert(dialect, mapping::load_dialect(&path, &shared)?);
            }
        }
        Ok(Self {
            dialects,
            agency_names: HashMap::new(),
        })
    }

    /// Gives the encoder the agencies' display names (agency id → name,
    /// normally every entry of the agency registry). Dialects that write a
    /// name next to an agency code (`type = "agency_name"` rules) then write
    /// it; without a name they leave it out. Decoding never reads names.
    pub fn with_agency_names<I, K, V>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.agency_names
            .extend(names.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Decodes a native document into the canonical JSON document.
    /// `charset`: the `charset=` parameter of the Content-Type, if any.
    pub fn decode(
        &self,
        dialect: Dialect,
        bytes: &[u8],
        charset: Option<&str>,
    ) -> Result<Value, Violations> {
        let m = self.mapping(dialect)?;
        match m.syntax {
            Syntax::Xml => engine::decode(m, &xml::parse(bytes, charset)?),
            Syntax::Json => engine::decode(m, &json::to_tree(&json::parse(bytes, charset)?)?),
            Syntax::Canonical => {
                let doc = json::parse(bytes, charset)?;
                check_canonical(m, &doc)?;
                Ok(doc)
            }
        }
    }

    /// Encodes a canonical document into the dialect's bytes, in the
    /// dialect's charset.
    pub fn encode(&self, dialect: Dialect, doc: &Value) -> Result<Vec<u8>, Violations> {
        let m = self.mapping(dialect)?;
        match m.syntax {
            Syntax::Json => {
                let root = engine::encode(m, doc, &self.agency_names)?;
                serde_json::to_vec(&json::from_tree(&root)).map_err(|_| {
                    vec![Violation::new(
                        "wrong_type",
                        "",
                        "无法序列化",
                        "cannot be serialised",
                    )]
                })
            }
            Syntax::Xml => {
                let root = engine::encode(m, doc, &self.agency_names)?;
                let comment = doc
                    .get("message_type")
                    .and_then(Value::as_str)
                    .and_then(|t| m.comments.get(t))
                    .map(String::as_str);
                let text = xml::write(&root, &m.charset_label, comment);
                // Every field was checked against the charset by name; markup
                // is ASCII or from the mapping file, so this cannot fail in
                // practice, and still must not substitute if it does.
                charset::encode(text, m.encoding).ok_or_else(|| {
                    vec![Violation::new(
                        "unrepresentable_character",
                        "",
                        "文档含有目标字符集无法表示的字符",
                        "the document contains a character the target charset cannot represent",
                    )]
                })
            }
            // Compact: the bytes are what gets signed and stored, and JCS
            // canonicalisation (xlog) does not depend on whitespace.
            Syntax::Canonical => {
                check_canonical(m, doc)?;
                serde_json::to_vec(doc).map_err(|_| {
                    vec![Violation::new(
                        "wrong_type",
                        "",
                        "无法序列化",
                        "cannot be serialised",
                    )]
                })
            }
        }
    }

    /// Whether `dialect` is configured and carries `message_type`.
    pub fn supports(&self, dialect: Dialect, message_type: &str) -> bool {
        self.dialects
            .get(&dialect)
            .is_some_and(|m| m.supports(message_type))
    }

    /// Content-Type to use when sending this dialect.
    pub fn content_type(&self, dialect: Dialect) -> String {
        match self.dialects.get(&dialect) {
            Some(m) if m.syntax == Syntax::Xml => format!(
                "application/xml; charset={}",
                charset::mime_name(m.encoding)
            ),
            // RFC 8259 JSON has no charset parameter: it is always UTF-8.
            _ => "application/json".to_owned(),
        }
    }

    fn mapping(&self, dialect: Dialect) -> Result<&DialectMapping, Violations> {
        self.dialects.get(&dialect).ok_or_else(|| {
            vec![Violation::new(
                "dialect_not_configured",
                "",
                format!("网关未配置 {dialect} 格式"),
                format!("the gateway has no mapping for the {dialect} dialect"),
            )]
        })
    }
}

/// The corrections dialect is the canonical document: only its envelope's
/// message type is checked here; the schema and rules are `validate`'s.
fn check_canonical(m: &DialectMapping, doc: &Value) -> Result<(), Violations> {
    let one = |code, zh: &str, en: &str| Err(vec![Violation::new(code, "/message_type", zh, en)]);
    match doc.get("message_type") {
        _ if !doc.is_object() => Err(vec![Violation::new(
            "wrong_type",
            "",
            "文档应为 JSON 对象",
            "the document must be a JSON object",
        )]),
        None | Some(Value::Null) => one(
            "missing_field",
            "缺少必填字段",
            "a required field is missing",
        ),
        Some(Value::String(t)) if m.supports(t) => Ok(()),
        Some(Value::String(_)) => one(
            "unknown_message_type",
            "未知或不支持的文书类型",
            "unknown or unsupported message type",
        ),
        Some(_) => one(
            "wrong_type",
            "字段类型错误",
            "the field has the wrong JSON type",
        ),
    }
}

#[cfg(test)]
mod tests;
