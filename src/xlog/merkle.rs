//! RFC 9162 Merkle tree math (默克尔树): hashing, which stored nodes make up
//! a root or a proof, and verification of inclusion and consistency proofs.
//!
//! Pure functions only: no storage, no I/O. The store keeps the hash of every
//! *complete* subtree (a [`NodeId`]: level `l`, index `i` covers leaves
//! `[i·2^l, (i+1)·2^l)`), written once, when the subtree completes. Every
//! hash a root or a proof needs is the MTH of a range that decomposes into at
//! most `log2 n` such complete subtrees ([`range_nodes`]), so the store answers
//! with O(log n) lookups and never recomputes a subtree. The offline verifier
//! uses the same module (and nothing from `store` or `api`).
//!
//! Hand-written rather than taken from a crate: `ct-merkle` builds proofs for
//! its in-memory tree or hands out indices in its own array layout, and
//! `tlog_tiles` (a port of Go's `sumdb/tlog`) reads hashes through a
//! synchronous `HashReader` it calls itself; both would force our async
//! database reads through an adapter, and both bring a second SHA-2/Ed25519
//! stack next to OpenSSL. The whole of RFC 9162 §2.1 is ~200 lines here, is
//! pinned by the transparency-dev known-answer vectors and property-tested
//! against a naive recomputation below.

use openssl::sha::Sha256;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// RFC 9162 §2.1.1: `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(&[0x00]);
    h.update(leaf);
    h.finish()
}

/// RFC 9162 §2.1.1: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(&[0x01]);
    h.update(left);
    h.update(right);
    h.finish()
}

/// The root of the empty tree: `SHA-256()` of nothing.
pub fn empty_root() -> Hash {
    openssl::sha::sha256(b"")
}

/// A complete subtree: `level` 0 is a leaf, level `l` covers `2^l` leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub fn new(level: u8, index: u64) -> NodeId {
        NodeId { level, index }
    }

    /// The leaves it covers, `[start, end)`.
    pub fn leaves(&self) -> (u64, u64) {
        (self.index << self.level, (self.index + 1) << self.level)
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (start, end) = self.leaves();
        write!(
            f,
            "node (level {}, index {}) over leaves {}..{}",
            self.level,
            self.index,
            start,
            end - 1
        )
    }
}

/// Why a proof cannot be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {first} is larger than {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof leads to a different root hash")]
    RootMismatch,
    #[error("the proof leads to a different root hash for the first tree")]
    FirstRootMismatch,
    #[error("a stored node the computation needs is missing: {0}")]
    MissingNode(NodeId),
}

/// The largest power of two strictly below `n` (`n ≥ 2`): RFC 9162's `k`.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The complete subtrees whose hashes, folded right to left ([`fold`]), give
/// `MTH(D[start:end])`, largest first. `start` must be aligned as every range
/// of the RFC's recursion is (a multiple of the power of two ≥ `end - start`).
pub fn range_nodes(start: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let level = 63 - (end - at).leading_zeros() as u8;
        out.push(NodeId::new(level, at >> level));
        at += 1 << level;
    }
    out
}

/// `MTH` of a range from its complete subtrees (largest first); `None` when empty.
pub fn fold(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(
        rest.iter()
            .rev()
            .fold(*last, |acc, left| node_hash(left, &acc)),
    )
}

/// What to look up for a root or a proof: each element is one hash of the
/// result, the [`fold`] of the stored nodes listed.
pub type Plan = Vec<Vec<NodeId>>;

/// The nodes whose fold is the root of the tree of `size` leaves.
pub fn root_plan(size: u64) -> Vec<NodeId> {
    range_nodes(0, size)
}

/// RFC 9162 §2.1.3.1 `PATH(index, D[0:size])`, leaf side first.
pub fn inclusion_plan(index: u64, size: u64) -> Result<Plan, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::new();
    path(index, 0, size, &mut out);
    Ok(out)
}

fn path(m: u64, start: u64, end: u64, out: &mut Plan) {
    if end - start <= 1 {
        return;
    }
    let k = split(end - start);
    if m < start + k {
        path(m, start, start + k, out);
        out.push(range_nodes(start + k, end));
    } else {
        path(m, start + k, end, out);
        out.push(range_nodes(start, start + k));
    }
}

/// RFC 9162 §2.1.4.1 `PROOF(first, D[0:second])`; empty when `first` is 0
/// or equal to `second`.
pub fn consistency_plan(first: u64, second: u64) -> Result<Plan, ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    let mut out = Vec::new();
    if first > 0 && first < second {
        subproof(first, 0, second, true, &mut out);
    }
    Ok(out)
}

fn subproof(m: u64, start: u64, end: u64, whole: bool, out: &mut Plan) {
    if m == end {
        if !whole {
            out.push(range_nodes(start, end));
        }
        return;
    }
    let k = split(end - start);
    if m <= start + k {
        subproof(m, start, start + k, whole, out);
        out.push(range_nodes(start + k, end));
    } else {
        subproof(m, start + k, end, false, out);
        out.push(range_nodes(start, start + k));
    }
}

/// Fills a plan from looked-up hashes; fails naming the first missing node.
pub fn fill(plan: &Plan, lookup: impl Fn(NodeId) -> Option<Hash>) -> Result<Vec<Hash>, ProofError> {
    plan.iter()
        .map(|nodes| {
            let hashes = nodes
                .iter()
                .map(|id| lookup(*id).ok_or(ProofError::MissingNode(*id)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(fold(&hashes).unwrap_or_else(empty_root))
        })
        .collect()
}

/// RFC 9162 §2.1.3.2: the root an inclusion proof leads to.
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// RFC 9162 §2.1.3.2: checks that `leaf` is at `index` in the tree `root` of `size` leaves.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// RFC 9162 §2.1.4.2: checks that the tree `first_root` of `first` leaves is
/// a prefix of the tree `second_root` of `second` leaves.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == second {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if first == 0 {
        // The empty tree is a prefix of every tree.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(first_root);
    }
    path.extend(proof.iter());
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*path[0], *path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *first_root {
        return Err(ProofError::FirstRootMismatch);
    }
    if sr != *second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The right edge of a growing tree: the hashes of the complete subtrees that
/// make up `[0, size)` (largest first), enough to append and to compute the
/// root. May hold only the lowest few of them ([`Frontier::from_tail`]) when
/// the caller knows appending will not reach the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// How many of the largest subtrees are not held.
    omitted: usize,
    hashes: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// From the hashes of [`root_plan`]`(size)`, in that order.
    pub fn from_nodes(size: u64, hashes: Vec<Hash>) -> Result<Frontier, ProofError> {
        if hashes.len() != size.count_ones() as usize {
            return Err(ProofError::WrongLength);
        }
        Ok(Frontier {
            size,
            omitted: 0,
            hashes,
        })
    }

    /// From the last `hashes.len()` hashes of [`root_plan`]`(size)` (for
    /// appending; see [`frontier_tail`]).
    pub fn from_tail(size: u64, hashes: Vec<Hash>) -> Result<Frontier, ProofError> {
        let total = size.count_ones() as usize;
        if hashes.len() > total {
            return Err(ProofError::WrongLength);
        }
        Ok(Frontier {
            size,
            omitted: total - hashes.len(),
            hashes,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; `completed` is called with every complete subtree
    /// above the leaf that this leaf finishes, lowest first.
    pub fn push(
        &mut self,
        leaf: Hash,
        mut completed: impl FnMut(NodeId, &Hash),
    ) -> Result<(), ProofError> {
        let index = self.size;
        let mut hash = leaf;
        let mut level = 0u8;
        while (index >> level) & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                return Err(ProofError::MissingNode(NodeId::new(
                    level,
                    (index >> level) - 1,
                )));
            };
            hash = node_hash(&left, &hash);
            level += 1;
            completed(NodeId::new(level, index >> level), &hash);
        }
        self.hashes.push(hash);
        self.size += 1;
        Ok(())
    }

    /// The root of the tree so far (needs every subtree held).
    pub fn root(&self) -> Result<Hash, ProofError> {
        if self.omitted > 0 {
            let missing = root_plan(self.size)[0];
            return Err(ProofError::MissingNode(missing));
        }
        Ok(fold(&self.hashes).unwrap_or_else(empty_root))
    }
}

/// The lowest nodes of [`root_plan`]`(size)` that appending `count` leaves
/// will merge, largest first: all [`Frontier::from_tail`] needs.
pub fn frontier_tail(size: u64, count: u64) -> Vec<NodeId> {
    let end = size.saturating_add(count);
    let plan = root_plan(size);
    let needed = plan
        .iter()
        .rev()
        .take_while(|node| {
            // Merged when the subtree one level up that contains it completes.
            let parent_end = ((node.index >> 1) + 1) << (node.level + 1);
            parent_end <= end
        })
        .count();
    plan[plan.len() - needed..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// The 8 leaves of the transparency-dev/merkle (formerly Trillian,
    /// certificate-transparency-go) reference tree.
    fn leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| hex::decode(s).unwrap())
        .collect()
    }

    /// Roots of the trees of 0..=8 of those leaves.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// Every complete subtree of the 8-leaf tree, by level.
    const NODES: [&[&str]; 4] = [
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        &[
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        &[
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ];

    /// (leaf index, tree size, proof) from transparency-dev/merkle
    /// proof/verify_test.go (its indices are 1-based; these are 0-based).
    fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (0, 1, vec![]),
            (
                0,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                5,
                8,
                vec![
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                3,
                vec![h(
                    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                )],
            ),
            (
                1,
                5,
                vec![
                    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
        ]
    }

    /// (first, second, proof) from the same file.
    fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                6,
                8,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                5,
                vec![
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
            (
                6,
                7,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
        ]
    }

    /// A node store built the way the gateway builds it: by appending.
    fn build(leaf_hashes: &[Hash]) -> std::collections::HashMap<NodeId, Hash> {
        let mut nodes = std::collections::HashMap::new();
        let mut frontier = Frontier::new();
        for (i, leaf) in leaf_hashes.iter().enumerate() {
            nodes.insert(NodeId::new(0, i as u64), *leaf);
            frontier
                .push(*leaf, |id, hash| {
                    nodes.insert(id, *hash);
                })
                .unwrap();
        }
        nodes
    }

    fn stored_root(nodes: &std::collections::HashMap<NodeId, Hash>, size: u64) -> Hash {
        fill(&vec![root_plan(size)], |id| nodes.get(&id).copied()).unwrap()[0]
    }

    #[test]
    fn known_answers_of_the_reference_tree() {
        let hashes: Vec<Hash> = leaves().iter().map(|l| leaf_hash(l)).collect();
        let nodes = build(&hashes);
        for (level, row) in NODES.iter().enumerate() {
            for (index, want) in row.iter().enumerate() {
                assert_eq!(
                    nodes[&NodeId::new(level as u8, index as u64)],
                    h(want),
                    "node {level}/{index}"
                );
            }
        }
        assert_eq!(nodes.len(), 15, "only complete subtrees are stored");
        for (size, want) in ROOTS.iter().enumerate() {
            assert_eq!(stored_root(&nodes, size as u64), h(want), "root {size}");
            let mut frontier = Frontier::new();
            for leaf in &hashes[..size] {
                frontier.push(*leaf, |_, _| {}).unwrap();
            }
            assert_eq!(frontier.root().unwrap(), h(want));
        }
        for (index, size, want) in inclusion_vectors() {
            let plan = inclusion_plan(index, size).unwrap();
            let proof = fill(&plan, |id| nodes.get(&id).copied()).unwrap();
            assert_eq!(proof, want, "inclusion {index} in {size}");
            let root = h(ROOTS[size as usize]);
            verify_inclusion(index, size, &hashes[index as usize], &proof, &root).unwrap();
        }
        for (first, second, want) in consistency_vectors() {
            let plan = consistency_plan(first, second).unwrap();
            let proof = fill(&plan, |id| nodes.get(&id).copied()).unwrap();
            assert_eq!(proof, want, "consistency {first} → {second}");
            let (r1, r2) = (h(ROOTS[first as usize]), h(ROOTS[second as usize]));
            verify_consistency(first, second, &r1, &r2, &proof).unwrap();
        }
    }

    #[test]
    fn corrupted_known_proofs_are_refused() {
        let hashes: Vec<Hash> = leaves().iter().map(|l| leaf_hash(l)).collect();
        for (index, size, proof) in inclusion_vectors() {
            let root = h(ROOTS[size as usize]);
            let leaf = hashes[index as usize];
            let bad = |i: u64, s: u64, l: &Hash, p: &[Hash], r: &Hash| {
                assert!(verify_inclusion(i, s, l, p, r).is_err(), "{i} {s}");
            };
            bad(index + 1, size, &leaf, &proof, &root);
            bad(index, size * 2, &leaf, &proof, &root);
            bad(index, size, &leaf_hash(b"other"), &proof, &root);
            bad(index, size, &leaf, &proof, &empty_root());
            let mut longer = proof.clone();
            longer.push(root);
            bad(index, size, &leaf, &longer, &root);
            for i in 0..proof.len() {
                let mut flipped = proof.clone();
                flipped[i][0] ^= 8;
                bad(index, size, &leaf, &flipped, &root);
                bad(index, size, &leaf, &proof[..proof.len() - 1], &root);
            }
        }
        for (first, second, proof) in consistency_vectors() {
            if proof.is_empty() {
                continue;
            }
            let (r1, r2) = (h(ROOTS[first as usize]), h(ROOTS[second as usize]));
            assert!(verify_consistency(first, second, &r2, &r1, &proof).is_err());
            assert!(verify_consistency(first + 1, second, &r1, &r2, &proof).is_err());
            assert!(verify_consistency(first, second, &r1, &r2, &[]).is_err());
            assert!(verify_consistency(first, second, &r1, &r2, &proof[1..]).is_err());
            for i in 0..proof.len() {
                let mut flipped = proof.clone();
                flipped[i][0] ^= 16;
                assert!(verify_consistency(first, second, &r1, &r2, &flipped).is_err());
            }
        }
        let some = leaf_hash(b"x");
        assert!(verify_consistency(0, 0, &some, &some, &[some]).is_err());
        assert!(verify_consistency(1, 1, &some, &empty_root(), &[]).is_err());
        assert!(verify_consistency(2, 1, &some, &some, &[]).is_err());
        assert!(verify_consistency(0, 5, &some, &empty_root(), &[]).is_ok());
        assert!(verify_inclusion(0, 0, &some, &[], &some).is_err());
        assert!(inclusion_plan(3, 3).is_err());
        assert!(consistency_plan(4, 3).is_err());
    }

    // Naive RFC 9162 definitions, straight from the recursion over lists.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return vec![];
        }
        let k = split(n as u64) as usize;
        if m < k {
            let mut p = naive_path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = naive_path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    fn naive_subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if whole { vec![] } else { vec![mth(leaves)] };
        }
        let k = split(n as u64) as usize;
        if m <= k {
            let mut p = naive_subproof(m, &leaves[..k], whole);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = naive_subproof(m - k, &leaves[k..], false);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn stored_nodes_give_the_naive_roots_and_proofs(n in 1usize..300, a in 0usize..300, b in 0usize..300) {
            let hashes: Vec<Hash> = (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect();
            let nodes = build(&hashes);
            let lookup = |id: NodeId| nodes.get(&id).copied();
            prop_assert_eq!(stored_root(&nodes, n as u64), mth(&hashes));
            let index = a % n;
            let size = index + 1 + b % (n - index);
            let proof = fill(&inclusion_plan(index as u64, size as u64).unwrap(), lookup).unwrap();
            prop_assert_eq!(&proof, &naive_path(index, &hashes[..size]));
            let root = mth(&hashes[..size]);
            prop_assert!(verify_inclusion(index as u64, size as u64, &hashes[index], &proof, &root).is_ok());
            prop_assert!(verify_inclusion(index as u64, size as u64, &hashes[(index + 1) % size], &proof, &root).is_err() || size == 1);

            let (first, second) = (a % (n + 1), n);
            let (first, second) = (first.min(second), first.max(second));
            let proof = fill(&consistency_plan(first as u64, second as u64).unwrap(), lookup).unwrap();
            let want = if first == 0 || first == second { vec![] } else { naive_subproof(first, &hashes[..second], true) };
            prop_assert_eq!(&proof, &want);
            let (r1, r2) = (mth(&hashes[..first]), mth(&hashes[..second]));
            prop_assert!(verify_consistency(first as u64, second as u64, &r1, &r2, &proof).is_ok());
            if first > 0 && first < second {
                prop_assert!(verify_consistency(first as u64, second as u64, &r1, &leaf_hash(b"no"), &proof).is_err());
            }
        }

        #[test]
        fn a_frontier_tail_is_enough_to_append(size in 0u64..5000, count in 1u64..700) {
            let tail = frontier_tail(size, count);
            let plan = root_plan(size);
            let hashes: Vec<Hash> = plan.iter().map(|id| leaf_hash(&id.index.to_be_bytes())).collect();
            let mut full = Frontier::from_nodes(size, hashes.clone()).unwrap();
            let mut part = Frontier::from_tail(size, hashes[hashes.len() - tail.len()..].to_vec()).unwrap();
            prop_assert_eq!(&plan[plan.len() - tail.len()..], &tail[..]);
            for i in 0..count {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                full.push(leaf_hash(&i.to_le_bytes()), |id, h| a.push((id, *h))).unwrap();
                part.push(leaf_hash(&i.to_le_bytes()), |id, h| b.push((id, *h))).unwrap();
                prop_assert_eq!(a, b);
            }
        }
    }
}
