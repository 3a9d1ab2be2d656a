-- Deadlines as the flow engine keeps them (src/workflow/deadlines.rs): a case
-- may restart a period (a correction restarts the receipt period), so a name
-- is no longer unique per case; each row keeps when it was met or closed.
CREATE TABLE case_deadlines (
    case_id   TEXT NOT NULL REFERENCES cases(id),
    seq       INTEGER NOT NULL,             -- order within the case
    step      TEXT NOT NULL,                -- period name in rules/periods.toml
    period    TEXT NOT NULL,                -- e.g. 5d, 10wd, 48h
    starts_at INTEGER NOT NULL,
    due_at    INTEGER,                      -- NULL when the calendar cannot compute it
    met_at    INTEGER,
    closed_at INTEGER,
    status    TEXT NOT NULL CHECK (status IN ('due', 'met', 'overdue', 'closed', 'uncomputable')),
    note      TEXT,
    PRIMARY KEY (case_id, seq)
);

INSERT INTO case_deadlines (case_id, seq, step, period, starts_at, due_at, met_at, closed_at, status, note)
SELECT d.case_id,
       ROW_NUMBER() OVER (PARTITION BY d.case_id ORDER BY d.starts_at, d.step) - 1,
       d.step, d.period, d.starts_at, d.due_at,
       CASE WHEN d.status = 'met' THEN c.opened_at END,
       NULL, d.status, d.note
FROM deadlines d JOIN cases c ON c.id = d.case_id;

DROP TABLE deadlines;
ALTER TABLE case_deadlines RENAME TO deadlines;
CREATE INDEX deadlines_open_due ON deadlines (due_at) WHERE met_at IS NULL AND closed_at IS NULL;
