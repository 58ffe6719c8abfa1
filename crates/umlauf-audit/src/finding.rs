//! What an audit finds and reports: typed findings naming the record where a difference shows,
//! the read models to compare, and the summary of everything checked.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use umlauf_domain::ids::BodyId;
use umlauf_domain::read_model::{CirculationStatus, KeyStatus};

/// A difference between the history and what it must be.
///
/// `position` names the first record where the difference shows; `None` for findings about no
/// record in particular (a checkpoint that is not the log's, a bundle's own anchors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The log position of the record, from 1.
    pub position: Option<u64>,
    /// What differs.
    #[serde(flatten)]
    pub kind: FindingKind,
}

impl Finding {
    /// The stable code of the finding's kind.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(position) => write!(f, "record {position}: {}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

/// What differs; one variant per check. `detail` fields are for people, the variant is for code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum FindingKind {
    /// The bytes are not a log record (not JSON, unknown or missing fields, bad values).
    #[error("not a log record: {detail}")]
    MalformedRecord {
        /// The parser's complaint.
        detail: String,
    },
    /// The bytes are a record but not as the service serialises one (compact JSON, fields in
    /// declaration order): someone wrote them by other means.
    #[error("the record's bytes are not its canonical serialisation")]
    NonCanonicalRecord,
    /// The record names another position than its place in the log.
    #[error("the record says position {found}, its place in the log is {expected}")]
    PositionMismatch {
        /// Its place in the log.
        expected: u64,
        /// What it says.
        found: u64,
    },
    /// The leaf hash stored beside the record is not the hash of its bytes.
    #[error("stored leaf hash {stored} differs from the hash of the bytes, {computed}")]
    LeafHashMismatch {
        /// As stored, hex.
        stored: String,
        /// As computed, hex.
        computed: String,
    },
    /// The recording time went backwards.
    #[error("recorded at {recorded_at}, before the previous record's {previous}")]
    TimeWentBackwards {
        /// The previous record's time.
        previous: String,
        /// This record's time.
        recorded_at: String,
    },
    /// The stream version is not the next one of its stream.
    #[error("{stream} version {found}, expected {expected}")]
    StreamVersion {
        /// The stream.
        stream: String,
        /// The next version.
        expected: u64,
        /// What the record says.
        found: u64,
    },
    /// A record in a circulation's stream after it closed.
    #[error("{stream} has closed, yet this record follows")]
    AfterClose {
        /// The stream.
        stream: String,
    },
    /// The envelope cannot be read, or is not a command envelope with one signature.
    #[error("bad envelope: {detail}")]
    MalformedEnvelope {
        /// What is wrong.
        detail: String,
    },
    /// No key with the envelope's key id was a genesis key or a registered, known key of the body
    /// when the record was recorded.
    #[error("key {keyid} was not registered when this record was recorded")]
    UnknownKey {
        /// The envelope's key id.
        keyid: String,
    },
    /// The signature does not verify (strictly) with the key of that key id.
    #[error("the signature by key {keyid} does not verify")]
    BadSignature {
        /// The envelope's key id.
        keyid: String,
    },
    /// The payload is not a valid command.
    #[error("the payload is not a valid command: {detail}")]
    MalformedCommand {
        /// The parser's complaint.
        detail: String,
    },
    /// The record and its command name different things (command id, stream).
    #[error("the record does not match its command: {detail}")]
    CommandMismatch {
        /// What differs.
        detail: String,
    },
    /// A command id that this stream has already recorded.
    #[error("command {command_id} was already recorded in this stream")]
    DuplicateCommand {
        /// The command id.
        command_id: String,
    },
    /// The command was issued too far from its recording time.
    #[error("issued at {issued_at}, recorded at {recorded_at}: further apart than allowed")]
    ClockSkew {
        /// The signer's time.
        issued_at: String,
        /// The recording time.
        recorded_at: String,
    },
    /// The signing key may not speak for the command's actor at the recording time.
    #[error("not authorised: {detail} ({error_code})")]
    Unauthorized {
        /// The domain's error code.
        error_code: String,
        /// The domain's message.
        detail: String,
    },
    /// The domain refuses the command against the state at its recording time.
    #[error("the command would have been refused: {detail} ({error_code})")]
    CommandRefused {
        /// The domain's error code.
        error_code: String,
        /// The domain's message.
        detail: String,
    },
    /// The recorded event is not the one the command produces.
    #[error("recorded {found_type}, the command produces {expected_type}: {detail}")]
    EventDiffers {
        /// The event deciding the command produces.
        expected_type: String,
        /// The recorded event.
        found_type: String,
        /// The fields that differ.
        detail: String,
    },
    /// The command produces more events than were recorded for it.
    #[error("command {command_id} produces {missing} more event(s), starting with {next_type}")]
    MissingEvents {
        /// The command.
        command_id: String,
        /// How many are missing.
        missing: usize,
        /// The first missing event's type.
        next_type: String,
    },
    /// A record that continues no command: it carries a command id without that command's
    /// envelope before it, or no command id and is not a close at the deadline.
    #[error("a record no command or deadline accounts for: {detail}")]
    UnaccountedRecord {
        /// What the record is.
        detail: String,
    },
    /// A close at the deadline that the rule engine does not produce now.
    #[error("a close at the deadline that would not have happened: {detail}")]
    DeadlineCloseRefused {
        /// The domain's message.
        detail: String,
    },
    /// The record's event cannot be read.
    #[error("unreadable event: {detail}")]
    InvalidEvent {
        /// The reader's complaint.
        detail: String,
    },
    /// A checkpoint that is not signed by the log key (or malformed, or of another log).
    #[error("checkpoint (claimed size {claimed_size:?}) is not the log's: {detail}")]
    CheckpointNotSigned {
        /// The size it claims, if readable.
        claimed_size: Option<u64>,
        /// Why it is refused.
        detail: String,
    },
    /// The log's root at a checkpoint's size is not the checkpoint's root: the log was changed
    /// at or before this position, or the checkpoint belongs to a fork.
    #[error(
        "the first {size} records hash to {log_root}, the signed checkpoint says {checkpoint_root}"
    )]
    CheckpointRootMismatch {
        /// The checkpoint's size.
        size: u64,
        /// The root it signs, hex.
        checkpoint_root: String,
        /// The log's root at that size, hex.
        log_root: String,
    },
    /// A signed checkpoint covers more records than the log holds: the log was truncated.
    #[error("a signed checkpoint covers {checkpoint_size} records, the log ends after {log_size}")]
    LogTruncated {
        /// The checkpoint's size.
        checkpoint_size: u64,
        /// The log's size.
        log_size: u64,
    },
    /// Records after the newest verified checkpoint: no signed checkpoint vouches for them.
    #[error("records {first} to {last} are covered by no signed checkpoint")]
    UncoveredRecords {
        /// The first uncovered position.
        first: u64,
        /// The last.
        last: u64,
    },
    /// A stored read model differs from the fresh rebuild (reported by the caller).
    #[error("stored {model} {key} differs from the rebuild: {detail}")]
    ReadModelMismatch {
        /// Which read model, e.g. `circulation_status` or `key_status`.
        model: String,
        /// Which row: a circulation id, a key id.
        key: String,
        /// What differs.
        detail: String,
    },
    /// Two copies of the log (the database and the JetStream log stream) differ at this
    /// position: one holds other bytes, or ends before it.
    #[error("the copies of the log differ: {detail}")]
    CopiesDiffer {
        /// How they differ.
        detail: String,
    },
    /// A bundle's header names other trust anchors than the auditor's (informational: the
    /// auditor's own are used).
    #[error("the bundle names other trust anchors than the auditor's: {detail}")]
    BundleAnchorsDiffer {
        /// The bundle's anchors.
        detail: String,
    },
    /// A bundle that cannot be read to its end, or whose header or size is wrong.
    #[error("unreadable bundle: {detail}")]
    UnreadableBundle {
        /// What went wrong.
        detail: String,
    },
}

impl FindingKind {
    /// The stable snake_case code of this kind, as in the JSON form.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedRecord { .. } => "malformed_record",
            Self::NonCanonicalRecord => "non_canonical_record",
            Self::PositionMismatch { .. } => "position_mismatch",
            Self::LeafHashMismatch { .. } => "leaf_hash_mismatch",
            Self::TimeWentBackwards { .. } => "time_went_backwards",
            Self::StreamVersion { .. } => "stream_version",
            Self::AfterClose { .. } => "after_close",
            Self::MalformedEnvelope { .. } => "malformed_envelope",
            Self::UnknownKey { .. } => "unknown_key",
            Self::BadSignature { .. } => "bad_signature",
            Self::MalformedCommand { .. } => "malformed_command",
            Self::CommandMismatch { .. } => "command_mismatch",
            Self::DuplicateCommand { .. } => "duplicate_command",
            Self::ClockSkew { .. } => "clock_skew",
            Self::Unauthorized { .. } => "unauthorized",
            Self::CommandRefused { .. } => "command_refused",
            Self::EventDiffers { .. } => "event_differs",
            Self::MissingEvents { .. } => "missing_events",
            Self::UnaccountedRecord { .. } => "unaccounted_record",
            Self::DeadlineCloseRefused { .. } => "deadline_close_refused",
            Self::InvalidEvent { .. } => "invalid_event",
            Self::CheckpointNotSigned { .. } => "checkpoint_not_signed",
            Self::CheckpointRootMismatch { .. } => "checkpoint_root_mismatch",
            Self::LogTruncated { .. } => "log_truncated",
            Self::UncoveredRecords { .. } => "uncovered_records",
            Self::ReadModelMismatch { .. } => "read_model_mismatch",
            Self::CopiesDiffer { .. } => "copies_differ",
            Self::BundleAnchorsDiffer { .. } => "bundle_anchors_differ",
            Self::UnreadableBundle { .. } => "unreadable_bundle",
        }
    }
}

/// A read model as the replay computes it, for the caller to compare with the stored row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum ReadModel {
    /// A circulation's status: once when it closes (then its state is dropped), and at the end
    /// of the log for those still open.
    Circulation {
        /// The record the status reflects (its close, or its newest record).
        position: u64,
        /// The status.
        status: Box<CirculationStatus>,
    },
    /// Every key of a body, at the end of the log.
    Keys {
        /// The body.
        body: BodyId,
        /// Its keys, in key-id order.
        keys: Vec<KeyStatus>,
    },
}

/// What an auditor hands back while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "output", rename_all = "snake_case")]
pub enum Output {
    /// A difference. Findings of signature checks, which run in batches, may come later than
    /// findings of higher positions.
    Finding(Finding),
    /// A freshly computed read model to compare with the stored one.
    ReadModel(ReadModel),
}

/// Decisions by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Decisions {
    /// Adopted.
    pub adopted: u64,
    /// Rejected.
    pub rejected: u64,
    /// Failed on an objection.
    pub failed_objection: u64,
    /// Failed for want of a quorum.
    pub failed_quorum: u64,
    /// Withdrawn.
    pub withdrawn: u64,
}

/// What an audit checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Records read.
    pub records: u64,
    /// Bodies constituted.
    pub bodies: u64,
    /// Circulations opened.
    pub circulations: u64,
    /// Circulations still open at the end.
    pub open_circulations: u64,
    /// Decisions by outcome.
    pub decisions: Decisions,
    /// Signed commands replayed.
    pub commands: u64,
    /// Closes at the deadline recomputed.
    pub deadline_closes: u64,
    /// Signatures that verified strictly.
    pub signatures_verified: u64,
    /// Of those, how many a batch equation settled (the rest were verified one by one).
    pub signatures_batched: u64,
    /// Signed checkpoints whose root matched the log.
    pub checkpoints_checked: u64,
    /// The size of the newest checkpoint that matched.
    pub newest_checkpoint: Option<u64>,
    /// Read models handed out for comparison.
    pub read_models: u64,
    /// The log's size.
    pub final_size: u64,
    /// The log's Merkle root, hex.
    pub final_root: String,
    /// Findings (all of them, also those not kept).
    pub findings: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decisions = &self.decisions;
        writeln!(f, "records        {}", self.records)?;
        writeln!(f, "log size       {}", self.final_size)?;
        writeln!(f, "Merkle root    {}", self.final_root)?;
        writeln!(
            f,
            "checkpoints    {} matched, newest at size {}",
            self.checkpoints_checked,
            self.newest_checkpoint
                .map_or_else(|| "none".to_owned(), |size| size.to_string())
        )?;
        writeln!(
            f,
            "signatures     {} verified strictly ({} settled by batch equations)",
            self.signatures_verified, self.signatures_batched
        )?;
        writeln!(f, "commands       {} replayed", self.commands)?;
        writeln!(f, "bodies         {}", self.bodies)?;
        writeln!(
            f,
            "circulations   {} opened, {} still open",
            self.circulations, self.open_circulations
        )?;
        writeln!(
            f,
            "decisions      {} adopted, {} rejected, {} failed on objection, {} failed on quorum, {} withdrawn ({} closed at the deadline)",
            decisions.adopted,
            decisions.rejected,
            decisions.failed_objection,
            decisions.failed_quorum,
            decisions.withdrawn,
            self.deadline_closes
        )?;
        writeln!(
            f,
            "read models    {} handed out for comparison",
            self.read_models
        )?;
        write!(f, "findings       {}", self.findings)
    }
}

/// An audit that found differences: the findings, first position first, and what was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct AuditFailure {
    /// The findings kept: differences by position, then findings about no record, then the
    /// stretches of records no checkpoint covers (which never precede a difference).
    pub findings: Vec<Finding>,
    /// Findings found but not kept (beyond the limit).
    pub omitted: u64,
    /// What was checked.
    pub report: Box<Report>,
}

impl AuditFailure {
    /// The first finding: where the history first differs (a stretch of records that no
    /// checkpoint covers comes only after every difference).
    pub fn first(&self) -> Option<&Finding> {
        self.findings.first()
    }
}

impl fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first() {
            Some(first) => writeln!(f, "the audit failed; first difference: {first}")?,
            None => writeln!(f, "the audit failed")?,
        }
        for finding in self.findings.iter().skip(1) {
            writeln!(f, "  also: {finding}")?;
        }
        if self.omitted > 0 {
            writeln!(f, "  and {} more", self.omitted)?;
        }
        write!(f, "{}", self.report)
    }
}

/// The differences between two JSON values, as `path: expected …, found …` lines (at most
/// `limit`), for naming what differs in an event or a read model.
pub fn json_differences(
    expected: &serde_json::Value,
    found: &serde_json::Value,
    limit: usize,
) -> Vec<String> {
    let mut differences = Vec::new();
    walk(
        expected,
        found,
        &mut String::from("$"),
        &mut differences,
        limit,
    );
    differences
}

fn walk(
    expected: &serde_json::Value,
    found: &serde_json::Value,
    path: &mut String,
    out: &mut Vec<String>,
    limit: usize,
) {
    use serde_json::Value;
    if out.len() >= limit || expected == found {
        return;
    }
    match (expected, found) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: BTreeMap<&String, ()> = left
                .keys()
                .chain(right.keys())
                .map(|key| (key, ()))
                .collect();
            for key in keys.keys() {
                let length = path.len();
                path.push('.');
                path.push_str(key);
                walk(
                    left.get(*key).unwrap_or(&Value::Null),
                    right.get(*key).unwrap_or(&Value::Null),
                    path,
                    out,
                    limit,
                );
                path.truncate(length);
            }
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => {
            for (index, (left, right)) in left.iter().zip(right).enumerate() {
                let length = path.len();
                path.push_str(&format!("[{index}]"));
                walk(left, right, path, out, limit);
                path.truncate(length);
            }
        }
        _ => out.push(format!("{path}: expected {expected}, found {found}")),
    }
}

#[cfg(test)]
mod tests {
    use super::json_differences;

    #[test]
    fn differences_name_their_paths() {
        let expected = serde_json::json!({"choice": "yes", "list": [1, 2], "same": true});
        let found = serde_json::json!({"choice": "no", "list": [1, 3], "same": true, "extra": 1});
        assert_eq!(
            json_differences(&expected, &found, 10),
            vec![
                "$.choice: expected \"yes\", found \"no\"",
                "$.extra: expected null, found 1",
                "$.list[1]: expected 2, found 3",
            ]
        );
        assert!(json_differences(&expected, &expected, 10).is_empty());
        assert_eq!(json_differences(&expected, &found, 1).len(), 1);
    }
}
