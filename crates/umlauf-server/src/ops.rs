//! The operations endpoint: `/healthz`, `/readyz` and `/metrics` over plain HTTP on
//! `ops_address`.
//!
//! Three fixed `GET` routes answered with one response per connection need no HTTP stack: the
//! server reads the request head (bounded in size and time), answers and closes the connection.
//! The workspace has no HTTP server dependency, and this one is small enough to read at once.
//!
//! - `/healthz`: `200 ok` while the process runs.
//! - `/readyz`: `200` when the database answers, NATS is connected, the relay has not raised the
//!   fork alarm and the service is not shutting down; `503` otherwise. The JSON body names each
//!   check, what is not ready, and the relay's lag in records.
//! - `/metrics`: Prometheus metrics (OpenMetrics text format), see [`crate::metrics`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use umlauf_nats::relay::{RelayState, RelayStatus};

use crate::pipeline::Pipeline;

/// The largest request head read.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long a client may take to send its request, and a check may take to answer.
const PATIENCE: Duration = Duration::from_secs(5);

/// What the endpoints read.
#[derive(Debug)]
pub(crate) struct Sources {
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) client: async_nats::Client,
    pub(crate) relay: watch::Receiver<RelayStatus>,
    /// Set when a shutdown begins: the service is then not ready.
    pub(crate) stopping: AtomicBool,
}

/// The running operations endpoint.
#[derive(Debug)]
pub(crate) struct OpsServer {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl OpsServer {
    /// Binds `address` and serves until [`OpsServer::shutdown`].
    pub(crate) async fn start(
        address: &str,
        sources: Arc<Sources>,
    ) -> Result<Self, std::io::Error> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let sources = Arc::clone(&sources);
                            tokio::spawn(async move {
                                if let Err(error) = answer(stream, &sources).await {
                                    tracing::debug!(%error, "operations endpoint: a connection");
                                }
                            });
                        }
                        Err(error) => {
                            tracing::warn!(%error, "operations endpoint: accepting a connection");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                }
            }
        });
        tracing::info!(%address, "operations endpoint: /healthz /readyz /metrics");
        Ok(Self {
            address,
            stop,
            task,
        })
    }

    /// The address it listens on (with the port chosen, if it was 0).
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops listening.
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the operations endpoint failed");
        }
    }
}

/// Reads one request head and answers it.
async fn answer(mut stream: TcpStream, sources: &Sources) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0_u8; 1024];
        while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD
        {
            let read = stream.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            head.extend_from_slice(buffer.get(..read).unwrap_or_default());
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if read.is_err() {
        return Ok(());
    }
    read.unwrap_or(Ok(()))?;
    let line = head.split(|byte| *byte == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/healthz") => (200, "text/plain; charset=utf-8", "ok\n".to_owned()),
        ("GET" | "HEAD", "/readyz") => {
            let readiness = readiness(sources).await;
            let status = if readiness.ready { 200 } else { 503 };
            (status, "application/json", readiness.body.to_string())
        }
        ("GET" | "HEAD", "/metrics") => match metrics(sources).await {
            Ok(text) => (
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            Err(error) => (500, "text/plain; charset=utf-8", format!("{error}\n")),
        },
        ("GET" | "HEAD", _) => (404, "text/plain; charset=utf-8", "not found\n".to_owned()),
        _ => (
            405,
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".to_owned(),
        ),
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&response).await?;
    stream.shutdown().await
}

/// The readiness checks' outcome.
#[derive(Debug)]
pub(crate) struct Readiness {
    /// Whether every check passed.
    pub(crate) ready: bool,
    /// `{"ready": bool, "not_ready": [names], "checks": {name: {...}}}`.
    pub(crate) body: serde_json::Value,
}

/// Runs the readiness checks.
pub(crate) async fn readiness(sources: &Sources) -> Readiness {
    let mut not_ready = Vec::new();
    let head = tokio::time::timeout(PATIENCE, sources.pipeline.store.head()).await;
    let (database, head) = match head {
        Ok(Ok(head)) => (json!({"ok": true}), Some(head.position)),
        Ok(Err(error)) => {
            not_ready.push("database");
            (json!({"ok": false, "error": error.to_string()}), None)
        }
        Err(_) => {
            not_ready.push("database");
            (json!({"ok": false, "error": "no answer in time"}), None)
        }
    };
    let state = sources.client.connection_state();
    let connected = state == async_nats::connection::State::Connected;
    if !connected {
        not_ready.push("nats");
    }
    let nats = json!({"ok": connected, "state": state.to_string()});
    let status = sources.relay.borrow().clone();
    let (relay_state, alarm) = match &status.state {
        RelayState::Starting => ("starting", None),
        RelayState::CaughtUp => ("caught_up", None),
        RelayState::Publishing => ("publishing", None),
        RelayState::StreamAhead { .. } => ("stream_ahead", None),
        RelayState::Unavailable { error } => ("unavailable", Some(error.clone())),
        RelayState::Forked { position, .. } => (
            "forked",
            Some(format!(
                "the log stream holds a different record at position {position}"
            )),
        ),
        #[allow(unreachable_patterns)]
        _ => ("unknown", None),
    };
    let forked = status.is_forked();
    if forked {
        not_ready.push("relay");
    }
    let lag = head.map(|head| head.saturating_sub(status.published));
    let relay = json!({
        "ok": !forked,
        "state": relay_state,
        "error": alarm,
        "published": status.published,
        "lag_records": lag,
    });
    let stopping = sources.stopping.load(Ordering::SeqCst);
    if stopping {
        not_ready.push("shutdown");
    }
    let ready = not_ready.is_empty();
    Readiness {
        ready,
        body: json!({
            "ready": ready,
            "not_ready": not_ready,
            "checks": {
                "database": database,
                "nats": nats,
                "relay": relay,
                "shutdown": {"ok": !stopping},
            },
        }),
    }
}

/// The metrics in the text format, with the gauges read now.
async fn metrics(sources: &Sources) -> Result<String, String> {
    let pipeline = &sources.pipeline;
    let head = tokio::time::timeout(PATIENCE, pipeline.store.head())
        .await
        .map_err(|_| "the database gave no answer in time".to_owned())?
        .map_err(|error| error.to_string())?;
    pipeline
        .directory
        .catch_up(&pipeline.store, head.position)
        .await
        .map_err(|error| error.to_string())?;
    let open = pipeline.directory.open_circulations().await;
    let state = crate::metrics::State {
        head: head.position,
        published: sources.relay.borrow().published,
        open_circulations: u64::try_from(open.len()).unwrap_or(u64::MAX),
    };
    pipeline
        .metrics
        .encode(&state)
        .map_err(|error| error.to_string())
}

/// The operations side of a running service: the endpoint and the reminders.
#[derive(Debug)]
pub(crate) struct Operations {
    sources: Arc<Sources>,
    endpoint: Option<OpsServer>,
    reminders: Option<JoinHandle<()>>,
}

impl Operations {
    /// Serves the endpoint on `config.ops_address` (unless empty), and sends reminders (unless
    /// `reminder_before` is off) until `stop` turns true.
    pub(crate) async fn start(
        config: &crate::Config,
        sources: Sources,
        subjects: &umlauf_nats::Subjects,
        settings: &umlauf_nats::streams::StreamSettings,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, crate::StartError> {
        let sources = Arc::new(sources);
        let reminders = match config.reminder_before_duration()? {
            Some(before) => {
                let jetstream = async_nats::jetstream::new(sources.client.clone());
                umlauf_nats::streams::ensure_reminders_stream(
                    &jetstream,
                    subjects,
                    settings,
                    before.saturating_add(crate::reminders::WINDOW_MARGIN),
                )
                .await?;
                Some(tokio::spawn(crate::reminders::run(
                    Arc::clone(&sources.pipeline),
                    jetstream,
                    subjects.clone(),
                    before,
                    config.deadline_check_interval(),
                    stop,
                )))
            }
            None => None,
        };
        // An address that cannot be bound (another process on the port) leaves the service
        // running without the endpoint: commands matter more than metrics, and the probes that
        // cannot reach `/readyz` make the missing endpoint visible to the operator.
        let endpoint = match config.ops_socket_address()? {
            Some(address) => {
                match OpsServer::start(&address.to_string(), Arc::clone(&sources)).await {
                    Ok(endpoint) => Some(endpoint),
                    Err(error) => {
                        tracing::error!(
                            %address,
                            %error,
                            "the operations endpoint (/healthz, /readyz, /metrics) is NOT served: \
                             set ops_address to a free address, or empty to turn it off"
                        );
                        None
                    }
                }
            }
            None => None,
        };
        Ok(Self {
            sources,
            endpoint,
            reminders,
        })
    }

    /// The endpoint's address, if it is served.
    pub(crate) fn address(&self) -> Option<SocketAddr> {
        self.endpoint.as_ref().map(OpsServer::address)
    }

    /// From now on `/readyz` answers 503 (`shutdown`), so load balancers stop sending work.
    pub(crate) fn begin_shutdown(&self) {
        self.sources.stopping.store(true, Ordering::SeqCst);
    }

    /// Waits for the reminders to stop (they stop with the scheduler), then stops the endpoint.
    pub(crate) async fn shutdown(self) {
        if let Some(reminders) = self.reminders
            && let Err(error) = reminders.await
        {
            tracing::error!(%error, "the reminders failed");
        }
        if let Some(endpoint) = self.endpoint {
            endpoint.shutdown().await;
        }
    }
}
