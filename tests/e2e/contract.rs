//! The contract in `proto/` against the code: every message a procedure sends and receives over
//! NATS matches its JSON Schema, the AsyncAPI document names every subject and stream the code
//! uses, every error code the code can return is in the error schema, and the Python client of
//! `proto/examples/python` signs exactly like the vectors and gets its vote into the log. The
//! other e2e tests check what they see against the same schemas ([`check_reply`], [`contract`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use jsonschema::{Registry, Resource, Validator};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use umlauf_domain::StreamId;
use umlauf_domain::ids::{BodyId, CirculationId, MemberId};
use umlauf_nats::Subjects;
use umlauf_nats::service::Endpoint;
use umlauf_nats::subjects::SERVICE_NAME;
use umlauf_nats::wire::{ERROR_CODE_HEADER, ERROR_HEADER};

use crate::support::{
    BODY, Backend, PATIENCE, World, command, constitution, eventually, in_a_week, in_seconds,
    new_circulation, object, open, proposal_digest, public_key, request, sign, signing_key, vote,
    withdraw,
};

// ---- the contract's files ----------------------------------------------------------------------

/// The repository's `proto/` directory.
fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto")
}

/// The `$id` every schema file has: this prefix and its file name.
const SCHEMA_BASE: &str = "https://schemas.umlauf.example/v1/";

/// The schemas of `proto/schemas`, compiled against each other.
pub(crate) struct Contract {
    files: BTreeMap<String, Value>,
    registry: Registry<'static>,
}

impl Contract {
    pub(crate) fn load() -> Self {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(proto_dir().join("schemas")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(
                name.ends_with(".json"),
                "{name}: schemas/ holds JSON files only"
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let schema: Value = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{name} is not JSON: {error}"));
            assert_eq!(
                schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{name}"
            );
            assert_eq!(schema["$id"], format!("{SCHEMA_BASE}{name}"), "{name}");
            if let Err(error) = jsonschema::meta::validate(&schema) {
                panic!("{name} is not a valid draft 2020-12 schema: {error}");
            }
            files.insert(name, schema);
        }
        let mut builder = Registry::new();
        for (name, schema) in &files {
            builder = builder
                .add(
                    format!("{SCHEMA_BASE}{name}"),
                    Resource::from_contents(schema.clone()),
                )
                .unwrap();
        }
        let registry = builder.prepare().unwrap();
        Self { files, registry }
    }

    /// A validator of `reference`: a file name with an optional `#/json/pointer`.
    fn validator(&self, reference: &str) -> Validator {
        let (file, _) = reference.split_once('#').unwrap_or((reference, ""));
        assert!(
            self.files.contains_key(file),
            "no schema file {file} (for {reference})"
        );
        jsonschema::draft202012::options()
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&json!({"$ref": format!("{SCHEMA_BASE}{reference}")}))
            .unwrap_or_else(|error| panic!("{reference} does not compile: {error}"))
    }

    /// Fails the test unless `instance` matches the schema `reference`.
    pub(crate) fn check(&self, reference: &str, instance: &Value) {
        let validator = self.validator(reference);
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|error| format!("{}: {error}", error.instance_path()))
            .collect();
        let mut shown = instance.to_string();
        if shown.len() > 600 {
            shown = format!("{}…", shown.chars().take(600).collect::<String>());
        }
        assert!(
            errors.is_empty(),
            "{shown} does not match {reference}:\n{}",
            errors.join("\n")
        );
    }

    /// Whether `instance` matches the schema `reference`.
    fn matches(&self, reference: &str, instance: &Value) -> bool {
        self.validator(reference).is_valid(instance)
    }

    /// Every error code of `error.json`.
    fn error_codes(&self) -> BTreeSet<String> {
        self.files["error.json"]["$defs"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|code| code.as_str().unwrap().to_owned())
            .collect()
    }
}

/// The error headers of a reply as the object `error.json` describes, if it is a refusal.
fn error_headers(headers: Option<&HeaderMap>) -> Option<Value> {
    let headers = headers?;
    let error = headers.get(ERROR_HEADER)?;
    let mut object = serde_json::Map::new();
    object.insert(ERROR_HEADER.to_owned(), error.as_str().into());
    if let Some(status) = headers.get(ERROR_CODE_HEADER) {
        object.insert(ERROR_CODE_HEADER.to_owned(), status.as_str().into());
    }
    Some(Value::Object(object))
}

/// The contract, loaded once for the whole test binary: every e2e test checks the replies,
/// decisions and commands it sees against it (see `support.rs`).
pub(crate) fn contract() -> &'static Contract {
    static CONTRACT: std::sync::OnceLock<Contract> = std::sync::OnceLock::new();
    CONTRACT.get_or_init(Contract::load)
}

/// Checks a reply of the service: the error headers against `error.json` (with an empty body),
/// or else the body against `reply_schema`.
pub(crate) fn check_reply(message: &async_nats::Message, reply_schema: &str) {
    let contract = contract();
    if let Some(error) = error_headers(message.headers.as_ref()) {
        contract.check("error.json", &error);
        assert!(message.payload.is_empty(), "an error reply has a body");
        return;
    }
    let reply: Value = serde_json::from_slice(&message.payload)
        .unwrap_or_else(|error| panic!("a reply that is not JSON ({reply_schema}): {error}"));
    contract.check(reply_schema, &reply);
}

/// `Nats-Msg-Id` of a message.
fn message_id(headers: Option<&HeaderMap>) -> String {
    headers
        .and_then(|headers| headers.get("Nats-Msg-Id"))
        .map(|value| value.as_str().to_owned())
        .unwrap_or_default()
}

// ---- driving the service, checking every message ------------------------------------------------

/// A world that checks everything it sends and receives against the contract.
struct Checked<'a> {
    world: &'a World,
    contract: &'a Contract,
    /// The service endpoints asked so far, by subject.
    asked: BTreeSet<String>,
    /// The refusal codes seen so far.
    refusals: BTreeSet<String>,
    /// The command types accepted so far.
    accepted: BTreeSet<String>,
}

impl<'a> Checked<'a> {
    fn new(world: &'a World, contract: &'a Contract) -> Self {
        Self {
            world,
            contract,
            asked: BTreeSet::new(),
            refusals: BTreeSet::new(),
            accepted: BTreeSet::new(),
        }
    }

    /// Sends `payload` to `subject`: the reply's JSON, or the refusal's code. A refusal is
    /// checked against `error.json` (and has an empty body); a reply against `reply_schema`.
    async fn exchange(
        &mut self,
        subject: String,
        payload: Vec<u8>,
        reply_schema: &str,
    ) -> Result<Value, String> {
        self.asked.insert(subject.clone());
        let message = request(&self.world.client, subject, payload).await;
        if let Some(error) = error_headers(message.headers.as_ref()) {
            self.contract.check("error.json", &error);
            assert!(message.payload.is_empty(), "an error reply has a body");
            let text = error[ERROR_HEADER].as_str().unwrap();
            let code = text.split_once(": ").map_or(text, |(code, _)| code);
            self.refusals.insert(code.to_owned());
            return Err(code.to_owned());
        }
        let reply: Value = serde_json::from_slice(&message.payload).unwrap();
        self.contract.check(reply_schema, &reply);
        Ok(reply)
    }

    /// Submits envelope bytes; checks the envelope (when it is JSON) and the reply.
    async fn submit(&mut self, envelope: Vec<u8>) -> Result<Value, String> {
        let reply = self
            .exchange(self.world.subjects.submit(), envelope, "submit-reply.json")
            .await?;
        let receipts = reply["receipts"].as_array().cloned().unwrap_or_default();
        let records = reply["records"].as_array().unwrap();
        assert_eq!(receipts.len(), records.len(), "one receipt per record");
        for (record, receipt) in records.iter().zip(&receipts) {
            let bytes = STANDARD.decode(record.as_str().unwrap()).unwrap();
            let record: Value = serde_json::from_slice(&bytes).unwrap();
            self.contract.check("record.json", &record);
            // The receipt is the record's: its position and its leaf hash.
            assert_eq!(receipt["position"], record["position"]);
            let leaf = Sha256::new()
                .chain_update([0])
                .chain_update(&bytes)
                .finalize();
            assert_eq!(receipt["leaf_hash"], hex(&leaf));
        }
        Ok(reply)
    }

    /// Signs a command, checks it and its envelope, and submits it; panics on a refusal.
    async fn accept(&mut self, signer: &str, command: &Value) -> Value {
        self.contract.check("command.json", command);
        let envelope = sign(signer, command);
        self.contract
            .check("envelope.json", &serde_json::from_slice(&envelope).unwrap());
        let reply = self
            .submit(envelope)
            .await
            .unwrap_or_else(|code| panic!("{} refused: {code}", command["type"]));
        assert_eq!(reply["duplicate"], false);
        self.accepted
            .insert(command["type"].as_str().unwrap().to_owned());
        reply
    }

    /// Submits envelope bytes expecting the refusal `code`.
    async fn refuse(&mut self, envelope: Vec<u8>, code: &str) {
        match self.submit(envelope).await {
            Ok(reply) => panic!("expected {code}, accepted: {reply}"),
            Err(refused) => assert_eq!(refused, code),
        }
    }

    /// Runs the query `name`; checks the reply against `queries.json`, and that the request
    /// matches its schema exactly when the service takes it (`invalid_query` otherwise).
    async fn query(&mut self, name: &str, request: &Value) -> Result<Value, String> {
        let request_schema = format!("queries.json#/$defs/{name}Request");
        let answer = self
            .exchange(
                self.world.subjects.query(name),
                serde_json::to_vec(request).unwrap(),
                &format!("queries.json#/$defs/{name}Reply"),
            )
            .await;
        if answer.as_ref().is_err_and(|code| code == "invalid_query") {
            assert!(
                !self.contract.matches(&request_schema, request),
                "{request} matches {request_schema}, but the service refuses it"
            );
        } else {
            self.contract.check(&request_schema, request);
        }
        answer
    }
}

/// A custom rule: among DE and DE-BY, one yes adopts; no objections, closes on certainty.
fn one_yes_rule() -> Value {
    json!({"kind": "custom", "rule": {
        "electorate": {"kind": "members", "members": ["DE", "DE-BY"]},
        "requirements": [{"kind": "min_yes", "among": {"kind": "electorate"}, "at_least": 1}],
        "abstention": "excluded",
        "silence": "absent",
        "objection": "not_available",
        "vote_change": "never",
        "early_close": "on_certainty"
    }})
}

fn open_with_rule(circulation: CirculationId, rule: Value, deadline: Value) -> Value {
    let mut command = open(circulation, "unanimity", in_a_week());
    command["rule"] = rule;
    command["deadline"] = deadline;
    command
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_of_a_procedure_matches_its_schema() {
    let contract = Contract::load();
    let world = World::start(Backend::Sqlite).await;
    let mut checked = Checked::new(&world, &contract);

    // Every command type, by the actor the contract names.
    let constitution = constitution();
    checked.accept("genesis", &constitution).await;
    let duplicate = checked
        .submit(sign("genesis", &constitution))
        .await
        .unwrap();
    assert_eq!(duplicate["duplicate"], true);

    let kosit = json!({"id": "KOSIT", "name": "KoSIT", "kind": "advisory", "groups": ["bund"]});
    checked
        .accept(
            "secretariat",
            &command("AdmitMember", "secretariat", json!({"member": kosit})),
        )
        .await;
    let body = checked.query("body", &json!({"body": BODY})).await.unwrap();
    let weights = body["weight_tables"]["koenigstein"]["2016"]["weights"].clone();
    checked
        .accept(
            "secretariat",
            &command(
                "SetWeightTable",
                "secretariat",
                json!({"table": "koenigstein", "year": 2024, "unit": "0.00001 %", "weights": weights}),
            ),
        )
        .await;
    checked
        .accept(
            "secretariat",
            &command(
                "RegisterKey",
                "secretariat",
                json!({"holder": "DE-BY", "public_key": public_key("DE-BY deputy"), "label": "deputy"}),
            ),
        )
        .await;
    let deputy_key_id = hex(&Sha256::digest(
        signing_key("DE-BY deputy").verifying_key().to_bytes(),
    ));
    checked
        .accept(
            "secretariat",
            &command(
                "RevokeKey",
                "secretariat",
                json!({"key_id": deputy_key_id, "reason": "Vertretung beendet"}),
            ),
        )
        .await;
    checked
        .accept(
            "secretariat",
            &command("RetireMember", "secretariat", json!({"member": "KOSIT"})),
        )
        .await;

    // A: votes with a statement, a later deadline, then withdrawn.
    let withdrawn = new_circulation();
    checked
        .accept(
            "secretariat",
            &open(withdrawn, "it-planungsrat-resolution", in_a_week()),
        )
        .await;
    let mut with_statement = vote(withdrawn, "DE", "yes");
    with_statement["statement"] = json!("Der Bund stimmt zu.");
    checked.accept("DE", &with_statement).await;
    checked
        .accept("DE-BY", &vote(withdrawn, "DE-BY", "no"))
        .await;
    checked
        .accept(
            "secretariat",
            &command(
                "ExtendDeadline",
                "secretariat",
                json!({"circulation": withdrawn, "deadline": in_a_week() + chrono::Duration::days(1)}),
            ),
        )
        .await;
    // B: an objection fails it.
    let objected = new_circulation();
    checked
        .accept(
            "secretariat",
            &open(objected, "it-planungsrat-recommendation", in_a_week()),
        )
        .await;
    checked.accept("DE-HB", &object(objected, "DE-HB")).await;
    // C: a custom rule, closed by the deadline without an answer.
    let lapsed = new_circulation();
    checked
        .accept(
            "secretariat",
            &open_with_rule(lapsed, one_yes_rule(), json!(in_seconds(2))),
        )
        .await;
    // D: a custom rule, adopted at once by one yes.
    let adopted = new_circulation();
    checked
        .accept(
            "secretariat",
            &open_with_rule(adopted, one_yes_rule(), json!(in_a_week())),
        )
        .await;
    checked.accept("DE", &vote(adopted, "DE", "yes")).await;

    // Queries, while A is open.
    let status = checked
        .query("circulation", &json!({"circulation": withdrawn}))
        .await
        .unwrap();
    assert_eq!(status["votes"]["DE"]["statement"], "Der Bund stimmt zu.");
    let inbox = checked
        .query("inbox", &json!({"body": BODY, "member": "DE-BW"}))
        .await
        .unwrap();
    assert!(!inbox["circulations"].as_array().unwrap().is_empty());
    checked.accept("secretariat", &withdraw(withdrawn)).await;
    assert_eq!(
        checked.accepted.len(),
        11,
        "every command type: {:?}",
        checked.accepted
    );

    // Refusals of several kinds.
    checked
        .refuse(b"not an envelope".to_vec(), "malformed_envelope")
        .await;
    let mut tampered: Value =
        serde_json::from_slice(&sign("DE-BW", &vote(withdrawn, "DE-BW", "yes"))).unwrap();
    let forged = vote(withdrawn, "DE-BW", "no");
    tampered["payload"] = STANDARD.encode(serde_json::to_vec(&forged).unwrap()).into();
    checked
        .refuse(serde_json::to_vec(&tampered).unwrap(), "bad_signature")
        .await;
    let mut unknown_field = vote(adopted, "DE-BY", "yes");
    unknown_field["extra"] = json!(true);
    assert!(!contract.matches("command.json", &unknown_field));
    checked
        .refuse(sign("DE-BY", &unknown_field), "invalid_command")
        .await;
    checked
        .refuse(
            sign("stranger", &vote(adopted, "DE-BY", "yes")),
            "unknown_key",
        )
        .await;
    checked
        .refuse(
            sign("DE-BY", &vote(new_circulation(), "DE-BY", "yes")),
            "unknown_circulation",
        )
        .await;
    checked
        .refuse(
            sign("DE-BY", &vote(adopted, "DE-BY", "yes")),
            "circulation_closed",
        )
        .await;
    let mut by_a_member = open(new_circulation(), "unanimity", in_a_week());
    by_a_member["actor"] = json!("DE-BY");
    checked
        .refuse(sign("DE-BY", &by_a_member), "forbidden")
        .await;

    // Every query, and refused queries.
    checked
        .query("circulations", &json!({"body": BODY, "state": null}))
        .await
        .unwrap();
    checked
        .query("circulations", &json!({"body": BODY, "state": "closed"}))
        .await
        .unwrap();
    checked.query("keys", &json!({"body": BODY})).await.unwrap();
    assert_eq!(
        checked
            .query("body", &json!({"body": "no-such-body"}))
            .await
            .unwrap_err(),
        "unknown_body"
    );
    assert_eq!(
        checked
            .query("circulation", &json!({"circulation": new_circulation()}))
            .await
            .unwrap_err(),
        "unknown_circulation"
    );
    assert_eq!(
        checked
            .query("keys", &json!({"body": BODY, "extra": 1}))
            .await
            .unwrap_err(),
        "invalid_query"
    );

    // C closes at its deadline.
    eventually("the deadline to close C", || {
        let world = &world;
        async move {
            let status = world.status(lapsed).await;
            (serde_json::to_value(status.state).unwrap() == "closed").then_some(())
        }
    })
    .await;
    let head = world.relayed().await;

    // The proof endpoints, and whatever other endpoint the service has.
    for endpoint in Endpoint::ALL {
        let subject = format!("{}.{}", world.subjects.prefix(), endpoint.suffix());
        if checked.asked.contains(&subject) {
            continue;
        }
        let name = endpoint
            .suffix()
            .strip_prefix("query.")
            .unwrap_or_else(|| panic!("{subject} is not exercised by this test"));
        let request = match name {
            "checkpoint" => json!({}),
            "inclusion" => json!({"position": 1, "size": head}),
            "consistency" => json!({"old_size": 1, "new_size": head}),
            other => panic!("the query {other} is not exercised by this test"),
        };
        checked.query(name, &request).await.unwrap();
    }
    for endpoint in Endpoint::ALL {
        let subject = format!("{}.{}", world.subjects.prefix(), endpoint.suffix());
        assert!(checked.asked.contains(&subject), "{subject} not asked");
    }
    // Proofs of what the log does not hold are refused.
    let beyond = checked
        .query("checkpoint", &json!({"size": head + 1000}))
        .await
        .unwrap_err();
    assert_eq!(beyond, "not_found");
    let beyond = checked
        .query("inclusion", &json!({"position": head + 1, "size": head}))
        .await
        .unwrap_err();
    assert_eq!(beyond, "out_of_range");
    let beyond = checked
        .query(
            "consistency",
            &json!({"old_size": head, "new_size": head + 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(beyond, "out_of_range");
    assert!(checked.refusals.len() >= 8, "{:?}", checked.refusals);

    // The log stream: every record, checked, with its position as the message id.
    let records = world.check_log_stream().await;
    let jetstream = jetstream::new(world.client.clone());
    let log = jetstream
        .get_stream(world.subjects.log_stream())
        .await
        .unwrap();
    let mut types = BTreeSet::new();
    for record in &records {
        let message = log.get_raw_message(record.position()).await.unwrap();
        let value: Value = serde_json::from_slice(&message.payload).unwrap();
        contract.check("record.json", &value);
        assert_eq!(
            message_id(Some(&message.headers)),
            record.position().to_string()
        );
        types.insert(record.record.event_type.clone());
    }
    assert_eq!(types.len(), 12, "every event type in the log: {types:?}");

    // The decisions: four closed circulations.
    let decisions = jetstream
        .get_stream(world.subjects.decisions_stream())
        .await
        .unwrap();
    let consumer = decisions
        .create_consumer(consumer::pull::Config {
            filter_subject: world.subjects.decisions_of(None),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut results = BTreeSet::new();
    for _ in 0..4 {
        let message = tokio::time::timeout(PATIENCE, messages.next())
            .await
            .expect("a decision")
            .unwrap()
            .unwrap();
        let value: Value = serde_json::from_slice(&message.payload).unwrap();
        contract.check("decision.json", &value);
        assert_eq!(
            message_id(message.headers.as_ref()),
            value["position"].to_string()
        );
        results.insert(value["decision"]["result"].as_str().unwrap().to_owned());
        message.ack().await.unwrap();
    }
    assert_eq!(
        results,
        ["adopted", "failed", "rejected", "withdrawn"]
            .map(str::to_owned)
            .into(),
    );

    // The checkpoints, up to the one of the whole log, in ascending size.
    let checkpoints = jetstream
        .get_stream(world.subjects.checkpoints_stream())
        .await
        .unwrap();
    let last = eventually("the checkpoint of the whole log to be published", || {
        let mut checkpoints = checkpoints.clone();
        async move {
            let last = checkpoints.info().await.ok()?.state.last_sequence;
            let message = checkpoints.get_raw_message(last).await.ok()?;
            (message_id(Some(&message.headers)) == head.to_string()).then_some(last)
        }
    })
    .await;
    let mut sizes = Vec::new();
    for sequence in 1..=last {
        let message = checkpoints.get_raw_message(sequence).await.unwrap();
        let note = String::from_utf8(message.payload.to_vec()).unwrap();
        contract.check("checkpoint.json", &Value::String(note.clone()));
        let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
        assert_eq!(message_id(Some(&message.headers)), size.to_string());
        sizes.push(size);
    }
    assert!(sizes.is_sorted_by(|a, b| a < b), "{sizes:?}");
    assert_eq!(sizes.last(), Some(&head));
}

// ---- the AsyncAPI document ------------------------------------------------------------------------

/// A YAML document as JSON (the subset the AsyncAPI document uses: no aliases, no tags).
fn yaml_to_json(yaml: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match yaml {
        Yaml::Real(text) => json!(text.parse::<f64>().unwrap()),
        Yaml::Integer(number) => json!(number),
        Yaml::String(text) => json!(text),
        Yaml::Boolean(flag) => json!(flag),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Hash(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| {
                    let key = match key {
                        Yaml::String(text) => text.clone(),
                        other => panic!("a non-string key in asyncapi.yaml: {other:?}"),
                    };
                    (key, yaml_to_json(value))
                })
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("asyncapi.yaml uses {other:?}"),
    }
}

fn asyncapi() -> Value {
    let text = std::fs::read_to_string(proto_dir().join("asyncapi.yaml")).unwrap();
    let documents = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    assert_eq!(documents.len(), 1);
    yaml_to_json(&documents[0])
}

/// Whether a concrete or wildcard subject fits a channel address with `{parameter}` tokens:
/// a parameter stands for one token, `*` for one, and a trailing `>` for the rest.
fn address_fits(address: &str, subject: &str) -> bool {
    let mut address = address.split('.');
    let mut subject = subject.split('.');
    loop {
        match (address.next(), subject.next()) {
            (None, None) => return true,
            (Some(_), Some(">")) => return true,
            (Some(pattern), Some(token)) => {
                let parameter = pattern.starts_with('{') && pattern.ends_with('}');
                if !(parameter || pattern == token) {
                    return false;
                }
                if token == "*" && !parameter {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[test]
fn the_asyncapi_document_names_every_subject_and_stream_the_code_uses() {
    let document = asyncapi();
    assert_eq!(document["asyncapi"], "3.0.0");
    let channels = document["channels"].as_object().unwrap();
    let addresses: Vec<&str> = channels
        .values()
        .map(|channel| channel["address"].as_str().unwrap())
        .collect();

    // The document describes the default deployment.
    let subjects = Subjects::default();
    let body = BodyId::parse(BODY).unwrap();
    let circulation = CirculationId("5f0c3a86-1b7e-4d59-8a3e-0c7b1d2e4f60".parse().unwrap());
    let member = MemberId::parse("DE-BY").unwrap();
    let mut used = vec![
        subjects.submit(),
        subjects.log_record(&StreamId::Body(body.clone())),
        subjects.log_record(&StreamId::Circulation(circulation)),
        subjects.decision(&body, &circulation),
        subjects.decisions_of(Some(&body)),
        subjects.checkpoints(),
        subjects.reminder(&body, &member),
        format!("$SRV.PING.{SERVICE_NAME}"),
        format!("$SRV.INFO.{SERVICE_NAME}"),
        format!("$SRV.STATS.{SERVICE_NAME}"),
        "$SRV.PING".to_owned(),
    ];
    for endpoint in Endpoint::ALL {
        used.push(format!("{}.{}", subjects.prefix(), endpoint.suffix()));
        if let Some(name) = endpoint.suffix().strip_prefix("query.") {
            assert_eq!(
                subjects.query(name),
                format!("{}.{}", subjects.prefix(), endpoint.suffix())
            );
        }
    }
    for subject in &used {
        assert!(
            addresses
                .iter()
                .any(|address| address_fits(address, subject)),
            "asyncapi.yaml has no channel for {subject}"
        );
    }
    // And no channel the code does not use.
    for address in &addresses {
        assert!(
            used.iter().any(|subject| address_fits(address, subject)),
            "asyncapi.yaml names {address}, which the code does not use"
        );
    }

    // The streams, with the subjects they capture.
    let settings = umlauf_nats::streams::StreamSettings::default();
    let configs = [
        umlauf_nats::streams::log_stream_config(&subjects, &settings),
        umlauf_nats::streams::decisions_stream_config(&subjects, &settings),
        umlauf_nats::streams::checkpoints_stream_config(&subjects, &settings),
        umlauf_nats::streams::reminders_stream_config(
            &subjects,
            &settings,
            std::time::Duration::from_secs(25 * 3600),
        ),
    ];
    let described: BTreeMap<String, Vec<String>> = document["x-streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stream| {
            (
                stream["name"].as_str().unwrap().to_owned(),
                serde_json::from_value(stream["subjects"].clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(described.len(), configs.len());
    for config in &configs {
        assert_eq!(
            described.get(&config.name),
            Some(&config.subjects),
            "stream {}",
            config.name
        );
    }
    for stream in document["x-streams"].as_array().unwrap() {
        for channel in stream["channels"].as_array().unwrap() {
            let channel = &channels[channel.as_str().unwrap()];
            let address = channel["address"].as_str().unwrap();
            let captured = stream["subjects"].as_array().unwrap().iter().any(|filter| {
                address_fits(&address.replace(['{', '}'], ""), filter.as_str().unwrap())
                    || address == filter.as_str().unwrap()
            });
            assert!(captured, "{address} is not in stream {}", stream["name"]);
        }
    }

    // Every reference resolves: within the document, or to a schema file that compiles.
    let contract = Contract::load();
    let mut references = Vec::new();
    collect_references(&document, &mut references);
    assert!(references.len() > 40);
    for reference in references {
        if let Some(pointer) = reference.strip_prefix('#') {
            assert!(
                document.pointer(pointer).is_some(),
                "{reference} does not resolve"
            );
        } else {
            let file = reference
                .strip_prefix("schemas/")
                .unwrap_or_else(|| panic!("{reference} is outside schemas/"));
            let (name, pointer) = file.split_once('#').unwrap_or((file, ""));
            let schema = contract
                .files
                .get(name)
                .unwrap_or_else(|| panic!("{reference}: no such schema file"));
            assert!(
                schema.pointer(pointer).is_some(),
                "{reference} does not resolve"
            );
            contract.validator(file);
        }
    }
    // Every operation's channel and messages belong together.
    for (name, operation) in document["operations"].as_object().unwrap() {
        let channel = operation["channel"]["$ref"].as_str().unwrap();
        for message in operation["messages"].as_array().into_iter().flatten() {
            let message = message["$ref"].as_str().unwrap();
            assert!(
                message.starts_with(&format!("{channel}/messages/")),
                "{name}: {message} is not a message of {channel}"
            );
        }
    }
}

fn collect_references(value: &Value, references: &mut Vec<String>) {
    match value {
        Value::Object(entries) => {
            for (key, value) in entries {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => references.push(reference.clone()),
                    _ => collect_references(value, references),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_references(item, references);
            }
        }
        _ => {}
    }
}

#[test]
fn every_schema_compiles_and_the_vectors_match_their_schemas() {
    let contract = Contract::load();
    for name in contract.files.keys() {
        contract.validator(name);
    }
    let read = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(proto_dir().join("vectors").join(name)).unwrap(),
        )
        .unwrap()
    };

    // The signing vectors: the payload is a command, the envelope an envelope; each case's
    // envelope matches the schema exactly when only its signature can be wrong.
    let signing = read("signing.json");
    let payload: Value = serde_json::from_str(signing["payload"].as_str().unwrap()).unwrap();
    contract.check("command.json", &payload);
    let envelope: Value = serde_json::from_str(signing["envelope_json"].as_str().unwrap()).unwrap();
    contract.check("envelope.json", &envelope);
    for case in signing["cases"].as_array().unwrap() {
        let envelope: Value =
            serde_json::from_str(case["envelope_json"].as_str().unwrap()).unwrap();
        // Only the signature check can refuse a well-formed envelope; the schema refuses every
        // other defect of the envelope itself.
        let structural = matches!(
            case["expected"].as_str().unwrap(),
            "malformed_envelope" | "signature_count" | "wrong_payload_type" | "bad_base64"
        );
        let fits = contract.matches("envelope.json", &envelope);
        if case["expected"] == "ok" || structural {
            assert_eq!(fits, !structural, "{}", case["description"]);
        }
    }

    // Receipts and checkpoints.
    let receipt = read("checkpoint-receipt.json");
    contract.check("receipt.json", &receipt["receipt"]);
    contract.check(
        "receipt.json",
        &serde_json::from_str(receipt["receipt_json"].as_str().unwrap()).unwrap(),
    );
    contract.check("checkpoint.json", &receipt["newer_checkpoint"]);
    assert!(!contract.matches(
        "checkpoint.json",
        &json!(
            receipt["newer_checkpoint"]
                .as_str()
                .unwrap()
                .replace("\n\n", "\n")
        )
    ));

    // The rule vectors' electorates and answers.
    let rules = read("rules.json");
    for electorate in rules["electorates"].as_object().unwrap().values() {
        contract.check("common.json#/$defs/electorate", electorate);
    }
    for preset in rules["presets"].as_array().unwrap() {
        contract.check("common.json#/$defs/preset", &preset["preset"]);
        contract.check("common.json#/$defs/presetParams", &preset["params"]);
        for case in preset["cases"].as_array().unwrap() {
            contract.check("common.json#/$defs/answers", &case["answers"]);
            contract.check("common.json#/$defs/outcome", &case["outcome"]);
        }
    }

    // Strictness: unknown fields and bad ids are refused by the schemas as by the code.
    let mut vote = payload.clone();
    vote["extra"] = json!(1);
    assert!(!contract.matches("command.json", &vote));
    for (field, bad) in [
        ("choice", json!("maybe")),
        ("actor", json!("de-by")),
        ("type", json!("CastBallot")),
        ("proposal_sha256", json!("00")),
        ("command_id", json!(7)),
        ("issued_at", json!("yesterday")),
    ] {
        let mut vote = payload.clone();
        vote[field] = bad;
        assert!(!contract.matches("command.json", &vote), "{field}");
        assert!(
            umlauf_domain::Command::from_value(vote).is_err(),
            "{field}: the code accepts what the schema refuses"
        );
    }
}

// ---- error codes -------------------------------------------------------------------------------

/// The string literals in the body of the function whose signature starts with `signature`.
fn literals_of(source: &str, signature: &str) -> BTreeSet<String> {
    let start = source
        .find(signature)
        .unwrap_or_else(|| panic!("no {signature}"));
    let body_start = start + source[start..].find('{').unwrap();
    let mut depth = 0;
    let mut end = body_start;
    for (offset, character) in source[body_start..].char_indices() {
        match character {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = body_start + offset;
                    break;
                }
            }
            _ => {}
        }
    }
    source[body_start..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|text| !text.is_empty() && text.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_owned)
        .collect()
}

fn crate_source(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates")
            .join(path),
    )
    .unwrap()
}

#[test]
fn every_error_code_the_service_can_return_is_in_the_error_schema() {
    let contract = Contract::load();
    let in_schema = contract.error_codes();
    let mut returned: BTreeMap<String, &str> = BTreeMap::new();

    // The server's own codes, and those it passes on from the domain, the proof crate and
    // the store (umlauf-server/src/error.rs, RequestError::code).
    for code in literals_of(
        &crate_source("umlauf-server/src/error.rs"),
        "pub fn code(&self)",
    ) {
        returned.insert(code, "umlauf-server RequestError::code");
    }
    // Every DomainError code but `invalid_event`, which the server reports as `internal`.
    for code in literals_of(
        &crate_source("umlauf-domain/src/error.rs"),
        "pub fn code(&self)",
    ) {
        if code != "invalid_event" {
            returned.insert(code, "umlauf-domain DomainError::code");
        }
    }
    // Every ProofError code: the server passes each on.
    for code in literals_of(
        &crate_source("umlauf-proof/src/error.rs"),
        "pub fn code(&self)",
    ) {
        returned.insert(code, "umlauf-proof ProofError::code");
    }
    // The StoreError codes the server passes on (the variants of the arm that answers
    // `self.store_code()`); every other store error is `busy` or `internal`.
    let server = crate_source("umlauf-server/src/error.rs");
    let server_code = &server[server.find("pub fn code(&self)").unwrap()..];
    let passed_on = &server_code[..server_code.find("=> self.store_code()").unwrap()];
    let passed_on = &passed_on[passed_on.rfind("Self::Store(").unwrap()..];
    let store = crate_source("umlauf-store/src/error.rs");
    let store_code = &store[store.find("pub fn code(&self)").unwrap()..];
    let mut store_codes = 0;
    for variant in passed_on.split("StoreError::").skip(1) {
        let variant: String = variant
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let arm = store_code
            .lines()
            .find(|line| {
                line.trim_start()
                    .strip_prefix("Self::")
                    .is_some_and(|rest| {
                        rest.starts_with(&format!("{variant} "))
                            || rest.starts_with(&format!("{variant}("))
                    })
            })
            .unwrap_or_else(|| panic!("StoreError::code has no arm for {variant}"));
        let code = arm.split('"').nth(1).unwrap();
        returned.insert(code.to_owned(), "umlauf-store StoreError::code");
        store_codes += 1;
    }
    assert!(store_codes >= 2, "{passed_on}");
    // Codes written directly into error replies by the service and the NATS layer.
    for directory in ["umlauf-server/src", "umlauf-nats/src"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates")
            .join(directory);
        for entry in std::fs::read_dir(path).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            // The code outside the unit tests.
            let source = text.split("#[cfg(test)]").next().unwrap();
            for (at, _) in source.match_indices("ErrorReply::new(") {
                let arguments: Vec<&str> = source[at..].splitn(3, ',').collect();
                let code = arguments.get(1).map_or("", |argument| argument.trim());
                if code.starts_with('"') {
                    returned.insert(code.trim_matches('"').to_owned(), directory);
                }
            }
        }
    }
    assert!(returned.len() > 40, "{returned:?}");
    let missing: Vec<String> = returned
        .iter()
        .filter(|(code, _)| !in_schema.contains(*code))
        .map(|(code, source)| format!("{code} (from {source})"))
        .collect();
    assert!(
        missing.is_empty(),
        "error.json lacks codes the service can return: {missing:?}"
    );
    // Every code the README's table lists is in the schema too.
    let readme = std::fs::read_to_string(proto_dir().join("README.md")).unwrap();
    let table = readme
        .split("### Error codes")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .nth(1)
        .unwrap();
    for code in table.split('`').skip(1).step_by(2) {
        assert!(in_schema.contains(code), "README lists {code}");
    }
}

// ---- the Python client -------------------------------------------------------------------------

/// A virtualenv under `target/` with the client's pinned requirements, made once.
fn python_environment() -> PathBuf {
    let client = proto_dir().join("examples/python");
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/proto-python-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let status = Process::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 must be installed for the Python client's test");
        assert!(status.success(), "python3 -m venv failed");
    }
    let output = Process::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(client.join("requirements.txt"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pip install of proto/examples/python/requirements.txt failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_signs_like_the_vectors_and_its_vote_is_recorded() {
    let contract = Contract::load();
    let client = proto_dir().join("examples/python/umlauf_client.py");
    let python = tokio::task::spawn_blocking(python_environment)
        .await
        .unwrap();

    // The signer against the signing vectors, byte for byte.
    let checked = Process::new(&python)
        .arg(&client)
        .arg("check-vectors")
        .arg(proto_dir().join("vectors/signing.json"))
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "the Python signer differs from the vectors:\n{}\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // A body whose member DE-BY holds the key the client loads.
    let world = World::start(Backend::Sqlite).await;
    world.constitute().await;
    let circulation = world.open("it-planungsrat-resolution", in_a_week()).await;
    let directory = tempfile::tempdir().unwrap();
    let key_file = directory.path().join("DE-BY.pem");
    std::fs::write(
        &key_file,
        umlauf_proof::keys::signing_key_to_pem(&signing_key("DE-BY")),
    )
    .unwrap();
    let nats_url = if world.nats_url.contains("://") {
        world.nats_url.clone()
    } else {
        format!("nats://{}", world.nats_url)
    };
    let mut run = tokio::process::Command::new(&python);
    run.arg(&client)
        .args(["vote", "--key"])
        .arg(&key_file)
        .args(["--actor", "DE-BY", "--body", BODY, "--choice", "yes"])
        .args(["--circulation", &circulation.to_string()])
        .args(["--proposal-sha256", &proposal_digest()])
        .args(["--statement", "Bayern stimmt zu."])
        .args(["--nats", &nats_url, "--subject-root", &world.names.0]);
    let output = tokio::time::timeout(PATIENCE * 2, run.output())
        .await
        .expect("the Python client finishes")
        .unwrap();
    assert!(
        output.status.success(),
        "the Python client failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let reply: Value = serde_json::from_slice(&output.stdout).unwrap();
    contract.check("submit-reply.json", &reply);

    // The vote is in the log, as the client's command.
    let records = world
        .server()
        .store()
        .read_stream(&StreamId::Circulation(circulation))
        .await
        .unwrap();
    let cast = records
        .iter()
        .find(|record| record.record.event_type == "VoteCast")
        .expect("the Python client's vote is in the log");
    assert_eq!(cast.record.data["member"], "DE-BY");
    assert_eq!(cast.record.data["choice"], "yes");
    assert_eq!(cast.record.data["statement"], "Bayern stimmt zu.");
    assert_eq!(
        cast.record.command_id.map(|id| id.to_string()),
        reply["command_id"].as_str().map(str::to_owned)
    );
    assert_eq!(
        STANDARD
            .decode(reply["records"][0].as_str().unwrap())
            .unwrap(),
        cast.bytes
    );
    let status = world.status(circulation).await;
    assert_eq!(
        serde_json::to_value(&status.votes).unwrap()["DE-BY"]["choice"],
        "yes"
    );
}
