//! Log records: one event as the log stores it, serialised once.
//!
//! A record's JSON bytes are written once, when it is appended, and never re-serialised: the same
//! bytes are the Merkle leaf, the JetStream message body and what an auditor reads. Field order is
//! fixed by [`Record`]'s declaration.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::event::Event;
use crate::ids::CommandId;
use crate::stream::StreamId;

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The global position: 1, 2, 3, … without gaps.
    pub position: u64,
    /// The stream the event belongs to.
    pub stream: StreamId,
    /// The event's version within its stream: 1, 2, 3, …
    pub version: u64,
    /// The event's type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The schema version the event's data was written with.
    pub schema: u32,
    /// The service's clock when the record was appended; never earlier than the previous
    /// record's.
    pub recorded_at: DateTime<Utc>,
    /// The event's data.
    pub data: serde_json::Value,
    /// The command that caused the event; `None` for the service's own events (a close at the
    /// deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<CommandId>,
    /// The signed envelope of that command, on the first record the command caused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<serde_json::Value>,
}

impl Record {
    /// The record's bytes: compact JSON in declaration order.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a record from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DomainError> {
        serde_json::from_slice(bytes).map_err(|error| DomainError::InvalidEvent {
            event_type: String::from("?"),
            schema_version: 0,
            detail: format!("not a log record: {error}"),
        })
    }

    /// The record's event, upgraded to today's schema.
    pub fn event(&self) -> Result<Event, DomainError> {
        Event::from_record(&self.event_type, self.schema, self.data.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_its_bytes_unchanged() {
        let bytes = br#"{"position":7,"stream":"body/it-planungsrat","version":3,"type":"MemberRetired","schema":1,"recorded_at":"2026-03-02T09:00:00Z","data":{"member":"DE-SL"},"command_id":"0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10"}"#;
        let record = Record::from_bytes(bytes).unwrap();
        assert_eq!(record.to_bytes(), bytes.to_vec());
        assert_eq!(record.event().unwrap().type_name(), "MemberRetired");
        assert!(Record::from_bytes(b"{\"position\":1}").is_err());
    }
}
