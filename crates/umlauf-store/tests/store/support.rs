//! What every test stands on: a fresh database per test on either backend, and a scenario that
//! makes real events with the domain's own `decide` from real signed commands.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use futures_util::FutureExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Connection};
use umlauf_domain::body::{self, Body};
use umlauf_domain::circulation::{self, Circulation};
use umlauf_domain::ids::{Actor, BodyId, CirculationId, PublicKey};
use umlauf_domain::{Command, Event, State, StreamId, decide};
use umlauf_proof::SigningKey;
use umlauf_proof::checkpoint;
use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE};
use umlauf_proof::keys::signing_key_from_seed;
use umlauf_proof::merkle::MemoryTree;
use umlauf_proof::note::NoteVerifier;
use umlauf_store::{
    Append, Appended, Cause, CheckpointSigner, Projection, Store, StoreError, StoreOptions,
};

/// Where PostgreSQL is expected unless `UMLAUF_TEST_DATABASE_URL` says otherwise.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Defines, for each named `async fn name(db: TestDb)`, a module `name` with one test per
/// backend: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::support::run($crate::support::Backend::Sqlite, super::$name).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::support::run($crate::support::Backend::Postgres, super::$name).await;
                }
            }
        )*
    };
}

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own for one test: a SQLite file in a temporary directory, or a fresh
/// PostgreSQL schema that is dropped when the test ends.
#[derive(Debug)]
pub(crate) struct TestDb {
    pub(crate) backend: Backend,
    pub(crate) url: String,
    pub(crate) schema: Option<String>,
    _directory: Option<tempfile::TempDir>,
}

pub(crate) fn postgres_url() -> String {
    std::env::var("UMLAUF_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// A schema name no other test (in this or another process) uses.
fn unique_schema() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!(
        "umlauf_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos.rem_euclid(1_000_000_000)
    )
}

impl TestDb {
    pub(crate) async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let directory = tempfile::tempdir().unwrap();
                // A directory that does not exist yet: the store creates it.
                let path: PathBuf = directory.path().join("data").join("umlauf.db");
                Self {
                    backend,
                    url: format!("sqlite://{}", path.display()),
                    schema: None,
                    _directory: Some(directory),
                }
            }
            Backend::Postgres => {
                let url = postgres_url();
                if let Err(error) = sqlx::PgConnection::connect(&url).await {
                    panic!(
                        "these tests need PostgreSQL at {url} (set UMLAUF_TEST_DATABASE_URL to \
                         another URL, or run tests/services): {error}"
                    );
                }
                Self {
                    backend,
                    url,
                    schema: Some(unique_schema()),
                    _directory: None,
                }
            }
        }
    }

    /// A database the crash test's child process was told about.
    pub(crate) fn existing(backend: Backend, url: String, schema: Option<String>) -> Self {
        Self {
            backend,
            url,
            schema,
            _directory: None,
        }
    }

    /// Options without a checkpoint signer.
    pub(crate) fn unsigned_options(&self) -> StoreOptions {
        let mut options = StoreOptions::new(self.url.clone());
        options.schema.clone_from(&self.schema);
        options
    }

    /// Options with the test log's checkpoint signer, as the service opens its store.
    pub(crate) fn options(&self) -> StoreOptions {
        self.unsigned_options().checkpoints(log_signer())
    }

    pub(crate) async fn open(&self) -> Store {
        Store::open_with(self.options()).await.unwrap()
    }

    /// Runs SQL on a connection of its own, beside the store: for what the store would never do.
    pub(crate) async fn raw(&self, sql: &str) -> Result<u64, String> {
        let message = |error: sqlx::Error| match error {
            sqlx::Error::Database(error) => error.message().to_owned(),
            other => other.to_string(),
        };
        match self.backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url).unwrap();
                let mut connection = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                let result = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                    .execute(&mut connection)
                    .await;
                result.map(|done| done.rows_affected()).map_err(message)
            }
            Backend::Postgres => {
                let mut connection = self.postgres_connection().await;
                let result = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                    .execute(&mut connection)
                    .await;
                result.map(|done| done.rows_affected()).map_err(message)
            }
        }
    }

    /// A connection of its own to the test's schema.
    pub(crate) async fn postgres_connection(&self) -> sqlx::PgConnection {
        let mut options = sqlx::postgres::PgConnectOptions::from_str(&self.url).unwrap();
        if let Some(schema) = &self.schema {
            options = options.options([("search_path", schema.as_str())]);
        }
        sqlx::PgConnection::connect_with(&options).await.unwrap()
    }

    /// Drops the test's schema (PostgreSQL); the SQLite file goes with its directory.
    pub(crate) async fn cleanup(&self) {
        if let (Backend::Postgres, Some(schema)) = (self.backend, &self.schema) {
            let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut connection)
            .await
            .unwrap();
        }
    }
}

/// Runs one test against a fresh database of `backend`, and removes the database afterwards,
/// also when the test fails.
pub(crate) async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Arc<TestDb>) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = Arc::new(TestDb::new(backend).await);
    let outcome = AssertUnwindSafe(test(Arc::clone(&db))).catch_unwind().await;
    db.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

// ---- the scenario ------------------------------------------------------------------------------

pub(crate) const BODY: &str = "test-rat";
pub(crate) const MEMBERS: [&str; 5] = ["DE", "DE-BE", "DE-BY", "DE-HH", "DE-NW"];
pub(crate) const PROPOSAL: &str =
    "Der Rat beschließt, Umlaufverfahren künftig elektronisch zu führen.";

/// The first instant of every scenario.
pub(crate) fn start() -> DateTime<Utc> {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The test log's origin.
pub(crate) const LOG_ORIGIN: &str = "umlauf.test/log";

/// The test log's checkpoint signer.
pub(crate) fn log_signer() -> CheckpointSigner {
    CheckpointSigner::new(LOG_ORIGIN.to_owned(), signing_key("log"))
}

/// The verifier of the test log's checkpoints.
pub(crate) fn log_verifier() -> NoteVerifier {
    NoteVerifier::new(LOG_ORIGIN, signing_key("log").verifying_key()).unwrap()
}

/// The signing key of an actor, made from a seed derived from its name.
pub(crate) fn signing_key(actor: &str) -> SigningKey {
    signing_key_from_seed(Sha256::digest(format!("umlauf-store test key {actor}")).into())
}

fn public_key(actor: &str) -> String {
    PublicKey(signing_key(actor).verifying_key().to_bytes()).to_string()
}

/// A body with its members and keys, and a clock and command ids for the commands that follow.
/// Events come from the domain's `decide` against state folded from the store's own records.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) store: Store,
    clock: Arc<AtomicU64>,
    next_id: Arc<AtomicU64>,
}

impl Scenario {
    /// A scenario whose body is already constituted.
    pub(crate) async fn constituted(store: Store) -> Self {
        let scenario = Self::empty(store);
        let appended = scenario.submit(&scenario.constitution()).await.unwrap();
        // The body, its members, one weight table, and a key for the secretariat and each member.
        assert_eq!(
            appended.records.len(),
            1 + MEMBERS.len() + 1 + 1 + MEMBERS.len()
        );
        scenario
    }

    /// A scenario with nothing recorded yet.
    pub(crate) fn empty(store: Store) -> Self {
        Self {
            store,
            clock: Arc::new(AtomicU64::new(0)),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// A scenario continuing a log another scenario wrote: its clock goes on after the head's
    /// recording time, and its command ids start at `first_id`.
    pub(crate) async fn continuing(store: Store, first_id: u64) -> Self {
        let head = store.head().await.unwrap();
        let elapsed = head
            .recorded_at
            .map_or(0, |at| (at - start()).num_seconds() + 1);
        Self {
            store,
            clock: Arc::new(AtomicU64::new(u64::try_from(elapsed).unwrap())),
            next_id: Arc::new(AtomicU64::new(first_id)),
        }
    }

    pub(crate) fn body_id() -> BodyId {
        BodyId::parse(BODY).unwrap()
    }

    pub(crate) fn body_stream() -> StreamId {
        StreamId::Body(Self::body_id())
    }

    /// The next recording time: one second after the previous one.
    pub(crate) fn tick(&self) -> DateTime<Utc> {
        let seconds = self.clock.fetch_add(1, Ordering::SeqCst);
        start() + Duration::seconds(i64::try_from(seconds).unwrap())
    }

    /// A fresh command id.
    pub(crate) fn command_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        uuid::Uuid::from_u128(0x0b8f_2f2e_6a8b_4c1e_9a51_0000_0000_0000 | u128::from(n)).to_string()
    }

    /// A circulation id for a number.
    pub(crate) fn circulation_id(n: u64) -> CirculationId {
        CirculationId(uuid::Uuid::from_u128(
            0x5f0c_3a86_1b7e_4d59_8a3e_0000_0000_0000 | u128::from(n),
        ))
    }

    /// A command from its type, actor and own fields.
    pub(crate) fn command(&self, kind: &str, actor: &str, fields: Value) -> Command {
        let mut value = json!({
            "type": kind,
            "command_id": self.command_id(),
            "body": BODY,
            "actor": actor,
            "issued_at": start(),
        });
        for (name, field) in fields.as_object().unwrap() {
            value[name] = field.clone();
        }
        Command::from_value(value).unwrap()
    }

    pub(crate) fn constitution(&self) -> Command {
        let members: Vec<Value> = MEMBERS
            .iter()
            .map(|member| json!({"id": member, "name": member, "kind": "voting"}))
            .collect();
        let weights: serde_json::Map<String, Value> = MEMBERS
            .iter()
            .map(|member| ((*member).to_owned(), json!(1)))
            .collect();
        let mut keys =
            vec![json!({"holder": "secretariat", "public_key": public_key("secretariat")})];
        keys.extend(MEMBERS.iter().map(
            |member| json!({"holder": member, "public_key": public_key(member), "label": "CIO"}),
        ));
        self.command(
            "ConstituteBody",
            "genesis",
            json!({
                "genesis_key": public_key("genesis"),
                "name": "Testrat",
                "groups": [],
                "members": members,
                "weight_tables": [{"table": "seats", "year": 2026, "weights": weights}],
                "presets": {},
                "keys": keys,
            }),
        )
    }

    /// Opening circulation `n` with a preset; the deadline is 14 days after the start.
    pub(crate) fn open(&self, n: u64, preset: &str) -> Command {
        self.command(
            "OpenCirculation",
            "secretariat",
            json!({
                "circulation": Self::circulation_id(n),
                "title": format!("Beschluss {n}"),
                "proposal": {"text": PROPOSAL, "sha256": hex(&Sha256::digest(PROPOSAL))},
                "rule": {"kind": "preset", "preset": preset},
                "deadline": start() + Duration::days(14),
            }),
        )
    }

    pub(crate) fn vote(&self, n: u64, member: &str, choice: &str) -> Command {
        self.command(
            "CastVote",
            member,
            json!({
                "circulation": Self::circulation_id(n),
                "choice": choice,
                "proposal_sha256": hex(&Sha256::digest(PROPOSAL)),
            }),
        )
    }

    pub(crate) fn register_key(&self, label: &str) -> Command {
        self.command(
            "RegisterKey",
            "secretariat",
            json!({"holder": "DE", "public_key": public_key(label), "label": label}),
        )
    }

    /// The signed envelope of a command, as the store keeps it.
    pub(crate) fn cause(command: &Command) -> Cause {
        let signer = match &command.actor {
            Actor::Genesis => signing_key("genesis"),
            Actor::Secretariat => signing_key("secretariat"),
            Actor::Member(member) => signing_key(member.as_str()),
        };
        let envelope = dsse::sign(COMMAND_PAYLOAD_TYPE, command.to_json().as_bytes(), &signer);
        Cause {
            command_id: command.command_id,
            envelope: serde_json::from_str(&envelope.to_json()).unwrap(),
            digest: envelope.content_digest(),
        }
    }

    /// The body as its stream in the store says.
    pub(crate) async fn body(&self) -> Body {
        Body::fold(&self.events(&Self::body_stream()).await)
    }

    async fn events(&self, stream: &StreamId) -> Vec<Event> {
        self.store
            .read_stream(stream)
            .await
            .unwrap()
            .iter()
            .map(|record| record.event().unwrap())
            .collect()
    }

    /// Decides a command against the state in the store at `now`: the append it makes.
    /// Each of `commands` decided at `now` against the store as it is, none appended.
    pub(crate) async fn decide_all_at(
        &self,
        commands: impl IntoIterator<Item = Command>,
        now: DateTime<Utc>,
    ) -> Vec<Append> {
        let mut appends = Vec::new();
        for command in commands {
            appends.push(self.decide_at(&command, now).await);
        }
        appends
    }

    pub(crate) async fn decide_at(&self, command: &Command, now: DateTime<Utc>) -> Append {
        let body = self.body().await;
        let stream = command.stream();
        let circulation = match &stream {
            StreamId::Circulation(_) => Some(Circulation::fold(&self.events(&stream).await)),
            StreamId::Body(_) => None,
        };
        let state = State {
            body: &body,
            circulation: circulation.as_ref(),
        };
        let events = decide(state, command, now)
            .unwrap_or_else(|error| panic!("{} refused: {error}", command.type_name()));
        let (expected_version, projection) = match circulation {
            Some(circulation) => (
                circulation.version,
                Projection::of_circulation(&events.iter().fold(circulation, circulation::evolve)),
            ),
            None => (
                body.version,
                Projection::of_body(&events.iter().fold(body, body::evolve)),
            ),
        };
        Append {
            stream,
            expected_version,
            events,
            depends_on: Vec::new(),
            expected_head: None,
            recorded_at: now,
            cause: Some(Self::cause(command)),
            projection,
        }
    }

    /// Decides a command at the next tick of the clock.
    pub(crate) async fn decide(&self, command: &Command) -> Append {
        let now = self.tick();
        self.decide_at(command, now).await
    }

    /// Decides and appends a command, as the service would.
    pub(crate) async fn submit(&self, command: &Command) -> Result<Appended, StoreError> {
        let append = self.decide(command).await;
        self.store.append(append).await
    }

    /// Opens circulation `n` and casts the given votes.
    pub(crate) async fn circulation_with_votes(
        &self,
        n: u64,
        preset: &str,
        votes: &[(&str, &str)],
    ) {
        self.submit(&self.open(n, preset)).await.unwrap();
        for (member, choice) in votes {
            self.submit(&self.vote(n, member, choice)).await.unwrap();
        }
    }
}

/// Checks the whole log: positions 1..=head without gaps, hashes matching bytes (the store
/// checks that as it reads), unique stream versions counting up from 1. Returns every record.
pub(crate) async fn check_log(store: &Store) -> Vec<umlauf_store::StoredRecord> {
    use futures_util::TryStreamExt;
    let head = store.head().await.unwrap();
    let records: Vec<_> = store.read_from(1).try_collect().await.unwrap();
    assert_eq!(u64::try_from(records.len()).unwrap(), head.position);
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    for (expected, record) in (1u64..).zip(&records) {
        assert_eq!(record.position(), expected);
        assert_eq!(record.leaf_hash, umlauf_store::leaf_hash(&record.bytes));
        // The same leaf as the proof crate's Merkle tree computes, which the store's copy of the
        // function is to give way to.
        assert_eq!(
            record.leaf_hash,
            umlauf_proof::merkle::leaf_hash(&record.bytes)
        );
        assert_eq!(record.record.to_bytes(), record.bytes);
        let version = versions
            .entry(record.record.stream.to_string())
            .or_default();
        *version += 1;
        assert_eq!(record.record.version, *version, "{}", record.record.stream);
    }
    assert_eq!(
        records.last().map(|record| record.record.recorded_at),
        head.recorded_at
    );
    // The stored Merkle tree is the tree over the records, and the newest checkpoint is signed
    // for a size the log has, with that size's root.
    let tree = MemoryTree::from_records(records.iter().map(|record| record.bytes.as_slice()));
    assert_eq!(store.root(head.position).await.unwrap(), tree.root());
    if let Some(note) = store.latest_checkpoint().await.unwrap() {
        let signed = checkpoint::verify(&note, &log_verifier()).unwrap();
        assert_eq!(signed.origin, LOG_ORIGIN);
        assert!(signed.size <= head.position);
        assert_eq!(signed.root, tree.root_at(signed.size).unwrap());
    }
    records
}
