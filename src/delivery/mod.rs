//! Outbound delivery (送达): the outbox worker, the push client and the
//! mailbox's translation.
//!
//! A document's deliveries — one per recipient and copy, `push` or `pull` as
//! the registry says — are planned here ([`plan`]) and committed in the
//! document's own transaction (`store::commit_document`). Then:
//!
//! - **push**: the [`Worker`] (a background task started by `app::start`)
//!   claims due deliveries with a lease, at most `delivery.concurrency` at a
//!   time, and runs each attempt ([`push`]) under `delivery.timeout_ms` with
//!   no database lock held. A verified signed receipt makes the delivery
//!   `delivered`; anything else is a failed attempt, retried with
//!   exponential backoff and full jitter ([`backoff`]) and dead-lettered after
//!   `delivery.max_attempts`. A dead letter is retried by hand ([`retry`]).
//! - **pull**: the agency fetches `GET /api/v1/mailbox` and acknowledges each
//!   item with a signed ack (`api::mailbox`); [`translate`] renders the
//!   document in its dialect.
//!
//! The primary recipient's receipt or ack starts the periods counted from
//! receipt (protocol.md), in the same transaction that records it.
//!
//! Delivery is at-least-once: an attempt whose outcome was not recorded (a
//! crash, a lost lease) is made again, and receivers de-duplicate by the
//! gateway document id. Must never hold a database transaction across a
//! network call, nor log document content.

pub mod backoff;
pub mod push;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::Gateway;
use crate::formats::Dialect;
use crate::registry::{DeliveryMode, Registry};
use crate::store::{
    ClaimedPush, Delivery, NewDelivery, PerRecipient, PushFailure, Retried, Store, StoreError,
    Survey,
};
use crate::timefmt::unix_ms;
use crate::violation::Violations;
use crate::workflow::deadlines;
use crate::workflow::routing::Route;
use crate::xlog::{self, LogEvent};
use backoff::Backoff;
use push::Failure;

/// The deliveries of a routed document: recipients first (the first one is
/// the primary recipient whose receipt starts the clock), then copies. An
/// agency the registry does not know is delivered by pull.
pub fn plan(route: &Route, registry: &Registry) -> Vec<NewDelivery> {
    let mode = |agency: &str| match registry.get(agency).map(|a| a.delivery) {
        Some(DeliveryMode::Push) => "push",
        _ => "pull",
    };
    let mut planned: Vec<NewDelivery> = Vec::new();
    let roles = route
        .recipients
        .iter()
        .map(|a| (a, "recipient"))
        .chain(route.copies.iter().map(|a| (a, "copy")));
    for (agency, role) in roles {
        if planned.iter().any(|d| d.agency_id == *agency) {
            continue;
        }
        planned.push(NewDelivery {
            id: uuid::Uuid::now_v7().to_string(),
            agency_id: agency.clone(),
            role: role.to_owned(),
            starts_clock: planned.is_empty() && role == "recipient",
            mode: mode(agency).to_owned(),
        });
    }
    planned
}

/// The document (canonical JSON as stored) in `agency`'s dialect, with the
/// Content-Type to send it with.
pub fn translate(
    gw: &Gateway,
    agency: &str,
    canonical: &str,
) -> Result<(Vec<u8>, String), Violations> {
    let dialect = gw
        .registry
        .get(agency)
        .map(|a| a.dialect)
        .unwrap_or(Dialect::Corrections);
    let value: serde_json::Value = serde_json::from_str(canonical).map_err(|_| {
        vec![crate::violation::Violation::new(
            push::TRANSLATION_FAILED,
            "",
            "存储的规范文书无法读取",
            "the stored canonical document cannot be read",
        )]
    })?;
    let bytes = gw.formats.encode(dialect, &value)?;
    Ok((bytes, gw.formats.content_type(dialect)))
}

/// Handle to the running outbox worker.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Starts the worker on the current runtime.
    pub fn spawn(gw: Arc<Gateway>) -> Worker {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(gw, stopped));
        Worker { stop, task }
    }

    /// Stops claiming work and abandons attempts in flight (their leases
    /// expire and they are made again: at-least-once).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(gw: Arc<Gateway>, mut stopped: watch::Receiver<bool>) {
    let settings = gw.settings.delivery.clone();
    let timeout = Duration::from_millis(settings.timeout_ms);
    // The lease outlives the attempt's timeout, so a live attempt is never taken over.
    let lease_ms = settings.timeout_ms as i64 + 1_000;
    let poll = Duration::from_millis(settings.poll_ms);
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(settings.concurrency)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "the push client cannot be built; delivery is stopped");
            return;
        }
    };
    let mut in_flight = JoinSet::new();
    let mut places = Places {
        per: PerRecipient {
            cap: settings.per_recipient.min(settings.concurrency),
            busy: HashMap::new(),
        },
        recipients: HashMap::new(),
        dry: HashSet::new(),
    };
    // Not reset by each turn, so it also ticks while attempts keep ending.
    let mut ticks = tokio::time::interval(poll);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut polled = true;
    loop {
        if *stopped.borrow() {
            break;
        }
        // Every attempt that has ended frees its place, not only the one the
        // wait below returned for: a finished task counts in `len()` until it
        // is joined, and a claim waits for the next group commit, so joining
        // one per turn allowed about one push per group commit whatever the
        // concurrency (docs/benchmarks.md §10).
        while let Some(joined) = in_flight.try_join_next_with_id() {
            places.ended(&joined);
        }
        // Between polls a claim asks for no more than the places of push
        // agencies that may have due rows: asking for more, it would read
        // through the backlog of those at their cap to find nothing (§11).
        // Each poll asks for every free place (and finds, too, the rows of
        // an agency no longer pushed to, which the registry does not count).
        let free = settings.concurrency.saturating_sub(in_flight.len());
        let wanted = match polled {
            true => free,
            false => free.min(places.room(&gw.registry)),
        };
        polled = false;
        if wanted > 0 {
            let now = unix_ms(gw.clock.now());
            match gw
                .store
                .claim_due_pushes(now, wanted, lease_ms, places.per.clone())
                .await
            {
                Ok((claims, survey)) => {
                    places.surveyed(&survey, &gw.registry);
                    for claim in claims {
                        let recipient = claim.delivery.agency_id.clone();
                        let task =
                            in_flight.spawn(attempt(gw.clone(), client.clone(), claim, timeout));
                        places.started(task.id(), recipient);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming due deliveries failed"),
            }
        }
        tokio::select! {
            changed = stopped.changed() => if changed.is_err() || *stopped.borrow() { break },
            Some(joined) = in_flight.join_next_with_id(), if !in_flight.is_empty() => places.ended(&joined),
            _ = ticks.tick() => {
                polled = true;
                places.dry.clear();
            }
        }
    }
    in_flight.shutdown().await;
}

/// The attempts in flight by recipient, for [`PerRecipient`]'s cap.
struct Places {
    per: PerRecipient,
    /// Whom each attempt's task is pushing to.
    recipients: HashMap<tokio::task::Id, String>,
    /// Push agencies that had no due row at the last claim that could tell
    /// (until the next poll, or a claim sees one).
    dry: HashSet<String>,
}

impl Places {
    fn started(&mut self, task: tokio::task::Id, recipient: String) {
        self.per.take(recipient.clone());
        self.recipients.insert(task, recipient);
    }

    /// Places free for the registry's push agencies that may have due
    /// rows, each up to its cap.
    fn room(&self, registry: &Registry) -> usize {
        pushed(registry)
            .filter(|id| !self.dry.contains(*id))
            .map(|id| self.per.room(id))
            .sum()
    }

    /// What a claim saw: agencies with due rows are not dry; after a claim
    /// that saw every due row it could take, those with room and none are.
    fn surveyed(&mut self, survey: &Survey, registry: &Registry) {
        for agency in &survey.seen {
            self.dry.remove(agency);
        }
        if survey.exhausted {
            for id in pushed(registry) {
                if !survey.seen.contains(id) && self.per.room(id) > 0 {
                    self.dry.insert(id.to_owned());
                }
            }
        }
    }

    /// An attempt's task ended, however: its recipient's place is free.
    fn ended(&mut self, joined: &Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let task = match joined {
            Ok((task, ())) => *task,
            Err(e) => e.id(),
        };
        if let Some(recipient) = self.recipients.remove(&task) {
            self.per.release(&recipient);
        }
    }
}

/// The ids of the registry's push-delivered agencies.
fn pushed(registry: &Registry) -> impl Iterator<Item = &str> {
    registry
        .iter()
        .filter(|a| a.delivery == DeliveryMode::Push)
        .map(|a| a.id.as_str())
}

/// One attempt: prepare, send under the timeout, verify, record.
async fn attempt(gw: Arc<Gateway>, client: reqwest::Client, claim: ClaimedPush, timeout: Duration) {
    let d = &claim.delivery;
    let mut payload_sha256 = None;
    let result = async {
        let canonical = match gw.store.canonical_of(&d.document_id).await {
            Ok(Some(canonical)) => canonical,
            Ok(None) => return Err(Failure::new(push::TRANSLATION_FAILED, None)),
            Err(e) => {
                tracing::warn!(error = %e, "reading a document to deliver failed");
                return Err(Failure::new(push::ENDPOINT_UNREACHABLE, None));
            }
        };
        let url = push::endpoint(&gw.registry, &d.agency_id)?;
        let (body, content_type) = translate(&gw, &d.agency_id, &canonical)
            .map_err(|_| Failure::new(push::TRANSLATION_FAILED, None))?;
        let out = push::sign(
            &gw.identity,
            &url,
            &d.document_id,
            &d.id,
            &content_type,
            body,
        )?;
        payload_sha256 = Some(out.body_sha256.clone());
        let answer = match tokio::time::timeout(timeout, push::send(&client, &out)).await {
            Ok(answer) => answer?,
            Err(_) => return Err(Failure::new(push::ENDPOINT_TIMEOUT, None)),
        };
        let now = gw.clock.now();
        let evidence = push::verify_receipt(
            &gw.trust,
            &answer,
            push::Expected {
                recipient: &d.agency_id,
                document_id: &d.document_id,
                window_secs: gw.settings.signature_window_secs,
                now_unix: now.unix_timestamp(),
            },
        )?;
        Ok((answer.status, evidence, now))
    }
    .await;
    let recorded = match result {
        Ok((status, evidence, at)) => {
            // Owned: the receipt is written by the committer (`store::group`).
            let calendar = gw.clone();
            let start = move |row: &crate::store::NewDeadline| {
                deadlines::start_on_receipt(row, at, &calendar.calendar)
            };
            let (delivery_id, document_id) = (d.id.clone(), d.document_id.clone());
            let (recipient, attempt) = (d.agency_id.clone(), claim.attempt);
            let (receipt_sha256, keyid) = (evidence.sha256.clone(), evidence.keyid.clone());
            let leaf = move |deadline_events| {
                xlog::prepare(
                    &LogEvent::DeliveryReceipted {
                        delivery_id: delivery_id.clone(),
                        document_id: document_id.clone(),
                        recipient: recipient.clone(),
                        attempt,
                        http_status: status,
                        receipt_sha256: receipt_sha256.clone(),
                        keyid: keyid.clone(),
                        deadline_events,
                    },
                    at,
                )
            };
            let sha = payload_sha256.clone().unwrap_or_default();
            let stored = gw
                .store
                .record_push_receipt(&claim, unix_ms(at), status, &sha, &evidence, start, leaf)
                .await;
            if let Ok(true) = stored {
                crate::metrics::delivery_attempt("delivered");
                tracing::info!(delivery_id = %d.id, document_id = %d.document_id, recipient = %d.agency_id, attempt = claim.attempt, "delivered and receipted");
            }
            stored
        }
        Err(failure) => record_failure(&gw, &claim, failure, payload_sha256.as_deref()).await,
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(delivery_id = %d.id, "the attempt's lease was lost; its outcome is not recorded")
        }
        Err(e) => {
            tracing::error!(delivery_id = %d.id, error = %e, "recording a delivery attempt failed")
        }
    }
}

async fn record_failure(
    gw: &Gateway,
    claim: &ClaimedPush,
    failure: Failure,
    payload_sha256: Option<&str>,
) -> Result<bool, StoreError> {
    let d = &claim.delivery;
    let now = gw.clock.now();
    let policy = Backoff::from_settings(&gw.settings.delivery);
    let delay = if failure.retryable() {
        policy.after_failure(claim.attempt, &mut rand::thread_rng())
    } else {
        None
    };
    let next = delay.map(|delay| unix_ms(now) + delay.as_millis() as i64);
    let mut leaves = vec![xlog::prepare(
        &LogEvent::DeliveryAttempted {
            delivery_id: d.id.clone(),
            document_id: d.document_id.clone(),
            recipient: d.agency_id.clone(),
            attempt: claim.attempt,
            outcome: failure.code.to_owned(),
            http_status: failure.http_status,
        },
        now,
    )];
    if next.is_none() {
        leaves.push(xlog::prepare(
            &LogEvent::DeliveryDeadLettered {
                delivery_id: d.id.clone(),
                document_id: d.document_id.clone(),
                recipient: d.agency_id.clone(),
                attempts: claim.attempt,
                last_error: failure.code.to_owned(),
            },
            now,
        ));
    }
    let recorded = gw
        .store
        .record_push_failure(
            claim,
            unix_ms(now),
            &PushFailure {
                code: failure.code,
                http_status: failure.http_status,
                payload_sha256,
                next_attempt_at_ms: next,
            },
            &leaves,
        )
        .await?;
    if recorded {
        crate::metrics::delivery_attempt(failure.code);
        tracing::info!(delivery_id = %d.id, recipient = %d.agency_id, attempt = claim.attempt, outcome = failure.code, http_status = ?failure.http_status, "delivery attempt failed");
        if next.is_none() {
            crate::metrics::dead_letter();
            alert_dead_letter(d, claim.attempt, failure.code);
        }
    }
    Ok(recorded)
}

/// The hook for alerting clerks of a dead letter (mail is a later issue):
/// today one warning line on the `delivery::dead_letter` target. Ids, agency
/// ids and codes only — never document content.
pub fn alert_dead_letter(d: &Delivery, attempts: u32, last_error: &str) {
    tracing::warn!(
        target: "delivery::dead_letter",
        delivery_id = %d.id,
        document_id = %d.document_id,
        recipient = %d.agency_id,
        attempts,
        last_error,
        "delivery dead-lettered: clerks must be alerted; retry by hand when the partner is back"
    );
}

/// Who retries a dead letter by hand: the document's sender (API) or an
/// operator (CLI).
pub const OPERATOR: &str = "operator";

/// Puts a dead letter back in the outbox, logged as `delivery.retried`.
pub async fn retry(store: &Store, delivery_id: &str, by: &str) -> Result<Retried, StoreError> {
    let now = OffsetDateTime::now_utc();
    store
        .retry_dead_letter(delivery_id, unix_ms(now), |d| {
            xlog::prepare(
                &LogEvent::DeliveryRetried {
                    delivery_id: d.id.clone(),
                    document_id: d.document_id.clone(),
                    recipient: d.agency_id.clone(),
                    by: by.to_owned(),
                },
                now,
            )
        })
        .await
}

/// Opens the data directory's database for the `deliveries` commands.
pub async fn open_store(settings: &crate::config::Settings) -> anyhow::Result<Store> {
    use anyhow::Context;
    Store::open(&settings.database_url, 2, &settings.resources)
        .await
        .context("opening the database")
}

/// `deliveries list`: one tab-separated line per delivery (no document content).
pub async fn list(store: &Store, state: &str, limit: i64) -> anyhow::Result<String> {
    let filter = match state {
        "all" => None,
        "pending" | "delivered" | "acked" | "dead" => Some(state),
        other => anyhow::bail!(
            "unknown state {other:?}: use pending, delivered, acked, dead or all / 未知的投递状态"
        ),
    };
    let mut out =
        String::from("delivery_id\tdocument_id\tagency\trole\tmode\tstate\tattempts\tlast_error\n");
    for d in store.deliveries_in(filter, limit).await? {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            d.id,
            d.document_id,
            d.agency_id,
            d.role,
            d.mode,
            d.state,
            d.attempts,
            d.last_error.as_deref().unwrap_or("-")
        ));
    }
    Ok(out)
}

/// `deliveries retry ID`: requeues a dead letter as the operator.
pub async fn retry_by_operator(store: &Store, id: &str) -> anyhow::Result<String> {
    match retry(store, id, OPERATOR).await? {
        Retried::Requeued(d) => Ok(format!(
            "delivery {} to {} is back in the outbox / 已重新排入投递队列",
            d.id, d.agency_id
        )),
        Retried::NotDead(state) => {
            anyhow::bail!("delivery {id} is {state}, not dead / 该投递不是死信")
        }
        Retried::NotFound => anyhow::bail!("no delivery {id} / 没有该投递"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_recipient_starts_the_clock_and_modes_come_from_the_registry() {
        let registry = Registry::parse(
            &include_str!("../../rules/agencies.demo.toml").replace(
                "id = \"procuratorate.620102\"\nname = \"兰州市城关区人民检察院\"\ndialect = \"procuratorate\"\ndelivery = \"pull\"",
                "id = \"procuratorate.620102\"\nname = \"兰州市城关区人民检察院\"\ndialect = \"procuratorate\"\ndelivery = \"push\"\nendpoint = \"http://127.0.0.1:9/in\"",
            ),
        )
        .unwrap();
        let route = Route {
            recipients: vec!["corrections.620102".into()],
            copies: vec!["procuratorate.620102".into(), "police.620102".into()],
        };
        let planned = plan(&route, &registry);
        let summary: Vec<(&str, &str, bool, &str)> = planned
            .iter()
            .map(|d| {
                (
                    d.agency_id.as_str(),
                    d.role.as_str(),
                    d.starts_clock,
                    d.mode.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("corrections.620102", "recipient", true, "pull"),
                ("procuratorate.620102", "copy", false, "push"),
                ("police.620102", "copy", false, "pull"),
            ]
        );
    }
}
