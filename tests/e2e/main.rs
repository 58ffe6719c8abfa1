//! End-to-end tests of umlauf: the real service (in this process, through `umlauf-server`'s API)
//! against a real NATS server and real databases, SQLite and PostgreSQL, driven over the wire
//! with commands signed by real keys. One test binary, one module per area.
//!
//! Every test has a database of its own (a SQLite file, or a PostgreSQL schema at
//! `UMLAUF_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`) and its own
//! subject root and stream names, so the tests run in parallel on one NATS server
//! (`127.0.0.1:4222`, as `tests/services` starts it). Tests that stop NATS start a
//! `nats-server` of their own. A missing PostgreSQL or NATS fails a test; nothing is skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

mod support;

/// Refusals over the wire: each with its code, and nothing written.
mod bad_input;
/// The contract in `proto/`: schemas, AsyncAPI, error codes and the Python client.
mod contract;
/// Decisions derived from the log: none lost when a relay stops, none published twice.
mod decisions;
/// What subscribers get: durable decisions, and a log stream that is the log.
mod distribution;
/// The fork alarm: a relay never publishes over a different history.
mod fork;
/// A NATS server with a small `max_payload`.
mod limits;
/// Health, readiness, metrics, reminders and graceful shutdown.
mod operations;
/// NATS going away and coming back while the service runs.
mod outage;
/// Written procedures of the IT-Planungsrat from the first command to the decision.
mod procedures;
/// Commands racing across streams and replicas: revocations, first constitutions.
mod races;
/// Receipts in replies, the checkpoints stream, and the proof queries.
mod receipts;
/// Two service instances on one PostgreSQL and one NATS.
mod replicas;
