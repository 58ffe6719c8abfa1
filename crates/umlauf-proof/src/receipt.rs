//! Receipts: what the service hands back for every accepted command, and what the signer keeps.
//!
//! A receipt names the record's position in the log, its leaf hash, a signed checkpoint and the
//! inclusion proof of the leaf under that checkpoint's root. With the log's public key alone,
//! anyone can check that the record is in the log the key speaks for
//! ([`Receipt::verify`]), and later that the log has only grown since
//! ([`Receipt::verify_against_newer`]). A receipt held outside the database is what catches a
//! truncated or rewritten database.
//!
//! The JSON form is
//! `{"position":…,"leaf_hash":"<hex>","checkpoint":"<signed note>","inclusion_proof":["<hex>",…]}`
//! with hashes as 64 lowercase hex digits and the checkpoint as the exact note text.
//!
//! umlauf names its log key after the log's origin, as C2SP recommends, and a receipt verifies
//! only against a checkpoint whose origin is the key's name: a checkpoint of another log signed
//! with the same key cannot stand in for this one.

use serde::{Deserialize, Serialize};

use crate::ProofError;
use crate::checkpoint::{self, Checkpoint};
use crate::merkle::{self, Hash};
use crate::note::NoteVerifier;

/// Proof that a record is in the log: its position, its leaf hash, a signed checkpoint and the
/// inclusion proof of the leaf under that checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The record's position in the log, from 1; its leaf index is `position - 1`.
    pub position: u64,
    /// The leaf hash of the record bytes, `SHA-256(0x00 ‖ record)`.
    #[serde(with = "hex_hash")]
    pub leaf_hash: Hash,
    /// The signed checkpoint note, exactly as signed.
    pub checkpoint: String,
    /// The inclusion proof of the leaf in the checkpoint's tree, from the leaf up.
    #[serde(with = "hex_hashes")]
    pub inclusion_proof: Vec<Hash>,
}

impl Receipt {
    /// Parses the JSON form of a receipt. Strict: unknown, duplicate, missing or mistyped
    /// fields, hashes that are not 64 lowercase hex digits, and trailing bytes are refused
    /// ([`ProofError::MalformedReceipt`]). Nothing is verified yet.
    pub fn from_json(json: &[u8]) -> Result<Receipt, ProofError> {
        serde_json::from_slice(json).map_err(|error| ProofError::MalformedReceipt {
            reason: error.to_string(),
        })
    }

    /// The compact JSON form, fields in the order `position`, `leaf_hash`, `checkpoint`,
    /// `inclusion_proof`.
    pub fn to_json(&self) -> String {
        let proof: Vec<String> = self
            .inclusion_proof
            .iter()
            .map(|hash| format!("\"{}\"", hex::encode(hash)))
            .collect();
        format!(
            r#"{{"position":{},"leaf_hash":"{}","checkpoint":{},"inclusion_proof":[{}]}}"#,
            self.position,
            hex::encode(self.leaf_hash),
            // `Value`'s `Display` cannot fail, unlike `serde_json::to_string`.
            serde_json::Value::from(self.checkpoint.as_str()),
            proof.join(","),
        )
    }

    /// Verifies the receipt against the log key and returns the checkpoint it carries.
    ///
    /// In this order: the checkpoint's signature and form ([`checkpoint::verify`]), that it is
    /// the checkpoint of the log the key is named after ([`ProofError::WrongOrigin`]), that
    /// `record`, when given, hashes to the leaf hash ([`ProofError::LeafHashMismatch`]), and that
    /// the inclusion proof leads from the leaf at `position - 1` to the checkpoint's root
    /// ([`ProofError::BadInclusionProof`], also for position 0 or a position beyond the size).
    pub fn verify(
        &self,
        record: Option<&[u8]>,
        log_key: &NoteVerifier,
    ) -> Result<Checkpoint, ProofError> {
        let checkpoint = verify_log_checkpoint(&self.checkpoint, log_key)?;
        if let Some(record) = record
            && merkle::leaf_hash(record) != self.leaf_hash
        {
            return Err(ProofError::LeafHashMismatch);
        }
        let index = self
            .position
            .checked_sub(1)
            .ok_or(ProofError::BadInclusionProof {
                reason: "positions start at 1",
            })?;
        merkle::verify_inclusion(
            &self.leaf_hash,
            index,
            checkpoint.size,
            &self.inclusion_proof,
            &checkpoint.root,
        )?;
        Ok(checkpoint)
    }

    /// Verifies the receipt ([`Receipt::verify`], without the record), then that `newer_note` is
    /// a checkpoint of the same log and that `consistency_proof` proves the receipt's tree a
    /// prefix of the newer one ([`ProofError::BadConsistencyProof`]). Returns the newer
    /// checkpoint, in which the record is then included too.
    pub fn verify_against_newer(
        &self,
        newer_note: &str,
        consistency_proof: &[Hash],
        log_key: &NoteVerifier,
    ) -> Result<Checkpoint, ProofError> {
        let older = self.verify(None, log_key)?;
        let newer = verify_log_checkpoint(newer_note, log_key)?;
        merkle::verify_consistency(
            older.size,
            newer.size,
            &older.root,
            &newer.root,
            consistency_proof,
        )?;
        Ok(newer)
    }
}

/// A checkpoint signed by the log key whose origin is the key's name.
fn verify_log_checkpoint(note: &str, log_key: &NoteVerifier) -> Result<Checkpoint, ProofError> {
    let checkpoint = checkpoint::verify(note, log_key)?;
    if checkpoint.origin != log_key.name() {
        return Err(ProofError::WrongOrigin {
            expected: log_key.name().to_owned(),
            found: checkpoint.origin,
        });
    }
    Ok(checkpoint)
}

/// Reads a hash from exactly 64 lowercase hex digits, so that each hash has one spelling.
fn hash_from_hex(text: &str) -> Option<Hash> {
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Hash::try_from(hex::decode(text).ok()?).ok()
}

/// A hash as 64 lowercase hex digits.
mod hex_hash {
    use serde::{Deserialize as _, Deserializer, Serializer};

    use crate::merkle::Hash;

    pub(super) fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(hash))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Hash, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::hash_from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("a hash is 64 lowercase hex digits"))
    }
}

/// A list of hashes, each as 64 lowercase hex digits.
mod hex_hashes {
    use serde::{Deserialize as _, Deserializer, Serializer};

    use crate::merkle::Hash;

    pub(super) fn serialize<S: Serializer>(
        hashes: &[Hash],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(hashes.iter().map(hex::encode))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Hash>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| {
                super::hash_from_hex(text)
                    .ok_or_else(|| serde::de::Error::custom("a hash is 64 lowercase hex digits"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Receipt, hash_from_hex};

    #[test]
    fn hashes_have_one_spelling() {
        let lower = "ab".repeat(32);
        assert_eq!(hash_from_hex(&lower), Some([0xab; 32]));
        for text in [
            "AB".repeat(32),
            "ab".repeat(31),
            "ab".repeat(33),
            "zz".repeat(32),
        ] {
            assert_eq!(hash_from_hex(&text), None, "{text}");
        }
    }

    #[test]
    fn json_forms_agree_and_parsing_is_strict() {
        let receipt = Receipt {
            position: 3,
            leaf_hash: [1; 32],
            checkpoint: "o\n3\nAAAA\n\n\u{2014} o \"quoted\"\n".to_owned(),
            inclusion_proof: vec![[2; 32], [3; 32]],
        };
        let json = receipt.to_json();
        assert_eq!(serde_json::to_string(&receipt).unwrap(), json);
        assert_eq!(Receipt::from_json(json.as_bytes()), Ok(receipt));
        let upper = json.replace(&"01".repeat(32), &"0A".repeat(32));
        let cases = [
            json.replace(r#""position":3"#, r#""position":-3"#),
            json.replace(r#""position":3"#, r#""position":"3""#),
            json.replace(r#"{"position":3,"#, "{"),
            json.replace('}', r#","extra":1}"#),
            upper,
            format!("{json} x"),
            json.replace(&"02".repeat(32), &"02".repeat(31)),
        ];
        for case in cases {
            assert_eq!(
                Receipt::from_json(case.as_bytes()).map_err(|e| e.code()),
                Err("malformed_receipt"),
                "{case}"
            );
        }
    }
}
