//! The demo end to end: the real `umlauf serve` on a temporary SQLite database and a subject
//! root and stream prefix of its own, NATS on 127.0.0.1:4222, then `umlauf demo` against it,
//! then the client commands against what the demo left behind.
//!
//! Needs NATS with JetStream on 127.0.0.1:4222 (`tests/services` starts it); fails without it.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{run_in, stderr, stdout, success, umlauf};

const NATS: &str = "nats://127.0.0.1:4222";

/// `umlauf serve` as a child process, stopped (and its output kept for failures) on drop.
struct Service {
    child: Child,
    log: std::path::PathBuf,
}

impl Service {
    fn start(dir: &Path, root: &str, prefix: &str) -> Service {
        let log = dir.join("serve.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = umlauf()
            .arg("serve")
            .current_dir(dir)
            .env("UMLAUF_NATS_URL", NATS)
            .env("UMLAUF_SUBJECT_ROOT", root)
            .env("UMLAUF_STREAM_PREFIX", prefix)
            .env(
                "UMLAUF_DATABASE_URL",
                format!("sqlite://{}", dir.join("umlauf.db").display()),
            )
            .env("UMLAUF_LOG_KEY_FILE", dir.join("log-key.pem"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("starting umlauf serve");
        Service { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the service answers a query under `root`, failing if it exits first.
    fn wait_until_it_answers(&mut self, dir: &Path, root: &str, prefix: &str) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "umlauf serve exited ({status}) before answering; this test needs the real \
                     service (crates/umlauf-cli/src/serve.rs). Its output:\n{}",
                    self.log()
                );
            }
            let probe = run_in(
                dir,
                &[
                    "key",
                    "list",
                    "--body",
                    "probe",
                    "--subject-root",
                    root,
                    "--stream-prefix",
                    prefix,
                ],
            );
            if probe.status.success() || !stderr(&probe).contains("no umlauf service answers") {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "umlauf serve did not answer within 90 s. Its output:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value after `label` on the first line that has it.
fn after<'t>(text: &'t str, label: &str) -> &'t str {
    text.lines()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
}

/// A subject root and stream prefix no other test run uses, after checking that NATS runs.
fn unique_deployment() -> (String, String) {
    assert!(
        TcpStream::connect("127.0.0.1:4222").is_ok(),
        "this test needs NATS with JetStream on 127.0.0.1:4222: run tests/services"
    );
    let unique = uuid::Uuid::new_v4().simple().to_string();
    (
        format!("t{}", &unique[..16]),
        format!("T{}", unique[..16].to_uppercase()),
    )
}

#[test]
fn the_demo_plays_a_circulation_to_an_adopted_decision() {
    let (root, prefix) = unique_deployment();
    let service_dir = tempfile::tempdir().unwrap();
    let mut service = Service::start(service_dir.path(), &root, &prefix);
    let client_dir = tempfile::tempdir().unwrap();
    service.wait_until_it_answers(client_dir.path(), &root, &prefix);

    let connection = [
        "--subject-root",
        root.as_str(),
        "--stream-prefix",
        prefix.as_str(),
    ];
    let vkey = service_dir.path().join("log-key.vkey");
    let vkey = vkey.to_str().unwrap();
    let demo = |extra: &[&str]| {
        let mut args = vec!["demo", "--pause-ms", "0", "--log-key", vkey];
        args.extend_from_slice(&connection);
        args.extend_from_slice(extra);
        run_in(client_dir.path(), &args)
    };
    let output = demo(&[]);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "the demo failed:\n{text}\n{}\nservice output:\n{}",
        stderr(&output),
        service.log()
    );
    for expected in [
        "constituted it-planungsrat",
        "DE     Bund",
        "DE-BY  Bayern",
        "The decision, as the subscriber receives it",
        "Decision: ADOPTED",
        "yes from DE",
        "at least 11 yes among group laender",
        "82.30 % (needs at least 2/3 = 66.67 %)",
        "13 of 16 Länder voted yes",
        "17 receipts verified",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let circulation = after(&text, "circulation  ").to_owned();

    // The status of the closed circulation, and a late vote refused with its code.
    let mut args = vec!["status", circulation.as_str()];
    args.extend_from_slice(&connection);
    let status = success(&run_in(client_dir.path(), &args));
    assert!(status.contains("closed, adopted"), "{status}");
    assert!(status.contains("Bayern"), "{status}");

    let mut args = vec![
        "vote",
        circulation.as_str(),
        "no",
        "--as",
        "DE-BY",
        "--key",
        "data/demo/keys/DE-BY.pem",
        "--log-key",
        vkey,
    ];
    args.extend_from_slice(&connection);
    let late = run_in(client_dir.path(), &args);
    assert_eq!(late.status.code(), Some(1), "{}", stdout(&late));
    assert!(
        stderr(&late).starts_with("error: circulation_closed: "),
        "{}",
        stderr(&late)
    );
    assert!(
        stdout(&late).contains("digest checked"),
        "{}",
        stdout(&late)
    );

    let mut args = vec!["key", "list", "--body", "it-planungsrat"];
    args.extend_from_slice(&connection);
    let keys = success(&run_in(client_dir.path(), &args));
    assert_eq!(
        keys.lines()
            .filter(|line| line.contains(" active "))
            .count(),
        18,
        "{keys}"
    );

    let mut args = vec!["inbox", "--body", "it-planungsrat", "--as", "DE-BY"];
    args.extend_from_slice(&connection);
    let inbox = success(&run_in(client_dir.path(), &args));
    assert!(inbox.contains("Nothing awaits DE-BY's vote"), "{inbox}");

    // A receipt that does not verify with the log key the client was given fails the command
    // loudly, even though the service accepted it.
    let other_key = umlauf_proof::keys::signing_key_from_seed([7; 32]);
    let other_vkey =
        umlauf_proof::note::NoteVerifier::new("umlauf.localhost/log", other_key.verifying_key())
            .unwrap()
            .to_string();
    let open = |log_key: &str, extra: &[&str]| {
        let mut args = vec![
            "open",
            "--title",
            "Receipts",
            "--text",
            "Der IT-Planungsrat prüft Quittungen.",
            "--preset",
            "unanimity",
            "--deadline",
            "+7d",
            "--body",
            "it-planungsrat",
            "--key",
            "data/demo/keys/secretariat.pem",
            "--log-key",
            log_key,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&connection);
        run_in(client_dir.path(), &args)
    };
    let forged = open(&other_vkey, &[]);
    assert_eq!(forged.status.code(), Some(1), "{}", stdout(&forged));
    assert!(
        stderr(&forged).contains("receipt") && stderr(&forged).contains("does not prove"),
        "{}",
        stderr(&forged)
    );
    assert!(!stdout(&forged).contains("accepted"), "{}", stdout(&forged));

    // With the service's key the receipt verifies, and is saved for later checks.
    let saved = client_dir.path().join("open.receipt.json");
    let opened = success(&open(vkey, &["--save-receipt", saved.to_str().unwrap()]));
    assert!(opened.contains("accepted"), "{opened}");
    let receipt =
        umlauf_proof::receipt::Receipt::from_json(&std::fs::read(&saved).unwrap()).unwrap();
    let verifier: umlauf_proof::note::NoteVerifier = std::fs::read_to_string(vkey)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    receipt.verify(None, &verifier).unwrap();

    // A second run reuses the keys and the body.
    let again = demo(&[]);
    let text = stdout(&again);
    assert!(again.status.success(), "{text}\n{}", stderr(&again));
    assert!(text.contains("exists from an earlier run"), "{text}");
    assert!(text.contains("Decision: ADOPTED"), "{text}");
}

#[test]
fn the_demo_starts_and_stops_a_service_of_its_own() {
    let (root, prefix) = unique_deployment();
    let dir = tempfile::tempdir().unwrap();
    let connection = [
        "--subject-root",
        root.as_str(),
        "--stream-prefix",
        prefix.as_str(),
    ];
    let mut args = vec!["demo", "--serve", "--pause-ms", "0"];
    args.extend_from_slice(&connection);
    let output = run_in(dir.path(), &args);
    let text = stdout(&output);
    let log = std::fs::read_to_string(dir.path().join("data/demo/serve.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "the demo failed:\n{text}\n{}\nservice log:\n{log}",
        stderr(&output)
    );
    assert!(text.contains("started `umlauf serve`"), "{text}");
    assert!(text.contains("Decision: ADOPTED"), "{text}");
    assert!(text.contains("stopping the service"), "{text}");
    // The service ran on the embedded defaults, in the demo's directory, and has stopped.
    assert!(dir.path().join("data/umlauf.db").exists());
    assert!(log.contains("stop"), "{log}");
    let mut args = vec!["key", "list", "--body", "it-planungsrat"];
    args.extend_from_slice(&connection);
    let after = run_in(dir.path(), &args);
    assert!(
        stderr(&after).contains("no umlauf service answers"),
        "the demo's service still answers: {}{}",
        stdout(&after),
        stderr(&after)
    );
}
