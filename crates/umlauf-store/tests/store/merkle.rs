use std::collections::BTreeSet;
use std::sync::Arc;

use umlauf_proof::checkpoint::{self, Checkpoint};
use umlauf_proof::merkle::{MemoryTree, node_hash, verify_consistency, verify_inclusion};
use umlauf_store::{Store, StoreError};

use crate::on_both_backends;
use crate::support::{Backend, LOG_ORIGIN, Scenario, TestDb, check_log, log_verifier, signing_key};

on_both_backends!(
    proofs_equal_the_memory_trees_for_every_position_and_pair_of_sizes,
    every_committed_batch_has_one_checkpoint_covering_its_appends,
    replicas_on_one_database_sign_byte_identical_checkpoints,
    subtrees_behind_the_head_are_backfilled_at_open,
    a_checkpoint_disagreeing_with_the_stored_tree_stops_signing,
    leaves_are_read_from_the_log_and_a_log_that_stored_them_still_proves,
);

/// How many subtrees of one or two leaves (levels 0 and 1) `merkle_subtrees` holds (counted as
/// rows copied into a scratch table, which both backends report).
async fn stored_leaves(db: &TestDb) -> u64 {
    db.raw(
        "CREATE TEMP TABLE counted (level INTEGER); \
         INSERT INTO counted SELECT level FROM merkle_subtrees WHERE level < 2",
    )
    .await
    .unwrap()
}

/// The tree over the store's records.
async fn memory_tree(store: &Store) -> MemoryTree {
    let records = check_log(store).await;
    MemoryTree::from_records(records.iter().map(|record| record.bytes.as_slice()))
}

/// The note the log key signs for the tree of `size` leaves of `tree`.
fn expected_note(tree: &MemoryTree, size: u64) -> String {
    let checkpoint = Checkpoint {
        origin: LOG_ORIGIN.to_owned(),
        size,
        root: tree.root_at(size).unwrap(),
    };
    checkpoint::sign(&checkpoint, LOG_ORIGIN, &signing_key("log")).unwrap()
}

async fn proofs_equal_the_memory_trees_for_every_position_and_pair_of_sizes(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .circulation_with_votes(1, "simple-majority", &[("DE", "yes"), ("DE-BE", "no")])
        .await;
    scenario
        .circulation_with_votes(2, "simple-majority", &[("DE-HH", "abstain")])
        .await;
    let tree = memory_tree(&store).await;
    let size = tree.size();
    assert_eq!(size, 13 + 5);
    assert_eq!(store.root(0).await.unwrap(), tree.root_at(0).unwrap());
    for new in 1..=size {
        let root = store.root(new).await.unwrap();
        assert_eq!(root, tree.root_at(new).unwrap(), "root of {new}");
        for position in 1..=new {
            let proof = store.inclusion_proof(position, new).await.unwrap();
            assert_eq!(
                proof,
                tree.inclusion_proof(position - 1, new).unwrap(),
                "inclusion of {position} in {new}"
            );
            let leaf = tree.leaf_hash(position - 1).unwrap();
            verify_inclusion(&leaf, position - 1, new, &proof, &root).unwrap();
        }
        for old in 0..=new {
            let proof = store.consistency_proof(old, new).await.unwrap();
            assert_eq!(
                proof,
                tree.consistency_proof(old, new).unwrap(),
                "consistency of {old} and {new}"
            );
            if old > 0 {
                let old_root = tree.root_at(old).unwrap();
                verify_consistency(old, new, &old_root, &root, &proof).unwrap();
            }
        }
    }
    let out_of_range = |result: Result<Vec<[u8; 32]>, StoreError>| {
        assert_eq!(result.unwrap_err().code(), "out_of_range");
    };
    out_of_range(store.inclusion_proof(0, size).await);
    out_of_range(store.inclusion_proof(size, size - 1).await);
    out_of_range(store.inclusion_proof(size + 1, size + 1).await);
    out_of_range(store.consistency_proof(size, size + 1).await);
    out_of_range(store.consistency_proof(size, size - 1).await);
    assert_eq!(
        store.root(size + 1).await.unwrap_err().code(),
        "out_of_range"
    );
}

async fn every_committed_batch_has_one_checkpoint_covering_its_appends(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    let open = scenario.decide(&scenario.open(1, "simple-majority")).await;
    let single = store.append(open.clone()).await.unwrap();
    let now = scenario.tick();
    let batch = store
        .append_all(vec![
            scenario
                .decide_at(&scenario.vote(1, "DE", "yes"), now)
                .await,
            scenario
                .decide_at(&scenario.open(2, "simple-majority"), now)
                .await,
        ])
        .await;
    let again = store.append(open).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.checkpoint, None);

    let tree = memory_tree(&store).await;
    let mut sizes = BTreeSet::new();
    for appended in
        std::iter::once(&single).chain(batch.iter().map(|result| result.as_ref().unwrap()))
    {
        let note = appended.checkpoint.as_deref().unwrap();
        let signed = checkpoint::verify(note, &log_verifier()).unwrap();
        assert!(signed.size >= appended.last_position().unwrap());
        assert_eq!(signed.root, tree.root_at(signed.size).unwrap());
        assert_eq!(
            store.checkpoint(signed.size).await.unwrap().as_deref(),
            Some(note)
        );
        sizes.insert(signed.size);
    }
    // The two appends of one batch share its checkpoint.
    assert_eq!(
        batch[0].as_ref().unwrap().checkpoint,
        batch[1].as_ref().unwrap().checkpoint
    );
    // One checkpoint per batch that wrote: the constitution's, the single append's, the batch's.
    let stored = store.checkpoints_from(1, usize::MAX).await.unwrap();
    let stored_sizes: Vec<u64> = stored.iter().map(|(size, _)| *size).collect();
    assert_eq!(stored_sizes, [13, 14, 16]);
    assert!(sizes.iter().all(|size| stored_sizes.contains(size)));
    for (size, note) in &stored {
        assert_eq!(note, &expected_note(&tree, *size));
    }
    assert_eq!(store.checkpoints_from(14, 1).await.unwrap(), stored[1..2]);
    assert_eq!(store.checkpoints_from(17, 10).await.unwrap(), []);
    assert_eq!(
        store.latest_checkpoint().await.unwrap(),
        Some(stored[2].1.clone())
    );
    assert_eq!(store.checkpoint(15).await.unwrap(), None);
}

async fn replicas_on_one_database_sign_byte_identical_checkpoints(db: Arc<TestDb>) {
    let first = db.open().await;
    let scenario = Scenario::constituted(first.clone()).await;
    let second = db.open().await;
    let other = Scenario::continuing(second.clone(), 1_000_000).await;
    // The replicas take turns: each finds the head moved by the other, reloads its tree's
    // frontier from the stored subtrees and signs on.
    let mut notes = Vec::new();
    for n in 1..=3 {
        let appended = scenario
            .submit(&scenario.open(n, "simple-majority"))
            .await
            .unwrap();
        notes.push(appended.checkpoint.unwrap());
        let now = scenario.tick();
        let key = other
            .decide_at(&other.register_key(&format!("replica key {n}")), now)
            .await;
        let appended = second.append(key).await.unwrap();
        notes.push(appended.checkpoint.unwrap());
    }
    let tree = memory_tree(&first).await;
    for note in &notes {
        let signed = checkpoint::verify(note, &log_verifier()).unwrap();
        assert_eq!(note, &expected_note(&tree, signed.size));
        assert_eq!(
            first.checkpoint(signed.size).await.unwrap().as_ref(),
            Some(note)
        );
        assert_eq!(
            second.checkpoint(signed.size).await.unwrap().as_ref(),
            Some(note)
        );
    }
    assert_eq!(
        first.checkpoints_from(0, 100).await.unwrap(),
        second.checkpoints_from(0, 100).await.unwrap()
    );
    // A store opened afresh on the same database agrees with what the replicas signed.
    let third = db.open().await;
    let size = third.head().await.unwrap().position;
    assert_eq!(
        third.latest_checkpoint().await.unwrap(),
        Some(expected_note(&tree, size))
    );
}

/// SQL that empties the tree's tables beyond `size` leaves, past their triggers, as a log from
/// before the tree was kept would be.
fn truncate_tree_sql(backend: Backend, size: u64) -> String {
    let delete = format!(
        "DELETE FROM merkle_subtrees WHERE (idx + 1) * (1 << level) > {size}; \
         DELETE FROM checkpoints WHERE size > {size};"
    );
    match backend {
        Backend::Sqlite => format!(
            "DROP TRIGGER merkle_subtrees_refuse_delete; DROP TRIGGER checkpoints_refuse_delete; \
             {delete}"
        ),
        Backend::Postgres => format!(
            "ALTER TABLE merkle_subtrees DISABLE TRIGGER merkle_subtrees_append_only; \
             ALTER TABLE checkpoints DISABLE TRIGGER checkpoints_append_only; {delete} \
             ALTER TABLE merkle_subtrees ENABLE TRIGGER merkle_subtrees_append_only; \
             ALTER TABLE checkpoints ENABLE TRIGGER checkpoints_append_only;"
        ),
    }
}

async fn subtrees_behind_the_head_are_backfilled_at_open(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .circulation_with_votes(1, "simple-majority", &[("DE", "yes"), ("DE-BE", "no")])
        .await;
    let tree = memory_tree(&store).await;
    store.close().await;
    drop(store);
    db.raw(&truncate_tree_sql(db.backend, 7)).await.unwrap();
    // Only sizes up to 7 can be proved now.
    let reader = Store::open_with(db.unsigned_options().read_only())
        .await
        .unwrap();
    assert_eq!(reader.root(7).await.unwrap(), tree.root_at(7).unwrap());
    assert_eq!(
        reader.root(tree.size()).await.unwrap_err().code(),
        "inconsistent_tree"
    );

    let reopened = db.open().await;
    for size in 1..=tree.size() {
        assert_eq!(
            reopened.root(size).await.unwrap(),
            tree.root_at(size).unwrap()
        );
    }
    assert_eq!(
        reopened.inclusion_proof(3, tree.size()).await.unwrap(),
        tree.inclusion_proof(2, tree.size()).unwrap()
    );
    // The head's checkpoint is signed at open, and appends sign on from there.
    assert_eq!(
        reopened.latest_checkpoint().await.unwrap(),
        Some(expected_note(&tree, tree.size()))
    );
    let scenario = Scenario::continuing(reopened.clone(), 1_000_000).await;
    let appended = scenario
        .submit(&scenario.vote(1, "DE-HH", "yes"))
        .await
        .unwrap();
    let tree = memory_tree(&reopened).await;
    assert_eq!(appended.checkpoint, Some(expected_note(&tree, tree.size())));
}

async fn a_checkpoint_disagreeing_with_the_stored_tree_stops_signing(db: Arc<TestDb>) {
    let store = Store::open_with(db.unsigned_options()).await.unwrap();
    Scenario::constituted(store.clone()).await;
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    let tree = memory_tree(&store).await;
    store.close().await;
    drop(store);
    // A checkpoint for size 13 signed with the log key over another root.
    let forged = checkpoint::sign(
        &Checkpoint {
            origin: LOG_ORIGIN.to_owned(),
            size: 13,
            root: tree.root_at(12).unwrap(),
        },
        LOG_ORIGIN,
        &signing_key("log"),
    )
    .unwrap();
    let note = forged.replace('\'', "''");
    db.raw(&format!(
        "INSERT INTO checkpoints (size, note) VALUES (13, '{note}')"
    ))
    .await
    .unwrap();
    let error = Store::open_with(db.options()).await.unwrap_err();
    assert_eq!(error.code(), "inconsistent_tree", "{error}");
    assert!(!error.is_retryable());
    // Without a signer the store opens (an auditor finds the disagreement itself), and signs
    // nothing.
    let unsigned = Store::open_with(db.unsigned_options()).await.unwrap();
    let scenario = Scenario::continuing(unsigned.clone(), 1_000_000).await;
    let appended = scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    assert_eq!(appended.checkpoint, None);
    drop(scenario);
    assert_eq!(
        Store::open_with(db.options()).await.unwrap_err().code(),
        "inconsistent_tree"
    );
}

async fn leaves_are_read_from_the_log_and_a_log_that_stored_them_still_proves(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .circulation_with_votes(1, "simple-majority", &[("DE", "yes"), ("DE-BE", "no")])
        .await;
    // A leaf's hash is its record's `leaf_hash`: the tree does not store it again, nor the
    // hashes of pairs of leaves.
    assert_eq!(stored_leaves(&db).await, 0);
    let tree = memory_tree(&store).await;
    store.close().await;
    drop(store);
    // A log written when the leaves and their pairs were stored in the tree as well.
    let copied = db
        .raw(
            "INSERT INTO merkle_subtrees (level, idx, hash) \
             SELECT 0, position - 1, leaf_hash FROM log_records",
        )
        .await
        .unwrap();
    assert_eq!(copied, tree.size());
    for index in 0..tree.size() / 2 {
        let left = tree.leaf_hash(2 * index).unwrap();
        let right = tree.leaf_hash(2 * index + 1).unwrap();
        let hash = node_hash(&left, &right);
        let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
        let literal = match db.backend {
            Backend::Sqlite => format!("X'{hex}'"),
            Backend::Postgres => format!("'\\x{hex}'::bytea"),
        };
        db.raw(&format!(
            "INSERT INTO merkle_subtrees (level, idx, hash) VALUES (1, {index}, {literal})"
        ))
        .await
        .unwrap();
    }
    let reopened = db.open().await;
    for size in 1..=tree.size() {
        let root = reopened.root(size).await.unwrap();
        assert_eq!(root, tree.root_at(size).unwrap(), "root of {size}");
        for position in 1..=size {
            assert_eq!(
                reopened.inclusion_proof(position, size).await.unwrap(),
                tree.inclusion_proof(position - 1, size).unwrap(),
                "inclusion of {position} in {size}"
            );
        }
    }
    let scenario = Scenario::continuing(reopened.clone(), 1_000_000).await;
    let appended = scenario
        .submit(&scenario.vote(1, "DE-HH", "yes"))
        .await
        .unwrap();
    let grown = memory_tree(&reopened).await;
    assert_eq!(
        appended.checkpoint,
        Some(expected_note(&grown, grown.size()))
    );
    assert_eq!(
        reopened
            .consistency_proof(tree.size(), grown.size())
            .await
            .unwrap(),
        grown.consistency_proof(tree.size(), grown.size()).unwrap()
    );
    assert_eq!(stored_leaves(&db).await, tree.size() + tree.size() / 2);
}
