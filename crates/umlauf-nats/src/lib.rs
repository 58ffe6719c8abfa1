//! NATS for umlauf: the subjects of the wire contract, the service endpoints, the JetStream
//! streams, the relay that publishes the log, and helpers for clients.
//!
//! - [`subjects`]: every subject and stream name, under a configurable root.
//! - [`wire`]: the JSON bodies that travel: submit replies, queries and their answers, decision
//!   messages, and error replies with their headers.
//! - [`streams`]: creates or updates the log, decisions and checkpoints streams.
//! - [`service`]: the NATS service `umlauf` (services API), generic over a [`service::Handler`]
//!   the server implements.
//! - [`connect`]: connects to a list of servers (a cluster's nodes) with a user's credentials.
//! - [`relay`]: publishes every log record to the log stream (stream sequence = log position)
//!   and every decision to the decisions stream, generic over a [`relay::LogSource`].
//!
//! Architecture Invariant: this crate never depends on the store. The relay reads the log through
//! a trait the server implements with the store, and the service hands requests to a trait the
//! server implements with its command pipeline.

pub mod client;
pub mod connect;
pub mod relay;
pub mod service;
pub mod streams;
pub mod subjects;
pub mod wire;

pub use subjects::Subjects;
