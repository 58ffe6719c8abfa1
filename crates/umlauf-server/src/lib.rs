//! The umlauf service: the imperative shell around the pure domain.
//!
//! It wires the store and NATS together: the command pipeline (verify, authorize, decide,
//! append, reply), the deadline scheduler, the relay that publishes the log, and configuration.
//! [`Server::start`] runs all of it from a [`Config`]; [`Server::shutdown`] stops taking requests,
//! finishes those in flight and lets the relay publish what is left.
//!
//! Architecture Invariant: the clock is read here and only here (and in the CLI): the domain gets
//! the recording time as an argument, never earlier than the newest record's.
//!
//! Architecture Invariant: typed errors become wire codes in one place, [`RequestError::to_reply`].

mod config;
mod directory;
mod error;
mod limits;
mod log_key;
mod log_source;
mod metrics;
mod ops;
mod pipeline;
mod reminders;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use umlauf_nats::Subjects;
use umlauf_nats::relay::{Relay, RelayOptions, RelayStatus};
use umlauf_nats::service::{RunningService, ServiceOptions};
use umlauf_nats::streams::{StreamSettings, StreamsError, ensure_streams};
use umlauf_proof::note::NoteVerifier;
use umlauf_proof::{SigningKey, VerifyingKey};
use umlauf_store::{CheckpointSigner, Store, StoreError, StoreOptions};

pub use config::{Config, ConfigError, ENV_PREFIX, LogFormat};
pub use error::RequestError;
pub use log_key::{LogKeyError, load_or_create as load_or_create_log_key};
pub use log_source::StoreLogSource;

use crate::directory::Directory;
use crate::pipeline::Pipeline;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The log key cannot be read or created.
    #[error(transparent)]
    LogKey(#[from] LogKeyError),
    /// The database cannot be opened.
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    /// NATS cannot be reached.
    #[error(transparent)]
    Nats(#[from] umlauf_nats::connect::ConnectError),
    /// The JetStream streams cannot be set up.
    #[error(transparent)]
    Streams(#[from] StreamsError),
    /// The NATS service cannot start.
    #[error(transparent)]
    Service(#[from] umlauf_nats::service::ServiceError),
}

/// A running service: the NATS endpoints, the relay and the deadline scheduler.
#[derive(Debug)]
pub struct Server {
    pipeline: Arc<Pipeline>,
    subjects: Subjects,
    client: async_nats::Client,
    service: RunningService,
    relay: Relay,
    scheduler: JoinHandle<()>,
    stop_scheduler: watch::Sender<bool>,
    log_key: SigningKey,
    log_verifier: NoteVerifier,
    operations: ops::Operations,
}

impl Server {
    /// Starts the service as `config` says.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let genesis = config.genesis_verifying_keys()?;
        let log_key = log_key::load_or_create(&config.log_key_file)?;

        let options = async_nats::ConnectOptions::new()
            .name("umlauf serve")
            .reconnect_delay_callback(|attempts| {
                let attempts = u64::try_from(attempts).unwrap_or(u64::MAX);
                Duration::from_millis(attempts.saturating_mul(100).min(2_000))
            });
        let client = umlauf_nats::connect::connect(
            options,
            &config.nats_url,
            config.nats_credentials.as_deref(),
        )
        .await?;
        let max_payload = client.server_info().max_payload;
        let limits = limits::limits(config.max_envelope_bytes, max_payload)?;
        if limits.capped {
            tracing::warn!(
                configured = config.max_envelope_bytes,
                max_envelope_bytes = limits.max_envelope_bytes,
                max_payload,
                "max_envelope_bytes is lowered so that every record and reply fits in one message \
                 of this NATS server (max_payload); raise max_payload in its configuration to \
                 accept larger envelopes"
            );
        }

        let mut options = StoreOptions::new(config.database_url.clone());
        options.schema.clone_from(&config.database_schema);
        options.max_connections = config.database_max_connections;
        options.max_record_bytes = limits.max_record_bytes;
        let signer = CheckpointSigner::new(config.log_origin.clone(), log_key.clone());
        let log_verifier = signer.verifier()?;
        options.checkpoints = Some(signer);
        let store = Store::open_with(options).await?;
        let vkey_file = config.log_vkey_file();
        log_key::write_vkey(&vkey_file, &log_verifier)?;
        tracing::info!(
            log_key = %log_verifier,
            file = %vkey_file.display(),
            "the log's verifier key (give it to auditors and clients: umlauf --log-key)"
        );

        let directory = Directory::default();
        let head = store.head().await?;
        directory.catch_up(&store, head.position).await?;
        if genesis.is_empty() {
            match directory.first_genesis().await {
                Some(key) => tracing::warn!(
                    genesis_key = %key,
                    "TRUST ON FIRST USE: no genesis keys are configured; the genesis key of the \
                     log's first constitution is trusted; configure genesis_keys to pin it"
                ),
                None => tracing::warn!(
                    "TRUST ON FIRST USE: no genesis keys are configured and the log is empty; the \
                     first key that constitutes a body becomes this deployment's genesis key"
                ),
            }
        }

        let jetstream = async_nats::jetstream::new(client.clone());
        let subjects = Subjects::new(&config.subject_root, &config.stream_prefix);
        let settings = StreamSettings {
            replicas: config.stream_replicas,
            ..StreamSettings::default()
        };
        ensure_streams(&jetstream, &subjects, &settings).await?;

        let relay = Relay::spawn(
            jetstream,
            subjects.clone(),
            StoreLogSource::new(store.clone()),
            RelayOptions {
                poll_interval: config.relay_poll_interval(),
                ..RelayOptions::default()
            },
        );
        let pipeline = Arc::new(Pipeline {
            store,
            directory,
            genesis,
            max_envelope_bytes: limits.max_envelope_bytes,
            clock_skew_seconds: config.clock_skew_seconds,
            relay: relay.waker(),
            log_verifier: log_verifier.clone(),
            locks: pipeline::StreamLocks::default(),
            metrics: metrics::Metrics::default(),
        });
        let service = umlauf_nats::service::start(
            client.clone(),
            &subjects,
            Arc::clone(&pipeline),
            ServiceOptions {
                version: env!("CARGO_PKG_VERSION").into(),
                ..ServiceOptions::default()
            },
        )
        .await?;
        let (stop_scheduler, stopped) = watch::channel(false);
        let scheduler = tokio::spawn(scheduler::run(
            Arc::clone(&pipeline),
            config.deadline_check_interval(),
            stopped.clone(),
        ));
        let operations = ops::Operations::start(
            &config,
            ops::Sources {
                pipeline: Arc::clone(&pipeline),
                client: client.clone(),
                relay: relay.status(),
                stopping: false.into(),
            },
            &subjects,
            &settings,
            stopped,
        )
        .await?;
        tracing::info!(
            subjects = %subjects.prefix(),
            log_stream = subjects.log_stream(),
            "umlauf is serving"
        );
        Ok(Self {
            pipeline,
            subjects,
            client,
            service,
            relay,
            scheduler,
            stop_scheduler,
            log_key,
            log_verifier,
            operations,
        })
    }

    /// The relay's status: progress, and the fork alarm.
    pub fn relay_status(&self) -> watch::Receiver<RelayStatus> {
        self.relay.status()
    }

    /// The subjects and streams the service uses.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// The event store.
    pub fn store(&self) -> &Store {
        &self.pipeline.store
    }

    /// The largest envelope the service accepts: the configured limit, lowered if the NATS
    /// server's `max_payload` could not carry the records and replies of larger ones.
    pub fn max_envelope_bytes(&self) -> usize {
        self.pipeline.max_envelope_bytes
    }

    /// The public half of the log key.
    pub fn log_key(&self) -> VerifyingKey {
        self.log_key.verifying_key()
    }

    /// The log's verifier key (C2SP vkey form when displayed): its checkpoints and receipts
    /// verify with it.
    pub fn log_verifier(&self) -> &NoteVerifier {
        &self.log_verifier
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served (with the port chosen when
    /// `ops_address` asked for port 0); `None` when `ops_address` is empty.
    pub fn ops_address(&self) -> Option<std::net::SocketAddr> {
        self.operations.address()
    }

    /// Stops taking requests (and reports not ready), answers those in flight, stops the
    /// scheduler and the reminders, lets the relay publish what is left, and closes the
    /// connections.
    pub async fn shutdown(self) {
        self.operations.begin_shutdown();
        self.service.shutdown().await;
        let _ = self.stop_scheduler.send(true);
        if let Err(error) = self.scheduler.await {
            tracing::error!(%error, "the deadline scheduler failed");
        }
        self.operations.shutdown().await;
        self.relay.shutdown().await;
        if let Err(error) = self.client.flush().await {
            tracing::debug!(%error, "flushing NATS at shutdown");
        }
        self.pipeline.store.close().await;
        tracing::info!("umlauf has stopped");
    }
}
