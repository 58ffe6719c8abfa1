use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Barrier;
use umlauf_domain::body::{self, Body};
use umlauf_domain::{Command, StreamId};
use umlauf_store::{Append, ConflictKind, Projection, StoreError};

use crate::on_both_backends;
use crate::support::{Scenario, TestDb, check_log};

on_both_backends!(
    an_append_depending_on_a_moved_stream_conflicts_and_writes_nothing,
    a_dependency_moved_by_another_store_is_seen,
    dependencies_and_the_expected_head_are_judged_in_order_within_a_batch,
    only_one_of_two_concurrent_first_appends_expecting_an_empty_log_wins,
);

/// Records of the constitution: the body, its members, a weight table, a key each and the
/// secretariat's.
const CONSTITUTION_RECORDS: u64 = 13;

/// Asserts a conflict of `kind` on `stream` from `expected` to `actual`.
fn assert_conflict(
    result: &Result<umlauf_store::Appended, StoreError>,
    kind: ConflictKind,
    stream: &StreamId,
    expected: u64,
    actual: u64,
) {
    match result {
        Err(
            error @ StoreError::Conflict {
                stream: found,
                expected: found_expected,
                actual: found_actual,
                kind: found_kind,
            },
        ) => {
            assert_eq!(
                (found_kind, found, *found_expected, *found_actual),
                (&kind, stream, expected, actual),
                "{error}"
            );
            assert_eq!(error.code(), "conflict");
            assert!(error.is_retryable());
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// A vote on circulation `n` by `member` as decided now, depending on the body's version.
async fn vote_depending_on_the_body(scenario: &Scenario, n: u64, member: &str) -> Append {
    let body_version = scenario.body().await.version;
    let mut vote = scenario.decide(&scenario.vote(n, member, "yes")).await;
    vote.depends_on = vec![(Scenario::body_stream(), body_version)];
    vote
}

async fn an_append_depending_on_a_moved_stream_conflicts_and_writes_nothing(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    // The vote is decided against the body as it is; then a key registration moves the body.
    let vote = vote_depending_on_the_body(&scenario, 1, "DE").await;
    scenario
        .submit(&scenario.register_key("late key"))
        .await
        .unwrap();
    let head = store.head().await.unwrap();
    let circulation = StreamId::Circulation(Scenario::circulation_id(1));
    let result = store.append(vote).await;
    assert_conflict(
        &result,
        ConflictKind::Dependency,
        &Scenario::body_stream(),
        CONSTITUTION_RECORDS,
        CONSTITUTION_RECORDS + 1,
    );
    assert_eq!(store.head().await.unwrap(), head);
    assert_eq!(store.read_stream(&circulation).await.unwrap().len(), 1);
    let status = store
        .circulation(&Scenario::circulation_id(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.version, 1);

    // Decided again against the body as it is now, the vote goes through.
    let vote = vote_depending_on_the_body(&scenario, 1, "DE").await;
    let appended = store.append(vote).await.unwrap();
    assert_eq!(appended.records[0].record.version, 2);
    check_log(&store).await;
}

/// Another store (a replica) moves the body between this store's decision and its append: this
/// store's writer remembers the body's version from its own appends, and must not judge by it.
async fn a_dependency_moved_by_another_store_is_seen(db: Arc<TestDb>) {
    let first = db.open().await;
    let scenario = Scenario::constituted(first.clone()).await;
    scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    let vote = vote_depending_on_the_body(&scenario, 1, "DE").await;
    // The first store's writer has just appended; the second store registers a key.
    let other = Scenario::continuing(db.open().await, 1_000_000).await;
    other
        .submit(&other.register_key("other key"))
        .await
        .unwrap();
    let head = first.head().await.unwrap();
    let mut vote = vote;
    vote.recorded_at = other.tick();
    let result = first.append(vote).await;
    assert_conflict(
        &result,
        ConflictKind::Dependency,
        &Scenario::body_stream(),
        CONSTITUTION_RECORDS,
        CONSTITUTION_RECORDS + 1,
    );
    assert_eq!(first.head().await.unwrap(), head);

    // Once more, now that the first store's writer has caught up with the body's version: the
    // second store moves it again, and a vote depending on the version before fails.
    let stale = CONSTITUTION_RECORDS + 1;
    other
        .submit(&other.register_key("another key"))
        .await
        .unwrap();
    let mut vote = scenario
        .decide_at(&scenario.vote(1, "DE-BE", "no"), other.tick())
        .await;
    vote.depends_on = vec![(Scenario::body_stream(), stale)];
    let result = first.append(vote).await;
    assert_conflict(
        &result,
        ConflictKind::Dependency,
        &Scenario::body_stream(),
        stale,
        stale + 1,
    );
    let records = check_log(&first).await;
    assert_eq!(records.len(), 13 + 1 + 2);
}

async fn dependencies_and_the_expected_head_are_judged_in_order_within_a_batch(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    let body = Scenario::body_stream();
    let version = CONSTITUTION_RECORDS;
    let now = scenario.tick();
    // A key registration moves the body; a vote after it in the same batch that read the body
    // before it conflicts, a vote before it does not.
    let mut before = scenario
        .decide_at(&scenario.vote(1, "DE", "yes"), now)
        .await;
    before.depends_on = vec![(body.clone(), version)];
    let key = scenario
        .decide_at(&scenario.register_key("batch key"), now)
        .await;
    let mut after = scenario
        .decide_at(&scenario.vote(1, "DE-BE", "no"), now)
        .await;
    after.depends_on = vec![(body.clone(), version)];
    after.expected_version += 1;
    // Expecting the head as the batch leaves it after the key: accepted; expecting the head as
    // it was before the batch: refused.
    let head = store.head().await.unwrap().position;
    let mut at_head = scenario
        .decide_at(&scenario.open(2, "simple-majority"), now)
        .await;
    at_head.expected_head = Some(head + 2);
    let mut stale_head = scenario
        .decide_at(&scenario.open(3, "simple-majority"), now)
        .await;
    stale_head.expected_head = Some(head);

    let results = store
        .append_all(vec![before, key, after, at_head, stale_head])
        .await;
    assert_eq!(results[0].as_ref().unwrap().last_position(), Some(head + 1));
    assert_eq!(results[1].as_ref().unwrap().last_position(), Some(head + 2));
    assert_conflict(
        &results[2],
        ConflictKind::Dependency,
        &body,
        version,
        version + 1,
    );
    assert_eq!(results[3].as_ref().unwrap().last_position(), Some(head + 3));
    assert_conflict(
        &results[4],
        ConflictKind::Head,
        &StreamId::Circulation(Scenario::circulation_id(3)),
        head,
        head + 3,
    );
    assert_eq!(store.head().await.unwrap().position, head + 3);
    assert_eq!(
        store
            .circulation(&Scenario::circulation_id(3))
            .await
            .unwrap(),
        None
    );
    check_log(&store).await;
}

/// The constitution of another body than the scenario's.
fn constitution_of(scenario: &Scenario, body: &str) -> Command {
    let mut value: Value = serde_json::from_str(&scenario.constitution().to_json()).unwrap();
    value["body"] = Value::String(body.into());
    Command::from_value(value).unwrap()
}

/// The first append of a log expecting an empty log.
fn first_append(scenario: &Scenario, command: &Command) -> Append {
    let now = scenario.tick();
    let events = body::decide(&Body::default(), command, now).unwrap();
    let stream = command.stream();
    let projection = Projection::fold(&stream, &events);
    Append {
        stream,
        expected_version: 0,
        events,
        depends_on: Vec::new(),
        expected_head: Some(0),
        recorded_at: now,
        cause: Some(Scenario::cause(command)),
        projection,
    }
}

async fn only_one_of_two_concurrent_first_appends_expecting_an_empty_log_wins(db: Arc<TestDb>) {
    // Two stores on one database (replicas), each with the constitution of another body, both
    // expecting to write the log's first record: two streams, so only the head can decide.
    let stores = [db.open().await, db.open().await];
    let mut appends: Vec<Append> = Vec::new();
    for ((body, store), first_id) in ["erstrat", "zweitrat"].iter().zip(&stores).zip([1, 1_000]) {
        let scenario = Scenario::continuing(store.clone(), first_id).await;
        appends.push(first_append(&scenario, &constitution_of(&scenario, body)));
    }
    let barrier = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = appends
        .iter()
        .cloned()
        .zip(stores.iter().cloned())
        .map(|(append, store)| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.append(append).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let winners: Vec<usize> = (0..2).filter(|index| results[*index].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let loser = 1 - winners[0];
    assert_conflict(
        &results[loser],
        ConflictKind::Head,
        &appends[loser].stream,
        0,
        CONSTITUTION_RECORDS,
    );
    let records = check_log(&stores[0]).await;
    assert_eq!(records.len(), 13);
    assert!(
        records
            .iter()
            .all(|record| record.record.stream == appends[winners[0]].stream)
    );
    // Once the log has a first record, no append expecting an empty log gets in, on either store.
    for store in &stores {
        let result = store.append(appends[loser].clone()).await;
        assert_conflict(
            &result,
            ConflictKind::Head,
            &appends[loser].stream,
            0,
            CONSTITUTION_RECORDS,
        );
    }
}
