//! The declarative mapping files in `mappings/`, read once at start-up and
//! compiled into rules the engine applies.
//!
//! Layout of `mappings/`:
//! - `<dialect>.toml` for each configured dialect (`court.toml`,
//!   `corrections.toml`, …; a dialect without a file is not configured);
//! - `codes/<name>.toml`: code tables shared by several dialects, one flat
//!   `native = "canonical"` table per file (the file stem is its name).
//!
//! The format of a dialect file is documented at the top of
//! `mappings/court.toml`. In short: `[dialect]` (syntax `xml` | `json` |
//! `canonical`, charset, root, date/time forms incl. `epoch_ms`, where the
//! message type code is), `[codes.*]` code tables,
//! `[groups.*]` shared rule blocks, and `[messages."<type>"]` with the ordered
//! list of field rules for each message type.
//!
//! Owns: the file format, and every check that can be made before the first
//! document arrives (unknown code table, non-bijective code table, bad date
//! format, unreachable message type, bad path). Must never: touch a document,
//! or let a mistake in a mapping file surface as a partner's violation.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use encoding_rs::Encoding;
use serde::Deserialize;
use time::format_description::OwnedFormatItem;
use time::UtcOffset;

use super::charset;

/// Start-up failure: a mapping file is missing, unreadable or inconsistent.
/// Always the maintainer's mistake, never a partner's.
#[derive(Debug, thiserror::Error)]
pub enum FormatSetupError {
    #[error("cannot read mapping file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mapping file {path} is not valid TOML for its format: {source}")]
    Toml {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("mapping file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

// ---------------------------------------------------------------- file shape

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DialectFile {
    dialect: DialectSection,
    #[serde(default)]
    codes: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    groups: BTreeMap<String, GroupSection>,
    #[serde(default)]
    messages: BTreeMap<String, GroupSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DialectSection {
    syntax: Syntax,
    charset: String,
    #[serde(default)]
    root: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    root_attributes: BTreeMap<String, String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    date_format: Option<String>,
    #[serde(default)]
    datetime_format: Option<String>,
    #[serde(default)]
    message_type: Option<RuleSpec>,
    /// Canonical syntax only: the message types the dialect carries.
    #[serde(default)]
    message_types: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSection {
    fields: Vec<RuleSpec>,
    /// Messages only: an XML comment written after the prolog on encode
    /// (partners' own documents carry one; decoding ignores comments).
    #[serde(default)]
    comment: Option<String>,
}

/// `select = { native = PATH, value = V }` on a repeated rule: only the
/// native items whose PATH reads V belong to this rule; encoding writes V.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectSpec {
    native: String,
    value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    #[serde(default)]
    native: String,
    #[serde(default)]
    canonical: String,
    #[serde(default)]
    required: bool,
    #[serde(default, rename = "type")]
    kind: KindSpec,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    codes: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    repeated: bool,
    #[serde(default)]
    fixed: Option<String>,
    #[serde(default)]
    select: Option<SelectSpec>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindSpec {
    #[default]
    String,
    Integer,
    Date,
    Datetime,
    Boolean,
    AgencyName,
}

/// How a dialect's documents are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Syntax {
    /// XML navigated by element paths.
    Xml,
    /// A JSON object navigated by JSON-pointer paths (`/person/xm`).
    Json,
    /// The canonical JSON document itself (the corrections platform).
    Canonical,
}

// ------------------------------------------------------------ compiled form

/// One dialect, compiled.
#[derive(Debug)]
pub(crate) struct DialectMapping {
    pub syntax: Syntax,
    pub encoding: &'static Encoding,
    /// The charset label as the mapping file spells it: written in the XML
    /// prolog, so our output declares it the way the partner does.
    pub charset_label: String,
    pub root: String,
    pub namespace: Option<String>,
    pub root_attributes: Vec<(String, String)>,
    /// Where the message type code is and how it reads; `None` for canonical.
    pub message_type: Option<ScalarRule>,
    /// Ordered rules per canonical message type (empty for canonical syntax).
    pub messages: HashMap<String, Vec<Rule>>,
    /// Comment written after the prolog, per message type (XML only).
    pub comments: HashMap<String, String>,
}

impl DialectMapping {
    pub fn supports(&self, message_type: &str) -> bool {
        self.messages.contains_key(message_type)
    }
}

#[derive(Debug)]
pub(crate) enum Rule {
    Scalar(ScalarRule),
    Repeated(RepeatedRule),
    Fixed(FixedRule),
}

/// A canonical value the dialect implies and never writes (every prison
/// handover is 暂予监外执行): set on decode, checked on encode.
#[derive(Debug)]
pub(crate) struct FixedRule {
    pub canonical: Pointer,
    pub value: String,
}

/// One native value ↔ one canonical value.
#[derive(Debug)]
pub(crate) struct ScalarRule {
    pub native: NativePath,
    pub canonical: Pointer,
    pub required: bool,
    pub kind: Kind,
    pub codes: Option<Arc<CodeTable>>,
}

/// A repeated native element ↔ a canonical array, each item by `items`.
#[derive(Debug)]
pub(crate) struct RepeatedRule {
    pub native: NativePath,
    pub canonical: Pointer,
    pub required: bool,
    pub items: Vec<Rule>,
    /// Only items whose `.0` reads `.1` (and encoding writes `.1` there).
    pub select: Option<(NativePath, String)>,
}

/// Element steps below the root, then optionally an attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NativePath {
    pub steps: Vec<String>,
    pub attribute: Option<String>,
}

impl NativePath {
    /// A JSON dialect's path: a JSON pointer (`/person/xm`), keys only.
    fn parse_json(text: &str) -> Result<Self, String> {
        Ok(NativePath {
            steps: Pointer::parse(text)?.0,
            attribute: None,
        })
    }

    fn parse(text: &str) -> Result<Self, String> {
        let mut path = NativePath::default();
        for part in text.split('/').filter(|p| !p.is_empty()) {
            if path.attribute.is_some() {
                return Err(format!(
                    "native path `{text}`: nothing may follow an attribute"
                ));
            }
            match part.strip_prefix('@') {
                Some(attr) if !attr.is_empty() => path.attribute = Some(attr.to_owned()),
                Some(_) => return Err(format!("native path `{text}`: empty attribute name")),
                None => path.steps.push(part.to_owned()),
            }
        }
        Ok(path)
    }

    fn join(&self, inner: &NativePath) -> Result<Self, String> {
        if self.attribute.is_some() && (!inner.steps.is_empty() || inner.attribute.is_some()) {
            return Err("a group cannot sit below an attribute".into());
        }
        let mut steps = self.steps.clone();
        steps.extend(inner.steps.iter().cloned());
        Ok(NativePath {
            steps,
            attribute: inner.attribute.clone().or_else(|| self.attribute.clone()),
        })
    }

    /// XPath-like rendering below `base` (`/FYJHWS` + `/ZF/SFZH`).
    pub fn display(&self, base: &str) -> String {
        let mut out = base.to_owned();
        for s in &self.steps {
            out.push('/');
            out.push_str(s);
        }
        if let Some(a) = &self.attribute {
            out.push_str("/@");
            out.push_str(a);
        }
        out
    }
}

/// A JSON pointer, pre-split into unescaped tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pointer(pub Vec<String>);

impl Pointer {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Pointer::default());
        }
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| format!("JSON pointer `{text}` must start with `/`"))?;
        Ok(Pointer(
            rest.split('/')
                .map(|t| t.replace("~1", "/").replace("~0", "~"))
                .collect(),
        ))
    }

    fn join(&self, inner: &Pointer) -> Pointer {
        Pointer(self.0.iter().chain(inner.0.iter()).cloned().collect())
    }

    pub fn display(&self, base: &str) -> String {
        let mut out = base.to_owned();
        for t in &self.0 {
            out.push('/');
            crate::model::codes::push_escaped_token(&mut out, t);
        }
        out
    }
}

/// What a value is, and its native written form.
#[derive(Debug)]
pub(crate) enum Kind {
    Text,
    Integer,
    /// The native form, and whether it is the canonical `YYYY-MM-DD` itself
    /// (then a well-formed date passes through as it is).
    Date(OwnedFormatItem, bool),
    DateTime(DateTimeForm),
    /// Canonical `true`/`false`; native `true`/`false` or via a code table.
    Boolean,
    /// The display name of the agency whose id is the canonical value:
    /// written on encode from the names given to `Formats`, never read
    /// (the id is the content; a name is a courtesy to human readers).
    AgencyName,
}

#[derive(Debug)]
pub(crate) enum DateTimeForm {
    Rfc3339,
    /// A local wall-clock form without offset, read in the dialect's zone.
    Local(OwnedFormatItem, UtcOffset),
    /// Milliseconds since the Unix epoch, shown in the dialect's zone.
    EpochMs(UtcOffset),
}

/// A one-to-one table between native codes and canonical values.
#[derive(Debug)]
pub(crate) struct CodeTable {
    pub name: String,
    to_canonical: HashMap<String, String>,
    to_native: HashMap<String, String>,
}

impl CodeTable {
    fn new(name: &str, entries: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut to_native = HashMap::new();
        for (native, canonical) in entries {
            if to_native
                .insert(canonical.clone(), native.clone())
                .is_some()
            {
                return Err(format!("code table `{name}` maps two native codes to `{canonical}`; it must be one-to-one"));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            to_canonical: entries
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            to_native,
        })
    }

    pub fn to_canonical(&self, native: &str) -> Option<&str> {
        self.to_canonical.get(native).map(String::as_str)
    }

    pub fn to_native(&self, canonical: &str) -> Option<&str> {
        self.to_native.get(canonical).map(String::as_str)
    }
}

// ------------------------------------------------------------------ loading

/// Reads `codes/*.toml` under `dir`: the tables shared between dialects.
pub(crate) fn load_shared_codes(
    dir: &Path,
) -> Result<HashMap<String, Arc<CodeTable>>, FormatSetupError> {
    let mut tables = HashMap::new();
    let codes_dir = dir.join("codes");
    if !codes_dir.is_dir() {
        return Ok(tables);
    }
    let entries = std::fs::read_dir(&codes_dir).map_err(|source| FormatSetupError::Io {
        path: codes_dir.clone(),
        source,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|source| FormatSetupError::Io {
                path: codes_dir.clone(),
                source,
            })?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path).map_err(|source| FormatSetupError::Io {
            path: path.clone(),
            source,
        })?;
        let entries: BTreeMap<String, String> =
            toml::from_str(&text).map_err(|source| FormatSetupError::Toml {
                path: path.clone(),
                source,
            })?;
        let table =
            CodeTable::new(&name, &entries).map_err(|message| FormatSetupError::Invalid {
                path: path.clone(),
                message,
            })?;
        tables.insert(name, Arc::new(table));
    }
    Ok(tables)
}

/// Reads and compiles one dialect file.
pub(crate) fn load_dialect(
    path: &Path,
    shared_codes: &HashMap<String, Arc<CodeTable>>,
) -> Result<DialectMapping, FormatSetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| FormatSetupError::Io {
        path: path.to_owned(),
        source,
    })?;
    let file: DialectFile = toml::from_str(&text).map_err(|source| FormatSetupError::Toml {
        path: path.to_owned(),
        source,
    })?;
    compile(file, shared_codes).map_err(|message| FormatSetupError::Invalid {
        path: path.to_owned(),
        message,
    })
}

struct Compiler<'a> {
    syntax: Syntax,
    codes: HashMap<String, Arc<CodeTable>>,
    groups: &'a BTreeMap<String, GroupSection>,
    date_format: Option<String>,
    datetime_format: Option<String>,
    timezone: UtcOffset,
}

/// Groups may include groups; this bounds a cycle in a mapping file.
const MAX_GROUP_NESTING: usize = 8;

fn compile(
    file: DialectFile,
    shared: &HashMap<String, Arc<CodeTable>>,
) -> Result<DialectMapping, String> {
    let d = file.dialect;
    let encoding = charset::resolve(&d.charset)
        .ok_or_else(|| format!("unsupported charset `{}`", d.charset))?;
    if d.syntax == Syntax::Canonical {
        if encoding != encoding_rs::UTF_8 {
            return Err("the canonical dialect is UTF-8 JSON".into());
        }
        let messages = d
            .message_types
            .iter()
            .map(|t| (t.clone(), Vec::new()))
            .collect();
        return Ok(DialectMapping {
            syntax: d.syntax,
            encoding,
            charset_label: d.charset.trim().to_owned(),
            root: String::new(),
            namespace: None,
            root_attributes: Vec::new(),
            message_type: None,
            messages,
            comments: HashMap::new(),
        });
    }
    let mut codes = shared.clone();
    for (name, entries) in &file.codes {
        if codes.contains_key(name) {
            return Err(format!(
                "code table `{name}` is defined both here and in mappings/codes/"
            ));
        }
        codes.insert(name.clone(), Arc::new(CodeTable::new(name, entries)?));
    }
    let timezone = match &d.timezone {
        Some(tz) => UtcOffset::parse(
            tz,
            time::macros::format_description!("[offset_hour]:[offset_minute]"),
        )
        .map_err(|e| format!("timezone `{tz}`: {e}"))?,
        None => UtcOffset::UTC,
    };
    if d.syntax == Syntax::Json && encoding != encoding_rs::UTF_8 {
        return Err("a json dialect is UTF-8 (RFC 8259 §8.1)".into());
    }
    let compiler = Compiler {
        syntax: d.syntax,
        codes,
        groups: &file.groups,
        date_format: d.date_format.clone(),
        datetime_format: d.datetime_format.clone(),
        timezone,
    };
    let root = match d.syntax {
        Syntax::Json => String::new(),
        _ => d.root.clone().ok_or("an xml dialect needs `root`")?,
    };
    let mt_spec = d
        .message_type
        .clone()
        .ok_or("a dialect needs `message_type`")?;
    let mt_codes = mt_spec
        .codes
        .as_deref()
        .ok_or("`message_type` needs a code table")?;
    let mt_table = compiler.table(mt_codes)?;
    let message_type = ScalarRule {
        native: compiler.path(&mt_spec.native)?,
        canonical: Pointer(vec!["message_type".into()]),
        required: true,
        kind: Kind::Text,
        codes: Some(mt_table.clone()),
    };
    let mut messages = HashMap::new();
    let mut comments = HashMap::new();
    for (name, section) in &file.messages {
        if let Some(comment) = &section.comment {
            if comment.contains("--") || comment.ends_with('-') || d.syntax != Syntax::Xml {
                return Err(format!(
                    "message `{name}`: a comment is XML only and may not contain `--`"
                ));
            }
            comments.insert(name.clone(), comment.clone());
        }
        if mt_table.to_native(name).is_none() {
            return Err(format!(
                "message `{name}` has rules but no code in table `{mt_codes}`"
            ));
        }
        let rules = compiler
            .rules(
                &section.fields,
                &NativePath::default(),
                &Pointer::default(),
                0,
            )
            .map_err(|e| format!("message `{name}`: {e}"))?;
        messages.insert(name.clone(), rules);
    }
    Ok(DialectMapping {
        syntax: d.syntax,
        encoding,
        charset_label: d.charset.trim().to_owned(),
        root,
        namespace: d.namespace,
        root_attributes: d.root_attributes.into_iter().collect(),
        message_type: Some(message_type),
        messages,
        comments,
    })
}

impl Compiler<'_> {
    fn path(&self, text: &str) -> Result<NativePath, String> {
        match self.syntax {
            Syntax::Json if !text.is_empty() => NativePath::parse_json(text),
            _ => NativePath::parse(text),
        }
    }

    fn table(&self, name: &str) -> Result<Arc<CodeTable>, String> {
        self.codes
            .get(name)
            .cloned()
            .ok_or_else(|| format!("unknown code table `{name}`"))
    }

    fn rules(
        &self,
        specs: &[RuleSpec],
        native: &NativePath,
        canonical: &Pointer,
        depth: usize,
    ) -> Result<Vec<Rule>, String> {
        if depth > MAX_GROUP_NESTING {
            return Err("groups nest too deeply (a group includes itself?)".into());
        }
        let mut out = Vec::new();
        for spec in specs {
            let n = native.join(&self.path(&spec.native)?)?;
            let c = canonical.join(&Pointer::parse(&spec.canonical)?);
            if spec.select.is_some() && !(spec.repeated && spec.group.is_some()) {
                return Err(format!("`{}`: select needs a repeated group", spec.native));
            }
            if let Some(value) = &spec.fixed {
                if !spec.native.is_empty() || spec.group.is_some() || spec.codes.is_some() {
                    return Err(format!(
                        "fixed rule for `{}` takes only `canonical`",
                        spec.canonical
                    ));
                }
                out.push(Rule::Fixed(FixedRule {
                    canonical: c,
                    value: value.clone(),
                }));
                continue;
            }
            match &spec.group {
                Some(group) => {
                    let section = self
                        .groups
                        .get(group)
                        .ok_or_else(|| format!("unknown group `{group}`"))?;
                    if spec.repeated {
                        if n.attribute.is_some() || n.steps.is_empty() {
                            return Err(format!("repeated group `{group}` needs an element path"));
                        }
                        let items = self.rules(
                            &section.fields,
                            &NativePath::default(),
                            &Pointer::default(),
                            depth + 1,
                        )?;
                        let select = match &spec.select {
                            Some(s) => Some((self.path(&s.native)?, s.value.clone())),
                            None => None,
                        };
                        out.push(Rule::Repeated(RepeatedRule {
                            native: n,
                            canonical: c,
                            required: spec.required,
                            items,
                            select,
                        }));
                    } else {
                        // A plain group is only a shared prefix: flatten it now so
                        // the engine sees scalars and repeated lists only.
                        out.extend(self.rules(&section.fields, &n, &c, depth + 1)?);
                    }
                }
                None => {
                    if spec.repeated {
                        return Err(format!("`{}`: repeated needs a group", spec.native));
                    }
                    let codes = spec.codes.as_deref().map(|t| self.table(t)).transpose()?;
                    out.push(Rule::Scalar(ScalarRule {
                        native: n,
                        canonical: c,
                        required: spec.required,
                        kind: self.kind(spec)?,
                        codes,
                    }));
                }
            }
        }
        Ok(out)
    }

    fn kind(&self, spec: &RuleSpec) -> Result<Kind, String> {
        let describe = |form: &str| {
            time::format_description::parse_owned::<2>(form)
                .map_err(|e| format!("format `{form}`: {e}"))
        };
        Ok(match spec.kind {
            KindSpec::String => Kind::Text,
            KindSpec::Integer => Kind::Integer,
            KindSpec::Boolean => Kind::Boolean,
            KindSpec::AgencyName => Kind::AgencyName,
            KindSpec::Date => {
                let form = spec
                    .format
                    .as_ref()
                    .or(self.date_format.as_ref())
                    .ok_or("a date rule needs a date_format")?;
                Kind::Date(describe(form)?, form == "[year]-[month]-[day]")
            }
            KindSpec::Datetime => {
                let form = spec
                    .format
                    .as_ref()
                    .or(self.datetime_format.as_ref())
                    .ok_or("a datetime rule needs a datetime_format")?;
                if form == "rfc3339" {
                    Kind::DateTime(DateTimeForm::Rfc3339)
                } else if form == "epoch_ms" {
                    Kind::DateTime(DateTimeForm::EpochMs(self.timezone))
                } else {
                    Kind::DateTime(DateTimeForm::Local(describe(form)?, self.timezone))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_pointers_parse_and_render() {
        let p = NativePath::parse("XF/JZQX/@QSRQ").unwrap_or_default();
        assert_eq!(p.display("/FYJHWS"), "/FYJHWS/XF/JZQX/@QSRQ");
        assert!(NativePath::parse("@A/B").is_err());
        let q = Pointer::parse("/body/a~1b").unwrap_or_default();
        assert_eq!(q.0, ["body", "a/b"]);
        assert_eq!(q.display(""), "/body/a~1b");
        assert!(Pointer::parse("body").is_err());
    }

    #[test]
    fn code_tables_must_be_one_to_one() {
        let entries: BTreeMap<String, String> =
            [("A".into(), "x".into()), ("B".into(), "x".into())].into();
        assert!(CodeTable::new("t", &entries).is_err());
    }

    #[test]
    fn mapping_mistakes_fail_at_start_up() {
        let bad = r#"
            [dialect]
            syntax = "xml"
            charset = "UTF-8"
            root = "R"
            message_type = { native = "T", codes = "mt" }
            [codes.mt]
            X = "handover.notice"
            [messages."handover.notice"]
            fields = [ { native = "A", canonical = "/a", codes = "missing" } ]
        "#;
        let file: Result<DialectFile, _> = toml::from_str(bad);
        let err = file
            .map_err(|e| e.to_string())
            .and_then(|f| compile(f, &HashMap::new()).map(|_| ()));
        assert!(
            matches!(err, Err(ref m) if m.contains("unknown code table")),
            "{err:?}"
        );
    }
}
