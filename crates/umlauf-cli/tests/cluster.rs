//! The deployment beyond one machine.
//!
//! - `deploy/compose.yaml` is read with a YAML parser and checked for the topology: PostgreSQL,
//!   three NATS nodes, two replicas with streams of three replicas, each pointing to every NATS
//!   node and to PostgreSQL (these machines run no container engine).
//! - Every configuration in `deploy/nats` passes `nats-server -t` with the certificates of
//!   `deploy/nats/make-certs` and the users of `deploy/nats/make-users`, and a server running
//!   them enforces a member's permissions.
//! - `deploy/cluster` starts the topology without containers on free ports, with a fresh
//!   PostgreSQL database; the real `umlauf` binary constitutes the IT-Planungsrat and streams
//!   votes into several circulations while one NATS node and one replica are killed. Afterwards
//!   every acknowledged vote is in the log, every decision reached a durable subscriber exactly
//!   once, the replicated log stream holds the whole log, and `umlauf audit verify --db` passes.
//!
//! Needs `nats-server` (`/usr/sbin/nats-server`), `openssl`, `jq`, `curl`, `psql` and PostgreSQL
//! on 127.0.0.1:5432 with trust authentication for `postgres` (`tests/services` starts it, or
//! `UMLAUF_TEST_POSTGRES` names another server); fails, never skips, without them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

const BODY: &str = "it-planungsrat";
const CIRCULATIONS: usize = 6;
/// The checkpoint origin, and the log key's name, that `deploy/cluster` gives its replicas.
const LOG_ORIGIN: &str = "umlauf.localhost/log";

// ---- helpers -----------------------------------------------------------------------------------

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy(path: &str) -> PathBuf {
    repository().join("deploy").join(path)
}

/// The `umlauf` binary, with no `UMLAUF_*` variables inherited from the caller's environment.
fn umlauf() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_umlauf"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("UMLAUF_") {
            command.env_remove(name);
        }
    }
    command.env("NO_COLOR", "1");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `command`, asserting success; returns standard output.
fn succeed(command: &mut Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn postgres_server() -> String {
    std::env::var("UMLAUF_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// `n` ports that were free a moment ago.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect()
}

fn join(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

// ---- the Compose file --------------------------------------------------------------------------

/// Applies YAML merge keys (`<<: *anchor`, `<<: [*a, *b]`), as Compose does: the mapping's own
/// keys win over merged ones.
fn merged(yaml: &Yaml) -> Yaml {
    match yaml {
        Yaml::Hash(hash) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            let merge_key = Yaml::String("<<".into());
            if let Some(sources) = hash.get(&merge_key) {
                let sources = match sources {
                    Yaml::Array(items) => items.clone(),
                    other => vec![other.clone()],
                };
                for source in sources {
                    if let Yaml::Hash(source) = merged(&source) {
                        for (key, value) in source {
                            out.insert(key, value);
                        }
                    }
                }
            }
            for (key, value) in hash {
                if *key != merge_key {
                    out.insert(key.clone(), merged(value));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(items) => Yaml::Array(items.iter().map(merged).collect()),
        other => other.clone(),
    }
}

fn string<'y>(yaml: &'y Yaml, what: &str) -> &'y str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {yaml:?}"))
}

fn strings(yaml: &Yaml, what: &str) -> Vec<String> {
    yaml.as_vec()
        .unwrap_or_else(|| panic!("{what} is not a list: {yaml:?}"))
        .iter()
        .map(|item| string(item, what).to_owned())
        .collect()
}

fn keys(yaml: &Yaml, what: &str) -> BTreeSet<String> {
    yaml.as_hash()
        .unwrap_or_else(|| panic!("{what} is not a mapping: {yaml:?}"))
        .keys()
        .map(|key| string(key, what).to_owned())
        .collect()
}

#[test]
fn the_compose_file_describes_the_replicated_topology() {
    let source = fs::read_to_string(deploy("compose.yaml")).unwrap();
    let documents = YamlLoader::load_from_str(&source).expect("deploy/compose.yaml is YAML");
    assert_eq!(documents.len(), 1);
    let compose = merged(&documents[0]);
    let services = &compose["services"];
    let names = keys(services, "services");
    let expected: BTreeSet<String> = ["postgres", "nats-1", "nats-2", "nats-3"]
        .into_iter()
        .chain(["umlauf-1", "umlauf-2"])
        .map(str::to_owned)
        .collect();
    assert_eq!(names, expected);
    let volumes = keys(&compose["volumes"], "volumes");

    let postgres = &services["postgres"];
    assert!(string(&postgres["image"], "postgres image").starts_with("postgres:"));
    assert!(!postgres["healthcheck"]["test"].is_badvalue());
    assert!(
        strings(&postgres["volumes"], "postgres volumes")
            .iter()
            .any(|mount| mount.ends_with(":/var/lib/postgresql/data")
                && volumes.contains(mount.split(':').next().unwrap())),
        "PostgreSQL keeps its data in a named volume"
    );

    let node_names = ["nats-1", "nats-2", "nats-3"];
    for node in node_names {
        let service = &services[node];
        assert!(string(&service["image"], "nats image").starts_with("nats:"));
        let command = strings(&service["command"], "nats command");
        assert_eq!(command, ["-c", &format!("/etc/nats/{node}.conf")]);
        let mounts = strings(&service["volumes"], "nats volumes");
        assert!(
            mounts.contains(&"./nats:/etc/nats:ro".to_owned()),
            "{mounts:?}"
        );
        let data = mounts
            .iter()
            .find(|mount| mount.ends_with(":/data"))
            .unwrap_or_else(|| panic!("{node} keeps no JetStream volume: {mounts:?}"));
        assert!(volumes.contains(data.split(':').next().unwrap()), "{data}");
        let health = strings(&service["healthcheck"]["test"], "nats healthcheck").join(" ");
        assert!(health.contains("/healthz"), "{health}");
        // The configuration the node is started with names it, and routes to every node.
        let config = fs::read_to_string(deploy(&format!("nats/{node}.conf"))).unwrap();
        assert!(config.contains(&format!("server_name: {node}")), "{config}");
        assert!(config.contains("include \"cluster.conf\""), "{config}");
    }
    let cluster = fs::read_to_string(deploy("nats/cluster.conf")).unwrap();
    for node in node_names {
        assert!(
            cluster.contains(&format!("nats-route://{node}:6222")),
            "cluster.conf routes to {node}"
        );
    }

    for replica in ["umlauf-1", "umlauf-2"] {
        let service = &services[replica];
        let environment = &service["environment"];
        let env = |key: &str| string(&environment[key], key).to_owned();
        assert_eq!(
            env("UMLAUF_STREAM_REPLICAS"),
            "3",
            "{replica} keeps R3 streams"
        );
        // Every NATS node, over TLS, as the service user.
        let urls = env("UMLAUF_NATS_URL");
        let hosts: BTreeSet<&str> = urls
            .split(',')
            .map(|url| {
                let rest = url
                    .strip_prefix("tls://")
                    .unwrap_or_else(|| panic!("{replica}: {url} is not tls://"));
                let (user, host) = rest.split_once('@').unwrap();
                assert!(user.starts_with("umlauf-service:"), "{url}");
                host.strip_suffix(":4222").unwrap()
            })
            .collect();
        assert_eq!(hosts, node_names.into_iter().collect(), "{replica}: {urls}");
        assert!(env("SSL_CERT_FILE").ends_with(".pem"));
        let database = env("UMLAUF_DATABASE_URL");
        assert!(
            database.starts_with("postgres://") && database.contains("@postgres:5432/"),
            "{replica}: {database}"
        );
        let key = env("UMLAUF_LOG_KEY_FILE");
        assert!(
            strings(&service["volumes"], "replica volumes")
                .iter()
                .any(|mount| key.starts_with(mount.split(':').nth(1).unwrap())),
            "{replica}'s log key {key} lies on a mounted directory"
        );
        assert!(!env("UMLAUF_GENESIS_KEYS").is_empty());
        let depends = &service["depends_on"];
        for dependency in ["postgres", "nats-1", "nats-2", "nats-3"] {
            assert_eq!(
                depends[dependency]["condition"].as_str(),
                Some("service_healthy"),
                "{replica} waits for {dependency}"
            );
        }
        assert!(!service["healthcheck"]["test"].is_badvalue());
    }
    // The two replicas share every setting but the order of the NATS nodes.
    let env_of = |replica: &str| {
        let mut env = keys(&services[replica]["environment"], "environment");
        env.remove("UMLAUF_NATS_URL");
        env
    };
    assert_eq!(env_of("umlauf-1"), env_of("umlauf-2"));
}

// ---- the NATS configurations -------------------------------------------------------------------

/// The NATS configurations, certificates and users in a scratch directory, with the container
/// paths (`/etc/nats`, `/data`) pointing into it.
fn nats_configurations(dir: &Path) -> Vec<PathBuf> {
    for entry in fs::read_dir(deploy("nats")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "conf") {
            let config = fs::read_to_string(&path)
                .unwrap()
                .replace("/etc/nats", dir.to_str().unwrap())
                .replace("\"/data/", &format!("\"{}/data/", dir.display()));
            fs::write(dir.join(path.file_name().unwrap()), config).unwrap();
        }
    }
    succeed(
        Command::new(deploy("nats/make-certs")).arg(dir.join("certs")),
        "deploy/nats/make-certs",
    );
    succeed(
        Command::new(deploy("nats/make-users"))
            .args(["--out", dir.join("users").to_str().unwrap()])
            .arg(deploy("bodies/it-planungsrat.json")),
        "deploy/nats/make-users",
    );
    ["nats-1", "nats-2", "nats-3"]
        .into_iter()
        .map(|node| dir.join(format!("{node}.conf")))
        .collect()
}

#[test]
fn every_nats_configuration_passes_the_servers_configuration_test() {
    let dir = tempfile::tempdir().unwrap();
    for config in nats_configurations(dir.path()) {
        let output = Command::new("nats-server")
            .arg("-t")
            .arg("-c")
            .arg(&config)
            .output()
            .expect("running nats-server (apt-get install nats-server)");
        assert!(
            output.status.success(),
            "nats-server -t -c {}:\n{}{}",
            config.display(),
            text(&output.stdout),
            text(&output.stderr)
        );
    }
    // Keys and passwords are readable by their owner alone (and the server's group).
    let mode = |path: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&dir.path().join("certs/ca-key.pem")), 0o600);
    assert_eq!(mode(&dir.path().join("users/accounts.conf")), 0o640);
    assert_eq!(
        mode(
            &dir.path()
                .join("users/credentials/it-planungsrat.DE-BY.url")
        ),
        0o600
    );
    // One user per member of the body, one secretariat, the service and the auditor.
    let credentials = fs::read_dir(dir.path().join("users/credentials"))
        .unwrap()
        .count();
    assert_eq!(
        credentials,
        22 + 1 + 2 + 1,
        "22 members, secretariat, service, auditor, system"
    );
}

/// A member's NATS user may submit and query, read its own reminders and its body's decisions,
/// and nothing else; the auditor may not submit. Checked against a running server with the
/// deployed configuration (one node; its routes to the other two stay unanswered).
#[test]
fn a_members_nats_user_is_held_to_its_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let configs = nats_configurations(dir.path());
    let ports = free_ports(3);
    let config = fs::read_to_string(&configs[0])
        .unwrap()
        .replace("include \"cluster.conf\"", "include \"single.conf\"");
    let single = fs::read_to_string(dir.path().join("cluster.conf"))
        .unwrap()
        .replace("0.0.0.0:4222", &format!("127.0.0.1:{}", ports[0]))
        .replace("0.0.0.0:8222", &format!("127.0.0.1:{}", ports[1]))
        .replace("0.0.0.0:6222", &format!("127.0.0.1:{}", ports[2]));
    fs::write(dir.path().join("single.conf"), single).unwrap();
    fs::write(&configs[0], config).unwrap();
    let log = fs::File::create(dir.path().join("nats.log")).unwrap();
    let server = Command::new("nats-server")
        .arg("-c")
        .arg(&configs[0])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting nats-server");
    let _server = Killed(server);

    // The credentials a user is handed: `tls://USER:PASSWORD@nats-1:4222`.
    let credentials = |user: &str| {
        let line =
            fs::read_to_string(dir.path().join(format!("users/credentials/{user}.url"))).unwrap();
        let rest = line.trim().strip_prefix("tls://").unwrap();
        let (userinfo, host) = rest.split_once('@').unwrap();
        assert_eq!(host, "nats-1:4222");
        let (name, password) = userinfo.split_once(':').unwrap();
        assert_eq!(name, user);
        password.to_owned()
    };
    let server = format!("tls://localhost:{}", ports[0]);
    let ca = dir.path().join("certs/ca.pem");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let violations = runtime.block_on(async {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let connect = |user: &str| {
            let password = credentials(user);
            let server = server.clone();
            let ca = ca.clone();
            let sender = sender.clone();
            let user = user.to_owned();
            async move {
                let started = Instant::now();
                loop {
                    let sender = sender.clone();
                    let who = user.clone();
                    let attempt = async_nats::ConnectOptions::with_user_and_password(
                        user.clone(),
                        password.clone(),
                    )
                    .add_root_certificates(ca.clone())
                    .require_tls(true)
                    .event_callback(move |event| {
                        let sender = sender.clone();
                        let who = who.clone();
                        async move {
                            if let async_nats::Event::ServerError(error) = event {
                                let _ = sender.send(format!("{who}: {error}"));
                            }
                        }
                    })
                    .connect(server.as_str())
                    .await;
                    match attempt {
                        Ok(client) => return client,
                        Err(_) if started.elapsed() < Duration::from_secs(20) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(error) => panic!("connecting as {user}: {error}"),
                    }
                }
            }
        };
        let member = connect("it-planungsrat.DE-BY").await;
        // Allowed: its own reminders, its body's decisions, submitting, querying.
        let _own = member
            .subscribe("umlauf.v1.reminders.it-planungsrat.DE-BY")
            .await
            .unwrap();
        let _decisions = member
            .subscribe("umlauf.v1.decisions.it-planungsrat.*")
            .await
            .unwrap();
        member
            .publish("umlauf.v1.submit", "{}".into())
            .await
            .unwrap();
        member
            .publish("umlauf.v1.query.circulation", "{}".into())
            .await
            .unwrap();
        // Forbidden: another member's reminders, another body's decisions, the log's subjects.
        let _other = member
            .subscribe("umlauf.v1.reminders.it-planungsrat.DE-HH")
            .await
            .unwrap();
        let _elsewhere = member
            .subscribe("umlauf.v1.decisions.another-body.*")
            .await
            .unwrap();
        member
            .publish("umlauf.v1.log.body.it-planungsrat", "forged".into())
            .await
            .unwrap();
        member.flush().await.unwrap();
        // The auditor reads; it cannot submit.
        let auditor = connect("auditor").await;
        auditor
            .publish("umlauf.v1.submit", "{}".into())
            .await
            .unwrap();
        auditor.flush().await.unwrap();
        let mut violations = Vec::new();
        let started = Instant::now();
        while violations.len() < 4 && started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(violation)) =
                tokio::time::timeout(Duration::from_millis(200), receiver.recv()).await
            {
                violations.push(violation);
            }
        }
        member.flush().await.unwrap();
        auditor.flush().await.unwrap();
        while let Ok(violation) = receiver.try_recv() {
            violations.push(violation);
        }
        violations.sort();
        violations
    });
    let log = || fs::read_to_string(dir.path().join("nats.log")).unwrap_or_default();
    assert_eq!(violations.len(), 4, "{violations:#?}\n{}", log());
    for (who, expected) in [
        ("auditor", "publish to \"umlauf.v1.submit\""),
        (
            "it-planungsrat.DE-BY",
            "publish to \"umlauf.v1.log.body.it-planungsrat\"",
        ),
        (
            "it-planungsrat.DE-BY",
            "subscription to \"umlauf.v1.decisions.another-body.*\"",
        ),
        (
            "it-planungsrat.DE-BY",
            "subscription to \"umlauf.v1.reminders.it-planungsrat.DE-HH\"",
        ),
    ] {
        assert!(
            violations.iter().any(|violation| {
                violation.starts_with(&format!("{who}: "))
                    && violation.to_lowercase().contains(&format!(
                        "permissions violation for {}",
                        expected.to_lowercase()
                    ))
            }),
            "{who}: {expected} missing from {violations:#?}"
        );
    }
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---- the failover ------------------------------------------------------------------------------

/// The topology of `deploy/cluster` in a scratch directory, stopped (and its database dropped)
/// on drop.
struct Cluster {
    dir: tempfile::TempDir,
    client_ports: Vec<u16>,
    options: Vec<String>,
    database: String,
    root: String,
    prefix: String,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(11);
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("umlauf_cluster_{}", &unique[..12]);
        let root = format!("c{}", &unique[..12]);
        let prefix = format!("C{}", unique[..12].to_uppercase());
        let options = vec![
            "--base".to_owned(),
            dir.path().join("cluster").display().to_string(),
            "--nats-ports".to_owned(),
            join(&ports[0..3]),
            "--route-ports".to_owned(),
            join(&ports[3..6]),
            "--monitor-ports".to_owned(),
            join(&ports[6..9]),
            "--ops-ports".to_owned(),
            join(&ports[9..11]),
            "--postgres".to_owned(),
            postgres_server(),
            "--database".to_owned(),
            database.clone(),
            "--subject-root".to_owned(),
            root.clone(),
            "--stream-prefix".to_owned(),
            prefix.clone(),
            "--umlauf".to_owned(),
            env!("CARGO_BIN_EXE_umlauf").to_owned(),
        ];
        let cluster = Cluster {
            dir,
            client_ports: ports[0..3].to_vec(),
            options,
            database,
            root,
            prefix,
        };
        let status = cluster.script(&["start"]);
        for name in ["nats-1", "nats-2", "nats-3", "serve-1", "serve-2"] {
            assert!(
                status
                    .lines()
                    .any(|line| line.starts_with(name) && line.contains(" running ")),
                "{name} is not running:\n{status}"
            );
        }
        cluster
    }

    fn script(&self, args: &[&str]) -> String {
        let output = self.script_output(args);
        assert!(
            output.status.success(),
            "deploy/cluster {args:?} failed:\n{}{}\n{}",
            text(&output.stdout),
            text(&output.stderr),
            self.logs()
        );
        text(&output.stdout)
    }

    fn script_output(&self, args: &[&str]) -> Output {
        Command::new(deploy("cluster"))
            .args(args)
            .args(&self.options)
            .stdin(Stdio::null())
            .output()
            .expect("running deploy/cluster")
    }

    fn base(&self) -> PathBuf {
        self.dir.path().join("cluster")
    }

    fn database_url(&self) -> String {
        format!("{}/{}", postgres_server(), self.database)
    }

    fn nats_url(&self, node: usize) -> String {
        format!("nats://127.0.0.1:{}", self.client_ports[node - 1])
    }

    /// The last lines of every process's log, for failure messages.
    fn logs(&self) -> String {
        let mut all = String::new();
        for name in ["nats-1", "nats-2", "nats-3", "serve-1", "serve-2"] {
            let log = fs::read_to_string(self.base().join(name).join("log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(25)..].join("\n");
            all.push_str(&format!("--- {name}\n{tail}\n"));
        }
        all
    }

    /// `umlauf` with this deployment's subjects on NATS node `node`. Clients check every
    /// receipt against the log's verifier key, which the replicas write beside their log key.
    fn client(&self, node: usize, args: &[&str]) -> Output {
        umlauf()
            .env("UMLAUF_LOG_KEY", self.base().join("log-key.vkey"))
            .args(args)
            .args(["--nats-url", &self.nats_url(node)])
            .args([
                "--subject-root",
                &self.root,
                "--stream-prefix",
                &self.prefix,
            ])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("running umlauf")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.script_output(&["stop"]);
        let _ = Command::new("psql")
            .arg(format!("{}/postgres", postgres_server()))
            .arg("-qc")
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ))
            .output();
    }
}

/// The first number after "at log position" in a client's output.
fn position_in(output: &str) -> Option<u64> {
    let rest = &output[output.find("at log position")?..];
    let digits: String = rest
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The genesis key, the secretariat's and one per voting member, made by `umlauf keygen`;
/// returns the genesis public key.
fn make_keys(dir: &Path, voters: &[String]) -> String {
    fs::create_dir_all(dir.join("keys")).unwrap();
    let mut genesis = String::new();
    for name in ["genesis", "secretariat"]
        .into_iter()
        .chain(voters.iter().map(String::as_str))
    {
        let out = dir.join(format!("keys/{name}.pem"));
        let printed = succeed(
            umlauf().args(["keygen", "--out", out.to_str().unwrap()]),
            "umlauf keygen",
        );
        if name == "genesis" {
            genesis = printed
                .lines()
                .find_map(|line| line.strip_prefix("public key"))
                .unwrap()
                .trim()
                .to_owned();
        }
    }
    genesis
}

/// What the vote stream recorded.
#[derive(Default)]
struct Votes {
    /// (circulation, member) → the position its acknowledgement named.
    acknowledged: BTreeMap<(String, String), u64>,
    /// Attempts that failed (no acknowledgement), with what the client said.
    failed: Vec<String>,
    /// Votes whose acknowledgement was lost but which the log turned out to hold (a retry was
    /// refused as `already_voted`).
    unacknowledged_but_recorded: BTreeSet<(String, String)>,
}

#[test]
fn the_cluster_survives_losing_a_nats_node_and_a_replica_in_the_middle_of_a_vote() {
    let cluster = Cluster::start();
    let dir = cluster.dir.path();

    // The body: the IT-Planungsrat's file with the keys made here.
    let mut body: Value =
        serde_json::from_str(&fs::read_to_string(deploy("bodies/it-planungsrat.json")).unwrap())
            .unwrap();
    let voters: Vec<String> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|member| member["kind"] == "voting")
        .map(|member| member["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(voters.len(), 17);
    let genesis_key = make_keys(dir, &voters);
    let mut key_entries =
        vec![serde_json::json!({"holder": "secretariat", "key_file": "keys/secretariat.pem"})];
    key_entries.extend(voters.iter().map(
        |member| serde_json::json!({"holder": member, "key_file": format!("keys/{member}.pem")}),
    ));
    body["keys"] = Value::Array(key_entries);
    fs::write(
        dir.join("body.json"),
        serde_json::to_string_pretty(&body).unwrap(),
    )
    .unwrap();
    let constituted = cluster.client(
        2,
        &["body", "init", "body.json", "--key", "keys/genesis.pem"],
    );
    assert!(
        constituted.status.success(),
        "umlauf body init:\n{}{}\n{}",
        text(&constituted.stdout),
        text(&constituted.stderr),
        cluster.logs()
    );

    // A durable subscriber to the body's decisions, on a node that stays up.
    let watch_log = dir.join("watch.jsonl");
    let watcher = umlauf()
        .args([
            "watch",
            "--body",
            BODY,
            "--durable",
            "cluster-test",
            "--json",
        ])
        .args(["--nats-url", &cluster.nats_url(3)])
        .args([
            "--subject-root",
            &cluster.root,
            "--stream-prefix",
            &cluster.prefix,
        ])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&watch_log).unwrap())
        .stderr(fs::File::create(dir.join("watch.err")).unwrap())
        .spawn()
        .expect("starting umlauf watch");
    let mut watcher = Killed(watcher);

    // The circulations.
    let circulations: Vec<String> = (0..CIRCULATIONS)
        .map(|index| {
            let opened = cluster.client(
                1 + index % 3,
                &[
                    "open",
                    "--title",
                    &format!("Umlaufbeschluss {}", index + 1),
                    "--text",
                    &format!("Der IT-Planungsrat beschließt Vorlage {}.", index + 1),
                    "--preset",
                    "it-planungsrat-resolution",
                    "--deadline",
                    "+2h",
                    "--body",
                    BODY,
                    "--key",
                    "keys/secretariat.pem",
                ],
            );
            let stdout = text(&opened.stdout);
            assert!(
                opened.status.success(),
                "umlauf open:\n{stdout}{}\n{}",
                text(&opened.stderr),
                cluster.logs()
            );
            stdout
                .lines()
                .find_map(|line| line.strip_prefix("opened circulation "))
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();

    // The votes, from three clients at once, on every node in turn; retried where no
    // acknowledgement came. In the middle, NATS node 1 (replica 1's node) and replica 2 die.
    let queue: Mutex<VecDeque<(String, String)>> = Mutex::new(
        voters
            .iter()
            .flat_map(|member| {
                circulations
                    .iter()
                    .map(move |circulation| (circulation.clone(), member.clone()))
            })
            .collect(),
    );
    let total = CIRCULATIONS * voters.len();
    let acknowledged_count = AtomicUsize::new(0);
    let killed = AtomicBool::new(false);
    // The clients hold back at half the votes until the failures are done, so that at least
    // half the votes meet the cluster after them.
    let failures_done = AtomicBool::new(false);
    let mut acknowledged_before_the_failures = 0;
    let votes = Mutex::new(Votes::default());
    std::thread::scope(|scope| {
        let acknowledged_before_the_failures = &mut acknowledged_before_the_failures;
        for worker in 0..3 {
            let (queue, votes, killed, failures_done, acknowledged_count, cluster) = (
                &queue,
                &votes,
                &killed,
                &failures_done,
                &acknowledged_count,
                &cluster,
            );
            scope.spawn(move || {
                let mut turn = worker;
                loop {
                    while acknowledged_count.load(Ordering::SeqCst) >= total / 2
                        && !failures_done.load(Ordering::SeqCst)
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    let Some((circulation, member)) = queue.lock().unwrap().pop_front() else {
                        return;
                    };
                    let choice = if member == "DE-BY" { "no" } else { "yes" };
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        turn += 1;
                        // After the kill, node 1 is gone: the clients use the other two.
                        let node = if killed.load(Ordering::SeqCst) {
                            2 + turn % 2
                        } else {
                            1 + turn % 3
                        };
                        let output = cluster.client(
                            node,
                            &[
                                "vote",
                                &circulation,
                                choice,
                                "--as",
                                &member,
                                "--key",
                                &format!("keys/{member}.pem"),
                            ],
                        );
                        let stdout = text(&output.stdout);
                        let stderr = text(&output.stderr);
                        if output.status.success() {
                            let position = position_in(&stdout).unwrap_or_else(|| {
                                panic!("no log position in the acknowledgement:\n{stdout}")
                            });
                            votes
                                .lock()
                                .unwrap()
                                .acknowledged
                                .insert((circulation.clone(), member.clone()), position);
                            acknowledged_count.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        let mut votes = votes.lock().unwrap();
                        votes.failed.push(format!(
                            "{member} on {circulation} via node {node}: {}",
                            stderr.trim()
                        ));
                        if stderr.contains("already_voted") {
                            votes
                                .unacknowledged_but_recorded
                                .insert((circulation.clone(), member.clone()));
                            break;
                        }
                        assert!(
                            attempts < 10,
                            "the vote of {member} on {circulation} failed {attempts} times:\n{}",
                            votes.failed.join("\n")
                        );
                        drop(votes);
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            });
        }
        // The failures, once a third of the votes is in.
        while acknowledged_count.load(Ordering::SeqCst) < total / 3 {
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster.script(&["kill", "nats-1"]);
        killed.store(true, Ordering::SeqCst);
        cluster.script(&["kill", "serve-2"]);
        *acknowledged_before_the_failures = acknowledged_count.load(Ordering::SeqCst);
        failures_done.store(true, Ordering::SeqCst);
    });
    let votes = votes.into_inner().unwrap();
    eprintln!(
        "{} votes acknowledged, {} found recorded without an acknowledgement, {} attempts failed:\n{}",
        votes.acknowledged.len(),
        votes.unacknowledged_but_recorded.len(),
        votes.failed.len(),
        votes.failed.join("\n")
    );
    let status = cluster.script(&["status"]);
    assert!(status.contains("nats-1  stopped"), "{status}");
    assert!(status.contains("serve-2 stopped"), "{status}");
    assert!(status.contains("serve-1 running"), "{status}");
    assert_eq!(
        votes.acknowledged.len() + votes.unacknowledged_but_recorded.len(),
        total,
        "every vote was acknowledged or found recorded"
    );
    // Only replica 1 was left, and its NATS node was gone: it went on through another node.
    assert!(
        votes.acknowledged.len() > acknowledged_before_the_failures
            && acknowledged_before_the_failures < total,
        "votes were acknowledged after the failures too ({acknowledged_before_the_failures} before)"
    );

    // Every acknowledged vote is in the log, at the position its acknowledgement named.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let head = runtime.block_on(async {
        let store = umlauf_store::Store::open(&cluster.database_url())
            .await
            .unwrap();
        for circulation in &circulations {
            let id: uuid::Uuid = circulation.parse().unwrap();
            let records = store
                .read_stream(&umlauf_domain::StreamId::Circulation(
                    umlauf_domain::ids::CirculationId(id),
                ))
                .await
                .unwrap();
            let votes_in_log: BTreeMap<String, u64> = records
                .iter()
                .filter(|stored| stored.record.event_type == "VoteCast")
                .map(|stored| {
                    (
                        stored.record.data["member"].as_str().unwrap().to_owned(),
                        stored.position(),
                    )
                })
                .collect();
            assert_eq!(
                votes_in_log.len(),
                voters.len(),
                "one vote per member in {circulation}"
            );
            for ((voted_on, member), position) in &votes.acknowledged {
                if voted_on == circulation {
                    assert_eq!(
                        votes_in_log.get(member),
                        Some(position),
                        "the acknowledged vote of {member} on {circulation}"
                    );
                }
            }
            assert!(
                records
                    .iter()
                    .any(|stored| stored.record.event_type == "CirculationClosed"),
                "{circulation} closed once every member had voted"
            );
        }
        let head = store.head().await.unwrap().position;
        store.close().await;
        head
    });

    // Every decision reaches the durable subscriber exactly once, and the replicated streams
    // hold the whole log and one decision per circulation.
    let started = Instant::now();
    let decisions = loop {
        let lines: Vec<Value> = fs::read_to_string(&watch_log)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        if lines.len() >= CIRCULATIONS {
            break lines;
        }
        if let Some(status) = watcher.0.try_wait().unwrap() {
            panic!(
                "umlauf watch exited ({status}): {}",
                fs::read_to_string(dir.join("watch.err")).unwrap()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} of {CIRCULATIONS} decisions arrived within 120 s\n{}",
            lines.len(),
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let decided: BTreeSet<String> = decisions
        .iter()
        .map(|decision| decision["circulation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(decided, circulations.iter().cloned().collect());
    assert!(
        decisions
            .iter()
            .all(|decision| decision["decision"]["result"] == "adopted"),
        "every circulation was adopted: {:?}",
        decisions
            .iter()
            .map(|decision| &decision["decision"])
            .collect::<Vec<_>>()
    );
    runtime.block_on(async {
        let nats = async_nats::connect(cluster.nats_url(3)).await.unwrap();
        let jetstream = async_nats::jetstream::new(nats);
        let started = Instant::now();
        loop {
            let mut log = jetstream
                .get_stream(format!("{}_LOG", cluster.prefix))
                .await
                .unwrap();
            let info = log.info().await.unwrap().clone();
            assert_eq!(info.config.num_replicas, 3, "the log stream is R3");
            if info.state.messages == head && info.state.last_sequence == head {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the log stream holds {} records of {head} after 120 s",
                info.state.messages
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut stream = jetstream
            .get_stream(format!("{}_DECISIONS", cluster.prefix))
            .await
            .unwrap();
        let info = stream.info().await.unwrap().clone();
        assert_eq!(info.config.num_replicas, 3, "the decisions stream is R3");
        assert_eq!(
            info.state.messages, CIRCULATIONS as u64,
            "one decision per circulation"
        );
        // The subscriber acknowledged each decision once: delivered once each, nothing pending,
        // nothing redelivered.
        let started = Instant::now();
        loop {
            let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                stream.get_consumer("cluster-test").await.unwrap();
            let info = consumer.info().await.unwrap().clone();
            if info.ack_floor.stream_sequence == CIRCULATIONS as u64 {
                assert_eq!(info.delivered.stream_sequence, CIRCULATIONS as u64);
                assert_eq!(info.num_pending, 0);
                assert_eq!(info.num_ack_pending, 0);
                assert_eq!(info.num_redelivered, 0, "no decision was delivered twice");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the subscriber did not acknowledge every decision: {info:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    drop(watcher);
    let received: Vec<&str> = decisions
        .iter()
        .map(|decision| decision["circulation"].as_str().unwrap())
        .collect();
    assert_eq!(
        received.len(),
        CIRCULATIONS,
        "each decision arrived once: {received:?}"
    );

    // The lost node and replica come back: `start` starts what is not running.
    let status = cluster.script(&["start"]);
    assert_eq!(
        status.matches(" running ").count(),
        5,
        "all five processes run again:\n{status}"
    );

    // The auditor replays the log from the database: signatures, authorisations, outcomes,
    // read models, and the Merkle tree against the checkpoints the service stored. Its trust
    // anchors come from outside the history: the genesis key made here, and the log key as the
    // operator knows it (the public half of the key file the replicas share, under the origin
    // deploy/cluster configures).
    let pem = fs::read_to_string(cluster.base().join("log-key.pem")).unwrap();
    let log_key = umlauf_proof::keys::signing_key_from_pem(&pem).unwrap();
    let vkey = umlauf_proof::note::NoteVerifier::new(LOG_ORIGIN, log_key.verifying_key())
        .unwrap()
        .to_string();
    let audit = umlauf()
        .args(["audit", "verify", "--json", "--db", &cluster.database_url()])
        .args(["--genesis-key", &genesis_key, "--log-key", &vkey])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&audit.stdout).unwrap_or(Value::Null);
    assert_eq!(
        audit.status.code(),
        Some(0),
        "umlauf audit verify --db: findings {}\nreport {}\n{}",
        report["findings"],
        report["report"],
        text(&audit.stderr)
    );
    assert_eq!(report["result"], "clean", "{report}");
    assert_eq!(report["report"]["records"], head, "{report}");
    // The newest checkpoint the service stored vouches for the whole log.
    assert_eq!(report["report"]["newest_checkpoint"], head, "{report}");
    assert_eq!(
        report["report"]["decisions"]["adopted"], CIRCULATIONS,
        "{report}"
    );
    // The replicas published the same verifier key beside the key file, for auditors.
    let published = cluster.base().join("log-key.vkey");
    let published = fs::read_to_string(&published).unwrap_or_else(|error| {
        panic!(
            "the service writes the log's verifier key to {}: {error}",
            published.display()
        )
    });
    assert_eq!(published.trim(), vkey);
}
