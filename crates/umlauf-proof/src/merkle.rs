//! The log's Merkle tree (RFC 6962 §2.1, RFC 9162 §2.1, c2sp.org/merkle-tree): hashing, proofs
//! built from stored subtree hashes, the frontier an appender keeps, and the proof verifiers.
//!
//! Leaves are the log's record bytes: `leaf_hash(d) = SHA-256(0x00 ‖ d)`, an inner node is
//! `SHA-256(0x01 ‖ left ‖ right)`, and the empty tree hashes to `SHA-256("")`. The tree over `n`
//! leaves splits at the largest power of two below `n`, so its left part is always perfect.
//!
//! A *complete subtree* [`SubtreeId`] `(level, index)` is the perfect subtree over the `2^level`
//! leaves from `index · 2^level` on; level 0 holds the leaf hashes. Every hash a proof or a root
//! needs is a complete subtree or a left-to-right chain of them along the right edge of a tree,
//! so a store that keeps the hash of every complete subtree (an appended leaf completes one per
//! trailing one bit of its index, see [`Frontier::push`]) can serve any proof for any size
//! without holding the leaves. Proofs are made in two steps, because the store is asynchronous
//! and this crate is not: [`ProofPlan`] says which subtrees to fetch ([`ProofPlan::subtrees`]),
//! and [`ProofPlan::assemble`] turns the fetched hashes into the proof. An inclusion or
//! consistency proof needs O(log n) subtree hashes.
//!
//! The verifiers are the iterative ones of c2sp.org/merkle-tree (from RFC 9162). They are
//! written to be total: no input makes them panic, and an empty tree has exactly one root.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

use sha2::{Digest as _, Sha256};

use crate::ProofError;

/// A SHA-256 hash: a leaf hash, an inner node hash or a root.
pub type Hash = [u8; 32];

/// The hash of a leaf over the record bytes: `SHA-256(0x00 ‖ record)`.
pub fn leaf_hash(record: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(record);
    hasher.finalize().into()
}

/// The hash of an inner node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// A complete (perfect) subtree: the `2^level` leaves from `index · 2^level` on.
///
/// Level 0 holds the leaves themselves. Ids order by level, then index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubtreeId {
    /// The height of the subtree: 0 for a leaf, at most 63.
    pub level: u8,
    /// The position of the subtree among the subtrees of its level, from 0.
    pub index: u64,
}

impl SubtreeId {
    /// The subtree at `level` with `index`.
    pub fn new(level: u8, index: u64) -> SubtreeId {
        SubtreeId { level, index }
    }

    /// The index of its first leaf, `index · 2^level`, if that fits a `u64`.
    pub fn first_leaf(self) -> Option<u64> {
        self.index.checked_mul(width(self.level)?)
    }

    /// One past the index of its last leaf, `(index + 1) · 2^level`: the smallest tree size in
    /// which the subtree is complete, if that fits a `u64`.
    pub fn end(self) -> Option<u64> {
        self.index.checked_add(1)?.checked_mul(width(self.level)?)
    }
}

/// The number of leaves under a subtree at `level`, if it fits a `u64`.
fn width(level: u8) -> Option<u64> {
    1_u64.checked_shl(u32::from(level))
}

/// A complete subtree and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subtree {
    /// Which subtree.
    pub id: SubtreeId,
    /// Its hash: the leaf hash at level 0, the node hash above.
    pub hash: Hash,
}

/// Where proofs get their subtree hashes from: a map the store filled with the subtrees a
/// [`ProofPlan`] asked for, or a [`MemoryTree`].
pub trait SubtreeSource {
    /// The hash of the complete subtree `id`, or `None` if it is not known here.
    fn subtree(&self, id: SubtreeId) -> Option<Hash>;
}

impl<S: BuildHasher> SubtreeSource for HashMap<SubtreeId, Hash, S> {
    fn subtree(&self, id: SubtreeId) -> Option<Hash> {
        self.get(&id).copied()
    }
}

impl SubtreeSource for BTreeMap<SubtreeId, Hash> {
    fn subtree(&self, id: SubtreeId) -> Option<Hash> {
        self.get(&id).copied()
    }
}

/// The complete subtrees that make up the tree over the leaves `start..end`, largest (leftmost)
/// first; their hashes, chained from the right with [`node_hash`], give the tree's hash.
///
/// `start` must be a multiple of the largest power of two not above `end - start`, which holds
/// for every range the RFC 6962 recursion visits; `frontier_ids` is the case `start = 0`.
fn range_subtrees(start: u64, end: u64) -> Vec<SubtreeId> {
    let mut ids = Vec::new();
    let mut position = start;
    let remaining = end.saturating_sub(start);
    for level in (0..64_u8).rev() {
        if remaining >> level & 1 == 1 {
            ids.push(SubtreeId::new(level, position >> level));
            // Stays within start..=end, so it cannot overflow.
            position += 1 << level;
        }
    }
    ids
}

/// The largest power of two below `width`, for `width ≥ 2`: where the tree over `width` leaves
/// splits. (`| 1` keeps the function total for smaller widths without changing the result.)
fn split_width(width: u64) -> u64 {
    1 << ((width.saturating_sub(1) | 1).ilog2())
}

/// The complete subtrees along the right edge of the tree of `size` leaves, largest first: one
/// per set bit of `size`. Their hashes are the tree's [`Frontier`], and chained they give its root.
pub fn frontier_ids(size: u64) -> Vec<SubtreeId> {
    range_subtrees(0, size)
}

/// Chains the hashes of `ids` from the right into the hash of the tree they make up.
fn chain<S: SubtreeSource + ?Sized>(ids: &[SubtreeId], source: &S) -> Result<Hash, ProofError> {
    let fetch = |id: &SubtreeId| {
        source.subtree(*id).ok_or(ProofError::MissingSubtree {
            level: id.level,
            index: id.index,
        })
    };
    let mut ids = ids.iter().rev();
    let Some(last) = ids.next() else {
        return Ok(empty_root());
    };
    let mut hash = fetch(last)?;
    for id in ids {
        hash = node_hash(&fetch(id)?, &hash);
    }
    Ok(hash)
}

/// Which subtree hashes a proof needs and how they combine: step one of making a proof.
///
/// Each proof hash is the hash of one complete subtree, except at most one, which is a chain of
/// complete subtrees along the right edge of the newer tree (ragged because that tree is not
/// perfect). The store fetches [`ProofPlan::subtrees`] in one query and hands the result to
/// [`ProofPlan::assemble`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofPlan {
    /// One entry per proof hash, in proof order; each lists the subtrees whose chained hashes
    /// make up that proof hash.
    elements: Vec<Vec<SubtreeId>>,
}

impl ProofPlan {
    /// The plan for the inclusion proof of the leaf at `index` (from 0) in the tree of `size`
    /// leaves: RFC 6962 `PATH(index, D[size])`, at most 64 hashes.
    pub fn inclusion(index: u64, size: u64) -> Result<ProofPlan, ProofError> {
        if index >= size {
            return Err(ProofError::OutOfRange {
                reason: format!("leaf index {index} is not below the tree size {size}"),
            });
        }
        // Walk down from the root; each step records the sibling of the part holding the leaf.
        let mut siblings = Vec::new();
        let (mut start, mut end) = (0_u64, size);
        while end - start > 1 {
            let split = start + split_width(end - start);
            if index < split {
                siblings.push(range_subtrees(split, end));
                end = split;
            } else {
                siblings.push(range_subtrees(start, split));
                start = split;
            }
        }
        // The proof lists siblings from the leaf up.
        siblings.reverse();
        Ok(ProofPlan { elements: siblings })
    }

    /// The plan for the consistency proof from the tree of `old_size` leaves to the tree of
    /// `new_size` leaves: RFC 6962 `PROOF(old_size, D[new_size])`, empty when `old_size` is 0 or
    /// equals `new_size`.
    pub fn consistency(old_size: u64, new_size: u64) -> Result<ProofPlan, ProofError> {
        if old_size > new_size {
            return Err(ProofError::OutOfRange {
                reason: format!("old size {old_size} is above the new size {new_size}"),
            });
        }
        let mut elements = Vec::new();
        if old_size == 0 || old_size == new_size {
            return Ok(ProofPlan { elements });
        }
        // SUBPROOF(old_size, D[start:end], old_root_known), walked down from the root.
        // Invariant: start < old_size <= end, so a subtree that does not end at old_size has at
        // least two leaves.
        let (mut start, mut end) = (0_u64, new_size);
        let mut old_root_known = true;
        loop {
            if old_size == end {
                if !old_root_known {
                    elements.push(range_subtrees(start, end));
                }
                break;
            }
            let split = start + split_width(end - start);
            if old_size <= split {
                elements.push(range_subtrees(split, end));
                end = split;
            } else {
                elements.push(range_subtrees(start, split));
                start = split;
                old_root_known = false;
            }
        }
        elements.reverse();
        Ok(ProofPlan { elements })
    }

    /// The number of hashes in the proof.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether the proof is empty (a one-leaf tree, or equal sizes, or an empty old tree).
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Every subtree whose hash the proof needs, each once, sorted by level and index: what the
    /// store fetches.
    pub fn subtrees(&self) -> Vec<SubtreeId> {
        let unique: BTreeSet<SubtreeId> = self.elements.iter().flatten().copied().collect();
        unique.into_iter().collect()
    }

    /// Step two: the proof, from the subtree hashes in `source`.
    ///
    /// Fails with [`ProofError::MissingSubtree`] if `source` lacks one of [`ProofPlan::subtrees`].
    pub fn assemble<S: SubtreeSource + ?Sized>(&self, source: &S) -> Result<Vec<Hash>, ProofError> {
        self.elements
            .iter()
            .map(|element| chain(element, source))
            .collect()
    }
}

/// The inclusion proof of the leaf at `index` in the tree of `size` leaves, from `source`.
pub fn inclusion_proof<S: SubtreeSource + ?Sized>(
    index: u64,
    size: u64,
    source: &S,
) -> Result<Vec<Hash>, ProofError> {
    ProofPlan::inclusion(index, size)?.assemble(source)
}

/// The consistency proof from `old_size` to `new_size`, from `source`.
pub fn consistency_proof<S: SubtreeSource + ?Sized>(
    old_size: u64,
    new_size: u64,
    source: &S,
) -> Result<Vec<Hash>, ProofError> {
    ProofPlan::consistency(old_size, new_size)?.assemble(source)
}

/// The root of the tree of `size` leaves, from the subtrees [`frontier_ids`]`(size)` in `source`.
pub fn root<S: SubtreeSource + ?Sized>(size: u64, source: &S) -> Result<Hash, ProofError> {
    chain(&frontier_ids(size), source)
}

/// The root of the tree of `size` leaves from its frontier: the hashes of [`frontier_ids`]`(size)`,
/// largest subtree first.
pub fn root_from_frontier(size: u64, frontier: &[Hash]) -> Result<Hash, ProofError> {
    check_frontier(size, frontier)?;
    Ok(chain_hashes(frontier))
}

/// Chains hashes from the right: `h0, h1, h2` gives `node(h0, node(h1, h2))`; none gives the
/// empty root.
fn chain_hashes(hashes: &[Hash]) -> Hash {
    let mut hashes = hashes.iter().rev();
    let Some(last) = hashes.next() else {
        return empty_root();
    };
    hashes.fold(*last, |right, left| node_hash(left, &right))
}

fn check_frontier(size: u64, frontier: &[Hash]) -> Result<(), ProofError> {
    if usize::try_from(size.count_ones()) != Ok(frontier.len()) {
        return Err(ProofError::MalformedFrontier {
            reason: "a frontier holds one hash per set bit of the tree size",
        });
    }
    Ok(())
}

/// What an appender keeps between appends: the tree size and the hashes of the complete
/// subtrees along the right edge of the tree ([`frontier_ids`]), at most 64 of them.
///
/// [`Frontier::push`] appends a leaf and returns the subtrees it completes, which is exactly
/// what a store must persist for [`ProofPlan`] to find every hash it asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Largest subtree first, as [`frontier_ids`] lists them.
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The frontier of a tree of `size` leaves from the hashes of its [`frontier_ids`], largest
    /// first, e.g. as loaded from the store.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Frontier, ProofError> {
        check_frontier(size, &hashes)?;
        Ok(Frontier { size, hashes })
    }

    /// The number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hashes of the subtrees [`frontier_ids`]`(size)`, largest first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The root of the tree.
    pub fn root(&self) -> Hash {
        chain_hashes(&self.hashes)
    }

    /// Appends the leaf with hash `leaf`, as [`Frontier::push`] does, for a caller that keeps
    /// no subtrees (an auditor): nothing is allocated.
    ///
    /// Fails only when the tree already holds `u64::MAX` leaves.
    pub fn append(&mut self, leaf: Hash) -> Result<(), ProofError> {
        let index = self.size;
        let size = index.checked_add(1).ok_or_else(|| ProofError::OutOfRange {
            reason: "the tree is full".to_owned(),
        })?;
        let mut hash = leaf;
        // One complete left sibling on the frontier per one bit of the index, from the bottom.
        for _ in 0..index.trailing_ones() {
            let Some(left) = self.hashes.pop() else {
                return Err(ProofError::MalformedFrontier {
                    reason: "a frontier holds one hash per set bit of the tree size",
                });
            };
            hash = node_hash(&left, &hash);
        }
        self.hashes.push(hash);
        self.size = size;
        Ok(())
    }

    /// Appends the leaf with hash `leaf` and returns the subtrees it completes, from the leaf
    /// itself (level 0) upwards: one more than the number of trailing one bits of its index.
    ///
    /// Fails only when the tree already holds `u64::MAX` leaves.
    pub fn push(&mut self, leaf: Hash) -> Result<Vec<Subtree>, ProofError> {
        let index = self.size;
        let size = index.checked_add(1).ok_or_else(|| ProofError::OutOfRange {
            reason: "the tree is full".to_owned(),
        })?;
        let mut completed = vec![Subtree {
            id: SubtreeId::new(0, index),
            hash: leaf,
        }];
        let mut hash = leaf;
        let mut level = 0_u8;
        // Each one bit of the index, from the bottom, is a complete left sibling on the frontier.
        while index.checked_shr(u32::from(level)).unwrap_or(0) & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                return Err(ProofError::MalformedFrontier {
                    reason: "a frontier holds one hash per set bit of the tree size",
                });
            };
            hash = node_hash(&left, &hash);
            level += 1;
            completed.push(Subtree {
                id: SubtreeId::new(level, index >> level),
                hash,
            });
        }
        self.hashes.push(hash);
        self.size = size;
        Ok(completed)
    }
}

/// A whole tree in memory: every complete subtree hash, level by level. For tests, the auditor
/// and anyone holding the whole log; the service's store keeps the same hashes in SQL instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree {
    /// `levels[l][i]` is the hash of the complete subtree `(l, i)`; `levels[0]` the leaf hashes.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// The empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// The tree over `records`, in order.
    pub fn from_records<I>(records: I) -> MemoryTree
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut tree = MemoryTree::new();
        for record in records {
            tree.push_record(record.as_ref());
        }
        tree
    }

    /// Appends a record and returns its leaf hash.
    pub fn push_record(&mut self, record: &[u8]) -> Hash {
        let hash = leaf_hash(record);
        self.push_leaf_hash(hash);
        hash
    }

    /// Appends a leaf by its hash.
    pub fn push_leaf_hash(&mut self, leaf: Hash) {
        // Built independently of `Frontier::push`, so the tests can hold one against the other.
        let mut level = 0;
        let mut hash = leaf;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                return;
            };
            row.push(hash);
            let [.., left, right] = row.as_slice() else {
                return;
            };
            if row.len() % 2 == 1 {
                return;
            }
            hash = node_hash(left, right);
            level += 1;
        }
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        let leaves = self.levels.first().map_or(0, Vec::len);
        // A Vec never holds more than isize::MAX elements.
        u64::try_from(leaves).unwrap_or(u64::MAX)
    }

    /// The hash of the leaf at `index`, if there is one.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        self.subtree(SubtreeId::new(0, index))
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.root_at(self.size()).unwrap_or_else(|_| empty_root())
    }

    /// The root of the tree over the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        root(size, self)
    }

    /// The inclusion proof of the leaf at `index` in the tree over the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        inclusion_proof(index, size, self)
    }

    /// The consistency proof from the first `old_size` to the first `new_size` leaves.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(new_size)?;
        consistency_proof(old_size, new_size, self)
    }

    /// The frontier of the tree over the first `size` leaves.
    pub fn frontier(&self, size: u64) -> Result<Frontier, ProofError> {
        self.check_size(size)?;
        let hashes = frontier_ids(size)
            .into_iter()
            .map(|id| {
                self.subtree(id).ok_or(ProofError::MissingSubtree {
                    level: id.level,
                    index: id.index,
                })
            })
            .collect::<Result<Vec<Hash>, ProofError>>()?;
        Frontier::from_parts(size, hashes)
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.size() {
            return Err(ProofError::OutOfRange {
                reason: format!("tree size {size} is above the {} leaves held", self.size()),
            });
        }
        Ok(())
    }
}

impl SubtreeSource for MemoryTree {
    fn subtree(&self, id: SubtreeId) -> Option<Hash> {
        let row = self.levels.get(usize::from(id.level))?;
        row.get(usize::try_from(id.index).ok()?).copied()
    }
}

/// Checks that `proof` proves the leaf with hash `leaf` at `index` (from 0) in the tree of `size`
/// leaves with root `root` (c2sp.org/merkle-tree, "Inclusion proofs", "Verification").
///
/// The proof binds the leaf to the root; it does not by itself bind the size to the root (a
/// proof can also fit a smaller tree with the same shape on the leaf's path), so `size` and
/// `root` must come from the same signed checkpoint.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let fail = |reason| Err(ProofError::BadInclusionProof { reason });
    if index >= size {
        return fail("the leaf index is not below the tree size");
    }
    let (mut first, mut second) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in proof {
        if second == 0 {
            return fail("the proof has too many hashes");
        }
        if first & 1 == 1 || first == second {
            hash = node_hash(sibling, &hash);
            while first & 1 == 0 && first != 0 {
                first >>= 1;
                second >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        first >>= 1;
        second >>= 1;
    }
    if second != 0 {
        return fail("the proof has too few hashes");
    }
    if hash != *root {
        return fail("the proof does not lead to the root");
    }
    Ok(())
}

/// Checks that `proof` proves the tree of `old_size` leaves with root `old_root` a prefix of the
/// tree of `new_size` leaves with root `new_root` (c2sp.org/merkle-tree, "Consistency proofs",
/// "Verification").
///
/// One rule is stricter than the specification: an empty old tree has exactly one root,
/// [`empty_root`], so `old_root` must be it (and the proof empty); C2SP accepts any root there.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let fail = |reason| Err(ProofError::BadConsistencyProof { reason });
    if old_size > new_size {
        return fail("the old tree is larger than the new one");
    }
    if old_size == 0 && *old_root != empty_root() {
        return fail("the old root is not the root of the empty tree");
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return fail("the proof must be empty");
        }
        if old_size == new_size && old_root != new_root {
            return fail("equal sizes with different roots");
        }
        return Ok(());
    }
    // A power-of-two old tree is a complete subtree of the new one; its root opens the proof.
    let mut hashes: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        hashes.push(old_root);
    }
    hashes.extend(proof);
    let [start, rest @ ..] = hashes.as_slice() else {
        return fail("the proof is empty");
    };
    let (mut first, mut second) = (old_size - 1, new_size - 1);
    while first & 1 == 1 {
        first >>= 1;
        second >>= 1;
    }
    let (mut old_hash, mut new_hash) = (**start, **start);
    for hash in rest {
        if second == 0 {
            return fail("the proof has too many hashes");
        }
        if first & 1 == 1 || first == second {
            old_hash = node_hash(hash, &old_hash);
            new_hash = node_hash(hash, &new_hash);
            while first & 1 == 0 && first != 0 {
                first >>= 1;
                second >>= 1;
            }
        } else {
            new_hash = node_hash(&new_hash, hash);
        }
        first >>= 1;
        second >>= 1;
    }
    if second != 0 {
        return fail("the proof has too few hashes");
    }
    if old_hash != *old_root {
        return fail("the proof does not lead to the old root");
    }
    if new_hash != *new_root {
        return fail("the proof does not lead to the new root");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{
        Frontier, Hash, MemoryTree, ProofPlan, SubtreeId, empty_root, frontier_ids, leaf_hash,
        node_hash, root_from_frontier, split_width, verify_consistency, verify_inclusion,
    };

    /// RFC 6962 §2.1 word for word, over leaf hashes: MTH.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves {
            [] => empty_root(),
            [leaf] => *leaf,
            _ => {
                let split = reference_split(leaves.len());
                node_hash(
                    &reference_root(&leaves[..split]),
                    &reference_root(&leaves[split..]),
                )
            }
        }
    }

    fn reference_split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// RFC 6962 §2.1.1 PATH.
    fn reference_path(index: usize, leaves: &[Hash]) -> Vec<Hash> {
        if leaves.len() <= 1 {
            return Vec::new();
        }
        let split = reference_split(leaves.len());
        if index < split {
            let mut path = reference_path(index, &leaves[..split]);
            path.push(reference_root(&leaves[split..]));
            path
        } else {
            let mut path = reference_path(index - split, &leaves[split..]);
            path.push(reference_root(&leaves[..split]));
            path
        }
    }

    /// RFC 6962 §2.1.2 SUBPROOF.
    fn reference_subproof(old: usize, leaves: &[Hash], old_root_known: bool) -> Vec<Hash> {
        if old == leaves.len() {
            return if old_root_known {
                Vec::new()
            } else {
                vec![reference_root(leaves)]
            };
        }
        let split = reference_split(leaves.len());
        if old <= split {
            let mut proof = reference_subproof(old, &leaves[..split], old_root_known);
            proof.push(reference_root(&leaves[split..]));
            proof
        } else {
            let mut proof = reference_subproof(old - split, &leaves[split..], false);
            proof.push(reference_root(&leaves[..split]));
            proof
        }
    }

    fn leaves(count: usize) -> Vec<Hash> {
        (0..count)
            .map(|index| leaf_hash(index.to_string().as_bytes()))
            .collect()
    }

    #[test]
    fn hashes_are_domain_separated() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 6962 leaf hash of the empty record.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_ne!(node_hash(&[0; 32], &[0; 32]), leaf_hash(&[0; 64]));
    }

    #[test]
    fn split_width_is_the_largest_power_of_two_below() {
        for (width, split) in [(2, 1), (3, 2), (4, 2), (5, 4), (7, 4), (8, 4), (9, 8)] {
            assert_eq!(split_width(width), split, "{width}");
        }
        assert_eq!(split_width(u64::MAX), 1 << 63);
        // Total below 2, though never called there.
        assert_eq!(split_width(0), 1);
        assert_eq!(split_width(1), 1);
    }

    #[test]
    fn subtree_ids_know_their_leaves() {
        assert_eq!(SubtreeId::new(0, 5).first_leaf(), Some(5));
        assert_eq!(SubtreeId::new(3, 2).first_leaf(), Some(16));
        assert_eq!(SubtreeId::new(3, 2).end(), Some(24));
        assert_eq!(SubtreeId::new(63, 1).first_leaf(), Some(1 << 63));
        assert_eq!(SubtreeId::new(63, 1).end(), None);
        assert_eq!(SubtreeId::new(64, 0).first_leaf(), None);
        assert_eq!(
            frontier_ids(13),
            [
                SubtreeId::new(3, 0),
                SubtreeId::new(2, 2),
                SubtreeId::new(0, 12)
            ]
        );
        assert_eq!(frontier_ids(0), []);
        assert_eq!(frontier_ids(u64::MAX).len(), 64);
    }

    #[test]
    fn memory_tree_matches_the_rfc_definitions_for_small_trees() {
        let all = leaves(70);
        let tree = MemoryTree::from_records((0..70).map(|index: usize| index.to_string()));
        for size in 0..=all.len() {
            let size_u64 = u64::try_from(size).unwrap();
            let prefix = &all[..size];
            let root = reference_root(prefix);
            assert_eq!(tree.root_at(size_u64), Ok(root), "root {size}");
            for index in 0..size {
                let proof = tree.inclusion_proof(index.try_into().unwrap(), size_u64);
                assert_eq!(proof, Ok(reference_path(index, prefix)), "{index} {size}");
            }
            for old in 1..=size {
                let proof = tree.consistency_proof(old.try_into().unwrap(), size_u64);
                assert_eq!(
                    proof,
                    Ok(reference_subproof(old, prefix, true)),
                    "{old} {size}"
                );
            }
        }
    }

    #[test]
    fn frontier_push_completes_the_subtrees_of_trailing_ones() {
        let mut frontier = Frontier::new();
        let mut store = HashMap::new();
        let all = leaves(40);
        for (index, leaf) in all.iter().enumerate() {
            let completed = frontier.push(*leaf).unwrap();
            let index = u64::try_from(index).unwrap();
            assert_eq!(
                completed.len(),
                1 + usize::try_from(index.trailing_ones()).unwrap()
            );
            for subtree in completed {
                assert_eq!(subtree.id.end(), Some(index + 1));
                assert!(store.insert(subtree.id, subtree.hash).is_none());
            }
            let size = index + 1;
            let prefix = &all[..usize::try_from(size).unwrap()];
            assert_eq!(frontier.size(), size);
            assert_eq!(frontier.root(), reference_root(prefix));
            assert_eq!(
                root_from_frontier(size, frontier.hashes()),
                Ok(reference_root(prefix))
            );
            assert_eq!(super::root(size, &store), Ok(reference_root(prefix)));
        }
    }

    #[test]
    fn frontier_append_is_push_without_the_subtrees() {
        let mut pushed = Frontier::new();
        let mut appended = Frontier::new();
        for leaf in leaves(70) {
            pushed.push(leaf).unwrap();
            appended.append(leaf).unwrap();
            assert_eq!(appended, pushed);
        }
        let mut full = Frontier::from_parts(u64::MAX, vec![[0; 32]; 64]).unwrap();
        assert_eq!(
            full.append([1; 32]).map_err(|error| error.code()),
            Err("out_of_range")
        );
    }

    #[test]
    fn frontier_refuses_the_wrong_number_of_hashes() {
        assert_eq!(
            Frontier::from_parts(3, vec![[0; 32]]).map_err(|e| e.code()),
            Err("malformed_frontier")
        );
        assert_eq!(
            root_from_frontier(0, &[[0; 32]]).map_err(|e| e.code()),
            Err("malformed_frontier")
        );
        assert_eq!(root_from_frontier(0, &[]), Ok(empty_root()));
        let mut full = Frontier::from_parts(u64::MAX, vec![[0; 32]; 64]).unwrap();
        assert_eq!(
            full.push([1; 32]).map_err(|e| e.code()),
            Err("out_of_range")
        );
        // The largest tree that can still grow; its last leaf completes only itself.
        let mut almost = Frontier::from_parts(u64::MAX - 1, vec![[0; 32]; 63]).unwrap();
        let completed = almost.push([1; 32]).unwrap();
        assert_eq!(completed.len(), 1);
        assert_eq!(almost.size(), u64::MAX);
        // 63 trailing ones: one push completes 64 subtrees, up to level 63.
        let mut odd = Frontier::from_parts((1 << 63) - 1, vec![[0; 32]; 63]).unwrap();
        let completed = odd.push([1; 32]).unwrap();
        assert_eq!(completed.last().map(|s| s.id), Some(SubtreeId::new(63, 0)));
        assert_eq!(odd.hashes().len(), 1);
    }

    #[test]
    fn plans_refuse_impossible_requests_and_missing_hashes() {
        for (index, size) in [(0, 0), (1, 1), (7, 7), (u64::MAX, u64::MAX)] {
            assert_eq!(
                ProofPlan::inclusion(index, size).map_err(|e| e.code()),
                Err("out_of_range")
            );
        }
        assert_eq!(
            ProofPlan::consistency(8, 7).map_err(|e| e.code()),
            Err("out_of_range")
        );
        assert!(ProofPlan::consistency(0, 7).unwrap().is_empty());
        assert!(ProofPlan::consistency(7, 7).unwrap().is_empty());
        let plan = ProofPlan::inclusion(0, 7).unwrap();
        assert_eq!(plan.len(), 3);
        assert_eq!(
            plan.subtrees(),
            [
                SubtreeId::new(0, 1),
                SubtreeId::new(0, 6),
                SubtreeId::new(1, 1),
                SubtreeId::new(1, 2)
            ]
        );
        let empty: HashMap<SubtreeId, Hash> = HashMap::new();
        assert_eq!(
            plan.assemble(&empty).map_err(|e| e.code()),
            Err("missing_subtree")
        );
        // Huge trees plan without overflow.
        assert_eq!(ProofPlan::inclusion(0, u64::MAX).unwrap().len(), 64);
        assert_eq!(
            ProofPlan::inclusion(u64::MAX - 1, u64::MAX).unwrap().len(),
            63
        );
        let plan = ProofPlan::consistency(u64::MAX - 1, u64::MAX).unwrap();
        assert!(plan.len() <= 65);
        let tree = MemoryTree::from_records([b"a"]);
        assert_eq!(
            tree.inclusion_proof(0, 2).map_err(|e| e.code()),
            Err("out_of_range")
        );
    }

    #[test]
    fn verifiers_refuse_degenerate_sizes() {
        let leaf = leaf_hash(b"x");
        let inclusion = |index, size, proof: &[Hash], root: &Hash| {
            verify_inclusion(&leaf, index, size, proof, root).map_err(|e| e.code())
        };
        assert_eq!(inclusion(0, 1, &[], &leaf), Ok(()));
        assert_eq!(inclusion(0, 0, &[], &leaf), Err("bad_inclusion_proof"));
        assert_eq!(inclusion(1, 1, &[], &leaf), Err("bad_inclusion_proof"));
        assert_eq!(inclusion(0, 1, &[leaf], &leaf), Err("bad_inclusion_proof"));
        assert_eq!(
            inclusion(u64::MAX - 1, u64::MAX, &[], &leaf),
            Err("bad_inclusion_proof")
        );

        let empty = empty_root();
        let consistency = |old, new, old_root: &Hash, new_root: &Hash, proof: &[Hash]| {
            verify_consistency(old, new, old_root, new_root, proof).map_err(|e| e.code())
        };
        assert_eq!(consistency(0, 0, &empty, &empty, &[]), Ok(()));
        assert_eq!(consistency(0, 5, &empty, &leaf, &[]), Ok(()));
        assert_eq!(consistency(3, 3, &leaf, &leaf, &[]), Ok(()));
        let bad = Err("bad_consistency_proof");
        assert_eq!(consistency(0, 0, &leaf, &leaf, &[]), bad);
        assert_eq!(consistency(0, 5, &leaf, &leaf, &[]), bad);
        assert_eq!(consistency(0, 5, &empty, &leaf, &[leaf]), bad);
        assert_eq!(consistency(3, 3, &leaf, &empty, &[]), bad);
        assert_eq!(consistency(3, 3, &leaf, &leaf, &[leaf]), bad);
        assert_eq!(consistency(4, 3, &leaf, &leaf, &[]), bad);
        assert_eq!(consistency(1, 2, &leaf, &leaf, &[]), bad);
        assert_eq!(consistency(3, u64::MAX, &leaf, &leaf, &[]), bad);
        assert_eq!(
            consistency(u64::MAX - 1, u64::MAX, &leaf, &leaf, &[leaf]),
            bad
        );
    }
}
