//! The read models as table rows: built from a [`Projection`], read back into the domain's types.
//!
//! Three tables: `circulation_status` (one row per circulation: body, state, deadline, version
//! (SQLite; NULL on PostgreSQL) and the status as JSON), `inbox` (one row per member and open
//! circulation awaiting its answer), and `key_status` (one row per body and key). The rows are
//! derived here and nowhere else, so an append and a rebuild write the same content.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use umlauf_domain::StreamId;
use umlauf_domain::event::{CloseTrigger, Decision};
use umlauf_domain::ids::{BodyId, CirculationId, MemberId, ProposalDigest};
use umlauf_domain::read_model::{
    CirculationState, CirculationStatus, KeyState, KeyStatus, VoteView,
};
use umlauf_domain::rule::{Preset, Tally};
use uuid::Uuid;

use crate::append::Projection;
use crate::error::StoreError;
use crate::time::sortable;

/// The rows one stream's projection replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProjectionRows {
    /// Every key row of one body.
    Body {
        /// The body id.
        body: String,
        /// Its keys, in key-id order.
        keys: Vec<KeyRow>,
    },
    /// The status and inbox rows of one circulation.
    Circulation {
        /// The circulation id.
        circulation: Uuid,
        /// Its status, `None` before it is opened (no rows).
        status: Option<CirculationRow>,
    },
}

/// A row of `circulation_status` with the inbox rows that go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CirculationRow {
    pub(crate) body: String,
    pub(crate) state: &'static str,
    pub(crate) deadline: String,
    pub(crate) version: i64,
    pub(crate) status: String,
    /// The members whose inbox holds the circulation, in member order.
    pub(crate) inbox: Vec<String>,
}

/// A row of `key_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRow {
    pub(crate) key_id: String,
    pub(crate) holder: String,
    pub(crate) state: &'static str,
    pub(crate) status: String,
}

impl ProjectionRows {
    /// The rows of a projection for `stream`, which it must belong to.
    pub(crate) fn of(stream: &StreamId, projection: &Projection) -> Result<Self, StoreError> {
        projection.check(stream)?;
        match (stream, projection) {
            (StreamId::Body(body), Projection::Body(keys)) => Ok(Self::Body {
                body: body.to_string(),
                keys: keys.iter().map(key_row).collect::<Result<_, _>>()?,
            }),
            (StreamId::Circulation(id), Projection::Circulation(status)) => Ok(Self::Circulation {
                circulation: id.0,
                status: status.as_deref().map(circulation_row).transpose()?,
            }),
            _ => Err(StoreError::InvalidAppend(format!(
                "the projection does not belong to stream {stream}"
            ))),
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| {
        StoreError::InvalidAppend(format!("a read model does not serialise: {error}"))
    })
}

fn key_row(key: &KeyStatus) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        key_id: key.key_id.to_string(),
        holder: key.holder.to_string(),
        state: key_state_name(key.state),
        status: to_json(key)?,
    })
}

fn circulation_row(status: &CirculationStatus) -> Result<CirculationRow, StoreError> {
    Ok(CirculationRow {
        body: status.body.to_string(),
        state: circulation_state_name(status.state),
        deadline: sortable(status.deadline),
        version: i64::try_from(status.version)
            .map_err(|_| StoreError::InvalidAppend("stream version out of range".into()))?,
        status: status_json(status)?,
        inbox: status.inbox_members().map(ToString::to_string).collect(),
    })
}

/// A circulation status as stored: the domain's JSON with the fields in another order, read
/// back by the domain's `Deserialize` (which takes them in any order). Every vote rewrites the
/// row, and PostgreSQL logs an updated row only from its first changed byte to its last: the
/// fields that never change after opening come first, then the version and the tally (which
/// every vote changes), then the votes, objections and awaiting members, of which a vote changes
/// one entry, so what follows that entry stays out of the log.
#[derive(serde::Serialize)]
struct StoredStatus<'a> {
    circulation: &'a CirculationId,
    body: &'a BodyId,
    title: &'a str,
    proposal_sha256: &'a ProposalDigest,
    #[serde(skip_serializing_if = "Option::is_none")]
    preset: Option<&'a Preset>,
    opened_at: &'a DateTime<Utc>,
    state: &'a CirculationState,
    deadline: &'a DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'a Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger: Option<&'a CloseTrigger>,
    version: u64,
    tally: &'a Tally,
    votes: &'a BTreeMap<MemberId, VoteView>,
    objections: &'a BTreeMap<MemberId, String>,
    awaiting: &'a BTreeSet<MemberId>,
}

fn status_json(status: &CirculationStatus) -> Result<String, StoreError> {
    // Destructured without `..`, so a field added to the domain's type cannot be left out here.
    let CirculationStatus {
        circulation,
        body,
        title,
        proposal_sha256,
        preset,
        state,
        opened_at,
        deadline,
        decision,
        trigger,
        tally,
        votes,
        objections,
        awaiting,
        version,
    } = status;
    to_json(&StoredStatus {
        circulation,
        body,
        title,
        proposal_sha256,
        preset: preset.as_ref(),
        opened_at,
        state,
        deadline,
        decision: decision.as_ref(),
        trigger: trigger.as_ref(),
        version: *version,
        tally,
        votes,
        objections,
        awaiting,
    })
}

/// The name of a circulation state in the `state` column.
pub(crate) fn circulation_state_name(state: CirculationState) -> &'static str {
    match state {
        CirculationState::Open => "open",
        CirculationState::Closed => "closed",
    }
}

fn key_state_name(state: KeyState) -> &'static str {
    match state {
        KeyState::Active => "active",
        KeyState::Revoked => "revoked",
    }
}

/// Reads a stored circulation status.
pub(crate) fn parse_status(json: &str) -> Result<CirculationStatus, StoreError> {
    serde_json::from_str(json)
        .map_err(|error| StoreError::CorruptReadModel(format!("circulation status: {error}")))
}

/// Reads a stored key status.
pub(crate) fn parse_key(json: &str) -> Result<KeyStatus, StoreError> {
    serde_json::from_str(json)
        .map_err(|error| StoreError::CorruptReadModel(format!("key status: {error}")))
}

/// Lines of the read-model dump ([`crate::Store::read_model_dump`]): one per row, tab-separated,
/// prefixed with the table's name. The JSON columns are re-serialised from their parsed values
/// so the dump does not depend on how a backend stores JSON.
pub(crate) fn dump_line(table: &str, columns: &[&str]) -> String {
    let mut line = String::from(table);
    for column in columns {
        line.push('\t');
        line.push_str(column);
    }
    line.push('\n');
    line
}

/// A JSON column as text independent of the backend's JSON storage: parsed and written again.
pub(crate) fn canonical_json(json: &str) -> Result<String, StoreError> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|error| StoreError::CorruptReadModel(format!("not JSON: {error}")))?;
    Ok(value.to_string())
}
