//! Two service instances on one PostgreSQL and one NATS: both answer commands, every
//! circulation closes once, and the log's positions stay gapless.

use futures_util::future::join_all;
use umlauf_server::Server;

use crate::support::{
    Backend, LAENDER, LARGEST_ELEVEN, World, check_log_stream, checkpoint_sizes, closes, config,
    in_a_week, in_seconds, new_circulation, open, result, sign, vote,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_work_and_close_once() {
    let world = World::start(Backend::Postgres).await;
    let second = Server::start(config(&world.db, &world.nats_url, &world.names))
        .await
        .unwrap();
    world.constitute().await;

    // Circulations decided by votes, sent all at once, and one closed at its deadline by
    // whichever scheduler comes first.
    let by_votes: Vec<_> = (0..4).map(|_| new_circulation()).collect();
    for circulation in &by_votes {
        world
            .accept("secretariat", &open(*circulation, "unanimity", in_a_week()))
            .await;
    }
    let at_deadline = world.open("it-planungsrat-resolution", in_seconds(2)).await;
    world.votes(at_deadline, &["DE"], "yes").await;
    world.votes(at_deadline, &LARGEST_ELEVEN, "yes").await;

    let mut submissions = Vec::new();
    for circulation in &by_votes {
        for member in std::iter::once("DE").chain(LAENDER) {
            submissions.push(world.submit_bytes(sign(member, &vote(*circulation, member, "yes"))));
        }
    }
    for reply in join_all(submissions).await {
        reply.unwrap();
    }
    for circulation in by_votes.iter().chain([&at_deadline]) {
        let decision = world.decision(*circulation).await;
        assert_eq!(result(&decision), "adopted");
        assert_eq!(closes(world.server().store(), *circulation).await.len(), 1);
    }

    // Both instances appended, and both relays agree with the log.
    let first_stats = world.server().store().writer_stats();
    let second_stats = second.store().writer_stats();
    assert!(
        first_stats.appends > 0 && second_stats.appends > 0,
        "{first_stats:?} {second_stats:?}"
    );
    let head = world.relayed().await;
    check_log_stream(&world.client, &world.subjects, world.server().store(), head).await;
    let mut second_relay = second.relay_status();
    tokio::time::timeout(
        crate::support::PATIENCE,
        second_relay.wait_for(|status| status.published >= head),
    )
    .await
    .expect("the second relay did not catch up")
    .unwrap();
    assert!(!second_relay.borrow().is_forked());
    // Both relays published checkpoints: the stream holds each once, in ascending size.
    let log_key = world.server().log_verifier().clone();
    assert_eq!(log_key.to_string(), second.log_verifier().to_string());
    let head = world.server().store().head().await.unwrap().position;
    checkpoint_sizes(&world.client, &world.subjects, &log_key, head).await;
    second.shutdown().await;
}
