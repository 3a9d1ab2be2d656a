-- A case's documents (`GET /api/v1/cases/{id}`, and every answer, which reads
-- the documents of the case it answers) were found by scanning the whole
-- documents table, originals and all: with 3,000 documents stored that read
-- took ~6 ms and held answers to ~500/s on SQLite (docs/benchmarks.md §8).
CREATE INDEX documents_case ON documents (case_id, received_at);
