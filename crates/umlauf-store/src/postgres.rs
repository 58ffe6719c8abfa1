//! The PostgreSQL backend: production, and several replicas on one database.
//!
//! A batch's transaction first locks the single head row (`SELECT … FOR UPDATE`), so batches from
//! every replica take turns; under READ COMMITTED each later statement sees everything committed
//! before the lock was granted. A batch costs four round trips whatever its size: `BEGIN` with
//! the lock, one statement reading the versions of all streams involved and the command ids
//! already recorded, one statement writing everything (rows travel as arrays that `unnest` turns
//! into rows, and data-modifying `WITH` clauses put every table into one statement), and `COMMIT`
//! with its one WAL flush.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, Row};
use umlauf_domain::StreamId;
use umlauf_domain::ids::{BodyId, CirculationId, CommandId, KeyId, MemberId};
use umlauf_domain::read_model::{CirculationState, CirculationStatus, KeyStatus};
use umlauf_proof::merkle::{Frontier, Hash, SubtreeId, frontier_ids};
use uuid::Uuid;

use crate::append::{Appended, Head, Projection, RecordRow, StoredRecord};
use crate::batch::{self, Failed, Plan, Prepared, Snapshot};
use crate::columns::{
    RECORD_COLUMNS, head_of, instant_text, record_row, to_digest, to_i64, to_u64,
};
use crate::error::StoreError;
use crate::read_models::{
    ProjectionRows, canonical_json, circulation_state_name, dump_line, parse_key, parse_status,
};
use crate::store::{RebuildSummary, StoreOptions};
use crate::time::sortable;
use crate::tree::{
    CheckpointSigner, Growth, TreeState, backfill_leaves, frontier_from, hash_low_subtrees,
    head_checkpoint_at_open, push_leaf, split_leaves, stored_size, subtree_columns, subtree_of,
};

/// Whether a schema name is a plain lower-case identifier, safe to put into SQL unquoted.
fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63
}

/// Connects, creating the schema if one is named, and migrates. Returns the pool and the
/// options for the writer's own connection.
pub(crate) async fn connect(
    options: &StoreOptions,
) -> Result<(PgPool, PgConnectOptions), StoreError> {
    let mut connect = PgConnectOptions::from_str(&options.url)
        .map_err(|error| StoreError::InvalidConfig(format!("{}: {error}", redact(&options.url))))?
        .application_name("umlauf-store");
    if let Some(schema) = &options.schema
        && !valid_schema(schema)
    {
        return Err(StoreError::InvalidConfig(format!(
            "schema {schema:?} must be 1 to 63 characters of a-z, 0-9 and _, not starting with a digit"
        )));
    }
    if options.read_only {
        return connect_read_only(options, connect).await;
    }
    if let Some(schema) = &options.schema {
        let mut connection = PgConnection::connect_with(&connect).await?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&mut connection)
        .await?;
        connection.close().await?;
        connect = connect.options([("search_path", schema.as_str())]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .connect_with(connect.clone())
        .await?;
    sqlx::migrate!("migrations/postgres").run(&pool).await?;
    Ok((pool, connect))
}

/// Connects without migrating, every transaction read-only, and checks that the log's tables
/// are there.
async fn connect_read_only(
    options: &StoreOptions,
    mut connect: PgConnectOptions,
) -> Result<(PgPool, PgConnectOptions), StoreError> {
    let mut settings = vec![("default_transaction_read_only", "on")];
    if let Some(schema) = &options.schema {
        settings.push(("search_path", schema.as_str()));
    }
    connect = connect.options(settings);
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .connect_with(connect.clone())
        .await?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unnest(ARRAY['log_head', 'log_records', 'log_commands']) AS t(name) \
         WHERE to_regclass(t.name) IS NOT NULL",
    )
    .fetch_one(&pool)
    .await?;
    if tables != 3 {
        pool.close().await;
        let place = options.schema.as_deref().map_or_else(
            || "the database".to_owned(),
            |schema| format!("schema {schema}"),
        );
        return Err(StoreError::NotALog(format!("{place} has no log tables")));
    }
    Ok((pool, connect))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// What the writer knows about the log between batches: the head after its last batch, and the
/// versions of the streams it has seen, exact as of that head. If the head is still there when
/// the next batch runs, nobody else has appended since, and the batch needs no reads at all.
#[derive(Debug, Default)]
pub(crate) struct WriterCache {
    head: Option<Head>,
    /// The leaf hash of the record at `head`, when this writer planned it.
    head_leaf: Option<[u8; 32]>,
    versions: HashMap<StreamId, u64>,
}

/// Streams the cache remembers at most; beyond that it starts afresh.
const CACHED_STREAMS: usize = 100_000;

impl WriterCache {
    /// Forgets everything: after a failure, or when another writer moved the head.
    pub(crate) fn reset(&mut self) {
        self.head = None;
        self.head_leaf = None;
        self.versions.clear();
    }

    /// Takes in what a plan leaves once it commits.
    fn remember(&mut self, plan: &Plan) {
        if self.versions.len() > CACHED_STREAMS {
            self.versions.clear();
        }
        self.head = Some(Head {
            position: plan.head,
            recorded_at: plan.head_recorded_at,
        });
        if let Some(last) = plan.records.last() {
            self.head_leaf = Some(last.leaf_hash);
        }
        for (stream, version) in &plan.stream_versions {
            self.versions.insert(stream.clone(), *version);
        }
    }
}

/// A batch planned from what the writer remembers, its statement not yet sent.
#[derive(Debug)]
pub(crate) struct Planned {
    pub(crate) plan: Plan,
    /// The leaf hash of the record at the head the plan was made against, if known.
    expected_leaf: Option<[u8; 32]>,
}

/// Plans a batch from the writer's cache and tree alone, with no read, and moves both on as if
/// it had committed, so the next batch can be planned while this one's statement runs. If the
/// statement then fails, the caller must reset both ([`forget`]).
///
/// The appends come back unplanned when the cache does not know every stream they involve, the
/// tree is not at the cached head, or the plan writes nothing (only refusals, to be judged under
/// the head lock).
pub(crate) fn plan_from_cache(
    cache: &mut WriterCache,
    tree: &mut TreeState,
    items: Vec<Prepared>,
    max_record_bytes: usize,
) -> Result<Result<Planned, Vec<Prepared>>, Failed> {
    let complete = items
        .iter()
        .flat_map(Prepared::streams)
        .all(|stream| cache.versions.contains_key(stream));
    let Some(head) = cache.head.filter(|_| complete) else {
        return Ok(Err(items));
    };
    if tree.needs_frontier(head.position) {
        return Ok(Err(items));
    }
    let snapshot = Snapshot {
        head: head.position,
        head_recorded_at: head.recorded_at,
        stream_versions: items
            .iter()
            .flat_map(Prepared::streams)
            .filter_map(|stream| {
                let version = cache.versions.get(stream)?;
                Some((stream.clone(), *version))
            })
            .collect(),
        known_commands: HashMap::new(),
    };
    let mut plan = batch::plan(snapshot, items, max_record_bytes);
    if !plan.writes_anything() {
        return Ok(Err(plan.into_items()));
    }
    if let Err(error) = plan.grow(tree) {
        return Err(Failed {
            error,
            items: plan.into_items(),
        });
    }
    let expected_leaf = cache.head_leaf;
    cache.remember(&plan);
    plan.committed(tree);
    Ok(Ok(Planned {
        plan,
        expected_leaf,
    }))
}

/// Forgets what the writer remembers of the log and its tree: after a batch failed, or when
/// its outcome is unknown. The next batch reads them again.
pub(crate) fn forget(cache: &mut WriterCache, tree: &mut TreeState) {
    cache.reset();
    tree.frontier = None;
}

/// Sends a planned batch's statement, committed on its own (see [`WRITE_BATCH`]).
pub(crate) async fn write_planned(
    connection: &mut PgConnection,
    planned: &Planned,
) -> Result<(), StoreError> {
    let mut arrays = BatchArrays::of_plan(&planned.plan, Some(planned.plan.head_before))?;
    arrays.expected_leaf = planned.expected_leaf;
    arrays.write(connection).await
}

/// SQLSTATE of `log_move_head` (see the migrations): the batch's statement found the head moved
/// and wrote nothing.
const DECLINED: &str = "U0001";

/// Commits one batch on the writer's connection: see the `batch` module.
///
/// The fast path sends one statement, committed on its own: it moves the head from where this
/// writer left it and writes everything, or, if the head has moved (another replica appended)
/// or a command id is already recorded, writes nothing and declines. Then the slow path runs:
/// lock the head, read the streams' versions and the command ids, plan again, write, commit.
/// Every append moves the head, so a head still where this writer left it means the versions it
/// remembers (of the streams appended to and of those depended on) are the database's: the
/// fast path's plan is judged on the state its own statement finds.
///
/// On an error the appends come back for another try; the writer drops the connection.
pub(crate) async fn commit_batch(
    connection: &mut PgConnection,
    cache: &mut WriterCache,
    tree: &mut TreeState,
    items: Vec<Prepared>,
    max_record_bytes: usize,
) -> Result<Vec<Result<Appended, StoreError>>, Failed> {
    let items = match fast_batch(connection, cache, tree, items, max_record_bytes).await {
        Ok(Ok(results)) => return Ok(results),
        Ok(Err(declined)) => declined,
        Err(failed) => {
            forget(cache, tree);
            return Err(failed);
        }
    };
    let result = slow_batch(connection, tree, items, max_record_bytes).await;
    match &result {
        Ok((plan, _)) => cache.remember(plan),
        Err(_) => cache.reset(),
    }
    let outcome = match result {
        Ok((plan, stored)) if plan.writes_anything() => {
            match sqlx::raw_sql("COMMIT").execute(&mut *connection).await {
                Ok(_) => {
                    plan.committed(tree);
                    return Ok(plan.into_results(&stored));
                }
                Err(error) => {
                    forget(cache, tree);
                    Err((error.into(), plan.into_items()))
                }
            }
        }
        Ok((plan, stored)) => Ok(plan.into_results(&stored)),
        Err(failed) => Err((failed.error, failed.items)),
    };
    // Nothing to commit, or a failure: end the transaction. If even that fails, the writer drops
    // the connection anyway.
    let rollback = sqlx::raw_sql("ROLLBACK").execute(&mut *connection).await;
    match (outcome, rollback) {
        (Ok(results), Ok(_)) => Ok(results),
        (Ok(results), Err(error)) => {
            tracing::warn!(%error, "rollback after a batch that wrote nothing failed");
            Ok(results)
        }
        (Err((error, items)), _) => Err(Failed { error, items }),
    }
}

/// The fast path: the results, or the appends back if the batch must take the slow path.
async fn fast_batch(
    connection: &mut PgConnection,
    cache: &mut WriterCache,
    tree: &mut TreeState,
    items: Vec<Prepared>,
    max_record_bytes: usize,
) -> Result<Result<Vec<Result<Appended, StoreError>>, Vec<Prepared>>, Failed> {
    // Read what the cache lacks. If that finds the head moved, the cache starts afresh, and
    // one more read fetches every stream of the batch at the new head.
    for _ in 0..2 {
        let mut missing: Vec<String> = items
            .iter()
            .flat_map(Prepared::streams)
            .filter(|stream| cache.head.is_none() || !cache.versions.contains_key(stream))
            .map(ToString::to_string)
            .collect();
        if missing.is_empty() {
            break;
        }
        missing.sort_unstable();
        missing.dedup();
        if let Err(error) = prefetch(connection, cache, &missing).await {
            return Err(Failed { error, items });
        }
    }
    // The head this writer knows is committed, and so are the subtrees up to it.
    if let Some(head) = cache.head
        && tree.needs_frontier(head.position)
    {
        match load_frontier(connection, head.position).await {
            Ok(frontier) => tree.frontier = Some(frontier),
            Err(error) => return Err(Failed { error, items }),
        }
    }
    let planned = match plan_from_cache(cache, tree, items, max_record_bytes)? {
        Ok(planned) => planned,
        Err(items) => return Ok(Err(items)),
    };
    match write_planned(connection, &planned).await {
        Ok(()) => Ok(Ok(planned.plan.into_results(&HashMap::new()))),
        Err(error) => {
            forget(cache, tree);
            if is_declined(&error) {
                Ok(Err(planned.plan.into_items()))
            } else {
                Err(Failed {
                    error,
                    items: planned.plan.into_items(),
                })
            }
        }
    }
}

/// Whether the fast path's statement declined: the head had moved, or a command id (or, after a
/// race with another replica, a position) was already taken.
pub(crate) fn is_declined(error: &StoreError) -> bool {
    let StoreError::Database(sqlx::Error::Database(database)) = error else {
        return false;
    };
    matches!(database.code().as_deref(), Some(DECLINED | "23505"))
}

/// Reads the head and the versions of `streams` in one snapshot, without locking, into the
/// cache. If the head is not where the cache had it, the cache starts afresh.
async fn prefetch(
    connection: &mut PgConnection,
    cache: &mut WriterCache,
    streams: &[String],
) -> Result<(), StoreError> {
    let rows = sqlx::query(
        "SELECT h.position, h.recorded_at, s.stream, \
                (SELECT r.version FROM log_records r WHERE r.stream = s.stream \
                 ORDER BY r.version DESC LIMIT 1) \
         FROM log_head h LEFT JOIN unnest($1::text[]) AS s(stream) ON true",
    )
    .bind(streams)
    .fetch_all(&mut *connection)
    .await?;
    let first = rows
        .first()
        .ok_or_else(|| StoreError::InvalidConfig("the log_head row is missing".into()))?;
    let head = head_of(first.try_get(0)?, first.try_get(1)?)?;
    if cache.head != Some(head) {
        cache.reset();
        cache.head = Some(head);
    }
    for row in &rows {
        let stream: Option<&str> = row.try_get(2)?;
        let version: Option<i64> = row.try_get(3)?;
        if let Some(Ok(stream)) = stream.map(StreamId::parse) {
            let version = version.map(to_u64).transpose()?.unwrap_or(0);
            cache.versions.insert(stream, version);
        }
    }
    Ok(())
}

/// The slow path: the batch inside its transaction, up to (not including) the commit.
async fn slow_batch(
    connection: &mut PgConnection,
    tree: &mut TreeState,
    items: Vec<Prepared>,
    max_record_bytes: usize,
) -> Result<(Plan, HashMap<CommandId, Vec<StoredRecord>>), Failed> {
    // The lock comes first and travels with BEGIN: a statement that waited for it sees the head
    // row as the previous holder left it, and every statement after it sees everything that
    // holder committed.
    let head = match lock_head(connection).await {
        Ok(head) => head,
        Err(error) => return Err(Failed { error, items }),
    };
    let snapshot = match read_snapshot(connection, head, &items).await {
        Ok(snapshot) => snapshot,
        Err(error) => return Err(Failed { error, items }),
    };
    if tree.needs_frontier(head.position) {
        match load_frontier(connection, head.position).await {
            Ok(frontier) => tree.frontier = Some(frontier),
            Err(error) => return Err(Failed { error, items }),
        }
    }
    let mut plan = batch::plan(snapshot, items, max_record_bytes);
    if let Err(error) = plan.grow(tree) {
        return Err(Failed {
            error,
            items: plan.into_items(),
        });
    }
    match write_plan(connection, &plan).await {
        Ok(stored) => Ok((plan, stored)),
        Err(error) => Err(Failed {
            error,
            items: plan.into_items(),
        }),
    }
}

/// The stored subtrees among `ids`, in one query: level 0 from `log_records`' leaf hashes, the
/// others from `merkle_subtrees`.
async fn subtrees(
    connection: &mut PgConnection,
    ids: &[SubtreeId],
) -> Result<HashMap<SubtreeId, Hash>, StoreError> {
    let (positions, inner) = split_leaves(ids)?;
    let mut levels = Vec::with_capacity(inner.len());
    let mut indexes = Vec::with_capacity(inner.len());
    for id in &inner {
        let (level, index) = subtree_columns(*id)?;
        levels.push(level);
        indexes.push(index);
    }
    let mut found = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(found);
    }
    let rows = sqlx::query(
        "SELECT s.level, s.idx, s.hash FROM merkle_subtrees s \
         JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx) \
         ON s.level = w.level AND s.idx = w.idx \
         UNION ALL \
         SELECT 0::smallint, r.position - 1, r.leaf_hash FROM log_records r \
         WHERE r.position = ANY($3::bigint[])",
    )
    .bind(&levels)
    .bind(&indexes)
    .bind(&positions)
    .fetch_all(&mut *connection)
    .await?;
    for row in rows {
        let level: i16 = row.try_get(0)?;
        let hash: &[u8] = row.try_get(2)?;
        let (id, hash) = subtree_of(i64::from(level), row.try_get(1)?, hash)?;
        found.insert(id, hash);
    }
    hash_low_subtrees(ids, &mut found);
    Ok(found)
}

/// The stored subtrees among `ids`.
pub(crate) async fn find_subtrees(
    pool: &PgPool,
    ids: &[SubtreeId],
) -> Result<HashMap<SubtreeId, Hash>, StoreError> {
    let mut connection = pool.acquire().await?;
    subtrees(&mut connection, ids).await
}

/// The tree's frontier at `size` from the stored subtrees.
async fn load_frontier(connection: &mut PgConnection, size: u64) -> Result<Frontier, StoreError> {
    let found = subtrees(connection, &frontier_ids(size)).await?;
    frontier_from(size, &found)
}

/// How many leaves the backfill reads per query.
const BACKFILL_PAGE: i64 = 10_000;

/// At open: stores the subtrees of records appended before the tree was kept (one pass over
/// their leaf hashes), checks the newest stored checkpoint against the stored tree, and with a
/// signer signs the head's checkpoint if none covers it. Under the head lock.
pub(crate) async fn prepare_tree(
    pool: &PgPool,
    signer: Option<&CheckpointSigner>,
) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await?;
    let (position, _): (i64, Option<String>) =
        sqlx::query_as("SELECT position, recorded_at FROM log_head FOR UPDATE")
            .fetch_one(&mut *transaction)
            .await?;
    let head = to_u64(position)?;
    let stored: i64 =
        sqlx::query_scalar("SELECT coalesce(max(idx) + 1, 0) FROM merkle_subtrees WHERE level = 2")
            .fetch_one(&mut *transaction)
            .await?;
    let stored = stored_size(stored)?;
    if stored > head {
        return Err(StoreError::InconsistentTree(format!(
            "the stored tree holds {stored} leaves, the log {head} records"
        )));
    }
    let mut frontier = load_frontier(&mut transaction, stored).await?;
    while frontier.size() < head {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT position, leaf_hash FROM log_records WHERE position > $1 \
             ORDER BY position LIMIT $2",
        )
        .bind(to_i64(frontier.size())?)
        .bind(BACKFILL_PAGE)
        .fetch_all(&mut *transaction)
        .await?;
        let leaves = backfill_leaves(frontier.size(), head, &rows)?;
        let mut completed = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            push_leaf(&mut frontier, leaf, &mut completed)?;
        }
        let growth = Growth {
            frontier: frontier.clone(),
            subtrees: completed,
            size: frontier.size(),
            checkpoint: None,
        };
        let mut arrays = BatchArrays::default();
        arrays.add_growth(&growth)?;
        arrays.write(&mut transaction).await?;
    }
    if let Some(signer) = signer {
        let latest: Option<(i64, String)> =
            sqlx::query_as("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(&mut *transaction)
                .await?;
        let load = async |ids: &[SubtreeId]| subtrees(&mut transaction, ids).await;
        let note = head_checkpoint_at_open(signer, head, &frontier, latest, load).await?;
        if let Some(note) = note {
            sqlx::query("INSERT INTO checkpoints (size, note) VALUES ($1, $2)")
                .bind(to_i64(head)?)
                .bind(note)
                .execute(&mut *transaction)
                .await?;
        }
    }
    transaction.commit().await?;
    Ok(())
}

async fn lock_head(connection: &mut PgConnection) -> Result<Head, StoreError> {
    let rows = sqlx::raw_sql("BEGIN; SELECT position, recorded_at FROM log_head FOR UPDATE")
        .fetch_all(&mut *connection)
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::InvalidConfig("the log_head row is missing".into()))?;
    head_of(row.try_get(0)?, row.try_get(1)?)
}

/// Reads the first results of duplicates and writes what the plan appends.
async fn write_plan(
    connection: &mut PgConnection,
    plan: &Plan,
) -> Result<HashMap<CommandId, Vec<StoredRecord>>, StoreError> {
    let mut stored = HashMap::new();
    for command_id in plan.stored_duplicates() {
        let records = command_records(connection, &command_id).await?;
        stored.insert(command_id, records);
    }
    if plan.writes_anything() {
        BatchArrays::of_plan(plan, Some(plan.head_before))?
            .write(connection)
            .await?;
    }
    Ok(stored)
}

async fn read_snapshot(
    connection: &mut PgConnection,
    head: Head,
    items: &[Prepared],
) -> Result<Snapshot, StoreError> {
    let mut snapshot = Snapshot {
        head: head.position,
        head_recorded_at: head.recorded_at,
        ..Snapshot::default()
    };

    let mut streams: Vec<String> = items
        .iter()
        .flat_map(Prepared::streams)
        .map(ToString::to_string)
        .collect();
    streams.sort_unstable();
    streams.dedup();
    let command_ids: Vec<Uuid> = items
        .iter()
        .filter_map(|item| item.cause.as_ref().map(|cause| cause.command_id.0))
        .collect();
    // One round trip for both: the streams' versions (kind 'v') and the known commands ('c').
    let rows = sqlx::query(
        "SELECT 'v' AS kind, s.stream AS key, \
                (SELECT r.version FROM log_records r WHERE r.stream = s.stream \
                 ORDER BY r.version DESC LIMIT 1) AS version, NULL::bytea AS digest \
         FROM unnest($1::text[]) AS s(stream) \
         UNION ALL \
         SELECT 'c', c.command_id::text, NULL, c.digest \
         FROM log_commands c WHERE c.command_id = ANY($2::uuid[])",
    )
    .bind(&streams)
    .bind(&command_ids)
    .fetch_all(&mut *connection)
    .await?;
    for row in rows {
        let kind: &str = row.try_get(0)?;
        let key: &str = row.try_get(1)?;
        if kind == "v" {
            let version: Option<i64> = row.try_get(2)?;
            if let (Some(version), Ok(stream)) = (version, StreamId::parse(key)) {
                snapshot.stream_versions.insert(stream, to_u64(version)?);
            }
        } else {
            let digest: Vec<u8> = row.try_get(3)?;
            if let Ok(id) = Uuid::parse_str(key) {
                snapshot
                    .known_commands
                    .insert(CommandId(id), to_digest(&digest)?);
            }
        }
    }
    Ok(snapshot)
}

/// Everything one batch writes, as one array per column: bound to [`WRITE_BATCH`].
#[derive(Debug, Default)]
struct BatchArrays<'a> {
    positions: Vec<i64>,
    streams: Vec<String>,
    versions: Vec<i64>,
    types: Vec<&'a str>,
    record_commands: Vec<Option<Uuid>>,
    bytes: Vec<&'a [u8]>,
    hashes: Vec<&'a [u8]>,
    command_ids: Vec<Uuid>,
    digests: Vec<&'a [u8]>,
    first_positions: Vec<i64>,
    record_counts: Vec<i64>,
    head: Option<i64>,
    head_recorded_at: Option<String>,
    expected_head: Option<i64>,
    /// The leaf hash of the record at `expected_head`, when the writer knows it.
    expected_leaf: Option<[u8; 32]>,
    unopened: Vec<Uuid>,
    status_ids: Vec<Uuid>,
    status_bodies: Vec<&'a str>,
    status_states: Vec<&'a str>,
    status_deadlines: Vec<&'a str>,
    status_json: Vec<&'a str>,
    inbox_circulations: Vec<Uuid>,
    inbox_members: Vec<&'a str>,
    inbox_bodies: Vec<&'a str>,
    key_bodies_replaced: Vec<&'a str>,
    key_bodies: Vec<&'a str>,
    key_ids: Vec<&'a str>,
    key_holders: Vec<&'a str>,
    key_states: Vec<&'a str>,
    key_json: Vec<&'a str>,
    subtree_levels: Vec<i16>,
    subtree_indexes: Vec<i64>,
    subtree_hashes: Vec<&'a [u8]>,
    checkpoint_sizes: Vec<i64>,
    checkpoint_notes: Vec<&'a str>,
}

/// One statement for a whole batch: the records, the commands, the Merkle subtrees and the
/// checkpoint, the read models of every stream appended to, and last the head. Each part is a
/// named common table expression; a batch's statement holds only the parts its arrays give
/// something to write (see [`write_batch_sql`]), so PostgreSQL does not set up the others.
///
/// Every part writes first; the head moves last, in `log_move_head` (see the migration), which
/// takes the counts of the rows the other parts wrote as its argument, so those parts run to the
/// end before it locks the head row. It moves the head from `$29`, where the batch was planned
/// against (and, given `$35`, only if the record there has that leaf hash), or aborts the whole
/// statement, writing nothing. A writer can so send its next batch while the previous one still
/// commits: the rows are written meanwhile and the head move waits for the previous batch to end.
/// A command id recorded before fails the statement on `log_commands`' primary key, a taken
/// (stream, version) on `log_records`' unique key; both write nothing. Each part sees the tables
/// as they were when the statement began, so the inbox's deletions (members no longer awaited)
/// and insertions (members awaited now, existing rows left alone) are disjoint; the writer never
/// has two batches of one stream in flight, so what it writes of a stream's read models is not
/// changed under it. A circulation's status row is updated in place if this statement's snapshot
/// holds it with other content (a plain update: no speculative insertion, no row lock logged);
/// every other row goes to the insertion, whose conflict clause catches a row committed after the
/// snapshot. A NULL head (`$11`) leaves the head alone and writes read
/// models or subtrees only: a rebuild, a backfill.
const WRITE_BATCH: [(&str, &str); 11] = [
    (
        "new_records",
        "INSERT INTO log_records (position, stream, version, event_type, command_id, record, leaf_hash)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::uuid[],
                         $6::bytea[], $7::bytea[])
    RETURNING 1",
    ),
    (
        "new_subtrees",
        "INSERT INTO merkle_subtrees (level, idx, hash)
    SELECT * FROM unnest($30::smallint[], $31::bigint[], $32::bytea[])
    RETURNING 1",
    ),
    (
        "new_checkpoints",
        "INSERT INTO checkpoints (size, note)
    SELECT * FROM unnest($33::bigint[], $34::text[])
    RETURNING 1",
    ),
    (
        "new_commands",
        "INSERT INTO log_commands (command_id, digest, first_position, record_count)
    SELECT * FROM unnest($8::uuid[], $9::bytea[], $10::bigint[], $28::bigint[])
    RETURNING 1",
    ),
    (
        "statuses_gone",
        "DELETE FROM circulation_status
    WHERE circulation = ANY($13::uuid[])
    RETURNING 1",
    ),
    (
        "statuses_changed",
        "UPDATE circulation_status s SET body = n.body, state = n.state, deadline = n.deadline,
        version = NULL, status = n.status
    FROM unnest($14::uuid[], $15::text[], $16::text[], $17::text[], $18::text[])
        AS n(circulation, body, state, deadline, status)
    WHERE s.circulation = n.circulation AND s.status IS DISTINCT FROM n.status
    RETURNING s.circulation",
    ),
    (
        "statuses",
        "INSERT INTO circulation_status (circulation, body, state, deadline, status)
    SELECT * FROM unnest($14::uuid[], $15::text[], $16::text[], $17::text[], $18::text[])
        AS n(circulation, body, state, deadline, status)
    WHERE n.circulation NOT IN (SELECT circulation FROM statuses_changed)
    ON CONFLICT (circulation) DO UPDATE SET body = excluded.body, state = excluded.state,
        deadline = excluded.deadline, version = NULL, status = excluded.status
    WHERE circulation_status.status IS DISTINCT FROM excluded.status
    RETURNING 1",
    ),
    (
        "inbox_gone",
        "DELETE FROM inbox i
    WHERE (i.circulation = ANY($14::uuid[]) OR i.circulation = ANY($13::uuid[]))
      AND NOT EXISTS (SELECT 1 FROM unnest($19::uuid[], $20::text[]) AS n(c, m)
                      WHERE n.c = i.circulation AND n.m = i.member)
    RETURNING 1",
    ),
    (
        "inbox_new",
        "INSERT INTO inbox (circulation, member, body)
    SELECT * FROM unnest($19::uuid[], $20::text[], $21::text[])
    ON CONFLICT DO NOTHING
    RETURNING 1",
    ),
    (
        "keys_gone",
        "DELETE FROM key_status k
    WHERE k.body = ANY($22::text[])
      AND NOT EXISTS (SELECT 1 FROM unnest($23::text[], $24::text[]) AS n(b, id)
                      WHERE n.b = k.body AND n.id = k.key_id)
    RETURNING 1",
    ),
    (
        "keys_new",
        "INSERT INTO key_status (body, key_id, holder, state, status)
    SELECT * FROM unnest($23::text[], $24::text[], $25::text[], $26::text[], $27::text[])
    ON CONFLICT (body, key_id) DO UPDATE SET holder = excluded.holder, state = excluded.state,
        status = excluded.status
    WHERE key_status.status IS DISTINCT FROM excluded.status
    RETURNING 1",
    ),
];

/// The batch statement with the parts of [`WRITE_BATCH`] that `present` names (bit `i` for
/// part `i`); the parts left out would write nothing. Every parameter is bound whatever the
/// parts, so the numbering stays the same.
fn write_batch_sql(present: u16) -> String {
    let parts: Vec<&(&str, &str)> = WRITE_BATCH
        .iter()
        .enumerate()
        .filter(|(index, _)| present & (1 << index) != 0)
        .map(|(_, part)| part)
        .collect();
    let mut sql = String::with_capacity(4096);
    for (index, (name, body)) in parts.iter().enumerate() {
        sql.push_str(if index == 0 { "WITH " } else { ", " });
        sql.push_str(name);
        sql.push_str(" AS (\n    ");
        sql.push_str(body);
        sql.push_str("\n)");
    }
    sql.push_str("\nSELECT log_move_head($29, $35, $11, $12, 0");
    for (name, _) in &parts {
        sql.push_str(" + (SELECT count(*) FROM ");
        sql.push_str(name);
        sql.push(')');
    }
    sql.push(')');
    sql
}

impl<'a> BatchArrays<'a> {
    /// A plan's records, commands, head and the projections of its streams, to be written if
    /// the head is still at `expected_head`.
    fn of_plan(plan: &'a Plan, expected_head: Option<u64>) -> Result<Self, StoreError> {
        let mut arrays = Self {
            expected_head: expected_head.map(to_i64).transpose()?,
            ..Self::default()
        };
        arrays.add_plan(plan)?;
        Ok(arrays)
    }

    /// Adds a plan's records, commands, head and the projections of its streams.
    fn add_plan(&mut self, plan: &'a Plan) -> Result<(), StoreError> {
        for stored in &plan.records {
            let record = &stored.record;
            self.positions.push(to_i64(record.position)?);
            self.streams.push(record.stream.to_string());
            self.versions.push(to_i64(record.version)?);
            self.types.push(&record.event_type);
            self.record_commands.push(record.command_id.map(|id| id.0));
            self.bytes.push(&stored.bytes);
            self.hashes.push(&stored.leaf_hash);
        }
        for command in &plan.commands {
            self.command_ids.push(command.command_id.0);
            self.digests.push(&command.digest);
            self.first_positions.push(to_i64(command.first_position)?);
            self.record_counts.push(to_i64(command.record_count)?);
        }
        if let Some(growth) = &plan.growth {
            self.add_growth(growth)?;
        }
        self.head = Some(to_i64(plan.head)?);
        self.head_recorded_at = plan.head_recorded_at.map(instant_text);
        for index in plan.projections.values() {
            if let Some(item) = plan.items.get(*index) {
                self.add_projection(&item.rows);
            }
        }
        Ok(())
    }

    /// Adds the subtrees a batch completes and its checkpoint.
    fn add_growth(&mut self, growth: &'a Growth) -> Result<(), StoreError> {
        for subtree in &growth.subtrees {
            let (level, index) = subtree_columns(subtree.id)?;
            self.subtree_levels.push(level);
            self.subtree_indexes.push(index);
            self.subtree_hashes.push(&subtree.hash);
        }
        if let Some(note) = &growth.checkpoint {
            self.checkpoint_sizes.push(to_i64(growth.size)?);
            self.checkpoint_notes.push(note);
        }
        Ok(())
    }

    /// Adds the rows that replace one stream's read models.
    fn add_projection(&mut self, rows: &'a ProjectionRows) {
        match rows {
            ProjectionRows::Body { body, keys } => {
                self.key_bodies_replaced.push(body);
                for key in keys {
                    self.key_bodies.push(body);
                    self.key_ids.push(&key.key_id);
                    self.key_holders.push(&key.holder);
                    self.key_states.push(key.state);
                    self.key_json.push(&key.status);
                }
            }
            ProjectionRows::Circulation {
                circulation,
                status: None,
            } => self.unopened.push(*circulation),
            ProjectionRows::Circulation {
                circulation,
                status: Some(row),
            } => {
                self.status_ids.push(*circulation);
                self.status_bodies.push(&row.body);
                self.status_states.push(row.state);
                self.status_deadlines.push(&row.deadline);
                self.status_json.push(&row.status);
                for member in &row.inbox {
                    self.inbox_circulations.push(*circulation);
                    self.inbox_members.push(member);
                    self.inbox_bodies.push(&row.body);
                }
            }
        }
    }

    /// Which parts of [`WRITE_BATCH`] write anything for these arrays, as bits in its order.
    fn present_parts(&self) -> u16 {
        let statuses = !self.status_ids.is_empty();
        [
            !self.positions.is_empty(),
            !self.subtree_levels.is_empty(),
            !self.checkpoint_sizes.is_empty(),
            !self.command_ids.is_empty(),
            !self.unopened.is_empty(),
            statuses,
            statuses,
            statuses || !self.unopened.is_empty(),
            !self.inbox_circulations.is_empty(),
            !self.key_bodies_replaced.is_empty(),
            !self.key_bodies.is_empty(),
        ]
        .iter()
        .enumerate()
        .fold(0, |bits, (index, present)| {
            bits | (u16::from(*present) << index)
        })
    }

    async fn write(&self, connection: &mut PgConnection) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(write_batch_sql(self.present_parts())))
            .bind(&self.positions)
            .bind(&self.streams)
            .bind(&self.versions)
            .bind(&self.types)
            .bind(&self.record_commands)
            .bind(&self.bytes)
            .bind(&self.hashes)
            .bind(&self.command_ids)
            .bind(&self.digests)
            .bind(&self.first_positions)
            .bind(self.head)
            .bind(self.head_recorded_at.as_deref())
            .bind(&self.unopened)
            .bind(&self.status_ids)
            .bind(&self.status_bodies)
            .bind(&self.status_states)
            .bind(&self.status_deadlines)
            .bind(&self.status_json)
            .bind(&self.inbox_circulations)
            .bind(&self.inbox_members)
            .bind(&self.inbox_bodies)
            .bind(&self.key_bodies_replaced)
            .bind(&self.key_bodies)
            .bind(&self.key_ids)
            .bind(&self.key_holders)
            .bind(&self.key_states)
            .bind(&self.key_json)
            .bind(&self.record_counts)
            .bind(self.expected_head)
            .bind(&self.subtree_levels)
            .bind(&self.subtree_indexes)
            .bind(&self.subtree_hashes)
            .bind(&self.checkpoint_sizes)
            .bind(&self.checkpoint_notes)
            .bind(self.expected_leaf.as_ref().map(<[u8; 32]>::as_slice))
            .execute(&mut *connection)
            .await?;
        Ok(())
    }
}

/// The head of the log.
pub(crate) async fn head(pool: &PgPool) -> Result<Head, StoreError> {
    let (position, recorded_at): (i64, Option<String>) =
        sqlx::query_as("SELECT position, recorded_at FROM log_head")
            .fetch_one(pool)
            .await?;
    head_of(position, recorded_at.as_deref())
}

fn record_of(row: &PgRow) -> Result<StoredRecord, StoreError> {
    StoredRecord::from_record_row(record_row(row)?)
}

/// One stream's records in version order.
pub(crate) async fn read_stream(
    pool: &PgPool,
    stream: &StreamId,
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut connection = pool.acquire().await?;
    stream_records(&mut connection, &stream.to_string()).await
}

async fn stream_records(
    connection: &mut PgConnection,
    stream: &str,
) -> Result<Vec<StoredRecord>, StoreError> {
    let sql =
        format!("SELECT {RECORD_COLUMNS} FROM log_records WHERE stream = $1 ORDER BY version");
    sqlx::query(AssertSqlSafe(sql))
        .bind(stream)
        .fetch_all(&mut *connection)
        .await?
        .iter()
        .map(record_of)
        .collect()
}

/// Up to `limit` records from position `from` on, each checked on its own.
pub(crate) async fn read_page(
    pool: &PgPool,
    from: u64,
    limit: u32,
) -> Result<Vec<RecordRow>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM log_records WHERE position >= $1 ORDER BY position LIMIT $2"
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(to_i64(from)?)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
        .iter()
        .map(record_row)
        .collect()
}

async fn command_records(
    connection: &mut PgConnection,
    command_id: &CommandId,
) -> Result<Vec<StoredRecord>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM log_records r JOIN log_commands c \
         ON r.position BETWEEN c.first_position AND c.first_position + c.record_count - 1 \
         WHERE c.command_id = $1 ORDER BY r.position"
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(command_id.0)
        .fetch_all(&mut *connection)
        .await?
        .iter()
        .map(record_of)
        .collect()
}

/// The records a command caused, if it was recorded.
pub(crate) async fn command(
    pool: &PgPool,
    command_id: &CommandId,
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut connection = pool.acquire().await?;
    command_records(&mut connection, command_id).await
}

fn statuses(rows: &[String]) -> Result<Vec<CirculationStatus>, StoreError> {
    rows.iter().map(|json| parse_status(json)).collect()
}

/// One circulation's status.
pub(crate) async fn circulation(
    pool: &PgPool,
    id: &CirculationId,
) -> Result<Option<CirculationStatus>, StoreError> {
    let json: Option<String> =
        sqlx::query_scalar("SELECT status FROM circulation_status WHERE circulation = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?;
    json.as_deref().map(parse_status).transpose()
}

/// The status rows of those of `ids` that have one, unparsed.
pub(crate) async fn circulation_rows(
    pool: &PgPool,
    ids: &[CirculationId],
) -> Result<Vec<(Uuid, String)>, StoreError> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    Ok(sqlx::query_as(
        "SELECT circulation, status FROM circulation_status WHERE circulation = ANY($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?)
}

/// A body's circulations, optionally only open or closed ones, by deadline.
pub(crate) async fn circulations(
    pool: &PgPool,
    body: &BodyId,
    state: Option<CirculationState>,
) -> Result<Vec<CirculationStatus>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT status FROM circulation_status \
         WHERE body = $1 AND ($2::text IS NULL OR state = $2) ORDER BY deadline, circulation",
    )
    .bind(body.as_str())
    .bind(state.map(circulation_state_name))
    .fetch_all(pool)
    .await?;
    statuses(&rows)
}

/// The open circulations of a body awaiting a member's answer, by deadline.
pub(crate) async fn inbox(
    pool: &PgPool,
    body: &BodyId,
    member: &MemberId,
) -> Result<Vec<CirculationStatus>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT s.status FROM inbox i \
         JOIN circulation_status s ON s.circulation = i.circulation \
         WHERE i.body = $1 AND i.member = $2 ORDER BY s.deadline, s.circulation",
    )
    .bind(body.as_str())
    .bind(member.as_str())
    .fetch_all(pool)
    .await?;
    statuses(&rows)
}

/// Open circulations whose deadline is before `now`.
pub(crate) async fn past_deadline(
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<Vec<CirculationId>, StoreError> {
    let rows: Vec<Uuid> = sqlx::query_scalar(
        "SELECT circulation FROM circulation_status WHERE state = 'open' AND deadline < $1 \
         ORDER BY deadline, circulation",
    )
    .bind(sortable(now))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(CirculationId).collect())
}

/// A body's keys in key-id order.
pub(crate) async fn keys(pool: &PgPool, body: &BodyId) -> Result<Vec<KeyStatus>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT status FROM key_status WHERE body = $1 ORDER BY key_id COLLATE \"C\"",
    )
    .bind(body.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(|json| parse_key(json)).collect()
}

/// One key of a body.
pub(crate) async fn key(
    pool: &PgPool,
    body: &BodyId,
    key_id: &KeyId,
) -> Result<Option<KeyStatus>, StoreError> {
    let json: Option<String> =
        sqlx::query_scalar("SELECT status FROM key_status WHERE body = $1 AND key_id = $2")
            .bind(body.as_str())
            .bind(key_id.to_string())
            .fetch_optional(pool)
            .await?;
    json.as_deref().map(parse_key).transpose()
}

/// Drops every read-model row and recomputes them from the log, in one transaction that holds
/// the head lock, so no append interleaves.
pub(crate) async fn rebuild(pool: &PgPool) -> Result<RebuildSummary, StoreError> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT position FROM log_head FOR UPDATE")
        .execute(&mut *transaction)
        .await?;
    for table in ["inbox", "circulation_status", "key_status"] {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *transaction)
            .await?;
    }
    let streams: Vec<String> = sqlx::query_scalar("SELECT DISTINCT stream FROM log_records")
        .fetch_all(&mut *transaction)
        .await?;
    let mut summary = RebuildSummary::default();
    for name in streams {
        let stream = StreamId::parse(&name).map_err(|error| StoreError::CorruptRecord {
            position: 0,
            detail: format!("stream name {name:?}: {error}"),
        })?;
        let records = stream_records(&mut transaction, &name).await?;
        let events = records
            .iter()
            .map(StoredRecord::event)
            .collect::<Result<Vec<_>, _>>()?;
        let rows = ProjectionRows::of(&stream, &Projection::fold(&stream, &events))?;
        let mut arrays = BatchArrays::default();
        arrays.add_projection(&rows);
        arrays.write(&mut transaction).await?;
        summary.streams += 1;
        summary.records += u64::try_from(records.len()).unwrap_or(u64::MAX);
    }
    transaction.commit().await?;
    Ok(summary)
}

/// Every read-model row as text, one line each (see [`crate::Store::read_model_dump`]).
pub(crate) async fn dump(pool: &PgPool) -> Result<Vec<String>, StoreError> {
    let mut lines = Vec::new();
    let rows = sqlx::query(
        "SELECT circulation::text, body, state, deadline, status FROM circulation_status",
    )
    .fetch_all(pool)
    .await?;
    for row in rows {
        let status: &str = row.try_get(4)?;
        let version = parse_status(status)?.version;
        lines.push(dump_line(
            "circulation_status",
            &[
                row.try_get::<&str, _>(0)?,
                row.try_get::<&str, _>(1)?,
                row.try_get::<&str, _>(2)?,
                row.try_get::<&str, _>(3)?,
                &version.to_string(),
                &canonical_json(status)?,
            ],
        ));
    }
    let rows = sqlx::query("SELECT body, member, circulation::text FROM inbox")
        .fetch_all(pool)
        .await?;
    for row in rows {
        lines.push(dump_line(
            "inbox",
            &[
                row.try_get::<&str, _>(0)?,
                row.try_get::<&str, _>(1)?,
                row.try_get::<&str, _>(2)?,
            ],
        ));
    }
    let rows = sqlx::query("SELECT body, key_id, holder, state, status FROM key_status")
        .fetch_all(pool)
        .await?;
    for row in rows {
        let status: &str = row.try_get(4)?;
        lines.push(dump_line(
            "key_status",
            &[
                row.try_get::<&str, _>(0)?,
                row.try_get::<&str, _>(1)?,
                row.try_get::<&str, _>(2)?,
                row.try_get::<&str, _>(3)?,
                &canonical_json(status)?,
            ],
        ));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers_and_passwords_stay_out_of_messages() {
        assert!(valid_schema("umlauf_test_1"));
        for bad in ["", "1abc", "Upper", "a-b", "a;drop", &"a".repeat(64)] {
            assert!(!valid_schema(bad), "{bad}");
        }
        assert_eq!(
            redact("postgres://user:secret@host/db"),
            "postgres://user:***@host/db"
        );
        assert_eq!(redact("postgres://host/db"), "postgres://host/db");
    }
}
