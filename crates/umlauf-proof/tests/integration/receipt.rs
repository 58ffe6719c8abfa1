//! Receipts against `proto/vectors/checkpoint-receipt.json`, tampered field by field, and the
//! whole path a service takes: append through a frontier into a subtree store, sign, prove.

use std::collections::HashMap;

use proptest::prelude::*;
use serde::Deserialize;
use umlauf_proof::checkpoint::{self, Checkpoint};
use umlauf_proof::keys::signing_key_from_seed;
use umlauf_proof::merkle::{Frontier, Hash, ProofPlan, SubtreeId, leaf_hash};
use umlauf_proof::note::NoteVerifier;
use umlauf_proof::receipt::Receipt;

const RECEIPT_VECTORS: &str = include_str!("../../../../proto/vectors/checkpoint-receipt.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    description: String,
    verifier_key: String,
    record_hex: String,
    receipt: Receipt,
    receipt_json: String,
    newer_checkpoint: String,
    consistency_proof: Vec<String>,
}

struct Fixture {
    log_key: NoteVerifier,
    record: Vec<u8>,
    receipt: Receipt,
    newer: String,
    consistency: Vec<Hash>,
}

fn fixture() -> Fixture {
    let file: Vectors = serde_json::from_str(RECEIPT_VECTORS).unwrap();
    assert!(!file.description.is_empty());
    assert_eq!(file.receipt.to_json(), file.receipt_json);
    assert_eq!(
        Receipt::from_json(file.receipt_json.as_bytes()).as_ref(),
        Ok(&file.receipt)
    );
    Fixture {
        log_key: file.verifier_key.parse().unwrap(),
        record: hex::decode(&file.record_hex).unwrap(),
        receipt: file.receipt,
        newer: file.newer_checkpoint,
        consistency: file
            .consistency_proof
            .iter()
            .map(|hash| hex::decode(hash).unwrap().try_into().unwrap())
            .collect(),
    }
}

/// The key of the vector files' log: the bytes 0x21..0x40 as seed.
fn log_signing_key() -> umlauf_proof::keys::SigningKey {
    signing_key_from_seed(std::array::from_fn(|index| {
        u8::try_from(index + 0x21).unwrap()
    }))
}

fn code<T>(result: Result<T, umlauf_proof::ProofError>) -> &'static str {
    result.map_or_else(|error| error.code(), |_| "ok")
}

#[test]
fn the_vector_receipt_verifies_with_and_without_its_record() {
    let f = fixture();
    let checkpoint = f.receipt.verify(Some(&f.record), &f.log_key).unwrap();
    assert_eq!(checkpoint.size, 7);
    assert_eq!(checkpoint.origin, f.log_key.name());
    assert_eq!(f.receipt.verify(None, &f.log_key), Ok(checkpoint));
    let newer = f
        .receipt
        .verify_against_newer(&f.newer, &f.consistency, &f.log_key)
        .unwrap();
    assert_eq!(newer.size, 8);
    // The log key of the vectors is the one made from its seed.
    assert_eq!(
        NoteVerifier::new(f.log_key.name(), log_signing_key().verifying_key()).as_ref(),
        Ok(&f.log_key)
    );
}

#[test]
fn tampering_with_any_field_is_caught() {
    let f = fixture();
    let key = log_signing_key();
    let sign =
        |checkpoint: &Checkpoint| checkpoint::sign(checkpoint, f.log_key.name(), &key).unwrap();
    let original = checkpoint::verify(&f.receipt.checkpoint, &f.log_key).unwrap();
    let mut cases: Vec<(&str, Receipt, Option<Vec<u8>>, &str)> = Vec::new();
    let mut with = |description, change: &dyn Fn(&mut Receipt), record, expected| {
        let mut receipt = f.receipt.clone();
        change(&mut receipt);
        cases.push((description, receipt, record, expected));
    };

    with(
        "another record",
        &|_| {},
        Some(vec![0x20, 0x22]),
        "leaf_hash_mismatch",
    );
    with(
        "the empty record",
        &|_| {},
        Some(Vec::new()),
        "leaf_hash_mismatch",
    );
    for position in [0, 1, 3, 5, 7, 8, u64::MAX] {
        with(
            "another position",
            &move |r| r.position = position,
            None,
            "bad_inclusion_proof",
        );
    }
    with(
        "leaf hash bit",
        &|r| r.leaf_hash[31] ^= 1,
        None,
        "bad_inclusion_proof",
    );
    with(
        "leaf hash bit, record given",
        &|r| r.leaf_hash[0] ^= 0x80,
        Some(f.record.clone()),
        "leaf_hash_mismatch",
    );
    for position in 0..f.receipt.inclusion_proof.len() {
        with(
            "inclusion proof bit",
            &move |r| r.inclusion_proof[position][7] ^= 4,
            None,
            "bad_inclusion_proof",
        );
    }
    with(
        "proof hash dropped",
        &|r| r.inclusion_proof.truncate(2),
        None,
        "bad_inclusion_proof",
    );
    with(
        "proof hash added",
        &|r| r.inclusion_proof.push([0; 32]),
        None,
        "bad_inclusion_proof",
    );
    with(
        "proof reversed",
        &|r| r.inclusion_proof.reverse(),
        None,
        "bad_inclusion_proof",
    );
    with(
        "checkpoint size edited",
        &|r| r.checkpoint = r.checkpoint.replacen("\n7\n", "\n8\n", 1),
        None,
        "bad_signature",
    );
    with(
        "checkpoint unsigned",
        &|r| r.checkpoint = original.body(),
        None,
        "malformed_note",
    );
    let other_root = sign(&Checkpoint {
        root: [9; 32],
        ..original.clone()
    });
    with(
        "a signed checkpoint with the same size but another root",
        &move |r| r.checkpoint = other_root.clone(),
        None,
        "bad_inclusion_proof",
    );
    let smaller = sign(&Checkpoint {
        size: 3,
        ..original.clone()
    });
    with(
        "a signed checkpoint too small for the position",
        &move |r| r.checkpoint = smaller.clone(),
        None,
        "bad_inclusion_proof",
    );
    let other_log = sign(&Checkpoint {
        origin: "umlauf.example/other".to_owned(),
        ..original.clone()
    });
    with(
        "a checkpoint of another log signed with the same key",
        &move |r| r.checkpoint = other_log.clone(),
        None,
        "wrong_origin",
    );
    let stranger = NoteVerifier::new(
        f.log_key.name(),
        signing_key_from_seed([5; 32]).verifying_key(),
    )
    .unwrap();
    let by_stranger =
        checkpoint::sign(&original, f.log_key.name(), &signing_key_from_seed([5; 32])).unwrap();
    with(
        "a checkpoint signed by another key",
        &move |r| r.checkpoint = by_stranger.clone(),
        None,
        "no_known_signature",
    );

    assert!(cases.len() > 15);
    // Not a tamper case: the proof binds the leaf to the root, and the checkpoint signature
    // binds the root to the size. A key holder who signs its 7-leaf root under size 8 signs a
    // false checkpoint, and the receipt's leaf is still at its position under that root.
    let relabelled = sign(&Checkpoint {
        size: 8,
        ..original.clone()
    });
    let mut receipt = f.receipt.clone();
    receipt.checkpoint = relabelled;
    assert_eq!(code(receipt.verify(Some(&f.record), &f.log_key)), "ok");

    for (description, receipt, record, expected) in &cases {
        assert_eq!(
            code(receipt.verify(record.as_deref(), &f.log_key)),
            *expected,
            "{description}"
        );
    }
    assert_eq!(
        code(f.receipt.verify(Some(&f.record), &stranger)),
        "no_known_signature"
    );
}

#[test]
fn a_newer_checkpoint_must_extend_the_receipt_s_tree() {
    let f = fixture();
    let key = log_signing_key();
    let newer = checkpoint::verify(&f.newer, &f.log_key).unwrap();
    let sign =
        |checkpoint: &Checkpoint| checkpoint::sign(checkpoint, f.log_key.name(), &key).unwrap();
    let against =
        |note: &str, proof: &[Hash]| code(f.receipt.verify_against_newer(note, proof, &f.log_key));
    assert_eq!(against(&f.newer, &f.consistency), "ok");
    // The receipt's own checkpoint is trivially consistent with itself.
    assert_eq!(against(&f.receipt.checkpoint, &[]), "ok");

    for position in 0..f.consistency.len() {
        let mut proof = f.consistency.clone();
        proof[position][0] ^= 1;
        assert_eq!(against(&f.newer, &proof), "bad_consistency_proof");
    }
    assert_eq!(
        against(&f.newer, &f.consistency[1..]),
        "bad_consistency_proof"
    );
    assert_eq!(against(&f.newer, &[]), "bad_consistency_proof");

    let forked = sign(&Checkpoint {
        root: [9; 32],
        ..newer.clone()
    });
    assert_eq!(against(&forked, &f.consistency), "bad_consistency_proof");
    let shrunk = sign(&Checkpoint {
        size: 6,
        ..newer.clone()
    });
    assert_eq!(against(&shrunk, &[]), "bad_consistency_proof");
    let other_log = sign(&Checkpoint {
        origin: "umlauf.example/other".to_owned(),
        ..newer
    });
    assert_eq!(against(&other_log, &f.consistency), "wrong_origin");
    assert_eq!(against(&newer.body(), &f.consistency), "malformed_note");

    // A broken receipt is refused before the newer checkpoint is looked at.
    let mut broken = f.receipt.clone();
    broken.position = 5;
    assert_eq!(
        code(broken.verify_against_newer(&f.newer, &f.consistency, &f.log_key)),
        "bad_inclusion_proof"
    );
}

/// What the service does, in miniature: append records through a frontier, keep every subtree
/// it completes, sign a checkpoint after each batch, and answer with receipts made from a
/// proof plan against the stored subtrees.
struct Log {
    frontier: Frontier,
    subtrees: HashMap<SubtreeId, Hash>,
    key: umlauf_proof::keys::SigningKey,
    origin: String,
}

impl Log {
    fn append(&mut self, record: &[u8]) -> u64 {
        for subtree in self.frontier.push(leaf_hash(record)).unwrap() {
            self.subtrees.insert(subtree.id, subtree.hash);
        }
        self.frontier.size()
    }

    fn checkpoint(&self) -> String {
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size: self.frontier.size(),
            root: self.frontier.root(),
        };
        checkpoint::sign(&checkpoint, &self.origin, &self.key).unwrap()
    }

    fn receipt(&self, position: u64, record: &[u8]) -> Receipt {
        let plan = ProofPlan::inclusion(position - 1, self.frontier.size()).unwrap();
        // The store would fetch exactly these in one query.
        let fetched: HashMap<SubtreeId, Hash> = plan
            .subtrees()
            .into_iter()
            .map(|id| (id, self.subtrees[&id]))
            .collect();
        Receipt {
            position,
            leaf_hash: leaf_hash(record),
            checkpoint: self.checkpoint(),
            inclusion_proof: plan.assemble(&fetched).unwrap(),
        }
    }

    fn consistency(&self, old_size: u64) -> Vec<Hash> {
        ProofPlan::consistency(old_size, self.frontier.size())
            .unwrap()
            .assemble(&self.subtrees)
            .unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn receipts_from_the_store_verify_then_and_later(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..32), 1..200),
        chosen in any::<prop::sample::Index>(),
        later in any::<prop::sample::Index>(),
    ) {
        let key = signing_key_from_seed([0x33; 32]);
        let log_key = NoteVerifier::new("umlauf.example/log", key.verifying_key()).unwrap();
        let mut log = Log {
            frontier: Frontier::new(),
            subtrees: HashMap::new(),
            key,
            origin: "umlauf.example/log".to_owned(),
        };
        let chosen = chosen.index(records.len());
        let later = chosen + later.index(records.len() - chosen);
        let mut receipt = None;
        for (index, record) in records.iter().enumerate() {
            let position = log.append(record);
            if index == chosen {
                let issued = log.receipt(position, record);
                let checkpoint = issued.verify(Some(record), &log_key).unwrap();
                prop_assert_eq!(checkpoint.size, position);
                let json = issued.to_json();
                prop_assert_eq!(Receipt::from_json(json.as_bytes()), Ok(issued.clone()));
                receipt = Some(issued);
            }
            if index == later {
                let receipt = receipt.as_ref().unwrap();
                let old_size = receipt.verify(None, &log_key).unwrap().size;
                let newer = log.verify_newer(receipt, old_size, &log_key)?;
                prop_assert_eq!(newer.size, position);
            }
        }
    }
}

impl Log {
    fn verify_newer(
        &self,
        receipt: &Receipt,
        old_size: u64,
        log_key: &NoteVerifier,
    ) -> Result<Checkpoint, TestCaseError> {
        receipt
            .verify_against_newer(&self.checkpoint(), &self.consistency(old_size), log_key)
            .map_err(|error| TestCaseError::fail(error.to_string()))
    }
}
