//! `umlauf serve`: runs the service.
//!
//! The configuration is layered: defaults, then the TOML file (`--config` or `UMLAUF_CONFIG`),
//! then `UMLAUF_*` environment variables, then the flags here. With none of them the service
//! runs on a SQLite file under `./data` and NATS on `127.0.0.1:4222`. SIGINT or SIGTERM stops it
//! gracefully: no new requests, those in flight answered, the relay flushed.

use std::path::PathBuf;

use anyhow::Context as _;
use umlauf_server::{Config, LogFormat, Server};

/// Flags of `umlauf serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// A TOML configuration file (default: $UMLAUF_CONFIG, if set).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// `sqlite://path` or `postgres://user@host:port/database` [default: sqlite://./data/umlauf.db].
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// PostgreSQL schema to keep the tables in.
    #[arg(long, value_name = "SCHEMA")]
    database_schema: Option<String>,
    /// NATS server URL, or a comma-separated list of a cluster's nodes
    /// [default: nats://127.0.0.1:4222].
    #[arg(long, value_name = "URL")]
    nats_url: Option<String>,
    /// A NATS credentials file (`.creds`) to authenticate with.
    #[arg(long, value_name = "FILE")]
    nats_credentials: Option<PathBuf>,
    /// The log's Ed25519 key (PKCS#8 PEM), created if missing [default: ./data/log-key.pem].
    #[arg(long, value_name = "FILE")]
    log_key_file: Option<PathBuf>,
    /// The log's origin, the name in its checkpoints [default: umlauf.localhost/log].
    #[arg(long, value_name = "ORIGIN")]
    log_origin: Option<String>,
    /// A genesis public key (base64); repeat for several. None: trust on first use.
    #[arg(long = "genesis-key", value_name = "BASE64")]
    genesis_keys: Vec<String>,
    /// The root token of every subject [default: umlauf].
    #[arg(long, value_name = "TOKEN")]
    subject_root: Option<String>,
    /// The prefix of the JetStream stream names [default: UMLAUF].
    #[arg(long, value_name = "PREFIX")]
    stream_prefix: Option<String>,
    /// Replicas of each JetStream stream [default: 1].
    #[arg(long, value_name = "N")]
    stream_replicas: Option<usize>,
    /// `human` or `json` [default: human].
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// Where /healthz, /readyz and /metrics are served; empty: not served
    /// [default: 127.0.0.1:9464].
    #[arg(long, value_name = "IP:PORT")]
    ops_address: Option<String>,
    /// How long before the deadline electors who have not answered are reminded (`24h`, `90m`,
    /// `2d`); `0`: no reminders [default: 24h].
    #[arg(long, value_name = "DURATION")]
    reminder_before: Option<String>,
}

impl ServeArgs {
    /// The configuration: file and environment, with the flags on top.
    fn config(self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(url) = self.database_url {
            config.database_url = url;
        }
        if let Some(schema) = self.database_schema {
            config.database_schema = Some(schema);
        }
        if let Some(url) = self.nats_url {
            config.nats_url = url;
        }
        if let Some(path) = self.nats_credentials {
            config.nats_credentials = Some(path);
        }
        if let Some(path) = self.log_key_file {
            config.log_key_file = path;
        }
        if let Some(origin) = self.log_origin {
            config.log_origin = origin;
        }
        if !self.genesis_keys.is_empty() {
            config.genesis_keys = self.genesis_keys;
        }
        if let Some(root) = self.subject_root {
            config.subject_root = root;
        }
        if let Some(prefix) = self.stream_prefix {
            config.stream_prefix = prefix;
        }
        if let Some(replicas) = self.stream_replicas {
            config.stream_replicas = replicas;
        }
        if let Some(format) = self.log_format {
            config.log_format = format.parse()?;
        }
        if let Some(address) = self.ops_address {
            config.ops_address = address;
        }
        if let Some(before) = self.reminder_before {
            config.reminder_before = before;
        }
        config.validate()?;
        Ok(config)
    }
}

/// Runs the service until it is stopped.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    init_logging(config.log_format);
    let server = Server::start(config)
        .await
        .context("starting the service")?;
    wait_for_signal().await?;
    tracing::info!("stopping: no new requests; finishing those in flight");
    server.shutdown().await;
    Ok(())
}

/// Structured logs on standard error, filtered by `RUST_LOG` (default `info`).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A subscriber set before (by a test, or the CLI) stays.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Waits for SIGINT or SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}
