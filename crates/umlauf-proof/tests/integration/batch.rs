//! `umlauf_proof::batch::verify` must give `verify_strict`'s verdict for every triple: the known
//! edge cases one by one and hidden among valid signatures, and random valid and corrupted
//! triples.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use proptest::prelude::*;
use serde::Deserialize;
use umlauf_proof::batch::{self, Triple};
use umlauf_proof::keys::signing_key_from_seed;

const EDGE_CASES: &str = include_str!("../../../../proto/vectors/ed25519-edge-cases.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeCases {
    #[allow(dead_code, reason = "documentation inside the vector file")]
    description: String,
    #[allow(dead_code, reason = "documentation inside the vector file")]
    sources: Vec<String>,
    cases: Vec<EdgeCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeCase {
    source: String,
    description: String,
    message: String,
    public_key: String,
    signature: String,
    strict: bool,
    dalek_verify_batch: Option<bool>,
}

/// An owned triple; `key` is `None` where the bytes are not a curve point at all.
struct Owned {
    key: Option<VerifyingKey>,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl Owned {
    fn triple(&self) -> Option<Triple<'_>> {
        Some(Triple {
            key: self.key.as_ref()?,
            message: &self.message,
            signature: &self.signature,
        })
    }

    fn strict(&self) -> bool {
        let (Some(key), Ok(signature)) = (&self.key, Signature::from_slice(&self.signature)) else {
            return false;
        };
        key.verify_strict(&self.message, &signature).is_ok()
    }
}

fn edge_cases() -> Vec<(EdgeCase, Owned)> {
    let file: EdgeCases = serde_json::from_str(EDGE_CASES).unwrap();
    file.cases
        .into_iter()
        .map(|case| {
            let key_bytes: [u8; 32] = hex::decode(&case.public_key).unwrap().try_into().unwrap();
            let owned = Owned {
                key: VerifyingKey::from_bytes(&key_bytes).ok(),
                message: hex::decode(&case.message).unwrap(),
                signature: hex::decode(&case.signature).unwrap(),
            };
            (case, owned)
        })
        .collect()
}

/// Valid signatures by a few keys, to hide edge cases among.
fn valid(count: usize) -> Vec<Owned> {
    let keys: Vec<SigningKey> = (1..=5_u8)
        .map(|seed| signing_key_from_seed([seed; 32]))
        .collect();
    (0..count)
        .map(|index| {
            let key = &keys[index % keys.len()];
            let message = format!("valid message {index}").into_bytes();
            Owned {
                key: Some(key.verifying_key()),
                signature: key.sign(&message).to_vec(),
                message,
            }
        })
        .collect()
}

/// Batch verdicts for `owned`, `false` for triples without a key.
fn batch_verdicts(owned: &[Owned]) -> Vec<bool> {
    let with_keys: Vec<(usize, Triple<'_>)> = owned
        .iter()
        .enumerate()
        .filter_map(|(index, owned)| Some((index, owned.triple()?)))
        .collect();
    let triples: Vec<Triple<'_>> = with_keys.iter().map(|(_, triple)| *triple).collect();
    let verdicts = batch::verify(&triples);
    let mut all = vec![false; owned.len()];
    for ((index, _), verdict) in with_keys.iter().zip(verdicts) {
        all[*index] = verdict;
    }
    all
}

#[test]
fn every_edge_case_gets_the_strict_verdict_alone() {
    for (case, owned) in edge_cases() {
        assert_eq!(
            owned.strict(),
            case.strict,
            "{}: {}",
            case.source,
            case.description
        );
        assert_eq!(
            batch_verdicts(std::slice::from_ref(&owned)),
            vec![case.strict],
            "{}: {}",
            case.source,
            case.description
        );
    }
}

#[test]
fn every_edge_case_gets_the_strict_verdict_among_valid_signatures() {
    for (case, owned) in edge_cases() {
        let mut all = valid(40);
        all.insert(17, owned);
        let mut expected = vec![true; 41];
        expected[17] = case.strict;
        assert_eq!(batch_verdicts(&all), expected, "{}", case.source);
    }
    // And all of them in one batch.
    let mut all = valid(64);
    let mut expected = vec![true; 64];
    for (offset, (case, owned)) in edge_cases().into_iter().enumerate() {
        all.insert(offset * 4, owned);
        expected.insert(offset * 4, case.strict);
    }
    assert_eq!(batch_verdicts(&all), expected);
}

#[test]
fn dalek_verify_batch_accepts_the_mixed_order_r_cases_that_strict_rejects() {
    // Why this module does not trust a plain cofactorless batch: these pass ed25519-dalek's
    // `verify_batch` although `verify_strict` rejects them.
    let mut checked = 0;
    for (case, owned) in edge_cases() {
        let Some(expected) = case.dalek_verify_batch else {
            continue;
        };
        let key = owned.key.unwrap();
        let signature = Signature::from_slice(&owned.signature).unwrap();
        let dalek =
            ed25519_dalek::verify_batch(&[owned.message.as_slice()], &[signature], &[key]).is_ok();
        assert_eq!(dalek, expected, "{}", case.description);
        assert!(!case.strict);
        assert_eq!(batch_verdicts(std::slice::from_ref(&owned)), vec![false]);
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn a_batch_of_valid_signatures_is_accepted_in_one_equation() {
    let all = valid(300);
    let triples: Vec<Triple<'_>> = all.iter().filter_map(Owned::triple).collect();
    let (verdicts, stats) = batch::verify_with_stats(&triples);
    assert!(verdicts.iter().all(|verdict| *verdict));
    assert_eq!(stats.batched, 300);
    assert_eq!(stats.verified_after_failure, 0);
    assert!(batch::verify(&[]).is_empty());
}

/// How a valid triple is corrupted.
#[derive(Debug, Clone, Copy)]
enum Corruption {
    None,
    FlipMessageBit(usize),
    FlipSignatureBit(usize),
    OtherKey,
    AddOrderToS,
    SetSignatureLength(usize),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        4 => Just(Corruption::None),
        1 => (0..400_usize).prop_map(Corruption::FlipMessageBit),
        2 => (0..512_usize).prop_map(Corruption::FlipSignatureBit),
        1 => Just(Corruption::OtherKey),
        1 => Just(Corruption::AddOrderToS),
        1 => (0..80_usize).prop_map(Corruption::SetSignatureLength),
    ]
}

/// ℓ, little-endian.
const ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

fn corrupted(seed: u8, index: usize, corruption: Corruption) -> Owned {
    let key = signing_key_from_seed([seed; 32]);
    let mut message = format!("message {index} of a random batch, signed by {seed}").into_bytes();
    let mut signature = key.sign(&message).to_vec();
    let mut verifying = key.verifying_key();
    match corruption {
        Corruption::None => {}
        Corruption::FlipMessageBit(bit) => {
            let bit = bit % (message.len() * 8);
            message[bit / 8] ^= 1 << (bit % 8);
        }
        Corruption::FlipSignatureBit(bit) => signature[bit / 8] ^= 1 << (bit % 8),
        Corruption::OtherKey => {
            verifying = signing_key_from_seed([seed ^ 0xff; 32]).verifying_key();
        }
        Corruption::AddOrderToS => {
            // s + ℓ: the same scalar, non-canonical; strict verification refuses it.
            let mut carry = 0_u16;
            for (byte, order) in signature[32..].iter_mut().zip(ORDER) {
                let sum = u16::from(*byte) + u16::from(order) + carry;
                *byte = (sum & 0xff) as u8;
                carry = sum >> 8;
            }
        }
        Corruption::SetSignatureLength(length) => signature.resize(length, 0),
    }
    Owned {
        key: Some(verifying),
        message,
        signature,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn batch_verdicts_equal_strict_verdicts(
        triples in prop::collection::vec((1..6_u8, corruption()), 0..40),
    ) {
        let owned: Vec<Owned> = triples
            .iter()
            .enumerate()
            .map(|(index, (seed, corruption))| corrupted(*seed, index, *corruption))
            .collect();
        let strict: Vec<bool> = owned.iter().map(Owned::strict).collect();
        prop_assert_eq!(batch_verdicts(&owned), strict);
    }
}
