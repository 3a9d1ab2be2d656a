-- Core tables of the exchange gateway (PostgreSQL; mirrors migrations/sqlite).
-- Instants are BIGINT milliseconds since the Unix epoch, UTC.

-- A document the gateway accepted: the original bytes are the signed evidence
-- and are never modified; `canonical` is the validated canonical JSON.
CREATE TABLE documents (
    id            TEXT PRIMARY KEY,          -- gateway document id (UUIDv7)
    sender        TEXT NOT NULL,             -- agency id, equal to the signer's agency
    message_type  TEXT NOT NULL,
    dialect       TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    body_sha256   TEXT NOT NULL,             -- lowercase hex of the original bytes
    original      BYTEA NOT NULL,
    canonical     TEXT NOT NULL,
    document_no   TEXT NOT NULL,
    case_id       TEXT,
    received_at   BIGINT NOT NULL,
    UNIQUE (sender, body_sha256)             -- idempotent resubmission
);

-- Who a document goes to: primary recipients and the copies the law requires.
CREATE TABLE document_parties (
    document_id TEXT NOT NULL REFERENCES documents(id),
    agency_id   TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('recipient', 'copy')),
    PRIMARY KEY (document_id, agency_id)
);
CREATE INDEX document_parties_agency ON document_parties (agency_id);

-- The signature evidence, enough for anyone to re-verify the request later.
CREATE TABLE signatures (
    document_id       TEXT PRIMARY KEY REFERENCES documents(id),
    keyid             TEXT NOT NULL,
    alg               TEXT NOT NULL,
    signature_input   TEXT NOT NULL,         -- the Signature-Input header as received
    signature         TEXT NOT NULL,         -- the Signature header as received
    signature_base    TEXT NOT NULL,         -- the RFC 9421 signature base that was verified
    signer_agency     TEXT NOT NULL,
    signer_certificate TEXT NOT NULL,        -- PEM
    verified_at       BIGINT NOT NULL
);

-- Replay protection: each (keyid, signature) is accepted once. Rows older than
-- the `created` window are useless (such requests fail the window check) and may be pruned.
CREATE TABLE seen_signatures (
    keyid            TEXT NOT NULL,
    signature_sha256 TEXT NOT NULL,
    seen_at          BIGINT NOT NULL,
    PRIMARY KEY (keyid, signature_sha256)
);

-- The receipt body as first issued; resubmissions get these exact bytes back.
CREATE TABLE receipts (
    id          TEXT PRIMARY KEY,
    document_id TEXT NOT NULL UNIQUE REFERENCES documents(id),
    body        BYTEA NOT NULL,
    issued_at   BIGINT NOT NULL
);

-- A case: one person's matter in one flow (handover, assessment, revocation).
CREATE TABLE cases (
    id                 TEXT PRIMARY KEY,
    flow               TEXT NOT NULL,
    state              TEXT NOT NULL,
    opened_by          TEXT NOT NULL,        -- agency id of the opening document's sender
    corrections_agency TEXT NOT NULL,        -- the corrections agency handling it
    case_no            TEXT,
    opened_at          BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

CREATE TABLE case_parties (
    case_id   TEXT NOT NULL REFERENCES cases(id),
    agency_id TEXT NOT NULL,
    PRIMARY KEY (case_id, agency_id)
);

-- One legal period of a case and where it stands.
CREATE TABLE deadlines (
    case_id   TEXT NOT NULL REFERENCES cases(id),
    step      TEXT NOT NULL,                 -- period name in rules/periods.toml
    period    TEXT NOT NULL,                 -- e.g. 5d, 10wd, 48h
    starts_at BIGINT NOT NULL,
    due_at    BIGINT,                        -- NULL when the calendar cannot compute it
    status    TEXT NOT NULL CHECK (status IN ('due', 'met', 'overdue', 'uncomputable')),
    note      TEXT,
    PRIMARY KEY (case_id, step)
);

-- The exchange log. Each leaf is the RFC 8785 canonical JSON of one event and
-- holds no personal data; leaf_hash = SHA-256(0x00 || leaf) (RFC 9162 §2.1.1).
-- chain_hash = SHA-256(previous chain_hash || leaf_hash) links the entries
-- until the Merkle tree replaces it.
CREATE TABLE exchange_log (
    idx        BIGINT PRIMARY KEY,
    leaf       BYTEA NOT NULL,
    leaf_hash  BYTEA NOT NULL,
    chain_hash BYTEA NOT NULL,
    logged_at  BIGINT NOT NULL
);
CREATE INDEX exchange_log_leaf_hash ON exchange_log (leaf_hash);
