//! How fast the auditor verifies a long history, and whether its memory stays flat.
//!
//! Generates a realistic history (the IT-Planungsrat; circulations of 17 votes closed by the last
//! vote, every seventh with five members silent and closed at the deadline; a checkpoint every
//! 1,000 records) into a bundle in a temporary directory, then verifies the bundle and reports
//! records per second and peak RSS (VmHWM, reset before verifying) at 100,000 records and at the
//! end, beside the raw Ed25519 batch-verification rate over all cores, measured right before and
//! right after verifying (the machine may be shared: the two show how much the rate moved). It
//! also reports the CPU time the verification took, as records per CPU-second beside the raw
//! batch rate per CPU-second, a ratio that other load on the machine disturbs less.
//!
//! `UMLAUF_BENCH_RECORDS` sets the history's length (default 1,000,000).
//! Run with `cargo bench -p umlauf-audit --bench verify`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/audit/history.rs"]
mod history;
#[path = "common/raw_rate.rs"]
mod raw_rate;

use std::fs::File;
use std::io::{BufReader, BufWriter, Read as _, Write as _};
use std::time::Instant;

use ed25519_dalek::Signature;
use raw_rate::{cpu_seconds, rate, raw_batch_rate, raw_batch_rate_per_cpu_second};
use umlauf_audit::bundle::{BundleLine, BundleReader, BundleWriter};
use umlauf_audit::{AuditOptions, Auditor};
use umlauf_proof::batch::{self, Triple};

const CHECKPOINT_EVERY: u64 = 1_000;
const SAMPLE_AT: u64 = 100_000;

fn main() {
    let target: u64 = std::env::var("UMLAUF_BENCH_RECORDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("history.bundle");

    let started = Instant::now();
    let size = generate(&path, target);
    println!(
        "generated {size} records in {:.1} s ({} MB bundle)",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&path).unwrap().len() / 1_000_000
    );

    let raw = raw_batch_rate(threads);
    let ours = umlauf_batch_rate(threads);
    println!(
        "Ed25519 over {threads} cores: ed25519-dalek verify_batch {raw:.0}/s (raw), umlauf_proof::batch {ours:.0}/s, verify_strict {:.0}/s",
        strict_rate(threads)
    );

    reset_peak_rss();
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let mut reader = BundleReader::new(BufReader::with_capacity(
        1 << 20,
        File::open(&path).unwrap(),
    ))
    .unwrap();
    let mut auditor = Auditor::new(history::anchors(), AuditOptions::default());
    let mut records = 0_u64;
    let mut sampled = false;
    while let Some(line) = reader.next_line().unwrap() {
        match line {
            BundleLine::Record(bytes) => {
                records += 1;
                auditor.push(bytes).unwrap();
            }
            BundleLine::Checkpoint(note) => {
                auditor.add_checkpoint(&note).unwrap();
            }
        }
        if records == SAMPLE_AT && !sampled {
            sampled = true;
            auditor.flush();
            report("at 100,000", records, started, raw);
        }
    }
    let outcome = auditor.finish();
    report("at the end", records, started, raw);
    let verified_in = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_started;
    let raw_after = raw_batch_rate(threads);
    let raw_per_cpu = raw_batch_rate_per_cpu_second();
    println!(
        "raw batch rate after verifying: {raw_after:.0}/s ({:.2} × that rate)",
        records as f64 / verified_in / raw_after
    );
    println!(
        "CPU time {cpu:.1} s: {:.0} records per CPU-second; raw batch {raw_per_cpu:.0} signatures per CPU-second ({:.2} × per CPU-second)",
        records as f64 / cpu,
        records as f64 / cpu / raw_per_cpu
    );
    match outcome {
        Ok(report) => println!("{report}"),
        Err(failure) => panic!("the generated history does not verify: {failure}"),
    }
}

fn report(label: &str, records: u64, started: Instant, raw: f64) {
    let rate = records as f64 / started.elapsed().as_secs_f64();
    println!(
        "verified {records} records {label}: {rate:.0} records/s ({:.2} × the raw batch rate), peak RSS {} kB",
        rate / raw,
        peak_rss_kb()
    );
}

/// Writes a bundle of at least `target` records (whole commands) and returns its size.
fn generate(path: &std::path::Path, target: u64) -> u64 {
    // The header names the size, known only at the end: write the body first, then prepend.
    let body_path = path.with_extension("body");
    let mut body = BufWriter::with_capacity(1 << 20, File::create(&body_path).unwrap());
    let mut history = history::History::new();
    let mut next_checkpoint = CHECKPOINT_EVERY;
    history::grow_mixed(&mut history, target, |history, records| {
        for record in records {
            body.write_all(&record).unwrap();
            body.write_all(b"\n").unwrap();
        }
        let size = history.size();
        if size >= next_checkpoint {
            let line = serde_json::json!({"checkpoint": history.checkpoint()});
            body.write_all(line.to_string().as_bytes()).unwrap();
            body.write_all(b"\n").unwrap();
            next_checkpoint = size + CHECKPOINT_EVERY;
        }
    });
    let size = history.size();
    // The final checkpoint covers everything.
    let line = serde_json::json!({"checkpoint": history.checkpoint()});
    body.write_all(line.to_string().as_bytes()).unwrap();
    body.write_all(b"\n").unwrap();
    body.flush().unwrap();
    drop(body);

    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let writer = BundleWriter::new(&mut out, &history::anchors(), size, Vec::new()).unwrap();
    // The body lines are complete records and checkpoints already.
    drop(writer);
    let mut body = File::open(&body_path).unwrap();
    let mut buffer = vec![0_u8; 1 << 20];
    loop {
        let read = body.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        out.write_all(&buffer[..read]).unwrap();
    }
    out.flush().unwrap();
    std::fs::remove_file(&body_path).unwrap();
    size
}

fn umlauf_batch_rate(threads: usize) -> f64 {
    rate(threads, |keys, messages, signatures| {
        let bytes: Vec<[u8; 64]> = signatures.iter().map(Signature::to_bytes).collect();
        let triples: Vec<Triple<'_>> = keys
            .iter()
            .zip(messages)
            .zip(&bytes)
            .map(|((key, message), signature)| Triple {
                key,
                message,
                signature,
            })
            .collect();
        assert!(batch::verify(&triples).iter().all(|verdict| *verdict));
    })
}

fn strict_rate(threads: usize) -> f64 {
    rate(threads, |keys, messages, signatures| {
        for ((key, message), signature) in keys.iter().zip(messages).zip(signatures).take(1024) {
            key.verify_strict(message, signature).unwrap();
        }
    }) / 4.0
}

/// Resets VmHWM to the current RSS (Linux: write 5 to clear_refs).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
