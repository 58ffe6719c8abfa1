//! Read models: what the service answers queries with, as pure functions of folded state.
//!
//! The store writes these in the same transaction as the append, and the auditor recomputes them
//! from the log; both call the functions here, so they cannot disagree about what a row should
//! contain.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::body::Body;
use crate::circulation::Circulation;
use crate::event::{CloseTrigger, Decision};
use crate::ids::{
    Actor, BodyId, Choice, CirculationId, KeyId, MemberId, ProposalDigest, PublicKey,
};
use crate::rule::{Moment, Preset, Tally};

/// Open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CirculationState {
    /// Accepting answers.
    Open,
    /// Decided.
    Closed,
}

/// A member's current vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteView {
    /// Its choice.
    pub choice: Choice,
    /// Its statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
}

/// The status of one circulation: state, tally, who has answered and who has not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CirculationStatus {
    /// The circulation.
    pub circulation: CirculationId,
    /// Its body.
    pub body: BodyId,
    /// Its title.
    pub title: String,
    /// The digest of its proposal.
    pub proposal_sha256: ProposalDigest,
    /// The preset its rule came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// Open or closed.
    pub state: CirculationState,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// Its current deadline.
    pub deadline: DateTime<Utc>,
    /// The decision, once closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// What closed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<CloseTrigger>,
    /// The tally: the closing tally once closed, the running one before.
    pub tally: Tally,
    /// Current votes.
    pub votes: BTreeMap<MemberId, VoteView>,
    /// Objections and their reasons.
    pub objections: BTreeMap<MemberId, String>,
    /// Electors that have not answered.
    pub awaiting: BTreeSet<MemberId>,
    /// The stream version this status reflects.
    pub version: u64,
}

impl CirculationStatus {
    /// The status of a circulation; `None` if it has not been opened.
    pub fn of(circulation: &Circulation) -> Option<Self> {
        let opened = circulation.opened.as_ref()?;
        let (state, decision, trigger, tally) = match &circulation.closed {
            Some(closed) => (
                CirculationState::Closed,
                Some(closed.decision),
                Some(closed.trigger),
                closed.tally.clone(),
            ),
            None => (
                CirculationState::Open,
                None,
                None,
                circulation
                    .evaluate(Moment::BeforeDeadline)
                    .map(|evaluation| evaluation.tally)
                    .unwrap_or_default(),
            ),
        };
        let votes = circulation
            .answers
            .votes
            .iter()
            .map(|(member, choice)| {
                let view = VoteView {
                    choice: *choice,
                    statement: circulation.statements.get(member).cloned(),
                };
                (member.clone(), view)
            })
            .collect();
        let awaiting = opened
            .electorate
            .members
            .keys()
            .filter(|member| {
                !circulation.answers.votes.contains_key(*member)
                    && !circulation.answers.objections.contains(*member)
            })
            .cloned()
            .collect();
        Some(Self {
            circulation: opened.circulation,
            body: opened.body.clone(),
            title: opened.title.clone(),
            proposal_sha256: opened.proposal.sha256,
            preset: opened.preset,
            state,
            opened_at: opened.opened_at,
            deadline: circulation.deadline.unwrap_or(opened.deadline),
            decision,
            trigger,
            tally,
            votes,
            objections: circulation.objection_reasons.clone(),
            awaiting,
            version: circulation.version,
        })
    }

    /// The members whose inbox holds this circulation: electors that have not answered an open
    /// circulation.
    pub fn inbox_members(&self) -> impl Iterator<Item = &MemberId> {
        let open = self.state == CirculationState::Open;
        self.awaiting.iter().filter(move |_| open)
    }
}

/// Active or revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// May sign.
    Active,
    /// May no longer sign.
    Revoked,
}

/// One key of a body, as key-state queries show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyStatus {
    /// The key's id.
    pub key_id: KeyId,
    /// The body it is registered in.
    pub body: BodyId,
    /// Its holder.
    pub holder: Actor,
    /// The public key.
    pub public_key: PublicKey,
    /// Its label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Active or revoked.
    pub state: KeyState,
}

/// Every key of a body, in key-id order; empty before the body is constituted.
pub fn key_statuses(body: &Body) -> Vec<KeyStatus> {
    let Some(id) = &body.id else {
        return Vec::new();
    };
    body.keys
        .iter()
        .map(|(key_id, key)| KeyStatus {
            key_id: *key_id,
            body: id.clone(),
            holder: key.holder.clone(),
            public_key: key.public_key,
            label: key.label.clone(),
            state: if key.revoked {
                KeyState::Revoked
            } else {
                KeyState::Active
            },
        })
        .collect()
}
