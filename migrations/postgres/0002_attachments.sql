-- Attachments (附件): scanned judgments and the like, referenced from a
-- document by SHA-256. The bytes live outside the database in the
-- content-addressed blob store DIR/blobs/<aa>/<bb>/<sha256>; these tables say
-- who brought which blob and which documents reference it. A blob that no row
-- below names is an orphan and may be removed.

-- An attachment uploaded on its own (PUT /api/v1/attachments/{sha256}). Only
-- the uploading agency may reference it from a document.
CREATE TABLE attachment_uploads (
    sha256      TEXT NOT NULL,               -- lowercase hex, the blob's name
    uploader    TEXT NOT NULL,               -- agency id of the verified signer
    size        BIGINT NOT NULL,
    media_type  TEXT NOT NULL,               -- Content-Type of the upload (essence)
    keyid       TEXT NOT NULL,               -- certificate fingerprint that signed the upload
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (sha256, uploader)
);

-- The attachments a document references, in document order, written in the
-- same transaction as the document. `size` is the stored blob's size; NULL only
-- when require_attachments = false let a reference without bytes through.
CREATE TABLE document_attachments (
    document_id TEXT NOT NULL REFERENCES documents(id),
    position    BIGINT NOT NULL,             -- index in the canonical `attachments` list
    sha256      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    file_name   TEXT NOT NULL,               -- may be personal data: never logged
    media_type  TEXT NOT NULL,
    size        BIGINT,
    PRIMARY KEY (document_id, position)
);
CREATE INDEX document_attachments_sha256 ON document_attachments (sha256);

-- A document submitted as multipart/related: the signed request body (the
-- evidence the signature's Content-Digest covers) is kept whole as the blob
-- body_sha256; documents.original holds the document part alone.
CREATE TABLE document_envelopes (
    document_id  TEXT PRIMARY KEY REFERENCES documents(id),
    content_type TEXT NOT NULL,              -- the multipart/related Content-Type as signed
    body_sha256  TEXT NOT NULL,
    size         BIGINT NOT NULL
);
CREATE INDEX document_envelopes_body ON document_envelopes (body_sha256);
