//! The auditor: replays a history pushed to it record by record and checks everything.
//!
//! Records are buffered into chunks, and the chunks flow through a pipeline of three stages that
//! run at the same time: a chunk is read on worker threads (leaf hashes, strict parsing,
//! envelopes, payloads) while the chunk before it is replayed in order on the caller's thread
//! (positions, times, versions, keys, authorisation, `decide`, closes, the Merkle frontier and
//! checkpoints), and the signatures of replayed chunks, gathered a few chunks at a time, are
//! verified in batches on worker threads with [`umlauf_proof::batch`]; [`Auditor::flush`] drains
//! the pipeline. Memory stays flat: at most three chunks of records are in flight (and the
//! signatures of a few more), the frontier holds O(log n) hashes, a circulation's
//! state is dropped as soon as it closes (only its 16-byte id is kept, so a record arriving after
//! the close is caught), and findings are capped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroUsize;

use chrono::{DateTime, Duration, Utc};
use umlauf_domain::body::{self, Body};
use umlauf_domain::circulation::{self, Circulation};
use umlauf_domain::event::{Decision, Event};
use umlauf_domain::ids::{BodyId, CirculationId, CommandId, KeyId, PublicKey};
use umlauf_domain::read_model::{CirculationStatus, key_statuses};
use umlauf_domain::rule::FailureReason;
use umlauf_domain::{Command, Record, State, StreamId, authorize, decide};
use umlauf_proof::VerifyingKey;
use umlauf_proof::batch::{self, Triple};
use umlauf_proof::checkpoint::{self, Checkpoint};
use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE, Envelope};
use umlauf_proof::merkle::{Frontier, Hash, empty_root, leaf_hash};

use crate::anchors::TrustAnchors;
use crate::error::AuditError;
use crate::finding::{
    AuditFailure, Finding, FindingKind, Output, ReadModel, Report, json_differences,
};

/// How many chunks' signatures are verified together: a batch's fixed cost (the torsion tests,
/// each key's checks) spreads over more signatures, and signatures cost little memory to hold.
const VERIFY_CHUNKS: usize = 2;

/// How an auditor runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// Records read, replayed and signature-checked together. Larger chunks make batch
    /// verification cheaper per signature; memory grows with the chunk, not the history.
    pub chunk_size: usize,
    /// Threads for reading records and verifying signatures.
    pub threads: usize,
    /// Findings kept (the lowest positions); further ones are counted only.
    pub max_findings: usize,
    /// How far a command's `issued_at` may lie from its recording time; `None` skips the check.
    pub max_clock_skew: Option<Duration>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            chunk_size: 4096,
            threads: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            max_findings: 1000,
            // The service refuses commands whose clock is further off (proto/README.md).
            max_clock_skew: Some(Duration::seconds(300)),
        }
    }
}

/// Replays a history and checks it; see the crate documentation for what it checks.
///
/// Push the records in position order ([`Auditor::push`]), give it every checkpoint you hold
/// before the records it covers ([`Auditor::add_checkpoint`]), call [`Auditor::end_of_log`] to
/// get the read models of what is still open, report read-model differences
/// ([`Auditor::record_read_model_mismatch`]), and [`Auditor::finish`].
#[derive(Debug)]
pub struct Auditor {
    options: AuditOptions,
    log_key: umlauf_proof::note::NoteVerifier,
    genesis_by_keyid: HashMap<String, VerifyingKey>,
    genesis_key_ids: std::collections::BTreeSet<KeyId>,
    buffer: Vec<(Vec<u8>, Option<Hash>)>,
    /// The chunk being read on worker threads, replayed when the next chunk is full.
    reading: Vec<std::thread::JoinHandle<Vec<Prepared>>>,
    /// Signatures of replayed chunks, gathered until [`VERIFY_CHUNKS`] chunks' worth start being
    /// verified together.
    unverified: Vec<SignatureJob>,
    /// The signatures started last, being verified on worker threads.
    verifying: Vec<std::thread::JoinHandle<VerifiedPart>>,
    replay: Replay,
    frontier: Frontier,
    /// Checkpoints whose size the log has not reached yet, by size.
    pending_checkpoints: BTreeMap<u64, Vec<Checkpoint>>,
    findings: Vec<Finding>,
    omitted_findings: u64,
    report: Report,
    ended: bool,
    /// The size of the largest checkpoint reached, whether its root matched or not: records
    /// beyond it are vouched for by no checkpoint.
    covered: u64,
    /// Verifying keys decompressed once, by their bytes.
    key_cache: HashMap<[u8; 32], Option<VerifyingKey>>,
}

/// The replayed state: bodies for ever, circulations until they close.
#[derive(Debug, Default)]
struct Replay {
    bodies: HashMap<BodyId, Stream<Body>>,
    circulations: HashMap<CirculationId, Stream<Circulation>>,
    closed: HashSet<CirculationId>,
    /// The events the current command still has to produce, with its id and stream.
    pending: Option<PendingCommand>,
    last_recorded_at: Option<DateTime<Utc>>,
    /// The position of the next record.
    next_position: u64,
}

#[derive(Debug, Default)]
struct Stream<T> {
    state: T,
    command_ids: HashSet<CommandId>,
    last_position: u64,
}

#[derive(Debug)]
struct PendingCommand {
    command_id: CommandId,
    stream: StreamId,
    events: std::collections::VecDeque<Event>,
}

/// A record as read in parallel, before replay.
struct Prepared {
    leaf: Hash,
    stored_leaf: Option<Hash>,
    parsed: Result<Parsed, String>,
}

struct Parsed {
    record: Record,
    canonical: bool,
    /// `Some` when the record carries an envelope.
    signed: Option<Result<Signed, String>>,
}

struct Signed {
    keyid: String,
    signature: Vec<u8>,
    pae: Vec<u8>,
    payload_type: String,
    command: Result<Command, String>,
}

/// A signature to verify once the chunk has been replayed.
#[derive(Debug)]
struct SignatureJob {
    position: u64,
    key: VerifyingKey,
    keyid: String,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl Auditor {
    /// An auditor trusting exactly `anchors`.
    pub fn new(anchors: TrustAnchors, options: AuditOptions) -> Self {
        let genesis_by_keyid = anchors
            .genesis_keys
            .iter()
            .map(|key| (umlauf_proof::keys::key_id(key), *key))
            .collect();
        Self {
            genesis_key_ids: anchors.genesis_key_ids(),
            genesis_by_keyid,
            log_key: anchors.log_key,
            options,
            buffer: Vec::new(),
            reading: Vec::new(),
            unverified: Vec::new(),
            verifying: Vec::new(),
            replay: Replay {
                next_position: 1,
                ..Replay::default()
            },
            frontier: Frontier::new(),
            pending_checkpoints: BTreeMap::new(),
            findings: Vec::new(),
            omitted_findings: 0,
            report: Report::default(),
            ended: false,
            covered: 0,
            key_cache: HashMap::new(),
        }
    }

    /// Records replayed so far (pushed records still buffered or in the pipeline are not; see
    /// [`Auditor::flush`]).
    pub fn checked(&self) -> u64 {
        self.frontier.size()
    }

    /// Adds a signed checkpoint (from a receipt, the checkpoint stream, a witness, the store).
    ///
    /// Its signature is checked now; its root when the log reaches its size, so it must arrive
    /// before the records beyond its size are checked ([`AuditError::CheckpointTooLate`]).
    pub fn add_checkpoint(&mut self, note: &str) -> Result<Vec<Output>, AuditError> {
        if self.ended {
            return Err(AuditError::Ended);
        }
        let mut outputs = Vec::new();
        let checkpoint = match checkpoint::verify(note, &self.log_key) {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                let claimed_size = claimed_size(note);
                self.found(
                    &mut outputs,
                    None,
                    FindingKind::CheckpointNotSigned {
                        claimed_size,
                        detail: error.to_string(),
                    },
                );
                return Ok(outputs);
            }
        };
        if checkpoint.origin != self.log_key.name() {
            self.found(
                &mut outputs,
                None,
                FindingKind::CheckpointNotSigned {
                    claimed_size: Some(checkpoint.size),
                    detail: format!(
                        "it names the log {}, the log key is {}",
                        checkpoint.origin,
                        self.log_key.name()
                    ),
                },
            );
            return Ok(outputs);
        }
        let processed = self.frontier.size();
        if checkpoint.size < processed {
            return Err(AuditError::CheckpointTooLate {
                size: checkpoint.size,
                processed,
            });
        }
        if checkpoint.size == processed {
            self.check_checkpoint(&checkpoint, &mut outputs);
        } else {
            self.pending_checkpoints
                .entry(checkpoint.size)
                .or_default()
                .push(checkpoint);
        }
        Ok(outputs)
    }

    /// Pushes the next record's exact bytes.
    pub fn push(&mut self, record: &[u8]) -> Result<Vec<Output>, AuditError> {
        self.push_inner(record.to_vec(), None)
    }

    /// Pushes the next record with the leaf hash its source stores beside it, which must be the
    /// hash of the bytes.
    pub fn push_with_leaf_hash(
        &mut self,
        record: &[u8],
        stored_leaf_hash: Hash,
    ) -> Result<Vec<Output>, AuditError> {
        self.push_inner(record.to_vec(), Some(stored_leaf_hash))
    }

    fn push_inner(
        &mut self,
        record: Vec<u8>,
        stored_leaf_hash: Option<Hash>,
    ) -> Result<Vec<Output>, AuditError> {
        if self.ended {
            return Err(AuditError::Ended);
        }
        self.buffer.push((record, stored_leaf_hash));
        if self.buffer.len() >= self.options.chunk_size.max(1) {
            return Ok(self.advance());
        }
        Ok(Vec::new())
    }

    /// Checks every record pushed so far now: drains the pipeline (the outputs of every chunk
    /// still in flight, and of a partial one).
    pub fn flush(&mut self) -> Vec<Output> {
        let mut outputs = self.advance();
        outputs.extend(self.advance());
        self.verify_gathered(&mut outputs);
        self.collect_signatures(&mut outputs);
        outputs
    }

    /// Ends the log: checks what is buffered, and hands out the read models of the circulations
    /// still open and the key states of every body. Idempotent.
    pub fn end_of_log(&mut self) -> Vec<Output> {
        if self.ended {
            return Vec::new();
        }
        let mut outputs = self.flush();
        self.ended = true;
        if let Some(pending) = self.replay.pending.take()
            && let Some(next) = pending.events.front()
        {
            let position = self.replay.next_position;
            self.found(
                &mut outputs,
                Some(position),
                FindingKind::MissingEvents {
                    command_id: pending.command_id.to_string(),
                    missing: pending.events.len(),
                    next_type: next.type_name().to_owned(),
                },
            );
        }
        let mut open: Vec<_> = self.replay.circulations.values().collect();
        open.sort_by_key(|stream| stream.last_position);
        let mut models = Vec::new();
        for stream in open {
            if let Some(status) = CirculationStatus::of(&stream.state) {
                models.push(ReadModel::Circulation {
                    position: stream.last_position,
                    status: Box::new(status),
                });
            }
        }
        self.report.open_circulations = u64::try_from(models.len()).unwrap_or(u64::MAX);
        let mut bodies: Vec<_> = self.replay.bodies.iter().collect();
        bodies.sort_by(|left, right| left.0.cmp(right.0));
        for (id, stream) in bodies {
            models.push(ReadModel::Keys {
                body: id.clone(),
                keys: key_statuses(&stream.state),
            });
        }
        self.report.read_models += u64::try_from(models.len()).unwrap_or(u64::MAX);
        outputs.extend(models.into_iter().map(Output::ReadModel));

        let size = self.frontier.size();
        let truncated: Vec<u64> = self.pending_checkpoints.keys().copied().collect();
        if let Some(&checkpoint_size) = truncated.first() {
            self.found(
                &mut outputs,
                Some(size + 1),
                FindingKind::LogTruncated {
                    checkpoint_size,
                    log_size: size,
                },
            );
        }
        self.pending_checkpoints.clear();
        let covered = self.covered;
        if size > covered {
            self.found(
                &mut outputs,
                Some(covered + 1),
                FindingKind::UncoveredRecords {
                    first: covered + 1,
                    last: size,
                },
            );
        }
        outputs
    }

    /// Records that a stored read model differs from the one this auditor handed out.
    pub fn record_read_model_mismatch(
        &mut self,
        position: Option<u64>,
        model: &str,
        key: &str,
        detail: &str,
    ) {
        let kind = FindingKind::ReadModelMismatch {
            model: model.to_owned(),
            key: key.to_owned(),
            detail: detail.to_owned(),
        };
        let mut ignored = Vec::new();
        self.found(&mut ignored, position, kind);
    }

    /// Records a finding the caller made about its input (e.g. a bundle's header).
    pub fn record_finding(&mut self, position: Option<u64>, kind: FindingKind) {
        let mut ignored = Vec::new();
        self.found(&mut ignored, position, kind);
    }

    /// The report so far.
    pub fn report(&self) -> Report {
        let mut report = self.report.clone();
        report.final_size = self.frontier.size();
        report.records = self.frontier.size();
        report.final_root = hex::encode(self.frontier.root());
        report
    }

    /// Ends the audit: the report if nothing differs, otherwise the findings, lowest position
    /// first. Calls [`Auditor::end_of_log`] if the caller has not.
    pub fn finish(mut self) -> Result<Report, AuditFailure> {
        self.end_of_log();
        let report = self.report();
        if report.findings == 0 {
            return Ok(report);
        }
        sort_findings(&mut self.findings);
        let kept = self.options.max_findings.max(1);
        let mut omitted = self.omitted_findings;
        if self.findings.len() > kept {
            omitted += u64::try_from(self.findings.len() - kept).unwrap_or(u64::MAX);
            self.findings.truncate(kept);
        }
        Err(AuditFailure {
            findings: self.findings,
            omitted,
            report: Box::new(report),
        })
    }

    fn found(&mut self, outputs: &mut Vec<Output>, position: Option<u64>, kind: FindingKind) {
        let finding = Finding { position, kind };
        self.report.findings += 1;
        outputs.push(Output::Finding(finding.clone()));
        self.findings.push(finding);
        let kept = self.options.max_findings.max(1);
        if self.findings.len() >= kept.saturating_mul(2) {
            sort_findings(&mut self.findings);
            self.omitted_findings += u64::try_from(self.findings.len() - kept).unwrap_or(0);
            self.findings.truncate(kept);
        }
    }

    /// Moves the pipeline one chunk on: the buffered records start being read on worker
    /// threads, the chunk read before them is replayed here, and its signatures start being
    /// verified once those of the chunk before it are collected.
    fn advance(&mut self) -> Vec<Output> {
        let inputs = std::mem::take(&mut self.buffer);
        let reading = if inputs.is_empty() {
            Vec::new()
        } else {
            spawn_parts(inputs, self.options.threads, |part| {
                part.into_iter()
                    .map(|(bytes, stored)| prepare(&bytes, stored))
                    .collect()
            })
        };
        let previous = std::mem::replace(&mut self.reading, reading);
        let mut outputs = Vec::new();
        if previous.is_empty() {
            return outputs;
        }
        let mut jobs = std::mem::take(&mut self.unverified);
        for part in previous {
            for record in join(part) {
                self.replay_record(record, &mut outputs, &mut jobs);
            }
        }
        self.unverified = jobs;
        if self.unverified.len() >= self.options.chunk_size.max(1) * VERIFY_CHUNKS {
            self.verify_gathered(&mut outputs);
        }
        outputs
    }

    /// Collects the signatures being verified and starts verifying the gathered ones.
    fn verify_gathered(&mut self, outputs: &mut Vec<Output>) {
        self.collect_signatures(outputs);
        let jobs = std::mem::take(&mut self.unverified);
        if !jobs.is_empty() {
            self.verifying = spawn_parts(jobs, self.options.threads, verify_part);
        }
    }

    /// Waits for the signatures being verified and records their verdicts.
    fn collect_signatures(&mut self, outputs: &mut Vec<Output>) {
        for part in std::mem::take(&mut self.verifying) {
            let (jobs, verdicts, stats) = join(part);
            self.report.signatures_batched +=
                u64::try_from(stats.batched.saturating_sub(stats.verified_after_failure))
                    .unwrap_or(0);
            for (job, verdict) in jobs.into_iter().zip(verdicts) {
                if verdict {
                    self.report.signatures_verified += 1;
                } else {
                    self.found(
                        outputs,
                        Some(job.position),
                        FindingKind::BadSignature { keyid: job.keyid },
                    );
                }
            }
        }
    }

    fn check_checkpoint(&mut self, checkpoint: &Checkpoint, outputs: &mut Vec<Output>) {
        self.covered = self.covered.max(checkpoint.size);
        let root = if checkpoint.size == 0 {
            empty_root()
        } else {
            self.frontier.root()
        };
        if root == checkpoint.root {
            self.report.checkpoints_checked += 1;
            self.report.newest_checkpoint = Some(
                self.report
                    .newest_checkpoint
                    .map_or(checkpoint.size, |newest| newest.max(checkpoint.size)),
            );
        } else {
            self.found(
                outputs,
                Some(checkpoint.size.max(1)),
                FindingKind::CheckpointRootMismatch {
                    size: checkpoint.size,
                    checkpoint_root: hex::encode(checkpoint.root),
                    log_root: hex::encode(root),
                },
            );
        }
    }

    fn replay_record(
        &mut self,
        prepared: Prepared,
        outputs: &mut Vec<Output>,
        jobs: &mut Vec<SignatureJob>,
    ) {
        let position = self.replay.next_position;
        self.replay.next_position += 1;
        if self.frontier.push(prepared.leaf).is_err() {
            return;
        }
        if let Some(stored) = prepared.stored_leaf
            && stored != prepared.leaf
        {
            self.found(
                outputs,
                Some(position),
                FindingKind::LeafHashMismatch {
                    stored: hex::encode(stored),
                    computed: hex::encode(prepared.leaf),
                },
            );
        }
        self.replay_content(position, prepared.parsed, outputs, jobs);
        if let Some(checkpoints) = self.pending_checkpoints.remove(&self.frontier.size()) {
            for checkpoint in checkpoints {
                self.check_checkpoint(&checkpoint, outputs);
            }
        }
    }

    fn replay_content(
        &mut self,
        position: u64,
        parsed: Result<Parsed, String>,
        outputs: &mut Vec<Output>,
        jobs: &mut Vec<SignatureJob>,
    ) {
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(detail) => {
                self.replay.pending = None;
                self.found(
                    outputs,
                    Some(position),
                    FindingKind::MalformedRecord { detail },
                );
                return;
            }
        };
        let Parsed {
            record,
            canonical,
            signed,
        } = parsed;
        if record.position != position {
            self.found(
                outputs,
                Some(position),
                FindingKind::PositionMismatch {
                    expected: position,
                    found: record.position,
                },
            );
        }
        if !canonical {
            self.found(outputs, Some(position), FindingKind::NonCanonicalRecord);
        }
        if let Some(previous) = self.replay.last_recorded_at
            && record.recorded_at < previous
        {
            self.found(
                outputs,
                Some(position),
                FindingKind::TimeWentBackwards {
                    previous: previous.to_rfc3339(),
                    recorded_at: record.recorded_at.to_rfc3339(),
                },
            );
        }
        self.replay.last_recorded_at = Some(
            self.replay
                .last_recorded_at
                .map_or(record.recorded_at, |previous| {
                    previous.max(record.recorded_at)
                }),
        );
        if let StreamId::Circulation(id) = &record.stream
            && self.replay.closed.contains(id)
        {
            self.replay.pending = None;
            self.found(
                outputs,
                Some(position),
                FindingKind::AfterClose {
                    stream: record.stream.to_string(),
                },
            );
            return;
        }
        let expected_version = self.stream_version(&record.stream) + 1;
        if record.version != expected_version {
            self.found(
                outputs,
                Some(position),
                FindingKind::StreamVersion {
                    stream: record.stream.to_string(),
                    expected: expected_version,
                    found: record.version,
                },
            );
        }

        // A continuation of the current command?
        if let Some(pending) = self.replay.pending.take() {
            let continues = signed.is_none()
                && record.command_id == Some(pending.command_id)
                && record.stream == pending.stream;
            if continues {
                let mut pending = pending;
                if let Some(expected) = pending.events.pop_front() {
                    self.compare_and_apply(position, &record, &expected, outputs);
                }
                if !pending.events.is_empty() {
                    self.replay.pending = Some(pending);
                }
                return;
            }
            if let Some(next) = pending.events.front() {
                self.found(
                    outputs,
                    Some(position),
                    FindingKind::MissingEvents {
                        command_id: pending.command_id.to_string(),
                        missing: pending.events.len(),
                        next_type: next.type_name().to_owned(),
                    },
                );
            }
        }

        match signed {
            Some(signed) => self.replay_command(position, &record, signed, outputs, jobs),
            None if record.command_id.is_some() => {
                self.found(
                    outputs,
                    Some(position),
                    FindingKind::UnaccountedRecord {
                        detail: format!(
                            "{} of command {} without the command's envelope before it",
                            record.event_type,
                            record
                                .command_id
                                .map(|id| id.to_string())
                                .unwrap_or_default()
                        ),
                    },
                );
                self.apply_recorded(position, &record, outputs);
            }
            None => self.replay_deadline_close(position, &record, outputs),
        }
    }

    fn stream_version(&self, stream: &StreamId) -> u64 {
        match stream {
            StreamId::Body(id) => self.replay.bodies.get(id).map_or(0, |s| s.state.version),
            StreamId::Circulation(id) => self
                .replay
                .circulations
                .get(id)
                .map_or(0, |s| s.state.version),
        }
    }

    fn verifying_key(&mut self, bytes: [u8; 32]) -> Option<VerifyingKey> {
        *self
            .key_cache
            .entry(bytes)
            .or_insert_with(|| VerifyingKey::from_bytes(&bytes).ok())
    }

    /// The key an envelope's key id names at this moment, with its domain key id: a genesis key,
    /// or a key registered in the command's body (revoked ones too: `authorize` refuses those).
    fn signing_key(&mut self, keyid: &str, body: &BodyId) -> Option<(VerifyingKey, KeyId)> {
        if let Some(key) = self.genesis_by_keyid.get(keyid) {
            return Some((*key, KeyId::of(&PublicKey(key.to_bytes()))));
        }
        let key_id = KeyId::parse(keyid).ok()?;
        let public_key = self
            .replay
            .bodies
            .get(body)?
            .state
            .keys
            .get(&key_id)?
            .public_key;
        Some((self.verifying_key(public_key.0)?, key_id))
    }

    fn replay_command(
        &mut self,
        position: u64,
        record: &Record,
        signed: Result<Signed, String>,
        outputs: &mut Vec<Output>,
        jobs: &mut Vec<SignatureJob>,
    ) {
        self.report.commands += 1;
        let refuse = |auditor: &mut Self, outputs: &mut Vec<Output>, kind: FindingKind| {
            auditor.found(outputs, Some(position), kind);
            auditor.apply_recorded(position, record, outputs);
        };
        let signed = match signed {
            Ok(signed) => signed,
            Err(detail) => return refuse(self, outputs, FindingKind::MalformedEnvelope { detail }),
        };
        let Signed {
            keyid,
            signature,
            pae,
            payload_type,
            command,
        } = signed;
        let command = match command {
            Ok(command) => command,
            Err(detail) => return refuse(self, outputs, FindingKind::MalformedCommand { detail }),
        };
        let Some((key, signer)) = self.signing_key(&keyid, &command.body) else {
            return refuse(self, outputs, FindingKind::UnknownKey { keyid });
        };
        jobs.push(SignatureJob {
            position,
            key,
            keyid,
            message: pae,
            signature,
        });
        if payload_type != COMMAND_PAYLOAD_TYPE {
            return refuse(
                self,
                outputs,
                FindingKind::MalformedEnvelope {
                    detail: format!("payload type {payload_type}"),
                },
            );
        }
        if record.command_id != Some(command.command_id) {
            return refuse(
                self,
                outputs,
                FindingKind::CommandMismatch {
                    detail: format!(
                        "the record names command {:?}, the payload {}",
                        record.command_id.map(|id| id.to_string()),
                        command.command_id
                    ),
                },
            );
        }
        if command.stream() != record.stream {
            return refuse(
                self,
                outputs,
                FindingKind::CommandMismatch {
                    detail: format!(
                        "the record is in {}, the command addresses {}",
                        record.stream,
                        command.stream()
                    ),
                },
            );
        }
        if let Some(skew) = self.options.max_clock_skew
            && (command.issued_at - record.recorded_at).abs() > skew
        {
            self.found(
                outputs,
                Some(position),
                FindingKind::ClockSkew {
                    issued_at: command.issued_at.to_rfc3339(),
                    recorded_at: record.recorded_at.to_rfc3339(),
                },
            );
        }
        if self.seen_command(&record.stream, command.command_id) {
            return refuse(
                self,
                outputs,
                FindingKind::DuplicateCommand {
                    command_id: command.command_id.to_string(),
                },
            );
        }
        let default_body = Body::default();
        let default_circulation = Circulation::default();
        let body = self
            .replay
            .bodies
            .get(&command.body)
            .map_or(&default_body, |stream| &stream.state);
        if let Err(error) = authorize(body, &command, &signer, &self.genesis_key_ids) {
            return refuse(
                self,
                outputs,
                FindingKind::Unauthorized {
                    error_code: error.code().to_owned(),
                    detail: error.to_string(),
                },
            );
        }
        let circulation = match &record.stream {
            StreamId::Circulation(id) => Some(
                self.replay
                    .circulations
                    .get(id)
                    .map_or(&default_circulation, |stream| &stream.state),
            ),
            StreamId::Body(_) => None,
        };
        let decided = decide(State { body, circulation }, &command, record.recorded_at);
        let mut events: std::collections::VecDeque<Event> = match decided {
            Ok(events) => events.into(),
            Err(error) => {
                return refuse(
                    self,
                    outputs,
                    FindingKind::CommandRefused {
                        error_code: error.code().to_owned(),
                        detail: error.to_string(),
                    },
                );
            }
        };
        let Some(first) = events.pop_front() else {
            return refuse(
                self,
                outputs,
                FindingKind::UnaccountedRecord {
                    detail: "the command produces no event".to_owned(),
                },
            );
        };
        self.compare_and_apply(position, record, &first, outputs);
        if !events.is_empty() {
            self.replay.pending = Some(PendingCommand {
                command_id: command.command_id,
                stream: record.stream.clone(),
                events,
            });
        }
    }

    /// Whether the stream has recorded this command id before; remembers it if not.
    fn seen_command(&mut self, stream: &StreamId, command_id: CommandId) -> bool {
        let ids = match stream {
            StreamId::Body(id) => {
                &mut self
                    .replay
                    .bodies
                    .entry(id.clone())
                    .or_default()
                    .command_ids
            }
            StreamId::Circulation(id) => {
                &mut self.replay.circulations.entry(*id).or_default().command_ids
            }
        };
        !ids.insert(command_id)
    }

    fn replay_deadline_close(&mut self, position: u64, record: &Record, outputs: &mut Vec<Output>) {
        let StreamId::Circulation(id) = &record.stream else {
            self.found(
                outputs,
                Some(position),
                FindingKind::UnaccountedRecord {
                    detail: format!(
                        "{} in {} without a command",
                        record.event_type, record.stream
                    ),
                },
            );
            return self.apply_recorded(position, record, outputs);
        };
        if record.event_type != "CirculationClosed" {
            self.found(
                outputs,
                Some(position),
                FindingKind::UnaccountedRecord {
                    detail: format!("{} without a command", record.event_type),
                },
            );
            return self.apply_recorded(position, record, outputs);
        }
        let default_circulation = Circulation::default();
        let state = self
            .replay
            .circulations
            .get(id)
            .map_or(&default_circulation, |stream| &stream.state);
        match circulation::close_at_deadline(state, *id, record.recorded_at) {
            Ok(events) if events.len() == 1 => {
                self.report.deadline_closes += 1;
                for event in events {
                    self.compare_and_apply(position, record, &event, outputs);
                }
            }
            Ok(_) => {
                self.found(
                    outputs,
                    Some(position),
                    FindingKind::DeadlineCloseRefused {
                        detail: "the rule engine produces no close".to_owned(),
                    },
                );
                self.apply_recorded(position, record, outputs);
            }
            Err(error) => {
                self.found(
                    outputs,
                    Some(position),
                    FindingKind::DeadlineCloseRefused {
                        detail: format!("{error} ({})", error.code()),
                    },
                );
                self.apply_recorded(position, record, outputs);
            }
        }
    }

    /// Compares the recorded event with the one replay produces, and applies the produced one:
    /// the signed truth, so one changed record makes one finding and not a cascade.
    fn compare_and_apply(
        &mut self,
        position: u64,
        record: &Record,
        expected: &Event,
        outputs: &mut Vec<Output>,
    ) {
        let same = if record.schema == Event::SCHEMA_VERSION {
            record.event_type == expected.type_name() && record.data == expected.data()
        } else {
            record.event().is_ok_and(|event| event == *expected)
        };
        if !same {
            let detail = if record.event_type == expected.type_name() {
                json_differences(&expected.data(), &record.data, 5).join("; ")
            } else {
                format!(
                    "type {} instead of {}",
                    record.event_type,
                    expected.type_name()
                )
            };
            self.found(
                outputs,
                Some(position),
                FindingKind::EventDiffers {
                    expected_type: expected.type_name().to_owned(),
                    found_type: record.event_type.clone(),
                    detail,
                },
            );
        }
        self.apply(position, &record.stream, expected, outputs);
    }

    /// Applies the record's own event, where replay cannot say what it should be.
    fn apply_recorded(&mut self, position: u64, record: &Record, outputs: &mut Vec<Output>) {
        match record.event() {
            Ok(event) => self.apply(position, &record.stream, &event, outputs),
            Err(error) => self.found(
                outputs,
                Some(position),
                FindingKind::InvalidEvent {
                    detail: error.to_string(),
                },
            ),
        }
    }

    fn apply(
        &mut self,
        position: u64,
        stream: &StreamId,
        event: &Event,
        outputs: &mut Vec<Output>,
    ) {
        match stream {
            StreamId::Body(id) => {
                let entry = self.replay.bodies.entry(id.clone()).or_default();
                if matches!(event, Event::BodyConstituted(_)) {
                    self.report.bodies += 1;
                }
                entry.state = body::evolve(std::mem::take(&mut entry.state), event);
                entry.last_position = position;
            }
            StreamId::Circulation(id) => {
                let entry = self.replay.circulations.entry(*id).or_default();
                if matches!(event, Event::CirculationOpened(_)) {
                    self.report.circulations += 1;
                }
                entry.state = circulation::evolve(std::mem::take(&mut entry.state), event);
                entry.last_position = position;
                if let Event::CirculationClosed(closed) = event {
                    let decisions = &mut self.report.decisions;
                    match closed.decision {
                        Decision::Adopted => decisions.adopted += 1,
                        Decision::Rejected => decisions.rejected += 1,
                        Decision::Failed(FailureReason::Objection) => {
                            decisions.failed_objection += 1;
                        }
                        Decision::Failed(FailureReason::Quorum) => decisions.failed_quorum += 1,
                        Decision::Withdrawn => decisions.withdrawn += 1,
                    }
                    // Closed for good: hand out its status, keep only its id.
                    if let Some(stream) = self.replay.circulations.remove(id) {
                        if let Some(status) = CirculationStatus::of(&stream.state) {
                            self.report.read_models += 1;
                            outputs.push(Output::ReadModel(ReadModel::Circulation {
                                position,
                                status: Box::new(status),
                            }));
                        }
                        self.replay.closed.insert(*id);
                    }
                }
            }
        }
    }
}

/// Sorts findings into the order they are reported: differences by position (at one position,
/// a checkpoint that no longer matches after what is wrong with the record), then findings
/// about no record in particular, then stretches of records no checkpoint vouches for. Such a
/// stretch says what nothing vouches for, not where the history differs: it must neither hide
/// nor precede the first real difference (when the only checkpoint lies beyond a shortened log,
/// it starts at record 1).
fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by_key(|finding| {
        let rank = match (&finding.kind, finding.position) {
            (FindingKind::UncoveredRecords { .. }, _) => 2,
            (_, None) => 1,
            (_, Some(_)) => 0,
        };
        // At one position, what is wrong with the record comes before the checkpoint of that
        // size that no longer matches because of it.
        let consequence = matches!(finding.kind, FindingKind::CheckpointRootMismatch { .. });
        (rank, finding.position.unwrap_or(0), consequence)
    });
}

/// The size a checkpoint note claims, read without trusting it.
fn claimed_size(note: &str) -> Option<u64> {
    let text = &note[..note.rfind("\n\n")? + 1];
    Checkpoint::from_body(text)
        .ok()
        .map(|checkpoint| checkpoint.size)
}

/// Whether `bytes` are exactly the record's canonical serialisation ([`Record::to_bytes`]),
/// compared while serialising: no copy is built, and the first differing byte ends it.
fn is_canonical(record: &Record, bytes: &[u8]) -> bool {
    let mut rest = Matching { rest: bytes };
    serde_json::to_writer(&mut rest, record).is_ok() && rest.rest.is_empty()
}

/// A writer that accepts exactly the bytes it still expects, in order.
struct Matching<'a> {
    rest: &'a [u8],
}

impl std::io::Write for Matching<'_> {
    fn write(&mut self, written: &[u8]) -> std::io::Result<usize> {
        match self.rest.strip_prefix(written) {
            Some(rest) => {
                self.rest = rest;
                Ok(written.len())
            }
            None => Err(std::io::ErrorKind::InvalidData.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads one record: everything that needs no state.
fn prepare(bytes: &[u8], stored_leaf: Option<Hash>) -> Prepared {
    let leaf = leaf_hash(bytes);
    let parsed = Record::from_bytes(bytes)
        .map_err(|error| error.to_string())
        .map(|mut record| {
            let canonical = is_canonical(&record, bytes);
            let signed = record.envelope.take().map(|envelope| {
                let envelope: Envelope =
                    serde_json::from_value(envelope).map_err(|error| error.to_string())?;
                let [signature] = envelope.signatures.as_slice() else {
                    return Err("a command envelope carries exactly one signature".to_owned());
                };
                Ok(Signed {
                    keyid: signature.keyid.clone(),
                    signature: signature.sig.clone(),
                    pae: dsse::pae(&envelope.payload_type, &envelope.payload),
                    command: Command::from_json(&envelope.payload)
                        .map_err(|error| error.to_string()),
                    payload_type: envelope.payload_type,
                })
            });
            Parsed {
                record,
                canonical,
                signed,
            }
        });
    Prepared {
        leaf,
        stored_leaf,
        parsed,
    }
}

/// The jobs of one part of a chunk's signatures, their verdicts in order, and how they were
/// reached.
type VerifiedPart = (Vec<SignatureJob>, Vec<bool>, batch::BatchStats);

/// Verifies one part of a chunk's signatures in one batch.
fn verify_part(jobs: Vec<SignatureJob>) -> VerifiedPart {
    let triples: Vec<Triple<'_>> = jobs
        .iter()
        .map(|job| Triple {
            key: &job.key,
            message: &job.message,
            signature: &job.signature,
        })
        .collect();
    let (verdicts, stats) = batch::verify_with_stats(&triples);
    drop(triples);
    (jobs, verdicts, stats)
}

/// Starts `work` on up to `threads` contiguous parts of `items`, each on a thread of its own;
/// joining the handles in order gives the results in order.
fn spawn_parts<T: Send + 'static, U: Send + 'static>(
    mut items: Vec<T>,
    threads: usize,
    work: fn(Vec<T>) -> U,
) -> Vec<std::thread::JoinHandle<U>> {
    let size = items.len().div_ceil(threads.max(1)).max(1);
    let mut parts = Vec::new();
    while items.len() > size {
        let rest = items.split_off(size);
        parts.push(std::mem::replace(&mut items, rest));
    }
    parts.push(items);
    parts
        .into_iter()
        .map(|part| std::thread::spawn(move || work(part)))
        .collect()
}

/// The result of a worker thread; its panic goes on in the caller.
fn join<U>(handle: std::thread::JoinHandle<U>) -> U {
    match handle.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
