//! Cases (案件): what the pipeline calls, after routing, to open a case with
//! an opening document or to move an existing case with an answer.
//!
//! - A document without `in_reply_to` must be an opening document
//!   (`handover.notice`, `assessment.request`, `revocation.proposal`,
//!   `revocation.arrest_request`): [`open`].
//! - A document with `in_reply_to` (a gateway document id) belongs to the
//!   case of that document, which the pipeline looks up; [`advance`] applies
//!   it to the case's stored state and deadlines.
//!
//! Both are pure: the caller persists the new state, the deadlines and the
//! deadline events in the same transaction as the document.

use time::OffsetDateTime;

use super::calendar::Calendar;
use super::deadlines::{self, Context, Deadline, DeadlineEvent};
use super::flows::{self, Event, Step};
use super::period::PeriodRules;
use super::routing::Route;
use crate::model::{AgencyKind, CanonicalDocument, Flow};
use crate::store::NewCase;
use crate::violation::Violation;

/// Code of an answer whose sender is not a party to the case it answers (HTTP 403).
pub const NOT_CASE_PARTY: &str = "not_case_party";

/// A case just opened.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The row to store (its deadlines evaluated at the receipt instant).
    pub case: NewCase,
    pub step: &'static Step,
    pub deadlines: Vec<Deadline>,
    pub events: Vec<DeadlineEvent>,
}

/// What the pipeline knows of an existing case.
#[derive(Debug, Clone)]
pub struct CaseRef<'a> {
    pub flow: Flow,
    pub state: &'a str,
    /// The corrections agency of the executing place (its division selects
    /// the province's periods).
    pub corrections_agency: &'a str,
    /// Every agency id that sent, received or was copied a document of the case.
    pub parties: &'a [String],
}

/// A case moved by an answer.
#[derive(Debug, Clone)]
pub struct Advanced {
    pub step: &'static Step,
    /// The new state code to store.
    pub state: &'static str,
    pub events: Vec<DeadlineEvent>,
}

/// The corrections agency of a routed document: among the sender and the
/// recipients (empty string if none).
pub fn corrections_agency(doc: &CanonicalDocument, route: &Route) -> String {
    std::iter::once(doc.envelope.sender.as_str())
        .chain(route.recipients.iter().map(String::as_str))
        .find(|id| id.starts_with("corrections."))
        .unwrap_or_default()
        .to_owned()
}

/// Opens the case of an opening document. Errors: [`flows::OUT_OF_ORDER_STEP`]
/// for a document that does not open a case (it needs `in_reply_to`), the
/// variant problems of [`Event::of`], and an extension's date problems.
pub fn open(
    case_id: String,
    doc: &CanonicalDocument,
    route: &Route,
    received_at: OffsetDateTime,
    calendar: &Calendar,
    periods: &PeriodRules,
) -> Result<Opened, Violation> {
    let event = Event::of(doc)?;
    let step = flows::open(event, doc.envelope.sender.kind())?;
    let executing = corrections_agency(doc, route);
    let division = division_of(&executing).or_else(|| {
        doc.subject
            .as_ref()
            .map(|s| s.residence.division.as_str().to_owned())
    });
    let ctx = Context::of(doc, received_at, division.as_deref())?;
    let mut deadlines = Vec::new();
    let events = deadlines::apply(&mut deadlines, step, &ctx, calendar, periods)?;
    let mut parties = vec![doc.envelope.sender.as_str().to_owned()];
    parties.extend(route.recipients.iter().cloned());
    parties.extend(route.copies.iter().cloned());
    parties.sort();
    parties.dedup();
    let case = NewCase {
        id: case_id,
        flow: step.to.flow().as_str().into(),
        state: step.to.as_str().into(),
        opened_by: doc.envelope.sender.as_str().to_owned(),
        corrections_agency: executing,
        case_no: doc.envelope.case_no.clone(),
        parties,
        deadlines: deadlines.iter().map(|d| d.to_row(received_at)).collect(),
    };
    Ok(Opened {
        case,
        step,
        deadlines,
        events,
    })
}

/// Applies an answer to its case: checks the sender is a party (the
/// corrections agency or an agency that sent, received or was copied on the
/// case), that the state accepts the message ([`flows::transition`]), and
/// updates `deadlines` in place.
pub fn advance(
    case: &CaseRef<'_>,
    deadlines: &mut Vec<Deadline>,
    doc: &CanonicalDocument,
    received_at: OffsetDateTime,
    calendar: &Calendar,
    periods: &PeriodRules,
) -> Result<Advanced, Violation> {
    let sender = doc.envelope.sender.as_str();
    let is_party = sender == case.corrections_agency || case.parties.iter().any(|p| p == sender);
    if !is_party {
        return Err(Violation::new(
            NOT_CASE_PARTY,
            "/in_reply_to",
            "发送机关不是所答复案件的当事机关",
            "the sender is not a party to the case of the document it answers",
        ));
    }
    let event = Event::of(doc)?;
    let kind: AgencyKind = doc.envelope.sender.kind();
    let step = flows::transition(case.flow, case.state, event, kind)?;
    let division = division_of(case.corrections_agency);
    let ctx = Context::of(doc, received_at, division.as_deref())?;
    let events = deadlines::apply(deadlines, step, &ctx, calendar, periods)?;
    Ok(Advanced {
        step,
        state: step.to.as_str(),
        events,
    })
}

/// The division of an agency id (`corrections.620102` → `620102`).
fn division_of(agency: &str) -> Option<String> {
    agency
        .split('.')
        .nth(1)
        .filter(|d| d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}
