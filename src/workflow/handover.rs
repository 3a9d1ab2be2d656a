//! The handover flow (交付接收): opening a case when a decision organ's
//! notice arrives, with its legal periods (社区矫正法 第20、21条).
//!
//! The periods come from `rules/periods.toml`; this module only decides which
//! periods a notice starts and from which event each one runs.

use time::{OffsetDateTime, Time};

use crate::model::{Body, CanonicalDocument};
use crate::store::{NewCase, NewDeadline};
use crate::timefmt::{unix_ms, BEIJING};
use crate::workflow::calendar::Calendar;
use crate::workflow::period::{self, PeriodRules};
use crate::workflow::routing::Route;

/// State of a handover case right after the notice was accepted.
pub const STATE_NOTIFIED: &str = "notified";

/// Opens the handover case of a notice. Deadlines the calendar cannot compute
/// (a year outside the official calendar) are stored as `uncomputable` with
/// the reason, never guessed, and do not block the document: the notice is
/// legally valid and must reach the corrections agency.
pub fn open_case(
    case_id: String,
    doc: &CanonicalDocument,
    route: &Route,
    received_at: OffsetDateTime,
    calendar: &Calendar,
    periods: &PeriodRules,
) -> NewCase {
    let executing = doc
        .envelope
        .recipients
        .iter()
        .find(|a| a.kind() == crate::model::AgencyKind::Corrections)
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    let division = doc
        .envelope
        .recipients
        .first()
        .map(|a| a.division().as_str().to_string());
    let mut deadlines = Vec::new();
    let mut add = |step: &str,
                   from: OffsetDateTime,
                   fixed_due: Option<OffsetDateTime>,
                   already_met: Option<OffsetDateTime>| {
        let period = periods.period(step, division.as_deref());
        let (period_text, due) = match (period, fixed_due) {
            (Ok(p), Some(due)) => (p.to_string(), Ok(due)),
            (Ok(p), None) => (
                p.to_string(),
                period::due(calendar, p, from).map_err(|e| e.message().en),
            ),
            (Err(e), _) => (String::new(), Err(e.to_string())),
        };
        let (due_at_ms, status, note) = match due {
            Ok(due) => {
                let status = match already_met {
                    Some(at) if at <= due => "met",
                    Some(_) => "overdue",
                    None => "due",
                };
                (Some(unix_ms(due)), status.to_string(), None)
            }
            Err(reason) => (None, "uncomputable".to_string(), Some(reason)),
        };
        deadlines.push(NewDeadline {
            step: step.to_string(),
            period: period_text,
            starts_at_ms: unix_ms(from),
            due_at_ms,
            status,
            note,
        });
    };
    // The corrections agency answers with a receipt within 5 days of receiving
    // the documents (实施办法 第9条). Until delivery receipts exist, the clock
    // starts when the gateway accepted the notice.
    add("handover.receipt", received_at, None, None);
    if let Body::HandoverNotice(notice) = &doc.body {
        let effective = notice
            .effective_date
            .with_time(Time::MIDNIGHT)
            .assume_offset(BEIJING);
        // Documents are due within 10 days of the judgment taking effect (法 第20条):
        // the notice itself shows whether that was met.
        add("handover.documents", effective, None, Some(received_at));
        // The offender reports within 10 days (法 第21条); a court may state the date.
        let report_by = notice.report_by.map(|d| {
            d.with_time(Time::from_hms(23, 59, 59).unwrap_or(Time::MIDNIGHT))
                .assume_offset(BEIJING)
        });
        add("handover.report", effective, report_by, None);
    }
    let mut parties = vec![doc.envelope.sender.as_str().to_string()];
    parties.extend(route.recipients.iter().cloned());
    parties.extend(route.copies.iter().cloned());
    parties.sort();
    parties.dedup();
    NewCase {
        id: case_id,
        flow: "handover".into(),
        state: STATE_NOTIFIED.into(),
        opened_by: doc.envelope.sender.as_str().to_string(),
        corrections_agency: executing,
        case_no: doc.envelope.case_no.clone(),
        parties,
        deadlines,
    }
}
