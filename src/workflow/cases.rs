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
            .and_then(|s| s.residence.as_ref())
            .map(|r| r.division.as_str().to_owned())
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
/// corrections agency, an agency that sent, received or was copied on the
/// case, or one writing to the case's corrections agency), that the state accepts the message ([`flows::transition`]), and
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
    // A police or prison taking the person into custody may be new to the case: an
    // agency writing to the case's corrections agency is admitted as a party.
    let is_party = sender == case.corrections_agency
        || case.parties.iter().any(|p| p == sender)
        || doc
            .envelope
            .recipients
            .iter()
            .any(|r| r.as_str() == case.corrections_agency);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use crate::workflow::deadlines::{evaluate, overdue, Status, INVALID_EXTENSION_DATE};
    use crate::workflow::flows::OUT_OF_ORDER_STEP;
    use crate::workflow::routing;
    use serde_json::{json, Value};
    use time::macros::datetime;

    fn calendar() -> Calendar {
        Calendar::parse(include_str!("../../rules/calendar/cn-official-days.tsv")).unwrap()
    }

    fn periods() -> PeriodRules {
        PeriodRules::parse(include_str!("../../rules/periods.toml")).unwrap()
    }

    fn registry() -> Registry {
        Registry::parse(include_str!("../../rules/agencies.demo.toml")).unwrap()
    }

    use crate::workflow::test_docs::{doc, try_doc};

    /// A case as the store would hold it, advanced message by message.
    struct TestCase {
        flow: Flow,
        state: String,
        corrections: String,
        parties: Vec<String>,
        deadlines: Vec<Deadline>,
    }

    impl TestCase {
        fn open(d: &CanonicalDocument, at: OffsetDateTime) -> Self {
            let route = routing::route(d, &registry()).unwrap();
            let opened = open("case-1".into(), d, &route, at, &calendar(), &periods()).unwrap();
            Self {
                flow: opened.step.to.flow(),
                state: opened.case.state,
                corrections: opened.case.corrections_agency,
                parties: opened.case.parties,
                deadlines: opened.deadlines,
            }
        }

        fn answer(
            &mut self,
            d: &CanonicalDocument,
            at: OffsetDateTime,
        ) -> Result<Advanced, Violation> {
            let case = CaseRef {
                flow: self.flow,
                state: &self.state,
                corrections_agency: &self.corrections,
                parties: &self.parties,
            };
            let advanced = advance(&case, &mut self.deadlines, d, at, &calendar(), &periods())?;
            self.state = advanced.state.to_owned();
            // What the pipeline does: every routed agency becomes a party.
            let route = routing::route(d, &registry()).unwrap();
            self.parties
                .extend(route.recipients.into_iter().chain(route.copies));
            self.parties.sort();
            self.parties.dedup();
            Ok(advanced)
        }

        fn deadline(&self, name: &str) -> &Deadline {
            self.deadlines
                .iter()
                .rev()
                .find(|d| d.name == name)
                .unwrap_or_else(|| panic!("no deadline {name}"))
        }
    }

    const CORR: &str = "corrections.620102";
    const COURT: &str = "court.620102";
    const PROC: &str = "procuratorate.620102";

    #[test]
    fn expedited_assessment_received_before_national_day_2024() {
        // 速裁: 5 working days from Friday 2024-09-27. The calendar has Sunday 09-29 as a
        // makeup working day (1), Monday 09-30 (2), 10-01..07 off, 10-08 (3), 10-09 (4),
        // 10-10 (5): due Thursday 2024-10-10, not 10-11.
        let at = datetime!(2024-09-27 16:40 +08:00);
        let case = TestCase::open(
            &doc(
                "assessment.request",
                PROC,
                &[CORR],
                json!({"procedure": "expedited"}),
            ),
            at,
        );
        let d = case.deadline("assessment.opinion");
        assert_eq!(d.period, "5wd");
        assert_eq!(d.due, Some(datetime!(2024-10-10 23:59:59 +08:00)));
        // The ordinary procedure: 10 working days → Wednesday 10-16.
        let ordinary = TestCase::open(
            &doc(
                "assessment.request",
                PROC,
                &[CORR],
                json!({"procedure": "ordinary"}),
            ),
            at,
        );
        assert_eq!(
            ordinary.deadline("assessment.opinion").due,
            Some(datetime!(2024-10-16 23:59:59 +08:00))
        );
        // An unknown procedure never reaches the flow: the typed document refuses it.
        let unknown = try_doc(
            "assessment.request",
            PROC,
            &[CORR],
            json!({"procedure": "fast"}),
        )
        .unwrap_err();
        assert!(unknown
            .iter()
            .any(|v| (v.code, v.path.as_str()) == ("bad_code_value", "/body/procedure")));
    }

    #[test]
    fn an_agreed_extension_replaces_the_due_instant() {
        let at = datetime!(2024-09-27 16:40 +08:00);
        let mut case = TestCase::open(
            &doc(
                "assessment.request",
                COURT,
                &[CORR],
                json!({"procedure": "ordinary"}),
            ),
            at,
        );
        // Moving it earlier, or not giving a date, is refused and changes nothing.
        let v = case
            .answer(
                &doc(
                    "assessment.extension",
                    CORR,
                    &[COURT],
                    json!({"new_due_date": "2024-10-15"}),
                ),
                at,
            )
            .unwrap_err();
        assert_eq!(v.code, INVALID_EXTENSION_DATE);
        // An impossible date never reaches the flow: the typed document refuses it.
        let bad = try_doc(
            "assessment.extension",
            CORR,
            &[COURT],
            json!({"new_due_date": "2024-02-30"}),
        )
        .unwrap_err();
        assert!(bad.iter().any(|v| v.code == "invalid_date"));
        assert_eq!(case.state, "requested");
        assert_eq!(
            case.deadline("assessment.opinion").due,
            Some(datetime!(2024-10-16 23:59:59 +08:00))
        );
        let ext = case
            .answer(
                &doc(
                    "assessment.extension",
                    CORR,
                    &[COURT],
                    json!({"new_due_date": "2024-10-25"}),
                ),
                datetime!(2024-10-14 09:00 +08:00),
            )
            .unwrap();
        assert_eq!(ext.state, "requested");
        let d = case.deadline("assessment.opinion");
        assert_eq!(d.due, Some(datetime!(2024-10-25 23:59:59 +08:00)));
        // Past the original due date but inside the agreed one: not overdue.
        let later = datetime!(2024-10-20 12:00 +08:00);
        assert_eq!(d.status(later), Status::Due);
        assert!(overdue(&case.deadlines, later).is_empty());
        case.answer(&doc("assessment.opinion", CORR, &[COURT], json!({})), later)
            .unwrap();
        assert_eq!(case.state, "concluded");
        assert_eq!(
            case.deadline("assessment.opinion").status(later),
            Status::Met
        );
    }

    #[test]
    fn arrest_decision_within_48_hours() {
        let proposal_at = datetime!(2024-09-29 10:15 +08:00);
        let mut case = TestCase::open(
            &doc("revocation.proposal", CORR, &[COURT], json!({})),
            proposal_at,
        );
        case.answer(
            &doc("revocation.arrest_request", CORR, &[COURT], json!({})),
            proposal_at,
        )
        .unwrap();
        let d = case.deadline("revocation.arrest_decision");
        // 48 hours exactly, not moved off National Day.
        assert_eq!(d.due, Some(datetime!(2024-10-01 10:15 +08:00)));
        assert_eq!(d.period, "48h");
        let due = datetime!(2024-10-01 10:15 +08:00);
        assert_eq!(
            evaluate(due, Some(datetime!(2024-10-01 10:15 +08:00)), due),
            Status::Met
        );
        assert_eq!(
            evaluate(due, Some(datetime!(2024-10-01 10:16 +08:00)), due),
            Status::Overdue
        );
        // The background job sees it the minute after it ran out.
        let late = datetime!(2024-10-01 10:16 +08:00);
        let names: Vec<&str> = overdue(&case.deadlines, late)
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, ["revocation.arrest_decision"]);
        let decided = case
            .answer(
                &doc("revocation.arrest_decision", COURT, &[CORR], json!({})),
                late,
            )
            .unwrap();
        assert_eq!(
            decided.events,
            [DeadlineEvent::Met {
                name: "revocation.arrest_decision".into(),
                late: true
            }]
        );
        assert_eq!(
            case.deadline("revocation.arrest_decision").status(late),
            Status::Overdue
        );
        assert!(
            overdue(&case.deadlines, late).is_empty(),
            "answered late is no longer alerted"
        );
    }

    #[test]
    fn thirty_day_ruling_ending_on_national_day_moves_to_the_next_working_day() {
        // 2024-09-01 + 30 days = Tuesday 10-01, a holiday; 10-01..07 off → Tuesday 10-08.
        let mut case = TestCase::open(
            &doc("revocation.proposal", CORR, &[COURT], json!({})),
            datetime!(2024-09-01 15:00 +08:00),
        );
        assert_eq!(
            case.deadline("revocation.ruling").due,
            Some(datetime!(2024-10-08 23:59:59 +08:00))
        );
        let on_time = datetime!(2024-10-08 18:00 +08:00);
        assert!(overdue(&case.deadlines, on_time).is_empty());
        case.answer(
            &doc("revocation.ruling", COURT, &[CORR], json!({})),
            on_time,
        )
        .unwrap();
        assert_eq!(case.state, "ruled");
        assert_eq!(
            case.deadline("revocation.ruling").status(on_time),
            Status::Met
        );
        let done = case
            .answer(
                &doc(
                    "revocation.committal",
                    "police.620102",
                    &[CORR, COURT],
                    json!({}),
                ),
                on_time,
            )
            .unwrap();
        assert_eq!(done.state, "committed");
    }

    #[test]
    fn handover_case_from_notice_to_complete() {
        // Fixture: court notice, probation, effective 2024-06-01, report_by 2024-06-11.
        let notice = doc("handover.notice", COURT, &[CORR], json!({}));
        let at = datetime!(2024-06-03 10:20 +08:00);
        let mut case = TestCase::open(&notice, at);
        assert_eq!(case.state, "notified");
        assert_eq!(case.parties, [CORR, COURT, "police.620102", PROC]);
        let status = |c: &TestCase, n: &str| c.deadline(n).status(at);
        // Notified on day 2 of 5, documents on day 2 of 10: both met on arrival.
        assert_eq!(status(&case, "handover.notify"), Status::Met);
        assert_eq!(status(&case, "handover.documents"), Status::Met);
        assert_eq!(
            case.deadline("handover.receipt").due,
            Some(datetime!(2024-06-11 23:59:59 +08:00)),
            "06-08 is a Saturday, 06-10 the Dragon Boat Festival"
        );
        assert_eq!(
            case.deadline("handover.report").due,
            Some(datetime!(2024-06-11 23:59:59 +08:00))
        );
        // Someone other than the parties cannot answer.
        let stranger = doc(
            "handover.receipt",
            "corrections.620103",
            &[COURT],
            json!({}),
        );
        assert_eq!(case.answer(&stranger, at).unwrap_err().code, NOT_CASE_PARTY);
        // Correction request answers the receipt deadline and starts the correction one.
        let t1 = datetime!(2024-06-04 09:00 +08:00);
        case.answer(
            &doc("handover.correction_request", CORR, &[COURT], json!({})),
            t1,
        )
        .unwrap();
        assert_eq!(
            case.deadline("handover.correction").due,
            Some(datetime!(2024-06-11 23:59:59 +08:00))
        );
        let t2 = datetime!(2024-06-05 09:00 +08:00);
        case.answer(&doc("handover.correction", COURT, &[CORR], json!({})), t2)
            .unwrap();
        // The receipt period restarts with the corrected documents: 06-05 + 5 = 06-10 (holiday) → 06-11.
        assert_eq!(case.deadline("handover.receipt").starts_at, t2);
        case.answer(&doc("handover.receipt", CORR, &[COURT], json!({})), t2)
            .unwrap();
        let dup = case
            .answer(&doc("handover.receipt", CORR, &[COURT], json!({})), t2)
            .unwrap_err();
        assert_eq!(dup.code, OUT_OF_ORDER_STEP);
        assert!(dup.message.en.contains("in state received"));
        case.answer(
            &doc(
                "handover.report_status",
                CORR,
                &[COURT],
                json!({"reported": true}),
            ),
            datetime!(2024-06-07 11:00 +08:00),
        )
        .unwrap();
        assert_eq!(case.state, "complete");
        assert!(case.deadlines.iter().all(|d| !d.is_open()));
        let statuses: Vec<(&str, &str)> = case
            .deadlines
            .iter()
            .map(|d| (d.name.as_str(), d.status(at).as_str()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("handover.notify", "met"),
                ("handover.documents", "met"),
                ("handover.receipt", "met"),
                ("handover.report", "met"),
                ("handover.correction", "met"),
                ("handover.receipt", "met"),
            ]
        );
    }

    #[test]
    fn late_notice_and_medical_parole_transfer() {
        let mut v: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/canonical/handover.notice.json"
        ))
        .unwrap();
        v["sender"] = json!("prison_admin.620000");
        v["body"]["decision_organ"] = json!("prison_admin.620000");
        v["body"]["correction_type"] = json!("medical_parole");
        v["body"]["transfer_date"] = json!("2024-06-05");
        v["body"]["reason"] = json!("x");
        v["body"].as_object_mut().unwrap().remove("report_by");
        let notice = CanonicalDocument::from_json(&v).unwrap();
        // Arrives 2024-06-12: effective 06-01 + 5 = 06-06, + 10 = 06-11: both late.
        let case = TestCase::open(&notice, datetime!(2024-06-12 09:00 +08:00));
        let now = datetime!(2024-06-12 09:00 +08:00);
        assert_eq!(
            case.deadline("handover.notify").status(now),
            Status::Overdue
        );
        assert_eq!(
            case.deadline("handover.documents").status(now),
            Status::Overdue
        );
        let report = case.deadline("handover.report");
        assert_eq!(report.period, "10d", "handover.medical_parole_transfer");
        assert_eq!(report.due, Some(datetime!(2024-06-11 23:59:59 +08:00)));
        // Unanswered and past due: the job alerts on it (late-met ones it does not).
        let names: Vec<&str> = overdue(&case.deadlines, now)
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, ["handover.report"]);
    }

    #[test]
    fn a_period_outside_the_calendar_is_kept_uncomputable_with_the_reason() {
        // 2026-12-28 + 10 working days runs into 2027, which the calendar lacks.
        let case = TestCase::open(
            &doc(
                "assessment.request",
                COURT,
                &[CORR],
                json!({"procedure": "ordinary"}),
            ),
            datetime!(2026-12-28 10:00 +08:00),
        );
        let d = case.deadline("assessment.opinion");
        assert_eq!(d.due, None);
        assert_eq!(
            d.status(datetime!(2027-02-01 00:00 +08:00)),
            Status::Uncomputable
        );
        let note = d.note.as_deref().unwrap();
        assert!(
            note.contains("outside the official holiday calendar"),
            "{note}"
        );
        assert!(note.contains("2027-01-01"), "{note}");
        assert_eq!(
            d.to_row(datetime!(2026-12-28 10:00 +08:00)).status,
            "uncomputable"
        );
        assert!(overdue(&case.deadlines, datetime!(2027-06-01 00:00 +08:00)).is_empty());
    }

    #[test]
    fn province_overrides_apply_by_the_executing_place() {
        let rules = PeriodRules::parse(&format!(
            "{}\n[province.62.assessment]\nopinion = \"7wd\"\n",
            include_str!("../../rules/periods.toml")
        ))
        .unwrap();
        let d = doc(
            "assessment.request",
            COURT,
            &[CORR],
            json!({"procedure": "ordinary"}),
        );
        let route = routing::route(&d, &registry()).unwrap();
        let opened = open(
            "c".into(),
            &d,
            &route,
            datetime!(2024-09-27 16:40 +08:00),
            &calendar(),
            &rules,
        )
        .unwrap();
        assert_eq!(opened.deadlines[0].period, "7wd");
        // 7th working day after 09-27: 09-29, 09-30, 10-08, 10-09, 10-10, 10-11, 10-12 (makeup Saturday).
        assert_eq!(
            opened.deadlines[0].due,
            Some(datetime!(2024-10-12 23:59:59 +08:00))
        );
    }

    #[test]
    fn evaluate_counts_whole_seconds() {
        let due = datetime!(2024-10-10 23:59:59 +08:00);
        assert_eq!(
            evaluate(due, None, datetime!(2024-10-10 23:59:59.999 +08:00)),
            Status::Due
        );
        assert_eq!(
            evaluate(due, None, datetime!(2024-10-11 00:00 +08:00)),
            Status::Overdue
        );
        assert_eq!(
            evaluate(
                due,
                Some(datetime!(2024-10-10 15:59:59.5 UTC)),
                datetime!(2025-01-01 0:00 UTC)
            ),
            Status::Met
        );
        assert_eq!(
            evaluate(due, Some(datetime!(2024-10-10 16:00 UTC)), due),
            Status::Overdue
        );
    }
}
