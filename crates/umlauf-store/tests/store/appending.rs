use std::sync::Arc;

use chrono::Duration;
use futures_util::{StreamExt, TryStreamExt};
use umlauf_domain::circulation::{self, Circulation};
use umlauf_domain::ids::MemberId;
use umlauf_domain::read_model::CirculationState;
use umlauf_domain::{Event, StreamId};
use umlauf_store::{Append, Projection, RawRecord, Store, StoreError, StoredRecord, leaf_hash};

use crate::on_both_backends;
use crate::support::{Backend, Scenario, TestDb, check_log, start};

on_both_backends!(
    appended_records_read_back_byte_for_byte,
    a_conflict_is_typed_retryable_and_writes_nothing,
    a_clock_behind_the_head_is_refused_and_writes_nothing,
    the_services_own_events_carry_no_command,
    read_from_pages_through_the_whole_log,
    appends_of_one_batch_are_judged_in_order_and_fail_alone,
    a_reopened_store_finds_its_log,
    records_carry_their_schema_version_and_are_upgraded_only_as_read,
    a_batch_failing_in_the_database_is_retried_one_append_at_a_time,
    a_batch_larger_than_one_statement_lands_whole,
    raw_reading_hands_out_the_bytes_for_the_reader_to_check,
);

async fn appended_records_read_back_byte_for_byte(db: Arc<TestDb>) {
    let store = db.open().await;
    let head = store.head().await.unwrap();
    assert_eq!((head.position, head.recorded_at), (0, None));

    let scenario = Scenario::empty(store.clone());
    let constitution = scenario.constitution();
    let append = scenario.decide(&constitution).await;
    let decided_events = append.events.clone();
    let envelope = append.cause.as_ref().unwrap().envelope.clone();
    let constituted = store.append(append).await.unwrap();
    assert!(!constituted.duplicate);
    assert_eq!(constituted.records.len(), 13);
    for (index, (stored, event)) in constituted.records.iter().zip(&decided_events).enumerate() {
        let number = u64::try_from(index).unwrap() + 1;
        let record = &stored.record;
        assert_eq!((record.position, record.version), (number, number));
        assert_eq!(record.stream, Scenario::body_stream());
        assert_eq!(record.event_type, event.type_name());
        assert_eq!(record.schema, Event::SCHEMA_VERSION);
        assert_eq!(record.recorded_at, start());
        assert_eq!(record.command_id, Some(constitution.command_id));
        // The envelope travels once, on the first record the command caused.
        assert_eq!(record.envelope.as_ref(), (index == 0).then_some(&envelope));
        assert_eq!(stored.bytes, record.to_bytes());
        assert_eq!(stored.leaf_hash, leaf_hash(&stored.bytes));
        assert_eq!(&stored.event().unwrap(), event);
    }

    scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    let vote = scenario
        .submit(&scenario.vote(1, "DE", "yes"))
        .await
        .unwrap();
    let record = &vote.records[0].record;
    assert_eq!((record.position, record.version), (15, 2));
    assert!(record.envelope.is_some());

    let body = store.read_stream(&Scenario::body_stream()).await.unwrap();
    assert_eq!(body, constituted.records);
    let circulation = store
        .read_stream(&StreamId::Circulation(Scenario::circulation_id(1)))
        .await
        .unwrap();
    assert_eq!(circulation.len(), 2);
    assert_eq!(circulation[1], vote.records[0]);
    assert!(
        store
            .read_stream(&StreamId::Circulation(Scenario::circulation_id(2)))
            .await
            .unwrap()
            .is_empty()
    );

    let head = store.head().await.unwrap();
    assert_eq!(head.position, 15);
    assert_eq!(head.recorded_at, Some(record.recorded_at));
    check_log(&store).await;
}

async fn a_conflict_is_typed_retryable_and_writes_nothing(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    let append = scenario.decide(&scenario.register_key("deputy")).await;
    assert_eq!(append.expected_version, 13);
    let before = store.head().await.unwrap();

    for wrong in [0, 12, 14] {
        let mut stale = append.clone();
        stale.expected_version = wrong;
        let error = store.append(stale).await.unwrap_err();
        assert_eq!(error.code(), "conflict");
        assert!(error.is_retryable());
        match error {
            umlauf_store::StoreError::Conflict {
                stream,
                expected,
                actual,
                kind,
            } => assert_eq!(
                (stream, expected, actual, kind),
                (
                    Scenario::body_stream(),
                    wrong,
                    13,
                    umlauf_store::ConflictKind::Version
                )
            ),
            other => panic!("expected a conflict, got {other}"),
        }
    }
    assert_eq!(store.head().await.unwrap(), before);
    assert!(
        store
            .command_records(&append.cause.as_ref().unwrap().command_id)
            .await
            .unwrap()
            .is_empty()
    );

    let appended = store.append(append).await.unwrap();
    assert_eq!(appended.records[0].record.version, 14);
}

async fn a_clock_behind_the_head_is_refused_and_writes_nothing(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    let before = store.head().await.unwrap();
    let head_time = before.recorded_at.unwrap();

    let command = scenario.register_key("deputy");
    let early = scenario
        .decide_at(&command, head_time - Duration::nanoseconds(1))
        .await;
    let error = store.append(early).await.unwrap_err();
    assert_eq!(error.code(), "clock_behind");
    assert!(error.is_retryable());
    assert_eq!(store.head().await.unwrap(), before);

    // The same instant as the head is not earlier: time may stand still, never run back.
    let same = scenario.decide_at(&command, head_time).await;
    store.append(same).await.unwrap();
}

async fn the_services_own_events_carry_no_command(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .circulation_with_votes(1, "simple-majority", &[("DE", "yes")])
        .await;

    // The deadline scheduler closes the circulation: no command, no envelope.
    let stream = StreamId::Circulation(Scenario::circulation_id(1));
    let events: Vec<Event> = store
        .read_stream(&stream)
        .await
        .unwrap()
        .iter()
        .map(|record| record.event().unwrap())
        .collect();
    let open = Circulation::fold(&events);
    let now = start() + Duration::days(15);
    let close = circulation::close_at_deadline(&open, Scenario::circulation_id(1), now).unwrap();
    let closed = events
        .iter()
        .chain(&close)
        .fold(Circulation::default(), circulation::evolve);
    let appended = store
        .append(Append {
            stream: stream.clone(),
            expected_version: open.version,
            events: close,
            depends_on: Vec::new(),
            expected_head: None,
            recorded_at: now,
            cause: None,
            projection: Projection::of_circulation(&closed),
        })
        .await
        .unwrap();
    let record = &appended.records[0].record;
    assert_eq!(record.event_type, "CirculationClosed");
    assert_eq!((record.command_id, record.envelope.as_ref()), (None, None));
    assert!(
        !String::from_utf8(appended.records[0].bytes.clone())
            .unwrap()
            .contains("command_id")
    );
    check_log(&store).await;
}

async fn read_from_pages_through_the_whole_log(db: Arc<TestDb>) {
    let mut options = db.options();
    options.read_page_size = 7;
    let store = Store::open_with(options).await.unwrap();
    let scenario = Scenario::constituted(store.clone()).await;
    for n in 1..=6 {
        scenario
            .circulation_with_votes(n, "simple-majority", &[("DE", "yes"), ("DE-BE", "no")])
            .await;
    }
    let head = store.head().await.unwrap().position;
    assert_eq!(head, 13 + 6 * 3);

    let all = check_log(&store).await;
    for from in [0, 1, 7, 8, 20, head] {
        let tail: Vec<_> = store.read_from(from).try_collect().await.unwrap();
        let skip = usize::try_from(from.max(1) - 1).unwrap();
        assert_eq!(tail, all[skip..], "from {from}");
    }
    let beyond: Vec<_> = store.read_from(head + 1).try_collect().await.unwrap();
    assert!(beyond.is_empty());
}

async fn appends_of_one_batch_are_judged_in_order_and_fail_alone(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    let stream = Scenario::body_stream();
    let body_events: Vec<Event> = store
        .read_stream(&stream)
        .await
        .unwrap()
        .iter()
        .map(|record| record.event().unwrap())
        .collect();

    // Two key registrations decided one after the other, as a client pipelining its commands.
    let first = scenario.decide(&scenario.register_key("first")).await;
    let mut second = scenario.decide(&scenario.register_key("second")).await;
    second.expected_version = 14;
    let all_events: Vec<Event> = body_events
        .iter()
        .chain(&first.events)
        .chain(&second.events)
        .cloned()
        .collect();
    second.projection = Projection::fold(&stream, &all_events);
    // A third decided against the old state: it lost the race to the first.
    let stale = scenario.decide(&scenario.register_key("stale")).await;
    let other_stream = scenario.decide(&scenario.open(1, "simple-majority")).await;

    let before = store.writer_stats();
    let results = store
        .append_all(vec![first, second, stale, other_stream])
        .await;
    let after = store.writer_stats();
    assert_eq!(after.batches, before.batches + 1);
    // The writer's time committing the batch is counted.
    assert!(after.busy > before.busy);
    let positions: Vec<Option<u64>> = results
        .iter()
        .map(|result| {
            result
                .as_ref()
                .ok()
                .and_then(|appended| appended.last_position())
        })
        .collect();
    assert_eq!(positions, [Some(14), Some(15), None, Some(16)]);
    match &results[2] {
        Err(umlauf_store::StoreError::Conflict {
            expected, actual, ..
        }) => {
            assert_eq!((*expected, *actual), (13, 15));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    check_log(&store).await;
    assert_eq!(store.keys(&Scenario::body_id()).await.unwrap().len(), 8);
}

async fn a_reopened_store_finds_its_log(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .circulation_with_votes(1, "simple-majority", &[("DE", "yes")])
        .await;
    let before = check_log(&store).await;
    let dump = store.read_model_dump().await.unwrap();
    store.close().await;
    drop(scenario);
    drop(store);

    // Migrations run again and change nothing; the log and the read models are as they were.
    let reopened = db.open().await;
    assert_eq!(check_log(&reopened).await, before);
    assert_eq!(reopened.read_model_dump().await.unwrap(), dump);
    let scenario = Scenario::continuing(reopened.clone(), 1000).await;
    let vote = scenario
        .submit(&scenario.vote(1, "DE-BE", "yes"))
        .await
        .unwrap();
    assert_eq!(vote.last_position(), Some(16));
}

async fn records_carry_their_schema_version_and_are_upgraded_only_as_read(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    let records = check_log(&store).await;
    assert!(
        records
            .iter()
            .all(|record| record.record.schema == Event::SCHEMA_VERSION)
    );

    // A record written by a later schema version this code does not know: the store returns it
    // exactly as stored and refuses only the upgrade, with a clear error.
    let mut future = records[12].record.clone();
    future.position = 14;
    future.version = 14;
    future.schema = Event::SCHEMA_VERSION + 1;
    future.command_id = None;
    let bytes = future.to_bytes();
    insert_raw_record(&db, &future.stream.to_string(), 14, 14, &bytes).await;

    let stored = store.read_stream(&Scenario::body_stream()).await.unwrap();
    assert_eq!(stored[13].bytes, bytes);
    let error = stored[13].event().unwrap_err();
    assert_eq!(error.code(), "invalid_record");
    assert!(
        error.to_string().contains("unknown schema version"),
        "{error}"
    );
    // Reading did not rewrite it.
    let again = store.read_stream(&Scenario::body_stream()).await.unwrap();
    assert_eq!(again[13].bytes, bytes);
    drop(scenario);
}

/// Writes a record row and moves the head past it, behind the store's back: SQL only a test
/// (or an attacker with database access) would run. Inserting is all the log tables allow.
pub(crate) async fn insert_raw_record(
    db: &TestDb,
    stream: &str,
    position: u64,
    version: u64,
    bytes: &[u8],
) {
    let hash = leaf_hash(bytes);
    let hex = |bytes: &[u8]| {
        bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    let (blob, digest) = match db.backend {
        crate::support::Backend::Sqlite => {
            (format!("X'{}'", hex(bytes)), format!("X'{}'", hex(&hash)))
        }
        crate::support::Backend::Postgres => (
            format!("'\\x{}'::bytea", hex(bytes)),
            format!("'\\x{}'::bytea", hex(&hash)),
        ),
    };
    let sql = format!(
        "INSERT INTO log_records (position, stream, version, event_type, command_id, record, leaf_hash) \
         VALUES ({position}, '{stream}', {version}, 'Raw', NULL, {blob}, {digest}); \
         UPDATE log_head SET position = {position};"
    );
    db.raw(&sql).await.unwrap();
}

/// A batch whose transaction fails in the database (here: a trigger a test adds to a read-model
/// table, refusing one circulation) is committed again one append at a time, so only the append
/// that fails gets the error.
async fn a_batch_failing_in_the_database_is_retried_one_append_at_a_time(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    let poison = match db.backend {
        crate::support::Backend::Sqlite => {
            "CREATE TRIGGER poison BEFORE INSERT ON circulation_status \
             WHEN NEW.status LIKE '%poisoned%' BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
        }
        crate::support::Backend::Postgres => {
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.status LIKE '%poisoned%' THEN RAISE EXCEPTION 'poisoned'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON circulation_status \
             FOR EACH ROW EXECUTE FUNCTION poison();"
        }
    };
    db.raw(poison).await.unwrap();

    let mut poisoned = scenario.open(2, "simple-majority");
    if let umlauf_domain::Action::OpenCirculation(open) = &mut poisoned.action {
        open.title = "A poisoned proposal".into();
    }
    let appends = vec![
        scenario.decide(&scenario.open(1, "simple-majority")).await,
        scenario.decide(&poisoned).await,
        scenario.decide(&scenario.open(3, "simple-majority")).await,
    ];
    let before = store.writer_stats();
    let results = store.append_all(appends).await;
    assert_eq!(results[0].as_ref().unwrap().last_position(), Some(14));
    let error = results[1].as_ref().unwrap_err();
    assert_eq!(error.code(), "database");
    assert!(error.to_string().contains("poisoned"), "{error}");
    assert_eq!(results[2].as_ref().unwrap().last_position(), Some(15));
    // Only transactions that went through count: the two appends committed on their own.
    assert_eq!(store.writer_stats().batches - before.batches, 2);
    assert_eq!(
        store
            .circulation(&Scenario::circulation_id(2))
            .await
            .unwrap(),
        None
    );
    check_log(&store).await;
}

/// A batch of more rows than one statement writes (SQLite writes 64 rows per statement at most)
/// lands whole, its read models as a rebuild from the log makes them.
async fn a_batch_larger_than_one_statement_lands_whole(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    let now = scenario.tick();
    let circulations = 100;
    let opens = scenario
        .decide_all_at(
            (1..=circulations).map(|n| scenario.open(n, "simple-majority")),
            now,
        )
        .await;
    let before = store.writer_stats();
    for result in store.append_all(opens).await {
        result.unwrap();
    }
    let votes = scenario
        .decide_all_at(
            (1..=circulations).map(|n| scenario.vote(n, "DE", "yes")),
            now,
        )
        .await;
    for result in store.append_all(votes).await {
        result.unwrap();
    }
    assert_eq!(store.writer_stats().batches - before.batches, 2);

    let open = store
        .circulations(&Scenario::body_id(), Some(CirculationState::Open))
        .await
        .unwrap();
    assert_eq!(open.len(), 100);
    assert!(
        open.iter().all(|status| status.version == 2
            && status.awaiting.len() == crate::support::MEMBERS.len() - 1)
    );
    let inbox = store
        .inbox(&Scenario::body_id(), &MemberId::parse("DE-BE").unwrap())
        .await
        .unwrap();
    assert_eq!(inbox.len(), 100);
    let written = store.read_model_dump().await.unwrap();
    store.rebuild_read_models().await.unwrap();
    assert_eq!(store.read_model_dump().await.unwrap(), written);
    check_log(&store).await;
}

/// Raw reading hands out the stored bytes and leaf hashes as they are, for a reader that checks
/// them itself: bytes changed behind the store's back come out with the stale hash (the checked
/// reading refuses them), and a row whose columns disagree with its record is refused by both.
async fn raw_reading_hands_out_the_bytes_for_the_reader_to_check(db: Arc<TestDb>) {
    let store = db.open().await;
    Scenario::constituted(store.clone()).await;
    let checked: Vec<StoredRecord> = store.read_from(1).try_collect().await.unwrap();
    let raw: Vec<RawRecord> = store.read_raw_from(1).try_collect().await.unwrap();
    assert_eq!(raw.len(), checked.len());
    for (raw, checked) in raw.iter().zip(&checked) {
        assert_eq!(
            (raw.position, &raw.bytes, raw.leaf_hash),
            (checked.position(), &checked.bytes, checked.leaf_hash)
        );
    }

    let unlock = match db.backend {
        Backend::Sqlite => "DROP TRIGGER log_records_refuse_update",
        Backend::Postgres => "ALTER TABLE log_records DISABLE TRIGGER log_records_append_only",
    };
    db.raw(unlock).await.unwrap();
    let append_space = match db.backend {
        Backend::Sqlite => {
            "UPDATE log_records SET record = CAST(record || ' ' AS BLOB) WHERE position = 3"
        }
        Backend::Postgres => {
            "UPDATE log_records SET record = record || '\\x20'::bytea WHERE position = 3"
        }
    };
    db.raw(append_space).await.unwrap();
    let raw: Vec<RawRecord> = store.read_raw_from(3).take(1).try_collect().await.unwrap();
    assert_eq!(raw[0].bytes, [checked[2].bytes.as_slice(), b" "].concat());
    assert_eq!(raw[0].leaf_hash, checked[2].leaf_hash);
    let refused = store
        .read_from(3)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "corrupt_record", "{refused}");

    db.raw("UPDATE log_records SET version = 99 WHERE position = 5")
        .await
        .unwrap();
    let refused = store
        .read_raw_from(4)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::CorruptRecord { position: 5, .. }),
        "{refused}"
    );
}
