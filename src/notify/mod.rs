//! E-mail to the people who work cases (通知邮件): a new document for their
//! agency, a deadline one working day away, an overdue step, a dead-lettered
//! delivery, and a daily digest; each person chooses per kind (immediately,
//! in the digest only, or not at all) in the web interface (`/ui/mail`).
//!
//! Where notifications come from: the exchange log, which already records
//! every event that matters here exactly once and in order
//! (`document.accepted`, `deadline.missed`, `delivery.dead_lettered`), read
//! from a cursor; and the open deadlines, for reminders and digests. Each
//! message is queued in the mail outbox under a key naming the event and the
//! person, so reading an event twice — a retry, a second gateway instance on
//! the same PostgreSQL — queues nothing new, and the request and commit paths
//! never wait for mail. Sending claims queued messages with a lease (as the
//! delivery outbox does), talks SMTP with no database lock held, and retries
//! with backoff; see docs/mail.md.
//!
//! Who gets mail: clerks of an agency the event concerns and supervisors
//! whose region holds it, with an e-mail address set. Must never put personal
//! data (a name, an ID number) into a mail: [`compose`] is the only place
//! that writes mail text, and is never given any.

pub mod compose;
pub mod smtp;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use time::{Date, OffsetDateTime, Time};

use crate::app::Gateway;
use crate::delivery::backoff::Backoff;
use crate::store::{MailRecipient, NewMail, OpenDeadline, StoreError};
use crate::timefmt::{from_unix_ms, unix_ms};
use crate::web::auth::Scope;
use crate::workflow::period::BEIJING;
use compose::{DigestLine, Links};
pub use smtp::{Mailer, SendFailure};

/// A kind of notification a person can choose about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A document sent to the person's agency (recipient or copy).
    Document,
    /// An open deadline one working day away.
    DeadlineSoon,
    /// A deadline that ran out unanswered.
    Overdue,
    /// A delivery of the agency's document that was dead-lettered.
    DeadLetter,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Document,
        Kind::DeadlineSoon,
        Kind::Overdue,
        Kind::DeadLetter,
    ];

    /// The stored name (`mail_preferences.kind`, `mail_outbox.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Document => "document",
            Kind::DeadlineSoon => "deadline_soon",
            Kind::Overdue => "overdue",
            Kind::DeadLetter => "dead_letter",
        }
    }

    /// (zh-CN, English) label for the preferences page.
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            Kind::Document => ("本机关收到新文书", "A new document for my agency"),
            Kind::DeadlineSoon => ("期限剩一个工作日", "A deadline one working day away"),
            Kind::Overdue => ("期限已逾期", "An overdue step"),
            Kind::DeadLetter => (
                "本机关文书投递失败",
                "A delivery of my agency's document failed",
            ),
        }
    }
}

/// How a person wants one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A mail for each.
    Immediate,
    /// Listed in the daily digest only.
    Digest,
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Immediate => "immediate",
            Mode::Digest => "digest",
            Mode::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "immediate" => Some(Mode::Immediate),
            "digest" => Some(Mode::Digest),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }
}

/// A person's choices. Default: every kind immediately, and the digest on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub modes: BTreeMap<&'static str, Mode>,
    pub digest: bool,
}

/// The preference kind of the digest itself (mode `on` or `off`).
pub const DIGEST: &str = "digest";

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            modes: Kind::ALL
                .iter()
                .map(|k| (k.as_str(), Mode::Immediate))
                .collect(),
            digest: true,
        }
    }
}

impl Preferences {
    /// From the stored rows (unknown values keep the default).
    pub fn from_stored(stored: &BTreeMap<String, String>) -> Preferences {
        let mut prefs = Preferences::default();
        for kind in Kind::ALL {
            if let Some(mode) = stored.get(kind.as_str()).and_then(|m| Mode::parse(m)) {
                prefs.modes.insert(kind.as_str(), mode);
            }
        }
        if let Some(mode) = stored.get(DIGEST) {
            prefs.digest = mode != "off";
        }
        prefs
    }

    /// The rows to store (every kind, so the choice survives a changed default).
    pub fn to_stored(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = Kind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), self.mode(*k).as_str().to_string()))
            .collect();
        rows.push((DIGEST.into(), if self.digest { "on" } else { "off" }.into()));
        rows
    }

    pub fn mode(&self, kind: Kind) -> Mode {
        self.modes
            .get(kind.as_str())
            .copied()
            .unwrap_or(Mode::Immediate)
    }
}

/// Whether `user` works for one of `agencies`: a clerk of one of them, or a
/// supervisor whose region holds one (the scope rule of the web interface).
fn concerns(user: &MailRecipient, agencies: &[String]) -> bool {
    let scope = match user.role.as_str() {
        "clerk" => user.agency_id.clone().map(Scope::Agency),
        "supervisor" => user
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .map(Scope::Region),
        _ => None,
    };
    scope.is_some_and(|s| s.admits_any(agencies))
}

/// The links in mail: `mail.base_url`, else the plain-HTTP listener.
fn links(gw: &Gateway) -> Links {
    let base = match gw.settings.mail.base_url.trim_end_matches('/') {
        "" => format!("http://{}", gw.settings.listen),
        base => base.to_string(),
    };
    Links { base }
}

/// One message for each person `agencies` concern who wants `kind` (held
/// for the digest if they want it there).
fn for_people(
    people: &[MailRecipient],
    agencies: &[String],
    kind: Kind,
    key: &str,
    case_id: Option<&str>,
    text: &compose::Text,
) -> Vec<NewMail> {
    people
        .iter()
        .filter(|p| concerns(p, agencies))
        .filter_map(|p| {
            let mode = Preferences::from_stored(&p.preferences).mode(kind);
            (mode != Mode::Off).then(|| NewMail {
                id: uuid::Uuid::now_v7().to_string(),
                dedup_key: format!("{}:{key}:{}", kind.as_str(), p.user_id),
                user_id: p.user_id.clone(),
                address: p.email.clone(),
                kind: kind.as_str().into(),
                case_id: case_id.map(str::to_string),
                subject: text.subject.clone(),
                body: text.body.clone(),
                held: mode == Mode::Digest,
            })
        })
        .collect()
}

/// Exchange-log entries read per scan.
const SCAN_BATCH: i64 = 500;

/// Reads the exchange log from the cursor and queues the mail its events
/// call for; returns how many messages were new. Idempotent: entries read
/// twice queue nothing twice.
pub async fn scan_log(gw: &Gateway) -> Result<usize, StoreError> {
    let now = gw.clock.now();
    let oldest = now - Duration::from_secs(gw.settings.mail.max_event_age_hours * 3600);
    let links = links(gw);
    let mut queued = 0;
    loop {
        let from = gw.store.mail_cursor().await?;
        let entries = gw.store.log_entries(from, SCAN_BATCH).await?;
        let Some(last) = entries.last().map(|e| e.index) else {
            return Ok(queued);
        };
        let people = gw.store.mail_recipients().await?;
        let mut mails = Vec::new();
        for entry in &entries {
            let Ok(leaf) = serde_json::from_slice::<serde_json::Value>(&entry.leaf) else {
                continue;
            };
            let at = leaf["at"]
                .as_str()
                .and_then(|a| {
                    OffsetDateTime::parse(a, &time::format_description::well_known::Rfc3339).ok()
                })
                .unwrap_or(now);
            if at < oldest {
                continue;
            }
            mails.extend(mail_for_event(gw, &people, entry.index, &leaf, &links).await?);
        }
        queued += gw
            .store
            .enqueue_mail(&mails, unix_ms(now), Some(last + 1))
            .await?;
        if (entries.len() as i64) < SCAN_BATCH {
            return Ok(queued);
        }
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The messages one log event calls for (none for most events).
async fn mail_for_event(
    gw: &Gateway,
    people: &[MailRecipient],
    index: i64,
    leaf: &serde_json::Value,
    links: &Links,
) -> Result<Vec<NewMail>, StoreError> {
    let key = index.to_string();
    match leaf["event"].as_str() {
        Some("document.accepted") => {
            let Some(doc) = gw
                .store
                .document_brief(leaf["document_id"].as_str().unwrap_or(""))
                .await?
            else {
                return Ok(Vec::new());
            };
            let recipients = strings(&leaf["recipients"]);
            let copies = strings(&leaf["copies"]);
            let agencies: Vec<String> = recipients.iter().chain(&copies).cloned().collect();
            let text = compose::new_document(&doc, &recipients, &copies, links);
            Ok(for_people(
                people,
                &agencies,
                Kind::Document,
                &key,
                doc.case_id.as_deref(),
                &text,
            ))
        }
        Some("deadline.missed") => {
            let case_id = leaf["case_id"].as_str().unwrap_or("");
            let Some(case) = gw.store.case(case_id).await? else {
                return Ok(Vec::new());
            };
            let due_at_ms = leaf["due_at"]
                .as_str()
                .and_then(|a| {
                    OffsetDateTime::parse(a, &time::format_description::well_known::Rfc3339).ok()
                })
                .map(unix_ms)
                .unwrap_or(0);
            let text = compose::overdue(
                case_id,
                case.case_no.as_deref(),
                leaf["step"].as_str().unwrap_or(""),
                due_at_ms,
                links,
            );
            Ok(for_people(
                people,
                &case.parties,
                Kind::Overdue,
                &key,
                Some(case_id),
                &text,
            ))
        }
        Some("delivery.dead_lettered") => {
            let Some(doc) = gw
                .store
                .document_brief(leaf["document_id"].as_str().unwrap_or(""))
                .await?
            else {
                return Ok(Vec::new());
            };
            let text = compose::dead_letter(
                &doc,
                leaf["delivery_id"].as_str().unwrap_or(""),
                leaf["recipient"].as_str().unwrap_or(""),
                leaf["attempts"].as_u64().unwrap_or(0) as u32,
                leaf["last_error"].as_str().unwrap_or(""),
                links,
            );
            Ok(for_people(
                people,
                std::slice::from_ref(&doc.sender),
                Kind::DeadLetter,
                &key,
                doc.case_id.as_deref(),
                &text,
            ))
        }
        _ => Ok(Vec::new()),
    }
}

/// The start (00:00 Beijing time) of the last working day before the day
/// `due` falls on: from then on the deadline is one working day away. A
/// date the official calendar does not cover falls back to the day before.
pub fn reminder_at(gw: &Gateway, due: OffsetDateTime) -> OffsetDateTime {
    let due_day = due.to_offset(BEIJING).date();
    let mut day = due_day.previous_day().unwrap_or(due_day);
    for _ in 0..31 {
        match gw.calendar.is_working_day(day) {
            Ok(true) => break,
            Ok(false) => day = day.previous_day().unwrap_or(day),
            Err(_) => {
                day = due_day.previous_day().unwrap_or(due_day);
                break;
            }
        }
    }
    start_of(day)
}

fn start_of(day: Date) -> OffsetDateTime {
    day.with_time(Time::MIDNIGHT).assume_offset(BEIJING)
}

/// The furthest a reminder looks ahead: longer than any run of days off
/// (the Spring Festival week with its weekends).
const LOOKAHEAD: Duration = Duration::from_secs(16 * 86_400);

/// Queues a reminder for each open deadline that is now one working day
/// away (once per deadline and due instant: a deadline moved by an agreed
/// extension is reminded of again). Returns how many messages were new.
pub async fn remind_deadlines(gw: &Gateway) -> Result<usize, StoreError> {
    let now = gw.clock.now();
    let now_ms = unix_ms(now);
    let links = links(gw);
    let open = gw
        .store
        .open_deadlines_due_by(unix_ms(now + LOOKAHEAD), 5_000)
        .await?;
    let people = gw.store.mail_recipients().await?;
    let mut mails = Vec::new();
    for d in open
        .iter()
        .filter(|d| d.status == "due" && d.due_at_ms > now_ms)
    {
        if reminder_at(gw, from_unix_ms(d.due_at_ms)) > now {
            continue;
        }
        let text = compose::deadline_soon(d, &links);
        let key = format!("{}:{}:{}", d.case_id, d.seq, d.due_at_ms);
        mails.extend(for_people(
            &people,
            &d.parties,
            Kind::DeadlineSoon,
            &key,
            Some(&d.case_id),
            &text,
        ));
    }
    gw.store.enqueue_mail(&mails, now_ms, None).await
}

/// From `mail.digest_hour` each day (Beijing time), queues each person's
/// digest once: what they held for it, and the open deadlines of their cases
/// that are overdue or due within two days. A person with nothing to read
/// gets none. Returns how many digests were queued.
pub async fn queue_digests(gw: &Gateway) -> Result<usize, StoreError> {
    let now = gw.clock.now();
    let local = now.to_offset(BEIJING);
    if local.hour() < gw.settings.mail.digest_hour {
        return Ok(0);
    }
    let date = local.date().to_string();
    let now_ms = unix_ms(now);
    let links = links(gw);
    let open = gw
        .store
        .open_deadlines_due_by(now_ms + 2 * 86_400_000, 5_000)
        .await?;
    let mut queued = 0;
    for person in gw.store.mail_recipients().await? {
        if !Preferences::from_stored(&person.preferences).digest {
            continue;
        }
        let held = gw.store.held_mail(&person.user_id).await?;
        let mine: Vec<&OpenDeadline> = open
            .iter()
            .filter(|d| concerns(&person, &d.parties))
            .collect();
        let (overdue, soon): (Vec<&OpenDeadline>, Vec<&OpenDeadline>) = mine
            .into_iter()
            .partition(|d| d.status == "overdue" || d.due_at_ms <= now_ms);
        if held.is_empty() && overdue.is_empty() && soon.is_empty() {
            continue;
        }
        let lines: Vec<DigestLine> = held
            .iter()
            .map(|m| DigestLine {
                text: m.subject.clone(),
                link: m
                    .case_id
                    .as_deref()
                    .map(|c| links.case(c))
                    .unwrap_or_else(|| links.home()),
            })
            .collect();
        let text = compose::digest(&date, &lines, &overdue, &soon, &links);
        let digest = NewMail {
            id: uuid::Uuid::now_v7().to_string(),
            dedup_key: format!("{DIGEST}:{date}:{}", person.user_id),
            user_id: person.user_id.clone(),
            address: person.email.clone(),
            kind: DIGEST.into(),
            case_id: None,
            subject: text.subject,
            body: text.body,
            held: false,
        };
        let ids: Vec<String> = held.into_iter().map(|m| m.id).collect();
        if gw.store.enqueue_digest(&digest, &ids, now_ms).await? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// Messages sent per round at most.
const SEND_BATCH: usize = 20;

/// What one sending round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sent {
    pub sent: usize,
    pub failed: usize,
}

/// Claims due messages and sends them one by one; a failure is recorded
/// with its code and retried with backoff (up to `mail.max_attempts`).
pub async fn send_due(gw: &Gateway, mailer: &Mailer) -> Result<Sent, StoreError> {
    let settings = &gw.settings.mail;
    let backoff = Backoff {
        base: Duration::from_millis(settings.backoff_base_ms),
        max: Duration::from_millis(settings.backoff_max_ms),
        attempts: settings.max_attempts,
    };
    // Longer than a whole conversation may take (Mailer::send bounds it).
    let lease_ms = settings.timeout_ms as i64 * 5;
    let claimed = gw
        .store
        .claim_due_mail(unix_ms(gw.clock.now()), SEND_BATCH, lease_ms)
        .await?;
    let mut outcome = Sent::default();
    for claim in claimed {
        let result = mailer.send(&claim.mail, gw.clock.now().into()).await;
        let now = gw.clock.now();
        match result {
            Ok(()) => {
                if !gw.store.record_mail_sent(&claim, unix_ms(now)).await? {
                    tracing::warn!(mail_id = %claim.mail.id, "mail sent after its lease ran out");
                }
                crate::metrics::mail_sent("sent");
                tracing::info!(mail_id = %claim.mail.id, kind = %claim.mail.kind, "mail sent");
                outcome.sent += 1;
            }
            Err(failure) => {
                let next = if failure.retryable() {
                    backoff
                        .after_failure(claim.attempt, &mut rand::thread_rng())
                        .map(|d| unix_ms(now) + d.as_millis() as i64)
                } else {
                    None
                };
                gw.store
                    .record_mail_failure(&claim, unix_ms(now), failure.code(), next)
                    .await?;
                crate::metrics::mail_sent(failure.code());
                outcome.failed += 1;
                if failure == SendFailure::Auth {
                    tracing::error!(mail_id = %claim.mail.id, attempt = claim.attempt,
                        "the SMTP server refused the gateway's credentials (mail.username / mail.password); the mail stays queued");
                } else if next.is_none() {
                    tracing::error!(mail_id = %claim.mail.id, code = failure.code(), attempt = claim.attempt,
                        "mail given up (state failed)");
                } else {
                    tracing::warn!(mail_id = %claim.mail.id, code = failure.code(), attempt = claim.attempt,
                        "mail not sent; will try again");
                }
            }
        }
    }
    Ok(outcome)
}

/// One round of the notifier: read new events, queue reminders and
/// digests, send what is due.
pub async fn round(gw: &Gateway, mailer: &Mailer) -> Result<Sent, StoreError> {
    scan_log(gw).await?;
    remind_deadlines(gw).await?;
    queue_digests(gw).await?;
    send_due(gw, mailer).await
}

/// The mailer of `[mail]`, or `None` when mail is off. Called before the
/// server starts, so a wrong password file or CA certificate stops start-up.
pub fn mailer(settings: &crate::config::Settings) -> anyhow::Result<Option<Mailer>> {
    if !settings.mail.enabled() {
        return Ok(None);
    }
    Ok(Some(Mailer::from_settings(&settings.mail)?))
}

/// Runs [`round`] every `mail.poll_ms` until `stop` says so (a message
/// being sent is finished and recorded first).
pub fn spawn(
    gw: Arc<Gateway>,
    mailer: Mailer,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mailer = Arc::new(mailer);
    let interval = Duration::from_millis(gw.settings.mail.poll_ms);
    tracing::info!(host = %gw.settings.mail.host, port = gw.settings.mail.port(), "mail notifications on");
    crate::jobs::spawn_every(interval, stop, move || {
        let gw = gw.clone();
        let mailer = mailer.clone();
        async move {
            if let Err(e) = round(&gw, &mailer).await {
                tracing::warn!(error = %e, "mail round failed; will try again");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_default_to_every_kind_immediately_and_round_trip() {
        let default = Preferences::from_stored(&BTreeMap::new());
        assert_eq!(default, Preferences::default());
        assert!(default.digest);
        assert!(Kind::ALL
            .iter()
            .all(|k| default.mode(*k) == Mode::Immediate));

        let mut chosen = Preferences::default();
        chosen.modes.insert("document", Mode::Digest);
        chosen.modes.insert("dead_letter", Mode::Off);
        chosen.digest = false;
        let stored: BTreeMap<String, String> = chosen.to_stored().into_iter().collect();
        assert_eq!(stored["document"], "digest");
        assert_eq!(stored["digest"], "off");
        assert_eq!(Preferences::from_stored(&stored), chosen);
        // A value the code does not know keeps the default.
        let odd = BTreeMap::from([("overdue".to_string(), "sometimes".to_string())]);
        assert_eq!(
            Preferences::from_stored(&odd).mode(Kind::Overdue),
            Mode::Immediate
        );
    }

    #[test]
    fn only_the_agencys_clerks_and_the_regions_supervisors_are_concerned() {
        let person = |role: &str, agency: Option<&str>, region: Option<&str>| MailRecipient {
            user_id: "u".into(),
            role: role.into(),
            agency_id: agency.map(str::to_string),
            region: region.map(str::to_string),
            email: "u@example.gov.cn".into(),
            preferences: BTreeMap::new(),
        };
        let agencies = vec!["corrections.620102".to_string()];
        assert!(concerns(
            &person("clerk", Some("corrections.620102"), None),
            &agencies
        ));
        assert!(!concerns(
            &person("clerk", Some("court.620102"), None),
            &agencies
        ));
        assert!(concerns(&person("supervisor", None, Some("62")), &agencies));
        assert!(!concerns(
            &person("supervisor", None, Some("11")),
            &agencies
        ));
        assert!(
            !concerns(&person("supervisor", None, Some("")), &agencies),
            "an empty region is no region"
        );
        assert!(!concerns(&person("auditor", None, None), &agencies));
        assert!(!concerns(
            &person("admin", Some("corrections.620102"), None),
            &agencies
        ));
    }
}
