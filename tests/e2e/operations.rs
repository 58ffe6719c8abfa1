//! The operations surface: readiness and metrics over HTTP, reminders to electors who have not
//! answered, and a graceful shutdown that answers every command in flight.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use umlauf_nats::wire::{ErrorReply, SubmitReply};
use umlauf_server::Server;

use crate::support::{
    BODY, Backend, LAENDER, OwnNats, PATIENCE, World, check_log_stream, config, eventually,
    in_a_week, new_circulation, sign, vote,
};

/// `GET path` on the operations endpoint: the status and the body.
async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        let matches = match rest.strip_prefix('{') {
            Some(set) => labels.iter().all(|label| set.contains(label)),
            None => rest.is_empty() && labels.is_empty(),
        };
        matches.then(|| value.parse().unwrap())
    })
}

fn ops(world: &World) -> SocketAddr {
    world
        .server()
        .ops_address()
        .expect("the operations endpoint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_nats_and_metrics_count_commands() {
    let mut nats = OwnNats::start();
    let mut world = World::start_with(Backend::Sqlite, &nats.url(), |_| {}).await;
    let address = ops(&world);
    assert_eq!(get(address, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(get(address, "/nowhere").await.0, 404);

    world.constitute().await;
    let circulation = world.open("it-planungsrat-resolution", in_a_week()).await;
    world.votes(circulation, &["DE"], "yes").await;
    world
        .refuse(
            "DE-BY",
            &vote(new_circulation(), "DE-BY", "yes"),
            "unknown_circulation",
        )
        .await;
    world.relayed().await;

    let (status, body) = get(address, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["not_ready"], serde_json::json!([]));
    assert_eq!(ready["checks"]["relay"]["lag_records"], 0);

    let (status, metrics) = get(address, "/metrics").await;
    assert_eq!(status, 200);
    let votes = |labels: &[&str]| sample(&metrics, "umlauf_commands_total", labels);
    assert_eq!(
        votes(&[r#"command="CastVote""#, r#"result="accepted""#]),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        votes(&[
            r#"command="CastVote""#,
            r#"result="refused""#,
            r#"code="unknown_circulation""#
        ]),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        votes(&[r#"command="OpenCirculation""#, r#"result="accepted""#]),
        Some(1.0)
    );
    assert_eq!(sample(&metrics, "umlauf_open_circulations", &[]), Some(1.0));
    assert_eq!(sample(&metrics, "umlauf_relay_lag_records", &[]), Some(0.0));
    // Constitution, opening and vote: three appends, each in a batch of its own here.
    assert_eq!(
        sample(&metrics, "umlauf_append_seconds_count", &[]),
        Some(3.0)
    );
    let signed = sample(&metrics, "umlauf_checkpoints_signed_total", &[]).unwrap();
    assert!((1.0..=3.0).contains(&signed), "{metrics}");

    // NATS goes away: not ready, and the body says why.
    nats.stop();
    let body = eventually("/readyz to report NATS", || async {
        let (status, body) = get(address, "/readyz").await;
        (status == 503).then_some(body)
    })
    .await;
    let not_ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(not_ready["ready"], false);
    assert!(
        not_ready["not_ready"]
            .as_array()
            .unwrap()
            .contains(&Value::from("nats")),
        "{body}"
    );
    assert_eq!(not_ready["checks"]["nats"]["ok"], false);
    assert_eq!(not_ready["checks"]["database"]["ok"], true);
    assert_eq!(get(address, "/healthz").await.0, 200);

    // NATS comes back: ready again.
    nats.resume();
    world.client = crate::support::connect(&nats.url()).await;
    eventually("/readyz to report ready again", || async {
        (get(address, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    let server = world.server.take().unwrap();
    server.shutdown().await;
}

/// A service on the world's database and names, with reminders `before` the deadline.
async fn restart_with_reminders(world: &mut World, before: &str) {
    if let Some(server) = world.server.take() {
        server.shutdown().await;
    }
    let mut config = config(&world.db, &world.nats_url, &world.names);
    config.reminder_before = before.to_owned();
    world.server = Some(Server::start(config).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_reach_each_elector_who_has_not_answered_once() {
    let mut world = World::start_with(
        Backend::Sqlite,
        &crate::support::require_shared_nats(),
        |config| config.reminder_before = "0".into(),
    )
    .await;
    world.constitute().await;
    let circulation = world.open("it-planungsrat-resolution", in_a_week()).await;
    world.votes(circulation, &["DE"], "yes").await;

    // A week before the deadline is now: every elector but DE is reminded.
    restart_with_reminders(&mut world, "8d").await;
    let jetstream = jetstream::new(world.client.clone());
    let stream_name = world.subjects.reminders_stream();
    let stream = eventually("the reminders stream", || {
        let jetstream = jetstream.clone();
        let name = stream_name.clone();
        async move { jetstream.get_stream(name).await.ok() }
    })
    .await;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: format!("{}.reminders.{BODY}.>", world.subjects.prefix()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut reminded = BTreeMap::new();
    let contract = crate::contract::Contract::load();
    while reminded.len() < LAENDER.len() {
        let message = tokio::time::timeout(PATIENCE, messages.next())
            .await
            .expect("the reminders")
            .unwrap()
            .unwrap();
        let payload: Value = serde_json::from_slice(&message.payload).unwrap();
        contract.check("reminder.json", &payload);
        let member = payload["member"].as_str().unwrap().to_owned();
        assert_eq!(
            message.subject.as_str(),
            format!("{}.reminders.{BODY}.{member}", world.subjects.prefix())
        );
        assert_eq!(payload["body"], BODY);
        assert_eq!(payload["circulation"], circulation.to_string());
        assert_eq!(payload["title"], "Beschluss 2026/01: XÖV 3.0");
        assert!(payload["deadline"].is_string());
        assert!(
            reminded.insert(member.clone(), payload).is_none(),
            "{member} reminded twice"
        );
    }
    let expected: Vec<&str> = {
        let mut laender = LAENDER.to_vec();
        laender.sort_unstable();
        laender
    };
    assert_eq!(
        reminded.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );

    // After a restart the same reminders are tried again, and JetStream drops every one.
    restart_with_reminders(&mut world, "8d").await;
    let address = ops(&world);
    eventually("the second service to try every reminder", || async {
        let (_, metrics) = get(address, "/metrics").await;
        let duplicates = sample(
            &metrics,
            "umlauf_reminders_total",
            &[r#"result="duplicate""#],
        );
        (duplicates == Some(16.0)).then_some(())
    })
    .await;
    let (_, metrics) = get(address, "/metrics").await;
    assert_eq!(
        sample(&metrics, "umlauf_reminders_total", &[r#"result="sent""#]),
        None,
        "{metrics}"
    );
    let mut stream = jetstream.get_stream(&stream_name).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 16);
    let server = world.server.take().unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_answers_every_command_in_flight() {
    let mut world = World::start(Backend::Sqlite).await;
    world.constitute().await;
    let circulation = world.open("it-planungsrat-resolution", in_a_week()).await;
    let before = world.server().store().head().await.unwrap().position;

    // Every Land votes at once; votes on one circulation are decided one after the other, so
    // most of them are still waiting when the shutdown begins.
    let mut pending = Vec::new();
    for land in LAENDER {
        let client = world.client.clone();
        let subject = world.subjects.submit();
        let envelope = sign(land, &vote(circulation, land, "yes"));
        pending.push(tokio::spawn(async move {
            client.request(subject, envelope.into()).await
        }));
    }
    world.client.flush().await.unwrap();
    let store = world.server().store().clone();
    eventually("the first vote to be appended", || {
        let store = store.clone();
        async move { (store.head().await.unwrap().position > before).then_some(()) }
    })
    .await;
    let server = world.server.take().unwrap();
    server.shutdown().await;

    let mut positions = Vec::new();
    for reply in pending {
        let message = reply
            .await
            .unwrap()
            .expect("a reply to a command in flight");
        if let Some(error) = ErrorReply::from_headers(message.headers.as_ref()) {
            panic!("a command in flight was refused: {error}");
        }
        let reply: SubmitReply = serde_json::from_slice(&message.payload).unwrap();
        assert!(!reply.duplicate);
        positions.extend(reply.receipts.iter().map(|receipt| receipt.position));
    }
    assert_eq!(positions.len(), LAENDER.len());

    // Everything appended is on the log stream, and every reply's record is in the log.
    let store = umlauf_store::Store::open(&world.db.url).await.unwrap();
    let head = store.head().await.unwrap().position;
    assert!(positions.iter().all(|position| *position <= head));
    let records = check_log_stream(&world.client, &world.subjects, &store, head).await;
    assert_eq!(u64::try_from(records.len()).unwrap(), head);
}
