use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use sqlx::Connection;

use tokio::sync::Barrier;
use umlauf_domain::StreamId;
use umlauf_domain::read_model::CirculationState;
use umlauf_store::{Store, StoreError};

use crate::on_both_backends;
use crate::support::{Backend, Scenario, TestDb, check_log};

on_both_backends!(
    many_appenders_on_one_stream_get_one_winner_per_version,
    many_appenders_on_different_streams_all_succeed_without_gaps,
    replicas_on_one_database_keep_positions_and_versions_unique,
    a_writer_that_finds_the_head_moved_judges_on_fresh_versions,
    waiting_appends_of_different_callers_are_taken_in_the_order_of_their_times,
    a_failing_batch_fails_the_batch_behind_it_and_both_are_judged_again,
    a_lone_caller_never_waits_for_company,
);

const CONTENDERS: usize = 16;
const ROUNDS: usize = 4;

async fn many_appenders_on_one_stream_get_one_winner_per_version(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    for round in 0..ROUNDS {
        // Every contender decides against the same state, then all append at once.
        let now = scenario.tick();
        let mut appends = Vec::new();
        for contender in 0..CONTENDERS {
            let command = scenario.register_key(&format!("key {round} {contender}"));
            appends.push(scenario.decide_at(&command, now).await);
        }
        let version = appends[0].expected_version;
        let barrier = Arc::new(Barrier::new(CONTENDERS));
        let tasks: Vec<_> = appends
            .into_iter()
            .map(|append| {
                let store = store.clone();
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.append(append).await
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(appended) => {
                    winners += 1;
                    assert_eq!(appended.records[0].record.version, version + 1);
                }
                Err(StoreError::Conflict {
                    expected, actual, ..
                }) => assert_eq!((expected, actual), (version, version + 1)),
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
    let records = check_log(&store).await;
    assert_eq!(records.len(), 13 + ROUNDS);
}

const STREAMS: u64 = 32;

async fn many_appenders_on_different_streams_all_succeed_without_gaps(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    // One recording time for all: equal times are in order, so no append is refused for its
    // clock and every outcome is deterministic.
    let now = scenario.tick();
    let barrier = Arc::new(Barrier::new(usize::try_from(STREAMS).unwrap()));
    let before = store.writer_stats();
    let tasks: Vec<_> = (1..=STREAMS)
        .map(|n| {
            let scenario = scenario.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let open = scenario
                    .decide_at(&scenario.open(n, "simple-majority"), now)
                    .await;
                barrier.wait().await;
                scenario.store.append(open).await.unwrap();
                for (member, choice) in [("DE", "yes"), ("DE-BE", "no"), ("DE-BY", "abstain")] {
                    let vote = scenario
                        .decide_at(&scenario.vote(n, member, choice), now)
                        .await;
                    scenario.store.append(vote).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stats = store.writer_stats();
    let appends = stats.appends - before.appends;
    assert_eq!(appends, STREAMS * 4);
    // Group commit: concurrent appends shared transactions.
    assert!(stats.batches - before.batches < appends, "{stats:?}");

    let records = check_log(&store).await;
    assert_eq!(u64::try_from(records.len()).unwrap(), 13 + STREAMS * 4);
    let open = store
        .circulations(&Scenario::body_id(), Some(CirculationState::Open))
        .await
        .unwrap();
    assert_eq!(u64::try_from(open.len()).unwrap(), STREAMS);
    assert!(
        open.iter()
            .all(|status| status.version == 4 && status.awaiting.len() == 2)
    );
    for n in 1..=STREAMS {
        let stream = store
            .read_stream(&StreamId::Circulation(Scenario::circulation_id(n)))
            .await
            .unwrap();
        let types: Vec<&str> = stream
            .iter()
            .map(|record| record.record.event_type.as_str())
            .collect();
        assert_eq!(
            types,
            ["CirculationOpened", "VoteCast", "VoteCast", "VoteCast"]
        );
    }
}

const REPLICA_TASKS: usize = 6;
const KEYS_PER_TASK: usize = 3;

async fn replicas_on_one_database_keep_positions_and_versions_unique(db: Arc<TestDb>) {
    let first = db.open().await;
    let scenario = Scenario::constituted(first.clone()).await;
    let second = db.open().await;
    let replicas = [
        scenario.clone(),
        Scenario::continuing(second.clone(), 1_000_000).await,
    ];
    // Tasks on both replicas register keys on one body stream and open circulations, retrying
    // whatever the other replica made them lose, as the service does.
    let mut tasks = Vec::new();
    for (replica_index, replica) in replicas.iter().enumerate() {
        for task in 0..REPLICA_TASKS {
            let replica = replica.clone();
            tasks.push(tokio::spawn(async move {
                for key in 0..KEYS_PER_TASK {
                    let command =
                        replica.register_key(&format!("replica {replica_index} {task} {key}"));
                    let n = u64::try_from(1 + replica_index * 100 + task * 10 + key).unwrap();
                    let open = replica.open(n, "simple-majority");
                    for command in [&command, &open] {
                        loop {
                            let now = replica
                                .tick()
                                .max(replica.store.head().await.unwrap().recorded_at.unwrap());
                            let append = replica.decide_at(command, now).await;
                            match replica.store.append(append).await {
                                Ok(appended) => {
                                    assert!(!appended.duplicate);
                                    break;
                                }
                                Err(error) if error.is_retryable() => {}
                                Err(error) => panic!("unexpected error: {error}"),
                            }
                        }
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = 2 * REPLICA_TASKS * KEYS_PER_TASK;
    let records = check_log(&first).await;
    assert_eq!(records.len(), 13 + 2 * total);
    assert_eq!(check_log(&second).await, records);
    assert_eq!(
        first.keys(&Scenario::body_id()).await.unwrap().len(),
        6 + total
    );
    assert_eq!(
        first.read_model_dump().await.unwrap(),
        second.read_model_dump().await.unwrap()
    );
}

/// A writer remembers stream versions between batches. When another store has appended in the
/// meantime, a batch mixing a stream it remembers and one it does not must still be judged on
/// the versions as they are now: no spurious conflict, no stale version written.
async fn a_writer_that_finds_the_head_moved_judges_on_fresh_versions(db: Arc<TestDb>) {
    let first = db.open().await;
    let scenario = Scenario::constituted(first.clone()).await;
    scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    let other = Scenario::continuing(db.open().await, 1_000_000).await;
    // The other store moves the head, on a stream of its own and on the first one's.
    other
        .submit(&other.open(2, "simple-majority"))
        .await
        .unwrap();
    other.submit(&other.vote(1, "DE-HH", "no")).await.unwrap();

    let now = other.tick();
    let vote = scenario
        .decide_at(&scenario.vote(1, "DE", "yes"), now)
        .await;
    assert_eq!(vote.expected_version, 2);
    let open = scenario
        .decide_at(&scenario.open(3, "simple-majority"), now)
        .await;
    let results = first.append_all(vec![vote, open]).await;
    let versions: Vec<u64> = results
        .iter()
        .map(|result| result.as_ref().unwrap().records[0].record.version)
        .collect();
    assert_eq!(versions, [3, 1]);
    check_log(&first).await;
}

/// A transaction beside the store that holds the database's write lock until it is dropped.
enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    async fn take(db: &TestDb) -> Self {
        match db.backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url).unwrap();
                let mut connection = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                sqlx::raw_sql("BEGIN IMMEDIATE")
                    .execute(&mut connection)
                    .await
                    .unwrap();
                Self::Sqlite(connection)
            }
            Backend::Postgres => {
                let mut connection = db.postgres_connection().await;
                sqlx::raw_sql("BEGIN; SELECT position FROM log_head FOR UPDATE")
                    .execute(&mut connection)
                    .await
                    .unwrap();
                Self::Postgres(connection)
            }
        }
    }

    async fn release(self) {
        match self {
            Self::Sqlite(mut connection) => {
                sqlx::raw_sql("ROLLBACK")
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
            Self::Postgres(mut connection) => {
                sqlx::raw_sql("ROLLBACK")
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
        }
    }
}

/// One caller appending one append after the other is answered and comes straight back: the
/// writer must count it once, not also as a second caller queued behind the first, or it waits
/// on every append for a companion that never comes.
async fn a_lone_caller_never_waits_for_company(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    let now = scenario.tick();
    let circulations = 2 * STREAMS;
    let before = store.writer_stats();
    // Decided beforehand, so the caller is back with the next append at once: first the
    // openings (new streams: the writer reads before it writes), then a vote on each (the
    // writer plans from what it remembers).
    let opens = scenario
        .decide_all_at(
            (1..=circulations).map(|n| scenario.open(n, "simple-majority")),
            now,
        )
        .await;
    for open in opens {
        store.append(open).await.unwrap();
    }
    let votes = scenario
        .decide_all_at(
            (1..=circulations).map(|n| scenario.vote(n, "DE", "yes")),
            now,
        )
        .await;
    for vote in votes {
        store.append(vote).await.unwrap();
    }
    let after = store.writer_stats();
    assert_eq!(
        after.batches - before.batches,
        2 * circulations,
        "{after:?}"
    );
    assert_eq!(after.gathering, before.gathering, "{after:?}");
    check_log(&store).await;
}

/// Polls a future once, so that an append reaches the writer's queue now.
fn poll_once<F: Future + Unpin>(future: &mut F) {
    let mut context = Context::from_waker(Waker::noop());
    assert!(Pin::new(future).poll(&mut context).is_pending());
}

async fn waiting_appends_of_different_callers_are_taken_in_the_order_of_their_times(
    db: Arc<TestDb>,
) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    let (early, middle, late) = (scenario.tick(), scenario.tick(), scenario.tick());
    let holding = scenario
        .decide_at(&scenario.open(1, "simple-majority"), early)
        .await;
    let later = scenario
        .decide_at(&scenario.open(2, "simple-majority"), late)
        .await;
    let earlier = scenario
        .decide_at(&scenario.open(3, "simple-majority"), middle)
        .await;

    // The writer is held in a batch of its own while two callers queue: the one that read the
    // clock later reaches the queue first.
    let lock = WriteLock::take(&db).await;
    let before = store.writer_stats().appends;
    let mut holding = Box::pin(store.append(holding));
    poll_once(&mut holding);
    while store.writer_stats().appends == before {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut later = Box::pin(store.append(later));
    poll_once(&mut later);
    let mut earlier = Box::pin(store.append(earlier));
    poll_once(&mut earlier);
    lock.release().await;

    let holding = holding.await.unwrap();
    let later = later.await.unwrap();
    let earlier = earlier.await.unwrap();
    // Both were committed together, the earlier time first; none was refused for its clock.
    assert_eq!(store.writer_stats().appends - before, 3);
    let first = |appended: &umlauf_store::Appended| appended.records[0].position();
    assert!(first(&holding) < first(&earlier), "{holding:?} {earlier:?}");
    assert_eq!(
        first(&earlier) + u64::try_from(earlier.records.len()).unwrap(),
        first(&later)
    );
    check_log(&store).await;
}

/// Under load the PostgreSQL writer sends a batch while the one before it is still in flight.
/// When the one before fails, the one behind it fails too (its head move finds the head
/// elsewhere), and the appends of both are judged again, in order: only the append that failed
/// gets the error, and the log stays gapless with its tree. (On SQLite the writer commits one
/// batch at a time; the outcome is the same.)
async fn a_failing_batch_fails_the_batch_behind_it_and_both_are_judged_again(db: Arc<TestDb>) {
    const CIRCULATIONS: u64 = 16;
    let store = Store::open_with(db.options().batches_in_flight(2))
        .await
        .unwrap();
    let scenario = Scenario::constituted(store.clone()).await;
    let mut opens = Vec::new();
    for n in 1..=CIRCULATIONS {
        opens.push(scenario.decide(&scenario.open(n, "simple-majority")).await);
    }
    // One batch of sixteen appends: the writer expects that many callers from now on.
    for result in store.append_all(opens).await {
        result.unwrap();
    }
    // The first circulation's status row refuses its next write; on PostgreSQL only after a
    // while, so that the second batch goes out while the first is still in flight.
    let poisoned = Scenario::circulation_id(1).0;
    let poison = match db.backend {
        Backend::Sqlite => format!(
            "CREATE TRIGGER poison BEFORE UPDATE ON circulation_status \
             WHEN NEW.circulation = '{poisoned}' BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
        ),
        Backend::Postgres => format!(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.circulation = '{poisoned}' THEN PERFORM pg_sleep(0.5); \
             RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON circulation_status \
             FOR EACH ROW EXECUTE FUNCTION poison();"
        ),
    };
    db.raw(&poison).await.unwrap();
    let mut first = Vec::new();
    let mut second = Vec::new();
    for n in 1..=CIRCULATIONS {
        let vote = scenario.decide(&scenario.vote(n, "DE", "yes")).await;
        if n <= CIRCULATIONS / 2 {
            first.push(vote);
        } else {
            second.push(vote);
        }
    }

    let before = store.writer_stats();
    let first = tokio::spawn({
        let store = store.clone();
        async move { store.append_all(first).await }
    });
    // Once the writer holds the first batch, the second one comes.
    while store.writer_stats().appends == before.appends {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let second = store.append_all(second).await;
    let first = first.await.unwrap();

    let error = first[0].as_ref().unwrap_err();
    assert_eq!(error.code(), "database");
    assert!(error.to_string().contains("poisoned"), "{error}");
    for result in first.iter().skip(1).chain(&second) {
        assert!(!result.as_ref().unwrap().duplicate);
    }
    let after = store.writer_stats();
    if db.backend == Backend::Postgres {
        assert_eq!(after.overlapped - before.overlapped, 1, "{after:?}");
    }
    assert_eq!(after.appends - before.appends, CIRCULATIONS);
    let status = store
        .circulation(&Scenario::circulation_id(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.version, 1);
    check_log(&store).await;
}
