//! Bad input over the wire: every refusal comes back with its stable code and HTTP-like status,
//! and nothing is written for it.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use crate::support::{
    Backend, World, command, in_a_week, in_seconds, public_key, sign, signing_key, vote,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_code_and_writes_nothing() {
    let world = World::start(Backend::Sqlite).await;
    world.constitute().await;
    let circulation = world.open("it-planungsrat-resolution", in_a_week()).await;

    // Not an envelope at all.
    world
        .refuse_bytes(b"\x00\xffgarbage".to_vec(), "malformed_envelope")
        .await;
    world
        .refuse_bytes(b"{\"payloadType\":1}".to_vec(), "malformed_envelope")
        .await;
    // Larger than the limit of 384 KiB.
    world
        .refuse_bytes(vec![b' '; 384 * 1024 + 1], "too_large")
        .await;

    // A valid envelope whose signature does not verify.
    let mut envelope: serde_json::Value =
        serde_json::from_slice(&sign("DE-BY", &vote(circulation, "DE-BY", "yes"))).unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let mut sig = engine
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    sig[7] ^= 1;
    envelope["signatures"][0]["sig"] = json!(engine.encode(&sig));
    world
        .refuse_bytes(serde_json::to_vec(&envelope).unwrap(), "bad_signature")
        .await;
    // Signed by a key nobody registered.
    world
        .refuse(
            "stranger",
            &vote(circulation, "DE-BY", "yes"),
            "unknown_key",
        )
        .await;
    // Signed by another member's key.
    world
        .refuse(
            "DE-BE",
            &vote(circulation, "DE-BY", "yes"),
            "key_of_another_actor",
        )
        .await;
    // A command that is not one, signed properly.
    let mut unknown_field = vote(circulation, "DE-BY", "yes");
    unknown_field["extra"] = json!(1);
    world
        .refuse("DE-BY", &unknown_field, "invalid_command")
        .await;
    // Issued an hour ago.
    let mut stale = vote(circulation, "DE-BY", "yes");
    stale["issued_at"] = json!(chrono::Utc::now() - chrono::Duration::hours(1));
    world.refuse("DE-BY", &stale, "clock_skew").await;

    // A revoked key: registered by the secretariat, revoked by its member.
    let deputy = public_key("DE-BY deputy");
    world
        .accept(
            "secretariat",
            &command(
                "RegisterKey",
                "secretariat",
                json!({"holder": "DE-BY", "public_key": deputy, "label": "deputy"}),
            ),
        )
        .await;
    world
        .accept("DE-BY deputy", &vote(circulation, "DE-BY", "abstain"))
        .await;
    let key_id = umlauf_proof::keys::key_id(&signing_key("DE-BY deputy").verifying_key());
    world
        .accept(
            "DE-BY",
            &command(
                "RevokeKey",
                "DE-BY",
                json!({"key_id": key_id, "reason": "lost"}),
            ),
        )
        .await;
    world
        .refuse(
            "DE-BY deputy",
            &vote(circulation, "DE-BY", "yes"),
            "revoked_key",
        )
        .await;

    // A replayed envelope gets the first result; nothing new is written.
    let first_vote = vote(circulation, "DE-NW", "yes");
    let bytes = sign("DE-NW", &first_vote);
    let first = world.submit_bytes(bytes.clone()).await.unwrap();
    assert!(!first.duplicate);
    let head = world.server().store().head().await.unwrap().position;
    let replay = world.submit_bytes(bytes.clone()).await.unwrap();
    assert!(replay.duplicate);
    assert_eq!(replay.records, first.records);
    // Also with other JSON formatting of the same envelope.
    let reformatted: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let pretty = serde_json::to_vec_pretty(&reformatted).unwrap();
    assert!(world.submit_bytes(pretty).await.unwrap().duplicate);
    assert_eq!(world.server().store().head().await.unwrap().position, head);

    // A changed envelope reusing the command id.
    let mut changed = first_vote.clone();
    changed["choice"] = json!("no");
    world.refuse("DE-NW", &changed, "command_id_reused").await;

    // Queries refuse what they cannot read, and name what does not exist.
    let error = world
        .query::<serde_json::Value>("circulation", &json!({"circulation": "nope"}))
        .await
        .unwrap_err();
    assert_eq!((error.code.as_str(), error.status), ("invalid_query", 400));
    let error = world
        .query::<serde_json::Value>("circulation", &json!({"circulation": uuid::Uuid::nil()}))
        .await
        .unwrap_err();
    assert_eq!(
        (error.code.as_str(), error.status),
        ("unknown_circulation", 404)
    );
}

/// A vote recorded after the deadline is refused even before the close is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_after_the_deadline_is_refused_before_the_close() {
    let nats = crate::support::require_shared_nats();
    // The scheduler looks only at start, so the close is not written during the test.
    let world = World::start_with(Backend::Sqlite, &nats, |config| {
        config.deadline_check_ms = 3_600_000;
    })
    .await;
    world.constitute().await;
    let circulation = world.open("it-planungsrat-resolution", in_seconds(1)).await;
    world.votes(circulation, &["DE"], "yes").await;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    world
        .refuse(
            "DE-BY",
            &vote(circulation, "DE-BY", "yes"),
            "deadline_passed",
        )
        .await;
    let status = world.status(circulation).await;
    assert_eq!(
        status.state,
        umlauf_domain::read_model::CirculationState::Open
    );
}
