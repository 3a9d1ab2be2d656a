//! Scenario tests: the two sample documents validate, and every rule fails
//! with its exact code at its exact path.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::{json, Value};

use super::*;
use crate::model::{Body, CorrectionType};

pub(super) fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        Validator::load(&dir).unwrap_or_else(|e| panic!("schemas load: {e}"))
    })
}

pub(super) fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/canonical")
        .join(name);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn court_notice() -> Value {
    fixture("handover.notice.json")
}

pub(super) fn set(doc: &mut Value, pointer: &str, v: Value) {
    *doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer}")) = v;
}

pub(super) fn remove(doc: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let obj = if parent.is_empty() {
        Some(&mut *doc)
    } else {
        doc.pointer_mut(parent)
    };
    obj.and_then(Value::as_object_mut)
        .and_then(|o| o.remove(key))
        .unwrap_or_else(|| panic!("no {pointer}"));
}

/// (code, path) pairs of the report, in order.
pub(super) fn problems(doc: &Value) -> Vec<(&'static str, String)> {
    match validator().validate(doc) {
        Ok(_) => Vec::new(),
        Err(vs) => vs.into_iter().map(|v| (v.code, v.path)).collect(),
    }
}

pub(super) fn assert_only(doc: &Value, code: &'static str, path: &str) {
    assert_eq!(problems(doc), vec![(code, path.to_owned())]);
}

/// An ID number with a correct check digit for any 17-character body.
fn with_check(body17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body17
        .bytes()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let c = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body17}{c}")
}

#[test]
fn validator_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Validator>();
}

#[test]
fn court_fixture_validates_and_round_trips() {
    let doc = court_notice();
    let typed = validator()
        .validate(&doc)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(typed.envelope.sender.as_str(), "court.620102");
    let Body::HandoverNotice(n) = &typed.body else {
        panic!("typed body")
    };
    assert_eq!(n.correction_type, CorrectionType::Probation);
    // The fixture is already canonical: emitting it again changes nothing.
    assert_eq!(typed.to_json(), doc);
}

#[test]
fn prison_fixture_validates_and_round_trips() {
    let doc = fixture("handover.notice.medical_parole.json");
    let typed = validator()
        .validate(&doc)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    let subject = typed.subject.as_ref().unwrap_or_else(|| panic!("subject"));
    assert_eq!(subject.name, "王𠮷祥");
    assert!(subject.id_number.is_male());
    assert_eq!(typed.to_json(), doc);
}

#[test]
fn normalises_case_no_and_legacy_id() {
    let mut doc = court_notice();
    set(&mut doc, "/case_no", json!("(2024)甘0102刑初123号"));
    // 620102900307002 is the legacy form of 620102199003070026.
    set(&mut doc, "/subject/id_number", json!("620102900307002"));
    let out = validator()
        .validate(&doc)
        .unwrap_or_else(|e| panic!("{e:#?}"))
        .to_json();
    assert_eq!(out, court_notice());
}

#[test]
fn every_type_has_its_schema_and_they_can_be_served() {
    let names = validator().schema_names();
    assert_eq!(names.len(), 17, "{names:?}");
    assert!(names.contains(&"envelope".to_owned()));
    for t in MessageType::ALL {
        assert!(validator().has_type_schema(*t), "{t}");
        let schema = validator()
            .schema(t.as_str())
            .unwrap_or_else(|| panic!("{t}"));
        let id = schema["$id"].as_str().unwrap_or_default();
        assert!(id.ends_with(&format!("/{t}.schema.json")), "{id}");
        assert_eq!(
            schema["properties"]["message_type"]["const"],
            json!(t.as_str())
        );
        // The schema's `required` and the model's decision are the same table.
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            required.contains(&json!("subject")),
            t.requires_subject(),
            "{t}: subject"
        );
        assert_eq!(
            required.contains(&json!("in_reply_to")),
            t.requires_in_reply_to(),
            "{t}: in_reply_to"
        );
        let subject_required = schema["properties"]["subject"]["required"].clone();
        assert_eq!(
            subject_required == json!(["ethnicity", "residence"]),
            t.requires_full_subject(),
            "{t}: whole subject"
        );
        assert!(schema["description"].as_str().is_some_and(|d| d.len() > 40));
        assert_eq!(
            schema["properties"]["body"]["additionalProperties"],
            json!(false)
        );
    }
    assert!(validator().schema("envelope").is_some());
    assert_eq!(
        validator().schema("envelope.schema.json"),
        validator().schema("envelope")
    );
    assert!(validator().schema("handover.notice.schema.json").is_some());
    assert!(validator().schema("handover.noticed").is_none());
    assert!(validator().schema("../Cargo.toml").is_none());
}

#[test]
fn id_number_rules() {
    let mut doc = court_notice();
    set(&mut doc, "/subject/id_number", json!("620102199003070027"));
    assert_only(&doc, "invalid_id_check_digit", "/subject/id_number");

    set(&mut doc, "/subject/id_number", json!("62010219900307002"));
    assert_only(&doc, "invalid_id_number", "/subject/id_number");

    set(
        &mut doc,
        "/subject/id_number",
        json!(with_check("62010219900230002")),
    );
    assert_only(&doc, "invalid_id_birth_date", "/subject/id_number");

    let mut doc = court_notice();
    set(&mut doc, "/subject/birth_date", json!("1990-03-08"));
    assert_only(&doc, "birth_date_mismatch", "/subject/birth_date");
}

#[test]
fn lower_case_x_is_accepted_and_normalised() {
    let mut doc = court_notice();
    let id = (0..1000)
        .map(|seq| with_check(&format!("62010219900307{seq:03}")))
        .find(|id| id.ends_with('X'))
        .unwrap_or_else(|| panic!("some sequence gives an X check digit"));
    set(&mut doc, "/subject/id_number", json!(id.to_lowercase()));
    let typed = validator()
        .validate(&doc)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(typed.to_json()["subject"]["id_number"], json!(id));
}

#[test]
fn case_no_rules() {
    let mut doc = court_notice();
    set(&mut doc, "/case_no", json!("（2024）甘0102刑初第123号"));
    assert_only(&doc, "invalid_case_no", "/case_no");
    remove(&mut doc, "/case_no");
    assert_only(&doc, "missing_field", "/case_no");
    // A prison has no 案号 to give: the medical-parole fixture has none.
    assert_eq!(
        problems(&fixture("handover.notice.medical_parole.json")),
        []
    );
}

#[test]
fn date_rules() {
    let mut doc = court_notice();
    set(&mut doc, "/body/effective_date", json!("2023-02-29"));
    assert_only(&doc, "invalid_date", "/body/effective_date");

    let mut doc = court_notice();
    set(&mut doc, "/body/report_by", json!("2024/06/11"));
    assert_only(&doc, "invalid_format", "/body/report_by");

    let mut doc = court_notice();
    set(&mut doc, "/body/term/end", json!("2024-05-31"));
    assert_only(&doc, "term_out_of_order", "/body/term/end");

    let mut doc = court_notice();
    set(&mut doc, "/issued_at", json!("2024-06-03 10:15"));
    assert_only(&doc, "invalid_format", "/issued_at");
}

#[test]
fn agency_and_division_rules() {
    let mut doc = court_notice();
    set(&mut doc, "/recipients/0", json!("correction.620102"));
    assert_only(&doc, "invalid_agency_id", "/recipients/0");

    let mut doc = court_notice();
    set(&mut doc, "/copies", json!(["procuratorate.990102"]));
    assert_only(&doc, "invalid_division_code", "/copies/0");

    let mut doc = court_notice();
    set(&mut doc, "/subject/residence/division", json!("990102"));
    assert_only(&doc, "invalid_division_code", "/subject/residence/division");

    let mut doc = court_notice();
    set(
        &mut doc,
        "/body/decision_organ",
        json!("prison_admin.620000"),
    );
    assert_only(&doc, "invalid_decision_organ", "/body/decision_organ");
}

#[test]
fn medical_parole_needs_transfer_date_and_reason() {
    let mut doc = fixture("handover.notice.medical_parole.json");
    remove(&mut doc, "/body/transfer_date");
    remove(&mut doc, "/body/reason");
    assert_eq!(
        problems(&doc),
        [
            ("missing_field", "/body/reason".to_owned()),
            ("missing_field", "/body/transfer_date".to_owned())
        ]
    );
}

#[test]
fn schema_findings_have_codes_and_property_paths() {
    let mut doc = court_notice();
    remove(&mut doc, "/body/offence");
    assert_only(&doc, "missing_field", "/body/offence");

    let mut doc = court_notice();
    doc["body"]["offense"] = json!("危险驾驶罪");
    assert_only(&doc, "unknown_field", "/body/offense");

    let mut doc = court_notice();
    set(&mut doc, "/subject/gender", json!("F"));
    assert_only(&doc, "bad_code_value", "/subject/gender");

    let mut doc = court_notice();
    set(&mut doc, "/subject/ethnicity", json!("57"));
    assert_only(&doc, "bad_code_value", "/subject/ethnicity");

    let mut doc = court_notice();
    set(&mut doc, "/body/correction_type", json!("HX"));
    assert_only(&doc, "bad_code_value", "/body/correction_type");

    let mut doc = court_notice();
    set(&mut doc, "/recipients", json!("corrections.620102"));
    assert_only(&doc, "wrong_type", "/recipients");

    let mut doc = court_notice();
    set(&mut doc, "/recipients", json!([]));
    assert_only(&doc, "too_few_items", "/recipients");

    let mut doc = court_notice();
    set(&mut doc, "/attachments/1/sha256", json!("ABC"));
    assert_only(&doc, "invalid_format", "/attachments/1/sha256");

    let mut doc = court_notice();
    set(&mut doc, "/subject/name", json!(""));
    assert_only(&doc, "invalid_length", "/subject/name");
}

#[test]
fn message_type_problems() {
    let mut doc = court_notice();
    set(&mut doc, "/message_type", json!("handover.noticed"));
    assert_only(&doc, "unknown_message_type", "/message_type");
    remove(&mut doc, "/message_type");
    assert_only(&doc, "missing_field", "/message_type");
    assert_only(&json!([]), "wrong_type", "");
}

#[test]
fn reports_every_problem_at_once() {
    let mut doc = court_notice();
    set(&mut doc, "/subject/id_number", json!("620102199003070027"));
    set(&mut doc, "/body/effective_date", json!("2023-02-29"));
    set(&mut doc, "/body/term/end", json!("2024-01-01"));
    set(&mut doc, "/sender", json!("court"));
    set(&mut doc, "/subject/gender", json!("3"));
    remove(&mut doc, "/document_no");
    doc["subject"]["nmae"] = json!("x");
    assert_eq!(
        problems(&doc),
        [
            ("invalid_date", "/body/effective_date".to_owned()),
            ("term_out_of_order", "/body/term/end".to_owned()),
            ("missing_field", "/document_no".to_owned()),
            ("invalid_agency_id", "/sender".to_owned()),
            ("bad_code_value", "/subject/gender".to_owned()),
            ("invalid_id_check_digit", "/subject/id_number".to_owned()),
            ("unknown_field", "/subject/nmae".to_owned()),
        ]
    );
}

#[test]
fn messages_never_carry_the_value() {
    let mut doc = court_notice();
    let bad_id = "620102199003070027";
    set(&mut doc, "/subject/id_number", json!(bad_id));
    set(&mut doc, "/subject/birth_date", json!("1990-03-08"));
    set(&mut doc, "/case_no", json!("（2024）甘0102刑初第9号"));
    set(&mut doc, "/subject/gender", json!("女"));
    let report = serde_json::to_string(&validator().validate(&doc).err().unwrap_or_default())
        .unwrap_or_default();
    for value in [bad_id, "1990-03-08", "刑初第9号", "女\"", "阿依古丽"] {
        assert!(!report.contains(value), "report leaks {value}: {report}");
    }
}

/// The wire shape of a violation is an API contract: this pins it.
#[test]
fn violation_serialisation_is_pinned() {
    let mut doc = court_notice();
    set(&mut doc, "/subject/id_number", json!("620102199003070027"));
    let vs = validator().validate(&doc).err().unwrap_or_default();
    assert_eq!(
        serde_json::to_value(&vs).unwrap_or_default(),
        json!([{
            "code": "invalid_id_check_digit",
            "path": "/subject/id_number",
            "message": {
                "zh": "字段“id_number”的公民身份号码校验位错误（GB 11643-1999）",
                "en": "field `id_number`: the ID number's check digit is wrong (GB 11643-1999)"
            }
        }])
    );
}

#[test]
fn codes_are_pinned() {
    assert_eq!(
        crate::model::codes::ALL,
        [
            "missing_field",
            "unknown_field",
            "wrong_type",
            "bad_code_value",
            "invalid_format",
            "invalid_length",
            "too_few_items",
            "too_many_items",
            "out_of_range",
            "duplicate_items",
            "schema_violation",
            "unknown_message_type",
            "invalid_id_number",
            "invalid_id_check_digit",
            "invalid_id_birth_date",
            "birth_date_mismatch",
            "invalid_case_no",
            "invalid_date",
            "term_out_of_order",
            "invalid_agency_id",
            "invalid_division_code",
            "invalid_decision_organ",
            "nothing_to_correct",
            "field_not_applicable",
            "missing_attachment",
            "event_after_issue",
            "due_date_not_after_issue",
            "revocation_kind_mismatch",
            "invalid_proposed_measure",
            "invalid_facility",
        ]
    );
}

#[test]
fn personal_data_is_listed_and_redactable() {
    use crate::model::{is_personal_data, redact_personal_data};
    assert!(is_personal_data("/subject/id_number"));
    assert!(is_personal_data("/attachments/2/file_name"));
    assert!(!is_personal_data("/sender"));
    assert!(!is_personal_data("/subject/residence/division"));
    let redacted = redact_personal_data(&court_notice()).to_string();
    for secret in [
        "620102199003070026",
        "阿依古丽",
        "东岗西路",
        "刑事判决书.pdf",
        "危险驾驶罪",
    ] {
        assert!(!redacted.contains(secret), "{secret} survived redaction");
    }
    assert!(redacted.contains("court.620102"));
}

#[test]
fn setup_errors_are_explicit() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let err = Validator::load(dir.path()).err();
    assert!(
        matches!(err, Some(ValidateSetupError::MissingEnvelope { .. })),
        "{err:?}"
    );

    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(ENVELOPE_SCHEMA_FILE);
    std::fs::copy(&src, dir.path().join(ENVELOPE_SCHEMA_FILE)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("handover.notise.schema.json"),
        r#"{"$id": "urn:x"}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = Validator::load(dir.path()).err();
    assert!(
        matches!(err, Some(ValidateSetupError::UnknownSchemaFile { .. })),
        "{err:?}"
    );

    std::fs::remove_file(dir.path().join("handover.notise.schema.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("handover.receipt.schema.json"),
        r#"{"$id": "https://schemas.corrections-gateway.invalid/handover.receipt.schema.json", "$ref": "missing.schema.json"}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = Validator::load(dir.path()).err();
    assert!(
        matches!(err, Some(ValidateSetupError::Schema { .. })),
        "{err:?}"
    );
}
