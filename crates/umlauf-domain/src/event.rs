//! Events: what happened, as recorded in the log.
//!
//! Each event has a type name and a schema version. History is never rewritten: when an event's
//! shape changes, its schema version goes up and [`Event::from_record`] upgrades older versions as
//! it reads them, so a history written years ago replays with today's code.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::command::{GroupSpec, MemberSpec, Proposal, WeightTableSpec};
use crate::error::DomainError;
use crate::ids::{
    Actor, BodyId, Choice, CirculationId, KeyId, MemberId, ProposalDigest, PublicKey,
};
use crate::rule::{Electorate, FailureReason, Preset, PresetParams, Rule, Tally};
use crate::value_text;

/// Everything that can happen, in either kind of stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// A body was constituted (its members, tables and keys follow as their own events).
    BodyConstituted(BodyConstituted),
    /// A member was admitted.
    MemberAdmitted(MemberSpec),
    /// A member retired.
    MemberRetired(MemberRetired),
    /// A weight table was set for a year.
    WeightTableSet(WeightTableSpec),
    /// A key was registered.
    KeyRegistered(KeyRegistered),
    /// A key was revoked.
    KeyRevoked(KeyRevoked),
    /// A circulation was opened.
    CirculationOpened(Box<CirculationOpened>),
    /// A member voted.
    VoteCast(VoteCast),
    /// A member objected to the written procedure.
    ProcedureObjected(ProcedureObjected),
    /// The deadline was moved later.
    DeadlineExtended(DeadlineExtended),
    /// The secretariat withdrew the circulation.
    CirculationWithdrawn(CirculationWithdrawn),
    /// The circulation closed with a decision (written by the service).
    CirculationClosed(Box<CirculationClosed>),
}

impl Event {
    /// The schema version events are written with today.
    pub const SCHEMA_VERSION: u32 = 1;

    /// The event's type name, as in the record's `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::BodyConstituted(_) => "BodyConstituted",
            Self::MemberAdmitted(_) => "MemberAdmitted",
            Self::MemberRetired(_) => "MemberRetired",
            Self::WeightTableSet(_) => "WeightTableSet",
            Self::KeyRegistered(_) => "KeyRegistered",
            Self::KeyRevoked(_) => "KeyRevoked",
            Self::CirculationOpened(_) => "CirculationOpened",
            Self::VoteCast(_) => "VoteCast",
            Self::ProcedureObjected(_) => "ProcedureObjected",
            Self::DeadlineExtended(_) => "DeadlineExtended",
            Self::CirculationWithdrawn(_) => "CirculationWithdrawn",
            Self::CirculationClosed(_) => "CirculationClosed",
        }
    }

    /// The event's data, without its type: the record's `data` field.
    pub fn data(&self) -> serde_json::Value {
        // The content of the tagged form, serialised on its own: the same value, without
        // building the object around it.
        let data = match self {
            Self::BodyConstituted(data) => serde_json::to_value(data),
            Self::MemberAdmitted(data) => serde_json::to_value(data),
            Self::MemberRetired(data) => serde_json::to_value(data),
            Self::WeightTableSet(data) => serde_json::to_value(data),
            Self::KeyRegistered(data) => serde_json::to_value(data),
            Self::KeyRevoked(data) => serde_json::to_value(data),
            Self::CirculationOpened(data) => serde_json::to_value(data),
            Self::VoteCast(data) => serde_json::to_value(data),
            Self::ProcedureObjected(data) => serde_json::to_value(data),
            Self::DeadlineExtended(data) => serde_json::to_value(data),
            Self::CirculationWithdrawn(data) => serde_json::to_value(data),
            Self::CirculationClosed(data) => serde_json::to_value(data),
        };
        data.unwrap_or(serde_json::Value::Null)
    }

    /// Writes the event's data as the compact JSON text of [`Event::data`] (object keys in
    /// sorted order, as a JSON value writes them), without building that value where the
    /// event's form allows: the same bytes as `serde_json::to_writer(writer, &self.data())`.
    pub fn write_data<W: std::io::Write>(&self, mut writer: W) -> serde_json::Result<()> {
        match self {
            Self::VoteCast(vote) => {
                // `choice`, `member`, `proposal_sha256`, `statement`: the sorted order.
                write_key(&mut writer, b"{\"choice\":")?;
                serde_json::to_writer(&mut writer, &vote.choice)?;
                write_key(&mut writer, b",\"member\":")?;
                serde_json::to_writer(&mut writer, &vote.member)?;
                write_key(&mut writer, b",\"proposal_sha256\":")?;
                serde_json::to_writer(&mut writer, &vote.proposal_sha256)?;
                if let Some(statement) = &vote.statement {
                    write_key(&mut writer, b",\"statement\":")?;
                    serde_json::to_writer(&mut writer, statement)?;
                }
                write_key(&mut writer, b"}")
            }
            _ => match self.data_text() {
                Ok(text) => write_key(&mut writer, &text),
                // What the direct writer leaves to the value (none of today's events).
                Err(_) => serde_json::to_writer(writer, &self.data()),
            },
        }
    }

    /// The compact text of [`Event::data`], written without building the value; an error for
    /// data the direct writer leaves to the value (none of today's events).
    pub fn data_text(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            Self::BodyConstituted(data) => value_text::to_vec(data),
            Self::MemberAdmitted(data) => value_text::to_vec(data),
            Self::MemberRetired(data) => value_text::to_vec(data),
            Self::WeightTableSet(data) => value_text::to_vec(data),
            Self::KeyRegistered(data) => value_text::to_vec(data),
            Self::KeyRevoked(data) => value_text::to_vec(data),
            Self::CirculationOpened(data) => value_text::to_vec(data),
            Self::VoteCast(data) => value_text::to_vec(data),
            Self::ProcedureObjected(data) => value_text::to_vec(data),
            Self::DeadlineExtended(data) => value_text::to_vec(data),
            Self::CirculationWithdrawn(data) => value_text::to_vec(data),
            Self::CirculationClosed(data) => value_text::to_vec(data),
        }
    }

    /// Reads an event from a record's type, schema version and data, upgrading older schema
    /// versions to today's shape.
    pub fn from_record(
        event_type: &str,
        schema_version: u32,
        data: serde_json::Value,
    ) -> Result<Self, DomainError> {
        let invalid = |detail: String| DomainError::InvalidEvent {
            event_type: event_type.to_owned(),
            schema_version,
            detail,
        };
        // Upgrades go here, one step per version: `(type, 1) => upgrade_x_v1(data)` and so on.
        let data = match schema_version {
            Self::SCHEMA_VERSION => data,
            other => return Err(invalid(format!("unknown schema version {other}"))),
        };
        let tagged = serde_json::json!({ "type": event_type, "data": data });
        serde_json::from_value(tagged).map_err(|error| invalid(error.to_string()))
    }
}

/// `BodyConstituted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyConstituted {
    /// The body.
    pub body: BodyId,
    /// The genesis key that constituted it.
    pub genesis_key: PublicKey,
    /// Its name.
    pub name: String,
    /// Its groups.
    pub groups: Vec<GroupSpec>,
    /// Its presets and their parameters.
    pub presets: BTreeMap<Preset, PresetParams>,
}

/// `MemberRetired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRetired {
    /// The member.
    pub member: MemberId,
}

/// `KeyRegistered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRegistered {
    /// The key's id.
    pub key_id: KeyId,
    /// Whom it belongs to.
    pub holder: Actor,
    /// The public key.
    pub public_key: PublicKey,
    /// A label such as `CIO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `KeyRevoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRevoked {
    /// The key's id.
    pub key_id: KeyId,
    /// Whom it belonged to.
    pub holder: Actor,
    /// Who revoked it.
    pub revoked_by: Actor,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `CirculationOpened`: everything the decision will depend on, frozen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CirculationOpened {
    /// The circulation.
    pub circulation: CirculationId,
    /// Its body.
    pub body: BodyId,
    /// Its title.
    pub title: String,
    /// The proposal.
    pub proposal: Proposal,
    /// The preset the rule came from, if any (for display; the rule below is what counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// The rule, in full.
    pub rule: Rule,
    /// The electorate with its weights, frozen.
    pub electorate: Electorate,
    /// The year of each weight table in force at opening.
    #[serde(default)]
    pub weight_table_years: BTreeMap<crate::ids::TableName, u16>,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// Votes recorded at or before this instant count.
    pub deadline: DateTime<Utc>,
}

/// `VoteCast`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteCast {
    /// The member voting.
    pub member: MemberId,
    /// Its choice.
    pub choice: Choice,
    /// The digest of the text approved.
    pub proposal_sha256: ProposalDigest,
    /// Its statement, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
}

/// `ProcedureObjected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureObjected {
    /// The member objecting.
    pub member: MemberId,
    /// Why.
    pub reason: String,
}

/// `DeadlineExtended`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineExtended {
    /// The deadline before.
    pub previous: DateTime<Utc>,
    /// The new deadline.
    pub deadline: DateTime<Utc>,
}

/// `CirculationWithdrawn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CirculationWithdrawn {
    /// Why.
    pub reason: String,
}

/// The decision a circulation closed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "reason", rename_all = "snake_case")]
pub enum Decision {
    /// Adopted.
    Adopted,
    /// Rejected.
    Rejected,
    /// Failed: objection (referred to a meeting) or quorum.
    Failed(FailureReason),
    /// Withdrawn by the secretariat.
    Withdrawn,
}

/// What made the circulation close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CloseTrigger {
    /// The answer (vote or objection) at this version of the circulation's stream decided it.
    Answer {
        /// The stream version of the deciding record.
        stream_version: u64,
    },
    /// The deadline passed.
    Deadline {
        /// The deadline.
        deadline: DateTime<Utc>,
    },
    /// The withdrawal at this version of the circulation's stream.
    Withdrawal {
        /// The stream version of the `CirculationWithdrawn` record.
        stream_version: u64,
    },
}

/// A member's final answer, as the decision records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalAnswer {
    /// Voted yes.
    Yes,
    /// Voted no.
    No,
    /// Abstained.
    Abstain,
    /// Objected to the procedure.
    Objected,
    /// Did not answer.
    Silent,
}

impl From<Choice> for FinalAnswer {
    fn from(choice: Choice) -> Self {
        match choice {
            Choice::Yes => Self::Yes,
            Choice::No => Self::No,
            Choice::Abstain => Self::Abstain,
        }
    }
}

/// `CirculationClosed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CirculationClosed {
    /// The decision.
    pub decision: Decision,
    /// What triggered the close.
    pub trigger: CloseTrigger,
    /// The tally behind it.
    pub tally: Tally,
    /// Every elector's answer, so a decision that binds only those who voted yes can name them.
    pub answers: BTreeMap<MemberId, FinalAnswer>,
    /// When it closed.
    pub closed_at: DateTime<Utc>,
}

/// Writes literal JSON text.
fn write_key<W: std::io::Write>(writer: &mut W, text: &[u8]) -> serde_json::Result<()> {
    writer.write_all(text).map_err(serde_json::Error::io)
}

#[cfg(test)]
mod tests {
    use super::Event;

    #[test]
    fn data_is_the_content_of_the_tagged_form() {
        for (event_type, data) in [
            ("MemberRetired", serde_json::json!({"member": "DE-SL"})),
            (
                "VoteCast",
                serde_json::json!({"member": "DE-BY", "choice": "yes", "proposal_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}),
            ),
            (
                "VoteCast",
                serde_json::json!({"member": "DE-BY", "choice": "no", "proposal_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "statement": "f\u{fc}r"}),
            ),
        ] {
            let event =
                Event::from_record(event_type, Event::SCHEMA_VERSION, data.clone()).unwrap();
            let tagged = serde_json::to_value(&event).unwrap();
            assert_eq!(event.data(), tagged["data"]);
            assert_eq!(event.data(), data);
        }
    }

    #[test]
    fn written_data_is_the_text_of_the_data_value() {
        let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        for (event_type, data) in [
            ("MemberRetired", serde_json::json!({"member": "DE-SL"})),
            (
                "VoteCast",
                serde_json::json!({"member": "DE-BY", "choice": "yes", "proposal_sha256": digest}),
            ),
            (
                "VoteCast",
                serde_json::json!({"member": "DE-NW", "choice": "abstain", "proposal_sha256": digest, "statement": ""}),
            ),
            (
                "VoteCast",
                serde_json::json!({"member": "DE-BY", "choice": "no", "proposal_sha256": digest, "statement": "f\u{fc}r \"x\"\n\\ \u{1}"}),
            ),
        ] {
            let event =
                Event::from_record(event_type, Event::SCHEMA_VERSION, data.clone()).unwrap();
            let mut written = Vec::new();
            event.write_data(&mut written).unwrap();
            assert_eq!(
                written,
                serde_json::to_vec(&event.data()).unwrap(),
                "{data}"
            );
        }
    }
}
