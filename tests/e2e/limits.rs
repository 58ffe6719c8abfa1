//! A NATS server with a small `max_payload`: the service lowers its envelope limit so that every
//! record it accepts, and every reply, fits in one message, and refuses to start on a server
//! whose messages are too small to carry commands at all.

use serde_json::json;
use sha2::{Digest as _, Sha256};
use umlauf_domain::ids::CirculationId;
use umlauf_server::Server;

use crate::support::{
    Backend, OwnNats, TestDb, World, command, config, deployment_names, in_a_week, new_circulation,
    sign,
};

const MAX_PAYLOAD: usize = 64 * 1024;

/// A signed opening whose proposal text is `length` characters long.
fn opening(circulation: CirculationId, length: usize) -> Vec<u8> {
    let text = "x".repeat(length);
    let digest: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    sign(
        "secretariat",
        &command(
            "OpenCirculation",
            "secretariat",
            json!({
                "circulation": circulation,
                "title": "Beschluss mit langer Vorlage",
                "proposal": {"text": text, "sha256": digest},
                "rule": {"kind": "preset", "preset": "unanimity"},
                "deadline": in_a_week(),
            }),
        ),
    )
}

/// The longest opening whose envelope is at most `limit` bytes, and its proposal's length.
fn largest_opening(circulation: CirculationId, limit: usize) -> (Vec<u8>, usize) {
    let base = opening(circulation, 0).len();
    let mut length = (limit - base) / 4 * 3 + 8;
    loop {
        let bytes = opening(circulation, length);
        if bytes.len() <= limit {
            return (bytes, length);
        }
        length -= 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_accepted_fits_the_servers_max_payload() {
    let nats = OwnNats::start_configured(&format!("max_payload: {MAX_PAYLOAD}\n"));
    let world = World::start_with(Backend::Sqlite, &nats.url(), |_| {}).await;
    let limit = world.server().max_envelope_bytes();
    assert!(
        limit < MAX_PAYLOAD / 2,
        "the envelope limit {limit} was not lowered for max_payload {MAX_PAYLOAD}"
    );
    world.constitute().await;

    // An opening at the limit: accepted, answered, and its record (envelope and proposal) is
    // published on the log stream.
    let (at_limit, length) = largest_opening(new_circulation(), limit);
    assert!(at_limit.len() > limit - 8, "{} {limit}", at_limit.len());
    let reply = world.submit_bytes(at_limit).await.unwrap();
    let records = reply.record_bytes().unwrap();
    assert!(
        records[0].len() > limit,
        "the record of {} bytes is not near the limit",
        records[0].len()
    );
    let published = world.check_log_stream().await;
    assert_eq!(published.last().unwrap().bytes, records[0]);

    // A few bytes more: refused as too large, nothing written, and the relay is not stalled.
    let over = opening(new_circulation(), length + 3);
    assert!(over.len() > limit && over.len() < MAX_PAYLOAD);
    world.refuse_bytes(over, "too_large").await;
    world.check_log_stream().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_payload_too_small_for_commands_is_a_startup_error() {
    let nats = OwnNats::start_configured("max_payload: 16384\n");
    let db = TestDb::new(Backend::Sqlite).await;
    let names = deployment_names();
    let error = Server::start(config(&db, &nats.url(), &names))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("max_payload"), "{message}");
    assert!(message.contains("16384"), "{message}");
}
