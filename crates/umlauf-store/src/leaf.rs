//! The Merkle leaf hash of a record, as RFC 6962 defines it: the proof crate's, so the store's
//! leaves are the tree's leaves.

/// `SHA-256(0x00 ‖ record)`: the leaf hash of a record's exact bytes
/// ([`umlauf_proof::merkle::leaf_hash`]).
pub fn leaf_hash(record: &[u8]) -> [u8; 32] {
    umlauf_proof::merkle::leaf_hash(record)
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
