//! Append throughput: single-event commands (votes) at several concurrencies, on both backends,
//! against the machine's own limit measured in the same run: single-row INSERT transactions of
//! rows of the same size, on the same database, with the same number of concurrent connections,
//! as pgbench would run them.
//!
//! `cargo bench -p umlauf-store --bench append` prints one table. Besides the rates and
//! latencies, `/batch` is the appends per writer transaction, `pipe%` the share of batches sent
//! while another was still in flight (PostgreSQL), `busy%` the share of the store's
//! measured slices the writer spent committing batches and `wait%` the share it waited, with
//! appends in hand, for more to join (the rest it had nothing to do: the appenders were
//! preparing their next appends), and `clock` the appends retried after `clock_behind`.
//! `cpu us` is the CPU time one append (and one INSERT transaction) cost the machine: this
//! process and every PostgreSQL process together, in microseconds, over the slices of each (other
//! work on the machine that runs in PostgreSQL counts too). When the machine's cores are the
//! bound, the rates go as the inverse of these.
//!
//! Environment:
//! - `UMLAUF_BENCH_SECONDS`: measured seconds per figure (default 4), split into
//!   `UMLAUF_BENCH_ROUNDS` (default 4) slices that alternate between the store and the baseline,
//!   so that load from elsewhere on the machine falls on both alike; each slice starts with a
//!   short warm-up that is not counted
//! - `UMLAUF_BENCH_CONCURRENCY`: comma-separated (default `1,8,64`)
//! - `UMLAUF_BENCH_BACKENDS`: `sqlite`, `postgres` or both (default both)
//! - `UMLAUF_BENCH_DATABASE_URL` (else `UMLAUF_TEST_DATABASE_URL`, else
//!   `postgres://postgres@127.0.0.1:5432/postgres`); the bench works in a schema of its own and
//!   drops it at the end
//! - `UMLAUF_BENCH_ENVELOPE`: `0` (default) leaves each vote's signed envelope out of its record
//!   (about 300 bytes, a vote's event); `1` stores it, as the service does (about 1 KB)
//! - `UMLAUF_BENCH_IN_FLIGHT`: comma-separated settings of `StoreOptions::batches_in_flight` to
//!   compare (default `1,2`), one store each on the same database, their slices alternating;
//!   `flight` in the table (SQLite commits one batch at a time whatever the setting)
//! - `UMLAUF_BENCH_CHECKPOINTS`: `1` (default) opens the store with a checkpoint signer, as the
//!   service does, so every batch also stores its Merkle subtrees and a signed checkpoint; `0`
//!   without (the subtrees are stored either way)
//!
//! Each task appends votes to a circulation of its own: a real `VoteCast` event, the circulation's
//! state evolved by the domain and its status computed by `CirculationStatus::of`, as the service
//! would. The envelope's signature bytes are stand-ins (the store does not verify signatures;
//! the service does so before it appends), so no signing cost is measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Connection};
use umlauf_domain::body::{self, Body};
use umlauf_domain::circulation::{self, Circulation};
use umlauf_domain::event::VoteCast;
use umlauf_domain::ids::{Choice, CirculationId, CommandId, MemberId, ProposalDigest, PublicKey};
use umlauf_domain::{Command, Event, State, StreamId, decide};
use umlauf_store::{Append, Cause, CheckpointSigner, Projection, Store, StoreError, StoreOptions};

const BODY: &str = "bench-rat";
/// The IT-Planungsrat's electorate size.
const MEMBERS: usize = 17;
const WARM_UP: Duration = Duration::from_millis(200);

struct Settings {
    seconds: f64,
    rounds: u32,
    concurrency: Vec<usize>,
    backends: Vec<String>,
    postgres_url: String,
    envelope: bool,
    checkpoints: bool,
    in_flight: Vec<usize>,
}

fn settings() -> Settings {
    let var = |name: &str| std::env::var(name).ok();
    Settings {
        seconds: var("UMLAUF_BENCH_SECONDS")
            .and_then(|s| s.parse().ok())
            .unwrap_or(4.0),
        rounds: var("UMLAUF_BENCH_ROUNDS")
            .and_then(|s| s.parse().ok())
            .unwrap_or(4)
            .max(1),
        concurrency: var("UMLAUF_BENCH_CONCURRENCY")
            .unwrap_or_else(|| "1,8,64".into())
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        backends: var("UMLAUF_BENCH_BACKENDS")
            .unwrap_or_else(|| "sqlite,postgres".into())
            .split(',')
            .map(|name| name.trim().to_owned())
            .collect(),
        postgres_url: var("UMLAUF_BENCH_DATABASE_URL")
            .or_else(|| var("UMLAUF_TEST_DATABASE_URL"))
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        envelope: var("UMLAUF_BENCH_ENVELOPE").as_deref() == Some("1"),
        checkpoints: var("UMLAUF_BENCH_CHECKPOINTS").as_deref() != Some("0"),
        in_flight: var("UMLAUF_BENCH_IN_FLIGHT")
            .unwrap_or_else(|| "1,2".into())
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
    }
}

fn member(index: usize) -> String {
    format!("M{index:02}")
}

fn key(label: &str) -> String {
    PublicKey(Sha256::digest(label.as_bytes()).into()).to_string()
}

fn command(kind: &str, actor: &str, id: u128, fields: Value) -> Command {
    let mut value = json!({
        "type": kind,
        "command_id": uuid::Uuid::from_u128(id),
        "body": BODY,
        "actor": actor,
        "issued_at": Utc::now(),
    });
    for (name, field) in fields.as_object().unwrap() {
        value[name] = field.clone();
    }
    Command::from_value(value).unwrap()
}

/// A cause whose envelope has the shape and size of a real one.
fn cause(command: &Command, with_envelope: bool) -> Cause {
    cause_of_payload(command.command_id, &command.to_json(), with_envelope)
}

/// A vote's cause, its payload written the way `Command::to_json` writes it, without building
/// and parsing a `Command`: the bench measures the store, not its own set-up.
fn vote_cause(
    id: u128,
    voter: &str,
    circulation: CirculationId,
    choice: Choice,
    proposal: ProposalDigest,
    with_envelope: bool,
) -> Cause {
    let command_id = uuid::Uuid::from_u128(id);
    let payload = format!(
        r#"{{"type":"CastVote","command_id":"{command_id}","body":"{BODY}","actor":"{voter}","issued_at":"{}","circulation":"{circulation}","choice":"{choice}","proposal_sha256":"{}"}}"#,
        Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        proposal,
    );
    cause_of_payload(CommandId(command_id), &payload, with_envelope)
}

fn cause_of_payload(command_id: CommandId, payload: &str, with_envelope: bool) -> Cause {
    let signature: Vec<u8> = Sha256::digest(payload.as_bytes())
        .iter()
        .chain(Sha256::digest(b"stand-in signature").iter())
        .copied()
        .collect();
    let envelope = if with_envelope {
        let standard = base64::engine::general_purpose::STANDARD;
        json!({
            "payloadType": "application/vnd.umlauf.command.v1+json",
            "payload": standard.encode(payload.as_bytes()),
            "signatures": [{"keyid": Sha256::digest(b"key").iter().map(|byte| format!("{byte:02x}")).collect::<String>(), "sig": standard.encode(&signature)}],
        })
    } else {
        Value::Null
    };
    let mut digest = Sha256::new();
    digest.update(payload.as_bytes());
    digest.update(&signature);
    Cause {
        command_id,
        envelope,
        digest: digest.finalize().into(),
    }
}

/// Constitutes the body and returns it.
async fn constitute(store: &Store) -> Body {
    let members: Vec<Value> = (0..MEMBERS)
        .map(|index| json!({"id": member(index), "name": member(index), "kind": "voting"}))
        .collect();
    let constitution = command(
        "ConstituteBody",
        "genesis",
        1,
        json!({
            "genesis_key": key("genesis"),
            "name": "Benchrat",
            "members": members,
            "keys": [{"holder": "secretariat", "public_key": key("secretariat")}],
        }),
    );
    let now = Utc::now();
    let events = body::decide(&Body::default(), &constitution, now).unwrap();
    let body = events.iter().fold(Body::default(), body::evolve);
    store
        .append(Append {
            stream: StreamId::Body(body.id.clone().unwrap()),
            expected_version: 0,
            events,
            depends_on: Vec::new(),
            expected_head: None,
            recorded_at: now,
            cause: Some(cause(&constitution, true)),
            projection: Projection::of_body(&body),
        })
        .await
        .unwrap();
    body
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1_000);

fn next_id() -> u128 {
    u128::from(NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// Opens one circulation per task; returns their states.
async fn open_circulations(
    store: &Store,
    body: &Body,
    count: usize,
) -> Vec<(CirculationId, Circulation)> {
    let digest = Sha256::digest(b"bench proposal");
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut appends = Vec::new();
    let mut opened = Vec::new();
    for _ in 0..count {
        let id = CirculationId(uuid::Uuid::from_u128(
            0x5f0c_0000_0000_4000_8000_0000_0000_0000 | next_id(),
        ));
        let open = command(
            "OpenCirculation",
            "secretariat",
            next_id(),
            json!({
                "circulation": id,
                "title": "Bench",
                "proposal": {"reference": "https://example.invalid/bench", "sha256": hex},
                "rule": {"kind": "preset", "preset": "simple-majority"},
                "deadline": Utc::now() + chrono::Duration::days(14),
            }),
        );
        let now = Utc::now();
        let state = State {
            body,
            circulation: None,
        };
        let events = decide(state, &open, now).unwrap();
        let circulation = events
            .iter()
            .fold(Circulation::default(), circulation::evolve);
        appends.push(Append {
            stream: StreamId::Circulation(id),
            expected_version: 0,
            events,
            depends_on: Vec::new(),
            expected_head: None,
            recorded_at: now,
            cause: Some(cause(&open, true)),
            projection: Projection::of_circulation(&circulation),
        });
        opened.push((id, circulation));
    }
    for chunk in appends.chunks(64) {
        for result in store.append_all(chunk.to_vec()).await {
            result.unwrap();
        }
    }
    opened
}

/// What one measurement's tasks recorded.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    bytes: usize,
    retries: u64,
    /// Appends completed, the warm-up's included.
    total: u64,
}

/// Appends votes from one task per circulation for the warm-up and `seconds`; counts what
/// completed inside the measured window. Returns the circulations as they are now.
async fn measure_store(
    store: &Store,
    circulations: Vec<(CirculationId, Circulation)>,
    seconds: f64,
    envelope: bool,
) -> (Vec<(CirculationId, Circulation)>, Tally) {
    let start = Instant::now();
    let measure_from = start + WARM_UP;
    let measure_until = measure_from + Duration::from_secs_f64(seconds);
    let proposal = ProposalDigest(Sha256::digest(b"bench proposal").into());
    let tasks: Vec<_> = circulations
        .into_iter()
        .enumerate()
        .map(|(task, (id, mut state))| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let stream = StreamId::Circulation(id);
                while Instant::now() < measure_until {
                    // Every member in turn, each choice in turn.
                    let k = task + usize::try_from(state.version).unwrap();
                    let voter = member(k % MEMBERS);
                    let choice = [Choice::Yes, Choice::No, Choice::Abstain][k % 3];
                    let command_id = next_id();
                    let event = Event::VoteCast(VoteCast {
                        member: MemberId::parse(&voter).unwrap(),
                        choice,
                        proposal_sha256: proposal,
                        statement: None,
                    });
                    let expected_version = state.version;
                    state = circulation::evolve(state, &event);
                    // Built afresh for a retry (rare) rather than copied for every append.
                    let build = |event: Event, state: &Circulation| Append {
                        stream: stream.clone(),
                        expected_version,
                        events: vec![event],
                        depends_on: Vec::new(),
                        expected_head: None,
                        recorded_at: Utc::now(),
                        cause: Some(vote_cause(
                            command_id, &voter, id, choice, proposal, envelope,
                        )),
                        projection: Projection::of_circulation(state),
                    };
                    let mut append = build(event.clone(), &state);
                    let started = Instant::now();
                    let appended = loop {
                        match store.append(append).await {
                            Ok(appended) => break appended,
                            Err(StoreError::ClockBehind { .. }) => {
                                tally.retries += 1;
                                append = build(event.clone(), &state);
                            }
                            Err(error) => panic!("append failed: {error}"),
                        }
                    };
                    let finished = Instant::now();
                    tally.total += 1;
                    if started >= measure_from && finished <= measure_until {
                        tally.latencies.push(finished - started);
                        tally.bytes += appended.records[0].bytes.len();
                    }
                }
                (id, state, tally)
            })
        })
        .collect();
    let mut total = Tally::default();
    let mut circulations = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (id, state, tally) = task.await.unwrap();
        circulations.push((id, state));
        total.latencies.extend(tally.latencies);
        total.bytes += tally.bytes;
        total.retries += tally.retries;
        total.total += tally.total;
    }
    (circulations, total)
}

/// Single-row INSERT transactions (autocommit) of `row_bytes`-byte rows from `concurrency`
/// connections of their own: the database's own limit for one fsync-ed transaction per row.
async fn measure_inserts(
    database: &Database,
    concurrency: usize,
    seconds: f64,
    row_bytes: usize,
) -> (u64, u64) {
    let start = Instant::now();
    let measure_from = start + WARM_UP;
    let measure_until = measure_from + Duration::from_secs_f64(seconds);
    let payload = Arc::new(vec![b'x'; row_bytes]);
    let count = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let payload = Arc::clone(&payload);
        let count = Arc::clone(&count);
        let total = Arc::clone(&total);
        let mut connection = database.connect().await;
        tasks.push(tokio::spawn(async move {
            while Instant::now() < measure_until {
                let started = Instant::now();
                connection.insert(&payload).await;
                total.fetch_add(1, Ordering::Relaxed);
                if started >= measure_from && Instant::now() <= measure_until {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            connection.close().await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (count.load(Ordering::Relaxed), total.load(Ordering::Relaxed))
}

/// CPU time in clock ticks (1/100 s) of this process and of every PostgreSQL process, those that
/// ended meanwhile included (they count in the postmaster's waited-for children): what one
/// operation costs the machine, whoever spends it.
fn cpu_ticks() -> u64 {
    let mut ticks = 0;
    let mut postgres = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        // Fields after the command name: N of the line is at N - 3.
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map(|field| field.parse().unwrap_or(0))
            .collect();
        let field = |index: usize| fields.get(index).copied().unwrap_or(0);
        if pid == std::process::id() {
            ticks += field(11) + field(12);
        } else if head.ends_with("(postgres") {
            postgres.push((pid, field(1), field(11) + field(12), field(13) + field(14)));
        }
    }
    for (_, parent, own, children) in &postgres {
        ticks += own;
        // The postmaster: its parent is no PostgreSQL process.
        if !postgres.iter().any(|(pid, ..)| u64::from(*pid) == *parent) {
            ticks += children;
        }
    }
    ticks
}

/// The database a backend's figures are taken on.
enum Database {
    Sqlite {
        url: String,
        _directory: tempfile::TempDir,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

enum RawConnection {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Database {
    fn options(&self, checkpoints: bool) -> StoreOptions {
        let options = match self {
            Self::Sqlite { url, .. } => StoreOptions::new(url.clone()),
            Self::Postgres { url, schema } => StoreOptions::new(url.clone()).schema(schema.clone()),
        };
        if checkpoints {
            let key =
                umlauf_proof::keys::signing_key_from_seed(Sha256::digest(b"bench log").into());
            options.checkpoints(CheckpointSigner::new("umlauf.bench/log".into(), key))
        } else {
            options
        }
    }

    async fn connect(&self) -> RawConnection {
        match self {
            Self::Sqlite { url, .. } => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .unwrap()
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(60));
                RawConnection::Sqlite(
                    sqlx::SqliteConnection::connect_with(&options)
                        .await
                        .unwrap(),
                )
            }
            Self::Postgres { url, schema } => {
                let options = sqlx::postgres::PgConnectOptions::from_str(url)
                    .unwrap()
                    .options([("search_path", schema.as_str())]);
                RawConnection::Postgres(sqlx::PgConnection::connect_with(&options).await.unwrap())
            }
        }
    }

    async fn create_baseline_table(&self) {
        let sql = match self {
            Self::Sqlite { .. } => {
                "CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)"
            }
            Self::Postgres { .. } => {
                "CREATE TABLE bench_rows (id bigserial PRIMARY KEY, payload bytea NOT NULL)"
            }
        };
        self.connect().await.execute(sql).await;
    }

    async fn remove(&self) {
        if let Self::Postgres { url, schema } = self {
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut connection)
            .await
            .unwrap();
        }
    }
}

impl RawConnection {
    async fn execute(&mut self, sql: &'static str) {
        match self {
            Self::Sqlite(connection) => {
                sqlx::raw_sql(sql).execute(connection).await.unwrap();
            }
            Self::Postgres(connection) => {
                sqlx::raw_sql(sql).execute(connection).await.unwrap();
            }
        }
    }

    async fn insert(&mut self, payload: &[u8]) {
        match self {
            Self::Sqlite(connection) => {
                sqlx::query("INSERT INTO bench_rows (payload) VALUES (?1)")
                    .bind(payload)
                    .execute(connection)
                    .await
                    .unwrap();
            }
            Self::Postgres(connection) => {
                sqlx::query("INSERT INTO bench_rows (payload) VALUES ($1)")
                    .bind(payload)
                    .execute(connection)
                    .await
                    .unwrap();
            }
        }
    }

    async fn close(self) {
        let _ = match self {
            Self::Sqlite(connection) => connection.close().await,
            Self::Postgres(connection) => connection.close().await,
        };
    }
}

/// The latency at `permille` of the sorted latencies, in milliseconds.
fn percentile(sorted: &[Duration], permille: usize) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return f64::NAN;
    };
    sorted[last * permille / 1000].as_secs_f64() * 1_000.0
}

/// One store's figures at one concurrency, gathered over its slices.
struct Run {
    in_flight: usize,
    store: Store,
    circulations: Vec<(CirculationId, Circulation)>,
    before: umlauf_store::WriterStats,
    tally: Tally,
    /// The writer's busy and gathering time over the store's slices, against their wall time.
    busy: Duration,
    gathering: Duration,
    time: Duration,
    /// CPU ticks spent during its slices (see [`cpu_ticks`]).
    cpu: u64,
}

impl Run {
    /// Measures one slice.
    async fn measure(&mut self, slice: f64, envelope: bool) {
        let (stats, started, cpu) = (self.store.writer_stats(), Instant::now(), cpu_ticks());
        let circulations = std::mem::take(&mut self.circulations);
        let (now, round) = measure_store(&self.store, circulations, slice, envelope).await;
        self.time += started.elapsed();
        self.cpu += cpu_ticks() - cpu;
        let after = self.store.writer_stats();
        self.busy += after.busy - stats.busy;
        self.gathering += after.gathering - stats.gathering;
        self.circulations = now;
        self.tally.latencies.extend(round.latencies);
        self.tally.bytes += round.bytes;
        self.tally.retries += round.retries;
        self.tally.total += round.total;
    }

    fn print(
        mut self,
        name: &str,
        concurrency: usize,
        seconds: f64,
        baseline: f64,
        baseline_cpu: f64,
    ) {
        let after = self.store.writer_stats();
        let before = &self.before;
        let appends = self.tally.latencies.len();
        let rate = appends as f64 / seconds;
        self.tally.latencies.sort_unstable();
        let row_bytes = self.tally.bytes / appends.max(1);
        let batches = (after.batches - before.batches).max(1) as f64;
        let per_batch = (after.appends - before.appends) as f64 / batches;
        let share = |part: Duration| 100.0 * part.as_secs_f64() / self.time.as_secs_f64();
        println!(
            "{name:<9} {concurrency:>4} {:>6} {rate:>11.0} {:>8.2} {:>8.2} {per_batch:>7.1} {:>5.0} {:>6.0} {:>6.0} {:>7} {row_bytes:>6} {:>7.0} {baseline:>12.0} {baseline_cpu:>7.0} {:>7.2}",
            self.in_flight,
            percentile(&self.tally.latencies, 500),
            percentile(&self.tally.latencies, 990),
            100.0 * (after.overlapped - before.overlapped) as f64 / batches,
            share(self.busy),
            share(self.gathering),
            self.tally.retries,
            self.cpu as f64 * 10_000.0 / self.tally.total.max(1) as f64,
            rate / baseline,
        );
    }
}

async fn run_backend(name: &str, settings: &Settings) {
    let database = match name {
        "sqlite" => {
            let directory = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", directory.path().join("bench.db").display());
            Database::Sqlite {
                url,
                _directory: directory,
            }
        }
        "postgres" => Database::Postgres {
            url: settings.postgres_url.clone(),
            schema: format!("umlauf_bench_{}", std::process::id()),
        },
        other => panic!("unknown backend {other}: use sqlite or postgres"),
    };
    // One store per setting of batches in flight, all on the same database; their slices
    // alternate with each other and with the baseline's.
    let mut stores = Vec::new();
    for &in_flight in &settings.in_flight {
        let options = database
            .options(settings.checkpoints)
            .batches_in_flight(in_flight);
        match Store::open_with(options).await {
            Ok(store) => stores.push((in_flight, store)),
            Err(error) => panic!("the {name} benchmark needs its database ({error})"),
        }
    }
    database.create_baseline_table().await;
    let body = constitute(&stores[0].1).await;
    let baseline_wanted = std::env::var("UMLAUF_BENCH_BASELINE").as_deref() != Ok("0");
    let slice = settings.seconds / f64::from(settings.rounds);
    for &concurrency in &settings.concurrency {
        let mut runs = Vec::new();
        for (in_flight, store) in &stores {
            runs.push(Run {
                in_flight: *in_flight,
                store: store.clone(),
                circulations: open_circulations(store, &body, concurrency).await,
                before: store.writer_stats(),
                tally: Tally::default(),
                busy: Duration::ZERO,
                gathering: Duration::ZERO,
                time: Duration::ZERO,
                cpu: 0,
            });
        }
        let (mut inserts, mut inserts_total, mut inserts_cpu) = (0u64, 0u64, 0u64);
        for _ in 0..settings.rounds {
            for run in &mut runs {
                run.measure(slice, settings.envelope).await;
            }
            if baseline_wanted {
                let tally = &runs[0].tally;
                let row_bytes = tally.bytes / tally.latencies.len().max(1);
                let cpu = cpu_ticks();
                let (measured, total) =
                    measure_inserts(&database, concurrency, slice, row_bytes).await;
                inserts_cpu += cpu_ticks() - cpu;
                inserts += measured;
                inserts_total += total;
            }
        }
        let (baseline, baseline_cpu) = if baseline_wanted {
            (
                inserts as f64 / settings.seconds,
                inserts_cpu as f64 * 10_000.0 / inserts_total.max(1) as f64,
            )
        } else {
            (f64::NAN, f64::NAN)
        };
        for run in runs {
            run.print(name, concurrency, settings.seconds, baseline, baseline_cpu);
        }
    }
    for (_, store) in &stores {
        store.close().await;
    }
    database.remove().await;
}

#[tokio::main]
async fn main() {
    let settings = settings();
    println!(
        "append benchmark: {} s per figure in {} rounds, records {} envelopes, {}",
        settings.seconds,
        settings.rounds,
        if settings.envelope { "with" } else { "without" },
        if settings.checkpoints {
            "a signed checkpoint per batch"
        } else {
            "no checkpoints"
        }
    );
    println!(
        "{:<9} {:>4} {:>6} {:>11} {:>8} {:>8} {:>7} {:>5} {:>6} {:>6} {:>7} {:>6} {:>7} {:>12} {:>7} {:>7}",
        "backend",
        "conc",
        "flight",
        "appends/s",
        "p50 ms",
        "p99 ms",
        "/batch",
        "pipe%",
        "busy%",
        "wait%",
        "clock",
        "bytes",
        "cpu us",
        "insert tx/s",
        "cpu us",
        "ratio"
    );
    for backend in &settings.backends {
        run_backend(backend, &settings).await;
    }
}
