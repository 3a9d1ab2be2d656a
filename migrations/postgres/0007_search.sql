-- The person each document is about, for the clerks' search (by name or ID
-- number, src/web/search.rs). Personal data, like `documents.canonical` it is
-- copied from: it stays in the database, never in the exchange log or in
-- application logs. Written in the document's transaction.
CREATE TABLE document_subjects (
    document_id TEXT PRIMARY KEY REFERENCES documents(id),
    name        TEXT NOT NULL,
    id_number   TEXT NOT NULL                -- 18 characters, normalised
);
CREATE INDEX document_subjects_id_number ON document_subjects (id_number);
CREATE INDEX document_subjects_name ON document_subjects (name);

-- PostgreSQL port of migrations/sqlite/0007_search.sql: the backfill reads
-- the canonical JSON with ->> instead of SQLite's json_extract.
INSERT INTO document_subjects (document_id, name, id_number)
SELECT id, canonical::json -> 'subject' ->> 'name', canonical::json -> 'subject' ->> 'id_number'
FROM documents
WHERE canonical::json -> 'subject' ->> 'name' IS NOT NULL
  AND canonical::json -> 'subject' ->> 'id_number' IS NOT NULL;

-- Searching by 文书编号 and 案号; the auditor's log browser filters by date.
CREATE INDEX documents_document_no ON documents (document_no);
CREATE INDEX cases_case_no ON cases (case_no);
CREATE INDEX exchange_log_logged_at ON exchange_log (logged_at);
