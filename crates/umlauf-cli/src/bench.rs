//! `umlauf bench`: end-to-end throughput and latency figures.
//!
//! For each database it starts the service in this process (a fresh SQLite file, or a fresh
//! PostgreSQL schema) on the NATS server given, under subject and stream names of its own, and
//! constitutes a body of one member per client. Every client then signs and submits one vote on
//! every circulation (unanimity, all yes), each starting at another circulation so that clients
//! rarely contend for one stream. It measures:
//!
//! - signed votes per second end to end: sign on the client, NATS request, verify, decide,
//!   append, reply;
//! - the latency of each vote's request;
//! - the latency from sending the vote that completes a circulation to its decision arriving at
//!   a subscriber of the decisions subject;
//! - and, in the same run, how many Ed25519 strict verifications one core does per second.
//!
//! Afterwards it drops the PostgreSQL schema and deletes the JetStream streams it made.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::Connection as _;
use tokio::sync::Mutex;
use umlauf_domain::ids::{CirculationId, PublicKey};
use umlauf_nats::Subjects;
use umlauf_nats::wire::{DecisionMessage, ErrorReply, SubmitReply};
use umlauf_proof::SigningKey;
use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE};
use umlauf_proof::keys::signing_key_from_seed;
use umlauf_server::{Config, Server};

/// Flags of `umlauf bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// The NATS server (with JetStream) to run against.
    #[arg(long, value_name = "URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The PostgreSQL database; the benchmark works in a schema of its own and drops it.
    #[arg(
        long,
        value_name = "URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Which databases to measure: sqlite, postgres, or both.
    #[arg(long, value_name = "WHICH", default_value = "both")]
    database: String,
    /// Concurrent clients, each a member of the benchmark's body.
    #[arg(long, value_name = "N", default_value_t = 64)]
    clients: usize,
    /// Circulations; every client votes once on each.
    #[arg(long, value_name = "N", default_value_t = 64)]
    circulations: usize,
}

/// What one database's run measured.
#[derive(Debug)]
struct Figures {
    database: &'static str,
    votes: usize,
    refused: usize,
    elapsed: Duration,
    vote_latencies: Vec<Duration>,
    decision_latencies: Vec<Duration>,
}

/// Runs the benchmark and prints its figures.
pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.clients > 999 || args.circulations == 0 {
        bail!("--clients must be 1 to 999 and --circulations at least 1");
    }
    let databases: &[&'static str] = match args.database.as_str() {
        "sqlite" => &["sqlite"],
        "postgres" => &["postgres"],
        "both" => &["sqlite", "postgres"],
        other => bail!("--database must be sqlite, postgres or both, not {other:?}"),
    };
    // Alone, so that it has the core to itself.
    eprintln!("measuring Ed25519 verification …");
    let verifications =
        tokio::task::spawn_blocking(|| verifications_per_second(Duration::from_secs(2)))
            .await
            .context("the verification benchmark failed")?;
    let mut figures = Vec::new();
    for database in databases {
        eprintln!("measuring {database} …");
        figures.push(run_one(&args, database).await?);
    }
    print_table(&args, &figures, verifications);
    Ok(())
}

async fn run_one(args: &BenchArgs, database: &'static str) -> anyhow::Result<Figures> {
    let directory = tempfile::tempdir()?;
    let tag = format!(
        "bench{}x{}",
        std::process::id(),
        chrono::Utc::now().timestamp_subsec_micros()
    );
    let schema = (database == "postgres").then(|| format!("umlauf_{tag}"));
    let database_url = match database {
        "postgres" => args.postgres_url.clone(),
        _ => format!("sqlite://{}", directory.path().join("bench.db").display()),
    };
    let config = Config {
        database_url: database_url.clone(),
        database_schema: schema.clone(),
        nats_url: args.nats_url.clone(),
        log_key_file: directory.path().join("log-key.pem"),
        genesis_keys: vec![public_key(&key("genesis"))],
        subject_root: tag.clone(),
        stream_prefix: tag.to_uppercase(),
        ops_address: String::new(),
        reminder_before: String::new(),
        ..Config::default()
    };
    let server = Server::start(config)
        .await
        .with_context(|| format!("starting the service on {database}"))?;
    let subjects = server.subjects().clone();
    let outcome = measure(args, database, &subjects).await;
    server.shutdown().await;
    clean_up(args, &subjects, schema.as_deref(), &database_url).await;
    outcome
}

async fn measure(
    args: &BenchArgs,
    database: &'static str,
    subjects: &Subjects,
) -> anyhow::Result<Figures> {
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(60)))
        .connect(args.nats_url.as_str())
        .await
        .with_context(|| format!("connecting to NATS at {}", args.nats_url))?;
    let members: Vec<String> = (1..=args.clients).map(|n| format!("M{n:03}")).collect();
    submit(&client, subjects, "genesis", &constitution(&members)).await?;
    let circulations: Vec<CirculationId> = (0..args.circulations)
        .map(|_| CirculationId(uuid::Uuid::new_v4()))
        .collect();
    for circulation in &circulations {
        submit(&client, subjects, "secretariat", &open(*circulation)).await?;
    }

    // The subscriber: when each decision arrives.
    let arrivals: Arc<Mutex<HashMap<CirculationId, Instant>>> = Arc::default();
    let mut decisions = client.subscribe(subjects.decisions_of(None)).await?;
    let subscriber = {
        let arrivals = Arc::clone(&arrivals);
        let expected = circulations.len();
        tokio::spawn(async move {
            while let Some(message) = decisions.next().await {
                let arrived = Instant::now();
                if let Ok(decision) = serde_json::from_slice::<DecisionMessage>(&message.payload) {
                    let mut arrivals = arrivals.lock().await;
                    arrivals.entry(decision.circulation).or_insert(arrived);
                    if arrivals.len() >= expected {
                        break;
                    }
                }
            }
        })
    };

    let started = Instant::now();
    let mut clients = Vec::new();
    for (index, member) in members.iter().enumerate() {
        let client = client.clone();
        let subjects = subjects.clone();
        let member = member.clone();
        let circulations = circulations.clone();
        clients.push(tokio::spawn(async move {
            let signer = key(&member);
            let mut latencies = Vec::with_capacity(circulations.len());
            let mut completing = Vec::new();
            let mut refused = 0;
            for step in 0..circulations.len() {
                let circulation = circulations[(index + step) % circulations.len()];
                let sent = Instant::now();
                let command = vote(circulation, &member);
                let envelope = sign(&signer, &command);
                match request(&client, &subjects, envelope).await {
                    Ok(reply) if reply.records.len() > 1 => completing.push((circulation, sent)),
                    Ok(_) => {}
                    Err(_) => refused += 1,
                }
                latencies.push(sent.elapsed());
            }
            (latencies, completing, refused)
        }));
    }
    let mut vote_latencies = Vec::new();
    let mut completing = Vec::new();
    let mut refused = 0;
    for client in clients {
        let (latencies, closes, failures) = client.await?;
        vote_latencies.extend(latencies);
        completing.extend(closes);
        refused += failures;
    }
    let elapsed = started.elapsed();
    if tokio::time::timeout(Duration::from_secs(30), subscriber)
        .await
        .is_err()
    {
        eprintln!("not every decision arrived within 30 s");
    }
    let arrivals = arrivals.lock().await;
    let decision_latencies = completing
        .iter()
        .filter_map(|(circulation, sent)| {
            arrivals
                .get(circulation)
                .map(|arrived| arrived.saturating_duration_since(*sent))
        })
        .collect();
    Ok(Figures {
        database,
        votes: vote_latencies.len(),
        refused,
        elapsed,
        vote_latencies,
        decision_latencies,
    })
}

/// Drops the PostgreSQL schema and deletes the streams, so a benchmark leaves nothing behind.
async fn clean_up(args: &BenchArgs, subjects: &Subjects, schema: Option<&str>, url: &str) {
    if let Ok(client) = async_nats::connect(args.nats_url.as_str()).await {
        let jetstream = async_nats::jetstream::new(client);
        for stream in [
            subjects.log_stream(),
            subjects.decisions_stream(),
            subjects.checkpoints_stream(),
        ] {
            if let Err(error) = jetstream.delete_stream(stream).await {
                eprintln!("could not delete stream {stream}: {error}");
            }
        }
    }
    if let Some(schema) = schema {
        let dropped = async {
            let mut connection = sqlx::PgConnection::connect(url).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut connection)
            .await
        };
        if let Err(error) = dropped.await {
            eprintln!("could not drop schema {schema}: {error}");
        }
    }
}

/// Strict Ed25519 verifications of a vote-sized envelope per second, on this one thread.
fn verifications_per_second(run_for: Duration) -> f64 {
    let signer = key("verifier");
    let command = vote(CirculationId(uuid::Uuid::nil()), "M001");
    let payload = serde_json::to_vec(&command).unwrap_or_default();
    let envelope = dsse::sign(COMMAND_PAYLOAD_TYPE, &payload, &signer);
    let public = signer.verifying_key();
    let started = Instant::now();
    let mut count = 0_u32;
    while started.elapsed() < run_for {
        for _ in 0..100 {
            if dsse::verify(&envelope, COMMAND_PAYLOAD_TYPE, &public).is_ok() {
                count += 1;
            }
        }
    }
    f64::from(count) / started.elapsed().as_secs_f64()
}

fn print_table(args: &BenchArgs, figures: &[Figures], verifications: f64) {
    println!(
        "umlauf bench: {} clients, {} circulations, {} signed votes per database",
        args.clients,
        args.circulations,
        args.clients * args.circulations
    );
    println!();
    println!(
        "{:<10} {:>9} {:>8} {:>10} {:>10} {:>14} {:>14}",
        "database", "votes/s", "refused", "vote p50", "vote p99", "decision p50", "decision p99"
    );
    for figure in figures {
        let rate = f64::from(u32::try_from(figure.votes).unwrap_or(u32::MAX))
            / figure.elapsed.as_secs_f64();
        println!(
            "{:<10} {:>9.0} {:>8} {:>10} {:>10} {:>14} {:>14}",
            figure.database,
            rate,
            figure.refused,
            millis(percentile(&figure.vote_latencies, 50)),
            millis(percentile(&figure.vote_latencies, 99)),
            millis(percentile(&figure.decision_latencies, 50)),
            millis(percentile(&figure.decision_latencies, 99)),
        );
    }
    println!();
    println!("Ed25519 strict verification on one core: {verifications:.0}/s");
}

fn percentile(samples: &[Duration], percent: usize) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let index = (sorted.len() * percent).div_ceil(100).saturating_sub(1);
    sorted.get(index).copied()
}

fn millis(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |duration| format!("{:.1} ms", duration.as_secs_f64() * 1_000.0),
    )
}

// ---- the benchmark's body and commands -------------------------------------------------------------

const BODY: &str = "bench";
const PROPOSAL: &str = "Der Rat beschließt, die Messung zu wiederholen.";

fn key(label: &str) -> SigningKey {
    signing_key_from_seed(Sha256::digest(format!("umlauf bench key {label}")).into())
}

fn public_key(key: &SigningKey) -> String {
    PublicKey(key.verifying_key().to_bytes()).to_string()
}

fn digest() -> String {
    Sha256::digest(PROPOSAL)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn command(kind: &str, actor: &str, fields: Value) -> Value {
    let mut value = json!({
        "type": kind,
        "command_id": uuid::Uuid::new_v4(),
        "body": BODY,
        "actor": actor,
        "issued_at": chrono::Utc::now(),
    });
    if let (Some(target), Value::Object(fields)) = (value.as_object_mut(), fields) {
        target.extend(fields);
    }
    value
}

fn constitution(members: &[String]) -> Value {
    let specs: Vec<Value> = members
        .iter()
        .map(|member| json!({"id": member, "name": member, "kind": "voting"}))
        .collect();
    let mut keys =
        vec![json!({"holder": "secretariat", "public_key": public_key(&key("secretariat"))})];
    keys.extend(
        members
            .iter()
            .map(|member| json!({"holder": member, "public_key": public_key(&key(member))})),
    );
    command(
        "ConstituteBody",
        "genesis",
        json!({
            "genesis_key": public_key(&key("genesis")),
            "name": "Benchmark",
            "members": specs,
            "keys": keys,
        }),
    )
}

fn open(circulation: CirculationId) -> Value {
    command(
        "OpenCirculation",
        "secretariat",
        json!({
            "circulation": circulation,
            "title": "Messung",
            "proposal": {"text": PROPOSAL, "sha256": digest()},
            "rule": {"kind": "preset", "preset": "unanimity"},
            "deadline": chrono::Utc::now() + chrono::Duration::hours(1),
        }),
    )
}

fn vote(circulation: CirculationId, member: &str) -> Value {
    command(
        "CastVote",
        member,
        json!({"circulation": circulation, "choice": "yes", "proposal_sha256": digest()}),
    )
}

fn sign(signer: &SigningKey, command: &Value) -> Vec<u8> {
    let payload = serde_json::to_vec(command).unwrap_or_default();
    dsse::sign(COMMAND_PAYLOAD_TYPE, &payload, signer)
        .to_json()
        .into_bytes()
}

async fn request(
    client: &async_nats::Client,
    subjects: &Subjects,
    envelope: Vec<u8>,
) -> anyhow::Result<SubmitReply> {
    let message = client.request(subjects.submit(), envelope.into()).await?;
    if let Some(error) = ErrorReply::from_headers(message.headers.as_ref()) {
        bail!("refused: {error}");
    }
    Ok(serde_json::from_slice(&message.payload)?)
}

async fn submit(
    client: &async_nats::Client,
    subjects: &Subjects,
    signer: &str,
    command: &Value,
) -> anyhow::Result<SubmitReply> {
    request(client, subjects, sign(&key(signer), command))
        .await
        .with_context(|| format!("setting up: {}", command["type"]))
}
