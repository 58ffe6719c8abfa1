//! `umlauf audit` against real databases, through the real binary.
//!
//! Each test appends a real history through the store (signed commands, events from the
//! domain's `decide`, read models from its folds), then changes the database behind the store's
//! back with the append-only triggers out of the way, as someone with access to it could, and
//! checks that `umlauf audit verify --db` names the first record that differs. Every test runs
//! twice: `name::sqlite` on a file in a temporary directory, and `name::postgres` in a schema of
//! its own at `UMLAUF_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`,
//! as a superuser, which may switch triggers off). Without PostgreSQL the PostgreSQL half fails
//! and says what it needs (`tests/services` starts it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures_util::{FutureExt as _, TryStreamExt as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::{AssertSqlSafe, Connection as _};
use umlauf_domain::body::{self, Body};
use umlauf_domain::circulation::{self, Circulation};
use umlauf_domain::ids::{Actor, CirculationId, PublicKey};
use umlauf_domain::{Command, Event, Record, State, StreamId, decide};
use umlauf_proof::SigningKey;
use umlauf_proof::checkpoint::{self, Checkpoint};
use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE};
use umlauf_proof::keys::signing_key_from_seed;
use umlauf_proof::merkle::{MemoryTree, leaf_hash};
use umlauf_proof::note::NoteVerifier;
use umlauf_store::{Append, Appended, Cause, CheckpointSigner, Projection, Store, StoreOptions};

/// Where PostgreSQL is expected unless `UMLAUF_TEST_DATABASE_URL` says otherwise.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The log's name, which is also its key's name.
const LOG: &str = "umlauf.test/log";
const BODY: &str = "test-rat";
const MEMBERS: [&str; 5] = ["DE", "DE-BE", "DE-BY", "DE-HH", "DE-NW"];
const PROPOSAL: &str = "Der Rat beschließt, Umlaufverfahren künftig elektronisch zu führen.";

/// Defines, for each named `async fn name(db: Arc<TestDb>)`, a module `name` with one test per
/// backend: `name::sqlite` and `name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::run($crate::Backend::Sqlite, super::$name).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::run($crate::Backend::Postgres, super::$name).await;
                }
            }
        )*
    };
}

on_both_backends!(
    a_clean_history_passes,
    a_changed_vote_choice_is_caught_at_the_vote,
    a_record_changed_without_its_leaf_hash_is_caught_at_the_record,
    a_deleted_and_renumbered_record_is_caught_where_its_stream_skips_a_version,
    two_reordered_records_are_caught_at_the_first,
    a_signature_swapped_between_two_votes_is_caught_at_the_first,
    a_changed_outcome_is_caught_at_the_close,
    a_changed_read_model_row_is_caught_at_the_record_it_reflects,
    a_forged_read_model_row_is_caught,
    a_truncated_log_is_caught_by_an_older_checkpoint,
    an_exported_bundle_verifies_offline_and_a_truncated_one_does_not,
    the_log_stream_is_audited_and_compared_with_the_database,
    a_watch_raises_the_alarm_on_a_forged_checkpoint,
    a_receipt_from_the_store_verifies_and_a_tampered_one_does_not,
);

// ---- the tests ---------------------------------------------------------------------------------

async fn a_clean_history_passes(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let audit = db.verify(&[&written.checkpoint_arg()]);
    assert_eq!(audit.code, 0, "{audit}");
    assert_eq!(audit.json["result"], "clean", "{audit}");
    let report = &audit.json["report"];
    assert_eq!(report["records"], written.size, "{audit}");
    assert_eq!(report["newest_checkpoint"], written.size, "{audit}");
    assert_eq!(report["decisions"]["adopted"], 1, "{audit}");
    assert_eq!(report["open_circulations"], 1, "{audit}");

    let human = db.verify_human(&[&written.checkpoint_arg()]);
    assert_eq!(human.code, 0, "{human}");
    assert!(human.stdout.starts_with("the audit passed"), "{human}");

    // The store's own checkpoints, one per committed batch, vouch for the log on their own.
    let stored = db.verify(&[]);
    assert_eq!(stored.code, 0, "{stored}");
    assert_eq!(
        stored.json["report"]["newest_checkpoint"], written.size,
        "{stored}"
    );
    assert!(
        stored.json["report"]["checkpoints_checked"]
            .as_u64()
            .unwrap()
            >= 9,
        "{stored}"
    );
}

async fn a_changed_vote_choice_is_caught_at_the_vote(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let mut tampering = db.tamper().await;
    let mut records = tampering.records().await;
    let vote = find(&records, 1, "VoteCast", "DE-BY");
    records[vote].data["choice"] = json!("no");
    tampering.replace_log(&records).await;

    let audit = db.verify(&[&written.checkpoint_arg()]);
    let first = audit.expect_first(position(vote), "event_differs");
    assert!(
        first["detail"].as_str().unwrap().contains("$.choice"),
        "{audit}"
    );
    assert_eq!(
        audit.json["first_record"]["record"]["data"]["choice"], "no",
        "{audit}"
    );

    let human = db.verify_human(&[&written.checkpoint_arg()]);
    assert_eq!(human.code, 1, "{human}");
    let p = vote + 1;
    assert!(
        human
            .stdout
            .starts_with(&format!("the audit failed; first difference: record {p}: ")),
        "{human}"
    );
    assert!(
        human.stdout.contains(&format!("record {p} as stored: ")),
        "{human}"
    );
}

async fn a_record_changed_without_its_leaf_hash_is_caught_at_the_record(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let mut tampering = db.tamper().await;
    let records = tampering.records().await;
    let vote = find(&records, 1, "VoteCast", "DE-BY");
    let mut changed = records[vote].clone();
    changed.data["choice"] = json!("no");
    tampering
        .set_record_bytes(vote + 1, &changed.to_bytes())
        .await;

    let audit = db.verify(&[&written.checkpoint_arg()]);
    // The store hands the bytes over as they are; the auditor hashes them.
    let first = audit.expect_first(position(vote), "leaf_hash_mismatch");
    assert_eq!(
        first["computed"],
        hex(&leaf_hash(&changed.to_bytes())),
        "{audit}"
    );
}

async fn a_deleted_and_renumbered_record_is_caught_where_its_stream_skips_a_version(
    db: Arc<TestDb>,
) {
    let written = write_history(&db).await;
    let mut tampering = db.tamper().await;
    let mut records = tampering.records().await;
    let vote = find(&records, 1, "VoteCast", "DE-BE");
    records.remove(vote);
    renumber(&mut records);
    tampering.replace_log(&records).await;

    let audit = db.verify(&[&written.checkpoint_arg()]);
    audit.expect_first(position(vote), "stream_version");
}

async fn two_reordered_records_are_caught_at_the_first(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let mut tampering = db.tamper().await;
    let mut records = tampering.records().await;
    let vote = find(&records, 1, "VoteCast", "DE");
    assert_eq!(records[vote + 1].data["member"], "DE-BE");
    records.swap(vote, vote + 1);
    renumber(&mut records);
    tampering.replace_log(&records).await;

    let audit = db.verify(&[&written.checkpoint_arg()]);
    audit.expect_first(position(vote), "stream_version");
}

async fn a_signature_swapped_between_two_votes_is_caught_at_the_first(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let mut tampering = db.tamper().await;
    let mut records = tampering.records().await;
    let first = find(&records, 1, "VoteCast", "DE");
    let second = find(&records, 1, "VoteCast", "DE-HH");
    let signature =
        |record: &Record| record.envelope.as_ref().unwrap()["signatures"][0]["sig"].clone();
    let (one, other) = (signature(&records[first]), signature(&records[second]));
    records[first].envelope.as_mut().unwrap()["signatures"][0]["sig"] = other;
    records[second].envelope.as_mut().unwrap()["signatures"][0]["sig"] = one;
    tampering.replace_log(&records).await;

    let audit = db.verify(&[&written.checkpoint_arg()]);
    audit.expect_first(position(first), "bad_signature");
    assert!(
        audit.findings().iter().any(|finding| {
            finding["position"] == json!(second + 1) && finding["code"] == "bad_signature"
        }),
        "{audit}"
    );
}

async fn a_changed_outcome_is_caught_at_the_close(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let mut tampering = db.tamper().await;
    let mut records = tampering.records().await;
    let close = find(&records, 1, "CirculationClosed", "");
    assert_eq!(
        records[close].data["decision"],
        json!({"result": "adopted"})
    );
    records[close].data["decision"] = json!({"result": "rejected"});
    tampering.replace_log(&records).await;

    let audit = db.verify(&[&written.checkpoint_arg()]);
    let first = audit.expect_first(position(close), "event_differs");
    assert!(
        first["detail"].as_str().unwrap().contains("decision"),
        "{audit}"
    );
}

async fn a_changed_read_model_row_is_caught_at_the_record_it_reflects(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let mut tampering = db.tamper().await;
    let records = tampering.records().await;
    let close = find(&records, 1, "CirculationClosed", "");
    let id = circulation_id(1).to_string();
    let mut status: Value = serde_json::from_str(&tampering.status(&id).await).unwrap();
    status["decision"] = json!({"result": "rejected"});
    tampering.set_status(&id, &status.to_string()).await;

    let audit = db.verify(&[&written.checkpoint_arg()]);
    let first = audit.expect_first(position(close), "read_model_mismatch");
    assert_eq!(first["model"], "circulation_status", "{audit}");
    assert_eq!(first["key"], id, "{audit}");
    assert!(
        first["detail"]
            .as_str()
            .unwrap()
            .contains("$.decision.result"),
        "{audit}"
    );
    assert_eq!(audit.findings().len(), 1, "{audit}");
}

async fn a_forged_read_model_row_is_caught(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let mut tampering = db.tamper().await;
    // An "adopted" status for a circulation the log never opened.
    let forged = circulation_id(99).to_string();
    let real = circulation_id(1).to_string();
    tampering
        .execute(&format!(
            "CREATE TEMP TABLE forged_row AS \
             SELECT * FROM circulation_status WHERE circulation = '{real}'; \
             UPDATE forged_row SET circulation = '{forged}'; \
             INSERT INTO circulation_status SELECT * FROM forged_row; \
             DROP TABLE forged_row;"
        ))
        .await;

    let audit = db.verify(&[&written.checkpoint_arg()]);
    let first = audit.expect_first(None, "read_model_mismatch");
    assert_eq!(first["key"], forged, "{audit}");
    assert_eq!(audit.findings().len(), 1, "{audit}");
}

async fn a_truncated_log_is_caught_by_an_older_checkpoint(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let mut tampering = db.tamper().await;
    let mut records = tampering.records().await;
    let kept = records.len() - 3;
    records.truncate(kept);
    // A careful forger: the log and its stored checkpoints cut together, the head moved back,
    // the tree and the read models rebuilt from what is left.
    tampering.replace_log(&records).await;
    drop(tampering);
    let store = db.open().await;
    store.rebuild_read_models().await.unwrap();
    assert!(store.latest_checkpoint().await.unwrap().is_some());
    store.close().await;

    // What is left is consistent with every checkpoint the database still holds ...
    let inside = db.verify(&[]);
    assert_eq!(inside.code, 0, "{inside}");
    assert_eq!(inside.json["report"]["records"], kept, "{inside}");

    // ... and the checkpoint held outside it, from before the cut, is what catches it.
    let audit = db.verify(&[&written.checkpoint_arg()]);
    let first = audit.expect_first(position(kept), "log_truncated");
    assert_eq!(first["checkpoint_size"], written.size, "{audit}");
    assert_eq!(audit.codes(), ["log_truncated"], "{audit}");
}

async fn an_exported_bundle_verifies_offline_and_a_truncated_one_does_not(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let bundle = db.directory.path().join("history.bundle");
    let mut export = vec!["audit", "export", "--out", path_str(&bundle)];
    let db_args = db.db_args();
    export.extend(db_args.iter().map(String::as_str));
    let anchors = anchor_args();
    export.extend(anchors.iter().map(String::as_str));
    let checkpoint = written.checkpoint_arg();
    export.push(&checkpoint);
    let exported = umlauf(&export);
    assert_eq!(exported.code, 0, "{exported}");

    // The bundle carries the checkpoint: it verifies on its own, and with the checkpoint again.
    let offline = verify_bundle(&bundle, &[]);
    assert_eq!(offline.code, 0, "{offline}");
    assert_eq!(offline.json["report"]["records"], written.size, "{offline}");
    assert_eq!(verify_bundle(&bundle, &[&checkpoint]).code, 0);

    let text = std::fs::read_to_string(&bundle).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let mut header: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(header["size"], written.size);
    assert!(lines.last().unwrap().starts_with("{\"checkpoint\":"));

    // Cut short as a file: the header and the bundle's own checkpoint give it away.
    let cut = bundle.with_extension("cut");
    std::fs::write(&cut, format!("{}\n", lines[..lines.len() - 3].join("\n"))).unwrap();
    let audit = verify_bundle(&cut, &[]);
    assert!(
        audit
            .findings()
            .iter()
            .any(|finding| finding["code"] == "unreadable_bundle"),
        "{audit}"
    );

    // Cut short with care: records and checkpoint dropped, the header fixed. Only the checkpoint
    // held outside the bundle catches it.
    lines.retain(|line| !line.starts_with("{\"checkpoint\":"));
    let kept = lines.len() - 1 - 3;
    header["size"] = json!(kept);
    let header = header.to_string();
    lines[0] = &header;
    lines.truncate(kept + 1);
    let forged = bundle.with_extension("forged");
    std::fs::write(&forged, format!("{}\n", lines.join("\n"))).unwrap();
    let audit = verify_bundle(&forged, &[&checkpoint]);
    audit.expect_first(position(kept), "log_truncated");
    // What is left is vouched for by no checkpoint either; that is shown after the difference.
    assert_eq!(
        audit.codes(),
        ["log_truncated", "uncovered_records"],
        "{audit}"
    );
}

/// Usage and input errors exit 2, so that 1 always means the history differs.
#[test]
fn an_audit_that_cannot_run_exits_2() {
    let directory = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", directory.path().join("missing.db").display());
    let anchors = anchor_args();
    let anchors: Vec<&str> = anchors.iter().map(String::as_str).collect();

    let mut args = vec!["audit", "verify", "--db", &missing];
    args.extend(&anchors);
    let no_database = umlauf(&args);
    assert_eq!(no_database.code, 2, "{no_database}");
    assert!(no_database.stderr.contains("no database"), "{no_database}");
    assert!(
        !directory.path().join("missing.db").exists(),
        "the audit created the database it was to audit"
    );

    // A database that is not a log is refused, and left as it was: opened read-only, nothing is
    // migrated into it.
    let empty = directory.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let empty_url = format!("sqlite://{}", empty.display());
    let mut args = vec!["audit", "verify", "--db", &empty_url];
    args.extend(&anchors);
    let not_a_log = umlauf(&args);
    assert_eq!(not_a_log.code, 2, "{not_a_log}");
    assert_eq!(std::fs::read(&empty).unwrap(), b"", "{not_a_log}");

    // A bundle cannot be audited together with another source.
    let mut args = vec!["audit", "verify", "--db", &missing, "--bundle", "x.bundle"];
    args.extend(&anchors);
    assert_eq!(umlauf(&args).code, 2);

    let no_anchors = umlauf(&["audit", "verify", "--db", &missing]);
    assert_eq!(no_anchors.code, 2, "{no_anchors}");
    assert!(no_anchors.stderr.contains("trust anchors"), "{no_anchors}");

    let no_source = umlauf(&[&["audit", "verify"][..], &anchors[..]].concat());
    assert_eq!(no_source.code, 2, "{no_source}");

    let missing_bundle = directory.path().join("missing.bundle");
    let mut args = vec!["audit", "verify", "--bundle", path_str(&missing_bundle)];
    args.extend(&anchors);
    let no_bundle = umlauf(&args);
    assert_eq!(no_bundle.code, 2, "{no_bundle}");

    let bad_key = umlauf(&[
        "audit",
        "verify",
        "--bundle",
        path_str(&missing_bundle),
        "--genesis-key",
        "not base64",
        "--log-key",
        &log_verifier().to_string(),
    ]);
    assert_eq!(bad_key.code, 2, "{bad_key}");
}

async fn the_log_stream_is_audited_and_compared_with_the_database(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let (records, notes) = db.log_and_checkpoints().await;
    assert_eq!(records.len() as u64, written.size);

    // A faithful copy: it verifies on its own, and agrees with the database record by record.
    let copy = Streams::publish(&records, &notes).await;
    let alone = copy.verify(&[]);
    assert_eq!(alone.code, 0, "{alone}");
    assert_eq!(alone.json["report"]["records"], written.size, "{alone}");
    assert_eq!(
        alone.json["report"]["newest_checkpoint"], written.size,
        "{alone}"
    );
    let both = copy.verify(&db.db_args().iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(both.code, 0, "{both}");
    copy.delete().await;

    // A copy with one record changed: the comparison names its position.
    // The first yes vote, as position (from 1).
    let changed = 1 + records
        .iter()
        .position(|bytes| String::from_utf8_lossy(bytes).contains("\"choice\":\"yes\""))
        .unwrap();
    let mut other = records.clone();
    let text = String::from_utf8(other[changed - 1].clone()).unwrap();
    assert!(text.contains("\"choice\":\"yes\""), "{text}");
    other[changed - 1] = text
        .replace("\"choice\":\"yes\"", "\"choice\":\"no\"")
        .into_bytes();
    let forged = Streams::publish(&other, &notes).await;
    let both = forged.verify(&db.db_args().iter().map(String::as_str).collect::<Vec<_>>());
    let first = both.expect_first(position(changed - 1), "copies_differ");
    assert!(
        first["detail"].as_str().unwrap().contains("other bytes"),
        "{both}"
    );
    // Alone, the stream's copy fails at the same record.
    forged
        .verify(&[])
        .expect_first(position(changed - 1), "event_differs");
    forged.delete().await;

    // A copy that ends early.
    let short = Streams::publish(&records[..records.len() - 2], &notes[..1]).await;
    let both = short.verify(&db.db_args().iter().map(String::as_str).collect::<Vec<_>>());
    both.expect_first(position(records.len() - 2), "copies_differ");
    short.delete().await;
}

async fn a_watch_raises_the_alarm_on_a_forged_checkpoint(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let (records, notes) = db.log_and_checkpoints().await;
    let streams = Streams::publish(&records, &notes).await;
    let vkey = log_verifier().to_string();

    let once = umlauf(&strs(&streams.watch_args(&vkey, true)));
    assert_eq!(once.code, 0, "{once}");
    assert!(
        once.stdout.contains(&format!(
            "{} checkpoints verified against the published log of {} records",
            notes.len(),
            written.size
        )),
        "{once}"
    );

    // Following the streams, it sees a checkpoint signed with the log key for a root that is not
    // the published log's (a fork), and stops with the alarm.
    let mut command = Process::new(env!("CARGO_BIN_EXE_umlauf"));
    let child = command
        .args(streams.watch_args(&vkey, false))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let fork = checkpoint::sign(
        &Checkpoint {
            origin: LOG.to_owned(),
            size: written.size - 1,
            root: [7; 32],
        },
        LOG,
        &log_key(),
    )
    .unwrap();
    streams.publish_checkpoint(&fork).await;
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("ALARM (two_roots)") || stdout.contains("ALARM (checkpoint_root_mismatch)"),
        "{stdout}"
    );
    assert!(stdout.contains("FORK"), "{stdout}");

    // A checkpoint signed by another key is refused too.
    let other = checkpoint::sign(
        &Checkpoint {
            origin: LOG.to_owned(),
            size: written.size,
            root: [7; 32],
        },
        LOG,
        &signing_key("intruder"),
    )
    .unwrap();
    let forged = Streams::publish(&records, &[notes[0].clone(), other]).await;
    let refused = umlauf(&strs(&forged.watch_args(&vkey, true)));
    assert_eq!(refused.code, 1, "{refused}");
    assert!(
        refused.stdout.contains("ALARM (checkpoint_not_signed)"),
        "{refused}"
    );
    forged.delete().await;
    streams.delete().await;
}

async fn a_receipt_from_the_store_verifies_and_a_tampered_one_does_not(db: Arc<TestDb>) {
    let written = write_history(&db).await;
    let store = db.open().await;
    let notes: Vec<(u64, String)> = store.checkpoints_from(0, 1000).await.unwrap();
    // The receipt of the first vote, against the checkpoint of the batch that wrote it.
    let (size, note) = notes[2].clone();
    let position = size;
    let records: Vec<_> = store
        .read_from(position)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let receipt = umlauf_proof::receipt::Receipt {
        position,
        leaf_hash: leaf_hash(&records[0].bytes),
        checkpoint: note,
        inclusion_proof: store.inclusion_proof(position, size).await.unwrap(),
    };
    let consistency = store.consistency_proof(size, written.size).await.unwrap();
    let newest = store.latest_checkpoint().await.unwrap().unwrap();
    store.close().await;

    let dir = db.directory.path();
    let file = |name: &str, content: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let receipt_file = file("receipt.json", receipt.to_json().as_bytes());
    let record_file = file("record.json", &records[0].bytes);
    let newer_file = file("newer.note", newest.as_bytes());
    let proof: Vec<String> = consistency.iter().map(|hash| hex(hash)).collect();
    let proof_file = file(
        "consistency.json",
        json!({"old_size": size, "new_size": written.size, "proof": proof})
            .to_string()
            .as_bytes(),
    );
    let vkey = log_verifier().to_string();
    let vkey_file = file("log-key.vkey", format!("{vkey}\n").as_bytes());

    let valid = umlauf(&["receipt", "verify", &receipt_file, "--log-key", &vkey]);
    assert_eq!(valid.code, 0, "{valid}");
    assert!(valid.stdout.contains("the receipt holds"), "{valid}");
    let with_newer = umlauf(&[
        "receipt",
        "verify",
        &receipt_file,
        "--log-key",
        &vkey_file,
        "--record",
        &record_file,
        "--newer-checkpoint",
        &newer_file,
        "--consistency-proof",
        &proof_file,
    ]);
    assert_eq!(with_newer.code, 0, "{with_newer}");
    assert!(
        with_newer
            .stdout
            .contains(&format!("checkpoint of size {}", written.size)),
        "{with_newer}"
    );

    // A tampered receipt: another leaf hash.
    let mut tampered = receipt.clone();
    tampered.leaf_hash[0] ^= 1;
    let tampered_file = file("tampered.json", tampered.to_json().as_bytes());
    let invalid = umlauf(&["receipt", "verify", &tampered_file, "--log-key", &vkey]);
    assert_eq!(invalid.code, 1, "{invalid}");
    assert!(invalid.stdout.contains("INVALID"), "{invalid}");
    // The record given is not the receipt's.
    let other_record = file("other.json", b"{}");
    let mismatch = umlauf(&[
        "receipt",
        "verify",
        &receipt_file,
        "--log-key",
        &vkey,
        "--record",
        &other_record,
    ]);
    assert_eq!(mismatch.code, 1, "{mismatch}");
    // A newer checkpoint with a proof that does not lead to it.
    let wrong_proof = file("wrong.json", b"[]");
    let not_newer = umlauf(&[
        "receipt",
        "verify",
        &receipt_file,
        "--log-key",
        &vkey,
        "--newer-checkpoint",
        &newer_file,
        "--consistency-proof",
        &wrong_proof,
    ]);
    assert_eq!(not_newer.code, 1, "{not_newer}");

    // Another log key of the same name.
    let other_key = NoteVerifier::new(LOG, signing_key("intruder").verifying_key())
        .unwrap()
        .to_string();
    let foreign = umlauf(&["receipt", "verify", &receipt_file, "--log-key", &other_key]);
    assert_eq!(foreign.code, 1, "{foreign}");

    // Usage: no receipt named, a receipt that is not there, half of the newer pair.
    assert_eq!(umlauf(&["receipt", "verify"]).code, 2);
    let missing = dir.join("missing.json");
    assert_eq!(
        umlauf(&["receipt", "verify", path_str(&missing), "--log-key", &vkey]).code,
        2
    );
    assert_eq!(
        umlauf(&[
            "receipt",
            "verify",
            &receipt_file,
            "--log-key",
            &vkey,
            "--newer-checkpoint",
            &newer_file
        ])
        .code,
        2
    );
}

/// Against the running service: the receipt in a submit reply verifies later against the newest
/// checkpoint fetched with `--nats`, and the streams the relay fills pass `audit verify --nats`
/// and `audit watch --once`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_services_receipt_and_streams_verify() {
    let directory = tempfile::tempdir().unwrap();
    let unique = unique_schema().replace('_', "");
    let config = umlauf_server::Config {
        database_url: format!("sqlite://{}", directory.path().join("umlauf.db").display()),
        nats_url: nats_url(),
        log_key_file: directory.path().join("log-key.pem"),
        log_origin: LOG.to_owned(),
        genesis_keys: vec![public_key("genesis")],
        subject_root: unique.clone(),
        stream_prefix: unique.to_uppercase(),
        relay_poll_ms: 20,
        ops_address: String::new(),
        ..umlauf_server::Config::default()
    };
    let server = umlauf_server::Server::start(config).await.unwrap();
    let subjects = server.subjects().clone();
    let vkey_file = directory.path().join("log-key.vkey");
    let vkey = std::fs::read_to_string(&vkey_file).unwrap();
    let client = umlauf_nats::client::Client::connect(
        &nats_url(),
        subjects.clone(),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();

    // Two commands, each signed now: the receipt of the first is checked against the newest
    // checkpoint, which the second moved on.
    let scratch = TestDb::new(Backend::Sqlite).await;
    let writer = Writer::new(scratch.open().await);
    let now = |command: Command| {
        let mut value: Value = serde_json::from_str(&command.to_json()).unwrap();
        value["issued_at"] = json!(Utc::now());
        if value.get("deadline").is_some() {
            value["deadline"] = json!(Utc::now() + Duration::days(14));
        }
        Command::from_value(value).unwrap()
    };
    let submit = async |command: Command, signer: &str| {
        client
            .submit(&dsse::sign(
                COMMAND_PAYLOAD_TYPE,
                now(command).to_json().as_bytes(),
                &signing_key(signer),
            ))
            .await
            .unwrap()
    };
    let reply = submit(writer.constitution(), "genesis").await;
    let receipt = reply.reply.receipts.first().unwrap().clone();
    let reply = submit(writer.open(1, "simple-majority"), "secretariat").await;
    let head = reply.records.last().unwrap().position;
    assert!(head > receipt.position);
    let receipt_file = directory.path().join("receipt.json");
    std::fs::write(&receipt_file, receipt.to_json()).unwrap();

    let checked = umlauf(&[
        "receipt",
        "verify",
        path_str(&receipt_file),
        "--log-key",
        path_str(&vkey_file),
        "--nats",
        &nats_url(),
        "--subject-root",
        &unique,
    ]);
    assert_eq!(checked.code, 0, "{checked}");
    assert!(checked.stdout.contains("only grown"), "{checked}");

    // Once the relay has published everything, the streams verify and the watch has no alarm.
    let mut status = server.relay_status();
    status
        .wait_for(|status| status.published >= head)
        .await
        .unwrap();
    let streams = Streams {
        js: async_nats::jetstream::new(client.nats().clone()),
        subjects,
        root: unique.clone(),
        prefix: unique.to_uppercase(),
    };
    // The service's own log key, as it wrote it.
    let stream_args = streams.stream_args();
    let genesis = public_key("genesis");
    let mut args = vec![
        "audit",
        "verify",
        "--json",
        "--genesis-key",
        &genesis,
        "--log-key",
        vkey.trim(),
    ];
    args.extend(stream_args.iter().map(String::as_str));
    let audit = umlauf(&args);
    assert_eq!(audit.code, 0, "{audit}");
    assert!(
        audit.json["report"]["checkpoints_checked"]
            .as_u64()
            .unwrap()
            >= 2,
        "{audit}"
    );
    assert_eq!(audit.json["report"]["records"], head, "{audit}");
    assert_eq!(
        umlauf(&strs(&streams.watch_args(vkey.trim(), true))).code,
        0
    );
    server.shutdown().await;
    streams.delete().await;
    scratch.cleanup().await;
}

// ---- JetStream ---------------------------------------------------------------------------------

/// Where NATS is expected unless `UMLAUF_TEST_NATS_URL` says otherwise.
const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

fn nats_url() -> String {
    std::env::var("UMLAUF_TEST_NATS_URL").unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned())
}

/// A deployment's log and checkpoint streams of their own on the real NATS server, filled as the
/// relay fills them: one message per record in position order, one per checkpoint note.
struct Streams {
    js: async_nats::jetstream::Context,
    subjects: umlauf_nats::Subjects,
    root: String,
    prefix: String,
}

impl Streams {
    async fn publish(records: &[Vec<u8>], notes: &[String]) -> Self {
        let url = nats_url();
        let nats = async_nats::connect(&url).await.unwrap_or_else(|error| {
            panic!(
                "these tests need NATS with JetStream at {url} (set UMLAUF_TEST_NATS_URL): {error}"
            )
        });
        let js = async_nats::jetstream::new(nats);
        let unique = unique_schema();
        let root = unique.replace('_', "");
        let prefix = root.to_uppercase();
        let subjects = umlauf_nats::Subjects::new(&root, &prefix);
        umlauf_nats::streams::ensure_streams(
            &js,
            &subjects,
            &umlauf_nats::streams::StreamSettings::default(),
        )
        .await
        .unwrap();
        for bytes in records {
            let stream = Record::from_bytes(bytes).unwrap().stream;
            js.publish(subjects.log_record(&stream), bytes.clone().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let streams = Self {
            js,
            subjects,
            root,
            prefix,
        };
        for note in notes {
            streams.publish_checkpoint(note).await;
        }
        streams
    }

    async fn publish_checkpoint(&self, note: &str) {
        self.js
            .publish(self.subjects.checkpoints(), note.to_owned().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    fn stream_args(&self) -> Vec<String> {
        vec![
            "--nats".to_owned(),
            nats_url(),
            "--subject-root".to_owned(),
            self.root.clone(),
            "--stream-prefix".to_owned(),
            self.prefix.clone(),
        ]
    }

    /// `umlauf audit verify --json --nats …` with the anchors and `extra`.
    fn verify(&self, extra: &[&str]) -> Run {
        let stream_args = self.stream_args();
        let anchors = anchor_args();
        let mut args = vec!["audit", "verify", "--json"];
        args.extend(stream_args.iter().map(String::as_str));
        args.extend(anchors.iter().map(String::as_str));
        args.extend(extra);
        umlauf(&args)
    }

    fn watch_args(&self, vkey: &str, once: bool) -> Vec<String> {
        let mut args = vec!["audit".to_owned(), "watch".to_owned()];
        args.extend(self.stream_args());
        args.extend(["--log-key".to_owned(), vkey.to_owned()]);
        if once {
            args.push("--once".to_owned());
        }
        args
    }

    async fn delete(&self) {
        for name in [
            self.subjects.log_stream(),
            self.subjects.decisions_stream(),
            self.subjects.checkpoints_stream(),
        ] {
            self.js.delete_stream(name).await.unwrap();
        }
    }
}

// ---- running the binary ------------------------------------------------------------------------

/// What a run of `umlauf` printed and returned.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// Standard output as JSON, `null` if it is not.
    json: Value,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    fn findings(&self) -> Vec<Value> {
        self.json["findings"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The codes of the findings, in the order shown.
    fn codes(&self) -> Vec<String> {
        self.findings()
            .iter()
            .map(|finding| finding["code"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Expects exit code 1 and a first finding of `code` at `position`; returns it.
    fn expect_first(&self, position: Option<u64>, code: &str) -> Value {
        assert_eq!(self.code, 1, "{self}");
        assert_eq!(self.json["result"], "findings", "{self}");
        let first = self.findings().first().cloned().unwrap();
        assert_eq!(
            (first["position"].as_u64(), first["code"].as_str()),
            (position, Some(code)),
            "first finding: {first}\n{self}"
        );
        if let Some(position) = position {
            let shown = &self.json["first_record"];
            assert_eq!(shown["position"], position, "{self}");
        }
        first
    }
}

/// Runs the `umlauf` binary with no `UMLAUF_*` variables inherited from the caller.
fn umlauf(args: &[&str]) -> Run {
    let mut command = Process::new(env!("CARGO_BIN_EXE_umlauf"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("UMLAUF_") {
            command.env_remove(name);
        }
    }
    let output = command
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("running the umlauf binary");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    Run {
        code: output.status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn verify_bundle(bundle: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["audit", "verify", "--json", "--bundle", path_str(bundle)];
    let anchors = anchor_args();
    args.extend(anchors.iter().map(String::as_str));
    args.extend(extra);
    umlauf(&args)
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The trust anchors as flags: the genesis key and the log key, as the auditor knows them.
fn anchor_args() -> Vec<String> {
    vec![
        "--genesis-key".to_owned(),
        public_key("genesis"),
        "--log-key".to_owned(),
        log_verifier().to_string(),
    ]
}

fn log_key() -> SigningKey {
    signing_key("log")
}

fn log_verifier() -> NoteVerifier {
    NoteVerifier::new(LOG, log_key().verifying_key()).unwrap()
}

/// The 1-based position of the record at 0-based `index`.
fn position(index: usize) -> Option<u64> {
    Some(u64::try_from(index).unwrap() + 1)
}

// ---- the databases -----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own for one test (a SQLite file, or a fresh PostgreSQL schema dropped when
/// the test ends), and a directory for its checkpoint and bundle files.
struct TestDb {
    backend: Backend,
    url: String,
    schema: Option<String>,
    directory: tempfile::TempDir,
}

fn postgres_url() -> String {
    std::env::var("UMLAUF_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// A schema name no other test (in this or another process) uses.
fn unique_schema() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!(
        "umlauf_audit_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos.rem_euclid(1_000_000_000)
    )
}

/// Runs one test against a fresh database of `backend`, and removes the database afterwards,
/// also when the test fails.
async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Arc<TestDb>) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = Arc::new(TestDb::new(backend).await);
    let outcome = AssertUnwindSafe(test(Arc::clone(&db))).catch_unwind().await;
    db.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

impl TestDb {
    async fn new(backend: Backend) -> Self {
        let directory = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Self {
                backend,
                url: format!("sqlite://{}", directory.path().join("umlauf.db").display()),
                schema: None,
                directory,
            },
            Backend::Postgres => {
                let url = postgres_url();
                if let Err(error) = sqlx::PgConnection::connect(&url).await {
                    panic!(
                        "these tests need PostgreSQL at {url} (set UMLAUF_TEST_DATABASE_URL to \
                         another URL, or run tests/services): {error}"
                    );
                }
                Self {
                    backend,
                    url,
                    schema: Some(unique_schema()),
                    directory,
                }
            }
        }
    }

    /// The store as the service opens it: signing a checkpoint for every committed batch.
    async fn open(&self) -> Store {
        let mut options = StoreOptions::new(self.url.clone())
            .checkpoints(CheckpointSigner::new(LOG.to_owned(), log_key()));
        options.schema.clone_from(&self.schema);
        Store::open_with(options).await.unwrap()
    }

    /// `--db URL` and, on PostgreSQL, `--db-schema SCHEMA`.
    fn db_args(&self) -> Vec<String> {
        let mut args = vec!["--db".to_owned(), self.url.clone()];
        if let Some(schema) = &self.schema {
            args.extend(["--db-schema".to_owned(), schema.clone()]);
        }
        args
    }

    /// `umlauf audit verify --db … --json` with the anchors and `extra`.
    fn verify(&self, extra: &[&str]) -> Run {
        self.verify_with(true, extra)
    }

    /// The same for people: without `--json`.
    fn verify_human(&self, extra: &[&str]) -> Run {
        self.verify_with(false, extra)
    }

    fn verify_with(&self, json: bool, extra: &[&str]) -> Run {
        let db_args = self.db_args();
        let anchors = anchor_args();
        let mut args = vec!["audit", "verify"];
        if json {
            args.push("--json");
        }
        args.extend(db_args.iter().map(String::as_str));
        args.extend(anchors.iter().map(String::as_str));
        args.extend(extra);
        umlauf(&args)
    }

    /// Every record's bytes and every stored checkpoint note, in order.
    async fn log_and_checkpoints(&self) -> (Vec<Vec<u8>>, Vec<String>) {
        let store = self.open().await;
        let records: Vec<_> = store.read_from(1).try_collect().await.unwrap();
        let notes = store.checkpoints_from(0, 1000).await.unwrap();
        store.close().await;
        (
            records.into_iter().map(|record| record.bytes).collect(),
            notes.into_iter().map(|(_, note)| note).collect(),
        )
    }

    /// A connection of its own that can change history: the append-only triggers dropped
    /// (SQLite) or not firing for this session (PostgreSQL, as a superuser).
    async fn tamper(&self) -> Tampering {
        match self.backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url).unwrap();
                let mut connection = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                sqlx::raw_sql(
                    "DROP TRIGGER log_records_refuse_update; \
                     DROP TRIGGER log_records_refuse_delete; \
                     DROP TRIGGER merkle_subtrees_refuse_delete; \
                     DROP TRIGGER checkpoints_refuse_delete;",
                )
                .execute(&mut connection)
                .await
                .unwrap();
                Tampering::Sqlite(connection)
            }
            Backend::Postgres => {
                let mut options = sqlx::postgres::PgConnectOptions::from_str(&self.url).unwrap();
                if let Some(schema) = &self.schema {
                    options = options.options([("search_path", schema.as_str())]);
                }
                let mut connection = sqlx::PgConnection::connect_with(&options).await.unwrap();
                sqlx::raw_sql("SET session_replication_role = replica")
                    .execute(&mut connection)
                    .await
                    .unwrap();
                Tampering::Postgres(connection)
            }
        }
    }

    /// Drops the test's schema (PostgreSQL); the SQLite file goes with its directory.
    async fn cleanup(&self) {
        if let (Backend::Postgres, Some(schema)) = (self.backend, &self.schema) {
            let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut connection)
            .await
            .unwrap();
        }
    }
}

/// A raw connection beside the store, for what the store would never do.
enum Tampering {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Tampering {
    async fn execute(&mut self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Self::Sqlite(connection) => sqlx::raw_sql(sql)
                .execute(connection)
                .await
                .unwrap()
                .rows_affected(),
            Self::Postgres(connection) => sqlx::raw_sql(sql)
                .execute(connection)
                .await
                .unwrap()
                .rows_affected(),
        };
    }

    /// Every record of the log, in position order.
    async fn records(&mut self) -> Vec<Record> {
        let sql = "SELECT record FROM log_records ORDER BY position";
        let rows: Vec<Vec<u8>> = match self {
            Self::Sqlite(connection) => sqlx::query_scalar(sql).fetch_all(connection).await,
            Self::Postgres(connection) => sqlx::query_scalar(sql).fetch_all(connection).await,
        }
        .unwrap();
        rows.iter()
            .map(|bytes| Record::from_bytes(bytes).unwrap())
            .collect()
    }

    /// Replaces the whole log with `records`, every column, the bytes and the leaf hash
    /// consistent with each record, and moves the head to the last one: a careful forgery. The
    /// stored Merkle tree goes too (the store rebuilds it from the log when it next opens for
    /// writing), and so do the stored checkpoints beyond the new log's end.
    async fn replace_log(&mut self, records: &[Record]) {
        self.execute("DELETE FROM log_records").await;
        self.execute("DELETE FROM merkle_subtrees").await;
        self.execute(&format!(
            "DELETE FROM checkpoints WHERE size > {}",
            records.len()
        ))
        .await;
        for record in records {
            let bytes = record.to_bytes();
            let position = i64::try_from(record.position).unwrap();
            let version = i64::try_from(record.version).unwrap();
            let command_id = record.command_id.map(|id| id.to_string());
            let hash = leaf_hash(&bytes).to_vec();
            match self {
                Self::Sqlite(connection) => sqlx::query(
                    "INSERT INTO log_records \
                     (position, stream, version, event_type, command_id, record, leaf_hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .bind(position)
                .bind(record.stream.to_string())
                .bind(version)
                .bind(&record.event_type)
                .bind(command_id)
                .bind(bytes)
                .bind(hash)
                .execute(connection)
                .await
                .unwrap()
                .rows_affected(),
                Self::Postgres(connection) => sqlx::query(
                    "INSERT INTO log_records \
                     (position, stream, version, event_type, command_id, record, leaf_hash) \
                     VALUES ($1, $2, $3, $4, $5::uuid, $6, $7)",
                )
                .bind(position)
                .bind(record.stream.to_string())
                .bind(version)
                .bind(&record.event_type)
                .bind(command_id)
                .bind(bytes)
                .bind(hash)
                .execute(connection)
                .await
                .unwrap()
                .rows_affected(),
            };
        }
        let last = records.last().unwrap();
        let position = i64::try_from(last.position).unwrap();
        let recorded_at = last.recorded_at.to_rfc3339_opts(SecondsFormat::Nanos, true);
        match self {
            Self::Sqlite(connection) => {
                sqlx::query("UPDATE log_head SET position = ?1, recorded_at = ?2")
                    .bind(position)
                    .bind(recorded_at)
                    .execute(connection)
                    .await
                    .unwrap()
                    .rows_affected()
            }
            Self::Postgres(connection) => {
                sqlx::query("UPDATE log_head SET position = $1, recorded_at = $2")
                    .bind(position)
                    .bind(recorded_at)
                    .execute(connection)
                    .await
                    .unwrap()
                    .rows_affected()
            }
        };
    }

    /// Overwrites one record's bytes and nothing else: a careless forgery.
    async fn set_record_bytes(&mut self, position: usize, bytes: &[u8]) {
        let position = i64::try_from(position).unwrap();
        match self {
            Self::Sqlite(connection) => {
                sqlx::query("UPDATE log_records SET record = ?1 WHERE position = ?2")
                    .bind(bytes)
                    .bind(position)
                    .execute(connection)
                    .await
                    .unwrap()
                    .rows_affected()
            }
            Self::Postgres(connection) => {
                sqlx::query("UPDATE log_records SET record = $1 WHERE position = $2")
                    .bind(bytes)
                    .bind(position)
                    .execute(connection)
                    .await
                    .unwrap()
                    .rows_affected()
            }
        };
    }

    /// A circulation's stored status JSON.
    async fn status(&mut self, circulation: &str) -> String {
        match self {
            Self::Sqlite(connection) => {
                sqlx::query_scalar("SELECT status FROM circulation_status WHERE circulation = ?1")
                    .bind(circulation)
                    .fetch_one(connection)
                    .await
            }
            Self::Postgres(connection) => {
                sqlx::query_scalar(
                    "SELECT status FROM circulation_status WHERE circulation = $1::uuid",
                )
                .bind(circulation)
                .fetch_one(connection)
                .await
            }
        }
        .unwrap()
    }

    /// Overwrites a circulation's stored status JSON (read models have no triggers).
    async fn set_status(&mut self, circulation: &str, status: &str) {
        match self {
            Self::Sqlite(connection) => {
                sqlx::query("UPDATE circulation_status SET status = ?1 WHERE circulation = ?2")
                    .bind(status)
                    .bind(circulation)
                    .execute(connection)
                    .await
                    .unwrap()
                    .rows_affected()
            }
            Self::Postgres(connection) => sqlx::query(
                "UPDATE circulation_status SET status = $1 WHERE circulation = $2::uuid",
            )
            .bind(status)
            .bind(circulation)
            .execute(connection)
            .await
            .unwrap()
            .rows_affected(),
        };
    }
}

/// Rewrites every position so the log is gapless again, as a careful forger would.
fn renumber(records: &mut [Record]) {
    for (position, record) in (1_u64..).zip(records.iter_mut()) {
        record.position = position;
    }
}

/// The index of circulation `n`'s record of `event_type` by `member` (any member if empty).
fn find(records: &[Record], n: u64, event_type: &str, member: &str) -> usize {
    let stream = StreamId::Circulation(circulation_id(n));
    records
        .iter()
        .position(|record| {
            record.stream == stream
                && record.event_type == event_type
                && (member.is_empty() || record.data["member"] == member)
        })
        .unwrap_or_else(|| panic!("no {event_type} by {member:?} in circulation {n}"))
}

// ---- the history -------------------------------------------------------------------------------

/// What `write_history` wrote.
struct Written {
    /// The log's size.
    size: u64,
    /// A checkpoint of the whole log, signed with the log key, in a file: what a receipt or a
    /// witness holds outside the database.
    checkpoint: PathBuf,
}

impl Written {
    fn checkpoint_arg(&self) -> String {
        format!("--checkpoint={}", self.checkpoint.display())
    }
}

/// Appends a history through the store, as the service would:
/// - the body `test-rat` with five members and their keys;
/// - circulation 1 (simple majority): DE yes, DE-BE no, DE-BY yes, DE-HH yes, adopted with the
///   third yes;
/// - circulation 2 (unanimity): DE yes, DE-BE yes, still open.
///
/// and signs a checkpoint of the whole log.
async fn write_history(db: &TestDb) -> Written {
    let store = db.open().await;
    let writer = Writer::new(store.clone());
    writer.submit(&writer.constitution()).await;
    writer.submit(&writer.open(1, "simple-majority")).await;
    for (member, choice) in [("DE", "yes"), ("DE-BE", "no"), ("DE-BY", "yes")] {
        writer.submit(&writer.vote(1, member, choice)).await;
    }
    let deciding = writer.submit(&writer.vote(1, "DE-HH", "yes")).await;
    assert_eq!(
        deciding.records.last().unwrap().record.event_type,
        "CirculationClosed"
    );
    writer.submit(&writer.open(2, "unanimity")).await;
    for member in ["DE", "DE-BE"] {
        writer.submit(&writer.vote(2, member, "yes")).await;
    }

    let records: Vec<_> = store.read_from(1).try_collect().await.unwrap();
    store.close().await;
    let tree = MemoryTree::from_records(records.iter().map(|record| record.bytes.as_slice()));
    let size = tree.size();
    let note = checkpoint::sign(
        &Checkpoint {
            origin: LOG.to_owned(),
            size,
            root: tree.root(),
        },
        LOG,
        &log_key(),
    )
    .unwrap();
    let path = db.directory.path().join(format!("checkpoint-{size}.note"));
    std::fs::write(&path, note).unwrap();
    Written {
        size,
        checkpoint: path,
    }
}

fn start() -> DateTime<Utc> {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The signing key of an actor, made from a seed derived from its name.
fn signing_key(actor: &str) -> SigningKey {
    signing_key_from_seed(Sha256::digest(format!("umlauf-cli audit test key {actor}")).into())
}

/// An actor's public key in base64.
fn public_key(actor: &str) -> String {
    PublicKey(signing_key(actor).verifying_key().to_bytes()).to_string()
}

fn circulation_id(n: u64) -> CirculationId {
    CirculationId(uuid::Uuid::from_u128(
        0x5f0c_3a86_1b7e_4d59_8a3e_0000_0000_0000 | u128::from(n),
    ))
}

/// Decides signed commands against the state in the store and appends their events, one
/// second apart.
struct Writer {
    store: Store,
    clock: AtomicU64,
    next_id: AtomicU64,
}

impl Writer {
    fn new(store: Store) -> Self {
        Self {
            store,
            clock: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        }
    }

    fn command(&self, kind: &str, actor: &str, fields: Value) -> Command {
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        let mut value = json!({
            "type": kind,
            "command_id": uuid::Uuid::from_u128(0x0b8f_2f2e_6a8b_4c1e_9a51_0000_0000_0000 | u128::from(n)),
            "body": BODY,
            "actor": actor,
            "issued_at": start(),
        });
        let Value::Object(fields) = fields else {
            panic!("a command's own fields are an object");
        };
        for (name, field) in fields {
            value[name.as_str()] = field;
        }
        Command::from_value(value).unwrap()
    }

    fn constitution(&self) -> Command {
        let members: Vec<Value> = MEMBERS
            .iter()
            .map(|member| json!({"id": member, "name": member, "kind": "voting"}))
            .collect();
        let weights: serde_json::Map<String, Value> = MEMBERS
            .iter()
            .map(|member| ((*member).to_owned(), json!(1)))
            .collect();
        let mut keys =
            vec![json!({"holder": "secretariat", "public_key": public_key("secretariat")})];
        keys.extend(MEMBERS.iter().map(
            |member| json!({"holder": member, "public_key": public_key(member), "label": "CIO"}),
        ));
        self.command(
            "ConstituteBody",
            "genesis",
            json!({
                "genesis_key": public_key("genesis"),
                "name": "Testrat",
                "groups": [],
                "members": members,
                "weight_tables": [{"table": "seats", "year": 2026, "weights": weights}],
                "presets": {},
                "keys": keys,
            }),
        )
    }

    fn open(&self, n: u64, preset: &str) -> Command {
        self.command(
            "OpenCirculation",
            "secretariat",
            json!({
                "circulation": circulation_id(n),
                "title": format!("Beschluss {n}"),
                "proposal": {"text": PROPOSAL, "sha256": hex(&Sha256::digest(PROPOSAL))},
                "rule": {"kind": "preset", "preset": preset},
                "deadline": start() + Duration::days(14),
            }),
        )
    }

    fn vote(&self, n: u64, member: &str, choice: &str) -> Command {
        self.command(
            "CastVote",
            member,
            json!({
                "circulation": circulation_id(n),
                "choice": choice,
                "proposal_sha256": hex(&Sha256::digest(PROPOSAL)),
            }),
        )
    }

    /// The signed envelope of a command, as the store keeps it.
    fn cause(command: &Command) -> Cause {
        let signer = match &command.actor {
            Actor::Genesis => signing_key("genesis"),
            Actor::Secretariat => signing_key("secretariat"),
            Actor::Member(member) => signing_key(member.as_str()),
        };
        let envelope = dsse::sign(COMMAND_PAYLOAD_TYPE, command.to_json().as_bytes(), &signer);
        Cause {
            command_id: command.command_id,
            envelope: serde_json::from_str(&envelope.to_json()).unwrap(),
            digest: envelope.content_digest(),
        }
    }

    async fn events(&self, stream: &StreamId) -> Vec<Event> {
        self.store
            .read_stream(stream)
            .await
            .unwrap()
            .iter()
            .map(|record| record.event().unwrap())
            .collect()
    }

    /// Decides a command at the next second and appends its events with their read models.
    async fn submit(&self, command: &Command) -> Appended {
        let seconds = self.clock.fetch_add(1, Ordering::SeqCst);
        let now = start() + Duration::seconds(i64::try_from(seconds).unwrap());
        let body = Body::fold(&self.events(&StreamId::Body(command.body.clone())).await);
        let stream = command.stream();
        let circulation = match &stream {
            StreamId::Circulation(_) => Some(Circulation::fold(&self.events(&stream).await)),
            StreamId::Body(_) => None,
        };
        let state = State {
            body: &body,
            circulation: circulation.as_ref(),
        };
        let events = decide(state, command, now)
            .unwrap_or_else(|error| panic!("{} refused: {error}", command.type_name()));
        let (expected_version, projection) = match circulation {
            Some(circulation) => (
                circulation.version,
                Projection::of_circulation(&events.iter().fold(circulation, circulation::evolve)),
            ),
            None => (
                body.version,
                Projection::of_body(&events.iter().fold(body, body::evolve)),
            ),
        };
        self.store
            .append(Append {
                stream,
                expected_version,
                events,
                depends_on: Vec::new(),
                expected_head: None,
                recorded_at: now,
                cause: Some(Self::cause(command)),
                projection,
            })
            .await
            .unwrap()
    }
}
