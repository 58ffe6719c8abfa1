use std::sync::Arc;

use crate::on_both_backends;
use crate::support::{Backend, Scenario, TestDb, check_log};

on_both_backends!(the_database_refuses_to_change_or_remove_history);

async fn the_database_refuses_to_change_or_remove_history(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .circulation_with_votes(1, "simple-majority", &[("DE", "yes")])
        .await;
    let records = check_log(&store).await;

    let mut attempts = vec![
        "UPDATE log_records SET stream = 'body/other' WHERE position = 1",
        "UPDATE log_records SET record = record WHERE position = 15",
        "DELETE FROM log_records WHERE position = 15",
        "DELETE FROM log_records",
        "UPDATE log_commands SET first_position = first_position",
        "DELETE FROM log_commands",
        "UPDATE merkle_subtrees SET hash = hash WHERE level = 2",
        "DELETE FROM merkle_subtrees WHERE level = 2",
        "UPDATE checkpoints SET note = note",
        "DELETE FROM checkpoints",
    ];
    if db.backend == Backend::Postgres {
        // A row trigger would not see TRUNCATE; a statement trigger does.
        attempts.extend([
            "TRUNCATE log_records CASCADE",
            "TRUNCATE log_commands",
            "TRUNCATE merkle_subtrees",
            "TRUNCATE checkpoints",
            // Even a change that matches no row is refused.
            "DELETE FROM log_records WHERE false",
        ]);
    }
    for sql in attempts {
        let error = db.raw(sql).await.expect_err(sql);
        assert!(error.contains("append-only"), "{sql}: {error}");
    }

    // The safety nets below the head lock: a position or a stream version cannot be taken twice.
    let duplicate_position = "INSERT INTO log_records (position, stream, version, event_type, record, leaf_hash) \
         SELECT 1, 'body/other', 1, 'X', record, leaf_hash FROM log_records WHERE position = 1";
    assert!(db.raw(duplicate_position).await.is_err());
    let duplicate_version = "INSERT INTO log_records (position, stream, version, event_type, record, leaf_hash) \
         SELECT 100, stream, version, 'X', record, leaf_hash FROM log_records WHERE position = 1";
    assert!(db.raw(duplicate_version).await.is_err());
    // A subtree or a checkpoint cannot be stored twice either.
    assert!(
        db.raw("INSERT INTO merkle_subtrees SELECT level, idx, hash FROM merkle_subtrees")
            .await
            .is_err()
    );
    assert!(
        db.raw("INSERT INTO checkpoints SELECT size, note FROM checkpoints")
            .await
            .is_err()
    );

    assert_eq!(check_log(&store).await, records);
}
