//! The fork alarm: a relay whose stream already holds a different record at a position stops
//! publishing and says so.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use umlauf_nats::streams::{StreamSettings, ensure_streams};

use crate::support::{
    Backend, TestDb, World, body_id, config, connect, deployment_names, require_shared_nats,
};
use umlauf_domain::StreamId;
use umlauf_nats::Subjects;
use umlauf_server::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_stops_when_the_stream_holds_another_record() {
    let nats_url = require_shared_nats();
    let names = deployment_names();
    let subjects = Subjects::new(&names.0, &names.1);
    // Another history got to the stream first: a record at position 1 that is not this log's.
    let client = connect(&nats_url).await;
    let js = jetstream::new(client.clone());
    ensure_streams(&js, &subjects, &StreamSettings::default())
        .await
        .unwrap();
    js.send_publish(
        subjects.log_record(&StreamId::Body(body_id())),
        PublishMessage::build()
            .payload(br#"{"position":1,"other":"history"}"#.to_vec().into())
            .message_id("1")
            .expected_last_sequence(0),
    )
    .await
    .unwrap()
    .await
    .unwrap();

    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(config(&db, &nats_url, &names)).await.unwrap();
    let world = World::attach(db, &nats_url, names, server).await;
    world.constitute().await;
    let mut status = world.server().relay_status();
    let forked = tokio::time::timeout(
        crate::support::PATIENCE,
        status.wait_for(|status| status.is_forked()),
    )
    .await
    .expect("no fork alarm")
    .unwrap()
    .clone();
    assert!(matches!(
        forked.state,
        umlauf_nats::relay::RelayState::Forked { position: 1, .. }
    ));

    // The service still records commands, but the relay publishes nothing more.
    world
        .accept(
            "secretariat",
            &crate::support::open(
                crate::support::new_circulation(),
                "unanimity",
                crate::support::in_a_week(),
            ),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut stream = js.get_stream(subjects.log_stream()).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.last_sequence, 1);
}
