//! What every end-to-end test stands on: a database of its own (a SQLite file, or a PostgreSQL
//! schema), NATS (the shared server on 127.0.0.1:4222, or a `nats-server` of the test's own), a
//! deployment with its own subject root and stream names, the real service in this process, and
//! an IT-Planungsrat whose secretariat and members sign real commands with real keys.
//!
//! A missing PostgreSQL or NATS fails the test with a message saying what it needs.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::{AssertSqlSafe, Connection as _};
use umlauf_domain::ids::{BodyId, CirculationId, PublicKey};
use umlauf_domain::read_model::CirculationStatus;
use umlauf_domain::{Record, StreamId};
use umlauf_nats::Subjects;
use umlauf_nats::relay::RelayStatus;
use umlauf_nats::wire::{CirculationQuery, DecisionMessage, ErrorReply, SubmitReply};
use umlauf_proof::SigningKey;
use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE};
use umlauf_proof::keys::signing_key_from_seed;
use umlauf_server::{Config, Server};
use umlauf_store::{Store, StoredRecord};

/// Where PostgreSQL is expected unless `UMLAUF_TEST_DATABASE_URL` says otherwise.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The shared NATS server with JetStream that `tests/services` starts.
pub(crate) const SHARED_NATS: &str = "127.0.0.1:4222";
/// How long a test waits for anything before it fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

// ---- databases -----------------------------------------------------------------------------------

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own for one test: a SQLite file in a temporary directory, or a fresh
/// PostgreSQL schema dropped when the test ends (also when it fails).
#[derive(Debug)]
pub(crate) struct TestDb {
    pub(crate) url: String,
    pub(crate) schema: Option<String>,
    directory: tempfile::TempDir,
}

fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .get(..6)
            .unwrap_or("0")
    )
}

impl TestDb {
    pub(crate) async fn new(backend: Backend) -> Self {
        let directory = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", directory.path().join("umlauf.db").display()),
                schema: None,
                directory,
            },
            Backend::Postgres => {
                let url = std::env::var("UMLAUF_TEST_DATABASE_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                if let Err(error) = sqlx::PgConnection::connect(&url).await {
                    panic!(
                        "these tests need PostgreSQL at {url} (set UMLAUF_TEST_DATABASE_URL, or \
                         run tests/services): {error}"
                    );
                }
                Self {
                    url,
                    schema: Some(unique("umlauf_e2e_")),
                    directory,
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        let url = self.url.clone();
        // Drop may run inside the test's runtime: drop the schema on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut connection = sqlx::PgConnection::connect(&url).await.ok()?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&mut connection)
                .await
                .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop a test schema");
        }
    }
}

// ---- NATS ---------------------------------------------------------------------------------------

/// Fails the test unless the shared NATS server answers.
pub(crate) fn require_shared_nats() -> String {
    if std::net::TcpStream::connect(SHARED_NATS).is_err() {
        panic!("these tests need NATS with JetStream on {SHARED_NATS}: run tests/services");
    }
    format!("nats://{SHARED_NATS}")
}

/// A `nats-server` of the test's own, on a free port, killed when dropped.
#[derive(Debug)]
pub(crate) struct OwnNats {
    pub(crate) port: u16,
    store_dir: tempfile::TempDir,
    child: Option<Child>,
}

const NATS_SERVER: &str = "/usr/sbin/nats-server";

impl OwnNats {
    pub(crate) fn start() -> Self {
        Self::start_configured("")
    }

    /// A server whose configuration file also holds `settings` (e.g. `max_payload: 65536`).
    pub(crate) fn start_configured(settings: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap();
        let nats = Self {
            port,
            store_dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        std::fs::write(nats.config_file(), settings).unwrap();
        let mut nats = nats;
        nats.resume();
        nats
    }

    fn config_file(&self) -> std::path::PathBuf {
        self.store_dir.path().join("nats-server.conf")
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port and storage.
    pub(crate) fn resume(&mut self) {
        let child = Process::new(NATS_SERVER)
            .arg("-c")
            .arg(self.config_file())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store_dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("this test starts its own NATS server and needs {NATS_SERVER}: {error}")
            });
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < PATIENCE, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- the deployment --------------------------------------------------------------------------------

/// Names no other test uses: a subject root and a stream prefix.
pub(crate) fn deployment_names() -> (String, String) {
    let root = unique("e2e");
    let prefix = root.to_uppercase();
    (root, prefix)
}

/// The configuration of a service for a test: its database, NATS, names, the IT-Planungsrat's
/// genesis key, and short intervals so nothing waits long.
pub(crate) fn config(db: &TestDb, nats_url: &str, names: &(String, String)) -> Config {
    Config {
        database_url: db.url.clone(),
        database_schema: db.schema.clone(),
        nats_url: nats_url.to_owned(),
        log_key_file: db.directory.path().join("log-key.pem"),
        genesis_keys: vec![public_key("genesis")],
        subject_root: names.0.clone(),
        stream_prefix: names.1.clone(),
        deadline_check_ms: 100,
        relay_poll_ms: 100,
        ops_address: "127.0.0.1:0".into(),
        ..Config::default()
    }
}

/// A test's world: a database, a running service, and a NATS client of the test's own.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) db: TestDb,
    pub(crate) nats_url: String,
    pub(crate) names: (String, String),
    pub(crate) server: Option<Server>,
    pub(crate) client: async_nats::Client,
    pub(crate) subjects: Subjects,
}

impl World {
    /// A service on the shared NATS and a database of `backend`.
    pub(crate) async fn start(backend: Backend) -> Self {
        let nats_url = require_shared_nats();
        Self::start_with(backend, &nats_url, |_| {}).await
    }

    /// A service on `nats_url`, its configuration adjusted by `adjust`.
    pub(crate) async fn start_with(
        backend: Backend,
        nats_url: &str,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let db = TestDb::new(backend).await;
        let names = deployment_names();
        let mut config = config(&db, nats_url, &names);
        adjust(&mut config);
        let server = Server::start(config).await.unwrap();
        Self::attach(db, nats_url, names, server).await
    }

    /// A world around a service the test started itself.
    pub(crate) async fn attach(
        db: TestDb,
        nats_url: &str,
        names: (String, String),
        server: Server,
    ) -> Self {
        let client = connect(nats_url).await;
        let subjects = Subjects::new(&names.0, &names.1);
        Self {
            db,
            nats_url: nats_url.to_owned(),
            names,
            server: Some(server),
            client,
            subjects,
        }
    }

    pub(crate) fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// Waits until the service answers on this world's subjects (after NATS came back).
    pub(crate) async fn wait_for_service(&self) {
        let subject = self.subjects.query("body");
        let request = serde_json::to_vec(&json!({"body": BODY})).unwrap();
        eventually("the service to answer", || {
            let request = request.clone();
            let subject = subject.clone();
            async move {
                let answer = tokio::time::timeout(
                    Duration::from_millis(500),
                    self.client.request(subject, request.into()),
                )
                .await;
                matches!(answer, Ok(Ok(_))).then_some(())
            }
        })
        .await;
    }

    /// Submits an envelope's bytes: the reply, or the refusal from the error headers.
    pub(crate) async fn submit_bytes(&self, bytes: Vec<u8>) -> Result<SubmitReply, ErrorReply> {
        let message = request(&self.client, self.subjects.submit(), bytes).await;
        crate::contract::check_reply(&message, "submit-reply.json");
        match ErrorReply::from_headers(message.headers.as_ref()) {
            Some(error) => Err(error),
            None => Ok(serde_json::from_slice(&message.payload).unwrap()),
        }
    }

    /// Signs and submits a command; panics on a refusal.
    pub(crate) async fn accept(&self, signer: &str, command: &Value) -> SubmitReply {
        crate::contract::contract().check("command.json", command);
        self.submit_bytes(sign(signer, command))
            .await
            .unwrap_or_else(|error| panic!("{} refused: {error}", command["type"]))
    }

    /// Signs and submits a command, expecting a refusal with `code`, and checks that nothing was
    /// written.
    pub(crate) async fn refuse(&self, signer: &str, command: &Value, code: &str) {
        self.refuse_bytes(sign(signer, command), code).await;
    }

    /// Submits bytes expecting a refusal with `code`, and checks that nothing was written.
    pub(crate) async fn refuse_bytes(&self, bytes: Vec<u8>, code: &str) {
        let before = self.server().store().head().await.unwrap().position;
        match self.submit_bytes(bytes).await {
            Ok(reply) => panic!("expected {code}, accepted: {reply:?}"),
            Err(error) => assert_eq!(error.code, code, "{error}"),
        }
        let after = self.server().store().head().await.unwrap().position;
        assert_eq!(before, after, "a refused command ({code}) wrote records");
    }

    /// Runs a query.
    pub(crate) async fn query<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        request: &impl serde::Serialize,
    ) -> Result<T, ErrorReply> {
        let message = self::request(
            &self.client,
            self.subjects.query(name),
            serde_json::to_vec(request).unwrap(),
        )
        .await;
        crate::contract::check_reply(&message, &format!("queries.json#/$defs/{name}Reply"));
        match ErrorReply::from_headers(message.headers.as_ref()) {
            Some(error) => Err(error),
            None => Ok(serde_json::from_slice(&message.payload).unwrap()),
        }
    }

    pub(crate) async fn status(&self, circulation: CirculationId) -> CirculationStatus {
        self.query("circulation", &CirculationQuery { circulation })
            .await
            .unwrap()
    }

    /// The decision of a circulation, as a subscriber of the decisions stream receives it.
    pub(crate) async fn decision(&self, circulation: CirculationId) -> DecisionMessage {
        self.decision_on(circulation, None).await
    }

    /// The decision of a circulation from a consumer created now on the decisions stream,
    /// durable if `durable` names it: it gets the decision also if it was published before.
    pub(crate) async fn decision_on(
        &self,
        circulation: CirculationId,
        durable: Option<&str>,
    ) -> DecisionMessage {
        decision_on(&self.client, &self.subjects, circulation, durable).await
    }

    /// Waits until the relay has published every record of the log.
    pub(crate) async fn relayed(&self) -> u64 {
        let head = self.server().store().head().await.unwrap().position;
        let mut status = self.server().relay_status();
        let reached = tokio::time::timeout(
            PATIENCE,
            status.wait_for(|status: &RelayStatus| status.published >= head),
        )
        .await
        .map(|result| result.map(|_| ()));
        assert!(
            matches!(reached, Ok(Ok(()))),
            "the relay did not publish up to {head}: {:?}",
            *status.borrow()
        );
        head
    }

    /// Checks the log stream against the log: one message per record, stream sequence =
    /// position, the same bytes, on the record's subject, and nothing beyond the head.
    pub(crate) async fn check_log_stream(&self) -> Vec<StoredRecord> {
        let head = self.relayed().await;
        check_log_stream(&self.client, &self.subjects, self.server().store(), head).await
    }
}

/// The decision of a circulation from a consumer created now on the decisions stream of
/// `subjects`, durable if `durable` names it.
pub(crate) async fn decision_on(
    client: &async_nats::Client,
    subjects: &Subjects,
    circulation: CirculationId,
    durable: Option<&str>,
) -> DecisionMessage {
    let jetstream = jetstream::new(client.clone());
    let stream = jetstream
        .get_stream(subjects.decisions_stream())
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: durable.map(str::to_owned),
            filter_subject: subjects.decision(&body_id(), &circulation),
            ..Default::default()
        })
        .await
        .unwrap();
    let received = async {
        let mut messages = consumer.messages().await.unwrap();
        let message = messages.next().await.unwrap().unwrap();
        message.ack().await.unwrap();
        let value: Value = serde_json::from_slice(&message.payload).unwrap();
        crate::contract::contract().check("decision.json", &value);
        serde_json::from_slice::<DecisionMessage>(&message.payload).unwrap()
    };
    tokio::time::timeout(PATIENCE, received)
        .await
        .unwrap_or_else(|_| panic!("no decision for {circulation}"))
}

/// Waits until a relay has published up to `head` and found nothing more to do (decisions
/// included).
pub(crate) async fn caught_up(status: &mut tokio::sync::watch::Receiver<RelayStatus>, head: u64) {
    let reached = tokio::time::timeout(
        PATIENCE,
        status.wait_for(|status: &RelayStatus| {
            status.published >= head && status.state == umlauf_nats::relay::RelayState::CaughtUp
        }),
    )
    .await
    .map(|result| result.map(|_| ()));
    assert!(
        matches!(reached, Ok(Ok(()))),
        "the relay did not catch up with {head}: {:?}",
        *status.borrow()
    );
}

/// The tree sizes of the checkpoints stream's messages, in stream order, once its newest
/// checkpoint covers `head`; each message is checked: a note signed by `log_key`, on the
/// checkpoints subject, with message id = its size.
pub(crate) async fn checkpoint_sizes(
    client: &async_nats::Client,
    subjects: &Subjects,
    log_key: &umlauf_proof::note::NoteVerifier,
    head: u64,
) -> Vec<u64> {
    let jetstream = jetstream::new(client.clone());
    let stream = jetstream
        .get_stream(subjects.checkpoints_stream())
        .await
        .unwrap();
    let size_of = |message: &async_nats::jetstream::message::StreamMessage| {
        let note = std::str::from_utf8(&message.payload).unwrap();
        let size = umlauf_proof::checkpoint::verify(note, log_key)
            .unwrap()
            .size;
        assert_eq!(message.subject.as_str(), subjects.checkpoints());
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .unwrap()
            .as_str();
        assert_eq!(id, size.to_string());
        size
    };
    let last = eventually("the checkpoint of the head", || {
        let mut stream = stream.clone();
        async move {
            let last = stream.info().await.ok()?.state.last_sequence;
            let message = stream.get_raw_message(last).await.ok()?;
            (size_of(&message) == head).then_some(last)
        }
    })
    .await;
    let mut sizes = Vec::new();
    for sequence in 1..=last {
        sizes.push(size_of(&stream.get_raw_message(sequence).await.unwrap()));
    }
    assert!(
        sizes.windows(2).all(|pair| pair[0] < pair[1]),
        "checkpoint sizes do not ascend: {sizes:?}"
    );
    sizes
}

/// Checks the log stream of `subjects` against the log in `store` up to `head`.
pub(crate) async fn check_log_stream(
    client: &async_nats::Client,
    subjects: &Subjects,
    store: &Store,
    head: u64,
) -> Vec<StoredRecord> {
    let records: Vec<StoredRecord> = store.read_from(1).try_collect().await.unwrap();
    assert_eq!(u64::try_from(records.len()).unwrap(), head);
    let jetstream = jetstream::new(client.clone());
    let mut stream = jetstream.get_stream(subjects.log_stream()).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    assert_eq!(
        last, head,
        "the log stream's last sequence is not the log's head"
    );
    for (position, record) in (1u64..).zip(&records) {
        assert_eq!(record.position(), position, "the log has a gap");
        let message = stream.get_raw_message(position).await.unwrap();
        assert_eq!(message.sequence, position);
        assert_eq!(
            message.payload.as_ref(),
            record.bytes.as_slice(),
            "the message at {position} is not the record's bytes"
        );
        assert_eq!(
            message.subject.as_str(),
            subjects.log_record(&record.record.stream)
        );
    }
    records
}

/// How long one request waits for its reply: longer than [`PATIENCE`], because a loaded machine
/// running many tests at once answers slowly, not wrongly.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a request is sent before a timeout or a missing responder fails the test.
const REQUEST_ATTEMPTS: u32 = 4;

/// Sends a request and waits for its reply. A timeout or "no responders" (a loaded machine, a
/// service reconnecting) sends the same bytes again: commands are idempotent by their command id
/// (the same envelope again gets the first result) and queries change nothing. Any other error,
/// and the last attempt's, fails the test with what happened.
pub(crate) async fn request(
    client: &async_nats::Client,
    subject: String,
    payload: Vec<u8>,
) -> async_nats::Message {
    use async_nats::RequestErrorKind;
    let mut attempt = 1;
    loop {
        match client
            .request(subject.clone(), payload.clone().into())
            .await
        {
            Ok(message) => return message,
            Err(error)
                if attempt < REQUEST_ATTEMPTS
                    && matches!(
                        error.kind(),
                        RequestErrorKind::TimedOut | RequestErrorKind::NoResponders
                    ) =>
            {
                eprintln!("request on {subject} (attempt {attempt}): {error}; sending it again");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => {
                panic!("request on {subject} failed after {attempt} attempt(s): {error}")
            }
        }
    }
}

pub(crate) async fn connect(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .connect(url)
        .await
        .unwrap_or_else(|error| panic!("these tests need NATS at {url}: {error}"))
}

/// Polls `check` every 20 ms until it gives a value, for at most [`PATIENCE`].
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The streams of a test's deployment go when the test ends (the shared NATS server keeps
/// everything else); deletion is allowed on streams that refuse deleting messages.
impl Drop for World {
    fn drop(&mut self) {
        delete_streams(&self.nats_url, &self.subjects);
    }
}

/// Deletes the streams of a deployment (the shared NATS server keeps everything else), from a
/// thread of its own so that it also works in a `Drop` inside a runtime.
pub(crate) fn delete_streams(nats_url: &str, subjects: &Subjects) {
    let url = nats_url.to_owned();
    let subjects = subjects.clone();
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let Ok(client) = async_nats::connect(url.as_str()).await else {
                return;
            };
            let jetstream = jetstream::new(client);
            for stream in [
                subjects.log_stream(),
                subjects.decisions_stream(),
                subjects.checkpoints_stream(),
                &subjects.reminders_stream(),
            ] {
                let _ = jetstream.delete_stream(stream).await;
            }
        });
    })
    .join();
}

// ---- the IT-Planungsrat ------------------------------------------------------------------------

pub(crate) const BODY: &str = "it-planungsrat";
pub(crate) const LAENDER: [&str; 16] = [
    "DE-BB", "DE-BE", "DE-BW", "DE-BY", "DE-HB", "DE-HE", "DE-HH", "DE-MV", "DE-NI", "DE-NW",
    "DE-RP", "DE-SH", "DE-SL", "DE-SN", "DE-ST", "DE-TH",
];
/// Königstein 2016 in units of 0.00001 %, in the order of `LAENDER`.
const KOENIGSTEIN: [u64; 16] = [
    303_655, 508_324, 1_296_662, 1_553_327, 95_331, 739_885, 255_752, 201_240, 933_138, 2_114_424,
    483_089, 339_074, 121_111, 505_577, 279_941, 269_470,
];
/// The eleven largest Länder: 90.57 % of the Königstein key.
pub(crate) const LARGEST_ELEVEN: [&str; 11] = [
    "DE-NW", "DE-BY", "DE-BW", "DE-NI", "DE-HE", "DE-BE", "DE-SN", "DE-RP", "DE-SH", "DE-BB",
    "DE-ST",
];
pub(crate) const PROPOSAL: &str = "Der IT-Planungsrat beschließt den Standard XÖV 3.0.";

pub(crate) fn body_id() -> BodyId {
    BodyId::parse(BODY).unwrap()
}

/// The signing key of an actor (or any label), from a seed derived from its name.
pub(crate) fn signing_key(label: &str) -> SigningKey {
    signing_key_from_seed(Sha256::digest(format!("umlauf e2e key {label}")).into())
}

pub(crate) fn public_key(label: &str) -> String {
    PublicKey(signing_key(label).verifying_key().to_bytes()).to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) fn proposal_digest() -> String {
    hex(&Sha256::digest(PROPOSAL))
}

/// Signs a command's JSON with the key of `signer`: the envelope's bytes.
pub(crate) fn sign(signer: &str, command: &Value) -> Vec<u8> {
    let payload = serde_json::to_vec(command).unwrap();
    dsse::sign(COMMAND_PAYLOAD_TYPE, &payload, &signing_key(signer))
        .to_json()
        .into_bytes()
}

/// A command from its type, actor and own fields, issued now with a fresh id.
pub(crate) fn command(kind: &str, actor: &str, fields: Value) -> Value {
    let mut value = json!({
        "type": kind,
        "command_id": uuid::Uuid::new_v4(),
        "body": BODY,
        "actor": actor,
        "issued_at": Utc::now(),
    });
    for (name, field) in fields.as_object().unwrap() {
        value[name] = field.clone();
    }
    value
}

pub(crate) fn constitution() -> Value {
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
            .map(|land| json!({"holder": land, "public_key": public_key(land), "label": "CIO"})),
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

pub(crate) fn new_circulation() -> CirculationId {
    CirculationId(uuid::Uuid::new_v4())
}

pub(crate) fn open(circulation: CirculationId, preset: &str, deadline: DateTime<Utc>) -> Value {
    command(
        "OpenCirculation",
        "secretariat",
        json!({
            "circulation": circulation,
            "title": "Beschluss 2026/01: XÖV 3.0",
            "proposal": {"text": PROPOSAL, "sha256": proposal_digest()},
            "rule": {"kind": "preset", "preset": preset},
            "deadline": deadline,
        }),
    )
}

pub(crate) fn vote(circulation: CirculationId, member: &str, choice: &str) -> Value {
    command(
        "CastVote",
        member,
        json!({"circulation": circulation, "choice": choice, "proposal_sha256": proposal_digest()}),
    )
}

pub(crate) fn object(circulation: CirculationId, member: &str) -> Value {
    command(
        "ObjectToProcedure",
        member,
        json!({"circulation": circulation, "reason": "Das gehört in die Sitzung."}),
    )
}

pub(crate) fn withdraw(circulation: CirculationId) -> Value {
    command(
        "WithdrawCirculation",
        "secretariat",
        json!({"circulation": circulation, "reason": "Die Vorlage wird überarbeitet."}),
    )
}

/// A deadline `seconds` from now.
pub(crate) fn in_seconds(seconds: i64) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(seconds)
}

/// A deadline far ahead.
pub(crate) fn in_a_week() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::days(7)
}

impl World {
    /// Constitutes the IT-Planungsrat.
    pub(crate) async fn constitute(&self) {
        self.accept("genesis", &constitution()).await;
    }

    /// Opens a circulation with `preset` and `deadline`.
    pub(crate) async fn open(&self, preset: &str, deadline: DateTime<Utc>) -> CirculationId {
        let circulation = new_circulation();
        self.accept("secretariat", &open(circulation, preset, deadline))
            .await;
        circulation
    }

    /// Each member votes `choice`, in turn; the replies.
    pub(crate) async fn votes(
        &self,
        circulation: CirculationId,
        members: &[&str],
        choice: &str,
    ) -> Vec<SubmitReply> {
        let mut replies = Vec::new();
        for member in members {
            replies.push(
                self.accept(member, &vote(circulation, member, choice))
                    .await,
            );
        }
        replies
    }
}

/// The records of a reply.
pub(crate) fn records(reply: &SubmitReply) -> Vec<Record> {
    reply
        .record_bytes()
        .unwrap()
        .iter()
        .map(|bytes| Record::from_bytes(bytes).unwrap())
        .collect()
}

/// The event types of a reply's records.
pub(crate) fn types(reply: &SubmitReply) -> Vec<String> {
    records(reply)
        .into_iter()
        .map(|record| record.event_type)
        .collect()
}

/// The `CirculationClosed` records of a circulation in the log.
pub(crate) async fn closes(store: &Store, circulation: CirculationId) -> Vec<StoredRecord> {
    store
        .read_stream(&StreamId::Circulation(circulation))
        .await
        .unwrap()
        .into_iter()
        .filter(|record| record.record.event_type == "CirculationClosed")
        .collect()
}

/// Every member's final answer in a decision, as text.
pub(crate) fn answers(decision: &DecisionMessage) -> BTreeMap<String, String> {
    decision
        .answers
        .iter()
        .map(|(member, answer)| {
            (
                member.to_string(),
                serde_json::to_value(answer)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

/// A decision's result as text: `adopted`, `rejected`, `failed`, `withdrawn`.
pub(crate) fn result(decision: &DecisionMessage) -> String {
    serde_json::to_value(decision.decision).unwrap()["result"]
        .as_str()
        .unwrap()
        .to_owned()
}
