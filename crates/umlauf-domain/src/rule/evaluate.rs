//! Evaluating a rule: the outcome of a circulation from the answers so far.
//!
//! [`evaluate`] gives the final outcome when the deadline has passed or every elector has
//! answered, [`FailureReason::Objection`] at once on an effective objection, and before that
//! [`Outcome::Pending`] unless the rule closes early and the outcome is certain
//! ([`certain_outcome`]).
//!
//! # Deciding certainty
//!
//! The outcome is certain when every way of answering what is still outstanding leads to it. An
//! elector that has not answered may still vote yes, no or abstain, object (where objections end
//! the procedure) or stay silent until the deadline; where votes may change, an elector that has
//! voted may still vote yes, no or abstain (a vote consents to the procedure, so it can neither
//! object nor become silent again). With 27 electors that is up to 5^27 completions, so the engine
//! does not enumerate them; it computes the set of reachable outcomes exactly from three extreme
//! completions. The argument:
//!
//! 1. An objection that ends the procedure fails it whatever else happens. So while such an
//!    objection is possible (objections end the procedure and someone has not answered), both
//!    [`FailureReason::Objection`] and the outcome without objections are reachable: not certain.
//!    What follows assumes no objection is possible.
//! 2. A final answer reduces to three things (see the table in the [module documentation of
//!    `rule`](super)): whether it is a vote (it takes part for the quorum), whether it blocks, and
//!    how it counts in requirements, one of `No`, `NotYes`, `Out`, `Yes`.
//! 3. The final outcome is: failed on quorum if fewer vote than the quorum requires; otherwise
//!    rejected if any answer blocks; otherwise adopted exactly when the requirements hold.
//! 4. Every requirement is monotone in each elector's count under the single order
//!    `No ≤ NotYes ≤ Out ≤ Yes`, and so is any all-of or any-of of requirements. Per kind:
//!    `min_yes` and `mandatory_yes` only see `Yes`; `max_against` sees `No` and `NotYes` alike as
//!    against and `Out` and `Yes` alike as not; a yes share `v / b` moves from `Out` to `Yes` as
//!    `(v + w) / (b + w) ≥ v / b` (as `v ≤ b`, for every weight `w ≥ 0`), and from `NotYes` or
//!    `No` to `Out` by leaving the base (`v / (b + w) ≤ v / b`); the base of all members does not
//!    depend on the count, and that of votes cast holds `No` but not `NotYes`. A zero base meets
//!    only "at least 0", which every base meets, so the order holds at `b = 0` too.
//! 5. Hence the quorum is the only non-monotone part (silence fails it where a no would not), and
//!    blocking is the other part not ordered with the requirements. Each is handled exactly:
//!    - failure on quorum is reachable iff the votes already cast are fewer than required (every
//!      elector that has not answered stays silent; a cast vote stays a vote even where it may
//!      change);
//!    - adoption is reachable iff everyone outstanding voting yes adopts: yes is the top count,
//!      a vote (the largest possible turnout), and never blocks, so if any completion adopts,
//!      that one does;
//!    - rejection is reachable iff the quorum can be met and either a final vote blocks, or an
//!      outstanding elector can abstain where abstention blocks, or one can stay silent where
//!      silence blocks while the others still make the quorum, or everyone outstanding voting no
//!      fails the requirements: no is the bottom count and a vote, so if any completion meeting
//!      the quorum fails the requirements, that one does.
//! 6. The outcome is certain iff exactly one of the three is reachable.
//!
//! This costs two evaluations of the requirements, each linear in the electorate, whatever the
//! weights: microseconds for the 27 states of the EU or the 17 members of the IT-Planungsrat. The
//! test suite checks it against brute-force enumeration of every completion on small electorates.

use super::{
    Abstention, Answers, Comparison, EarlyClose, Elector, Electorate, Evaluation, FailureReason,
    Moment, Objection, Outcome, Requirement, RequirementTally, Rule, Scope, ShareBase, Silence,
    Tally, VoteChange, Weighting,
};
use crate::ids::{Choice, Fraction, MemberId};

/// Evaluates `rule` on the answers so far.
///
/// - An objection by an elector, where objections end the procedure, fails the circulation at
///   any moment.
/// - At the deadline, or before it once every elector has voted, the outcome is final: silence
///   takes the meaning the rule gives it.
/// - Before that the outcome is [`Outcome::Pending`], unless the rule closes early on certainty
///   and no combination of outstanding answers can change the outcome (see the module
///   documentation for how that is decided).
///
/// The tally is computed on the answers received; at the deadline with silence resolved.
pub fn evaluate(
    rule: &Rule,
    electorate: &Electorate,
    answers: &Answers,
    moment: Moment,
) -> Evaluation {
    let ballot = Ballot::new(rule, electorate, answers);
    let final_now = ballot.is_final(moment);
    Evaluation {
        outcome: ballot.outcome(moment),
        tally: ballot.tally(final_now),
    }
}

/// One answer that the [`Answers`] given beside it do not hold yet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NewAnswer<'m> {
    /// The member votes (or changes its vote).
    Vote(&'m MemberId, Choice),
    /// The member objects to the procedure.
    Objection(&'m MemberId),
}

/// The outcome [`evaluate`] gives once `answers` also hold `new`, without copying the answers
/// or computing the tally.
pub(crate) fn outcome_after(
    rule: &Rule,
    electorate: &Electorate,
    answers: &Answers,
    new: NewAnswer<'_>,
    moment: Moment,
) -> Outcome {
    let mut ballot = Ballot::new(rule, electorate, answers);
    let member = match new {
        NewAnswer::Vote(member, _) | NewAnswer::Objection(member) => member,
    };
    // Electors are in id order; one outside the electorate changes nothing.
    if let Ok(index) = ballot
        .electors
        .binary_search_by(|(id, _)| (*id).cmp(member))
    {
        match new {
            NewAnswer::Vote(_, choice) => ballot.votes[index] = Some(choice),
            NewAnswer::Objection(_) => ballot.objected[index] = true,
        }
    }
    ballot.outcome(moment)
}

/// The outcome that every way of answering what is still outstanding before the deadline leads
/// to, if there is only one; `None` while different outcomes remain possible.
///
/// Unlike [`evaluate`] this ignores [`Rule::early_close`], so a circulation that records every
/// answer can still show that its outcome is settled. Once every elector has voted, or on an
/// effective objection, the outcome is that final one.
pub fn certain_outcome(rule: &Rule, electorate: &Electorate, answers: &Answers) -> Option<Outcome> {
    Ballot::new(rule, electorate, answers).certain()
}

/// How an answer counts in requirements, from worst to best for adoption (see the module
/// documentation for why this one order serves every requirement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Count {
    /// Against, and in every base.
    No,
    /// Against, and in the bases of all members and of those taking part.
    NotYes,
    /// Only in the base of all members.
    Out,
    /// Yes, and in every base.
    Yes,
}

/// A rule applied to one electorate's answers, electors in id order.
struct Ballot<'a> {
    rule: &'a Rule,
    electors: Vec<(&'a MemberId, &'a Elector)>,
    /// Each elector's vote, if it has voted.
    votes: Vec<Option<Choice>>,
    /// Whether each elector has objected (whether or not the rule lets that count).
    objected: Vec<bool>,
}

impl<'a> Ballot<'a> {
    fn new(rule: &'a Rule, electorate: &'a Electorate, answers: &Answers) -> Self {
        let electors: Vec<_> = electorate.members.iter().collect();
        // Electors and votes are both in id order: one pass over each, no lookups.
        let mut cast = answers.votes.iter().peekable();
        let votes = electors
            .iter()
            .map(|(id, _)| {
                while cast.next_if(|(voter, _)| *voter < *id).is_some() {}
                cast.next_if(|(voter, _)| *voter == *id)
                    .map(|(_, choice)| *choice)
            })
            .collect();
        let objected = electors
            .iter()
            .map(|(id, _)| answers.objections.contains(*id))
            .collect();
        Self {
            rule,
            electors,
            votes,
            objected,
        }
    }

    /// Whether the outcome is final at `moment`: at the deadline, or once every elector voted.
    fn is_final(&self, moment: Moment) -> bool {
        moment == Moment::AtDeadline || self.all_voted()
    }

    /// The outcome at `moment`, as [`evaluate`] documents it.
    fn outcome(&self, moment: Moment) -> Outcome {
        if self.objection_is_effective() {
            Outcome::Failed(FailureReason::Objection)
        } else if self.is_final(moment) {
            self.settle(&self.votes)
        } else if self.rule.early_close == EarlyClose::OnCertainty {
            self.certain().unwrap_or(Outcome::Pending)
        } else {
            Outcome::Pending
        }
    }

    fn objection_is_effective(&self) -> bool {
        self.rule.objection == Objection::EndsProcedure
            && self.objected.iter().any(|objected| *objected)
    }

    fn all_voted(&self) -> bool {
        self.votes.iter().all(Option::is_some)
    }

    fn quorum_required(&self) -> u64 {
        quorum_required(self.rule, self.electors.len())
    }

    /// The final outcome when each elector has voted `finals[i]` or stayed silent (`None`), and
    /// no objection counts.
    fn settle(&self, finals: &[Option<Choice>]) -> Outcome {
        let taking_part = finals.iter().flatten().count();
        if as_u64(taking_part) < self.quorum_required() {
            return Outcome::Failed(FailureReason::Quorum);
        }
        let blocked = finals.iter().any(|answer| match answer {
            Some(choice) => vote_blocks(self.rule, *choice),
            None => silence_blocks(self.rule),
        });
        if blocked {
            return Outcome::Rejected;
        }
        let counts: Vec<Count> = finals
            .iter()
            .map(|answer| match answer {
                Some(choice) => vote_count(self.rule, *choice),
                None => silence_count(self.rule),
            })
            .collect();
        if self.requirements_hold(&counts) {
            Outcome::Adopted
        } else {
            Outcome::Rejected
        }
    }

    fn requirements_hold(&self, counts: &[Count]) -> bool {
        self.rule
            .requirements
            .iter()
            .all(|requirement| self.measure(requirement, counts).met)
    }

    /// The certain outcome, by the argument in the module documentation.
    fn certain(&self) -> Option<Outcome> {
        if self.objection_is_effective() {
            return Some(Outcome::Failed(FailureReason::Objection));
        }
        if self.all_voted() {
            return Some(self.settle(&self.votes));
        }
        // From here on someone has not answered.
        if self.rule.objection == Objection::EndsProcedure {
            // They may still object.
            return None;
        }
        let votes_may_change = self.rule.vote_change == VoteChange::UntilClose;
        let voters = as_u64(self.votes.iter().flatten().count());
        let unanswered = as_u64(self.votes.iter().filter(|vote| vote.is_none()).count());
        let required = self.quorum_required();
        let quorum_can_be_met = voters + unanswered >= required;
        let quorum_can_fail = voters < required;
        let final_vote_blocks = !votes_may_change
            && self
                .votes
                .iter()
                .flatten()
                .any(|choice| vote_blocks(self.rule, *choice));
        let everyone_outstanding_votes = |outstanding: Choice| -> Vec<Count> {
            self.votes
                .iter()
                .map(|vote| match vote {
                    Some(choice) if !votes_may_change => vote_count(self.rule, *choice),
                    _ => vote_count(self.rule, outstanding),
                })
                .collect()
        };
        let can_be_adopted = quorum_can_be_met
            && !final_vote_blocks
            && self.requirements_hold(&everyone_outstanding_votes(Choice::Yes));
        // Someone outstanding may abstain (a vote, so the quorum stays within reach), or stay
        // silent, if the others can still make the quorum.
        let can_be_rejected = quorum_can_be_met
            && (final_vote_blocks
                || self.rule.abstention == Abstention::Blocks
                || (silence_blocks(self.rule) && voters + unanswered > required)
                || !self.requirements_hold(&everyone_outstanding_votes(Choice::No)));
        match (can_be_adopted, can_be_rejected, quorum_can_fail) {
            (true, false, false) => Some(Outcome::Adopted),
            (false, true, false) => Some(Outcome::Rejected),
            (false, false, true) => Some(Outcome::Failed(FailureReason::Quorum)),
            _ => None,
        }
    }

    /// The tally; `resolve_silence` applies the rule's meaning of silence to whoever has not
    /// answered.
    fn tally(&self, resolve_silence: bool) -> Tally {
        let effective_objection = self.rule.objection == Objection::EndsProcedure;
        let mut tally = Tally {
            quorum_required: self
                .rule
                .quorum
                .as_ref()
                .map(|_| saturating_u32(self.quorum_required())),
            ..Tally::default()
        };
        let mut counts = Vec::with_capacity(self.votes.len());
        for (vote, objected) in self.votes.iter().zip(&self.objected) {
            if *objected {
                tally.objected += 1;
            }
            let count = match vote {
                Some(choice) => {
                    tally.taking_part += 1;
                    match choice {
                        Choice::Yes => tally.yes += 1,
                        Choice::No => tally.no += 1,
                        Choice::Abstain => tally.abstain += 1,
                    }
                    if vote_blocks(self.rule, *choice) {
                        tally.blocking += 1;
                    }
                    vote_count(self.rule, *choice)
                }
                None if *objected && effective_objection => Count::Out,
                None => {
                    tally.silent += 1;
                    if resolve_silence {
                        match self.rule.silence {
                            Silence::Consent => tally.yes += 1,
                            Silence::NotYes => tally.no += 1,
                            Silence::Abstention => tally.abstain += 1,
                            Silence::Absent | Silence::Blocks => {}
                        }
                        if silence_blocks(self.rule) {
                            tally.blocking += 1;
                        }
                        silence_count(self.rule)
                    } else {
                        Count::Out
                    }
                }
            };
            counts.push(count);
        }
        tally.requirements = self
            .rule
            .requirements
            .iter()
            .map(|requirement| self.requirement_tally(requirement, &counts))
            .collect();
        tally
    }

    fn requirement_tally(&self, requirement: &Requirement, counts: &[Count]) -> RequirementTally {
        let measure = self.measure(requirement, counts);
        let alternatives = match requirement {
            Requirement::AnyOf { alternatives } => alternatives
                .iter()
                .map(|alternative| self.requirement_tally(alternative, counts))
                .collect(),
            _ => Vec::new(),
        };
        RequirementTally {
            description: describe(requirement),
            value: saturating_u64(measure.value),
            base: saturating_u64(measure.base),
            met: measure.met,
            alternatives,
        }
    }

    /// Electors in `scope`, with their counts.
    fn in_scope<'s>(
        &'s self,
        scope: &'s Scope,
        counts: &'s [Count],
    ) -> impl Iterator<Item = (&'a Elector, Count)> + 's {
        self.electors
            .iter()
            .zip(counts)
            .filter(move |((id, elector), _)| match scope {
                Scope::Electorate => true,
                Scope::Group { group } => elector.groups.contains(group),
                Scope::Members { members } => members.contains(*id),
            })
            .map(|((_, elector), count)| (*elector, *count))
    }

    fn measure(&self, requirement: &Requirement, counts: &[Count]) -> Measure {
        match requirement {
            Requirement::MinYes { among, at_least } => {
                let (yes, size) = self
                    .in_scope(among, counts)
                    .fold((0u128, 0u128), |(yes, size), (_, count)| {
                        (yes + u128::from(count == Count::Yes), size + 1)
                    });
                Measure {
                    value: yes,
                    base: size,
                    met: yes >= u128::from(*at_least),
                }
            }
            Requirement::YesShare {
                among,
                weighting,
                base,
                comparison,
                fraction,
            } => {
                let (yes, whole) = self.in_scope(among, counts).fold(
                    (0u128, 0u128),
                    |(yes, whole), (elector, count)| {
                        let weight = u128::from(match weighting {
                            Weighting::Heads => 1,
                            Weighting::Table { table } => {
                                elector.weights.get(table).map_or(0, |weight| weight.0)
                            }
                        });
                        let in_base = match base {
                            ShareBase::AllMembers => true,
                            ShareBase::TakingPart => count != Count::Out,
                            ShareBase::VotesCast => matches!(count, Count::Yes | Count::No),
                        };
                        (
                            yes + if count == Count::Yes { weight } else { 0 },
                            whole + if in_base { weight } else { 0 },
                        )
                    },
                );
                Measure {
                    value: yes,
                    base: whole,
                    met: share_holds(yes, whole, *comparison, *fraction),
                }
            }
            Requirement::MandatoryYes { members } => {
                let yes = members
                    .iter()
                    .filter(|member| {
                        self.electors
                            .binary_search_by(|(id, _)| (*id).cmp(member))
                            .ok()
                            .and_then(|index| counts.get(index))
                            == Some(&Count::Yes)
                    })
                    .count();
                Measure {
                    value: as_u128(yes),
                    base: as_u128(members.len()),
                    met: yes == members.len(),
                }
            }
            Requirement::MaxAgainst { among, at_most } => {
                let (against, size) = self.in_scope(among, counts).fold(
                    (0u128, 0u128),
                    |(against, size), (_, count)| {
                        (against + u128::from(count <= Count::NotYes), size + 1)
                    },
                );
                Measure {
                    value: against,
                    base: size,
                    met: against <= u128::from(*at_most),
                }
            }
            Requirement::AnyOf { alternatives } => {
                let holding = alternatives
                    .iter()
                    .filter(|alternative| self.measure(alternative, counts).met)
                    .count();
                Measure {
                    value: as_u128(holding),
                    base: as_u128(alternatives.len()),
                    met: holding > 0,
                }
            }
        }
    }
}

/// Where a requirement stands on some counts.
struct Measure {
    value: u128,
    base: u128,
    met: bool,
}

/// How a vote counts in requirements.
fn vote_count(rule: &Rule, choice: Choice) -> Count {
    match (choice, rule.abstention) {
        (Choice::Yes, _) => Count::Yes,
        (Choice::No, _) => Count::No,
        (Choice::Abstain, Abstention::NotYes) => Count::NotYes,
        (Choice::Abstain, Abstention::Excluded | Abstention::Blocks) => Count::Out,
    }
}

/// How silence at the deadline counts in requirements.
fn silence_count(rule: &Rule) -> Count {
    match rule.silence {
        Silence::Abstention => vote_count(rule, Choice::Abstain),
        Silence::NotYes => Count::NotYes,
        Silence::Consent => Count::Yes,
        Silence::Absent | Silence::Blocks => Count::Out,
    }
}

fn vote_blocks(rule: &Rule, choice: Choice) -> bool {
    choice == Choice::Abstain && rule.abstention == Abstention::Blocks
}

fn silence_blocks(rule: &Rule) -> bool {
    match rule.silence {
        Silence::Blocks => true,
        Silence::Abstention => rule.abstention == Abstention::Blocks,
        Silence::NotYes | Silence::Consent | Silence::Absent => false,
    }
}

/// The quorum for an electorate of `size`: the larger of the rounded-up fraction and the
/// absolute minimum; 0 without a quorum.
pub(super) fn quorum_required(rule: &Rule, size: usize) -> u64 {
    rule.quorum.as_ref().map_or(0, |quorum| {
        let share = (u128::from(quorum.fraction.numerator()) * as_u128(size))
            .div_ceil(u128::from(quorum.fraction.denominator()));
        saturating_u64(share).max(u64::from(quorum.at_least))
    })
}

/// Whether `part / whole` compares with `fraction` as required. A zero `whole` meets "at least"
/// only a zero fraction and never "more than" anything.
fn share_holds(part: u128, whole: u128, comparison: Comparison, fraction: Fraction) -> bool {
    if whole == 0 {
        return comparison == Comparison::AtLeast && fraction.numerator() == 0;
    }
    // Sums of weights may exceed 64 bits, so the cross-multiplication is done in 192 bits.
    let left = widening_mul(part, fraction.denominator());
    let right = widening_mul(whole, fraction.numerator());
    match comparison {
        Comparison::AtLeast => left >= right,
        Comparison::MoreThan => left > right,
    }
}

/// `a × b` exactly, as the (high, low) 128-bit halves of a 256-bit number.
fn widening_mul(a: u128, b: u64) -> (u128, u128) {
    let b = u128::from(b);
    let low_product = (a & u128::from(u64::MAX)) * b;
    let high_product = (a >> 64) * b;
    let (low, carry) = low_product.overflowing_add(high_product << 64);
    ((high_product >> 64) + u128::from(carry), low)
}

/// A human description of a requirement, e.g. `at least 11 yes among group laender`.
pub(super) fn describe(requirement: &Requirement) -> String {
    match requirement {
        Requirement::MinYes { among, at_least } => {
            format!("at least {at_least} yes among {}", describe_scope(among))
        }
        Requirement::YesShare {
            among,
            weighting,
            base,
            comparison,
            fraction,
        } => {
            let weighting = match weighting {
                Weighting::Heads => "heads".to_owned(),
                Weighting::Table { table } => format!("weight in {table}"),
            };
            let comparison = match comparison {
                Comparison::AtLeast => ">=",
                Comparison::MoreThan => ">",
            };
            let base = match base {
                ShareBase::AllMembers => "all members",
                ShareBase::TakingPart => "those taking part",
                ShareBase::VotesCast => "votes cast",
            };
            format!(
                "yes share by {weighting} among {} {comparison} {fraction} of {base}",
                describe_scope(among)
            )
        }
        Requirement::MandatoryYes { members } => format!("yes from {}", join(members.iter())),
        Requirement::MaxAgainst { among, at_most } => {
            format!("at most {at_most} against among {}", describe_scope(among))
        }
        Requirement::AnyOf { alternatives } => {
            let alternatives: Vec<String> = alternatives.iter().map(describe).collect();
            format!("any of: {}", alternatives.join(" | "))
        }
    }
}

pub(super) fn describe_scope(scope: &Scope) -> String {
    match scope {
        Scope::Electorate => "the electorate".to_owned(),
        Scope::Group { group } => format!("group {group}"),
        Scope::Members { members } => join(members.iter()),
    }
}

fn join<'m>(members: impl Iterator<Item = &'m MemberId>) -> String {
    members.map(MemberId::as_str).collect::<Vec<_>>().join(", ")
}

fn as_u64(count: usize) -> u64 {
    u64::try_from(count).unwrap_or(u64::MAX)
}

fn as_u128(count: usize) -> u128 {
    u128::from(as_u64(count))
}

fn saturating_u64(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

fn saturating_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_products_compare_exactly() {
        assert_eq!(widening_mul(3, 5), (0, 15));
        assert_eq!(widening_mul(1 << 64, 1 << 63), (0, 1 << 127));
        assert_eq!(widening_mul(u128::MAX, 2), (1, u128::MAX - 1));
        assert_eq!(
            widening_mul(u128::MAX, u64::MAX),
            (
                u128::from(u64::MAX) - 1,
                u128::MAX - u128::from(u64::MAX) + 1
            )
        );
        let two_thirds = Fraction::new(2, 3).unwrap();
        assert!(share_holds(
            u128::MAX / 3 * 2,
            u128::MAX / 3 * 3,
            Comparison::AtLeast,
            two_thirds
        ));
        assert!(!share_holds(
            u128::MAX / 3 * 2,
            u128::MAX / 3 * 3,
            Comparison::MoreThan,
            two_thirds
        ));
        assert!(!share_holds(
            u128::MAX / 3 * 2 - 1,
            u128::MAX / 3 * 3,
            Comparison::AtLeast,
            two_thirds
        ));
    }

    #[test]
    fn zero_bases_meet_only_a_zero_fraction() {
        let zero = Fraction::new(0, 1).unwrap();
        let half = Fraction::new(1, 2).unwrap();
        assert!(share_holds(0, 0, Comparison::AtLeast, zero));
        assert!(!share_holds(0, 0, Comparison::AtLeast, half));
        assert!(!share_holds(0, 0, Comparison::MoreThan, zero));
    }
}
