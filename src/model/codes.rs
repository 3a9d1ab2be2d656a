//! The stable violation codes of the canonical model, and the builders for
//! the structural ones shared by the typed parser and the JSON Schema layer.
//!
//! A code is part of the gateway's API contract (partners branch on it), so
//! each lives here exactly once and is pinned by tests; renaming one is a
//! breaking change. Messages name the *field*, never the offending *value*:
//! values may be personal data (an ID number, a name).

use crate::violation::Violation;

// Structural problems (JSON shape), reported by the schema and the typed parser alike.
/// A required field is absent; the path points at the missing property.
pub const MISSING_FIELD: &str = "missing_field";
/// A field that the schema does not know (usually a typo).
pub const UNKNOWN_FIELD: &str = "unknown_field";
/// A JSON value of the wrong type (string instead of array …).
pub const WRONG_TYPE: &str = "wrong_type";
/// A code outside its code list (gender, ethnicity, correction type, enum …).
pub const BAD_CODE_VALUE: &str = "bad_code_value";
/// A string that does not have the required shape (pattern, format).
pub const INVALID_FORMAT: &str = "invalid_format";
/// A string too short or too long (e.g. an empty name).
pub const INVALID_LENGTH: &str = "invalid_length";
/// An array with too few items (e.g. no recipient).
pub const TOO_FEW_ITEMS: &str = "too_few_items";
/// An array with too many items.
pub const TOO_MANY_ITEMS: &str = "too_many_items";
/// A number outside its allowed range.
pub const OUT_OF_RANGE: &str = "out_of_range";
/// An array whose items must be unique but are not.
pub const DUPLICATE_ITEMS: &str = "duplicate_items";
/// Any other JSON Schema keyword failure.
pub const SCHEMA_VIOLATION: &str = "schema_violation";

// Domain problems (identity and business rules of domain.md).
/// `message_type` is not one of the message types of domain.md.
pub const UNKNOWN_MESSAGE_TYPE: &str = "unknown_message_type";
/// 公民身份号码 of the wrong length or with characters other than digits (and a final X).
pub const INVALID_ID_NUMBER: &str = "invalid_id_number";
/// 公民身份号码 whose check digit (GB 11643-1999) does not match the other 17.
pub const INVALID_ID_CHECK_DIGIT: &str = "invalid_id_check_digit";
/// 公民身份号码 whose embedded birth date is impossible or in the future.
pub const INVALID_ID_BIRTH_DATE: &str = "invalid_id_birth_date";
/// Declared birth date differs from the one embedded in the ID number.
pub const BIRTH_DATE_MISMATCH: &str = "birth_date_mismatch";
/// 案号 that does not parse.
pub const INVALID_CASE_NO: &str = "invalid_case_no";
/// A calendar date that does not exist (2023-02-29).
pub const INVALID_DATE: &str = "invalid_date";
/// `term.end` before `term.start`.
pub const TERM_OUT_OF_ORDER: &str = "term_out_of_order";
/// Agency id that is not `{kind}.{division}[.{n}]` with a known kind.
pub const INVALID_AGENCY_ID: &str = "invalid_agency_id";
/// GB/T 2260 division code that is not 6 digits of a real province.
pub const INVALID_DIVISION_CODE: &str = "invalid_division_code";
/// The decision organ cannot decide this correction type (a court decides
/// 管制/缓刑/假释; 暂予监外执行 is decided by a court, a prison administration
/// or a police organ).
pub const INVALID_DECISION_ORGAN: &str = "invalid_decision_organ";
/// A correction request or correction that lists neither missing documents
/// nor wrong fields.
pub const NOTHING_TO_CORRECT: &str = "nothing_to_correct";
/// A field that does not apply in the document's situation (a report time
/// for a person who did not report).
pub const FIELD_NOT_APPLICABLE: &str = "field_not_applicable";
/// A document kind the body says is supplied but no attachment has that kind.
pub const MISSING_ATTACHMENT: &str = "missing_attachment";
/// An event the document reports (report, breach, decision, committal) dated
/// after the document was issued.
pub const EVENT_AFTER_ISSUE: &str = "event_after_issue";
/// An extension's new due date on or before the day it was issued.
pub const DUE_DATE_NOT_AFTER_ISSUE: &str = "due_date_not_after_issue";
/// A revocation proposal's kind that does not fit the correction type
/// (撤销缓刑 for 缓刑, 撤销假释 for 假释, 收监执行 for 暂予监外执行).
pub const REVOCATION_KIND_MISMATCH: &str = "revocation_kind_mismatch";
/// A proposed measure the requester cannot ask about (a prison asks only
/// about 假释 or 暂予监外执行).
pub const INVALID_PROPOSED_MEASURE: &str = "invalid_proposed_measure";
/// A committal facility that is not a prison or a police detention centre.
pub const INVALID_FACILITY: &str = "invalid_facility";

/// Every code defined here, for docs/errors.md and the pinning test.
pub const ALL: &[&str] = &[
    MISSING_FIELD,
    UNKNOWN_FIELD,
    WRONG_TYPE,
    BAD_CODE_VALUE,
    INVALID_FORMAT,
    INVALID_LENGTH,
    TOO_FEW_ITEMS,
    TOO_MANY_ITEMS,
    OUT_OF_RANGE,
    DUPLICATE_ITEMS,
    SCHEMA_VIOLATION,
    UNKNOWN_MESSAGE_TYPE,
    INVALID_ID_NUMBER,
    INVALID_ID_CHECK_DIGIT,
    INVALID_ID_BIRTH_DATE,
    BIRTH_DATE_MISMATCH,
    INVALID_CASE_NO,
    INVALID_DATE,
    TERM_OUT_OF_ORDER,
    INVALID_AGENCY_ID,
    INVALID_DIVISION_CODE,
    INVALID_DECISION_ORGAN,
    NOTHING_TO_CORRECT,
    FIELD_NOT_APPLICABLE,
    MISSING_ATTACHMENT,
    EVENT_AFTER_ISSUE,
    DUE_DATE_NOT_AFTER_ISSUE,
    REVOCATION_KIND_MISMATCH,
    INVALID_PROPOSED_MEASURE,
    INVALID_FACILITY,
];

/// Appends one reference token to a JSON pointer, escaping `~` and `/` (RFC 6901 §3).
pub fn pointer_join(parent: &str, token: &str) -> String {
    let mut out = String::with_capacity(parent.len() + token.len() + 1);
    out.push_str(parent);
    out.push('/');
    push_escaped_token(&mut out, token);
    out
}

/// Appends `token` escaped as a JSON pointer reference token (RFC 6901:
/// `~` → `~0`, `/` → `~1`), without allocating when there is nothing to escape.
pub fn push_escaped_token(out: &mut String, token: &str) {
    if !token.contains(['~', '/']) {
        out.push_str(token);
        return;
    }
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// The name a message uses for the field at `path`: its last reference token
/// (unescaped), or "document" for the root. Field names come from the schema
/// or the property key, never from a value.
pub fn field_name(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((_, last)) if !last.is_empty() && !last.contains('~') => last.to_owned(),
        Some((_, last)) if !last.is_empty() => last.replace("~1", "/").replace("~0", "~"),
        _ => "document".to_owned(),
    }
}

/// `missing_field` at `parent/key`.
pub fn missing_field(parent: &str, key: &str) -> Violation {
    Violation::new(
        MISSING_FIELD,
        pointer_join(parent, key),
        format!("缺少必填字段“{key}”"),
        format!("required field `{key}` is missing"),
    )
}

/// `unknown_field` at `parent/key`.
pub fn unknown_field(parent: &str, key: &str) -> Violation {
    Violation::new(
        UNKNOWN_FIELD,
        pointer_join(parent, key),
        format!("未知字段“{key}”（可能是拼写错误）"),
        format!("unknown field `{key}` (possibly a typo)"),
    )
}

/// `wrong_type` at `path`; `expected` is a JSON type name (`string`, `array` …).
pub fn wrong_type(path: &str, expected: &str) -> Violation {
    let f = field_name(path);
    Violation::new(
        WRONG_TYPE,
        path,
        format!("字段“{f}”类型错误，应为 {expected}"),
        format!("field `{f}` has the wrong type, expected {expected}"),
    )
}

/// `bad_code_value` at `path`.
pub fn bad_code_value(path: &str) -> Violation {
    let f = field_name(path);
    Violation::new(
        BAD_CODE_VALUE,
        path,
        format!("字段“{f}”的代码值不在允许的代码表中"),
        format!("field `{f}` has a code value that is not in its code list"),
    )
}

/// `invalid_format` at `path`; `expected` describes the shape in each language.
pub fn invalid_format(path: &str, expected_zh: &str, expected_en: &str) -> Violation {
    let f = field_name(path);
    Violation::new(
        INVALID_FORMAT,
        path,
        format!("字段“{f}”格式不正确，应为{expected_zh}"),
        format!("field `{f}` is not in the expected format ({expected_en})"),
    )
}

/// `out_of_range` at `path`.
pub fn out_of_range(path: &str) -> Violation {
    let f = field_name(path);
    Violation::new(
        OUT_OF_RANGE,
        path,
        format!("字段“{f}”的数值超出允许范围"),
        format!("field `{f}` is out of the allowed range"),
    )
}

/// `invalid_date` at `path`: well-formed but not a real calendar date.
pub fn invalid_date(path: &str) -> Violation {
    let f = field_name(path);
    Violation::new(
        INVALID_DATE,
        path,
        format!("字段“{f}”不是真实存在的日期"),
        format!("field `{f}` is not a real calendar date"),
    )
}

/// `invalid_format` at `path` when only the schema knows the expected shape.
pub fn invalid_format_unspecified(path: &str) -> Violation {
    let f = field_name(path);
    Violation::new(
        INVALID_FORMAT,
        path,
        format!("字段“{f}”格式不正确"),
        format!("field `{f}` is not in the expected format"),
    )
}
