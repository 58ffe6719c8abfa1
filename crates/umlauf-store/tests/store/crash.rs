//! A child process (this test binary, running only [`child_appends_until_killed`]) appends in a
//! loop from several tasks and prints every acknowledged record. The parent kills it with SIGKILL
//! in mid-run, reopens the store and checks that the log is gapless, that every record matches its
//! hash, and that every acknowledged record is there.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::on_both_backends;
use crate::support::{Backend, Scenario, TestDb, check_log};

on_both_backends!(acknowledged_appends_survive_a_kill);

/// Tells the child which database to append to: `sqlite <url>` or `postgres <url> <schema>`.
const CHILD_ENV: &str = "UMLAUF_STORE_CRASH_CHILD";
/// The child's test name, for `--exact`.
const CHILD_TEST: &str = "crash::child_appends_until_killed";
/// Acknowledgements the parent waits for before it kills the child.
const ACKS_BEFORE_KILL: usize = 60;
const CHILD_TASKS: u64 = 4;

/// The child's half. In a normal test run the variable is unset and this returns at once.
#[test]
fn child_appends_until_killed() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    let db = match parts.as_slice() {
        ["sqlite", url] => TestDb::existing(Backend::Sqlite, (*url).to_owned(), None),
        ["postgres", url, schema] => TestDb::existing(
            Backend::Postgres,
            (*url).to_owned(),
            Some((*schema).to_owned()),
        ),
        _ => panic!("{CHILD_ENV}={spec:?} is not `sqlite <url>` or `postgres <url> <schema>`"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = db.open().await;
        let scenario = Scenario::continuing(store, 1_000_000).await;
        let tasks: Vec<_> = (0..CHILD_TASKS)
            .map(|task| {
                let scenario = scenario.clone();
                tokio::spawn(async move {
                    for k in 0.. {
                        let n = 1_000 * (task + 1) + k;
                        let commands = [
                            scenario.open(n, "simple-majority"),
                            scenario.vote(n, "DE", "yes"),
                        ];
                        for command in &commands {
                            loop {
                                match scenario.submit(command).await {
                                    Ok(appended) => {
                                        for stored in &appended.records {
                                            let record = &stored.record;
                                            let hash: String = stored
                                                .leaf_hash
                                                .iter()
                                                .map(|byte| format!("{byte:02x}"))
                                                .collect();
                                            println!(
                                                "ACK {} {} {} {hash}",
                                                record.position, record.stream, record.version
                                            );
                                        }
                                        break;
                                    }
                                    Err(error) if error.is_retryable() => {}
                                    Err(error) => panic!("child append failed: {error}"),
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// One acknowledged record, as the child printed it.
#[derive(Debug, PartialEq, Eq)]
struct Ack {
    position: u64,
    stream: String,
    version: u64,
    hash: String,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut fields = line.strip_prefix("ACK ")?.split(' ');
    Some(Ack {
        position: fields.next()?.parse().ok()?,
        stream: fields.next()?.to_owned(),
        version: fields.next()?.parse().ok()?,
        hash: fields.next()?.to_owned(),
    })
}

/// Runs the child until it has acknowledged enough, kills it, and returns every acknowledgement
/// it printed before it died.
fn run_and_kill_child(spec: String) -> Vec<Ack> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.len() < ACKS_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => acks.extend(parse_ack(&line)),
            Err(error) => {
                let _ = child.kill();
                panic!(
                    "the child acknowledged {} appends and then stopped ({error})",
                    acks.len()
                );
            }
        }
    }
    // SIGKILL: no destructors, no flushing, no goodbye to the database.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the child should have been killed: {status}"
    );
    reader.join().unwrap();
    // Whatever it printed before it died was acknowledged too.
    acks.extend(received.try_iter().filter_map(|line| parse_ack(&line)));
    acks
}

async fn acknowledged_appends_survive_a_kill(db: Arc<TestDb>) {
    let store = db.open().await;
    Scenario::constituted(store.clone()).await;
    store.close().await;
    drop(store);

    let spec = match db.backend {
        Backend::Sqlite => format!("sqlite {}", db.url),
        Backend::Postgres => format!("postgres {} {}", db.url, db.schema.clone().unwrap()),
    };
    let acks = tokio::task::spawn_blocking(move || run_and_kill_child(spec))
        .await
        .unwrap();
    assert!(acks.len() >= ACKS_BEFORE_KILL);

    let store = db.open().await;
    let records = check_log(&store).await;
    for ack in &acks {
        let index = usize::try_from(ack.position - 1).unwrap();
        let record = records
            .get(index)
            .unwrap_or_else(|| panic!("acknowledged position {} is missing", ack.position));
        let hash: String = record
            .leaf_hash
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            (
                record.record.stream.to_string(),
                record.record.version,
                hash
            ),
            (ack.stream.clone(), ack.version, ack.hash.clone())
        );
    }
    // The reopened store goes on where the log ends.
    let scenario = Scenario::continuing(store.clone(), 2_000_000).await;
    let appended = scenario
        .submit(&scenario.open(1, "simple-majority"))
        .await
        .unwrap();
    assert_eq!(
        appended.last_position(),
        Some(u64::try_from(records.len()).unwrap() + 1)
    );
    check_log(&store).await;
}
