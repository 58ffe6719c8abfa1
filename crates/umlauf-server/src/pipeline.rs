//! The command pipeline and the queries: what the NATS service's endpoints do.
//!
//! A command goes through: the size limit, the envelope's parsing (the payload stays bytes), the
//! key named by the signature's key id (a genesis key, or a key registered in any body), the
//! signature over the exact bytes received, and only then the command's parsing; the command id
//! (the same command again gets the first result), the clock skew; then, in a loop that starts
//! over when another append wins the race: the body and circulation as the log says, the
//! authorization of the key, the domain's decision at the service's clock, and the append at the
//! expected version with the read models computed from the new state. A circulation's command
//! also names the version of its body's stream it was decided on (keys, membership), so a vote
//! racing its key's revocation is either recorded before the revocation or decided again and
//! refused. Under trust on first use a constitution bringing its own genesis key must be the
//! log's first record; when another replica's constitution wins, the command is judged again
//! against the genesis key the log trusted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use umlauf_domain::body::{self, Body};
use umlauf_domain::circulation::{self, Circulation};
use umlauf_domain::ids::{KeyId, PublicKey};
use umlauf_domain::read_model::CirculationStatus;
use umlauf_domain::{Command, DomainError, State, StreamId, authorize, decide};
use umlauf_nats::service::{Endpoint, Handler};
use umlauf_nats::wire::{
    BodyQuery, BodyView, CheckpointQuery, CheckpointReply, CirculationQuery, CirculationsQuery,
    CirculationsReply, ConsistencyQuery, ConsistencyReply, ErrorReply, InboxQuery, InclusionQuery,
    InclusionReply, KeysReply, SubmitReply, hashes_to_hex,
};
use umlauf_proof::VerifyingKey;
use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE, Envelope};
use umlauf_proof::keys::public_key_from_bytes;
use umlauf_proof::note::NoteVerifier;
use umlauf_proof::receipt::Receipt;
use umlauf_store::{Append, Appended, Cause, Head, Projection, Store, StoreError};

use crate::directory::Directory;
use crate::error::RequestError;

/// How long a command is decided again after losing races for its stream before the service
/// answers `busy`.
const RETRY_BUDGET: Duration = Duration::from_secs(5);

/// How many locks the streams are spread over (see [`StreamLocks`]).
const STREAM_LOCKS: usize = 1024;

/// Commands on one stream are decided and appended one at a time within this process, so they
/// do not lose optimistic-concurrency races to each other (only to other replicas). The streams
/// share a fixed set of locks by hash; two streams on one lock merely wait for each other.
#[derive(Debug)]
pub(crate) struct StreamLocks(Vec<tokio::sync::Mutex<()>>);

impl Default for StreamLocks {
    fn default() -> Self {
        Self(
            (0..STREAM_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        )
    }
}

impl StreamLocks {
    /// Takes the lock of `stream`; `true` if another command held it meanwhile (so the state
    /// read before is stale).
    async fn lock(&self, stream: &StreamId) -> (Option<tokio::sync::MutexGuard<'_, ()>>, bool) {
        use std::hash::{Hash as _, Hasher as _};
        // `DefaultHasher::new` is fixed within a process, so a stream always gets the same lock.
        let mut hasher = std::hash::DefaultHasher::new();
        stream.hash(&mut hasher);
        let count = u64::try_from(self.0.len()).unwrap_or(1).max(1);
        let index = usize::try_from(hasher.finish() % count).unwrap_or_default();
        let Some(lock) = self.0.get(index) else {
            return (None, false);
        };
        match lock.try_lock() {
            Ok(guard) => (Some(guard), false),
            Err(_) => (Some(lock.lock().await), true),
        }
    }
}

/// The service's clock: never earlier than the log's newest record.
pub(crate) fn recording_time(head: &Head) -> DateTime<Utc> {
    let now = Utc::now();
    match head.recorded_at {
        Some(newest) if newest > now => newest,
        _ => now,
    }
}

/// Where the signature's key came from.
enum Signer {
    /// A configured genesis key, or the one the log's first constitution trusted.
    Genesis,
    /// A key registered in a body.
    Registered,
    /// Trust on first use, before any body exists: the key a constitution names for itself.
    Bootstrap,
}

/// The command pipeline, the queries, and what they share.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(crate) store: Store,
    pub(crate) directory: Directory,
    /// The configured genesis keys; empty means trust on first use.
    pub(crate) genesis: Vec<(KeyId, VerifyingKey)>,
    pub(crate) max_envelope_bytes: usize,
    pub(crate) clock_skew_seconds: u64,
    /// Woken after every append, so the relay publishes at once.
    pub(crate) relay: Arc<Notify>,
    /// One command per stream at a time.
    pub(crate) locks: StreamLocks,
    /// The log's verifier key, to read the checkpoints the store signs.
    pub(crate) log_verifier: NoteVerifier,
    /// The service's Prometheus metrics.
    pub(crate) metrics: crate::metrics::Metrics,
}

impl Pipeline {
    /// Judges and, if accepted, records one signed command.
    pub(crate) async fn submit(&self, bytes: &[u8]) -> Result<SubmitReply, RequestError> {
        if bytes.len() > self.max_envelope_bytes {
            return Err(RequestError::TooLarge {
                size: bytes.len(),
                limit: self.max_envelope_bytes,
            });
        }
        let envelope = Envelope::from_json(bytes)?;
        let key_id = envelope
            .signatures
            .first()
            .and_then(|signature| KeyId::parse(&signature.keyid).ok())
            .unwrap_or(KeyId([0; 32]));
        let head = self.store.head().await?;
        self.directory.catch_up(&self.store, head.position).await?;
        let (signer, key) = self.find_key(&key_id, &envelope.payload).await?;
        let payload = dsse::verify(&envelope, COMMAND_PAYLOAD_TYPE, &key)?;
        let command = Command::from_json(payload)?;
        let cause = Cause {
            command_id: command.command_id,
            envelope: serde_json::from_str(&envelope.to_json())
                .map_err(|error| RequestError::Internal(error.to_string()))?,
            digest: envelope.content_digest(),
        };

        let now = recording_time(&head);
        let skew = (now - command.issued_at).num_seconds().unsigned_abs();
        if skew > self.clock_skew_seconds {
            let refusal = RequestError::ClockSkew {
                issued_at: command.issued_at,
                now,
                allowed_seconds: self.clock_skew_seconds,
            };
            return self.first_result_or(&command, &cause, refusal).await;
        }

        let mut signer = signer;
        let mut genesis = self.genesis_set(&signer, &key_id).await;
        let (_turn, waited) = self.locks.lock(&command.stream()).await;
        let mut head = head;
        if waited {
            head = self.store.head().await?;
            self.directory.catch_up(&self.store, head.position).await?;
        }
        let started = tokio::time::Instant::now();
        for attempt in 0_u32.. {
            if attempt > 0 {
                if started.elapsed() > RETRY_BUDGET {
                    break;
                }
                // Another replica's append won: back off a random while, longer each time, and
                // decide again on the state as it is now.
                let ceiling = 1_u64 << attempt.min(6);
                let pause = rand::random::<u64>() % (ceiling + 1);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                head = self.store.head().await?;
                self.directory.catch_up(&self.store, head.position).await?;
                if matches!(signer, Signer::Bootstrap) {
                    // Another constitution became the log's first record: the command is judged
                    // again against the genesis key the log trusted.
                    let (found, key) = self.find_key(&key_id, &envelope.payload).await?;
                    dsse::verify(&envelope, COMMAND_PAYLOAD_TYPE, &key)?;
                    signer = found;
                    genesis = self.genesis_set(&signer, &key_id).await;
                }
            }
            let mut append = match self
                .decide(&command, &key_id, &genesis, &cause, &head)
                .await
            {
                Ok(append) => append,
                Err(refusal) => return self.first_result_or(&command, &cause, refusal).await,
            };
            if matches!(signer, Signer::Bootstrap) {
                // Trust on first use: only one constitution can be the log's first record, also
                // with several replicas racing; the others lose and are judged again.
                append.expected_head = Some(0);
            }
            let appending = std::time::Instant::now();
            let appended = self.store.append(append).await;
            self.metrics.append(appending.elapsed(), &appended);
            match appended {
                Ok(appended) => {
                    if !appended.duplicate {
                        self.relay.notify_one();
                        if matches!(signer, Signer::Bootstrap) {
                            tracing::warn!(
                                genesis_key = %PublicKey(key.to_bytes()),
                                body = %command.body,
                                "TRUST ON FIRST USE: no genesis keys are configured, so the key \
                                 that constituted the first body is now this deployment's genesis \
                                 key; configure genesis_keys to pin it"
                            );
                        }
                    }
                    return self.reply(&command, &appended).await;
                }
                Err(StoreError::Conflict { .. } | StoreError::ClockBehind { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        tracing::warn!(command_id = %command.command_id, "command lost every race for its stream");
        Err(RequestError::Busy)
    }

    /// The key that made the signature, found by the envelope's key id.
    async fn find_key(
        &self,
        key_id: &KeyId,
        payload: &[u8],
    ) -> Result<(Signer, VerifyingKey), RequestError> {
        if let Some((_, key)) = self.genesis.iter().find(|(id, _)| id == key_id) {
            return Ok((Signer::Genesis, *key));
        }
        let first_genesis = self.directory.first_genesis().await;
        if self.genesis.is_empty()
            && let Some(genesis) = first_genesis
            && KeyId::of(&genesis) == *key_id
        {
            let key = public_key_from_bytes(&genesis.0)?;
            return Ok((Signer::Genesis, key));
        }
        if let Some(key) = self.directory.key(key_id).await {
            return Ok((Signer::Registered, key));
        }
        if self.genesis.is_empty()
            && first_genesis.is_none()
            && let Some(key) = named_genesis_key(payload).filter(|key| KeyId::of(key) == *key_id)
        {
            // A constitution names the genesis key that signs it, so the signature can be checked
            // before anything in the payload is trusted. Only the first constitution of a log
            // without configured genesis keys may bring its own.
            let key = public_key_from_bytes(&key.0)?;
            return Ok((Signer::Bootstrap, key));
        }
        Err(DomainError::UnknownKey(*key_id).into())
    }

    /// The genesis keys a command is authorized against.
    async fn genesis_set(&self, signer: &Signer, key_id: &KeyId) -> BTreeSet<KeyId> {
        if !self.genesis.is_empty() {
            return self.genesis.iter().map(|(id, _)| *id).collect();
        }
        match (signer, self.directory.first_genesis().await) {
            (_, Some(first)) => BTreeSet::from([KeyId::of(&first)]),
            (Signer::Bootstrap, None) => BTreeSet::from([*key_id]),
            _ => BTreeSet::new(),
        }
    }

    /// A command that would be refused may have been recorded before (a client sending it again
    /// after a lost reply, even much later): then it gets its first result; a command id recorded
    /// with other content is `command_id_reused`. An accepted command needs no such look-up: the
    /// store recognises it on append.
    async fn first_result_or(
        &self,
        command: &Command,
        cause: &Cause,
        refusal: RequestError,
    ) -> Result<SubmitReply, RequestError> {
        match self.recorded(cause).await? {
            Some(first) => self.reply(command, &first).await,
            None => Err(refusal),
        }
    }

    /// The first result of this command, if its id was recorded before with the same content;
    /// `command_id_reused` if with other content.
    async fn recorded(&self, cause: &Cause) -> Result<Option<Appended>, RequestError> {
        let records = self.store.command_records(&cause.command_id).await?;
        let Some(first) = records.first() else {
            return Ok(None);
        };
        let digest = first
            .record
            .envelope
            .as_ref()
            .and_then(|envelope| serde_json::from_value::<Envelope>(envelope.clone()).ok())
            .map(|envelope| envelope.content_digest());
        if digest != Some(cause.digest) {
            return Err(StoreError::CommandIdReused {
                command_id: cause.command_id,
            }
            .into());
        }
        Ok(Some(Appended {
            records,
            duplicate: true,
            checkpoint: None,
        }))
    }

    /// Decides the command on the state as the log says at `head`: the append it makes.
    async fn decide(
        &self,
        command: &Command,
        key_id: &KeyId,
        genesis: &BTreeSet<KeyId>,
        cause: &Cause,
        head: &Head,
    ) -> Result<Append, RequestError> {
        let body = self.directory.body(&command.body).await;
        authorize(&body, command, key_id, genesis)?;
        let now = recording_time(head);
        let stream = command.stream();
        let append = match &stream {
            StreamId::Circulation(id) => {
                let circulation = match self.directory.circulation(id).await {
                    Some(open) => Circulation::clone(&open),
                    None => self.circulation(&stream).await?,
                };
                let state = State {
                    body: &body,
                    circulation: Some(&circulation),
                };
                let events = decide(state, command, now)?;
                let expected_version = circulation.version;
                let after = events.iter().fold(circulation, circulation::evolve);
                Append {
                    stream,
                    expected_version,
                    projection: Projection::of_circulation(&after),
                    events,
                    // The decision read the body's keys and membership: a key revoked or a
                    // member retired meanwhile makes the append lose, and it is decided again.
                    depends_on: vec![(StreamId::Body(command.body.clone()), body.version)],
                    expected_head: None,
                    recorded_at: now,
                    cause: Some(cause.clone()),
                }
            }
            StreamId::Body(_) => {
                let state = State {
                    body: &body,
                    circulation: None,
                };
                let events = decide(state, command, now)?;
                let expected_version = body.version;
                let after = events.iter().fold(Body::clone(&body), body::evolve);
                Append {
                    stream,
                    expected_version,
                    projection: Projection::of_body(&after),
                    events,
                    depends_on: Vec::new(),
                    expected_head: None,
                    recorded_at: now,
                    cause: Some(cause.clone()),
                }
            }
        };
        Ok(append)
    }

    /// A circulation as its stream says.
    pub(crate) async fn circulation(&self, stream: &StreamId) -> Result<Circulation, RequestError> {
        let records = self.store.read_stream(stream).await?;
        let events = records
            .iter()
            .map(|record| record.event())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Circulation::fold(&events))
    }

    /// The reply for a command's records, with a receipt for each: against the checkpoint of
    /// the batch that committed them, or for a duplicate against the newest checkpoint.
    async fn reply(
        &self,
        command: &Command,
        appended: &Appended,
    ) -> Result<SubmitReply, RequestError> {
        let note = match &appended.checkpoint {
            Some(note) => note.clone(),
            None => self
                .store
                .latest_checkpoint()
                .await?
                .ok_or_else(|| RequestError::Internal("the log has no checkpoint".into()))?,
        };
        let checkpoint = umlauf_proof::checkpoint::verify(&note, &self.log_verifier)
            .map_err(|error| RequestError::Internal(format!("a stored checkpoint: {error}")))?;
        let mut receipts = Vec::with_capacity(appended.records.len());
        for record in &appended.records {
            let position = record.position();
            receipts.push(Receipt {
                position,
                leaf_hash: record.leaf_hash,
                checkpoint: note.clone(),
                inclusion_proof: self
                    .store
                    .inclusion_proof(position, checkpoint.size)
                    .await?,
            });
        }
        Ok(SubmitReply::new(
            command.command_id,
            appended.duplicate,
            appended
                .records
                .iter()
                .map(|record| record.bytes.as_slice()),
            receipts,
        ))
    }

    async fn query(&self, endpoint: Endpoint, payload: &[u8]) -> Result<Vec<u8>, RequestError> {
        fn parse<'a, T: serde::Deserialize<'a>>(payload: &'a [u8]) -> Result<T, RequestError> {
            serde_json::from_slice(payload)
                .map_err(|error| RequestError::InvalidQuery(error.to_string()))
        }
        let json = match endpoint {
            Endpoint::Circulation => {
                let query: CirculationQuery = parse(payload)?;
                let status: CirculationStatus =
                    self.store
                        .circulation(&query.circulation)
                        .await?
                        .ok_or(DomainError::UnknownCirculation(query.circulation))?;
                serde_json::to_vec(&status)
            }
            Endpoint::Circulations => {
                let query: CirculationsQuery = parse(payload)?;
                let circulations = self.store.circulations(&query.body, query.state).await?;
                serde_json::to_vec(&CirculationsReply { circulations })
            }
            Endpoint::Inbox => {
                let query: InboxQuery = parse(payload)?;
                let circulations = self.store.inbox(&query.body, &query.member).await?;
                serde_json::to_vec(&CirculationsReply { circulations })
            }
            Endpoint::Keys => {
                let query: BodyQuery = parse(payload)?;
                let keys = self.store.keys(&query.body).await?;
                serde_json::to_vec(&KeysReply { keys })
            }
            Endpoint::Body => {
                let query: BodyQuery = parse(payload)?;
                let head = self.store.head().await?;
                self.directory.catch_up(&self.store, head.position).await?;
                let body = self.directory.body(&query.body).await;
                let view = BodyView::of(&body).ok_or(DomainError::UnknownBody(query.body))?;
                serde_json::to_vec(&view)
            }
            Endpoint::Checkpoint => {
                let query: CheckpointQuery = parse(payload)?;
                let note = match query.size {
                    Some(size) => self.store.checkpoint(size).await?,
                    None => self.store.latest_checkpoint().await?,
                };
                let checkpoint = note.ok_or_else(|| {
                    RequestError::NotFound(match query.size {
                        Some(size) => format!("no checkpoint was signed for tree size {size}"),
                        None => "the log has no checkpoint yet".into(),
                    })
                })?;
                serde_json::to_vec(&CheckpointReply { checkpoint })
            }
            Endpoint::Inclusion => {
                let query: InclusionQuery = parse(payload)?;
                let proof = self
                    .store
                    .inclusion_proof(query.position, query.size)
                    .await?;
                serde_json::to_vec(&InclusionReply {
                    position: query.position,
                    size: query.size,
                    proof: hashes_to_hex(&proof),
                })
            }
            Endpoint::Consistency => {
                let query: ConsistencyQuery = parse(payload)?;
                let proof = self
                    .store
                    .consistency_proof(query.old_size, query.new_size)
                    .await?;
                serde_json::to_vec(&ConsistencyReply {
                    old_size: query.old_size,
                    new_size: query.new_size,
                    proof: hashes_to_hex(&proof),
                })
            }
            Endpoint::Submit => return Err(RequestError::Internal("not a query".into())),
        };
        json.map_err(|error| RequestError::Internal(error.to_string()))
    }
}

impl Handler for Pipeline {
    async fn handle(&self, endpoint: Endpoint, payload: &[u8]) -> Result<Vec<u8>, ErrorReply> {
        let result = match endpoint {
            Endpoint::Submit => self.submit(payload).await.and_then(|reply| {
                serde_json::to_vec(&reply)
                    .map_err(|error| RequestError::Internal(error.to_string()))
            }),
            query => self.query(query, payload).await,
        };
        if endpoint == Endpoint::Submit {
            self.metrics
                .command(payload, result.as_ref().err().map(RequestError::code));
        }
        result.map_err(|error| {
            if endpoint == Endpoint::Submit {
                tracing::debug!(code = error.code(), %error, "command refused");
            }
            error.to_reply()
        })
    }
}

/// The `genesis_key` a `ConstituteBody` payload names, read before the signature is checked, only
/// to know which key to check it with.
fn named_genesis_key(payload: &[u8]) -> Option<PublicKey> {
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(rename = "type")]
        kind: String,
        genesis_key: PublicKey,
    }
    let named: Named = serde_json::from_slice(payload).ok()?;
    (named.kind == "ConstituteBody").then_some(named.genesis_key)
}
