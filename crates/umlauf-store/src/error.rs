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
    /// Optimistic concurrency lost: the stream is not at the version the append expected.
    /// Nothing was written. Reload the stream, decide again and retry.
    #[error("stream {stream} is at version {actual}, not at the expected version {expected}")]
    Conflict {
        /// The stream appended to.
        stream: StreamId,
        /// The version the append expected.
        expected: u64,
        /// The stream's actual version.
        actual: u64,
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
