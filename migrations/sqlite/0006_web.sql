-- People who work in the web interface (clerks, supervisors, auditors,
-- admins) and their sessions. Partner systems never log in: they sign.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,           -- UUIDv7
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,              -- argon2id PHC string
    role            TEXT NOT NULL CHECK (role IN ('clerk', 'supervisor', 'auditor', 'admin')),
    agency_id       TEXT,                       -- a clerk's agency
    region          TEXT,                       -- a supervisor's division prefix (e.g. 62, 6201)
    email           TEXT,
    failed_logins   INTEGER NOT NULL DEFAULT 0, -- consecutive failures since the last success
    locked_until    INTEGER,                    -- no login before this instant (ms)
    created_at      INTEGER NOT NULL
);

-- Server-side sessions: the cookie holds a random token; only its SHA-256 is stored,
-- so a copy of the database does not let anyone in.
CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
