-- Finding a leaf by its hash (`GET /api/v1/log/proof?leaf_hash=`) leaves the
-- append path. A B-tree on 32-byte random keys made every append dirty a page
-- of it, which the WAL then wrote: on SQLite that index, not the tree, held
-- appends to ~7,000/s (docs/benchmarks.md §4). The lookup table is now filled
-- behind the log by a background pass in sorted batches (src/store/log.rs,
-- `index_leaf_hashes`), keyed by the hash's first 8 bytes; entries it has not
-- reached yet are found by scanning the short tail above
-- `log_leaf_index_head.size`. Written to be PostgreSQL-compatible except
-- where marked.
DROP INDEX exchange_log_leaf_hash;

-- leaf_key: the first 8 bytes of exchange_log.leaf_hash, big-endian, as a
-- signed 64-bit integer. Several leaves may share one; a lookup compares the
-- whole hash in exchange_log.
CREATE TABLE log_leaf_index (
    leaf_key BIGINT NOT NULL,
    idx      BIGINT NOT NULL,
    PRIMARY KEY (leaf_key, idx)
) WITHOUT ROWID;  -- SQLite only: one B-tree keyed by (leaf_key, idx)

-- Every leaf below size is in log_leaf_index. Updating this row first also
-- serialises indexers on PostgreSQL (several instances).
CREATE TABLE log_leaf_index_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT  NOT NULL
);
INSERT INTO log_leaf_index_head (id, size) VALUES (1, 0);
