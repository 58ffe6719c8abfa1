//! DSSE envelopes (secure-systems-lab/dsse, protocol v1): how a command travels signed.
//!
//! The signature covers the pre-authentication encoding [`pae`] of the payload type and the exact
//! payload bytes, so no JSON canonicalisation is involved. Verification follows the spec's order:
//! check the signature, then the payload type, and only then hand out the payload for parsing.
//! The `keyid` is an unauthenticated hint for finding the key; nothing here trusts it.

use ed25519_dalek::Signer as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::keys::{SigningKey, VerifyingKey, key_id};
use crate::{ProofError, lenient_base64};

/// The payload type of an umlauf command: the JSON text of one command.
pub const COMMAND_PAYLOAD_TYPE: &str = "application/vnd.umlauf.command.v1+json";

/// A DSSE envelope: a payload, its type, and the signatures over both.
///
/// Its JSON form is `{"payloadType":…,"payload":<base64>,"signatures":[{"keyid":…,"sig":<base64>}]}`.
/// A command envelope carries exactly one signature; [`Envelope::from_json`] and [`verify`] refuse
/// any other number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The media type of the payload, e.g. [`COMMAND_PAYLOAD_TYPE`]. It is signed.
    pub payload_type: String,
    /// The exact payload bytes that were signed.
    pub payload: Vec<u8>,
    /// The signatures over [`pae`] of the payload type and payload.
    pub signatures: Vec<Signature>,
}

/// One signature of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Which key made the signature: a hint, never authenticated (see [`crate::keys::key_id`]).
    pub keyid: String,
    /// The raw signature bytes (64 for Ed25519).
    pub sig: Vec<u8>,
}

/// The DSSE pre-authentication encoding, the bytes that are actually signed:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    // Sized once: the prefix, at most 20 digits for each length, and the two parts.
    let mut encoding =
        Vec::with_capacity(7 + 20 + 1 + payload_type.len() + 1 + 20 + 1 + payload.len());
    encoding.extend_from_slice(b"DSSEv1 ");
    push_decimal(&mut encoding, payload_type.len());
    encoding.push(b' ');
    encoding.extend_from_slice(payload_type.as_bytes());
    encoding.push(b' ');
    push_decimal(&mut encoding, payload.len());
    encoding.push(b' ');
    encoding.extend_from_slice(payload);
    encoding
}

/// Appends `value` in decimal ASCII digits, as `format!("{value}")` writes it.
fn push_decimal(out: &mut Vec<u8>, mut value: usize) {
    let mut digits = [0_u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // A digit: `value % 10` is below 10.
        digits[start] = b'0' + u8::try_from(value % 10).unwrap_or(0);
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Signs `payload` as `payload_type` with `key`: an envelope with exactly one signature, whose
/// `keyid` is the [`key_id`] of the key's public half.
pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Envelope {
    let signature = key.sign(&pae(payload_type, payload));
    Envelope {
        payload_type: payload_type.to_owned(),
        payload: payload.to_vec(),
        signatures: vec![Signature {
            keyid: key_id(&key.verifying_key()),
            sig: signature.to_vec(),
        }],
    }
}

/// Verifies a command envelope against `key` and returns its payload, for the caller to parse.
///
/// In this order: exactly one signature ([`ProofError::SignatureCount`]), a strict Ed25519
/// signature by `key` over the PAE ([`ProofError::BadSignature`]; weak keys and malleable
/// signatures fail here too), then the payload type ([`ProofError::WrongPayloadType`]). The payload
/// is only returned once all of them pass. The `keyid` is not consulted.
pub fn verify<'e>(
    envelope: &'e Envelope,
    expected_payload_type: &str,
    key: &VerifyingKey,
) -> Result<&'e [u8], ProofError> {
    let [signature] = envelope.signatures.as_slice() else {
        return Err(ProofError::SignatureCount {
            found: envelope.signatures.len(),
        });
    };
    let signature = ed25519_dalek::Signature::from_slice(&signature.sig)
        .map_err(|_| ProofError::BadSignature)?;
    key.verify_strict(&pae(&envelope.payload_type, &envelope.payload), &signature)
        .map_err(|_| ProofError::BadSignature)?;
    if envelope.payload_type != expected_payload_type {
        return Err(ProofError::WrongPayloadType {
            expected: expected_payload_type.to_owned(),
            found: envelope.payload_type.clone(),
        });
    }
    Ok(&envelope.payload)
}

impl Envelope {
    /// Parses the JSON form of a command envelope, and only the envelope: the payload stays bytes.
    ///
    /// Strict: unknown, duplicate or mistyped fields and trailing bytes are refused
    /// ([`ProofError::MalformedEnvelope`]), base64 may use either alphabet with or without padding
    /// ([`ProofError::BadBase64`] otherwise), and there must be exactly one signature
    /// ([`ProofError::SignatureCount`]). As DSSE allows, an omitted `keyid` reads as empty.
    pub fn from_json(json: &[u8]) -> Result<Envelope, ProofError> {
        let wire: WireEnvelope =
            serde_json::from_slice(json).map_err(|error| ProofError::MalformedEnvelope {
                reason: error.to_string(),
            })?;
        Envelope::from_wire(wire)
    }

    /// Builds an envelope from the strings of its JSON form (the payload and each signature's
    /// `sig` in base64, a signature as its `keyid` and `sig`), decoded exactly as
    /// [`Envelope::from_json`] decodes them: for readers that parse the JSON themselves, e.g. as
    /// part of a larger document, without building the envelope's JSON value.
    pub fn from_json_strings(
        payload_type: &str,
        payload: &str,
        signatures: &[(&str, &str)],
    ) -> Result<Envelope, ProofError> {
        let [(keyid, sig)] = signatures else {
            return Err(ProofError::SignatureCount {
                found: signatures.len(),
            });
        };
        Ok(Envelope {
            payload_type: payload_type.to_owned(),
            payload: lenient_base64::decode(payload, "payload")?,
            signatures: vec![Signature {
                keyid: (*keyid).to_owned(),
                sig: lenient_base64::decode(sig, "signatures[0].sig")?,
            }],
        })
    }

    /// The payload and signature bytes of a one-signature envelope given as the strings of its
    /// JSON form, decoded exactly as [`Envelope::from_json_strings`] decodes them, with its
    /// errors: for readers that need only the bytes, without building the envelope.
    pub fn decode_json_strings(payload: &str, sig: &str) -> Result<(Vec<u8>, Vec<u8>), ProofError> {
        Ok((
            lenient_base64::decode(payload, "payload")?,
            lenient_base64::decode(sig, "signatures[0].sig")?,
        ))
    }

    /// The compact JSON form, fields in the order `payloadType`, `payload`, `signatures`, base64
    /// in the standard alphabet with padding.
    pub fn to_json(&self) -> String {
        let signatures: Vec<String> = self
            .signatures
            .iter()
            .map(|signature| {
                format!(
                    r#"{{"keyid":{},"sig":{}}}"#,
                    json_string(&signature.keyid),
                    json_string(&lenient_base64::encode(&signature.sig)),
                )
            })
            .collect();
        format!(
            r#"{{"payloadType":{},"payload":{},"signatures":[{}]}}"#,
            json_string(&self.payload_type),
            json_string(&lenient_base64::encode(&self.payload)),
            signatures.join(","),
        )
    }

    /// A digest of what was signed and the signature, for recognising a re-sent command:
    /// SHA-256 over the PAE bytes followed by the raw signature bytes (of each signature in turn;
    /// a command envelope has one).
    ///
    /// It does not depend on JSON formatting, the base64 alphabet or the unauthenticated `keyid`,
    /// and it changes with the payload type, the payload or the signature.
    pub fn content_digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(pae(&self.payload_type, &self.payload));
        for signature in &self.signatures {
            hasher.update(&signature.sig);
        }
        hasher.finalize().into()
    }

    fn from_wire(wire: WireEnvelope) -> Result<Envelope, ProofError> {
        let signatures: Vec<(&str, &str)> = wire
            .signatures
            .iter()
            .map(|signature| (signature.keyid.as_str(), signature.sig.as_str()))
            .collect();
        Envelope::from_json_strings(&wire.payload_type, &wire.payload, &signatures)
    }
}

/// Writes the same bytes as [`Envelope::to_json`], so an envelope embedded in a larger document
/// (a log record) reads the same as one on its own.
impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireEnvelope {
            payload_type: self.payload_type.clone(),
            payload: lenient_base64::encode(&self.payload),
            signatures: self
                .signatures
                .iter()
                .map(|signature| WireSignature {
                    keyid: signature.keyid.clone(),
                    sig: lenient_base64::encode(&signature.sig),
                })
                .collect(),
        }
        .serialize(serializer)
    }
}

/// Reads as strictly as [`Envelope::from_json`]; the error message starts with the error code.
impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireEnvelope::deserialize(deserializer)?;
        Envelope::from_wire(wire)
            .map_err(|error| serde::de::Error::custom(format_args!("{}: {error}", error.code())))
    }
}

/// The envelope as it is spelled in JSON, before base64 decoding.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireEnvelope {
    payload_type: String,
    payload: String,
    signatures: Vec<WireSignature>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSignature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

/// A JSON string literal; `Value`'s `Display` cannot fail, unlike `serde_json::to_string`.
fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::{COMMAND_PAYLOAD_TYPE, Envelope, pae, sign, verify};
    use crate::keys::signing_key_from_seed;

    #[test]
    fn pae_matches_the_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn pae_writes_lengths_in_decimal() {
        for length in [1, 9, 10, 99, 100, 1_000, 12_345, 1_000_000] {
            let payload = vec![b'x'; length];
            let mut expected = format!(
                "DSSEv1 {} {} {length} ",
                length % 97,
                "t".repeat(length % 97)
            )
            .into_bytes();
            expected.extend_from_slice(&payload);
            assert_eq!(
                pae(&"t".repeat(length % 97), &payload),
                expected,
                "{length}"
            );
        }
    }

    /// Parses `json` and expects `ok` or the given error code.
    fn check(json: &str, expected: &str) {
        let outcome = match Envelope::from_json(json.as_bytes()) {
            Ok(_) => "ok",
            Err(error) => error.code(),
        };
        assert_eq!(outcome, expected, "{json}");
    }

    #[test]
    fn from_json_is_strict_about_the_envelope() {
        let sig = "A".repeat(86);
        let signature = format!(r#"{{"keyid":"k","sig":"{sig}"}}"#);
        let cases = [
            (
                format!(r#"{{"payloadType":"t","payload":"aGk=","signatures":[{signature}]}}"#),
                "ok",
            ),
            (
                format!(r#"{{"signatures":[{signature}],"payload":"aGk","payloadType":"t"}}"#),
                "ok",
            ),
            (
                format!(
                    r#"{{"payloadType":"t","payload":"aGk=","signatures":[{{"sig":"{sig}"}}]}}"#
                ),
                "ok",
            ),
            (
                format!(
                    r#" {{ "payloadType" : "t", "payload" : "aGk=", "signatures" : [ {signature} ] }} "#
                ),
                "ok",
            ),
            (
                format!(
                    r#"{{"payloadType":"t","payload":"aGk=","signatures":[{signature}],"x":1}}"#
                ),
                "malformed_envelope",
            ),
            (
                format!(
                    r#"{{"payloadType":"t","payload":"aGk=","signatures":[{{"keyid":"k","sig":"{sig}","x":1}}]}}"#
                ),
                "malformed_envelope",
            ),
            (
                format!(
                    r#"{{"payloadType":"t","payloadType":"t","payload":"aGk=","signatures":[{signature}]}}"#
                ),
                "malformed_envelope",
            ),
            (
                format!(r#"{{"payload":"aGk=","signatures":[{signature}]}}"#),
                "malformed_envelope",
            ),
            (
                format!(r#"{{"payloadType":null,"payload":"aGk=","signatures":[{signature}]}}"#),
                "malformed_envelope",
            ),
            (
                format!(r#"{{"payloadType":"t","payload":"aGk=","signatures":[{signature}]}} x"#),
                "malformed_envelope",
            ),
            (format!(r#"[{signature}]"#), "malformed_envelope"),
            (String::new(), "malformed_envelope"),
            (
                format!(r#"{{"payloadType":"t","payload":"a Gk=","signatures":[{signature}]}}"#),
                "bad_base64",
            ),
            (
                r#"{"payloadType":"t","payload":"aGk=","signatures":[{"keyid":"k","sig":"*"}]}"#
                    .to_owned(),
                "bad_base64",
            ),
            (
                r#"{"payloadType":"t","payload":"aGk=","signatures":[]}"#.to_owned(),
                "signature_count",
            ),
            (
                format!(
                    r#"{{"payloadType":"t","payload":"aGk=","signatures":[{signature},{signature}]}}"#
                ),
                "signature_count",
            ),
        ];
        for (json, expected) in cases {
            check(&json, expected);
        }
    }

    #[test]
    fn verify_checks_signature_before_payload_type() {
        let key = signing_key_from_seed([7; 32]);
        let mut envelope = sign("application/json", b"{}", &key);
        assert_eq!(
            verify(&envelope, COMMAND_PAYLOAD_TYPE, &key.verifying_key()).map_err(|e| e.code()),
            Err("wrong_payload_type")
        );
        // Relabelling the type breaks the signature, and that is what is reported.
        envelope.payload_type = COMMAND_PAYLOAD_TYPE.to_owned();
        assert_eq!(
            verify(&envelope, COMMAND_PAYLOAD_TYPE, &key.verifying_key()).map_err(|e| e.code()),
            Err("bad_signature")
        );
    }

    #[test]
    fn verify_refuses_other_signature_counts_and_lengths() {
        let key = signing_key_from_seed([7; 32]);
        let envelope = sign(COMMAND_PAYLOAD_TYPE, b"{}", &key);
        let mut twice = envelope.clone();
        twice.signatures.push(envelope.signatures[0].clone());
        let mut none = envelope.clone();
        none.signatures.clear();
        let mut short = envelope;
        short.signatures[0].sig.pop();
        for (envelope, code) in [
            (twice, "signature_count"),
            (none, "signature_count"),
            (short, "bad_signature"),
        ] {
            assert_eq!(
                verify(&envelope, COMMAND_PAYLOAD_TYPE, &key.verifying_key()).map_err(|e| e.code()),
                Err(code)
            );
        }
    }

    #[test]
    fn serde_agrees_with_to_json_and_from_json() {
        let key = signing_key_from_seed([7; 32]);
        let envelope = sign("type with \"quotes\" and \u{e4}", b"\x00\xff payload", &key);
        let json = envelope.to_json();
        assert_eq!(serde_json::to_string(&envelope).unwrap(), json);
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), envelope);
        assert_eq!(Envelope::from_json(json.as_bytes()), Ok(envelope));
        let error =
            serde_json::from_str::<Envelope>(r#"{"payloadType":"t","payload":"","signatures":[]}"#)
                .unwrap_err();
        assert!(
            error.to_string().starts_with("signature_count: "),
            "{error}"
        );
    }
}
