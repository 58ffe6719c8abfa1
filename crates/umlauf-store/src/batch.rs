//! Planning one group commit: which appends of a batch succeed, which fail, and the exact records.
//!
//! This is the pure half of the writer. Given what the batch's transaction read under the head
//! lock (the head, the versions of the streams involved, the command ids already recorded), it
//! walks the appends in the writer's order (see the `writer` module), checks each against the state left by the appends before
//! it (so several commands on one stream in one batch land in order), builds and serialises the
//! records of those that pass, and gives each that fails its own error without failing the others.
//! The backends then write the plan in the same transaction.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Utc};
use umlauf_domain::ids::CommandId;
use umlauf_domain::{Event, Record, StreamId};

use crate::append::{Append, Appended, Cause, StoredRecord};
use crate::error::{ConflictKind, StoreError};
use crate::read_models::ProjectionRows;
use crate::tree::{self, Growth, TreeState};

/// An append checked and half-serialised by the caller's task, ready for the writer.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) stream: StreamId,
    pub(crate) expected_version: u64,
    /// Other streams and the versions the decision read them at.
    pub(crate) depends_on: Vec<(StreamId, u64)>,
    /// The head the append must find, if any.
    pub(crate) expected_head: Option<u64>,
    /// The stream's version after the append.
    pub(crate) last_version: u64,
    pub(crate) events: Vec<PreparedEvent>,
    pub(crate) recorded_at: DateTime<Utc>,
    pub(crate) cause: Option<Cause>,
    pub(crate) rows: ProjectionRows,
}

/// One event's record, complete but for its position, and serialised but for it.
///
/// Everything in a record except its position is known when the append is prepared: the stream,
/// the version it will have if it is accepted, the recording time, the command. So the caller's
/// task serialises the record with position 0, and the writer only writes the position in front
/// of the rest, which takes the serialising off the log's critical section.
#[derive(Debug)]
pub(crate) struct PreparedEvent {
    /// The record at position 0; `None` while it is in a plan's records.
    record: Option<Record>,
    /// The record's bytes after [`POSITION_ZERO`]; `None` if they do not begin with it (not
    /// while the position is the record's first field), and the record is then serialised whole
    /// when it is placed.
    tail: Option<Vec<u8>>,
}

/// How a record's bytes begin at position 0: the position is the first field.
const POSITION_ZERO: &[u8] = b"{\"position\":0";

impl PreparedEvent {
    fn new(record: Record) -> Self {
        let mut bytes = record.to_bytes();
        let tail = bytes.starts_with(POSITION_ZERO).then(|| {
            bytes.drain(..POSITION_ZERO.len());
            bytes
        });
        Self {
            record: Some(record),
            tail,
        }
    }

    /// The record placed at `position`, with its bytes and leaf hash.
    fn place(&mut self, position: u64) -> Option<StoredRecord> {
        let mut record = self.record.take()?;
        record.position = position;
        let Some(tail) = &self.tail else {
            return Some(StoredRecord::new(record));
        };
        let mut bytes = Vec::with_capacity(POSITION_ZERO.len() + 20 + tail.len());
        bytes.extend_from_slice(&POSITION_ZERO[..POSITION_ZERO.len() - 1]);
        bytes.extend_from_slice(position.to_string().as_bytes());
        bytes.extend_from_slice(tail);
        Some(StoredRecord::with_bytes(record, bytes))
    }

    /// Takes back a record that was placed, for placing it again.
    fn restore(&mut self, mut record: Record) {
        record.position = 0;
        self.record = Some(record);
    }
}

impl Prepared {
    /// Checks an append that needs no database to judge, and does the work that needs no
    /// position yet: the events' data and the read-model rows.
    pub(crate) fn new(append: Append) -> Result<Self, StoreError> {
        if append.events.is_empty() {
            return Err(StoreError::InvalidAppend(
                "an append needs at least one event".into(),
            ));
        }
        let last_version = u64::try_from(append.events.len())
            .ok()
            .and_then(|count| append.expected_version.checked_add(count))
            .filter(|version| i64::try_from(*version).is_ok())
            .ok_or_else(|| {
                StoreError::InvalidAppend(format!(
                    "expected version {} is out of range",
                    append.expected_version
                ))
            })?;
        if !(1..=9999).contains(&append.recorded_at.year()) {
            return Err(StoreError::InvalidAppend(format!(
                "recording time {} is outside the years 1 to 9999",
                append.recorded_at
            )));
        }
        let rows = ProjectionRows::of(&append.stream, &append.projection)?;
        let mut cause = append.cause;
        let events = (1u64..)
            .zip(&append.events)
            .map(|(offset, event)| {
                PreparedEvent::new(Record {
                    position: 0,
                    stream: append.stream.clone(),
                    version: append.expected_version + offset,
                    event_type: event.type_name().to_owned(),
                    schema: Event::SCHEMA_VERSION,
                    recorded_at: append.recorded_at,
                    data: event.data(),
                    command_id: cause.as_ref().map(|cause| cause.command_id),
                    // The envelope is stored with the command's first record.
                    envelope: match cause.as_mut() {
                        Some(cause) if offset == 1 => Some(std::mem::take(&mut cause.envelope)),
                        _ => None,
                    },
                })
            })
            .collect();
        if let Some((stream, version)) = append
            .depends_on
            .iter()
            .find(|(_, version)| i64::try_from(*version).is_err())
        {
            return Err(StoreError::InvalidAppend(format!(
                "the dependency on stream {stream} at version {version} is out of range"
            )));
        }
        Ok(Self {
            stream: append.stream,
            expected_version: append.expected_version,
            depends_on: append.depends_on,
            expected_head: append.expected_head,
            last_version,
            events,
            recorded_at: append.recorded_at,
            cause,
            rows,
        })
    }
}

impl Prepared {
    /// The streams whose versions judging the append needs: its own, then its dependencies.
    pub(crate) fn streams(&self) -> impl Iterator<Item = &StreamId> {
        std::iter::once(&self.stream).chain(self.depends_on.iter().map(|(stream, _)| stream))
    }
}

/// A batch whose transaction failed, with its appends for another try.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: StoreError,
    pub(crate) items: Vec<Prepared>,
}

/// What a batch's transaction read under the head lock.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// The head position.
    pub(crate) head: u64,
    /// The head record's recording time.
    pub(crate) head_recorded_at: Option<DateTime<Utc>>,
    /// The current version of every stream the batch appends to or depends on that has any
    /// records.
    pub(crate) stream_versions: HashMap<StreamId, u64>,
    /// The digest of every command id of the batch that is already recorded.
    pub(crate) known_commands: HashMap<CommandId, [u8; 32]>,
}

/// What became of one append of the batch.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Appended: these records of the plan.
    New { first: usize, count: usize },
    /// The same command as an earlier append of this batch.
    DuplicateInBatch { earlier: usize },
    /// The same command as one recorded before: its records are read from the database.
    DuplicateStored(CommandId),
    /// Refused; nothing written for it.
    Refused(StoreError),
}

/// A command row to insert.
#[derive(Debug)]
pub(crate) struct NewCommand {
    pub(crate) command_id: CommandId,
    pub(crate) digest: [u8; 32],
    pub(crate) first_position: u64,
    pub(crate) record_count: u64,
}

/// Everything one batch writes, and what each append gets back.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) outcomes: Vec<Outcome>,
    /// The new records, in position order.
    pub(crate) records: Vec<StoredRecord>,
    pub(crate) commands: Vec<NewCommand>,
    /// The version of every stream of the batch after it.
    pub(crate) stream_versions: HashMap<StreamId, u64>,
    /// For every stream appended to, the index of its last successful append, whose projection is
    /// the stream's read model after the batch.
    pub(crate) projections: BTreeMap<StreamId, usize>,
    /// The head before the batch: where it was planned against.
    pub(crate) head_before: u64,
    /// The head after the batch.
    pub(crate) head: u64,
    /// The head's recording time after the batch.
    pub(crate) head_recorded_at: Option<DateTime<Utc>>,
    /// The batch's appends; the event data and envelopes of those appended moved into
    /// `records` (see [`Plan::into_items`]).
    pub(crate) items: Vec<Prepared>,
    /// What the records add to the Merkle tree, once [`Plan::grow`] has run.
    pub(crate) growth: Option<Growth>,
}

impl Plan {
    /// Whether the batch writes anything.
    pub(crate) fn writes_anything(&self) -> bool {
        !self.records.is_empty()
    }

    /// Grows the Merkle tree by the plan's records from `tree`'s frontier, which must stand at
    /// the head the plan was made against, and signs the checkpoint for the new size.
    pub(crate) fn grow(&mut self, tree: &TreeState) -> Result<(), StoreError> {
        if !self.writes_anything() {
            return Ok(());
        }
        let frontier = tree
            .frontier
            .as_ref()
            .filter(|frontier| frontier.size() == self.head_before)
            .ok_or_else(|| {
                StoreError::InconsistentTree(format!(
                    "the writer's tree is not at the head {}",
                    self.head_before
                ))
            })?;
        self.growth = Some(tree::grow(frontier, &self.records, tree.signer.as_ref())?);
        Ok(())
    }

    /// Once the plan is committed: the writer's tree moves on with it.
    pub(crate) fn committed(&self, tree: &mut TreeState) {
        if let Some(growth) = &self.growth {
            tree.frontier = Some(growth.frontier.clone());
        }
    }

    /// The command ids whose first result must be read back from the database.
    pub(crate) fn stored_duplicates(&self) -> Vec<CommandId> {
        let mut ids: Vec<CommandId> = self
            .outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Outcome::DuplicateStored(id) => Some(*id),
                _ => None,
            })
            .collect();
        ids.sort_unstable_by_key(|id| id.0);
        ids.dedup();
        ids
    }

    /// Each append's result, once the plan is committed; `stored` holds the records of the
    /// [`Plan::stored_duplicates`]. The new records move into the results.
    pub(crate) fn into_results(
        self,
        stored: &HashMap<CommandId, Vec<StoredRecord>>,
    ) -> Vec<Result<Appended, StoreError>> {
        let Plan {
            outcomes,
            records,
            growth,
            ..
        } = self;
        let checkpoint = growth.and_then(|growth| growth.checkpoint);
        // Copies for duplicates of appends in this batch (rare), taken before the records move.
        let mut copies: HashMap<usize, Vec<StoredRecord>> = HashMap::new();
        for outcome in &outcomes {
            if let Outcome::DuplicateInBatch { earlier } = outcome
                && let Some(Outcome::New { first, count }) = outcomes.get(*earlier)
            {
                let copy = records.get(*first..first + count).map(<[_]>::to_vec);
                copies.insert(*earlier, copy.unwrap_or_default());
            }
        }
        let mut records = records.into_iter();
        outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Outcome::New { count, .. } => Ok(Appended {
                    records: records.by_ref().take(count).collect(),
                    duplicate: false,
                    checkpoint: checkpoint.clone(),
                }),
                Outcome::DuplicateInBatch { earlier } => Ok(Appended {
                    records: copies.get(&earlier).cloned().unwrap_or_default(),
                    duplicate: true,
                    checkpoint: None,
                }),
                Outcome::DuplicateStored(id) => Ok(Appended {
                    records: stored.get(&id).cloned().unwrap_or_default(),
                    duplicate: true,
                    checkpoint: None,
                }),
                Outcome::Refused(error) => Err(error),
            })
            .collect()
    }

    /// The batch's appends as they were before planning, for committing them again (one by one,
    /// after the batch's transaction failed): the event data and envelopes move back out of the
    /// records.
    pub(crate) fn into_items(self) -> Vec<Prepared> {
        let Plan {
            outcomes,
            records,
            mut items,
            ..
        } = self;
        let mut records = records.into_iter();
        for (outcome, item) in outcomes.iter().zip(items.iter_mut()) {
            if let Outcome::New { count, .. } = outcome {
                restore(item, records.by_ref().take(*count));
            }
        }
        items
    }
}

/// Moves an append's records back into the append.
fn restore(item: &mut Prepared, records: impl Iterator<Item = StoredRecord>) {
    for (event, stored) in item.events.iter_mut().zip(records) {
        event.restore(stored.record);
    }
}

/// Plans a batch: see the module documentation. `max_record_bytes` limits each record's size.
pub(crate) fn plan(snapshot: Snapshot, mut items: Vec<Prepared>, max_record_bytes: usize) -> Plan {
    let Snapshot {
        mut head,
        mut head_recorded_at,
        mut stream_versions,
        known_commands,
    } = snapshot;
    let head_before = head;
    for item in &items {
        for stream in item.streams() {
            stream_versions.entry(stream.clone()).or_insert(0);
        }
    }
    let mut outcomes = Vec::with_capacity(items.len());
    let mut records: Vec<StoredRecord> = Vec::new();
    let mut commands = Vec::new();
    let mut projections = BTreeMap::new();
    // Command ids appended by this batch so far: their digest and the append's index.
    let mut batch_commands: HashMap<CommandId, ([u8; 32], usize)> = HashMap::new();

    for (index, item) in items.iter_mut().enumerate() {
        if let Some(cause) = &item.cause {
            let earlier = batch_commands
                .get(&cause.command_id)
                .map(|(digest, earlier)| (*digest, Some(*earlier)))
                .or_else(|| {
                    known_commands
                        .get(&cause.command_id)
                        .map(|digest| (*digest, None))
                });
            match earlier {
                Some((digest, _)) if digest != cause.digest => {
                    outcomes.push(Outcome::Refused(StoreError::CommandIdReused {
                        command_id: cause.command_id,
                    }));
                    continue;
                }
                Some((_, Some(earlier))) => {
                    outcomes.push(Outcome::DuplicateInBatch { earlier });
                    continue;
                }
                Some((_, None)) => {
                    outcomes.push(Outcome::DuplicateStored(cause.command_id));
                    continue;
                }
                None => {}
            }
        }
        if let Some(conflict) = conflict(item, head, &stream_versions) {
            outcomes.push(Outcome::Refused(conflict));
            continue;
        }
        if let Some(head_recorded_at) = head_recorded_at
            && item.recorded_at < head_recorded_at
        {
            outcomes.push(Outcome::Refused(StoreError::ClockBehind {
                recorded_at: item.recorded_at,
                head_recorded_at,
            }));
            continue;
        }
        match build_records(item, head, max_record_bytes) {
            Ok(built) => {
                let count = built.len();
                let first = records.len();
                if let Some(cause) = &item.cause {
                    commands.push(NewCommand {
                        command_id: cause.command_id,
                        digest: cause.digest,
                        first_position: head + 1,
                        record_count: item.last_version - item.expected_version,
                    });
                    batch_commands.insert(cause.command_id, (cause.digest, index));
                }
                records.extend(built);
                head += item.last_version - item.expected_version;
                head_recorded_at = Some(item.recorded_at);
                stream_versions.insert(item.stream.clone(), item.last_version);
                projections.insert(item.stream.clone(), index);
                outcomes.push(Outcome::New { first, count });
            }
            Err(error) => outcomes.push(Outcome::Refused(error)),
        }
    }
    Plan {
        outcomes,
        records,
        commands,
        projections,
        stream_versions,
        head_before,
        head,
        head_recorded_at,
        items,
        growth: None,
    }
}

/// The conflict of an append with the log as the appends before it left it: its stream's
/// version, then its dependencies, then the head.
fn conflict(
    item: &Prepared,
    head: u64,
    stream_versions: &HashMap<StreamId, u64>,
) -> Option<StoreError> {
    let version_of = |stream: &StreamId| stream_versions.get(stream).copied().unwrap_or(0);
    let version = version_of(&item.stream);
    if version != item.expected_version {
        return Some(StoreError::Conflict {
            stream: item.stream.clone(),
            expected: item.expected_version,
            actual: version,
            kind: ConflictKind::Version,
        });
    }
    for (stream, expected) in &item.depends_on {
        let actual = version_of(stream);
        if actual != *expected {
            return Some(StoreError::Conflict {
                stream: stream.clone(),
                expected: *expected,
                actual,
                kind: ConflictKind::Dependency,
            });
        }
    }
    match item.expected_head {
        Some(expected) if expected != head => Some(StoreError::Conflict {
            stream: item.stream.clone(),
            expected,
            actual: head,
            kind: ConflictKind::Head,
        }),
        _ => None,
    }
}

/// The records of one append placed after `head`. If a record is too large they move back and
/// the append is refused.
fn build_records(
    item: &mut Prepared,
    head: u64,
    max_record_bytes: usize,
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut built = Vec::with_capacity(item.events.len());
    let mut too_large = None;
    for (offset, event) in (1u64..).zip(item.events.iter_mut()) {
        let Some(stored) = event.place(head + offset) else {
            restore(item, built.into_iter());
            return Err(StoreError::InvalidAppend(
                "the append's records are already placed in another batch".into(),
            ));
        };
        if stored.bytes.len() > max_record_bytes {
            too_large = Some(stored.bytes.len());
        }
        built.push(stored);
        if too_large.is_some() {
            break;
        }
    }
    match too_large {
        None => Ok(built),
        Some(size) => {
            restore(item, built.into_iter());
            Err(StoreError::RecordTooLarge {
                size,
                limit: max_record_bytes,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use umlauf_domain::event::MemberRetired;
    use umlauf_domain::ids::{BodyId, MemberId};

    use super::*;
    use crate::append::Projection;

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_442_000 + second, 0).unwrap()
    }

    fn stream(body: &str) -> StreamId {
        StreamId::Body(BodyId::parse(body).unwrap())
    }

    /// An append of `count` events to `body`'s stream at `expected`, caused by command `id`.
    fn append(body: &str, expected: u64, count: usize, id: u128, second: i64) -> Prepared {
        let envelope = serde_json::json!({"payload": format!("command {id}")});
        prepared(body, (expected, count), id, second, envelope)
    }

    /// One event appended to a new stream of `body`, caused by command `id` with `envelope`.
    fn append_with_envelope(body: &str, envelope: serde_json::Value, id: u128) -> Prepared {
        prepared(body, (0, 1), id, 1, envelope)
    }

    fn prepared(
        body: &str,
        (expected, count): (u64, usize),
        id: u128,
        second: i64,
        envelope: serde_json::Value,
    ) -> Prepared {
        let events = (0..count)
            .map(|_| {
                Event::MemberRetired(MemberRetired {
                    member: MemberId::parse("DE").unwrap(),
                })
            })
            .collect();
        Prepared::new(Append {
            stream: stream(body),
            expected_version: expected,
            events,
            depends_on: Vec::new(),
            expected_head: None,
            recorded_at: at(second),
            cause: Some(Cause {
                command_id: CommandId(uuid::Uuid::from_u128(id)),
                envelope,
                digest: [u8::try_from(id % 256).unwrap(); 32],
            }),
            projection: Projection::Body(Vec::new()),
        })
        .unwrap()
    }

    fn codes(results: &[Result<Appended, StoreError>]) -> Vec<String> {
        results
            .iter()
            .map(|result| match result {
                Ok(appended) if appended.duplicate => {
                    format!("duplicate {:?}", appended.last_position())
                }
                Ok(appended) => format!("new {:?}", appended.last_position()),
                Err(error) => error.code().to_owned(),
            })
            .collect()
    }

    #[test]
    fn a_batch_is_judged_in_order_each_append_against_the_ones_before() {
        let snapshot = Snapshot {
            head: 10,
            head_recorded_at: Some(at(5)),
            stream_versions: [(stream("a"), 3)].into_iter().collect(),
            known_commands: [(CommandId(uuid::Uuid::from_u128(99)), [99; 32])]
                .into_iter()
                .collect(),
        };
        let items = vec![
            append("a", 3, 2, 1, 5),  // a: 4, 5 at positions 11, 12
            append("a", 5, 1, 2, 6),  // a: 6 at 13, after the first
            append("a", 5, 1, 3, 6),  // lost the race to the second
            append("b", 0, 1, 1, 7),  // the first command again: a duplicate in the batch
            append("b", 0, 1, 99, 7), // recorded before, same digest
            append("b", 0, 1, 4, 4),  // clock behind the head, which is at second 6 now
            append("b", 0, 1, 2, 8),  // the second command's id with another digest
            append("b", 1, 1, 5, 8),  // b is at 0: a conflict
            append("b", 0, 1, 6, 9),  // b: 1 at 14
        ];
        let mut items = items;
        items[6].cause.as_mut().unwrap().digest = [7; 32];
        let plan = plan(snapshot, items, 1 << 20);
        assert_eq!(plan.head_before, 10);
        assert_eq!(plan.head, 14);
        assert_eq!(plan.head_recorded_at, Some(at(9)));
        assert_eq!(plan.stream_versions[&stream("a")], 6);
        assert_eq!(plan.stream_versions[&stream("b")], 1);
        assert_eq!(
            plan.stored_duplicates(),
            [CommandId(uuid::Uuid::from_u128(99))]
        );
        assert_eq!(plan.commands.len(), 3);
        assert_eq!(plan.projections[&stream("a")], 1);
        assert_eq!(plan.projections[&stream("b")], 8);
        let positions: Vec<u64> = plan.records.iter().map(StoredRecord::position).collect();
        assert_eq!(positions, [11, 12, 13, 14]);
        // The envelope is on the first record of each command only.
        let envelopes: Vec<bool> = plan
            .records
            .iter()
            .map(|stored| stored.record.envelope.is_some())
            .collect();
        assert_eq!(envelopes, [true, false, true, true]);
        assert!(
            plan.records
                .iter()
                .all(|stored| stored.bytes == stored.record.to_bytes())
        );

        let results = plan.into_results(&HashMap::new());
        assert_eq!(
            codes(&results),
            [
                "new Some(12)",
                "new Some(13)",
                "conflict",
                "duplicate Some(12)",
                "duplicate None",
                "clock_behind",
                "command_id_reused",
                "conflict",
                "new Some(14)",
            ]
        );
    }

    #[test]
    fn dependencies_and_the_expected_head_are_judged_after_the_appends_before() {
        let snapshot = Snapshot {
            head: 10,
            stream_versions: [(stream("a"), 3)].into_iter().collect(),
            ..Snapshot::default()
        };
        let mut items = vec![
            append("b", 0, 1, 1, 1), // b depends on a at 3: still there; b at 1, head 11
            append("c", 0, 1, 2, 1), // c depends on b at 0: b moved in this batch
            append("a", 3, 1, 3, 1), // a at 4, head 12
            append("c", 0, 1, 4, 1), // c depends on a at 3: moved by the append before
            append("c", 0, 1, 5, 1), // head must be 11: it is 12
            append("c", 0, 1, 6, 1), // head must be 12: c at 1, head 13
            append("d", 0, 1, 7, 1), // head must be 0
        ];
        items[0].depends_on = vec![(stream("a"), 3)];
        items[1].depends_on = vec![(stream("b"), 0)];
        items[3].depends_on = vec![(stream("a"), 3), (stream("b"), 1)];
        items[4].expected_head = Some(11);
        items[5].expected_head = Some(12);
        items[6].expected_head = Some(0);
        let plan = plan(snapshot, items, 1 << 20);
        assert_eq!(plan.head, 13);
        assert_eq!(plan.stream_versions[&stream("b")], 1);
        let results = plan.into_results(&HashMap::new());
        assert_eq!(
            codes(&results),
            [
                "new Some(11)",
                "conflict",
                "new Some(12)",
                "conflict",
                "conflict",
                "new Some(13)",
                "conflict",
            ]
        );
        let kinds: Vec<Option<(String, u64, u64, ConflictKind)>> = results
            .iter()
            .map(|result| match result {
                Err(StoreError::Conflict {
                    stream,
                    expected,
                    actual,
                    kind,
                }) => Some((stream.to_string(), *expected, *actual, *kind)),
                _ => None,
            })
            .collect();
        assert_eq!(
            kinds[1],
            Some(("body/b".into(), 0, 1, ConflictKind::Dependency))
        );
        assert_eq!(
            kinds[3],
            Some(("body/a".into(), 3, 4, ConflictKind::Dependency))
        );
        assert_eq!(
            kinds[4],
            Some(("body/c".into(), 11, 12, ConflictKind::Head))
        );
        assert_eq!(kinds[6], Some(("body/d".into(), 0, 13, ConflictKind::Head)));
    }

    #[test]
    fn an_oversize_append_is_refused_alone_and_keeps_its_data() {
        let big = append_with_envelope("a", serde_json::json!({"payload": "x".repeat(600)}), 1);
        let plan = plan(Snapshot::default(), vec![big, append("b", 0, 1, 2, 1)], 500);
        let kept = plan.items[0].events[0].record.as_ref().unwrap();
        assert_eq!(kept.position, 0);
        assert_eq!(
            kept.envelope.as_ref().unwrap()["payload"]
                .as_str()
                .map(str::len),
            Some(600)
        );
        assert_eq!(kept.data["member"], "DE");
        let results = plan.into_results(&HashMap::new());
        assert_eq!(codes(&results), ["record_too_large", "new Some(1)"]);
    }

    #[test]
    fn a_plan_gives_its_appends_back_as_they_were() {
        let items = vec![
            append("a", 0, 2, 1, 1),
            append("a", 7, 1, 2, 1),
            append("b", 0, 1, 3, 2),
        ];
        let before: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
        let plan = plan(Snapshot::default(), items, 1 << 20);
        assert_eq!(plan.records.len(), 3);
        let after: Vec<String> = plan
            .into_items()
            .iter()
            .map(|item| format!("{item:?}"))
            .collect();
        assert_eq!(after, before);
    }
}
