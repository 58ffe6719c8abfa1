//! Ed25519 keys: key ids, public keys in base64, private keys as PKCS#8 PEM.
//!
//! Private keys use the form `openssl genpkey -algorithm ed25519` writes, so a member can make and
//! use its key with tools it already trusts. Public keys are parsed once, here, where weak
//! (small-order) keys are refused; `verify_strict` would refuse them later anyway, but a weak key
//! must never be registered in the first place.

use sha2::{Digest as _, Sha256};

use crate::{ProofError, lenient_base64};

pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// The id of a public key: lowercase hex SHA-256 of its raw 32 bytes.
///
/// In an envelope it is only a hint for finding the key; the signature is what proves anything.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Parses a raw 32-byte public key, refusing non-points ([`ProofError::MalformedKey`]) and
/// small-order points ([`ProofError::WeakKey`]).
pub fn public_key_from_bytes(bytes: &[u8]) -> Result<VerifyingKey, ProofError> {
    let bytes: &[u8; 32] = bytes.try_into().map_err(|_| ProofError::MalformedKey {
        reason: "a public key is 32 bytes",
    })?;
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| ProofError::MalformedKey {
        reason: "not the encoding of a curve point",
    })?;
    if key.is_weak() {
        return Err(ProofError::WeakKey);
    }
    Ok(key)
}

/// Parses a public key written in base64 (standard; URL-safe and unpadded are accepted too), with
/// the checks of [`public_key_from_bytes`].
pub fn public_key_from_base64(text: &str) -> Result<VerifyingKey, ProofError> {
    public_key_from_bytes(&lenient_base64::decode(text, "public key")?)
}

/// Writes a public key as standard padded base64 of its raw 32 bytes.
pub fn public_key_to_base64(key: &VerifyingKey) -> String {
    lenient_base64::encode(key.as_bytes())
}

/// The signing key for a 32-byte seed (the RFC 8032 private key). Keys are made from a seed or
/// with `SigningKey::generate(&mut rng)`: this crate draws no randomness itself.
pub fn signing_key_from_seed(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&seed)
}

/// Reads an unencrypted PKCS#8 PEM Ed25519 private key, as `openssl genpkey -algorithm ed25519`
/// writes it. The v2 form with the public key included is accepted if the public key matches.
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, ProofError> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    SigningKey::from_pkcs8_pem(pem).map_err(|error| ProofError::MalformedPrivateKey {
        reason: error.to_string(),
    })
}

/// The DER of an RFC 8410 PKCS#8 v1 Ed25519 private key up to the 32 seed bytes:
/// SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } }.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Writes the key as PKCS#8 PEM, byte for byte as OpenSSL writes it (v1, without the public key,
/// LF line endings).
///
/// The document has a fixed layout, so it is assembled here rather than through the `pkcs8`
/// encoder, whose fallible signature would force an error path that cannot happen; a test checks
/// that both give the same bytes.
pub fn signing_key_to_pem(key: &SigningKey) -> String {
    let mut der = [0_u8; 48];
    der[..16].copy_from_slice(&PKCS8_ED25519_PREFIX);
    der[16..].copy_from_slice(key.as_bytes());
    // 48 bytes make 64 base64 characters: exactly one PEM line.
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lenient_base64::encode(&der)
    )
}

#[cfg(test)]
mod tests {
    use super::{
        PKCS8_ED25519_PREFIX, key_id, public_key_from_base64, public_key_from_bytes,
        public_key_to_base64, signing_key_from_pem, signing_key_from_seed, signing_key_to_pem,
    };
    use crate::weak_keys::SMALL_ORDER_ENCODINGS;

    #[test]
    fn rfc8032_test_1_public_key_and_key_id() {
        // RFC 8032 section 7.1, TEST 1.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let public = signing_key_from_seed(seed).verifying_key();
        assert_eq!(
            hex::encode(public.as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            public_key_from_base64(&public_key_to_base64(&public)),
            Ok(public)
        );
        assert_eq!(key_id(&public).len(), 64);
        assert!(
            key_id(&public)
                .chars()
                .all(|c| matches!(c, '0'..='9' | 'a'..='f'))
        );
    }

    #[test]
    fn public_key_parsing_refuses_weak_and_malformed_keys() {
        for weak in SMALL_ORDER_ENCODINGS {
            assert_eq!(
                public_key_from_bytes(weak).map_err(|e| e.code()),
                Err("weak_key")
            );
        }
        // y = 2 has no x on the curve.
        let mut not_a_point = [0_u8; 32];
        not_a_point[0] = 2;
        let cases: [(&[u8], &str); 3] = [
            (&not_a_point, "malformed_key"),
            (&[1; 31], "malformed_key"),
            (&[1; 33], "malformed_key"),
        ];
        for (bytes, code) in cases {
            assert_eq!(
                public_key_from_bytes(bytes).map_err(|e| e.code()),
                Err(code)
            );
        }
        assert_eq!(
            public_key_from_base64("not base64!").map_err(|e| e.code()),
            Err("bad_base64")
        );
    }

    #[test]
    fn pem_is_what_the_pkcs8_encoder_writes_and_reads_back() {
        use ed25519_dalek::pkcs8::{
            EncodePrivateKey as _, KeypairBytes, spki::der::pem::LineEnding,
        };
        let key = signing_key_from_seed([42; 32]);
        let pem = signing_key_to_pem(&key);
        let by_encoder = KeypairBytes {
            secret_key: key.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap();
        assert_eq!(pem, by_encoder.as_str());
        assert_eq!(signing_key_from_pem(&pem), Ok(key.clone()));
        assert_eq!(PKCS8_ED25519_PREFIX.len() + 32, 48);

        // The v2 form carries the public key; it is read if the public key matches.
        let with_public = KeypairBytes::from(&key)
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap();
        assert_eq!(signing_key_from_pem(&with_public), Ok(key));
    }

    #[test]
    fn pem_parsing_refuses_other_documents() {
        let valid = signing_key_to_pem(&signing_key_from_seed([42; 32]));
        let cases = [
            String::new(),
            "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n".to_owned(),
            valid.replace("PRIVATE KEY", "PUBLIC KEY"),
            valid.replace("MC4CAQAwBQYDK2Vw", "MC4CAQAwBQYDK2Vx"),
        ];
        for pem in cases {
            assert_eq!(
                signing_key_from_pem(&pem).map_err(|e| e.code()),
                Err("malformed_private_key"),
                "{pem}"
            );
        }
    }
}
