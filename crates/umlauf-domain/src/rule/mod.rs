//! The voting-rule engine.
//!
//! A [`Rule`] is plain data, frozen into a circulation when it opens: the requirements that must all
//! hold, what abstention, silence and an objection mean, a quorum, whether votes may change and
//! whether the circulation closes early once its outcome is certain. [`evaluate`] is a pure
//! function of the rule, the frozen [`Electorate`] and the [`Answers`] so far; it never reads a
//! clock: the caller says whether the deadline has passed.
//!
//! Every comparison is exact: weights are integers and thresholds are [`Fraction`]s compared by
//! cross-multiplication, so "at least two thirds" is met at exactly two thirds.
//!
//! # How an answer counts
//!
//! At the deadline every elector's answer counts in exactly one way; the table is the whole of the
//! semantics of [`Abstention`], [`Silence`] and [`ShareBase`]. "Against" is what
//! [`Requirement::MaxAgainst`] counts; the three base columns say whether the elector's weight is in
//! the base of a [`Requirement::YesShare`] measured against [`ShareBase::AllMembers`],
//! [`ShareBase::TakingPart`] or [`ShareBase::VotesCast`]; "quorum" is [`Tally::taking_part`].
//!
//! | answer | yes | against | all members | taking part | votes cast | quorum |
//! |---|---|---|---|---|---|---|
//! | yes | ✓ | | ✓ | ✓ | ✓ | ✓ |
//! | no | | ✓ | ✓ | ✓ | ✓ | ✓ |
//! | abstain, [`Abstention::Excluded`] | | | ✓ | | | ✓ |
//! | abstain, [`Abstention::NotYes`] | | ✓ | ✓ | ✓ | | ✓ |
//! | abstain, [`Abstention::Blocks`] | rejects | | ✓ | | | ✓ |
//! | silent, [`Silence::Abstention`] | as an abstention | | | | | |
//! | silent, [`Silence::NotYes`] | | ✓ | ✓ | ✓ | | |
//! | silent, [`Silence::Consent`] | ✓ | | ✓ | ✓ | ✓ | |
//! | silent, [`Silence::Absent`] | | | ✓ | | | |
//! | silent, [`Silence::Blocks`] | rejects | | ✓ | | | |
//!
//! A silent member never takes part for the quorum: in a written procedure the members taking part
//! are those who answered in time. "All members" is the fixed size of the scope, so it includes
//! absent members; every other base leaves them out. Before the deadline a member that has not
//! answered counts only in "all members", and the rule's meaning of silence is not applied.
//!
//! A circulation's outcome, once final, is decided in this order: an effective objection fails it
//! ([`FailureReason::Objection`]); too few members taking part fail it ([`FailureReason::Quorum`]),
//! since a body without a quorum decides nothing; a blocking abstention or silence rejects it;
//! otherwise it is adopted exactly when every requirement holds.
//!
//! Where objections are [`Objection::NotAvailable`], an objection in the [`Answers`] is disregarded:
//! the aggregate refuses such objections, and the engine does not let one count as an answer.
//! Votes and objections of members outside the electorate are disregarded too.

mod evaluate;
mod presets;
mod validate;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{Choice, Fraction, GroupId, MemberId, TableName, Weight};

pub(crate) use evaluate::{NewAnswer, outcome_after};
pub use evaluate::{certain_outcome, evaluate};
pub use presets::{Preset, PresetParams, UnknownPreset};
pub use validate::RuleError;

/// A complete voting rule. Frozen into `CirculationOpened`, so a history replays under the rule it
/// was decided by, whatever presets say today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Who votes; resolved against the body and frozen with weights when a circulation opens.
    pub electorate: ElectorateSpec,
    /// Requirements that must all hold for adoption.
    pub requirements: Vec<Requirement>,
    /// What an abstention means.
    pub abstention: Abstention,
    /// What a member that has not answered by the deadline counts as.
    pub silence: Silence,
    /// What an objection to the written procedure does.
    pub objection: Objection,
    /// A minimum number of members taking part, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<Quorum>,
    /// Whether a member may change its vote.
    pub vote_change: VoteChange,
    /// Whether the circulation closes as soon as its outcome is certain.
    pub early_close: EarlyClose,
}

/// Who votes in a circulation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ElectorateSpec {
    /// Every voting member of the body (advisory members never vote).
    VotingMembers,
    /// The voting members of one group.
    Group {
        /// The group.
        group: GroupId,
    },
    /// An explicit list of voting members.
    Members {
        /// The members.
        members: BTreeSet<MemberId>,
    },
}

/// The electorate of one circulation, frozen at opening with every member's groups and weights.
/// Its size is the body's size for quorum purposes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Electorate {
    /// The voting members.
    pub members: BTreeMap<MemberId, Elector>,
}

/// One voting member of a frozen electorate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Elector {
    /// The groups the member belongs to.
    #[serde(default)]
    pub groups: BTreeSet<GroupId>,
    /// The member's weight in each weight table in force at opening.
    #[serde(default)]
    pub weights: BTreeMap<TableName, Weight>,
}

/// A set of members of the electorate that a requirement looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scope {
    /// The whole electorate.
    Electorate,
    /// The electors in one group.
    Group {
        /// The group.
        group: GroupId,
    },
    /// Named members.
    Members {
        /// The members.
        members: BTreeSet<MemberId>,
    },
}

/// How members count in a share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Weighting {
    /// One member, one vote.
    Heads,
    /// Each member's weight in a weight table.
    Table {
        /// The table.
        table: TableName,
    },
}

/// The base a yes share is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareBase {
    /// All members of the scope, whether they answered or not.
    AllMembers,
    /// The members of the scope taking part: those who answered, less abstentions where
    /// abstention is excluded from the base; at the deadline also the silent members the rule
    /// counts as yes or as not yes (see the module documentation).
    TakingPart,
    /// Yes and no votes only (at the deadline, silence as consent is a yes vote).
    VotesCast,
}

/// How a share is compared with its fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// `share >= fraction`.
    AtLeast,
    /// `share > fraction`: a tie fails.
    MoreThan,
}

/// One requirement of a rule; all of a rule's requirements must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Requirement {
    /// At least `at_least` yes votes among the scope.
    MinYes {
        /// Whose votes count.
        among: Scope,
        /// The minimum number of yes votes.
        at_least: u32,
    },
    /// The yes share of the scope, by heads or by a weight table, compared with a fraction.
    YesShare {
        /// Whose votes count.
        among: Scope,
        /// Heads or a weight table.
        weighting: Weighting,
        /// What the share is a share of.
        base: ShareBase,
        /// At least or more than.
        comparison: Comparison,
        /// The threshold.
        fraction: Fraction,
    },
    /// Named members must vote yes.
    MandatoryYes {
        /// The members.
        members: BTreeSet<MemberId>,
    },
    /// Not more than `at_most` members of the scope against: no votes, and abstentions and
    /// silence where the rule makes them [`Abstention::NotYes`] or [`Silence::NotYes`].
    MaxAgainst {
        /// Whose votes count.
        among: Scope,
        /// The largest number of members against that still passes.
        at_most: u32,
    },
    /// At least one of the alternatives holds.
    AnyOf {
        /// The alternatives.
        alternatives: Vec<Requirement>,
    },
}

/// What an abstention means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Abstention {
    /// Left out of the base of a majority (still counts for quorum).
    Excluded,
    /// Not a yes: counts against wherever a requirement counts members against, and is in the
    /// base of shares of all members and of those taking part, but not of votes cast.
    NotYes,
    /// One abstention defeats the proposal.
    Blocks,
}

/// What a member that has not answered by the deadline counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Silence {
    /// As an abstention (but it does not take part for quorum).
    Abstention,
    /// As not yes, like [`Abstention::NotYes`] (but it does not take part for quorum).
    NotYes,
    /// As consent: a yes (but it does not take part for quorum).
    Consent,
    /// As absent: in no base but that of all members, and not for quorum.
    Absent,
    /// One silent member defeats the proposal.
    Blocks,
}

/// What an objection to the written procedure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objection {
    /// One objection ends the procedure: failed, referred to a meeting.
    EndsProcedure,
    /// Objections are refused.
    NotAvailable,
}

/// A minimum number of members taking part (answered in time; abstainers take part, silent
/// members do not): the larger of a fraction of the electorate and an absolute number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quorum {
    /// Share of the electorate's size that must take part (`at least`).
    pub fraction: Fraction,
    /// Absolute minimum that must take part.
    pub at_least: u32,
}

/// Whether a member may change its vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteChange {
    /// Until the circulation closes.
    UntilClose,
    /// A cast vote is final.
    Never,
}

/// When a circulation closes before everyone has answered and before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarlyClose {
    /// As soon as no combination of outstanding answers can change the outcome.
    OnCertainty,
    /// Never on certainty: every answer is recorded (an effective objection still ends it).
    Never,
}

/// The answers received so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    /// Each voter's current choice.
    #[serde(default)]
    pub votes: BTreeMap<MemberId, Choice>,
    /// Members that objected to the written procedure.
    #[serde(default)]
    pub objections: BTreeSet<MemberId>,
}

/// Whether the deadline has passed: at the deadline silence takes the meaning the rule gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Before the deadline: outstanding answers may still come.
    BeforeDeadline,
    /// At or after the deadline: whoever has not answered is silent.
    AtDeadline,
}

/// Why a circulation failed without being adopted or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// A member objected to the written procedure: referred to a meeting.
    Objection,
    /// Too few members took part.
    Quorum,
}

/// The result of evaluating a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    /// Not decided yet.
    Pending,
    /// All requirements hold.
    Adopted,
    /// Some requirement does not hold.
    Rejected,
    /// Neither adopted nor rejected.
    Failed(FailureReason),
}

impl Outcome {
    /// Whether the outcome is final, i.e. anything but [`Outcome::Pending`].
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending)
    }
}

/// An outcome with the tally behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// The outcome.
    pub outcome: Outcome,
    /// The tally, requirement by requirement.
    pub tally: Tally,
}

/// The counts behind an evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tally {
    /// Members answering yes, no and abstain. At the deadline these include the silent members
    /// the rule's silence turns into one of them ([`Silence::Consent`] into yes, [`Silence::NotYes`]
    /// into no, [`Silence::Abstention`] into abstain), so they may overlap with `silent`.
    pub yes: u32,
    /// See `yes`.
    pub no: u32,
    /// See `yes`.
    pub abstain: u32,
    /// Members that have neither voted nor effectively objected.
    pub silent: u32,
    /// Members that objected to the procedure.
    pub objected: u32,
    /// Members taking part, for the quorum: those that have voted.
    pub taking_part: u32,
    /// Members whose answer defeats the proposal on its own: abstentions where abstention
    /// blocks, and at the deadline silent members where silence (directly, or as an abstention)
    /// blocks.
    #[serde(default)]
    pub blocking: u32,
    /// The quorum required, if the rule has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_required: Option<u32>,
    /// One entry per requirement, in the rule's order.
    pub requirements: Vec<RequirementTally>,
}

/// How one requirement stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementTally {
    /// A short human description, e.g. `yes share of koenigstein among laender >= 2/3 of all`.
    pub description: String,
    /// The value reached: yes votes or yes weight, members against, mandatory members voting
    /// yes, or for `any_of` the number of alternatives that hold. Saturates at `u64::MAX`.
    pub value: u64,
    /// What the value is measured against: the share's base, the scope's size, the number of
    /// mandatory members, or of alternatives. Saturates at `u64::MAX`.
    pub base: u64,
    /// Whether the requirement holds on the answers counted. Before the deadline members that
    /// have not answered count only in the base of all members.
    pub met: bool,
    /// The alternatives' tallies, for `any_of`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<RequirementTally>,
}
