//! The identity and business rules of domain.md, and where each is enforced.
//!
//! Most rules belong to one value and are enforced by that value's parser in
//! `model` (so no code past the validator can hold a value that breaks them);
//! this file implements only the rules that span several parts of a document.
//!
//! ## What each message type must carry
//!
//! Every document names its person (`subject` required: name, gender,
//! birth_date, id_number; the person, by ID number, is the key both agencies'
//! clerks work by). `ethnicity` and `residence` are required only on the two
//! documents a case is filed and the executing place decided from (the police
//! committal receipt, for one, carries neither). Answers and follow-ups name
//! the document they answer (`in_reply_to`), except the 收监执行回执, which
//! names the ruling by its number (`ruling_ref`): the police or prison may
//! never have seen the gateway's id of it. All of this is decided in one
//! place, `MessageType::requires_subject` / `requires_full_subject` /
//! `requires_in_reply_to`, mirrored by each schema's `required` (a test
//! checks they agree).
//!
//! | message type | subject | in_reply_to | body: required | body: optional |
//! |---|---|---|---|---|
//! | `handover.notice` | required, with ethnicity and residence | — | decision_organ, effective_date, correction_type, offence, sentence_text (+ transfer_date, reason for medical_parole) | term, report_by |
//! | `handover.receipt` | required | required | — | received_at, missing (may be empty: nothing missing) |
//! | `handover.correction_request` | required | required | missing and/or errors | |
//! | `handover.correction` | required (a corrected subject is sent whole) | required | missing and/or errors | |
//! | `handover.report_status` | required | required | reported; reported_at if reported, search_started if not | search_started: false if reported |
//! | `assessment.request` | required, with ethnicity and residence | — | procedure, charge, proposed_measure | |
//! | `assessment.supplement_request` | required | required | materials | reasons, new_due_date (supplement by) |
//! | `assessment.supplement` | required | required | materials | reasons |
//! | `assessment.opinion` | required | required | conclusion, reasons, investigator_count (≥ 1) | |
//! | `assessment.extension` | required | required | new_due_date | reasons |
//! | `assessment.unable` | required | required | reasons | |
//! | `revocation.proposal` | required | — | kind, grounds | correction_type, violations [{date, description}] |
//! | `revocation.arrest_request` | required | optional (the proposal) | grounds | |
//! | `revocation.arrest_decision` | required | required | decision, decided_at | reasons |
//! | `revocation.ruling` | required | required | decision, ruling_no, effective_date | reasons |
//! | `revocation.committal` | required | optional (answers by `ruling_ref`) | ruling_ref, facility, committed_at | |
//!
//! Document kinds (`attachments[].kind`, `missing`, `materials`) come from
//! one list, the enum `$defs/document_kind` of `schemas/envelope.schema.json`,
//! which every dialect's kind table (`mappings/codes/document_kind_*.toml`)
//! maps exactly; `errors` are JSON pointers to fields of the answered
//! document (a wrong document is asked for again in `missing`).
//! `in_reply_to` lives in the envelope only (formats.md lists it with the
//! handover answers' fields; one place is enough). Not a rule, on purpose:
//! two investigators per assessment is common practice, but the text this
//! project follows does not state it, so `investigator_count` is only ≥ 1 (a
//! province that requires two can add `"minimum": 2` to its schema copy).
//! Which agency kind may send which type is routing's sender check
//! (`workflow::routing`), not a rule here.
//!
//! ## The rules
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
//! | every document carries `subject` (whole on notice and request), answers `in_reply_to` (table above) | `missing_field` | `model::document` + schemas |
//! | 暂予监外执行 notice has `transfer_date` and `reason` | `missing_field` | `model::document` (HandoverNotice) |
//! | handover.notice from a court has a 案号 that parses | `missing_field`, `invalid_case_no` | here |
//! | decision organ may decide that correction type (domain.md, 交付接收) | `invalid_decision_organ` | here |
//! | a correction request / correction lists something | `nothing_to_correct` | `model::bodies` |
//! | report status: `reported_at` only if reported, `search_started: true` only if not (`false` when reported is redundant, accepted and dropped) | `field_not_applicable`, `missing_field` | `model::bodies` |
//! | documents a correction supplies (`missing`) and materials a supplement supplies are attached | `missing_attachment` | here |
//! | reported events (received_at, reported_at, violation dates, decided_at, committed_at) not after `issued_at` | `event_after_issue` | here |
//! | an extension's new due date is after the day it is issued | `due_date_not_after_issue` | here |
//! | proposal `kind` fits `correction_type` (法 arts. 46–49: 缓刑 → revoke_probation, 假释 → revoke_parole, 暂予监外执行 → committal; 管制 none) | `revocation_kind_mismatch` | here |
//! | a prison requests assessments only for parole or medical parole (domain.md, 调查评估) | `invalid_proposed_measure` | here |
//! | the committal facility is a prison or a police detention centre (看守所) | `invalid_facility` | here |
//!
//! Rules here read the raw JSON, so they still report when other parts of the
//! document are broken; a value that does not parse is skipped here because
//! its parser already reported it.

use serde_json::Value;
use time::{Date, OffsetDateTime};

use crate::model::codes;
use crate::model::date::{parse_date, parse_instant};
use crate::model::{AgencyId, AgencyKind, CaseNo, CorrectionType, MessageType, RevocationKind};
use crate::violation::{Violation, Violations};

/// Every cross-section rule that applies to `doc`.
pub fn check(doc: &Value) -> Violations {
    let mut errs = Violations::new();
    let message_type = doc
        .get("message_type")
        .and_then(Value::as_str)
        .and_then(MessageType::from_code);
    let Some(t) = message_type else {
        return errs;
    };
    match t {
        MessageType::HandoverNotice => {
            court_notice_has_case_no(doc, &mut errs);
            decision_organ_may_decide(doc, &mut errs);
        }
        MessageType::HandoverReceipt => {
            instant_not_after_issue(doc, "/body/received_at", &mut errs);
        }
        MessageType::HandoverCorrection => listed_are_attached(doc, "/body/missing", &mut errs),
        MessageType::AssessmentSupplement => {
            listed_are_attached(doc, "/body/materials", &mut errs);
        }
        MessageType::HandoverReportStatus => {
            instant_not_after_issue(doc, "/body/reported_at", &mut errs);
        }
        MessageType::AssessmentRequest => prison_proposes_release_measures(doc, &mut errs),
        MessageType::AssessmentExtension => due_date_after_issue(doc, &mut errs),
        MessageType::RevocationProposal => {
            kind_fits_correction_type(doc, &mut errs);
            breaches_not_after_issue(doc, &mut errs);
        }
        MessageType::RevocationArrestDecision => {
            instant_not_after_issue(doc, "/body/decided_at", &mut errs);
        }
        MessageType::RevocationCommittal => {
            facility_is_custodial(doc, &mut errs);
            instant_not_after_issue(doc, "/body/committed_at", &mut errs);
        }
        MessageType::HandoverCorrectionRequest
        | MessageType::AssessmentSupplementRequest
        | MessageType::AssessmentOpinion
        | MessageType::AssessmentUnable
        | MessageType::RevocationArrestRequest
        | MessageType::RevocationRuling => {}
    }
    errs
}

fn str_at<'a>(doc: &'a Value, pointer: &str) -> Option<&'a str> {
    doc.pointer(pointer)?.as_str()
}

fn issued_at(doc: &Value) -> Option<OffsetDateTime> {
    parse_instant(str_at(doc, "/issued_at")?, "/issued_at").ok()
}

/// The calendar day of issue, in the sender's own offset (Beijing time for
/// every partner): the day a person reading the document sees on it.
fn issue_day(doc: &Value) -> Option<Date> {
    issued_at(doc).map(|t| t.date())
}

fn date_at(doc: &Value, pointer: &str) -> Option<Date> {
    parse_date(str_at(doc, pointer)?, pointer).ok()
}

fn event_after_issue(path: &str) -> Violation {
    let f = codes::field_name(path);
    Violation::new(
        codes::EVENT_AFTER_ISSUE,
        path,
        format!("字段“{f}”的时间晚于文书签发时间（issued_at）"),
        format!("field `{f}` is later than the document's issue time (`issued_at`)"),
    )
}

/// A document reports what has happened: a report, a decision, a committal
/// cannot be later than the document that tells of it.
fn instant_not_after_issue(doc: &Value, pointer: &str, errs: &mut Violations) {
    let (Some(issued), Some(event)) = (
        issued_at(doc),
        str_at(doc, pointer).and_then(|s| parse_instant(s, pointer).ok()),
    ) else {
        return;
    };
    if event > issued {
        errs.push(event_after_issue(pointer));
    }
}

/// The breaches a proposal cites happened before it was written.
fn breaches_not_after_issue(doc: &Value, errs: &mut Violations) {
    let (Some(day), Some(items)) = (
        issue_day(doc),
        doc.pointer("/body/violations").and_then(Value::as_array),
    ) else {
        return;
    };
    for i in 0..items.len() {
        let p = format!("/body/violations/{i}/date");
        if date_at(doc, &p).is_some_and(|d| d > day) {
            errs.push(event_after_issue(&p));
        }
    }
}

/// An extension moves the due date forward: a new due date on or before the
/// day of the agreement extends nothing.
fn due_date_after_issue(doc: &Value, errs: &mut Violations) {
    let p = "/body/new_due_date";
    let (Some(day), Some(due)) = (issue_day(doc), date_at(doc, p)) else {
        return;
    };
    if due <= day {
        errs.push(Violation::new(
            codes::DUE_DATE_NOT_AFTER_ISSUE,
            p,
            "延期后的完成日期必须晚于延期文书的签发日期",
            "the new due date must be after the day the extension is issued",
        ));
    }
}

/// What the body says is supplied herewith must travel as an attachment of
/// that kind, or the receiver is told it has a document it does not have.
fn listed_are_attached(doc: &Value, pointer: &str, errs: &mut Violations) {
    let Some(items) = doc.pointer(pointer).and_then(Value::as_array) else {
        return;
    };
    let attached: Vec<&str> = doc
        .get("attachments")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.get("kind").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    for (i, kind) in items.iter().enumerate() {
        if let Some(kind) = kind.as_str() {
            if !attached.contains(&kind) {
                errs.push(Violation::new(
                    codes::MISSING_ATTACHMENT,
                    format!("{pointer}/{i}"),
                    "列为随附的文书没有相应种类的附件",
                    "a document listed as supplied has no attachment of that kind",
                ));
            }
        }
    }
}

/// 法 arts. 46–49: 缓刑 and 假释 are revoked, 暂予监外执行 ends in 收监执行,
/// 管制 has no revocation at all.
fn kind_fits_correction_type(doc: &Value, errs: &mut Violations) {
    let (Some(kind), Some(ct)) = (
        str_at(doc, "/body/kind").and_then(|s| RevocationKind::parse(s, "").ok()),
        str_at(doc, "/body/correction_type").and_then(|s| CorrectionType::parse(s, "").ok()),
    ) else {
        return;
    };
    if kind.correction_type() != ct {
        errs.push(Violation::new(
            codes::REVOCATION_KIND_MISMATCH,
            "/body/kind",
            "建议种类与社区矫正类型不符（缓刑对应撤销缓刑，假释对应撤销假释，暂予监外执行对应收监执行，管制不适用）",
            "the proposal kind does not fit the correction type (probation: revoke_probation, parole: revoke_parole, medical parole: committal; control: none)",
        ));
    }
}

/// domain.md, 调查评估: a prison requests an assessment when it proposes
/// 假释 or 暂予监外执行; 管制 and 缓刑 are sentences only a court passes.
fn prison_proposes_release_measures(doc: &Value, errs: &mut Violations) {
    let p = "/body/proposed_measure";
    let (Some(sender), Some(ct)) = (
        agency_at(doc, "/sender"),
        str_at(doc, p).and_then(|s| CorrectionType::parse(s, p).ok()),
    ) else {
        return;
    };
    let release = matches!(ct, CorrectionType::Parole | CorrectionType::MedicalParole);
    if matches!(sender.kind(), AgencyKind::Prison | AgencyKind::PrisonAdmin) && !release {
        errs.push(Violation::new(
            codes::INVALID_PROPOSED_MEASURE,
            p,
            "监狱只能就假释或暂予监外执行委托调查评估",
            "a prison requests assessments only for parole or medical parole",
        ));
    }
}

/// 收监: into a prison (监狱) or a detention centre (看守所, run by the police).
fn facility_is_custodial(doc: &Value, errs: &mut Violations) {
    let p = "/body/facility";
    let Some(facility) = agency_at(doc, p) else {
        return;
    };
    if !matches!(facility.kind(), AgencyKind::Prison | AgencyKind::Police) {
        errs.push(Violation::new(
            codes::INVALID_FACILITY,
            p,
            "收监机关必须是监狱或看守所（公安机关）",
            "the committal facility must be a prison or a police detention centre",
        ));
    }
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
