//! C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys: how a checkpoint travels signed.
//!
//! A note is a text ending in a newline, a blank line, and signature lines
//! `— <key name> base64(key id ‖ signature)`, with an em dash (U+2014). The key id is the first
//! four bytes, big-endian, of `SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)`, and the Ed25519
//! signature covers the text including its final newline. A verifier key is written
//! `name+hex8+base64(0x01 ‖ public key)`, as Go's `golang.org/x/mod/sumdb/note` writes it.
//!
//! Ed25519 is deterministic, so the same text signed with the same key gives byte-identical
//! notes, on every replica.
//!
//! Parsing is strict and follows the specification's rules: valid UTF-8 without control
//! characters other than newline, standard padded base64, valid key names, at most
//! [`MAX_SIGNATURES`] signature lines. Signatures from other keys (another name or another key
//! id) are ignored; every signature by the expected key must verify, and at least one must be
//! there.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use sha2::{Digest as _, Sha256};

use crate::ProofError;
use crate::keys::{SigningKey, VerifyingKey, public_key_from_bytes};

/// The signature type byte of Ed25519 note signatures, which also prefixes the public key in a
/// verifier key.
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// The most signature lines a note may carry; the specification asks verifiers to accept at
/// least 16, and Go's implementation stops at 100.
pub const MAX_SIGNATURES: usize = 100;

/// What opens every signature line: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// The note key id of an Ed25519 key: the first four bytes of
/// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`, as a big-endian number.
pub fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', SIGNATURE_TYPE_ED25519]);
    hasher.update(key.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Checks a key name: non-empty, without Unicode spaces and without `+`.
fn check_key_name(name: &str) -> Result<(), ProofError> {
    let reason = if name.is_empty() {
        "a key name is not empty"
    } else if name.chars().any(char::is_whitespace) {
        "a key name has no spaces"
    } else if name.contains('+') {
        "a key name has no plus sign"
    } else if name.chars().any(char::is_control) {
        "a key name has no control characters"
    } else {
        return Ok(());
    };
    Err(ProofError::MalformedKeyName { reason })
}

/// Checks what every note must satisfy: no ASCII control characters other than newline.
/// (A `&str` is valid UTF-8 already.)
fn check_characters(text: &str) -> Result<(), ProofError> {
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(ProofError::MalformedNote {
            reason: "a note has no control characters other than newline",
        });
    }
    Ok(())
}

/// The key that verifies notes: a name and an Ed25519 public key, and the key id they give.
///
/// Its text form is the verifier key `name+hex8+base64(0x01 ‖ public key)` ([`FromStr`] and
/// [`fmt::Display`]), e.g. `PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// The verifier for `key` under `name`. Refuses invalid names
    /// ([`ProofError::MalformedKeyName`]) and weak keys ([`ProofError::WeakKey`]).
    pub fn new(name: &str, key: VerifyingKey) -> Result<NoteVerifier, ProofError> {
        check_key_name(name)?;
        if key.is_weak() {
            return Err(ProofError::WeakKey);
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// The key name, which signature lines carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id, which signatures start with.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// Parses a verifier key `name+hex8+base64(0x01 ‖ public key)`.
///
/// Strict: the key id is eight lowercase hex digits and must be the one the name and key give,
/// the base64 is standard and padded, the type byte is Ed25519's, and the public key is a
/// curve point that is not of small order.
impl FromStr for NoteVerifier {
    type Err = ProofError;

    fn from_str(text: &str) -> Result<NoteVerifier, ProofError> {
        let malformed = |reason| ProofError::MalformedVerifierKey { reason };
        // The name and the id contain no '+'; the base64 after them may.
        let (name, rest) = text
            .split_once('+')
            .ok_or(malformed("a verifier key is name+keyid+key"))?;
        let (id_hex, key_base64) = rest
            .split_once('+')
            .ok_or(malformed("a verifier key is name+keyid+key"))?;
        check_key_name(name).map_err(|_| malformed("the key name is empty or has spaces"))?;
        if id_hex.len() != 8
            || !id_hex
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(malformed("the key id is eight lowercase hex digits"));
        }
        let id = u32::from_str_radix(id_hex, 16)
            .map_err(|_| malformed("the key id is eight lowercase hex digits"))?;
        let key = STANDARD
            .decode(key_base64)
            .map_err(|_| malformed("the key is not standard base64"))?;
        let [key_type, public_key @ ..] = key.as_slice() else {
            return Err(malformed("the key is empty"));
        };
        if *key_type != SIGNATURE_TYPE_ED25519 {
            return Err(malformed("the key is not an Ed25519 key (type 0x01)"));
        }
        let verifier = NoteVerifier::new(name, public_key_from_bytes(public_key)?)?;
        if verifier.key_id != id {
            return Err(malformed("the key id is not the one of this name and key"));
        }
        Ok(verifier)
    }
}

/// Writes the verifier key `name+hex8+base64(0x01 ‖ public key)`.
impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = Vec::with_capacity(33);
        key.push(SIGNATURE_TYPE_ED25519);
        key.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(key)
        )
    }
}

/// Signs `text` with `key` under `key_name`: the note `text ‖ "\n" ‖ "— " name " " base64(id ‖
/// signature) "\n"`.
///
/// `text` must end with a newline and contain no control characters other than newlines
/// ([`ProofError::MalformedNote`]); the name must be valid ([`ProofError::MalformedKeyName`]).
pub fn sign(text: &str, key_name: &str, key: &SigningKey) -> Result<String, ProofError> {
    check_characters(text)?;
    if !text.ends_with('\n') {
        return Err(ProofError::MalformedNote {
            reason: "the note text ends with a newline",
        });
    }
    check_key_name(key_name)?;
    let mut blob = key_id(key_name, &key.verifying_key())
        .to_be_bytes()
        .to_vec();
    blob.extend_from_slice(&key.sign(text.as_bytes()).to_bytes());
    Ok(format!(
        "{text}\n{SIGNATURE_PREFIX}{key_name} {}\n",
        STANDARD.encode(blob)
    ))
}

/// Opens a signed note: checks it and returns its text (with the final newline) once a signature
/// by `verifier` has verified.
///
/// Refuses malformed notes ([`ProofError::MalformedNote`]), a signature by the verifier's key
/// (its name and key id) that does not verify ([`ProofError::BadSignature`]), and notes without
/// one ([`ProofError::NoKnownSignature`]). Signatures by other keys are ignored.
pub fn open<'n>(note: &'n str, verifier: &NoteVerifier) -> Result<&'n str, ProofError> {
    let malformed = |reason| ProofError::MalformedNote { reason };
    check_characters(note)?;
    // The text is separated from the signatures by the last blank line.
    let split = note.rfind("\n\n").ok_or(malformed(
        "a blank line separates the text from the signatures",
    ))?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    let signatures = signatures
        .strip_suffix('\n')
        .ok_or(malformed("a note ends with a signature line and a newline"))?;

    let mut verified = false;
    for (count, line) in signatures.split('\n').enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(malformed("a note has at most 100 signatures"));
        }
        let (name, signature) = line
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(|line| line.split_once(' '))
            .ok_or(malformed(
                "a signature line is an em dash, the key name and the signature",
            ))?;
        check_key_name(name).map_err(|_| malformed("a signature line has an invalid key name"))?;
        let signature = STANDARD
            .decode(signature)
            .map_err(|_| malformed("a signature is not standard base64"))?;
        let [a, b, c, d, signature @ ..] = signature.as_slice() else {
            return Err(malformed("a signature is a key id and at least one byte"));
        };
        if signature.is_empty() {
            return Err(malformed("a signature is a key id and at least one byte"));
        }
        if name != verifier.name || u32::from_be_bytes([*a, *b, *c, *d]) != verifier.key_id {
            continue;
        }
        let signature = ed25519_dalek::Signature::from_slice(signature)
            .map_err(|_| ProofError::BadSignature)?;
        verifier
            .key
            .verify_strict(text.as_bytes(), &signature)
            .map_err(|_| ProofError::BadSignature)?;
        verified = true;
    }
    if !verified {
        return Err(ProofError::NoKnownSignature);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::{NoteVerifier, check_key_name, key_id, open, sign};
    use crate::keys::signing_key_from_seed;

    #[test]
    fn key_names_follow_the_specification() {
        for name in ["example.com/log", "PeterNeumann", "ä"] {
            assert_eq!(check_key_name(name), Ok(()), "{name}");
        }
        for name in [
            "",
            "a b",
            "a+b",
            "a\u{a0}b",
            "a\u{2003}b",
            "a\tb",
            "a\u{7f}b",
        ] {
            assert_eq!(
                check_key_name(name).map_err(|e| e.code()),
                Err("malformed_key_name"),
                "{name:?}"
            );
        }
    }

    #[test]
    fn sign_then_open_round_trips_and_is_deterministic() {
        let key = signing_key_from_seed([9; 32]);
        let verifier = NoteVerifier::new("example.com/log", key.verifying_key()).unwrap();
        assert_eq!(
            verifier.key_id(),
            key_id("example.com/log", &key.verifying_key())
        );
        let note = sign("hello\n\nworld\n", "example.com/log", &key).unwrap();
        assert_eq!(
            sign("hello\n\nworld\n", "example.com/log", &key).unwrap(),
            note
        );
        assert!(note.starts_with("hello\n\nworld\n\n\u{2014} example.com/log "));
        assert_eq!(open(&note, &verifier), Ok("hello\n\nworld\n"));
        // The verifier key round-trips through its text form.
        let text = verifier.to_string();
        assert_eq!(text.parse::<NoteVerifier>(), Ok(verifier));
    }

    #[test]
    fn sign_refuses_what_open_would_refuse() {
        let key = signing_key_from_seed([9; 32]);
        let cases = [
            ("no newline", "name", "malformed_note"),
            ("tab\there\n", "name", "malformed_note"),
            ("ok\n", "bad name", "malformed_key_name"),
            ("ok\n", "", "malformed_key_name"),
        ];
        for (text, name, code) in cases {
            assert_eq!(
                sign(text, name, &key).map_err(|e| e.code()),
                Err(code),
                "{text:?} {name:?}"
            );
        }
    }
}
