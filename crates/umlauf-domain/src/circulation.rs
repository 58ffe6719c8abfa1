//! The circulation aggregate: one written procedure from opening to decision.
//!
//! [`Circulation`] is a fold of one `circulation/<id>` stream. [`decide`] takes the body (for the
//! electorate, the weight tables and the presets) and the circulation, and returns the events a
//! command causes, including the `CirculationClosed` that follows at once when the answer makes
//! the outcome certain. [`close_at_deadline`] is what the service's deadline scheduler decides.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::body::Body;
use crate::command::{
    Action, CastVote, Command, ExtendDeadline, ObjectToProcedure, OpenCirculation, RuleChoice,
    WithdrawCirculation, check_text,
};
use crate::error::DomainError;
use crate::event::{
    CirculationClosed, CirculationOpened, CirculationWithdrawn, CloseTrigger, DeadlineExtended,
    Decision, Event, FinalAnswer, ProcedureObjected, VoteCast,
};
use crate::ids::{Actor, CirculationId, MemberId};
use crate::rule::{
    Answers, Elector, Electorate, ElectorateSpec, Moment, NewAnswer, Objection, Outcome, Rule,
    VoteChange, evaluate, outcome_after,
};

/// Longest title, in characters.
const MAX_TITLE: usize = 500;
/// Longest proposal text, in characters (a longer text is circulated by reference).
const MAX_PROPOSAL: usize = 200_000;
/// Longest statement, objection reason or withdrawal reason, in characters.
const MAX_STATEMENT: usize = 10_000;

/// The state of one circulation, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Circulation {
    /// What it was opened with; `None` before it is opened.
    pub opened: Option<Box<CirculationOpened>>,
    /// The current deadline.
    pub deadline: Option<DateTime<Utc>>,
    /// The answers so far.
    pub answers: Answers,
    /// Statements attached to the current votes.
    pub statements: BTreeMap<MemberId, String>,
    /// Reasons given with objections.
    pub objection_reasons: BTreeMap<MemberId, String>,
    /// The withdrawal's reason, if withdrawn.
    pub withdrawal: Option<String>,
    /// The decision, once closed.
    pub closed: Option<Box<CirculationClosed>>,
    /// The number of events folded: the stream's version.
    pub version: u64,
}

impl Circulation {
    /// Folds a stream's events into a circulation.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        events.into_iter().fold(Self::default(), evolve)
    }

    /// Whether it is open: opened and not closed.
    pub fn is_open(&self) -> bool {
        self.opened.is_some() && self.closed.is_none()
    }

    /// The current evaluation of its rule on the answers so far.
    pub fn evaluate(&self, moment: Moment) -> Option<crate::rule::Evaluation> {
        let opened = self.opened.as_ref()?;
        Some(evaluate(
            &opened.rule,
            &opened.electorate,
            &self.answers,
            moment,
        ))
    }

    /// Each elector's answer as a decision would record it now.
    pub fn final_answers(&self) -> BTreeMap<MemberId, FinalAnswer> {
        let Some(opened) = &self.opened else {
            return BTreeMap::new();
        };
        final_answers(opened, &self.answers)
    }

    fn close(
        &self,
        outcome: Outcome,
        evaluation_tally: crate::rule::Tally,
        trigger: CloseTrigger,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        let opened = self.opened.as_deref()?;
        close_event(
            opened,
            &self.answers,
            outcome,
            evaluation_tally,
            trigger,
            now,
        )
    }

    fn require_open(
        &self,
        id: CirculationId,
        now: DateTime<Utc>,
    ) -> Result<&CirculationOpened, DomainError> {
        let opened = self
            .opened
            .as_ref()
            .ok_or(DomainError::UnknownCirculation(id))?;
        if self.closed.is_some() {
            return Err(DomainError::CirculationClosed(id));
        }
        let deadline = self.deadline.unwrap_or(opened.deadline);
        if now > deadline {
            return Err(DomainError::DeadlinePassed { deadline, now });
        }
        Ok(opened)
    }
}

/// Decides a command addressed to a circulation's stream. `now` is the recording time.
pub fn decide(
    body: &Body,
    circulation: &Circulation,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DomainError> {
    if let Some(opened) = &circulation.opened
        && opened.body != command.body
    {
        return Err(DomainError::BodyMismatch {
            named: command.body.clone(),
            actual: opened.body.clone(),
        });
    }
    match &command.action {
        Action::OpenCirculation(open) => open_circulation(body, circulation, command, open, now),
        Action::CastVote(vote) => cast_vote(circulation, command, vote, now),
        Action::ObjectToProcedure(objection) => object(circulation, command, objection, now),
        Action::ExtendDeadline(extend) => extend_deadline(circulation, command, extend, now),
        Action::WithdrawCirculation(withdrawal) => withdraw(circulation, command, withdrawal, now),
        Action::ConstituteBody(_)
        | Action::AdmitMember(_)
        | Action::RetireMember(_)
        | Action::SetWeightTable(_)
        | Action::RegisterKey(_)
        | Action::RevokeKey(_) => Err(DomainError::InvalidCommand(format!(
            "{} addresses a body, not a circulation",
            command.type_name()
        ))),
    }
}

/// Closes a circulation whose deadline has passed: silence takes the meaning the rule gives it.
/// Refused while the deadline has not passed, and on a circulation already closed (so a second
/// scheduler that comes late changes nothing).
pub fn close_at_deadline(
    circulation: &Circulation,
    id: CirculationId,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DomainError> {
    let opened = circulation
        .opened
        .as_ref()
        .ok_or(DomainError::UnknownCirculation(id))?;
    if circulation.closed.is_some() {
        return Err(DomainError::CirculationClosed(id));
    }
    let deadline = circulation.deadline.unwrap_or(opened.deadline);
    if now <= deadline {
        return Err(DomainError::DeadlineNotReached { deadline });
    }
    let evaluation = evaluate(
        &opened.rule,
        &opened.electorate,
        &circulation.answers,
        Moment::AtDeadline,
    );
    Ok(circulation
        .close(
            evaluation.outcome,
            evaluation.tally,
            CloseTrigger::Deadline { deadline },
            now,
        )
        .into_iter()
        .collect())
}

fn require_secretariat(command: &Command, action: &'static str) -> Result<(), DomainError> {
    if command.actor == Actor::Secretariat {
        Ok(())
    } else {
        Err(DomainError::Forbidden {
            actor: command.actor.clone(),
            action,
        })
    }
}

fn require_member(command: &Command, action: &'static str) -> Result<MemberId, DomainError> {
    command
        .actor
        .member()
        .cloned()
        .ok_or_else(|| DomainError::Forbidden {
            actor: command.actor.clone(),
            action,
        })
}

fn open_circulation(
    body: &Body,
    circulation: &Circulation,
    command: &Command,
    open: &OpenCirculation,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DomainError> {
    if body.id.as_ref() != Some(&command.body) {
        return Err(DomainError::UnknownBody(command.body.clone()));
    }
    require_secretariat(command, "open a circulation")?;
    if circulation.opened.is_some() {
        return Err(DomainError::CirculationExists(open.circulation));
    }
    check_text("title", &open.title, MAX_TITLE, true)?;
    match (&open.proposal.text, &open.proposal.reference) {
        (None, None) => {
            return Err(DomainError::InvalidText {
                field: "proposal",
                detail: "needs its text or a reference to it".into(),
            });
        }
        (Some(text), _) => {
            check_text("proposal text", text, MAX_PROPOSAL, true)?;
            let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
            if digest != open.proposal.sha256.0 {
                return Err(DomainError::ProposalDigestMismatch);
            }
        }
        (None, Some(_)) => {}
    }
    if let Some(reference) = &open.proposal.reference {
        check_text("proposal reference", reference, MAX_TITLE, true)?;
    }
    if open.deadline <= now {
        return Err(DomainError::DeadlineNotLater {
            requested: open.deadline,
            current: now,
        });
    }

    let (preset, rule) = match &open.rule {
        RuleChoice::Preset { preset, params } => {
            let params = params
                .clone()
                .or_else(|| body.presets.get(preset).cloned())
                .unwrap_or_default();
            (Some(*preset), preset.rule(&params)?)
        }
        RuleChoice::Custom { rule } => (None, rule.clone()),
    };
    let year = Body::year_of(now);
    let (electorate, weight_table_years) = freeze_electorate(body, &rule, year)?;
    rule.validate(&electorate)?;

    let opened = CirculationOpened {
        circulation: open.circulation,
        body: command.body.clone(),
        title: open.title.clone(),
        proposal: open.proposal.clone(),
        preset,
        rule,
        electorate,
        weight_table_years,
        opened_at: now,
        deadline: open.deadline,
    };
    Ok(vec![Event::CirculationOpened(Box::new(opened))])
}

/// The electorate the rule selects from the body's active voting members, with their weights in
/// every table in force in `year`.
fn freeze_electorate(
    body: &Body,
    rule: &Rule,
    year: u16,
) -> Result<(Electorate, BTreeMap<crate::ids::TableName, u16>), DomainError> {
    let tables = body.tables_in_force(year);
    let selected =
        |member: &MemberId, groups: &std::collections::BTreeSet<crate::ids::GroupId>| match &rule
            .electorate
        {
            ElectorateSpec::VotingMembers => true,
            ElectorateSpec::Group { group } => groups.contains(group),
            ElectorateSpec::Members { members } => members.contains(member),
        };
    match &rule.electorate {
        ElectorateSpec::Group { group } if !body.groups.contains_key(group) => {
            return Err(DomainError::UnknownGroup(group.clone()));
        }
        ElectorateSpec::Members { members } => {
            if let Some(unknown) = members.iter().find(|member| !body.is_active_member(member)) {
                return Err(DomainError::UnknownMember(unknown.clone()));
            }
        }
        _ => {}
    }
    let members = body
        .members
        .iter()
        .filter(|(id, member)| {
            !member.retired
                && member.kind == crate::command::MemberKind::Voting
                && selected(id, &member.groups)
        })
        .map(|(id, member)| {
            let weights = tables
                .iter()
                .filter_map(|(name, table)| {
                    table
                        .weights
                        .get(id)
                        .map(|weight| ((*name).clone(), *weight))
                })
                .collect();
            (
                id.clone(),
                Elector {
                    groups: member.groups.clone(),
                    weights,
                },
            )
        })
        .collect::<BTreeMap<_, _>>();
    if members.is_empty() {
        return Err(DomainError::EmptyElectorate);
    }
    let years = tables
        .into_iter()
        .map(|(name, table)| (name.clone(), table.year))
        .collect();
    Ok((Electorate { members }, years))
}

/// Events for an answer (vote or objection) that was just decided, with the close it causes.
/// Every elector's final answer, given the answers received.
fn final_answers(opened: &CirculationOpened, answers: &Answers) -> BTreeMap<MemberId, FinalAnswer> {
    opened
        .electorate
        .members
        .keys()
        .map(|member| {
            let answer = match answers.votes.get(member) {
                Some(choice) => FinalAnswer::from(*choice),
                None if answers.objections.contains(member) => FinalAnswer::Objected,
                None => FinalAnswer::Silent,
            };
            (member.clone(), answer)
        })
        .collect()
}

/// The `CirculationClosed` an outcome leads to, if it is not pending.
fn close_event(
    opened: &CirculationOpened,
    answers: &Answers,
    outcome: Outcome,
    evaluation_tally: crate::rule::Tally,
    trigger: CloseTrigger,
    now: DateTime<Utc>,
) -> Option<Event> {
    let decision = match outcome {
        Outcome::Pending => return None,
        Outcome::Adopted => Decision::Adopted,
        Outcome::Rejected => Decision::Rejected,
        Outcome::Failed(reason) => Decision::Failed(reason),
    };
    Some(Event::CirculationClosed(Box::new(CirculationClosed {
        decision,
        trigger,
        tally: evaluation_tally,
        answers: final_answers(opened, answers),
        closed_at: now,
    })))
}

/// The answer event, followed by the `CirculationClosed` it makes certain, if any.
///
/// The circulation is evaluated as [`evolve`] would leave it after the answer, without building
/// that state: the outcome is computed on the borrowed answers with the new one laid over them,
/// and only when it closes the circulation are the answers copied, for the tally and the final
/// answers the close records.
fn answer_with_close(
    circulation: &Circulation,
    opened: &CirculationOpened,
    answer: Event,
    now: DateTime<Utc>,
) -> Vec<Event> {
    let new = match &answer {
        Event::VoteCast(vote) => NewAnswer::Vote(&vote.member, vote.choice),
        Event::ProcedureObjected(objection) => NewAnswer::Objection(&objection.member),
        _ => return vec![answer],
    };
    let outcome = outcome_after(
        &opened.rule,
        &opened.electorate,
        &circulation.answers,
        new,
        Moment::BeforeDeadline,
    );
    if outcome == Outcome::Pending {
        return vec![answer];
    }
    let mut answers = circulation.answers.clone();
    match new {
        NewAnswer::Vote(member, choice) => {
            answers.votes.insert(member.clone(), choice);
        }
        NewAnswer::Objection(member) => {
            answers.objections.insert(member.clone());
        }
    }
    let evaluation = evaluate(
        &opened.rule,
        &opened.electorate,
        &answers,
        Moment::BeforeDeadline,
    );
    let close = close_event(
        opened,
        &answers,
        evaluation.outcome,
        evaluation.tally,
        CloseTrigger::Answer {
            stream_version: circulation.version + 1,
        },
        now,
    );
    let mut events = Vec::with_capacity(2);
    events.push(answer);
    events.extend(close);
    events
}

fn cast_vote(
    circulation: &Circulation,
    command: &Command,
    vote: &CastVote,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DomainError> {
    let member = require_member(command, "vote")?;
    let opened = circulation.require_open(vote.circulation, now)?;
    if !opened.electorate.members.contains_key(&member) {
        return Err(DomainError::NotInElectorate(member));
    }
    if circulation.answers.objections.contains(&member) {
        return Err(DomainError::AlreadyObjected(member));
    }
    if vote.proposal_sha256 != opened.proposal.sha256 {
        return Err(DomainError::ProposalMismatch);
    }
    if circulation.answers.votes.contains_key(&member)
        && opened.rule.vote_change == VoteChange::Never
    {
        return Err(DomainError::VoteChangeNotAllowed(member));
    }
    if let Some(statement) = &vote.statement {
        check_text("statement", statement, MAX_STATEMENT, false)?;
    }
    let event = Event::VoteCast(VoteCast {
        member,
        choice: vote.choice,
        proposal_sha256: vote.proposal_sha256,
        statement: vote.statement.clone(),
    });
    Ok(answer_with_close(circulation, opened, event, now))
}

fn object(
    circulation: &Circulation,
    command: &Command,
    objection: &ObjectToProcedure,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DomainError> {
    let member = require_member(command, "object to the procedure")?;
    let opened = circulation.require_open(objection.circulation, now)?;
    if !opened.electorate.members.contains_key(&member) {
        return Err(DomainError::NotInElectorate(member));
    }
    if opened.rule.objection == Objection::NotAvailable {
        return Err(DomainError::ObjectionNotAvailable);
    }
    if circulation.answers.votes.contains_key(&member) {
        return Err(DomainError::AlreadyVoted(member));
    }
    if circulation.answers.objections.contains(&member) {
        return Err(DomainError::AlreadyObjected(member));
    }
    check_text("reason", &objection.reason, MAX_STATEMENT, true)?;
    let event = Event::ProcedureObjected(ProcedureObjected {
        member,
        reason: objection.reason.clone(),
    });
    Ok(answer_with_close(circulation, opened, event, now))
}

fn extend_deadline(
    circulation: &Circulation,
    command: &Command,
    extend: &ExtendDeadline,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DomainError> {
    require_secretariat(command, "extend a deadline")?;
    let opened = circulation.require_open(extend.circulation, now)?;
    let current = circulation.deadline.unwrap_or(opened.deadline);
    if extend.deadline <= current {
        return Err(DomainError::DeadlineNotLater {
            requested: extend.deadline,
            current,
        });
    }
    Ok(vec![Event::DeadlineExtended(DeadlineExtended {
        previous: current,
        deadline: extend.deadline,
    })])
}

fn withdraw(
    circulation: &Circulation,
    command: &Command,
    withdrawal: &WithdrawCirculation,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, DomainError> {
    require_secretariat(command, "withdraw a circulation")?;
    circulation.require_open(withdrawal.circulation, now)?;
    check_text("reason", &withdrawal.reason, MAX_STATEMENT, true)?;
    let withdrawn = Event::CirculationWithdrawn(CirculationWithdrawn {
        reason: withdrawal.reason.clone(),
    });
    let tally = circulation
        .evaluate(Moment::BeforeDeadline)
        .map(|evaluation| evaluation.tally)
        .unwrap_or_default();
    let closed = Event::CirculationClosed(Box::new(CirculationClosed {
        decision: Decision::Withdrawn,
        trigger: CloseTrigger::Withdrawal {
            stream_version: circulation.version + 1,
        },
        tally,
        answers: circulation.final_answers(),
        closed_at: now,
    }));
    Ok(vec![withdrawn, closed])
}

/// Applies one event of a circulation's stream. Events of other kinds leave it unchanged but for
/// its version.
pub fn evolve(mut circulation: Circulation, event: &Event) -> Circulation {
    circulation.version += 1;
    match event {
        Event::CirculationOpened(opened) => {
            circulation.deadline = Some(opened.deadline);
            circulation.opened = Some(opened.clone());
        }
        Event::VoteCast(vote) => {
            circulation
                .answers
                .votes
                .insert(vote.member.clone(), vote.choice);
            match &vote.statement {
                Some(statement) => {
                    circulation
                        .statements
                        .insert(vote.member.clone(), statement.clone());
                }
                None => {
                    circulation.statements.remove(&vote.member);
                }
            }
        }
        Event::ProcedureObjected(objection) => {
            circulation
                .answers
                .objections
                .insert(objection.member.clone());
            circulation
                .objection_reasons
                .insert(objection.member.clone(), objection.reason.clone());
        }
        Event::DeadlineExtended(extended) => circulation.deadline = Some(extended.deadline),
        Event::CirculationWithdrawn(withdrawn) => {
            circulation.withdrawal = Some(withdrawn.reason.clone());
        }
        Event::CirculationClosed(closed) => circulation.closed = Some(closed.clone()),
        Event::BodyConstituted(_)
        | Event::MemberAdmitted(_)
        | Event::MemberRetired(_)
        | Event::WeightTableSet(_)
        | Event::KeyRegistered(_)
        | Event::KeyRevoked(_) => {}
    }
    circulation
}
