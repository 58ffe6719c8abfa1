//! The rule presets that ship with the product, one per procedure in `DOMAIN.md`.
//!
//! A preset is a name plus a few parameters; [`Preset::rule`] turns it into a full [`Rule`], and
//! that rule, not the preset's name, is what a circulation freezes. Changing a preset here
//! therefore never changes a decided circulation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{
    Abstention, Comparison, EarlyClose, ElectorateSpec, Objection, Quorum, Requirement, Rule,
    RuleError, Scope, ShareBase, Silence, VoteChange, Weighting,
};
use crate::ids::{Fraction, GroupId, MemberId, TableName};

/// A named rule preset. The JSON names are those of `DOMAIN.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// IT-Planungsrat resolution (IT-Staatsvertrag § 1 (7)): the Bund votes yes, at least 11
    /// Länder vote yes, and those Länder hold at least two thirds of all Länder's Königstein
    /// shares. An abstention is not a yes; silence is an abstention (GO § 7 (4)); one objection
    /// ends the procedure; votes may change until the close; no early close, since a decision may
    /// apply only to the members that voted yes and so every answer is recorded.
    ItPlanungsratResolution,
    /// IT-Planungsrat recommendation: more yes than no among the 17 voting members taking part;
    /// abstentions and silence are left out of the base; one objection ends the procedure;
    /// votes may change until the close; no early close.
    ItPlanungsratRecommendation,
    /// Every voting member votes yes; an abstention or silence defeats it; no objection; votes
    /// are final; closes as soon as the outcome is certain.
    Unanimity,
    /// More yes than no among the votes cast; abstentions are left out and silence is an
    /// abstention; no objection; votes are final; early close.
    SimpleMajority,
    /// Yes from at least two thirds of all voting members; abstention and silence are not yes;
    /// no objection; votes are final; early close.
    TwoThirdsOfMembers,
    /// Bundesrat (Art. 51, 52 GG): the Länder vote en bloc with their votes; adopted by an
    /// absolute majority of all votes (35 of 69), or two thirds (46 of 69) for a constitutional
    /// change; abstention and silence are not yes; no objection; votes are final; early close.
    Bundesrat,
    /// EU Council, qualified majority in the written procedure: at least 55 % of the states, and
    /// either states holding at least 65 % of the population or fewer than 4 states failing to
    /// vote yes; abstention and silence are not yes; no objection; votes are final; early close.
    EuQualifiedMajority,
    /// EU Council silence procedure: adopted at the deadline unless a member objected; silence
    /// is consent; one objection ends it.
    EuSilence,
    /// Supervisory board (AktG § 108): more yes than no among the votes cast, a tie fails;
    /// quorum half the electorate and at least 3; abstentions are left out of the base but take
    /// part for the quorum; silence is absence; one objection ends the procedure; votes are final;
    /// early close.
    SupervisoryBoard,
}

impl Preset {
    /// Every preset, in the order of `DOMAIN.md`.
    pub const ALL: [Preset; 9] = [
        Preset::ItPlanungsratResolution,
        Preset::ItPlanungsratRecommendation,
        Preset::Unanimity,
        Preset::SimpleMajority,
        Preset::TwoThirdsOfMembers,
        Preset::Bundesrat,
        Preset::EuQualifiedMajority,
        Preset::EuSilence,
        Preset::SupervisoryBoard,
    ];

    /// The preset's name, as in JSON: `it-planungsrat-resolution`, …
    pub fn name(self) -> &'static str {
        match self {
            Self::ItPlanungsratResolution => "it-planungsrat-resolution",
            Self::ItPlanungsratRecommendation => "it-planungsrat-recommendation",
            Self::Unanimity => "unanimity",
            Self::SimpleMajority => "simple-majority",
            Self::TwoThirdsOfMembers => "two-thirds-of-members",
            Self::Bundesrat => "bundesrat",
            Self::EuQualifiedMajority => "eu-qualified-majority",
            Self::EuSilence => "eu-silence",
            Self::SupervisoryBoard => "supervisory-board",
        }
    }

    /// The names of the [`PresetParams`] this preset reads.
    pub fn parameters(self) -> &'static [&'static str] {
        match self {
            Self::ItPlanungsratResolution => &["federal_member", "states_group", "weight_table"],
            Self::Bundesrat => &["votes_table", "constitutional"],
            Self::EuQualifiedMajority => &["population_table", "reinforced"],
            Self::ItPlanungsratRecommendation
            | Self::Unanimity
            | Self::SimpleMajority
            | Self::TwoThirdsOfMembers
            | Self::EuSilence
            | Self::SupervisoryBoard => &[],
        }
    }

    /// The full rule of this preset with `params`.
    ///
    /// Fails with [`RuleError::UnusedPresetParameter`] if `params` sets a parameter this preset
    /// does not read, so that a misplaced `reinforced` or `constitutional` is not silently
    /// ignored. Whether the rule fits an electorate is [`Rule::validate`]'s question.
    pub fn rule(self, params: &PresetParams) -> Result<Rule, RuleError> {
        if let Some(parameter) = params
            .set_parameters()
            .into_iter()
            .find(|parameter| !self.parameters().contains(parameter))
        {
            return Err(RuleError::UnusedPresetParameter {
                preset: self,
                parameter,
            });
        }
        Ok(match self {
            Self::ItPlanungsratResolution => it_planungsrat_resolution(params),
            Self::ItPlanungsratRecommendation => Rule {
                electorate: ElectorateSpec::VotingMembers,
                // With abstention excluded and silence an abstention, those taking part in the
                // base are the yes and no voters: yes > no.
                requirements: vec![share(
                    Scope::Electorate,
                    Weighting::Heads,
                    ShareBase::TakingPart,
                    Comparison::MoreThan,
                    fraction(1, 2),
                )],
                abstention: Abstention::Excluded,
                silence: Silence::Abstention,
                objection: Objection::EndsProcedure,
                quorum: None,
                vote_change: VoteChange::UntilClose,
                early_close: EarlyClose::Never,
            },
            Self::Unanimity => Rule {
                electorate: ElectorateSpec::VotingMembers,
                requirements: vec![share(
                    Scope::Electorate,
                    Weighting::Heads,
                    ShareBase::AllMembers,
                    Comparison::AtLeast,
                    fraction(1, 1),
                )],
                abstention: Abstention::Blocks,
                silence: Silence::Blocks,
                objection: Objection::NotAvailable,
                quorum: None,
                vote_change: VoteChange::Never,
                early_close: EarlyClose::OnCertainty,
            },
            Self::SimpleMajority => Rule {
                electorate: ElectorateSpec::VotingMembers,
                requirements: vec![share(
                    Scope::Electorate,
                    Weighting::Heads,
                    ShareBase::VotesCast,
                    Comparison::MoreThan,
                    fraction(1, 2),
                )],
                abstention: Abstention::Excluded,
                silence: Silence::Abstention,
                objection: Objection::NotAvailable,
                quorum: None,
                vote_change: VoteChange::Never,
                early_close: EarlyClose::OnCertainty,
            },
            Self::TwoThirdsOfMembers => Rule {
                electorate: ElectorateSpec::VotingMembers,
                requirements: vec![share(
                    Scope::Electorate,
                    Weighting::Heads,
                    ShareBase::AllMembers,
                    Comparison::AtLeast,
                    fraction(2, 3),
                )],
                abstention: Abstention::NotYes,
                silence: Silence::NotYes,
                objection: Objection::NotAvailable,
                quorum: None,
                vote_change: VoteChange::Never,
                early_close: EarlyClose::OnCertainty,
            },
            Self::Bundesrat => bundesrat(params),
            Self::EuQualifiedMajority => eu_qualified_majority(params),
            Self::EuSilence => eu_silence(),
            Self::SupervisoryBoard => Rule {
                electorate: ElectorateSpec::VotingMembers,
                requirements: vec![share(
                    Scope::Electorate,
                    Weighting::Heads,
                    ShareBase::VotesCast,
                    Comparison::MoreThan,
                    fraction(1, 2),
                )],
                abstention: Abstention::Excluded,
                silence: Silence::Absent,
                objection: Objection::EndsProcedure,
                // AktG § 108 (2): half the members the board is to have, and at least three.
                quorum: Some(Quorum {
                    fraction: fraction(1, 2),
                    at_least: 3,
                }),
                vote_change: VoteChange::Never,
                early_close: EarlyClose::OnCertainty,
            },
        })
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A preset name that is not one of [`Preset::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule preset {0:?}")]
pub struct UnknownPreset(pub String);

impl FromStr for Preset {
    type Err = UnknownPreset;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|preset| preset.name() == text)
            .ok_or_else(|| UnknownPreset(text.to_owned()))
    }
}

/// Parameters of a preset. Every field is optional and defaults as documented; a preset refuses
/// a parameter it does not read (see [`Preset::parameters`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetParams {
    /// `it-planungsrat-resolution`: the federal member whose yes is mandatory; default `DE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federal_member: Option<MemberId>,
    /// `it-planungsrat-resolution`: the group of the Länder; default `laender`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states_group: Option<GroupId>,
    /// `it-planungsrat-resolution`: the weight table of the Länder's shares; default
    /// `koenigstein`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_table: Option<TableName>,
    /// `bundesrat`: the table of the Länder's votes; default `bundesrat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub votes_table: Option<TableName>,
    /// `bundesrat`: a constitutional change, needing two thirds of the votes (46 of 69) instead
    /// of an absolute majority (35 of 69); default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constitutional: Option<bool>,
    /// `eu-qualified-majority`: the table of the states' populations; default `population`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population_table: Option<TableName>,
    /// `eu-qualified-majority`: the reinforced qualified majority (Art. 238 (2) TFEU), 72 % of the
    /// states instead of 55 %; default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reinforced: Option<bool>,
}

impl PresetParams {
    /// The names of the parameters that are set.
    pub fn set_parameters(&self) -> Vec<&'static str> {
        [
            ("federal_member", self.federal_member.is_some()),
            ("states_group", self.states_group.is_some()),
            ("weight_table", self.weight_table.is_some()),
            ("votes_table", self.votes_table.is_some()),
            ("constitutional", self.constitutional.is_some()),
            ("population_table", self.population_table.is_some()),
            ("reinforced", self.reinforced.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// A fraction from constants known to be valid.
fn fraction(numerator: u64, denominator: u64) -> Fraction {
    #[expect(
        clippy::expect_used,
        reason = "preset fractions are constants between 0 and 1; a test builds every preset"
    )]
    Fraction::new(numerator, denominator).expect("preset fractions are between 0 and 1")
}

fn share(
    among: Scope,
    weighting: Weighting,
    base: ShareBase,
    comparison: Comparison,
    fraction: Fraction,
) -> Requirement {
    Requirement::YesShare {
        among,
        weighting,
        base,
        comparison,
        fraction,
    }
}

fn it_planungsrat_resolution(params: &PresetParams) -> Rule {
    let federal_member = params.federal_member.clone().unwrap_or_else(|| known("DE"));
    let states = Scope::Group {
        group: params
            .states_group
            .clone()
            .unwrap_or_else(|| known("laender")),
    };
    let table = params
        .weight_table
        .clone()
        .unwrap_or_else(|| known("koenigstein"));
    Rule {
        electorate: ElectorateSpec::VotingMembers,
        requirements: vec![
            Requirement::MandatoryYes {
                members: [federal_member].into(),
            },
            // "At least 11 Länder" is a number in the treaty, not a share of the group.
            Requirement::MinYes {
                among: states.clone(),
                at_least: 11,
            },
            // The base is fixed by the treaty: all Länder's shares, answered or not.
            share(
                states,
                Weighting::Table { table },
                ShareBase::AllMembers,
                Comparison::AtLeast,
                fraction(2, 3),
            ),
        ],
        abstention: Abstention::NotYes,
        silence: Silence::Abstention,
        objection: Objection::EndsProcedure,
        quorum: None,
        vote_change: VoteChange::UntilClose,
        early_close: EarlyClose::Never,
    }
}

/// The Bundesrat's thresholds are written as the constitution words them, "more than half" and
/// "at least two thirds" of all votes, which with 69 votes are exactly 35 and 46; written so,
/// they stay right if the seats change. The electorate is the body's voting members: in a
/// Bundesrat body those are the 16 Länder, each answering once for its whole block of votes.
fn bundesrat(params: &PresetParams) -> Rule {
    let table = params
        .votes_table
        .clone()
        .unwrap_or_else(|| known("bundesrat"));
    let (comparison, fraction) = if params.constitutional.unwrap_or(false) {
        (Comparison::AtLeast, fraction(2, 3))
    } else {
        (Comparison::MoreThan, fraction(1, 2))
    };
    Rule {
        electorate: ElectorateSpec::VotingMembers,
        requirements: vec![share(
            Scope::Electorate,
            Weighting::Table { table },
            ShareBase::AllMembers,
            comparison,
            fraction,
        )],
        abstention: Abstention::NotYes,
        silence: Silence::NotYes,
        objection: Objection::NotAvailable,
        quorum: None,
        vote_change: VoteChange::Never,
        early_close: EarlyClose::OnCertainty,
    }
}

/// The reinforced majority drops the "fewer than 4 states" clause: that clause is part of
/// Art. 16 (4) TEU, from which Art. 238 (2) TFEU derogates by defining the reinforced majority
/// as 72 % of the states representing 65 % of the population and nothing else. (With 72 %, 8
/// states not voting yes block on the count of states alone.)
fn eu_qualified_majority(params: &PresetParams) -> Rule {
    let table = params
        .population_table
        .clone()
        .unwrap_or_else(|| known("population"));
    let reinforced = params.reinforced.unwrap_or(false);
    let states = share(
        Scope::Electorate,
        Weighting::Heads,
        ShareBase::AllMembers,
        Comparison::AtLeast,
        if reinforced {
            fraction(72, 100)
        } else {
            fraction(55, 100)
        },
    );
    let population = share(
        Scope::Electorate,
        Weighting::Table { table },
        ShareBase::AllMembers,
        Comparison::AtLeast,
        fraction(65, 100),
    );
    let population_or_no_blocking_minority = if reinforced {
        population
    } else {
        Requirement::AnyOf {
            alternatives: vec![
                population,
                // A blocking minority needs at least 4 states: fewer than 4 failing to vote yes
                // (against, abstaining or silent) means at most 3.
                Requirement::MaxAgainst {
                    among: Scope::Electorate,
                    at_most: 3,
                },
            ],
        }
    };
    Rule {
        electorate: ElectorateSpec::VotingMembers,
        requirements: vec![states, population_or_no_blocking_minority],
        abstention: Abstention::NotYes,
        silence: Silence::NotYes,
        objection: Objection::NotAvailable,
        quorum: None,
        vote_change: VoteChange::Never,
        early_close: EarlyClose::OnCertainty,
    }
}

/// The silence procedure has no requirements: only an objection stops it, so a yes, no or
/// abstention changes nothing (a member that disagrees objects). `DOMAIN.md` leaves abstention
/// and vote change open ("—"): abstention is `excluded`, which has no effect without
/// requirements, and votes are final, since a vote consents to the procedure for good. Early close
/// is `never`: the only early end is an objection, which ends every procedure at once anyway, and
/// certainty on votes alone cannot arise while anyone may still object.
fn eu_silence() -> Rule {
    Rule {
        electorate: ElectorateSpec::VotingMembers,
        requirements: Vec::new(),
        abstention: Abstention::Excluded,
        silence: Silence::Consent,
        objection: Objection::EndsProcedure,
        quorum: None,
        vote_change: VoteChange::Never,
        early_close: EarlyClose::Never,
    }
}

/// Parses a literal default such as `DE` or `koenigstein`.
fn known<T: FromStr>(literal: &'static str) -> T
where
    T::Err: fmt::Debug,
{
    #[expect(
        clippy::expect_used,
        reason = "the literals are valid ids; a test builds every preset"
    )]
    literal.parse().expect("preset defaults are valid ids")
}
