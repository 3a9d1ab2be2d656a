//! `CanonicalDocument` — 规范文书: the one typed document every dialect is
//! decoded into and encoded from (formats.md, "Canonical document").
//!
//! Owns the typed shape (envelope, `Subject` — 矫正对象, `Body`), the parse
//! from canonical JSON and the emission of normalised canonical JSON, and the
//! list of fields that hold personal data. Values that can be wrong are
//! newtypes, so a `CanonicalDocument` that exists is well-formed; rules that
//! span the envelope and the body (who must give a 案号) live in
//! `validate::rules`. JSON-Schema concerns (unknown fields, lengths) are left
//! to `schemas/`: this parser reports only what it needs in order to type a
//! value, with the same codes and paths so the two reports merge cleanly.

use serde_json::{json, Map, Value};
use time::{Date, OffsetDateTime};

use crate::model::agency::AgencyId;
use crate::model::bodies::{
    self as b, ArrestDecisionBody, ArrestRequest, AssessmentExtension, AssessmentOpinion,
    AssessmentRequest, AssessmentUnable, Committal, CorrectionItems, HandoverReceipt, Materials,
    ReportStatus, RevocationProposal, Ruling,
};
use crate::model::case_no::CaseNo;
use crate::model::codes::{self, pointer_join};
use crate::model::codes_gb::{CorrectionType, Ethnicity, Gender};
use crate::model::date::{format_date, format_instant, parse_date, parse_instant};
use crate::model::division::DivisionCode;
use crate::model::id_number::IdNumber;
use crate::model::message_type::MessageType;
use crate::violation::{Violation, Violations};

/// A whole canonical document.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalDocument {
    pub envelope: Envelope,
    /// 矫正对象 / 被告人: the person the document is about. Every message type
    /// requires it (`MessageType::requires_subject`), so a parsed document
    /// always has one; the `Option` remains for callers written before that.
    pub subject: Option<Subject>,
    pub body: Body,
}

/// The fields every message type carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub message_type: MessageType,
    /// 文书编号, the sender's own number for the document (free text).
    pub document_no: String,
    /// 案号 in normalised form when it parses as one, otherwise the
    /// requester's reference verbatim (assessment requests from the police
    /// carry their own reference numbers).
    pub case_no: Option<String>,
    pub sender: AgencyId,
    pub recipients: Vec<AgencyId>,
    /// 抄送.
    pub copies: Vec<AgencyId>,
    /// 签发时间, with the sender's offset.
    pub issued_at: OffsetDateTime,
    /// Gateway document id this answers (receipts, answers).
    pub in_reply_to: Option<String>,
    pub attachments: Vec<Attachment>,
}

/// 附件: one legal document travelling with the message (判决书, 执行通知书 …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Document kind, lower-case snake_case (`judgment`, `execution_notice`, `closing_form` …).
    pub kind: String,
    pub file_name: String,
    pub media_type: String,
    /// Lower-case hex SHA-256 of the attachment bytes.
    pub sha256: String,
    pub size: Option<u64>,
}

/// 矫正对象: the person. The birth date is not stored separately: it is the
/// one embedded in the ID number, and a declared birth date that differs is
/// rejected on parse (`birth_date_mismatch`), so the two cannot disagree.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// 姓名, byte-exact (may contain `·` and characters outside GBK such as 𠮷).
    pub name: String,
    pub gender: Gender,
    /// 民族; required only where `MessageType::requires_full_subject`.
    pub ethnicity: Option<Ethnicity>,
    pub id_number: IdNumber,
    /// 居住地 / 执行地; required only where `MessageType::requires_full_subject`.
    pub residence: Option<Residence>,
}

impl Subject {
    pub fn birth_date(&self) -> Date {
        self.id_number.birth_date()
    }
}

/// 居住地: where the person lives, which decides the executing place (执行地).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Residence {
    pub division: DivisionCode,
    pub address: String,
}

/// The type-specific part: one variant per message type of domain.md (two
/// pairs share a shape). The parser only builds the variant of the
/// envelope's `message_type`, so [`Body::message_type`] always agrees with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `handover.notice` 执行通知
    HandoverNotice(HandoverNotice),
    /// `handover.receipt` 回执
    HandoverReceipt(HandoverReceipt),
    /// `handover.correction_request` 补正/补齐通知
    HandoverCorrectionRequest(CorrectionItems),
    /// `handover.correction` 补齐/更正
    HandoverCorrection(CorrectionItems),
    /// `handover.report_status` 报到情况
    HandoverReportStatus(ReportStatus),
    /// `assessment.request` 调查评估委托函
    AssessmentRequest(AssessmentRequest),
    /// `assessment.supplement_request` 补充材料通知
    AssessmentSupplementRequest(Materials),
    /// `assessment.supplement` 补充材料
    AssessmentSupplement(Materials),
    /// `assessment.opinion` 调查评估意见书
    AssessmentOpinion(AssessmentOpinion),
    /// `assessment.extension` 延期
    AssessmentExtension(AssessmentExtension),
    /// `assessment.unable` 无法评估
    AssessmentUnable(AssessmentUnable),
    /// `revocation.proposal` 撤销缓刑/假释建议书, 收监执行建议书
    RevocationProposal(RevocationProposal),
    /// `revocation.arrest_request` 提请逮捕
    RevocationArrestRequest(ArrestRequest),
    /// `revocation.arrest_decision` 逮捕决定
    RevocationArrestDecision(ArrestDecisionBody),
    /// `revocation.ruling` 撤销裁定 / 收监执行决定
    RevocationRuling(Ruling),
    /// `revocation.committal` 收监执行回执
    RevocationCommittal(Committal),
}

impl Body {
    /// The message type this body belongs to.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::HandoverNotice(_) => MessageType::HandoverNotice,
            Self::HandoverReceipt(_) => MessageType::HandoverReceipt,
            Self::HandoverCorrectionRequest(_) => MessageType::HandoverCorrectionRequest,
            Self::HandoverCorrection(_) => MessageType::HandoverCorrection,
            Self::HandoverReportStatus(_) => MessageType::HandoverReportStatus,
            Self::AssessmentRequest(_) => MessageType::AssessmentRequest,
            Self::AssessmentSupplementRequest(_) => MessageType::AssessmentSupplementRequest,
            Self::AssessmentSupplement(_) => MessageType::AssessmentSupplement,
            Self::AssessmentOpinion(_) => MessageType::AssessmentOpinion,
            Self::AssessmentExtension(_) => MessageType::AssessmentExtension,
            Self::AssessmentUnable(_) => MessageType::AssessmentUnable,
            Self::RevocationProposal(_) => MessageType::RevocationProposal,
            Self::RevocationArrestRequest(_) => MessageType::RevocationArrestRequest,
            Self::RevocationArrestDecision(_) => MessageType::RevocationArrestDecision,
            Self::RevocationRuling(_) => MessageType::RevocationRuling,
            Self::RevocationCommittal(_) => MessageType::RevocationCommittal,
        }
    }

    /// Types the body of a `t` document at `path`.
    fn parse(r: &mut Reader, t: MessageType, v: &Value, path: &str) -> Option<Self> {
        let o = r.object(v, path)?;
        let p = path;
        Some(match t {
            MessageType::HandoverNotice => Self::HandoverNotice(parse_handover_notice(r, v, path)?),
            MessageType::HandoverReceipt => Self::HandoverReceipt(b::parse_receipt(r, o, p)?),
            MessageType::HandoverCorrectionRequest => {
                Self::HandoverCorrectionRequest(b::parse_correction_items(r, o, p)?)
            }
            MessageType::HandoverCorrection => {
                Self::HandoverCorrection(b::parse_correction_items(r, o, p)?)
            }
            MessageType::HandoverReportStatus => {
                Self::HandoverReportStatus(b::parse_report_status(r, o, p)?)
            }
            MessageType::AssessmentRequest => {
                Self::AssessmentRequest(b::parse_assessment_request(r, o, p)?)
            }
            MessageType::AssessmentSupplementRequest => {
                Self::AssessmentSupplementRequest(b::parse_materials(r, o, p)?)
            }
            MessageType::AssessmentSupplement => {
                Self::AssessmentSupplement(b::parse_materials(r, o, p)?)
            }
            MessageType::AssessmentOpinion => Self::AssessmentOpinion(b::parse_opinion(r, o, p)?),
            MessageType::AssessmentExtension => {
                Self::AssessmentExtension(b::parse_extension(r, o, p)?)
            }
            MessageType::AssessmentUnable => Self::AssessmentUnable(b::parse_unable(r, o, p)?),
            MessageType::RevocationProposal => {
                Self::RevocationProposal(b::parse_proposal(r, o, p)?)
            }
            MessageType::RevocationArrestRequest => {
                Self::RevocationArrestRequest(b::parse_arrest_request(r, o, p)?)
            }
            MessageType::RevocationArrestDecision => {
                Self::RevocationArrestDecision(b::parse_arrest_decision(r, o, p)?)
            }
            MessageType::RevocationRuling => Self::RevocationRuling(b::parse_ruling(r, o, p)?),
            MessageType::RevocationCommittal => {
                Self::RevocationCommittal(b::parse_committal(r, o, p)?)
            }
        })
    }

    /// The normalised JSON of the body.
    pub fn to_json(&self) -> Value {
        match self {
            Self::HandoverNotice(n) => handover_notice_json(n),
            Self::HandoverReceipt(x) => b::receipt_json(x),
            Self::HandoverCorrectionRequest(x) | Self::HandoverCorrection(x) => {
                b::correction_items_json(x)
            }
            Self::HandoverReportStatus(x) => b::report_status_json(x),
            Self::AssessmentRequest(x) => b::assessment_request_json(x),
            Self::AssessmentSupplementRequest(x) | Self::AssessmentSupplement(x) => {
                b::materials_json(x)
            }
            Self::AssessmentOpinion(x) => b::opinion_json(x),
            Self::AssessmentExtension(x) => b::extension_json(x),
            Self::AssessmentUnable(x) => b::unable_json(x),
            Self::RevocationProposal(x) => b::proposal_json(x),
            Self::RevocationArrestRequest(x) => b::arrest_request_json(x),
            Self::RevocationArrestDecision(x) => b::arrest_decision_json(x),
            Self::RevocationRuling(x) => b::ruling_json(x),
            Self::RevocationCommittal(x) => b::committal_json(x),
        }
    }
}

/// 执行通知 (《社区矫正法》第20条): the decision organ tells the corrections
/// agency of the executing place whom to take over, for what and until when.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoverNotice {
    /// 决定机关 (court, or prison administration / police for 暂予监外执行).
    pub decision_organ: AgencyId,
    /// 生效日期 of the judgment, ruling or decision; periods of 法 art. 20–21 run from it.
    pub effective_date: Date,
    pub correction_type: CorrectionType,
    /// 罪名.
    pub offence: String,
    /// 原判刑罚, as written in the judgment.
    pub sentence_text: String,
    /// 矫正期限.
    pub term: Option<Term>,
    /// 报到期限.
    pub report_by: Option<Date>,
    /// 移送日期 (暂予监外执行 only; required then).
    pub transfer_date: Option<Date>,
    /// 暂予监外执行原因 (暂予监外执行 only; required then). Health data.
    pub reason: Option<String>,
}

/// 矫正期限: a date range that cannot end before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    start: Date,
    end: Date,
}

impl Term {
    /// `term_out_of_order` at `end_path` when `end < start`.
    pub fn new(start: Date, end: Date, end_path: &str) -> Result<Self, Violation> {
        if end < start {
            Err(Violation::new(
                codes::TERM_OUT_OF_ORDER,
                end_path,
                "矫正期限的终止日期早于起始日期",
                "the term ends before it starts",
            ))
        } else {
            Ok(Self { start, end })
        }
    }

    pub fn start(&self) -> Date {
        self.start
    }

    pub fn end(&self) -> Date {
        self.end
    }
}

/// JSON pointers of fields that hold personal data (个人信息; ethnicity and
/// health reasons are 敏感个人信息 under 《个人信息保护法》第28条). `*` stands
/// for any array index. A pointer *under* one of these is personal data too.
/// Logs, the exchange log and error reports must never carry their values.
pub const PERSONAL_DATA_PATHS: &[&str] = &[
    "/subject/name",
    "/subject/gender",
    "/subject/ethnicity",
    "/subject/birth_date",
    "/subject/id_number",
    "/subject/residence/address",
    "/body/offence",
    "/body/sentence_text",
    "/body/reason",
    "/body/reasons",
    "/body/charge",
    "/body/grounds",
    "/body/violations",
    "/attachments/*/file_name",
];

/// Whether the value at `pointer` is (or is inside) personal data.
pub fn is_personal_data(pointer: &str) -> bool {
    let tokens: Vec<&str> = pointer.split('/').collect();
    PERSONAL_DATA_PATHS.iter().any(|p| {
        let pattern: Vec<&str> = p.split('/').collect();
        tokens.len() >= pattern.len()
            && pattern.iter().zip(&tokens).all(|(want, got)| {
                *want == *got
                    || (*want == "*" && !got.is_empty() && got.bytes().all(|b| b.is_ascii_digit()))
            })
    })
}

/// A copy of `doc` with every personal-data value replaced by `"***"`, for
/// the rare diagnostic that must show a document's shape.
pub fn redact_personal_data(doc: &Value) -> Value {
    fn walk(v: &mut Value, path: &str) {
        if is_personal_data(path) {
            *v = Value::String("***".to_owned());
            return;
        }
        match v {
            Value::Object(m) => m
                .iter_mut()
                .for_each(|(k, v)| walk(v, &pointer_join(path, k))),
            Value::Array(a) => a
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| walk(v, &format!("{path}/{i}"))),
            _ => {}
        }
    }
    let mut copy = doc.clone();
    walk(&mut copy, "");
    copy
}

/// Collects every problem while walking the JSON; each accessor returns
/// `None` after recording why.
pub(super) struct Reader {
    pub(super) errs: Violations,
}

impl Reader {
    pub(super) fn object<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
    ) -> Option<&'a Map<String, Value>> {
        let o = v.as_object();
        if o.is_none() {
            self.errs.push(codes::wrong_type(path, "object"));
        }
        o
    }

    pub(super) fn string<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a str> {
        let s = v.as_str();
        if s.is_none() {
            self.errs.push(codes::wrong_type(path, "string"));
        }
        s
    }

    pub(super) fn array<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Vec<Value>> {
        let a = v.as_array();
        if a.is_none() {
            self.errs.push(codes::wrong_type(path, "array"));
        }
        a
    }

    pub(super) fn required<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<(&'a Value, String)> {
        let v = o.get(key);
        if v.is_none() {
            self.errs.push(codes::missing_field(parent, key));
        }
        v.map(|v| (v, pointer_join(parent, key)))
    }

    pub(super) fn req_str<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<(&'a str, String)> {
        let (v, path) = self.required(o, parent, key)?;
        self.string(v, &path).map(|s| (s, path))
    }

    pub(super) fn opt_str<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<(&'a str, String)> {
        let path = pointer_join(parent, key);
        let v = o.get(key)?;
        self.string(v, &path).map(|s| (s, path))
    }

    pub(super) fn one<T>(&mut self, r: Result<T, Violation>) -> Option<T> {
        r.map_err(|v| self.errs.push(v)).ok()
    }

    pub(super) fn many<T>(&mut self, r: Result<T, Violations>) -> Option<T> {
        r.map_err(|v| self.errs.extend(v)).ok()
    }

    pub(super) fn req_date(
        &mut self,
        o: &Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<Date> {
        let (s, p) = self.req_str(o, parent, key)?;
        self.one(parse_date(s, &p))
    }

    pub(super) fn opt_date(
        &mut self,
        o: &Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<Date> {
        let (s, p) = self.opt_str(o, parent, key)?;
        self.one(parse_date(s, &p))
    }

    pub(super) fn agency(&mut self, v: &Value, path: &str) -> Option<AgencyId> {
        let s = self.string(v, path)?;
        self.many(AgencyId::parse(s, path))
    }

    fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        let b = v.as_bool();
        if b.is_none() {
            self.errs.push(codes::wrong_type(path, "boolean"));
        }
        b
    }

    pub(super) fn req_bool(
        &mut self,
        o: &Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<bool> {
        let (v, p) = self.required(o, parent, key)?;
        self.boolean(v, &p)
    }

    pub(super) fn req_instant(
        &mut self,
        o: &Map<String, Value>,
        parent: &str,
        key: &str,
    ) -> Option<OffsetDateTime> {
        let (s, p) = self.req_str(o, parent, key)?;
        self.one(parse_instant(s, &p))
    }

    /// A list of strings; `None` if it is not one.
    pub(super) fn strings(&mut self, v: &Value, path: &str) -> Option<Vec<String>> {
        let items = self.array(v, path)?;
        let parsed: Vec<Option<String>> = items
            .iter()
            .enumerate()
            .map(|(i, v)| self.string(v, &format!("{path}/{i}")).map(str::to_owned))
            .collect();
        parsed.into_iter().collect()
    }

    /// A list of agency ids; `None` if any item is bad.
    pub(super) fn agencies(&mut self, v: &Value, path: &str) -> Option<Vec<AgencyId>> {
        let items = self.array(v, path)?;
        let parsed: Vec<Option<AgencyId>> = items
            .iter()
            .enumerate()
            .map(|(i, v)| self.agency(v, &format!("{path}/{i}")))
            .collect();
        parsed.into_iter().collect()
    }
}

impl CanonicalDocument {
    /// Types canonical JSON, reporting every problem it meets. Does not check
    /// what only the schema checks (unknown fields, empty strings) nor the
    /// cross-section rules of `validate::rules`: use `validate::Validator` for
    /// input from outside.
    pub fn from_json(doc: &Value) -> Result<Self, Violations> {
        let mut r = Reader {
            errs: Violations::new(),
        };
        let Some(o) = r.object(doc, "") else {
            return Err(r.errs);
        };
        let message_type = r
            .req_str(o, "", "message_type")
            .and_then(|(s, p)| r.one(MessageType::parse(s, &p)));
        let document_no = r.req_str(o, "", "document_no").map(|(s, _)| s.to_owned());
        let case_no = r.opt_str(o, "", "case_no").map(|(s, _)| {
            CaseNo::parse(s, "/case_no").map_or_else(|_| s.to_owned(), |c| c.to_string())
        });
        let sender = r
            .required(o, "", "sender")
            .and_then(|(v, p)| r.agency(v, &p));
        let recipients = r
            .required(o, "", "recipients")
            .and_then(|(v, p)| r.agencies(v, &p));
        let copies = match o.get("copies") {
            Some(v) => r.agencies(v, "/copies"),
            None => Some(Vec::new()),
        };
        let issued_at = r
            .req_str(o, "", "issued_at")
            .and_then(|(s, p)| r.one(parse_instant(s, &p)));
        let in_reply_to = r.opt_str(o, "", "in_reply_to").map(|(s, _)| s.to_owned());
        let attachments = match o.get("attachments") {
            Some(v) => parse_attachments(&mut r, v, "/attachments"),
            None => Some(Vec::new()),
        };
        // Every document names the person; answers name what they answer
        // (see `MessageType::requires_subject`, and the table in validate::rules).
        if message_type.is_some_and(MessageType::requires_in_reply_to) && in_reply_to.is_none() {
            r.errs.push(codes::missing_field("", "in_reply_to"));
        }
        let full = message_type.is_some_and(MessageType::requires_full_subject);
        let subject = match o.get("subject") {
            Some(v) => parse_subject(&mut r, v, "/subject", full).map(Some),
            None if message_type.is_some_and(MessageType::requires_subject) => {
                r.errs.push(codes::missing_field("", "subject"));
                None
            }
            None => Some(None),
        };
        let body = r
            .required(o, "", "body")
            .and_then(|(v, p)| match message_type {
                Some(t) => Body::parse(&mut r, t, v, &p),
                None => r.object(v, &p).and(None),
            });
        match (
            message_type,
            document_no,
            sender,
            recipients,
            copies,
            issued_at,
            attachments,
            subject,
            body,
        ) {
            (
                Some(message_type),
                Some(document_no),
                Some(sender),
                Some(recipients),
                Some(copies),
                Some(issued_at),
                Some(attachments),
                Some(subject),
                Some(body),
            ) if r.errs.is_empty() => Ok(Self {
                envelope: Envelope {
                    message_type,
                    document_no,
                    case_no,
                    sender,
                    recipients,
                    copies,
                    issued_at,
                    in_reply_to,
                    attachments,
                },
                subject,
                body,
            }),
            _ => Err(r.errs),
        }
    }

    /// The normalised canonical JSON: RFC 3339 instants with offset,
    /// `YYYY-MM-DD` dates, full-width 案号 brackets, 18-character ID numbers,
    /// fields in schema order, absent optionals omitted.
    pub fn to_json(&self) -> Value {
        let e = &self.envelope;
        let ids = |v: &[AgencyId]| Value::from(v.iter().map(|a| a.as_str()).collect::<Vec<_>>());
        let mut o = Map::new();
        o.insert("message_type".into(), e.message_type.as_str().into());
        o.insert("document_no".into(), e.document_no.as_str().into());
        if let Some(c) = &e.case_no {
            o.insert("case_no".into(), c.as_str().into());
        }
        o.insert("sender".into(), e.sender.as_str().into());
        o.insert("recipients".into(), ids(&e.recipients));
        o.insert("copies".into(), ids(&e.copies));
        o.insert("issued_at".into(), format_instant(e.issued_at).into());
        if let Some(r) = &e.in_reply_to {
            o.insert("in_reply_to".into(), r.as_str().into());
        }
        let attachments: Vec<Value> = e
            .attachments
            .iter()
            .map(|a| {
                let mut m = Map::new();
                m.insert("kind".into(), a.kind.as_str().into());
                m.insert("file_name".into(), a.file_name.as_str().into());
                m.insert("media_type".into(), a.media_type.as_str().into());
                m.insert("sha256".into(), a.sha256.as_str().into());
                if let Some(size) = a.size {
                    m.insert("size".into(), size.into());
                }
                Value::Object(m)
            })
            .collect();
        o.insert("attachments".into(), attachments.into());
        if let Some(s) = &self.subject {
            let mut m = Map::new();
            m.insert("name".into(), s.name.as_str().into());
            m.insert("gender".into(), s.gender.as_str().into());
            if let Some(e) = &s.ethnicity {
                m.insert("ethnicity".into(), e.as_string().into());
            }
            m.insert("birth_date".into(), format_date(s.birth_date()).into());
            m.insert("id_number".into(), s.id_number.as_str().into());
            if let Some(r) = &s.residence {
                m.insert(
                    "residence".into(),
                    json!({"division": r.division.as_str(), "address": r.address}),
                );
            }
            o.insert("subject".into(), Value::Object(m));
        }
        o.insert("body".into(), self.body.to_json());
        Value::Object(o)
    }
}

fn handover_notice_json(n: &HandoverNotice) -> Value {
    let mut m = Map::new();
    m.insert("decision_organ".into(), n.decision_organ.as_str().into());
    m.insert(
        "effective_date".into(),
        format_date(n.effective_date).into(),
    );
    m.insert("correction_type".into(), n.correction_type.as_str().into());
    m.insert("offence".into(), n.offence.as_str().into());
    m.insert("sentence_text".into(), n.sentence_text.as_str().into());
    if let Some(t) = &n.term {
        m.insert(
            "term".into(),
            json!({"start": format_date(t.start), "end": format_date(t.end)}),
        );
    }
    let dates = [
        ("report_by", n.report_by),
        ("transfer_date", n.transfer_date),
    ];
    for (key, d) in dates {
        if let Some(d) = d {
            m.insert(key.into(), format_date(d).into());
        }
    }
    if let Some(r) = &n.reason {
        m.insert("reason".into(), r.as_str().into());
    }
    Value::Object(m)
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn parse_attachments(r: &mut Reader, v: &Value, path: &str) -> Option<Vec<Attachment>> {
    let items = r.array(v, path)?;
    let parsed: Vec<Option<Attachment>> = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let p = format!("{path}/{i}");
            let o = r.object(v, &p)?;
            let kind = r.req_str(o, &p, "kind");
            let file_name = r.req_str(o, &p, "file_name");
            let media_type = r.req_str(o, &p, "media_type");
            let sha256 = r.req_str(o, &p, "sha256").and_then(|(s, sp)| {
                let ok = is_sha256_hex(s);
                if !ok {
                    r.errs.push(codes::invalid_format(
                        &sp,
                        "64 位小写十六进制 SHA-256",
                        "64 lower-case hex digits of SHA-256",
                    ));
                }
                ok.then(|| s.to_owned())
            });
            let size = match o.get("size") {
                Some(s) => {
                    let n = s.as_u64();
                    if n.is_none() {
                        r.errs
                            .push(codes::wrong_type(&format!("{p}/size"), "integer"));
                    }
                    Some(n?)
                }
                None => None,
            };
            Some(Attachment {
                kind: kind?.0.to_owned(),
                file_name: file_name?.0.to_owned(),
                media_type: media_type?.0.to_owned(),
                sha256: sha256?,
                size,
            })
        })
        .collect();
    parsed.into_iter().collect()
}

/// `full`: `ethnicity` and `residence` are required (see
/// `MessageType::requires_full_subject`); otherwise each is optional.
fn parse_subject(r: &mut Reader, v: &Value, path: &str, full: bool) -> Option<Subject> {
    let o = r.object(v, path)?;
    let name = r.req_str(o, path, "name").map(|(s, _)| s.to_owned());
    let gender = r
        .req_str(o, path, "gender")
        .and_then(|(s, p)| r.one(Gender::parse(s, &p)));
    // `Some(None)` = absent (and allowed), `None` = missing or wrong.
    let ethnicity = match o.get("ethnicity") {
        None if !full => Some(None),
        _ => r
            .req_str(o, path, "ethnicity")
            .and_then(|(s, p)| r.one(Ethnicity::parse(s, &p)))
            .map(Some),
    };
    let birth_date = r.req_date(o, path, "birth_date");
    let id_number = r
        .req_str(o, path, "id_number")
        .and_then(|(s, p)| r.many(IdNumber::parse(s, &p)));
    if let (Some(declared), Some(id)) = (birth_date, &id_number) {
        if declared != id.birth_date() {
            r.errs.push(Violation::new(
                codes::BIRTH_DATE_MISMATCH,
                format!("{path}/birth_date"),
                "出生日期与公民身份号码中的出生日期不一致",
                "birth_date differs from the birth date inside the ID number",
            ));
        }
    }
    let residence = match o.get("residence") {
        None if !full => Some(None),
        _ => r.required(o, path, "residence").and_then(|(v, p)| {
            let ro = r.object(v, &p)?;
            let division = r
                .req_str(ro, &p, "division")
                .and_then(|(s, dp)| r.one(DivisionCode::parse(s, &dp)));
            let address = r.req_str(ro, &p, "address").map(|(s, _)| s.to_owned());
            Some(Some(Residence {
                division: division?,
                address: address?,
            }))
        }),
    };
    Some(Subject {
        name: name?,
        gender: gender?,
        ethnicity: ethnicity?,
        id_number: id_number?,
        residence: residence?,
    })
    .filter(|_| birth_date.is_some())
}

fn parse_handover_notice(r: &mut Reader, v: &Value, path: &str) -> Option<HandoverNotice> {
    let o = r.object(v, path)?;
    let decision_organ = r
        .required(o, path, "decision_organ")
        .and_then(|(v, p)| r.agency(v, &p));
    let effective_date = r.req_date(o, path, "effective_date");
    let correction_type = r
        .req_str(o, path, "correction_type")
        .and_then(|(s, p)| r.one(CorrectionType::parse(s, &p)));
    let offence = r.req_str(o, path, "offence").map(|(s, _)| s.to_owned());
    let sentence_text = r
        .req_str(o, path, "sentence_text")
        .map(|(s, _)| s.to_owned());
    // `Some(None)` = absent, `None` = present but wrong.
    let term = match o.get("term") {
        None => Some(None),
        Some(tv) => {
            let tp = format!("{path}/term");
            r.object(tv, &tp).and_then(|to| {
                let start = r.req_date(to, &tp, "start");
                let end = r.req_date(to, &tp, "end");
                let end_path = format!("{tp}/end");
                r.one(Term::new(start?, end?, &end_path)).map(Some)
            })
        }
    };
    let report_by = opt_date_checked(r, o, path, "report_by");
    let transfer_date = opt_date_checked(r, o, path, "transfer_date");
    let reason = match o.get("reason") {
        None => Some(None),
        Some(_) => r
            .opt_str(o, path, "reason")
            .map(|(s, _)| Some(s.to_owned())),
    };
    // 暂予监外执行: the prison or detention centre hands the person over within
    // 10 days (domain.md, handover.report_status), so the notice must say when
    // and on what grounds; the handover deadline is computed from transfer_date.
    if correction_type == Some(CorrectionType::MedicalParole) {
        for key in ["transfer_date", "reason"] {
            if !o.contains_key(key) {
                r.errs.push(codes::missing_field(path, key));
            }
        }
    }
    Some(HandoverNotice {
        decision_organ: decision_organ?,
        effective_date: effective_date?,
        correction_type: correction_type?,
        offence: offence?,
        sentence_text: sentence_text?,
        term: term?,
        report_by: report_by?,
        transfer_date: transfer_date?,
        reason: reason?,
    })
}

/// An optional date: `Some(None)` when absent, `None` when present but wrong.
fn opt_date_checked(
    r: &mut Reader,
    o: &Map<String, Value>,
    parent: &str,
    key: &str,
) -> Option<Option<Date>> {
    match o.get(key) {
        None => Some(None),
        Some(_) => r.opt_date(o, parent, key).map(Some),
    }
}
