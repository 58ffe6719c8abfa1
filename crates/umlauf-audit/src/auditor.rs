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
//!
//! Most records are read without building JSON values: a record exactly as the service writes
//! it has its envelope's strings read in place and its data checked to be canonical JSON text
//! and kept as such, compared with the event replay produces by writing that event's data
//! against it; a record in any other form is read into values, as strictly.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
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
    /// The genesis keys by their envelope key id: a handful, found faster by comparing than by
    /// hashing the key id.
    genesis_by_keyid: Vec<(String, VerifyingKey)>,
    genesis_key_ids: std::collections::BTreeSet<KeyId>,
    /// The records of the chunk being filled.
    buffer: Chunk,
    /// The chunk being read on worker threads, replayed when the next chunk is full.
    reading: Vec<Pending<Vec<Prepared>>>,
    /// The records `reading` reads, shared with its threads; its buffers are reused once read.
    reading_chunk: Option<Arc<Chunk>>,
    /// Emptied vectors of prepared records, for the next chunk's parts.
    spare_prepared: Vec<Vec<Prepared>>,
    /// Signatures of replayed chunks, gathered until [`VERIFY_CHUNKS`] chunks' worth start being
    /// verified together.
    unverified: Vec<SignatureJob>,
    /// The signatures started last, being verified on worker threads.
    verifying: Vec<Pending<VerifiedPart>>,
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
    /// The threads that read chunks and verify signatures.
    workers: Workers,
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

/// Pushed records, their bytes one after another: one allocation per chunk, not per record.
#[derive(Debug, Default)]
struct Chunk {
    bytes: Vec<u8>,
    /// Where each record's bytes end, and the leaf hash stored beside it.
    records: Vec<(usize, Option<Hash>)>,
}

impl Chunk {
    fn push(&mut self, record: &[u8], stored_leaf_hash: Option<Hash>) {
        self.bytes.extend_from_slice(record);
        self.records.push((self.bytes.len(), stored_leaf_hash));
    }

    fn len(&self) -> usize {
        self.records.len()
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Record `index`'s bytes and stored leaf hash.
    fn record(&self, index: usize) -> (&[u8], Option<Hash>) {
        let start = index
            .checked_sub(1)
            .map_or(0, |previous| self.records[previous].0);
        let (end, stored) = self.records[index];
        (&self.bytes[start..end], stored)
    }

    /// The same buffers, holding no records.
    fn emptied(mut self) -> Self {
        self.bytes.clear();
        self.records.clear();
        self
    }
}

/// Starts reading `chunk` on up to `threads` threads, each a contiguous part of it; joining the
/// handles in order gives the prepared records in order.
///
/// Each part is read into one of the emptied vectors in `spares` where there is one: they are
/// reused from chunk to chunk rather than allocated on a worker and freed here.
fn spawn_reading(
    workers: &Workers,
    chunk: &Arc<Chunk>,
    threads: usize,
    spares: &mut Vec<Vec<Prepared>>,
) -> Vec<Pending<Vec<Prepared>>> {
    let count = chunk.len();
    let size = count.div_ceil(threads.max(1)).max(1);
    (0..count)
        .step_by(size)
        .map(|start| {
            let chunk = Arc::clone(chunk);
            let end = (start + size).min(count);
            let mut prepared = spares.pop().unwrap_or_default();
            workers.spawn(move || {
                prepared.extend((start..end).map(|index| {
                    let (bytes, stored) = chunk.record(index);
                    prepare(bytes, stored)
                }));
                prepared
            })
        })
        .collect()
}

/// A record as read in parallel, before replay.
#[derive(Debug)]
struct Prepared {
    leaf: Hash,
    stored_leaf: Option<Hash>,
    parsed: Result<Parsed, String>,
}

#[derive(Debug)]
struct Parsed {
    /// The record; its `data` is `null` where `data_text` says where it lies.
    record: Record,
    /// Where in the record's bytes its data's canonical JSON text lies
    /// ([`canonical_value_len`]), where it was left unparsed.
    data_text: Option<std::ops::Range<usize>>,
    canonical: bool,
    /// `Some` when the record carries an envelope.
    signed: Option<Result<Signed, String>>,
}

/// A parsed record whose data may still be text, in the bytes of the chunk being replayed.
#[derive(Debug)]
struct Recorded<'a> {
    /// The record; its `data` is `null` while `data_text` holds it.
    record: Record,
    /// The data's canonical JSON text ([`canonical_value_len`]), where it was left unparsed:
    /// compared with replay's event as text, and parsed only when it differs.
    data_text: Option<&'a [u8]>,
}

impl<'a> Recorded<'a> {
    /// The parsed record, its data text found in the record's `bytes`.
    fn new(record: Record, data_text: Option<std::ops::Range<usize>>, bytes: &'a [u8]) -> Self {
        Self {
            record,
            // The reader found the range in these bytes.
            data_text: data_text.and_then(|range| bytes.get(range)),
        }
    }

    /// The record with its data as a JSON value.
    fn with_data(&self) -> Cow<'_, Record> {
        match self.data_text {
            None => Cow::Borrowed(&self.record),
            Some(text) => Cow::Owned(Record {
                // Checked to be canonical JSON text when it was left unparsed.
                data: serde_json::from_slice(text).unwrap_or_default(),
                ..self.record.clone()
            }),
        }
    }
}

impl std::ops::Deref for Recorded<'_> {
    type Target = Record;

    fn deref(&self) -> &Record {
        &self.record
    }
}

#[derive(Debug)]
struct Signed {
    keyid: String,
    signature: Vec<u8>,
    pae: Vec<u8>,
    payload_type: Cow<'static, str>,
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
        // The parts of the chunk being read and of the signatures being verified.
        let workers = Workers::new(options.threads.max(1) * 2);
        Self {
            workers,
            genesis_key_ids: anchors.genesis_key_ids(),
            genesis_by_keyid,
            log_key: anchors.log_key,
            options,
            buffer: Chunk::default(),
            reading: Vec::new(),
            reading_chunk: None,
            spare_prepared: Vec::new(),
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
        self.push_inner(record, None)
    }

    /// Pushes the next record with the leaf hash its source stores beside it, which must be the
    /// hash of the bytes.
    pub fn push_with_leaf_hash(
        &mut self,
        record: &[u8],
        stored_leaf_hash: Hash,
    ) -> Result<Vec<Output>, AuditError> {
        self.push_inner(record, Some(stored_leaf_hash))
    }

    fn push_inner(
        &mut self,
        record: &[u8],
        stored_leaf_hash: Option<Hash>,
    ) -> Result<Vec<Output>, AuditError> {
        if self.ended {
            return Err(AuditError::Ended);
        }
        self.buffer.push(record, stored_leaf_hash);
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
        let (reading, reading_chunk) = if self.buffer.is_empty() {
            (Vec::new(), None)
        } else {
            let chunk = Arc::new(std::mem::take(&mut self.buffer));
            let reading = spawn_reading(
                &self.workers,
                &chunk,
                self.options.threads,
                &mut self.spare_prepared,
            );
            (reading, Some(chunk))
        };
        let previous = std::mem::replace(&mut self.reading, reading);
        let previous_chunk = std::mem::replace(&mut self.reading_chunk, reading_chunk);
        let mut outputs = Vec::new();
        if previous.is_empty() {
            return outputs;
        }
        let mut jobs = std::mem::take(&mut self.unverified);
        let chunk = previous_chunk.unwrap_or_default();
        let mut index = 0;
        for part in previous {
            let mut prepared = join(part);
            for record in prepared.drain(..) {
                let (bytes, _) = chunk.record(index);
                index += 1;
                self.replay_record(record, bytes, &mut outputs, &mut jobs);
            }
            self.spare_prepared.push(prepared);
        }
        // Its threads are done with it: its buffers take the next chunk's records.
        if let Some(chunk) = Arc::into_inner(chunk)
            && self.buffer.is_empty()
        {
            self.buffer = chunk.emptied();
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
            self.verifying = spawn_parts(&self.workers, jobs, self.options.threads, verify_part);
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
        bytes: &[u8],
        outputs: &mut Vec<Output>,
        jobs: &mut Vec<SignatureJob>,
    ) {
        let position = self.replay.next_position;
        self.replay.next_position += 1;
        if self.frontier.append(prepared.leaf).is_err() {
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
        self.replay_content(position, prepared.parsed, bytes, outputs, jobs);
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
        bytes: &[u8],
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
            data_text,
            canonical,
            signed,
        } = parsed;
        let record = Recorded::new(record, data_text, bytes);
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
        if let Some((_, key)) = self
            .genesis_by_keyid
            .iter()
            .find(|(genesis_keyid, _)| genesis_keyid == keyid)
        {
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
        record: &Recorded,
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

    fn replay_deadline_close(
        &mut self,
        position: u64,
        record: &Recorded,
        outputs: &mut Vec<Output>,
    ) {
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
        record: &Recorded,
        expected: &Event,
        outputs: &mut Vec<Output>,
    ) {
        let same = match &record.data_text {
            Some(text) if record.schema == Event::SCHEMA_VERSION => {
                record.event_type == expected.type_name() && {
                    // Both canonical text: equal exactly where the values are.
                    let mut rest = Matching { rest: text };
                    expected.write_data(&mut rest).is_ok() && rest.rest.is_empty()
                }
            }
            _ => {
                let record = record.with_data();
                if record.schema == Event::SCHEMA_VERSION {
                    record.event_type == expected.type_name() && record.data == expected.data()
                } else {
                    record.event().is_ok_and(|event| event == *expected)
                }
            }
        };
        if !same {
            let record = record.with_data();
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
    fn apply_recorded(&mut self, position: u64, record: &Recorded, outputs: &mut Vec<Output>) {
        let record = record.with_data();
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

/// A [`Matching`] writer that holds back the last byte written, for the caller to judge.
struct MatchingHead<'a> {
    rest: &'a [u8],
    held: Option<u8>,
}

impl std::io::Write for MatchingHead<'_> {
    fn write(&mut self, written: &[u8]) -> std::io::Result<usize> {
        let Some((&last, before)) = written.split_last() else {
            return Ok(0);
        };
        let mismatch = || std::io::Error::from(std::io::ErrorKind::InvalidData);
        if let Some(held) = self.held.take() {
            self.rest = self.rest.strip_prefix(&[held]).ok_or_else(mismatch)?;
        }
        self.rest = self.rest.strip_prefix(before).ok_or_else(mismatch)?;
        self.held = Some(last);
        Ok(written.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A [`Matching`] writer for the fields after a record's data written as their own object: its
/// opening brace stands for the comma that joins them to the data.
struct MatchingTail<'a> {
    rest: &'a [u8],
    started: bool,
}

impl std::io::Write for MatchingTail<'_> {
    fn write(&mut self, written: &[u8]) -> std::io::Result<usize> {
        let mismatch = || std::io::Error::from(std::io::ErrorKind::InvalidData);
        let mut expected = written;
        if !self.started && !written.is_empty() {
            expected = written.strip_prefix(b"{").ok_or_else(mismatch)?;
            self.rest = self.rest.strip_prefix(b",").ok_or_else(mismatch)?;
            self.started = true;
        }
        self.rest = self.rest.strip_prefix(expected).ok_or_else(mismatch)?;
        Ok(written.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads one record: everything that needs no state.
fn prepare(bytes: &[u8], stored_leaf: Option<Hash>) -> Prepared {
    let leaf = leaf_hash(bytes);
    let parsed = parse_plain(bytes)
        .or_else(|| parse_canonical(bytes))
        .map(Ok)
        .or_else(|| parse_as_written(bytes))
        .unwrap_or_else(|| parse_any(bytes));
    Prepared {
        leaf,
        stored_leaf,
        parsed,
    }
}

/// Parses a record whatever its form, into [`Record`] with the envelope as a JSON value first.
fn parse_any(bytes: &[u8]) -> Result<Parsed, String> {
    Record::from_bytes(bytes)
        .map_err(|error| error.to_string())
        .map(|mut record| {
            let canonical = is_canonical(&record, bytes);
            let signed = record.envelope.take().map(|envelope| {
                let envelope: Envelope =
                    serde_json::from_value(envelope).map_err(|error| error.to_string())?;
                signed(envelope)
            });
            Parsed {
                record,
                data_text: None,
                canonical,
                signed,
            }
        })
}

/// Parses a record whose envelope has the form the service writes, with its strings read in
/// place instead of into a JSON value first: `None` if it has another form, for [`parse_any`]
/// to judge. Where it answers, it answers exactly as [`parse_any`] does.
fn parse_as_written(bytes: &[u8]) -> Option<Result<Parsed, String>> {
    let text: RecordText<'_> = serde_json::from_slice(bytes).ok()?;
    let canonical = {
        let mut rest = Matching { rest: bytes };
        serde_json::to_writer(&mut rest, &text).is_ok() && rest.rest.is_empty()
    };
    let signed = match &text.envelope {
        None => None,
        Some(envelope) => Some(signed(envelope_from_text(envelope)?)),
    };
    let (mut record, data) = text.into_record();
    record.data = data;
    Some(Ok(Parsed {
        data_text: None,
        record,
        canonical,
        signed,
    }))
}

/// Parses a canonical record of the form the service writes without reading its data into a
/// JSON value: the data stays text ([`Recorded::data_text`]). `None` for any other record, for
/// [`parse_as_written`] and [`parse_any`] to judge.
///
/// The record is canonical if it is exactly its head, its data and its tail as [`Record`]
/// writes them: the head and tail are written again and compared, the data is checked to be
/// the canonical text of the value it spells ([`canonical_value_len`]).
fn parse_canonical(bytes: &[u8]) -> Option<Parsed> {
    let text: RecordText<'_, serde::de::IgnoredAny> = serde_json::from_slice(bytes).ok()?;
    // The head as its own object, `{…}`, is the record's text up to `,"data":` with its closing
    // brace standing for that comma.
    let mut head = MatchingHead {
        rest: bytes,
        held: None,
    };
    serde_json::to_writer(
        &mut head,
        &HeadText {
            position: text.position,
            stream: &text.stream,
            version: text.version,
            event_type: &text.event_type,
            schema: text.schema,
            recorded_at: &text.recorded_at,
        },
    )
    .ok()?;
    if head.held != Some(b'}') {
        return None;
    }
    let rest = head.rest.strip_prefix(b",\"data\":")?;
    let data_start = bytes.len() - rest.len();
    let (data_text, tail) = rest.split_at(canonical_value_len(rest)?);
    // `{}` without a command, `{"command_id":…}` with one: after the data, `}` or `,"command_id":…}`.
    let tail_matches = if text.command_id.is_none() && text.envelope.is_none() {
        tail == b"}"
    } else {
        let mut rest = MatchingTail {
            rest: tail,
            started: false,
        };
        serde_json::to_writer(
            &mut rest,
            &TailText {
                command_id: text.command_id.as_ref(),
                envelope: text.envelope.as_ref(),
            },
        )
        .is_ok()
            && rest.started
            && rest.rest.is_empty()
    };
    if !tail_matches {
        return None;
    }
    let signed = match &text.envelope {
        None => None,
        Some(envelope) => Some(signed(envelope_from_text(envelope)?)),
    };
    Some(Parsed {
        record: text.into_record().0,
        data_text: Some(data_start..data_start + data_text.len()),
        canonical: true,
        signed,
    })
}

/// Reads a canonical record of the form the service writes whose strings need no unescaping,
/// field by field where they lie: `None` for any other record, for [`parse_canonical`] and the
/// readers after it to judge. Where it answers, it answers exactly as [`parse_canonical`] does.
///
/// The fields must stand in the order [`Record`] writes them, their strings free of escapes,
/// their numbers in plain digits; each typed field is read from its JSON text as
/// [`RecordText`] reads it and must write back as that text, the data must be canonical
/// ([`canonical_value_len`]), and the envelope must have the form the service writes.
fn parse_plain(bytes: &[u8]) -> Option<Parsed> {
    let mut cursor = Cursor { bytes, at: 0 };
    cursor.literal(b"{\"position\":")?;
    let position = cursor.integer()?;
    cursor.literal(b",\"stream\":")?;
    let (_, stream_text) = cursor.plain_string()?;
    let stream = StreamId::parse(stream_text).ok()?;
    // Written as its text in quotes, which needs no escapes as the text had none.
    if !writes_as(stream_text.as_bytes(), |writer| {
        std::io::Write::write_fmt(writer, format_args!("{stream}"))
    }) {
        return None;
    }
    cursor.literal(b",\"version\":")?;
    let version = cursor.integer()?;
    cursor.literal(b",\"type\":")?;
    let (_, event_type) = cursor.plain_string()?;
    cursor.literal(b",\"schema\":")?;
    let schema = u32::try_from(cursor.integer()?).ok()?;
    cursor.literal(b",\"recorded_at\":")?;
    let recorded_at = cursor.time()?;
    cursor.literal(b",\"data\":")?;
    let data_start = cursor.at;
    let data_end = data_start + canonical_value_len(&bytes[data_start..])?;
    cursor.at = data_end;
    let mut command_id = None;
    let mut signed_parts = None;
    if cursor.literal(b",\"command_id\":").is_some() {
        command_id = Some(cursor.typed_string::<CommandId>()?);
        if cursor.literal(b",\"envelope\":{\"payload\":").is_some() {
            let (_, payload) = cursor.plain_string()?;
            cursor.literal(b",\"payloadType\":")?;
            let (_, payload_type) = cursor.plain_string()?;
            cursor.literal(b",\"signatures\":[{\"keyid\":")?;
            let (_, keyid) = cursor.plain_string()?;
            cursor.literal(b",\"sig\":")?;
            let (_, sig) = cursor.plain_string()?;
            cursor.literal(b"}]}")?;
            signed_parts = Some((payload_type, payload, keyid, sig));
        }
    }
    cursor.literal(b"}")?;
    if cursor.at != bytes.len() {
        return None;
    }
    let signed = match signed_parts {
        None => None,
        Some((payload_type, payload, keyid, sig)) => {
            // Decoded as `Envelope::from_json_strings` decodes it, without building the envelope.
            let (payload, signature) = Envelope::decode_json_strings(payload, sig).ok()?;
            Some(Ok(Signed {
                keyid: keyid.to_owned(),
                signature,
                pae: dsse::pae(payload_type, &payload),
                command: Command::from_json(&payload).map_err(|error| error.to_string()),
                payload_type: if payload_type == COMMAND_PAYLOAD_TYPE {
                    Cow::Borrowed(COMMAND_PAYLOAD_TYPE)
                } else {
                    Cow::Owned(payload_type.to_owned())
                },
            }))
        }
    };
    Some(Parsed {
        record: Record {
            position,
            stream,
            version,
            event_type: event_type.to_owned(),
            schema,
            recorded_at,
            data: serde_json::Value::Null,
            command_id,
            envelope: None,
        },
        data_text: Some(data_start..data_end),
        canonical: true,
        signed,
    })
}

/// Where [`parse_plain`] is in a record's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Steps over `text` if the bytes go on with it.
    fn literal(&mut self, text: &[u8]) -> Option<()> {
        let rest = self.bytes.get(self.at..)?;
        rest.starts_with(text).then(|| self.at += text.len())
    }

    /// A string without escapes or control characters, which JSON reads as its bytes and
    /// `serde_json` writes as they are: its text with the quotes, and without them.
    fn plain_string(&mut self) -> Option<(&'a [u8], &'a str)> {
        let start = self.at;
        let content = self.bytes.get(start + 1..)?;
        if self.bytes.get(start) != Some(&b'"') {
            return None;
        }
        let length = plain_text_len(content)?;
        if content[length] != b'"' {
            return None;
        }
        let text = std::str::from_utf8(&content[..length]).ok()?;
        let end = start + 1 + length + 1;
        self.at = end;
        Some((&self.bytes[start..end], text))
    }

    /// A time read as [`RecordText`] reads it, which must write back exactly.
    fn time(&mut self) -> Option<DateTime<Utc>> {
        let start = self.at;
        let (quoted, text) = self.plain_string()?;
        if let Some(time) = whole_seconds_time(text) {
            return Some(time);
        }
        let time: DateTime<Utc> = serde_json::from_slice(quoted).ok()?;
        if is_whole_seconds_text(text, &time) {
            return Some(time);
        }
        self.at = start;
        self.typed_string()
    }

    /// A string read as a `T` from its JSON text, which `T` must write back exactly.
    fn typed_string<T: serde::de::DeserializeOwned + Serialize>(&mut self) -> Option<T> {
        let (quoted, _) = self.plain_string()?;
        let value: T = serde_json::from_slice(quoted).ok()?;
        let mut rest = Matching { rest: quoted };
        (serde_json::to_writer(&mut rest, &value).is_ok() && rest.rest.is_empty()).then_some(value)
    }

    /// An unsigned integer in the digits `serde_json` writes for it: no sign, no leading zeros,
    /// no fraction or exponent after it.
    fn integer(&mut self) -> Option<u64> {
        let start = self.at;
        let rest = self.bytes.get(start..)?;
        let length = rest
            .iter()
            .position(|byte| !byte.is_ascii_digit())
            .unwrap_or(rest.len());
        let digits = &rest[..length];
        if digits.is_empty()
            || (digits.len() > 1 && digits[0] == b'0')
            || matches!(rest.get(length), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        let number = std::str::from_utf8(digits).ok()?.parse().ok()?;
        self.at = start + length;
        Some(number)
    }
}

/// The length of the text of a string up to the first quote, backslash or control character,
/// looked for eight bytes at a time.
fn plain_text_len(text: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `word` is zero, or below `n` (at most 128): the high bit of that byte (and
    // perhaps of bytes above it) is set, and no high bit is set otherwise.
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGH;
    let has_below = |word: u64, n: u64| word.wrapping_sub(ONES * n) & !word & HIGH;
    let mut clean = 0;
    for chunk in text.chunks_exact(8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let special = has_zero(word ^ (ONES * u64::from(b'"')))
            | has_zero(word ^ (ONES * u64::from(b'\\')))
            | has_below(word, 0x20);
        if special != 0 {
            break;
        }
        clean += 8;
    }
    text[clean..]
        .iter()
        .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
        .map(|length| clean + length)
}

/// The year, month, day, hour, minute and second `text` spells if it has the form
/// `YYYY-MM-DDTHH:MM:SSZ`, whether or not they make a time.
fn whole_seconds_fields(text: &str) -> Option<[u32; 6]> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'Z';
    if !shaped {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = bytes.get(range)?;
        digits.iter().try_fold(0_u32, |value, &digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u32::from(digit - b'0'))
        })
    };
    Some([
        number(0..4)?,
        number(5..7)?,
        number(8..10)?,
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
    ])
}

/// The time `text` of the form `YYYY-MM-DDTHH:MM:SSZ` names, as chrono reads it, if it is one
/// (no leap second): chrono writes it back as `text`.
fn whole_seconds_time(text: &str) -> Option<DateTime<Utc>> {
    let [year, month, day, hour, minute, second] = whole_seconds_fields(text)?;
    chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_opt(hour, minute, second)
        .map(|time| time.and_utc())
}

/// Whether `text` is `YYYY-MM-DDTHH:MM:SSZ` spelling exactly `time`'s fields, with no fraction
/// of a second: what chrono writes for such a time.
fn is_whole_seconds_text(text: &str, time: &DateTime<Utc>) -> bool {
    use chrono::{Datelike as _, Timelike as _};
    time.nanosecond() == 0
        && whole_seconds_fields(text).is_some_and(|fields| {
            u32::try_from(time.year()).ok() == Some(fields[0])
                && [
                    time.month(),
                    time.day(),
                    time.hour(),
                    time.minute(),
                    time.second(),
                ] == fields[1..]
        })
}

/// Whether `write` writes exactly `expected`.
fn writes_as(
    expected: &[u8],
    write: impl FnOnce(&mut Matching<'_>) -> std::io::Result<()>,
) -> bool {
    let mut rest = Matching { rest: expected };
    write(&mut rest).is_ok() && rest.rest.is_empty()
}

/// The fields of a record before its data, as [`Record`] writes them.
#[derive(Serialize)]
struct HeadText<'a> {
    position: u64,
    stream: &'a StreamId,
    version: u64,
    #[serde(rename = "type")]
    event_type: &'a str,
    schema: u32,
    recorded_at: &'a DateTime<Utc>,
}

/// The fields of a record after its data, as [`Record`] writes them.
#[derive(Serialize)]
struct TailText<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    command_id: Option<&'a CommandId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    envelope: Option<&'a EnvelopeText<'a>>,
}

/// How deep [`canonical_value_len`] follows arrays and objects; deeper data is left to the
/// JSON value reader.
const CANONICAL_DEPTH: usize = 64;

/// The length of the JSON value at the start of `text` if it is exactly the compact text
/// `serde_json` writes for the value it spells (as a [`serde_json::Value`]: object keys in
/// sorted order, each once), `None` if it is not or if that is not certain here (numbers other
/// than integers, keys with escapes, deep nesting).
fn canonical_value_len(text: &[u8]) -> Option<usize> {
    canonical_value(text, 0, 0)
}

/// The end of the canonical value starting at `start`.
fn canonical_value(text: &[u8], start: usize, depth: usize) -> Option<usize> {
    match *text.get(start)? {
        b'n' => text[start..].starts_with(b"null").then_some(start + 4),
        b't' => text[start..].starts_with(b"true").then_some(start + 4),
        b'f' => text[start..].starts_with(b"false").then_some(start + 5),
        b'"' => canonical_string(text, start).map(|(end, _)| end),
        b'-' | b'0'..=b'9' => canonical_integer(text, start),
        b'[' if depth < CANONICAL_DEPTH => {
            let mut at = start + 1;
            if text.get(at) == Some(&b']') {
                return Some(at + 1);
            }
            loop {
                at = canonical_value(text, at, depth + 1)?;
                match text.get(at)? {
                    b',' => at += 1,
                    b']' => return Some(at + 1),
                    _ => return None,
                }
            }
        }
        b'{' if depth < CANONICAL_DEPTH => {
            let mut at = start + 1;
            if text.get(at) == Some(&b'}') {
                return Some(at + 1);
            }
            let mut previous_key: Option<&[u8]> = None;
            loop {
                let (key_end, plain) = canonical_string(text, at)?;
                let key = &text[at + 1..key_end - 1];
                // Keys in strictly increasing order: sorted, and none twice.
                if !plain || previous_key.is_some_and(|previous| previous >= key) {
                    return None;
                }
                previous_key = Some(key);
                if text.get(key_end) != Some(&b':') {
                    return None;
                }
                at = canonical_value(text, key_end + 1, depth + 1)?;
                match text.get(at)? {
                    b',' => at += 1,
                    b'}' => return Some(at + 1),
                    _ => return None,
                }
            }
        }
        _ => None,
    }
}

/// The end of the canonical string starting at `start` (its opening quote), and whether it has
/// no escapes.
fn canonical_string(text: &[u8], start: usize) -> Option<(usize, bool)> {
    if text.get(start) != Some(&b'"') {
        return None;
    }
    let mut at = start + 1;
    let mut plain = true;
    let mut run_start = at;
    loop {
        // Over the bytes that need no escape, eight at a time.
        at += plain_text_len(text.get(at..)?)?;
        let byte = *text.get(at)?;
        match byte {
            b'"' => {
                std::str::from_utf8(&text[run_start..at]).ok()?;
                return Some((at + 1, plain));
            }
            b'\\' => {
                std::str::from_utf8(&text[run_start..at]).ok()?;
                plain = false;
                let escaped = *text.get(at + 1)?;
                at += match escaped {
                    // The escapes serde_json writes, and only for the characters it escapes.
                    b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                    b'u' => {
                        let code = text.get(at + 2..at + 6)?;
                        let short = [0x08, 0x09, 0x0a, 0x0c, 0x0d];
                        let value = match code {
                            [b'0', b'0', high @ (b'0' | b'1'), low] => {
                                let low = match low {
                                    b'0'..=b'9' => low - b'0',
                                    b'a'..=b'f' => low - b'a' + 10,
                                    _ => return None,
                                };
                                (high - b'0') * 16 + low
                            }
                            _ => return None,
                        };
                        if short.contains(&value) {
                            return None;
                        }
                        6
                    }
                    _ => return None,
                };
                run_start = at;
            }
            0x00..=0x1f => return None,
            _ => at += 1,
        }
    }
}

/// The end of the canonical integer starting at `start`: no leading zeros, no `-0`, within the
/// range a JSON value holds as an integer, followed by no fraction or exponent.
fn canonical_integer(text: &[u8], start: usize) -> Option<usize> {
    let negative = text[start] == b'-';
    let digits_start = start + usize::from(negative);
    let digits_end = text[digits_start..]
        .iter()
        .position(|byte| !byte.is_ascii_digit())
        .map_or(text.len(), |offset| digits_start + offset);
    let digits = &text[digits_start..digits_end];
    if digits.is_empty()
        || (digits.len() > 1 && digits[0] == b'0')
        || matches!(text.get(digits_end), Some(b'.' | b'e' | b'E'))
    {
        return None;
    }
    let number = std::str::from_utf8(&text[start..digits_end]).ok()?;
    if negative {
        // `-0` reads as a float.
        (number.parse::<i64>().ok()? < 0).then_some(digits_end)
    } else {
        number.parse::<u64>().ok().map(|_| digits_end)
    }
}

/// What replay needs of a parsed command envelope.
fn signed(envelope: Envelope) -> Result<Signed, String> {
    let Envelope {
        payload_type,
        payload,
        signatures,
    } = envelope;
    let Ok([signature]) = <[dsse::Signature; 1]>::try_from(signatures) else {
        return Err("a command envelope carries exactly one signature".to_owned());
    };
    Ok(Signed {
        keyid: signature.keyid,
        signature: signature.sig,
        pae: dsse::pae(&payload_type, &payload),
        command: Command::from_json(&payload).map_err(|error| error.to_string()),
        payload_type: Cow::Owned(payload_type),
    })
}

/// The envelope of the form the service writes, from its strings read in place.
fn envelope_from_text(envelope: &EnvelopeText<'_>) -> Option<Envelope> {
    let built = match envelope.signatures.as_slice() {
        [signature] => Envelope::from_json_strings(
            &envelope.payload_type,
            &envelope.payload,
            &[(&*signature.keyid, &*signature.sig)],
        ),
        signatures => {
            let signatures: Vec<(&str, &str)> = signatures
                .iter()
                .map(|signature| (&*signature.keyid, &*signature.sig))
                .collect();
            Envelope::from_json_strings(&envelope.payload_type, &envelope.payload, &signatures)
        }
    };
    built.ok()
}

/// A record as [`Record`] reads it, but with an envelope of the form the service writes: every
/// field present, strings only, borrowed from the record's bytes where they need no unescaping.
///
/// Serialised, it writes the bytes [`Record::to_bytes`] writes for the same record (the
/// envelope's fields in the order of a JSON object's keys, as [`Record`]'s envelope value
/// writes them), so it also tells whether the record is canonical.
///
/// The data is a [`serde_json::Value`], or [`serde::de::IgnoredAny`] where it is read from the
/// record's text instead.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordText<'a, Data = serde_json::Value> {
    position: u64,
    stream: StreamId,
    version: u64,
    #[serde(rename = "type")]
    event_type: String,
    schema: u32,
    recorded_at: DateTime<Utc>,
    data: Data,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command_id: Option<CommandId>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    envelope: Option<EnvelopeText<'a>>,
}

impl<Data> RecordText<'_, Data> {
    /// The record without its data and envelope (`null` and none), and the data.
    fn into_record(self) -> (Record, Data) {
        let record = Record {
            position: self.position,
            stream: self.stream,
            version: self.version,
            event_type: self.event_type,
            schema: self.schema,
            recorded_at: self.recorded_at,
            data: serde_json::Value::Null,
            command_id: self.command_id,
            envelope: None,
        };
        (record, self.data)
    }
}

/// A DSSE envelope's JSON form, its fields in sorted order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeText<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
    #[serde(rename = "payloadType", borrow)]
    payload_type: Cow<'a, str>,
    #[serde(borrow)]
    signatures: Vec<SignatureText<'a>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureText<'a> {
    #[serde(borrow)]
    keyid: Cow<'a, str>,
    #[serde(borrow)]
    sig: Cow<'a, str>,
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
    workers: &Workers,
    mut items: Vec<T>,
    threads: usize,
    work: fn(Vec<T>) -> U,
) -> Vec<Pending<U>> {
    let size = items.len().div_ceil(threads.max(1)).max(1);
    let mut parts = Vec::new();
    while items.len() > size {
        let rest = items.split_off(size);
        parts.push(std::mem::replace(&mut items, rest));
    }
    parts.push(items);
    parts
        .into_iter()
        .map(|part| workers.spawn(move || work(part)))
        .collect()
}

/// Work handed to a worker thread.
type Task = Box<dyn FnOnce() + Send>;

/// Threads kept for the auditor's life, each taking the next task queued. Threads made once,
/// rather than for every chunk, keep the allocator's per-thread arenas few, and memory with them.
/// There are as many as the parts of one chunk being read and of the signatures being verified;
/// the tasks never wait for each other, so a task queued behind others only waits its turn.
struct Workers {
    tasks: Option<std::sync::mpsc::Sender<Task>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    fn new(count: usize) -> Self {
        let (tasks, queue) = std::sync::mpsc::channel::<Task>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let threads = (0..count.max(1))
            .map(|_| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next task.
                        let task = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match task {
                            Ok(task) => task(),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        Self {
            tasks: Some(tasks),
            threads,
        }
    }

    /// Runs `work` on a worker thread; its result (or its panic) comes back through
    /// [`join`].
    fn spawn<U: Send + 'static>(&self, work: impl FnOnce() -> U + Send + 'static) -> Pending<U> {
        let (result, pending) = std::sync::mpsc::sync_channel(1);
        let task: Task = Box::new(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // The auditor waiting for it may be gone; then nobody needs the result.
            let _ = result.send(outcome);
        });
        if let Some(tasks) = &self.tasks
            && let Err(std::sync::mpsc::SendError(task)) = tasks.send(task)
        {
            // No worker is left (they end only with the auditor): run it here.
            task();
        }
        Pending(pending)
    }
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Workers")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Closing the queue ends every worker once it is idle.
        self.tasks = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The result of work given to a worker thread.
#[derive(Debug)]
struct Pending<U>(std::sync::mpsc::Receiver<std::thread::Result<U>>);

/// The result of a worker's task; its panic goes on in the caller.
fn join<U>(pending: Pending<U>) -> U {
    match pending.0.recv() {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(disconnected) => std::panic::resume_unwind(Box::new(format!(
            "a worker thread ended without its result: {disconnected}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use umlauf_proof::dsse::{COMMAND_PAYLOAD_TYPE, sign};
    use umlauf_proof::keys::signing_key_from_seed;

    use chrono::{DateTime, Utc};

    use super::{
        Parsed, Recorded, canonical_value_len, is_whole_seconds_text, parse_any, parse_as_written,
        parse_canonical, parse_plain, plain_text_len, whole_seconds_time,
    };

    /// The parts of a parse that replay looks at, comparable.
    fn summary(parsed: &Result<Parsed, String>, bytes: &[u8]) -> String {
        match parsed {
            Err(error) => format!("error {error}"),
            Ok(parsed) => {
                let signed = parsed.signed.as_ref().map(|signed| {
                    signed.as_ref().map(|signed| {
                        (
                            &signed.keyid,
                            &signed.signature,
                            &signed.pae,
                            &signed.payload_type,
                            &signed.command,
                        )
                    })
                });
                format!(
                    "{:?} {} {signed:?}",
                    Recorded::new(parsed.record.clone(), parsed.data_text.clone(), bytes)
                        .with_data(),
                    parsed.canonical
                )
            }
        }
    }

    /// Checks that the fast reading agrees with the general one where it answers, and whether
    /// it answers.
    fn check(record: &str, answered: bool) {
        if let Some(plain) = parse_plain(record.as_bytes()) {
            let canonical = parse_canonical(record.as_bytes());
            assert!(canonical.is_some(), "{record}");
            assert_eq!(
                summary(&Ok(plain), record.as_bytes()),
                summary(&canonical.ok_or_else(String::new), record.as_bytes()),
                "{record}"
            );
        }
        if let Some(canonical) = parse_canonical(record.as_bytes()) {
            assert_eq!(
                summary(&Ok(canonical), record.as_bytes()),
                summary(&parse_any(record.as_bytes()), record.as_bytes()),
                "{record}"
            );
        }
        let fast = parse_as_written(record.as_bytes());
        assert_eq!(fast.is_some(), answered, "{record}");
        if let Some(fast) = fast {
            assert_eq!(
                summary(&fast, record.as_bytes()),
                summary(&parse_any(record.as_bytes()), record.as_bytes()),
                "{record}"
            );
        }
    }

    #[test]
    fn workers_hand_back_results_and_panics() {
        let workers = super::Workers::new(2);
        let pending: Vec<_> = (0..8_u64).map(|n| workers.spawn(move || n * n)).collect();
        let results: Vec<u64> = pending.into_iter().map(super::join).collect();
        assert_eq!(results, [0, 1, 4, 9, 16, 25, 36, 49]);
        let failing = workers.spawn(|| -> u64 { panic!("the task failed") });
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| super::join(failing)));
        assert_eq!(
            caught.unwrap_err().downcast_ref::<&str>(),
            Some(&"the task failed")
        );
        // The worker that ran it is still there.
        assert_eq!(super::join(workers.spawn(|| 7)), 7);
    }

    #[test]
    fn reading_records_as_written_agrees_with_reading_them_in_general() {
        let key = signing_key_from_seed([7; 32]);
        let envelope = sign(COMMAND_PAYLOAD_TYPE, br#"{"type":"CastVote"}"#, &key);
        let serde_json::Value::Object(fields) =
            serde_json::from_str::<serde_json::Value>(&envelope.to_json()).unwrap()
        else {
            panic!("an envelope is an object");
        };
        let payload = fields["payload"].as_str().unwrap();
        let signature = &fields["signatures"][0];
        let keyid = signature["keyid"].as_str().unwrap();
        let sig = signature["sig"].as_str().unwrap();
        let head = r#"{"position":7,"stream":"body/it-planungsrat","version":3,"type":"MemberRetired","schema":1,"recorded_at":"2026-03-02T09:00:00Z","data":{"member":"DE-SL"}"#;
        let command = r#""command_id":"0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10""#;
        let written = |envelope: &str| format!("{head},{command},\"envelope\":{envelope}}}");
        let canonical = format!(
            r#"{{"payload":"{payload}","payloadType":"{COMMAND_PAYLOAD_TYPE}","signatures":[{{"keyid":"{keyid}","sig":"{sig}"}}]}}"#
        );
        check(&written(&canonical), true);
        for record in [
            written(&canonical),
            format!("{head},{command}}}"),
            format!("{head}}}"),
        ] {
            assert!(parse_canonical(record.as_bytes()).is_some(), "{record}");
            assert!(parse_plain(record.as_bytes()).is_some(), "{record}");
        }
        // Forms the plain reader leaves to the others: escapes, spellings that read as the same
        // value but are not what the service writes, numbers out of range, another order.
        for (from, to) in [
            ("\"position\":7", "\"position\":07"),
            ("\"position\":7", "\"position\":7.0"),
            ("\"position\":7", "\"position\":-7"),
            ("\"position\":7", "\"position\":18446744073709551616"),
            ("\"schema\":1", "\"schema\":4294967296"),
            ("\"schema\":1", "\"schema\":4294967295"),
            ("MemberRetired", "Member\\u0052etired"),
            ("MemberRetired", "Member\\\\Retired"),
            ("body/it-planungsrat", "body/IT-Planungsrat"),
            ("body/it-planungsrat", "body\\/it-planungsrat"),
            ("09:00:00Z", "09:00:00+00:00"),
            ("09:00:00Z", "09:00:00.000Z"),
            ("09:00:00Z", "09:00:00.5Z"),
            (
                "0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10",
                "0B8F2F2E-6A8B-4C1E-9A51-3C2D2F7F9E10",
            ),
            (
                "0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10",
                "0b8f2f2e6a8b4c1e9a513c2d2f7f9e10",
            ),
            ("{\"member\":\"DE-SL\"}", "{\"member\":\"DE-\\u0053L\"}"),
            ("{\"member\":\"DE-SL\"}", "{\"member\" : \"DE-SL\"}"),
            ("\"version\":3,\"type\"", "\"type\""),
        ] {
            for record in [
                written(&canonical),
                format!("{head},{command}}}"),
                format!("{head}}}"),
            ] {
                if !record.contains(from) {
                    continue;
                }
                let changed = record.replacen(from, to, 1);
                check(&changed, parse_as_written(changed.as_bytes()).is_some());
                assert_eq!(
                    parse_plain(changed.as_bytes()).is_some(),
                    to.ends_with(":4294967295"),
                    "{changed}"
                );
            }
        }
        for record in [
            format!("{head},{command}}} "),
            format!(" {head},{command}}}"),
        ] {
            check(&record, true);
            assert!(parse_plain(record.as_bytes()).is_none(), "{record}");
        }
        check(
            &written(&canonical.replace(&format!("\"sig\":\"{sig}\""), "\"sig\":\"*\"")),
            false,
        );
        for record in [
            format!("{head},\"command_id\":null}}"),
            written(&canonical.replace(':', " : ")),
        ] {
            assert!(parse_canonical(record.as_bytes()).is_none(), "{record}");
        }
        check(&format!("{head},{command}}}"), true);
        check(&format!("{head}}}"), true);
        check(&format!("{head},\"command_id\":null}}"), true);
        check(&format!("{head},{command},\"envelope\":null}}"), true);
        check(&written(&canonical.replace(':', " : ")), true);
        check(
            &written(&canonical.replace(&format!("\"{keyid}\""), "\"k\\u0041\"")),
            true,
        );
        check(
            &written(&format!(
                r#"{{"payloadType":"{COMMAND_PAYLOAD_TYPE}","signatures":[{{"sig":"{sig}","keyid":"{keyid}"}}],"payload":"{payload}"}}"#
            )),
            true,
        );
        check(
            &written(&canonical.replace(&format!("\"sig\":\"{sig}\""), "\"sig\":\"*\"")),
            false,
        );
        check(
            &written(&canonical.replace(&format!("\"keyid\":\"{keyid}\","), "")),
            false,
        );
        check(&written(&canonical.replace("]}", "],\"x\":1}")), false);
        check(
            &written(&canonical.replace(
                &format!("{{\"keyid\":\"{keyid}\",\"sig\":\"{sig}\"}}"),
                &format!("{{\"keyid\":\"{keyid}\",\"sig\":\"{sig}\"}},{{\"keyid\":\"{keyid}\",\"sig\":\"{sig}\"}}"),
            )),
            false,
        );
        check(&written("[]"), false);
        check(&format!("{head},\"x\":1}}"), false);
        check("{\"position\":1}", false);
    }

    #[test]
    fn plain_text_ends_where_a_byte_at_a_time_finds_it() {
        for length in 0..40 {
            for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                for at in 0..=length {
                    let mut text: Vec<u8> = (0..length)
                        .map(|index| b' ' + u8::try_from(index % 90).unwrap())
                        .collect();
                    text.extend_from_slice("ü\x7f~".as_bytes());
                    if at < length {
                        text[at] = special;
                    }
                    let expected = text
                        .iter()
                        .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20);
                    assert_eq!(plain_text_len(&text), expected, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn whole_seconds_text_is_what_chrono_writes() {
        for text in [
            "2026-03-02T09:00:00Z",
            "0999-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2026-03-02T09:00:00.000Z",
            "2026-03-02T09:00:00.5Z",
            "2026-03-02T09:00:00.500Z",
            "2026-03-02T09:00:00+00:00",
            "2026-03-02T10:00:00+01:00",
            "2026-03-02t09:00:00z",
            "2026-03-02 09:00:00Z",
            "2016-12-31T23:59:60Z",
            "2026-03-02T09:00:00-00:00",
            "2026-02-29T09:00:00Z",
            "2028-02-29T09:00:00Z",
            "2026-13-01T09:00:00Z",
            "2026-00-01T09:00:00Z",
            "2026-04-31T09:00:00Z",
            "2026-03-02T24:00:00Z",
            "2026-03-02T09:60:00Z",
            "2026-03-02T09:00:61Z",
            "2026-03-02T+9:00:00Z",
            "2026-03-02T09:00:0aZ",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            let quoted = format!("\"{text}\"");
            let read = serde_json::from_str::<DateTime<Utc>>(&quoted).ok();
            // Where the direct reading answers, it answers as chrono does.
            if let Some(time) = whole_seconds_time(text) {
                assert_eq!(Some(time), read, "{text}");
            }
            let Some(time) = read else {
                assert!(whole_seconds_time(text).is_none(), "{text}");
                continue;
            };
            assert_eq!(
                whole_seconds_time(text).is_some(),
                is_whole_seconds_text(text, &time),
                "{text}"
            );
            let written = serde_json::to_string(&time).unwrap();
            if is_whole_seconds_text(text, &time) {
                assert_eq!(written, quoted);
            }
            assert_eq!(
                is_whole_seconds_text(text, &time),
                // Leap seconds and fractions are left to chrono to write.
                written == quoted && !text.contains('.') && !text.contains(":60"),
                "{text}"
            );
        }
    }

    #[test]
    fn canonical_text_is_what_serde_json_writes_for_the_value_it_spells() {
        let cases = [
            r#"null"#,
            r#"true"#,
            r#"false"#,
            r#"0"#,
            r#"-1"#,
            r#"18446744073709551615"#,
            r#"18446744073709551616"#,
            r#"-9223372036854775808"#,
            r#"-9223372036854775809"#,
            r#"-0"#,
            r#"01"#,
            r#"1.5"#,
            r#"1e3"#,
            r#""""#,
            r#""für""#,
            r#""f\u00fcr""#,
            r#""a\nb\"c\\""#,
            r#""a\u000ab""#,
            r#""a\u001fb""#,
            r#""a\u001Fb""#,
            r#""a\/b""#,
            r#""a/b""#,
            r#"[]"#,
            r#"[1,2,[3,{}]]"#,
            r#"[1, 2]"#,
            r#"{}"#,
            r#"{"a":1,"b":[true,null]}"#,
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"ab":2,"b":{"c":"d"}}"#,
            r#"{"a" :1}"#,
            r#"{"a\u0041":1}"#,
            r#"{"member":"DE-SL","choice":"yes"}"#,
        ];
        for case in cases {
            let canonical = serde_json::from_str::<serde_json::Value>(case)
                .and_then(|value| serde_json::to_vec(&value))
                .is_ok_and(|text| text == case.as_bytes());
            // Where it answers, it answers right; it answers for all but the forms it leaves to
            // the value reader.
            let length = canonical_value_len(case.as_bytes());
            if let Some(length) = length {
                assert_eq!(length, case.len(), "{case}");
                assert!(canonical, "{case}");
            }
            let left_to_the_reader = case.contains(r#"a\u0041"#) || case.contains('.');
            if canonical && !left_to_the_reader {
                assert_eq!(length, Some(case.len()), "{case}");
            }
        }
        assert_eq!(canonical_value_len(br#"{"a":1},"x""#), Some(7));
    }
}
