//! The outbox (`deliveries` table): every SQL statement of outbound delivery.
//!
//! Rows are inserted inside [`super::Store::commit_document`]'s transaction,
//! so a document is never accepted without its deliveries. Every state change
//! below (attempt failed, receipted, acked, dead-lettered, retried) is written
//! together with its exchange-log entry — and, for the primary recipient's
//! receipt/ack, the start of the periods counted from receipt — in **one**
//! transaction: the next group commit's (`group.rs`), which other work
//! shares, so it costs no flush of its own.
//!
//! A push attempt is *claimed* with a lease (a token and an expiry) in one
//! group commit, then performed with no database lock held, then recorded in
//! another that only succeeds if the lease is still the attempt's. A worker that dies mid-attempt leaves a lease that expires, and
//! the delivery is attempted again: at-least-once, receivers de-duplicate by
//! gateway document id.

use std::collections::{HashMap, HashSet};

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, Connection, Row};

use super::group::{self, Kept, Work};
use super::log::Entries;
use super::sql::Query;
use super::{append_log, NewDeadline, Store, StoreError};
use crate::xlog::{LogPosition, PreparedLeaf};

/// One delivery to insert with its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: String,
    pub agency_id: String,
    /// `recipient` or `copy`.
    pub role: String,
    /// The primary recipient: its receipt/ack starts the periods counted from receipt.
    pub starts_clock: bool,
    /// `push` or `pull`.
    pub mode: String,
}

/// A delivery as stored (no document content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub document_id: String,
    pub agency_id: String,
    pub role: String,
    pub starts_clock: bool,
    pub mode: String,
    /// `pending`, `delivered` (push, receipted), `acked` (pull) or `dead`.
    pub state: String,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    pub payload_sha256: Option<String>,
    pub evidence_keyid: Option<String>,
    pub evidence_sha256: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub completed_at_ms: Option<i64>,
    pub dead_at_ms: Option<i64>,
}

const DELIVERY_COLUMNS: &str =
    "id, document_id, agency_id, role, starts_clock, mode, state, attempts, \
     next_attempt_at, last_error, last_status, payload_sha256, evidence_keyid, evidence_sha256, \
     created_at, updated_at, completed_at, dead_at";

fn delivery_of(r: &sqlx::any::AnyRow) -> Delivery {
    Delivery {
        id: r.get(0),
        document_id: r.get(1),
        agency_id: r.get(2),
        role: r.get(3),
        starts_clock: r.get::<i64, _>(4) != 0,
        mode: r.get(5),
        state: r.get(6),
        attempts: r.get::<i64, _>(7).clamp(0, u32::MAX as i64) as u32,
        next_attempt_at_ms: r.get(8),
        last_error: r.get(9),
        last_status: r
            .get::<Option<i64>, _>(10)
            .and_then(|s| u16::try_from(s).ok()),
        payload_sha256: r.get(11),
        evidence_keyid: r.get(12),
        evidence_sha256: r.get(13),
        created_at_ms: r.get(14),
        updated_at_ms: r.get(15),
        completed_at_ms: r.get(16),
        dead_at_ms: r.get(17),
    }
}

/// A push attempt the caller now holds the lease of.
#[derive(Debug, Clone)]
pub struct ClaimedPush {
    pub delivery: Delivery,
    /// The lease token; recording the outcome needs it.
    pub lease: String,
    /// This attempt's number (1-based).
    pub attempt: u32,
}

/// The recipient's signed evidence: its receipt (push) or its ack (pull).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub keyid: String,
    pub signature_input: String,
    pub signature: String,
    pub body: Vec<u8>,
    /// Hex SHA-256 of `body`.
    pub sha256: String,
}

/// A pending pull delivery with what the mailbox needs of its document.
#[derive(Debug, Clone)]
pub struct MailboxItem {
    pub delivery_id: String,
    pub document_id: String,
    pub role: String,
    pub queued_at_ms: i64,
    pub sender: String,
    pub message_type: String,
    pub canonical: String,
    pub case_id: Option<String>,
}

/// What [`Store::record_ack`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acked {
    /// First ack: recorded and logged; here is the answer.
    New { answer: Vec<u8> },
    /// Acked before: the original answer.
    Again { answer: Vec<u8> },
    /// This exact signature was already used: nothing was written.
    Replayed,
    /// No pending-or-acked pull delivery with this id for this agency.
    NotFound,
}

/// What [`Store::retry_dead_letter`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// Back in the outbox, due now.
    Requeued(Box<Delivery>),
    /// The delivery is not dead (its current state).
    NotDead(String),
    NotFound,
}

/// How a push attempt ended, to record.
#[derive(Debug, Clone)]
pub struct PushFailure<'a> {
    pub code: &'a str,
    pub http_status: Option<u16>,
    pub payload_sha256: Option<&'a str>,
    /// `Some(at)`: try again at `at`; `None`: dead-letter.
    pub next_attempt_at_ms: Option<i64>,
}

/// Starts the periods that waited for `document_id`'s delivery (open ones
/// only), each computed by `start`; returns `name:started` for the log.
async fn start_awaiting(
    tx: &mut AnyConnection,
    document_id: &str,
    start: &mut (dyn FnMut(&NewDeadline) -> NewDeadline + Send),
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT case_id, seq, step, period, starts_at, due_at, met_at, closed_at, status, note, awaiting_document \
         FROM deadlines WHERE awaiting_document = $1 AND met_at IS NULL AND closed_at IS NULL ORDER BY case_id, seq",
    )
    .bind(document_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut events = Vec::new();
    for r in rows {
        let case_id: String = r.get(0);
        let seq: i64 = r.get(1);
        let row = NewDeadline {
            step: r.get(2),
            period: r.get(3),
            starts_at_ms: r.get(4),
            due_at_ms: r.get(5),
            met_at_ms: r.get(6),
            closed_at_ms: r.get(7),
            status: r.get(8),
            note: r.get(9),
            awaiting_document: r.get(10),
        };
        let started = start(&row);
        sqlx::query(
            "UPDATE deadlines SET starts_at = $1, due_at = $2, status = $3, note = $4, awaiting_document = NULL \
             WHERE case_id = $5 AND seq = $6",
        )
        .bind(started.starts_at_ms)
        .bind(started.due_at_ms)
        .bind(&started.status)
        .bind(&started.note)
        .bind(&case_id)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        events.push(format!("{}:started", row.step));
    }
    Ok(events)
}

/// A cap on the attempts in flight to one recipient (`agency_id`), so that
/// a slow partner holds at most `cap` of the worker's places and the others'
/// deliveries go on (docs/delivery.md).
#[derive(Debug, Clone, Default)]
pub struct PerRecipient {
    pub cap: usize,
    /// Attempts the caller has in flight, by recipient.
    pub busy: HashMap<String, usize>,
}

impl PerRecipient {
    /// Places `recipient` has left.
    pub fn room(&self, recipient: &str) -> usize {
        let busy = self.busy.get(recipient).copied().unwrap_or(0);
        self.cap.saturating_sub(busy)
    }

    /// One more attempt in flight to `recipient`.
    pub fn take(&mut self, recipient: String) {
        *self.busy.entry(recipient).or_default() += 1;
    }

    /// An attempt to `recipient` ended: its place is free.
    pub fn release(&mut self, recipient: &str) {
        if let Some(n) = self.busy.get_mut(recipient) {
            *n -= 1;
            if *n == 0 {
                self.busy.remove(recipient);
            }
        }
    }

    /// Recipients with no place left.
    fn full(&self) -> Vec<&String> {
        self.busy
            .iter()
            .filter(|(_, n)| **n >= self.cap)
            .map(|(recipient, _)| recipient)
            .collect()
    }
}

/// What a claim of due pushes saw besides what it took.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    /// Recipients with a due row among those the claim read.
    pub seen: HashSet<String>,
    /// Its last query found fewer rows than it asked for: every due row of
    /// a recipient not at its cap, so a recipient not `seen` and not at its
    /// cap had none (on PostgreSQL, but for rows another instance was
    /// claiming at that moment: the worker's next poll looks again).
    pub exhausted: bool,
}

/// An outbox table whose rows are claimed with leases ([`Store::claim_leased`]).
#[derive(Clone, Copy)]
pub(super) struct Leased {
    pub table: &'static str,
    /// Extra condition on due rows (`TRUE` for none).
    pub due: &'static str,
    /// The columns read back for each claimed row.
    pub columns: &'static str,
}

impl Store {
    /// How many push deliveries are pending and due at `now_ms` (being
    /// attempted or waiting for the worker): the `demo` waits for none before
    /// it moves its clock on, so each simulated hour's retries are made in it.
    pub async fn pushes_due(&self, now_ms: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND mode = 'push' \
             AND next_attempt_at <= $1",
        )
        .bind(now_ms)
        .fetch_one(&self.reader)
        .await?;
        Ok(row.get(0))
    }

    /// Claims up to `limit` push deliveries that are due at `now_ms`, each
    /// with a lease until `now_ms + lease_ms` and its attempt counted, and
    /// none for a recipient that would then have more than `per.cap`
    /// attempts in flight (counting `per.busy`, the caller's own).
    pub async fn claim_due_pushes(
        &self,
        now_ms: i64,
        limit: usize,
        lease_ms: i64,
        per: PerRecipient,
    ) -> Result<(Vec<ClaimedPush>, Survey), StoreError> {
        let (rows, survey) = self
            .claim_leased(
                &Leased {
                    table: "deliveries",
                    due: "mode = 'push'",
                    columns: DELIVERY_COLUMNS,
                },
                now_ms,
                limit,
                lease_ms,
                Some(per),
            )
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for (row, lease) in rows {
            let delivery = delivery_of(&row);
            claimed.push(ClaimedPush {
                attempt: delivery.attempts,
                delivery,
                lease,
            });
        }
        Ok((claimed, survey))
    }

    /// Claims up to `limit` pending rows of an outbox table (`deliveries`,
    /// `mail_outbox`) that are due at `now_ms` and not leased, each with a
    /// new lease until `now_ms + lease_ms` and its attempt counted; returns
    /// each claimed row (`columns`) with its lease. The update is guarded by
    /// the attempt count read, so two claimers never both win a row. Written
    /// in the next group commit: a claim is a write that has to be durable
    /// (its attempt count), and on its own it cost a flush per push.
    pub(super) async fn claim_leased(
        &self,
        outbox: &Leased,
        now_ms: i64,
        limit: usize,
        lease_ms: i64,
        per_recipient: Option<PerRecipient>,
    ) -> Result<(Vec<(sqlx::any::AnyRow, String)>, Survey), StoreError> {
        let work = Claim {
            outbox: *outbox,
            skip_locked: self.backend == super::Backend::Postgres,
            now_ms,
            limit,
            lease_ms,
            per_recipient,
            claimed: Vec::new(),
            survey: Survey::default(),
        };
        group::join(self, work).await
    }

    /// Records a failed push attempt (retry later, or dead-letter) with its
    /// log entries, in the next group commit. `false`: the lease was lost
    /// (another attempt took over), nothing was written.
    pub async fn record_push_failure(
        &self,
        claim: &ClaimedPush,
        now_ms: i64,
        failure: &PushFailure<'_>,
        leaves: &[PreparedLeaf],
    ) -> Result<bool, StoreError> {
        let (state, next, dead_at) = match failure.next_attempt_at_ms {
            Some(at) => ("pending", at, None),
            None => ("dead", now_ms, Some(now_ms)),
        };
        let work = AttemptFailed {
            delivery_id: claim.delivery.id.clone(),
            lease: claim.lease.clone(),
            state,
            next_attempt_at_ms: next,
            dead_at_ms: dead_at,
            code: failure.code.to_owned(),
            http_status: failure.http_status.map(i64::from),
            payload_sha256: failure.payload_sha256.map(str::to_owned),
            now_ms,
            leaves: leaves.to_vec(),
            recorded: false,
        };
        group::join(self, work).await
    }

    /// Records the recipient's verified receipt of a push, in the next group
    /// commit: the delivery is `delivered`, the evidence kept, the periods
    /// waiting for it started (primary recipient only, each by `start`) and
    /// `leaf` (built from the deadline events) appended. `false`: the lease
    /// was lost, nothing written.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_push_receipt(
        &self,
        claim: &ClaimedPush,
        now_ms: i64,
        http_status: u16,
        payload_sha256: &str,
        evidence: &Evidence,
        start: impl FnMut(&NewDeadline) -> NewDeadline + Send + 'static,
        leaf: impl Fn(Vec<String>) -> PreparedLeaf + Send + 'static,
    ) -> Result<bool, StoreError> {
        let work = Receipted {
            delivery_id: claim.delivery.id.clone(),
            document_id: claim.delivery.document_id.clone(),
            starts_clock: claim.delivery.starts_clock,
            lease: claim.lease.clone(),
            now_ms,
            http_status: i64::from(http_status),
            payload_sha256: payload_sha256.to_owned(),
            evidence: evidence.clone(),
            start: Box::new(start),
            leaf: Box::new(leaf),
            recorded: false,
        };
        group::join(self, work).await
    }

    /// Records an agency's signed ack of a pull delivery (idempotent), in
    /// the next group commit: the replay record, the `acked` state with its
    /// evidence, the periods waiting for it, the log entry and the answer
    /// (built from the log position).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_ack(
        &self,
        delivery_id: &str,
        agency: &str,
        signature_sha256: &str,
        evidence: &Evidence,
        now_ms: i64,
        start: impl FnMut(&NewDeadline) -> NewDeadline + Send + 'static,
        leaf: impl Fn(Vec<String>) -> PreparedLeaf + Send + 'static,
        answer: impl Fn(&LogPosition) -> Vec<u8> + Send + 'static,
    ) -> Result<Acked, StoreError> {
        let work = Ack {
            delivery_id: delivery_id.to_owned(),
            agency: agency.to_owned(),
            signature_sha256: signature_sha256.to_owned(),
            evidence: evidence.clone(),
            now_ms,
            start: Box::new(start),
            leaf: Box::new(leaf),
            answer: Box::new(answer),
            acked: Acked::NotFound,
        };
        group::join(self, work).await
    }

    /// Puts a dead letter back in the outbox (attempts from zero, due now)
    /// with its log entry (`leaf` gets the delivery).
    pub async fn retry_dead_letter(
        &self,
        delivery_id: &str,
        now_ms: i64,
        leaf: impl FnOnce(&Delivery) -> PreparedLeaf,
    ) -> Result<Retried, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
        ))
        .bind(delivery_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(Retried::NotFound);
        };
        let delivery = delivery_of(&row);
        if delivery.state != "dead" {
            tx.rollback().await?;
            return Ok(Retried::NotDead(delivery.state));
        }
        sqlx::query(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1, dead_at = NULL, \
             lease = NULL, leased_until = NULL, updated_at = $1 WHERE id = $2 AND state = 'dead'",
        )
        .bind(now_ms)
        .bind(delivery_id)
        .execute(&mut *tx)
        .await?;
        append_log(&mut tx, &leaf(&delivery)).await?;
        tx.commit().await?;
        Ok(Retried::Requeued(Box::new(Delivery {
            state: "pending".into(),
            attempts: 0,
            next_attempt_at_ms: now_ms,
            dead_at_ms: None,
            updated_at_ms: now_ms,
            ..delivery
        })))
    }

    /// One delivery, as last committed. (Read through a reader: on SQLite the
    /// writer connection is the group commit's, and an ack's look-up used to
    /// wait for a whole group there. State changes are decided inside the
    /// writing transaction, never on this read.)
    pub async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.as_ref().map(delivery_of))
    }

    /// A document's deliveries, recipients first.
    pub async fn deliveries_of_document(
        &self,
        document_id: &str,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE document_id = $1 ORDER BY role DESC, agency_id"
        ))
        .bind(document_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(delivery_of).collect())
    }

    /// Deliveries in `state` (every state when `None`), oldest first, at most `limit`.
    pub async fn deliveries_in(
        &self,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE ($1 = '' OR state = $1) ORDER BY id LIMIT $2"
        ))
        .bind(state.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(delivery_of).collect())
    }

    /// An agency's pending pull deliveries after `after` (a delivery id), in
    /// delivery-id order, at most `limit`.
    pub async fn mailbox(
        &self,
        agency: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MailboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.id, d.document_id, d.role, d.created_at, doc.sender, doc.message_type, doc.canonical, doc.case_id \
             FROM deliveries d JOIN documents doc ON doc.id = d.document_id \
             WHERE d.agency_id = $1 AND d.mode = 'pull' AND d.state = 'pending' AND d.id > $2 \
             ORDER BY d.id LIMIT $3",
        )
        .bind(agency)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| MailboxItem {
                delivery_id: r.get(0),
                document_id: r.get(1),
                role: r.get(2),
                queued_at_ms: r.get(3),
                sender: r.get(4),
                message_type: r.get(5),
                canonical: r.get(6),
                case_id: r.get(7),
            })
            .collect())
    }

    /// Appends several entries in the next group commit (all or none):
    /// e.g. the reads a mailbox page hands out, logged before the page is
    /// sent.
    pub async fn append_logs(
        &self,
        leaves: &[PreparedLeaf],
    ) -> Result<Vec<LogPosition>, StoreError> {
        group::join(self, Entries::new(leaves.to_vec())).await
    }
}

/// A failed push attempt, as [`Store::record_push_failure`] writes it.
struct AttemptFailed {
    delivery_id: String,
    lease: String,
    state: &'static str,
    next_attempt_at_ms: i64,
    dead_at_ms: Option<i64>,
    code: String,
    http_status: Option<i64>,
    payload_sha256: Option<String>,
    now_ms: i64,
    leaves: Vec<PreparedLeaf>,
    recorded: bool,
}

impl Work for AttemptFailed {
    type Output = bool;

    fn write<'a>(
        &'a mut self,
        tx: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Kept, StoreError>> {
        Box::pin(async move {
            let updated = sqlx::query(
                "UPDATE deliveries SET state = $1, next_attempt_at = $2, dead_at = $3, lease = NULL, leased_until = NULL, \
                 last_error = $4, last_status = $5, payload_sha256 = COALESCE($6, payload_sha256), updated_at = $7 \
                 WHERE id = $8 AND lease = $9 AND state = 'pending'",
            )
            .bind(self.state)
            .bind(self.next_attempt_at_ms)
            .bind(self.dead_at_ms)
            .bind(&self.code)
            .bind(self.http_status)
            .bind(self.payload_sha256.as_deref())
            .bind(self.now_ms)
            .bind(&self.delivery_id)
            .bind(&self.lease)
            .execute(&mut *tx)
            .await?;
            self.recorded = updated.rows_affected() == 1;
            Ok(match self.recorded {
                true => Kept::Rows(self.leaves.clone()),
                false => Kept::Nothing,
            })
        })
    }

    fn output(self) -> bool {
        self.recorded
    }
}

/// Binds a recipient's evidence as five consecutive parameters: keyid,
/// signature input, signature, body, body digest (the `evidence_*` columns).
fn bind_evidence<'q>(query: Query<'q>, evidence: &'q Evidence) -> Query<'q> {
    query
        .bind(&evidence.keyid)
        .bind(&evidence.signature_input)
        .bind(&evidence.signature)
        .bind(&evidence.body)
        .bind(&evidence.sha256)
}

/// How the periods waiting for a delivery start (`workflow::deadlines`).
type StartFn = Box<dyn FnMut(&NewDeadline) -> NewDeadline + Send>;
/// A delivery's log entry, from the deadline events it caused.
type LeafFn = Box<dyn Fn(Vec<String>) -> PreparedLeaf + Send>;

/// A push's verified receipt, as [`Store::record_push_receipt`] writes it.
struct Receipted {
    delivery_id: String,
    document_id: String,
    starts_clock: bool,
    lease: String,
    now_ms: i64,
    http_status: i64,
    payload_sha256: String,
    evidence: Evidence,
    start: StartFn,
    leaf: LeafFn,
    recorded: bool,
}

impl Work for Receipted {
    type Output = bool;

    fn write<'a>(
        &'a mut self,
        tx: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Kept, StoreError>> {
        Box::pin(async move {
            let updated = sqlx::query(
                "UPDATE deliveries SET state = 'delivered', lease = NULL, leased_until = NULL, last_status = $1, \
                 payload_sha256 = $2, evidence_keyid = $3, evidence_signature_input = $4, evidence_signature = $5, \
                 evidence_body = $6, evidence_sha256 = $7, completed_at = $8, updated_at = $8 \
                 WHERE id = $9 AND lease = $10 AND state = 'pending'",
            )
            .bind(self.http_status)
            .bind(&self.payload_sha256);
            let updated = bind_evidence(updated, &self.evidence)
                .bind(self.now_ms)
                .bind(&self.delivery_id)
                .bind(&self.lease)
                .execute(&mut *tx)
                .await?;
            self.recorded = updated.rows_affected() == 1;
            if !self.recorded {
                return Ok(Kept::Nothing);
            }
            let events = match self.starts_clock {
                true => start_awaiting(tx, &self.document_id, &mut *self.start).await?,
                false => Vec::new(),
            };
            Ok(Kept::Rows(vec![(self.leaf)(events)]))
        })
    }

    fn output(self) -> bool {
        self.recorded
    }
}

/// An ack's answer, from where its log entry landed.
type AnswerFn = Box<dyn Fn(&LogPosition) -> Vec<u8> + Send>;

/// A pull's signed ack, as [`Store::record_ack`] writes it.
struct Ack {
    delivery_id: String,
    agency: String,
    signature_sha256: String,
    evidence: Evidence,
    now_ms: i64,
    start: StartFn,
    leaf: LeafFn,
    answer: AnswerFn,
    /// What the caller is told (`New` only once its answer is written).
    acked: Acked,
}

impl Work for Ack {
    type Output = Acked;

    fn write<'a>(
        &'a mut self,
        tx: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Kept, StoreError>> {
        Box::pin(async move {
            // The signature first: used before (by anything: documents and
            // acks share the table), the ack is a replay and nothing is
            // written. `ON CONFLICT DO NOTHING`, not a caught unique
            // violation: no error to abort the group's transaction, and on
            // PostgreSQL a twin committing on another instance is waited for
            // and then seen. Once recorded it stays, whatever the ack finds
            // (an ack of an unknown delivery used its signature too).
            let recorded = sqlx::query(
                "INSERT INTO seen_signatures (keyid, signature_sha256, seen_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&self.evidence.keyid)
            .bind(&self.signature_sha256)
            .bind(self.now_ms)
            .execute(&mut *tx)
            .await?;
            if recorded.rows_affected() == 0 {
                self.acked = Acked::Replayed;
                return Ok(Kept::Nothing);
            }
            // The usual case in one statement: a pending delivery becomes
            // acked. (On PostgreSQL with several instances a second ack,
            // another signature, may run at once: it waits for the first to
            // commit and then updates nothing.)
            let acked = sqlx::query(
                "UPDATE deliveries SET state = 'acked', evidence_keyid = $1, evidence_signature_input = $2, \
                 evidence_signature = $3, evidence_body = $4, evidence_sha256 = $5, completed_at = $6, updated_at = $6 \
                 WHERE id = $7 AND agency_id = $8 AND mode = 'pull' AND state = 'pending' \
                 RETURNING document_id, starts_clock",
            );
            let acked = bind_evidence(acked, &self.evidence)
                .bind(self.now_ms)
                .bind(&self.delivery_id)
                .bind(&self.agency)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(acked) = acked else {
                // Acked before (its first answer), or no such delivery.
                let row = sqlx::query(
                    "SELECT state, answer FROM deliveries WHERE id = $1 AND agency_id = $2 AND mode = 'pull'",
                )
                .bind(&self.delivery_id)
                .bind(&self.agency)
                .fetch_optional(&mut *tx)
                .await?;
                self.acked = match row.filter(|row| row.get::<String, _>(0) == "acked") {
                    Some(row) => Acked::Again {
                        answer: row.get::<Option<Vec<u8>>, _>(1).unwrap_or_default(),
                    },
                    None => Acked::NotFound,
                };
                return Ok(Kept::Rows(Vec::new()));
            };
            let document_id: String = acked.get(0);
            let starts_clock = acked.get::<i64, _>(1) != 0;
            let events = match starts_clock {
                true => start_awaiting(tx, &document_id, &mut *self.start).await?,
                false => Vec::new(),
            };
            Ok(Kept::Rows(vec![(self.leaf)(events)]))
        })
    }

    fn logged<'a>(
        &'a mut self,
        tx: &'a mut AnyConnection,
        positions: &'a [LogPosition],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let Some(position) = positions.first() else {
                // A re-ack appends nothing and gets the first ack's answer.
                // Acked earlier in this very group, that answer was not yet
                // written when this ack read the delivery; it is now (works
                // are logged in queue order).
                if matches!(&self.acked, Acked::Again { answer } if answer.is_empty()) {
                    let answer: Option<Vec<u8>> =
                        sqlx::query_scalar("SELECT answer FROM deliveries WHERE id = $1")
                            .bind(&self.delivery_id)
                            .fetch_one(&mut *tx)
                            .await?;
                    self.acked = Acked::Again {
                        answer: answer.unwrap_or_default(),
                    };
                }
                return Ok(());
            };
            let body = (self.answer)(position);
            sqlx::query("UPDATE deliveries SET answer = $1 WHERE id = $2")
                .bind(&body)
                .bind(&self.delivery_id)
                .execute(&mut *tx)
                .await?;
            self.acked = Acked::New { answer: body };
            Ok(())
        })
    }

    fn output(self) -> Acked {
        self.acked
    }
}

/// A claim of due outbox rows, as [`Store::claim_leased`] writes it.
struct Claim {
    outbox: Leased,
    /// PostgreSQL: several instances claim at once; each skips the rows
    /// another's transaction holds instead of queueing behind it (and then
    /// losing the guarded update). SQLite has a single writer.
    skip_locked: bool,
    now_ms: i64,
    limit: usize,
    lease_ms: i64,
    per_recipient: Option<PerRecipient>,
    claimed: Vec<(sqlx::any::AnyRow, String)>,
    survey: Survey,
}

impl Work for Claim {
    type Output = (Vec<(sqlx::any::AnyRow, String)>, Survey);

    fn write<'a>(
        &'a mut self,
        tx: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Kept, StoreError>> {
        Box::pin(async move {
            let Leased {
                table,
                due,
                columns,
            } = self.outbox;
            let skip_locked = match self.skip_locked {
                true => " FOR UPDATE SKIP LOCKED",
                false => "",
            };
            self.claimed.clear();
            self.survey = Survey::default();
            // Recomputed on every run: the group may write this work again.
            let mut per = self.per_recipient.clone().unwrap_or(PerRecipient {
                cap: usize::MAX,
                busy: HashMap::new(),
            });
            // Recipients already at their cap are left out of the query, so
            // their backlog cannot fill it; one that reaches its cap during
            // this claim is skipped, and the query asked again without it.
            for _round in 0..4 {
                let full = per.full();
                let excluded = match full.is_empty() {
                    true => String::new(),
                    false => {
                        let marks: Vec<String> =
                            (0..full.len()).map(|i| format!("${}", i + 3)).collect();
                        format!(" AND agency_id NOT IN ({})", marks.join(", "))
                    }
                };
                let wanted = self.limit - self.claimed.len();
                let sql = format!(
                    "SELECT id, attempts{agency} FROM {table} WHERE state = 'pending' AND {due} \
                     AND next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1){excluded} \
                     ORDER BY next_attempt_at, id LIMIT $2{skip_locked}",
                    agency = if self.per_recipient.is_some() { ", agency_id" } else { "" },
                );
                let mut query = sqlx::query(&sql).bind(self.now_ms).bind(wanted as i64);
                let full_before = full.len();
                for agency in full {
                    query = query.bind(agency.clone());
                }
                let candidates = query.fetch_all(&mut *tx).await?;
                let exhausted = candidates.len() < wanted;
                self.survey.exhausted = exhausted;
                for c in candidates {
                    let agency: Option<String> = self.per_recipient.as_ref().map(|_| c.get(2));
                    if let Some(agency) = &agency {
                        self.survey.seen.insert(agency.clone());
                    }
                    if self.claimed.len() == self.limit {
                        continue;
                    }
                    let id: String = c.get(0);
                    let attempts: i64 = c.get(1);
                    if agency.as_deref().is_some_and(|a| per.room(a) == 0) {
                        continue;
                    }
                    let lease = uuid::Uuid::new_v4().to_string();
                    // The claimed row comes back with the update (one statement).
                    let taken = sqlx::query(&format!(
                        "UPDATE {table} SET lease = $1, leased_until = $2, attempts = attempts + 1, updated_at = $3 \
                         WHERE id = $4 AND state = 'pending' AND attempts = $5 \
                         AND (leased_until IS NULL OR leased_until <= $3) RETURNING {columns}",
                    ))
                    .bind(&lease)
                    .bind(self.now_ms + self.lease_ms)
                    .bind(self.now_ms)
                    .bind(&id)
                    .bind(attempts)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(row) = taken {
                        self.claimed.push((row, lease));
                        if let Some(agency) = agency {
                            per.take(agency);
                        }
                    }
                }
                let full_now = per.full().len();
                if exhausted || self.claimed.len() == self.limit || full_now == full_before {
                    break;
                }
            }
            Ok(match self.claimed.is_empty() {
                true => Kept::Nothing,
                false => Kept::Rows(Vec::new()),
            })
        })
    }

    fn output(self) -> (Vec<(sqlx::any::AnyRow, String)>, Survey) {
        (self.claimed, self.survey)
    }
}
