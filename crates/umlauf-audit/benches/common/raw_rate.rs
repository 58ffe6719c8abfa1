//! The machine's own Ed25519 limit, measured beside the auditor's figures: raw `ed25519-dalek`
//! batch verification of vote-sized messages over a few keys. Shared by the audit benches.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use ed25519_dalek::{Signature, Signer as _};
use umlauf_proof::VerifyingKey;
use umlauf_proof::keys::signing_key_from_seed;

/// The process's user and system CPU time so far, in seconds (Linux, clock ticks of 1/100 s).
pub(crate) fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| -> f64 {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0) as f64
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    (ticks(11) + ticks(12)) / 100.0
}

/// Valid triples over a few keys with vote-sized messages.
pub(crate) fn triples() -> (Vec<VerifyingKey>, Vec<Vec<u8>>, Vec<Signature>) {
    let keys: Vec<_> = (0..17_u8)
        .map(|seed| signing_key_from_seed([seed + 1; 32]))
        .collect();
    let messages: Vec<Vec<u8>> = (0..4096)
        .map(|index| format!("DSSEv1 38 application/vnd.umlauf.command.v1+json 330 {{\"type\":\"CastVote\",\"n\":{index},{}}}", "x".repeat(300)).into_bytes())
        .collect();
    let signatures = messages
        .iter()
        .enumerate()
        .map(|(index, message)| keys[index % 17].sign(message))
        .collect();
    let public = (0..4096)
        .map(|index| keys[index % 17].verifying_key())
        .collect();
    (public, messages, signatures)
}

/// Raw batch verification of the whole set, 1,024 signatures per batch.
pub(crate) fn verify_raw(keys: &[VerifyingKey], messages: &[Vec<u8>], signatures: &[Signature]) {
    for ((keys, messages), signatures) in keys
        .chunks(1024)
        .zip(messages.chunks(1024))
        .zip(signatures.chunks(1024))
    {
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        ed25519_dalek::verify_batch(&messages, signatures, keys).unwrap();
    }
}

/// Signatures per second over `threads` threads, each running `verify` on the whole set.
pub(crate) fn rate(
    threads: usize,
    verify: impl Fn(&[VerifyingKey], &[Vec<u8>], &[Signature]) + Sync,
) -> f64 {
    let (keys, messages, signatures) = triples();
    let rounds = 3;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..rounds {
                    verify(&keys, &messages, &signatures);
                }
            });
        }
    });
    (threads * rounds * messages.len()) as f64 / started.elapsed().as_secs_f64()
}

/// Raw batch verification, signatures per second over `threads` threads.
pub(crate) fn raw_batch_rate(threads: usize) -> f64 {
    rate(threads, verify_raw)
}

/// Raw batch verification on one thread, per CPU-second it took.
pub(crate) fn raw_batch_rate_per_cpu_second() -> f64 {
    let (keys, messages, signatures) = triples();
    let started = cpu_seconds();
    let mut verified = 0_usize;
    while cpu_seconds() - started < 2.0 {
        verify_raw(&keys, &messages, &signatures);
        verified += messages.len();
    }
    verified as f64 / (cpu_seconds() - started)
}
