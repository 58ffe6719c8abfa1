//! Conversions between the store's values and database columns, shared by both backends.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::append::{Head, RecordRow};
use crate::error::StoreError;

/// The columns a record is read from, in the order [`record_row`] takes them.
pub(crate) const RECORD_COLUMNS: &str = "position, stream, version, record, leaf_hash";

/// A row of [`RECORD_COLUMNS`], on either backend.
pub(crate) fn record_row<R: sqlx::Row>(row: &R) -> Result<RecordRow, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RecordRow {
        position: row.try_get(0)?,
        stream: row.try_get(1)?,
        version: row.try_get(2)?,
        bytes: row.try_get(3)?,
        hash: row.try_get(4)?,
    })
}

/// The head from the head row's columns.
pub(crate) fn head_of(position: i64, recorded_at: Option<&str>) -> Result<Head, StoreError> {
    let position = to_u64(position)?;
    let recorded_at = match recorded_at {
        None if position == 0 => None,
        None => {
            return Err(StoreError::CorruptRecord {
                position,
                detail: "the head has no recording time".into(),
            });
        }
        Some(text) => Some(
            DateTime::parse_from_rfc3339(text)
                .map_err(|error| StoreError::CorruptRecord {
                    position,
                    detail: format!("the head's recording time {text:?}: {error}"),
                })?
                .with_timezone(&Utc),
        ),
    };
    Ok(Head {
        position,
        recorded_at,
    })
}

/// An instant as the head row keeps it: RFC 3339 with nanoseconds, exact.
pub(crate) fn instant_text(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Converts a position or version for a column.
pub(crate) fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::InvalidAppend(format!("{value} is beyond the database's range")))
}

/// Converts a position or version from a column.
pub(crate) fn to_u64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::CorruptRecord {
        position: 0,
        detail: format!("negative position or version {value}"),
    })
}

/// Converts a command digest from a column.
pub(crate) fn to_digest(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::CorruptRecord {
        position: 0,
        detail: format!("a command digest of {} bytes", bytes.len()),
    })
}
