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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::append::Appended;
use crate::batch::{Failed, Prepared};
use crate::error::StoreError;
use crate::tree::{CheckpointSigner, TreeState};
use crate::{postgres, sqlite};

/// One append's (or one `append_all` call's) request to the writer.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) items: Vec<Prepared>,
    pub(crate) reply: oneshot::Sender<Vec<Result<Appended, StoreError>>>,
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
}

/// How long the writer waits at most for more appends to join a batch.
const MAX_GATHER: Duration = Duration::from_millis(5);
/// How often it looks whether more have come.
const GATHER_STEP: Duration = Duration::from_micros(50);

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
            cache: postgres::WriterCache::default(),
            tree: TreeState {
                frontier: None,
                signer,
            },
            limits,
            counters,
        }
    }

    /// Takes every job queued when it becomes free and commits them as one batch.
    async fn run(mut self, mut queue: mpsc::Receiver<Job>) {
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
                let started = Instant::now();
                while appends < expected.min(max) && started.elapsed() < cap {
                    std::thread::sleep(GATHER_STEP);
                    take_queued(&mut queue, &mut jobs, &mut appends, max);
                }
                add_micros(&self.counters.gather_micros, started.elapsed());
            }
            // Jobs of different callers are concurrent, so the log may take them in any order; in
            // the order of their recording times, a caller that read the clock a moment before
            // another but reached the queue a moment after it is not refused as `clock_behind`.
            // A job's own appends keep their order (the sort is stable and moves whole jobs).
            jobs.sort_by_key(|job| job.items.first().map(|item| item.recorded_at));
            let started = Instant::now();
            let mut replies = Vec::with_capacity(jobs.len());
            let mut items = Vec::with_capacity(appends);
            for job in jobs {
                replies.push((job.reply, job.items.len()));
                items.extend(job.items);
            }
            let results = self.commit_with_fallback(items).await;
            previous_commit = started.elapsed();
            expected = appends + queue.len();
            // Counted before the replies go out, so a caller that reads the figures after its
            // reply finds its batch in them.
            add_micros(&self.counters.busy_micros, started.elapsed());
            let mut results = results.into_iter();
            for (reply, count) in replies {
                // A caller that stopped waiting has dropped its receiver; its append stands.
                let _ = reply.send(results.by_ref().take(count).collect());
            }
        }
        if let Some(connection) = self.connection.take() {
            let _ = match connection {
                WriterConnection::Sqlite(connection) => connection.close().await,
                WriterConnection::Postgres(connection) => connection.close().await,
            };
        }
    }

    /// Commits a batch; if its transaction fails, commits its appends one by one, so a failure
    /// that belongs to one append reaches only that append.
    async fn commit_with_fallback(
        &mut self,
        items: Vec<Prepared>,
    ) -> Vec<Result<Appended, StoreError>> {
        self.counters.appends.fetch_add(
            u64::try_from(items.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
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
