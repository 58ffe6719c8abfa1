//! The group-commit writer: one thread per store with a connection of its own.
//!
//! Appends do not open transactions of their own. An append is checked and half-serialised in
//! the caller's task, then queued here; the writer takes everything queued when it becomes free
//! and commits it as one transaction (see the `batch` module). While one batch commits, the next
//! one gathers, so under load every commit carries many appends and one fsync serves them all; an
//! append arriving at an idle writer is committed at once, so a lone caller does not wait for
//! company. Appends of different callers are concurrent, so the writer takes a batch's jobs in
//! the order of their recording times (each job's own appends in their order): a caller that read
//! the clock just before another but reached the queue just after it is not refused for its clock.
//!
//! The writer runs on a thread of its own with a single-threaded Tokio runtime, not as a task
//! among the service's tasks: it is the log's critical section, and every moment it spends queued
//! behind request handling is a moment every appender waits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::append::Appended;
use crate::batch::{Failed, Prepared};
use crate::error::StoreError;
use crate::postgres::Planned;
use crate::tree::{CheckpointSigner, TreeState};
use crate::{postgres, sqlite};
use umlauf_domain::StreamId;

/// One append's (or one `append_all` call's) request to the writer.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) items: Vec<Prepared>,
    pub(crate) reply: oneshot::Sender<Vec<Result<Appended, StoreError>>>,
}

impl Job {
    /// Whether any of the job's appends involves a stream of a batch in `flights`.
    fn touches(&self, flights: &VecDeque<Flight>) -> bool {
        self.items
            .iter()
            .flat_map(Prepared::streams)
            .any(|stream| flights.iter().any(|flight| flight.streams.contains(stream)))
    }
}

/// Replies owed for a batch: each job's sender and how many of the batch's results are its.
type Replies = Vec<(oneshot::Sender<Vec<Result<Appended, StoreError>>>, usize)>;

/// Sends each job its share of a batch's results, in the batch's order.
fn reply(replies: Replies, results: Vec<Result<Appended, StoreError>>) {
    let mut results = results.into_iter();
    for (reply, count) in replies {
        // A caller that stopped waiting has dropped its receiver; its append stands.
        let _ = reply.send(results.by_ref().take(count).collect());
    }
}

/// Splits jobs into their replies and their appends, in order.
fn split(jobs: Vec<Job>) -> (Replies, Vec<Prepared>) {
    let mut replies = Vec::with_capacity(jobs.len());
    let mut items = Vec::with_capacity(jobs.iter().map(|job| job.items.len()).sum());
    for job in jobs {
        replies.push((job.reply, job.items.len()));
        items.extend(job.items);
    }
    (replies, items)
}

/// A PostgreSQL batch whose statement is on its way on a connection of its own.
struct Flight {
    task: JoinHandle<(PgConnection, Planned, Result<(), StoreError>)>,
    replies: Replies,
    /// The streams its appends involve: no other batch in flight may involve them.
    streams: HashSet<StreamId>,
    appends: usize,
    started: Instant,
}

/// What became of a batch the PostgreSQL writer took.
enum Launched {
    /// Its statement is on its way.
    Flight(Flight),
    /// It was committed at once; its replies are still to be sent.
    Committed {
        appends: usize,
        took: Duration,
        replies: Replies,
        results: Vec<Result<Appended, StoreError>>,
    },
}

/// How the writer reaches its database.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

/// The writer's own connection, made on first use and again after any failure.
enum WriterConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Counters of the writer, shared with the store.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) batches: AtomicU64,
    pub(crate) appends: AtomicU64,
    pub(crate) records: AtomicU64,
    /// Microseconds spent committing batches (until the replies go out).
    pub(crate) busy_micros: AtomicU64,
    /// Microseconds spent waiting for more appends to join a batch.
    pub(crate) gather_micros: AtomicU64,
    /// Batches sent while another was in flight.
    pub(crate) overlapped: AtomicU64,
}

/// Adds `duration` to a counter of microseconds.
fn add_micros(counter: &AtomicU64, duration: Duration) {
    counter.fetch_add(
        u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// Limits the writer applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_batch_appends: usize,
    pub(crate) max_record_bytes: usize,
    /// PostgreSQL: batches in flight at most.
    pub(crate) batches_in_flight: usize,
}

/// How long the writer waits at most for more appends to join a batch.
const MAX_GATHER: Duration = Duration::from_millis(5);
/// How often it looks whether more have come.
const GATHER_STEP: Duration = Duration::from_micros(50);

/// Callers active (appends in flight and waiting) from which the PostgreSQL writer pipelines.
const PIPELINE_FROM: usize = 8;

/// Adds the writer's busy time up to now, from the later of `mark` and `started`, and moves
/// `mark` to now: batches in flight together count once.
fn count_busy(counters: &Counters, mark: &mut Instant, started: Instant) {
    let now = Instant::now();
    add_micros(
        &counters.busy_micros,
        now.saturating_duration_since((*mark).max(started)),
    );
    *mark = now;
}

/// Sorts the waiting jobs by their recording times and counts the jobs and appends of the
/// longest run from the first that involves no stream of a batch in `flights` and fits in `max`.
fn eligible(pending: &mut [Job], flights: &VecDeque<Flight>, max: usize) -> (usize, usize) {
    pending.sort_by_key(|job| job.items.first().map(|item| item.recorded_at));
    let (mut jobs, mut appends) = (0, 0);
    for job in pending.iter() {
        if job.touches(flights) || (appends > 0 && appends + job.items.len() > max) {
            break;
        }
        jobs += 1;
        appends += job.items.len();
    }
    (jobs, appends)
}

/// Takes the first `jobs` jobs, holding `appends` appends, out of `pending`.
fn take_batch(
    pending: &mut Vec<Job>,
    pending_appends: &mut usize,
    (jobs, appends): (usize, usize),
) -> Vec<Job> {
    *pending_appends -= appends;
    pending.drain(..jobs).collect()
}

/// Waits briefly, taking queued jobs into `jobs`, until `appends` reaches `target` or `cap` has
/// passed; counts the wait as gathering.
fn gather(
    queue: &mut mpsc::Receiver<Job>,
    jobs: &mut Vec<Job>,
    appends: &mut usize,
    (target, max): (usize, usize),
    cap: Duration,
    counters: &Counters,
) {
    if *appends >= target {
        return;
    }
    let started = Instant::now();
    while *appends < target && started.elapsed() < cap {
        std::thread::sleep(GATHER_STEP);
        take_queued(queue, jobs, appends, max);
    }
    add_micros(&counters.gather_micros, started.elapsed());
}

/// Moves the queued jobs into `jobs`, up to `max` appends; whether any came.
fn take_queued(
    queue: &mut mpsc::Receiver<Job>,
    jobs: &mut Vec<Job>,
    appends: &mut usize,
    max: usize,
) -> bool {
    let before = jobs.len();
    while *appends < max {
        match queue.try_recv() {
            Ok(job) => {
                *appends += job.items.len();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    jobs.len() > before
}

/// Starts the writer thread. It ends when every sender of `queue` is gone.
pub(crate) fn spawn(
    target: Target,
    queue: mpsc::Receiver<Job>,
    limits: Limits,
    counters: Arc<Counters>,
    signer: Option<CheckpointSigner>,
) -> Result<(), StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| StoreError::InvalidConfig(format!("cannot start the writer: {error}")))?;
    std::thread::Builder::new()
        .name("umlauf-store-writer".into())
        .spawn(move || {
            runtime.block_on(Writer::new(target, limits, counters, signer).run(queue));
        })
        .map_err(|error| StoreError::InvalidConfig(format!("cannot start the writer: {error}")))?;
    Ok(())
}

struct Writer {
    target: Target,
    connection: Option<WriterConnection>,
    /// Idle connections for batches in flight (PostgreSQL).
    spare: Vec<PgConnection>,
    /// What the writer knows of the log between batches (PostgreSQL).
    cache: postgres::WriterCache,
    /// The Merkle tree's frontier at the head, and the checkpoint signer.
    tree: TreeState,
    limits: Limits,
    counters: Arc<Counters>,
}

impl Writer {
    fn new(
        target: Target,
        limits: Limits,
        counters: Arc<Counters>,
        signer: Option<CheckpointSigner>,
    ) -> Self {
        Self {
            target,
            connection: None,
            spare: Vec::new(),
            cache: postgres::WriterCache::default(),
            tree: TreeState {
                frontier: None,
                signer,
            },
            limits,
            counters,
        }
    }

    /// Runs the writer until every sender of `queue` is gone.
    async fn run(self, queue: mpsc::Receiver<Job>) {
        match self.target {
            Target::Postgres(_) => self.run_pipelined(queue).await,
            Target::Sqlite(_) => self.run_serial(queue).await,
        }
    }

    /// Takes every job queued when it becomes free and commits them as one batch.
    async fn run_serial(mut self, mut queue: mpsc::Receiver<Job>) {
        // How many appends were waiting when the last batch was committed, and how long that
        // took.
        let mut expected = 1usize;
        let mut previous_commit = Duration::ZERO;
        while let Some(first) = queue.recv().await {
            let mut appends = first.items.len();
            let mut jobs = vec![first];
            let max = self.limits.max_batch_appends;
            take_queued(&mut queue, &mut jobs, &mut appends, max);
            // Under load, the callers the previous batch answered are about to come back with
            // their next appends while the others already wait here. Committing without them
            // would leave them for the batch after, and the callers would settle into two groups
            // taking turns, halving every batch. So wait briefly until as many appends are here
            // as were waiting the last time (those in the batch and those queued behind it), for
            // at most as long as the last commit took: when commits are slow (a slow fsync), a
            // fuller batch is worth more than the wait costs.
            if appends < expected {
                let cap = previous_commit.min(MAX_GATHER);
                let target = (expected.min(max), max);
                gather(
                    &mut queue,
                    &mut jobs,
                    &mut appends,
                    target,
                    cap,
                    &self.counters,
                );
            }
            // Jobs of different callers are concurrent, so the log may take them in any order; in
            // the order of their recording times, a caller that read the clock a moment before
            // another but reached the queue a moment after it is not refused as `clock_behind`.
            // A job's own appends keep their order (the sort is stable and moves whole jobs).
            jobs.sort_by_key(|job| job.items.first().map(|item| item.recorded_at));
            let started = Instant::now();
            let (replies, items) = split(jobs);
            self.count_appends(items.len());
            let results = self.commit_with_fallback(items).await;
            previous_commit = started.elapsed();
            expected = appends + queue.len();
            // Counted before the replies go out, so a caller that reads the figures after its
            // reply finds its batch in them.
            add_micros(&self.counters.busy_micros, started.elapsed());
            reply(replies, results);
        }
        self.close().await;
    }

    /// The PostgreSQL writer: as [`Writer::run_serial`], and under load it also pipelines.
    /// While one batch's statement runs, the next batch is planned from what the writer
    /// remembers (the head, the streams' versions, the tree's frontier, all as the batch in flight
    /// leaves them) and sent on a second connection: its rows are written while the first batch
    /// commits, and its head move waits for that commit (see `WRITE_BATCH`). Batches in flight
    /// never share a stream (nor a stream one depends on), and jobs go out in the order of their
    /// recording times: a job that must wait for a stream in flight holds back every job recorded
    /// after it. If a batch fails, every batch sent after it fails too (its head move finds the
    /// head elsewhere); their appends are judged again one batch after the other, in order.
    ///
    /// Pipelining starts when enough callers are active to fill two batches; below that the
    /// writer commits one batch at a time, gathering as the serial writer does.
    async fn run_pipelined(mut self, mut queue: mpsc::Receiver<Job>) {
        let max = self.limits.max_batch_appends;
        let max_flights = self.limits.batches_in_flight;
        let mut pending: Vec<Job> = Vec::new();
        let mut pending_appends = 0usize;
        let mut flights: VecDeque<Flight> = VecDeque::new();
        // The appends of the callers active the last time a batch landed, and how long the
        // last batch took from its launch to its landing.
        let mut expected = 1usize;
        let mut previous_commit = Duration::ZERO;
        let mut busy_mark = Instant::now();
        let mut closed = false;
        loop {
            if pending.is_empty() && flights.is_empty() {
                match queue.recv().await {
                    Some(job) => {
                        pending_appends += job.items.len();
                        pending.push(job);
                    }
                    None => break,
                }
            }
            take_queued(&mut queue, &mut pending, &mut pending_appends, max);
            let pipelining = max_flights > 1 && expected >= PIPELINE_FROM;
            let target = if pipelining {
                expected.div_ceil(max_flights)
            } else {
                expected
            }
            .clamp(1, max);
            if flights.is_empty() && !pending.is_empty() {
                let cap = previous_commit.min(MAX_GATHER);
                let (queued, counters) = (&mut queue, &self.counters);
                gather(
                    queued,
                    &mut pending,
                    &mut pending_appends,
                    (target, max),
                    cap,
                    counters,
                );
                let run = eligible(&mut pending, &flights, max);
                let jobs = take_batch(&mut pending, &mut pending_appends, run);
                match self.launch(jobs, &mut flights, &mut busy_mark).await {
                    Launched::Flight(flight) => {
                        busy_mark = Instant::now();
                        flights.push_back(flight);
                    }
                    Launched::Committed {
                        appends,
                        took,
                        replies,
                        results,
                    } => {
                        previous_commit = took;
                        // Counted before the replies go out: a caller answered now and back in
                        // the queue at once would otherwise count twice.
                        expected = appends + pending_appends + queue.len();
                        reply(replies, results);
                    }
                }
                continue;
            }
            if pipelining && flights.len() < max_flights && !pending.is_empty() {
                // Half a batch's worth is enough to start writing beside the batch in flight:
                // waiting for a whole one would often outlast it.
                let run = eligible(&mut pending, &flights, max);
                if run.1 >= target.div_ceil(2) {
                    let jobs = take_batch(&mut pending, &mut pending_appends, run);
                    let launched = self.launch(jobs, &mut flights, &mut busy_mark).await;
                    match launched {
                        Launched::Flight(flight) => {
                            self.counters.overlapped.fetch_add(1, Ordering::Relaxed);
                            flights.push_back(flight);
                        }
                        Launched::Committed {
                            replies, results, ..
                        } => reply(replies, results),
                    }
                    continue;
                }
            }
            let waiting_for_jobs = !closed && flights.len() < max_flights && pipelining;
            let Some(front) = flights.front_mut() else {
                continue;
            };
            // Wait for the oldest batch to land; while a second could still go out, take in the
            // jobs that come meanwhile.
            let landed = if waiting_for_jobs {
                tokio::select! {
                    biased;
                    landed = &mut front.task => landed,
                    job = queue.recv() => {
                        match job {
                            Some(job) => {
                                pending_appends += job.items.len();
                                pending.push(job);
                            }
                            None => closed = true,
                        }
                        continue;
                    }
                }
            } else {
                (&mut front.task).await
            };
            if let Some(flight) = flights.pop_front() {
                let active =
                    flight.appends + flights.iter().map(|flight| flight.appends).sum::<usize>();
                previous_commit = flight.started.elapsed();
                // The callers waiting now, counted before the landing answers the batch's own:
                // one of those back in the queue at once must not count twice.
                let waiting = pending_appends + queue.len();
                self.land(flight, landed, &mut flights, &mut busy_mark)
                    .await;
                expected = active + waiting;
            }
        }
        self.close().await;
    }

    /// Plans a batch from what the writer remembers and sends its statement on a connection of
    /// its own, or, when it cannot be planned without reading (see
    /// [`postgres::plan_from_cache`]), lands the batches in `flights` and then commits it at once,
    /// its replies sent. Only called with no batch in flight or with jobs none of whose streams is
    /// in flight.
    async fn launch(
        &mut self,
        jobs: Vec<Job>,
        flights: &mut VecDeque<Flight>,
        busy_mark: &mut Instant,
    ) -> Launched {
        let started = Instant::now();
        let (replies, items) = split(jobs);
        let appends = items.len();
        self.count_appends(appends);
        let streams: HashSet<StreamId> =
            items.iter().flat_map(Prepared::streams).cloned().collect();
        let connection = match self.spare.pop() {
            Some(connection) => Ok(connection),
            None => match self.connection.take() {
                Some(WriterConnection::Postgres(connection)) => Ok(connection),
                other => {
                    self.connection = other;
                    match &self.target {
                        Target::Postgres(options) => PgConnection::connect_with(options)
                            .await
                            .map_err(StoreError::from),
                        Target::Sqlite(_) => Err(StoreError::Closed),
                    }
                }
            },
        };
        let planned = match connection {
            Ok(connection) => postgres::plan_from_cache(
                &mut self.cache,
                &mut self.tree,
                items,
                self.limits.max_record_bytes,
            )
            .map(|planned| (connection, planned)),
            Err(error) => Err(Failed { error, items }),
        };
        let items = match planned {
            Ok((mut connection, Ok(planned))) => {
                let task = tokio::spawn(async move {
                    let result = postgres::write_planned(&mut connection, &planned).await;
                    (connection, planned, result)
                });
                return Launched::Flight(Flight {
                    task,
                    replies,
                    streams,
                    appends,
                    started,
                });
            }
            Ok((connection, Err(items))) => {
                // It needs reads: committed on its own, as the serial writer does.
                self.keep(connection);
                items
            }
            Err(Failed { items, .. }) => items,
        };
        // Its reads must find the log as the batches in flight leave it.
        while let Some(mut flight) = flights.pop_front() {
            let landed = (&mut flight.task).await;
            self.land(flight, landed, flights, busy_mark).await;
        }
        let started = Instant::now();
        let results = self.commit_with_fallback(items).await;
        let took = started.elapsed();
        add_micros(&self.counters.busy_micros, took);
        Launched::Committed {
            appends,
            took,
            replies,
            results,
        }
    }

    /// Takes in a batch that landed and answers its callers. If it failed, every batch still in
    /// flight fails with it: each is waited for, and the appends of all are judged again, batch
    /// after batch in their order.
    async fn land(
        &mut self,
        flight: Flight,
        landed: Result<(PgConnection, Planned, Result<(), StoreError>), tokio::task::JoinError>,
        flights: &mut VecDeque<Flight>,
        busy_mark: &mut Instant,
    ) {
        let mut failed = Vec::new();
        let mut landing = Some((flight.replies, flight.started, landed));
        while let Some((replies, started, landed)) = landing.take() {
            match landed {
                Ok((connection, planned, Ok(()))) => {
                    self.keep(connection);
                    self.counters.batches.fetch_add(1, Ordering::Relaxed);
                    self.counters.records.fetch_add(
                        u64::try_from(planned.plan.records.len()).unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                    count_busy(&self.counters, busy_mark, started);
                    reply(replies, planned.plan.into_results(&HashMap::new()));
                }
                Ok((connection, planned, Err(error))) => {
                    if postgres::is_declined(&error) {
                        self.keep(connection);
                    } else {
                        tracing::warn!(%error, "batch failed; judging its appends again");
                    }
                    postgres::forget(&mut self.cache, &mut self.tree);
                    failed.push((replies, planned.plan.into_items()));
                }
                Err(error) => {
                    // The statement's task did not finish: its appends' outcome is unknown, and
                    // their callers get `closed`.
                    tracing::error!(%error, "a batch's statement did not finish");
                    postgres::forget(&mut self.cache, &mut self.tree);
                }
            }
            if failed.is_empty() {
                break;
            }
            if let Some(mut next) = flights.pop_front() {
                let landed = (&mut next.task).await;
                landing = Some((next.replies, next.started, landed));
            }
        }
        for (replies, items) in failed {
            let results = self.commit_with_fallback(items).await;
            count_busy(&self.counters, busy_mark, Instant::now());
            reply(replies, results);
        }
    }

    /// Counts appends handed to the writer.
    fn count_appends(&self, count: usize) {
        self.counters
            .appends
            .fetch_add(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Keeps a connection that came back from a batch for the next ones.
    fn keep(&mut self, connection: PgConnection) {
        if self.connection.is_none() {
            self.connection = Some(WriterConnection::Postgres(connection));
        } else if self.spare.len() < self.limits.batches_in_flight {
            self.spare.push(connection);
        }
    }

    async fn close(&mut self) {
        if let Some(connection) = self.connection.take() {
            let _ = match connection {
                WriterConnection::Sqlite(connection) => connection.close().await,
                WriterConnection::Postgres(connection) => connection.close().await,
            };
        }
        for connection in self.spare.drain(..) {
            let _ = connection.close().await;
        }
    }

    /// Commits a batch; if its transaction fails, commits its appends one by one, so a failure
    /// that belongs to one append reaches only that append. The caller counts the appends.
    async fn commit_with_fallback(
        &mut self,
        items: Vec<Prepared>,
    ) -> Vec<Result<Appended, StoreError>> {
        let count = items.len();
        match self.commit(items).await {
            Ok(results) => results,
            Err(Failed { error, .. }) if count == 1 => {
                tracing::warn!(%error, "append failed");
                vec![Err(error)]
            }
            Err(Failed { error, items }) => {
                tracing::warn!(%error, appends = count, "group commit failed; committing its appends one by one");
                let mut results = Vec::with_capacity(count);
                for item in items {
                    let result = match self.commit(vec![item]).await {
                        Ok(mut single) => single.pop().unwrap_or(Err(StoreError::Closed)),
                        Err(failed) => Err(failed.error),
                    };
                    results.push(result);
                }
                results
            }
        }
    }

    /// Commits one batch in one transaction. After any failure the connection is dropped, so
    /// the next batch starts on a fresh one whatever state the failure left it in.
    async fn commit(
        &mut self,
        items: Vec<Prepared>,
    ) -> Result<Vec<Result<Appended, StoreError>>, Failed> {
        let max_record_bytes = self.limits.max_record_bytes;
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => match self.connect().await {
                Ok(connection) => connection,
                Err(error) => return Err(Failed { error, items }),
            },
        };
        let (connection, result) = match connection {
            WriterConnection::Sqlite(mut connection) => {
                let result =
                    sqlite::commit_batch(&mut connection, &mut self.tree, items, max_record_bytes)
                        .await;
                (WriterConnection::Sqlite(connection), result)
            }
            WriterConnection::Postgres(mut connection) => {
                let result = postgres::commit_batch(
                    &mut connection,
                    &mut self.cache,
                    &mut self.tree,
                    items,
                    max_record_bytes,
                )
                .await;
                (WriterConnection::Postgres(connection), result)
            }
        };
        if let Ok(results) = &result {
            self.connection = Some(connection);
            let written = results
                .iter()
                .filter_map(|result| result.as_ref().ok())
                .filter(|appended| !appended.duplicate)
                .map(|appended| appended.records.len())
                .sum::<usize>();
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            self.counters.records.fetch_add(
                u64::try_from(written).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        result
    }

    async fn connect(&self) -> Result<WriterConnection, StoreError> {
        Ok(match &self.target {
            Target::Sqlite(options) => {
                WriterConnection::Sqlite(SqliteConnection::connect_with(options).await?)
            }
            Target::Postgres(options) => {
                WriterConnection::Postgres(PgConnection::connect_with(options).await?)
            }
        })
    }
}
