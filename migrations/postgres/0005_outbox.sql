-- Outbound delivery (src/delivery, SQL in src/store/outbox.rs): the port of
-- migrations/sqlite/0005_outbox.sql. Where SQLite rebuilds `deadlines` to
-- change a CHECK, PostgreSQL adds the column and replaces the constraint.

-- One delivery per (document, agency), inserted in the document's commit
-- transaction: the outbox. `push` rows are worked off by the outbox worker,
-- `pull` rows wait in the agency's mailbox until it acknowledges them.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,            -- delivery id (UUIDv7: creation order)
    document_id     TEXT NOT NULL REFERENCES documents(id),
    agency_id       TEXT NOT NULL,               -- the recipient or copied agency
    role            TEXT NOT NULL CHECK (role IN ('recipient', 'copy')),
    -- 1 for the primary recipient: its receipt/ack starts the deadline clock
    starts_clock    BIGINT NOT NULL DEFAULT 0,
    mode            TEXT NOT NULL CHECK (mode IN ('push', 'pull')),
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'acked', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,             -- push: when the worker may try next
    lease           TEXT,                        -- push: token of the attempt in flight
    leased_until    BIGINT,                      -- push: the attempt's lease ends (crash → retried after)
    last_error      TEXT,                        -- outcome code of the last failed attempt
    last_status     BIGINT,                      -- HTTP status of the last attempt, if any
    payload_sha256  TEXT,                        -- hex SHA-256 of the translated bytes last sent/handed out
    -- the recipient's evidence: its signed receipt (push) or signed ack (pull)
    evidence_keyid           TEXT,
    evidence_signature_input TEXT,
    evidence_signature       TEXT,
    evidence_body            BYTEA,
    evidence_sha256          TEXT,
    answer          BYTEA,                       -- pull: the gateway's answer to the ack, replayed on re-ack
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    completed_at    BIGINT,                      -- receipt verified / ack recorded
    dead_at         BIGINT,
    UNIQUE (document_id, agency_id)
);
CREATE INDEX deliveries_due ON deliveries (state, mode, next_attempt_at);
CREATE INDEX deliveries_mailbox ON deliveries (agency_id, mode, state, id);

-- Deadlines a document starts "from receipt" wait for its primary
-- recipient's signed receipt/ack (protocol.md): status 'awaiting_delivery',
-- due_at NULL and `awaiting_document` naming the document until then.
ALTER TABLE deadlines
    ADD COLUMN awaiting_document TEXT,              -- gateway document id whose delivery starts the clock
    DROP CONSTRAINT deadlines_status_check,
    ADD CONSTRAINT deadlines_status_check
        CHECK (status IN ('due', 'met', 'overdue', 'closed', 'uncomputable', 'awaiting_delivery'));
CREATE INDEX deadlines_awaiting ON deadlines (awaiting_document) WHERE awaiting_document IS NOT NULL;
