use std::sync::Arc;

use chrono::Duration;
use futures_util::TryStreamExt as _;
use serde_json::json;
use umlauf_domain::circulation::Circulation;
use umlauf_domain::event::Decision;
use umlauf_domain::ids::{KeyId, MemberId, PublicKey};
use umlauf_domain::read_model::{CirculationState, CirculationStatus, KeyState};
use umlauf_domain::{Event, StreamId};
use umlauf_store::{Projection, ReadModelKey};

use crate::on_both_backends;
use crate::support::{Scenario, TestDb, check_log, signing_key, start};

on_both_backends!(
    status_inbox_and_keys_follow_the_log,
    a_rebuild_from_the_log_gives_identical_content,
    a_projection_for_another_stream_is_refused,
    the_read_model_keys_stream_every_stored_row,
    statuses_are_read_many_at_once_as_one_at_a_time,
);

fn member(id: &str) -> MemberId {
    MemberId::parse(id).unwrap()
}

fn key_of(actor: &str) -> KeyId {
    KeyId::of(&PublicKey(signing_key(actor).verifying_key().to_bytes()))
}

/// The status the domain's pure fold gives for a circulation's stream in the store.
async fn folded_status(scenario: &Scenario, n: u64) -> CirculationStatus {
    let events: Vec<Event> = scenario
        .store
        .read_stream(&StreamId::Circulation(Scenario::circulation_id(n)))
        .await
        .unwrap()
        .iter()
        .map(|record| record.event().unwrap())
        .collect();
    CirculationStatus::of(&Circulation::fold(&events)).unwrap()
}

async fn status_inbox_and_keys_follow_the_log(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    let body = Scenario::body_id();

    let keys = store.keys(&body).await.unwrap();
    assert_eq!(keys.len(), 6);
    assert!(keys.iter().all(|key| key.state == KeyState::Active));
    assert!(keys.windows(2).all(|pair| pair[0].key_id < pair[1].key_id));
    let de_key = store.key(&body, &key_of("DE")).await.unwrap().unwrap();
    assert_eq!(de_key.holder.to_string(), "DE");
    assert_eq!(store.key(&body, &key_of("nobody")).await.unwrap(), None);

    scenario
        .circulation_with_votes(1, "simple-majority", &[("DE", "yes"), ("DE-BE", "no")])
        .await;
    let status = store
        .circulation(&Scenario::circulation_id(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, folded_status(&scenario, 1).await);
    assert_eq!(status.state, CirculationState::Open);
    assert_eq!(status.version, 3);
    assert_eq!(status.votes.len(), 2);
    assert_eq!(status.awaiting.len(), 3);
    assert_eq!((status.tally.yes, status.tally.no), (1, 1));
    assert_eq!(
        store
            .circulation(&Scenario::circulation_id(9))
            .await
            .unwrap(),
        None
    );

    // Unanimity: one no decides at once.
    scenario
        .circulation_with_votes(2, "unanimity", &[("DE", "no")])
        .await;
    let closed = store
        .circulation(&Scenario::circulation_id(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed, folded_status(&scenario, 2).await);
    assert_eq!(closed.state, CirculationState::Closed);
    assert_eq!(closed.decision, Some(Decision::Rejected));

    let ids = |statuses: Vec<CirculationStatus>| -> Vec<_> {
        statuses
            .into_iter()
            .map(|status| status.circulation)
            .collect()
    };
    let (one, two) = (Scenario::circulation_id(1), Scenario::circulation_id(2));
    assert_eq!(ids(store.circulations(&body, None).await.unwrap()).len(), 2);
    assert_eq!(
        ids(store
            .circulations(&body, Some(CirculationState::Open))
            .await
            .unwrap()),
        [one]
    );
    assert_eq!(
        ids(store
            .circulations(&body, Some(CirculationState::Closed))
            .await
            .unwrap()),
        [two]
    );

    // The inbox: open circulations awaiting the member's answer, nothing closed or answered.
    assert_eq!(
        ids(store.inbox(&body, &member("DE-BY")).await.unwrap()),
        [one]
    );
    assert!(store.inbox(&body, &member("DE")).await.unwrap().is_empty());
    assert!(
        store
            .inbox(&body, &member("DE-BE"))
            .await
            .unwrap()
            .is_empty()
    );
    scenario
        .submit(&scenario.vote(1, "DE-BY", "yes"))
        .await
        .unwrap();
    assert!(
        store
            .inbox(&body, &member("DE-BY"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(store.inbox(&body, &member("DE-HH")).await.unwrap()),
        [one]
    );

    // The scheduler's question: open circulations past their deadline.
    assert!(
        store
            .circulations_past_deadline(start() + Duration::days(14))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .circulations_past_deadline(start() + Duration::days(15))
            .await
            .unwrap(),
        [one]
    );

    // A member revokes its own key.
    let revoke = scenario.command(
        "RevokeKey",
        "DE",
        json!({"key_id": key_of("DE"), "reason": "lost"}),
    );
    scenario.submit(&revoke).await.unwrap();
    let revoked = store.key(&body, &key_of("DE")).await.unwrap().unwrap();
    assert_eq!(revoked.state, KeyState::Revoked);
    assert_eq!(store.keys(&body).await.unwrap().len(), 6);
}

/// Circulation 1 open with two votes, circulation 2 closed by a veto.
async fn open_and_closed_circulations(scenario: &Scenario) {
    scenario
        .circulation_with_votes(1, "simple-majority", &[("DE", "yes"), ("DE-BE", "abstain")])
        .await;
    scenario
        .circulation_with_votes(2, "unanimity", &[("DE", "yes"), ("DE-HH", "no")])
        .await;
}

async fn a_rebuild_from_the_log_gives_identical_content(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    open_and_closed_circulations(&scenario).await;
    scenario
        .circulation_with_votes(3, "simple-majority", &[])
        .await;
    scenario
        .submit(&scenario.register_key("deputy"))
        .await
        .unwrap();
    let revoke = scenario.command(
        "RevokeKey",
        "secretariat",
        json!({"key_id": key_of("DE-NW")}),
    );
    scenario.submit(&revoke).await.unwrap();
    let records = check_log(&store).await;

    let before = store.read_model_dump().await.unwrap();
    assert_eq!(
        before
            .lines()
            .filter(|line| line.starts_with("circulation_status\t"))
            .count(),
        3
    );
    assert_eq!(
        before
            .lines()
            .filter(|line| line.starts_with("key_status\t"))
            .count(),
        7
    );
    // Circulation 1 awaits three members, circulation 3 all five, circulation 2 is closed.
    assert_eq!(
        before
            .lines()
            .filter(|line| line.starts_with("inbox\t"))
            .count(),
        8
    );

    let summary = store.rebuild_read_models().await.unwrap();
    assert_eq!(summary.streams, 4);
    assert_eq!(summary.records, u64::try_from(records.len()).unwrap());
    assert_eq!(store.read_model_dump().await.unwrap(), before);

    // Read models are not history: damage them, and the rebuild restores them from the log.
    db.raw("DELETE FROM inbox").await.unwrap();
    db.raw("DELETE FROM key_status WHERE holder = 'DE'")
        .await
        .unwrap();
    db.raw("UPDATE circulation_status SET state = 'closed'")
        .await
        .unwrap();
    assert_ne!(store.read_model_dump().await.unwrap(), before);
    store.rebuild_read_models().await.unwrap();
    assert_eq!(store.read_model_dump().await.unwrap(), before);
    // The log itself is untouched.
    assert_eq!(check_log(&store).await, records);
}

async fn a_projection_for_another_stream_is_refused(db: Arc<TestDb>) {
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
    let head = store.head().await.unwrap();

    let vote = scenario.decide(&scenario.vote(1, "DE", "yes")).await;
    let other = scenario.decide(&scenario.vote(2, "DE", "yes")).await;
    let body = scenario.decide(&scenario.register_key("deputy")).await;
    for projection in [
        other.projection,
        body.projection,
        Projection::Body(Vec::new()),
    ] {
        let mut wrong = vote.clone();
        wrong.projection = projection;
        let error = store.append(wrong).await.unwrap_err();
        assert_eq!(error.code(), "invalid_append", "{error}");
    }
    let mut empty = vote.clone();
    empty.events.clear();
    assert_eq!(
        store.append(empty).await.unwrap_err().code(),
        "invalid_append"
    );
    assert_eq!(store.head().await.unwrap(), head);
    store.append(vote).await.unwrap();
}

/// `read_model_keys` streams one key per stored row, the same rows the dump holds.
async fn the_read_model_keys_stream_every_stored_row(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    open_and_closed_circulations(&scenario).await;
    let mut keys: Vec<ReadModelKey> = store.read_model_keys().try_collect().await.unwrap();
    keys.sort();
    let mut expected: Vec<ReadModelKey> = store
        .read_model_dump()
        .await
        .unwrap()
        .lines()
        .map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            match columns.as_slice() {
                ["circulation_status", circulation, ..] => {
                    ReadModelKey::Circulation((*circulation).to_owned())
                }
                ["inbox", body, member, circulation] => ReadModelKey::Inbox {
                    body: (*body).to_owned(),
                    member: (*member).to_owned(),
                    circulation: (*circulation).to_owned(),
                },
                ["key_status", body, key_id, ..] => ReadModelKey::Key {
                    body: (*body).to_owned(),
                    key_id: (*key_id).to_owned(),
                },
                other => panic!("unexpected dump line {other:?}"),
            }
        })
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
    assert!(keys.contains(&ReadModelKey::Circulation(
        Scenario::circulation_id(1).to_string()
    )));
    // Circulation 1 awaits three of the five members.
    let awaited = keys
        .iter()
        .filter(|key| {
            matches!(key, ReadModelKey::Inbox { circulation, .. }
            if *circulation == Scenario::circulation_id(1).to_string())
        })
        .count();
    assert_eq!(awaited, 3);
}

async fn statuses_are_read_many_at_once_as_one_at_a_time(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    for n in 1..=3 {
        let open = scenario.decide(&scenario.open(n, "simple-majority")).await;
        store.append(open).await.unwrap();
    }
    let vote = scenario.decide(&scenario.vote(2, "DE", "yes")).await;
    store.append(vote).await.unwrap();
    let ids: Vec<_> = (1..=4).map(Scenario::circulation_id).collect();
    let statuses = store.circulation_statuses(&ids).await.unwrap();
    assert_eq!(statuses.len(), 3);
    for id in &ids {
        let one = store.circulation(id).await.unwrap();
        let many = statuses
            .get(id)
            .map(|status| status.as_ref().unwrap().clone());
        assert_eq!(many, one, "{id}");
    }
    assert!(store.circulation_statuses(&[]).await.unwrap().is_empty());
}
