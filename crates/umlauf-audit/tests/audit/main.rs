//! Tests of the auditor, compiled into one test binary: a good history passes, and every kind of
//! tampering is caught at the first record where it shows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The history generator shared with the benchmark.
mod history;

/// A good history, the report and the read models.
mod good;

/// Tampering with records, signatures, keys, outcomes and checkpoints.
mod tampering;

/// Bundles: writing, streaming, and verifying with the auditor's own anchors.
mod bundles;

/// Watching checkpoints against the published log.
mod watching;

use std::collections::BTreeMap;

use umlauf_audit::{AuditFailure, AuditOptions, Auditor, Output, Report};

/// Audits `records` with `checkpoints` given first, in small chunks so the chunk boundaries are
/// exercised too.
pub(crate) fn audit(
    records: &[Vec<u8>],
    checkpoints: &BTreeMap<u64, String>,
) -> (Result<Report, AuditFailure>, Vec<Output>) {
    let options = AuditOptions {
        chunk_size: 7,
        ..AuditOptions::default()
    };
    let mut auditor = Auditor::new(history::anchors(), options);
    let mut outputs = Vec::new();
    // Checkpoints known before the stream starts: each is checked when the log reaches it.
    for note in checkpoints.values() {
        outputs.extend(auditor.add_checkpoint(note).unwrap());
    }
    for record in records {
        outputs.extend(auditor.push(record).unwrap());
    }
    outputs.extend(auditor.end_of_log());
    (auditor.finish(), outputs)
}

/// Audits and expects a failure whose first finding is `code` at `position`.
pub(crate) fn expect_first(
    records: &[Vec<u8>],
    checkpoints: &BTreeMap<u64, String>,
    position: Option<u64>,
    code: &str,
) -> AuditFailure {
    let failure = audit(records, checkpoints).0.unwrap_err();
    let first = failure.first().unwrap();
    assert_eq!(
        (first.position, first.code()),
        (position, code),
        "first finding: {first}\n{failure}"
    );
    failure
}
