//! Property tests over arbitrary input: the parser never panics, a signature covers every bit of
//! the payload type, payload and signature, and the content digest depends on exactly those.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use proptest::prelude::*;
use serde_json::Value;
use umlauf_proof::ProofError;
use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE, Envelope};
use umlauf_proof::keys::signing_key_from_seed;

/// JSON values of any shape, biased towards the envelope's own field names and base64-like text
/// so that the parser gets past its first checks often.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |number| {
            serde_json::Number::from_f64(number).map(Value::Number)
        }),
        any::<String>().prop_map(Value::from),
        "[A-Za-z0-9+/_=-]{0,100}".prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just("payloadType".to_owned()),
        Just("payload".to_owned()),
        Just("signatures".to_owned()),
        Just("keyid".to_owned()),
        Just("sig".to_owned()),
        any::<String>(),
    ];
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A signed command envelope over an arbitrary payload and payload type, and the key's seed.
fn signed_envelope() -> impl Strategy<Value = ([u8; 32], Envelope)> {
    (
        any::<[u8; 32]>(),
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|(seed, payload_type, payload)| {
            (
                seed,
                dsse::sign(&payload_type, &payload, &signing_key_from_seed(seed)),
            )
        })
}

fn verify(envelope: &Envelope, seed: [u8; 32]) -> Result<&[u8], ProofError> {
    let key = signing_key_from_seed(seed).verifying_key();
    dsse::verify(envelope, &envelope.payload_type, &key)
}

/// The envelope's JSON with its base64 written by `engine`.
fn json_with_base64(envelope: &Envelope, engine: &impl base64::Engine) -> String {
    serde_json::json!({
        "payloadType": envelope.payload_type,
        "payload": engine.encode(&envelope.payload),
        "signatures": [{
            "keyid": envelope.signatures[0].keyid,
            "sig": engine.encode(&envelope.signatures[0].sig),
        }],
    })
    .to_string()
}

proptest! {
    #[test]
    fn from_json_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = Envelope::from_json(&bytes);
    }

    #[test]
    fn from_json_never_panics_on_json(value in arbitrary_json()) {
        let _ = Envelope::from_json(value.to_string().as_bytes());
    }

    #[test]
    fn from_json_never_panics_on_envelope_shaped_json(
        payload_type in arbitrary_json(),
        payload in arbitrary_json(),
        keyid in arbitrary_json(),
        sig in arbitrary_json(),
    ) {
        let json = serde_json::json!({
            "payloadType": payload_type,
            "payload": payload,
            "signatures": [{"keyid": keyid, "sig": sig}],
        });
        let _ = Envelope::from_json(json.to_string().as_bytes());
    }

    #[test]
    fn sign_then_verify_round_trips((seed, envelope) in signed_envelope()) {
        prop_assert_eq!(verify(&envelope, seed), Ok(envelope.payload.as_slice()));
        let parsed = Envelope::from_json(envelope.to_json().as_bytes());
        prop_assert_eq!(parsed.as_ref(), Ok(&envelope));
        prop_assert_eq!(
            dsse::verify(&envelope, COMMAND_PAYLOAD_TYPE, &signing_key_from_seed(seed).verifying_key())
                .map_err(|error| error.code()),
            if envelope.payload_type == COMMAND_PAYLOAD_TYPE { Ok(envelope.payload.as_slice()) } else { Err("wrong_payload_type") }
        );
    }

    #[test]
    fn any_flipped_bit_fails_verification(
        (seed, envelope) in signed_envelope(),
        field in 0..3_usize,
        position in any::<prop::sample::Index>(),
    ) {
        let mut tampered = envelope.clone();
        match field {
            0 => {
                let mut bytes = tampered.payload_type.into_bytes();
                prop_assume!(!bytes.is_empty());
                let bit = position.index(bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
                let flipped = String::from_utf8(bytes);
                prop_assume!(flipped.is_ok());
                tampered.payload_type = flipped.unwrap_or_default();
            }
            1 => {
                prop_assume!(!tampered.payload.is_empty());
                let bit = position.index(tampered.payload.len() * 8);
                tampered.payload[bit / 8] ^= 1 << (bit % 8);
            }
            _ => {
                let sig = &mut tampered.signatures[0].sig;
                let bit = position.index(sig.len() * 8);
                sig[bit / 8] ^= 1 << (bit % 8);
            }
        }
        // The signature is checked before the payload type, so a changed type is a bad signature.
        prop_assert_eq!(verify(&tampered, seed), Err(ProofError::BadSignature));
        prop_assert_ne!(tampered.content_digest(), envelope.content_digest());
    }

    #[test]
    fn every_base64_spelling_reads_the_same((seed, envelope) in signed_envelope()) {
        for json in [
            json_with_base64(&envelope, &STANDARD),
            json_with_base64(&envelope, &STANDARD_NO_PAD),
            json_with_base64(&envelope, &URL_SAFE),
            json_with_base64(&envelope, &URL_SAFE_NO_PAD),
        ] {
            let parsed = Envelope::from_json(json.as_bytes());
            prop_assert_eq!(parsed.as_ref(), Ok(&envelope));
            if let Ok(parsed) = &parsed {
                prop_assert_eq!(verify(parsed, seed), Ok(envelope.payload.as_slice()));
                prop_assert_eq!(parsed.content_digest(), envelope.content_digest());
            }
        }
    }

    #[test]
    fn content_digest_ignores_formatting_and_keyid(
        (_seed, envelope) in signed_envelope(),
        keyid in any::<String>(),
    ) {
        // Pretty-printed, with the fields in alphabetical order and URL-safe base64.
        let value: Value = serde_json::from_str(&json_with_base64(&envelope, &URL_SAFE_NO_PAD))
            .unwrap_or_default();
        let reformatted = Envelope::from_json(
            serde_json::to_string_pretty(&value).unwrap_or_default().as_bytes(),
        );
        prop_assert_eq!(
            reformatted.map(|parsed| parsed.content_digest()),
            Ok(envelope.content_digest())
        );
        let mut renamed = envelope.clone();
        renamed.signatures[0].keyid = keyid;
        prop_assert_eq!(renamed.content_digest(), envelope.content_digest());
    }

    #[test]
    fn content_digest_changes_with_payload_type_payload_or_signature(
        (seed, envelope) in signed_envelope(),
        other_payload_type in any::<String>(),
        other_payload in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let key = signing_key_from_seed(seed);
        if other_payload != envelope.payload {
            let other = dsse::sign(&envelope.payload_type, &other_payload, &key);
            prop_assert_ne!(other.content_digest(), envelope.content_digest());
        }
        if other_payload_type != envelope.payload_type {
            let other = dsse::sign(&other_payload_type, &envelope.payload, &key);
            prop_assert_ne!(other.content_digest(), envelope.content_digest());
        }
        // The same content signed by another key has another signature, hence another digest.
        let mut other_seed = seed;
        other_seed[0] ^= 1;
        let other = dsse::sign(&envelope.payload_type, &envelope.payload, &signing_key_from_seed(other_seed));
        prop_assert_ne!(other.content_digest(), envelope.content_digest());
    }

    #[test]
    fn a_mutated_envelope_that_still_verifies_says_the_same(
        (seed, envelope) in signed_envelope(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut json = envelope.to_json().into_bytes();
        let index = position.index(json.len());
        json[index] = byte;
        if let Ok(mutated) = Envelope::from_json(&json)
            && verify(&mutated, seed).is_ok()
        {
            // Only the unauthenticated keyid (or nothing) may have changed.
            prop_assert_eq!(&mutated.payload_type, &envelope.payload_type);
            prop_assert_eq!(&mutated.payload, &envelope.payload);
            prop_assert_eq!(mutated.content_digest(), envelope.content_digest());
        }
    }
}
