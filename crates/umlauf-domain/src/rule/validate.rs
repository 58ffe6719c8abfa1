//! Checking a rule against the electorate it is to be used with, before a circulation opens.
//!
//! Evaluation is total: it gives an outcome for any rule and any electorate. Validation catches
//! the rules that would give a meaningless one: a group, table or member that does not exist, a
//! threshold no electorate can reach, a weight table that leaves someone out.

use std::collections::BTreeSet;

use super::evaluate::{describe_scope, quorum_required};
use super::{Electorate, ElectorateSpec, Preset, Requirement, Rule, Scope, Weighting};
use crate::ids::{GroupId, MemberId, TableName};

/// Why a rule cannot be used with an electorate, or a preset with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The electorate has no members.
    #[error("the electorate is empty")]
    EmptyElectorate,
    /// No member of the electorate is in a group the rule names.
    #[error("no member of the electorate is in group {group}")]
    UnknownGroup {
        /// The group.
        group: GroupId,
    },
    /// A member the rule names is not in the electorate.
    #[error("member {member} is not in the electorate")]
    UnknownMember {
        /// The member.
        member: MemberId,
    },
    /// A member of the electorate is not one the rule's electorate selects: the electorate was
    /// not frozen from this rule.
    #[error("member {member} is in the electorate, but the rule's electorate does not select it")]
    UnselectedElector {
        /// The member.
        member: MemberId,
    },
    /// A set of members the rule names is empty.
    #[error("{what} names no members")]
    EmptyMembers {
        /// Where the empty set is, e.g. `mandatory yes`.
        what: &'static str,
    },
    /// No member of the electorate has a weight in a table the rule names.
    #[error("no member of the electorate has a weight in table {table}")]
    UnknownTable {
        /// The table.
        table: TableName,
    },
    /// A member in a weighted requirement's scope has no weight in its table.
    #[error("member {member} has no weight in table {table}")]
    MissingWeight {
        /// The table.
        table: TableName,
        /// The member.
        member: MemberId,
    },
    /// The weights of a weighted requirement's scope sum to zero.
    #[error("the weights in table {table} among {scope} sum to zero")]
    ZeroTotalWeight {
        /// The table.
        table: TableName,
        /// The scope, described.
        scope: String,
    },
    /// A `min_yes` threshold larger than its scope.
    #[error("at least {at_least} yes votes are required among {scope}, which has {size} members")]
    MinYesOutOfRange {
        /// The threshold.
        at_least: u32,
        /// The scope, described.
        scope: String,
        /// The number of electors in the scope.
        size: u64,
    },
    /// A `max_against` limit larger than its scope.
    #[error("at most {at_most} against among {scope}, which has only {size} members")]
    MaxAgainstOutOfRange {
        /// The limit.
        at_most: u32,
        /// The scope, described.
        scope: String,
        /// The number of electors in the scope.
        size: u64,
    },
    /// An `any_of` without alternatives, which could never hold.
    #[error("any_of needs at least one alternative")]
    EmptyAnyOf,
    /// The quorum is larger than the electorate.
    #[error("the quorum of {required} is larger than the electorate of {size}")]
    QuorumUnreachable {
        /// The members that must take part.
        required: u64,
        /// The electorate's size.
        size: u64,
    },
    /// A preset was given a parameter it does not use.
    #[error("preset {preset} does not use parameter {parameter}")]
    UnusedPresetParameter {
        /// The preset.
        preset: Preset,
        /// The parameter's name.
        parameter: &'static str,
    },
}

impl RuleError {
    /// A stable snake_case code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyElectorate => "empty_electorate",
            Self::UnknownGroup { .. } => "unknown_group",
            Self::UnknownMember { .. } => "unknown_member",
            Self::UnselectedElector { .. } => "unselected_elector",
            Self::EmptyMembers { .. } => "empty_members",
            Self::UnknownTable { .. } => "unknown_table",
            Self::MissingWeight { .. } => "missing_weight",
            Self::ZeroTotalWeight { .. } => "zero_total_weight",
            Self::MinYesOutOfRange { .. } => "min_yes_out_of_range",
            Self::MaxAgainstOutOfRange { .. } => "max_against_out_of_range",
            Self::EmptyAnyOf => "empty_any_of",
            Self::QuorumUnreachable { .. } => "quorum_unreachable",
            Self::UnusedPresetParameter { .. } => "unused_preset_parameter",
        }
    }
}

impl Rule {
    /// Checks that the rule can be used with `electorate`, the electorate frozen from it: the
    /// electorate is not empty and is the one the rule selects; every group, table and member the
    /// rule names exists in it; every elector in the scope of a weighted share has a weight in its
    /// table and the weights sum to more than zero; `min_yes` and `max_against` thresholds and the
    /// quorum are within reach; no `any_of` or member list is empty.
    pub fn validate(&self, electorate: &Electorate) -> Result<(), RuleError> {
        if electorate.members.is_empty() {
            return Err(RuleError::EmptyElectorate);
        }
        match &self.electorate {
            ElectorateSpec::VotingMembers => {}
            ElectorateSpec::Group { group } => {
                if !electorate
                    .members
                    .values()
                    .any(|elector| elector.groups.contains(group))
                {
                    return Err(RuleError::UnknownGroup {
                        group: group.clone(),
                    });
                }
                if let Some((member, _)) = electorate
                    .members
                    .iter()
                    .find(|(_, elector)| !elector.groups.contains(group))
                {
                    return Err(RuleError::UnselectedElector {
                        member: member.clone(),
                    });
                }
            }
            ElectorateSpec::Members { members } => {
                check_members(electorate, members, "the rule's electorate")?;
                if let Some(member) = electorate
                    .members
                    .keys()
                    .find(|member| !members.contains(*member))
                {
                    return Err(RuleError::UnselectedElector {
                        member: member.clone(),
                    });
                }
            }
        }
        for requirement in &self.requirements {
            check_requirement(electorate, requirement)?;
        }
        let size = u64::try_from(electorate.members.len()).unwrap_or(u64::MAX);
        let required = quorum_required(self, electorate.members.len());
        if required > size {
            return Err(RuleError::QuorumUnreachable { required, size });
        }
        Ok(())
    }
}

fn check_members(
    electorate: &Electorate,
    members: &BTreeSet<MemberId>,
    what: &'static str,
) -> Result<(), RuleError> {
    if members.is_empty() {
        return Err(RuleError::EmptyMembers { what });
    }
    match members
        .iter()
        .find(|member| !electorate.members.contains_key(*member))
    {
        Some(member) => Err(RuleError::UnknownMember {
            member: member.clone(),
        }),
        None => Ok(()),
    }
}

/// Checks a scope and returns its size.
fn check_scope(electorate: &Electorate, scope: &Scope) -> Result<u64, RuleError> {
    let size = match scope {
        Scope::Electorate => electorate.members.len(),
        Scope::Group { group } => {
            let size = electorate
                .members
                .values()
                .filter(|elector| elector.groups.contains(group))
                .count();
            if size == 0 {
                return Err(RuleError::UnknownGroup {
                    group: group.clone(),
                });
            }
            size
        }
        Scope::Members { members } => {
            check_members(electorate, members, "a scope")?;
            members.len()
        }
    };
    Ok(u64::try_from(size).unwrap_or(u64::MAX))
}

fn check_requirement(electorate: &Electorate, requirement: &Requirement) -> Result<(), RuleError> {
    match requirement {
        Requirement::MinYes { among, at_least } => {
            let size = check_scope(electorate, among)?;
            if u64::from(*at_least) > size {
                return Err(RuleError::MinYesOutOfRange {
                    at_least: *at_least,
                    scope: describe_scope(among),
                    size,
                });
            }
        }
        Requirement::YesShare {
            among, weighting, ..
        } => {
            check_scope(electorate, among)?;
            if let Weighting::Table { table } = weighting {
                check_table(electorate, among, table)?;
            }
        }
        Requirement::MandatoryYes { members } => {
            check_members(electorate, members, "mandatory yes")?;
        }
        Requirement::MaxAgainst { among, at_most } => {
            let size = check_scope(electorate, among)?;
            if u64::from(*at_most) > size {
                return Err(RuleError::MaxAgainstOutOfRange {
                    at_most: *at_most,
                    scope: describe_scope(among),
                    size,
                });
            }
        }
        Requirement::AnyOf { alternatives } => {
            if alternatives.is_empty() {
                return Err(RuleError::EmptyAnyOf);
            }
            for alternative in alternatives {
                check_requirement(electorate, alternative)?;
            }
        }
    }
    Ok(())
}

fn check_table(electorate: &Electorate, scope: &Scope, table: &TableName) -> Result<(), RuleError> {
    if !electorate
        .members
        .values()
        .any(|elector| elector.weights.contains_key(table))
    {
        return Err(RuleError::UnknownTable {
            table: table.clone(),
        });
    }
    let mut total: u128 = 0;
    for (member, elector) in &electorate.members {
        let in_scope = match scope {
            Scope::Electorate => true,
            Scope::Group { group } => elector.groups.contains(group),
            Scope::Members { members } => members.contains(member),
        };
        if in_scope {
            match elector.weights.get(table) {
                Some(weight) => total += u128::from(weight.0),
                None => {
                    return Err(RuleError::MissingWeight {
                        table: table.clone(),
                        member: member.clone(),
                    });
                }
            }
        }
    }
    if total == 0 {
        return Err(RuleError::ZeroTotalWeight {
            table: table.clone(),
            scope: describe_scope(scope),
        });
    }
    Ok(())
}
