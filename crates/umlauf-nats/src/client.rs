//! Client helpers: what a signer, a member's systems or a subscriber needs to talk to the service.
//!
//! [`Client`] connects to NATS under one deployment's [`Subjects`], submits signed envelopes and
//! turns the reply into [`Submitted`] (the reply with its records parsed) or a
//! [`ClientError::Refused`] carrying the stable code and message of the wire contract's error
//! headers, runs the queries, and follows decisions with a JetStream pull consumer
//! ([`DecisionFeed`]). The JSON bodies are the contract's own types from [`crate::wire`].
//!
//! Nothing here signs: callers sign with `umlauf_proof::dsse::sign` and hand over the envelope,
//! so private keys never pass through this crate.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use umlauf_domain::ids::{BodyId, CirculationId, MemberId};
use umlauf_domain::read_model::{CirculationStatus, KeyStatus};
use umlauf_domain::{Record, StreamId};
use umlauf_proof::dsse::Envelope;

use crate::subjects::{SERVICE_NAME, Subjects};
use crate::wire::{
    BodyQuery, BodyView, CheckpointQuery, CheckpointReply, CirculationQuery, CirculationsQuery,
    CirculationsReply, ConsistencyQuery, ConsistencyReply, DecisionMessage, ErrorReply, InboxQuery,
    InclusionQuery, InclusionReply, KeysReply, SubmitReply, hashes_from_hex,
};
use umlauf_proof::merkle::Hash;

/// How long a request waits for the service by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// NATS could not be reached.
    #[error("cannot connect to NATS at {url}: {detail}")]
    Connect {
        /// The server URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The service refused the request; nothing was written. Displays as `<code>: <message>`.
    #[error("{}: {}", .0.code, .0.message)]
    Refused(ErrorReply),
    /// Nobody serves the subject: the service is not running under this subject root.
    #[error(
        "no umlauf service answers on {subject}: is `umlauf serve` running with this subject root?"
    )]
    NoService {
        /// The subject asked.
        subject: String,
    },
    /// The service did not answer in time. A submit may still have been recorded: submitting the
    /// same envelope again is safe, the service then replies with the first result.
    #[error("the umlauf service did not answer on {subject} within {timeout:?}")]
    Timeout {
        /// The subject asked.
        subject: String,
        /// How long the client waited.
        timeout: Duration,
    },
    /// The request could not be sent.
    #[error("request on {subject} failed: {detail}")]
    Request {
        /// The subject asked.
        subject: String,
        /// What went wrong.
        detail: String,
    },
    /// The reply did not have the contract's form.
    #[error("unexpected reply on {subject}: {detail}")]
    BadReply {
        /// The subject asked.
        subject: String,
        /// What was wrong with it.
        detail: String,
    },
    /// A JetStream operation failed.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// The receipts of an accepted command could not be checked, or do not verify with the
    /// log key.
    #[error("receipt: {0}")]
    Receipt(String),
}

impl ClientError {
    /// The refusal, if the service refused.
    pub fn refusal(&self) -> Option<&ErrorReply> {
        match self {
            Self::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }

    /// Whether no service answered at all (none running, or none in time).
    pub fn is_unanswered(&self) -> bool {
        matches!(self, Self::NoService { .. } | Self::Timeout { .. })
    }
}

/// An accepted command: the service's reply and the records it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The reply as it came.
    pub reply: SubmitReply,
    /// The records the command caused, parsed from their exact bytes, in position order.
    pub records: Vec<Record>,
}

impl Submitted {
    /// Reads a submit reply and the records in it.
    pub fn from_json(payload: &[u8]) -> Result<Submitted, String> {
        let reply: SubmitReply =
            serde_json::from_slice(payload).map_err(|error| error.to_string())?;
        let records = reply
            .record_bytes()
            .map_err(|error| format!("a record is not base64: {error}"))?
            .iter()
            .map(|bytes| Record::from_bytes(bytes).map_err(|error| error.to_string()))
            .collect::<Result<_, _>>()?;
        Ok(Submitted { reply, records })
    }

    /// Whether the same command had been accepted before (the records are the first result's).
    pub fn duplicate(&self) -> bool {
        self.reply.duplicate
    }

    /// The log positions of the records.
    pub fn positions(&self) -> Vec<u64> {
        self.records.iter().map(|record| record.position).collect()
    }
}

/// A connection to one umlauf deployment.
#[derive(Debug, Clone)]
pub struct Client {
    nats: async_nats::Client,
    subjects: Subjects,
    timeout: Duration,
}

impl Client {
    /// Connects to the NATS server at `url` (or the comma-separated servers it lists), within
    /// `connect_timeout`.
    pub async fn connect(
        url: &str,
        subjects: Subjects,
        connect_timeout: Duration,
    ) -> Result<Client, ClientError> {
        Client::connect_with(url, None, subjects, connect_timeout).await
    }

    /// Connects as [`Client::connect`] does, authenticating with a NATS credentials file when one
    /// is given.
    pub async fn connect_with(
        url: &str,
        credentials: Option<&std::path::Path>,
        subjects: Subjects,
        connect_timeout: Duration,
    ) -> Result<Client, ClientError> {
        let options = async_nats::ConnectOptions::new()
            .name("umlauf client")
            .connection_timeout(connect_timeout);
        let nats = crate::connect::connect(options, url, credentials)
            .await
            .map_err(|error| ClientError::Connect {
                url: url.to_owned(),
                detail: error.to_string(),
            })?;
        Ok(Client::new(nats, subjects))
    }

    /// A client over an existing connection.
    pub fn new(nats: async_nats::Client, subjects: Subjects) -> Client {
        Client {
            nats,
            subjects,
            timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// The same client with another request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The NATS connection.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// The deployment's subjects.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// Sends a request and returns the payload of a successful reply; error headers become
    /// [`ClientError::Refused`].
    pub async fn request(
        &self,
        subject: String,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ClientError> {
        let request = async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(timeout));
        let reply = self
            .nats
            .send_request(subject.clone(), request)
            .await
            .map_err(|error| match error.kind() {
                async_nats::RequestErrorKind::NoResponders => ClientError::NoService {
                    subject: subject.clone(),
                },
                async_nats::RequestErrorKind::TimedOut => ClientError::Timeout {
                    subject: subject.clone(),
                    timeout,
                },
                _ => ClientError::Request {
                    subject: subject.clone(),
                    detail: error.to_string(),
                },
            })?;
        if let Some(refusal) = ErrorReply::from_headers(reply.headers.as_ref()) {
            return Err(ClientError::Refused(refusal));
        }
        Ok(reply.payload.to_vec())
    }

    /// Submits a signed command envelope to `<root>.v1.submit`.
    pub async fn submit(&self, envelope: &Envelope) -> Result<Submitted, ClientError> {
        self.submit_json(envelope.to_json().into_bytes()).await
    }

    /// Submits an envelope already in its JSON form, byte for byte.
    pub async fn submit_json(&self, envelope: Vec<u8>) -> Result<Submitted, ClientError> {
        let subject = self.subjects.submit();
        let payload = self
            .request(subject.clone(), envelope, self.timeout)
            .await?;
        Submitted::from_json(&payload).map_err(|detail| ClientError::BadReply { subject, detail })
    }

    /// Runs the query `<root>.v1.query.<name>` and parses its JSON reply.
    pub async fn query<Q: serde::Serialize, R: DeserializeOwned>(
        &self,
        name: &str,
        request: &Q,
    ) -> Result<R, ClientError> {
        let subject = self.subjects.query(name);
        let request = serde_json::to_vec(request).map_err(|error| ClientError::Request {
            subject: subject.clone(),
            detail: error.to_string(),
        })?;
        let payload = self.request(subject.clone(), request, self.timeout).await?;
        serde_json::from_slice(&payload).map_err(|error| ClientError::BadReply {
            subject,
            detail: error.to_string(),
        })
    }

    /// One circulation's status.
    pub async fn circulation(
        &self,
        circulation: CirculationId,
    ) -> Result<CirculationStatus, ClientError> {
        self.query("circulation", &CirculationQuery { circulation })
            .await
    }

    /// A body's circulations, all or only those in `state`.
    pub async fn circulations(
        &self,
        body: &BodyId,
        state: Option<umlauf_domain::read_model::CirculationState>,
    ) -> Result<Vec<CirculationStatus>, ClientError> {
        let query = CirculationsQuery {
            body: body.clone(),
            state,
        };
        let reply: CirculationsReply = self.query("circulations", &query).await?;
        Ok(reply.circulations)
    }

    /// The open circulations awaiting `member`'s answer.
    pub async fn inbox(
        &self,
        body: &BodyId,
        member: &MemberId,
    ) -> Result<Vec<CirculationStatus>, ClientError> {
        let query = InboxQuery {
            body: body.clone(),
            member: member.clone(),
        };
        let reply: CirculationsReply = self.query("inbox", &query).await?;
        Ok(reply.circulations)
    }

    /// Every key of a body, active and revoked.
    pub async fn keys(&self, body: &BodyId) -> Result<Vec<KeyStatus>, ClientError> {
        let reply: KeysReply = self
            .query("keys", &BodyQuery { body: body.clone() })
            .await?;
        Ok(reply.keys)
    }

    /// The signed checkpoint note for tree size `size`, or the newest one.
    pub async fn checkpoint(&self, size: Option<u64>) -> Result<String, ClientError> {
        let reply: CheckpointReply = self.query("checkpoint", &CheckpointQuery { size }).await?;
        Ok(reply.checkpoint)
    }

    /// The inclusion proof of the record at `position` in the tree of the first `size` records.
    pub async fn inclusion_proof(
        &self,
        position: u64,
        size: u64,
    ) -> Result<Vec<Hash>, ClientError> {
        let reply: InclusionReply = self
            .query("inclusion", &InclusionQuery { position, size })
            .await?;
        self.hashes("inclusion", &reply.proof)
    }

    /// The consistency proof from the tree of `old_size` records to that of `new_size`.
    pub async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, ClientError> {
        let reply: ConsistencyReply = self
            .query("consistency", &ConsistencyQuery { old_size, new_size })
            .await?;
        self.hashes("consistency", &reply.proof)
    }

    fn hashes(&self, query: &str, hashes: &[String]) -> Result<Vec<Hash>, ClientError> {
        hashes_from_hex(hashes).ok_or_else(|| ClientError::BadReply {
            subject: self.subjects.query(query),
            detail: "a proof hash is not 64 hex digits".into(),
        })
    }

    /// The body: name, members, groups, weight tables, presets.
    pub async fn body(&self, body: &BodyId) -> Result<BodyView, ClientError> {
        self.query("body", &BodyQuery { body: body.clone() }).await
    }

    /// Whether an umlauf service answers under this deployment's subject root within `timeout`.
    ///
    /// `$SRV.PING.umlauf` would be answered by a service under any root, so this asks a query of
    /// this root instead: any answer, a refusal included, means a service is there.
    pub async fn service_answers(&self, timeout: Duration) -> bool {
        let subject = self.subjects.query("keys");
        let probe = serde_json::json!({ "body": "probe" })
            .to_string()
            .into_bytes();
        match self.request(subject, probe, timeout).await {
            Ok(_) | Err(ClientError::Refused(_) | ClientError::BadReply { .. }) => true,
            Err(_) => false,
        }
    }

    /// Pings the service by its name (`$SRV.PING.umlauf`): whether any umlauf service, under any
    /// root, answers within `timeout`.
    pub async fn ping_any(&self, timeout: Duration) -> bool {
        let subject = format!("$SRV.PING.{SERVICE_NAME}");
        self.request(subject, Vec::new(), timeout).await.is_ok()
    }

    /// The first record of a circulation's stream, `CirculationOpened`, read from the JetStream
    /// log stream: it carries the proposal text, which the status does not.
    pub async fn opening_record(&self, circulation: CirculationId) -> Result<Record, ClientError> {
        let js = jetstream::new(self.nats.clone());
        let stream = js
            .get_stream(self.subjects.log_stream())
            .await
            .map_err(|error| {
                ClientError::JetStream(format!("stream {}: {error}", self.subjects.log_stream()))
            })?;
        let subject = self
            .subjects
            .log_record(&StreamId::Circulation(circulation));
        let message = stream
            .get_first_raw_message_by_subject(&subject, 1)
            .await
            .map_err(|error| ClientError::JetStream(format!("{subject}: {error}")))?;
        Record::from_bytes(&message.payload)
            .map_err(|error| ClientError::JetStream(format!("{subject}: {error}")))
    }

    /// Follows decisions on the decisions stream: of one body (or of all), or of one circulation.
    ///
    /// With `durable` the consumer is durable under that name: the server remembers what was
    /// acknowledged, so a subscriber that was offline resumes where it stopped. Without it the
    /// consumer is ephemeral and delivers every stored decision matching the filter.
    pub async fn follow_decisions(
        &self,
        filter: DecisionFilter<'_>,
        durable: Option<&str>,
    ) -> Result<DecisionFeed, ClientError> {
        let filter_subject = match filter {
            DecisionFilter::All => self.subjects.decisions_of(None),
            DecisionFilter::Body(body) => self.subjects.decisions_of(Some(body)),
            DecisionFilter::Circulation(body, circulation) => {
                self.subjects.decision(body, &circulation)
            }
        };
        let js = jetstream::new(self.nats.clone());
        let stream_name = self.subjects.decisions_stream().to_owned();
        let stream = js.get_stream(&stream_name).await.map_err(|error| {
            ClientError::JetStream(format!(
                "stream {stream_name}: {error} (is `umlauf serve` running with this stream prefix?)"
            ))
        })?;
        let config = pull::Config {
            durable_name: durable.map(str::to_owned),
            description: Some("umlauf decision subscriber".to_owned()),
            filter_subject: filter_subject.clone(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..pull::Config::default()
        };
        let consumer = match durable {
            Some(name) => {
                let consumer = stream
                    .get_or_create_consumer(name, config)
                    .await
                    .map_err(|error| ClientError::JetStream(format!("consumer {name}: {error}")))?;
                let existing = &consumer.cached_info().config.filter_subject;
                if *existing != filter_subject {
                    return Err(ClientError::JetStream(format!(
                        "the durable consumer {name} follows {existing}, not {filter_subject}: \
                         choose another durable name"
                    )));
                }
                consumer
            }
            None => stream
                .create_consumer(config)
                .await
                .map_err(|error| ClientError::JetStream(format!("consumer: {error}")))?,
        };
        let messages = consumer
            .messages()
            .await
            .map_err(|error| ClientError::JetStream(format!("consumer: {error}")))?;
        Ok(DecisionFeed { messages })
    }
}

/// Which decisions to follow.
#[derive(Debug, Clone, Copy)]
pub enum DecisionFilter<'a> {
    /// Every body's.
    All,
    /// One body's.
    Body(&'a BodyId),
    /// One circulation's.
    Circulation(&'a BodyId, CirculationId),
}

/// Decisions as a JetStream pull consumer delivers them.
pub struct DecisionFeed {
    messages: pull::Stream,
}

impl std::fmt::Debug for DecisionFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionFeed").finish_non_exhaustive()
    }
}

impl DecisionFeed {
    /// The next decision; `None` when the consumer ends. Acknowledge it with
    /// [`DecisionDelivery::ack`] once it has been handled, or it is delivered again.
    pub async fn next(&mut self) -> Option<Result<DecisionDelivery, ClientError>> {
        let message = match self.messages.next().await? {
            Ok(message) => message,
            Err(error) => return Some(Err(ClientError::JetStream(error.to_string()))),
        };
        let stream_sequence = message.info().ok().map(|info| info.stream_sequence);
        let decision = serde_json::from_slice::<DecisionMessage>(&message.payload)
            .map_err(|error| format!("not a decision message: {error}"));
        Some(Ok(DecisionDelivery {
            decision,
            stream_sequence,
            message,
        }))
    }
}

/// One delivered decision message.
pub struct DecisionDelivery {
    /// The decision, or why its payload could not be read (the raw payload is still available).
    pub decision: Result<DecisionMessage, String>,
    /// The message's sequence in the decisions stream.
    pub stream_sequence: Option<u64>,
    message: jetstream::Message,
}

impl std::fmt::Debug for DecisionDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionDelivery")
            .field("decision", &self.decision)
            .field("stream_sequence", &self.stream_sequence)
            .finish_non_exhaustive()
    }
}

impl DecisionDelivery {
    /// The subject the decision arrived on.
    pub fn subject(&self) -> &str {
        &self.message.subject
    }

    /// The message's exact payload.
    pub fn payload(&self) -> &[u8] {
        &self.message.payload
    }

    /// Acknowledges the message: a durable consumer will not deliver it again.
    pub async fn ack(&self) -> Result<(), ClientError> {
        self.message
            .ack()
            .await
            .map_err(|error| ClientError::JetStream(format!("ack: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ERROR_CODE_HEADER, ERROR_HEADER, encode_base64};

    #[test]
    fn refusals_display_as_code_and_message() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(ERROR_CODE_HEADER, "409");
        headers.insert(
            ERROR_HEADER,
            "deadline_passed: the deadline 2026-03-20T17:00:00Z has passed",
        );
        let refusal = ErrorReply::from_headers(Some(&headers)).unwrap();
        let error = ClientError::Refused(refusal);
        assert_eq!(
            error.to_string(),
            "deadline_passed: the deadline 2026-03-20T17:00:00Z has passed"
        );
        assert_eq!(error.refusal().map(|refusal| refusal.status), Some(409));
    }

    #[test]
    fn submit_replies_yield_their_records_and_positions() {
        let first = br#"{"position":7,"stream":"body/it-planungsrat","version":3,"type":"MemberRetired","schema":1,"recorded_at":"2026-03-02T09:00:00Z","data":{"member":"DE-SL"}}"#;
        let second = br#"{"position":8,"stream":"body/it-planungsrat","version":4,"type":"MemberRetired","schema":1,"recorded_at":"2026-03-02T09:00:00Z","data":{"member":"DE-HB"}}"#;
        let reply = format!(
            r#"{{"command_id":"0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10","duplicate":false,"records":["{}","{}"],"receipts":[]}}"#,
            encode_base64(first),
            encode_base64(second)
        );
        let submitted = Submitted::from_json(reply.as_bytes()).unwrap();
        assert_eq!(submitted.positions(), vec![7, 8]);
        assert!(!submitted.duplicate());
        assert!(Submitted::from_json(br#"{"command_id":"0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10","duplicate":false,"records":["!"],"receipts":[]}"#).is_err());
    }
}
