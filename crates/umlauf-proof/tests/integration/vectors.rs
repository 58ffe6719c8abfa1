//! Every value in `proto/vectors/dsse.json` and `proto/vectors/signing.json` is checked here, so
//! the files a client in another language tests against cannot drift from this crate.

use serde::Deserialize;
use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE, Envelope};
use umlauf_proof::keys::{
    key_id, public_key_from_base64, public_key_to_base64, signing_key_from_pem,
    signing_key_from_seed, signing_key_to_pem,
};

const DSSE_VECTORS: &str = include_str!("../../../../proto/vectors/dsse.json");
const SIGNING_VECTORS: &str = include_str!("../../../../proto/vectors/signing.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaeVectors {
    description: String,
    vectors: Vec<PaeVector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaeVector {
    description: String,
    payload_type: String,
    payload_hex: String,
    pae_text: Option<String>,
    pae_hex: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SigningVectors {
    description: String,
    seed_hex: String,
    private_key_pem: String,
    public_key_base64: String,
    key_id: String,
    payload_type: String,
    payload: String,
    pae_hex: String,
    signature_base64: String,
    envelope_json: String,
    content_digest_hex: String,
    cases: Vec<EnvelopeCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeCase {
    description: String,
    expected: String,
    envelope_json: String,
}

#[test]
fn dsse_pae_vectors() {
    let file: PaeVectors = serde_json::from_str(DSSE_VECTORS).unwrap();
    assert!(!file.description.is_empty());
    assert_eq!(
        file.vectors[0].pae_text.as_deref(),
        Some("DSSEv1 29 http://example.com/HelloWorld 11 hello world"),
        "the first vector is the DSSE specification's own"
    );
    for vector in &file.vectors {
        let pae = dsse::pae(
            &vector.payload_type,
            &hex::decode(&vector.payload_hex).unwrap(),
        );
        assert_eq!(hex::encode(&pae), vector.pae_hex, "{}", vector.description);
        if let Some(text) = &vector.pae_text {
            assert_eq!(pae, text.as_bytes(), "{}", vector.description);
        }
    }
}

#[test]
fn signing_vectors() {
    let file: SigningVectors = serde_json::from_str(SIGNING_VECTORS).unwrap();
    assert!(!file.description.is_empty());

    // The key, in every form.
    let seed: [u8; 32] = hex::decode(&file.seed_hex).unwrap().try_into().unwrap();
    assert_eq!(
        seed,
        std::array::from_fn(|index| u8::try_from(index + 1).unwrap())
    );
    let key = signing_key_from_seed(seed);
    let public = key.verifying_key();
    assert_eq!(signing_key_to_pem(&key), file.private_key_pem);
    assert_eq!(signing_key_from_pem(&file.private_key_pem), Ok(key.clone()));
    assert_eq!(public_key_to_base64(&public), file.public_key_base64);
    assert_eq!(public_key_from_base64(&file.public_key_base64), Ok(public));
    assert_eq!(key_id(&public), file.key_id);

    // Signing the command.
    assert_eq!(file.payload_type, COMMAND_PAYLOAD_TYPE);
    let payload = file.payload.as_bytes();
    assert_eq!(
        hex::encode(dsse::pae(&file.payload_type, payload)),
        file.pae_hex
    );
    let envelope = dsse::sign(&file.payload_type, payload, &key);
    assert_eq!(envelope.signatures[0].keyid, file.key_id);
    assert_eq!(
        standard_base64(&envelope.signatures[0].sig),
        file.signature_base64
    );
    assert_eq!(envelope.to_json(), file.envelope_json);
    assert_eq!(
        hex::encode(envelope.content_digest()),
        file.content_digest_hex
    );

    // Reading it back.
    let parsed = Envelope::from_json(file.envelope_json.as_bytes()).unwrap();
    assert_eq!(parsed, envelope);
    assert_eq!(
        dsse::verify(&parsed, COMMAND_PAYLOAD_TYPE, &public),
        Ok(payload)
    );

    assert!(file.cases.iter().any(|case| case.expected == "ok"));
    assert!(file.cases.iter().any(|case| case.expected != "ok"));
    for case in &file.cases {
        let outcome = Envelope::from_json(case.envelope_json.as_bytes()).and_then(|envelope| {
            let verified = dsse::verify(&envelope, COMMAND_PAYLOAD_TYPE, &public)?.to_vec();
            Ok((verified, envelope.content_digest()))
        });
        match outcome {
            Ok((verified, digest)) => {
                assert_eq!(case.expected, "ok", "{}", case.description);
                assert_eq!(verified, payload, "{}", case.description);
                assert_eq!(
                    hex::encode(digest),
                    file.content_digest_hex,
                    "{}",
                    case.description
                );
            }
            Err(error) => assert_eq!(error.code(), case.expected, "{}: {error}", case.description),
        }
    }
}

fn standard_base64(sig: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(sig)
}
