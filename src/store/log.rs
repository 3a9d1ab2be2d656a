//! The exchange log's tables: the leaves (`exchange_log`), the hashes of
//! complete subtrees (`log_nodes`), the tree size (`log_head`) and signed
//! checkpoints (`checkpoints`). The tree math is `xlog::merkle`; this file
//! only reads and writes what it says.
//!
//! An append runs inside the caller's transaction: it bumps `log_head`, reads
//! the few right-edge subtrees the new leaves will merge with
//! ([`merkle::frontier_tail`]), and inserts the leaves and every subtree they
//! complete. Roots and proofs are one query of at most ~2 log2(n) point
//! lookups, never a recomputation.

use std::collections::HashMap;

use sqlx::{AnyConnection, Connection, Row};

use super::group::{self, Kept, Work};
use super::sql::insert_many;
use super::{Store, StoreError};
use crate::xlog::merkle::{self, Frontier, Hash, NodeId, ProofError};
use crate::xlog::{LogPosition, PreparedLeaf};

/// One exchange-log entry as stored.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub index: i64,
    pub leaf: Vec<u8>,
    pub leaf_hash: Vec<u8>,
}

/// An inclusion proof (RFC 9162 §2.1.3) with the root it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub index: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub root: Hash,
    pub path: Vec<Hash>,
}

/// A consistency proof (RFC 9162 §2.1.4) with both roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub first_root: Hash,
    pub second_root: Hash,
    pub path: Vec<Hash>,
}

/// Which entries the auditor's log browser (and a case's evidence bundle)
/// asks for. Leaves are RFC 8785 JSON, so a field's value appears in exactly
/// one spelling: `"event":"document.read"`, `"court.620102"`.
#[derive(Debug, Clone, Default)]
pub struct LogFilter<'a> {
    /// The event kind (`document.accepted` …).
    pub event: Option<&'a str>,
    /// A string value the leaf must hold (an agency id).
    pub value: Option<&'a str>,
    /// String values of which the leaf must hold at least one (a case's ids).
    pub any_value: &'a [String],
    /// `logged_at` in `[from_ms, to_ms)`.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only entries below this index.
    pub before: Option<u64>,
    /// Oldest first (a case's evidence) instead of newest first (the log pages).
    pub oldest_first: bool,
    pub limit: i64,
}

/// A published checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub note: String,
    pub published_at_ms: i64,
}

/// The stored tree is not what the math expects (a missing or malformed
/// node): only tampering or a bug can cause it.
#[derive(Debug, thiserror::Error)]
#[error("exchange log tree: {0}")]
struct TreeDamaged(String);

fn damaged(what: impl std::fmt::Display) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(Box::new(TreeDamaged(what.to_string()))))
}

impl From<ProofError> for StoreError {
    fn from(e: ProofError) -> StoreError {
        damaged(e)
    }
}

/// Log entries and nothing else, joining a group commit: the positions they
/// landed at.
pub(super) struct Entries {
    leaves: Vec<PreparedLeaf>,
    positions: Vec<LogPosition>,
}

impl Entries {
    pub(super) fn new(leaves: Vec<PreparedLeaf>) -> Entries {
        Entries {
            leaves,
            positions: Vec::new(),
        }
    }
}

impl Work for Entries {
    type Output = Vec<LogPosition>;

    fn write<'a>(
        &'a mut self,
        _tx: &'a mut AnyConnection,
    ) -> futures_util::future::BoxFuture<'a, Result<Kept, StoreError>> {
        Box::pin(async { Ok(Kept::Rows(self.leaves.clone())) })
    }

    fn logged<'a>(
        &'a mut self,
        _tx: &'a mut AnyConnection,
        positions: &'a [LogPosition],
    ) -> futures_util::future::BoxFuture<'a, Result<(), StoreError>> {
        self.positions = positions.to_vec();
        Box::pin(async { Ok(()) })
    }

    fn output(self) -> Vec<LogPosition> {
        self.positions
    }
}

/// Appends one leaf inside the caller's transaction.
pub(super) async fn append_log(
    tx: &mut AnyConnection,
    leaf: &PreparedLeaf,
) -> Result<LogPosition, StoreError> {
    append_leaves(tx, &[leaf])
        .await?
        .pop()
        .ok_or_else(|| damaged("no position for an appended leaf"))
}

/// Appends leaves inside the caller's transaction, in order.
pub(super) async fn append_leaves(
    tx: &mut AnyConnection,
    leaves: &[&PreparedLeaf],
) -> Result<Vec<LogPosition>, StoreError> {
    if leaves.is_empty() {
        return Ok(Vec::new());
    }
    let count = leaves.len() as u64;
    let end: i64 = sqlx::query("UPDATE log_head SET size = size + $1 WHERE id = 1 RETURNING size")
        .bind(count as i64)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
    let start = (end as u64)
        .checked_sub(count)
        .ok_or_else(|| damaged("log_head.size is negative"))?;
    let tail = merkle::frontier_tail(start, count);
    let hashes = read_nodes(&mut *tx, &tail).await?;
    let mut frontier = Frontier::from_tail(start, hashes)?;
    let mut nodes: Vec<(NodeId, Hash)> = Vec::with_capacity(leaves.len() + 1);
    for leaf in leaves {
        frontier.push(leaf.leaf_hash, |id, hash| nodes.push((id, *hash)))?;
    }
    let indexed: Vec<(u64, &PreparedLeaf)> = (start..).zip(leaves.iter().copied()).collect();
    insert_leaves(tx, &indexed).await?;
    insert_nodes(tx, &nodes).await?;
    Ok(leaves
        .iter()
        .enumerate()
        .map(|(i, leaf)| LogPosition {
            index: (start + i as u64) as i64,
            leaf_hash: leaf.leaf_hash,
        })
        .collect())
}

/// Leaves at their indices, without their subtrees.
async fn insert_leaves(
    tx: &mut AnyConnection,
    leaves: &[(u64, &PreparedLeaf)],
) -> Result<(), StoreError> {
    insert_many(
        tx,
        "INSERT INTO exchange_log (idx, leaf, leaf_hash, logged_at) VALUES ",
        4,
        leaves,
        |q, (idx, leaf)| {
            q.bind(*idx as i64)
                .bind(leaf.bytes.as_slice())
                .bind(leaf.leaf_hash.as_slice())
                .bind(leaf.at_ms)
        },
    )
    .await?;
    Ok(())
}

async fn insert_nodes(tx: &mut AnyConnection, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
    insert_many(
        tx,
        "INSERT INTO log_nodes (level, idx, hash) VALUES ",
        3,
        nodes,
        |q, (id, hash)| {
            q.bind(id.level as i32)
                .bind(id.index as i64)
                .bind(hash.as_slice())
        },
    )
    .await?;
    Ok(())
}

/// The leaf-hash index's key: the hash's first 8 bytes as a big-endian
/// signed integer (`migrations/*/0011_leaf_index.sql`).
fn leaf_key(hash: &Hash) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    i64::from_be_bytes(first)
}

/// A `(level, idx, hash)` row of the tree.
fn node_row(row: &sqlx::any::AnyRow) -> Result<(NodeId, Hash), StoreError> {
    let level: i64 = row.try_get(0)?;
    let idx: i64 = row.try_get(1)?;
    let hash: Vec<u8> = row.try_get(2)?;
    let id = NodeId::new(level as u8, idx as u64);
    let hash: Hash = hash
        .try_into()
        .map_err(|_| damaged(format!("{id} is not 32 bytes")))?;
    Ok((id, hash))
}

/// The hashes of `ids`, in that order, in one query (leaves from
/// `exchange_log`, subtrees from `log_nodes`).
async fn read_nodes<'c, E>(executor: E, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut unique: Vec<NodeId> = ids.to_vec();
    unique.sort();
    unique.dedup();
    let (leaves, inner): (Vec<NodeId>, Vec<NodeId>) = unique.iter().partition(|id| id.level == 0);
    let mut parts = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if !leaves.is_empty() {
        let list: Vec<String> = leaves.iter().map(|_| next()).collect();
        parts.push(format!(
            "SELECT 0 AS level, idx, leaf_hash AS hash FROM exchange_log WHERE idx IN ({})",
            list.join(", ")
        ));
    }
    if !inner.is_empty() {
        let terms: Vec<String> = inner
            .iter()
            .map(|_| format!("(level = {} AND idx = {})", next(), next()))
            .collect();
        parts.push(format!(
            "SELECT level, idx, hash FROM log_nodes WHERE {}",
            terms.join(" OR ")
        ));
    }
    let sql = parts.join(" UNION ALL ");
    let mut query = sqlx::query(&sql);
    for id in &leaves {
        query = query.bind(id.index as i64);
    }
    for id in &inner {
        query = query.bind(id.level as i32).bind(id.index as i64);
    }
    let mut found: HashMap<NodeId, Hash> = HashMap::with_capacity(unique.len());
    for row in query.fetch_all(executor).await? {
        let (id, hash) = node_row(&row)?;
        found.insert(id, hash);
    }
    ids.iter()
        .map(|id| {
            found
                .get(id)
                .copied()
                .ok_or_else(|| damaged(ProofError::MissingNode(*id)))
        })
        .collect()
}

/// Subtrees at this level and above (256 leaves and more) are kept in memory
/// once read: about one in 128 of the stored nodes, yet most of those a
/// proof or root at a large tree size needs (docs/benchmarks.md §4).
const CACHED_LEVEL: u8 = 8;

/// At most this many cached subtree hashes (~64 bytes each): all of levels
/// 8 and above up to ~25 million leaves; beyond, the rest is read each time.
const CACHE_MAX: usize = 200_000;

/// Hashes of complete subtrees read by proofs and roots. A stored subtree
/// never changes (written once, by the append that completes it), so an entry
/// is never stale. Only committed reads fill it ([`read_plan`] on the reader
/// pool), never the append path, whose reads may see its own transaction's
/// uncommitted nodes.
#[derive(Debug, Default)]
pub(super) struct NodeCache {
    nodes: std::sync::RwLock<HashMap<NodeId, Hash>>,
}

impl NodeCache {
    fn get(&self, id: &NodeId) -> Option<Hash> {
        self.nodes.read().ok()?.get(id).copied()
    }

    fn len(&self) -> usize {
        self.nodes.read().map(|n| n.len()).unwrap_or(0)
    }

    fn keep(&self, found: &HashMap<NodeId, Hash>) {
        let Ok(mut nodes) = self.nodes.write() else {
            return;
        };
        for (id, hash) in found {
            if id.level >= CACHED_LEVEL && nodes.len() < CACHE_MAX {
                nodes.insert(*id, *hash);
            }
        }
    }
}

/// The hashes of a plan's nodes, folded into the plan's hashes: upper
/// subtrees from `cache`, the rest in one query (committed data only).
async fn read_plan<'c, E>(
    executor: E,
    cache: &NodeCache,
    plans: &[&merkle::Plan],
) -> Result<Vec<Vec<Hash>>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let mut found: HashMap<NodeId, Hash> = HashMap::new();
    let mut missing: Vec<NodeId> = Vec::new();
    for id in plans.iter().flat_map(|plan| plan.iter().flatten()) {
        match cache.get(id) {
            Some(hash) => {
                found.insert(*id, hash);
            }
            None => missing.push(*id),
        }
    }
    let hashes = read_nodes(executor, &missing).await?;
    let read: HashMap<NodeId, Hash> = missing.into_iter().zip(hashes).collect();
    cache.keep(&read);
    found.extend(read);
    plans
        .iter()
        .map(|plan| Ok(merkle::fill(plan, |id| found.get(&id).copied())?))
        .collect()
}

impl Store {
    /// Appends one entry to the exchange log in the next group commit
    /// (rejections, reads).
    pub async fn append_log(&self, leaf: &PreparedLeaf) -> Result<LogPosition, StoreError> {
        group::join(self, Entries::new(vec![leaf.clone()]))
            .await?
            .pop()
            .ok_or_else(|| damaged("no position for an appended leaf"))
    }

    /// Appends several entries in one transaction (one fsync), in order.
    pub async fn append_log_batch(
        &self,
        leaves: &[PreparedLeaf],
    ) -> Result<Vec<LogPosition>, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let leaves: Vec<&PreparedLeaf> = leaves.iter().collect();
        let positions = append_leaves(&mut tx, &leaves).await?;
        tx.commit().await?;
        Ok(positions)
    }

    /// Appends leaves one call each, `per_transaction` calls to a transaction:
    /// the gateway's own path when several events share a commit (benchmark).
    pub async fn append_log_each(
        &self,
        leaves: &[PreparedLeaf],
        per_transaction: usize,
    ) -> Result<(), StoreError> {
        for batch in leaves.chunks(per_transaction.max(1)) {
            let mut conn = self.writer.acquire().await?;
            let mut tx = conn.begin().await?;
            for leaf in batch {
                append_log(&mut tx, leaf).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Log entries from `from` (inclusive), at most `limit`.
    pub async fn log_entries(&self, from: i64, limit: i64) -> Result<Vec<LogEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, leaf, leaf_hash FROM exchange_log WHERE idx >= $1 ORDER BY idx LIMIT $2",
        )
        .bind(from)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| LogEntry {
                index: r.get(0),
                leaf: r.get(1),
                leaf_hash: r.get(2),
            })
            .collect())
    }

    /// Entries matching `filter`, newest first unless asked otherwise, with
    /// their `logged_at` (ms).
    /// The value filters scan the leaves (a LIKE on their text): meant for an
    /// auditor's pages and one case's evidence, bounded by the date range.
    pub async fn log_entries_filtered(
        &self,
        filter: &LogFilter<'_>,
    ) -> Result<Vec<(LogEntry, i64)>, StoreError> {
        use super::search::contains_pattern;
        let quoted = |v: &str| contains_pattern(&serde_json::Value::from(v).to_string());
        let text = match self.backend() {
            super::Backend::Sqlite => "CAST(leaf AS TEXT)",
            super::Backend::Postgres => "convert_from(leaf, 'UTF8')",
        };
        let mut clauses = vec![
            "idx < $1".to_string(),
            "logged_at >= $2".into(),
            "logged_at < $3".into(),
        ];
        let mut binds: Vec<String> = Vec::new();
        let mut next = 5;
        let mut like = |pattern: String, binds: &mut Vec<String>| {
            let clause = format!("{text} LIKE ${next} ESCAPE '\\'");
            next += 1;
            binds.push(pattern);
            clause
        };
        if let Some(event) = filter.event {
            let pattern =
                contains_pattern(&format!("\"event\":{}", serde_json::Value::from(event)));
            clauses.push(like(pattern, &mut binds));
        }
        if let Some(value) = filter.value {
            clauses.push(like(quoted(value), &mut binds));
        }
        if !filter.any_value.is_empty() {
            let any: Vec<String> = filter
                .any_value
                .iter()
                .map(|v| like(quoted(v), &mut binds))
                .collect();
            clauses.push(format!("({})", any.join(" OR ")));
        }
        let sql = format!(
            "SELECT idx, leaf, leaf_hash, logged_at FROM exchange_log WHERE {} ORDER BY idx {} LIMIT $4",
            clauses.join(" AND "),
            if filter.oldest_first { "ASC" } else { "DESC" }
        );
        let mut query = sqlx::query(&sql)
            .bind(
                filter
                    .before
                    .map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64),
            )
            .bind(filter.from_ms.unwrap_or(i64::MIN))
            .bind(filter.to_ms.unwrap_or(i64::MAX))
            .bind(filter.limit.max(1));
        for pattern in binds {
            query = query.bind(pattern);
        }
        Ok(query
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|r| {
                (
                    LogEntry {
                        index: r.get(0),
                        leaf: r.get(1),
                        leaf_hash: r.get(2),
                    },
                    r.get(3),
                )
            })
            .collect())
    }

    /// The number of leaves in the tree.
    pub async fn log_size(&self) -> Result<u64, StoreError> {
        let size: i64 = sqlx::query("SELECT size FROM log_head WHERE id = 1")
            .fetch_one(&self.reader)
            .await?
            .get(0);
        Ok(size.max(0) as u64)
    }

    /// The root hash of the tree of `size` leaves (`size` ≤ [`Store::log_size`]).
    pub async fn log_root(&self, size: u64) -> Result<Hash, StoreError> {
        let plan = vec![merkle::root_plan(size)];
        Ok(read_plan(&self.reader, &self.nodes, &[&plan]).await?[0][0])
    }

    /// The index of the first leaf with this hash below `tree_size`: from
    /// the leaf-hash index below its head, by scanning the leaves above it
    /// (those the indexer has not reached yet; [`Store::index_leaf_hashes`]).
    /// The head is read first: whatever is below it is in the index for good.
    pub async fn leaf_index(
        &self,
        leaf_hash: &Hash,
        tree_size: u64,
    ) -> Result<Option<u64>, StoreError> {
        let indexed = self.leaf_index_head(&self.reader).await?.min(tree_size);
        let row = sqlx::query(
            "SELECT MIN(e.idx) FROM log_leaf_index i JOIN exchange_log e ON e.idx = i.idx \
             WHERE i.leaf_key = $1 AND e.leaf_hash = $2 AND i.idx < $3",
        )
        .bind(leaf_key(leaf_hash))
        .bind(leaf_hash.as_slice())
        .bind(indexed as i64)
        .fetch_one(&self.reader)
        .await?;
        if let Some(index) = row.get::<Option<i64>, _>(0) {
            return Ok(Some(index as u64));
        }
        let row = sqlx::query(
            "SELECT MIN(idx) FROM exchange_log WHERE idx >= $1 AND idx < $2 AND leaf_hash = $3",
        )
        .bind(indexed as i64)
        .bind(tree_size as i64)
        .bind(leaf_hash.as_slice())
        .fetch_one(&self.reader)
        .await?;
        Ok(row.get::<Option<i64>, _>(0).map(|i| i as u64))
    }

    /// How many leaves the leaf-hash index covers (all below this).
    async fn leaf_index_head<'c, E>(&self, executor: E) -> Result<u64, StoreError>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        let size: i64 = sqlx::query("SELECT size FROM log_leaf_index_head WHERE id = 1")
            .fetch_one(executor)
            .await?
            .get(0);
        Ok(size.max(0) as u64)
    }

    /// Reads the stored subtrees the proof cache holds (level 8 and up, at
    /// most its capacity) in one pass, so the first proofs after a start do
    /// not each fetch them; returns how many it holds.
    pub async fn warm_log_cache(&self) -> Result<usize, StoreError> {
        let rows = sqlx::query(
            "SELECT level, idx, hash FROM log_nodes WHERE level >= $1 ORDER BY level DESC, idx LIMIT $2",
        )
        .bind(CACHED_LEVEL as i32)
        .bind(CACHE_MAX as i64)
        .fetch_all(&self.reader)
        .await?;
        let found = rows
            .iter()
            .map(node_row)
            .collect::<Result<HashMap<NodeId, Hash>, StoreError>>()?;
        self.nodes.keep(&found);
        Ok(self.nodes.len())
    }

    /// Leaves appended but not yet in the leaf-hash index.
    pub async fn leaf_index_lag(&self) -> Result<u64, StoreError> {
        let indexed = self.leaf_index_head(&self.reader).await?;
        Ok(self.log_size().await?.saturating_sub(indexed))
    }

    /// Adds the leaves the leaf-hash index does not cover yet to it, at most
    /// `batch` to a transaction, sorted by key so each batch touches each
    /// page of the index once; returns how many it added. Runs behind the
    /// log (`spawn_leaf_indexer`), never on the append path.
    pub async fn index_leaf_hashes(&self, batch: u64) -> Result<u64, StoreError> {
        let mut added = 0;
        loop {
            // Caught up (the usual case, checked every second): no write
            // transaction, no flush.
            if self.leaf_index_lag().await? == 0 {
                return Ok(added);
            }
            let mut conn = self.writer.acquire().await?;
            let mut tx = conn.begin().await?;
            // Locks the head row first (PostgreSQL: one indexer at a time).
            let from: i64 = sqlx::query(
                "UPDATE log_leaf_index_head SET size = size WHERE id = 1 RETURNING size",
            )
            .fetch_one(&mut *tx)
            .await?
            .get(0);
            let size: i64 = sqlx::query("SELECT size FROM log_head WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?
                .get(0);
            let to = size.min(from.saturating_add(batch.max(1) as i64));
            if to <= from {
                return Ok(added);
            }
            let rows =
                sqlx::query("SELECT idx, leaf_hash FROM exchange_log WHERE idx >= $1 AND idx < $2")
                    .bind(from)
                    .bind(to)
                    .fetch_all(&mut *tx)
                    .await?;
            if rows.len() as i64 != to - from {
                return Err(damaged(format!(
                    "exchange_log holds {} of the entries {from}..{to}",
                    rows.len()
                )));
            }
            let mut keys: Vec<(i64, i64)> = Vec::with_capacity(rows.len());
            for row in rows {
                let idx: i64 = row.try_get(0)?;
                let hash: Vec<u8> = row.try_get(1)?;
                let hash: Hash = hash
                    .try_into()
                    .map_err(|_| damaged(format!("leaf hash {idx} is not 32 bytes")))?;
                keys.push((leaf_key(&hash), idx));
            }
            keys.sort_unstable();
            insert_many(
                &mut tx,
                "INSERT INTO log_leaf_index (leaf_key, idx) VALUES ",
                2,
                &keys,
                |q, (key, idx)| q.bind(*key).bind(*idx),
            )
            .await?;
            sqlx::query("UPDATE log_leaf_index_head SET size = $1 WHERE id = 1")
                .bind(to)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            added += (to - from) as u64;
        }
    }

    /// RFC 9162 inclusion proof of leaf `index` in the tree of `tree_size`
    /// leaves (`index < tree_size ≤ log_size`), with that tree's root.
    pub async fn inclusion_proof(
        &self,
        index: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, StoreError> {
        let path = merkle::inclusion_plan(index, tree_size)?;
        let leaf = vec![vec![NodeId::new(0, index)]];
        let root = vec![merkle::root_plan(tree_size)];
        let mut found = read_plan(&self.reader, &self.nodes, &[&path, &leaf, &root]).await?;
        let root = found[2][0];
        let leaf_hash = found[1][0];
        Ok(InclusionProof {
            index,
            tree_size,
            leaf_hash,
            root,
            path: std::mem::take(&mut found[0]),
        })
    }

    /// RFC 9162 consistency proof from `first` to `second` leaves
    /// (`first ≤ second ≤ log_size`), with both roots.
    pub async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, StoreError> {
        let path = merkle::consistency_plan(first, second)?;
        let roots = vec![merkle::root_plan(first), merkle::root_plan(second)];
        let mut found = read_plan(&self.reader, &self.nodes, &[&path, &roots]).await?;
        Ok(ConsistencyProof {
            first,
            second,
            first_root: found[1][0],
            second_root: found[1][1],
            path: std::mem::take(&mut found[0]),
        })
    }

    /// The subtrees (level ≥ 1) completed by the leaves `[start, end)`, in the
    /// order they completed (export, for the offline verifier).
    pub async fn log_nodes_completed(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<(NodeId, Hash)>, StoreError> {
        let mut out = Vec::new();
        for level in 1..64u8 {
            // Node (level, i) completes with leaf ((i + 1) << level) - 1.
            let first = (start + 1).div_ceil(1 << level).saturating_sub(1);
            let last = (end >> level) as i64; // exclusive
            if (1u64 << level) > end {
                break;
            }
            let rows = sqlx::query(
                "SELECT idx, hash FROM log_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
            )
            .bind(level as i32)
            .bind(first as i64)
            .bind(last)
            .fetch_all(&self.reader)
            .await?;
            for row in rows {
                let id = NodeId::new(level, row.get::<i64, _>(0) as u64);
                let hash: Vec<u8> = row.get(1);
                let hash: Hash = hash
                    .try_into()
                    .map_err(|_| damaged(format!("{id} is not 32 bytes")))?;
                out.push((id, hash));
            }
        }
        out.sort_by_key(|(id, _)| (id.leaves().1, id.level));
        Ok(out)
    }

    /// Writes the subtrees of leaves that are stored but not yet in the tree
    /// (a log from before the Merkle tree, or a bulk load), in transactions
    /// of `batch` leaves. Returns the tree size.
    pub async fn integrate_log(&self, batch: u64) -> Result<u64, StoreError> {
        // Several instances starting on one PostgreSQL database may integrate
        // at once: each batch locks the head row first and starts over from
        // the stored size when another instance got there before it.
        loop {
            if let Some(size) = self.integrate_log_from_head(batch.max(1)).await? {
                return Ok(size);
            }
        }
    }

    /// One pass of [`Store::integrate_log`]; `None` when another writer moved
    /// the head meanwhile.
    async fn integrate_log_from_head(&self, batch: u64) -> Result<Option<u64>, StoreError> {
        let leaves: i64 = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) FROM exchange_log")
            .fetch_one(&self.writer)
            .await?
            .get(0);
        let mut conn = self.writer.acquire().await?;
        let size: i64 = sqlx::query("SELECT size FROM log_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?
            .get(0);
        let mut size = size.max(0) as u64;
        let target = leaves.max(0) as u64;
        if size >= target {
            return Ok(Some(size));
        }
        let hashes = read_nodes(&mut *conn, &merkle::root_plan(size)).await?;
        let mut frontier = Frontier::from_nodes(size, hashes)?;
        while size < target {
            let end = (size + batch).min(target);
            let mut tx = conn.begin().await?;
            let locked: i64 =
                sqlx::query("UPDATE log_head SET size = size WHERE id = 1 RETURNING size")
                    .fetch_one(&mut *tx)
                    .await?
                    .get(0);
            if locked as u64 != size {
                return Ok(None);
            }
            let rows = sqlx::query(
                "SELECT idx, leaf_hash FROM exchange_log WHERE idx >= $1 AND idx < $2 ORDER BY idx",
            )
            .bind(size as i64)
            .bind(end as i64)
            .fetch_all(&mut *tx)
            .await?;
            let mut nodes = Vec::with_capacity(rows.len() + 1);
            for (i, row) in rows.iter().enumerate() {
                let idx: i64 = row.get(0);
                if idx as u64 != size + i as u64 {
                    return Err(damaged(format!(
                        "exchange_log has no entry {}",
                        size + i as u64
                    )));
                }
                let hash: Vec<u8> = row.get(1);
                let hash: Hash = hash
                    .try_into()
                    .map_err(|_| damaged(format!("leaf hash {idx} is not 32 bytes")))?;
                frontier.push(hash, |id, h| nodes.push((id, *h)))?;
            }
            if rows.len() as u64 != end - size {
                return Err(damaged(format!(
                    "exchange_log has no entry {}",
                    size + rows.len() as u64
                )));
            }
            insert_nodes(&mut tx, &nodes).await?;
            sqlx::query("UPDATE log_head SET size = $1 WHERE id = 1")
                .bind(end as i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            size = end;
        }
        Ok(Some(size))
    }

    /// Inserts leaves without their subtrees (bulk load for benchmarks and
    /// imports; [`Store::integrate_log`] must run before the next append).
    pub async fn bulk_load_leaves(
        &self,
        first_index: u64,
        leaves: &[PreparedLeaf],
    ) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let indexed: Vec<(u64, &PreparedLeaf)> = (first_index..).zip(leaves).collect();
        insert_leaves(&mut tx, &indexed).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a signed checkpoint; false if one of that size exists already.
    pub async fn insert_checkpoint(
        &self,
        tree_size: u64,
        note: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO checkpoints (tree_size, note, published_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(tree_size as i64)
        .bind(note)
        .bind(at_ms)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The checkpoint of this size, or the latest when `None`.
    pub async fn checkpoint(
        &self,
        tree_size: Option<u64>,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = match tree_size {
            Some(size) => {
                sqlx::query("SELECT tree_size, note, published_at FROM checkpoints WHERE tree_size = $1")
                    .bind(size as i64)
                    .fetch_optional(&self.reader)
                    .await?
            }
            None => {
                sqlx::query("SELECT tree_size, note, published_at FROM checkpoints ORDER BY tree_size DESC LIMIT 1")
                    .fetch_optional(&self.reader)
                    .await?
            }
        };
        Ok(row.map(checkpoint_row))
    }

    /// Checkpoints with a size below `before`, largest first, at most `limit`
    /// (the auditor's checkpoint history).
    pub async fn checkpoints_before(
        &self,
        before: Option<u64>,
        limit: i64,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT tree_size, note, published_at FROM checkpoints WHERE tree_size < $1 ORDER BY tree_size DESC LIMIT $2",
        )
        .bind(before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(checkpoint_row).collect())
    }

    /// Checkpoints with a size above `after`, smallest first, at most `limit`.
    pub async fn checkpoints(
        &self,
        after: Option<u64>,
        limit: i64,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT tree_size, note, published_at FROM checkpoints WHERE tree_size > $1 ORDER BY tree_size LIMIT $2",
        )
        .bind(after.map(|a| a as i64).unwrap_or(-1))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(checkpoint_row).collect())
    }
}

fn checkpoint_row(row: sqlx::any::AnyRow) -> StoredCheckpoint {
    StoredCheckpoint {
        tree_size: row.get::<i64, _>(0).max(0) as u64,
        note: row.get(1),
        published_at_ms: row.get(2),
    }
}
