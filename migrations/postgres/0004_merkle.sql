-- The exchange log becomes an RFC 9162 Merkle tree (src/xlog/merkle.rs).
-- PostgreSQL port of migrations/sqlite/0004_merkle.sql: BLOB is BYTEA and
-- there is no WITHOUT ROWID (the primary key index serves the lookups).

-- The Merkle tree replaces the hash chain: inclusion and consistency proofs
-- say more than a chain, and nothing reads chain_hash any more.
ALTER TABLE exchange_log DROP COLUMN chain_hash;

-- The hash of every complete subtree above the leaves: level l, index i
-- covers leaves [i * 2^l, (i + 1) * 2^l). Written in the transaction of the
-- leaf that completes it and never changed, so a root or a proof is at most
-- 2 log2(n) point lookups. Level 0 is exchange_log.leaf_hash (not repeated).
-- Grouping the rows of level 8k by 256 gives the hash tiles of C2SP tlog-tiles.
CREATE TABLE log_nodes (
    level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   BIGINT  NOT NULL,
    hash  BYTEA   NOT NULL,
    PRIMARY KEY (level, idx)
);

-- How many leaves the tree holds (their subtrees are in log_nodes). Appending
-- updates this one row first, which also serialises appenders on PostgreSQL.
-- Leaves written before this migration are integrated at start-up.
CREATE TABLE log_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT  NOT NULL
);
INSERT INTO log_head (id, size) VALUES (1, 0);

-- Signed checkpoints (C2SP tlog-checkpoint in a signed note), one per tree size.
CREATE TABLE checkpoints (
    tree_size    BIGINT PRIMARY KEY,
    note         TEXT   NOT NULL,          -- the signed note exactly as served
    published_at BIGINT NOT NULL
);
