-- E-mail to the people of the web interface (src/notify, SQL in
-- src/store/mail.rs). The port of migrations/sqlite/0008_mail.sql.

-- Which notifications a user wants, one row per kind they changed (no row:
-- the kind's default). kind: document, deadline_soon, overdue, dead_letter
-- (mode immediate | digest | off) and digest (mode on | off).
CREATE TABLE mail_preferences (
    user_id TEXT NOT NULL REFERENCES users(id),
    kind    TEXT NOT NULL CHECK (kind IN ('document', 'deadline_soon', 'overdue', 'dead_letter', 'digest')),
    mode    TEXT NOT NULL CHECK (mode IN ('immediate', 'digest', 'off', 'on')),
    PRIMARY KEY (user_id, kind)
);

-- The mail outbox: one row per message to one person. `dedup_key` names the
-- event and the person (e.g. `document:<document id>:<user id>`), so finding
-- the same event twice — a second scan, a second gateway instance — inserts
-- nothing. Subjects and bodies hold ids, 案号, steps and times, never a name
-- or an ID number.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,            -- UUIDv7, also the Message-ID's left part
    dedup_key       TEXT NOT NULL UNIQUE,
    user_id         TEXT NOT NULL,
    address         TEXT NOT NULL,               -- the user's e-mail when the mail was queued
    kind            TEXT NOT NULL,               -- a preference kind
    case_id         TEXT,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,               -- text/plain, zh-CN then English
    -- pending: to send; held: waits for the user's digest; digested: went
    -- out inside the digest `digest_id`; sent; failed: out of attempts
    state           TEXT NOT NULL CHECK (state IN ('pending', 'held', 'digested', 'sent', 'failed')),
    digest_id       TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease           TEXT,                        -- token of the send in flight
    leased_until    BIGINT,                     -- a crashed sender's lease ends here
    last_error      TEXT,                        -- code of the last failed attempt (docs/mail.md)
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (state, next_attempt_at);
CREATE INDEX mail_outbox_user ON mail_outbox (user_id, state);

-- How far the exchange log has been read for notifications: entries below
-- `next_index` were turned into mail (or found to need none). It starts at
-- the log's end when this migration runs, so an existing database does not
-- mail its past; events older than mail.max_event_age_hours are skipped too.
CREATE TABLE mail_cursor (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    next_index BIGINT NOT NULL
);
INSERT INTO mail_cursor (id, next_index) SELECT 1, COALESCE(MAX(idx) + 1, 0) FROM exchange_log;
