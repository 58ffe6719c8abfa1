//! Realistic histories made with the real domain and real signatures, as the service would have
//! recorded them: the IT-Planungsrat (Bund and 16 Länder), keys from fixed seeds, commands built
//! from JSON and signed as DSSE envelopes, records with consecutive positions and versions, and
//! checkpoints signed with a log key. Shared by the tests and the benchmark.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use umlauf_audit::TrustAnchors;
use umlauf_domain::body::{self, Body};
use umlauf_domain::circulation::{self, Circulation};
use umlauf_domain::ids::{CirculationId, CommandId};
use umlauf_domain::{Command, Event, Record, State, StreamId, decide};
use umlauf_proof::SigningKey;
use umlauf_proof::checkpoint::{self, Checkpoint};
use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE};
use umlauf_proof::keys::{public_key_to_base64, signing_key_from_seed};
use umlauf_proof::merkle::{Frontier, leaf_hash};
use umlauf_proof::note::NoteVerifier;

pub const BODY: &str = "it-planungsrat";
pub const LOG: &str = "umlauf.example/log";
pub const PROPOSAL: &str = "Der IT-Planungsrat beschließt den Standard XÖV 3.0.";
pub const MEMBERS: [&str; 17] = [
    "DE", "DE-BB", "DE-BE", "DE-BW", "DE-BY", "DE-HB", "DE-HE", "DE-HH", "DE-MV", "DE-NI", "DE-NW",
    "DE-RP", "DE-SH", "DE-SL", "DE-SN", "DE-ST", "DE-TH",
];
/// Königstein 2016 in units of 0.00001 %, for the Länder in `MEMBERS[1..]`.
const KOENIGSTEIN: [u64; 16] = [
    303_655, 508_324, 1_296_662, 1_553_327, 95_331, 739_885, 255_752, 201_240, 933_138, 2_114_424,
    483_089, 339_074, 121_111, 505_577, 279_941, 269_470,
];

pub fn genesis_key() -> SigningKey {
    signing_key_from_seed([1; 32])
}

pub fn log_key() -> SigningKey {
    signing_key_from_seed([2; 32])
}

pub fn secretariat_key() -> SigningKey {
    signing_key_from_seed([3; 32])
}

pub fn member_key(index: usize) -> SigningKey {
    signing_key_from_seed([u8::try_from(index + 10).unwrap(); 32])
}

pub fn deputy_key(index: usize) -> SigningKey {
    signing_key_from_seed([u8::try_from(index + 100).unwrap(); 32])
}

pub fn anchors() -> TrustAnchors {
    TrustAnchors {
        genesis_keys: vec![genesis_key().verifying_key()],
        log_key: NoteVerifier::new(LOG, log_key().verifying_key()).unwrap(),
    }
}

pub fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The id of the `index`th circulation.
pub fn circulation_id(index: u64) -> String {
    format!("10000000-0000-4000-8000-{index:012x}")
}

/// Writes a history; every method returns the records it appended.
pub struct History {
    pub now: DateTime<Utc>,
    position: u64,
    commands: u64,
    frontier: Frontier,
    body: Body,
    circulations: HashMap<CirculationId, Circulation>,
    members: Vec<SigningKey>,
    secretariat: SigningKey,
}

impl History {
    pub fn new() -> Self {
        Self {
            now: "2026-03-02T09:00:00Z".parse().unwrap(),
            position: 0,
            commands: 0,
            frontier: Frontier::new(),
            body: Body::default(),
            circulations: HashMap::new(),
            members: (0..MEMBERS.len()).map(member_key).collect(),
            secretariat: secretariat_key(),
        }
    }

    pub fn size(&self) -> u64 {
        self.position
    }

    pub fn advance(&mut self, seconds: i64) {
        self.now += Duration::seconds(seconds);
    }

    /// A signed checkpoint of everything appended so far.
    pub fn checkpoint(&self) -> String {
        sign_checkpoint(self.position, self.frontier.root(), &log_key())
    }

    fn command(&mut self, kind: &str, actor: &str, fields: Value) -> Value {
        self.commands += 1;
        let mut value = json!({
            "type": kind,
            "command_id": format!("00000000-0000-4000-8000-{:012x}", self.commands),
            "body": BODY,
            "actor": actor,
            "issued_at": self.now,
        });
        for (name, field) in fields.as_object().unwrap() {
            value[name] = field.clone();
        }
        value
    }

    /// Signs, decides and appends a command; panics if the domain refuses it.
    pub fn submit(&mut self, value: Value, key: &SigningKey) -> Vec<Vec<u8>> {
        let command = Command::from_value(value).unwrap();
        let payload = command.to_json();
        let envelope = dsse::sign(COMMAND_PAYLOAD_TYPE, payload.as_bytes(), key);
        let stream = command.stream();
        let circulation = match &stream {
            StreamId::Circulation(id) => Some(self.circulations.entry(*id).or_default().clone()),
            StreamId::Body(_) => None,
        };
        let state = State {
            body: &self.body,
            circulation: circulation.as_ref(),
        };
        let events = decide(state, &command, self.now)
            .unwrap_or_else(|error| panic!("{} refused: {error}", command.type_name()));
        let envelope = serde_json::to_value(&envelope).unwrap();
        self.append(&stream, events, Some((command.command_id, envelope)))
    }

    fn append(
        &mut self,
        stream: &StreamId,
        events: Vec<Event>,
        cause: Option<(CommandId, Value)>,
    ) -> Vec<Vec<u8>> {
        let mut records = Vec::with_capacity(events.len());
        for (index, event) in events.into_iter().enumerate() {
            self.position += 1;
            let version = match stream {
                StreamId::Body(_) => self.body.version + 1,
                StreamId::Circulation(id) => self.circulations.get(id).map_or(1, |c| c.version + 1),
            };
            let record = Record {
                position: self.position,
                stream: stream.clone(),
                version,
                event_type: event.type_name().to_owned(),
                schema: Event::SCHEMA_VERSION,
                recorded_at: self.now,
                data: event.data(),
                command_id: cause.as_ref().map(|(id, _)| *id),
                envelope: cause
                    .as_ref()
                    .filter(|_| index == 0)
                    .map(|(_, envelope)| envelope.clone()),
            };
            let bytes = record.to_bytes();
            self.frontier.push(leaf_hash(&bytes)).unwrap();
            match stream {
                StreamId::Body(_) => {
                    self.body = body::evolve(std::mem::take(&mut self.body), &event);
                }
                StreamId::Circulation(id) => {
                    let state = self.circulations.remove(id).unwrap_or_default();
                    let state = circulation::evolve(state, &event);
                    // Closed circulations are dropped, so long histories stay small.
                    if state.closed.is_none() {
                        self.circulations.insert(*id, state);
                    }
                }
            }
            records.push(bytes);
        }
        records
    }

    pub fn constitute(&mut self) -> Vec<Vec<u8>> {
        let groups = |index: usize| if index == 0 { "bund" } else { "laender" };
        let members: Vec<Value> = MEMBERS
            .iter()
            .enumerate()
            .map(|(index, id)| json!({"id": id, "name": id, "kind": "voting", "groups": [groups(index)]}))
            .collect();
        let weights: serde_json::Map<String, Value> = MEMBERS[1..]
            .iter()
            .zip(KOENIGSTEIN)
            .map(|(land, weight)| ((*land).to_owned(), json!(weight)))
            .collect();
        let mut keys =
            vec![json!({"holder": "secretariat", "public_key": base64_key(&self.secretariat)})];
        for (index, member) in MEMBERS.iter().enumerate() {
            keys.push(json!({"holder": member, "public_key": base64_key(&self.members[index]), "label": "CIO"}));
        }
        let value = self.command(
            "ConstituteBody",
            "genesis",
            json!({
                "genesis_key": base64_key(&genesis_key()),
                "name": "IT-Planungsrat",
                "groups": [{"id": "bund", "name": "Bund"}, {"id": "laender", "name": "Länder"}],
                "members": members,
                "weight_tables": [{"table": "koenigstein", "year": 2016, "unit": "0.00001 %", "weights": weights}],
                "presets": {"it-planungsrat-resolution": {}},
                "keys": keys,
            }),
        );
        self.submit(value, &genesis_key())
    }

    /// Opens circulation `index` with the IT-Planungsrat resolution rule, deadline in 14 days.
    pub fn open(&mut self, index: u64) -> Vec<Vec<u8>> {
        let deadline = self.now + Duration::days(14);
        let value = self.command(
            "OpenCirculation",
            "secretariat",
            json!({
                "circulation": circulation_id(index),
                "title": format!("Beschluss {index}"),
                "proposal": {"text": PROPOSAL, "sha256": digest(PROPOSAL)},
                "rule": {"kind": "preset", "preset": "it-planungsrat-resolution"},
                "deadline": deadline,
            }),
        );
        let key = self.secretariat.clone();
        self.submit(value, &key)
    }

    pub fn vote(&mut self, index: u64, member: usize, choice: &str) -> Vec<Vec<u8>> {
        let key = self.members[member].clone();
        self.vote_with(index, member, choice, &key)
    }

    pub fn vote_with(
        &mut self,
        index: u64,
        member: usize,
        choice: &str,
        key: &SigningKey,
    ) -> Vec<Vec<u8>> {
        let value = self.command(
            "CastVote",
            MEMBERS[member],
            json!({"circulation": circulation_id(index), "choice": choice, "proposal_sha256": digest(PROPOSAL)}),
        );
        self.submit(value, key)
    }

    pub fn object(&mut self, index: u64, member: usize) -> Vec<Vec<u8>> {
        let value = self.command(
            "ObjectToProcedure",
            MEMBERS[member],
            json!({"circulation": circulation_id(index), "reason": "Bedarf einer Sitzung."}),
        );
        let key = self.members[member].clone();
        self.submit(value, &key)
    }

    pub fn withdraw(&mut self, index: u64) -> Vec<Vec<u8>> {
        let value = self.command(
            "WithdrawCirculation",
            "secretariat",
            json!({"circulation": circulation_id(index), "reason": "Überholt."}),
        );
        let key = self.secretariat.clone();
        self.submit(value, &key)
    }

    /// Registers a deputy key for `member` (by the secretariat).
    pub fn register_deputy(&mut self, member: usize) -> Vec<Vec<u8>> {
        let value = self.command(
            "RegisterKey",
            "secretariat",
            json!({"holder": MEMBERS[member], "public_key": base64_key(&deputy_key(member)), "label": "deputy"}),
        );
        let key = self.secretariat.clone();
        self.submit(value, &key)
    }

    /// The service's close of circulation `index` at the deadline (the caller advances time).
    pub fn close_at_deadline(&mut self, index: u64) -> Vec<Vec<u8>> {
        let id = CirculationId(circulation_id(index).parse().unwrap());
        let state = self.circulations.get(&id).cloned().unwrap_or_default();
        let events = circulation::close_at_deadline(&state, id, self.now).unwrap();
        self.append(&StreamId::Circulation(id), events, None)
    }
}

/// Grows `history` as the benchmarks do until it holds at least `target` records: the body
/// constituted, then circulations of 17 votes closed by the last vote, every seventh with five
/// members silent and closed at the deadline. Each command's records go to `emit` as they are
/// made, with the history as it stands after them.
pub fn grow_mixed(
    history: &mut History,
    target: u64,
    mut emit: impl FnMut(&History, Vec<Vec<u8>>),
) {
    let constituted = history.constitute();
    emit(history, constituted);
    let mut circulation = 0_u64;
    while history.size() < target {
        circulation += 1;
        let opened = history.open(circulation);
        emit(history, opened);
        history.advance(1);
        let silent = if circulation.is_multiple_of(7) { 5 } else { 0 };
        for member in 0..(17 - silent) {
            let choice = match (circulation + member as u64) % 11 {
                0 => "no",
                1 => "abstain",
                _ => "yes",
            };
            let vote = history.vote(circulation, member, choice);
            emit(history, vote);
            history.advance(1);
        }
        if silent > 0 {
            history.advance(15 * 24 * 3600);
            let close = history.close_at_deadline(circulation);
            emit(history, close);
        }
    }
}

pub fn base64_key(key: &SigningKey) -> String {
    public_key_to_base64(&key.verifying_key())
}

pub fn sign_checkpoint(size: u64, root: [u8; 32], key: &SigningKey) -> String {
    let checkpoint = Checkpoint {
        origin: LOG.to_owned(),
        size,
        root,
    };
    checkpoint::sign(&checkpoint, LOG, key).unwrap()
}

/// A whole test history: records and the checkpoints the service signed along the way.
pub struct Written {
    pub records: Vec<Vec<u8>>,
    /// Checkpoints by size.
    pub checkpoints: BTreeMap<u64, String>,
    /// The writer, to append more.
    pub history: History,
}

/// The standard test history:
/// - circulation 1: all 17 vote yes: adopted with the 17th vote;
/// - circulation 2: Bund votes no, all others yes: rejected;
/// - circulation 3: ten votes, then the deadline passes: closed by the service;
/// - circulation 4: an objection: failed;
/// - circulation 5: withdrawn;
/// - circulation 6: open, three votes;
/// - a deputy key for DE-BY registered at the end.
pub fn standard() -> Written {
    let mut history = History::new();
    let mut records = Vec::new();
    let mut checkpoints = BTreeMap::new();
    let step = |history: &mut History, new: Vec<Vec<u8>>, records: &mut Vec<Vec<u8>>| {
        records.extend(new);
        history.advance(60);
    };
    let constituted = history.constitute();
    step(&mut history, constituted, &mut records);
    checkpoints.insert(history.size(), history.checkpoint());
    for index in 1..=6 {
        let opened = history.open(index);
        step(&mut history, opened, &mut records);
    }
    for member in 0..17 {
        let vote = history.vote(1, member, "yes");
        step(&mut history, vote, &mut records);
    }
    checkpoints.insert(history.size(), history.checkpoint());
    for member in 0..17 {
        let choice = if member == 0 { "no" } else { "yes" };
        let vote = history.vote(2, member, choice);
        step(&mut history, vote, &mut records);
    }
    for member in 0..10 {
        let vote = history.vote(3, member, "yes");
        step(&mut history, vote, &mut records);
    }
    checkpoints.insert(history.size(), history.checkpoint());
    let objection = history.object(4, 5);
    step(&mut history, objection, &mut records);
    let withdrawal = history.withdraw(5);
    step(&mut history, withdrawal, &mut records);
    for member in 0..3 {
        let vote = history.vote(6, member, "abstain");
        step(&mut history, vote, &mut records);
    }
    history.advance(15 * 24 * 3600);
    let close = history.close_at_deadline(3);
    step(&mut history, close, &mut records);
    let deputy = history.register_deputy(4);
    step(&mut history, deputy, &mut records);
    checkpoints.insert(history.size(), history.checkpoint());
    Written {
        records,
        checkpoints,
        history,
    }
}
