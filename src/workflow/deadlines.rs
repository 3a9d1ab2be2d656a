//! The deadline engine: which deadlines a step starts, meets, closes or
//! moves, when each is due, and which have run out.
//!
//! Periods come from `rules/periods.toml` (with province overrides, looked up
//! with the division of the executing place: the corrections agency's), due
//! instants from [`period::due`]; what a step does to them comes from the
//! flow tables ([`super::flows`]). Everything here is a pure function of its
//! inputs, so the background job can call [`overdue`] with whatever it loaded.
//!
//! A deadline the calendar cannot compute (a year the official calendar does
//! not cover) is kept with no due instant and the reason in `note`: it is
//! never guessed, and it never blocks the document that started it (the
//! document is legally valid and must reach its recipient). Its status is
//! [`Status::Uncomputable`] until an operator adds the year and recomputes.
//!
//! Must never read the clock itself (`now` is always a parameter) nor touch storage.

use time::{Date, OffsetDateTime, Time};

use super::calendar::Calendar;
use super::flows::{Start, Step, Trigger, OUT_OF_ORDER_STEP};
use super::period::{self, PeriodRules, BEIJING};
use crate::model::{Body, CanonicalDocument};
use crate::store::NewDeadline;
use crate::timefmt::{from_unix_ms, unix_ms};
use crate::violation::Violation;

/// Code of an agreed extension whose new due date is not later than both
/// the current due instant and the extension itself.
pub const INVALID_EXTENSION_DATE: &str = "invalid_extension_date";

/// Where a deadline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Running, not yet past due.
    Due,
    /// Answered in time.
    Met,
    /// Past due and not answered, or answered late.
    Overdue,
    /// Stopped without being answered (made moot by another step, or the case closed).
    Closed,
    /// No due instant: the calendar does not cover the years it needs.
    Uncomputable,
    /// Counted from receipt, and the document that starts it has not been
    /// receipted/acked by its primary recipient yet (protocol.md: the clock
    /// starts at the recipient's signed receipt).
    AwaitingDelivery,
}

impl Status {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Due => "due",
            Self::Met => "met",
            Self::Overdue => "overdue",
            Self::Closed => "closed",
            Self::Uncomputable => "uncomputable",
            Self::AwaitingDelivery => "awaiting_delivery",
        }
    }
}

/// Due / met / overdue of one deadline at `now`. Counted in whole seconds:
/// a day period is due at `23:59:59` Beijing time and an act during that
/// second is in time ([`period`] module docs).
pub fn evaluate(
    due: OffsetDateTime,
    met_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Status {
    let in_time = |at: OffsetDateTime| whole_second(at) <= due;
    match met_at {
        Some(at) if in_time(at) => Status::Met,
        Some(_) => Status::Overdue,
        None if in_time(now) => Status::Due,
        None => Status::Overdue,
    }
}

fn whole_second(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}

/// One deadline of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// `handover.receipt`; at most one open deadline per name and case.
    pub name: String,
    /// The period as written in the rules (`5d`), empty if unknown.
    pub period: String,
    pub starts_at: OffsetDateTime,
    /// `None`: uncomputable, see `note`.
    pub due: Option<OffsetDateTime>,
    pub met_at: Option<OffsetDateTime>,
    pub closed_at: Option<OffsetDateTime>,
    /// Why there is no due instant, or how it was moved (no personal data).
    pub note: Option<String>,
    /// The gateway document id whose delivery receipt starts this deadline;
    /// `None` once started (or for deadlines not counted from receipt).
    pub awaiting_delivery: Option<String>,
}

impl Deadline {
    pub fn is_open(&self) -> bool {
        self.met_at.is_none() && self.closed_at.is_none()
    }

    pub fn status(&self, now: OffsetDateTime) -> Status {
        match (self.due, self.closed_at) {
            (_, Some(_)) => Status::Closed,
            // Answered before the clock started: in time by definition.
            (None, None) if self.awaiting_delivery.is_some() && self.met_at.is_some() => {
                Status::Met
            }
            (None, None) if self.awaiting_delivery.is_some() => Status::AwaitingDelivery,
            (None, None) => Status::Uncomputable,
            (Some(due), None) => evaluate(due, self.met_at, now),
        }
    }

    /// The store's row for this deadline, its status evaluated at `now`.
    /// (`met_at` and `closed_at` need their own columns; see the workflow docs.)
    /// A deadline as stored, back into the engine's form.
    pub fn from_row(row: &NewDeadline) -> Deadline {
        Deadline {
            name: row.step.clone(),
            period: row.period.clone(),
            starts_at: from_unix_ms(row.starts_at_ms),
            due: row.due_at_ms.map(from_unix_ms),
            met_at: row.met_at_ms.map(from_unix_ms),
            closed_at: row.closed_at_ms.map(from_unix_ms),
            note: row.note.clone(),
            awaiting_delivery: row.awaiting_document.clone(),
        }
    }

    pub fn to_row(&self, now: OffsetDateTime) -> NewDeadline {
        NewDeadline {
            step: self.name.clone(),
            period: self.period.clone(),
            starts_at_ms: unix_ms(self.starts_at),
            due_at_ms: self.due.map(unix_ms),
            met_at_ms: self.met_at.map(unix_ms),
            closed_at_ms: self.closed_at.map(unix_ms),
            status: self.status(now).as_str().to_owned(),
            note: self.note.clone(),
            awaiting_document: self.awaiting_delivery.clone(),
        }
    }
}

/// The deadlines that have run out unanswered at `now` (open, with a due
/// instant before `now`), earliest first: what the background job alerts on
/// and logs as missed. Closed, met and uncomputable deadlines are left out.
pub fn overdue(deadlines: &[Deadline], now: OffsetDateTime) -> Vec<&Deadline> {
    let mut late: Vec<&Deadline> = deadlines
        .iter()
        .filter(|d| d.is_open() && d.status(now) == Status::Overdue)
        .collect();
    late.sort_by_key(|d| d.due);
    late
}

/// What the deadline engine needs to know about the message of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context<'a> {
    /// When the message was received (or acknowledged by its recipient).
    pub received_at: OffsetDateTime,
    /// The executing place's division (GB/T 2260), for province overrides.
    pub division: Option<&'a str>,
    /// `body.effective_date` of a handover notice.
    pub effective_date: Option<Date>,
    /// `body.report_by` of a handover notice: the court's stated reporting date.
    pub report_by: Option<Date>,
    /// `body.new_due_date` of an agreed extension.
    pub new_due_date: Option<Date>,
}

impl<'a> Context<'a> {
    /// Reads the dates a step needs from the document. `new_due_date` must
    /// be `YYYY-MM-DD` (`invalid_date` otherwise).
    pub fn of(
        doc: &CanonicalDocument,
        received_at: OffsetDateTime,
        division: Option<&'a str>,
    ) -> Result<Self, Violation> {
        let mut ctx = Self {
            received_at,
            division,
            effective_date: None,
            report_by: None,
            new_due_date: None,
        };
        match &doc.body {
            Body::HandoverNotice(n) => {
                ctx.effective_date = Some(n.effective_date);
                ctx.report_by = n.report_by;
            }
            Body::AssessmentExtension(e) => ctx.new_due_date = Some(e.new_due_date),
            _ => {}
        }
        Ok(ctx)
    }
}

/// What a step did to a case's deadlines, for the exchange log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadlineEvent {
    Started {
        name: String,
        due: Option<OffsetDateTime>,
    },
    /// `late`: answered after the due instant.
    Met {
        name: String,
        late: bool,
    },
    Closed {
        name: String,
    },
    Extended {
        name: String,
        from: Option<OffsetDateTime>,
        to: OffsetDateTime,
    },
}

impl DeadlineEvent {
    /// `name:what`, as the exchange log records it (no personal data).
    pub fn log_label(&self) -> String {
        match self {
            DeadlineEvent::Started { name, .. } => format!("{name}:started"),
            DeadlineEvent::Met { name, late: false } => format!("{name}:met"),
            DeadlineEvent::Met { name, late: true } => format!("{name}:met_late"),
            DeadlineEvent::Closed { name } => format!("{name}:closed"),
            DeadlineEvent::Extended { name, .. } => format!("{name}:extended"),
        }
    }
}

/// Applies a step to a case's deadlines: meets, closes, moves (agreed
/// extension), then starts (replacing an open deadline of the same name),
/// then closes everything still open if the step ends the case.
///
/// Errors only for what the message itself got wrong: an extension without
/// `body.new_due_date` (`missing_field`) or with one that moves nothing
/// later ([`INVALID_EXTENSION_DATE`]). A period the calendar cannot compute
/// is recorded, not an error.
pub fn apply(
    deadlines: &mut Vec<Deadline>,
    step: &Step,
    ctx: &Context<'_>,
    calendar: &Calendar,
    periods: &PeriodRules,
) -> Result<Vec<DeadlineEvent>, Violation> {
    let at = ctx.received_at;
    let mut events = Vec::new();
    // Validate the extension before changing anything.
    let extension = match step.extends {
        Some(name) => Some((name, extended_due(deadlines, name, ctx)?)),
        None => None,
    };
    for name in step.meets {
        if let Some(d) = open_mut(deadlines, name) {
            d.met_at = Some(at);
            let late = d
                .due
                .is_some_and(|due| evaluate(due, Some(at), at) == Status::Overdue);
            events.push(DeadlineEvent::Met {
                name: d.name.clone(),
                late,
            });
        }
    }
    for name in step.closes {
        if let Some(d) = open_mut(deadlines, name) {
            d.closed_at = Some(at);
            events.push(DeadlineEvent::Closed {
                name: d.name.clone(),
            });
        }
    }
    if let Some((name, due)) = extension {
        if let Some(d) = open_mut(deadlines, name) {
            let from = d.due.replace(due);
            d.note = Some(format!("extended by agreement to {}", due.date()));
            events.push(DeadlineEvent::Extended {
                name: d.name.clone(),
                from,
                to: due,
            });
        }
    }
    for start in step.starts {
        if let Some(old) = open_mut(deadlines, start.deadline) {
            old.closed_at = Some(at);
            events.push(DeadlineEvent::Closed {
                name: old.name.clone(),
            });
        }
        let d = begin(start, ctx, calendar, periods);
        events.push(DeadlineEvent::Started {
            name: d.name.clone(),
            due: d.due,
        });
        if start.met_on_arrival {
            let late = d
                .due
                .is_some_and(|due| evaluate(due, Some(at), at) == Status::Overdue);
            events.push(DeadlineEvent::Met {
                name: d.name.clone(),
                late,
            });
        }
        deadlines.push(d);
    }
    if step.closes_all_open() {
        for d in deadlines.iter_mut().filter(|d| d.is_open()) {
            d.closed_at = Some(at);
            events.push(DeadlineEvent::Closed {
                name: d.name.clone(),
            });
        }
    }
    Ok(events)
}

/// The deadlines a step starts that count from the receipt of its document
/// (and are not met by it): their clock waits for the primary recipient's
/// signed receipt or ack ([`await_delivery`], [`start_on_receipt`]).
pub fn counted_from_receipt(step: &Step) -> Vec<&'static str> {
    step.starts
        .iter()
        .filter(|s| s.from == Trigger::Received && !s.met_on_arrival)
        .map(|s| s.deadline)
        .collect()
}

/// Marks the rows of `names` that the document accepted at `accepted_at_ms`
/// has just started (open, starting at that instant) as waiting for the
/// delivery of `document_id`: no due instant until the receipt. Returns the
/// names marked.
pub fn await_delivery(
    rows: &mut [NewDeadline],
    names: &[&str],
    document_id: &str,
    accepted_at_ms: i64,
) -> Vec<String> {
    let mut marked = Vec::new();
    for row in rows.iter_mut().filter(|r| {
        names.contains(&r.step.as_str())
            && r.met_at_ms.is_none()
            && r.closed_at_ms.is_none()
            && r.starts_at_ms == accepted_at_ms
    }) {
        row.due_at_ms = None;
        row.status = Status::AwaitingDelivery.as_str().to_owned();
        row.awaiting_document = Some(document_id.to_owned());
        marked.push(row.step.clone());
    }
    marked
}

/// Starts a deadline that waited for its document's delivery, at `at` (the
/// instant the gateway verified the primary recipient's signed receipt or
/// ack), with the period stored on it. A period the calendar cannot compute
/// is recorded as such, as at intake.
pub fn start_on_receipt(row: &NewDeadline, at: OffsetDateTime, calendar: &Calendar) -> NewDeadline {
    let mut d = Deadline::from_row(row);
    d.awaiting_delivery = None;
    d.starts_at = at;
    d.due = None;
    match row.period.parse::<period::Period>() {
        Ok(p) => match period::due(calendar, p, at) {
            Ok(due) => d.due = Some(due),
            Err(e) => d.note = Some(e.message().en),
        },
        Err(_) => d.note = Some("the stored period cannot be read".to_owned()),
    }
    d.to_row(at)
}

/// Checks that every period a flow table starts is defined in the rules
/// (call at start-up, after loading `rules/periods.toml`).
pub fn check_periods(periods: &PeriodRules) -> Result<(), super::period::PeriodRulesError> {
    use crate::model::Flow;
    for flow in [Flow::Handover, Flow::Assessment, Flow::Revocation] {
        for rule in super::flows::table(flow) {
            for start in rule.starts {
                periods.period(start.period, None)?;
            }
        }
    }
    Ok(())
}

fn open_mut<'d>(deadlines: &'d mut [Deadline], name: &str) -> Option<&'d mut Deadline> {
    deadlines
        .iter_mut()
        .rev()
        .find(|d| d.name == name && d.is_open())
}

/// The end (23:59:59 Beijing time) of a day named in a document.
pub fn end_of_day(day: Date) -> OffsetDateTime {
    day.with_time(Time::from_hms(23, 59, 59).unwrap_or(Time::MIDNIGHT))
        .assume_offset(BEIJING)
}

/// The new due instant of an agreed extension: the end of `new_due_date`,
/// which must be later than the deadline's current due instant and than the
/// extension's own receipt.
fn extended_due(
    deadlines: &[Deadline],
    name: &str,
    ctx: &Context<'_>,
) -> Result<OffsetDateTime, Violation> {
    let path = "/body/new_due_date";
    let day = ctx
        .new_due_date
        .ok_or_else(|| crate::model::codes::missing_field("/body", "new_due_date"))?;
    let Some(current) = deadlines
        .iter()
        .rev()
        .find(|d| d.name == name && d.is_open())
    else {
        return Err(Violation::new(
            OUT_OF_ORDER_STEP,
            "/message_type",
            format!("案件没有进行中的期限 {name}，无可延长"),
            format!("the case has no running {name} deadline to extend"),
        ));
    };
    let due = end_of_day(day);
    let not_later_than_current = current.due.is_some_and(|c| due <= c);
    if not_later_than_current || due <= ctx.received_at {
        return Err(Violation::new(
            INVALID_EXTENSION_DATE,
            path,
            "延期后的日期必须晚于原期限届满日和延期通知的日期",
            "the agreed new due date must be later than the current due date and than the extension itself",
        ));
    }
    Ok(due)
}

fn begin(start: &Start, ctx: &Context<'_>, calendar: &Calendar, periods: &PeriodRules) -> Deadline {
    let from = match start.from {
        Trigger::Received => Some(ctx.received_at),
        Trigger::EffectiveDate => ctx
            .effective_date
            .map(|d| d.with_time(Time::MIDNIGHT).assume_offset(BEIJING)),
    };
    let starts_at = from.unwrap_or(ctx.received_at);
    let mut d = Deadline {
        name: start.deadline.to_owned(),
        period: String::new(),
        starts_at,
        due: None,
        met_at: start.met_on_arrival.then_some(ctx.received_at),
        closed_at: None,
        note: None,
        awaiting_delivery: None,
    };
    let period = match periods.period(start.period, ctx.division) {
        Ok(p) => p,
        Err(e) => {
            d.note = Some(e.message().en);
            return d;
        }
    };
    d.period = period.to_string();
    let Some(from) = from else {
        d.note = Some("the document states no effective date to count from".to_owned());
        return d;
    };
    // A reporting date the court states in the notice replaces the counted one (法 第21条).
    if start.deadline == "handover.report" {
        if let Some(day) = ctx.report_by {
            d.due = Some(end_of_day(day));
            return d;
        }
    }
    match period::due(calendar, period, from) {
        Ok(due) => d.due = Some(due),
        Err(e) => d.note = Some(e.message().en),
    }
    d
}

#[cfg(test)]
mod delivery_clock_tests {
    use super::*;
    use time::macros::datetime;

    fn calendar() -> Calendar {
        Calendar::parse(include_str!("../../rules/calendar/cn-official-days.tsv")).unwrap()
    }

    fn row(step: &str, starts_at: OffsetDateTime, due: Option<OffsetDateTime>) -> NewDeadline {
        NewDeadline {
            step: step.into(),
            period: "5d".into(),
            starts_at_ms: unix_ms(starts_at),
            due_at_ms: due.map(unix_ms),
            met_at_ms: None,
            closed_at_ms: None,
            status: "due".into(),
            note: None,
            awaiting_document: None,
        }
    }

    #[test]
    fn a_period_counted_from_receipt_waits_for_the_delivery_and_starts_at_the_receipt() {
        let accepted = datetime!(2026-11-19 09:00 +08:00);
        let mut rows = vec![
            row("handover.receipt", accepted, Some(accepted)),
            // counted from the effective date: not this document's receipt
            row(
                "handover.report",
                datetime!(2026-11-18 00:00 +08:00),
                Some(accepted),
            ),
        ];
        let marked = await_delivery(&mut rows, &["handover.receipt"], "doc-1", unix_ms(accepted));
        assert_eq!(marked, ["handover.receipt"]);
        assert_eq!(rows[0].status, "awaiting_delivery");
        assert_eq!(rows[0].due_at_ms, None);
        assert_eq!(rows[0].awaiting_document.as_deref(), Some("doc-1"));
        assert_eq!(rows[1].awaiting_document, None);
        // Round trip through the engine keeps the state.
        let d = Deadline::from_row(&rows[0]);
        assert_eq!(d.status(accepted), Status::AwaitingDelivery);
        assert!(overdue(std::slice::from_ref(&d), datetime!(2027-01-01 00:00 +08:00)).is_empty());
        // Answered before the clock started: met.
        let mut answered = d.clone();
        answered.met_at = Some(datetime!(2026-11-19 12:00 +08:00));
        assert_eq!(answered.status(accepted), Status::Met);

        // Receipted on Friday 2026-11-20 10:00: 5 days end Wednesday 11-25.
        let receipted = datetime!(2026-11-20 10:00 +08:00);
        let started = start_on_receipt(&rows[0], receipted, &calendar());
        assert_eq!(started.starts_at_ms, unix_ms(receipted));
        assert_eq!(
            started.due_at_ms,
            Some(unix_ms(datetime!(2026-11-25 23:59:59 +08:00)))
        );
        assert_eq!(started.status, "due");
        assert_eq!(started.awaiting_document, None);
    }

    #[test]
    fn only_periods_counted_from_receipt_and_not_met_on_arrival_wait() {
        use crate::model::Flow;
        let notice = super::super::flows::table(Flow::Handover)
            .iter()
            .find(|s| s.starts.iter().any(|s| s.deadline == "handover.notify"))
            .unwrap();
        assert_eq!(counted_from_receipt(notice), ["handover.receipt"]);
    }
}
