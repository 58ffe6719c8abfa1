//! The event store of umlauf: the append-only log of every accepted command's events, and the
//! read models folded from it, on SQLite (embedded, one file in WAL mode) or PostgreSQL.
//!
//! - [`Store::append`] appends a command's events to one stream at an expected version, with the
//!   read models after them, in one transaction. Positions are 1, 2, 3, … without gaps; each
//!   record is serialised once ([`umlauf_domain::Record::to_bytes`]) and stored as those bytes
//!   with its Merkle leaf hash ([`leaf_hash`]). A command id is accepted once: the same command
//!   again returns the first result.
//! - Concurrent appends share transactions (group commit): each store has one writer thread that
//!   commits whatever appends are waiting as one transaction, judging different callers' appends
//!   in the order of their recording times and each caller's own in its order, so
//!   throughput grows with concurrency instead of being capped by one fsync per command. On
//!   PostgreSQL a batch is normally one statement and one round trip; see the `writer`, `batch`
//!   and `postgres` modules.
//! - [`Store::read_stream`], [`Store::read_from`] and [`Store::head`] read the log back, byte for
//!   byte; the read-model queries answer from tables written in the append's transaction, and
//!   [`Store::rebuild_read_models`] recomputes them from the log.
//! - An append may depend on other streams' versions ([`Append::depends_on`]) and on the head
//!   ([`Append::expected_head`]); both are judged like the expected version, in the append's
//!   transaction.
//! - The log is an RFC 6962 Merkle tree: every batch stores the subtrees its records complete
//!   and, with a [`CheckpointSigner`], the signed checkpoint for the new size, in the append's
//!   transaction ([`Appended::checkpoint`]). [`Store::inclusion_proof`],
//!   [`Store::consistency_proof`] and [`Store::root`] are chained from a few stored subtrees.
//! - [`StoreOptions::read_only`] opens a log for auditors: no migrations, no writer.
//!
//! **Architecture Invariant:** the log tables are append-only in the database itself: triggers
//! refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) of `log_records`, `log_commands`,
//! `merkle_subtrees` and `checkpoints`.
//!
//! **Architecture Invariant:** the store decides nothing. It checks only what an append needs
//! checked against the log (versions, dependencies, head, command id, time order, size); the events and read models
//! come from the domain's pure functions.

mod append;
mod batch;
mod columns;
mod error;
mod leaf;
mod postgres;
mod read_models;
mod sqlite;
mod store;
mod time;
mod tree;
mod writer;

pub use append::{Append, Appended, Cause, Head, Projection, RawRecord, StoredRecord};
pub use error::{ConflictKind, StoreError, parse_stream};
pub use leaf::leaf_hash;
pub use store::{
    BATCHES_IN_FLIGHT, MAX_BATCH_APPENDS, MAX_RECORD_BYTES, READ_PAGE_SIZE, ReadModelKey,
    RebuildSummary, Store, StoreOptions, WriterStats,
};
pub use tree::CheckpointSigner;
pub use umlauf_proof::merkle::Hash;
