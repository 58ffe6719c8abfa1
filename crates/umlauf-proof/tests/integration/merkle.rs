//! The Merkle tree against `proto/vectors/merkle.json` (published RFC 6962 / C2SP vectors), then
//! exhaustively and by property: every proof verifies, every tampered proof fails, and proofs
//! from a store filled by `Frontier::push` equal those of the in-memory tree.

use std::collections::HashMap;

use proptest::prelude::*;
use serde::Deserialize;
use umlauf_proof::merkle::{
    self, Frontier, Hash, MemoryTree, ProofPlan, SubtreeId, SubtreeSource, empty_root, leaf_hash,
    root_from_frontier, verify_consistency, verify_inclusion,
};

const MERKLE_VECTORS: &str = include_str!("../../../../proto/vectors/merkle.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    description: String,
    source: String,
    leaf_inputs_hex: Vec<String>,
    subtrees: Vec<SubtreeVector>,
    roots: Vec<String>,
    inclusion_proofs: Vec<InclusionVector>,
    consistency_proofs: Vec<ConsistencyVector>,
    verification_cases: Vec<VerificationCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubtreeVector {
    level: u8,
    index: u64,
    hash: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionVector {
    index: u64,
    size: u64,
    proof: Vec<String>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyVector {
    old_size: u64,
    new_size: u64,
    proof: Vec<String>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
enum VerificationCase {
    Inclusion {
        description: String,
        leaf_hash: String,
        index: u64,
        size: u64,
        proof: Vec<String>,
        root: String,
        expected: String,
    },
    Consistency {
        description: String,
        old_size: u64,
        new_size: u64,
        old_root: String,
        new_root: String,
        proof: Vec<String>,
        expected: String,
    },
}

fn hash(text: &str) -> Hash {
    hex::decode(text).unwrap().try_into().unwrap()
}

fn hashes(texts: &[String]) -> Vec<Hash> {
    texts.iter().map(|text| hash(text)).collect()
}

fn outcome(result: Result<(), umlauf_proof::ProofError>) -> &'static str {
    result.map_or_else(|error| error.code(), |()| "ok")
}

fn vectors() -> Vectors {
    let file: Vectors = serde_json::from_str(MERKLE_VECTORS).unwrap();
    assert!(!file.description.is_empty() && !file.source.is_empty());
    file
}

fn vector_tree(file: &Vectors) -> MemoryTree {
    MemoryTree::from_records(file.leaf_inputs_hex.iter().map(|d| hex::decode(d).unwrap()))
}

#[test]
fn roots_and_subtrees_match_the_published_vectors() {
    let file = vectors();
    let tree = vector_tree(&file);
    assert_eq!(file.roots.len(), file.leaf_inputs_hex.len() + 1);
    assert_eq!(hash(&file.roots[0]), empty_root());
    for (size, root) in file.roots.iter().enumerate() {
        assert_eq!(
            tree.root_at(size.try_into().unwrap()),
            Ok(hash(root)),
            "{size}"
        );
    }
    for subtree in &file.subtrees {
        let id = SubtreeId::new(subtree.level, subtree.index);
        assert_eq!(tree.subtree(id), Some(hash(&subtree.hash)), "{id:?}");
    }
    for (index, input) in file.leaf_inputs_hex.iter().enumerate() {
        assert_eq!(
            Some(leaf_hash(&hex::decode(input).unwrap())),
            tree.leaf_hash(index.try_into().unwrap())
        );
    }

    // The appender's path: frontier roots at every size, and the completed subtrees are
    // exactly the published ones.
    let mut frontier = Frontier::new();
    let mut completed = Vec::new();
    for input in &file.leaf_inputs_hex {
        completed.extend(
            frontier
                .push(leaf_hash(&hex::decode(input).unwrap()))
                .unwrap(),
        );
        let size = usize::try_from(frontier.size()).unwrap();
        assert_eq!(frontier.root(), hash(&file.roots[size]));
        assert_eq!(
            root_from_frontier(frontier.size(), frontier.hashes()),
            Ok(hash(&file.roots[size]))
        );
    }
    let mut completed: Vec<(u8, u64, Hash)> = completed
        .into_iter()
        .map(|subtree| (subtree.id.level, subtree.id.index, subtree.hash))
        .collect();
    completed.sort_unstable();
    let mut published: Vec<(u8, u64, Hash)> = file
        .subtrees
        .iter()
        .map(|subtree| (subtree.level, subtree.index, hash(&subtree.hash)))
        .collect();
    published.sort_unstable();
    assert_eq!(completed, published);
}

#[test]
fn inclusion_proofs_match_the_published_vectors() {
    let file = vectors();
    let tree = vector_tree(&file);
    for vector in &file.inclusion_proofs {
        let (index, size) = (vector.index, vector.size);
        let proof = hashes(&vector.proof);
        assert_eq!(
            tree.inclusion_proof(index, size),
            Ok(proof.clone()),
            "{}",
            vector.source
        );
        let leaf = tree.leaf_hash(index).unwrap();
        let root = hash(&file.roots[usize::try_from(size).unwrap()]);
        assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
        // The probes of transparency-dev/merkle's verify_test.go (corruptInclusionProof).
        for (description, probe) in inclusion_probes(index, size, &proof, root, leaf) {
            let (index, size, proof, root, leaf) = probe;
            assert_eq!(
                outcome(verify_inclusion(&leaf, index, size, &proof, &root)),
                "bad_inclusion_proof",
                "{description}: {index} {size}"
            );
        }
    }
}

type InclusionProbe = (u64, u64, Vec<Hash>, Hash, Hash);

fn inclusion_probes(
    index: u64,
    size: u64,
    proof: &[Hash],
    root: Hash,
    leaf: Hash,
) -> Vec<(String, InclusionProbe)> {
    let some_hash = hash("abacaba000000000000000000000000000000000000000000060061e00123456");
    let with = |proof: Vec<Hash>| (index, size, proof, root, leaf);
    let mut probes = vec![
        (
            "index - 1".to_owned(),
            (index.wrapping_sub(1), size, proof.to_vec(), root, leaf),
        ),
        (
            "index + 1".to_owned(),
            (index + 1, size, proof.to_vec(), root, leaf),
        ),
        (
            "index ^ 2".to_owned(),
            (index ^ 2, size, proof.to_vec(), root, leaf),
        ),
        (
            "size * 2".to_owned(),
            (index, size * 2, proof.to_vec(), root, leaf),
        ),
        (
            "size / 2".to_owned(),
            (index, size / 2, proof.to_vec(), root, leaf),
        ),
        (
            "wrong leaf".to_owned(),
            (index, size, proof.to_vec(), root, some_hash),
        ),
        (
            "empty root".to_owned(),
            (index, size, proof.to_vec(), empty_root(), leaf),
        ),
        (
            "random root".to_owned(),
            (index, size, proof.to_vec(), some_hash, leaf),
        ),
        ("trailing root".to_owned(), with([proof, &[root]].concat())),
        ("preceding root".to_owned(), with([&[root], proof].concat())),
    ];
    for position in 0..proof.len() {
        let mut changed = proof.to_vec();
        changed[position][0] ^= 8;
        probes.push((format!("proof[{position}] bit 3"), with(changed)));
    }
    if let [rest @ .., _] = proof {
        probes.push(("removed component".to_owned(), with(rest.to_vec())));
    }
    if let [first, rest @ ..] = proof
        && !rest.is_empty()
    {
        probes.push((
            "inserted component".to_owned(),
            with([&[*first, some_hash], rest].concat()),
        ));
    }
    probes
}

#[test]
fn consistency_proofs_match_the_published_vectors() {
    let file = vectors();
    let tree = vector_tree(&file);
    let root = |size: u64| hash(&file.roots[usize::try_from(size).unwrap()]);
    for vector in &file.consistency_proofs {
        let (old, new) = (vector.old_size, vector.new_size);
        let proof = hashes(&vector.proof);
        assert_eq!(
            tree.consistency_proof(old, new),
            Ok(proof.clone()),
            "{}",
            vector.source
        );
        let (old_root, new_root) = (root(old), root(new));
        assert_eq!(
            verify_consistency(old, new, &old_root, &new_root, &proof),
            Ok(()),
            "{}",
            vector.source
        );
        if proof.is_empty() {
            continue;
        }
        // The probes of transparency-dev/merkle's verify_test.go (corruptConsistencyProof).
        let some_hash = hash("abacaba000000000000000000000000000000000000000000060061e00123456");
        let mut probes = vec![
            (old - 1, new, old_root, new_root, proof.clone()),
            (old + 1, new, old_root, new_root, proof.clone()),
            (old ^ 2, new, old_root, new_root, proof.clone()),
            (old, new * 2, old_root, new_root, proof.clone()),
            (old, new / 2, old_root, new_root, proof.clone()),
            (old, new, some_hash, new_root, proof.clone()),
            (old, new, old_root, some_hash, proof.clone()),
            (old, new, new_root, old_root, proof.clone()),
            (old, new, old_root, new_root, Vec::new()),
            (
                old,
                new,
                old_root,
                new_root,
                [&proof[..], &[old_root]].concat(),
            ),
            (
                old,
                new,
                old_root,
                new_root,
                [&proof[..], &[new_root]].concat(),
            ),
            (
                old,
                new,
                old_root,
                new_root,
                [&[old_root], &proof[..]].concat(),
            ),
            (
                old,
                new,
                old_root,
                new_root,
                [&[new_root], &proof[..]].concat(),
            ),
            (
                old,
                new,
                old_root,
                new_root,
                [&[proof[0]], &proof[..]].concat(),
            ),
            (
                old,
                new,
                old_root,
                new_root,
                proof[..proof.len() - 1].to_vec(),
            ),
        ];
        for position in 0..proof.len() {
            let mut changed = proof.clone();
            changed[position][0] ^= 16;
            probes.push((old, new, old_root, new_root, changed));
        }
        for (old, new, old_root, new_root, proof) in probes {
            assert_eq!(
                outcome(verify_consistency(old, new, &old_root, &new_root, &proof)),
                "bad_consistency_proof",
                "{old} {new} {proof:?}"
            );
        }
    }
}

#[test]
fn verification_cases() {
    for case in vectors().verification_cases {
        let (description, actual, expected) = match case {
            VerificationCase::Inclusion {
                description,
                leaf_hash,
                index,
                size,
                proof,
                root,
                expected,
            } => (
                description,
                verify_inclusion(
                    &hash(&leaf_hash),
                    index,
                    size,
                    &hashes(&proof),
                    &hash(&root),
                ),
                expected,
            ),
            VerificationCase::Consistency {
                description,
                old_size,
                new_size,
                old_root,
                new_root,
                proof,
                expected,
            } => (
                description,
                verify_consistency(
                    old_size,
                    new_size,
                    &hash(&old_root),
                    &hash(&new_root),
                    &hashes(&proof),
                ),
                expected,
            ),
        };
        assert_eq!(outcome(actual), expected, "{description}");
    }
}

/// A store as the service keeps it: every subtree `Frontier::push` reports, in a map.
fn frontier_store(leaves: &[Hash]) -> (HashMap<SubtreeId, Hash>, Vec<Frontier>) {
    let mut store = HashMap::new();
    let mut frontier = Frontier::new();
    let mut frontiers = vec![frontier.clone()];
    for leaf in leaves {
        for subtree in frontier.push(*leaf).unwrap() {
            assert_eq!(store.insert(subtree.id, subtree.hash), None, "{subtree:?}");
        }
        frontiers.push(frontier.clone());
    }
    (store, frontiers)
}

#[test]
fn every_proof_up_to_300_leaves_verifies_and_the_store_gives_the_same() {
    const SIZE: u64 = 300;
    let tree = MemoryTree::from_records((0..SIZE).map(|index| index.to_le_bytes()));
    let leaves: Vec<Hash> = (0..SIZE)
        .map(|index| tree.leaf_hash(index).unwrap())
        .collect();
    let (store, frontiers) = frontier_store(&leaves);
    // One hash per complete subtree: 300 + 150 + 75 + 37 + 18 + 9 + 4 + 2 + 1.
    assert_eq!(store.len(), 596);

    let roots: Vec<Hash> = (0..=SIZE).map(|size| tree.root_at(size).unwrap()).collect();
    for size in 0..=SIZE {
        let root = roots[usize::try_from(size).unwrap()];
        let frontier = &frontiers[usize::try_from(size).unwrap()];
        assert_eq!(frontier.root(), root);
        assert_eq!(tree.frontier(size).as_ref(), Ok(frontier));
        assert_eq!(merkle::root(size, &store), Ok(root));
        for index in 0..size {
            let proof = tree.inclusion_proof(index, size).unwrap();
            let plan = ProofPlan::inclusion(index, size).unwrap();
            assert_eq!(plan.assemble(&store).as_ref(), Ok(&proof));
            // O(log n) subtree hashes, and never more than the proof length plus one chain.
            assert!(plan.subtrees().len() <= 2 * 9, "{index} {size}");
            let leaf = leaves[usize::try_from(index).unwrap()];
            assert_eq!(
                verify_inclusion(&leaf, index, size, &proof, &root),
                Ok(()),
                "{index} {size}"
            );
        }
        for old in 0..=size {
            let proof = tree.consistency_proof(old, size).unwrap();
            let plan = ProofPlan::consistency(old, size).unwrap();
            assert_eq!(plan.assemble(&store).as_ref(), Ok(&proof));
            let old_root = roots[usize::try_from(old).unwrap()];
            assert_eq!(
                verify_consistency(old, size, &old_root, &root, &proof),
                Ok(()),
                "{old} {size}"
            );
        }
    }
}

fn records() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 1..300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn inclusion_proofs_fail_when_anything_changes(
        records in records(),
        index in any::<prop::sample::Index>(),
        other in any::<prop::sample::Index>(),
        bit in 0..256_usize,
    ) {
        let tree = MemoryTree::from_records(&records);
        let size = tree.size();
        let index = u64::try_from(index.index(records.len())).unwrap();
        let leaf = tree.leaf_hash(index).unwrap();
        let root = tree.root();
        let proof = tree.inclusion_proof(index, size).unwrap();
        prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));

        let flip = |mut hash: Hash, bit: usize| {
            hash[bit / 8] ^= 1 << (bit % 8);
            hash
        };
        for position in 0..proof.len() {
            let mut changed = proof.clone();
            changed[position] = flip(changed[position], (bit + position) % 256);
            prop_assert!(verify_inclusion(&leaf, index, size, &changed, &root).is_err());
        }
        prop_assert!(verify_inclusion(&flip(leaf, bit), index, size, &proof, &root).is_err());
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &flip(root, bit)).is_err());

        // Another index of the same tree verifies only where leaf and path coincide (equal
        // records make equal leaves).
        let other_index = u64::try_from(other.index(records.len())).unwrap();
        let same = tree.leaf_hash(other_index) == Some(leaf)
            && tree.inclusion_proof(other_index, size).as_ref() == Ok(&proof);
        prop_assert_eq!(
            verify_inclusion(&leaf, other_index, size, &proof, &root).is_ok(),
            same
        );
        // Another size, with that size's root, verifies only where the path is the same: the
        // size itself is bound to the root by the checkpoint signature, not by the proof.
        for other_size in index + 1..=size {
            let other_root = tree.root_at(other_size).unwrap();
            let same = tree.inclusion_proof(index, other_size).as_ref() == Ok(&proof);
            prop_assert_eq!(
                verify_inclusion(&leaf, index, other_size, &proof, &other_root).is_ok(),
                same,
                "{} {}", other_size, size
            );
        }
        prop_assert!(verify_inclusion(&leaf, index + size, size, &proof, &root).is_err());
    }

    #[test]
    fn consistency_proofs_fail_when_anything_changes(
        records in records(),
        old in any::<prop::sample::Index>(),
        new in any::<prop::sample::Index>(),
        bit in 0..256_usize,
    ) {
        let tree = MemoryTree::from_records(&records);
        let (old, new) = {
            let a = u64::try_from(old.index(records.len() + 1)).unwrap();
            let b = u64::try_from(new.index(records.len() + 1)).unwrap();
            (a.min(b), a.max(b))
        };
        let root = |size| tree.root_at(size).unwrap();
        let (old_root, new_root) = (root(old), root(new));
        let proof = tree.consistency_proof(old, new).unwrap();
        prop_assert_eq!(verify_consistency(old, new, &old_root, &new_root, &proof), Ok(()));

        let flip = |mut hash: Hash, bit: usize| {
            hash[bit / 8] ^= 1 << (bit % 8);
            hash
        };
        for position in 0..proof.len() {
            let mut changed = proof.clone();
            changed[position] = flip(changed[position], (bit + position) % 256);
            prop_assert!(verify_consistency(old, new, &old_root, &new_root, &changed).is_err());
        }
        prop_assert!(verify_consistency(old, new, &flip(old_root, bit), &new_root, &proof).is_err());
        // From the empty tree every new tree is consistent, so only there the new root is free.
        prop_assert_eq!(
            verify_consistency(old, new, &old_root, &flip(new_root, bit), &proof).is_ok(),
            old == 0 && new > 0
        );
        // Other sizes, with their own roots, verify only where the proof is theirs too.
        let size = tree.size();
        let neighbours = [
            (old.wrapping_sub(1), new), (old + 1, new), (old, new + 1), (old, new.wrapping_sub(1)),
            (old + 1, new + 1), (0, new), (new, new),
        ];
        for (other_old, other_new) in neighbours {
            if other_old > other_new || other_new > size || (other_old, other_new) == (old, new) {
                continue;
            }
            let same = tree.consistency_proof(other_old, other_new).as_ref() == Ok(&proof);
            let outcome = verify_consistency(
                other_old, other_new, &root(other_old), &root(other_new), &proof,
            );
            prop_assert_eq!(outcome.is_ok(), same, "{} {}", other_old, other_new);
        }
        prop_assert!(verify_consistency(new + 1, new, &old_root, &new_root, &proof).is_err());
    }

    #[test]
    fn verifiers_never_panic(
        index in any::<u64>(),
        size in any::<u64>(),
        proof in prop::collection::vec(any::<[u8; 32]>(), 0..70),
        first in any::<[u8; 32]>(),
        second in any::<[u8; 32]>(),
    ) {
        let _ = verify_inclusion(&first, index, size, &proof, &second);
        let _ = verify_consistency(index, size, &first, &second, &proof);
        let _ = ProofPlan::inclusion(index, size);
        let _ = ProofPlan::consistency(index, size);
    }
}
