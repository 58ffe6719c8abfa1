//! Signed commands and tamper evidence for umlauf.
//!
//! A command travels as a DSSE envelope ([`dsse`]) signed with an Ed25519 key ([`keys`]); the
//! signature covers the exact payload bytes, so no JSON canonicalisation is involved. Verification
//! is strict (no weak keys, no malleable signatures) and checks the signature before the payload
//! type, and both before anyone parses the payload. [`weak_keys`] lists the weak public key
//! encodings for crates that cannot do curve arithmetic.
//!
//! The log is an RFC 6962 Merkle tree ([`merkle`]): proofs are built from stored subtree hashes
//! in two steps (what to fetch, then how to combine it), so the store never holds the tree in
//! memory. The log signs its size and root as a C2SP checkpoint ([`checkpoint`]) inside a C2SP
//! signed note ([`note`]), and every accepted command gets a [`receipt`]: position, leaf hash,
//! checkpoint and inclusion proof, verifiable with the log's public key alone.
//!
//! **Architecture Invariant:** this crate is pure. Its library code reads no files, clock or
//! network and draws no randomness: functions take bytes and text and return values, and keys are
//! made from seeds or from an RNG the caller passes in. So the service and an auditor verify the
//! same way, and every function is testable without a machine around it.
//!
//! Many signatures are checked at once by [`batch`], which never accepts what strict
//! verification rejects.
//!
//! Every failure is a [`ProofError`] whose [`ProofError::code`] is the stable string for the wire.

pub mod batch;
pub mod checkpoint;
pub mod dsse;
mod error;
pub mod keys;
mod lenient_base64;
pub mod merkle;
pub mod note;
pub mod receipt;
pub mod weak_keys;

pub use error::ProofError;
pub use keys::{SigningKey, VerifyingKey};
