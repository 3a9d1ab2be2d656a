//! The identity and business rules of domain.md, and where each is enforced.
//!
//! Most rules belong to one value and are enforced by that value's parser in
//! `model` (so no code past the validator can hold a value that breaks them);
//! this file implements only the rules that span several parts of a document.
//! The full list, for checking against the law:
//!
//! | rule | code | enforced in |
//! |---|---|---|
//! | 公民身份号码 length and characters (GB 11643-1999) | `invalid_id_number` | `model::IdNumber` |
//! | 公民身份号码 check digit | `invalid_id_check_digit` | `model::IdNumber` |
//! | embedded birth date real and not in the future | `invalid_id_birth_date` | `model::IdNumber` |
//! | 15-digit numbers upgraded (not an error) | — | `model::IdNumber` |
//! | declared birth date = ID birth date | `birth_date_mismatch` | `model::document` (Subject) |
//! | calendar dates exist | `invalid_date` | `model::date` |
//! | term ends on or after its start | `term_out_of_order` | `model::Term` |
//! | agency ids `{kind}.{division}[.{n}]` | `invalid_agency_id` | `model::AgencyId` |
//! | GB/T 2260 division codes | `invalid_division_code` | `model::DivisionCode` |
//! | 暂予监外执行 notice has `transfer_date` and `reason` | `missing_field` | `model::document` (HandoverNotice) |
//! | handover.notice from a court has a 案号 that parses | `missing_field`, `invalid_case_no` | here |
//! | decision organ may decide that correction type (domain.md, 交付接收) | `invalid_decision_organ` | here |
//!
//! Rules here read the raw JSON, so they still report when other parts of the
//! document are broken; a value that does not parse is skipped here because
//! its parser already reported it.

use serde_json::Value;

use crate::model::codes;
use crate::model::{AgencyId, AgencyKind, CaseNo, CorrectionType, MessageType};
use crate::violation::{Violation, Violations};

/// Every cross-section rule that applies to `doc`.
pub fn check(doc: &Value) -> Violations {
    let mut errs = Violations::new();
    let message_type = doc
        .get("message_type")
        .and_then(Value::as_str)
        .and_then(MessageType::from_code);
    if message_type == Some(MessageType::HandoverNotice) {
        court_notice_has_case_no(doc, &mut errs);
        decision_organ_may_decide(doc, &mut errs);
    }
    errs
}

fn agency_at(doc: &Value, pointer: &str) -> Option<AgencyId> {
    let s = doc.pointer(pointer)?.as_str()?;
    AgencyId::parse(s, pointer).ok()
}

/// A court's 执行通知 always names the judgment's 案号 (the corrections
/// agency files the case under it); other decision organs have none.
fn court_notice_has_case_no(doc: &Value, errs: &mut Violations) {
    if agency_at(doc, "/sender").map(|a| a.kind()) != Some(AgencyKind::Court) {
        return;
    }
    match doc.get("case_no") {
        None => errs.push(codes::missing_field("", "case_no")),
        Some(Value::String(s)) => {
            if let Err(v) = CaseNo::parse(s, "/case_no") {
                errs.push(v);
            }
        }
        // Wrong JSON type: reported by the schema and the parser.
        Some(_) => {}
    }
}

/// 决定机关 per correction type (domain.md, "Handover": a court for 管制/缓刑/假释;
/// a court, prison administration or police organ for 暂予监外执行).
fn decision_organ_may_decide(doc: &Value, errs: &mut Violations) {
    let path = "/body/decision_organ";
    let (Some(organ), Some(ct)) = (
        agency_at(doc, path),
        doc.pointer("/body/correction_type")
            .and_then(Value::as_str)
            .and_then(|s| CorrectionType::parse(s, "").ok()),
    ) else {
        return;
    };
    let allowed: &[AgencyKind] = match ct {
        CorrectionType::Control | CorrectionType::Probation | CorrectionType::Parole => {
            &[AgencyKind::Court]
        }
        CorrectionType::MedicalParole => &[
            AgencyKind::Court,
            AgencyKind::PrisonAdmin,
            AgencyKind::Police,
        ],
    };
    if !allowed.contains(&organ.kind()) {
        errs.push(Violation::new(
            codes::INVALID_DECISION_ORGAN,
            path,
            "该类机关不能作出此类社区矫正的决定（管制、缓刑、假释由法院决定；暂予监外执行由法院、监狱管理机关或公安机关决定）",
            "this kind of agency cannot decide this correction type (control, probation and parole: a court; medical parole: a court, a prison administration or the police)",
        ));
    }
}
