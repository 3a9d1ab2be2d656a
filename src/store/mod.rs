//! Durable storage through sqlx: the only module that writes SQL.
//!
//! Everything a submission changes — the document, its parties, the
//! signature evidence, the replay record, the case and its deadlines, the
//! exchange-log entry and the receipt — is written by [`Store::commit_document`]
//! in **one** transaction. The receipt is handed back only after that
//! transaction has committed, and SQLite runs in WAL mode with
//! `synchronous=FULL`, so a receipt never outlives a crash that its document
//! did not survive.
//!
//! SQLite (embedded default) and PostgreSQL sit behind sqlx's `Any` driver
//! with the same tables (`migrations/sqlite`, `migrations/postgres`: every
//! migration in both, same number and name) and the same SQL text. On SQLite
//! all writes go through one connection: SQLite has a single writer anyway, and
//! serialising in the pool avoids busy-retry storms between writers. On
//! PostgreSQL several writer connections (and gateway instances) commit at
//! once, so no write may rely on being alone: unique keys decide replays and
//! duplicates, case moves are guarded by the expected state, and appends to the
//! exchange log are ordered by the row lock on `log_head` (see `log::append_leaves`).

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

mod cases;
mod group;
mod log;
mod mail;
mod retention;
mod rows;
mod search;
mod sql;
mod users;

pub use cases::{CaseFilter, LapsedDeadline};
pub use group::ReceiptFn;
pub use log::{ConsistencyProof, InclusionProof, LogEntry, LogFilter, StoredCheckpoint};
pub use mail::{ClaimedMail, DocumentBrief, MailRecipient, MailRow, NewMail, OpenDeadline};
pub use retention::{PurgeCounts, PurgeableDocument, RetentionCutoffs};
pub use search::{Found, Search};
pub use users::{UserChange, UserListing, UserRecord};

use crate::xlog::{LogPosition, PreparedLeaf};
use log::append_log;

mod outbox;
pub use outbox::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    /// The attachment blob store (files under `DIR/blobs`) failed.
    #[error("blob store error: {0}")]
    Blobs(std::io::Error),
    /// The shared transaction of a group commit failed (each document of
    /// the group gets this; nothing of any of them was stored).
    #[error("group commit failed: {0}")]
    Group(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// All writes (a single connection on SQLite).
    writer: AnyPool,
    /// Reads.
    reader: AnyPool,
    /// Documents waiting to be committed together.
    group: std::sync::Arc<group::Group>,
    /// Upper subtree hashes of the exchange log, read once (log.rs).
    nodes: std::sync::Arc<log::NodeCache>,
}

/// The signature evidence kept with a document.
#[derive(Debug, Clone)]
pub struct SignatureEvidence {
    pub keyid: String,
    pub alg: String,
    pub signature_input: String,
    pub signature: String,
    pub signature_base: String,
    pub signature_sha256: String,
    pub signer_agency: String,
    pub signer_certificate: String,
    pub verified_at_ms: i64,
}

/// A legal period of a case, computed before the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadline {
    pub step: String,
    pub period: String,
    pub starts_at_ms: i64,
    pub due_at_ms: Option<i64>,
    pub met_at_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
    pub status: String,
    pub note: Option<String>,
    /// Counted from receipt: the document whose delivery starts it (until then
    /// `due_at_ms` is `None` and the status `awaiting_delivery`).
    pub awaiting_document: Option<String>,
}

/// How the document being committed changes its case.
#[derive(Debug, Clone)]
pub enum CaseWrite {
    /// The document opens a case.
    Open(NewCase),
    /// The document answers within a case: the state moves from `from_state`
    /// to `to_state` (refused if another commit moved it first) and the
    /// deadlines are replaced by `deadlines`.
    Advance(CaseUpdate),
}

#[derive(Debug, Clone)]
pub struct CaseUpdate {
    pub id: String,
    pub from_state: String,
    pub to_state: String,
    /// Agencies that become party to the case (sender, recipients, copies).
    pub parties: Vec<String>,
    pub deadlines: Vec<NewDeadline>,
}

impl CaseWrite {
    pub fn id(&self) -> &str {
        match self {
            CaseWrite::Open(c) => &c.id,
            CaseWrite::Advance(u) => &u.id,
        }
    }

    pub fn deadlines(&self) -> &[NewDeadline] {
        match self {
            CaseWrite::Open(c) => &c.deadlines,
            CaseWrite::Advance(u) => &u.deadlines,
        }
    }
}

/// A case opened by the document being committed.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub id: String,
    pub flow: String,
    pub state: String,
    pub opened_by: String,
    pub corrections_agency: String,
    pub case_no: Option<String>,
    pub parties: Vec<String>,
    pub deadlines: Vec<NewDeadline>,
}

/// Everything stored for one accepted document.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub id: String,
    pub receipt_id: String,
    pub sender: String,
    pub message_type: String,
    pub dialect: String,
    pub content_type: String,
    pub body_sha256: String,
    pub original: Vec<u8>,
    pub canonical: String,
    pub document_no: String,
    pub received_at_ms: i64,
    pub recipients: Vec<String>,
    pub copies: Vec<String>,
    pub signature: SignatureEvidence,
    pub case: Option<CaseWrite>,
    /// The attachments the document references, in document order.
    pub attachments: Vec<NewAttachment>,
    /// Set when the document came as `multipart/related`: the signed body is a blob.
    pub envelope: Option<NewEnvelope>,
    /// The outbox: one delivery per recipient and copy, committed with the document.
    pub deliveries: Vec<NewDelivery>,
    /// The person the document is about, indexed for the clerks' search
    /// (personal data: stays in `document_subjects`).
    pub subject: Option<NewSubject>,
}

/// The searchable identity of a document's person.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSubject {
    pub name: String,
    /// The normalised 18-character 公民身份号码.
    pub id_number: String,
}

/// Shows nothing of the person, so a `{:?}` in a log leaks nothing.
impl std::fmt::Debug for NewSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSubject(..)")
    }
}

/// One attachment reference of an accepted document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub sha256: String,
    pub kind: String,
    pub file_name: String,
    pub media_type: String,
    /// The stored blob's size (`None` only for an accepted reference without bytes).
    pub size: Option<u64>,
}

/// The signed `multipart/related` body of a document, kept whole as a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnvelope {
    pub content_type: String,
    pub body_sha256: String,
    pub size: u64,
}

/// An attachment uploaded on its own, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub sha256: String,
    pub uploader: String,
    pub size: u64,
    pub media_type: String,
    pub keyid: String,
    pub signature_sha256: String,
    pub uploaded_at_ms: i64,
}

/// What [`Store::record_upload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uploaded {
    /// First upload of these bytes by this agency; logged at `position`.
    New { position: LogPosition },
    /// The agency had uploaded these bytes before: nothing was written but the
    /// replay record; here is the earlier media type.
    Existing { media_type: String },
    /// This exact signature was already used: nothing was written.
    Replayed,
}

/// A document's attachment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    pub sha256: String,
    pub media_type: String,
    pub size: Option<u64>,
}

/// What [`Store::prior_submission`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prior {
    /// The signature was used before: a replay.
    pub replayed: bool,
    /// The receipt of the same bytes from the same sender, stored earlier.
    pub receipt: Option<Vec<u8>>,
}

/// What [`Store::commit_document`] did.
#[derive(Debug, Clone)]
pub enum Committed {
    /// Stored; the receipt body (as built from the log position) is durable.
    New {
        position: LogPosition,
        receipt: Vec<u8>,
    },
    /// The same sender already submitted these bytes: nothing was written,
    /// here is the original receipt.
    Duplicate { receipt: Vec<u8> },
    /// This exact signature was already used: nothing was written.
    Replayed,
    /// Another document moved the case first: nothing was written; the
    /// submitter may send again and will be checked against the new state.
    CaseMoved,
}

/// A stored document as read back.
#[derive(Debug, Clone)]
pub struct StoredDocument {
    pub id: String,
    pub sender: String,
    pub message_type: String,
    pub content_type: String,
    pub body_sha256: String,
    pub original: Vec<u8>,
    pub canonical: String,
    pub received_at_ms: i64,
    /// (agency id, "recipient" | "copy")
    pub parties: Vec<(String, String)>,
    /// When retention purged the body (`original` and `canonical` are then
    /// empty; src/retention.rs).
    pub purged_at_ms: Option<i64>,
}

/// The evidence kept for one accepted document ([`Store::document_evidence`]).
#[derive(Debug, Clone)]
pub struct DocumentEvidence {
    pub signature: SignatureEvidence,
    /// The gateway's receipt body as first issued.
    pub receipt: Option<Vec<u8>>,
    /// The document came as `multipart/related`: the signed body is the
    /// envelope blob, not the document bytes alone.
    pub multipart: bool,
    /// (delivery id, recipient, its signed receipt or ack).
    pub deliveries: Vec<(String, String, Evidence)>,
}

/// A case with its deadlines.
#[derive(Debug, Clone)]
pub struct CaseRecord {
    pub id: String,
    pub flow: String,
    pub state: String,
    pub opened_by: String,
    pub corrections_agency: String,
    pub case_no: Option<String>,
    pub opened_at_ms: i64,
    pub updated_at_ms: i64,
    pub parties: Vec<String>,
    pub deadlines: Vec<NewDeadline>,
    pub documents: Vec<(String, String, i64)>,
}

/// A case's parties (of the case row `c`) as one column: agency ids hold no
/// comma (`model::agency`), so they travel as one list, in order, in the
/// case's own query. SQLite (3.44+) and PostgreSQL both spell it so.
const CASE_PARTIES: &str = "(SELECT string_agg(p.agency_id, ',' ORDER BY p.agency_id) \
     FROM case_parties p WHERE p.case_id = c.id)";

/// Prepared statements a PostgreSQL group-commit connection keeps, unless
/// the database URL sets `statement-cache-capacity` itself. A group's
/// multi-row statements have a text for each count of rows (up to
/// `sql::INSERT_CHUNK`, a dozen tables), and sqlx's default of 100 let them
/// push each other out, each costing a parse round trip again: measured
/// 1,481–1,628 → 1,630–1,922 docs/s (docs/benchmarks.md §10), for ~35 MiB
/// more memory in each of the two committer backends of the server.
const COMMITTER_STATEMENT_CACHE: usize = 1024;

/// `url` with [`COMMITTER_STATEMENT_CACHE`] unless it sets a capacity.
fn committer_url(url: &str) -> String {
    if url.contains("statement-cache-capacity=") {
        return url.to_owned();
    }
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}statement-cache-capacity={COMMITTER_STATEMENT_CACHE}")
}

/// A case's period as [`deadline_at`] reads it (table alias `dl`).
const DEADLINE_COLUMNS: &str = "dl.step, dl.period, dl.starts_at, dl.due_at, dl.met_at, \
     dl.closed_at, dl.status, dl.note, dl.awaiting_document";

/// The period in [`DEADLINE_COLUMNS`] starting at column `at` of `row`.
fn deadline_at(row: &AnyRow, at: usize) -> NewDeadline {
    NewDeadline {
        step: row.get(at),
        period: row.get(at + 1),
        starts_at_ms: row.get(at + 2),
        due_at_ms: row.get(at + 3),
        met_at_ms: row.get(at + 4),
        closed_at_ms: row.get(at + 5),
        status: row.get(at + 6),
        note: row.get(at + 7),
        awaiting_document: row.get(at + 8),
    }
}

/// The parties of [`CASE_PARTIES`] (NULL: none).
fn parties_of(list: Option<String>) -> Vec<String> {
    list.as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What an answer needs of its case ([`Store::case_of_document`]): not its
/// documents.
#[derive(Debug, Clone)]
pub struct AnsweredCase {
    pub id: String,
    pub flow: String,
    pub state: String,
    pub corrections_agency: String,
    pub parties: Vec<String>,
    pub deadlines: Vec<NewDeadline>,
}

impl Store {
    /// Connects and runs the migrations for the URL's backend.
    pub async fn open(
        url: &str,
        max_connections: u32,
        resources: &Path,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        if backend == Backend::Sqlite {
            if let Some(parent) = sqlite_path(url).and_then(|p| p.parent().map(Path::to_path_buf)) {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(&parent).map_err(sqlx::Error::Io)?;
                }
            }
        }
        let options = AnyConnectOptions::from_str(url)?;
        let pool = |n: u32| {
            AnyPoolOptions::new()
                .max_connections(n)
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            // WAL + FULL: a commit is on disk before it returns (the
                            // receipt depends on it); busy_timeout covers the reader
                            // pool meeting a checkpoint.
                            // temp_store: the sub-journal of each document's
                            // savepoint in a group commit is kept in memory instead
                            // of a temporary file (perf: a fifth of the writer's
                            // time was its pwrite calls). It holds page images only
                            // until the transaction ends; durability is the WAL's.
                            for pragma in [
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA synchronous = FULL",
                                "PRAGMA busy_timeout = 5000",
                                "PRAGMA foreign_keys = ON",
                                "PRAGMA temp_store = MEMORY",
                            ] {
                                conn.execute(pragma).await?;
                            }
                        }
                        Ok(())
                    })
                })
                // A connection whose transaction did not end is closed, never
                // reused. Seen on SQLite with a full disk: COMMIT fails and
                // SQLite rolls back by itself, so the ROLLBACK of the dropped
                // transaction fails too and sqlx 0.8 keeps counting the
                // connection as inside a transaction; its next BEGIN/COMMIT
                // became SAVEPOINT/RELEASE that never reached the disk while
                // the gateway issued receipts (tests/faults.rs).
                .after_release(|conn, _meta| {
                    Box::pin(async move {
                        if conn.is_in_transaction() {
                            // Let a rollback queued by a dropped transaction run.
                            let _ = conn.execute("SELECT 1").await;
                        }
                        Ok(!conn.is_in_transaction())
                    })
                })
        };
        let writers = if backend == Backend::Sqlite {
            1
        } else {
            max_connections.max(2)
        };
        let writer = pool(writers).connect_with(options.clone()).await?;
        // Group commits' own connections (group.rs); the one writer on SQLite.
        let committer = match backend {
            Backend::Sqlite => writer.clone(),
            Backend::Postgres => {
                pool(2).connect_lazy_with(AnyConnectOptions::from_str(&committer_url(url))?)
            }
        };
        let reader = pool(max_connections.max(1)).connect_with(options).await?;
        let dir = match backend {
            Backend::Sqlite => resources.join("migrations/sqlite"),
            Backend::Postgres => resources.join("migrations/postgres"),
        };
        let migrator = sqlx::migrate::Migrator::new(dir).await?;
        migrator.run(&writer).await?;
        if backend == Backend::Postgres {
            warn_unless_bytewise_collation(&reader).await?;
        }
        Ok(Store {
            backend,
            writer,
            reader,
            group: std::sync::Arc::new(group::Group::new(committer)),
            nodes: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether this signature was already used (a cheap early check; the
    /// unique key in [`Store::commit_document`] is what actually enforces it).
    pub async fn signature_seen(
        &self,
        keyid: &str,
        signature_sha256: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .prior_submission(keyid, signature_sha256, None)
            .await?
            .replayed)
    }

    /// What the store already knows of a submission, in one query (one
    /// round trip, one snapshot): whether its signature was used, and the
    /// receipt issued for the same bytes from the same sender (`body`:
    /// sender and body digest, when known). Early checks only: the group
    /// commit's unique keys are what enforce both.
    pub async fn prior_submission(
        &self,
        keyid: &str,
        signature_sha256: &str,
        body: Option<(&str, &str)>,
    ) -> Result<Prior, StoreError> {
        let (sender, body_sha256) = body.unwrap_or(("", ""));
        let row = sqlx::query(
            "SELECT CAST(CASE WHEN EXISTS (SELECT 1 FROM seen_signatures WHERE keyid = $1 AND signature_sha256 = $2) \
             THEN 1 ELSE 0 END AS BIGINT), \
             (SELECT r.body FROM receipts r JOIN documents d ON d.id = r.document_id \
              WHERE d.sender = $3 AND d.body_sha256 = $4)",
        )
        .bind(keyid)
        .bind(signature_sha256)
        .bind(sender)
        .bind(body_sha256)
        .fetch_one(&self.reader)
        .await?;
        Ok(Prior {
            replayed: row.try_get::<i64, _>(0)? != 0,
            receipt: row.try_get(1)?,
        })
    }

    /// Commits an accepted document and everything that goes with it
    /// atomically, appending `leaf` to the exchange log; `receipt` builds the
    /// receipt body from the log position and is stored with it. Documents
    /// committed at about the same time share one transaction (group commit,
    /// `group.rs`); the answer comes only after that transaction committed.
    pub async fn commit_document(
        &self,
        doc: NewDocument,
        leaf: PreparedLeaf,
        receipt: ReceiptFn,
    ) -> Result<Committed, StoreError> {
        group::commit(self, doc, leaf, receipt).await
    }

    /// Records an attachment upload, its replay record and (for a first
    /// upload) its exchange-log entry in one transaction.
    pub async fn record_upload(
        &self,
        upload: &Upload,
        leaf: &PreparedLeaf,
    ) -> Result<Uploaded, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let seen = sqlx::query(
            "INSERT INTO seen_signatures (keyid, signature_sha256, seen_at) VALUES ($1, $2, $3)",
        )
        .bind(&upload.keyid)
        .bind(&upload.signature_sha256)
        .bind(upload.uploaded_at_ms)
        .execute(&mut *tx)
        .await;
        if is_unique_violation(&seen) {
            tx.rollback().await?;
            return Ok(Uploaded::Replayed);
        }
        seen?;
        // Insert-or-keep in one statement: two uploads of the same bytes by the
        // same agency may run at once on PostgreSQL (several writers), and a
        // read-then-insert would let the second fail on the primary key. The
        // second waits for the first to commit, inserts nothing, then reads
        // the first one's row (READ COMMITTED: a new statement sees it).
        let inserted = sqlx::query(
            "INSERT INTO attachment_uploads (sha256, uploader, size, media_type, keyid, uploaded_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256, uploader) DO NOTHING",
        )
        .bind(&upload.sha256)
        .bind(&upload.uploader)
        .bind(upload.size as i64)
        .bind(&upload.media_type)
        .bind(&upload.keyid)
        .bind(upload.uploaded_at_ms)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            let earlier = sqlx::query(
                "SELECT media_type FROM attachment_uploads WHERE sha256 = $1 AND uploader = $2",
            )
            .bind(&upload.sha256)
            .bind(&upload.uploader)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Uploaded::Existing {
                media_type: earlier.get(0),
            });
        }
        let position = append_log(&mut tx, leaf).await?;
        tx.commit().await?;
        Ok(Uploaded::New { position })
    }

    /// The sizes of those of `sha256s` that `uploader` uploaded earlier.
    pub async fn uploads_by(
        &self,
        uploader: &str,
        sha256s: &[&str],
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut found = Vec::new();
        for sha in sha256s {
            let row = sqlx::query(
                "SELECT size FROM attachment_uploads WHERE sha256 = $1 AND uploader = $2",
            )
            .bind(*sha)
            .bind(uploader)
            .fetch_optional(&self.reader)
            .await?;
            if let Some(row) = row {
                found.push((sha.to_string(), row.get::<i64, _>(0).max(0) as u64));
            }
        }
        Ok(found)
    }

    /// Whether any row names this blob (an upload, a document's attachment or
    /// a multipart envelope); a blob nothing names is an orphan. Reads through
    /// the writer so it sees every committed transaction.
    pub async fn blob_referenced(&self, sha256: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM attachment_uploads WHERE sha256 = $1 \
             UNION ALL SELECT 1 FROM document_attachments WHERE sha256 = $1 \
             UNION ALL SELECT 1 FROM document_envelopes WHERE body_sha256 = $1 LIMIT 1",
        )
        .bind(sha256)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.is_some())
    }

    /// A document's attachment with this digest, if the document references it.
    pub async fn document_attachment(
        &self,
        document_id: &str,
        sha256: &str,
    ) -> Result<Option<StoredAttachment>, StoreError> {
        let row = sqlx::query(
            "SELECT sha256, media_type, size FROM document_attachments \
             WHERE document_id = $1 AND sha256 = $2 ORDER BY position LIMIT 1",
        )
        .bind(document_id)
        .bind(sha256)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| StoredAttachment {
            sha256: r.get(0),
            media_type: r.get(1),
            size: r.get::<Option<i64>, _>(2).map(|n| n.max(0) as u64),
        }))
    }

    /// A document's canonical form alone (what a push translates): one
    /// query, without the original bytes or the parties.
    pub async fn canonical_of(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT canonical FROM documents WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    pub async fn document(&self, id: &str) -> Result<Option<StoredDocument>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, sender, message_type, content_type, body_sha256, original, canonical, received_at, \
             purged_at FROM documents WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let parties = sqlx::query("SELECT agency_id, role FROM document_parties WHERE document_id = $1 ORDER BY role, agency_id")
            .bind(id)
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect();
        Ok(Some(StoredDocument {
            id: row.get(0),
            sender: row.get(1),
            message_type: row.get(2),
            content_type: row.get(3),
            body_sha256: row.get(4),
            original: row.get(5),
            canonical: row.get(6),
            received_at_ms: row.get(7),
            parties,
            purged_at_ms: row.get(8),
        }))
    }

    /// What proves a document was sent and received: the signature evidence
    /// kept at intake, the gateway's receipt body, and each recipient's signed
    /// receipt or ack (a case's evidence bundle, `xlog::evidence`).
    pub async fn document_evidence(
        &self,
        document_id: &str,
    ) -> Result<Option<DocumentEvidence>, StoreError> {
        let Some(sig) = sqlx::query(
            "SELECT keyid, alg, signature_input, signature, signature_base, \
             signer_agency, signer_certificate, verified_at FROM signatures WHERE document_id = $1",
        )
        .bind(document_id)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let receipt = sqlx::query("SELECT body FROM receipts WHERE document_id = $1")
            .bind(document_id)
            .fetch_optional(&self.reader)
            .await?
            .map(|r| r.get::<Vec<u8>, _>(0));
        let envelope = sqlx::query("SELECT 1 FROM document_envelopes WHERE document_id = $1")
            .bind(document_id)
            .fetch_optional(&self.reader)
            .await?
            .is_some();
        let deliveries = sqlx::query(
            "SELECT id, agency_id, evidence_keyid, evidence_signature_input, evidence_signature, \
             evidence_body, evidence_sha256 FROM deliveries \
             WHERE document_id = $1 AND evidence_body IS NOT NULL ORDER BY id",
        )
        .bind(document_id)
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(|r| {
            (
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                Evidence {
                    keyid: r.get(2),
                    signature_input: r.get(3),
                    signature: r.get(4),
                    body: r.get(5),
                    sha256: r.get(6),
                },
            )
        })
        .collect();
        Ok(Some(DocumentEvidence {
            signature: SignatureEvidence {
                keyid: sig.get(0),
                alg: sig.get(1),
                signature_input: sig.get(2),
                signature: sig.get(3),
                signature_base: sig.get(4),
                // Kept in the replay record, not with the evidence: it is
                // the SHA-256 of the signature value, recomputable from it.
                signature_sha256: String::new(),
                signer_agency: sig.get(5),
                signer_certificate: sig.get(6),
                verified_at_ms: sig.get(7),
            },
            receipt,
            multipart: envelope,
            deliveries,
        }))
    }

    pub async fn case(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        let Some(row) = sqlx::query(&format!(
            "SELECT c.id, c.flow, c.state, c.opened_by, c.corrections_agency, c.case_no, c.opened_at, \
             c.updated_at, {CASE_PARTIES} FROM cases c WHERE c.id = $1",
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let documents = sqlx::query("SELECT id, message_type, received_at FROM documents WHERE case_id = $1 ORDER BY received_at")
            .bind(id)
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1), r.get::<i64, _>(2)))
            .collect();
        Ok(Some(CaseRecord {
            id: row.get(0),
            flow: row.get(1),
            state: row.get(2),
            opened_by: row.get(3),
            corrections_agency: row.get(4),
            case_no: row.get(5),
            opened_at_ms: row.get(6),
            updated_at_ms: row.get(7),
            parties: parties_of(row.get(8)),
            deadlines: self.case_deadlines(id).await?,
            documents,
        }))
    }

    /// What an answer needs of the case of the document it answers, if that
    /// document belongs to one: the case row with its parties and its
    /// periods, in one query (one snapshot, one round trip): a row per
    /// period, the case's columns repeated, one row with NULL periods for a
    /// case that has none.
    pub async fn case_of_document(
        &self,
        document_id: &str,
    ) -> Result<Option<AnsweredCase>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT c.id, c.flow, c.state, c.corrections_agency, {CASE_PARTIES}, {DEADLINE_COLUMNS} \
             FROM documents d JOIN cases c ON c.id = d.case_id \
             LEFT JOIN deadlines dl ON dl.case_id = c.id WHERE d.id = $1 ORDER BY dl.seq",
        ))
        .bind(document_id)
        .fetch_all(&self.reader)
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let mut deadlines = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.try_get::<Option<String>, _>(5)?.is_some() {
                deadlines.push(deadline_at(r, 5));
            }
        }
        Ok(Some(AnsweredCase {
            parties: parties_of(row.get(4)),
            deadlines,
            id: row.get(0),
            flow: row.get(1),
            state: row.get(2),
            corrections_agency: row.get(3),
        }))
    }

    async fn case_deadlines(&self, case_id: &str) -> Result<Vec<NewDeadline>, StoreError> {
        Ok(sqlx::query(&format!(
            "SELECT {DEADLINE_COLUMNS} FROM deadlines dl WHERE dl.case_id = $1 ORDER BY dl.seq"
        ))
        .bind(case_id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| deadline_at(r, 0))
        .collect())
    }

    /// Number of rows in a table (tests and the benchmark use it to show that
    /// a rejection stored nothing).
    pub async fn count(&self, table: &str) -> Result<i64, StoreError> {
        const TABLES: [&str; 17] = [
            "documents",
            "document_parties",
            "signatures",
            "seen_signatures",
            "receipts",
            "cases",
            "case_parties",
            "deadlines",
            "exchange_log",
            "attachment_uploads",
            "document_attachments",
            "document_envelopes",
            "deliveries",
            "document_subjects",
            "checkpoints",
            "log_leaf_index",
            "blob_removals",
        ];
        let table = TABLES
            .iter()
            .find(|t| **t == table)
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
        let row = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.reader)
            .await?;
        Ok(row.get::<i64, _>(0))
    }

    pub async fn close(&self) {
        self.group.close().await;
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Stores receipts (receipt id, document id, body, issued at), many to a
/// statement.
pub(super) async fn insert_receipts(
    conn: &mut AnyConnection,
    receipts: &[(&str, &str, &[u8], i64)],
) -> Result<(), StoreError> {
    sql::insert_many(
        conn,
        "INSERT INTO receipts (id, document_id, body, issued_at) VALUES ",
        4,
        receipts,
        |q, (id, document_id, body, at)| q.bind(*id).bind(*document_id).bind(*body).bind(*at),
    )
    .await?;
    Ok(())
}

/// SQLite compares text byte by byte; a PostgreSQL database created with a
/// language locale (e.g. `en_US.UTF-8`) sorts agency ids and case ids in
/// another order (punctuation ignored at first), so listings would come out
/// differently from the same data. Correctness does not depend on it (keyset
/// cursors compare with the same collation they order by), hence a warning.
async fn warn_unless_bytewise_collation(reader: &AnyPool) -> Result<(), StoreError> {
    let row =
        sqlx::query("SELECT datcollate::text FROM pg_database WHERE datname = current_database()")
            .fetch_one(reader)
            .await?;
    let collate: String = row.get(0);
    if !matches!(collate.as_str(), "C" | "POSIX" | "C.UTF-8" | "C.utf8") {
        tracing::warn!(
            collate = %collate,
            "the PostgreSQL database does not sort text byte-wise (LC_COLLATE C) as SQLite does; \
             listings may be ordered differently (see docs/configuration.md)"
        );
    }
    Ok(())
}

pub(super) fn is_unique_violation<T>(result: &Result<T, sqlx::Error>) -> bool {
    matches!(result, Err(sqlx::Error::Database(e)) if e.is_unique_violation())
}

/// The file of a `sqlite://` URL (`None`: another backend, or in memory).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::committer_url;

    #[test]
    fn the_committer_caches_more_statements_unless_the_url_says_otherwise() {
        assert_eq!(
            committer_url("postgres://gw@db/gateway?sslmode=require"),
            "postgres://gw@db/gateway?sslmode=require&statement-cache-capacity=1024"
        );
        assert_eq!(
            committer_url("postgres://gw@db/gateway"),
            "postgres://gw@db/gateway?statement-cache-capacity=1024"
        );
        let set = "postgres://gw@db/gateway?statement-cache-capacity=50";
        assert_eq!(committer_url(set), set);
    }
}
