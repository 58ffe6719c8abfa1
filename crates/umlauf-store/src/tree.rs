//! The log's Merkle tree (RFC 6962 over the stored record bytes) and its signed checkpoints.
//!
//! The store keeps the hash of every complete, aligned subtree of four or more leaves in
//! `merkle_subtrees`, written in the append's transaction as the appended leaves complete them
//! ([`umlauf_proof::merkle::Frontier::push`]); the leaves themselves (level 0) are the records'
//! `leaf_hash` in `log_records`, not stored twice, and a pair of leaves (level 1) is hashed
//! from them when asked for. With a [`CheckpointSigner`], every committed
//! batch also stores the signed checkpoint for the tree size after it. Roots and proofs are
//! chained from a handful of stored subtrees ([`umlauf_proof::merkle::ProofPlan`]), never by
//! reading the log.
//!
//! The writer keeps the tree's frontier (the subtrees along its right edge) between batches, as
//! it stands at the head. When a batch finds the head elsewhere (another store on the same
//! database appended, or a commit's outcome was unknown), the frontier is loaded again from the
//! stored subtrees at the head, which that store's batch wrote in the same transaction.

use std::collections::HashMap;
use std::fmt;

use umlauf_proof::checkpoint::{self, Checkpoint};
use umlauf_proof::keys::SigningKey;
use umlauf_proof::merkle::{self, Frontier, Hash, Subtree, SubtreeId, frontier_ids};
use umlauf_proof::note::NoteVerifier;

use crate::append::StoredRecord;
use crate::error::StoreError;

/// Signs the store's checkpoints: the log's origin (its name in the checkpoint and the key's
/// name in the note) and the log key.
#[derive(Clone)]
pub struct CheckpointSigner {
    origin: String,
    key: SigningKey,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A signer for the log named `origin` with the log key `key`; the note's key name is the
    /// origin. The origin is checked when the store opens.
    pub fn new(origin: String, key: SigningKey) -> Self {
        Self { origin, key }
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier of this signer's notes.
    pub fn verifier(&self) -> Result<NoteVerifier, StoreError> {
        NoteVerifier::new(&self.origin, self.key.verifying_key()).map_err(|error| {
            StoreError::InvalidConfig(format!("log origin {:?}: {error}", self.origin))
        })
    }

    /// The signed checkpoint note for the tree of `size` leaves with `root`.
    pub(crate) fn sign(&self, size: u64, root: Hash) -> Result<String, StoreError> {
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
        };
        checkpoint::sign(&checkpoint, &self.origin, &self.key).map_err(|error| {
            StoreError::InvalidConfig(format!("log origin {:?}: {error}", self.origin))
        })
    }

    /// Checks the origin and the key by signing a checkpoint of the empty tree.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        self.verifier()?;
        self.sign(0, merkle::empty_root()).map(drop)
    }

    /// Checks a stored checkpoint: signed by this signer, for `size`, with the root the stored
    /// subtrees give. A store that finds otherwise must not sign on.
    pub(crate) fn check_stored(&self, size: u64, note: &str, root: Hash) -> Result<(), StoreError> {
        let inconsistent = |detail: String| {
            StoreError::InconsistentTree(format!(
                "the stored checkpoint for size {size} {detail}; the store refuses to sign on"
            ))
        };
        let verified = checkpoint::verify(note, &self.verifier()?)
            .map_err(|error| inconsistent(format!("does not verify with the log key: {error}")))?;
        if verified.origin != self.origin {
            return Err(inconsistent(format!(
                "names the origin {:?}, not {:?}",
                verified.origin, self.origin
            )));
        }
        if verified.size != size {
            return Err(inconsistent(format!("says size {}", verified.size)));
        }
        if verified.root != root {
            return Err(inconsistent(
                "has another root than the tree recomputed from the stored subtrees".into(),
            ));
        }
        Ok(())
    }
}

/// At open, under the head lock: checks the newest stored checkpoint (`latest`: its size and
/// note) against the tree the stored subtrees give (`load` reads them), and returns the note to
/// store for the head if no stored checkpoint covers it. A checkpoint beyond the log, or one that
/// disagrees with the stored tree, stops the store from signing on.
pub(crate) async fn head_checkpoint_at_open(
    signer: &CheckpointSigner,
    head: u64,
    frontier: &Frontier,
    latest: Option<(i64, String)>,
    mut load: impl AsyncFnMut(&[SubtreeId]) -> Result<HashMap<SubtreeId, Hash>, StoreError>,
) -> Result<Option<String>, StoreError> {
    let mut covered = 0;
    if let Some((size, note)) = latest {
        let size = crate::columns::to_u64(size)?;
        if size > head {
            return Err(StoreError::InconsistentTree(format!(
                "a checkpoint for size {size} is stored, the log holds {head} records"
            )));
        }
        let found = load(&frontier_ids(size)).await?;
        let root = merkle::root(size, &found).map_err(proof_error)?;
        signer.check_stored(size, &note, root)?;
        covered = size;
    }
    if covered < head {
        return signer.sign(head, frontier.root()).map(Some);
    }
    Ok(None)
}

/// What the writer knows of the tree between batches, and how it signs.
#[derive(Debug, Default)]
pub(crate) struct TreeState {
    /// The frontier at the head as this writer last saw it; `None` until loaded.
    pub(crate) frontier: Option<Frontier>,
    pub(crate) signer: Option<CheckpointSigner>,
}

impl TreeState {
    /// Whether the frontier must be loaded before a batch planned against `head`.
    pub(crate) fn needs_frontier(&self, head: u64) -> bool {
        self.frontier.as_ref().map(Frontier::size) != Some(head)
    }
}

/// What one batch adds to the tree.
#[derive(Debug)]
pub(crate) struct Growth {
    /// The frontier after the batch.
    pub(crate) frontier: Frontier,
    /// The subtrees the batch's leaves complete, to store.
    pub(crate) subtrees: Vec<Subtree>,
    /// The tree size after the batch.
    pub(crate) size: u64,
    /// The signed checkpoint for `size`, with a signer.
    pub(crate) checkpoint: Option<String>,
}

/// Pushes the leaves of `records` (in position order, the first right after the frontier) onto
/// a copy of `frontier`, and signs the checkpoint for the new size.
pub(crate) fn grow(
    frontier: &Frontier,
    records: &[StoredRecord],
    signer: Option<&CheckpointSigner>,
) -> Result<Growth, StoreError> {
    let mut frontier = frontier.clone();
    let mut subtrees = Vec::with_capacity(records.len());
    for stored in records {
        if stored.position() != frontier.size() + 1 {
            return Err(StoreError::InconsistentTree(format!(
                "the tree holds {} leaves, the next record is at position {}",
                frontier.size(),
                stored.position()
            )));
        }
        push_leaf(&mut frontier, stored.leaf_hash, &mut subtrees)?;
    }
    let size = frontier.size();
    let checkpoint = signer
        .map(|signer| signer.sign(size, frontier.root()))
        .transpose()?;
    Ok(Growth {
        frontier,
        subtrees,
        size,
        checkpoint,
    })
}

/// The lowest level `merkle_subtrees` holds. A subtree below it covers at most
/// 2^(`STORED_FROM_LEVEL` - 1) leaves and is hashed from their records' `leaf_hash` in
/// `log_records` when asked for: the leaves are not stored twice, and the level-1 subtrees,
/// half a row per leaf, not at all.
pub(crate) const STORED_FROM_LEVEL: u8 = 2;

/// Pushes one leaf onto `frontier` and adds the subtrees it completes to `stored`, those at
/// [`STORED_FROM_LEVEL`] and above.
pub(crate) fn push_leaf(
    frontier: &mut Frontier,
    leaf: Hash,
    stored: &mut Vec<Subtree>,
) -> Result<(), StoreError> {
    let completed = frontier
        .push(leaf)
        .map_err(|error| StoreError::InconsistentTree(error.to_string()))?;
    stored.extend(
        completed
            .into_iter()
            .filter(|subtree| subtree.id.level >= STORED_FROM_LEVEL),
    );
    Ok(())
}

/// The tree size backfilling starts from, given how many subtrees at [`STORED_FROM_LEVEL`] are
/// stored: their leaves are in the tree, and so is every higher subtree they complete (stored
/// in the same transaction). The leaves after them complete no stored subtree, so they are
/// pushed again.
pub(crate) fn stored_size(count: i64) -> Result<u64, StoreError> {
    u64::try_from(count)
        .ok()
        .and_then(|count| count.checked_mul(1 << STORED_FROM_LEVEL))
        .ok_or_else(|| {
            StoreError::InconsistentTree(format!(
                "{count} subtrees at level {STORED_FROM_LEVEL} are stored"
            ))
        })
}

/// The positions of the records whose leaf hashes the subtrees among `ids` below
/// [`STORED_FROM_LEVEL`] are hashed from (leaf `i` is the record at position `i + 1`), and the
/// other ids (read from `merkle_subtrees`). [`hash_low_subtrees`] completes the lookup.
pub(crate) fn split_leaves(ids: &[SubtreeId]) -> Result<(Vec<i64>, Vec<SubtreeId>), StoreError> {
    let mut positions = Vec::new();
    let mut inner = Vec::new();
    for id in ids {
        if id.level >= STORED_FROM_LEVEL {
            inner.push(*id);
            continue;
        }
        let beyond = || StoreError::OutOfRange(format!("subtree {} is beyond the log", id.index));
        let first = id.first_leaf().ok_or_else(beyond)?;
        let end = id.end().ok_or_else(beyond)?;
        for leaf in first..end {
            let position = leaf
                .checked_add(1)
                .and_then(|position| i64::try_from(position).ok())
                .ok_or_else(beyond)?;
            positions.push(position);
        }
    }
    positions.sort_unstable();
    positions.dedup();
    Ok((positions, inner))
}

/// Adds to `found` (which holds the leaves [`split_leaves`] named) the subtrees among `ids`
/// between level 1 and [`STORED_FROM_LEVEL`], hashed from their leaves; one whose leaves are
/// not all there (beyond the log) stays missing.
pub(crate) fn hash_low_subtrees(ids: &[SubtreeId], found: &mut HashMap<SubtreeId, Hash>) {
    fn hash(id: SubtreeId, found: &HashMap<SubtreeId, Hash>) -> Option<Hash> {
        if id.level == 0 {
            return found.get(&id).copied();
        }
        let left = SubtreeId::new(id.level - 1, id.index.checked_mul(2)?);
        let right = SubtreeId::new(id.level - 1, left.index.checked_add(1)?);
        Some(merkle::node_hash(&hash(left, found)?, &hash(right, found)?))
    }
    for id in ids {
        if id.level > 0
            && id.level < STORED_FROM_LEVEL
            && let Some(hash) = hash(*id, found)
        {
            found.insert(*id, hash);
        }
    }
}

/// The frontier of the tree of `size` leaves from the stored subtrees `found` (which must hold
/// every one of [`frontier_ids`]`(size)`).
pub(crate) fn frontier_from(
    size: u64,
    found: &HashMap<SubtreeId, Hash>,
) -> Result<Frontier, StoreError> {
    let hashes = frontier_ids(size)
        .into_iter()
        .map(|id| found.get(&id).copied().ok_or_else(|| missing(id, size)))
        .collect::<Result<Vec<_>, _>>()?;
    Frontier::from_parts(size, hashes)
        .map_err(|error| StoreError::InconsistentTree(error.to_string()))
}

/// The error for a subtree the tree of `size` leaves needs but the store lacks.
pub(crate) fn missing(id: SubtreeId, size: u64) -> StoreError {
    StoreError::InconsistentTree(format!(
        "subtree {} at level {} of the tree of size {size} is not stored",
        id.index, id.level
    ))
}

/// Maps a proof error of a request the store checked: a missing subtree means the stored tree
/// is incomplete.
pub(crate) fn proof_error(error: umlauf_proof::ProofError) -> StoreError {
    match error {
        umlauf_proof::ProofError::OutOfRange { reason } => StoreError::OutOfRange(reason),
        other => StoreError::InconsistentTree(other.to_string()),
    }
}

/// A subtree's level and index as columns.
pub(crate) fn subtree_columns(id: SubtreeId) -> Result<(i16, i64), StoreError> {
    let index = i64::try_from(id.index).map_err(|_| {
        StoreError::OutOfRange(format!("subtree index {} is beyond the database", id.index))
    })?;
    Ok((i16::from(id.level), index))
}

/// A subtree from its columns.
pub(crate) fn subtree_of(
    level: i64,
    index: i64,
    hash: &[u8],
) -> Result<(SubtreeId, Hash), StoreError> {
    let corrupt = || {
        StoreError::InconsistentTree(format!(
            "stored subtree {index} at level {level} is malformed"
        ))
    };
    let level = u8::try_from(level).map_err(|_| corrupt())?;
    let index = u64::try_from(index).map_err(|_| corrupt())?;
    let hash = Hash::try_from(hash).map_err(|_| corrupt())?;
    Ok((SubtreeId::new(level, index), hash))
}

/// The leaf hashes of one page of a backfill: rows of `(position, leaf_hash)` that continue the
/// tree of `size` leaves without a gap, towards the head.
pub(crate) fn backfill_leaves(
    size: u64,
    head: u64,
    rows: &[(i64, Vec<u8>)],
) -> Result<Vec<Hash>, StoreError> {
    if rows.is_empty() {
        return Err(StoreError::CorruptRecord {
            position: size + 1,
            detail: format!("missing: the log's head is at {head}"),
        });
    }
    rows.iter()
        .zip(size + 1..)
        .map(|((position, hash), expected)| {
            if u64::try_from(*position).ok() != Some(expected) {
                return Err(StoreError::CorruptRecord {
                    position: expected,
                    detail: "missing: the log has a gap".into(),
                });
            }
            Hash::try_from(hash.as_slice()).map_err(|_| StoreError::CorruptRecord {
                position: expected,
                detail: format!("a leaf hash of {} bytes", hash.len()),
            })
        })
        .collect()
}
