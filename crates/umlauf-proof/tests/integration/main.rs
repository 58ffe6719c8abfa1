//! Tests of the public API of umlauf-proof, compiled into one test binary.

// Clippy allows unwrap only inside #[test] functions; here every helper is test code too.
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap in a test binary is a failed test"
)]

/// The golden vectors under `proto/vectors/`, checked value by value.
mod vectors;

/// Property tests: parsing never panics, signatures cover every signed bit, digests are stable.
mod properties;

/// Interoperability with the real `openssl` binary: keys and signatures, both ways.
mod openssl;

/// The Merkle tree: the published RFC 6962 / C2SP vectors, every proof up to 300 leaves, the
/// frontier-fed store against the in-memory tree, and tampering.
mod merkle;

/// Signed notes and checkpoints: Go's sumdb/note vectors, a real sum.golang.org checkpoint,
/// umlauf's own checkpoints and the refusal cases.
mod checkpoint;

/// Receipts: the vector receipt, tampering field by field, and the store-to-receipt path.
mod receipt;

/// Batch verification: the Ed25519 edge-case vectors of `proto/vectors/ed25519-edge-cases.json`,
/// and batch verdicts equal to strict ones for random valid and corrupted triples.
mod batch;
