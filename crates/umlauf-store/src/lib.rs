//! The event store of umlauf: the append-only log of every accepted command's events, and the
//! read models folded from it, on SQLite (embedded, one file in WAL mode) or PostgreSQL.
//!
//! - [`Store::append`] appends a command's events to one stream at an expected version, with the
//!   read models after them, in one transaction. Positions are 1, 2, 3, … without gaps; each
//!   record is serialised once ([`umlauf_domain::Record::to_bytes`]) and stored as those bytes
//!   with its Merkle leaf hash ([`leaf_hash`]). A command id is accepted once: the same command
//!   again returns the first result.
//! - Concurrent appends share transactions (group commit, see [`Store`]), so
//!   throughput grows with concurrency instead of being capped by one fsync per command.
//! - [`Store::read_stream`], [`Store::read_from`] and [`Store::head`] read the log back, byte for
//!   byte; the read-model queries answer from tables written in the append's transaction, and
//!   [`Store::rebuild_read_models`] recomputes them from the log.
//!
//! **Architecture Invariant:** the log tables are append-only in the database itself: triggers
//! refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) of `log_records` and `log_commands`.
//!
//! **Architecture Invariant:** the store decides nothing. It checks only what an append needs
//! checked against the log (version, command id, time order, size); the events and read models
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
mod writer;

pub use append::{Append, Appended, Cause, Head, Projection, StoredRecord};
pub use error::{StoreError, parse_stream};
pub use leaf::leaf_hash;
pub use store::{
    MAX_BATCH_APPENDS, MAX_RECORD_BYTES, READ_PAGE_SIZE, RebuildSummary, Store, StoreOptions,
    WriterStats,
};
