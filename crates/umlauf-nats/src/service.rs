//! The NATS service `umlauf`: one endpoint for signed commands and one per query, on the
//! services API, so `nats micro ls/info/stats` sees it and replicas share requests through the
//! service's queue group.
//!
//! The service knows subjects and replies, nothing about commands: each request's payload goes to
//! a [`Handler`] the server implements, whose answer (bytes, or an [`ErrorReply`]) goes back as
//! the reply. Requests are handled concurrently, up to a bound; [`RunningService::shutdown`] stops
//! taking requests, answers those already received and waits for every handler to finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::service::{Request, ServiceExt as _};
use futures_util::stream::{self, BoxStream, StreamExt as _};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::subjects::{SERVICE_NAME, Subjects};
use crate::wire::ErrorReply;

/// The endpoints of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `<root>.v1.submit`: a signed command envelope.
    Submit,
    /// `<root>.v1.query.circulation`.
    Circulation,
    /// `<root>.v1.query.circulations`.
    Circulations,
    /// `<root>.v1.query.inbox`.
    Inbox,
    /// `<root>.v1.query.keys`.
    Keys,
    /// `<root>.v1.query.body`.
    Body,
    /// `<root>.v1.query.checkpoint`.
    Checkpoint,
    /// `<root>.v1.query.inclusion`.
    Inclusion,
    /// `<root>.v1.query.consistency`.
    Consistency,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 9] = [
        Self::Submit,
        Self::Circulation,
        Self::Circulations,
        Self::Inbox,
        Self::Keys,
        Self::Body,
        Self::Checkpoint,
        Self::Inclusion,
        Self::Consistency,
    ];

    /// The endpoint's subject below `<root>.v1.`, e.g. `query.inbox`.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Circulation => "query.circulation",
            Self::Circulations => "query.circulations",
            Self::Inbox => "query.inbox",
            Self::Keys => "query.keys",
            Self::Body => "query.body",
            Self::Checkpoint => "query.checkpoint",
            Self::Inclusion => "query.inclusion",
            Self::Consistency => "query.consistency",
        }
    }

    /// The endpoint's name in the services API (`nats micro info`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Circulation => "query-circulation",
            Self::Circulations => "query-circulations",
            Self::Inbox => "query-inbox",
            Self::Keys => "query-keys",
            Self::Body => "query-body",
            Self::Checkpoint => "query-checkpoint",
            Self::Inclusion => "query-inclusion",
            Self::Consistency => "query-consistency",
        }
    }
}

/// What answers the service's requests: the server's command pipeline and queries.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request to `endpoint` with the reply's body, or a refusal.
    fn handle(
        &self,
        endpoint: Endpoint,
        payload: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, ErrorReply>> + Send;
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The version the service announces (semver).
    pub version: String,
    /// How many requests are handled at once; further requests wait in NATS's buffer.
    pub max_in_flight: usize,
    /// How long a shutdown waits for requests already received and handlers still running.
    pub drain_timeout: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            version: "0.1.0".into(),
            max_in_flight: 512,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the NATS service: {0}")]
pub struct ServiceError(#[source] pub async_nats::Error);

/// A service that is taking requests.
#[derive(Debug)]
pub struct RunningService {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningService {
    /// Stops taking requests, answers those already received, and waits for every handler.
    pub async fn shutdown(self) {
        // The loop may have ended already; then there is nothing to stop.
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the service task failed");
        }
    }
}

/// Starts the service `umlauf` with every endpoint under `subjects`' prefix.
pub async fn start<H: Handler>(
    client: async_nats::Client,
    subjects: &Subjects,
    handler: Arc<H>,
    options: ServiceOptions,
) -> Result<RunningService, ServiceError> {
    let service = client
        .service_builder()
        .description("umlauf: signed votes for written resolution procedures")
        .start(SERVICE_NAME, options.version.clone())
        .await
        .map_err(ServiceError)?;
    let group = service.group(subjects.prefix());
    let mut endpoints: Vec<BoxStream<'static, (Endpoint, Request)>> = Vec::new();
    for endpoint in Endpoint::ALL {
        let requests = group
            .endpoint_builder()
            .name(endpoint.name())
            .add(endpoint.suffix())
            .await
            .map_err(ServiceError)?;
        endpoints.push(requests.map(move |request| (endpoint, request)).boxed());
    }
    // Once the server has seen the subscriptions, requests from other connections reach them.
    client
        .flush()
        .await
        .map_err(|error| ServiceError(Box::new(error)))?;
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(serve(
        service,
        stream::select_all(endpoints),
        handler,
        options,
        stopped,
    ));
    Ok(RunningService { stop, task })
}

async fn serve<H: Handler>(
    service: async_nats::service::Service,
    mut requests: stream::SelectAll<BoxStream<'static, (Endpoint, Request)>>,
    handler: Arc<H>,
    options: ServiceOptions,
    mut stopped: oneshot::Receiver<()>,
) {
    let permits = Arc::new(Semaphore::new(options.max_in_flight.max(1)));
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            next = requests.next() => match next {
                Some((endpoint, request)) => {
                    dispatch(&mut running, &permits, &handler, endpoint, request).await;
                }
                None => break,
            },
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    // Unsubscribe every endpoint, then answer what NATS had already delivered.
    if let Err(error) = service.stop().await {
        tracing::warn!(%error, "stopping the service");
    }
    let drain = async {
        while let Some((endpoint, request)) = requests.next().await {
            dispatch(&mut running, &permits, &handler, endpoint, request).await;
        }
        while running.join_next().await.is_some() {}
    };
    if tokio::time::timeout(options.drain_timeout, drain)
        .await
        .is_err()
    {
        tracing::warn!("requests still running when the drain timeout passed");
    }
}

async fn dispatch<H: Handler>(
    running: &mut JoinSet<()>,
    permits: &Arc<Semaphore>,
    handler: &Arc<H>,
    endpoint: Endpoint,
    request: Request,
) {
    // The semaphore is never closed, so acquiring only waits.
    let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
        return;
    };
    let handler = Arc::clone(handler);
    running.spawn(async move {
        let reply = handler
            .handle(endpoint, &request.message.payload)
            .await
            .map(Into::into)
            .map_err(|error| error.to_service_error());
        if let Err(error) = request.respond(reply).await {
            tracing::debug!(%error, "could not send a reply");
        }
        drop(permit);
    });
}
