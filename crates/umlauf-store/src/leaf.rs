//! The Merkle leaf hash of a record, as RFC 6962 defines it.
//!
//! It lives here until `umlauf-proof` has its Merkle module; then the store calls that one.

use sha2::{Digest, Sha256};

/// `SHA-256(0x00 ‖ record)`: the leaf hash of a record's exact bytes.
pub fn leaf_hash(record: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(record);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn the_leaf_hash_of_the_empty_record_is_rfc_6962s() {
        // RFC 6962 test vector: the hash of an empty leaf.
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_ne!(leaf_hash(b"a"), leaf_hash(b"b"));
    }
}
