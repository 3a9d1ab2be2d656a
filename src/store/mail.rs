//! The mail outbox, the users' mail preferences and the log cursor of the
//! notifier (tables of `0008_mail.sql`; the logic is in `crate::notify`).
//!
//! Queuing is idempotent: every row has a `dedup_key` naming the event and
//! the person, and is inserted with `ON CONFLICT DO NOTHING`, so a second
//! scan or a second gateway instance that finds the same event queues
//! nothing. Sending follows the delivery outbox (`outbox.rs`): a short
//! transaction claims due rows with a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL), the SMTP conversation runs with no database lock held, and a
//! second short transaction records the outcome only if the lease is still
//! the sender's.

use std::collections::BTreeMap;

use sqlx::{Connection, Row};

use super::{Store, StoreError};

/// One message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    pub id: String,
    /// `kind:event-id:user-id` (or similar): at most one row per key, ever.
    pub dedup_key: String,
    pub user_id: String,
    pub address: String,
    pub kind: String,
    pub case_id: Option<String>,
    pub subject: String,
    pub body: String,
    /// The user wants this kind in the daily digest only: stored `held`.
    pub held: bool,
}

/// A queued message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRow {
    pub id: String,
    pub dedup_key: String,
    pub user_id: String,
    pub address: String,
    pub kind: String,
    pub case_id: Option<String>,
    pub subject: String,
    pub body: String,
    /// `pending`, `held`, `digested`, `sent` or `failed`.
    pub state: String,
    pub digest_id: Option<String>,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub sent_at_ms: Option<i64>,
}

const MAIL_COLUMNS: &str = "id, dedup_key, user_id, address, kind, case_id, subject, body, state, \
     digest_id, attempts, next_attempt_at, last_error, created_at, sent_at";

fn mail_of(r: &sqlx::any::AnyRow) -> MailRow {
    MailRow {
        id: r.get(0),
        dedup_key: r.get(1),
        user_id: r.get(2),
        address: r.get(3),
        kind: r.get(4),
        case_id: r.get(5),
        subject: r.get(6),
        body: r.get(7),
        state: r.get(8),
        digest_id: r.get(9),
        attempts: r.get::<i64, _>(10).clamp(0, u32::MAX as i64) as u32,
        next_attempt_at_ms: r.get(11),
        last_error: r.get(12),
        created_at_ms: r.get(13),
        sent_at_ms: r.get(14),
    }
}

/// A message the caller now holds the lease of.
#[derive(Debug, Clone)]
pub struct ClaimedMail {
    pub mail: MailRow,
    pub lease: String,
    /// This attempt's number (1-based).
    pub attempt: u32,
}

/// A person who may get mail: a clerk or supervisor with an address, and
/// the preferences they changed (kind → mode).
#[derive(Debug, Clone)]
pub struct MailRecipient {
    pub user_id: String,
    pub role: String,
    pub agency_id: Option<String>,
    pub region: Option<String>,
    pub email: String,
    pub preferences: BTreeMap<String, String>,
}

/// What a notification says about a document (no content, no person).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentBrief {
    pub id: String,
    pub sender: String,
    pub message_type: String,
    pub case_id: Option<String>,
    pub case_no: Option<String>,
}

/// An open deadline with what a reminder or a digest says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenDeadline {
    pub case_id: String,
    pub seq: i64,
    pub step: String,
    pub due_at_ms: i64,
    /// `due` or `overdue`.
    pub status: String,
    pub case_no: Option<String>,
    /// The case's parties (agency ids).
    pub parties: Vec<String>,
}

impl Store {
    /// The clerks and supervisors with an e-mail address, with their preferences.
    pub async fn mail_recipients(&self) -> Result<Vec<MailRecipient>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, role, agency_id, region, email FROM users \
             WHERE role IN ('clerk', 'supervisor') AND email IS NOT NULL AND email <> '' ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut prefs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for r in sqlx::query("SELECT user_id, kind, mode FROM mail_preferences")
            .fetch_all(&self.reader)
            .await?
        {
            prefs
                .entry(r.get(0))
                .or_default()
                .insert(r.get(1), r.get(2));
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let user_id: String = r.get(0);
                MailRecipient {
                    preferences: prefs.remove(&user_id).unwrap_or_default(),
                    user_id,
                    role: r.get(1),
                    agency_id: r.get(2),
                    region: r.get(3),
                    email: r.get(4),
                }
            })
            .collect())
    }

    /// A user's changed preferences (kind → mode).
    pub async fn mail_preferences(
        &self,
        user_id: &str,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT kind, mode FROM mail_preferences WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&self.writer)
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Replaces a user's preferences with `prefs` (kind, mode), all or nothing.
    pub async fn set_mail_preferences(
        &self,
        user_id: &str,
        prefs: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM mail_preferences WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for (kind, mode) in prefs {
            sqlx::query("INSERT INTO mail_preferences (user_id, kind, mode) VALUES ($1, $2, $3)")
                .bind(user_id)
                .bind(kind)
                .bind(mode)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The first exchange-log index not yet read for mail (the migration
    /// started it at the log's end then).
    pub async fn mail_cursor(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT next_index FROM mail_cursor WHERE id = 1")
            .fetch_one(&self.writer)
            .await?;
        Ok(row.get(0))
    }

    /// Queues `mails` (each at most once per dedup key, ever) and, if given,
    /// moves the log cursor forward to `advance_to` (never back), in one
    /// transaction. Returns how many rows were new.
    pub async fn enqueue_mail(
        &self,
        mails: &[NewMail],
        now_ms: i64,
        advance_to: Option<i64>,
    ) -> Result<usize, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut new = 0;
        for m in mails {
            new += insert_mail(&mut tx, m, now_ms).await?;
        }
        if let Some(next) = advance_to {
            sqlx::query("UPDATE mail_cursor SET next_index = $1 WHERE id = 1 AND next_index < $1")
                .bind(next)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    /// What a notification may say about a document.
    pub async fn document_brief(&self, id: &str) -> Result<Option<DocumentBrief>, StoreError> {
        let row = sqlx::query(
            "SELECT d.id, d.sender, d.message_type, d.case_id, c.case_no \
             FROM documents d LEFT JOIN cases c ON c.id = d.case_id WHERE d.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| DocumentBrief {
            id: r.get(0),
            sender: r.get(1),
            message_type: r.get(2),
            case_id: r.get(3),
            case_no: r.get(4),
        }))
    }

    /// Open deadlines (neither met nor closed) due at or before `until_ms`,
    /// overdue ones included, earliest first, at most `limit`.
    pub async fn open_deadlines_due_by(
        &self,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<OpenDeadline>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.case_id, d.seq, d.step, d.due_at, d.status, c.case_no FROM deadlines d \
             JOIN cases c ON c.id = d.case_id \
             WHERE d.met_at IS NULL AND d.closed_at IS NULL AND d.due_at IS NOT NULL AND d.due_at <= $1 \
             AND d.status IN ('due', 'overdue') ORDER BY d.due_at, d.case_id, d.seq LIMIT $2",
        )
        .bind(until_ms)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        let mut parties: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let case_id: String = r.get(0);
            if !parties.contains_key(&case_id) {
                let of_case: Vec<String> = sqlx::query(
                    "SELECT agency_id FROM case_parties WHERE case_id = $1 ORDER BY agency_id",
                )
                .bind(&case_id)
                .fetch_all(&self.reader)
                .await?
                .into_iter()
                .map(|p| p.get(0))
                .collect();
                parties.insert(case_id.clone(), of_case);
            }
            out.push(OpenDeadline {
                parties: parties[&case_id].clone(),
                case_id,
                seq: r.get(1),
                step: r.get(2),
                due_at_ms: r.get(3),
                status: r.get(4),
                case_no: r.get(5),
            });
        }
        Ok(out)
    }

    /// A user's messages held for the digest, oldest first.
    pub async fn held_mail(&self, user_id: &str) -> Result<Vec<MailRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MAIL_COLUMNS} FROM mail_outbox WHERE user_id = $1 AND state = 'held' ORDER BY id"
        ))
        .bind(user_id)
        .fetch_all(&self.writer)
        .await?;
        Ok(rows.iter().map(mail_of).collect())
    }

    /// Queues a digest and marks the held messages it lists as `digested`,
    /// in one transaction; `false` (nothing written) when a digest with the
    /// same dedup key exists already (another instance made it).
    pub async fn enqueue_digest(
        &self,
        digest: &NewMail,
        held_ids: &[String],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        if insert_mail(&mut tx, digest, now_ms).await? == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for id in held_ids {
            sqlx::query(
                "UPDATE mail_outbox SET state = 'digested', digest_id = $1, updated_at = $2 \
                 WHERE id = $3 AND state = 'held'",
            )
            .bind(&digest.id)
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Claims up to `limit` pending messages due at `now_ms`, each with a
    /// lease until `now_ms + lease_ms` and its attempt counted.
    pub async fn claim_due_mail(
        &self,
        now_ms: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedMail>, StoreError> {
        let (rows, _) = self
            .claim_leased(
                &super::outbox::Leased {
                    table: "mail_outbox",
                    due: "TRUE",
                    columns: MAIL_COLUMNS,
                },
                now_ms,
                limit,
                lease_ms,
                None,
            )
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for (row, lease) in rows {
            let mail = mail_of(&row);
            claimed.push(ClaimedMail {
                attempt: mail.attempts,
                mail,
                lease,
            });
        }
        Ok(claimed)
    }

    /// The SMTP server accepted the message. `false`: the lease was lost.
    pub async fn record_mail_sent(
        &self,
        claim: &ClaimedMail,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE mail_outbox SET state = 'sent', sent_at = $1, updated_at = $1, lease = NULL, \
             leased_until = NULL, last_error = NULL WHERE id = $2 AND lease = $3 AND state = 'pending'",
        )
        .bind(now_ms)
        .bind(&claim.mail.id)
        .bind(&claim.lease)
        .execute(&self.writer)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// A failed attempt: try again at `next_attempt_at_ms`, or (`None`) give
    /// up (`failed`, kept for the operator). `false`: the lease was lost.
    pub async fn record_mail_failure(
        &self,
        claim: &ClaimedMail,
        now_ms: i64,
        code: &str,
        next_attempt_at_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        let (state, next) = match next_attempt_at_ms {
            Some(at) => ("pending", at),
            None => ("failed", now_ms),
        };
        let updated = sqlx::query(
            "UPDATE mail_outbox SET state = $1, next_attempt_at = $2, last_error = $3, updated_at = $4, \
             lease = NULL, leased_until = NULL WHERE id = $5 AND lease = $6 AND state = 'pending'",
        )
        .bind(state)
        .bind(next)
        .bind(code)
        .bind(now_ms)
        .bind(&claim.mail.id)
        .bind(&claim.lease)
        .execute(&self.writer)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Queued messages in `state` (all when `None`), in queuing order.
    pub async fn mail_in(&self, state: Option<&str>) -> Result<Vec<MailRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MAIL_COLUMNS} FROM mail_outbox WHERE ($1 = '' OR state = $1) ORDER BY id"
        ))
        .bind(state.unwrap_or(""))
        .fetch_all(&self.writer)
        .await?;
        Ok(rows.iter().map(mail_of).collect())
    }
}

/// Inserts one message unless its dedup key exists; 1 if it was new.
async fn insert_mail(
    tx: &mut sqlx::AnyConnection,
    m: &NewMail,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO mail_outbox (id, dedup_key, user_id, address, kind, case_id, subject, body, state, \
         attempts, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10, $10) ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(&m.id)
    .bind(&m.dedup_key)
    .bind(&m.user_id)
    .bind(&m.address)
    .bind(&m.kind)
    .bind(&m.case_id)
    .bind(&m.subject)
    .bind(&m.body)
    .bind(if m.held { "held" } else { "pending" })
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    Ok(inserted.rows_affected() as usize)
}
