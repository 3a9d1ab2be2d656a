//! Retention (保存期限): after its period a document's body (native bytes and
//! canonical JSON), its attachments' bytes and the personal data copied from
//! it (the clerks' search index, attachment file names) are purged — in
//! `archive` mode written to a verifiable archive first — while everything
//! that proves the exchange stays: the document row with its digests, the
//! parties, the signature evidence, the receipt, the deliveries with the
//! recipients' signed receipts, the case and its deadlines, and the exchange
//! log, which therefore still verifies, and whose inclusion proofs still work.
//!
//! Periods (`[retention]`, docs/operations.md; the choice is argued in
//! docs/decisions.md): a case's documents expire `closed_case_days` after the
//! case reached its final state, or `inactive_case_days` after anyone last
//! wrote to it; a document of no case `document_days` after its commit. A
//! document still owed to a recipient (pending or dead-lettered delivery)
//! never expires.
//!
//! Each batch is purged in one transaction that also appends a
//! `retention.purged` log entry (ids and counts, no personal data); blobs are
//! queued in that transaction and removed after it, under the blob store's
//! removal lock. Every step is guarded, so a second run, or another instance
//! on the same PostgreSQL, purges and logs nothing twice. This module must
//! never delete a row the log, a receipt or a proof rests on.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Serialize;
use time::OffsetDateTime;

use crate::app::Gateway;
use crate::attachments::BlobStore;
use crate::config::{RetentionMode, RetentionSettings};
use crate::security::digest::sha256_hex;
use crate::store::{PurgeableDocument, RetentionCutoffs, Store, StoreError};
use crate::timefmt::{self, unix_ms};
use crate::workflow::flows::CaseState;
use crate::xlog::{self, LogEvent};

const MS_PER_DAY: i64 = 86_400_000;

/// Blobs taken off the removal queue per round.
const BLOB_ROUND: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the retention archive failed: {0}")]
    Archive(std::io::Error),
    #[error("removing a purged blob failed: {0}")]
    Blobs(std::io::Error),
}

/// What one run did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub dry_run: bool,
    /// Documents whose body was purged (dry run: has run out).
    pub documents: u64,
    /// Search-index rows of personal data removed.
    pub subjects: u64,
    /// Attachment references released.
    pub attachments: u64,
    /// Dry run only: bytes of bodies that would be freed in the database.
    pub body_bytes: u64,
    /// Blob files removed from `DIR/blobs`.
    pub blobs_removed: u64,
    /// `retention.purged` log entries written.
    pub log_entries: u64,
    /// Archive files written (archive mode).
    pub archives: Vec<PathBuf>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.dry_run {
            write!(
                f,
                "dry run / 试运行: {} documents have run out ({} bytes of bodies, {} personal-data rows, {} attachment references); nothing was changed",
                self.documents, self.body_bytes, self.subjects, self.attachments
            )
        } else {
            write!(
                f,
                "purged / 已清除: {} documents, {} personal-data rows, {} attachment references, {} blob files; {} retention.purged log entries",
                self.documents, self.subjects, self.attachments, self.blobs_removed, self.log_entries
            )?;
            for archive in &self.archives {
                write!(f, "\narchive / 归档: {}", archive.display())?;
            }
            Ok(())
        }
    }
}

/// The instants before which each period has run out at `now`.
pub fn cutoffs(settings: &RetentionSettings, now: OffsetDateTime) -> RetentionCutoffs {
    let now_ms = unix_ms(now);
    let before = |days: u32| now_ms - i64::from(days) * MS_PER_DAY;
    RetentionCutoffs {
        closed_before_ms: before(settings.closed_case_days),
        inactive_before_ms: before(settings.inactive_case_days),
        document_before_ms: before(settings.document_days),
        final_states: CaseState::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| (s.flow().as_str(), s.as_str()))
            .collect(),
    }
}

/// One run at the gateway's clock (the periodic job).
pub async fn run_gateway(gw: &Gateway, dry_run: bool) -> Result<Report, RetentionError> {
    run(
        &gw.store,
        &gw.blobs,
        &gw.settings.retention,
        gw.clock.now(),
        dry_run,
    )
    .await
}

/// One retention run at `now`. With `dry_run` nothing is written: the
/// report says what has run out. With mode `off` only a dry run makes sense
/// (the caller refuses a real one).
pub async fn run(
    store: &Store,
    blobs: &BlobStore,
    settings: &RetentionSettings,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<Report, RetentionError> {
    let cut = cutoffs(settings, now);
    let mut report = Report {
        dry_run,
        ..Report::default()
    };
    let mut archive: Option<Archive> = None;
    let mut after = String::new();
    loop {
        let ids = store
            .expired_documents(&cut, &after, i64::from(settings.batch))
            .await?;
        let Some(last) = ids.last() else { break };
        after = last.clone();
        if dry_run {
            for id in &ids {
                if let Some(doc) = store.purgeable_document(id).await? {
                    report.documents += 1;
                    report.body_bytes += (doc.original.len() + doc.canonical.len()) as u64;
                    report.subjects += u64::from(doc.subject.is_some());
                    report.attachments += doc.attachments.len() as u64;
                }
            }
            continue;
        }
        let archive_sha256 = if settings.mode == RetentionMode::Archive {
            let current = match archive.take() {
                Some(a) => a,
                None => {
                    Archive::create(&settings.archive_dir, now).map_err(RetentionError::Archive)?
                }
            };
            let (path, sha) = archive
                .insert(current)
                .write_batch(store, blobs, &ids)
                .await?;
            report.archives.push(path);
            Some(sha)
        } else {
            None
        };
        let mode = match settings.mode {
            RetentionMode::Archive => "archive",
            _ => "purge",
        };
        let counts = store
            .purge_documents(&ids, unix_ms(now), |c| {
                xlog::prepare(
                    &LogEvent::RetentionPurged {
                        mode: mode.into(),
                        documents: c.documents.clone(),
                        subjects: c.subjects,
                        attachments: c.attachments,
                        archive_sha256: archive_sha256.clone(),
                    },
                    now,
                )
            })
            .await?;
        if !counts.documents.is_empty() {
            report.log_entries += 1;
        }
        report.documents += counts.documents.len() as u64;
        report.subjects += counts.subjects;
        report.attachments += counts.attachments;
    }
    if !dry_run {
        let uploaded_since = unix_ms(now) - i64::from(settings.document_days) * MS_PER_DAY;
        report.blobs_removed = remove_queued_blobs(store, blobs, uploaded_since).await?;
        if report.documents > 0 || report.blobs_removed > 0 {
            tracing::info!(
                documents = report.documents,
                subjects = report.subjects,
                attachments = report.attachments,
                blobs_removed = report.blobs_removed,
                "retention: purged documents past their period"
            );
        }
    }
    Ok(report)
}

/// Removes the queued blobs no live document or recent upload needs. Holds
/// the blob store's removal lock, so no submission can promote-then-commit a
/// reference to a blob in between the check and the removal.
async fn remove_queued_blobs(
    store: &Store,
    blobs: &BlobStore,
    uploaded_since_ms: i64,
) -> Result<u64, RetentionError> {
    let _exclusive = blobs.gc.write().await;
    let mut removed = 0;
    loop {
        let queued = store.queued_blob_removals(BLOB_ROUND).await?;
        for sha in &queued {
            if !store.blob_still_needed(sha, uploaded_since_ms).await? {
                if blobs.exists(sha) {
                    removed += 1;
                }
                blobs.remove(sha).map_err(RetentionError::Blobs)?;
            }
            store.dequeue_blob_removal(sha).await?;
        }
        if (queued.len() as i64) < BLOB_ROUND {
            return Ok(removed);
        }
    }
}

/// Runs [`run_gateway`] every `retention.run_secs` until `stop` says so
/// (nothing when the mode is `off`).
pub fn spawn_job(
    gw: std::sync::Arc<Gateway>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if gw.settings.retention.mode == RetentionMode::Off {
        return None;
    }
    let interval = std::time::Duration::from_secs(gw.settings.retention.run_secs);
    Some(crate::jobs::spawn_every(interval, stop, move || {
        let gw = gw.clone();
        async move {
            if let Err(e) = run_gateway(&gw, false).await {
                tracing::warn!(error = %e, "retention run failed; will try again");
            }
        }
    }))
}

/// An archive of one run: `ARCHIVE_DIR/retention-<UTC time>-<id>/` with one
/// `batch-NNNN.jsonl` per purge transaction (one JSON object per document:
/// ids, digests, the native bytes in base64, the canonical JSON, the person's
/// name and ID number, the attachments' metadata) and `blobs/<sha256>`, a
/// copy of every attachment and multipart envelope. Each batch file's
/// SHA-256 is in the `retention.purged` entry of its purge, so the signed
/// exchange log vouches for the archive, and each body and blob can be
/// checked against the digests of its `document.accepted` entry.
struct Archive {
    dir: PathBuf,
    batches: u32,
}

#[derive(Serialize)]
struct ArchivedDocument<'a> {
    document_id: &'a str,
    sender: &'a str,
    message_type: &'a str,
    content_type: &'a str,
    body_sha256: &'a str,
    received_at: String,
    original_base64: String,
    canonical: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<ArchivedSubject<'a>>,
    attachments: Vec<ArchivedAttachment<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    envelope: Option<ArchivedEnvelope<'a>>,
}

#[derive(Serialize)]
struct ArchivedSubject<'a> {
    name: &'a str,
    id_number: &'a str,
}

#[derive(Serialize)]
struct ArchivedAttachment<'a> {
    position: i64,
    sha256: &'a str,
    kind: &'a str,
    file_name: &'a str,
    media_type: &'a str,
    size: Option<i64>,
    /// Whether the bytes are in the archive's `blobs/` (absent only for a
    /// reference accepted without bytes).
    archived: bool,
}

#[derive(Serialize)]
struct ArchivedEnvelope<'a> {
    content_type: &'a str,
    sha256: &'a str,
    size: i64,
    archived: bool,
}

impl Archive {
    fn create(root: &Path, now: OffsetDateTime) -> std::io::Result<Archive> {
        let stamp = timefmt::utc_ms(unix_ms(now))
            .replace([':', '-'], "")
            .replace('.', "");
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let dir = root.join(format!("retention-{stamp}-{id}"));
        std::fs::create_dir_all(dir.join("blobs"))?;
        Ok(Archive { dir, batches: 0 })
    }

    /// Writes the material of `ids` (those not purged yet) and makes it
    /// durable; returns the batch file and its SHA-256.
    async fn write_batch(
        &mut self,
        store: &Store,
        blobs: &BlobStore,
        ids: &[String],
    ) -> Result<(PathBuf, String), RetentionError> {
        let mut docs: Vec<PurgeableDocument> = Vec::new();
        for id in ids {
            docs.extend(store.purgeable_document(id).await?);
        }
        self.batches += 1;
        let path = self.dir.join(format!("batch-{:04}.jsonl", self.batches));
        let blob_dir = self.dir.join("blobs");
        let mut lines = Vec::new();
        let mut copies = Vec::new();
        for d in &docs {
            let mut attachments = Vec::new();
            for (position, sha, kind, file_name, media_type, size) in &d.attachments {
                let archived = blobs.exists(sha);
                if archived {
                    copies.push((blobs.path(sha), blob_dir.join(sha)));
                }
                attachments.push(ArchivedAttachment {
                    position: *position,
                    sha256: sha,
                    kind,
                    file_name,
                    media_type,
                    size: *size,
                    archived,
                });
            }
            let envelope = d.envelope.as_ref().map(|(content_type, sha, size)| {
                let archived = blobs.exists(sha);
                if archived {
                    copies.push((blobs.path(sha), blob_dir.join(sha)));
                }
                ArchivedEnvelope {
                    content_type,
                    sha256: sha,
                    size: *size,
                    archived,
                }
            });
            let line = ArchivedDocument {
                document_id: &d.id,
                sender: &d.sender,
                message_type: &d.message_type,
                content_type: &d.content_type,
                body_sha256: &d.body_sha256,
                received_at: timefmt::utc_ms(d.received_at_ms),
                original_base64: base64::engine::general_purpose::STANDARD.encode(&d.original),
                canonical: &d.canonical,
                subject: d
                    .subject
                    .as_ref()
                    .map(|(name, id_number)| ArchivedSubject { name, id_number }),
                attachments,
                envelope,
            };
            // A struct of strings and numbers always serialises.
            lines.extend(serde_json::to_vec(&line).unwrap_or_default());
            lines.push(b'\n');
        }
        let sha = sha256_hex(&lines);
        let target = path.clone();
        tokio::task::spawn_blocking(move || write_durably(&target, &lines, &copies))
            .await
            .map_err(|e| RetentionError::Archive(std::io::Error::other(e)))?
            .map_err(RetentionError::Archive)?;
        Ok((path, sha))
    }
}

/// Copies the blobs, writes the batch file, and fsyncs all of it and the
/// directories before the purge that depends on it commits.
fn write_durably(path: &Path, lines: &[u8], copies: &[(PathBuf, PathBuf)]) -> std::io::Result<()> {
    for (from, to) in copies {
        if !to.exists() {
            let partial = to.with_extension("part");
            std::fs::copy(from, &partial)?;
            std::fs::File::open(&partial)?.sync_all()?;
            std::fs::rename(&partial, to)?;
        }
    }
    let partial = path.with_extension("part");
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(lines)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir.join("blobs"))?.sync_all()?;
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
