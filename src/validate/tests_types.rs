//! Scenario tests for every message type: each canonical fixture validates
//! and round-trips, each decision of the table in `rules` holds, and each
//! rule fails with its exact code at its exact path.

use serde_json::{json, Value};

use super::tests::{assert_only, fixture, problems, remove, set, validator};
use crate::model::{
    is_personal_data, redact_personal_data, Body, CanonicalDocument, MessageType, ReportStatus,
    RevocationKind,
};

fn of(t: MessageType) -> Value {
    fixture(&format!("{}.json", t.as_str()))
}

fn pairs(list: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    list.iter().map(|(c, p)| (*c, (*p).to_owned())).collect()
}

#[test]
fn every_fixture_validates_and_round_trips() {
    for t in MessageType::ALL {
        let doc = of(*t);
        let typed = validator()
            .validate(&doc)
            .unwrap_or_else(|e| panic!("{t}: {e:#?}"));
        assert_eq!(typed.envelope.message_type, *t);
        assert_eq!(typed.body.message_type(), *t);
        // Fixtures are in normalised form: emitting them changes nothing …
        assert_eq!(typed.to_json(), doc, "{t}");
        // … and parsing the emission gives the same typed document.
        assert_eq!(
            CanonicalDocument::from_json(&typed.to_json()),
            Ok(typed),
            "{t}"
        );
    }
}

#[test]
fn fixtures_use_the_documented_agencies_and_names() {
    let all: Vec<String> = MessageType::ALL
        .iter()
        .map(|t| of(*t).to_string())
        .collect();
    let text = all.join("\n");
    for needle in [
        "court.620102",
        "procuratorate.620102",
        "police.620102",
        "prison.620000.3",
        "corrections.620102",
        "·",
        "𠮷",
    ] {
        assert!(text.contains(needle), "no fixture uses {needle}");
    }
}

#[test]
fn typed_bodies_carry_the_values() {
    let t = validator()
        .validate(&of(MessageType::HandoverReportStatus))
        .unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(matches!(
        t.body,
        Body::HandoverReportStatus(ReportStatus::Reported { .. })
    ));
    let t = validator()
        .validate(&of(MessageType::RevocationProposal))
        .unwrap_or_else(|e| panic!("{e:#?}"));
    let Body::RevocationProposal(p) = &t.body else {
        panic!("typed proposal")
    };
    assert_eq!(p.kind, RevocationKind::RevokeProbation);
    assert_eq!(p.violations.len(), 2);
    let name = t.subject.map(|s| s.name).unwrap_or_default();
    assert_eq!(name, "𠮷建国");
}

#[test]
fn every_document_names_its_subject_and_answers_need_in_reply_to() {
    for t in MessageType::ALL {
        let mut doc = of(*t);
        if t.requires_in_reply_to() {
            remove(&mut doc, "/in_reply_to");
            assert_only(&doc, "missing_field", "/in_reply_to");
        } else if doc.get("in_reply_to").is_some() {
            remove(&mut doc, "/in_reply_to");
            assert_eq!(problems(&doc), [], "{t}: in_reply_to is optional");
        }
        assert!(t.requires_subject(), "{t}");
        let mut doc = of(*t);
        remove(&mut doc, "/subject");
        assert_only(&doc, "missing_field", "/subject");
        // ethnicity and residence: required on the notice and the request only.
        for key in ["ethnicity", "residence"] {
            let mut doc = of(*t);
            remove(&mut doc, &format!("/subject/{key}"));
            if t.requires_full_subject() {
                assert_only(&doc, "missing_field", &format!("/subject/{key}"));
            } else {
                assert_eq!(problems(&doc), [], "{t}: {key} is optional");
            }
        }
    }
}

#[test]
fn code_lists_are_enforced() {
    for (t, path) in [
        (MessageType::AssessmentRequest, "/body/procedure"),
        (MessageType::AssessmentRequest, "/body/proposed_measure"),
        (MessageType::AssessmentOpinion, "/body/conclusion"),
        (MessageType::RevocationProposal, "/body/kind"),
        (MessageType::RevocationProposal, "/body/correction_type"),
        (MessageType::RevocationArrestDecision, "/body/decision"),
        (MessageType::RevocationRuling, "/body/decision"),
    ] {
        let mut doc = of(t);
        set(&mut doc, path, json!("EXPEDITED"));
        assert_only(&doc, "bad_code_value", path);
    }
}

#[test]
fn required_body_fields_and_unknown_fields() {
    for (t, path) in [
        (MessageType::HandoverReportStatus, "/body/reported"),
        (MessageType::AssessmentRequest, "/body/charge"),
        (MessageType::AssessmentSupplementRequest, "/body/materials"),
        (MessageType::AssessmentOpinion, "/body/investigator_count"),
        (MessageType::AssessmentExtension, "/body/new_due_date"),
        (MessageType::AssessmentUnable, "/body/reasons"),
        (MessageType::RevocationProposal, "/body/grounds"),
        (MessageType::RevocationArrestRequest, "/body/grounds"),
        (MessageType::RevocationArrestDecision, "/body/decided_at"),
        (MessageType::RevocationRuling, "/body/ruling_no"),
        (MessageType::RevocationCommittal, "/body/facility"),
    ] {
        let mut doc = of(t);
        remove(&mut doc, path);
        assert_only(&doc, "missing_field", path);
    }
    let mut doc = of(MessageType::AssessmentOpinion);
    doc["body"]["conclusions"] = json!("suitable");
    assert_only(&doc, "unknown_field", "/body/conclusions");
    let mut doc = of(MessageType::RevocationProposal);
    doc["body"]["violations"][0]["place"] = json!("西宁");
    assert_only(&doc, "unknown_field", "/body/violations/0/place");
}

#[test]
fn investigator_count_is_a_positive_integer() {
    let mut doc = of(MessageType::AssessmentOpinion);
    set(&mut doc, "/body/investigator_count", json!(0));
    assert_only(&doc, "out_of_range", "/body/investigator_count");
    set(&mut doc, "/body/investigator_count", json!("2"));
    assert_only(&doc, "wrong_type", "/body/investigator_count");
    // One investigator is allowed (two is practice, not a rule here).
    set(&mut doc, "/body/investigator_count", json!(1));
    assert_eq!(problems(&doc), []);
}

#[test]
fn correction_lists_must_say_something() {
    for t in [
        MessageType::HandoverCorrectionRequest,
        MessageType::HandoverCorrection,
    ] {
        let mut doc = of(t);
        doc["body"] = json!({});
        assert_only(&doc, "nothing_to_correct", "/body");
    }
    let mut doc = of(MessageType::HandoverCorrectionRequest);
    set(&mut doc, "/body/missing", json!([]));
    remove(&mut doc, "/body/errors");
    assert_eq!(
        problems(&doc),
        pairs(&[
            ("nothing_to_correct", "/body"),
            ("too_few_items", "/body/missing")
        ])
    );
    let mut doc = of(MessageType::HandoverCorrectionRequest);
    // Document kinds are the one canonical list, not a partner's words.
    set(&mut doc, "/body/missing/0", json!("告知书"));
    assert_only(&doc, "bad_code_value", "/body/missing/0");
    // Errors are JSON pointers to fields.
    let mut doc = of(MessageType::HandoverCorrectionRequest);
    set(&mut doc, "/body/errors/0", json!("执行通知书有误"));
    assert_only(&doc, "invalid_format", "/body/errors/0");
}

#[test]
fn report_status_is_one_of_two_shapes() {
    // Reported and searched for: contradictory.
    let mut doc = of(MessageType::HandoverReportStatus);
    doc["body"]["search_started"] = json!(true);
    assert_only(&doc, "field_not_applicable", "/body/search_started");
    // Reported and not searched for: redundant, accepted, dropped.
    doc["body"]["search_started"] = json!(false);
    let typed = validator()
        .validate(&doc)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(typed.to_json(), of(MessageType::HandoverReportStatus));

    let mut doc = of(MessageType::HandoverReportStatus);
    remove(&mut doc, "/body/reported_at");
    assert_only(&doc, "missing_field", "/body/reported_at");

    let mut doc = of(MessageType::HandoverReportStatus);
    set(&mut doc, "/body/reported", json!(false));
    assert_eq!(
        problems(&doc),
        pairs(&[
            ("field_not_applicable", "/body/reported_at"),
            ("missing_field", "/body/search_started"),
        ])
    );
    remove(&mut doc, "/body/reported_at");
    doc["body"]["search_started"] = json!(true);
    let typed = validator()
        .validate(&doc)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(
        typed.body,
        Body::HandoverReportStatus(ReportStatus::NotReported {
            search_started: true
        })
    );
    assert_eq!(typed.to_json(), doc);
}

#[test]
fn supplied_documents_are_attached() {
    let mut doc = of(MessageType::HandoverCorrection);
    set(&mut doc, "/attachments", json!([]));
    assert_only(&doc, "missing_attachment", "/body/missing/0");

    let mut doc = of(MessageType::AssessmentSupplement);
    set(&mut doc, "/attachments/0/kind", json!("household_register"));
    assert_only(&doc, "missing_attachment", "/body/materials/0");
    // A request for materials lists what it lacks: nothing to attach.
    assert_eq!(problems(&of(MessageType::AssessmentSupplementRequest)), []);

    // A receipt with nothing missing is the normal case.
    let mut doc = of(MessageType::HandoverReceipt);
    set(&mut doc, "/body/missing", json!([]));
    assert_eq!(problems(&doc), []);
    // A supplement request may say by when (formats.md: new_due_date).
    let mut doc = of(MessageType::AssessmentSupplementRequest);
    doc["body"]["new_due_date"] = json!("2024-06-21");
    let typed = validator()
        .validate(&doc)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(typed.to_json(), doc);
}

#[test]
fn events_are_not_after_the_document() {
    for (t, path, later) in [
        (
            MessageType::HandoverReceipt,
            "/body/received_at",
            json!("2024-06-05T15:30:01+08:00"),
        ),
        (
            MessageType::HandoverReportStatus,
            "/body/reported_at",
            json!("2024-06-08T09:40:00+08:00"),
        ),
        (
            MessageType::RevocationArrestDecision,
            "/body/decided_at",
            json!("2024-09-04T02:00:01Z"),
        ),
        (
            MessageType::RevocationCommittal,
            "/body/committed_at",
            json!("2024-09-27T08:00:00+08:00"),
        ),
        (
            MessageType::RevocationProposal,
            "/body/violations/1/date",
            json!("2024-09-03"),
        ),
    ] {
        let mut doc = of(t);
        set(&mut doc, path, later);
        assert_only(&doc, "event_after_issue", path);
    }
    // Same instant in another offset is not later.
    let mut doc = of(MessageType::RevocationArrestDecision);
    set(&mut doc, "/body/decided_at", json!("2024-09-04T02:00:00Z"));
    let out = validator()
        .validate(&doc)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    // The sender's offset is kept, not converted.
    assert_eq!(
        out.to_json()["body"]["decided_at"],
        json!("2024-09-04T02:00:00Z")
    );
    // A breach on the day of issue is fine.
    let mut doc = of(MessageType::RevocationProposal);
    set(&mut doc, "/body/violations/1/date", json!("2024-09-02"));
    assert_eq!(problems(&doc), []);
}

#[test]
fn extension_moves_the_due_date_forward() {
    let mut doc = of(MessageType::AssessmentExtension);
    doc["body"]["new_due_date"] = json!("2024-06-21");
    assert_only(&doc, "due_date_not_after_issue", "/body/new_due_date");
    set(&mut doc, "/body/new_due_date", json!("2024-06-22"));
    assert_eq!(problems(&doc), []);
    set(&mut doc, "/body/new_due_date", json!("2024-06-31"));
    assert_only(&doc, "invalid_date", "/body/new_due_date");
}

#[test]
fn proposal_kind_fits_the_correction_type() {
    for (kind, ct, ok) in [
        ("revoke_probation", "probation", true),
        ("revoke_parole", "parole", true),
        ("committal", "medical_parole", true),
        ("revoke_probation", "parole", false),
        ("committal", "probation", false),
        ("revoke_parole", "control", false),
    ] {
        let mut doc = of(MessageType::RevocationProposal);
        set(&mut doc, "/body/kind", json!(kind));
        set(&mut doc, "/body/correction_type", json!(ct));
        let want = if ok {
            vec![]
        } else {
            pairs(&[("revocation_kind_mismatch", "/body/kind")])
        };
        assert_eq!(problems(&doc), want, "{kind} / {ct}");
    }
    // Without a stated correction type there is nothing to compare.
    let mut doc = of(MessageType::RevocationProposal);
    set(&mut doc, "/body/kind", json!("committal"));
    remove(&mut doc, "/body/correction_type");
    assert_eq!(problems(&doc), []);
}

#[test]
fn prisons_ask_only_about_release_measures() {
    let mut doc = of(MessageType::AssessmentRequest);
    set(&mut doc, "/sender", json!("prison.620000.3"));
    assert_only(&doc, "invalid_proposed_measure", "/body/proposed_measure");
    set(&mut doc, "/body/proposed_measure", json!("parole"));
    assert_eq!(problems(&doc), []);
}

#[test]
fn committal_facility_is_custodial() {
    let mut doc = of(MessageType::RevocationCommittal);
    set(&mut doc, "/body/facility", json!("corrections.620102"));
    assert_only(&doc, "invalid_facility", "/body/facility");
    set(&mut doc, "/body/facility", json!("police.620102"));
    assert_eq!(problems(&doc), []);
    set(&mut doc, "/body/facility", json!("jail.620102"));
    assert_only(&doc, "invalid_agency_id", "/body/facility");
}

#[test]
fn ruling_numbers_are_normalised_like_case_numbers() {
    let mut doc = of(MessageType::RevocationRuling);
    set(&mut doc, "/body/ruling_no", json!("(2024)甘0102刑更12号"));
    let out = validator()
        .validate(&doc)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(out.to_json(), of(MessageType::RevocationRuling));
    // A decision organ's own 文号 is kept verbatim.
    let mut doc = of(MessageType::RevocationCommittal);
    set(
        &mut doc,
        "/body/ruling_ref",
        json!("甘狱局监外收决〔2024〕3号"),
    );
    assert_eq!(problems(&doc), []);
}

#[test]
fn a_proposal_with_many_problems_reports_them_all() {
    let mut doc = of(MessageType::RevocationProposal);
    set(&mut doc, "/body/kind", json!("committal"));
    set(&mut doc, "/body/violations/0/date", json!("2024-02-30"));
    set(&mut doc, "/body/violations/1/date", json!("2025-01-01"));
    remove(&mut doc, "/body/violations/1/description");
    set(&mut doc, "/body/grounds", json!(""));
    set(&mut doc, "/subject/id_number", json!("620102198512020015"));
    set(&mut doc, "/recipients/0", json!("court.62010"));
    doc["in_reply_to"] = json!(7);
    assert_eq!(
        problems(&doc),
        pairs(&[
            ("invalid_length", "/body/grounds"),
            ("revocation_kind_mismatch", "/body/kind"),
            ("invalid_date", "/body/violations/0/date"),
            ("event_after_issue", "/body/violations/1/date"),
            ("missing_field", "/body/violations/1/description"),
            ("wrong_type", "/in_reply_to"),
            ("invalid_division_code", "/recipients/0"),
            ("invalid_id_check_digit", "/subject/id_number"),
        ])
    );
}

#[test]
fn new_personal_data_is_listed_and_redacted() {
    for p in [
        "/body/reasons",
        "/body/grounds",
        "/body/charge",
        "/body/violations/0/description",
        "/body/violations/1/date",
    ] {
        assert!(is_personal_data(p), "{p}");
    }
    for p in [
        "/body/kind",
        "/body/missing/0",
        "/body/ruling_no",
        "/body/facility",
    ] {
        assert!(!is_personal_data(p), "{p}");
    }
    let all: String = MessageType::ALL
        .iter()
        .map(|t| redact_personal_data(&of(*t)).to_string())
        .collect();
    for secret in [
        "𠮷建国",
        "马小龙",
        "620102199508210039",
        "雁滩路",
        "盗窃罪",
        "离开兰州市",
        "离兰车票",
        "认罪认罚",
        "无固定住所",
        "居住证明.pdf",
    ] {
        assert!(!all.contains(secret), "{secret} survived redaction");
    }
}
