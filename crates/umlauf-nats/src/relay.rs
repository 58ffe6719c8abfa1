//! The relay: tails the log and publishes every record to the log stream, and every decision to
//! the decisions stream.
//!
//! Each record is published with `Nats-Msg-Id` = its position and `Nats-Expected-Last-Sequence`
//! = position − 1, so the stream's sequence equals the log position and no record is skipped or
//! stored twice, whichever relay (of several replicas, or one restarted) publishes it. The relay
//! resumes from the stream's last sequence after any outage, so NATS being down delays
//! distribution and loses nothing.
//!
//! Whenever JetStream reports the position taken (a wrong last sequence, error 10071, or a
//! duplicate message id), the relay fetches the stream's message at that position and compares
//! bytes: equal means another relay published the same record and it goes on; different means the
//! stream holds another history than this log (a database restored from an old backup, or a
//! second deployment on the same stream names). Then it stops publishing for good, logs an
//! alarm, and reports [`RelayState::Forked`]: it never publishes a fork.
//!
//! Checkpoints follow the records: every signed checkpoint the log stores is published on the
//! checkpoints stream in ascending size order, message id = the size, once every record it
//! covers is in the log stream.
//!
//! Decisions are derived from the log: after each `CirculationClosed` record the relay publishes
//! a [`DecisionMessage`] with message id = the record's position, and only then the records after
//! it. Publishing them is resumable and idempotent beyond JetStream's duplicate window: whenever
//! the relay (re)joins the log stream it reads the position of the newest decision the decisions
//! stream holds and publishes the decisions of the closing records after it, up to the log
//! stream's last message, so a relay that stopped between a closing record and its decision (or
//! a decisions stream that lost messages) is made whole, and a decision already there is never
//! sent twice, however long the outage.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::{self, Context};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use umlauf_domain::event::Event;
use umlauf_domain::ids::{BodyId, CirculationId};
use umlauf_domain::{Record, StreamId};

use crate::subjects::Subjects;
use crate::wire::{DecisionMessage, encode_base64};

/// One record of the log as the relay publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its position: 1, 2, 3, …
    pub position: u64,
    /// Its stream, which names the subject it is published on.
    pub stream: StreamId,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
}

/// What a decision message names beside the closing record: the circulation's body and title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionContext {
    /// The circulation's body.
    pub body: BodyId,
    /// The circulation's title.
    pub title: String,
}

/// Where the relay reads the log: the server implements it with the event store.
pub trait LogSource: Send + Sync + 'static {
    /// The error reading fails with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The newest position; 0 for an empty log.
    fn head(&self) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Up to `limit` records from `position` on, in position order; empty past the head.
    fn read_from(
        &self,
        position: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LogEntry>, Self::Error>> + Send;

    /// The body and title of a circulation, for its decision message; `None` if unknown.
    fn decision_context(
        &self,
        circulation: CirculationId,
    ) -> impl Future<Output = Result<Option<DecisionContext>, Self::Error>> + Send;

    /// Up to `limit` signed checkpoints with tree sizes from `size` on, ascending:
    /// `(size, note)`.
    fn checkpoints_from(
        &self,
        size: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(u64, String)>, Self::Error>> + Send;
}

/// What the relay is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayState {
    /// Not yet in step with the stream.
    Starting,
    /// Every record up to the head is in the stream; waiting for more.
    CaughtUp,
    /// Publishing.
    Publishing,
    /// The stream holds more messages than the log has records: waiting for the log to reach
    /// the stream's last sequence, to compare the record there.
    StreamAhead {
        /// The stream's last sequence.
        stream_last: u64,
        /// The log's head.
        log_head: u64,
    },
    /// NATS or the log cannot be reached; retrying.
    Unavailable {
        /// The last error.
        error: String,
    },
    /// The stream holds a different record than the log at `position`: publishing has stopped
    /// for good. An operator must find out which history is the true one.
    Forked {
        /// The first position found to differ.
        position: u64,
        /// What differs.
        detail: String,
    },
    /// Shut down.
    Stopped,
}

/// The relay's state and progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayStatus {
    /// What it is doing.
    pub state: RelayState,
    /// Every position up to this one is known to be in the log stream with this log's bytes.
    pub published: u64,
}

impl RelayStatus {
    /// Whether the relay raised the fork alarm.
    pub fn is_forked(&self) -> bool {
        matches!(self.state, RelayState::Forked { .. })
    }
}

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// How often it looks for records appended by other replicas, when nothing wakes it.
    pub poll_interval: Duration,
    /// How long it waits before retrying after NATS or the log failed.
    pub retry_interval: Duration,
    /// How many records it publishes before awaiting their acknowledgements.
    pub batch: usize,
    /// How long a shutdown waits for the relay to publish what is left.
    pub flush_timeout: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            retry_interval: Duration::from_millis(500),
            batch: 256,
            flush_timeout: Duration::from_secs(5),
        }
    }
}

/// A running relay.
#[derive(Debug)]
pub struct Relay {
    wake: Arc<Notify>,
    status: watch::Receiver<RelayStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Starts a relay publishing `source` to the streams named by `subjects`.
    pub fn spawn<S: LogSource>(
        jetstream: Context,
        subjects: Subjects,
        source: S,
        options: RelayOptions,
    ) -> Self {
        let wake = Arc::new(Notify::new());
        let (status_sender, status) = watch::channel(RelayStatus {
            state: RelayState::Starting,
            published: 0,
        });
        let (stop, stopping) = watch::channel(false);
        let worker = Worker {
            jetstream,
            subjects,
            source,
            options,
            wake: Arc::clone(&wake),
            status: status_sender,
            stopping,
            decisions_checked: AtomicU64::new(0),
            checkpoints_published: AtomicU64::new(UNKNOWN),
        };
        let task = tokio::spawn(worker.run());
        Self {
            wake,
            status,
            stop,
            task,
        }
    }

    /// Wakes the relay: call after each append so records go out at once.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A handle that wakes the relay, for code that appends.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// The relay's status, as it changes.
    pub fn status(&self) -> watch::Receiver<RelayStatus> {
        self.status.clone()
    }

    /// Publishes what is left (within the flush timeout) and stops.
    pub async fn shutdown(self) {
        // The relay may have ended already; then there is nothing to stop.
        let _ = self.stop.send(true);
        self.wake.notify_one();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the relay task failed");
        }
    }
}

/// Why one pass of the relay ended early.
#[derive(Debug)]
enum Interruption {
    /// The stream is not where the relay thought: find its last sequence again.
    Resync,
    /// The stream is ahead of this log: wait for the log to reach it.
    StreamAhead { last: u64, head: u64 },
    /// NATS or the log failed.
    Unavailable(String),
    /// The stream holds another record at this position.
    Fork { position: u64, detail: String },
}

struct Worker<S> {
    jetstream: Context,
    subjects: Subjects,
    source: S,
    options: RelayOptions,
    wake: Arc<Notify>,
    status: watch::Sender<RelayStatus>,
    stopping: watch::Receiver<bool>,
    /// Every closing record up to this position is known to have its decision in the stream.
    decisions_checked: AtomicU64,
    /// The newest checkpoint size in the checkpoints stream, or [`UNKNOWN`].
    checkpoints_published: AtomicU64,
}

/// Not known yet: read it from the stream.
const UNKNOWN: u64 = u64::MAX;

impl<S: LogSource> Worker<S> {
    async fn run(mut self) {
        // The next position to publish; `None` until the relay knows the stream's last sequence.
        let mut next: Option<u64> = None;
        let mut flush_deadline: Option<tokio::time::Instant> = None;
        loop {
            let stopping = *self.stopping.borrow();
            if stopping && flush_deadline.is_none() {
                flush_deadline = Some(tokio::time::Instant::now() + self.options.flush_timeout);
            }
            let pass = async {
                let from = match next {
                    Some(from) => from,
                    None => self.resync().await?,
                };
                next = Some(from);
                let caught_up = self.publish_from(from, &mut next).await?;
                let published = self.status.borrow().published;
                self.publish_checkpoints(published).await?;
                Ok(caught_up)
            };
            let outcome = match flush_deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, pass).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        tracing::warn!("the relay stopped before publishing everything");
                        break;
                    }
                },
                None => pass.await,
            };
            match outcome {
                Ok(caught_up) => {
                    if caught_up {
                        self.set_state(RelayState::CaughtUp);
                        if stopping {
                            break;
                        }
                        self.idle(self.options.poll_interval).await;
                    }
                }
                Err(Interruption::Resync) => next = None,
                Err(Interruption::StreamAhead { last, head }) => {
                    if !matches!(self.status.borrow().state, RelayState::StreamAhead { .. }) {
                        tracing::warn!(
                            stream_last = last,
                            log_head = head,
                            "the log stream is ahead of the log: waiting for the log to reach it \
                             (a database restored from a backup, or another deployment on these \
                             stream names, will raise the fork alarm then)"
                        );
                    }
                    self.set_state(RelayState::StreamAhead {
                        stream_last: last,
                        log_head: head,
                    });
                    next = None;
                    if stopping {
                        break;
                    }
                    self.idle(self.options.poll_interval).await;
                }
                Err(Interruption::Unavailable(error)) => {
                    if matches!(self.status.borrow().state, RelayState::Unavailable { .. }) {
                        tracing::debug!(%error, "relay: still unavailable");
                    } else {
                        tracing::warn!(%error, "relay: NATS or the log is unavailable; retrying");
                    }
                    self.set_state(RelayState::Unavailable { error });
                    next = None;
                    if stopping {
                        break;
                    }
                    self.idle(self.options.retry_interval).await;
                }
                Err(Interruption::Fork { position, detail }) => {
                    tracing::error!(
                        position,
                        %detail,
                        stream = self.subjects.log_stream(),
                        "FORK ALARM: the log stream holds a different record than this log; \
                         the relay has stopped publishing"
                    );
                    self.set_state(RelayState::Forked { position, detail });
                    // Publishing never resumes; wait for shutdown.
                    while !*self.stopping.borrow() {
                        if self.stopping.changed().await.is_err() {
                            break;
                        }
                    }
                    return;
                }
            }
        }
        self.set_state(RelayState::Stopped);
    }

    /// Waits for a wake-up, the interval, or a shutdown.
    async fn idle(&mut self, interval: Duration) {
        tokio::select! {
            () = self.wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
            _ = self.stopping.changed() => {}
        }
    }

    fn set_state(&self, state: RelayState) {
        self.status.send_if_modified(|status| {
            if status.state == state || status.is_forked() {
                false
            } else {
                status.state = state;
                true
            }
        });
    }

    fn set_published(&self, position: u64) {
        self.status.send_if_modified(|status| {
            if position > status.published {
                status.published = position;
                true
            } else {
                false
            }
        });
    }

    /// Finds where to go on: after the stream's last sequence, once the record there is found to
    /// be this log's (and its decision, if it closed a circulation, is re-published).
    async fn resync(&self) -> Result<u64, Interruption> {
        let mut stream = self
            .jetstream
            .get_stream(self.subjects.log_stream())
            .await
            .map_err(unavailable)?;
        let last = stream
            .info()
            .await
            .map_err(unavailable)?
            .state
            .last_sequence;
        if last == 0 {
            return Ok(1);
        }
        let head = self.source.head().await.map_err(unavailable)?;
        if head < last {
            return Err(Interruption::StreamAhead { last, head });
        }
        let entry = self.entry_at(last).await?;
        self.verify(&stream, &entry).await?;
        self.set_published(last);
        self.complete_decisions(last).await?;
        Ok(last + 1)
    }

    /// Publishes the decision of every closing record up to `last` (the log stream's last
    /// sequence) that the decisions stream does not hold yet: those after its newest decision.
    async fn complete_decisions(&self, last: u64) -> Result<(), Interruption> {
        let decided = self.newest_decision().await?;
        let checked = self.decisions_checked.load(Ordering::Relaxed);
        let mut from = decided.max(checked) + 1;
        while from <= last {
            let limit = usize::try_from(last - from + 1)
                .unwrap_or(usize::MAX)
                .min(self.options.batch.max(1));
            let entries = self
                .source
                .read_from(from, limit)
                .await
                .map_err(unavailable)?;
            let Some(newest) = entries.last().map(|entry| entry.position) else {
                break;
            };
            for entry in entries.iter().filter(|entry| entry.position <= last) {
                self.publish_decision(entry).await?;
            }
            from = newest + 1;
        }
        self.decisions_checked.fetch_max(last, Ordering::Relaxed);
        Ok(())
    }

    /// Publishes the stored checkpoints up to tree size `up_to` (never one whose records are
    /// not all in the log stream) that the checkpoints stream does not hold yet, in ascending
    /// size order: message id = the size, and the previous size as the expected last message
    /// id, so the stream holds each checkpoint once and in order, whichever relay publishes it.
    async fn publish_checkpoints(&self, up_to: u64) -> Result<(), Interruption> {
        let mut last = match self.checkpoints_published.load(Ordering::Relaxed) {
            UNKNOWN => self.newest_checkpoint().await?,
            known => known,
        };
        loop {
            let notes = self
                .source
                .checkpoints_from(last + 1, self.options.batch.max(1))
                .await
                .map_err(unavailable)?;
            let notes: Vec<_> = notes
                .into_iter()
                .filter(|(size, _)| *size <= up_to)
                .collect();
            if notes.is_empty() {
                return Ok(());
            }
            for (size, note) in notes {
                let mut message = PublishMessage::build()
                    .payload(note.into_bytes().into())
                    .message_id(size.to_string());
                message = if last == 0 {
                    message.expected_last_sequence(0)
                } else {
                    message.expected_last_message_id(last.to_string())
                };
                let ack = self
                    .jetstream
                    .send_publish(self.subjects.checkpoints(), message)
                    .await
                    .map_err(unavailable)?
                    .await;
                match ack {
                    Ok(_) => {}
                    Err(error)
                        if matches!(
                            error.kind(),
                            PublishErrorKind::WrongLastMessageId
                                | PublishErrorKind::WrongLastSequence
                        ) =>
                    {
                        // Another relay published meanwhile: find where the stream is.
                        self.checkpoints_published.store(UNKNOWN, Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(error) => {
                        self.checkpoints_published.store(UNKNOWN, Ordering::Relaxed);
                        return Err(unavailable(error));
                    }
                }
                last = size;
                self.checkpoints_published.store(last, Ordering::Relaxed);
            }
        }
    }

    /// The newest message of the stream `name` with its sequence; `None` if the stream is empty.
    async fn last_message(
        &self,
        name: &str,
    ) -> Result<Option<(u64, async_nats::jetstream::message::StreamMessage)>, Interruption> {
        let mut stream = self.jetstream.get_stream(name).await.map_err(unavailable)?;
        let last = stream
            .info()
            .await
            .map_err(unavailable)?
            .state
            .last_sequence;
        if last == 0 {
            return Ok(None);
        }
        let message = stream.get_raw_message(last).await.map_err(unavailable)?;
        Ok(Some((last, message)))
    }

    /// The tree size of the newest checkpoint in the checkpoints stream; 0 if it holds none.
    async fn newest_checkpoint(&self) -> Result<u64, Interruption> {
        let Some((last, message)) = self
            .last_message(self.subjects.checkpoints_stream())
            .await?
        else {
            return Ok(0);
        };
        message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .and_then(|id| id.as_str().parse::<u64>().ok())
            .ok_or_else(|| {
                unavailable(format!(
                    "the checkpoints stream's message {last} names no tree size"
                ))
            })
    }

    /// The log position of the newest decision in the decisions stream; 0 if it holds none.
    async fn newest_decision(&self) -> Result<u64, Interruption> {
        #[derive(serde::Deserialize)]
        struct Position {
            position: u64,
        }
        let Some((last, message)) = self.last_message(self.subjects.decisions_stream()).await?
        else {
            return Ok(0);
        };
        let from_id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .and_then(|id| id.as_str().parse::<u64>().ok());
        match from_id {
            Some(position) => Ok(position),
            None => serde_json::from_slice::<Position>(&message.payload)
                .map(|decision| decision.position)
                .map_err(|error| {
                    unavailable(format!(
                        "the decisions stream's message {last} names no position: {error}"
                    ))
                }),
        }
    }

    async fn entry_at(&self, position: u64) -> Result<LogEntry, Interruption> {
        let mut entries = self
            .source
            .read_from(position, 1)
            .await
            .map_err(unavailable)?;
        match entries.pop() {
            Some(entry) if entry.position == position => Ok(entry),
            _ => Err(Interruption::Unavailable(format!(
                "the log has no record at position {position}"
            ))),
        }
    }

    /// Publishes from `from` until the head; `Ok(true)` once caught up, `Ok(false)` after a batch
    /// that may have more behind it.
    async fn publish_from(&self, from: u64, next: &mut Option<u64>) -> Result<bool, Interruption> {
        let entries = self
            .source
            .read_from(from, self.options.batch.max(1))
            .await
            .map_err(unavailable)?;
        if entries.is_empty() {
            return Ok(true);
        }
        self.set_state(RelayState::Publishing);
        // A decision goes out only after its record is acknowledged, and the records after a
        // closing record only after its decision, so a resync after a failure always finds the
        // closing record last and re-publishes its decision. The records read are published in
        // runs that end with a closing record.
        let mut rest = entries.as_slice();
        let mut expected = from;
        let mut stream: Option<jetstream::stream::Stream<()>> = None;
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|entry| is_close(&entry.bytes))
                .map_or(rest.len(), |index| index + 1);
            let (run, after) = rest.split_at(end.min(rest.len()));
            rest = after;
            let mut acks = Vec::with_capacity(run.len());
            for entry in run {
                if entry.position != expected {
                    return Err(Interruption::Unavailable(format!(
                        "the log returned position {} where {expected} was expected",
                        entry.position
                    )));
                }
                expected += 1;
                let message = PublishMessage::build()
                    .payload(entry.bytes.clone().into())
                    .message_id(entry.position.to_string())
                    .expected_last_sequence(entry.position - 1);
                let ack = self
                    .jetstream
                    .send_publish(self.subjects.log_record(&entry.stream), message)
                    .await
                    .map_err(unavailable)?;
                acks.push(ack);
            }
            for (entry, ack) in run.iter().zip(acks) {
                match ack.await {
                    Ok(ack) if !ack.duplicate && ack.sequence == entry.position => {}
                    Ok(_) => {
                        // The message id was taken: by this record from another relay, or by a
                        // fork.
                        let stream = self.log_stream(&mut stream).await?;
                        self.verify(stream, entry).await?;
                    }
                    Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                        let stream = self.log_stream(&mut stream).await?;
                        self.verify(stream, entry).await?;
                    }
                    Err(error) => return Err(unavailable(error)),
                }
                self.set_published(entry.position);
                *next = Some(entry.position + 1);
                self.publish_decision(entry).await?;
            }
        }
        Ok(false)
    }

    async fn log_stream<'a>(
        &self,
        cached: &'a mut Option<jetstream::stream::Stream<()>>,
    ) -> Result<&'a jetstream::stream::Stream<()>, Interruption> {
        if cached.is_none() {
            let stream = self
                .jetstream
                .get_stream_no_info(self.subjects.log_stream())
                .await
                .map_err(unavailable)?;
            *cached = Some(stream);
        }
        cached
            .as_ref()
            .ok_or_else(|| Interruption::Unavailable("no log stream".into()))
    }

    /// Checks that the stream holds exactly `entry`'s bytes at its position.
    async fn verify<I>(
        &self,
        stream: &jetstream::stream::Stream<I>,
        entry: &LogEntry,
    ) -> Result<(), Interruption> {
        match stream.get_raw_message(entry.position).await {
            Ok(message) if message.payload.as_ref() == entry.bytes.as_slice() => Ok(()),
            Ok(message) => Err(Interruption::Fork {
                position: entry.position,
                detail: format!(
                    "the stream's message on {} ({} bytes) is not the log's record on {} ({} bytes)",
                    message.subject,
                    message.payload.len(),
                    self.subjects.log_record(&entry.stream),
                    entry.bytes.len()
                ),
            }),
            // Not there: the stream is behind where the relay thought.
            Err(error) if error.kind() == RawMessageErrorKind::NoMessageFound => {
                Err(Interruption::Resync)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Publishes the decision a `CirculationClosed` record carries; nothing for other records.
    async fn publish_decision(&self, entry: &LogEntry) -> Result<(), Interruption> {
        if !is_close(&entry.bytes) {
            return Ok(());
        }
        let StreamId::Circulation(circulation) = entry.stream else {
            return Ok(());
        };
        let record = match Record::from_bytes(&entry.bytes) {
            Ok(record) => record,
            Err(error) => {
                tracing::error!(position = entry.position, %error, "a closing record cannot be read");
                return Ok(());
            }
        };
        let closed = match record.event() {
            Ok(Event::CirculationClosed(closed)) => closed,
            Ok(_) => return Ok(()),
            Err(error) => {
                tracing::error!(position = entry.position, %error, "a closing record cannot be read");
                return Ok(());
            }
        };
        let Some(context) = self
            .source
            .decision_context(circulation)
            .await
            .map_err(unavailable)?
        else {
            tracing::error!(%circulation, "a closed circulation has no opening");
            return Ok(());
        };
        let message = DecisionMessage {
            body: context.body,
            circulation,
            title: context.title,
            decision: closed.decision,
            trigger: closed.trigger,
            tally: closed.tally,
            answers: closed.answers,
            position: entry.position,
            recorded_at: record.recorded_at,
            record: encode_base64(&entry.bytes),
        };
        let payload = serde_json::to_vec(&message).map_err(unavailable)?;
        let subject = self.subjects.decision(&message.body, &circulation);
        let message = PublishMessage::build()
            .payload(payload.into())
            .message_id(entry.position.to_string());
        self.jetstream
            .send_publish(subject, message)
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// Whether record bytes are a `CirculationClosed` record, without parsing all of them: the type
/// field follows the fixed record fields, and a full parse confirms it before anything is sent.
fn is_close(bytes: &[u8]) -> bool {
    const NEEDLE: &[u8] = br#""type":"CirculationClosed""#;
    bytes.windows(NEEDLE.len()).any(|window| window == NEEDLE)
}

fn unavailable(error: impl std::fmt::Display) -> Interruption {
    Interruption::Unavailable(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::is_close;

    #[test]
    fn closing_records_are_recognised_by_their_type() {
        assert!(is_close(
            br#"{"position":9,"stream":"circulation/x","version":3,"type":"CirculationClosed","schema":1}"#
        ));
        assert!(!is_close(
            br#"{"position":9,"stream":"circulation/x","version":3,"type":"VoteCast","schema":1}"#
        ));
    }
}
