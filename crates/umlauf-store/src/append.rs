//! What an append carries, and the records the store hands back.

use chrono::{DateTime, Utc};
use umlauf_domain::body::Body;
use umlauf_domain::circulation::Circulation;
use umlauf_domain::ids::CommandId;
use umlauf_domain::read_model::{CirculationStatus, KeyStatus, key_statuses};
use umlauf_domain::{Event, Record, StreamId};

use crate::error::StoreError;
use crate::leaf::leaf_hash;

/// Events to append to one stream, with the read models as they are after them.
#[derive(Debug, Clone)]
pub struct Append {
    /// The stream to append to.
    pub stream: StreamId,
    /// The stream's version the events were decided against: 0 for a new stream. The append
    /// fails with [`StoreError::Conflict`] if the stream has moved on.
    pub expected_version: u64,
    /// The events, in order; at least one.
    pub events: Vec<Event>,
    /// Other streams the decision read, with the versions it read them at (a circulation's
    /// command depends on its body's keys and membership). If any of them has moved on when the
    /// append is judged (after the appends before it in its batch), the append fails with
    /// [`StoreError::Conflict`] and writes nothing. Empty: no check.
    pub depends_on: Vec<(StreamId, u64)>,
    /// `Some(n)`: the append is accepted only if the log's head position just before it is
    /// exactly `n`, else it fails with [`StoreError::Conflict`]. `Some(0)` makes an append the
    /// first record of the log or nothing. `None`: no check.
    pub expected_head: Option<u64>,
    /// The recording time (the service's clock); never earlier than the newest record's, or the
    /// append fails with [`StoreError::ClockBehind`].
    pub recorded_at: DateTime<Utc>,
    /// The signed command that caused the events; `None` for the service's own events.
    pub cause: Option<Cause>,
    /// The read models of the stream after the events, computed by the domain's pure folds.
    pub projection: Projection,
}

/// The signed command behind an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The command's id: the store accepts each id once.
    pub command_id: CommandId,
    /// The command's DSSE envelope as JSON; it is stored in the first record the command causes.
    pub envelope: serde_json::Value,
    /// The envelope's content digest (`umlauf_proof::dsse::Envelope::content_digest`): the same
    /// for the same payload and signature in any JSON formatting, different otherwise.
    pub digest: [u8; 32],
}

/// The read-model content of one stream after an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// A body stream: every key of the body ([`umlauf_domain::read_model::key_statuses`]).
    Body(Vec<KeyStatus>),
    /// A circulation stream: its status ([`CirculationStatus::of`]), `None` while it has not
    /// been opened. The inbox rows follow from [`CirculationStatus::inbox_members`].
    Circulation(Option<Box<CirculationStatus>>),
}

impl Projection {
    /// The projection of a body.
    pub fn of_body(body: &Body) -> Self {
        Self::Body(key_statuses(body))
    }

    /// The projection of a circulation.
    pub fn of_circulation(circulation: &Circulation) -> Self {
        Self::Circulation(CirculationStatus::of(circulation).map(Box::new))
    }

    /// The projection of a stream holding exactly `events`, folded from the empty state.
    pub fn fold<'a>(stream: &StreamId, events: impl IntoIterator<Item = &'a Event>) -> Self {
        match stream {
            StreamId::Body(_) => Self::of_body(&Body::fold(events)),
            StreamId::Circulation(_) => Self::of_circulation(&Circulation::fold(events)),
        }
    }

    /// Refuses a projection that does not belong to `stream`.
    pub(crate) fn check(&self, stream: &StreamId) -> Result<(), StoreError> {
        let mismatch = |what: String| {
            Err(StoreError::InvalidAppend(format!(
                "the projection for stream {stream} {what}"
            )))
        };
        match (stream, self) {
            (StreamId::Body(body), Self::Body(keys)) => {
                match keys.iter().find(|key| &key.body != body) {
                    Some(key) => mismatch(format!("holds a key of body {}", key.body)),
                    None => Ok(()),
                }
            }
            (StreamId::Circulation(id), Self::Circulation(status)) => match status {
                Some(status) if status.circulation != *id => mismatch(format!(
                    "is the status of circulation {}",
                    status.circulation
                )),
                _ => Ok(()),
            },
            (StreamId::Body(_), Self::Circulation(_)) => mismatch("is a circulation's".into()),
            (StreamId::Circulation(_), Self::Body(_)) => mismatch("is a body's".into()),
        }
    }
}

/// What an append returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The records the command caused, in position order.
    pub records: Vec<StoredRecord>,
    /// True when the command had been recorded before: `records` are the first result's and
    /// nothing was written now.
    pub duplicate: bool,
    /// The signed checkpoint note of the batch that committed the append: its tree size covers
    /// every record of the append. `None` without a [`crate::CheckpointSigner`] and for a
    /// duplicate.
    pub checkpoint: Option<String>,
}

impl Appended {
    /// The position of the last record.
    pub fn last_position(&self) -> Option<u64> {
        self.records.last().map(StoredRecord::position)
    }
}

/// One record as stored: its exact bytes, their leaf hash, and the record they spell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record, parsed from `bytes`.
    pub record: Record,
    /// The exact bytes written at append: the Merkle leaf and the JetStream message body.
    pub bytes: Vec<u8>,
    /// `SHA-256(0x00 ‖ bytes)`.
    pub leaf_hash: [u8; 32],
}

impl StoredRecord {
    /// The record's global position.
    pub fn position(&self) -> u64 {
        self.record.position
    }

    /// The record's event, upgraded to today's schema; the stored bytes stay as they are.
    pub fn event(&self) -> Result<Event, StoreError> {
        self.record.event().map_err(|error| {
            StoreError::InvalidRecord(format!("position {}: {error}", self.position()))
        })
    }

    /// A record just built for appending: serialised here, once.
    pub(crate) fn new(record: Record) -> Self {
        let bytes = record.to_bytes();
        let leaf_hash = leaf_hash(&bytes);
        Self {
            record,
            bytes,
            leaf_hash,
        }
    }

    /// A record placed for appending and its bytes, serialised by the caller: `bytes` are
    /// `record.to_bytes()`.
    pub(crate) fn with_bytes(record: Record, bytes: Vec<u8>) -> Self {
        debug_assert_eq!(bytes, record.to_bytes());
        let leaf_hash = leaf_hash(&bytes);
        Self {
            record,
            bytes,
            leaf_hash,
        }
    }

    /// A record read back from a row, checked against its row and its hash.
    pub(crate) fn from_record_row(row: RecordRow) -> Result<Self, StoreError> {
        Self::from_row(row.position, &row.stream, row.version, row.bytes, &row.hash)
    }

    /// A record read back from a row's columns, checked against them and its hash.
    pub(crate) fn from_row(
        position: i64,
        stream: &str,
        version: i64,
        bytes: Vec<u8>,
        stored_hash: &[u8],
    ) -> Result<Self, StoreError> {
        let row_position = u64::try_from(position).unwrap_or_default();
        let corrupt = |detail: String| StoreError::CorruptRecord {
            position: row_position,
            detail,
        };
        let leaf_hash = leaf_hash(&bytes);
        if leaf_hash.as_slice() != stored_hash {
            return Err(corrupt("its bytes do not match its leaf hash".into()));
        }
        let text =
            std::str::from_utf8(&bytes).map_err(|error| corrupt(format!("not UTF-8: {error}")))?;
        let record =
            Record::from_bytes(text.as_bytes()).map_err(|error| corrupt(error.to_string()))?;
        if i64::try_from(record.position).ok() != Some(position)
            || i64::try_from(record.version).ok() != Some(version)
            || record.stream.to_string() != stream
        {
            return Err(corrupt(format!(
                "the record says {} version {} at position {}, its row {stream} version {version}",
                record.stream, record.version, record.position
            )));
        }
        Ok(Self {
            record,
            bytes,
            leaf_hash,
        })
    }
}

/// A record as its row holds it, its bytes not parsed: for a reader that checks the bytes itself,
/// as an auditor does ([`crate::Store::read_raw_from`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// The record's global position.
    pub position: u64,
    /// The stored bytes.
    pub bytes: Vec<u8>,
    /// The leaf hash stored beside the bytes, not checked against them: the reader's to check.
    pub leaf_hash: [u8; 32],
}

/// A row of `log_records` as read, not yet checked.
pub(crate) struct RecordRow {
    pub(crate) position: i64,
    pub(crate) stream: String,
    pub(crate) version: i64,
    pub(crate) bytes: Vec<u8>,
    pub(crate) hash: Vec<u8>,
}

impl RawRecord {
    /// A row whose bytes begin as the store writes them, with the position, stream and version
    /// of the row, is taken as it is. Any other row is read in full, as
    /// [`StoredRecord`]s are, and refused as they are refused.
    pub(crate) fn from_row(row: RecordRow) -> Result<Self, StoreError> {
        let prefix = serde_json::to_string(&row.stream).map(|stream| {
            format!(
                "{{\"position\":{},\"stream\":{stream},\"version\":{},",
                row.position, row.version
            )
        });
        if let (Ok(position), Ok(leaf_hash), Ok(prefix)) = (
            u64::try_from(row.position),
            <[u8; 32]>::try_from(row.hash.as_slice()),
            prefix,
        ) && row.bytes.starts_with(prefix.as_bytes())
        {
            return Ok(Self {
                position,
                bytes: row.bytes,
                leaf_hash,
            });
        }
        let stored = StoredRecord::from_record_row(row)?;
        Ok(Self {
            position: stored.position(),
            bytes: stored.bytes,
            leaf_hash: stored.leaf_hash,
        })
    }
}

/// The head of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The newest position; 0 for an empty log.
    pub position: u64,
    /// The newest record's recording time; `None` for an empty log.
    pub recorded_at: Option<DateTime<Utc>>,
}
