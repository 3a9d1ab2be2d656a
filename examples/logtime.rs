//! Exchange-log benchmark (release build): append rates and proof latency.
//!
//! `cargo run --release --example logtime -- [--sizes 1000000,10000000] [--dir DIR] [--bulk-dir DIR]
//!   [--bulk-db FILE] [--proofs-only]`
//!
//! 1. the pure in-memory tree: leaf hash + append to the right edge, one core;
//! 2. appends into SQLite with the gateway's durable settings (WAL,
//!    synchronous=FULL) through `Store`, each leaf written with the subtrees it
//!    completes: one append per transaction (one fsync each), the gateway's
//!    per-event call (`append_log` in the caller's transaction) 1,000 to a
//!    transaction, and the batch call 1,000 to a transaction;
//! 3. the tree grown to each size in `--sizes` by the bulk path — leaf rows
//!    inserted 50,000 to a transaction without subtrees, then
//!    `Store::integrate_log` computes and writes the subtrees in one streaming
//!    pass (the same code that upgrades a pre-Merkle log at start-up) — and at
//!    each size the latency of 2,000 inclusion proofs at random indices
//!    (one query, checked against the root), plus consistency proofs and roots.
//!
//! Leaves are `document.read` events (~150 bytes of canonical JSON).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use corrections_gateway::store::Store;
use corrections_gateway::xlog::merkle::{self, Frontier, Hash};
use corrections_gateway::xlog::{self, LogEvent, PreparedLeaf};

fn leaves(from: u64, count: u64) -> Vec<PreparedLeaf> {
    let at = time::OffsetDateTime::now_utc();
    (from..from + count)
        .map(|i| {
            let event = LogEvent::DocumentRead {
                document_id: format!("01a207dd-6830-736a-b890-{i:012x}"),
                reader: "corrections.620102".into(),
                view: "canonical".into(),
            };
            xlog::prepare(&event, at)
        })
        .collect()
}

fn per_sec(n: u64, d: Duration) -> String {
    format!("{:>9.0}/s", n as f64 / d.as_secs_f64())
}

/// CPU time of this process so far (user + system, all threads), from
/// /proc/self/stat: on a shared machine wall time alone overstates the cost.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

/// `rate (wall) | rate per CPU-second`.
fn rates(n: u64, wall: Duration, cpu: Duration) -> String {
    format!(
        "{} wall, {} per CPU-second",
        per_sec(n, wall),
        per_sec(n, cpu.max(Duration::from_millis(10)))
    )
}

fn quantiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    (at(0.5), at(0.99), at(1.0))
}

/// Cheap reproducible pseudo-random numbers (xorshift).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let sizes: Vec<u64> = arg("--sizes")
        .unwrap_or_else(|| "1000000,10000000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let temp = tempfile::tempdir_in(
        arg("--dir")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir),
    )?;
    let resources = PathBuf::from(env!("CARGO_MANIFEST_DIR"));

    // 1. In memory.
    let n = 1_000_000;
    let prepared = leaves(0, 100_000);
    let t = Instant::now();
    let mut frontier = Frontier::new();
    let mut nodes = 0u64;
    for i in 0..n {
        let leaf = &prepared[(i % 100_000) as usize];
        frontier.push(merkle::leaf_hash(&leaf.bytes), |_, _| nodes += 1)?;
    }
    let root = frontier.root()?;
    println!(
        "in-memory tree        {} appends ({} leaves, {nodes} subtrees, root {})",
        per_sec(n, t.elapsed()),
        n,
        &hex::encode(root)[..16]
    );

    // 2. Durable SQLite appends (`--proofs-only`: skipped).
    if !args.iter().any(|a| a == "--proofs-only") {
        appends(&temp, &resources).await?;
    }

    // 3. Bulk-built trees and proof latency. `--bulk-db FILE`: a database
    // kept between runs and grown only by what is missing; else a fresh one
    // in `--bulk-dir`.
    let bulk_dir = match arg("--bulk-dir") {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir_in(temp.path())?,
    };
    let bulk_path = arg("--bulk-db")
        .map(PathBuf::from)
        .unwrap_or_else(|| bulk_dir.path().join("bulk.db"));
    let bulk_url = format!("sqlite://{}?mode=rwc", bulk_path.display());
    let store = Store::open(&bulk_url, 2, &resources).await?;
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut loaded = store.log_size().await?;
    for &target in &sizes {
        if loaded > target {
            println!("(the kept database has {loaded} leaves: size {target} skipped)");
            continue;
        }
        let (t, c) = (Instant::now(), cpu());
        while loaded < target {
            let count = (target - loaded).min(50_000);
            store
                .bulk_load_leaves(loaded, &leaves(loaded, count))
                .await?;
            loaded += count;
        }
        let load = t.elapsed();
        let t = Instant::now();
        store.integrate_log(100_000).await?;
        let integrate = t.elapsed();
        println!(
            "bulk to {target:>10}    leaves {load:.1?}, subtrees {integrate:.1?} (prepare+insert+integrate {})",
            rates(target, load + integrate, cpu() - c)
        );
        let (t, c) = (Instant::now(), cpu());
        let indexed = store.index_leaf_hashes(50_000).await?;
        println!(
            "  leaf-hash indexer   {} ({indexed} leaves, 50,000 per tx)",
            rates(indexed, t.elapsed(), cpu() - c)
        );
        let t = Instant::now();
        let cached = store.warm_log_cache().await?;
        println!(
            "  proof cache         {cached} subtree hashes (level >= 8) read in {:.1?}",
            t.elapsed()
        );
        let root = store.log_root(target).await?;
        let mut latencies = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let index = rng.below(target);
            let t = Instant::now();
            let proof = store.inclusion_proof(index, target).await?;
            latencies.push(t.elapsed());
            merkle::verify_inclusion(index, target, &proof.leaf_hash, &proof.path, &root)?;
        }
        let (p50, p99, max) = quantiles(latencies);
        println!("  inclusion proof     p50 {p50:.3} ms  p99 {p99:.3} ms  max {max:.3} ms (2,000 random indices, verified)");
        let mut latencies = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let index = rng.below(target);
            let entry = store.log_entries(index as i64, 1).await?;
            let hash: Hash = entry[0].leaf_hash.as_slice().try_into()?;
            let t = Instant::now();
            let found = store.leaf_index(&hash, target).await?;
            latencies.push(t.elapsed());
            if found != Some(index) {
                anyhow::bail!("leaf {index} not found by its hash");
            }
        }
        let (p50, p99, max) = quantiles(latencies);
        println!("  leaf by hash        p50 {p50:.3} ms  p99 {p99:.3} ms  max {max:.3} ms (2,000 random leaves)");
        let mut latencies = Vec::with_capacity(500);
        for _ in 0..500 {
            let first = 1 + rng.below(target - 1);
            let t = Instant::now();
            let proof = store.consistency_proof(first, target).await?;
            latencies.push(t.elapsed());
            merkle::verify_consistency(first, target, &proof.first_root, &root, &proof.path)?;
        }
        let (p50, p99, _) = quantiles(latencies);
        println!("  consistency proof   p50 {p50:.3} ms  p99 {p99:.3} ms (500 random first sizes, verified)");
        let mut latencies = Vec::with_capacity(500);
        for _ in 0..500 {
            let t = Instant::now();
            store.log_root(target).await?;
            latencies.push(t.elapsed());
        }
        let (p50, p99, _) = quantiles(latencies);
        println!("  root at size        p50 {p50:.3} ms  p99 {p99:.3} ms");
    }
    store.close().await;
    Ok(())
}

/// Section 2: appends through `Store` into a fresh SQLite database.
async fn appends(temp: &tempfile::TempDir, resources: &std::path::Path) -> anyhow::Result<()> {
    let url = |name: &str| format!("sqlite://{}?mode=rwc", temp.path().join(name).display());
    let store = Store::open(&url("append.db"), 2, resources).await?;
    let one = leaves(0, 500);
    let (t, c) = (Instant::now(), cpu());
    for leaf in &one {
        store.append_log(leaf).await?;
    }
    println!(
        "sqlite, 1 per tx      {} (each its own fsync)",
        rates(500, t.elapsed(), cpu() - c)
    );
    let each = leaves(500, 100_000);
    let (t, c) = (Instant::now(), cpu());
    store.append_log_each(&each, 1000).await?;
    println!(
        "sqlite, per-event     {} (append_log in the caller's tx, 1,000 per tx)",
        rates(100_000, t.elapsed(), cpu() - c)
    );
    let batch = leaves(100_500, 300_000);
    let (t, c) = (Instant::now(), cpu());
    for chunk in batch.chunks(1000) {
        store.append_log_batch(chunk).await?;
    }
    println!(
        "sqlite, batch 1,000   {} (append_log_batch, 1,000 per tx)",
        rates(300_000, t.elapsed(), cpu() - c)
    );
    let big = leaves(400_500, 300_000);
    let (t, c) = (Instant::now(), cpu());
    for chunk in big.chunks(10_000) {
        store.append_log_batch(chunk).await?;
    }
    println!(
        "sqlite, batch 10,000  {} (append_log_batch, 10,000 per tx)",
        rates(300_000, t.elapsed(), cpu() - c)
    );
    // The leaf-hash index, filled behind the log in its own transactions.
    let (t, c) = (Instant::now(), cpu());
    let indexed = store.index_leaf_hashes(10_000).await?;
    println!(
        "leaf-hash indexer     {} ({indexed} leaves, 10,000 per tx, behind the appends)",
        rates(indexed, t.elapsed(), cpu() - c)
    );
    let size = store.log_size().await?;
    let root = store.log_root(size).await?;
    let mut check = Frontier::new();
    for leaf in one.iter().chain(&each).chain(&batch).chain(&big) {
        check.push(leaf.leaf_hash, |_, _| {})?;
    }
    assert_eq!(root, check.root()?, "stored tree = in-memory tree");
    store.close().await;
    Ok(())
}
