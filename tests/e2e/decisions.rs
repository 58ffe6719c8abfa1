//! Decisions are derived from the log: a relay that stopped between a closing record and its
//! decision leaves nothing lost, and a relay starting again publishes no decision twice.

use async_nats::jetstream::{self, message::PublishMessage};
use futures_util::TryStreamExt as _;
use umlauf_nats::Subjects;
use umlauf_nats::streams::{StreamSettings, ensure_streams};
use umlauf_server::Server;
use umlauf_store::{Store, StoredRecord};

use crate::support::{
    Backend, World, caught_up, config, decision_on, delete_streams, deployment_names, in_a_week,
    result,
};

/// The streams of a second deployment name set, deleted when the test ends.
struct Streams {
    nats_url: String,
    names: (String, String),
    subjects: Subjects,
}

impl Drop for Streams {
    fn drop(&mut self) {
        delete_streams(&self.nats_url, &self.subjects);
    }
}

async fn decisions_held(client: &async_nats::Client, subjects: &Subjects) -> u64 {
    jetstream::new(client.clone())
        .get_stream(subjects.decisions_stream())
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_missing_behind_later_records_is_published_once() {
    let mut world = World::start(Backend::Sqlite).await;
    world.constitute().await;
    let rejected = world.open("unanimity", in_a_week()).await;
    world.votes(rejected, &["DE"], "no").await;
    // Records after the closing one.
    let later = world.open("unanimity", in_a_week()).await;
    world.votes(later, &["DE"], "yes").await;
    world.server.take().unwrap().shutdown().await;

    // Streams that hold the whole log, closing record included, but not its decision: what a
    // relay leaves that stopped between a closing record and its decision (and a log stream
    // that went on without it).
    let store = Store::open(&world.db.url).await.unwrap();
    let records: Vec<StoredRecord> = store.read_from(1).try_collect().await.unwrap();
    store.close().await;
    let head = records.last().unwrap().position();
    let streams = streams_holding(&world, &records, None).await;
    let (names, subjects) = (&streams.names, &streams.subjects);
    assert_eq!(decisions_held(&world.client, subjects).await, 0);

    // The service starts on these streams: its relay finds the log stream complete and publishes
    // the missing decision from the log.
    let server = Server::start(config(&world.db, &world.nats_url, names))
        .await
        .unwrap();
    let decision = decision_on(&world.client, subjects, rejected, None).await;
    assert_eq!(result(&decision), "rejected");
    let closing = records
        .iter()
        .find(|record| record.record.event_type == "CirculationClosed")
        .unwrap();
    assert_eq!(decision.position, closing.position());
    assert_eq!(decision.record_bytes().unwrap(), closing.bytes);
    caught_up(&mut server.relay_status(), head).await;
    assert_eq!(decisions_held(&world.client, subjects).await, 1);
    server.shutdown().await;

    // Starting again (and again) publishes no decision a second time.
    for _ in 0..2 {
        let server = Server::start(config(&world.db, &world.nats_url, names))
            .await
            .unwrap();
        caught_up(&mut server.relay_status(), head).await;
        server.shutdown().await;
        assert_eq!(decisions_held(&world.client, subjects).await, 1);
    }
}

/// Beyond JetStream's duplicate window: the log stream ends with a closing record and the
/// decisions stream holds its decision under no message id JetStream still remembers (here:
/// none). The relay finds the decision by its position and publishes it no second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_held_is_not_published_again_after_the_duplicate_window() {
    let mut world = World::start(Backend::Sqlite).await;
    world.constitute().await;
    let rejected = world.open("unanimity", in_a_week()).await;
    world.votes(rejected, &["DE"], "no").await;
    let decision = world.decision(rejected).await;
    world.server.take().unwrap().shutdown().await;

    let store = Store::open(&world.db.url).await.unwrap();
    let records: Vec<StoredRecord> = store.read_from(1).try_collect().await.unwrap();
    store.close().await;
    let head = records.last().unwrap().position();
    assert_eq!(head, decision.position, "the closing record is the last");
    let streams = streams_holding(
        &world,
        &records,
        Some(serde_json::to_vec(&decision).unwrap()),
    )
    .await;
    assert_eq!(decisions_held(&world.client, &streams.subjects).await, 1);
    for _ in 0..2 {
        let server = Server::start(config(&world.db, &world.nats_url, &streams.names))
            .await
            .unwrap();
        caught_up(&mut server.relay_status(), head).await;
        server.shutdown().await;
        assert_eq!(decisions_held(&world.client, &streams.subjects).await, 1);
    }
}

/// The streams of a new set of deployment names holding `records` in the log stream (as the
/// relay publishes them) and, if given, one decision message published without a message id.
async fn streams_holding(
    world: &World,
    records: &[StoredRecord],
    decision: Option<Vec<u8>>,
) -> Streams {
    let names = deployment_names();
    let streams = Streams {
        nats_url: world.nats_url.clone(),
        subjects: Subjects::new(&names.0, &names.1),
        names,
    };
    let subjects = &streams.subjects;
    let jetstream = jetstream::new(world.client.clone());
    ensure_streams(&jetstream, subjects, &StreamSettings::default())
        .await
        .unwrap();
    for record in records {
        let message = PublishMessage::build()
            .payload(record.bytes.clone().into())
            .message_id(record.position().to_string())
            .expected_last_sequence(record.position() - 1);
        jetstream
            .send_publish(subjects.log_record(&record.record.stream), message)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    if let Some(decision) = decision {
        let parsed: umlauf_nats::wire::DecisionMessage = serde_json::from_slice(&decision).unwrap();
        jetstream
            .publish(
                subjects.decision(&parsed.body, &parsed.circulation),
                decision.into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    streams
}
