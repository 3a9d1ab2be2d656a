//! JSON Schema errors → [`Violation`]s.
//!
//! One schema keyword failure becomes one violation whose path is the
//! instance's JSON pointer (for `required` and `additionalProperties`, the
//! pointer of the missing or unexpected *property*) and whose code says what
//! kind of problem it is. The jsonschema crate's own messages are never used:
//! they quote the instance value, which may be personal data.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::ValidationError;

use crate::model::codes;
use crate::violation::{Violation, Violations};

/// The violations for one schema error.
pub(crate) fn to_violations(e: &ValidationError<'_>) -> Violations {
    let path = e.instance_path().as_str();
    let f = codes::field_name(path);
    let v = |code: &'static str, zh: String, en: String| vec![Violation::new(code, path, zh, en)];
    match e.kind() {
        ValidationErrorKind::Required { property } => {
            vec![codes::missing_field(
                path,
                property.as_str().unwrap_or_default(),
            )]
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
            .iter()
            .map(|k| codes::unknown_field(path, k))
            .collect(),
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(ts) => ts
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" | "),
            };
            vec![codes::wrong_type(path, &expected)]
        }
        ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. } => {
            vec![codes::bad_code_value(path)]
        }
        ValidationErrorKind::Pattern { .. } | ValidationErrorKind::Format { .. } => {
            vec![codes::invalid_format_unspecified(path)]
        }
        ValidationErrorKind::MinLength { .. } | ValidationErrorKind::MaxLength { .. } => v(
            codes::INVALID_LENGTH,
            format!("字段“{f}”为空或长度超出范围"),
            format!("field `{f}` is empty or too long"),
        ),
        ValidationErrorKind::MinItems { limit } => v(
            codes::TOO_FEW_ITEMS,
            format!("字段“{f}”至少需要 {limit} 项"),
            format!("field `{f}` needs at least {limit} item(s)"),
        ),
        ValidationErrorKind::MaxItems { limit } => v(
            codes::TOO_MANY_ITEMS,
            format!("字段“{f}”最多允许 {limit} 项"),
            format!("field `{f}` allows at most {limit} item(s)"),
        ),
        ValidationErrorKind::Minimum { .. }
        | ValidationErrorKind::Maximum { .. }
        | ValidationErrorKind::ExclusiveMinimum { .. }
        | ValidationErrorKind::ExclusiveMaximum { .. } => vec![codes::out_of_range(path)],
        ValidationErrorKind::UniqueItems => v(
            codes::DUPLICATE_ITEMS,
            format!("字段“{f}”含有重复项"),
            format!("field `{f}` contains duplicate items"),
        ),
        _ => v(
            codes::SCHEMA_VIOLATION,
            format!("字段“{f}”不符合文书结构定义"),
            format!("field `{f}` does not match the document schema"),
        ),
    }
}
