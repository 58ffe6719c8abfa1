//! Interoperability with the real `openssl` binary, which members use to make and use their keys:
//! a key OpenSSL generates loads here and is written back byte for byte, OpenSSL's signature equals
//! ours, and OpenSSL accepts our keys and signatures. These tests fail, never skip, without openssl.

use std::path::{Path, PathBuf};
use std::process::Command;

use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE, Envelope};
use umlauf_proof::keys::{signing_key_from_pem, signing_key_from_seed, signing_key_to_pem};

const COMMAND: &str = include_str!("../../../../proto/vectors/signing.json");

/// A directory of its own for one test, removed when the test ends.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(test: &str) -> ScratchDir {
        let path = std::env::temp_dir().join(format!("umlauf-proof-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        ScratchDir(path)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl` with `args` and returns its standard output; any failure fails the test.
fn openssl(args: &[&Path]) -> Vec<u8> {
    let output = Command::new("openssl").args(args).output().unwrap_or_else(|error| {
        panic!("this test needs the `openssl` binary on PATH (OpenSSL 3), and running it failed: {error}")
    });
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The command payload of the signing vectors, so the messages signed here are realistic.
fn command_payload() -> Vec<u8> {
    let vectors: serde_json::Value = serde_json::from_str(COMMAND).unwrap();
    vectors["payload"].as_str().unwrap().as_bytes().to_vec()
}

#[test]
fn a_key_made_by_openssl_loads_and_signs_like_openssl() {
    let dir = ScratchDir::new("openssl-key");
    let key_file = dir.file("key.pem");
    let message_file = dir.file("message.bin");
    let signature_file = dir.file("signature.bin");
    openssl(&[
        "genpkey".as_ref(),
        "-algorithm".as_ref(),
        "ed25519".as_ref(),
        "-out".as_ref(),
        &key_file,
    ]);
    let pem = std::fs::read_to_string(&key_file).unwrap();

    let key = signing_key_from_pem(&pem).unwrap();
    assert_eq!(
        signing_key_to_pem(&key),
        pem,
        "our PEM differs from OpenSSL's for the same key"
    );

    let public_der = openssl(&[
        "pkey".as_ref(),
        "-in".as_ref(),
        &key_file,
        "-pubout".as_ref(),
        "-outform".as_ref(),
        "DER".as_ref(),
    ]);
    assert_eq!(
        public_der.get(public_der.len().saturating_sub(32)..),
        Some(key.verifying_key().as_bytes().as_slice())
    );

    let payload = command_payload();
    std::fs::write(&message_file, dsse::pae(COMMAND_PAYLOAD_TYPE, &payload)).unwrap();
    openssl(&[
        "pkeyutl".as_ref(),
        "-sign".as_ref(),
        "-rawin".as_ref(),
        "-inkey".as_ref(),
        &key_file,
        "-in".as_ref(),
        &message_file,
        "-out".as_ref(),
        &signature_file,
    ]);
    let openssl_signature = std::fs::read(&signature_file).unwrap();

    let envelope = dsse::sign(COMMAND_PAYLOAD_TYPE, &payload, &key);
    assert_eq!(envelope.signatures[0].sig, openssl_signature);

    // An envelope put together by hand around OpenSSL's signature verifies here.
    let by_hand = Envelope {
        signatures: vec![dsse::Signature {
            keyid: String::new(),
            sig: openssl_signature,
        }],
        ..envelope
    };
    assert_eq!(
        dsse::verify(&by_hand, COMMAND_PAYLOAD_TYPE, &key.verifying_key()),
        Ok(payload.as_slice())
    );
}

#[test]
fn openssl_accepts_our_keys_and_signatures() {
    let dir = ScratchDir::new("our-key");
    let key_file = dir.file("key.pem");
    let public_file = dir.file("public.pem");
    let message_file = dir.file("message.bin");
    let signature_file = dir.file("signature.bin");

    let key = signing_key_from_seed([0x5a; 32]);
    std::fs::write(&key_file, signing_key_to_pem(&key)).unwrap();
    openssl(&[
        "pkey".as_ref(),
        "-in".as_ref(),
        &key_file,
        "-pubout".as_ref(),
        "-out".as_ref(),
        &public_file,
    ]);

    let payload = command_payload();
    let envelope = dsse::sign(COMMAND_PAYLOAD_TYPE, &payload, &key);
    std::fs::write(&message_file, dsse::pae(COMMAND_PAYLOAD_TYPE, &payload)).unwrap();
    std::fs::write(&signature_file, &envelope.signatures[0].sig).unwrap();
    let verdict = openssl(&[
        "pkeyutl".as_ref(),
        "-verify".as_ref(),
        "-rawin".as_ref(),
        "-pubin".as_ref(),
        "-inkey".as_ref(),
        &public_file,
        "-in".as_ref(),
        &message_file,
        "-sigfile".as_ref(),
        &signature_file,
    ]);
    assert!(String::from_utf8_lossy(&verdict).contains("Signature Verified Successfully"));
}
