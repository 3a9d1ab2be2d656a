//! The three flows as state machines: one table per flow that a reader can
//! check against the law, row by row.
//!
//! A case is in exactly one [`CaseState`]; each row of a flow's table says
//! which message (type, and where it matters the variant the document
//! declares) from which side is accepted in a state, the state it leads to,
//! which deadlines it starts (period names from `rules/periods.toml`), which
//! it meets and which it closes. Whatever the table does not list is refused
//! with [`OUT_OF_ORDER_STEP`] (HTTP 409 at the edge), whose message names
//! the case's current state and what that state accepts; a duplicate step is
//! simply a step its state no longer accepts.
//!
//! Which *kinds* of agency may send a message, and to whom, is data in
//! `rules/routing.toml` ([`super::routing`]); the tables here only say which
//! *side* acts at a step (the corrections agency, or its partner: decision
//! organ, requester, court, police or prison), so the two never disagree.
//!
//! Deadline names are the `step` of a stored deadline (`handover.receipt`);
//! a [`Start`] also names the *period* it runs for, which may differ (an
//! expedited assessment runs the `assessment.opinion` deadline for the
//! `assessment.opinion_expedited` period). A deadline name is open at most
//! once per case: starting a name that is open replaces it.
//!
//! This module computes nothing about time (see [`super::deadlines`]) and
//! never touches storage.

use std::fmt;

use crate::model::{
    AgencyKind, Body, CanonicalDocument, CorrectionType, Flow, MessageType, Procedure, ReportStatus,
};
use crate::violation::{Bilingual, Violation};

/// Code of a step the case's current state does not accept (HTTP 409).
pub const OUT_OF_ORDER_STEP: &str = "out_of_order_step";
/// Code of a stored case state that no table knows (a store/table mismatch:
/// an operator problem, HTTP 500).
pub const UNKNOWN_CASE_STATE: &str = "unknown_case_state";
/// Code of the side check (same code as routing's sender permission, HTTP 403).
pub const MESSAGE_TYPE_NOT_PERMITTED: &str = "message_type_not_permitted";

macro_rules! case_states {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal in $flow:ident, $zh:literal, $en:literal; )+) => {
        /// Where a case stands. The stored form is [`CaseState::as_str`]
        /// together with the case's flow.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CaseState { $( $(#[$doc])* $variant ),+ }

        impl CaseState {
            /// Every state, flow by flow, in table order.
            pub const ALL: &'static [CaseState] = &[ $( CaseState::$variant ),+ ];

            /// The stored code (`notified`), unique within its flow.
            pub fn as_str(self) -> &'static str {
                match self { $( CaseState::$variant => $code ),+ }
            }

            pub fn flow(self) -> Flow {
                match self { $( CaseState::$variant => Flow::$flow ),+ }
            }

            /// What the state means, for clerks (zh) and partners (en).
            pub fn description(self) -> Bilingual {
                match self { $( CaseState::$variant => Bilingual::new($zh, $en) ),+ }
            }
        }
    };
}

case_states! {
    // A. Handover 交付接收
    HandoverNotified = "notified" in Handover,
        "已收到执行通知，待社区矫正机构回执或通知补正",
        "notice received; awaiting the receipt or a correction request";
    HandoverCorrectionRequested = "correction_requested" in Handover,
        "已通知补正，待决定机关补齐/更正法律文书",
        "correction requested; awaiting the decision organ's correction";
    HandoverReceived = "received" in Handover,
        "法律文书齐全并已回执，待社区矫正对象报到",
        "documents complete and receipt sent; awaiting the offender's report";
    HandoverReported = "reported" in Handover,
        "社区矫正对象已报到，法律文书待核对或回执",
        "offender reported; documents being checked, receipt not yet sent";
    HandoverReportedCorrectionRequested = "reported_correction_requested" in Handover,
        "社区矫正对象已报到，已通知补正法律文书",
        "offender reported; correction of the documents requested";
    HandoverComplete = "complete" in Handover,
        "交付接收完成（文书齐全、已回执、已报到）",
        "handover complete (documents complete, receipt sent, offender reported)";
    // B. Investigation assessment 调查评估
    AssessmentRequested = "requested" in Assessment,
        "已收到调查评估委托，评估中",
        "assessment requested; investigation under way";
    AssessmentSupplementRequested = "supplement_requested" in Assessment,
        "已通知委托机关补充材料",
        "supplementary materials requested from the requester";
    AssessmentConcluded = "concluded" in Assessment,
        "已提交调查评估意见书",
        "assessment opinion delivered";
    AssessmentUnable = "unable" in Assessment,
        "已通知无法评估",
        "notified that the assessment cannot be made";
    // C. Revocation and committal 撤销缓刑/假释、收监执行
    RevocationProposed = "proposed" in Revocation,
        "已提出撤销/收监执行建议，待裁定",
        "proposal made; awaiting the ruling";
    RevocationArrestRequested = "arrest_requested" in Revocation,
        "已提请逮捕，待逮捕决定及撤销建议",
        "arrest requested; awaiting the arrest decision and the proposal";
    RevocationProposedArrestRequested = "proposed_arrest_requested" in Revocation,
        "已提出撤销建议并提请逮捕，待逮捕决定及裁定",
        "proposal made and arrest requested; awaiting the arrest decision and the ruling";
    RevocationArrestDecided = "arrest_decided" in Revocation,
        "已作出逮捕决定，待撤销建议",
        "arrest decided; awaiting the proposal";
    RevocationProposedArrestDecided = "proposed_arrest_decided" in Revocation,
        "已作出逮捕决定，待裁定",
        "arrest decided; awaiting the ruling";
    RevocationRuled = "ruled" in Revocation,
        "已作出撤销裁定/收监执行决定，待收监执行",
        "ruling made; awaiting committal";
    RevocationCommitted = "committed" in Revocation,
        "已收监执行",
        "committed to prison or detention";
}

impl CaseState {
    /// The state of `flow` stored as `code`, if any.
    pub fn parse(flow: Flow, code: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.flow() == flow && s.as_str() == code)
    }

    /// A terminal state accepts nothing; reaching it closes every deadline
    /// of the case still open.
    pub fn is_terminal(self) -> bool {
        !table(self.flow()).iter().any(|r| r.from == Some(self))
    }

    /// The rows that leave this state.
    pub fn accepts(self) -> impl Iterator<Item = &'static Rule> {
        table(self.flow())
            .iter()
            .filter(move |r| r.from == Some(self))
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side of the exchange sends a message at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The community-corrections agency (社区矫正机构).
    Corrections,
    /// Its counterpart: decision organ, requester, court, police or prison.
    Partner,
    /// Either of the two (an agreed extension).
    Either,
}

impl Side {
    fn admits(self, kind: AgencyKind) -> bool {
        match self {
            Self::Corrections => kind == AgencyKind::Corrections,
            Self::Partner => kind != AgencyKind::Corrections,
            Self::Either => true,
        }
    }
}

/// What a document declares that changes where its case goes. Most
/// messages are [`Variant::Plain`]; see [`Event::of`] for where each
/// other variant is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Plain,
    /// `handover.notice` for 暂予监外执行 (`body.correction_type = "medical_parole"`).
    MedicalParole,
    /// `assessment.request` under the expedited procedure 速裁 (`body.procedure = "expedited"`).
    Expedited,
    /// `handover.report_status` with `body.status = "reported"`.
    Reported,
    /// `handover.report_status` with `body.status = "not_reported"` (search started).
    NotReported,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "",
            Self::MedicalParole => "medical_parole",
            Self::Expedited => "expedited",
            Self::Reported => "reported",
            Self::NotReported => "not_reported",
        }
    }
}

/// A message as the state machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub message_type: MessageType,
    pub variant: Variant,
}

impl From<MessageType> for Event {
    fn from(message_type: MessageType) -> Self {
        Self {
            message_type,
            variant: Variant::Plain,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.variant {
            Variant::Plain => write!(f, "{}", self.message_type),
            v => write!(f, "{} ({})", self.message_type, v.as_str()),
        }
    }
}

impl Event {
    /// Reads the event of a validated document:
    /// - `handover.notice`: [`Variant::MedicalParole`] for 暂予监外执行;
    /// - `assessment.request`: `body.procedure` `"expedited"` → [`Variant::Expedited`],
    ///   `"ordinary"` or absent → plain (速裁 is the exception a requester declares);
    /// - `handover.report_status`: `body.status` must be `"reported"` or
    ///   `"not_reported"` (`missing_field` / `bad_code_value` otherwise).
    pub fn of(doc: &CanonicalDocument) -> Result<Self, Violation> {
        let message_type = doc.envelope.message_type;
        let variant = match &doc.body {
            Body::HandoverNotice(n) if n.correction_type == CorrectionType::MedicalParole => {
                Variant::MedicalParole
            }
            Body::AssessmentRequest(r) if r.procedure == Procedure::Expedited => Variant::Expedited,
            Body::HandoverReportStatus(ReportStatus::Reported { .. }) => Variant::Reported,
            Body::HandoverReportStatus(ReportStatus::NotReported { .. }) => Variant::NotReported,
            _ => Variant::Plain,
        };
        Ok(Self {
            message_type,
            variant,
        })
    }
}

/// From which instant a period runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The instant the message was received (protocol: the recipient's
    /// signed receipt/ack time, or the gateway's acceptance until then).
    Received,
    /// The day the judgment, ruling or decision took effect
    /// (`body.effective_date` of a `handover.notice`; 法 第20、21条).
    EffectiveDate,
}

/// A deadline a step starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// The deadline's name (`handover.report`), unique among a case's open deadlines.
    pub deadline: &'static str,
    /// The period rule it runs for (`handover.medical_parole_transfer`).
    pub period: &'static str,
    pub from: Trigger,
    /// The message that starts it also fulfils it (a notice that arrives is
    /// the notification itself: met, in time or late, at once).
    pub met_on_arrival: bool,
}

/// One row of a flow table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// `None`: the message opens a new case.
    pub from: Option<CaseState>,
    pub on: MessageType,
    pub variant: Variant,
    pub by: Side,
    pub to: CaseState,
    pub starts: &'static [Start],
    /// Open deadlines this message answers (met, or late when past due).
    pub meets: &'static [&'static str],
    /// Open deadlines that stop running without being met (made moot).
    pub closes: &'static [&'static str],
    /// The open deadline whose due instant the message's agreed new date
    /// (`body.new_due_date`) replaces.
    pub extends: Option<&'static str>,
}

/// What accepting a message does to its case.
pub type Step = Rule;

impl Rule {
    /// Every deadline still open is closed when the case reaches a terminal state.
    pub fn closes_all_open(&self) -> bool {
        self.to.is_terminal()
    }

    pub fn opens_case(&self) -> bool {
        self.from.is_none()
    }
}

const fn start(deadline: &'static str, from: Trigger) -> Start {
    Start {
        deadline,
        period: deadline,
        from,
        met_on_arrival: false,
    }
}

const NONE: &[&str] = &[];

macro_rules! row {
    ($from:expr, $on:ident $(($variant:ident))?, $by:ident => $to:ident
     $(, starts = $starts:expr)? $(, meets = $meets:expr)? $(, closes = $closes:expr)?
     $(, extends = $extends:expr)?) => {
        Rule {
            from: $from,
            on: MessageType::$on,
            variant: row!(@variant $($variant)?),
            by: Side::$by,
            to: CaseState::$to,
            starts: row!(@list $($starts)?),
            meets: row!(@names $($meets)?),
            closes: row!(@names $($closes)?),
            extends: row!(@opt $($extends)?),
        }
    };
    (@variant) => { Variant::Plain };
    (@variant $v:ident) => { Variant::$v };
    (@list) => { &[] };
    (@list $e:expr) => { $e };
    (@names) => { NONE };
    (@names $e:expr) => { $e };
    (@opt) => { None };
    (@opt $e:expr) => { Some($e) };
}

use CaseState::*;

// ---- A. Handover 交付接收 -------------------------------------------------
//
// 法 第20条: the decision organ notifies the corrections agency of the
// executing place within 5 days of the judgment/ruling/decision taking effect,
// delivers the legal documents within 10 days, and copies the procuratorate
// and the police of the executing place (copies: rules/routing.toml).
// 法 第21条: the offender reports within 10 days of the judgment taking effect;
// for 暂予监外执行 the prison/detention centre hands the person over within 10
// days (period handover.medical_parole_transfer).
// 实施办法 (决定和接收): the corrections agency returns a receipt within 5 days
// of receiving the documents; if documents are missing or wrong it notifies the
// decision organ, which supplies or corrects them within 5 days; an offender who
// reports before the documents are complete is registered first (hence the
// `reported*` states). A receipt here confirms that the documents are complete:
// incomplete documents are answered by a correction request instead, which
// answers the receipt deadline; the correction restarts it.
// A `not_reported` status (search started) is a repeatable status update that
// leaves the state unchanged; the report deadline keeps running.

const NOTICE_STARTS: &[Start] = &[
    Start {
        met_on_arrival: true,
        ..start("handover.notify", Trigger::EffectiveDate)
    },
    Start {
        met_on_arrival: true,
        ..start("handover.documents", Trigger::EffectiveDate)
    },
    start("handover.receipt", Trigger::Received),
    start("handover.report", Trigger::EffectiveDate),
];
const MEDICAL_PAROLE_NOTICE_STARTS: &[Start] = &[
    NOTICE_STARTS[0],
    NOTICE_STARTS[1],
    NOTICE_STARTS[2],
    Start {
        period: "handover.medical_parole_transfer",
        ..start("handover.report", Trigger::EffectiveDate)
    },
];
const RECEIPT: &[&str] = &["handover.receipt"];
const REPORT: &[&str] = &["handover.report"];
const CORRECTION: &[&str] = &["handover.correction"];
const START_CORRECTION: &[Start] = &[start("handover.correction", Trigger::Received)];
const RESTART_RECEIPT: &[Start] = &[start("handover.receipt", Trigger::Received)];

/// The handover flow (交付接收), 法 第20–21条.
pub const HANDOVER: &[Rule] = &[
    row!(None, HandoverNotice, Partner => HandoverNotified, starts = NOTICE_STARTS),
    row!(None, HandoverNotice(MedicalParole), Partner => HandoverNotified,
         starts = MEDICAL_PAROLE_NOTICE_STARTS),
    // documents under check
    row!(Some(HandoverNotified), HandoverReceipt, Corrections => HandoverReceived,
         meets = RECEIPT),
    row!(Some(HandoverNotified), HandoverCorrectionRequest, Corrections => HandoverCorrectionRequested,
         starts = START_CORRECTION, meets = RECEIPT),
    row!(Some(HandoverNotified), HandoverReportStatus(Reported), Corrections => HandoverReported,
         meets = REPORT),
    row!(Some(HandoverNotified), HandoverReportStatus(NotReported), Corrections => HandoverNotified),
    // correction requested
    row!(Some(HandoverCorrectionRequested), HandoverCorrection, Partner => HandoverNotified,
         starts = RESTART_RECEIPT, meets = CORRECTION),
    row!(Some(HandoverCorrectionRequested), HandoverReportStatus(Reported), Corrections
         => HandoverReportedCorrectionRequested, meets = REPORT),
    row!(Some(HandoverCorrectionRequested), HandoverReportStatus(NotReported), Corrections
         => HandoverCorrectionRequested),
    // receipt sent, offender not yet reported
    row!(Some(HandoverReceived), HandoverReportStatus(Reported), Corrections => HandoverComplete,
         meets = REPORT),
    row!(Some(HandoverReceived), HandoverReportStatus(NotReported), Corrections => HandoverReceived),
    // offender reported first
    row!(Some(HandoverReported), HandoverReceipt, Corrections => HandoverComplete,
         meets = RECEIPT),
    row!(Some(HandoverReported), HandoverCorrectionRequest, Corrections
         => HandoverReportedCorrectionRequested, starts = START_CORRECTION, meets = RECEIPT),
    row!(Some(HandoverReportedCorrectionRequested), HandoverCorrection, Partner => HandoverReported,
         starts = RESTART_RECEIPT, meets = CORRECTION),
];

// ---- B. Investigation assessment 调查评估 ----------------------------------
//
// 法 第18条: the court, procuratorate, police or prison may commission the
// corrections agency of the residence to assess the social risk and the
// effect on the community.
// 实施办法 (调查评估): opinion within 10 working days of receiving the request
// and materials, 5 working days under the expedited procedure (速裁程序); where
// more time is needed the two sides agree an extension and the opinion is due
// by the agreed date; the requester supplements missing materials within
// 3 days. A supplement request does not stop the opinion period (an agreed
// extension is the law's instrument for more time). An opinion that cannot be
// made is notified, with reasons, within the same period.

const OPINION: &[&str] = &["assessment.opinion"];
const SUPPLEMENT: &[&str] = &["assessment.supplement"];

/// The assessment flow (调查评估), 法 第18条.
pub const ASSESSMENT: &[Rule] = &[
    row!(None, AssessmentRequest, Partner => AssessmentRequested,
         starts = &[start("assessment.opinion", Trigger::Received)]),
    row!(None, AssessmentRequest(Expedited), Partner => AssessmentRequested,
    starts = &[Start {
        period: "assessment.opinion_expedited",
        ..start("assessment.opinion", Trigger::Received)
    }]),
    row!(Some(AssessmentRequested), AssessmentSupplementRequest, Corrections
         => AssessmentSupplementRequested,
         starts = &[start("assessment.supplement", Trigger::Received)]),
    row!(Some(AssessmentRequested), AssessmentExtension, Either => AssessmentRequested,
         extends = "assessment.opinion"),
    row!(Some(AssessmentRequested), AssessmentOpinion, Corrections => AssessmentConcluded,
         meets = OPINION),
    row!(Some(AssessmentRequested), AssessmentUnable, Corrections => AssessmentUnable,
         meets = OPINION),
    row!(Some(AssessmentSupplementRequested), AssessmentSupplement, Partner => AssessmentRequested,
         meets = SUPPLEMENT),
    row!(Some(AssessmentSupplementRequested), AssessmentExtension, Either
         => AssessmentSupplementRequested, extends = "assessment.opinion"),
    // Materials never came: the agency may say it cannot assess (the pending
    // supplement deadline closes with the case).
    row!(Some(AssessmentSupplementRequested), AssessmentUnable, Corrections => AssessmentUnable,
         meets = OPINION),
];

// ---- C. Revocation and committal 撤销缓刑/假释、收监执行 ----------------------
//
// 法 第46条 (撤销缓刑、假释) and 第49条 (收监执行 of 暂予监外执行): the
// corrections agency proposes; the court (or the decision organ) rules within
// 30 days of receiving the proposal (period revocation.ruling).
// 法 第47条: together with the proposal, the corrections agency may ask the
// court to arrest a person likely to flee; the court decides within 48 hours
// (period revocation.arrest_decision). The two may arrive in either order.
// 法 第48、50条: once the ruling takes effect the police/prison takes the person
// into custody (committal); no period in rules/periods.toml ("promptly").
// A ruling made before the arrest decision moots that decision.

const RULING: &[&str] = &["revocation.ruling"];
const ARREST: &[&str] = &["revocation.arrest_decision"];
const START_RULING: &[Start] = &[start("revocation.ruling", Trigger::Received)];
const START_ARREST: &[Start] = &[start("revocation.arrest_decision", Trigger::Received)];

/// The revocation flow (撤销缓刑/假释、收监执行), 法 第46–50条.
pub const REVOCATION: &[Rule] = &[
    row!(None, RevocationProposal, Corrections => RevocationProposed, starts = START_RULING),
    row!(None, RevocationArrestRequest, Corrections => RevocationArrestRequested,
         starts = START_ARREST),
    row!(Some(RevocationProposed), RevocationArrestRequest, Corrections
         => RevocationProposedArrestRequested, starts = START_ARREST),
    row!(Some(RevocationProposed), RevocationRuling, Partner => RevocationRuled, meets = RULING),
    row!(Some(RevocationArrestRequested), RevocationProposal, Corrections
         => RevocationProposedArrestRequested, starts = START_RULING),
    row!(Some(RevocationArrestRequested), RevocationArrestDecision, Partner
         => RevocationArrestDecided, meets = ARREST),
    row!(Some(RevocationProposedArrestRequested), RevocationArrestDecision, Partner
         => RevocationProposedArrestDecided, meets = ARREST),
    row!(Some(RevocationProposedArrestRequested), RevocationRuling, Partner => RevocationRuled,
         meets = RULING, closes = ARREST),
    row!(Some(RevocationArrestDecided), RevocationProposal, Corrections
         => RevocationProposedArrestDecided, starts = START_RULING),
    row!(Some(RevocationProposedArrestDecided), RevocationRuling, Partner => RevocationRuled,
         meets = RULING),
    row!(Some(RevocationRuled), RevocationCommittal, Partner => RevocationCommitted),
];

/// The table of a flow.
pub fn table(flow: Flow) -> &'static [Rule] {
    match flow {
        Flow::Handover => HANDOVER,
        Flow::Assessment => ASSESSMENT,
        Flow::Revocation => REVOCATION,
    }
}

/// The message types that open a case (no `in_reply_to`).
pub fn opens_case(message_type: MessageType) -> bool {
    table(message_type.flow())
        .iter()
        .any(|r| r.from.is_none() && r.on == message_type)
}

/// Opens a case with an opening document (`handover.notice`,
/// `assessment.request`, `revocation.proposal`, `revocation.arrest_request`).
pub fn open(event: impl Into<Event>, sender_kind: AgencyKind) -> Result<&'static Step, Violation> {
    let event = event.into();
    find(event.message_type.flow(), None, event, sender_kind)
}

/// Applies an answer to the case it belongs to (found by the pipeline via
/// `in_reply_to`). `state` is the case's stored state code. A message the
/// state does not accept is [`OUT_OF_ORDER_STEP`], naming the state.
pub fn transition(
    flow: Flow,
    state: &str,
    event: impl Into<Event>,
    sender_kind: AgencyKind,
) -> Result<&'static Step, Violation> {
    let event = event.into();
    let current = CaseState::parse(flow, state).ok_or_else(|| {
        Violation::new(
            UNKNOWN_CASE_STATE,
            "",
            format!("案件状态 {state:?} 不属于{}流程", flow_zh(flow)),
            format!(
                "case state {state:?} is not a state of the {} flow",
                flow.as_str()
            ),
        )
    })?;
    find(flow, Some(current), event, sender_kind)
}

fn find(
    flow: Flow,
    from: Option<CaseState>,
    event: Event,
    sender_kind: AgencyKind,
) -> Result<&'static Step, Violation> {
    let mut candidates = table(flow)
        .iter()
        .filter(|r| r.from == from && r.on == event.message_type && r.variant == event.variant)
        .peekable();
    if candidates.peek().is_none() {
        return Err(out_of_order(flow, from, event));
    }
    candidates
        .find(|r| r.by.admits(sender_kind))
        .ok_or_else(|| {
            Violation::new(
                MESSAGE_TYPE_NOT_PERMITTED,
                "/sender",
                format!(
                    "在当前步骤{}不能发送 {}",
                    kind_zh(sender_kind),
                    event.message_type
                ),
                format!(
                    "a {} agency may not send {} at this step",
                    sender_kind.as_str(),
                    event.message_type
                ),
            )
        })
}

fn out_of_order(flow: Flow, from: Option<CaseState>, event: Event) -> Violation {
    let Some(state) = from else {
        return Violation::new(
            OUT_OF_ORDER_STEP,
            "/in_reply_to",
            format!("{event} 不能开启新案件：须以 in_reply_to 指明所答复的文书"),
            format!("{event} does not open a case: name the document it answers in `in_reply_to`"),
        );
    };
    let accepted: Vec<String> = state.accepts().map(|r| event_of(r).to_string()).collect();
    let (accepts_zh, accepts_en) = if accepted.is_empty() {
        (
            "该案件已办结，不再接受任何文书".to_owned(),
            "the case is closed and accepts nothing".to_owned(),
        )
    } else {
        let list = dedup(accepted).join(", ");
        (format!("当前可接受：{list}"), format!("it accepts: {list}"))
    };
    let (zh_what, en_what) = if event.message_type.flow() != flow {
        (
            format!("{event} 不属于{}流程", flow_zh(flow)),
            format!("{event} does not belong to the {} flow", flow.as_str()),
        )
    } else {
        (
            format!("{event} 不能在此时发送（顺序错误或重复）"),
            format!("{event} is out of order or a duplicate"),
        )
    };
    Violation::new(
        OUT_OF_ORDER_STEP,
        "/message_type",
        format!(
            "{zh_what}：案件当前状态为 {}（{}）；{accepts_zh}",
            state.as_str(),
            state.description().zh
        ),
        format!(
            "{en_what}: the case is in state {} ({}); {accepts_en}",
            state.as_str(),
            state.description().en
        ),
    )
}

fn event_of(r: &Rule) -> Event {
    Event {
        message_type: r.on,
        variant: r.variant,
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = Vec::new();
    v.retain(|s| {
        let new = !seen.contains(s);
        if new {
            seen.push(s.clone());
        }
        new
    });
    v
}

fn flow_zh(flow: Flow) -> &'static str {
    match flow {
        Flow::Handover => "交付接收",
        Flow::Assessment => "调查评估",
        Flow::Revocation => "撤销/收监",
    }
}

pub(crate) fn kind_zh(kind: AgencyKind) -> &'static str {
    match kind {
        AgencyKind::Court => "人民法院",
        AgencyKind::Procuratorate => "人民检察院",
        AgencyKind::Police => "公安机关",
        AgencyKind::Prison => "监狱",
        AgencyKind::PrisonAdmin => "监狱管理局",
        AgencyKind::Corrections => "社区矫正机构",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::period::PeriodRules;

    const FLOWS: [Flow; 3] = [Flow::Handover, Flow::Assessment, Flow::Revocation];
    const VARIANTS: [Variant; 5] = [
        Variant::Plain,
        Variant::MedicalParole,
        Variant::Expedited,
        Variant::Reported,
        Variant::NotReported,
    ];

    fn shipped_periods() -> PeriodRules {
        PeriodRules::parse(include_str!("../../rules/periods.toml")).expect("periods load")
    }

    fn ev(message_type: MessageType, variant: Variant) -> Event {
        Event {
            message_type,
            variant,
        }
    }

    #[test]
    fn tables_are_consistent() {
        let periods = shipped_periods();
        for flow in FLOWS {
            for (i, r) in table(flow).iter().enumerate() {
                let at = format!("{} row {i}", flow.as_str());
                assert_eq!(r.on.flow(), flow, "{at}: message of another flow");
                assert_eq!(r.to.flow(), flow, "{at}: target of another flow");
                if let Some(from) = r.from {
                    assert_eq!(from.flow(), flow, "{at}: source of another flow");
                }
                for s in r.starts {
                    periods.period(s.period, None).expect(&at);
                }
                // No two rows for one (state, message, variant) and an overlapping side.
                for other in &table(flow)[i + 1..] {
                    let same = (other.from, other.on, other.variant) == (r.from, r.on, r.variant);
                    let overlap = AgencyKind::ALL
                        .iter()
                        .any(|k| r.by.admits(*k) && other.by.admits(*k));
                    assert!(!(same && overlap), "{at}: ambiguous with {other:?}");
                }
            }
        }
        crate::workflow::deadlines::check_periods(&periods).expect("every period is defined");
    }

    #[test]
    fn every_state_is_reachable_and_states_codes_are_unique_per_flow() {
        for flow in FLOWS {
            let states: Vec<CaseState> = CaseState::ALL
                .iter()
                .copied()
                .filter(|s| s.flow() == flow)
                .collect();
            let mut reached: Vec<CaseState> = table(flow)
                .iter()
                .filter(|r| r.from.is_none())
                .map(|r| r.to)
                .collect();
            let mut grew = true;
            while grew {
                grew = false;
                for r in table(flow) {
                    if r.from.is_some_and(|f| reached.contains(&f)) && !reached.contains(&r.to) {
                        reached.push(r.to);
                        grew = true;
                    }
                }
            }
            for s in &states {
                assert!(reached.contains(s), "{} {s} unreachable", flow.as_str());
                assert_eq!(CaseState::parse(flow, s.as_str()), Some(*s));
            }
            // Exactly the ends of the law are terminal.
            let terminal: Vec<&str> = states
                .iter()
                .filter(|s| s.is_terminal())
                .map(|s| s.as_str())
                .collect();
            let expected: &[&str] = match flow {
                Flow::Handover => &["complete"],
                Flow::Assessment => &["concluded", "unable"],
                Flow::Revocation => &["committed"],
            };
            assert_eq!(terminal, expected);
        }
    }

    /// Every (state, message, variant, side) of every flow: accepted exactly
    /// when the table has the row, refused otherwise with the right code and
    /// the current state in the message.
    #[test]
    fn every_transition_is_allowed_or_refused_as_the_table_says() {
        let senders = [
            AgencyKind::Corrections,
            AgencyKind::Court,
            AgencyKind::Police,
        ];
        let mut allowed = 0;
        let mut refused = 0;
        for &state in CaseState::ALL {
            let flow = state.flow();
            for &t in MessageType::ALL {
                for variant in VARIANTS {
                    for kind in senders {
                        let result = transition(flow, state.as_str(), ev(t, variant), kind);
                        let rows: Vec<&Rule> = table(flow)
                            .iter()
                            .filter(|r| r.from == Some(state) && r.on == t && r.variant == variant)
                            .collect();
                        let row = rows.iter().find(|r| r.by.admits(kind));
                        match (result, row) {
                            (Ok(step), Some(row)) => {
                                assert_eq!(step, *row);
                                allowed += 1;
                            }
                            (Err(v), None) if rows.is_empty() => {
                                assert_eq!(v.code, OUT_OF_ORDER_STEP, "{state} {t}");
                                assert!(
                                    v.message.en.contains(&format!("in state {state} ")),
                                    "{}",
                                    v.message.en
                                );
                                assert!(v.message.zh.contains(state.as_str()));
                                refused += 1;
                            }
                            (Err(v), None) => {
                                assert_eq!(v.code, MESSAGE_TYPE_NOT_PERMITTED, "{state} {t}");
                                assert_eq!(v.path, "/sender");
                                refused += 1;
                            }
                            (r, row) => panic!("{state} {t} {variant:?} {kind}: {r:?} vs {row:?}"),
                        }
                    }
                }
            }
        }
        // Each non-opening row admits at least one of the senders tried.
        let rows = FLOWS
            .iter()
            .flat_map(|f| table(*f))
            .filter(|r| r.from.is_some())
            .count();
        assert!(allowed >= rows, "{allowed} < {rows}");
        assert!(refused > allowed);
    }

    #[test]
    fn opening_documents_open_and_answers_do_not() {
        let openers: Vec<MessageType> = MessageType::ALL
            .iter()
            .copied()
            .filter(|t| opens_case(*t))
            .collect();
        assert_eq!(
            openers,
            [
                MessageType::HandoverNotice,
                MessageType::AssessmentRequest,
                MessageType::RevocationProposal,
                MessageType::RevocationArrestRequest
            ]
        );
        let step = open(MessageType::HandoverNotice, AgencyKind::Court).unwrap();
        assert_eq!(step.to, CaseState::HandoverNotified);
        assert_eq!(step.to.as_str(), crate::workflow::handover::STATE_NOTIFIED);
        let step = open(MessageType::AssessmentRequest, AgencyKind::Procuratorate).unwrap();
        assert_eq!(step.to, CaseState::AssessmentRequested);
        let step = open(
            MessageType::RevocationArrestRequest,
            AgencyKind::Corrections,
        )
        .unwrap();
        assert_eq!(step.to, CaseState::RevocationArrestRequested);

        let v = open(MessageType::HandoverReceipt, AgencyKind::Corrections).unwrap_err();
        assert_eq!(
            (v.code, v.path.as_str()),
            (OUT_OF_ORDER_STEP, "/in_reply_to")
        );
        // The corrections agency cannot send a notice; a court cannot propose revocation.
        let v = open(MessageType::HandoverNotice, AgencyKind::Corrections).unwrap_err();
        assert_eq!(v.code, MESSAGE_TYPE_NOT_PERMITTED);
        let v = open(MessageType::RevocationProposal, AgencyKind::Court).unwrap_err();
        assert_eq!(v.code, MESSAGE_TYPE_NOT_PERMITTED);
    }

    fn walk(flow: Flow, steps: &[(MessageType, Variant, AgencyKind)]) -> Vec<&'static str> {
        let (first, rest) = steps.split_first().expect("at least the opening step");
        let mut state = open(ev(first.0, first.1), first.2).unwrap().to;
        let mut seen = vec![state.as_str()];
        for &(t, v, k) in rest {
            state = transition(flow, state.as_str(), ev(t, v), k)
                .unwrap_or_else(|e| panic!("{e}"))
                .to;
            seen.push(state.as_str());
        }
        seen
    }

    use AgencyKind::{Corrections as C, Court as Ct, Police as Po};
    use MessageType as M;
    use Variant::{Expedited, NotReported, Plain, Reported};

    #[test]
    fn handover_paths() {
        // notice → receipt → reported: complete.
        assert_eq!(
            walk(
                Flow::Handover,
                &[
                    (M::HandoverNotice, Plain, Ct),
                    (M::HandoverReceipt, Plain, C),
                    (M::HandoverReportStatus, NotReported, C),
                    (M::HandoverReportStatus, Reported, C),
                ]
            ),
            ["notified", "received", "received", "complete"]
        );
        // Documents missing twice, offender reports in between.
        assert_eq!(
            walk(
                Flow::Handover,
                &[
                    (M::HandoverNotice, Plain, Ct),
                    (M::HandoverCorrectionRequest, Plain, C),
                    (M::HandoverCorrection, Plain, Ct),
                    (M::HandoverCorrectionRequest, Plain, C),
                    (M::HandoverReportStatus, Reported, C),
                    (M::HandoverCorrection, Plain, Ct),
                    (M::HandoverReceipt, Plain, C),
                ]
            ),
            [
                "notified",
                "correction_requested",
                "notified",
                "correction_requested",
                "reported_correction_requested",
                "reported",
                "complete"
            ]
        );
    }

    #[test]
    fn a_duplicate_receipt_is_out_of_order_and_names_the_state() {
        let v = transition(Flow::Handover, "received", M::HandoverReceipt, C).unwrap_err();
        assert_eq!(v.code, OUT_OF_ORDER_STEP);
        assert_eq!(v.path, "/message_type");
        assert_eq!(
            v.message.en,
            "handover.receipt is out of order or a duplicate: the case is in state received \
             (documents complete and receipt sent; awaiting the offender's report); it accepts: \
             handover.report_status (reported), handover.report_status (not_reported)"
        );
        assert!(
            v.message.zh.contains("当前状态为 received"),
            "{}",
            v.message.zh
        );
        // A closed case accepts nothing.
        let v = transition(Flow::Handover, "complete", M::HandoverReportStatus, C).unwrap_err();
        assert!(
            v.message.en.contains("the case is closed"),
            "{}",
            v.message.en
        );
        // A message of another flow.
        let v = transition(Flow::Handover, "notified", M::AssessmentOpinion, C).unwrap_err();
        assert_eq!(v.code, OUT_OF_ORDER_STEP);
        assert!(v
            .message
            .en
            .contains("does not belong to the handover flow"));
        // A state the table does not know.
        let v = transition(Flow::Handover, "requested", M::HandoverReceipt, C).unwrap_err();
        assert_eq!(v.code, UNKNOWN_CASE_STATE);
    }

    #[test]
    fn assessment_paths() {
        assert_eq!(
            walk(
                Flow::Assessment,
                &[
                    (M::AssessmentRequest, Expedited, Ct),
                    (M::AssessmentSupplementRequest, Plain, C),
                    (M::AssessmentExtension, Plain, Ct),
                    (M::AssessmentSupplement, Plain, Ct),
                    (M::AssessmentExtension, Plain, C),
                    (M::AssessmentSupplementRequest, Plain, C),
                    (M::AssessmentSupplement, Plain, Ct),
                    (M::AssessmentOpinion, Plain, C),
                ]
            ),
            [
                "requested",
                "supplement_requested",
                "supplement_requested",
                "requested",
                "requested",
                "supplement_requested",
                "requested",
                "concluded"
            ]
        );
        let expedited = open(ev(M::AssessmentRequest, Expedited), Ct).unwrap();
        assert_eq!(expedited.starts[0].deadline, "assessment.opinion");
        assert_eq!(expedited.starts[0].period, "assessment.opinion_expedited");
        // The opinion cannot come from the requester, nor twice.
        let v = transition(Flow::Assessment, "requested", M::AssessmentOpinion, Ct).unwrap_err();
        assert_eq!(v.code, MESSAGE_TYPE_NOT_PERMITTED);
        let v = transition(Flow::Assessment, "concluded", M::AssessmentOpinion, C).unwrap_err();
        assert_eq!(v.code, OUT_OF_ORDER_STEP);
        // A supplement nobody asked for.
        let v = transition(Flow::Assessment, "requested", M::AssessmentSupplement, Ct).unwrap_err();
        assert_eq!(v.code, OUT_OF_ORDER_STEP);
        assert!(v.message.en.contains("in state requested"));
    }

    #[test]
    fn revocation_paths() {
        assert_eq!(
            walk(
                Flow::Revocation,
                &[
                    (M::RevocationProposal, Plain, C),
                    (M::RevocationArrestRequest, Plain, C),
                    (M::RevocationArrestDecision, Plain, Ct),
                    (M::RevocationRuling, Plain, Ct),
                    (M::RevocationCommittal, Plain, Po),
                ]
            ),
            [
                "proposed",
                "proposed_arrest_requested",
                "proposed_arrest_decided",
                "ruled",
                "committed"
            ]
        );
        assert_eq!(
            walk(
                Flow::Revocation,
                &[
                    (M::RevocationArrestRequest, Plain, C),
                    (M::RevocationProposal, Plain, C),
                    (M::RevocationRuling, Plain, Ct),
                ]
            ),
            ["arrest_requested", "proposed_arrest_requested", "ruled"]
        );
        let ruling = transition(
            Flow::Revocation,
            "proposed_arrest_requested",
            M::RevocationRuling,
            Ct,
        )
        .unwrap();
        assert_eq!(ruling.closes, ["revocation.arrest_decision"]);
        // No committal before the ruling, no second arrest request.
        let v = transition(Flow::Revocation, "proposed", M::RevocationCommittal, Po).unwrap_err();
        assert_eq!(v.code, OUT_OF_ORDER_STEP);
        let v = transition(
            Flow::Revocation,
            "proposed_arrest_decided",
            M::RevocationArrestRequest,
            C,
        )
        .unwrap_err();
        assert_eq!(v.code, OUT_OF_ORDER_STEP);
    }
}
