//! Commands racing each other across streams and replicas: a vote against its key's
//! revocation, and first constitutions under trust on first use.

use futures_util::future::join_all;
use serde_json::json;
use umlauf_server::Server;

use crate::support::{
    Backend, World, command, config, constitution, in_a_week, new_circulation, open, public_key,
    records, require_shared_nats, sign, signing_key, vote,
};

/// Votes signed with a key race that key's revocation: every vote recorded has a position below
/// the revocation's, and every other one was refused as signed with a revoked key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_racing_their_keys_revocation_are_recorded_before_it_or_refused() {
    const CIRCULATIONS: usize = 48;
    let world = World::start(Backend::Postgres).await;
    world.constitute().await;
    let deputy = "DE-BY deputy";
    world
        .accept(
            "secretariat",
            &command(
                "RegisterKey",
                "secretariat",
                json!({"holder": "DE-BY", "public_key": public_key(deputy), "label": "deputy"}),
            ),
        )
        .await;
    let mut circulations = Vec::new();
    for _ in 0..CIRCULATIONS {
        let circulation = new_circulation();
        world
            .accept(
                "secretariat",
                &open(circulation, "it-planungsrat-resolution", in_a_week()),
            )
            .await;
        circulations.push(circulation);
    }

    // Every vote and the revocation go out at once; the revocation in the middle.
    let votes: Vec<Vec<u8>> = circulations
        .iter()
        .map(|circulation| sign(deputy, &vote(*circulation, "DE-BY", "yes")))
        .collect();
    let key_id = umlauf_proof::keys::key_id(&signing_key(deputy).verifying_key());
    let revocation = sign(
        "DE-BY",
        &command(
            "RevokeKey",
            "DE-BY",
            json!({"key_id": key_id, "reason": "lost"}),
        ),
    );
    let (before, after) = votes.split_at(CIRCULATIONS / 2);
    let first_votes = join_all(before.iter().map(|bytes| world.submit_bytes(bytes.clone())));
    let revoked = world.submit_bytes(revocation);
    let last_votes = join_all(after.iter().map(|bytes| world.submit_bytes(bytes.clone())));
    let (first_votes, revoked, last_votes) = tokio::join!(first_votes, revoked, last_votes);

    let revoked = revoked.expect("the revocation was refused");
    let revoked_at = records(&revoked)[0].position;
    let (mut recorded, mut refused) = (0, 0);
    for reply in first_votes.into_iter().chain(last_votes) {
        match reply {
            Ok(reply) => {
                let position = records(&reply)[0].position;
                assert!(
                    position < revoked_at,
                    "a vote with the revoked key was recorded at {position}, after the \
                     revocation at {revoked_at}"
                );
                recorded += 1;
            }
            Err(error) => {
                assert_eq!(error.code, "revoked_key", "{error}");
                refused += 1;
            }
        }
    }
    assert_eq!(recorded + refused, CIRCULATIONS);

    // The log agrees: no vote of DE-BY after the revocation, one before it per recorded reply.
    let log: Vec<_> =
        futures_util::TryStreamExt::try_collect::<Vec<_>>(world.server().store().read_from(1))
            .await
            .unwrap();
    let votes_of_de_by: Vec<u64> = log
        .iter()
        .filter(|stored| {
            stored.record.event_type == "VoteCast" && stored.record.data["member"] == "DE-BY"
        })
        .map(umlauf_store::StoredRecord::position)
        .collect();
    assert_eq!(votes_of_de_by.len(), recorded);
    assert!(votes_of_de_by.iter().all(|position| *position < revoked_at));
    eprintln!("{recorded} votes recorded before the revocation, {refused} refused after it");
}

/// A first constitution of another body, signed by a genesis key of its own.
fn constitution_of(body: &str, genesis: &str) -> serde_json::Value {
    let mut constitution = constitution();
    constitution["body"] = json!(body);
    constitution["genesis_key"] = json!(public_key(genesis));
    constitution
}

/// Two replicas on one PostgreSQL database without configured genesis keys, each offered a
/// different first constitution at the same time: exactly one becomes the log's first record,
/// and every other is judged against the genesis key the log trusted, and refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_first_constitution_is_trusted_across_replicas() {
    const CANDIDATES: usize = 6;
    let nats = require_shared_nats();
    let world = World::start_with(Backend::Postgres, &nats, |config| {
        config.genesis_keys.clear();
    })
    .await;
    let mut second = config(&world.db, &world.nats_url, &world.names);
    second.genesis_keys.clear();
    let second = Server::start(second).await.unwrap();

    let candidates: Vec<(String, String)> = (0..CANDIDATES)
        .map(|index| (format!("body-{index}"), format!("genesis {index}")))
        .collect();
    let replies =
        join_all(candidates.iter().map(|(body, genesis)| {
            world.submit_bytes(sign(genesis, &constitution_of(body, genesis)))
        }))
        .await;

    let accepted: Vec<usize> = (0..CANDIDATES)
        .filter(|index| replies[*index].is_ok())
        .collect();
    let outcomes: Vec<String> = replies
        .iter()
        .map(|reply| match reply {
            Ok(reply) => format!("accepted at {}", records(reply)[0].position),
            Err(error) => error.code.clone(),
        })
        .collect();
    assert_eq!(accepted.len(), 1, "{outcomes:?}");
    let winner = accepted[0];
    for (index, reply) in replies.iter().enumerate() {
        if let Err(error) = reply {
            assert_eq!(error.code, "unknown_key", "candidate {index}: {error}");
        }
    }
    let first = records(replies[winner].as_ref().unwrap());
    assert_eq!(first[0].position, 1);
    assert_eq!(first[0].event_type, "BodyConstituted");

    // Only the winner's body is in the log, and its genesis key is now the deployment's: it
    // constitutes another body on either replica, while a loser's key still cannot.
    let head = world.server().store().head().await.unwrap().position;
    assert_eq!(head, u64::try_from(first.len()).unwrap());
    let (_, winner_key) = &candidates[winner];
    world
        .accept(winner_key, &constitution_of("body-late", winner_key))
        .await;
    let loser = (winner + 1) % CANDIDATES;
    let (_, loser_key) = &candidates[loser];
    world
        .refuse(
            loser_key,
            &constitution_of("body-later", loser_key),
            "unknown_key",
        )
        .await;
    second.shutdown().await;
}
