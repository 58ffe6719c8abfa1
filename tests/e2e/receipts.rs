//! Receipts and checkpoints over the wire: every reply's receipts verify with the log's verifier
//! key as the service wrote it to its `.vkey` file, the checkpoints stream carries every signed
//! checkpoint in ascending size order, and the proofs the query endpoints serve verify.

use serde_json::json;
use umlauf_nats::wire::{
    CheckpointReply, ConsistencyReply, InclusionReply, SubmitReply, hashes_from_hex,
};
use umlauf_proof::checkpoint::{self, Checkpoint};
use umlauf_proof::keys::signing_key_from_seed;
use umlauf_proof::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use umlauf_proof::note::NoteVerifier;

use crate::support::{
    Backend, LAENDER, World, caught_up, checkpoint_sizes, config, in_a_week, sign, vote,
};

/// The verifier key as the service wrote it next to its log key.
fn written_vkey(world: &World) -> NoteVerifier {
    let path = config(&world.db, &world.nats_url, &world.names).log_vkey_file();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("the service wrote no {}: {error}", path.display()));
    text.trim().parse().unwrap()
}

fn checked(reply: &SubmitReply, log_key: &NoteVerifier) -> Checkpoint {
    assert_eq!(reply.receipts.len(), reply.records.len());
    reply.verify_receipts(log_key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_carry_receipts_that_verify_with_the_written_log_key() {
    let world = World::start(Backend::Postgres).await;
    let log_key = written_vkey(&world);
    assert_eq!(
        log_key.to_string(),
        world.server().log_verifier().to_string()
    );
    assert_eq!(log_key.name(), "umlauf.localhost/log");

    let constituted = world
        .accept("genesis", &crate::support::constitution())
        .await;
    let first = checked(&constituted, &log_key);
    assert_eq!(
        first.size,
        u64::try_from(constituted.records.len()).unwrap()
    );
    let circulation = world.open("unanimity", in_a_week()).await;
    let bytes = sign("DE", &vote(circulation, "DE", "yes"));
    let voted = world.submit_bytes(bytes.clone()).await.unwrap();
    let at_vote = checked(&voted, &log_key);
    assert!(at_vote.size >= voted.receipts[0].position);

    // A duplicate is answered with receipts against the newest checkpoint.
    world.votes(circulation, &LAENDER[..3], "yes").await;
    let again = world.submit_bytes(bytes).await.unwrap();
    assert!(again.duplicate);
    let newest = checked(&again, &log_key);
    assert_eq!(
        newest.size,
        world.server().store().head().await.unwrap().position
    );
    assert_eq!(again.receipts[0].position, voted.receipts[0].position);

    // The same receipts do not verify with another key of the same name.
    let other = NoteVerifier::new(
        log_key.name(),
        signing_key_from_seed([9; 32]).verifying_key(),
    )
    .unwrap();
    assert!(voted.verify_receipts(&other).is_err());
    // Nor with a record that is not the one the receipt names.
    let mut swapped = voted.clone();
    swapped.receipts[0].leaf_hash = leaf_hash(b"another record");
    assert!(swapped.verify_receipts(&log_key).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_published_in_ascending_size_and_proofs_verify() {
    let world = World::start(Backend::Sqlite).await;
    let log_key = written_vkey(&world);
    world.constitute().await;
    let circulation = world.open("unanimity", in_a_week()).await;
    let early = world.votes(circulation, &["DE"], "yes").await;
    let early = checked(&early[0], &log_key);
    world.votes(circulation, &LAENDER, "yes").await;
    let head = world.server().store().head().await.unwrap().position;
    caught_up(&mut world.server().relay_status(), head).await;

    // The checkpoints stream: every note verifies, message id = its size, sizes ascend, and the
    // newest covers the whole log.
    let sizes = checkpoint_sizes(&world.client, &world.subjects, &log_key, head).await;
    assert!(sizes.contains(&early.size), "{sizes:?}");

    // The query endpoints: the newest checkpoint, one by size, inclusion and consistency proofs.
    let newest: CheckpointReply = world.query("checkpoint", &json!({})).await.unwrap();
    let newest = checkpoint::verify(&newest.checkpoint, &log_key).unwrap();
    assert_eq!(newest.size, head);
    let by_size: CheckpointReply = world
        .query("checkpoint", &json!({"size": early.size}))
        .await
        .unwrap();
    assert_eq!(
        checkpoint::verify(&by_size.checkpoint, &log_key).unwrap(),
        early
    );
    let records: Vec<umlauf_store::StoredRecord> =
        futures_util::TryStreamExt::try_collect(world.server().store().read_from(1))
            .await
            .unwrap();
    for record in &records {
        let position = record.position();
        let reply: InclusionReply = world
            .query("inclusion", &json!({"position": position, "size": head}))
            .await
            .unwrap();
        assert_eq!((reply.position, reply.size), (position, head));
        let proof = hashes_from_hex(&reply.proof).unwrap();
        verify_inclusion(
            &leaf_hash(&record.bytes),
            position - 1,
            head,
            &proof,
            &newest.root,
        )
        .unwrap_or_else(|error| panic!("inclusion of {position}: {error}"));
    }
    let reply: ConsistencyReply = world
        .query(
            "consistency",
            &json!({"old_size": early.size, "new_size": head}),
        )
        .await
        .unwrap();
    verify_consistency(
        early.size,
        head,
        &early.root,
        &newest.root,
        &hashes_from_hex(&reply.proof).unwrap(),
    )
    .unwrap();

    // What does not exist is refused with its code.
    let missing = world
        .query::<CheckpointReply>("checkpoint", &json!({"size": head + 100}))
        .await
        .unwrap_err();
    assert_eq!(missing.code, "not_found", "{missing}");
    let beyond = world
        .query::<InclusionReply>(
            "inclusion",
            &json!({"position": head + 1, "size": head + 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(beyond.code, "out_of_range", "{beyond}");
    let typo = world
        .query::<InclusionReply>("inclusion", &json!({"position": 1, "sise": 2}))
        .await
        .unwrap_err();
    assert_eq!(typo.code, "invalid_query", "{typo}");
}
