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
mod log_key;
mod log_source;
mod pipeline;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use umlauf_nats::Subjects;
use umlauf_nats::relay::{Relay, RelayOptions, RelayStatus};
use umlauf_nats::service::{RunningService, ServiceOptions};
use umlauf_nats::streams::{StreamSettings, StreamsError, ensure_streams};
use umlauf_proof::{SigningKey, VerifyingKey};
use umlauf_store::{Store, StoreError, StoreOptions};

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
    #[error("cannot connect to NATS at {url}: {source}")]
    Nats {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: async_nats::ConnectError,
    },
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
}

impl Server {
    /// Starts the service as `config` says.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let genesis = config.genesis_verifying_keys()?;
        let log_key = log_key::load_or_create(&config.log_key_file)?;

        let mut options = StoreOptions::new(config.database_url.clone());
        options.schema.clone_from(&config.database_schema);
        options.max_connections = config.database_max_connections;
        let store = Store::open_with(options).await?;

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

        let client = async_nats::ConnectOptions::new()
            .name("umlauf serve")
            .reconnect_delay_callback(|attempts| {
                let attempts = u64::try_from(attempts).unwrap_or(u64::MAX);
                Duration::from_millis(attempts.saturating_mul(100).min(2_000))
            })
            .connect(config.nats_url.as_str())
            .await
            .map_err(|source| StartError::Nats {
                url: config.nats_url.clone(),
                source,
            })?;
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
            max_envelope_bytes: config.max_envelope_bytes,
            clock_skew_seconds: config.clock_skew_seconds,
            relay: relay.waker(),
            locks: pipeline::StreamLocks::default(),
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
            stopped,
        ));
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

    /// The public half of the log key.
    pub fn log_key(&self) -> VerifyingKey {
        self.log_key.verifying_key()
    }

    /// Stops taking requests, answers those in flight, stops the scheduler, lets the relay
    /// publish what is left, and closes the connections.
    pub async fn shutdown(self) {
        self.service.shutdown().await;
        let _ = self.stop_scheduler.send(true);
        if let Err(error) = self.scheduler.await {
            tracing::error!(%error, "the deadline scheduler failed");
        }
        self.relay.shutdown().await;
        if let Err(error) = self.client.flush().await {
            tracing::debug!(%error, "flushing NATS at shutdown");
        }
        self.pipeline.store.close().await;
        tracing::info!("umlauf has stopped");
    }
}
