//! What subscribers get: a decision also when they subscribe after it was made, and a log
//! stream whose sequence is the log position and whose messages are the records' bytes.

use crate::support::{Backend, LAENDER, World, in_a_week, result};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_gets_the_decision_and_the_log_stream_is_the_log() {
    let world = World::start(Backend::Sqlite).await;
    world.constitute().await;
    let circulation = world.open("unanimity", in_a_week()).await;
    world.votes(circulation, &["DE"], "yes").await;
    world.votes(circulation, &LAENDER, "yes").await;
    // Everything is published before anyone subscribes.
    let records = world.check_log_stream().await;
    assert_eq!(
        records.last().unwrap().record.event_type,
        "CirculationClosed"
    );

    let decision = world
        .decision_on(circulation, Some("late-subscriber"))
        .await;
    assert_eq!(result(&decision), "adopted");
    let closing = records.last().unwrap();
    assert_eq!(decision.position, closing.position());
    assert_eq!(decision.record_bytes().unwrap(), closing.bytes);
    assert_eq!(decision.recorded_at, closing.record.recorded_at);
}
