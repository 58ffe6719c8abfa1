//! The store's test suite, one binary. Every test runs twice, against SQLite (a file in a
//! temporary directory) and against PostgreSQL (a schema of its own at
//! `UMLAUF_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`), through
//! the same code: `name::sqlite` and `name::postgres`. Without PostgreSQL the PostgreSQL half
//! fails and says what it needs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

/// The log refuses UPDATE, DELETE and TRUNCATE in the database itself.
mod append_only;
/// Appending and reading back: positions, versions, bytes, hashes, envelopes, the head.
mod appending;
/// Bad input: oversize records, invalid UTF-8, stream names outside the pattern.
mod bad_input;
/// Concurrency: one winner per version, gapless positions under load, group commit, replicas.
mod concurrency;
/// Crash safety: a child process appending in a loop is killed with SIGKILL.
mod crash;
/// Dependencies on other streams and the expected head: judged in order, also across replicas.
mod dependencies;
/// Idempotency: the same command again, the same id with other content.
mod idempotency;
/// The Merkle tree and checkpoints: proofs against an in-memory tree, one checkpoint per batch,
/// replicas, backfill, and a checkpoint that disagrees with the tree.
mod merkle;
/// Read models: status, inbox, keys, and a rebuild that gives identical content.
mod read_models;
/// Read-only open for auditors: reads, refused appends, and databases that are not logs.
mod read_only;
