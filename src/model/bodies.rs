//! The typed bodies of every message type but the 执行通知 (which lives in
//! `document`), their code lists, and their parse from / emission to
//! canonical JSON (formats.md, "Type-specific bodies").
//!
//! Each body owns only what it needs to be typed: a field's presence, JSON
//! type and code value, and the couplings that decide which variant of a
//! type it is (报到 or not). Rules comparing a body with the envelope (dates
//! against `issued_at`, listed documents against the attachments) live in
//! `validate::rules`; lengths, patterns and unknown fields in `schemas/`.
//! Like the rest of `model`, nothing here may log or quote a value.

use std::fmt;

use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

use crate::model::agency::AgencyId;
use crate::model::case_no::CaseNo;
use crate::model::codes;
use crate::model::codes_gb::CorrectionType;
use crate::model::date::{format_date, format_instant};
use crate::model::document::Reader;
use crate::violation::Violation;

macro_rules! code_list {
    ($(#[$doc:meta])* $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $code:literal ),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $( $(#[$vdoc])* $variant ),+ }

        impl $name {
            /// Every value, in schema order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),+ ];

            /// The wire code.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $code ),+ }
            }

            /// Parses the wire code; the only problem is `bad_code_value` at `path`.
            pub fn parse(s: &str, path: &str) -> Result<Self, Violation> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| codes::bad_code_value(path))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

code_list! {
    /// 调查评估程序: 速裁 cases get 5 working days instead of 10 (法 art. 18, domain.md).
    Procedure {
        /// 普通程序 (incl. 简易程序)
        Ordinary = "ordinary",
        /// 速裁程序
        Expedited = "expedited",
    }
}

code_list! {
    /// 调查评估结论.
    Conclusion {
        /// 适宜社区矫正
        Suitable = "suitable",
        /// 不适宜社区矫正
        NotSuitable = "not_suitable",
    }
}

code_list! {
    /// What a 建议书 asks for (法 arts. 46–49).
    RevocationKind {
        /// 撤销缓刑建议
        RevokeProbation = "revoke_probation",
        /// 撤销假释建议
        RevokeParole = "revoke_parole",
        /// 收监执行建议 (暂予监外执行)
        Committal = "committal",
    }
}

impl RevocationKind {
    /// The one correction type this proposal can concern: 缓刑 is revoked,
    /// 假释 is revoked, 暂予监外执行 ends in 收监执行 (法 arts. 46, 49). 管制
    /// has none: a 管制 offender who breaks the rules is punished under the
    /// 治安管理处罚法, not revoked.
    pub fn correction_type(self) -> CorrectionType {
        match self {
            Self::RevokeProbation => CorrectionType::Probation,
            Self::RevokeParole => CorrectionType::Parole,
            Self::Committal => CorrectionType::MedicalParole,
        }
    }
}

code_list! {
    /// 是否逮捕 (法 art. 47: the court decides within 48 hours).
    ArrestDecision {
        /// 决定逮捕
        Arrest = "arrest",
        /// 决定不予逮捕
        NoArrest = "no_arrest",
    }
}

code_list! {
    /// 撤销裁定 / 收监执行决定 outcome.
    RulingDecision {
        /// 撤销缓刑/假释
        Revoked = "revoked",
        /// 不予撤销 / 不予收监
        NotRevoked = "not_revoked",
        /// 收监执行
        CommittalOrdered = "committal_ordered",
    }
}

/// 回执: the corrections agency acknowledges the handover documents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandoverReceipt {
    /// When the documents were received (the 5-day period of the receipt runs from it).
    pub received_at: Option<OffsetDateTime>,
    /// Document kinds the notice announced but that did not arrive; a
    /// `handover.correction_request` asks for them.
    pub missing: Vec<String>,
}

/// 补正/补齐通知 (`handover.correction_request`) and 补齐/更正
/// (`handover.correction`): the same two lists, asked for and then supplied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorrectionItems {
    /// Document kinds missing (request) or supplied herewith as attachments (correction).
    pub missing: Vec<String>,
    /// Fields (JSON pointers into the notice, e.g. `/subject/id_number`)
    /// that are wrong (request) or corrected (correction); a wrong document
    /// is asked for again in `missing`, so document kinds stay in one list.
    pub errors: Vec<String>,
}

/// 报到情况 (法 art. 21): either the person reported, at a time, or did not,
/// and then whether the search (查找) has started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStatus {
    Reported { reported_at: OffsetDateTime },
    NotReported { search_started: bool },
}

/// 调查评估委托函.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssessmentRequest {
    pub procedure: Procedure,
    /// 罪名 (alleged or convicted).
    pub charge: String,
    /// 拟适用的社区矫正类型.
    pub proposed_measure: CorrectionType,
}

/// 补充材料通知 (`assessment.supplement_request`) and 补充材料
/// (`assessment.supplement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Materials {
    /// Document kinds asked for (request) or attached (supplement).
    pub materials: Vec<String>,
    pub reasons: Option<String>,
    /// Request only: the date by which the requester should supplement
    /// (formats.md lists `new_due_date` for every supplement_*; the schema
    /// of `assessment.supplement` does not allow it).
    pub new_due_date: Option<Date>,
}

/// 调查评估意见书.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssessmentOpinion {
    pub conclusion: Conclusion,
    /// 理由 (personal data).
    pub reasons: String,
    /// 调查人员人数, at least 1.
    pub investigator_count: u32,
}

/// 延期: the agreed new due date of the opinion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssessmentExtension {
    pub new_due_date: Date,
    pub reasons: Option<String>,
}

/// 无法评估 notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssessmentUnable {
    pub reasons: String,
}

/// 撤销缓刑/假释建议书 or 收监执行建议书.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationProposal {
    pub kind: RevocationKind,
    /// The subject's correction type, when the sender states it; must agree with `kind`.
    pub correction_type: Option<CorrectionType>,
    /// 事实和理由.
    pub grounds: String,
    /// 违反监督管理规定的行为.
    pub violations: Vec<Breach>,
}

/// One breach of supervision rules cited by a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub date: Date,
    pub description: String,
}

/// 提请逮捕 (法 art. 47).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrestRequest {
    /// Why the person may flee or endanger others.
    pub grounds: String,
}

/// 逮捕决定.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrestDecisionBody {
    pub decision: ArrestDecision,
    pub decided_at: OffsetDateTime,
    pub reasons: Option<String>,
}

/// 撤销裁定 / 收监执行决定.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruling {
    pub decision: RulingDecision,
    /// 裁定书/决定书文号: a 案号 (normalised) when it parses as one, else verbatim.
    pub ruling_no: String,
    pub effective_date: Date,
    pub reasons: Option<String>,
}

/// 收监执行回执.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committal {
    /// The ruling's `ruling_no` (normalised like it).
    pub ruling_ref: String,
    /// 监狱 or 看守所 that took the person in.
    pub facility: AgencyId,
    pub committed_at: OffsetDateTime,
}

/// A 文号 that may be a 案号: normalised if it parses, else kept verbatim.
fn case_no_or_verbatim(s: &str, path: &str) -> String {
    CaseNo::parse(s, path).map_or_else(|_| s.to_owned(), |c| c.to_string())
}

/// `Some(vec![])` when absent, `None` when present but not a list of strings.
fn opt_strings(
    r: &mut Reader,
    o: &Map<String, Value>,
    parent: &str,
    key: &str,
) -> Option<Vec<String>> {
    match o.get(key) {
        None => Some(Vec::new()),
        Some(v) => r.strings(v, &codes::pointer_join(parent, key)),
    }
}

/// `Some(None)` when absent, `None` when present but not a string.
fn opt_text(
    r: &mut Reader,
    o: &Map<String, Value>,
    parent: &str,
    key: &str,
) -> Option<Option<String>> {
    match o.get(key) {
        None => Some(None),
        Some(_) => r.opt_str(o, parent, key).map(|(s, _)| Some(s.to_owned())),
    }
}

fn req_text(r: &mut Reader, o: &Map<String, Value>, parent: &str, key: &str) -> Option<String> {
    r.req_str(o, parent, key).map(|(s, _)| s.to_owned())
}

pub(super) fn parse_receipt(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<HandoverReceipt> {
    let received_at = match o.get("received_at") {
        None => Some(None),
        Some(_) => r.req_instant(o, p, "received_at").map(Some),
    };
    let missing = opt_strings(r, o, p, "missing");
    Some(HandoverReceipt {
        received_at: received_at?,
        missing: missing?,
    })
}

/// Both lists are optional, but a request or correction listing nothing says
/// nothing: `nothing_to_correct` at the body.
pub(super) fn parse_correction_items(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<CorrectionItems> {
    let missing = opt_strings(r, o, p, "missing");
    let errors = opt_strings(r, o, p, "errors");
    let (missing, errors) = (missing?, errors?);
    if missing.is_empty() && errors.is_empty() {
        r.errs.push(Violation::new(
            codes::NOTHING_TO_CORRECT,
            p,
            "补正通知或补正文书必须列出缺少的文书（missing）或有误的字段（errors）",
            "a correction request or correction must list missing documents (`missing`) or wrong fields (`errors`)",
        ));
        return None;
    }
    Some(CorrectionItems { missing, errors })
}

fn not_applicable(r: &mut Reader, parent: &str, key: &str, zh: &str, en: &str) {
    let f = codes::pointer_join(parent, key);
    r.errs
        .push(Violation::new(codes::FIELD_NOT_APPLICABLE, f, zh, en));
}

/// `reported: true` needs `reported_at`, and a search cannot have started
/// for a person who reported (`search_started: true` is contradictory;
/// `search_started: false` is merely redundant and dropped);
/// `reported: false` needs `search_started` and forbids `reported_at`
/// (实施办法 第16条: a person who does not report is searched for).
pub(super) fn parse_report_status(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<ReportStatus> {
    let reported = r.req_bool(o, p, "reported")?;
    if reported {
        let searched = o
            .get("search_started")
            .is_some_and(|v| v != &Value::Bool(false));
        if searched {
            not_applicable(
                r,
                p,
                "search_started",
                "已报到时不能已启动查找（search_started 只能为 false 或不填）",
                "`search_started` cannot be true when the person reported",
            );
        }
        let at = r.req_instant(o, p, "reported_at")?;
        (!searched).then_some(ReportStatus::Reported { reported_at: at })
    } else {
        if o.contains_key("reported_at") {
            not_applicable(
                r,
                p,
                "reported_at",
                "未报到时不应填写“reported_at”",
                "`reported_at` does not apply when the person did not report",
            );
        }
        let started = r.req_bool(o, p, "search_started")?;
        (!o.contains_key("reported_at")).then_some(ReportStatus::NotReported {
            search_started: started,
        })
    }
}

pub(super) fn parse_assessment_request(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<AssessmentRequest> {
    let procedure = r
        .req_str(o, p, "procedure")
        .and_then(|(s, sp)| r.one(Procedure::parse(s, &sp)));
    let charge = req_text(r, o, p, "charge");
    let proposed_measure = r
        .req_str(o, p, "proposed_measure")
        .and_then(|(s, sp)| r.one(CorrectionType::parse(s, &sp)));
    Some(AssessmentRequest {
        procedure: procedure?,
        charge: charge?,
        proposed_measure: proposed_measure?,
    })
}

pub(super) fn parse_materials(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<Materials> {
    let materials = r
        .required(o, p, "materials")
        .and_then(|(v, mp)| r.strings(v, &mp));
    let reasons = opt_text(r, o, p, "reasons");
    let new_due_date = match o.get("new_due_date") {
        None => Some(None),
        Some(_) => r.opt_date(o, p, "new_due_date").map(Some),
    };
    Some(Materials {
        materials: materials?,
        reasons: reasons?,
        new_due_date: new_due_date?,
    })
}

pub(super) fn parse_opinion(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<AssessmentOpinion> {
    let conclusion = r
        .req_str(o, p, "conclusion")
        .and_then(|(s, sp)| r.one(Conclusion::parse(s, &sp)));
    let reasons = req_text(r, o, p, "reasons");
    let investigator_count = r.required(o, p, "investigator_count").and_then(|(v, cp)| {
        let n = v.as_u64();
        if n.is_none() {
            r.errs.push(codes::wrong_type(&cp, "integer"));
        }
        let n = n.and_then(|n| u32::try_from(n).ok()).filter(|n| *n >= 1);
        if v.as_u64().is_some() && n.is_none() {
            r.errs.push(codes::out_of_range(&cp));
        }
        n
    });
    Some(AssessmentOpinion {
        conclusion: conclusion?,
        reasons: reasons?,
        investigator_count: investigator_count?,
    })
}

pub(super) fn parse_extension(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<AssessmentExtension> {
    let new_due_date = r.req_date(o, p, "new_due_date");
    let reasons = opt_text(r, o, p, "reasons");
    Some(AssessmentExtension {
        new_due_date: new_due_date?,
        reasons: reasons?,
    })
}

pub(super) fn parse_unable(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<AssessmentUnable> {
    req_text(r, o, p, "reasons").map(|reasons| AssessmentUnable { reasons })
}

pub(super) fn parse_proposal(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<RevocationProposal> {
    let kind = r
        .req_str(o, p, "kind")
        .and_then(|(s, sp)| r.one(RevocationKind::parse(s, &sp)));
    let correction_type = match o.get("correction_type") {
        None => Some(None),
        Some(_) => r
            .opt_str(o, p, "correction_type")
            .and_then(|(s, sp)| r.one(CorrectionType::parse(s, &sp)))
            .map(Some),
    };
    let grounds = req_text(r, o, p, "grounds");
    let violations = match o.get("violations") {
        None => Some(Vec::new()),
        Some(v) => {
            let vp = format!("{p}/violations");
            r.array(v, &vp).and_then(|items| {
                let parsed: Vec<Option<Breach>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let ip = format!("{vp}/{i}");
                        let io = r.object(item, &ip)?;
                        let date = r.req_date(io, &ip, "date");
                        let description = req_text(r, io, &ip, "description");
                        Some(Breach {
                            date: date?,
                            description: description?,
                        })
                    })
                    .collect();
                parsed.into_iter().collect()
            })
        }
    };
    Some(RevocationProposal {
        kind: kind?,
        correction_type: correction_type?,
        grounds: grounds?,
        violations: violations?,
    })
}

pub(super) fn parse_arrest_request(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<ArrestRequest> {
    req_text(r, o, p, "grounds").map(|grounds| ArrestRequest { grounds })
}

pub(super) fn parse_arrest_decision(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<ArrestDecisionBody> {
    let decision = r
        .req_str(o, p, "decision")
        .and_then(|(s, sp)| r.one(ArrestDecision::parse(s, &sp)));
    let decided_at = r.req_instant(o, p, "decided_at");
    let reasons = opt_text(r, o, p, "reasons");
    Some(ArrestDecisionBody {
        decision: decision?,
        decided_at: decided_at?,
        reasons: reasons?,
    })
}

pub(super) fn parse_ruling(r: &mut Reader, o: &Map<String, Value>, p: &str) -> Option<Ruling> {
    let decision = r
        .req_str(o, p, "decision")
        .and_then(|(s, sp)| r.one(RulingDecision::parse(s, &sp)));
    let ruling_no = r
        .req_str(o, p, "ruling_no")
        .map(|(s, sp)| case_no_or_verbatim(s, &sp));
    let effective_date = r.req_date(o, p, "effective_date");
    let reasons = opt_text(r, o, p, "reasons");
    Some(Ruling {
        decision: decision?,
        ruling_no: ruling_no?,
        effective_date: effective_date?,
        reasons: reasons?,
    })
}

pub(super) fn parse_committal(
    r: &mut Reader,
    o: &Map<String, Value>,
    p: &str,
) -> Option<Committal> {
    let ruling_ref = r
        .req_str(o, p, "ruling_ref")
        .map(|(s, sp)| case_no_or_verbatim(s, &sp));
    let facility = r
        .required(o, p, "facility")
        .and_then(|(v, fp)| r.agency(v, &fp));
    let committed_at = r.req_instant(o, p, "committed_at");
    Some(Committal {
        ruling_ref: ruling_ref?,
        facility: facility?,
        committed_at: committed_at?,
    })
}

/// Builds a JSON object in schema order, omitting absent optionals and empty lists.
#[derive(Default)]
pub(super) struct Out(Map<String, Value>);

impl Out {
    pub(super) fn put(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), v.into());
        self
    }

    pub(super) fn opt<T: Into<Value>>(self, key: &str, v: Option<T>) -> Self {
        match v {
            Some(v) => self.put(key, v),
            None => self,
        }
    }

    pub(super) fn list(self, key: &str, v: &[String]) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(key, v.to_vec())
        }
    }

    pub(super) fn done(self) -> Value {
        Value::Object(self.0)
    }
}

pub(super) fn receipt_json(b: &HandoverReceipt) -> Value {
    Out::default()
        .opt("received_at", b.received_at.map(format_instant))
        .list("missing", &b.missing)
        .done()
}

pub(super) fn correction_items_json(b: &CorrectionItems) -> Value {
    Out::default()
        .list("missing", &b.missing)
        .list("errors", &b.errors)
        .done()
}

pub(super) fn report_status_json(b: &ReportStatus) -> Value {
    match b {
        ReportStatus::Reported { reported_at } => Out::default()
            .put("reported", true)
            .put("reported_at", format_instant(*reported_at)),
        ReportStatus::NotReported { search_started } => Out::default()
            .put("reported", false)
            .put("search_started", *search_started),
    }
    .done()
}

pub(super) fn assessment_request_json(b: &AssessmentRequest) -> Value {
    Out::default()
        .put("procedure", b.procedure.as_str())
        .put("charge", b.charge.as_str())
        .put("proposed_measure", b.proposed_measure.as_str())
        .done()
}

pub(super) fn materials_json(b: &Materials) -> Value {
    Out::default()
        .put("materials", b.materials.clone())
        .opt("reasons", b.reasons.clone())
        .opt("new_due_date", b.new_due_date.map(format_date))
        .done()
}

pub(super) fn opinion_json(b: &AssessmentOpinion) -> Value {
    Out::default()
        .put("conclusion", b.conclusion.as_str())
        .put("reasons", b.reasons.as_str())
        .put("investigator_count", b.investigator_count)
        .done()
}

pub(super) fn extension_json(b: &AssessmentExtension) -> Value {
    Out::default()
        .put("new_due_date", format_date(b.new_due_date))
        .opt("reasons", b.reasons.clone())
        .done()
}

pub(super) fn unable_json(b: &AssessmentUnable) -> Value {
    Out::default().put("reasons", b.reasons.as_str()).done()
}

pub(super) fn proposal_json(b: &RevocationProposal) -> Value {
    let violations: Vec<Value> = b
        .violations
        .iter()
        .map(|v| {
            Out::default()
                .put("date", format_date(v.date))
                .put("description", v.description.as_str())
                .done()
        })
        .collect();
    let out = Out::default()
        .put("kind", b.kind.as_str())
        .opt(
            "correction_type",
            b.correction_type.map(CorrectionType::as_str),
        )
        .put("grounds", b.grounds.as_str());
    if violations.is_empty() {
        out
    } else {
        out.put("violations", violations)
    }
    .done()
}

pub(super) fn arrest_request_json(b: &ArrestRequest) -> Value {
    Out::default().put("grounds", b.grounds.as_str()).done()
}

pub(super) fn arrest_decision_json(b: &ArrestDecisionBody) -> Value {
    Out::default()
        .put("decision", b.decision.as_str())
        .put("decided_at", format_instant(b.decided_at))
        .opt("reasons", b.reasons.clone())
        .done()
}

pub(super) fn ruling_json(b: &Ruling) -> Value {
    Out::default()
        .put("decision", b.decision.as_str())
        .put("ruling_no", b.ruling_no.as_str())
        .put("effective_date", format_date(b.effective_date))
        .opt("reasons", b.reasons.clone())
        .done()
}

pub(super) fn committal_json(b: &Committal) -> Value {
    Out::default()
        .put("ruling_ref", b.ruling_ref.as_str())
        .put("facility", b.facility.as_str())
        .put("committed_at", format_instant(b.committed_at))
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lists_round_trip() {
        for p in Procedure::ALL {
            assert_eq!(Procedure::parse(p.as_str(), "/p"), Ok(*p));
        }
        for c in Conclusion::ALL {
            assert_eq!(Conclusion::parse(c.as_str(), "/c"), Ok(*c));
        }
        for k in RevocationKind::ALL {
            assert_eq!(RevocationKind::parse(k.as_str(), "/k"), Ok(*k));
        }
        for d in ArrestDecision::ALL {
            assert_eq!(ArrestDecision::parse(d.as_str(), "/d"), Ok(*d));
        }
        for d in RulingDecision::ALL {
            assert_eq!(RulingDecision::parse(d.as_str(), "/d"), Ok(*d));
        }
        assert_eq!(
            Procedure::parse("EXPEDITED", "/body/procedure").map_err(|v| (v.code, v.path)),
            Err(("bad_code_value", "/body/procedure".to_owned()))
        );
        assert_eq!(
            RevocationKind::Committal.correction_type(),
            CorrectionType::MedicalParole
        );
    }
}
