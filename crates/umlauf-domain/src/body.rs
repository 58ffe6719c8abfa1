//! The body aggregate: constitution, members, groups, weight tables and keys.
//!
//! [`Body`] is a fold of the events of one `body/<id>` stream; [`decide`] turns a command into new
//! events or a refusal; [`authorize`] judges whether a signing key may speak for a command's actor,
//! against the key state at the moment of recording.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::command::{
    Action, Command, ConstituteBody, KeySpec, MemberKind, MemberSpec, RevokeKey, WeightTableSpec,
    check_text,
};
use crate::error::DomainError;
use crate::event::{BodyConstituted, Event, KeyRegistered, KeyRevoked, MemberRetired};
use crate::ids::{Actor, BodyId, GroupId, KeyId, MemberId, PublicKey, TableName};
use crate::rule::{Preset, PresetParams};

/// Longest name of a body, member or group, in characters.
const MAX_NAME: usize = 200;
/// Longest key label or revocation reason, in characters.
const MAX_NOTE: usize = 2_000;

/// The state of one body, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// The body's id; `None` until it is constituted.
    pub id: Option<BodyId>,
    /// The genesis key that constituted it.
    pub genesis_key: Option<PublicKey>,
    /// Its name.
    pub name: String,
    /// Its groups and their names.
    pub groups: BTreeMap<GroupId, String>,
    /// Its members, retired ones included.
    pub members: BTreeMap<MemberId, BodyMember>,
    /// Its weight tables by name and year.
    pub weight_tables: BTreeMap<TableName, BTreeMap<u16, WeightTableSpec>>,
    /// Its presets and their parameters.
    pub presets: BTreeMap<Preset, PresetParams>,
    /// Every key ever registered, revoked ones included.
    pub keys: BTreeMap<KeyId, KeyEntry>,
    /// The number of events folded: the stream's version.
    pub version: u64,
}

/// A member of a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyMember {
    /// Its name.
    pub name: String,
    /// Voting or advisory.
    pub kind: MemberKind,
    /// Its groups.
    pub groups: BTreeSet<GroupId>,
    /// Whether it has retired.
    pub retired: bool,
}

/// A registered key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Whom it belongs to.
    pub holder: Actor,
    /// The public key.
    pub public_key: PublicKey,
    /// Its label.
    pub label: Option<String>,
    /// Whether it has been revoked.
    pub revoked: bool,
}

impl KeyId {
    /// The id of a public key: SHA-256 of its 32 raw bytes.
    pub fn of(public_key: &PublicKey) -> Self {
        Self(Sha256::digest(public_key.0).into())
    }
}

impl Body {
    /// Folds a stream's events into a body.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        events.into_iter().fold(Self::default(), evolve)
    }

    /// Whether a member exists and has not retired.
    pub fn is_active_member(&self, member: &MemberId) -> bool {
        self.members.get(member).is_some_and(|m| !m.retired)
    }

    /// The weight table of each name in force in `year`: the newest one set for that year or
    /// before.
    pub fn tables_in_force(&self, year: u16) -> BTreeMap<&TableName, &WeightTableSpec> {
        self.weight_tables
            .iter()
            .filter_map(|(name, by_year)| {
                by_year
                    .range(..=year)
                    .next_back()
                    .map(|(_, table)| (name, table))
            })
            .collect()
    }

    /// The year of `now`, as weight tables count years.
    pub fn year_of(now: DateTime<Utc>) -> u16 {
        u16::try_from(now.year()).unwrap_or(u16::MAX)
    }

    fn require_constituted(&self, command: &Command) -> Result<(), DomainError> {
        match &self.id {
            None => Err(DomainError::UnknownBody(command.body.clone())),
            Some(id) if *id != command.body => Err(DomainError::BodyMismatch {
                named: command.body.clone(),
                actual: id.clone(),
            }),
            Some(_) => Ok(()),
        }
    }
}

/// Whether the key that signed `command` may speak for the command's actor, judged against the
/// body's key state now. Genesis commands must be signed by one of the deployment's genesis keys,
/// which are trust anchors given out of band and never read from the log.
pub fn authorize(
    body: &Body,
    command: &Command,
    signer: &KeyId,
    genesis_keys: &BTreeSet<KeyId>,
) -> Result<(), DomainError> {
    if command.actor == Actor::Genesis {
        if !genesis_keys.contains(signer) {
            return Err(DomainError::NotGenesis(*signer));
        }
        // A constitution names the key that signs it; it must be the signer.
        if let Action::ConstituteBody(constitution) = &command.action
            && KeyId::of(&constitution.genesis_key) != *signer
        {
            return Err(DomainError::NotGenesis(*signer));
        }
        return Ok(());
    }
    let key = body
        .keys
        .get(signer)
        .ok_or(DomainError::UnknownKey(*signer))?;
    if key.revoked {
        return Err(DomainError::RevokedKey(*signer));
    }
    if key.holder != command.actor {
        return Err(DomainError::KeyOfAnotherActor {
            key: *signer,
            holder: key.holder.clone(),
            actor: command.actor.clone(),
        });
    }
    Ok(())
}

fn require_actor(
    command: &Command,
    allowed: &[Actor],
    action: &'static str,
) -> Result<(), DomainError> {
    if allowed.contains(&command.actor) {
        Ok(())
    } else {
        Err(DomainError::Forbidden {
            actor: command.actor.clone(),
            action,
        })
    }
}

/// Decides a command addressed to a body's stream. Body commands do not depend on the time; the
/// argument keeps every aggregate's `decide` alike.
pub fn decide(
    body: &Body,
    command: &Command,
    _now: DateTime<Utc>,
) -> Result<Vec<Event>, DomainError> {
    match &command.action {
        Action::ConstituteBody(constitution) => constitute(body, command, constitution),
        Action::AdmitMember(admit) => {
            body.require_constituted(command)?;
            require_actor(command, &[Actor::Secretariat], "admit members")?;
            check_member(body, &admit.member)?;
            Ok(vec![Event::MemberAdmitted(admit.member.clone())])
        }
        Action::RetireMember(retire) => {
            body.require_constituted(command)?;
            require_actor(command, &[Actor::Secretariat], "retire members")?;
            match body.members.get(&retire.member) {
                None => Err(DomainError::UnknownMember(retire.member.clone())),
                Some(member) if member.retired => {
                    Err(DomainError::MemberRetired(retire.member.clone()))
                }
                Some(_) => Ok(vec![Event::MemberRetired(MemberRetired {
                    member: retire.member.clone(),
                })]),
            }
        }
        Action::SetWeightTable(table) => {
            body.require_constituted(command)?;
            require_actor(command, &[Actor::Secretariat], "set weight tables")?;
            check_weight_table(|member| body.members.contains_key(member), table)?;
            Ok(vec![Event::WeightTableSet(table.clone())])
        }
        Action::RegisterKey(key) => {
            body.require_constituted(command)?;
            let registrar = match key.holder {
                Actor::Secretariat => Actor::Genesis,
                _ => Actor::Secretariat,
            };
            require_actor(command, &[registrar], "register this key")?;
            let registered = register_key(
                key,
                |member| body.is_active_member(member),
                |id| body.keys.contains_key(id),
            )?;
            Ok(vec![Event::KeyRegistered(registered)])
        }
        Action::RevokeKey(revoke) => {
            body.require_constituted(command)?;
            revoke_key(body, command, revoke)
        }
        Action::OpenCirculation(_)
        | Action::CastVote(_)
        | Action::ObjectToProcedure(_)
        | Action::ExtendDeadline(_)
        | Action::WithdrawCirculation(_) => Err(DomainError::InvalidCommand(format!(
            "{} addresses a circulation, not a body",
            command.type_name()
        ))),
    }
}

fn constitute(
    body: &Body,
    command: &Command,
    constitution: &ConstituteBody,
) -> Result<Vec<Event>, DomainError> {
    if body.id.is_some() {
        return Err(DomainError::BodyExists(command.body.clone()));
    }
    require_actor(command, &[Actor::Genesis], "constitute a body")?;
    check_text("name", &constitution.name, MAX_NAME, true)?;

    // Build the body as it will be, checking each part against what came before it.
    let mut draft = Body {
        id: Some(command.body.clone()),
        ..Body::default()
    };
    for group in &constitution.groups {
        check_text("group name", &group.name, MAX_NAME, true)?;
        if draft
            .groups
            .insert(group.id.clone(), group.name.clone())
            .is_some()
        {
            return Err(DomainError::InvalidCommand(format!(
                "group {} is defined twice",
                group.id
            )));
        }
    }
    if constitution.genesis_key.is_small_order() {
        return Err(DomainError::WeakKey);
    }
    let mut events = vec![Event::BodyConstituted(BodyConstituted {
        body: command.body.clone(),
        genesis_key: constitution.genesis_key,
        name: constitution.name.clone(),
        groups: constitution.groups.clone(),
        presets: constitution.presets.clone(),
    })];
    for member in &constitution.members {
        check_member(&draft, member)?;
        let event = Event::MemberAdmitted(member.clone());
        draft = evolve(draft, &event);
        events.push(event);
    }
    for table in &constitution.weight_tables {
        check_weight_table(|member| draft.members.contains_key(member), table)?;
        let event = Event::WeightTableSet(table.clone());
        draft = evolve(draft, &event);
        events.push(event);
    }
    for key in &constitution.keys {
        let registered = register_key(
            key,
            |member| draft.is_active_member(member),
            |id| draft.keys.contains_key(id),
        )?;
        let event = Event::KeyRegistered(registered);
        draft = evolve(draft, &event);
        events.push(event);
    }
    Ok(events)
}

fn check_member(body: &Body, member: &MemberSpec) -> Result<(), DomainError> {
    check_text("member name", &member.name, MAX_NAME, true)?;
    if body.members.contains_key(&member.id) {
        return Err(DomainError::MemberExists(member.id.clone()));
    }
    if let Some(group) = member
        .groups
        .iter()
        .find(|group| !body.groups.contains_key(*group))
    {
        return Err(DomainError::UnknownGroup(group.clone()));
    }
    Ok(())
}

fn check_weight_table(
    is_member: impl Fn(&MemberId) -> bool,
    table: &WeightTableSpec,
) -> Result<(), DomainError> {
    let invalid = |detail: String| DomainError::InvalidWeightTable {
        table: table.table.clone(),
        detail,
    };
    if let Some(stranger) = table.weights.keys().find(|member| !is_member(member)) {
        return Err(invalid(format!("{stranger} is not a member of this body")));
    }
    let total = table
        .weights
        .values()
        .try_fold(0u64, |sum, weight| sum.checked_add(weight.0))
        .ok_or_else(|| invalid("the weights overflow when added up".into()))?;
    if total == 0 {
        return Err(invalid("the weights add up to zero".into()));
    }
    if !(1900..=9999).contains(&table.year) {
        return Err(invalid(format!("year {} is out of range", table.year)));
    }
    if let Some(unit) = &table.unit {
        check_text("unit", unit, MAX_NAME, false)?;
    }
    Ok(())
}

fn register_key(
    key: &KeySpec,
    is_active_member: impl Fn(&MemberId) -> bool,
    is_registered: impl Fn(&KeyId) -> bool,
) -> Result<KeyRegistered, DomainError> {
    match &key.holder {
        Actor::Genesis => {
            return Err(DomainError::InvalidCommand(
                "genesis keys are trust anchors of the deployment and are not registered in a body"
                    .into(),
            ));
        }
        Actor::Member(member) if !is_active_member(member) => {
            return Err(DomainError::UnknownMember(member.clone()));
        }
        Actor::Member(_) | Actor::Secretariat => {}
    }
    if key.public_key.is_small_order() {
        return Err(DomainError::WeakKey);
    }
    if let Some(label) = &key.label {
        check_text("label", label, MAX_NOTE, false)?;
    }
    let key_id = KeyId::of(&key.public_key);
    if is_registered(&key_id) {
        return Err(DomainError::KeyExists(key_id));
    }
    Ok(KeyRegistered {
        key_id,
        holder: key.holder.clone(),
        public_key: key.public_key,
        label: key.label.clone(),
    })
}

fn revoke_key(
    body: &Body,
    command: &Command,
    revoke: &RevokeKey,
) -> Result<Vec<Event>, DomainError> {
    let key = body
        .keys
        .get(&revoke.key_id)
        .ok_or(DomainError::UnknownKey(revoke.key_id))?;
    // The secretariat's keys are revoked by a genesis key; a member's by the secretariat or by
    // the member itself.
    let allowed = match &key.holder {
        Actor::Secretariat => vec![Actor::Genesis],
        holder => vec![Actor::Secretariat, holder.clone()],
    };
    require_actor(command, &allowed, "revoke this key")?;
    if key.revoked {
        return Err(DomainError::KeyAlreadyRevoked(revoke.key_id));
    }
    if let Some(reason) = &revoke.reason {
        check_text("reason", reason, MAX_NOTE, false)?;
    }
    Ok(vec![Event::KeyRevoked(KeyRevoked {
        key_id: revoke.key_id,
        holder: key.holder.clone(),
        revoked_by: command.actor.clone(),
        reason: revoke.reason.clone(),
    })])
}

/// Applies one event of a body's stream. Events of other kinds leave the body unchanged but for
/// its version.
pub fn evolve(mut body: Body, event: &Event) -> Body {
    body.version += 1;
    match event {
        Event::BodyConstituted(constituted) => {
            body.id = Some(constituted.body.clone());
            body.genesis_key = Some(constituted.genesis_key);
            body.name.clone_from(&constituted.name);
            body.groups = constituted
                .groups
                .iter()
                .map(|group| (group.id.clone(), group.name.clone()))
                .collect();
            body.presets.clone_from(&constituted.presets);
        }
        Event::MemberAdmitted(member) => {
            body.members.insert(
                member.id.clone(),
                BodyMember {
                    name: member.name.clone(),
                    kind: member.kind,
                    groups: member.groups.clone(),
                    retired: false,
                },
            );
        }
        Event::MemberRetired(retired) => {
            if let Some(member) = body.members.get_mut(&retired.member) {
                member.retired = true;
            }
        }
        Event::WeightTableSet(table) => {
            body.weight_tables
                .entry(table.table.clone())
                .or_default()
                .insert(table.year, table.clone());
        }
        Event::KeyRegistered(key) => {
            body.keys.insert(
                key.key_id,
                KeyEntry {
                    holder: key.holder.clone(),
                    public_key: key.public_key,
                    label: key.label.clone(),
                    revoked: false,
                },
            );
        }
        Event::KeyRevoked(revoked) => {
            if let Some(key) = body.keys.get_mut(&revoked.key_id) {
                key.revoked = true;
            }
        }
        Event::CirculationOpened(_)
        | Event::VoteCast(_)
        | Event::ProcedureObjected(_)
        | Event::DeadlineExtended(_)
        | Event::CirculationWithdrawn(_)
        | Event::CirculationClosed(_) => {}
    }
    body
}
