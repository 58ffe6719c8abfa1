//! How fast `umlauf audit verify --db` audits a long history kept in PostgreSQL.
//!
//! Creates a database of its own (`umlauf_bench_audit_<pid>`) on the server at
//! `UMLAUF_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), loads a
//! realistic history into it through the store, as the service writes it (the IT-Planungsrat;
//! circulations of 17 votes closed by the last vote, every seventh with five members silent and
//! closed at the deadline; the read models with every append; a checkpoint signed with the log
//! key for every committed batch of up to 512 commands), then runs the real `umlauf audit verify
//! --db` on it as a child process, with the trust anchors and a checkpoint of the whole log held
//! outside the database. It reports the audit's records per second, its CPU time as records per
//! CPU-second, and its peak RSS (VmHWM, sampled every 10 ms while it runs), beside the raw
//! Ed25519 batch-verification rate (ed25519-dalek's `verify_batch`) per CPU-second on one core
//! and over all cores, measured in the same run. The database is dropped at the end.
//!
//! `UMLAUF_BENCH_RECORDS` sets the history's length (default 1,000,000). With
//! `UMLAUF_BENCH_KEEP_DATABASE=1` the database and the checkpoint file are kept, and the command
//! that audits them is printed, to profile the audit again without loading the history again.
//! Run with `cargo bench -p umlauf-cli --bench audit_db`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../umlauf-audit/tests/audit/history.rs"]
mod history;
#[path = "../../umlauf-audit/benches/common/raw_rate.rs"]
mod raw_rate;

use std::collections::HashMap;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use raw_rate::{raw_batch_rate, raw_batch_rate_per_cpu_second};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection as _};
use umlauf_domain::body::{self, Body};
use umlauf_domain::circulation::{self, Circulation};
use umlauf_domain::{Record, StreamId};
use umlauf_proof::dsse::Envelope;
use umlauf_proof::note::NoteVerifier;
use umlauf_store::{Append, Cause, CheckpointSigner, Projection, Store, StoreOptions};

/// Where PostgreSQL is expected unless `UMLAUF_BENCH_DATABASE_URL` says otherwise.
const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Commands per `append_all`: one transaction, one checkpoint, as the service's fullest batch.
const COMMANDS_PER_BATCH: usize = umlauf_store::MAX_BATCH_APPENDS;

fn main() {
    let target: u64 = std::env::var("UMLAUF_BENCH_RECORDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000);
    let server = std::env::var("UMLAUF_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_SERVER_URL.to_owned());
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let name = format!("umlauf_bench_audit_{}", std::process::id());
    let database = runtime.block_on(Database::create(&server, &name));
    let directory = tempfile::tempdir().unwrap();

    let started = Instant::now();
    let (size, checkpoint) = runtime.block_on(load(&database.url, target));
    println!(
        "loaded {size} records into {name} through the store in {:.1} s ({:.0} records/s, {} MB)",
        started.elapsed().as_secs_f64(),
        size as f64 / started.elapsed().as_secs_f64(),
        runtime.block_on(database.size()) / 1_000_000
    );
    let checkpoint_file = directory.path().join("checkpoint.note");
    std::fs::write(&checkpoint_file, checkpoint).unwrap();

    let raw = raw_batch_rate(threads);
    let raw_per_cpu = raw_batch_rate_per_cpu_second();
    println!(
        "Ed25519 ed25519-dalek verify_batch (raw): {raw:.0}/s over {threads} cores, {raw_per_cpu:.0} per CPU-second on one"
    );

    let audit = run_audit(&database.url, &checkpoint_file);
    let raw_after = raw_batch_rate(threads);
    assert!(
        audit.code == Some(0),
        "the audit did not pass (exit {:?}):\n{}\n{}",
        audit.code,
        audit.stdout,
        audit.stderr
    );
    let json: Value = serde_json::from_str(&audit.stdout).unwrap();
    assert_eq!(json["result"], "clean", "{}", audit.stdout);
    let report = &json["report"];
    assert_eq!(report["records"], size, "{}", audit.stdout);
    assert_eq!(report["newest_checkpoint"], size, "{}", audit.stdout);

    let wall = audit.wall.as_secs_f64();
    let rate = size as f64 / wall;
    println!(
        "audited {size} records (umlauf audit verify --db, {} checkpoints checked) in {wall:.1} s: {rate:.0} records/s ({:.2} × the raw batch rate over all cores; {raw_after:.0}/s after the audit)",
        report["checkpoints_checked"],
        rate / raw
    );
    println!(
        "CPU time of the audit {:.1} s: {:.0} records per CPU-second ({:.2} × the raw batch rate per CPU-second)",
        audit.cpu,
        size as f64 / audit.cpu,
        size as f64 / audit.cpu / raw_per_cpu,
    );
    println!(
        "CPU time of the PostgreSQL backends serving it {:.1} s: {:.0} records per CPU-second for both; the machine was busy {:.1} CPU-seconds meanwhile (anything else included)",
        audit.postgres_cpu,
        size as f64 / (audit.cpu + audit.postgres_cpu),
        audit.machine_cpu
    );
    println!("peak RSS of the audit {} kB", audit.peak_rss_kb);
    if std::env::var("UMLAUF_BENCH_KEEP_DATABASE").is_ok_and(|keep| keep == "1") {
        let kept = directory.keep();
        println!(
            "kept: {} {}",
            env!("CARGO_BIN_EXE_umlauf"),
            audit_args(&database.url, &kept.join("checkpoint.note")).join(" ")
        );
        database.keep();
    } else {
        drop(directory);
        runtime.block_on(database.drop_it());
    }
}

// ---- the database ------------------------------------------------------------------------------

/// A database of the bench's own, dropped at the end (also when the bench fails).
struct Database {
    server: String,
    name: String,
    url: String,
    dropped: bool,
}

impl Database {
    async fn create(server: &str, name: &str) -> Self {
        let mut connection = sqlx::PgConnection::connect(server)
            .await
            .unwrap_or_else(|error| panic!("PostgreSQL at {server}: {error}"));
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        Self {
            server: server.to_owned(),
            name: name.to_owned(),
            url: with_database(server, name),
            dropped: false,
        }
    }

    /// The database's size on disk, in bytes.
    async fn size(&self) -> u64 {
        let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        u64::try_from(size).unwrap_or(0)
    }

    /// Leaves the database in place.
    fn keep(mut self) {
        self.dropped = true;
    }

    async fn drop_it(mut self) {
        self.dropped = true;
        let mut connection = sqlx::PgConnection::connect(&self.server).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut connection)
        .await
        .unwrap();
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // The bench failed: drop the database on a runtime of its own.
        let server = self.server.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut connection = sqlx::PgConnection::connect(&server).await.ok()?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut connection)
                .await
                .ok()
            })
        })
        .join();
    }
}

/// `server` with the database `name` in place of its own.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = server
        .split_once('?')
        .map_or((server, None), |(base, query)| (base, Some(query)));
    let (authority, _) = base
        .rsplit_once('/')
        .filter(|(authority, _)| authority.contains("//") && !authority.ends_with('/'))
        .unwrap_or((base, ""));
    match query {
        Some(query) => format!("{authority}/{name}?{query}"),
        None => format!("{authority}/{name}"),
    }
}

// ---- loading -----------------------------------------------------------------------------------

/// Appends a history of at least `target` records (whole commands) through the store, with the
/// log key as the checkpoint signer, and returns its size and a checkpoint of the whole log
/// signed by the history itself (the store's bytes must be the history's for it to hold).
async fn load(url: &str, target: u64) -> (u64, String) {
    let options = StoreOptions::new(url).checkpoints(CheckpointSigner::new(
        history::LOG.to_owned(),
        history::log_key(),
    ));
    let store = Store::open_with(options).await.unwrap();
    // The history is generated and signed on a thread of its own while the store writes.
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Vec<Append>>(4);
    let generator = std::thread::spawn(move || generate(target, &sender));
    let mut written = 0_u64;
    while let Some(batch) = batches.recv().await {
        for result in store.append_all(batch).await {
            let appended = result.unwrap();
            assert!(!appended.duplicate);
            written += u64::try_from(appended.records.len()).unwrap();
        }
    }
    let (size, checkpoint) = generator.join().unwrap();
    assert_eq!(written, size);
    assert_eq!(store.head().await.unwrap().position, size);
    store.close().await;
    (size, checkpoint)
}

/// Generates the history command by command, as appends in batches; returns its size and a
/// checkpoint of it.
fn generate(target: u64, sender: &tokio::sync::mpsc::Sender<Vec<Append>>) -> (u64, String) {
    let mut history = history::History::new();
    let mut state = State::default();
    let mut batch = Vec::with_capacity(COMMANDS_PER_BATCH);
    history::grow_mixed(&mut history, target, |_, records| {
        batch.push(state.append(&records));
        if batch.len() == COMMANDS_PER_BATCH {
            sender.blocking_send(std::mem::take(&mut batch)).unwrap();
        }
    });
    if !batch.is_empty() {
        sender.blocking_send(batch).unwrap();
    }
    (history.size(), history.checkpoint())
}

/// The streams' states, to hand the store the read models after each append, as the service
/// does.
#[derive(Default)]
struct State {
    body: Body,
    circulations: HashMap<StreamId, Circulation>,
}

impl State {
    /// The append of one command's records, as the service would have made it.
    fn append(&mut self, records: &[Vec<u8>]) -> Append {
        let records: Vec<Record> = records
            .iter()
            .map(|bytes| Record::from_bytes(bytes).unwrap())
            .collect();
        let first = &records[0];
        let events: Vec<_> = records
            .iter()
            .map(|record| record.event().unwrap())
            .collect();
        let stream = first.stream.clone();
        let cause = first.command_id.map(|command_id| {
            let envelope = first.envelope.clone().unwrap();
            let digest = Envelope::from_json(envelope.to_string().as_bytes())
                .unwrap()
                .content_digest();
            Cause {
                command_id,
                envelope,
                digest,
            }
        });
        let projection = match &stream {
            StreamId::Body(_) => {
                self.body = events
                    .iter()
                    .fold(std::mem::take(&mut self.body), body::evolve);
                Projection::of_body(&self.body)
            }
            StreamId::Circulation(_) => {
                let before = self.circulations.remove(&stream).unwrap_or_default();
                let after = events.iter().fold(before, circulation::evolve);
                let projection = Projection::of_circulation(&after);
                // Closed circulations are dropped, so long histories stay small.
                if after.closed.is_none() {
                    self.circulations.insert(stream.clone(), after);
                }
                projection
            }
        };
        Append {
            stream,
            expected_version: first.version - 1,
            events,
            depends_on: Vec::new(),
            expected_head: Some(first.position - 1),
            recorded_at: first.recorded_at,
            cause,
            projection,
        }
    }
}

// ---- the audit ---------------------------------------------------------------------------------

/// What the audit's run measured.
struct Audit {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    wall: Duration,
    /// The audit's user and system CPU time, in seconds.
    cpu: f64,
    /// The whole machine's busy CPU time meanwhile, in seconds.
    machine_cpu: f64,
    /// The CPU time of the PostgreSQL backends serving the audit, in seconds (sampled every
    /// 10 ms; the last moments of each are missed).
    postgres_cpu: f64,
    peak_rss_kb: u64,
}

/// Runs `umlauf audit verify --db` on the database as a child process.
fn run_audit(url: &str, checkpoint: &std::path::Path) -> Audit {
    let stdout_file = tempfile::tempfile().unwrap();
    let stderr_file = tempfile::tempfile().unwrap();
    let children_before = children_cpu_seconds();
    let machine_before = machine_busy_seconds();
    let started = Instant::now();
    let mut child = Process::new(env!("CARGO_BIN_EXE_umlauf"))
        .args(audit_args(url, checkpoint))
        .stdin(Stdio::null())
        .stdout(stdout_file.try_clone().unwrap())
        .stderr(stderr_file.try_clone().unwrap())
        .spawn()
        .unwrap();
    // VmHWM is gone once the child has exited: sample it while it runs. So are the CPU times
    // of the PostgreSQL backends serving it (found by the database's name in their titles).
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_rss_kb = 0;
    let mut backends = Backends::new(database_name(url));
    let mut samples = 0_u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if let Some(kb) = std::fs::read_to_string(&status_path)
            .ok()
            .and_then(|status| status_field_kb(&status, "VmHWM:"))
        {
            peak_rss_kb = peak_rss_kb.max(kb);
        }
        backends.sample(samples.is_multiple_of(10));
        samples += 1;
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    let cpu = children_cpu_seconds() - children_before;
    let machine_cpu = machine_busy_seconds() - machine_before;
    let postgres_cpu = backends.cpu_seconds();
    let read = |mut file: std::fs::File| {
        use std::io::{Read as _, Seek as _};
        let mut text = String::new();
        file.rewind().unwrap();
        file.read_to_string(&mut text).unwrap();
        text
    };
    Audit {
        code: status.code(),
        stdout: read(stdout_file),
        stderr: read(stderr_file),
        wall,
        cpu,
        machine_cpu,
        postgres_cpu,
        peak_rss_kb,
    }
}

/// The arguments of the audit: the database, the trust anchors and the checkpoint.
fn audit_args(url: &str, checkpoint: &std::path::Path) -> Vec<String> {
    let log_key = NoteVerifier::new(history::LOG, history::log_key().verifying_key())
        .unwrap()
        .to_string();
    let genesis_key = history::base64_key(&history::genesis_key());
    [
        "audit",
        "verify",
        "--json",
        "--db",
        url,
        "--genesis-key",
        &genesis_key,
        "--log-key",
        &log_key,
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([format!("--checkpoint={}", checkpoint.display())])
    .collect()
}

/// The database name of a PostgreSQL URL.
fn database_name(url: &str) -> String {
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    base.rsplit_once('/')
        .map_or("", |(_, name)| name)
        .to_owned()
}

/// The PostgreSQL backends connected to one database, and the CPU time each has used so far.
struct Backends {
    database: String,
    /// Process id and its CPU ticks when last sampled.
    ticks: HashMap<u32, u64>,
}

impl Backends {
    fn new(database: String) -> Self {
        Self {
            database,
            ticks: HashMap::new(),
        }
    }

    /// Reads the known backends' CPU time; with `look`, looks for new backends first.
    fn sample(&mut self, look: bool) {
        if look {
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|name| name.parse().ok())
                else {
                    continue;
                };
                if self.ticks.contains_key(&pid) {
                    continue;
                }
                let title = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                let title = String::from_utf8_lossy(&title);
                // "postgres: 15/main: postgres umlauf_bench_audit_123 127.0.0.1(5678) idle"
                if title.starts_with("postgres: ")
                    && title.split_whitespace().any(|word| word == self.database)
                {
                    self.ticks.insert(pid, 0);
                }
            }
        }
        for (pid, ticks) in &mut self.ticks {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<u64> = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_whitespace()
                .map(|field| field.parse().unwrap_or(0))
                .collect();
            if let (Some(user), Some(system)) = (fields.get(11), fields.get(12)) {
                *ticks = (*ticks).max(user + system);
            }
        }
    }

    fn cpu_seconds(&self) -> f64 {
        self.ticks.values().sum::<u64>() as f64 / 100.0
    }
}

fn status_field_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Fields of `/proc/self/stat` after the command name (which is in parentheses), so that field
/// N of the line is at index N - 3.
fn own_stat_fields() -> Vec<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    rest.split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect()
}

/// The user and system CPU time of the process's children that have been waited for, in seconds:
/// what `getrusage(RUSAGE_CHILDREN)` counts.
fn children_cpu_seconds() -> f64 {
    let fields = own_stat_fields();
    // cutime and cstime are fields 16 and 17.
    (fields.get(13).copied().unwrap_or(0) + fields.get(14).copied().unwrap_or(0)) as f64 / 100.0
}

/// The machine's busy CPU time since boot (every state but idle and iowait), in seconds.
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|line| line.starts_with("cpu ")) else {
        return 0.0;
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is within user).
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(index, _)| *index != 3 && *index != 4)
        .map(|(_, ticks)| ticks)
        .sum();
    busy as f64 / 100.0
}
