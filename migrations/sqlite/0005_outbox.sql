-- Outbound delivery (src/delivery, SQL in src/store/outbox.rs). Written so
-- that PostgreSQL accepts it too where it can (the rebuild of `deadlines`
-- below is SQLite's way of changing a CHECK; PostgreSQL drops and re-adds the
-- constraint instead).

-- One delivery per (document, agency), inserted in the document's commit
-- transaction: the outbox. `push` rows are worked off by the outbox worker,
-- `pull` rows wait in the agency's mailbox until it acknowledges them.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,            -- delivery id (UUIDv7: creation order)
    document_id     TEXT NOT NULL REFERENCES documents(id),
    agency_id       TEXT NOT NULL,               -- the recipient or copied agency
    role            TEXT NOT NULL CHECK (role IN ('recipient', 'copy')),
    -- 1 for the primary recipient: its receipt/ack starts the deadline clock
    starts_clock    INTEGER NOT NULL DEFAULT 0,
    mode            TEXT NOT NULL CHECK (mode IN ('push', 'pull')),
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'acked', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,            -- push: when the worker may try next
    lease           TEXT,                        -- push: token of the attempt in flight
    leased_until    INTEGER,                     -- push: the attempt's lease ends (crash → retried after)
    last_error      TEXT,                        -- outcome code of the last failed attempt
    last_status     INTEGER,                     -- HTTP status of the last attempt, if any
    payload_sha256  TEXT,                        -- hex SHA-256 of the translated bytes last sent/handed out
    -- the recipient's evidence: its signed receipt (push) or signed ack (pull)
    evidence_keyid           TEXT,
    evidence_signature_input TEXT,
    evidence_signature       TEXT,
    evidence_body            BLOB,
    evidence_sha256          TEXT,
    answer          BLOB,                        -- pull: the gateway's answer to the ack, replayed on re-ack
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    completed_at    INTEGER,                     -- receipt verified / ack recorded
    dead_at         INTEGER,
    UNIQUE (document_id, agency_id)
);
CREATE INDEX deliveries_due ON deliveries (state, mode, next_attempt_at);
CREATE INDEX deliveries_mailbox ON deliveries (agency_id, mode, state, id);

-- Deadlines a document starts "from receipt" wait for its primary
-- recipient's signed receipt/ack (protocol.md): status 'awaiting_delivery',
-- due_at NULL and `awaiting_document` naming the document until then.
CREATE TABLE deadlines_v5 (
    case_id   TEXT NOT NULL REFERENCES cases(id),
    seq       INTEGER NOT NULL,
    step      TEXT NOT NULL,
    period    TEXT NOT NULL,
    starts_at INTEGER NOT NULL,                  -- while awaiting: the document's acceptance
    due_at    INTEGER,
    met_at    INTEGER,
    closed_at INTEGER,
    status    TEXT NOT NULL CHECK (status IN ('due', 'met', 'overdue', 'closed', 'uncomputable', 'awaiting_delivery')),
    note      TEXT,
    awaiting_document TEXT,                      -- gateway document id whose delivery starts the clock
    PRIMARY KEY (case_id, seq)
);
INSERT INTO deadlines_v5 (case_id, seq, step, period, starts_at, due_at, met_at, closed_at, status, note)
SELECT case_id, seq, step, period, starts_at, due_at, met_at, closed_at, status, note FROM deadlines;
DROP TABLE deadlines;
ALTER TABLE deadlines_v5 RENAME TO deadlines;
CREATE INDEX deadlines_open_due ON deadlines (due_at) WHERE met_at IS NULL AND closed_at IS NULL;
CREATE INDEX deadlines_awaiting ON deadlines (awaiting_document) WHERE awaiting_document IS NOT NULL;
