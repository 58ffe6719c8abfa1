//! Given / when / then tests of `decide` and `evolve` for both aggregates: every command's success
//! and every refusal, with no database and no clock.

#![allow(clippy::unwrap_used, clippy::needless_pass_by_value)]

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use umlauf_domain::body::{self, Body};
use umlauf_domain::circulation::{self, Circulation};
use umlauf_domain::event::{CloseTrigger, Decision, FinalAnswer};
use umlauf_domain::ids::{CirculationId, KeyId, PublicKey};
use umlauf_domain::read_model::{CirculationState, CirculationStatus, KeyState, key_statuses};
use umlauf_domain::rule::FailureReason;
use umlauf_domain::{Command, DomainError, Event, State, StreamId, authorize, decide};

const BODY: &str = "it-planungsrat";
const CIRCULATION: &str = "5f0c3a86-1b7e-4d59-8a3e-0c7b1d2e4f60";
const PROPOSAL: &str = "Der IT-Planungsrat beschließt den Standard XÖV 3.0.";
const LAENDER: [&str; 16] = [
    "DE-BB", "DE-BE", "DE-BW", "DE-BY", "DE-HB", "DE-HE", "DE-HH", "DE-MV", "DE-NI", "DE-NW",
    "DE-RP", "DE-SH", "DE-SL", "DE-SN", "DE-ST", "DE-TH",
];
/// Königstein 2016 in units of 0.00001 %, in the order of `LAENDER`.
const KOENIGSTEIN: [u64; 16] = [
    303_655, 508_324, 1_296_662, 1_553_327, 95_331, 739_885, 255_752, 201_240, 933_138, 2_114_424,
    483_089, 339_074, 121_111, 505_577, 279_941, 269_470,
];

fn now() -> DateTime<Utc> {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

fn deadline() -> DateTime<Utc> {
    now() + Duration::days(14)
}

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A public key that is not weak: 32 bytes derived from a label.
fn public_key(label: &str) -> String {
    let bytes: [u8; 32] = Sha256::digest(label.as_bytes()).into();
    PublicKey(bytes).to_string()
}

fn key_id(label: &str) -> KeyId {
    KeyId::of(&PublicKey::parse(&public_key(label)).unwrap())
}

/// A command from its type, actor and own fields.
fn command(kind: &str, actor: &str, fields: Value) -> Command {
    let mut value = json!({
        "type": kind,
        "command_id": "0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10",
        "body": BODY,
        "actor": actor,
        "issued_at": "2026-03-02T09:00:00Z",
    });
    for (name, field) in fields.as_object().unwrap() {
        value[name] = field.clone();
    }
    Command::from_value(value).unwrap()
}

fn constitution() -> Command {
    let mut members =
        vec![json!({"id": "DE", "name": "Bund", "kind": "voting", "groups": ["bund"]})];
    members.extend(
        LAENDER
            .iter()
            .map(|land| json!({"id": land, "name": land, "kind": "voting", "groups": ["laender"]})),
    );
    members.push(json!({"id": "FITKO", "name": "FITKO-Präsident", "kind": "advisory"}));
    let weights: serde_json::Map<String, Value> = LAENDER
        .iter()
        .zip(KOENIGSTEIN)
        .map(|(land, weight)| ((*land).to_owned(), json!(weight)))
        .collect();
    let mut keys = vec![json!({"holder": "secretariat", "public_key": public_key("secretariat")})];
    keys.push(json!({"holder": "DE", "public_key": public_key("DE"), "label": "CIO"}));
    keys.extend(
        LAENDER
            .iter()
            .map(|land| json!({"holder": land, "public_key": public_key(land)})),
    );
    command(
        "ConstituteBody",
        "genesis",
        json!({
            "genesis_key": public_key("genesis"),
            "name": "IT-Planungsrat",
            "groups": [{"id": "bund", "name": "Bund"}, {"id": "laender", "name": "Länder"}],
            "members": members,
            "weight_tables": [{"table": "koenigstein", "year": 2016, "unit": "0.00001 %", "weights": weights}],
            "presets": {"it-planungsrat-resolution": {}},
            "keys": keys,
        }),
    )
}

fn constituted() -> Body {
    let events = body::decide(&Body::default(), &constitution(), now()).unwrap();
    Body::fold(&events)
}

fn open_with(preset: &str) -> Command {
    command(
        "OpenCirculation",
        "secretariat",
        json!({
            "circulation": CIRCULATION,
            "title": "Beschluss 2026/01: XÖV 3.0",
            "proposal": {"text": PROPOSAL, "sha256": digest(PROPOSAL)},
            "rule": {"kind": "preset", "preset": preset},
            "deadline": deadline(),
        }),
    )
}

fn vote(member: &str, choice: &str) -> Command {
    command(
        "CastVote",
        member,
        json!({"circulation": CIRCULATION, "choice": choice, "proposal_sha256": digest(PROPOSAL)}),
    )
}

fn object(member: &str) -> Command {
    command(
        "ObjectToProcedure",
        member,
        json!({"circulation": CIRCULATION, "reason": "Needs a meeting."}),
    )
}

/// A scenario: the body and circulation as folded so far, and the time of the next command.
#[derive(Clone)]
struct Given {
    history: Vec<(StreamId, Event)>,
    body: Body,
    circulation: Circulation,
    now: DateTime<Utc>,
}

fn given_body() -> Given {
    Given {
        history: Vec::new(),
        body: constituted(),
        circulation: Circulation::default(),
        now: now(),
    }
}

fn given_open(preset: &str) -> Given {
    given_body().accepting(open_with(preset))
}

impl Given {
    fn at(&self, now: DateTime<Utc>) -> Self {
        let mut given = self.clone();
        given.now = now;
        given
    }

    fn when(&self, command: &Command) -> Result<Vec<Event>, DomainError> {
        let state = State {
            body: &self.body,
            circulation: Some(&self.circulation),
        };
        decide(state, command, self.now)
    }

    /// Decides and folds a command that must be accepted.
    fn accepting(mut self, command: Command) -> Self {
        let events = self
            .when(&command)
            .unwrap_or_else(|error| panic!("{} refused: {error}", command.type_name()));
        for event in &events {
            match command.stream() {
                StreamId::Body(_) => self.body = body::evolve(self.body, event),
                StreamId::Circulation(_) => {
                    self.circulation = circulation::evolve(self.circulation, event);
                }
            }
            self.history.push((command.stream(), event.clone()));
        }
        self
    }

    /// The events of one kind of stream accepted so far, in order.
    fn history_of(&self, circulations: bool) -> Vec<Event> {
        self.history
            .iter()
            .filter(|(stream, _)| matches!(stream, StreamId::Circulation(_)) == circulations)
            .map(|(_, event)| event.clone())
            .collect()
    }

    fn votes(self, votes: &[(&str, &str)]) -> Self {
        votes.iter().fold(self, |given, (member, choice)| {
            given.accepting(vote(member, choice))
        })
    }

    fn then_types(&self, command: &Command, expected: &[&str]) {
        let events = self.when(command).unwrap();
        let types: Vec<&str> = events.iter().map(Event::type_name).collect();
        assert_eq!(types, expected);
    }

    fn then_err(&self, command: &Command, code: &str) {
        match self.when(command) {
            Ok(events) => panic!("expected {code}, got {events:?}"),
            Err(error) => assert_eq!(error.code(), code, "{error}"),
        }
    }

    fn decision(&self) -> Option<Decision> {
        self.circulation
            .closed
            .as_ref()
            .map(|closed| closed.decision)
    }
}

// ---- bodies ---------------------------------------------------------------------------------

#[test]
fn constituting_a_body_admits_members_sets_tables_and_registers_keys() {
    let events = body::decide(&Body::default(), &constitution(), now()).unwrap();
    let count = |kind: &str| {
        events
            .iter()
            .filter(|event| event.type_name() == kind)
            .count()
    };
    assert_eq!(events[0].type_name(), "BodyConstituted");
    assert_eq!(count("MemberAdmitted"), 18);
    assert_eq!(count("WeightTableSet"), 1);
    assert_eq!(count("KeyRegistered"), 18);
    let body = Body::fold(&events);
    assert_eq!(body.version, 38);
    assert_eq!(key_statuses(&body).len(), 18);
}

#[test]
fn constitution_is_refused_twice_and_to_anyone_but_genesis() {
    given_body().then_err(&constitution(), "body_exists");
    let mut by_secretariat = constitution();
    by_secretariat.actor = umlauf_domain::ids::Actor::Secretariat;
    let empty = Given {
        history: Vec::new(),
        body: Body::default(),
        circulation: Circulation::default(),
        now: now(),
    };
    empty.then_err(&by_secretariat, "forbidden");
    empty.then_err(&vote("DE", "yes"), "unknown_circulation");
    empty.then_err(&open_with("unanimity"), "unknown_body");
}

#[test]
fn a_constitution_with_a_weak_key_or_a_stranger_in_a_table_is_refused() {
    let mut value = constitution();
    let umlauf_domain::Action::ConstituteBody(body) = &mut value.action else {
        unreachable!()
    };
    let mut weak = body.clone();
    // The identity point (y = 1) has order one.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    weak.keys[1].public_key = PublicKey(identity);
    let mut stranger = body.clone();
    let unknown = umlauf_domain::ids::MemberId::parse("FR").unwrap();
    stranger.weight_tables[0]
        .weights
        .insert(unknown, umlauf_domain::ids::Weight(5));
    let empty = Body::default();
    for (changed, code) in [(weak, "weak_key"), (stranger, "invalid_weight_table")] {
        let mut command = value.clone();
        command.action = umlauf_domain::Action::ConstituteBody(changed);
        let error = body::decide(&empty, &command, now()).unwrap_err();
        assert_eq!(error.code(), code);
    }
}

#[test]
fn members_are_admitted_and_retired_by_the_secretariat_only() {
    let given = given_body();
    let admit = |actor| {
        command(
            "AdmitMember",
            actor,
            json!({"member": {"id": "DE-XX", "name": "Neuland", "kind": "voting", "groups": ["laender"]}}),
        )
    };
    given.then_types(&admit("secretariat"), &["MemberAdmitted"]);
    given.then_err(&admit("DE-BY"), "forbidden");
    let duplicate = command(
        "AdmitMember",
        "secretariat",
        json!({"member": {"id": "DE-BY", "name": "Bayern", "kind": "voting"}}),
    );
    given.then_err(&duplicate, "member_exists");
    let bad_group = command(
        "AdmitMember",
        "secretariat",
        json!({"member": {"id": "DE-XX", "name": "Neuland", "kind": "voting", "groups": ["kommunen"]}}),
    );
    given.then_err(&bad_group, "unknown_group");

    let retire = command("RetireMember", "secretariat", json!({"member": "DE-SL"}));
    given.then_types(&retire, &["MemberRetired"]);
    let retired = given_body().accepting(retire.clone());
    retired.then_err(&retire, "member_retired");
    retired.then_err(
        &command("RetireMember", "secretariat", json!({"member": "FR"})),
        "unknown_member",
    );
}

#[test]
fn weight_tables_are_set_by_year_and_the_newest_in_force_applies() {
    let table = |year: u16, weight: u64| {
        command(
            "SetWeightTable",
            "secretariat",
            json!({"table": "koenigstein", "year": year, "weights": {"DE-BY": weight, "DE-NW": 1}}),
        )
    };
    let given = given_body().accepting(table(2025, 7));
    let in_force = given.body.tables_in_force(2026);
    let koenigstein = in_force.values().next().unwrap();
    assert_eq!(koenigstein.year, 2025);
    assert_eq!(
        given
            .body
            .tables_in_force(2016)
            .values()
            .next()
            .unwrap()
            .year,
        2016
    );
    given.then_err(
        &table(2025, 0).clone_with_weights(json!({"DE-BY": 0})),
        "invalid_weight_table",
    );
    given.then_err(
        &command(
            "SetWeightTable",
            "DE-BY",
            json!({"table": "koenigstein", "year": 2027, "weights": {"DE-BY": 1}}),
        ),
        "forbidden",
    );
}

trait WithWeights {
    fn clone_with_weights(&self, weights: Value) -> Command;
}

impl WithWeights for Command {
    fn clone_with_weights(&self, weights: Value) -> Command {
        let mut value = self.to_value();
        value["weights"] = weights;
        Command::from_value(value).unwrap()
    }
}

#[test]
fn keys_are_registered_by_the_secretariat_and_revoked_by_it_or_their_member() {
    let given = given_body();
    let register = |actor: &str, holder: &str, label: &str| {
        command(
            "RegisterKey",
            actor,
            json!({"holder": holder, "public_key": public_key(label), "label": "deputy"}),
        )
    };
    given.then_types(
        &register("secretariat", "DE-BY", "DE-BY deputy"),
        &["KeyRegistered"],
    );
    given.then_err(&register("DE-BY", "DE-BY", "DE-BY deputy"), "forbidden");
    given.then_err(&register("secretariat", "DE-BY", "DE-BY"), "key_exists");
    given.then_err(&register("secretariat", "FR", "FR"), "unknown_member");
    // Secretariat keys are the genesis key's to register.
    given.then_err(
        &register("secretariat", "secretariat", "second secretariat"),
        "forbidden",
    );
    given.then_types(
        &register("genesis", "secretariat", "second secretariat"),
        &["KeyRegistered"],
    );

    let revoke = |actor: &str, label: &str| {
        command(
            "RevokeKey",
            actor,
            json!({"key_id": key_id(label).to_string(), "reason": "lost"}),
        )
    };
    given.then_types(&revoke("DE-BY", "DE-BY"), &["KeyRevoked"]);
    given.then_types(&revoke("secretariat", "DE-BY"), &["KeyRevoked"]);
    given.then_err(&revoke("DE-NW", "DE-BY"), "forbidden");
    given.then_err(&revoke("secretariat", "secretariat"), "forbidden");
    given.then_types(&revoke("genesis", "secretariat"), &["KeyRevoked"]);
    given.then_err(&revoke("secretariat", "nobody"), "unknown_key");
    let revoked = given_body().accepting(revoke("DE-BY", "DE-BY"));
    revoked.then_err(&revoke("DE-BY", "DE-BY"), "key_already_revoked");
    let statuses = key_statuses(&revoked.body);
    let by = statuses
        .iter()
        .find(|status| status.key_id == key_id("DE-BY"))
        .unwrap();
    assert_eq!(by.state, KeyState::Revoked);
}

#[test]
fn a_signature_speaks_only_for_the_holder_of_an_active_key() {
    let given = given_body();
    let genesis: BTreeSet<KeyId> = [key_id("genesis")].into();
    let check = |command: &Command, signer: &str| {
        authorize(&given.body, command, &key_id(signer), &genesis)
    };
    assert_eq!(check(&vote("DE-BY", "yes"), "DE-BY"), Ok(()));
    assert_eq!(
        check(&vote("DE-BY", "yes"), "DE-NW").unwrap_err().code(),
        "key_of_another_actor"
    );
    assert_eq!(
        check(&vote("DE-BY", "yes"), "stranger").unwrap_err().code(),
        "unknown_key"
    );
    assert_eq!(check(&constitution(), "genesis"), Ok(()));
    assert_eq!(
        check(&constitution(), "secretariat").unwrap_err().code(),
        "not_genesis"
    );
    // A second genesis key of the deployment may not sign a constitution naming the first.
    let two: BTreeSet<KeyId> = [key_id("genesis"), key_id("other genesis")].into();
    let error = authorize(&given.body, &constitution(), &key_id("other genesis"), &two);
    assert_eq!(error.unwrap_err().code(), "not_genesis");
    let revoked = given_body().accepting(command(
        "RevokeKey",
        "DE-BY",
        json!({"key_id": key_id("DE-BY").to_string()}),
    ));
    let error = authorize(
        &revoked.body,
        &vote("DE-BY", "yes"),
        &key_id("DE-BY"),
        &genesis,
    )
    .unwrap_err();
    assert_eq!(error.code(), "revoked_key");
}

// ---- opening, extending, withdrawing --------------------------------------------------------

#[test]
fn the_secretariat_opens_a_circulation_with_the_electorate_and_weights_frozen() {
    let given = given_body();
    given.then_types(
        &open_with("it-planungsrat-resolution"),
        &["CirculationOpened"],
    );
    let open = given_open("it-planungsrat-resolution");
    let opened = open.circulation.opened.as_ref().unwrap();
    // 17 voting members; the advisory FITKO member has no vote.
    assert_eq!(opened.electorate.members.len(), 17);
    let koenigstein = umlauf_domain::ids::TableName::parse("koenigstein").unwrap();
    assert_eq!(opened.weight_table_years.get(&koenigstein), Some(&2016));
    let status = CirculationStatus::of(&open.circulation).unwrap();
    assert_eq!(status.state, CirculationState::Open);
    assert_eq!(status.awaiting.len(), 17);
}

#[test]
fn opening_is_refused_for_bad_input() {
    let given = given_body();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut value = open_with("unanimity").to_value();
        change(&mut value);
        Command::from_value(value).unwrap()
    };
    given.then_err(&with(&|v| v["actor"] = json!("DE-BY")), "forbidden");
    given.then_err(
        &with(&|v| v["deadline"] = json!(now() - Duration::hours(1))),
        "deadline_not_later",
    );
    given.then_err(
        &with(&|v| v["proposal"]["sha256"] = json!(digest("another text"))),
        "proposal_digest_mismatch",
    );
    given.then_err(&with(&|v| v["title"] = json!("  ")), "invalid_text");
    given.then_err(
        &with(&|v| v["proposal"] = json!({"sha256": digest(PROPOSAL)})),
        "invalid_text",
    );
    given.then_err(&with(&|v| v["body"] = json!("bundesrat")), "unknown_body");
    given.then_err(
        &with(&|v| v["rule"] = json!({"kind": "preset", "preset": "bundesrat"})),
        "invalid_rule",
    );
    given_open("unanimity").then_err(&open_with("unanimity"), "circulation_exists");
}

#[test]
fn the_deadline_only_moves_later_and_only_by_the_secretariat() {
    let given = given_open("unanimity");
    let extend = |actor: &str, deadline: DateTime<Utc>| {
        command(
            "ExtendDeadline",
            actor,
            json!({"circulation": CIRCULATION, "deadline": deadline}),
        )
    };
    given.then_types(
        &extend("secretariat", deadline() + Duration::days(1)),
        &["DeadlineExtended"],
    );
    given.then_err(&extend("secretariat", deadline()), "deadline_not_later");
    given.then_err(&extend("DE", deadline() + Duration::days(1)), "forbidden");
    given.at(deadline() + Duration::seconds(1)).then_err(
        &extend("secretariat", deadline() + Duration::days(1)),
        "deadline_passed",
    );
    let extended =
        given_open("unanimity").accepting(extend("secretariat", deadline() + Duration::days(7)));
    // A vote after the old deadline but before the new one counts.
    extended
        .at(deadline() + Duration::days(1))
        .then_types(&vote("DE", "yes"), &["VoteCast"]);
}

#[test]
fn withdrawal_closes_the_circulation_as_withdrawn() {
    let withdraw = |actor: &str| {
        command(
            "WithdrawCirculation",
            actor,
            json!({"circulation": CIRCULATION, "reason": "superseded"}),
        )
    };
    let given = given_open("it-planungsrat-resolution").votes(&[("DE", "yes")]);
    given.then_types(
        &withdraw("secretariat"),
        &["CirculationWithdrawn", "CirculationClosed"],
    );
    given.then_err(&withdraw("DE"), "forbidden");
    let withdrawn = given.accepting(withdraw("secretariat"));
    assert_eq!(withdrawn.decision(), Some(Decision::Withdrawn));
    let closed = withdrawn.circulation.closed.as_ref().unwrap();
    assert_eq!(
        closed.trigger,
        CloseTrigger::Withdrawal { stream_version: 3 }
    );
    withdrawn.then_err(&vote("DE-BY", "yes"), "circulation_closed");
    withdrawn.then_err(&withdraw("secretariat"), "circulation_closed");
}

// ---- voting ---------------------------------------------------------------------------------

fn adopting_yes_votes() -> Vec<(&'static str, &'static str)> {
    // The Bund and the eleven largest Länder: 90.57 % of the Königstein key.
    [
        "DE", "DE-NW", "DE-BY", "DE-BW", "DE-NI", "DE-HE", "DE-BE", "DE-SN", "DE-RP", "DE-SH",
        "DE-BB", "DE-ST",
    ]
    .into_iter()
    .map(|member| (member, "yes"))
    .collect()
}

#[test]
fn it_planungsrat_adopts_as_the_last_answer_arrives_and_not_earlier() {
    let mut given = given_open("it-planungsrat-resolution").votes(&adopting_yes_votes());
    // Certain already, but this preset records every answer before it closes.
    assert_eq!(given.decision(), None);
    for land in ["DE-HH", "DE-TH", "DE-MV", "DE-SL"] {
        given = given.accepting(vote(land, "abstain"));
    }
    assert_eq!(given.decision(), None);
    given.then_types(&vote("DE-HB", "no"), &["VoteCast", "CirculationClosed"]);
    let closed = given.accepting(vote("DE-HB", "no"));
    assert_eq!(closed.decision(), Some(Decision::Adopted));
    let record = closed.circulation.closed.as_ref().unwrap();
    assert_eq!(record.trigger, CloseTrigger::Answer { stream_version: 18 });
    assert_eq!(record.answers.len(), 17);
    assert_eq!(
        record
            .answers
            .values()
            .filter(|a| **a == FinalAnswer::Yes)
            .count(),
        12
    );
}

#[test]
fn it_planungsrat_with_the_rest_silent_adopts_at_the_deadline() {
    let given = given_open("it-planungsrat-resolution").votes(&adopting_yes_votes());
    let id = CirculationId(CIRCULATION.parse().unwrap());
    let error = circulation::close_at_deadline(&given.circulation, id, deadline()).unwrap_err();
    assert_eq!(error.code(), "deadline_not_reached");
    let late = deadline() + Duration::seconds(1);
    let events = circulation::close_at_deadline(&given.circulation, id, late).unwrap();
    let closed = circulation::evolve(given.circulation, &events[0]);
    let record = closed.closed.as_ref().unwrap();
    assert_eq!(record.decision, Decision::Adopted);
    assert_eq!(
        record.trigger,
        CloseTrigger::Deadline {
            deadline: deadline()
        }
    );
    assert_eq!(
        record
            .answers
            .values()
            .filter(|a| **a == FinalAnswer::Silent)
            .count(),
        5
    );
    // A second scheduler coming late changes nothing.
    let error = circulation::close_at_deadline(&closed, id, late).unwrap_err();
    assert_eq!(error.code(), "circulation_closed");
}

#[test]
fn it_planungsrat_rejects_when_the_bund_votes_no() {
    let mut votes = adopting_yes_votes();
    votes[0] = ("DE", "no");
    let given = given_open("it-planungsrat-resolution")
        .votes(&votes)
        .votes(&[
            ("DE-HH", "yes"),
            ("DE-TH", "yes"),
            ("DE-MV", "yes"),
            ("DE-SL", "yes"),
            ("DE-HB", "yes"),
        ]);
    assert_eq!(given.decision(), Some(Decision::Rejected));
}

#[test]
fn one_objection_ends_the_it_planungsrat_procedure_at_once() {
    let given = given_open("it-planungsrat-resolution").votes(&[("DE", "yes")]);
    given.then_types(
        &object("DE-BY"),
        &["ProcedureObjected", "CirculationClosed"],
    );
    let objected = given.accepting(object("DE-BY"));
    assert_eq!(
        objected.decision(),
        Some(Decision::Failed(FailureReason::Objection))
    );
}

#[test]
fn objections_are_refused_where_the_rule_has_none_after_voting_and_twice() {
    given_open("unanimity").then_err(&object("DE-BY"), "objection_not_available");
    let given = given_open("it-planungsrat-resolution").votes(&[("DE", "yes")]);
    given.then_err(&object("DE"), "already_voted");
    given.then_err(&object("secretariat"), "forbidden");
    given.then_err(&object("FITKO"), "not_in_electorate");
    let silence = given_open("eu-silence");
    let objected = silence.accepting(object("DE-BY"));
    assert_eq!(
        objected.decision(),
        Some(Decision::Failed(FailureReason::Objection))
    );
}

#[test]
fn unanimity_rejects_at_once_on_one_no() {
    let given = given_open("unanimity").votes(&[("DE", "yes")]);
    given.then_types(&vote("DE-BY", "no"), &["VoteCast", "CirculationClosed"]);
    assert_eq!(
        given.accepting(vote("DE-BY", "no")).decision(),
        Some(Decision::Rejected)
    );
}

#[test]
fn votes_are_refused_for_bad_input() {
    let given = given_open("unanimity").votes(&[("DE", "yes")]);
    given.then_err(&vote("FITKO", "yes"), "not_in_electorate");
    given.then_err(&vote("secretariat", "yes"), "forbidden");
    given.then_err(&vote("DE", "no"), "vote_change_not_allowed");
    let mut wrong_text = vote("DE-BY", "yes").to_value();
    wrong_text["proposal_sha256"] = json!(digest("another text"));
    given.then_err(
        &Command::from_value(wrong_text).unwrap(),
        "proposal_mismatch",
    );
    let mut other_circulation = vote("DE-BY", "yes").to_value();
    other_circulation["circulation"] = json!("00000000-0000-4000-8000-000000000000");
    given_body().then_err(
        &Command::from_value(other_circulation).unwrap(),
        "unknown_circulation",
    );
    let mut other_body = vote("DE-BY", "yes").to_value();
    other_body["body"] = json!("bundesrat");
    given.then_err(&Command::from_value(other_body).unwrap(), "body_mismatch");
}

#[test]
fn a_vote_at_the_deadline_counts_and_one_after_it_is_refused_before_any_close() {
    let given = given_open("it-planungsrat-resolution");
    given
        .at(deadline())
        .then_types(&vote("DE", "yes"), &["VoteCast"]);
    given
        .at(deadline() + Duration::milliseconds(1))
        .then_err(&vote("DE", "yes"), "deadline_passed");
}

#[test]
fn votes_change_until_close_where_the_rule_allows_it() {
    let given = given_open("it-planungsrat-resolution").votes(&[("DE-BY", "no")]);
    let changed = given.accepting(vote("DE-BY", "yes"));
    let status = CirculationStatus::of(&changed.circulation).unwrap();
    assert_eq!(status.votes.len(), 1);
    assert_eq!(
        status.votes.values().next().unwrap().choice,
        umlauf_domain::ids::Choice::Yes
    );
    let objected = given_open("it-planungsrat-resolution").accepting(object("DE-NW"));
    objected.then_err(&vote("DE-NW", "yes"), "circulation_closed");
}

#[test]
fn folding_the_same_events_twice_gives_the_same_state() {
    let given = given_open("it-planungsrat-resolution").votes(&adopting_yes_votes());
    let constitution = body::decide(&Body::default(), &constitution(), now()).unwrap();
    let body_events: Vec<Event> = constitution
        .into_iter()
        .chain(given.history_of(false))
        .collect();
    assert_eq!(Body::fold(&body_events), given.body);
    let circulation_events = given.history_of(true);
    assert_eq!(Circulation::fold(&circulation_events), given.circulation);
    assert_eq!(
        Circulation::fold(&circulation_events),
        Circulation::fold(&circulation_events)
    );
}

#[test]
fn events_round_trip_through_their_record_form() {
    let mut events = body::decide(&Body::default(), &constitution(), now()).unwrap();
    events.extend(given_body().when(&open_with("unanimity")).unwrap());
    events.extend(given_open("unanimity").when(&vote("DE", "no")).unwrap());
    for event in events {
        let read =
            Event::from_record(event.type_name(), Event::SCHEMA_VERSION, event.data()).unwrap();
        assert_eq!(read, event);
    }
    let error = Event::from_record("VoteCast", 99, json!({})).unwrap_err();
    assert_eq!(error.code(), "invalid_event");
}

// ---- replay ---------------------------------------------------------------------------------

mod replay {
    use proptest::prelude::*;

    use super::*;

    const MEMBERS: [&str; 6] = ["DE", "DE-BY", "DE-NW", "DE-HB", "FITKO", "secretariat"];
    const PRESETS: [&str; 5] = [
        "it-planungsrat-resolution",
        "unanimity",
        "simple-majority",
        "eu-silence",
        "supervisory-board",
    ];

    /// One step of a random history: a command at an offset in hours from the opening.
    fn step() -> impl Strategy<Value = (u8, usize, usize, i64)> {
        (0u8..6, 0..MEMBERS.len(), 0..3usize, 0i64..400)
    }

    fn command_of(kind: u8, member: &str, choice: usize) -> Command {
        let choice = ["yes", "no", "abstain"][choice];
        match kind {
            0..=2 => vote(member, choice),
            3 => object(member),
            4 => command(
                "ExtendDeadline",
                "secretariat",
                json!({"circulation": CIRCULATION, "deadline": deadline() + Duration::days(3)}),
            ),
            _ => command(
                "WithdrawCirculation",
                member,
                json!({"circulation": CIRCULATION, "reason": "changed course"}),
            ),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Folding the events of any accepted command sequence gives the state the decisions
        /// were made against, and the same state twice.
        #[test]
        fn folding_accepted_events_is_deterministic(
            preset in 0..PRESETS.len(),
            steps in proptest::collection::vec(step(), 0..40),
        ) {
            let mut given = given_open(PRESETS[preset]);
            let mut events: Vec<Event> =
                given_body().when(&open_with(PRESETS[preset])).unwrap();
            for (kind, member, choice, hours) in steps {
                given.now = now() + Duration::hours(hours);
                let command = command_of(kind, MEMBERS[member], choice);
                if let Ok(new) = given.when(&command) {
                    for event in &new {
                        given.circulation = circulation::evolve(given.circulation, event);
                    }
                    events.extend(new);
                }
            }
            let once = Circulation::fold(&events);
            let twice = Circulation::fold(&events);
            prop_assert_eq!(&once, &given.circulation);
            prop_assert_eq!(&once, &twice);
            prop_assert_eq!(CirculationStatus::of(&once), CirculationStatus::of(&twice));
            // A closed circulation accepts nothing more.
            if once.closed.is_some() {
                prop_assert!(given.when(&vote("DE", "yes")).is_err());
            }
        }
    }
}

// ---- written data ---------------------------------------------------------------------------

/// `Event::write_data` writes without building the data's JSON value; it must write that value's
/// text for every kind of event.
#[test]
fn written_data_is_the_text_of_the_data_value_for_every_event() {
    let withdraw = command(
        "WithdrawCirculation",
        "secretariat",
        json!({"circulation": CIRCULATION, "reason": "superseded \"x\"\n"}),
    );
    let extend = command(
        "ExtendDeadline",
        "secretariat",
        json!({"circulation": CIRCULATION, "deadline": deadline() + Duration::days(1)}),
    );
    let admit = command(
        "AdmitMember",
        "secretariat",
        json!({"member": {"id": "DE-XX", "name": "Neuland ü", "kind": "voting", "groups": ["laender"]}}),
    );
    let retire = command("RetireMember", "secretariat", json!({"member": "DE-SL"}));
    let revoke = command(
        "RevokeKey",
        "DE-BY",
        json!({"key_id": key_id("DE-BY").to_string(), "reason": "lost"}),
    );
    let mut events: Vec<Event> = given_body()
        .accepting(admit)
        .accepting(retire)
        .accepting(revoke)
        .history
        .into_iter()
        .map(|(_, event)| event)
        .collect();
    events.extend(body::decide(&Body::default(), &constitution(), now()).unwrap());
    let id = CirculationId(CIRCULATION.parse().unwrap());
    for preset in ["it-planungsrat-resolution", "unanimity", "eu-silence"] {
        let opened = given_open(preset);
        events.extend(opened.history.iter().map(|(_, event)| event.clone()));
        let mut voted = opened.clone().votes(&[("DE", "yes"), ("DE-BY", "no")]);
        events.extend(voted.when(&object("DE-NW")).unwrap_or_default());
        events.extend(voted.when(&extend).unwrap_or_default());
        events.extend(voted.when(&withdraw).unwrap_or_default());
        if voted.when(&vote("DE-HB", "abstain")).is_ok() {
            voted = voted.accepting(vote("DE-HB", "abstain"));
        }
        events.extend(voted.history.iter().map(|(_, event)| event.clone()));
        let late = deadline() + Duration::seconds(1);
        events.extend(
            circulation::close_at_deadline(&voted.circulation, id, late).unwrap_or_default(),
        );
        for (member, _) in adopting_yes_votes() {
            if let Ok(more) = voted.when(&vote(member, "yes")) {
                events.extend(more.clone());
                voted = voted.accepting(vote(member, "yes"));
            }
        }
    }
    let mut kinds = BTreeSet::new();
    for event in &events {
        let mut written = Vec::new();
        event.write_data(&mut written).unwrap();
        let value_text = serde_json::to_string(&event.data()).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), value_text, "{event:?}");
        // Written directly, not through the value.
        let direct = event.data_text().unwrap();
        assert_eq!(String::from_utf8(direct).unwrap(), value_text, "{event:?}");
        kinds.insert(event.type_name());
    }
    assert_eq!(kinds.len(), 12, "{kinds:?}");
}
