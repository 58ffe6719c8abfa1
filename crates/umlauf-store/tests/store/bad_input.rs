use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::json;
use umlauf_domain::StreamId;
use umlauf_store::{MAX_RECORD_BYTES, Store, StoreError, parse_stream};

use crate::appending::insert_raw_record;
use crate::on_both_backends;
use crate::support::{Scenario, TestDb, check_log};

on_both_backends!(
    an_oversize_record_is_refused_alone_and_nothing_is_written,
    stream_names_outside_the_pattern_are_refused,
    a_stored_record_that_is_not_utf8_or_not_its_hash_is_reported_not_returned,
);

async fn an_oversize_record_is_refused_alone_and_nothing_is_written(db: Arc<TestDb>) {
    assert_eq!(MAX_RECORD_BYTES, 1 << 20);
    let mut options = db.options();
    options.max_record_bytes = 4096;
    let store = Store::open_with(options).await.unwrap();
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    let head = store.head().await.unwrap();

    // A vote with a long statement, and a short vote in the same batch.
    let long = scenario.command(
        "CastVote",
        "DE",
        json!({
            "circulation": Scenario::circulation_id(1),
            "choice": "yes",
            "proposal_sha256": scenario_digest(),
            "statement": "Protokollerklärung. ".repeat(250),
        }),
    );
    let long = scenario.decide(&long).await;
    let short = scenario.decide(&scenario.vote(1, "DE-BE", "no")).await;
    let results = store.append_all(vec![long, short]).await;
    match &results[0] {
        Err(error @ StoreError::RecordTooLarge { size, limit }) => {
            assert_eq!(error.code(), "record_too_large");
            assert!(*size > 4096 && *limit == 4096, "{error}");
        }
        other => panic!("expected record_too_large, got {other:?}"),
    }
    assert_eq!(
        results[1].as_ref().unwrap().last_position(),
        Some(head.position + 1)
    );
    let status = store
        .circulation(&Scenario::circulation_id(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.votes.len(), 1);
    check_log(&store).await;
}

fn scenario_digest() -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(crate::support::PROPOSAL)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

async fn stream_names_outside_the_pattern_are_refused(db: Arc<TestDb>) {
    let store = db.open().await;
    Scenario::constituted(store.clone()).await;
    let head = store.head().await.unwrap();
    for bad in [
        "",
        "body/",
        "body/Test-Rat",
        "body/test-rat/extra",
        "circulation/5F0C3A86-1B7E-4D59-8A3E-0C7B1D2E4F60",
        "circulation/not-a-uuid",
        "member/DE",
        "body/test\u{0}rat",
    ] {
        let error = parse_stream(bad).unwrap_err();
        assert_eq!(error.code(), "invalid_stream", "{bad:?}");
        assert!(
            error
                .to_string()
                .contains("must be body/<id> or circulation/<uuid>"),
            "{error}"
        );
    }
    // A well-formed name reads its stream.
    let stream = parse_stream("body/test-rat").unwrap();
    assert_eq!(store.read_stream(&stream).await.unwrap().len(), 13);
    assert_eq!(store.head().await.unwrap(), head);
}

/// Invalid UTF-8 cannot reach the typed append (events, envelopes and names are Rust strings and
/// JSON values), so it is tested where raw bytes enter: reading rows back. A record row written
/// behind the store's back that is not UTF-8, or whose bytes do not match its leaf hash, is an
/// error naming its position, never a record.
async fn a_stored_record_that_is_not_utf8_or_not_its_hash_is_reported_not_returned(
    db: Arc<TestDb>,
) {
    let store = db.open().await;
    Scenario::constituted(store.clone()).await;
    let stream = "circulation/5f0c3a86-1b7e-4d59-8a3e-00000000dead";
    let mut not_utf8 = br#"{"position":14,"stream":"circulation/5f0c3a86-1b7e-4d59-8a3e-00000000dead","version":1,"type":"VoteCast","schema":1,"recorded_at":"2026-03-02T09:00:01Z","data":{"member":"DE"#.to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe]);
    not_utf8.extend_from_slice(br#""}}"#);
    insert_raw_record(&db, stream, 14, 1, &not_utf8).await;

    let error = store
        .read_stream(&StreamId::parse(stream).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "corrupt_record");
    assert!(error.to_string().contains("position 14"), "{error}");
    assert!(error.to_string().contains("not UTF-8"), "{error}");

    // The log reads up to the bad record, then says what is wrong.
    let results: Vec<_> = store.read_from(1).collect().await;
    assert_eq!(results.len(), 14);
    assert!(results[..13].iter().all(Result::is_ok));
    assert_eq!(results[13].as_ref().unwrap_err().code(), "corrupt_record");

    // A row whose bytes were swapped after the fact no longer matches its hash; one copied
    // whole from elsewhere matches its hash but not its row.
    let swapped = "INSERT INTO log_records (position, stream, version, event_type, record, leaf_hash) \
         SELECT 15, 'body/test-rat', 14, event_type, (SELECT record FROM log_records WHERE position = 13), leaf_hash \
         FROM log_records WHERE position = 12; \
         UPDATE log_head SET position = 15";
    db.raw(swapped).await.unwrap();
    let error = store
        .read_stream(&Scenario::body_stream())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "corrupt_record");
    assert!(error.to_string().contains("position 15"), "{error}");
    assert!(
        error.to_string().contains("do not match its leaf hash"),
        "{error}"
    );

    let copied = "INSERT INTO log_records (position, stream, version, event_type, record, leaf_hash) \
         SELECT 16, 'circulation/5f0c3a86-1b7e-4d59-8a3e-00000000beef', 1, event_type, record, leaf_hash \
         FROM log_records WHERE position = 13; \
         UPDATE log_head SET position = 16";
    db.raw(copied).await.unwrap();
    let error = store
        .read_stream(&StreamId::parse("circulation/5f0c3a86-1b7e-4d59-8a3e-00000000beef").unwrap())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("its row"), "{error}");
}
