use std::sync::Arc;

use base64::Engine as _;
use umlauf_domain::Command;
use umlauf_proof::dsse::{COMMAND_PAYLOAD_TYPE, Envelope};
use umlauf_store::{Cause, StoreError};

use crate::on_both_backends;
use crate::support::{Scenario, TestDb, check_log, signing_key};

on_both_backends!(
    the_same_command_again_returns_the_first_result_and_writes_nothing,
    the_same_command_in_other_json_formatting_is_the_same_command,
    the_same_id_with_another_payload_or_signature_is_refused,
    duplicates_within_one_batch_are_recognised,
);

async fn the_same_command_again_returns_the_first_result_and_writes_nothing(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    let vote = scenario.vote(1, "DE", "yes");
    let append = scenario.decide(&vote).await;
    let first = store.append(append.clone()).await.unwrap();
    assert!(!first.duplicate);
    let head = store.head().await.unwrap();

    // Sent again, as a client retrying after a lost reply would: even though its expected
    // version is stale by now, it is recognised as the command already recorded.
    let again = store.append(append.clone()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.records, first.records);
    assert_eq!(store.head().await.unwrap(), head);

    scenario
        .submit(&scenario.vote(1, "DE-BE", "no"))
        .await
        .unwrap();
    let later = store.append(append).await.unwrap();
    assert!(later.duplicate);
    assert_eq!(later.records, first.records);
    assert_eq!(
        store.command_records(&vote.command_id).await.unwrap(),
        first.records
    );
    check_log(&store).await;
}

/// The envelope in another JSON formatting: URL-safe base64 without padding, fields reordered,
/// whitespace. Same payload, same signature, so the same command.
fn reformatted(cause: &Cause) -> Cause {
    let original = Envelope::from_json(cause.envelope.to_string().as_bytes()).unwrap();
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let text = format!(
        "{{ \"signatures\" : [ {{ \"sig\": \"{}\", \"keyid\": \"{}\" }} ],\n  \"payload\": \"{}\", \"payloadType\": \"{}\" }}",
        url_safe.encode(&original.signatures[0].sig),
        original.signatures[0].keyid,
        url_safe.encode(&original.payload),
        original.payload_type,
    );
    let envelope = Envelope::from_json(text.as_bytes()).unwrap();
    Cause {
        command_id: cause.command_id,
        envelope: serde_json::from_str(&text).unwrap(),
        digest: envelope.content_digest(),
    }
}

async fn the_same_command_in_other_json_formatting_is_the_same_command(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    let append = scenario.decide(&scenario.vote(1, "DE", "yes")).await;
    let first = store.append(append.clone()).await.unwrap();
    let head = store.head().await.unwrap();

    let mut resent = append.clone();
    resent.cause = Some(reformatted(append.cause.as_ref().unwrap()));
    assert_ne!(
        resent.cause.as_ref().unwrap().envelope,
        append.cause.as_ref().unwrap().envelope
    );
    let again = store.append(resent).await.unwrap();
    assert!(again.duplicate);
    // The first result, with the envelope as it was first recorded.
    assert_eq!(again.records, first.records);
    assert_eq!(
        again.records[0].record.envelope.as_ref(),
        Some(&append.cause.as_ref().unwrap().envelope)
    );
    assert_eq!(store.head().await.unwrap(), head);
}

async fn the_same_id_with_another_payload_or_signature_is_refused(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    let vote = scenario.vote(1, "DE", "yes");
    scenario.submit(&vote).await.unwrap();
    let head = store.head().await.unwrap();

    // Another payload under the same id: another member's vote.
    let mut other: Command = scenario.vote(1, "DE-BE", "no");
    other.command_id = vote.command_id;
    let append = scenario.decide(&other).await;
    let error = store.append(append.clone()).await.unwrap_err();
    assert_eq!(error.code(), "command_id_reused");
    assert!(!error.is_retryable());
    assert!(
        matches!(error, StoreError::CommandIdReused { command_id } if command_id == vote.command_id)
    );

    // The same payload signed by another key: another signature, so another command.
    let resigned = umlauf_proof::dsse::sign(
        COMMAND_PAYLOAD_TYPE,
        vote.to_json().as_bytes(),
        &signing_key("DE-BY"),
    );
    let mut same_payload = scenario.decide(&scenario.vote(1, "DE-HH", "yes")).await;
    same_payload.cause = Some(Cause {
        command_id: vote.command_id,
        envelope: serde_json::from_str(&resigned.to_json()).unwrap(),
        digest: resigned.content_digest(),
    });
    let error = store.append(same_payload).await.unwrap_err();
    assert_eq!(error.code(), "command_id_reused");

    assert_eq!(store.head().await.unwrap(), head);
    let status = store
        .circulation(&Scenario::circulation_id(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.votes.len(), 1);
}

async fn duplicates_within_one_batch_are_recognised(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    scenario
        .submit(&scenario.open(2, "simple-majority"))
        .await
        .unwrap();
    let head = store.head().await.unwrap().position;

    let vote = scenario.decide(&scenario.vote(1, "DE", "yes")).await;
    let mut clash = scenario.decide(&scenario.vote(2, "DE", "no")).await;
    clash.cause.as_mut().unwrap().command_id = vote.cause.as_ref().unwrap().command_id;
    let results = store
        .append_all(vec![vote.clone(), vote.clone(), clash])
        .await;
    let first = results[0].as_ref().unwrap();
    let second = results[1].as_ref().unwrap();
    assert!(!first.duplicate && second.duplicate);
    assert_eq!(first.records, second.records);
    assert_eq!(first.last_position(), Some(head + 1));
    assert_eq!(results[2].as_ref().unwrap_err().code(), "command_id_reused");
    assert_eq!(store.head().await.unwrap().position, head + 1);
    check_log(&store).await;
}
