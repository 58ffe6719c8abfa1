//! NATS restarted while the service runs: the service reconnects, the relay catches up with what
//! was recorded meanwhile, and nothing is lost or published twice.

use std::time::Duration;

use crate::support::{
    Backend, LARGEST_ELEVEN, OwnNats, World, check_log_stream, checkpoint_sizes, connect,
    in_a_week, in_seconds, result,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_catches_up_after_nats_comes_back() {
    let mut nats = OwnNats::start();
    let mut world = World::start_with(Backend::Sqlite, &nats.url(), |_| {}).await;
    world.constitute().await;
    // This circulation closes at its deadline while NATS is down.
    let closing_in_the_dark = world.open("it-planungsrat-resolution", in_seconds(2)).await;
    world.votes(closing_in_the_dark, &["DE"], "yes").await;
    world
        .votes(closing_in_the_dark, &LARGEST_ELEVEN, "yes")
        .await;
    world.relayed().await;

    nats.stop();
    let store = world.server().store().clone();
    let closed = crate::support::eventually("the close at the deadline", || {
        let store = store.clone();
        async move {
            let closes = crate::support::closes(&store, closing_in_the_dark).await;
            (!closes.is_empty()).then_some(closes)
        }
    })
    .await;
    assert_eq!(closed.len(), 1);
    let head = store.head().await.unwrap().position;
    assert!(world.server().relay_status().borrow().published < head);
    tokio::time::sleep(Duration::from_millis(300)).await;

    nats.resume();
    world.client = connect(&nats.url()).await;
    world.wait_for_service().await;
    // The service answers again, and the relay publishes what was recorded meanwhile.
    let after = world.open("it-planungsrat-resolution", in_a_week()).await;
    world.votes(after, &["DE"], "yes").await;
    let records = world.check_log_stream().await;
    // The checkpoints signed while NATS was down are published too, once each, in order.
    let head = records.last().unwrap().position();
    let log_key = world.server().log_verifier().clone();
    checkpoint_sizes(&world.client, &world.subjects, &log_key, head).await;
    let decision = world.decision(closing_in_the_dark).await;
    assert_eq!(result(&decision), "adopted");
    assert_eq!(decision.position, closed[0].position());

    // A graceful shutdown flushes the relay: the stream holds the whole log, no more, no less.
    world.votes(after, &["DE-BY"], "yes").await;
    let server = world.server.take().unwrap();
    server.shutdown().await;
    let store = umlauf_store::Store::open(&world.db.url).await.unwrap();
    let head = store.head().await.unwrap().position;
    check_log_stream(&world.client, &world.subjects, &store, head).await;
}
