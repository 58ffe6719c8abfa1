//! The SQLite backend: the embedded default, one file in WAL mode with `synchronous=FULL`.
//!
//! SQLite has one writer at a time. A batch's transaction starts with `BEGIN IMMEDIATE`, which
//! takes the write lock at once (waiting up to the busy timeout for another process), so what it
//! reads about the head and the streams cannot change before it writes. A batch reads and writes
//! many rows per statement (multi-row `VALUES`, JSON lists through `json_each`): every statement is
//! a round trip to the connection's worker thread, and those hand-overs, not SQLite's own work,
//! are what a statement per row would cost. Statements are prepared once per connection and
//! shape; a batch's rows are split into a few fixed statement sizes so the shapes stay few.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Row};
use umlauf_domain::StreamId;
use umlauf_domain::ids::{BodyId, CirculationId, CommandId, KeyId, MemberId};
use umlauf_domain::read_model::{CirculationState, CirculationStatus, KeyStatus};
use umlauf_proof::merkle::{Frontier, Hash, SubtreeId, frontier_ids};

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

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens (creating it and its directory if missing) and migrates the database file. Returns the
/// pool and the options for the writer's own connection.
pub(crate) async fn connect(
    options: &StoreOptions,
) -> Result<(SqlitePool, SqliteConnectOptions), StoreError> {
    if options.url.contains(":memory:") || options.url.contains("mode=memory") {
        return Err(StoreError::InvalidConfig(
            "the SQLite store needs a file, not an in-memory database".into(),
        ));
    }
    if options.read_only {
        return connect_read_only(options).await;
    }
    let connect = SqliteConnectOptions::from_str(&options.url)
        .map_err(|error| StoreError::InvalidConfig(format!("{}: {error}", options.url)))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    if let Some(directory) = connect.get_filename().parent()
        && !directory.as_os_str().is_empty()
    {
        std::fs::create_dir_all(directory).map_err(|error| {
            StoreError::InvalidConfig(format!("cannot create {}: {error}", directory.display()))
        })?;
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(options.max_connections)
        .connect_with(connect.clone())
        .await?;
    sqlx::migrate!("migrations/sqlite").run(&pool).await?;
    Ok((pool, connect))
}

/// Opens the file read-only (`mode=ro`), never creating it, and checks that it holds a log.
async fn connect_read_only(
    options: &StoreOptions,
) -> Result<(SqlitePool, SqliteConnectOptions), StoreError> {
    let connect = SqliteConnectOptions::from_str(&options.url)
        .map_err(|error| StoreError::InvalidConfig(format!("{}: {error}", options.url)))?
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(BUSY_TIMEOUT);
    let path = connect.get_filename();
    if !path.is_file() {
        return Err(StoreError::NotALog(format!(
            "{} does not exist or is not a file",
            path.display()
        )));
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(options.max_connections)
        .connect_with(connect.clone())
        .await?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
         AND name IN ('log_head', 'log_records', 'log_commands')",
    )
    .fetch_one(&pool)
    .await
    .map_err(|error| StoreError::NotALog(format!("{}: {error}", path.display())))?;
    if tables != 3 {
        pool.close().await;
        return Err(StoreError::NotALog(format!(
            "{} has no log tables",
            path.display()
        )));
    }
    Ok((pool, connect))
}

/// Commits one batch on the writer's connection: see the `batch` module. On an error the
/// transaction is rolled back and the appends come back for another try; the writer drops the
/// connection.
pub(crate) async fn commit_batch(
    connection: &mut SqliteConnection,
    tree: &mut TreeState,
    items: Vec<Prepared>,
    max_record_bytes: usize,
) -> Result<Vec<Result<Appended, StoreError>>, Failed> {
    // Dropping the transaction on an error rolls it back.
    let mut transaction = match connection.begin_with("BEGIN IMMEDIATE").await {
        Ok(transaction) => transaction,
        Err(error) => {
            return Err(Failed {
                error: error.into(),
                items,
            });
        }
    };
    let snapshot = match read_snapshot(&mut transaction, &items).await {
        Ok(snapshot) => snapshot,
        Err(error) => return Err(Failed { error, items }),
    };
    // Another store on this file may have appended since this writer's last batch.
    if tree.needs_frontier(snapshot.head) {
        match load_frontier(&mut transaction, snapshot.head).await {
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
    let stored = match write_plan(&mut transaction, &plan).await {
        Ok(stored) => stored,
        Err(error) => {
            return Err(Failed {
                error,
                items: plan.into_items(),
            });
        }
    };
    let ended = if plan.writes_anything() {
        transaction.commit().await
    } else {
        transaction.rollback().await
    };
    match ended {
        Ok(()) => {
            plan.committed(tree);
            Ok(plan.into_results(&stored))
        }
        Err(error) if plan.writes_anything() => Err(Failed {
            error: error.into(),
            items: plan.into_items(),
        }),
        Err(error) => {
            tracing::warn!(%error, "rollback after a batch that wrote nothing failed");
            Ok(plan.into_results(&stored))
        }
    }
}

async fn read_snapshot(
    connection: &mut SqliteConnection,
    items: &[Prepared],
) -> Result<Snapshot, StoreError> {
    let head = read_head(connection).await?;
    let mut snapshot = Snapshot {
        head: head.position,
        head_recorded_at: head.recorded_at,
        ..Snapshot::default()
    };
    let streams: BTreeSet<String> = items
        .iter()
        .flat_map(Prepared::streams)
        .map(ToString::to_string)
        .collect();
    let versions: Vec<(String, i64)> = sqlx::query_as(
        "SELECT stream, max(version) FROM log_records \
         WHERE stream IN (SELECT value FROM json_each(?1)) GROUP BY stream",
    )
    .bind(json_list(&streams.into_iter().collect::<Vec<_>>()))
    .fetch_all(&mut *connection)
    .await?;
    for (stream, version) in versions {
        let stream = StreamId::parse(&stream)
            .map_err(|error| StoreError::InvalidRecord(format!("stream {stream}: {error}")))?;
        snapshot.stream_versions.insert(stream, to_u64(version)?);
    }
    let command_ids: Vec<String> = items
        .iter()
        .filter_map(|item| item.cause.as_ref())
        .map(|cause| cause.command_id.0.to_string())
        .collect();
    if !command_ids.is_empty() {
        let known: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT command_id, digest FROM log_commands \
             WHERE command_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json_list(&command_ids))
        .fetch_all(&mut *connection)
        .await?;
        for (command_id, digest) in known {
            let command_id = uuid::Uuid::parse_str(&command_id).map_err(|error| {
                StoreError::InvalidRecord(format!("command id {command_id}: {error}"))
            })?;
            snapshot
                .known_commands
                .insert(CommandId(command_id), to_digest(&digest)?);
        }
    }
    Ok(snapshot)
}

/// Reads the first results of duplicates and writes what the plan appends.
async fn write_plan(
    connection: &mut SqliteConnection,
    plan: &Plan,
) -> Result<HashMap<CommandId, Vec<StoredRecord>>, StoreError> {
    let mut stored = HashMap::new();
    for command_id in plan.stored_duplicates() {
        let records = command_records(connection, &command_id).await?;
        stored.insert(command_id, records);
    }
    if !plan.writes_anything() {
        return Ok(stored);
    }
    insert_rows(
        connection,
        "INSERT INTO log_records \
         (position, stream, version, event_type, command_id, record, leaf_hash) VALUES ",
        7,
        "",
        &plan.records,
        |query, new| {
            let record = &new.record;
            Ok(query
                .bind(to_i64(record.position)?)
                .bind(record.stream.to_string())
                .bind(to_i64(record.version)?)
                .bind(record.event_type.as_str())
                .bind(record.command_id.map(|id| id.0.to_string()))
                .bind(new.bytes.as_slice())
                .bind(new.leaf_hash.as_slice()))
        },
    )
    .await?;
    insert_rows(
        connection,
        "INSERT INTO log_commands (command_id, digest, first_position, record_count) VALUES ",
        4,
        "",
        &plan.commands,
        |query, command| {
            Ok(query
                .bind(command.command_id.0.to_string())
                .bind(command.digest.as_slice())
                .bind(to_i64(command.first_position)?)
                .bind(to_i64(command.record_count)?))
        },
    )
    .await?;
    let mut statuses = Vec::new();
    for index in plan.projections.values() {
        match plan.items.get(*index).map(|item| &item.rows) {
            Some(ProjectionRows::Circulation {
                circulation,
                status: Some(row),
            }) => statuses.push((circulation.to_string(), row)),
            Some(rows) => write_projection(connection, rows).await?,
            None => {}
        }
    }
    write_statuses(connection, &statuses).await?;
    if let Some(growth) = &plan.growth {
        write_growth(connection, growth).await?;
    }
    sqlx::query("UPDATE log_head SET position = ?1, recorded_at = ?2 WHERE singleton = 1")
        .bind(to_i64(plan.head)?)
        .bind(plan.head_recorded_at.map(instant_text))
        .execute(&mut *connection)
        .await?;
    Ok(stored)
}

/// Stores the subtrees a batch completes and its checkpoint.
async fn write_growth(
    connection: &mut SqliteConnection,
    growth: &Growth,
) -> Result<(), StoreError> {
    insert_rows(
        connection,
        "INSERT INTO merkle_subtrees (level, idx, hash) VALUES ",
        3,
        "",
        &growth.subtrees,
        |query, subtree| {
            let (level, index) = subtree_columns(subtree.id)?;
            Ok(query.bind(level).bind(index).bind(subtree.hash.as_slice()))
        },
    )
    .await?;
    if let Some(note) = &growth.checkpoint {
        sqlx::query("INSERT INTO checkpoints (size, note) VALUES (?1, ?2)")
            .bind(to_i64(growth.size)?)
            .bind(note.as_str())
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// The stored subtrees among `ids`.
pub(crate) async fn subtrees(
    connection: &mut SqliteConnection,
    ids: &[SubtreeId],
) -> Result<HashMap<SubtreeId, Hash>, StoreError> {
    let mut found = HashMap::with_capacity(ids.len());
    let (positions, inner) = split_leaves(ids)?;
    // A few dozen ids at most: one query with their pairs as a JSON list, each looked up by the
    // primary key (CROSS JOIN keeps the list the outer loop); level 0 from `log_records`.
    let pairs = inner
        .iter()
        .map(|id| subtree_columns(*id).map(|(level, index)| serde_json::json!([level, index])))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Ok(found);
    }
    let rows = sqlx::query(
        "SELECT s.level, s.idx, s.hash FROM json_each(?1) w \
         CROSS JOIN merkle_subtrees s ON s.level = w.value ->> 0 AND s.idx = w.value ->> 1 \
         UNION ALL \
         SELECT 0, r.position - 1, r.leaf_hash FROM json_each(?2) p \
         CROSS JOIN log_records r ON r.position = p.value",
    )
    .bind(serde_json::Value::from(pairs).to_string())
    .bind(serde_json::Value::from(positions).to_string())
    .fetch_all(&mut *connection)
    .await?;
    for row in rows {
        let hash: Vec<u8> = row.try_get(2)?;
        let (id, hash) = subtree_of(row.try_get(0)?, row.try_get(1)?, &hash)?;
        found.insert(id, hash);
    }
    hash_low_subtrees(ids, &mut found);
    Ok(found)
}

/// The tree's frontier at `size` from the stored subtrees.
async fn load_frontier(
    connection: &mut SqliteConnection,
    size: u64,
) -> Result<Frontier, StoreError> {
    let found = subtrees(connection, &frontier_ids(size)).await?;
    frontier_from(size, &found)
}

/// The tree size backfilling starts from: see [`stored_size`].
async fn stored_tree_size(connection: &mut SqliteConnection) -> Result<u64, StoreError> {
    let count: i64 =
        sqlx::query_scalar("SELECT coalesce(max(idx) + 1, 0) FROM merkle_subtrees WHERE level = 2")
            .fetch_one(&mut *connection)
            .await?;
    stored_size(count)
}

/// The stored subtrees among `ids`.
pub(crate) async fn find_subtrees(
    pool: &SqlitePool,
    ids: &[SubtreeId],
) -> Result<HashMap<SubtreeId, Hash>, StoreError> {
    let mut connection = pool.acquire().await?;
    subtrees(&mut connection, ids).await
}

/// How many leaves the backfill reads per query.
const BACKFILL_PAGE: i64 = 10_000;

/// At open: stores the subtrees of records appended before the tree was kept (one pass over
/// their leaf hashes), checks the newest stored checkpoint against the stored tree, and with a
/// signer signs the head's checkpoint if none covers it. Under the write lock.
pub(crate) async fn prepare_tree(
    pool: &SqlitePool,
    signer: Option<&CheckpointSigner>,
) -> Result<(), StoreError> {
    let mut connection = pool.acquire().await?;
    let mut transaction = connection.begin_with("BEGIN IMMEDIATE").await?;
    let head = read_head(&mut transaction).await?.position;
    let stored = stored_tree_size(&mut transaction).await?;
    if stored > head {
        return Err(StoreError::InconsistentTree(format!(
            "the stored tree holds {stored} leaves, the log {head} records"
        )));
    }
    let mut frontier = load_frontier(&mut transaction, stored).await?;
    while frontier.size() < head {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT position, leaf_hash FROM log_records WHERE position > ?1 \
             ORDER BY position LIMIT ?2",
        )
        .bind(to_i64(frontier.size())?)
        .bind(BACKFILL_PAGE)
        .fetch_all(&mut *transaction)
        .await?;
        let leaves = backfill_leaves(frontier.size(), head, &rows)?;
        let mut subtrees = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            push_leaf(&mut frontier, leaf, &mut subtrees)?;
        }
        let growth = Growth {
            frontier: frontier.clone(),
            subtrees,
            size: frontier.size(),
            checkpoint: None,
        };
        write_growth(&mut transaction, &growth).await?;
    }
    if let Some(signer) = signer {
        let latest: Option<(i64, String)> =
            sqlx::query_as("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(&mut *transaction)
                .await?;
        let load = async |ids: &[SubtreeId]| subtrees(&mut transaction, ids).await;
        let note = head_checkpoint_at_open(signer, head, &frontier, latest, load).await?;
        if let Some(note) = note {
            sqlx::query("INSERT INTO checkpoints (size, note) VALUES (?1, ?2)")
                .bind(to_i64(head)?)
                .bind(note)
                .execute(&mut *transaction)
                .await?;
        }
    }
    transaction.commit().await?;
    Ok(())
}

/// Replaces one stream's read-model rows with `rows`.
/// Rows per multi-row statement at most.
const ROWS_PER_STATEMENT: usize = 64;

/// The sizes of the statements `count` rows are written with: full statements of
/// [`ROWS_PER_STATEMENT`] rows, then the rest as powers of two, largest first.
fn statement_sizes(count: usize) -> Vec<usize> {
    let mut sizes = vec![ROWS_PER_STATEMENT; count / ROWS_PER_STATEMENT];
    let rest = count % ROWS_PER_STATEMENT;
    let mut size = ROWS_PER_STATEMENT;
    while size > 0 {
        if rest & size != 0 {
            sizes.push(size);
        }
        size /= 2;
    }
    sizes
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Writes `rows` with multi-row statements: `head`, then one group of `columns` placeholders per
/// row, then `tail`; `bind` binds one row's columns in order.
async fn insert_rows<T>(
    connection: &mut SqliteConnection,
    head: &str,
    columns: usize,
    tail: &str,
    rows: &[T],
    bind: impl for<'q> Fn(SqliteQuery<'q>, &T) -> Result<SqliteQuery<'q>, StoreError>,
) -> Result<(), StoreError> {
    let group = format!("({})", vec!["?"; columns].join(", "));
    let mut rest = rows;
    for size in statement_sizes(rows.len()) {
        let (chunk, after) = rest.split_at(size);
        rest = after;
        let sql = format!("{head}{}{tail}", vec![group.as_str(); size].join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            query = bind(query, row)?;
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// Writes the status rows of circulations appended to, and their inbox rows: each status replaces
/// the one before (left alone if equal), the inbox of each holds exactly the members it names.
async fn write_statuses(
    connection: &mut SqliteConnection,
    statuses: &[(String, &crate::read_models::CirculationRow)],
) -> Result<(), StoreError> {
    if statuses.is_empty() {
        return Ok(());
    }
    insert_rows(
        connection,
        "INSERT INTO circulation_status (circulation, body, state, deadline, version, status) \
         VALUES ",
        6,
        " ON CONFLICT (circulation) DO UPDATE SET body = excluded.body, \
         state = excluded.state, deadline = excluded.deadline, \
         version = excluded.version, status = excluded.status \
         WHERE circulation_status.status IS NOT excluded.status",
        statuses,
        |query, (circulation, row)| {
            Ok(query
                .bind(circulation.as_str())
                .bind(row.body.as_str())
                .bind(row.state)
                .bind(row.deadline.as_str())
                .bind(row.version)
                .bind(row.status.as_str()))
        },
    )
    .await?;
    // Circulation ids and member ids hold no spaces, so "circulation member" names a row.
    let circulations: Vec<&str> = statuses.iter().map(|(id, _)| id.as_str()).collect();
    let mut kept = Vec::new();
    let mut awaited = Vec::new();
    for (circulation, row) in statuses {
        for member in &row.inbox {
            kept.push(format!("{circulation} {member}"));
            awaited.push([row.body.as_str(), member.as_str(), circulation.as_str()]);
        }
    }
    sqlx::query(
        "DELETE FROM inbox WHERE circulation IN (SELECT value FROM json_each(?1)) \
         AND circulation || ' ' || member NOT IN (SELECT value FROM json_each(?2))",
    )
    .bind(json_list(&circulations))
    .bind(json_list(&kept))
    .execute(&mut *connection)
    .await?;
    if !awaited.is_empty() {
        sqlx::query(
            "INSERT OR IGNORE INTO inbox (body, member, circulation) \
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1)",
        )
        .bind(serde_json::json!(awaited).to_string())
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

async fn write_projection(
    connection: &mut SqliteConnection,
    rows: &ProjectionRows,
) -> Result<(), StoreError> {
    match rows {
        ProjectionRows::Body { body, keys } => {
            let key_ids: Vec<&str> = keys.iter().map(|key| key.key_id.as_str()).collect();
            sqlx::query(
                "DELETE FROM key_status WHERE body = ?1 \
                 AND key_id NOT IN (SELECT value FROM json_each(?2))",
            )
            .bind(body.as_str())
            .bind(json_list(&key_ids))
            .execute(&mut *connection)
            .await?;
            for key in keys {
                sqlx::query(
                    "INSERT INTO key_status (body, key_id, holder, state, status) \
                     VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (body, key_id) DO UPDATE SET holder = excluded.holder, \
                     state = excluded.state, status = excluded.status \
                     WHERE key_status.status IS NOT excluded.status",
                )
                .bind(body.as_str())
                .bind(key.key_id.as_str())
                .bind(key.holder.as_str())
                .bind(key.state)
                .bind(key.status.as_str())
                .execute(&mut *connection)
                .await?;
            }
        }
        ProjectionRows::Circulation {
            circulation,
            status: None,
        } => {
            let circulation = circulation.to_string();
            sqlx::query("DELETE FROM inbox WHERE circulation = ?1")
                .bind(circulation.as_str())
                .execute(&mut *connection)
                .await?;
            sqlx::query("DELETE FROM circulation_status WHERE circulation = ?1")
                .bind(circulation.as_str())
                .execute(&mut *connection)
                .await?;
        }
        ProjectionRows::Circulation {
            circulation,
            status: Some(row),
        } => {
            let circulation = circulation.to_string();
            sqlx::query(
                "INSERT INTO circulation_status (circulation, body, state, deadline, version, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (circulation) DO UPDATE SET body = excluded.body, \
                 state = excluded.state, deadline = excluded.deadline, \
                 version = excluded.version, status = excluded.status \
                 WHERE circulation_status.status IS NOT excluded.status",
            )
            .bind(circulation.as_str())
            .bind(row.body.as_str())
            .bind(row.state)
            .bind(row.deadline.as_str())
            .bind(row.version)
            .bind(row.status.as_str())
            .execute(&mut *connection)
            .await?;
            let members = json_list(&row.inbox);
            sqlx::query(
                "DELETE FROM inbox WHERE circulation = ?1 \
                 AND member NOT IN (SELECT value FROM json_each(?2))",
            )
            .bind(circulation.as_str())
            .bind(members.as_str())
            .execute(&mut *connection)
            .await?;
            sqlx::query(
                "INSERT OR IGNORE INTO inbox (body, member, circulation) \
                 SELECT ?1, value, ?3 FROM json_each(?2)",
            )
            .bind(row.body.as_str())
            .bind(members.as_str())
            .bind(circulation.as_str())
            .execute(&mut *connection)
            .await?;
        }
    }
    Ok(())
}

fn json_list<T: AsRef<str>>(items: &[T]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    serde_json::Value::from(items).to_string()
}

async fn read_head(connection: &mut SqliteConnection) -> Result<Head, StoreError> {
    let (position, recorded_at): (i64, Option<String>) =
        sqlx::query_as("SELECT position, recorded_at FROM log_head WHERE singleton = 1")
            .fetch_one(&mut *connection)
            .await?;
    head_of(position, recorded_at.as_deref())
}

/// The head of the log.
pub(crate) async fn head(pool: &SqlitePool) -> Result<Head, StoreError> {
    let mut connection = pool.acquire().await?;
    read_head(&mut connection).await
}

fn record_of(row: &sqlx::sqlite::SqliteRow) -> Result<StoredRecord, StoreError> {
    StoredRecord::from_record_row(record_row(row)?)
}

/// One stream's records in version order.
pub(crate) async fn read_stream(
    pool: &SqlitePool,
    stream: &StreamId,
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut connection = pool.acquire().await?;
    stream_records(&mut connection, &stream.to_string()).await
}

async fn stream_records(
    connection: &mut SqliteConnection,
    stream: &str,
) -> Result<Vec<StoredRecord>, StoreError> {
    let sql =
        format!("SELECT {RECORD_COLUMNS} FROM log_records WHERE stream = ?1 ORDER BY version");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(stream)
        .fetch_all(&mut *connection)
        .await?
        .iter()
        .map(record_of)
        .collect()
}

/// Up to `limit` records from position `from` on, each checked on its own.
pub(crate) async fn read_page(
    pool: &SqlitePool,
    from: u64,
    limit: u32,
) -> Result<Vec<RecordRow>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM log_records WHERE position >= ?1 ORDER BY position LIMIT ?2"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to_i64(from)?)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
        .iter()
        .map(record_row)
        .collect()
}

async fn command_records(
    connection: &mut SqliteConnection,
    command_id: &CommandId,
) -> Result<Vec<StoredRecord>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM log_records r JOIN log_commands c \
         ON r.position BETWEEN c.first_position AND c.first_position + c.record_count - 1 \
         WHERE c.command_id = ?1 ORDER BY r.position"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(command_id.0.to_string())
        .fetch_all(&mut *connection)
        .await?
        .iter()
        .map(record_of)
        .collect()
}

/// The records a command caused, if it was recorded.
pub(crate) async fn command(
    pool: &SqlitePool,
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
    pool: &SqlitePool,
    id: &CirculationId,
) -> Result<Option<CirculationStatus>, StoreError> {
    let json: Option<String> =
        sqlx::query_scalar("SELECT status FROM circulation_status WHERE circulation = ?1")
            .bind(id.0.to_string())
            .fetch_optional(pool)
            .await?;
    json.as_deref().map(parse_status).transpose()
}

/// The status rows of those of `ids` that have one, unparsed.
pub(crate) async fn circulation_rows(
    pool: &SqlitePool,
    ids: &[CirculationId],
) -> Result<Vec<(uuid::Uuid, String)>, StoreError> {
    let ids: Vec<String> = ids.iter().map(|id| id.0.to_string()).collect();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT circulation, status FROM circulation_status \
         WHERE circulation IN (SELECT value FROM json_each(?1))",
    )
    .bind(json_list(&ids))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(id, status)| {
            uuid::Uuid::parse_str(&id)
                .map(|id| (id, status))
                .map_err(|error| {
                    StoreError::CorruptReadModel(format!("circulation status {id}: {error}"))
                })
        })
        .collect()
}

/// A body's circulations, optionally only open or closed ones, by deadline.
pub(crate) async fn circulations(
    pool: &SqlitePool,
    body: &BodyId,
    state: Option<CirculationState>,
) -> Result<Vec<CirculationStatus>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT status FROM circulation_status WHERE body = ?1 AND (?2 IS NULL OR state = ?2) \
         ORDER BY deadline, circulation",
    )
    .bind(body.as_str())
    .bind(state.map(circulation_state_name))
    .fetch_all(pool)
    .await?;
    statuses(&rows)
}

/// The open circulations of a body awaiting a member's answer, by deadline.
pub(crate) async fn inbox(
    pool: &SqlitePool,
    body: &BodyId,
    member: &MemberId,
) -> Result<Vec<CirculationStatus>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT s.status FROM inbox i JOIN circulation_status s ON s.circulation = i.circulation \
         WHERE i.body = ?1 AND i.member = ?2 ORDER BY s.deadline, s.circulation",
    )
    .bind(body.as_str())
    .bind(member.as_str())
    .fetch_all(pool)
    .await?;
    statuses(&rows)
}

/// Open circulations whose deadline is before `now`.
pub(crate) async fn past_deadline(
    pool: &SqlitePool,
    now: DateTime<Utc>,
) -> Result<Vec<CirculationId>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT circulation FROM circulation_status WHERE state = 'open' AND deadline < ?1 \
         ORDER BY deadline, circulation",
    )
    .bind(sortable(now))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|id| {
            uuid::Uuid::parse_str(id)
                .map(CirculationId)
                .map_err(|error| {
                    StoreError::CorruptReadModel(format!("circulation id {id}: {error}"))
                })
        })
        .collect()
}

/// A body's keys in key-id order.
pub(crate) async fn keys(pool: &SqlitePool, body: &BodyId) -> Result<Vec<KeyStatus>, StoreError> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT status FROM key_status WHERE body = ?1 ORDER BY key_id")
            .bind(body.as_str())
            .fetch_all(pool)
            .await?;
    rows.iter().map(|json| parse_key(json)).collect()
}

/// One key of a body.
pub(crate) async fn key(
    pool: &SqlitePool,
    body: &BodyId,
    key_id: &KeyId,
) -> Result<Option<KeyStatus>, StoreError> {
    let json: Option<String> =
        sqlx::query_scalar("SELECT status FROM key_status WHERE body = ?1 AND key_id = ?2")
            .bind(body.as_str())
            .bind(key_id.to_string())
            .fetch_optional(pool)
            .await?;
    json.as_deref().map(parse_key).transpose()
}

/// Drops every read-model row and recomputes them from the log, in one transaction that holds
/// the write lock, so no append interleaves.
pub(crate) async fn rebuild(pool: &SqlitePool) -> Result<RebuildSummary, StoreError> {
    let mut connection = pool.acquire().await?;
    let mut transaction = connection.begin_with("BEGIN IMMEDIATE").await?;
    for table in ["inbox", "circulation_status", "key_status"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut *transaction)
            .await?;
    }
    let streams: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT stream FROM log_records ORDER BY stream")
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
        write_projection(&mut transaction, &rows).await?;
        summary.streams += 1;
        summary.records += u64::try_from(records.len()).unwrap_or(u64::MAX);
    }
    transaction.commit().await?;
    Ok(summary)
}

/// Every read-model row as text, one line each (see [`crate::Store::read_model_dump`]).
pub(crate) async fn dump(pool: &SqlitePool) -> Result<Vec<String>, StoreError> {
    let mut lines = Vec::new();
    let rows = sqlx::query(
        "SELECT circulation, body, state, deadline, version, status FROM circulation_status",
    )
    .fetch_all(pool)
    .await?;
    for row in rows {
        let version: i64 = row.try_get(4)?;
        let status: String = row.try_get(5)?;
        lines.push(dump_line(
            "circulation_status",
            &[
                row.try_get::<&str, _>(0)?,
                row.try_get::<&str, _>(1)?,
                row.try_get::<&str, _>(2)?,
                row.try_get::<&str, _>(3)?,
                &version.to_string(),
                &canonical_json(&status)?,
            ],
        ));
    }
    let rows = sqlx::query("SELECT body, member, circulation FROM inbox")
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
        let status: String = row.try_get(4)?;
        lines.push(dump_line(
            "key_status",
            &[
                row.try_get::<&str, _>(0)?,
                row.try_get::<&str, _>(1)?,
                row.try_get::<&str, _>(2)?,
                row.try_get::<&str, _>(3)?,
                &canonical_json(&status)?,
            ],
        ));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_written_in_few_statement_shapes_covering_every_row() {
        assert_eq!(statement_sizes(0), Vec::<usize>::new());
        assert_eq!(statement_sizes(1), [1]);
        assert_eq!(statement_sizes(64), [64]);
        assert_eq!(statement_sizes(100), [64, 32, 4]);
        assert_eq!(statement_sizes(131), [64, 64, 2, 1]);
        for count in 0..300 {
            let sizes = statement_sizes(count);
            assert_eq!(sizes.iter().sum::<usize>(), count);
            assert!(
                sizes
                    .iter()
                    .all(|size| size.is_power_of_two() && *size <= 64)
            );
        }
    }
}
