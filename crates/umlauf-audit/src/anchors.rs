//! The trust anchors an auditor is given out of band: never taken from the history it checks.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use umlauf_domain::ids::{KeyId, PublicKey};
use umlauf_proof::VerifyingKey;
use umlauf_proof::keys::{public_key_from_base64, public_key_to_base64};
use umlauf_proof::note::NoteVerifier;

/// The genesis keys of a deployment and its log key.
///
/// Its JSON form, as an auditor keeps it in a file it trusts:
/// `{"genesis_keys": ["<base64 public key>", …], "log_key": "<name>+<hex8>+<base64>"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchors {
    /// The keys that may constitute bodies and manage secretariat keys.
    pub genesis_keys: Vec<VerifyingKey>,
    /// The key that signs the log's checkpoints (a C2SP verifier key).
    pub log_key: NoteVerifier,
}

impl TrustAnchors {
    /// Reads anchors from their JSON form; weak or malformed keys are refused.
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// The compact JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The genesis keys by their domain key id, as `umlauf_domain::authorize` takes them.
    pub fn genesis_key_ids(&self) -> BTreeSet<KeyId> {
        self.genesis_keys
            .iter()
            .map(|key| KeyId::of(&PublicKey(key.to_bytes())))
            .collect()
    }
}

impl fmt::Display for TrustAnchors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.genesis_keys.iter().map(public_key_to_base64).collect();
        write!(
            f,
            "genesis keys [{}], log key {}",
            keys.join(", "),
            self.log_key
        )
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireAnchors {
    genesis_keys: Vec<String>,
    log_key: String,
}

impl Serialize for TrustAnchors {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireAnchors {
            genesis_keys: self.genesis_keys.iter().map(public_key_to_base64).collect(),
            log_key: self.log_key.to_string(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TrustAnchors {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireAnchors::deserialize(deserializer)?;
        let genesis_keys = wire
            .genesis_keys
            .iter()
            .map(|key| public_key_from_base64(key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| serde::de::Error::custom(format_args!("genesis key: {error}")))?;
        let log_key = wire
            .log_key
            .parse()
            .map_err(|error| serde::de::Error::custom(format_args!("log key: {error}")))?;
        Ok(Self {
            genesis_keys,
            log_key,
        })
    }
}
