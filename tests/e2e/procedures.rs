//! Whole written procedures of the IT-Planungsrat, from signed commands to the decision a
//! subscriber receives.

use umlauf_domain::read_model::CirculationState;

use crate::support::{
    Backend, LAENDER, LARGEST_ELEVEN, World, answers, in_a_week, in_seconds, object, result, types,
    withdraw,
};

/// The Länder outside the eleven largest.
fn smallest_five() -> Vec<&'static str> {
    LAENDER
        .iter()
        .copied()
        .filter(|land| !LARGEST_ELEVEN.contains(land))
        .collect()
}

/// Bund + the 11 largest Länder vote yes, the other five answer: adopted as the last answer
/// arrives, not earlier, since the preset records every answer.
async fn adopted_as_the_last_answer_arrives(backend: Backend) {
    let mut world = World::start(backend).await;
    world.constitute().await;
    let circulation = world.open("it-planungsrat-resolution", in_a_week()).await;
    world.votes(circulation, &["DE"], "yes").await;
    let replies = world.votes(circulation, &LARGEST_ELEVEN, "yes").await;
    assert!(replies.iter().all(|reply| types(reply) == ["VoteCast"]));
    let rest = smallest_five();
    let (last, before_last) = rest.split_last().unwrap();
    world.votes(circulation, before_last, "no").await;
    assert_eq!(
        world.status(circulation).await.state,
        CirculationState::Open
    );
    let closing = world.votes(circulation, &[last], "abstain").await;
    assert_eq!(types(&closing[0]), ["VoteCast", "CirculationClosed"]);

    let decision = world.decision(circulation).await;
    assert_eq!(result(&decision), "adopted");
    assert_eq!(decision.title, "Beschluss 2026/01: XÖV 3.0");
    assert_eq!(answers(&decision)[*last], "abstain");
    assert_eq!(answers(&decision)["DE-NW"], "yes");
    let closing_bytes = closing[0].record_bytes().unwrap();
    assert_eq!(decision.record_bytes().unwrap(), closing_bytes[1]);
    assert_eq!(
        world.status(circulation).await.state,
        CirculationState::Closed
    );
    world.check_log_stream().await;
    world.server.take().unwrap().shutdown().await;
}

mod adopted_as_the_last_answer_arrives {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::adopted_as_the_last_answer_arrives(super::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::adopted_as_the_last_answer_arrives(super::Backend::Postgres).await;
    }
}

/// The same majority with the rest silent: adopted when the deadline passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopted_at_the_deadline_when_the_rest_is_silent() {
    let world = World::start(Backend::Postgres).await;
    world.constitute().await;
    let circulation = world.open("it-planungsrat-resolution", in_seconds(3)).await;
    world.votes(circulation, &["DE"], "yes").await;
    world.votes(circulation, &LARGEST_ELEVEN, "yes").await;
    let decision = world.decision(circulation).await;
    assert_eq!(result(&decision), "adopted");
    assert_eq!(
        serde_json::to_value(decision.trigger).unwrap()["kind"],
        "deadline"
    );
    assert_eq!(answers(&decision)["DE-HB"], "silent");
    assert!(decision.recorded_at > world.status(circulation).await.deadline);
}

/// The Bund votes no: rejected, whatever the Länder say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_when_the_bund_votes_no() {
    let world = World::start(Backend::Sqlite).await;
    world.constitute().await;
    let circulation = world.open("it-planungsrat-resolution", in_a_week()).await;
    world.votes(circulation, &["DE"], "no").await;
    world.votes(circulation, &LAENDER, "yes").await;
    let decision = world.decision(circulation).await;
    assert_eq!(result(&decision), "rejected");
    assert_eq!(answers(&decision)["DE"], "no");
}

/// One objection to the written procedure ends it at once: failed, referred to a meeting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_objection_fails_the_procedure_at_once() {
    let world = World::start(Backend::Postgres).await;
    world.constitute().await;
    let circulation = world.open("it-planungsrat-resolution", in_a_week()).await;
    world.votes(circulation, &["DE", "DE-BY"], "yes").await;
    let reply = world.accept("DE-NW", &object(circulation, "DE-NW")).await;
    assert_eq!(types(&reply), ["ProcedureObjected", "CirculationClosed"]);
    let decision = world.decision(circulation).await;
    assert_eq!(
        serde_json::to_value(decision.decision).unwrap(),
        serde_json::json!({"result": "failed", "reason": "objection"})
    );
    assert_eq!(answers(&decision)["DE-NW"], "objected");
}

/// The secretariat withdraws a circulation: closed as withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawal_closes_as_withdrawn() {
    let world = World::start(Backend::Sqlite).await;
    world.constitute().await;
    let circulation = world.open("it-planungsrat-resolution", in_a_week()).await;
    world.votes(circulation, &["DE"], "yes").await;
    let reply = world.accept("secretariat", &withdraw(circulation)).await;
    assert_eq!(types(&reply), ["CirculationWithdrawn", "CirculationClosed"]);
    assert_eq!(result(&world.decision(circulation).await), "withdrawn");
}

/// Unanimity closes early: the first no rejects at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanimity_is_rejected_at_the_first_no() {
    let world = World::start(Backend::Postgres).await;
    world.constitute().await;
    let circulation = world.open("unanimity", in_a_week()).await;
    world.votes(circulation, &["DE", "DE-BW"], "yes").await;
    let reply = world.votes(circulation, &["DE-HB"], "no").await;
    assert_eq!(types(&reply[0]), ["VoteCast", "CirculationClosed"]);
    let decision = world.decision(circulation).await;
    assert_eq!(result(&decision), "rejected");
    assert_eq!(answers(&decision)["DE-SL"], "silent");
    world.check_log_stream().await;
}
