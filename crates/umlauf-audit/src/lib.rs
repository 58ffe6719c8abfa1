//! The auditor of umlauf: replays a history handed to it as a stream of log records and checks
//! that it is exactly what the service must have written.
//!
//! [`Auditor`] is push-based: the caller (the CLI) feeds it records from the database, the
//! JetStream log stream or a [`bundle`], in position order, with every signed checkpoint it
//! holds. For each record it checks:
//!
//! - positions without gaps from 1, strict parsing, canonical bytes, the stored leaf hash;
//! - recording times that never go back, and consecutive versions in each stream;
//! - the envelope's signature, strictly, against the key state at the recording time (a genesis
//!   key of the [`TrustAnchors`], or a key registered in the body before this record), verified
//!   in parallel batches by [`umlauf_proof::batch`];
//! - the authorisation (`umlauf_domain::authorize`) and that `umlauf_domain::decide` at the
//!   recording time produces exactly the recorded events; closes at the deadline are recomputed
//!   with `close_at_deadline`;
//! - the Merkle root at every checkpoint's size, each checkpoint's signature with the anchors'
//!   log key, truncation (a checkpoint beyond the log) and records that no checkpoint covers;
//! - the read models: as each circulation closes, and at the end for what is open, it hands out
//!   the freshly computed [`ReadModel`]s for the caller to compare with its stored rows
//!   ([`Auditor::record_read_model_mismatch`]).
//!
//! Every difference is a typed [`Finding`] naming the first record where it shows;
//! [`Auditor::finish`] returns a [`Report`] of what was checked, or an [`AuditFailure`] with the
//! findings, lowest position first.
//!
//! [`watch::Watcher`] follows a published log instead: each new signed checkpoint against the
//! Merkle tree of the published records, with nothing but a frontier in memory.
//!
//! **Architecture Invariant:** the trust anchors come from the caller, never from the history:
//! a bundle's own anchors are informational only.
//!
//! **Architecture Invariant:** memory stays flat as the history grows: a frontier of O(log n)
//! hashes, circulation state dropped at its close (16 bytes of id kept), bounded chunks and a
//! capped list of findings.

mod anchors;
mod auditor;
pub mod bundle;
mod error;
mod finding;
pub mod watch;

pub use anchors::TrustAnchors;
pub use auditor::{AuditOptions, Auditor};
pub use error::AuditError;
pub use finding::{
    AuditFailure, Decisions, Finding, FindingKind, Output, ReadModel, Report, json_differences,
};
