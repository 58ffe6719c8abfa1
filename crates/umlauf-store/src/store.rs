//! The [`Store`]: one interface over both backends. Appends go to the group-commit writer (see
//! the `writer` module); reads and read-model queries use a connection pool.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream, StreamExt};
use sqlx::Row as _;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use tokio::sync::{mpsc, oneshot};
use umlauf_domain::ids::{BodyId, CirculationId, CommandId, KeyId, MemberId};
use umlauf_domain::read_model::{CirculationState, CirculationStatus, KeyStatus};
use umlauf_domain::{Event, StreamId};

use umlauf_proof::merkle::{self, Hash, ProofPlan, SubtreeId};

use crate::append::{Append, Appended, Head, Projection, RawRecord, RecordRow, StoredRecord};
use crate::batch::Prepared;
use crate::columns::{to_i64, to_u64};
use crate::error::StoreError;
use crate::read_models::parse_status;
use crate::tree::{CheckpointSigner, proof_error};
use crate::writer::{self, Counters, Job, Limits, Target};
use crate::{postgres, sqlite};

/// The largest record the store accepts, in bytes, unless configured otherwise.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// How many records [`Store::read_from`] fetches per query, unless configured otherwise.
pub const READ_PAGE_SIZE: u32 = 500;

/// How many appends one group commit takes at most, unless configured otherwise.
pub const MAX_BATCH_APPENDS: usize = 512;
/// Default for [`StoreOptions::batches_in_flight`].
pub const BATCHES_IN_FLIGHT: usize = 1;

/// How many appends may wait for the writer before callers wait to queue theirs.
const QUEUE_DEPTH: usize = 4096;

/// How to open a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://path/to/file.db`, `sqlite:path` (the file and its directory are created if
    /// missing), or `postgres://user@host:port/database`.
    pub url: String,
    /// PostgreSQL only: the schema to keep the tables in, created if missing (lower-case letters,
    /// digits and `_`). `None` uses the connection's default search path.
    pub schema: Option<String>,
    /// The connection pool's size, for reads, rebuilds and migrations; the writer has a
    /// connection of its own.
    pub max_connections: u32,
    /// The largest record accepted, in bytes.
    pub max_record_bytes: usize,
    /// How many records [`Store::read_from`] fetches per query.
    pub read_page_size: u32,
    /// How many appends one group commit takes at most.
    pub max_batch_appends: usize,
    /// PostgreSQL: how many batches the writer may have in flight at once (at least 1). With 1,
    /// the default, it commits one batch at a time. With 2, under load the next batch's rows are
    /// written while the previous batch commits; but its head move must wait until that commit
    /// is flushed, each batch then needs a WAL flush of its own, and the appenders are split
    /// into smaller batches, so on the machines measured it lost throughput at every
    /// concurrency. It may pay where writing a batch's rows takes long beside its commit.
    pub batches_in_flight: usize,
    /// Open for reading only, as an auditor does: no migrations, SQLite opened `mode=ro` and
    /// never created, PostgreSQL transactions read-only; a database without the log's tables
    /// fails with [`StoreError::NotALog`], and appends fail with [`StoreError::ReadOnly`].
    pub read_only: bool,
    /// With a signer, every committed batch also stores the signed checkpoint for the tree size
    /// after it ([`Appended::checkpoint`]).
    pub checkpoints: Option<CheckpointSigner>,
}

impl StoreOptions {
    /// Options for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: None,
            max_connections: 8,
            max_record_bytes: MAX_RECORD_BYTES,
            read_page_size: READ_PAGE_SIZE,
            max_batch_appends: MAX_BATCH_APPENDS,
            batches_in_flight: BATCHES_IN_FLIGHT,
            read_only: false,
            checkpoints: None,
        }
    }

    /// Opens the store for reading only: see [`StoreOptions::read_only`].
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Signs a checkpoint for every committed batch: see [`StoreOptions::checkpoints`].
    pub fn checkpoints(mut self, signer: CheckpointSigner) -> Self {
        self.checkpoints = Some(signer);
        self
    }

    /// Lets the PostgreSQL writer have this many batches in flight at once: see
    /// [`StoreOptions::batches_in_flight`].
    pub fn batches_in_flight(mut self, batches: usize) -> Self {
        self.batches_in_flight = batches;
        self
    }

    /// Keeps the tables in a PostgreSQL schema of this name.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
}

/// What [`Store::rebuild_read_models`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildSummary {
    /// Streams folded.
    pub streams: u64,
    /// Records read.
    pub records: u64,
}

/// Counters of the group-commit writer, since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions the writer ran (including batches that wrote nothing).
    pub batches: u64,
    /// Appends handed to the writer.
    pub appends: u64,
    /// Records written.
    pub records: u64,
    /// Time the writer spent committing batches: planning, its statements and the commit,
    /// counted before the replies go out. Over a stretch of wall-clock time, the share it takes
    /// is how busy the writer is; the rest it waits for appends.
    pub busy: Duration,
    /// Time the writer waited, with appends in hand, for more to join the batch.
    pub gathering: Duration,
    /// Batches sent while another batch was still in flight (PostgreSQL pipelining).
    pub overlapped: u64,
}

/// Runs one query body on whichever pool the store has. The body is written once and compiled
/// for each backend; its SQL uses `$N` parameters, which sqlx binds on SQLite as on PostgreSQL.
/// For queries whose SQL is the same on both backends; the others live in `sqlite` and
/// `postgres`.
macro_rules! on_pool {
    ($backend:expr, |$pool:ident| $body:expr) => {
        match $backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

/// The key of one stored read-model row (see [`Store::read_model_keys`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadModelKey {
    /// A row of `circulation_status`.
    Circulation(String),
    /// A row of `inbox`: a member awaited in a circulation.
    Inbox {
        /// The circulation's body.
        body: String,
        /// The member awaited.
        member: String,
        /// The circulation's id.
        circulation: String,
    },
    /// A row of `key_status`.
    Key {
        /// The body the key is registered with.
        body: String,
        /// The key's id.
        key_id: String,
    },
}

/// Rows [`Store::read_model_keys`] reads ahead of its consumer.
const READ_MODEL_KEYS_BUFFER: usize = 1_024;

/// Every read-model row's key, the same SQL on both backends.
const READ_MODEL_KEYS: &str = "\
SELECT 'circulation_status', CAST(circulation AS text), NULL, NULL FROM circulation_status \
UNION ALL SELECT 'inbox', body, member, CAST(circulation AS text) FROM inbox \
UNION ALL SELECT 'key_status', body, key_id, NULL FROM key_status";

/// A row of [`READ_MODEL_KEYS`] as a key.
fn read_model_key(
    table: &str,
    first: Option<String>,
    second: Option<String>,
    third: Option<String>,
) -> Result<ReadModelKey, StoreError> {
    let column = |value: Option<String>| {
        value.ok_or_else(|| StoreError::CorruptReadModel(format!("a {table} row lacks a key")))
    };
    Ok(match table {
        "circulation_status" => ReadModelKey::Circulation(column(first)?),
        "inbox" => ReadModelKey::Inbox {
            body: column(first)?,
            member: column(second)?,
            circulation: column(third)?,
        },
        _ => ReadModelKey::Key {
            body: column(first)?,
            key_id: column(second)?,
        },
    })
}

/// The database behind a store.
#[derive(Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Backend {
    async fn read_page(&self, from: u64, limit: u32) -> Result<Vec<RecordRow>, StoreError> {
        match self {
            Self::Sqlite(pool) => sqlite::read_page(pool, from, limit).await,
            Self::Postgres(pool) => postgres::read_page(pool, from, limit).await,
        }
    }
}

struct Inner {
    backend: Backend,
    /// The writer's queue; `None` for a read-only store.
    jobs: Option<mpsc::Sender<Job>>,
    options: StoreOptions,
    counters: Arc<Counters>,
}

/// The event store: the append-only log and its read models, on SQLite or PostgreSQL.
///
/// Cheap to clone; clones share the connection pool and the writer. Several stores (in one
/// process or in several replicas) may use one database at once: the head lock keeps positions
/// gapless and versions unique.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self.inner.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        };
        f.debug_struct("Store")
            .field("backend", &backend)
            .field("schema", &self.inner.options.schema)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `url` with the default options: see [`StoreOptions::url`].
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(StoreOptions::new(url)).await
    }

    /// Opens the store: connects, applies the migrations, brings the Merkle tree up to the head
    /// (storing the subtrees of records appended before it was kept), checks the newest stored
    /// checkpoint against it (with a signer: [`StoreError::InconsistentTree`] if they disagree,
    /// and the store signs nothing), and starts the writer thread. Read-only: connects and checks
    /// that the database holds a log.
    pub async fn open_with(options: StoreOptions) -> Result<Self, StoreError> {
        if options.read_only && options.checkpoints.is_some() {
            return Err(StoreError::InvalidConfig(
                "a read-only store signs no checkpoints".into(),
            ));
        }
        if let Some(signer) = &options.checkpoints {
            signer.check()?;
        }
        let (backend, target) = if options.url.starts_with("sqlite:") {
            if options.schema.is_some() {
                return Err(StoreError::InvalidConfig(
                    "schemas are for PostgreSQL only".into(),
                ));
            }
            let (pool, target) = sqlite::connect(&options).await?;
            (Backend::Sqlite(pool), Target::Sqlite(target))
        } else if options.url.starts_with("postgres://") || options.url.starts_with("postgresql://")
        {
            let (pool, target) = postgres::connect(&options).await?;
            (Backend::Postgres(pool), Target::Postgres(target))
        } else {
            return Err(StoreError::InvalidConfig(
                "the store URL must start with sqlite: or postgres://".into(),
            ));
        };
        let counters = Arc::new(Counters::default());
        let jobs = if options.read_only {
            None
        } else {
            let signer = options.checkpoints.as_ref();
            match &backend {
                Backend::Sqlite(pool) => sqlite::prepare_tree(pool, signer).await?,
                Backend::Postgres(pool) => postgres::prepare_tree(pool, signer).await?,
            }
            let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
            let limits = Limits {
                max_batch_appends: options.max_batch_appends.max(1),
                max_record_bytes: options.max_record_bytes,
                batches_in_flight: options.batches_in_flight.max(1),
            };
            writer::spawn(
                target,
                queue,
                limits,
                Arc::clone(&counters),
                options.checkpoints.clone(),
            )?;
            Some(jobs)
        };
        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                jobs,
                options,
                counters,
            }),
        })
    }

    /// Appends events to one stream, with their read models, in one transaction (shared with
    /// whatever other appends arrive at the same time).
    ///
    /// Fails, writing nothing, with [`StoreError::Conflict`] if the stream is not at
    /// `expected_version`, [`StoreError::CommandIdReused`] if the cause's command id was used by
    /// another command, [`StoreError::ClockBehind`] if `recorded_at` is earlier than the newest
    /// record's, [`StoreError::RecordTooLarge`] or [`StoreError::InvalidAppend`]
    /// ([`StoreError::ReadOnly`] on a read-only store). A conflict is also what an append gets
    /// whose [`Append::depends_on`] streams have moved on or whose [`Append::expected_head`] is
    /// not the head. The same command again returns the first result with
    /// [`Appended::duplicate`] set.
    ///
    /// If the caller stops waiting, the append may still be committed.
    pub async fn append(&self, append: Append) -> Result<Appended, StoreError> {
        self.append_all(vec![append])
            .await
            .pop()
            .unwrap_or(Err(StoreError::Closed))
    }

    /// Appends several appends in one transaction, in order, each judged after the ones before
    /// it (so several on one stream succeed in turn). Each gets its own result; one that fails
    /// does not stop the others.
    pub async fn append_all(&self, appends: Vec<Append>) -> Vec<Result<Appended, StoreError>> {
        let Some(jobs) = &self.inner.jobs else {
            return appends.iter().map(|_| Err(StoreError::ReadOnly)).collect();
        };
        let mut results: Vec<Option<Result<Appended, StoreError>>> =
            Vec::with_capacity(appends.len());
        let mut items = Vec::with_capacity(appends.len());
        for append in appends {
            match Prepared::new(append) {
                Ok(item) => {
                    items.push(item);
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        let mut committed = if items.is_empty() {
            Vec::new().into_iter()
        } else {
            let (reply, answer) = oneshot::channel();
            let job = Job { items, reply };
            match jobs.send(job).await {
                Ok(()) => answer.await.unwrap_or_default().into_iter(),
                Err(_) => Vec::new().into_iter(),
            }
        };
        results
            .into_iter()
            .map(|slot| slot.unwrap_or_else(|| committed.next().unwrap_or(Err(StoreError::Closed))))
            .collect()
    }

    /// The projection of `stream` after appending `events` to it as it is now, folded by the
    /// domain, with the version the events would be appended at. A convenience for callers that
    /// do not keep the state themselves; the append still checks the version.
    pub async fn projection_after(
        &self,
        stream: &StreamId,
        events: &[Event],
    ) -> Result<(u64, Projection), StoreError> {
        let records = self.read_stream(stream).await?;
        let stored = records
            .iter()
            .map(StoredRecord::event)
            .collect::<Result<Vec<_>, _>>()?;
        let version = u64::try_from(stored.len()).unwrap_or(u64::MAX);
        let projection = Projection::fold(stream, stored.iter().chain(events));
        Ok((version, projection))
    }

    /// One stream's records in version order.
    pub async fn read_stream(&self, stream: &StreamId) -> Result<Vec<StoredRecord>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::read_stream(pool, stream).await,
            Backend::Postgres(pool) => postgres::read_stream(pool, stream).await,
        }
    }

    /// The whole log from position `from` (1 for the beginning) to its end, as an async stream
    /// fetched page by page, never all at once. Every record is checked against its leaf hash
    /// and its position; a gap or a corrupt record ends the stream with an error.
    pub fn read_from(
        &self,
        from: u64,
    ) -> impl Stream<Item = Result<StoredRecord, StoreError>> + Send + 'static {
        self.paged(from, StoredRecord::from_record_row, StoredRecord::position)
    }

    /// As [`Store::read_from`], but the records' bytes are handed out unparsed with the leaf
    /// hash stored beside them, which is not checked against them: for a reader that checks
    /// every record itself, as an auditor does. A record is checked only to be at its row's
    /// position, stream and version; one that does not begin as the store writes records is
    /// read and checked in full. A gap ends the stream with an error.
    pub fn read_raw_from(
        &self,
        from: u64,
    ) -> impl Stream<Item = Result<RawRecord, StoreError>> + Send + 'static {
        self.paged(from, RawRecord::from_row, |record| record.position)
    }

    /// The log from `from` on, page by page, each row made a `T` by `read`; a gap (the next
    /// record's `position` is not the one expected) or an error ends the stream with an error.
    fn paged<T: Send + 'static>(
        &self,
        from: u64,
        read: fn(RecordRow) -> Result<T, StoreError>,
        position: fn(&T) -> u64,
    ) -> impl Stream<Item = Result<T, StoreError>> + Send + 'static {
        let backend = self.inner.backend.clone();
        let page_size = self.inner.options.read_page_size.max(1);
        // The state is the next position to read, `None` once the stream has ended (after its
        // end or after an error).
        stream::unfold(Some(from.max(1)), move |next| {
            let backend = backend.clone();
            async move {
                let next = next?;
                let page = match backend.read_page(next, page_size).await {
                    Ok(page) if page.is_empty() => return None,
                    Ok(page) => page,
                    Err(error) => return Some((vec![Err(error)], None)),
                };
                let mut checked = Vec::with_capacity(page.len());
                let mut expected = next;
                for row in page {
                    match read(row) {
                        Ok(record) if position(&record) == expected => {
                            checked.push(Ok(record));
                            expected += 1;
                        }
                        Ok(_) => {
                            checked.push(Err(StoreError::CorruptRecord {
                                position: expected,
                                detail: "missing: the log has a gap".into(),
                            }));
                            return Some((checked, None));
                        }
                        Err(error) => {
                            checked.push(Err(error));
                            return Some((checked, None));
                        }
                    }
                }
                Some((checked, Some(expected)))
            }
        })
        .flat_map(stream::iter)
        .boxed()
    }

    /// The head of the log: the newest position and its recording time.
    pub async fn head(&self) -> Result<Head, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::head(pool).await,
            Backend::Postgres(pool) => postgres::head(pool).await,
        }
    }

    /// The records a command caused, in position order; empty if it was never recorded.
    pub async fn command_records(
        &self,
        command_id: &CommandId,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::command(pool, command_id).await,
            Backend::Postgres(pool) => postgres::command(pool, command_id).await,
        }
    }

    /// A circulation's status; `None` if it does not exist.
    pub async fn circulation(
        &self,
        id: &CirculationId,
    ) -> Result<Option<CirculationStatus>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::circulation(pool, id).await,
            Backend::Postgres(pool) => postgres::circulation(pool, id).await,
        }
    }

    /// The statuses of those of `ids` that exist, in one query: each parsed on its own, so a row
    /// that cannot be read is an error for its circulation alone.
    pub async fn circulation_statuses(
        &self,
        ids: &[CirculationId],
    ) -> Result<HashMap<CirculationId, Result<CirculationStatus, StoreError>>, StoreError> {
        let rows = match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::circulation_rows(pool, ids).await?,
            Backend::Postgres(pool) => postgres::circulation_rows(pool, ids).await?,
        };
        Ok(rows
            .into_iter()
            .map(|(id, status)| (CirculationId(id), parse_status(&status)))
            .collect())
    }

    /// A body's circulations by deadline, all of them or only those in `state`.
    pub async fn circulations(
        &self,
        body: &BodyId,
        state: Option<CirculationState>,
    ) -> Result<Vec<CirculationStatus>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::circulations(pool, body, state).await,
            Backend::Postgres(pool) => postgres::circulations(pool, body, state).await,
        }
    }

    /// A member's inbox: the open circulations of a body awaiting its answer, by deadline.
    pub async fn inbox(
        &self,
        body: &BodyId,
        member: &MemberId,
    ) -> Result<Vec<CirculationStatus>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::inbox(pool, body, member).await,
            Backend::Postgres(pool) => postgres::inbox(pool, body, member).await,
        }
    }

    /// Open circulations whose deadline is before `now`: what the deadline scheduler closes.
    pub async fn circulations_past_deadline(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<CirculationId>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::past_deadline(pool, now).await,
            Backend::Postgres(pool) => postgres::past_deadline(pool, now).await,
        }
    }

    /// A body's keys, active and revoked, in key-id order.
    pub async fn keys(&self, body: &BodyId) -> Result<Vec<KeyStatus>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::keys(pool, body).await,
            Backend::Postgres(pool) => postgres::keys(pool, body).await,
        }
    }

    /// One key of a body; `None` if it was never registered there.
    pub async fn key(
        &self,
        body: &BodyId,
        key_id: &KeyId,
    ) -> Result<Option<KeyStatus>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::key(pool, body, key_id).await,
            Backend::Postgres(pool) => postgres::key(pool, body, key_id).await,
        }
    }

    /// Drops every read-model row and recomputes them by folding the log stream by stream with
    /// the domain's folds, in one transaction that appends wait for.
    pub async fn rebuild_read_models(&self) -> Result<RebuildSummary, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::rebuild(pool).await,
            Backend::Postgres(pool) => postgres::rebuild(pool).await,
        }
    }

    /// Every read-model row as text, sorted, one line per row (`table`, then the columns,
    /// tab-separated, JSON columns re-serialised): for comparing read models byte for byte, as
    /// before and after [`Store::rebuild_read_models`].
    pub async fn read_model_dump(&self) -> Result<String, StoreError> {
        let mut lines = match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::dump(pool).await?,
            Backend::Postgres(pool) => postgres::dump(pool).await?,
        };
        lines.sort_unstable();
        Ok(lines.concat())
    }

    /// The keys of every stored read-model row, streamed as the database returns them, never
    /// all at once: a circulation's status row by its id, an inbox row whole, a key's row by
    /// body and key id. An auditor who has replayed the log compares them with what the log
    /// hands out, with memory that does not grow with the tables.
    pub fn read_model_keys(&self) -> impl Stream<Item = Result<ReadModelKey, StoreError>> + Send {
        // Rows go through a small channel from a task that owns the query, so the stream does
        // not borrow the store.
        let (sender, receiver) = mpsc::channel(READ_MODEL_KEYS_BUFFER);
        let backend = self.inner.backend.clone();
        tokio::spawn(async move {
            let result: Result<(), StoreError> = on_pool!(&backend, |pool| async {
                let mut rows = sqlx::query(READ_MODEL_KEYS).fetch(pool);
                while let Some(row) = rows.next().await {
                    let row = row?;
                    let key = read_model_key(
                        row.try_get(0)?,
                        row.try_get(1)?,
                        row.try_get(2)?,
                        row.try_get(3)?,
                    );
                    if sender.send(key).await.is_err() {
                        break;
                    }
                }
                Ok(())
            }
            .await);
            if let Err(error) = result {
                let _ = sender.send(Err(error)).await;
            }
        });
        stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        })
    }

    /// The stored checkpoint note for tree size `size`; `None` if none was signed for it.
    pub async fn checkpoint(&self, size: u64) -> Result<Option<String>, StoreError> {
        let size = to_i64(size)?;
        on_pool!(&self.inner.backend, |pool| Ok(sqlx::query_scalar(
            "SELECT note FROM checkpoints WHERE size = $1"
        )
        .bind(size)
        .fetch_optional(pool)
        .await?))
    }

    /// The stored checkpoint note with the largest tree size; `None` if there is none.
    pub async fn latest_checkpoint(&self) -> Result<Option<String>, StoreError> {
        on_pool!(&self.inner.backend, |pool| Ok(sqlx::query_scalar(
            "SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1"
        )
        .fetch_optional(pool)
        .await?))
    }

    /// Up to `limit` stored checkpoints with sizes from `size` on, ascending: `(size, note)`.
    pub async fn checkpoints_from(
        &self,
        size: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(i64, String)> = on_pool!(&self.inner.backend, |pool| sqlx::query_as(
            "SELECT size, note FROM checkpoints WHERE size >= $1 ORDER BY size LIMIT $2"
        )
        .bind(size)
        .bind(limit)
        .fetch_all(pool)
        .await?);
        rows.into_iter()
            .map(|(size, note)| Ok((to_u64(size)?, note)))
            .collect()
    }

    /// The inclusion proof (RFC 6962 `PATH`) of the record at `position` (from 1) in the tree of
    /// the first `size` records, from at most a few dozen stored subtrees.
    ///
    /// Fails with [`StoreError::OutOfRange`] unless `1 <= position <= size <= head`.
    pub async fn inclusion_proof(&self, position: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size(size).await?;
        if position == 0 || position > size {
            return Err(StoreError::OutOfRange(format!(
                "position {position} is not in the tree of size {size}"
            )));
        }
        let plan = ProofPlan::inclusion(position - 1, size).map_err(proof_error)?;
        self.assemble(&plan).await
    }

    /// The consistency proof (RFC 6962 `PROOF`) from the tree of `old_size` records to the tree
    /// of `new_size`, from at most a few dozen stored subtrees.
    ///
    /// Fails with [`StoreError::OutOfRange`] unless `old_size <= new_size <= head`.
    pub async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.check_size(new_size).await?;
        let plan = ProofPlan::consistency(old_size, new_size).map_err(proof_error)?;
        self.assemble(&plan).await
    }

    /// The Merkle root of the tree of the first `size` records (the empty root for 0).
    ///
    /// Fails with [`StoreError::OutOfRange`] if `size` is beyond the head.
    pub async fn root(&self, size: u64) -> Result<Hash, StoreError> {
        self.check_size(size).await?;
        let found = self.subtrees(&merkle::frontier_ids(size)).await?;
        merkle::root(size, &found).map_err(proof_error)
    }

    async fn check_size(&self, size: u64) -> Result<(), StoreError> {
        let head = self.head().await?.position;
        if size > head {
            return Err(StoreError::OutOfRange(format!(
                "tree size {size} is beyond the log's {head} records"
            )));
        }
        Ok(())
    }

    async fn assemble(&self, plan: &ProofPlan) -> Result<Vec<Hash>, StoreError> {
        let found = self.subtrees(&plan.subtrees()).await?;
        plan.assemble(&found).map_err(proof_error)
    }

    async fn subtrees(
        &self,
        ids: &[SubtreeId],
    ) -> Result<std::collections::HashMap<SubtreeId, Hash>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite(pool) => sqlite::find_subtrees(pool, ids).await,
            Backend::Postgres(pool) => postgres::find_subtrees(pool, ids).await,
        }
    }

    /// The writer's counters.
    pub fn writer_stats(&self) -> WriterStats {
        let counters = &self.inner.counters;
        WriterStats {
            batches: counters.batches.load(Ordering::Relaxed),
            appends: counters.appends.load(Ordering::Relaxed),
            records: counters.records.load(Ordering::Relaxed),
            busy: Duration::from_micros(counters.busy_micros.load(Ordering::Relaxed)),
            gathering: Duration::from_micros(counters.gather_micros.load(Ordering::Relaxed)),
            overlapped: counters.overlapped.load(Ordering::Relaxed),
        }
    }

    /// Closes the connection pool; later reads fail. The writer's own connection closes when the
    /// last clone of the store is dropped.
    pub async fn close(&self) {
        match &self.inner.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}
