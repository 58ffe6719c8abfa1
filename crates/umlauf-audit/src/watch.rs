//! Watching a published log: every new signed checkpoint must be the log key's, and its root
//! must be the Merkle root of the published log at its size.
//!
//! A [`Watcher`] keeps only a Merkle frontier (O(log n) hashes) and the roots of the last few
//! checkpoints it checked, so its memory stays flat however long it runs. Checkpoints arrive in
//! ascending size (as the relay publishes them); for each, the caller pushes the log's records up
//! to its size ([`Watcher::push_record`]) and then checks it ([`Watcher::check`]). A root equal
//! to the tree of the published log at that size also proves the checkpoint consistent with
//! every earlier one: they are all prefixes of the same log.
//!
//! Every difference is an [`Alarm`]: a checkpoint not signed by the log key or of another log, a
//! root that is not the published log's (a fork, or a rewritten log), two checkpoints of one
//! size with different roots, a log stream that skips or repeats a position.

use std::collections::BTreeMap;

use umlauf_proof::checkpoint::{self, Checkpoint};
use umlauf_proof::merkle::{Frontier, Hash, empty_root, leaf_hash};
use umlauf_proof::note::NoteVerifier;

/// How many checked roots are remembered, to compare a checkpoint that arrives again or late.
const REMEMBERED: usize = 1024;

/// A fork or a rewrite, or a checkpoint that is not the log's: why the watch stops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Alarm {
    /// A checkpoint not signed by the log key, malformed, or naming another log.
    #[error("a checkpoint on the stream is not the log's: {detail}")]
    NotSigned {
        /// Why it is refused.
        detail: String,
    },
    /// The signed root is not the root of the published log at that size.
    #[error(
        "FORK OR REWRITE: the signed checkpoint of size {size} has root {checkpoint_root}, the \
         published log's first {size} records hash to {log_root}"
    )]
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
        /// The signed root, hex.
        checkpoint_root: String,
        /// The published log's root at that size, hex.
        log_root: String,
    },
    /// Two signed checkpoints of one size with different roots.
    #[error(
        "FORK: two signed checkpoints of size {size}: root {first_root}, then root {second_root}"
    )]
    TwoRoots {
        /// The size.
        size: u64,
        /// The root checked first, hex.
        first_root: String,
        /// The other, hex.
        second_root: String,
    },
    /// A checkpoint of a size checked too long ago to compare, arriving after larger ones.
    #[error(
        "a signed checkpoint of size {size} arrived after one of size {newest}: the checkpoint \
         stream went back"
    )]
    WentBack {
        /// Its size.
        size: u64,
        /// The largest size checked before.
        newest: u64,
    },
    /// The log stream does not hold the positions in order.
    #[error("the log stream holds sequence {found} where position {expected} belongs")]
    LogOutOfOrder {
        /// The next position.
        expected: u64,
        /// What the stream holds there.
        found: u64,
    },
    /// The log stream ended (at the time asked) before a checkpoint's size.
    #[error("a signed checkpoint covers {size} records, the published log holds only {published}")]
    LogShort {
        /// The checkpoint's size.
        size: u64,
        /// The records published.
        published: u64,
    },
}

impl Alarm {
    /// A stable snake_case code of the alarm's kind.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotSigned { .. } => "checkpoint_not_signed",
            Self::RootMismatch { .. } => "checkpoint_root_mismatch",
            Self::TwoRoots { .. } => "two_roots",
            Self::WentBack { .. } => "checkpoint_went_back",
            Self::LogOutOfOrder { .. } => "log_out_of_order",
            Self::LogShort { .. } => "log_short",
        }
    }
}

/// Follows the checkpoints and the log of one log key; see the module documentation.
#[derive(Debug)]
pub struct Watcher {
    log_key: NoteVerifier,
    frontier: Frontier,
    /// The roots of the last checkpoints checked, by size.
    recent: BTreeMap<u64, Hash>,
    checked: u64,
}

/// What checking a checkpoint found, when it raised no alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The log was pushed up to its size and its root matched.
    Matched,
    /// A checkpoint of a size already checked, with the same root.
    Repeated,
}

impl Watcher {
    /// A watcher trusting `log_key`.
    pub fn new(log_key: NoteVerifier) -> Self {
        Self {
            log_key,
            frontier: Frontier::new(),
            recent: BTreeMap::new(),
            checked: 0,
        }
    }

    /// Records pushed so far: the published log's size as far as it was read.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Checkpoints whose root matched.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Verifies a checkpoint note's signature and origin; the caller then pushes the log up to
    /// its size and calls [`Watcher::check`].
    pub fn open(&self, note: &str) -> Result<Checkpoint, Alarm> {
        let checkpoint =
            checkpoint::verify(note, &self.log_key).map_err(|error| Alarm::NotSigned {
                detail: error.to_string(),
            })?;
        if checkpoint.origin != self.log_key.name() {
            return Err(Alarm::NotSigned {
                detail: format!(
                    "it names the log {}, the log key is {}",
                    checkpoint.origin,
                    self.log_key.name()
                ),
            });
        }
        Ok(checkpoint)
    }

    /// Pushes the next record of the log stream, which the stream holds at `sequence`.
    pub fn push_record(&mut self, sequence: u64, record: &[u8]) -> Result<(), Alarm> {
        let expected = self.frontier.size() + 1;
        if sequence != expected {
            return Err(Alarm::LogOutOfOrder {
                expected,
                found: sequence,
            });
        }
        // A frontier overflows only past 2^64 leaves.
        let _ = self.frontier.push(leaf_hash(record));
        Ok(())
    }

    /// Checks an opened checkpoint: against the log pushed up to exactly its size, or, for a
    /// size already passed, against the root remembered for it.
    pub fn check(&mut self, checkpoint: &Checkpoint) -> Result<Checked, Alarm> {
        let size = checkpoint.size;
        if size < self.frontier.size() || self.recent.contains_key(&size) {
            return match self.recent.get(&size) {
                Some(root) if *root == checkpoint.root => Ok(Checked::Repeated),
                Some(root) => Err(Alarm::TwoRoots {
                    size,
                    first_root: hex::encode(root),
                    second_root: hex::encode(checkpoint.root),
                }),
                None => Err(Alarm::WentBack {
                    size,
                    newest: self.frontier.size(),
                }),
            };
        }
        if size > self.frontier.size() {
            return Err(Alarm::LogShort {
                size,
                published: self.frontier.size(),
            });
        }
        let root = if size == 0 {
            empty_root()
        } else {
            self.frontier.root()
        };
        if root != checkpoint.root {
            return Err(Alarm::RootMismatch {
                size,
                checkpoint_root: hex::encode(checkpoint.root),
                log_root: hex::encode(root),
            });
        }
        self.recent.insert(size, root);
        while self.recent.len() > REMEMBERED {
            self.recent.pop_first();
        }
        self.checked += 1;
        Ok(Checked::Matched)
    }
}
