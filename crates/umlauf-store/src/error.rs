//! Why the store refuses or fails an operation.
//!
//! Every variant has a stable, machine-readable [`StoreError::code`]; [`StoreError::is_retryable`]
//! says whether the same operation may succeed if the caller tries again (after reloading state or
//! reading its clock again).

use chrono::{DateTime, Utc};
use umlauf_domain::StreamId;
use umlauf_domain::ids::CommandId;

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency lost: the stream appended to, a stream the decision depended on,
    /// or the log's head is not where the append expected it (see `kind`). Nothing was written.
    /// Reload the state, decide again and retry.
    #[error("{}", conflict_message(*kind, stream, *expected, *actual))]
    Conflict {
        /// The stream appended to, or for [`ConflictKind::Dependency`] the stream depended on.
        stream: StreamId,
        /// The version (for [`ConflictKind::Head`]: the head position) the append expected.
        expected: u64,
        /// The actual version (or head position).
        actual: u64,
        /// What moved.
        kind: ConflictKind,
    },
    /// The command id was recorded before for a command with another payload or signature.
    /// Nothing was written.
    #[error("command id {command_id} was already used by another command")]
    CommandIdReused {
        /// The command id.
        command_id: CommandId,
    },
    /// The append's recording time is earlier than the newest record's: time never goes backwards
    /// in the log. Nothing was written. Read the clock again and retry.
    #[error("recording time {recorded_at} is earlier than the newest record's {head_recorded_at}")]
    ClockBehind {
        /// The recording time the append asked for.
        recorded_at: DateTime<Utc>,
        /// The recording time of the newest record in the log.
        head_recorded_at: DateTime<Utc>,
    },
    /// A record would be larger than the store accepts. Nothing was written.
    #[error("a record of {size} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// The record's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A stream name does not match `body/<id>` or `circulation/<uuid>`.
    #[error("invalid stream name: {0}")]
    InvalidStream(String),
    /// The append itself is malformed: no events, or a projection for another stream.
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// Bytes offered as a record are not one: not UTF-8, not a record's JSON, or not in order.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A stored record does not match its hash or its row, or is not a record's JSON at all: the
    /// database was changed behind the store's back.
    #[error("stored record at position {position} is corrupt: {detail}")]
    CorruptRecord {
        /// The record's position.
        position: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// A stored read-model row could not be read.
    #[error("stored read model is corrupt: {0}")]
    CorruptReadModel(String),
    /// The store was configured wrongly: an unsupported URL or an invalid schema name.
    #[error("invalid store configuration: {0}")]
    InvalidConfig(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The store's writer has stopped; the store is unusable.
    #[error("the store's writer has stopped")]
    Closed,
    /// The store was opened read-only ([`crate::StoreOptions::read_only`]): it does not append.
    #[error("the store is open read-only")]
    ReadOnly,
    /// The database opened read-only is not a log: the file is missing or the log's tables are.
    #[error("not a log: {0}")]
    NotALog(String),
    /// A proof, root or checkpoint was asked for a position or tree size the log does not have.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// The stored Merkle tree disagrees with itself, with the records or with a stored
    /// checkpoint: the database was changed behind the store's back. The store signs no
    /// checkpoint on such a tree.
    #[error("the stored Merkle tree is inconsistent: {0}")]
    InconsistentTree(String),
}

/// What a [`StoreError::Conflict`] found moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// The stream appended to is not at the expected version.
    Version,
    /// A stream the decision depended on ([`crate::Append::depends_on`]) has moved on.
    Dependency,
    /// The log's head is not at [`crate::Append::expected_head`].
    Head,
}

fn conflict_message(kind: ConflictKind, stream: &StreamId, expected: u64, actual: u64) -> String {
    match kind {
        ConflictKind::Version => {
            format!(
                "stream {stream} is at version {actual}, not at the expected version {expected}"
            )
        }
        ConflictKind::Dependency => format!(
            "stream {stream}, which the decision depended on, is at version {actual}, not at version {expected}"
        ),
        ConflictKind::Head => format!(
            "the log's head is at position {actual}, not at the expected position {expected}, for an append to stream {stream}"
        ),
    }
}

impl StoreError {
    /// The stable machine-readable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Conflict { .. } => "conflict",
            Self::CommandIdReused { .. } => "command_id_reused",
            Self::ClockBehind { .. } => "clock_behind",
            Self::RecordTooLarge { .. } => "record_too_large",
            Self::InvalidStream(_) => "invalid_stream",
            Self::InvalidAppend(_) => "invalid_append",
            Self::InvalidRecord(_) => "invalid_record",
            Self::CorruptRecord { .. } => "corrupt_record",
            Self::CorruptReadModel(_) => "corrupt_read_model",
            Self::InvalidConfig(_) => "invalid_config",
            Self::Database(_) => "database",
            Self::Migration(_) => "migration",
            Self::Closed => "store_closed",
            Self::ReadOnly => "read_only",
            Self::NotALog(_) => "not_a_log",
            Self::OutOfRange(_) => "out_of_range",
            Self::InconsistentTree(_) => "inconsistent_tree",
        }
    }

    /// Whether trying again may succeed: after a conflict (with freshly loaded state), after a
    /// clock that was behind (with a fresh reading), and after a transient database failure.
    /// Retrying a command that may have been recorded is safe: its command id makes the retry a
    /// duplicate, which returns the first result.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Conflict { .. } | Self::ClockBehind { .. } => true,
            Self::Database(error) => {
                matches!(
                    error,
                    sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed
                ) || is_transient_database_error(error)
            }
            _ => false,
        }
    }
}

/// Busy or locked (SQLite), serialization failure or deadlock (PostgreSQL): conditions that pass.
fn is_transient_database_error(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database) = error else {
        return false;
    };
    matches!(
        database.code().as_deref(),
        Some("5" | "6" | "517" | "40001" | "40P01" | "57P01")
    )
}

/// Turns a stream name into a [`StreamId`], refusing anything outside `body/<id>` and
/// `circulation/<uuid>` with [`StoreError::InvalidStream`].
pub fn parse_stream(name: &str) -> Result<StreamId, StoreError> {
    StreamId::parse(name).map_err(|error| StoreError::InvalidStream(error.detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_outside_the_pattern_are_refused_with_their_own_code() {
        assert!(parse_stream("body/it-planungsrat").is_ok());
        for bad in ["", "body/IT", "member/DE", "circulation/x", "body/a\u{0}b"] {
            let error = parse_stream(bad).unwrap_err();
            assert_eq!(error.code(), "invalid_stream", "{bad:?}");
            assert!(!error.is_retryable());
        }
    }
}
