//! The offline verifier (离线验证): checks an exported log bundle without
//! the database and without any `store` or `api` code — only the tree math
//! ([`super::merkle`]) and signed-note parsing ([`super::note`]).
//!
//! It checks, and names the first thing that is wrong:
//! every checkpoint's signature (log key in `log.pub`) and origin; every
//! entry, in order — its index, that the leaf is RFC 8785 canonical JSON, that
//! the stored leaf hash is `SHA-256(0x00 ‖ leaf)`, and that each stored
//! subtree hash the leaf completed equals the one rebuilt from the leaves;
//! each checkpoint's root against the tree rebuilt at its size; and an
//! RFC 9162 consistency proof between every two successive checkpoints.
//! Memory stays O(log n) plus the nodes those proofs need.
//!
//! Bundle layout (written by [`super::export`]): `log.pub` (the note verifier
//! key), `gateway.crt.pem`, `checkpoints/<size>.note`, and `entries.jsonl`,
//! one JSON object per line: `{"index": n, "leaf": base64, "leaf_hash": hex,
//! "nodes": [hex, …]}` where `nodes` are the stored hashes of the subtrees
//! that leaf `n` completes (levels 1, 2, … up).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;

use super::merkle::{self, Frontier, Hash, NodeId};
use super::note::{Checkpoint, NoteVerifier};

/// One line of `entries.jsonl`.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct BundleEntry {
    pub index: u64,
    pub leaf: String,
    pub leaf_hash: String,
    pub nodes: Vec<String>,
}

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub checkpoints: usize,
    pub root: Hash,
}

/// The first problem found, in words that name it exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

fn fail<T>(what: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(what.into()))
}

/// Verifies the bundle directory at `dir`.
pub fn verify_bundle(dir: &Path) -> Result<Verified, Failure> {
    let vkey = std::fs::read_to_string(dir.join("log.pub"))
        .or_else(|_| fail("log.pub: cannot be read"))?;
    let verifier = NoteVerifier::parse(&vkey).or_else(|e| fail(format!("log.pub: {e}")))?;
    let certificate = std::fs::read(dir.join("gateway.crt.pem"))
        .or_else(|_| fail("gateway.crt.pem: cannot be read"))?;
    if openssl::x509::X509::from_pem(&certificate).is_err() {
        return fail("gateway.crt.pem: not a PEM certificate");
    }
    let checkpoints = read_checkpoints(dir, &verifier)?;
    let sizes: Vec<u64> = checkpoints.keys().copied().collect();

    // The nodes the consistency proofs between successive checkpoints need.
    let mut wanted: HashSet<NodeId> = HashSet::new();
    for pair in sizes.windows(2) {
        let plan = merkle::consistency_plan(pair[0], pair[1])
            .or_else(|e| fail(format!("checkpoints {} → {}: {e}", pair[0], pair[1])))?;
        wanted.extend(plan.into_iter().flatten());
    }
    let mut kept: HashMap<NodeId, Hash> = HashMap::new();

    let entries = std::fs::File::open(dir.join("entries.jsonl"))
        .or_else(|_| fail("entries.jsonl: cannot be read"))?;
    let mut frontier = Frontier::new();
    let check_root = |frontier: &Frontier| -> Result<(), Failure> {
        if let Some(cp) = checkpoints.get(&frontier.size()) {
            let rebuilt = frontier
                .root()
                .or_else(|e| fail(format!("rebuilding the root: {e}")))?;
            if rebuilt != cp.root {
                return fail(format!(
                    "checkpoint {}: its root hash {} is not the root {} rebuilt from entries 0..{}",
                    cp.size,
                    hex::encode(cp.root),
                    hex::encode(rebuilt),
                    cp.size
                ));
            }
        }
        Ok(())
    };
    check_root(&frontier)?;
    for (line_no, line) in std::io::BufReader::new(entries).lines().enumerate() {
        let expected = line_no as u64;
        let line = line.or_else(|_| fail(format!("entry {expected}: the line cannot be read")))?;
        let entry: BundleEntry = serde_json::from_str(&line)
            .or_else(|_| fail(format!("entry {expected}: the line is not a bundle entry")))?;
        if entry.index != expected {
            return fail(format!(
                "entry {expected}: missing (the next line is entry {})",
                entry.index
            ));
        }
        let leaf = B64
            .decode(&entry.leaf)
            .or_else(|_| fail(format!("entry {expected}: the leaf is not base64")))?;
        check_canonical(&leaf).or_else(|what| fail(format!("entry {expected}: {what}")))?;
        let rebuilt = merkle::leaf_hash(&leaf);
        if entry.leaf_hash != hex::encode(rebuilt) {
            return fail(format!(
                "entry {expected}: stored leaf_hash {} is not SHA-256(0x00 ‖ leaf) = {}",
                entry.leaf_hash,
                hex::encode(rebuilt)
            ));
        }
        if wanted.contains(&NodeId::new(0, expected)) {
            kept.insert(NodeId::new(0, expected), rebuilt);
        }
        let mut completed = Vec::new();
        frontier
            .push(rebuilt, |id, hash| completed.push((id, *hash)))
            .or_else(|e| fail(format!("entry {expected}: {e}")))?;
        for (n, (id, hash)) in completed.iter().enumerate() {
            let Some(stored) = entry.nodes.get(n) else {
                return fail(format!("entry {expected}: the stored {id} is missing"));
            };
            if *stored != hex::encode(hash) {
                return fail(format!(
                    "entry {expected}: the stored {id} is {stored}, rebuilt from the leaves it is {}",
                    hex::encode(hash)
                ));
            }
            if wanted.contains(id) {
                kept.insert(*id, *hash);
            }
        }
        if entry.nodes.len() > completed.len() {
            return fail(format!(
                "entry {expected}: {} stored node hashes where leaf {expected} completes {}",
                entry.nodes.len(),
                completed.len()
            ));
        }
        check_root(&frontier)?;
    }
    let size = frontier.size();
    if let Some(cp) = checkpoints.values().find(|cp| cp.size > size) {
        return fail(format!(
            "checkpoint {}: it commits to {} entries, the bundle has {size}",
            cp.size, cp.size
        ));
    }
    for pair in sizes.windows(2) {
        let (first, second) = (&checkpoints[&pair[0]], &checkpoints[&pair[1]]);
        let plan = merkle::consistency_plan(first.size, second.size)
            .or_else(|e| fail(format!("checkpoints {} → {}: {e}", first.size, second.size)))?;
        let proof = merkle::fill(&plan, |id| kept.get(&id).copied())
            .or_else(|e| fail(format!("checkpoints {} → {}: {e}", first.size, second.size)))?;
        merkle::verify_consistency(first.size, second.size, &first.root, &second.root, &proof)
            .or_else(|e| {
                fail(format!(
                    "checkpoints {} → {}: the consistency proof does not verify ({e})",
                    first.size, second.size
                ))
            })?;
    }
    Ok(Verified {
        entries: size,
        checkpoints: checkpoints.len(),
        root: frontier
            .root()
            .or_else(|e| fail(format!("rebuilding the root: {e}")))?,
    })
}

/// Every `checkpoints/<size>.note`, opened with the log key, by size.
fn read_checkpoints(
    dir: &Path,
    verifier: &NoteVerifier,
) -> Result<BTreeMap<u64, Checkpoint>, Failure> {
    let mut out = BTreeMap::new();
    let listing = match std::fs::read_dir(dir.join("checkpoints")) {
        Ok(listing) => listing,
        Err(_) => return fail("checkpoints/: cannot be read"),
    };
    let mut files = Vec::new();
    for entry in listing {
        let entry = entry.or_else(|_| fail("checkpoints/: cannot be read"))?;
        files.push(entry.path());
    }
    files.sort();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(size) = name
            .strip_suffix(".note")
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return fail(format!("checkpoints/{name}: not named <tree size>.note"));
        };
        let note = std::fs::read_to_string(&path)
            .or_else(|_| fail(format!("checkpoint {size}: not readable UTF-8 text")))?;
        let checkpoint = Checkpoint::open(&note, verifier)
            .or_else(|e| fail(format!("checkpoint {size}: {e}")))?;
        if checkpoint.size != size {
            return fail(format!(
                "checkpoint {size}: the signed size is {}",
                checkpoint.size
            ));
        }
        out.insert(size, checkpoint);
    }
    Ok(out)
}

/// A leaf must be a JSON object serialised exactly as RFC 8785 would.
pub(super) fn check_canonical(leaf: &[u8]) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_slice(leaf).map_err(|_| "the leaf is not JSON".to_string())?;
    if !value.is_object() {
        return Err("the leaf is not a JSON object".into());
    }
    let canonical = serde_json_canonicalizer::to_vec(&value)
        .map_err(|_| "the leaf cannot be canonicalised".to_string())?;
    if canonical != leaf {
        return Err("the leaf is not RFC 8785 canonical JSON".into());
    }
    Ok(())
}
