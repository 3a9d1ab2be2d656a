-- Retention (src/retention.rs, docs/operations.md "Retention"): after its
-- period a document's body and personal data are purged (archived first in
-- archive mode) while everything the exchange log and the receipts rest on
-- stays: the row, its digests, parties, signature evidence, receipt and
-- deliveries. The purged body columns are emptied in place (`original` = no
-- bytes, `canonical` = ''), `purged_at` says when, and readers answer 410.
ALTER TABLE documents ADD COLUMN purged_at BIGINT;
CREATE INDEX documents_unpurged ON documents (received_at) WHERE purged_at IS NULL;

-- Blobs (attachments, multipart envelopes) of purged documents, queued in the
-- purge's transaction and removed from DIR/blobs afterwards once no document
-- still holding its body names them; a crash in between leaves the row for
-- the next run, so no blob is forgotten.
CREATE TABLE blob_removals (
    sha256    TEXT PRIMARY KEY,
    queued_at BIGINT NOT NULL
);
