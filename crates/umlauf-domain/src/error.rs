//! Why the domain refuses a command.
//!
//! Every refusal has a stable, machine-readable [`DomainError::code`]; the wire contract maps these
//! codes one to one, so renaming a code is a breaking change.

use chrono::{DateTime, Utc};

use crate::ids::{Actor, BodyId, CirculationId, GroupId, KeyId, MemberId, TableName};
use crate::rule::RuleError;

/// A command the domain refuses. Nothing is recorded for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The command's JSON is not a valid command.
    #[error("invalid command: {0}")]
    InvalidCommand(String),
    /// A record's event could not be read.
    #[error("invalid event {event_type} (schema {schema_version}): {detail}")]
    InvalidEvent {
        /// The record's event type.
        event_type: String,
        /// The record's schema version.
        schema_version: u32,
        /// What was wrong.
        detail: String,
    },
    /// The signing key is not registered for this body.
    #[error("key {0} is not registered")]
    UnknownKey(KeyId),
    /// The signing key was revoked before this command was recorded.
    #[error("key {0} has been revoked")]
    RevokedKey(KeyId),
    /// The signing key belongs to someone other than the command's actor.
    #[error("key {key} belongs to {holder}, not to {actor}")]
    KeyOfAnotherActor {
        /// The signing key.
        key: KeyId,
        /// Whom the key belongs to.
        holder: Actor,
        /// Whom the command claims to act for.
        actor: Actor,
    },
    /// A genesis command was not signed by a genesis key of this deployment.
    #[error("key {0} is not a genesis key of this deployment")]
    NotGenesis(KeyId),
    /// The actor may not do this.
    #[error("{actor} may not {action}")]
    Forbidden {
        /// Who tried.
        actor: Actor,
        /// What they tried.
        action: &'static str,
    },
    /// The body does not exist.
    #[error("body {0} has not been constituted")]
    UnknownBody(BodyId),
    /// The body already exists.
    #[error("body {0} has already been constituted")]
    BodyExists(BodyId),
    /// The command names another body than the circulation or stream it addresses.
    #[error("the command names body {named}, but the circulation belongs to {actual}")]
    BodyMismatch {
        /// The body the command names.
        named: BodyId,
        /// The body it really belongs to.
        actual: BodyId,
    },
    /// The member is not a member of the body.
    #[error("{0} is not a member of this body")]
    UnknownMember(MemberId),
    /// The member is already a member.
    #[error("{0} is already a member of this body")]
    MemberExists(MemberId),
    /// The member has retired.
    #[error("{0} has retired from this body")]
    MemberRetired(MemberId),
    /// The group is not defined in the body.
    #[error("group {0} is not defined in this body")]
    UnknownGroup(GroupId),
    /// The weight table is not defined, or has no year in force.
    #[error("weight table {0} is not defined for this body")]
    UnknownTable(TableName),
    /// A weight table that cannot be used.
    #[error("invalid weight table {table}: {detail}")]
    InvalidWeightTable {
        /// The table.
        table: TableName,
        /// What is wrong with it.
        detail: String,
    },
    /// An Ed25519 key of small order, which would accept forged signatures.
    #[error("the public key is weak (small order) and cannot be registered")]
    WeakKey,
    /// The key is already registered.
    #[error("key {0} is already registered")]
    KeyExists(KeyId),
    /// The key was already revoked.
    #[error("key {0} was already revoked")]
    KeyAlreadyRevoked(KeyId),
    /// The rule cannot be used with this electorate.
    #[error("invalid rule: {0}")]
    InvalidRule(RuleError),
    /// The body has no voting member the rule's electorate selects.
    #[error("the electorate is empty")]
    EmptyElectorate,
    /// A circulation with this id exists already.
    #[error("circulation {0} exists already")]
    CirculationExists(CirculationId),
    /// No circulation with this id.
    #[error("circulation {0} does not exist")]
    UnknownCirculation(CirculationId),
    /// The circulation is closed.
    #[error("circulation {0} is closed")]
    CirculationClosed(CirculationId),
    /// The deadline has passed: nothing is accepted any more.
    #[error("the deadline {deadline} has passed (now {now})")]
    DeadlinePassed {
        /// The deadline.
        deadline: DateTime<Utc>,
        /// The recording time of the refused command.
        now: DateTime<Utc>,
    },
    /// The deadline has not passed yet, so the circulation cannot close at the deadline.
    #[error("the deadline {deadline} has not passed yet")]
    DeadlineNotReached {
        /// The deadline.
        deadline: DateTime<Utc>,
    },
    /// A new deadline must lie after the current one (and after now).
    #[error("the deadline {requested} must be later than {current}")]
    DeadlineNotLater {
        /// The deadline asked for.
        requested: DateTime<Utc>,
        /// The deadline it would have to be later than.
        current: DateTime<Utc>,
    },
    /// The member is not in the circulation's electorate.
    #[error("{0} is not in this circulation's electorate")]
    NotInElectorate(MemberId),
    /// The vote's proposal digest is not the circulated proposal's.
    #[error("the vote approves another text than the circulated proposal")]
    ProposalMismatch,
    /// The proposal's text does not hash to the digest given for it.
    #[error("the proposal text does not match its sha256")]
    ProposalDigestMismatch,
    /// The rule does not allow changing a cast vote.
    #[error("{0} has already voted and this rule does not allow changing a vote")]
    VoteChangeNotAllowed(MemberId),
    /// The rule provides no objection to the procedure.
    #[error("this rule provides no objection to the written procedure")]
    ObjectionNotAvailable,
    /// A member that voted consented to the procedure and can no longer object.
    #[error("{0} has voted and so consented to the written procedure")]
    AlreadyVoted(MemberId),
    /// A member that objected can neither vote nor object again.
    #[error("{0} has objected to the written procedure")]
    AlreadyObjected(MemberId),
    /// A text field is empty or too long.
    #[error("{field} {detail}")]
    InvalidText {
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl DomainError {
    /// The stable machine-readable code of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidCommand(_) => "invalid_command",
            Self::InvalidEvent { .. } => "invalid_event",
            Self::UnknownKey(_) => "unknown_key",
            Self::RevokedKey(_) => "revoked_key",
            Self::KeyOfAnotherActor { .. } => "key_of_another_actor",
            Self::NotGenesis(_) => "not_genesis",
            Self::Forbidden { .. } => "forbidden",
            Self::UnknownBody(_) => "unknown_body",
            Self::BodyExists(_) => "body_exists",
            Self::BodyMismatch { .. } => "body_mismatch",
            Self::UnknownMember(_) => "unknown_member",
            Self::MemberExists(_) => "member_exists",
            Self::MemberRetired(_) => "member_retired",
            Self::UnknownGroup(_) => "unknown_group",
            Self::UnknownTable(_) => "unknown_table",
            Self::InvalidWeightTable { .. } => "invalid_weight_table",
            Self::WeakKey => "weak_key",
            Self::KeyExists(_) => "key_exists",
            Self::KeyAlreadyRevoked(_) => "key_already_revoked",
            Self::InvalidRule(_) => "invalid_rule",
            Self::EmptyElectorate => "empty_electorate",
            Self::CirculationExists(_) => "circulation_exists",
            Self::UnknownCirculation(_) => "unknown_circulation",
            Self::CirculationClosed(_) => "circulation_closed",
            Self::DeadlinePassed { .. } => "deadline_passed",
            Self::DeadlineNotReached { .. } => "deadline_not_reached",
            Self::DeadlineNotLater { .. } => "deadline_not_later",
            Self::NotInElectorate(_) => "not_in_electorate",
            Self::ProposalMismatch => "proposal_mismatch",
            Self::ProposalDigestMismatch => "proposal_digest_mismatch",
            Self::VoteChangeNotAllowed(_) => "vote_change_not_allowed",
            Self::ObjectionNotAvailable => "objection_not_available",
            Self::AlreadyVoted(_) => "already_voted",
            Self::AlreadyObjected(_) => "already_objected",
            Self::InvalidText { .. } => "invalid_text",
        }
    }
}

impl From<RuleError> for DomainError {
    fn from(error: RuleError) -> Self {
        Self::InvalidRule(error)
    }
}
