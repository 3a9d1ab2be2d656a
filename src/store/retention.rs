//! The SQL of retention (src/retention.rs): which documents have outlived
//! their period, what an archive needs of them, and the purge itself.
//!
//! A purge empties a document's body columns in place and removes the
//! personal data copied from it; it never deletes a row the exchange log,
//! a receipt or an inclusion proof rests on (documents, parties, signatures,
//! receipts, deliveries, cases, deadlines, the log itself). Each document is
//! purged by a statement guarded by `purged_at IS NULL`, so two runs (or two
//! gateway instances on one PostgreSQL) purge and log it once.

use sqlx::{Connection, Row};

use super::{log::append_log, Store, StoreError};
use crate::xlog::PreparedLeaf;

/// The instants before which a period has run out (Unix ms).
#[derive(Debug, Clone)]
pub struct RetentionCutoffs {
    /// A case in a final state last written to before this has expired.
    pub closed_before_ms: i64,
    /// Any case last written to before this has expired.
    pub inactive_before_ms: i64,
    /// A document of no case committed before this has expired.
    pub document_before_ms: i64,
    /// The final states, as (flow, state) codes.
    pub final_states: Vec<(&'static str, &'static str)>,
}

/// One document's purgeable material, for an archive.
#[derive(Debug, Clone)]
pub struct PurgeableDocument {
    pub id: String,
    pub sender: String,
    pub message_type: String,
    pub content_type: String,
    pub body_sha256: String,
    pub received_at_ms: i64,
    pub original: Vec<u8>,
    pub canonical: String,
    /// (name, ID number) of the clerks' search index.
    pub subject: Option<(String, String)>,
    /// (position, sha256, kind, file name, media type, size).
    pub attachments: Vec<(i64, String, String, String, String, Option<i64>)>,
    /// The multipart envelope blob: (content type, sha256, size).
    pub envelope: Option<(String, String, i64)>,
}

/// What one purge transaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    /// The documents this transaction purged (others had been purged already).
    pub documents: Vec<String>,
    pub subjects: u64,
    pub attachments: u64,
    /// Distinct blobs queued for removal.
    pub blobs_queued: u64,
}

impl Store {
    /// Up to `limit` unpurged documents whose period has run out, in id
    /// order after `after`. A document some recipient has not confirmed
    /// (a pending or dead-lettered delivery) is never expired: it is still
    /// owed, and a receipt issued for it must stay redeemable.
    pub async fn expired_documents(
        &self,
        cut: &RetentionCutoffs,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut finals = Vec::new();
        for i in 0..cut.final_states.len() {
            finals.push(format!(
                "(c.flow = ${} AND c.state = ${})",
                6 + 2 * i,
                7 + 2 * i
            ));
        }
        let finals = if finals.is_empty() {
            "FALSE".to_string()
        } else {
            finals.join(" OR ")
        };
        let sql = format!(
            "SELECT d.id FROM documents d LEFT JOIN cases c ON c.id = d.case_id \
             WHERE d.purged_at IS NULL AND d.id > $1 \
             AND ((d.case_id IS NULL AND d.received_at < $2) \
               OR (c.id IS NOT NULL AND (c.updated_at < $3 OR (c.updated_at < $4 AND ({finals}))))) \
             AND NOT EXISTS (SELECT 1 FROM deliveries v WHERE v.document_id = d.id \
                             AND v.state IN ('pending', 'dead')) \
             ORDER BY d.id LIMIT $5"
        );
        let mut query = sqlx::query(&sql)
            .bind(after)
            .bind(cut.document_before_ms)
            .bind(cut.inactive_before_ms)
            .bind(cut.closed_before_ms)
            .bind(limit);
        for (flow, state) in &cut.final_states {
            query = query.bind(*flow).bind(*state);
        }
        Ok(query
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|r| r.get::<String, _>(0))
            .collect())
    }

    /// Everything of a document a purge removes, while it is still there
    /// (`None`: unknown or already purged).
    pub async fn purgeable_document(
        &self,
        id: &str,
    ) -> Result<Option<PurgeableDocument>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, sender, message_type, content_type, body_sha256, received_at, original, canonical \
             FROM documents WHERE id = $1 AND purged_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let subject =
            sqlx::query("SELECT name, id_number FROM document_subjects WHERE document_id = $1")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)));
        let attachments = sqlx::query(
            "SELECT position, sha256, kind, file_name, media_type, size FROM document_attachments \
             WHERE document_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
        let envelope = sqlx::query(
            "SELECT content_type, body_sha256, size FROM document_envelopes WHERE document_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .map(|r| (r.get(0), r.get(1), r.get(2)));
        Ok(Some(PurgeableDocument {
            id: row.get(0),
            sender: row.get(1),
            message_type: row.get(2),
            content_type: row.get(3),
            body_sha256: row.get(4),
            received_at_ms: row.get(5),
            original: row.get(6),
            canonical: row.get(7),
            subject,
            attachments,
            envelope,
        }))
    }

    /// Purges `ids` in one transaction: empties each body, deletes its
    /// search-index row, blanks its attachments' file names, queues its blobs
    /// for removal and appends the leaf `leaf` builds from what was actually
    /// purged. A document purged already (another run, another instance) is
    /// skipped; when nothing is left to purge nothing is written or logged.
    pub async fn purge_documents(
        &self,
        ids: &[String],
        now_ms: i64,
        leaf: impl FnOnce(&PurgeCounts) -> PreparedLeaf,
    ) -> Result<PurgeCounts, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut counts = PurgeCounts::default();
        for id in ids {
            let purged = sqlx::query(
                "UPDATE documents SET original = $1, canonical = '', purged_at = $2 \
                 WHERE id = $3 AND purged_at IS NULL",
            )
            .bind(Vec::<u8>::new())
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if purged.rows_affected() == 0 {
                continue;
            }
            counts.documents.push(id.clone());
            counts.subjects += sqlx::query("DELETE FROM document_subjects WHERE document_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let mut blobs: Vec<String> =
                sqlx::query("SELECT sha256 FROM document_attachments WHERE document_id = $1")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|r| r.get(0))
                    .collect();
            counts.attachments += blobs.len() as u64;
            sqlx::query("UPDATE document_attachments SET file_name = '' WHERE document_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            blobs.extend(
                sqlx::query("SELECT body_sha256 FROM document_envelopes WHERE document_id = $1")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|r| r.get::<String, _>(0)),
            );
            for sha in blobs {
                counts.blobs_queued += sqlx::query(
                    "INSERT INTO blob_removals (sha256, queued_at) VALUES ($1, $2) \
                     ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(&sha)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
        }
        if counts.documents.is_empty() {
            tx.rollback().await?;
            return Ok(counts);
        }
        append_log(&mut tx, &leaf(&counts)).await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// Up to `limit` blobs queued for removal.
    pub async fn queued_blob_removals(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query("SELECT sha256 FROM blob_removals ORDER BY sha256 LIMIT $1")
                .bind(limit)
                .fetch_all(&self.writer)
                .await?
                .into_iter()
                .map(|r| r.get(0))
                .collect(),
        )
    }

    /// Whether a blob must stay although a purged document named it: a
    /// document that still holds its body names it, or an agency uploaded
    /// it at or after `uploaded_since_ms` (a document may be about to
    /// reference it). Reads through the writer so it sees every commit.
    pub async fn blob_still_needed(
        &self,
        sha256: &str,
        uploaded_since_ms: i64,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM document_attachments a JOIN documents d ON d.id = a.document_id \
             WHERE a.sha256 = $1 AND d.purged_at IS NULL \
             UNION ALL SELECT 1 FROM document_envelopes e JOIN documents d ON d.id = e.document_id \
             WHERE e.body_sha256 = $1 AND d.purged_at IS NULL \
             UNION ALL SELECT 1 FROM attachment_uploads WHERE sha256 = $1 AND uploaded_at >= $2 \
             LIMIT 1",
        )
        .bind(sha256)
        .bind(uploaded_since_ms)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.is_some())
    }

    /// Takes a blob off the removal queue (it was removed, or is still needed).
    pub async fn dequeue_blob_removal(&self, sha256: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM blob_removals WHERE sha256 = $1")
            .bind(sha256)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Bytes of document bodies held in the database (native bytes plus
    /// canonical JSON): what retention bounds.
    pub async fn body_bytes(&self) -> Result<i64, StoreError> {
        // LENGTH counts characters of text: count the bytes of the UTF-8.
        let sql = match self.backend {
            super::Backend::Sqlite => {
                "SELECT CAST(COALESCE(SUM(LENGTH(original) + LENGTH(CAST(canonical AS BLOB))), 0) AS BIGINT) FROM documents"
            }
            super::Backend::Postgres => {
                "SELECT CAST(COALESCE(SUM(OCTET_LENGTH(original) + OCTET_LENGTH(canonical)), 0) AS BIGINT) FROM documents"
            }
        };
        let row = sqlx::query(sql).fetch_one(&self.reader).await?;
        Ok(row.get::<i64, _>(0))
    }

    /// Whether a document's body was purged (`None`: no such document).
    pub async fn purged_at(&self, id: &str) -> Result<Option<Option<i64>>, StoreError> {
        Ok(sqlx::query("SELECT purged_at FROM documents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .map(|r| r.get::<Option<i64>, _>(0)))
    }
}
