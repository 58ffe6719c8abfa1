//! The one error type of this crate, with a stable code per case a caller handles.

/// Why an envelope, a key, a proof, a checkpoint or a receipt was refused.
///
/// Each variant is a case a caller handles differently; [`ProofError::code`] gives the stable string
/// that goes on the wire, so callers map codes, never messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The envelope is not the JSON object `{"payloadType","payload","signatures"}`: not JSON,
    /// a missing, duplicate, mistyped or unknown field, or trailing bytes.
    #[error("malformed envelope: {reason}")]
    MalformedEnvelope {
        /// What the JSON parser objected to.
        reason: String,
    },
    /// A field that must be base64 (standard or URL-safe, padded or not) is not.
    #[error("bad base64 in {field}")]
    BadBase64 {
        /// The field that failed to decode, e.g. `payload` or `signatures[0].sig`.
        field: &'static str,
    },
    /// The signature is valid but the envelope carries another payload type than the one expected.
    #[error("wrong payload type: expected {expected}, found {found}")]
    WrongPayloadType {
        /// The payload type the caller asked for.
        expected: String,
        /// The payload type the envelope carries.
        found: String,
    },
    /// A command envelope carries exactly one signature; this one carries another number.
    #[error("a command envelope carries exactly one signature, found {found}")]
    SignatureCount {
        /// How many signatures the envelope carries.
        found: usize,
    },
    /// The signature is not a valid strict Ed25519 signature over the envelope's PAE by this key,
    /// or a signed note carries a signature by the expected key that does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The public key is a small-order point, for which signatures prove nothing.
    #[error("weak public key: a small-order point")]
    WeakKey,
    /// The public key is not 32 bytes or does not decode to a curve point.
    #[error("malformed public key: {reason}")]
    MalformedKey {
        /// Why the bytes are not a public key.
        reason: &'static str,
    },
    /// The text is not an unencrypted PKCS#8 PEM Ed25519 private key.
    #[error("malformed private key: {reason}")]
    MalformedPrivateKey {
        /// What the PKCS#8 decoder objected to; it never contains key material.
        reason: String,
    },
    /// A proof was asked for that the tree cannot give: an index at or beyond the size, an old
    /// size beyond the new size, a size beyond what is stored, or a tree that is full.
    #[error("out of range: {reason}")]
    OutOfRange {
        /// What was asked for, with the numbers.
        reason: String,
    },
    /// The subtree hashes handed to a proof plan lack one the proof needs.
    #[error("missing subtree hash at level {level}, index {index}")]
    MissingSubtree {
        /// The level of the missing complete subtree (0 for a leaf).
        level: u8,
        /// Its index within that level.
        index: u64,
    },
    /// A frontier does not hold one hash per set bit of its tree size.
    #[error("malformed frontier: {reason}")]
    MalformedFrontier {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An inclusion proof does not prove the leaf at that index under that root.
    #[error("bad inclusion proof: {reason}")]
    BadInclusionProof {
        /// Which check failed.
        reason: &'static str,
    },
    /// A consistency proof does not prove that the older tree is a prefix of the newer one.
    #[error("bad consistency proof: {reason}")]
    BadConsistencyProof {
        /// Which check failed.
        reason: &'static str,
    },
    /// The text is not a C2SP signed note: bad characters, no signature block, or a malformed
    /// signature line.
    #[error("malformed note: {reason}")]
    MalformedNote {
        /// What the note parser objected to.
        reason: &'static str,
    },
    /// The note carries no signature by the expected key (name and key id); signatures by other
    /// keys are ignored, as the signed-note specification requires.
    #[error("the note carries no signature by the expected key")]
    NoKnownSignature,
    /// The signed note text is not a C2SP checkpoint as umlauf writes it: origin, size, root hash
    /// and nothing else.
    #[error("malformed checkpoint: {reason}")]
    MalformedCheckpoint {
        /// What the checkpoint parser objected to.
        reason: &'static str,
    },
    /// A key name is empty or contains a Unicode space or a plus sign.
    #[error("malformed key name: {reason}")]
    MalformedKeyName {
        /// What is wrong with the name.
        reason: &'static str,
    },
    /// The text is not a verifier key `name+hex8+base64(0x01 ‖ public key)`.
    #[error("malformed verifier key: {reason}")]
    MalformedVerifierKey {
        /// What the verifier key parser objected to.
        reason: &'static str,
    },
    /// The checkpoint was signed by the log key but names another log.
    #[error("wrong origin: expected {expected}, found {found}")]
    WrongOrigin {
        /// The origin the verifier expected (the log key's name).
        expected: String,
        /// The origin the checkpoint names.
        found: String,
    },
    /// The record bytes do not hash to the leaf hash the receipt claims.
    #[error("the record does not hash to the receipt's leaf hash")]
    LeafHashMismatch,
    /// The receipt is not the JSON object `{"position","leaf_hash","checkpoint","inclusion_proof"}`.
    #[error("malformed receipt: {reason}")]
    MalformedReceipt {
        /// What the JSON parser objected to.
        reason: String,
    },
}

impl ProofError {
    /// The stable snake_case code of this error, for the wire and for logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedEnvelope { .. } => "malformed_envelope",
            Self::BadBase64 { .. } => "bad_base64",
            Self::WrongPayloadType { .. } => "wrong_payload_type",
            Self::SignatureCount { .. } => "signature_count",
            Self::BadSignature => "bad_signature",
            Self::WeakKey => "weak_key",
            Self::MalformedKey { .. } => "malformed_key",
            Self::MalformedPrivateKey { .. } => "malformed_private_key",
            Self::OutOfRange { .. } => "out_of_range",
            Self::MissingSubtree { .. } => "missing_subtree",
            Self::MalformedFrontier { .. } => "malformed_frontier",
            Self::BadInclusionProof { .. } => "bad_inclusion_proof",
            Self::BadConsistencyProof { .. } => "bad_consistency_proof",
            Self::MalformedNote { .. } => "malformed_note",
            Self::NoKnownSignature => "no_known_signature",
            Self::MalformedCheckpoint { .. } => "malformed_checkpoint",
            Self::MalformedKeyName { .. } => "malformed_key_name",
            Self::MalformedVerifierKey { .. } => "malformed_verifier_key",
            Self::WrongOrigin { .. } => "wrong_origin",
            Self::LeafHashMismatch => "leaf_hash_mismatch",
            Self::MalformedReceipt { .. } => "malformed_receipt",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProofError;

    #[test]
    fn codes_are_distinct_snake_case() {
        let all = [
            ProofError::MalformedEnvelope {
                reason: String::new(),
            },
            ProofError::BadBase64 { field: "payload" },
            ProofError::WrongPayloadType {
                expected: String::new(),
                found: String::new(),
            },
            ProofError::SignatureCount { found: 2 },
            ProofError::BadSignature,
            ProofError::WeakKey,
            ProofError::MalformedKey { reason: "" },
            ProofError::MalformedPrivateKey {
                reason: String::new(),
            },
            ProofError::OutOfRange {
                reason: String::new(),
            },
            ProofError::MissingSubtree { level: 0, index: 0 },
            ProofError::MalformedFrontier { reason: "" },
            ProofError::BadInclusionProof { reason: "" },
            ProofError::BadConsistencyProof { reason: "" },
            ProofError::MalformedNote { reason: "" },
            ProofError::NoKnownSignature,
            ProofError::MalformedCheckpoint { reason: "" },
            ProofError::MalformedKeyName { reason: "" },
            ProofError::MalformedVerifierKey { reason: "" },
            ProofError::WrongOrigin {
                expected: String::new(),
                found: String::new(),
            },
            ProofError::LeafHashMismatch,
            ProofError::MalformedReceipt {
                reason: String::new(),
            },
        ];
        let codes: Vec<&str> = all.iter().map(ProofError::code).collect();
        for code in &codes {
            assert!(
                code.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{code}"
            );
        }
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len(), "{codes:?}");
    }
}
