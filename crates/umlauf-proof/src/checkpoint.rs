//! Checkpoints (c2sp.org/tlog-checkpoint): the log's signed statement of its size and root.
//!
//! A checkpoint is a signed note ([`crate::note`]) whose text is three lines: the origin (the
//! log's name), the tree size in decimal, and the base64 root hash:
//!
//! ```text
//! umlauf.example/log
//! 7
//! 3bib5AOAnjJXUNPSY814kpwpQreUKjS3fhIslZSnTIw=
//!
//! — umlauf.example/log nTc2rpMherZ/HoDzifLs0Cq+3I7L85jkMEm0VNplOMxzOKmbuCDBHKMI5e01TjTUE893Aa25cDYmjOmtH5GXREYO4Qg=
//! ```
//!
//! (the 7-leaf tree of `proto/vectors/merkle.json`, signed with the key of
//! `proto/vectors/checkpoint.json`).
//!
//! umlauf writes no extension lines and refuses notes that carry them: monitors cannot audit
//! them, and a log that never writes them has no reason to accept them. Because Ed25519 is
//! deterministic, replicas that agree on a checkpoint sign byte-identical notes.
//!
//! Verification checks the signature before it parses the checkpoint.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::ProofError;
use crate::keys::SigningKey;
use crate::merkle::Hash;
use crate::note::{self, NoteVerifier};

/// A tree head: which log, how many leaves, and the root over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `umlauf.example/log`. umlauf names its log key the same.
    pub origin: String,
    /// The number of leaves (log records) in the tree.
    pub size: u64,
    /// The RFC 6962 root of the tree over those leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `origin "\n" size "\n" base64(root) "\n"`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Parses a note text as a checkpoint: exactly an origin, a size and a root hash line.
    ///
    /// Strict: the origin is non-empty and has no control characters, the size is decimal
    /// without sign or leading zeros (`0` for the empty tree) and fits a `u64`, the root is
    /// standard padded base64 of 32 bytes, and there are no extension lines.
    pub fn from_body(text: &str) -> Result<Checkpoint, ProofError> {
        let malformed = |reason| ProofError::MalformedCheckpoint { reason };
        let lines = text
            .strip_suffix('\n')
            .ok_or(malformed("the checkpoint ends with a newline"))?;
        let mut lines = lines.split('\n');
        let origin = lines.next().unwrap_or_default();
        let size = lines
            .next()
            .ok_or(malformed("the second line is the tree size"))?;
        let root = lines
            .next()
            .ok_or(malformed("the third line is the root hash"))?;
        if lines.next().is_some() {
            return Err(malformed("umlauf checkpoints have no extension lines"));
        }
        check_origin(origin)?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size: parse_size(size)?,
            root: STANDARD
                .decode(root)
                .ok()
                .and_then(|root| Hash::try_from(root).ok())
                .ok_or(malformed("the root hash is standard base64 of 32 bytes"))?,
        })
    }
}

fn check_origin(origin: &str) -> Result<(), ProofError> {
    if origin.is_empty() {
        return Err(ProofError::MalformedCheckpoint {
            reason: "the origin is not empty",
        });
    }
    if origin.chars().any(char::is_control) {
        return Err(ProofError::MalformedCheckpoint {
            reason: "the origin has no control characters",
        });
    }
    Ok(())
}

fn parse_size(text: &str) -> Result<u64, ProofError> {
    let malformed = |reason| ProofError::MalformedCheckpoint { reason };
    // `u64::from_str` would accept a leading '+'.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("the tree size is a decimal number"));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(malformed("the tree size has no leading zeros"));
    }
    text.parse()
        .map_err(|_| malformed("the tree size fits 64 bits"))
}

/// Signs `checkpoint` with `key` under `key_name`: the signed note, byte for byte the same every
/// time. umlauf uses the origin as the key name, as C2SP recommends and receipts require.
///
/// Refuses an origin that is empty or has control characters
/// ([`ProofError::MalformedCheckpoint`]) and an invalid key name
/// ([`ProofError::MalformedKeyName`]).
pub fn sign(
    checkpoint: &Checkpoint,
    key_name: &str,
    key: &SigningKey,
) -> Result<String, ProofError> {
    check_origin(&checkpoint.origin)?;
    note::sign(&checkpoint.body(), key_name, key)
}

/// Verifies a signed checkpoint note against the log key and returns the checkpoint.
///
/// First the note ([`note::open`]: [`ProofError::MalformedNote`], [`ProofError::BadSignature`],
/// [`ProofError::NoKnownSignature`]), then the text ([`ProofError::MalformedCheckpoint`]). The
/// origin is returned, not checked: compare it with the log you expect (receipts do).
pub fn verify(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, ProofError> {
    Checkpoint::from_body(note::open(note, verifier)?)
}

#[cfg(test)]
mod tests {
    use super::Checkpoint;

    /// Parses `text` and expects `ok` or the error code.
    fn check(text: &str, expected: &str) {
        let outcome = match Checkpoint::from_body(text) {
            Ok(_) => "ok",
            Err(error) => error.code(),
        };
        assert_eq!(outcome, expected, "{text:?}");
    }

    #[test]
    fn from_body_is_strict() {
        let root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let cases = [
            (format!("example.org/log\n0\n{root}\n"), "ok"),
            (
                format!("example.org/log\n18446744073709551615\n{root}\n"),
                "ok",
            ),
            (format!("go.sum database tree\n1\n{root}\n"), "ok"),
            (
                format!("example.org/log\n18446744073709551616\n{root}\n"),
                "malformed_checkpoint",
            ),
            (
                format!("example.org/log\n007\n{root}\n"),
                "malformed_checkpoint",
            ),
            (
                format!("example.org/log\n+7\n{root}\n"),
                "malformed_checkpoint",
            ),
            (
                format!("example.org/log\n-7\n{root}\n"),
                "malformed_checkpoint",
            ),
            (
                format!("example.org/log\n 7\n{root}\n"),
                "malformed_checkpoint",
            ),
            (
                format!("example.org/log\n\n{root}\n"),
                "malformed_checkpoint",
            ),
            (format!("\n7\n{root}\n"), "malformed_checkpoint"),
            (format!("a\u{85}b\n7\n{root}\n"), "malformed_checkpoint"),
            (
                format!("example.org/log\n7\n{root}"),
                "malformed_checkpoint",
            ),
            (
                format!("example.org/log\n7\n{root}\nextension\n"),
                "malformed_checkpoint",
            ),
            (
                format!("example.org/log\n7\n{root}\n\n"),
                "malformed_checkpoint",
            ),
            ("example.org/log\n7\n".to_owned(), "malformed_checkpoint"),
            (
                "example.org/log\n7\nAAAA\n".to_owned(),
                "malformed_checkpoint",
            ),
            (
                "example.org/log\n7\n47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=\n".to_owned(),
                "malformed_checkpoint",
            ),
            (
                "example.org/log\n7\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n".to_owned(),
                "malformed_checkpoint",
            ),
            (String::new(), "malformed_checkpoint"),
        ];
        for (text, expected) in cases {
            check(&text, expected);
        }
    }

    #[test]
    fn body_round_trips() {
        let checkpoint = Checkpoint {
            origin: "example.org/log".to_owned(),
            size: 7,
            root: [0xab; 32],
        };
        assert_eq!(Checkpoint::from_body(&checkpoint.body()), Ok(checkpoint));
    }
}
