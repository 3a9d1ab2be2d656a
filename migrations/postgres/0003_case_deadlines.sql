-- Deadlines as the flow engine keeps them (src/workflow/deadlines.rs): a case
-- may restart a period (a correction restarts the receipt period), so a name
-- is no longer unique per case; each row keeps when it was met or closed.
--
-- SQLite cannot change a primary key and rebuilds the table; PostgreSQL alters
-- it in place. The result is the same table: key (case_id, seq), the new
-- `closed` status, `seq` numbered per case by (starts_at, step) from 0, and
-- `met_at` of an already met deadline set to its case's opening.
ALTER TABLE deadlines
    ADD COLUMN seq       BIGINT,                 -- order within the case
    ADD COLUMN met_at    BIGINT,
    ADD COLUMN closed_at BIGINT;

UPDATE deadlines AS t
SET seq = n.seq, met_at = n.met_at
FROM (
    SELECT d.case_id, d.step,
           ROW_NUMBER() OVER (PARTITION BY d.case_id ORDER BY d.starts_at, d.step) - 1 AS seq,
           CASE WHEN d.status = 'met' THEN c.opened_at END AS met_at
    FROM deadlines d JOIN cases c ON c.id = d.case_id
) AS n
WHERE t.case_id = n.case_id AND t.step = n.step;

ALTER TABLE deadlines
    ALTER COLUMN seq SET NOT NULL,
    DROP CONSTRAINT deadlines_pkey,
    ADD PRIMARY KEY (case_id, seq),
    DROP CONSTRAINT deadlines_status_check,
    ADD CONSTRAINT deadlines_status_check
        CHECK (status IN ('due', 'met', 'overdue', 'closed', 'uncomputable'));

CREATE INDEX deadlines_open_due ON deadlines (due_at) WHERE met_at IS NULL AND closed_at IS NULL;
