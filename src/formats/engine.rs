//! Applies compiled mapping rules: native element tree ⇄ canonical JSON.
//!
//! Owns: walking the rules in order, reading and writing native paths and
//! canonical pointers, the value conversions (code tables, dates, times,
//! integers) in both directions, and collecting every problem. Must never:
//! know a dialect or field by name (that is the mapping files' job), parse
//! bytes (that is `xml`/`json`), or judge content beyond its native form
//! (ID check digits, 案号 syntax, bracket normalisation are `validate`'s).

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::format_description::OwnedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use super::charset;
use super::mapping::{
    DateTimeForm, DialectMapping, Kind, NativePath, Pointer, RepeatedRule, Rule, ScalarRule, Syntax,
};
use super::xml::{is_xml_space, Element};
use crate::violation::{Violation, Violations};

/// The canonical model's date form (ISO 8601 calendar date).
const CANONICAL_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]");

// ------------------------------------------------------------ violations
// One constructor per code, so each code has one wording in both languages.

fn missing_field(path: String) -> Violation {
    Violation::new(
        "missing_field",
        path,
        "缺少必填字段",
        "a required field is missing",
    )
}
fn duplicate_field(path: String) -> Violation {
    Violation::new(
        "duplicate_field",
        path,
        "该字段只能出现一次",
        "this field may occur only once",
    )
}
fn bad_code_value(path: String, table: &str) -> Violation {
    Violation::new(
        "bad_code_value",
        path,
        format!("代码值不在代码表 {table} 中"),
        format!("the value is not a code of table {table}"),
    )
}
fn unknown_message_type(path: String) -> Violation {
    Violation::new(
        "unknown_message_type",
        path,
        "未知或不支持的文书类型",
        "unknown or unsupported message type",
    )
}
fn invalid_date(path: String) -> Violation {
    Violation::new(
        "invalid_date",
        path,
        "日期无效或格式不符",
        "not a valid date in the expected form",
    )
}
fn invalid_datetime(path: String) -> Violation {
    Violation::new(
        "invalid_datetime",
        path,
        "时间无效或格式不符",
        "not a valid date and time in the expected form",
    )
}
fn invalid_number(path: String) -> Violation {
    Violation::new(
        "invalid_number",
        path,
        "应为非负整数",
        "expected a non-negative integer",
    )
}
fn wrong_type(path: String) -> Violation {
    Violation::new(
        "wrong_type",
        path,
        "字段类型错误",
        "the field has the wrong JSON type",
    )
}
fn conflicting_fields(path: String) -> Violation {
    Violation::new(
        "conflicting_fields",
        path,
        "该字段与另一字段在目标格式中共用一个位置，但取值不同",
        "this field shares one place in the target format with another field, but their values differ",
    )
}
fn unsupported_value(path: String) -> Violation {
    Violation::new(
        "unsupported_value",
        path,
        "目标格式无法表达该字段的取值",
        "the target format cannot express this value",
    )
}
fn unrepresentable_character(path: String, charset: &str) -> Violation {
    Violation::new(
        "unrepresentable_character",
        path,
        format!("字段含有 {charset} 无法表示的字符"),
        format!("the field contains a character that {charset} cannot represent"),
    )
}

// ------------------------------------------------------------------ decode

/// Native tree → canonical document, or every problem found.
pub(crate) fn decode(m: &DialectMapping, root: &Element) -> Result<Value, Violations> {
    let json = m.syntax == Syntax::Json;
    // Violation paths: XPath-like below the root for XML, JSON pointers for JSON.
    let base = if json {
        String::new()
    } else {
        format!("/{}", m.root)
    };
    if !json && (root.name != m.root || root.namespace != m.namespace) {
        return Err(vec![Violation::new(
            "unexpected_root_element",
            format!("/{}", root.name),
            format!(
                "根元素应为 {}（命名空间：{}）",
                m.root,
                m.namespace.as_deref().unwrap_or("无")
            ),
            format!(
                "the root element should be {} (namespace: {})",
                m.root,
                m.namespace.as_deref().unwrap_or("none")
            ),
        )]);
    }
    let mut problems = Vec::new();
    let Some(mt_rule) = &m.message_type else {
        return Err(vec![unknown_message_type(String::new())]);
    };
    // The message type decides which rules apply, so it is read first and
    // its absence or an unknown code stops decoding.
    let path = || mt_rule.native.display(&base);
    let code = match read(root, &mt_rule.native, &base) {
        Found::Value(_, true) => return Err(vec![wrong_type(path())]),
        Found::Value(text, _) => text,
        Found::Absent => return Err(vec![missing_field(path())]),
        Found::Duplicate(path) => return Err(vec![duplicate_field(path)]),
        Found::WrongType => return Err(vec![wrong_type(path())]),
    };
    let message_type = mt_rule
        .codes
        .as_ref()
        .and_then(|t| t.to_canonical(code))
        .filter(|t| m.supports(t));
    let (Some(message_type), Some(rules)) =
        (message_type, message_type.and_then(|t| m.messages.get(t)))
    else {
        return Err(vec![unknown_message_type(path())]);
    };
    let mut doc = Value::Object(Map::new());
    set(
        &mut doc,
        &mt_rule.canonical.0,
        Value::String(message_type.to_owned()),
    );
    let ctx = Decoder { json };
    ctx.rules(rules, root, &base, &mut doc, &mut problems);
    if problems.is_empty() {
        Ok(doc)
    } else {
        Err(problems)
    }
}

struct Decoder {
    json: bool,
}

impl Decoder {
    fn rules(
        &self,
        rules: &[Rule],
        el: &Element,
        base: &str,
        out: &mut Value,
        problems: &mut Violations,
    ) {
        for rule in rules {
            match rule {
                Rule::Scalar(r) if matches!(r.kind, Kind::AgencyName) => {}
                Rule::Scalar(r) => {
                    // The native path is rendered only for a violation.
                    let path = || r.native.display(base);
                    match read(el, &r.native, base) {
                        // JSON says what is a number or boolean; XML cannot.
                        Found::Value(_, literal)
                            if self.json && literal != r.native_is_literal() =>
                        {
                            problems.push(wrong_type(path()))
                        }
                        Found::Value(text, _) => {
                            if let Some(v) = native_to_canonical(r, text, path, problems) {
                                set(out, &r.canonical.0, v);
                            }
                        }
                        Found::Absent if r.required => problems.push(missing_field(path())),
                        Found::Absent => {}
                        Found::Duplicate(path) => problems.push(duplicate_field(path)),
                        Found::WrongType => problems.push(wrong_type(path())),
                    }
                }
                Rule::Repeated(r) => self.repeated(r, el, base, out, problems),
                Rule::Fixed(r) => set(out, &r.canonical.0, Value::String(r.value.clone())),
            }
        }
    }

    fn repeated(
        &self,
        r: &RepeatedRule,
        el: &Element,
        base: &str,
        out: &mut Value,
        problems: &mut Violations,
    ) {
        let (parents, last) = r
            .native
            .steps
            .split_at(r.native.steps.len().saturating_sub(1));
        let mut items = Vec::new();
        match element_at(el, parents, base) {
            Ok(Some(parent)) => {
                let parent_base = steps_display(base, parents);
                let name = last.first().map(String::as_str).unwrap_or_default();
                for (i, child) in parent.children_named(name).enumerate() {
                    let item_base = if self.json {
                        format!("{parent_base}/{name}/{i}")
                    } else {
                        format!("{parent_base}/{name}[{}]", i + 1)
                    };
                    if self.json && !child.list_item {
                        problems.push(wrong_type(format!("{parent_base}/{name}")));
                        break;
                    }
                    if let Some((path, value)) = &r.select {
                        match read(child, path, &item_base) {
                            Found::Value(v, _) if v == value => {}
                            _ => continue,
                        }
                    }
                    let mut item = Value::Null;
                    self.rules(&r.items, child, &item_base, &mut item, problems);
                    if !item.is_null() {
                        items.push(item);
                    }
                }
            }
            Ok(None) => {}
            Err(path) => problems.push(duplicate_field(path)),
        }
        if r.required && items.is_empty() {
            problems.push(missing_field(r.native.display(base)));
        }
        // Lists are always present in the canonical document, even when empty:
        // consumers iterate them without a presence check.
        set(out, &r.canonical.0, Value::Array(items));
    }
}

/// What [`read`] found. Paths are rendered by the caller, and only for a
/// violation: a valid document builds none.
enum Found<'e> {
    /// Text (borrowed from the tree), and whether JSON wrote it as a literal.
    Value(&'e str, bool),
    Absent,
    /// The path of the step that matched more than one element.
    Duplicate(String),
    /// A value was expected and an object/element with children (or a JSON
    /// array) stands there.
    WrongType,
}

/// `base` followed by `/step` for each of `steps`.
fn steps_display(base: &str, steps: &[String]) -> String {
    let mut at =
        String::with_capacity(base.len() + steps.iter().map(|s| s.len() + 1).sum::<usize>());
    at.push_str(base);
    for step in steps {
        at.push('/');
        at.push_str(step);
    }
    at
}

/// The single element at `steps` below `el` (`Ok(None)` if absent;
/// `Err(path)` if a step matches more than one element).
fn element_at<'e>(
    el: &'e Element,
    steps: &[String],
    base: &str,
) -> Result<Option<&'e Element>, String> {
    let mut cur = el;
    for (i, step) in steps.iter().enumerate() {
        let mut found = cur.children_named(step);
        match (found.next(), found.next()) {
            (Some(one), None) => cur = one,
            (None, _) => return Ok(None),
            (Some(_), Some(_)) => return Err(steps_display(base, &steps[..=i])),
        }
    }
    Ok(Some(cur))
}

/// Reads the value at `path`: an attribute or the element's text, with XML
/// whitespace around it trimmed (pretty-printing is not content). Empty
/// counts as absent: the canonical model omits empty fields.
fn read<'e>(el: &'e Element, path: &NativePath, base: &str) -> Found<'e> {
    let target = match element_at(el, &path.steps, base) {
        Ok(Some(target)) => target,
        Ok(None) => return Found::Absent,
        Err(dup) => return Found::Duplicate(dup),
    };
    let raw = match &path.attribute {
        Some(a) => target.attribute(a),
        // A list item read as a value through a step is an array where one
        // value belongs; the item itself (empty path) is a list's value.
        None if !target.children.is_empty() || (target.list_item && !path.steps.is_empty()) => {
            return Found::WrongType
        }
        None => Some(target.text.as_str()),
    };
    match raw.map(|s| s.trim_matches(is_xml_space)) {
        Some(s) if !s.is_empty() => Found::Value(s, target.literal && path.attribute.is_none()),
        _ => Found::Absent,
    }
}

// ------------------------------------------------------------------ encode

/// Canonical document → native tree (root first, elements in rule order).
/// `names`: agency id → display name, for `agency_name` rules.
pub(crate) fn encode(
    m: &DialectMapping,
    doc: &Value,
    names: &HashMap<String, String>,
) -> Result<Element, Violations> {
    if !doc.is_object() {
        return Err(vec![wrong_type(String::new())]);
    }
    let Some(mt_rule) = &m.message_type else {
        return Err(vec![unknown_message_type("/message_type".into())]);
    };
    let message_type = match doc.get("message_type") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(vec![wrong_type("/message_type".into())]),
        None => return Err(vec![missing_field("/message_type".into())]),
    };
    let code = mt_rule
        .codes
        .as_ref()
        .and_then(|t| t.to_native(message_type));
    let (Some(code), Some(rules)) = (code, m.messages.get(message_type)) else {
        return Err(vec![unknown_message_type("/message_type".into())]);
    };
    let mut root = Element {
        name: m.root.clone(),
        namespace: m.namespace.clone(),
        attributes: m.root_attributes.clone(),
        ..Element::default()
    };
    let mut problems = Vec::new();
    write(
        &mut root,
        &mt_rule.native,
        Cow::Borrowed(code),
        false,
        || "/message_type".to_owned(),
        &mut problems,
    );
    let ctx = Encoder { m, names };
    ctx.rules(rules, doc, "", &mut root, &mut problems);
    if problems.is_empty() {
        Ok(root)
    } else {
        Err(problems)
    }
}

struct Encoder<'a> {
    m: &'a DialectMapping,
    names: &'a HashMap<String, String>,
}

impl Encoder<'_> {
    fn rules(
        &self,
        rules: &[Rule],
        value: &Value,
        base: &str,
        el: &mut Element,
        problems: &mut Violations,
    ) {
        for rule in rules {
            match rule {
                Rule::Scalar(r) => {
                    // The canonical path is rendered only for a violation.
                    let path = || r.canonical.display(base);
                    let Some(v) = get(value, &r.canonical) else {
                        if r.required {
                            problems.push(missing_field(path()));
                        }
                        continue;
                    };
                    let text = match (&r.kind, v) {
                        (Kind::AgencyName, Value::String(id)) => {
                            self.names.get(id).map(|n| Cow::Borrowed(n.as_str()))
                        }
                        (Kind::AgencyName, _) => None,
                        _ => canonical_to_native(r, v, path, problems),
                    };
                    let Some(text) = text else { continue };
                    if !charset::can_encode(&text, self.m.encoding) {
                        problems.push(unrepresentable_character(path(), self.m.encoding.name()));
                    } else {
                        let literal = r.native_is_literal();
                        write(el, &r.native, text, literal, path, problems);
                    }
                }
                Rule::Repeated(r) => self.repeated(r, value, base, el, problems),
                Rule::Fixed(r) => match get(value, &r.canonical) {
                    Some(Value::String(s)) if *s == r.value => {}
                    None => {}
                    Some(_) => problems.push(unsupported_value(r.canonical.display(base))),
                },
            }
        }
    }

    fn repeated(
        &self,
        r: &RepeatedRule,
        value: &Value,
        base: &str,
        el: &mut Element,
        problems: &mut Violations,
    ) {
        let path = r.canonical.display(base);
        let items = match get(value, &r.canonical) {
            None => &[][..],
            Some(Value::Array(items)) => items.as_slice(),
            Some(_) => return problems.push(wrong_type(path)),
        };
        if items.is_empty() {
            if r.required {
                problems.push(missing_field(path));
            }
            return;
        }
        let (parents, last) = r
            .native
            .steps
            .split_at(r.native.steps.len().saturating_sub(1));
        let Some(name) = last.first() else { return };
        let parent = element_mut(el, parents);
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}/{i}");
            let mut child = Element::new(name);
            child.list_item = true;
            self.rules(&r.items, item, &item_path, &mut child, problems);
            if let Some((at, v)) = &r.select {
                write(
                    &mut child,
                    at,
                    Cow::Borrowed(v),
                    false,
                    || item_path.clone(),
                    problems,
                );
            }
            parent.children.push(child);
        }
    }
}

/// The first element along `steps`, created (appended) where missing, so
/// elements appear in the order the rules first mention them. List items
/// are never reused as a path step: they belong to their repeated rule.
fn element_mut<'e>(el: &'e mut Element, steps: &[String]) -> &'e mut Element {
    let mut cur = el;
    for step in steps {
        let idx = match cur
            .children
            .iter()
            .position(|c| &c.name == step && !c.list_item)
        {
            Some(i) => i,
            None => {
                cur.children.push(Element::new(step));
                cur.children.len() - 1
            }
        };
        cur = &mut cur.children[idx];
    }
    cur
}

/// Puts `text` at `path`. A place already holding a different value means
/// two canonical fields share one native place and disagree.
fn write(
    el: &mut Element,
    path: &NativePath,
    text: Cow<'_, str>,
    literal: bool,
    canonical_path: impl Fn() -> String,
    problems: &mut Violations,
) {
    let target = element_mut(el, &path.steps);
    let slot = match &path.attribute {
        Some(a) => match target.attributes.iter().position(|(k, _)| k == a) {
            Some(i) => &mut target.attributes[i].1,
            None => {
                target.attributes.push((a.clone(), String::new()));
                let last = target.attributes.len() - 1;
                &mut target.attributes[last].1
            }
        },
        None => {
            target.literal = literal;
            &mut target.text
        }
    };
    if slot.is_empty() {
        *slot = text.into_owned();
    } else if *slot != *text {
        problems.push(conflicting_fields(canonical_path()));
    }
}

// ------------------------------------------------------ value conversions
// Both directions of every conversion sit together so a reader can check
// that one undoes the other.

/// The canonical text of a boolean (also the default native text).
fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn native_to_canonical(
    r: &ScalarRule,
    text: &str,
    path: impl Fn() -> String,
    problems: &mut Violations,
) -> Option<Value> {
    let text = match &r.codes {
        Some(table) => match table.to_canonical(text) {
            Some(v) => v,
            None => {
                problems.push(bad_code_value(path(), &table.name));
                return None;
            }
        },
        None => text,
    };
    let converted = match &r.kind {
        Kind::Text | Kind::AgencyName => Ok(Value::String(text.to_owned())),
        Kind::Boolean => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(bad_code_value(path(), "true/false")),
        },
        Kind::Integer => text
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| invalid_number(path())),
        Kind::Date(_, true) if iso_date(text).is_some() => Ok(Value::String(text.to_owned())),
        Kind::Date(form, _) => parse_native_date(text, form)
            .and_then(|d| d.format(CANONICAL_DATE).ok())
            .map(Value::String)
            .ok_or_else(|| invalid_date(path())),
        Kind::DateTime(form) => parse_native_instant(text, form)
            .and_then(|t| t.format(&Rfc3339).ok())
            .map(Value::String)
            .ok_or_else(|| invalid_datetime(path())),
    };
    converted.map_err(|v| problems.push(v)).ok()
}

/// A date in exactly the canonical form (four-digit year, two-digit month
/// and day, a real day): the case where native and canonical text are the
/// same, decided without the general format machinery.
fn iso_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return None;
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let month = time::Month::try_from(u8::try_from(num(5..7)).ok()?).ok()?;
    Date::from_calendar_date(i32::from(num(0..4)), month, u8::try_from(num(8..10)).ok()?).ok()
}

fn parse_native_date(text: &str, form: &OwnedFormatItem) -> Option<Date> {
    Date::parse(text, form).ok()
}

fn parse_native_instant(text: &str, form: &DateTimeForm) -> Option<OffsetDateTime> {
    match form {
        DateTimeForm::Rfc3339 => OffsetDateTime::parse(text, &Rfc3339).ok(),
        DateTimeForm::Local(f, tz) => PrimitiveDateTime::parse(text, f)
            .ok()
            .map(|t| t.assume_offset(*tz)),
        DateTimeForm::EpochMs(tz) => {
            let ms = text.parse::<i64>().ok()?;
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .ok()
                .map(|t| t.to_offset(*tz))
        }
    }
}

/// The native text of a canonical value; borrowed where it is the value
/// itself or a code, so a plain field costs no copy before it is written.
fn canonical_to_native<'a>(
    r: &'a ScalarRule,
    value: &'a Value,
    path: impl Fn() -> String,
    problems: &mut Violations,
) -> Option<Cow<'a, str>> {
    let text = match (value, &r.kind) {
        (Value::Number(n), Kind::Integer) if r.codes.is_none() => {
            return n.as_u64().map(|n| Cow::Owned(n.to_string())).or_else(|| {
                problems.push(invalid_number(path()));
                None
            })
        }
        (Value::Bool(b), Kind::Boolean) => bool_text(*b),
        (Value::String(s), Kind::Text | Kind::Date(..) | Kind::DateTime(_)) => s.as_str(),
        _ => {
            problems.push(wrong_type(path()));
            return None;
        }
    };
    if let Some(table) = &r.codes {
        return table.to_native(text).map(Cow::Borrowed).or_else(|| {
            problems.push(bad_code_value(path(), &table.name));
            None
        });
    }
    // A form that cannot hold the value exactly (seconds in 时分, a
    // sub-millisecond instant) must refuse it, not round it: reading the
    // native text back has to give the same date or instant.
    let converted = match &r.kind {
        Kind::Date(_, true) if iso_date(text).is_some() => return Some(Cow::Borrowed(text)),
        Kind::Date(form, _) => Date::parse(text, CANONICAL_DATE)
            .map_err(|_| invalid_date(path()))
            .and_then(|d| {
                d.format(form)
                    .ok()
                    .filter(|n| parse_native_date(n, form) == Some(d))
                    .ok_or_else(|| unsupported_value(path()))
            }),
        Kind::DateTime(form) => OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| invalid_datetime(path()))
            .and_then(|t| {
                let native = match form {
                    DateTimeForm::Rfc3339 => t.format(&Rfc3339).ok(),
                    DateTimeForm::Local(f, tz) => t.to_offset(*tz).format(f).ok(),
                    DateTimeForm::EpochMs(_) => i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
                        .ok()
                        .map(|ms| ms.to_string()),
                };
                native
                    .filter(|n| parse_native_instant(n, form) == Some(t))
                    .ok_or_else(|| unsupported_value(path()))
            }),
        _ => return Some(Cow::Borrowed(text)),
    };
    converted.map(Cow::Owned).map_err(|v| problems.push(v)).ok()
}

impl ScalarRule {
    /// Whether a JSON dialect writes this value as a literal (number or
    /// boolean) rather than a string. A code table always yields text.
    fn native_is_literal(&self) -> bool {
        self.codes.is_none()
            && matches!(
                self.kind,
                Kind::Integer | Kind::Boolean | Kind::DateTime(DateTimeForm::EpochMs(_))
            )
    }
}

// ------------------------------------------------------- canonical access

/// The value at `pointer`, treating `null` and `""` as absent (the canonical
/// model omits empty fields; a partner writing `null` means the same).
fn get<'v>(value: &'v Value, pointer: &Pointer) -> Option<&'v Value> {
    let mut cur = value;
    for token in &pointer.0 {
        cur = match cur {
            Value::Object(map) => map.get(token)?,
            Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match cur {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        v => Some(v),
    }
}

/// Sets `tokens` in `out`, creating objects on the way (a pointer into a
/// non-object replaces it: only a contradictory mapping file can do that).
fn set(out: &mut Value, tokens: &[String], value: Value) {
    let Some((last, parents)) = tokens.split_last() else {
        *out = value;
        return;
    };
    let mut cur = out;
    for token in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        cur = map
            .entry(token.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Value::Object(map) = cur {
        map.insert(last.clone(), value);
    }
}
