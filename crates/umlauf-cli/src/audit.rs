//! `umlauf audit`: the auditor's commands.
//!
//! - `verify` replays a history from the database (`--db`, opened read-only), from the JetStream
//!   log stream (`--nats`), or from an exported bundle (`--bundle`) through
//!   [`umlauf_audit::Auditor`], and prints its [`Report`] or, where anything differs, the first
//!   record that differs and what differs there. With `--db` and `--nats` together the database
//!   is audited and the stream's copy compared with it record by record.
//! - `export` writes the database's log as a self-contained bundle, with the checkpoints given
//!   and the anchors named, for `verify --bundle` on another machine.
//! - `watch` follows the checkpoint stream and the log stream with a
//!   [`umlauf_audit::watch::Watcher`] and raises an alarm on a fork or a rewrite.
//!
//! The trust anchors (the genesis keys and the log key) come from the command line or from a
//! file the auditor keeps, never from the history: a bundle's own header is informational, and
//! the database holds none. Every signed checkpoint at hand is checked: the store's own (one per
//! committed batch), the checkpoint stream's, and those held elsewhere (receipts, a witness's
//! files), given with `--checkpoint`; the last are what catches a truncated or rewritten log
//! whose stored checkpoints were cut or rewritten with it. Checkpoints are handed to the auditor
//! just before the records beyond them, so memory stays flat however many there are.
//!
//! With `--db` the stored read models are compared with the ones the replay hands out: each
//! circulation's status as it closes, and at the end the open ones, every body's keys, the inbox
//! rows, and any row the log does not account for. The log is read up to the head it has when the
//! audit starts; if it grows meanwhile (a live service), the read models that may have moved on
//! are not compared, and the output says so.
//!
//! Exit codes: 0 when nothing differs, 1 when something does (for `watch`: an alarm), 2 when the
//! audit cannot run (usage, files, the database, NATS).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr as _;

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use umlauf_audit::bundle::{BundleError, BundleItem, BundleReader, BundleWriter};
use umlauf_audit::{
    AuditFailure, AuditOptions, Auditor, Finding, FindingKind, Output, ReadModel, Report,
    TrustAnchors, json_differences,
};
use umlauf_domain::ids::{BodyId, CirculationId};
use umlauf_domain::read_model::{CirculationStatus, KeyStatus};
use umlauf_proof::keys::public_key_from_base64;
use umlauf_proof::note::NoteVerifier;
use umlauf_store::{RawRecord, ReadModelKey, Store, StoreError, StoreOptions};

/// The exit code when the history differs from what it must be.
const EXIT_FINDINGS: u8 = 1;
/// The exit code when the audit cannot run.
const EXIT_UNUSABLE: u8 = 2;
/// Records read from the database ahead of the auditor, so reading and checking overlap.
const READ_AHEAD: usize = 4096;
/// Records fetched from the database per query: a long log is read in few round trips.
const READ_PAGE: u32 = 2048;
/// At most this many differences are named per read model.
const DIFFERENCES_NAMED: usize = 5;

/// Flags of `umlauf audit`.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Replay a history and check everything: positions, bytes and leaf hashes, every signature
    /// against the key state of its time, every authorisation and decision, the Merkle tree
    /// against every checkpoint given, and (with --db) the stored read models. Exits 0 when
    /// nothing differs, 1 naming the first record that differs, 2 when the audit cannot run.
    Verify(VerifyArgs),
    /// Write the database's log as a self-contained bundle (records, the checkpoints given, the
    /// anchors named) that `umlauf audit verify --bundle` checks offline.
    Export(ExportArgs),
    /// Follow the checkpoint stream and the log stream: verify each new checkpoint's signature
    /// and that its root is the Merkle root of the published log at its size (which proves it
    /// consistent with every earlier one). On a fork or a rewrite, print an alarm and exit 1;
    /// 2 when the watch cannot run.
    Watch(WatchArgs),
}

/// Flags of `umlauf audit watch`.
#[derive(Debug, clap::Args)]
struct WatchArgs {
    /// The NATS server.
    #[arg(long, value_name = "URL")]
    nats: String,
    #[command(flatten)]
    streams: StreamArgs,
    /// The log key that signs checkpoints: a verifier key `<name>+<hex8>+<base64>`, or a file
    /// holding one (the service writes it beside its log key, as `<log key file>.vkey`).
    #[arg(long, value_name = "VKEY|FILE")]
    log_key: String,
    /// Check what the streams hold now, then exit 0 instead of following them.
    #[arg(long)]
    once: bool,
}

/// Flags of `umlauf audit verify`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .multiple(true)
        .args(["db", "bundle", "nats"])
))]
struct VerifyArgs {
    /// The store to audit: `sqlite://path` or `postgres://user@host:port/database`. It is opened
    /// read-only (nothing is migrated or created), and its stored checkpoints are checked too.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// The PostgreSQL schema the store keeps its tables in.
    #[arg(long, value_name = "SCHEMA", requires = "db")]
    db_schema: Option<String>,
    /// An exported bundle (`umlauf audit export`) to verify offline.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["db", "nats"])]
    bundle: Option<PathBuf>,
    /// The NATS server whose JetStream log stream (`<prefix>_LOG`) to audit, with the checkpoints
    /// of `<prefix>_CHECKPOINTS`. With --db too, the database is audited and the stream compared
    /// with it record by record.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    #[command(flatten)]
    streams: StreamArgs,
    #[command(flatten)]
    anchors: AnchorArgs,
    /// A signed checkpoint note held outside the history (from a receipt, the checkpoint
    /// stream, a witness); repeat for several. The log must match each one.
    #[arg(long = "checkpoint", value_name = "FILE")]
    checkpoints: Vec<PathBuf>,
    /// Print the outcome as one JSON object: result, report, findings, the first record.
    #[arg(long)]
    json: bool,
}

/// Flags of `umlauf audit export`.
#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The store to export: `sqlite://path` or `postgres://user@host:port/database`.
    #[arg(long, value_name = "URL")]
    db: String,
    /// The PostgreSQL schema the store keeps its tables in.
    #[arg(long, value_name = "SCHEMA")]
    db_schema: Option<String>,
    /// The bundle to write; it appears only once complete.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    anchors: AnchorArgs,
    /// A signed checkpoint note to include; repeat for several.
    #[arg(long = "checkpoint", value_name = "FILE")]
    checkpoints: Vec<PathBuf>,
}

/// The deployment's stream names on NATS.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "JetStream")]
struct StreamArgs {
    /// The deployment's subject root: every subject is `<root>.v1.…`.
    #[arg(
        long,
        env = "UMLAUF_SUBJECT_ROOT",
        default_value = "umlauf",
        value_name = "TOKEN"
    )]
    subject_root: String,
    /// The prefix of the deployment's JetStream streams (`<prefix>_LOG`, `<prefix>_CHECKPOINTS`).
    #[arg(
        long,
        env = "UMLAUF_STREAM_PREFIX",
        default_value = "UMLAUF",
        value_name = "PREFIX"
    )]
    stream_prefix: String,
}

impl StreamArgs {
    fn subjects(&self) -> umlauf_nats::Subjects {
        umlauf_nats::Subjects::new(&self.subject_root, &self.stream_prefix)
    }
}

/// The trust anchors, from a file or from flags.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Trust anchors (never taken from the history)")]
struct AnchorArgs {
    /// A trust-anchor file the auditor keeps:
    /// `{"genesis_keys": ["<base64>", …], "log_key": "<name>+<hex8>+<base64>"}`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["genesis_keys", "log_key"])]
    anchors: Option<PathBuf>,
    /// A genesis public key (base64); repeat for several.
    #[arg(long = "genesis-key", value_name = "BASE64")]
    genesis_keys: Vec<String>,
    /// The log key that signs checkpoints, as a verifier key `<name>+<hex8>+<base64>`.
    #[arg(long, value_name = "VKEY")]
    log_key: Option<String>,
}

impl AnchorArgs {
    fn load(&self) -> anyhow::Result<TrustAnchors> {
        if let Some(path) = &self.anchors {
            let json = std::fs::read(path)
                .with_context(|| format!("reading the trust anchors {}", path.display()))?;
            return TrustAnchors::from_json(&json)
                .with_context(|| format!("the trust anchors {} are not valid", path.display()));
        }
        let Some(log_key) = &self.log_key else {
            bail!(
                "no trust anchors: pass --anchors FILE, or --log-key VKEY and --genesis-key BASE64"
            );
        };
        if self.genesis_keys.is_empty() {
            bail!(
                "no genesis key: pass --genesis-key BASE64 (repeat for several), or --anchors FILE"
            );
        }
        let log_key: NoteVerifier = log_key
            .parse()
            .with_context(|| format!("--log-key {log_key}"))?;
        let genesis_keys = self
            .genesis_keys
            .iter()
            .map(|key| public_key_from_base64(key).with_context(|| format!("--genesis-key {key}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(TrustAnchors {
            genesis_keys,
            log_key,
        })
    }
}

/// Runs `umlauf audit …`; errors that keep the audit from running are printed here and exit 2,
/// so that 1 always means the history differs.
pub(crate) async fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let outcome = match args.command {
        AuditCommand::Verify(args) => verify(args).await,
        AuditCommand::Export(args) => export(args).await.map(|()| ExitCode::SUCCESS),
        AuditCommand::Watch(args) => watch(args).await,
    };
    Ok(outcome.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::from(EXIT_UNUSABLE)
    }))
}

// ---- verify ------------------------------------------------------------------------------------

/// What a verification ends with.
struct Verdict {
    outcome: Result<Report, AuditFailure>,
    /// The record the first finding names, as stored.
    first_record: Option<RecordView>,
    /// What the auditor should know about how far the audit went.
    notes: Vec<String>,
}

async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let anchors = args.anchors.load()?;
    let checkpoints = read_checkpoints(&args.checkpoints)?;
    let verdict = match (args.db, args.bundle, args.nats) {
        (Some(url), None, nats) => {
            let copy = match nats {
                Some(nats) => Some(NatsCopy::open(&nats, &args.streams.subjects()).await?),
                None => None,
            };
            verify_database(&url, args.db_schema, anchors, &checkpoints, copy).await?
        }
        (None, None, Some(nats)) => {
            let copy = NatsCopy::open(&nats, &args.streams.subjects()).await?;
            audit_nats(copy, anchors, &checkpoints).await?
        }
        (None, Some(path), None) => {
            tokio::task::spawn_blocking(move || verify_bundle(&path, &anchors, &checkpoints))
                .await
                .context("the bundle's audit stopped")??
        }
        _ => bail!("give --db URL, --nats URL or both, or --bundle FILE alone"),
    };
    if args.json {
        print_json(&verdict)?;
    } else {
        print_human(&verdict)?;
    }
    Ok(match verdict.outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(EXIT_FINDINGS),
    })
}

/// Reads checkpoint notes, one signed note per file, exactly as written.
fn read_checkpoints(paths: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    paths
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the checkpoint {}", path.display()))
        })
        .collect()
}

/// Gives the auditor every external checkpoint before any record, so each is checked when the
/// log reaches its size.
fn add_checkpoints(auditor: &mut Auditor, checkpoints: &[String]) -> anyhow::Result<()> {
    for note in checkpoints {
        auditor
            .add_checkpoint(note)
            .context("adding a checkpoint")?;
    }
    Ok(())
}

async fn verify_database(
    url: &str,
    schema: Option<String>,
    anchors: TrustAnchors,
    checkpoints: &[String],
    nats: Option<NatsCopy>,
) -> anyhow::Result<Verdict> {
    let store = open_store(url, schema).await?;
    let verdict = audit_store(&store, anchors, checkpoints, nats).await;
    store.close().await;
    verdict
}

// ---- JetStream ---------------------------------------------------------------------------------

/// The log and checkpoint streams of a deployment, each read from its first message up to the
/// last one it held when the audit started.
struct NatsCopy {
    /// `(stream sequence, record bytes)`: the sequence is the log position.
    log: mpsc::Receiver<anyhow::Result<(u64, Vec<u8>)>>,
    /// The log stream's last sequence when the audit started.
    log_size: u64,
    /// The checkpoint notes, ascending by size.
    checkpoints: mpsc::Receiver<anyhow::Result<(u64, String)>>,
    /// To fetch the record a finding names again.
    js: async_nats::jetstream::Context,
    log_stream: String,
}

impl NatsCopy {
    async fn open(url: &str, subjects: &umlauf_nats::Subjects) -> anyhow::Result<Self> {
        let nats = async_nats::ConnectOptions::new()
            .connection_timeout(std::time::Duration::from_secs(3))
            .connect(url)
            .await
            .with_context(|| format!("connecting to NATS at {url}"))?;
        let js = async_nats::jetstream::new(nats);
        let (log_size, log) = read_stream(&js, subjects.log_stream()).await?;
        let (_, notes) = read_stream(&js, subjects.checkpoints_stream()).await?;
        Ok(Self {
            log,
            log_size,
            checkpoints: checkpoint_notes(notes),
            js,
            log_stream: subjects.log_stream().to_owned(),
        })
    }
}

/// The log stream's message at `position`, as a record to show.
async fn stream_record(
    js: &async_nats::jetstream::Context,
    stream: &str,
    position: u64,
) -> RecordView {
    let message = match js.get_stream(stream).await {
        Ok(stream) => stream
            .get_raw_message(position)
            .await
            .map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    match message {
        Ok(message) => RecordView::of_bytes(position, &message.payload),
        Err(error) => RecordView::unavailable(position, error),
    }
}

/// Reads a JetStream stream from its first message to the last one it holds now, in a task of
/// its own: `(stream sequence, payload)`, and the last sequence.
async fn read_stream(
    js: &async_nats::jetstream::Context,
    name: &str,
) -> anyhow::Result<(u64, mpsc::Receiver<anyhow::Result<(u64, Vec<u8>)>>)> {
    let mut stream = get_stream(js, name).await?;
    let last = stream
        .info()
        .await
        .with_context(|| format!("the JetStream stream {name}"))?
        .state
        .last_sequence;
    if last == 0 {
        let (_, receiver) = mpsc::channel(1);
        return Ok((0, receiver));
    }
    Ok((last, stream_messages(&stream, name, Some(last)).await?))
}

async fn get_stream(
    js: &async_nats::jetstream::Context,
    name: &str,
) -> anyhow::Result<async_nats::jetstream::stream::Stream> {
    js.get_stream(name).await.with_context(|| {
        format!("the JetStream stream {name} (is this the deployment's stream prefix?)")
    })
}

/// The messages of a stream from its first on, `(stream sequence, payload)`, read in a task of
/// its own through an ordered consumer: up to the sequence `until`, or on and on as they come.
/// An error ends the reading after it is handed on.
async fn stream_messages(
    stream: &async_nats::jetstream::stream::Stream,
    name: &str,
    until: Option<u64>,
) -> anyhow::Result<mpsc::Receiver<anyhow::Result<(u64, Vec<u8>)>>> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull};
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..pull::OrderedConfig::default()
        })
        .await
        .with_context(|| format!("reading the JetStream stream {name}"))?;
    let mut messages = consumer
        .messages()
        .await
        .with_context(|| format!("reading the JetStream stream {name}"))?;
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    let name = name.to_owned();
    tokio::spawn(async move {
        while let Some(item) = messages.next().await {
            let item = match item {
                Ok(message) => match message.info() {
                    Ok(info) => Ok((info.stream_sequence, message.payload.to_vec())),
                    Err(error) => Err(anyhow::anyhow!("reading the stream {name}: {error}")),
                },
                Err(error) => Err(anyhow::anyhow!("reading the stream {name}: {error}")),
            };
            let done = match (&item, until) {
                (Err(_), _) => true,
                (Ok((sequence, _)), Some(until)) => *sequence >= until,
                (Ok(_), None) => false,
            };
            if sender.send(item).await.is_err() || done {
                break;
            }
        }
    });
    Ok(receiver)
}

/// The checkpoint stream's messages as `(claimed size, note)`; a message that is not a note is
/// handed on with size 0, for the auditor to refuse.
fn checkpoint_notes(
    mut messages: mpsc::Receiver<anyhow::Result<(u64, Vec<u8>)>>,
) -> mpsc::Receiver<anyhow::Result<(u64, String)>> {
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        while let Some(item) = messages.recv().await {
            let item = item.map(|(_, payload)| {
                let note = String::from_utf8_lossy(&payload).into_owned();
                (claimed_size(&note).unwrap_or(0), note)
            });
            if sender.send(item).await.is_err() {
                break;
            }
        }
    });
    receiver
}

/// The size a checkpoint note claims, read without verifying it.
fn claimed_size(note: &str) -> Option<u64> {
    let body = &note[..note.rfind("\n\n")? + 1];
    umlauf_proof::checkpoint::Checkpoint::from_body(body)
        .ok()
        .map(|checkpoint| checkpoint.size)
}

/// The store's checkpoints, ascending by size, read page by page in a task of its own.
fn stored_checkpoints(store: &Store) -> mpsc::Receiver<anyhow::Result<(u64, String)>> {
    const PAGE: usize = 1000;
    let (sender, receiver) = mpsc::channel(PAGE);
    let store = store.clone();
    tokio::spawn(async move {
        let mut next = 0_u64;
        loop {
            let page = match store.checkpoints_from(next, PAGE).await {
                Ok(page) => page,
                Err(error) => {
                    let _ = sender
                        .send(Err(
                            anyhow::Error::from(error).context("reading the stored checkpoints")
                        ))
                        .await;
                    break;
                }
            };
            let Some(&(last, _)) = page.last() else { break };
            for item in page {
                if sender.send(Ok(item)).await.is_err() {
                    return;
                }
            }
            next = last + 1;
        }
    });
    receiver
}

/// Checkpoints from several sources (the store, the checkpoint stream), each ascending by size,
/// handed to the auditor just before the first record beyond them, so memory stays flat however
/// many there are.
struct CheckpointFeed {
    sources: Vec<NoteSource>,
}

/// One source of checkpoints, the checkpoint read from it but not yet added, and whether it has
/// ended.
type NoteSource = (Notes, Option<(u64, String)>, bool);

/// Checkpoint notes with the sizes they claim, ascending.
type Notes = mpsc::Receiver<anyhow::Result<(u64, String)>>;

impl CheckpointFeed {
    fn new(sources: Vec<Notes>) -> Self {
        Self {
            sources: sources
                .into_iter()
                .map(|source| (source, None, false))
                .collect(),
        }
    }

    /// Adds every checkpoint of a size below `below` (all of them for `u64::MAX`).
    async fn add_below(&mut self, auditor: &mut Auditor, below: u64) -> anyhow::Result<()> {
        for (source, peeked, done) in &mut self.sources {
            loop {
                if peeked.is_none() && !*done {
                    match source.recv().await {
                        Some(item) => *peeked = Some(item?),
                        None => *done = true,
                    }
                }
                match peeked.take() {
                    Some((size, note)) if size < below => {
                        cpu(|| auditor.add_checkpoint(&note)).context("adding a checkpoint")?;
                    }
                    other => {
                        *peeked = other;
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Audits the JetStream log stream alone: the records, every checkpoint of the checkpoint
/// stream and those given.
async fn audit_nats(
    copy: NatsCopy,
    anchors: TrustAnchors,
    checkpoints: &[String],
) -> anyhow::Result<Verdict> {
    let NatsCopy {
        mut log,
        log_size,
        checkpoints: stream_checkpoints,
        js,
        log_stream,
    } = copy;
    let mut auditor = Auditor::new(anchors, AuditOptions::default());
    add_checkpoints(&mut auditor, checkpoints)?;
    let mut feed = CheckpointFeed::new(vec![stream_checkpoints]);
    let progress = progress_bar(log_size);
    let mut read = 0_u64;
    let mut batch = Vec::with_capacity(READ_AHEAD);
    while log.recv_many(&mut batch, READ_AHEAD).await > 0 {
        let mut messages = Vec::with_capacity(batch.len());
        for item in batch.drain(..) {
            messages.push(item?);
        }
        let last = read + u64::try_from(messages.len()).unwrap_or(0);
        feed.add_below(&mut auditor, last + 1).await?;
        cpu(|| {
            for (sequence, bytes) in messages {
                read += 1;
                if sequence != read {
                    auditor.record_finding(
                        Some(read),
                        FindingKind::CopiesDiffer {
                            detail: format!(
                                "the log stream holds sequence {sequence} at position {read}"
                            ),
                        },
                    );
                }
                auditor.push(&bytes)?;
            }
            Ok::<_, umlauf_audit::AuditError>(())
        })
        .context("auditing the log")?;
        progress.set_position(read);
    }
    progress.finish_and_clear();
    let mut notes = Vec::new();
    if log_size == 0 {
        notes.push("the log stream is empty: is this the right stream prefix?".to_owned());
    }
    cpu(|| auditor.flush());
    feed.add_below(&mut auditor, u64::MAX).await?;
    let outcome = auditor.finish();
    let first_record = match first_position(&outcome) {
        Some(position) => Some(stream_record(&js, &log_stream, position).await),
        None => None,
    };
    Ok(Verdict {
        outcome,
        first_record,
        notes,
    })
}

/// Compares the database's records with the log stream's, record by record; names the first
/// position where they differ, once.
struct CopyComparison {
    log: mpsc::Receiver<anyhow::Result<(u64, Vec<u8>)>>,
    log_size: u64,
    /// Whether a difference has been named (only the first is).
    differed: bool,
}

impl CopyComparison {
    async fn compare(
        &mut self,
        auditor: &mut Auditor,
        position: u64,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        if self.differed {
            return Ok(());
        }
        let detail = match self.log.recv().await {
            None => Some(format!(
                "the JetStream log stream ends after {} records, the database holds more",
                position - 1
            )),
            Some(item) => {
                let (sequence, stream_bytes) = item?;
                if sequence != position {
                    Some(format!(
                        "the JetStream log stream holds sequence {sequence} where the database has record {position}"
                    ))
                } else if stream_bytes != bytes {
                    Some("the JetStream log stream holds other bytes for this record".to_owned())
                } else {
                    None
                }
            }
        };
        if let Some(detail) = detail {
            self.differed = true;
            auditor.record_finding(Some(position), FindingKind::CopiesDiffer { detail });
        }
        Ok(())
    }

    /// At the end of the database's log: a stream with more records differs after it.
    fn finish(&mut self, auditor: &mut Auditor, database_size: u64) {
        if !self.differed && self.log_size > database_size {
            self.differed = true;
            auditor.record_finding(
                Some(database_size + 1),
                FindingKind::CopiesDiffer {
                    detail: format!(
                        "the JetStream log stream holds {} records, the database {database_size}",
                        self.log_size
                    ),
                },
            );
        }
    }
}

/// Opens the store for reading only, refusing a SQLite file that does not exist.
async fn open_store(url: &str, schema: Option<String>) -> anyhow::Result<Store> {
    if url.starts_with("sqlite:") {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .with_context(|| format!("the database URL {url}"))?;
        let path = options.get_filename();
        if !path.is_file() {
            bail!("there is no database at {}", path.display());
        }
    }
    let mut options = StoreOptions::new(url).read_only();
    options.schema = schema;
    options.read_page_size = READ_PAGE;
    Store::open_with(options)
        .await
        .with_context(|| format!("opening the store at {}", redact(url)))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// Streams the log from position 1 up to `head` in a task of its own, so the database is read
/// while the auditor checks what came before. The records come unparsed, with the leaf hashes
/// stored beside them ([`Store::read_raw_from`]): the auditor reads and hashes the bytes itself.
fn read_log(store: &Store, head: u64) -> mpsc::Receiver<Result<RawRecord, StoreError>> {
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    if head == 0 {
        return receiver;
    }
    let mut records = Box::pin(store.read_raw_from(1));
    tokio::spawn(async move {
        while let Some(item) = records.next().await {
            let (item, last) = match item {
                Ok(record) if record.position > head => break,
                Ok(record) => {
                    let last = record.position == head;
                    (Ok(record), last)
                }
                Err(error) => (Err(error), true),
            };
            if sender.send(item).await.is_err() || last {
                break;
            }
        }
    });
    receiver
}

/// Runs CPU-heavy work (the auditor's chunks, verified on several threads) without stalling the
/// runtime's other tasks, such as the one reading the log.
fn cpu<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// A progress bar on standard error, drawn only when that is a terminal.
fn progress_bar(length: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {pos}/{len} records {wide_bar} {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

async fn audit_store(
    store: &Store,
    anchors: TrustAnchors,
    checkpoints: &[String],
    nats: Option<NatsCopy>,
) -> anyhow::Result<Verdict> {
    let head = store
        .head()
        .await
        .context("reading the log's head")?
        .position;
    let mut notes = Vec::new();
    let mut auditor = Auditor::new(anchors, AuditOptions::default());
    add_checkpoints(&mut auditor, checkpoints)?;
    let mut sources = vec![stored_checkpoints(store)];
    let mut copy = None;
    if let Some(nats) = nats {
        sources.push(nats.checkpoints);
        copy = Some(CopyComparison {
            log: nats.log,
            log_size: nats.log_size,
            differed: false,
        });
    }
    let mut feed = CheckpointFeed::new(sources);
    let mut stored = StoredModels::default();

    let progress = progress_bar(head);
    let mut log = read_log(store, head);
    let mut read = 0_u64;
    let mut complete = true;
    let mut batch = Vec::with_capacity(READ_AHEAD);
    while complete && log.recv_many(&mut batch, READ_AHEAD).await > 0 {
        // Compare with the stream's copy, and hand the auditor the checkpoints up to the last
        // record that arrived, before the records they cover.
        let mut last = read;
        for record in batch.iter().map_while(|item| item.as_ref().ok()) {
            last = record.position;
            if let Some(copy) = &mut copy {
                copy.compare(&mut auditor, last, &record.bytes).await?;
            }
        }
        feed.add_below(&mut auditor, last + 1).await?;
        // The auditor checks records in chunks, on several threads: hand it what has arrived at
        // once, off the runtime, and compare the read models it hands back afterwards.
        let (outputs, unreadable) = cpu(|| {
            let mut outputs = Vec::new();
            for item in batch.drain(..) {
                match item {
                    Ok(record) => {
                        outputs
                            .extend(auditor.push_with_leaf_hash(&record.bytes, record.leaf_hash)?);
                        read += 1;
                    }
                    Err(error) => return Ok((outputs, Some(error))),
                }
            }
            Ok::<_, umlauf_audit::AuditError>((outputs, None))
        })
        .context("auditing the log")?;
        progress.set_position(read);
        stored.compare_all(store, &mut auditor, outputs).await?;
        match unreadable {
            None => {}
            // The store refuses to hand out a record that does not match its row's position,
            // stream and version, or the record after a gap: the history differs at the next
            // position, and nothing after it can be read. (Bytes that do not match their stored
            // leaf hash come through, and the auditor names the difference.)
            Some(StoreError::CorruptRecord { detail, .. }) => {
                auditor.record_finding(
                    Some(read + 1),
                    FindingKind::MalformedRecord {
                        detail: format!("the store cannot read it: {detail}"),
                    },
                );
                notes.push(format!(
                    "the log could not be read past record {read}; the records after it were not checked"
                ));
                complete = false;
            }
            Some(error) => return Err(error).context("reading the log"),
        }
    }
    drop(log);
    let outputs = cpu(|| auditor.flush());
    stored.compare_all(store, &mut auditor, outputs).await?;
    progress.finish_and_clear();
    if complete {
        feed.add_below(&mut auditor, u64::MAX).await?;
        if let Some(copy) = &mut copy {
            copy.finish(&mut auditor, read);
        }
    }

    let end_outputs = cpu(|| auditor.end_of_log());
    let head_after = store
        .head()
        .await
        .context("reading the log's head")?
        .position;
    if head == 0 {
        notes.push("the log is empty: is this the right database (and schema)?".to_owned());
    }
    // The read models at the end are compared only when replay saw the whole log as it stands:
    // past a record that could not be read it misses the rest, and a log that grew meanwhile
    // has stored rows that may already reflect newer records.
    if complete && head_after > head {
        notes.push(format!(
            "the log grew from {head} to {head_after} records during the audit: the first {head} were checked, \
             and the read models of open circulations and keys, which may have moved on, were not compared"
        ));
    } else if complete {
        check_head(store, &mut auditor, head, read).await;
        stored.compare_all(store, &mut auditor, end_outputs).await?;
        stored.check_rows(store, &mut auditor).await?;
    }

    let outcome = auditor.finish();
    let first_record = match first_position(&outcome) {
        Some(position) => Some(stored_record(store, position).await),
        None => None,
    };
    Ok(Verdict {
        outcome,
        first_record,
        notes,
    })
}

/// The head row against the records: a log cut short below its head, or records beyond it.
async fn check_head(store: &Store, auditor: &mut Auditor, head: u64, read: u64) {
    let detail = if read < head {
        Some(format!(
            "the head says {head} records, the log ends after {read}"
        ))
    } else {
        let beyond = Box::pin(store.read_from(head + 1)).next().await;
        beyond.map(|_| format!("the head says {head} records, the log holds more"))
    };
    if let Some(detail) = detail {
        auditor.record_read_model_mismatch(
            Some(read.min(head) + 1),
            "log_head",
            "position",
            &detail,
        );
    }
}

/// What the replay handed out, kept to find stored rows the log does not account for.
#[derive(Default)]
struct StoredModels {
    /// Every circulation handed out, with the position its status reflects.
    circulations: HashMap<CirculationId, u64>,
    /// Every key handed out: (body, key id).
    keys: HashSet<(String, String)>,
    /// The inbox rows the open circulations need: (body, member, circulation) and its position.
    inbox: BTreeMap<(String, String, String), u64>,
}

impl StoredModels {
    /// Compares the read models the auditor handed back with the stored rows: the statuses of
    /// all the circulations among them are read with one query.
    async fn compare_all(
        &mut self,
        store: &Store,
        auditor: &mut Auditor,
        outputs: Vec<Output>,
    ) -> anyhow::Result<()> {
        // Findings stay with the auditor, which reports them at the end.
        let models: Vec<ReadModel> = outputs
            .into_iter()
            .filter_map(|output| match output {
                Output::ReadModel(model) => Some(model),
                _ => None,
            })
            .collect();
        let ids: Vec<CirculationId> = models
            .iter()
            .filter_map(|model| match model {
                ReadModel::Circulation { status, .. } => Some(status.circulation),
                ReadModel::Keys { .. } => None,
            })
            .collect();
        let stored = if ids.is_empty() {
            HashMap::new()
        } else {
            store
                .circulation_statuses(&ids)
                .await
                .context("reading circulation statuses")?
        };
        for model in models {
            match model {
                ReadModel::Circulation { position, status } => {
                    let found = stored.get(&status.circulation);
                    self.compare_circulation(auditor, position, &status, found);
                }
                ReadModel::Keys { body, keys } => {
                    self.compare_keys(store, auditor, &body, &keys).await?;
                }
            }
        }
        Ok(())
    }

    /// Compares a circulation's status with its stored row, `found` as read.
    fn compare_circulation(
        &mut self,
        auditor: &mut Auditor,
        position: u64,
        status: &CirculationStatus,
        found: Option<&Result<CirculationStatus, StoreError>>,
    ) {
        let id = status.circulation;
        self.circulations.insert(id, position);
        for member in status.inbox_members() {
            self.inbox.insert(
                (status.body.to_string(), member.to_string(), id.to_string()),
                position,
            );
        }
        let detail = match found {
            Some(Ok(stored)) if stored == status => return,
            Some(Ok(stored)) => differences(status, stored),
            None => "the row is missing".to_owned(),
            Some(Err(StoreError::CorruptReadModel(detail))) => {
                format!("the row cannot be read: {detail}")
            }
            Some(Err(error)) => format!("the row cannot be read: {error}"),
        };
        auditor.record_read_model_mismatch(
            Some(position),
            "circulation_status",
            &id.to_string(),
            &detail,
        );
    }

    async fn compare_keys(
        &mut self,
        store: &Store,
        auditor: &mut Auditor,
        body: &BodyId,
        keys: &[KeyStatus],
    ) -> anyhow::Result<()> {
        for key in keys {
            self.keys.insert((body.to_string(), key.key_id.to_string()));
        }
        let detail = match store.keys(body).await {
            Ok(stored) if stored == keys => return Ok(()),
            Ok(stored) => differences(&by_key_id(keys), &by_key_id(&stored)),
            Err(StoreError::CorruptReadModel(detail)) => format!("a row cannot be read: {detail}"),
            Err(error) => return Err(error).with_context(|| format!("reading the keys of {body}")),
        };
        auditor.record_read_model_mismatch(None, "key_status", &body.to_string(), &detail);
        Ok(())
    }

    /// Compares every stored read-model row with what was handed out: the inbox rows, and rows
    /// of circulations or keys the log never had. The rows' keys are streamed
    /// ([`Store::read_model_keys`]); only the inbox rows are held, those of circulations still
    /// open.
    async fn check_rows(&self, store: &Store, auditor: &mut Auditor) -> anyhow::Result<()> {
        let mut inbox = BTreeSet::new();
        // Rows the log never had, in table and key order whatever order the rows came in.
        let mut strangers = BTreeSet::new();
        let mut keys = std::pin::pin!(store.read_model_keys());
        while let Some(key) = keys.next().await {
            let key = match key {
                Ok(key) => key,
                Err(StoreError::CorruptReadModel(detail)) => {
                    auditor.record_read_model_mismatch(None, "read models", "rows", &detail);
                    return Ok(());
                }
                Err(error) => return Err(error).context("reading the read models"),
            };
            match key {
                ReadModelKey::Circulation(circulation) => {
                    let known = uuid::Uuid::parse_str(&circulation)
                        .is_ok_and(|id| self.circulations.contains_key(&CirculationId(id)));
                    if !known {
                        strangers.insert((
                            "circulation_status",
                            circulation,
                            "a row for a circulation the log never opened",
                        ));
                    }
                }
                ReadModelKey::Inbox {
                    body,
                    member,
                    circulation,
                } => {
                    let circulation = uuid::Uuid::parse_str(&circulation)
                        .map_or(circulation, |id| id.to_string());
                    inbox.insert((body, member, circulation));
                }
                ReadModelKey::Key { body, key_id } => {
                    let key = (body, key_id);
                    if !self.keys.contains(&key) {
                        strangers.insert((
                            "key_status",
                            format!("{} {}", key.0, key.1),
                            "a row for a key the log never registered",
                        ));
                    }
                }
            }
        }
        for (table, key, detail) in strangers {
            auditor.record_read_model_mismatch(None, table, &key, detail);
        }
        for (row, position) in &self.inbox {
            if !inbox.contains(row) {
                let (body, member, circulation) = row;
                auditor.record_read_model_mismatch(
                    Some(*position),
                    "inbox",
                    &format!("{body} {member} {circulation}"),
                    "the row is missing: the member has not answered this open circulation",
                );
            }
        }
        for row in inbox.difference(&self.inbox.keys().cloned().collect()) {
            let (body, member, circulation) = row;
            let position = uuid::Uuid::parse_str(circulation)
                .ok()
                .and_then(|id| self.circulations.get(&CirculationId(id)).copied());
            auditor.record_read_model_mismatch(
                position,
                "inbox",
                &format!("{body} {member} {circulation}"),
                "a row for a member this circulation does not await",
            );
        }
        Ok(())
    }
}

/// Keys as a JSON object by key id, so differences name the key rather than an index.
fn by_key_id(keys: &[KeyStatus]) -> Value {
    Value::Object(
        keys.iter()
            .map(|key| {
                (
                    key.key_id.to_string(),
                    serde_json::to_value(key).unwrap_or_default(),
                )
            })
            .collect(),
    )
}

/// What differs between the rebuilt value and the stored one, as `path: expected …, found …`.
fn differences<T: Serialize>(rebuilt: &T, stored: &T) -> String {
    let rebuilt = serde_json::to_value(rebuilt).unwrap_or_default();
    let stored = serde_json::to_value(stored).unwrap_or_default();
    let named = json_differences(&rebuilt, &stored, DIFFERENCES_NAMED);
    if named.is_empty() {
        "the rows differ".to_owned()
    } else {
        named.join("; ")
    }
}

/// The findings in the order they are shown, as the auditor orders them: the differences by
/// position, then the stretches of records no checkpoint vouches for.
fn in_order(failure: &AuditFailure) -> Vec<&Finding> {
    failure.findings.iter().collect()
}

/// The position of the first finding shown, if it names a record.
fn first_position(outcome: &Result<Report, AuditFailure>) -> Option<u64> {
    let failure = outcome.as_ref().err()?;
    in_order(failure).first()?.position
}

/// The record at `position` as the store holds it.
async fn stored_record(store: &Store, position: u64) -> RecordView {
    match Box::pin(store.read_from(position)).next().await {
        Some(Ok(record)) if record.position() == position => {
            RecordView::of_bytes(position, &record.bytes)
        }
        Some(Err(error)) => RecordView::unavailable(position, error.to_string()),
        _ => RecordView::unavailable(position, "the log holds no such record".to_owned()),
    }
}

fn verify_bundle(
    path: &Path,
    anchors: &TrustAnchors,
    checkpoints: &[String],
) -> anyhow::Result<Verdict> {
    let file =
        File::open(path).with_context(|| format!("opening the bundle {}", path.display()))?;
    let mut auditor = Auditor::new(anchors.clone(), AuditOptions::default());
    add_checkpoints(&mut auditor, checkpoints)?;
    let unreadable = |auditor: &mut Auditor, detail: String| {
        auditor.record_finding(None, FindingKind::UnreadableBundle { detail });
    };
    let mut reader = match BundleReader::new(BufReader::new(file)) {
        Ok(reader) => reader,
        Err(BundleError::Io(error)) => {
            return Err(error).with_context(|| format!("reading the bundle {}", path.display()));
        }
        Err(error) => {
            unreadable(&mut auditor, error.to_string());
            return Ok(Verdict {
                outcome: auditor.finish(),
                first_record: None,
                notes: Vec::new(),
            });
        }
    };
    // The header's anchors are informational: the auditor's own are used.
    if reader.header().anchors != *anchors {
        auditor.record_finding(
            None,
            FindingKind::BundleAnchorsDiffer {
                detail: reader.header().anchors.to_string(),
            },
        );
    }
    let announced = reader.header().size;
    let progress = progress_bar(announced);
    let mut records = 0_u64;
    loop {
        let item = match reader.next_item() {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(BundleError::Io(error)) => {
                return Err(error)
                    .with_context(|| format!("reading the bundle {}", path.display()));
            }
            Err(error) => {
                unreadable(&mut auditor, error.to_string());
                break;
            }
        };
        let pushed = match item {
            BundleItem::Record(bytes) => {
                records += 1;
                progress.inc(1);
                auditor.push(&bytes)
            }
            BundleItem::Checkpoint(note) => auditor.add_checkpoint(&note),
        };
        if let Err(error) = pushed {
            unreadable(&mut auditor, error.to_string());
            break;
        }
    }
    progress.finish_and_clear();
    if records != announced {
        unreadable(
            &mut auditor,
            format!("the header announces {announced} records, the bundle holds {records}"),
        );
    }
    let outcome = auditor.finish();
    let first_record = first_position(&outcome).map(|position| bundle_record(path, position));
    Ok(Verdict {
        outcome,
        first_record,
        notes: Vec::new(),
    })
}

/// The `position`th record of a bundle, read again from the start.
fn bundle_record(path: &Path, position: u64) -> RecordView {
    let reader = File::open(path)
        .map_err(BundleError::from)
        .and_then(|file| BundleReader::new(BufReader::new(file)));
    let mut reader = match reader {
        Ok(reader) => reader,
        Err(error) => return RecordView::unavailable(position, error.to_string()),
    };
    let mut seen = 0_u64;
    loop {
        match reader.next_item() {
            Ok(Some(BundleItem::Record(bytes))) => {
                seen += 1;
                if seen == position {
                    return RecordView::of_bytes(position, &bytes);
                }
            }
            Ok(Some(BundleItem::Checkpoint(_))) => {}
            Ok(None) => {
                return RecordView::unavailable(
                    position,
                    "the bundle holds no such record".to_owned(),
                );
            }
            Err(error) => return RecordView::unavailable(position, error.to_string()),
        }
    }
}

// ---- output ------------------------------------------------------------------------------------

/// A record as stored, for showing where the history first differs.
#[derive(Debug, Serialize)]
struct RecordView {
    position: u64,
    /// The stored bytes as JSON, if they are JSON at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<Value>,
    /// The stored bytes as text, if they are not JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    /// Why the record cannot be shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: Option<String>,
}

impl RecordView {
    fn of_bytes(position: u64, bytes: &[u8]) -> Self {
        let record = serde_json::from_slice(bytes).ok();
        let text = match record {
            Some(_) => None,
            None => Some(String::from_utf8_lossy(bytes).into_owned()),
        };
        Self {
            position,
            record,
            text,
            unavailable: None,
        }
    }

    fn unavailable(position: u64, why: String) -> Self {
        Self {
            position,
            record: None,
            text: None,
            unavailable: Some(why),
        }
    }

    /// A few lines for people: where the record is, what it is, its data and its signer.
    fn describe(&self) -> String {
        let position = self.position;
        if let Some(why) = &self.unavailable {
            return format!("record {position} cannot be shown: {why}");
        }
        if let Some(text) = &self.text {
            let shown: String = text.chars().take(2000).collect();
            return format!("record {position} as stored (not JSON):\n  {shown}");
        }
        let Some(record) = &self.record else {
            return format!("record {position}");
        };
        let field = |name: &str| match record.get(name) {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => "?".to_owned(),
        };
        let mut lines = format!(
            "record {position} as stored: {} version {}, {}, recorded at {}",
            field("stream"),
            field("version"),
            field("type"),
            field("recorded_at"),
        );
        if let Some(command) = record.get("command_id").and_then(Value::as_str) {
            lines.push_str(&format!(", command {command}"));
        }
        if let Some(data) = record.get("data") {
            lines.push_str(&format!("\n  data: {data}"));
        }
        if let Some(envelope) = record.get("envelope") {
            let signer = envelope
                .pointer("/signatures/0/keyid")
                .and_then(Value::as_str)
                .unwrap_or("?");
            lines.push_str(&format!("\n  signed with key {signer}"));
        }
        lines
    }
}

fn print_human(verdict: &Verdict) -> anyhow::Result<()> {
    for note in &verdict.notes {
        eprintln!("note: {note}");
    }
    match &verdict.outcome {
        Ok(report) => {
            umlauf_cli::out!("the audit passed: nothing differs")?;
            umlauf_cli::out!("{report}")?;
        }
        Err(failure) => {
            let findings = in_order(failure);
            match findings.split_first() {
                Some((first, rest)) => {
                    umlauf_cli::out!("the audit failed; first difference: {first}")?;
                    for finding in rest {
                        umlauf_cli::out!("  also: {finding}")?;
                    }
                }
                None => umlauf_cli::out!("the audit failed")?,
            }
            if failure.omitted > 0 {
                umlauf_cli::out!("  and {} more", failure.omitted)?;
            }
            umlauf_cli::out!("{}", failure.report)?;
            if let Some(record) = &verdict.first_record {
                umlauf_cli::out!()?;
                umlauf_cli::out!("{}", record.describe())?;
            }
        }
    }
    Ok(())
}

/// The JSON form of the outcome.
#[derive(Serialize)]
struct JsonVerdict<'a> {
    /// `clean` or `findings`.
    result: &'static str,
    report: &'a Report,
    /// In the order of [`in_order`]: the first is where the history first differs.
    findings: Vec<&'a Finding>,
    omitted: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_record: Option<&'a RecordView>,
    notes: &'a [String],
}

fn print_json(verdict: &Verdict) -> anyhow::Result<()> {
    let json = match &verdict.outcome {
        Ok(report) => JsonVerdict {
            result: "clean",
            report,
            findings: Vec::new(),
            omitted: 0,
            first_record: None,
            notes: &verdict.notes,
        },
        Err(failure) => JsonVerdict {
            result: "findings",
            report: &failure.report,
            findings: in_order(failure),
            omitted: failure.omitted,
            first_record: verdict.first_record.as_ref(),
            notes: &verdict.notes,
        },
    };
    umlauf_cli::out!("{}", serde_json::to_string(&json)?)?;
    Ok(())
}

// ---- watch -------------------------------------------------------------------------------------

/// A verifier key given on the command line, or the path of a file holding one.
pub(crate) fn load_log_key(value: &str) -> anyhow::Result<NoteVerifier> {
    if let Ok(key) = value.parse::<NoteVerifier>() {
        return Ok(key);
    }
    let path = Path::new(value);
    if !path.is_file() {
        bail!("--log-key {value}: neither a verifier key <name>+<hex8>+<base64> nor a file");
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the log key {}", path.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("the log key in {}", path.display()))
}

async fn watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    use umlauf_audit::watch::{Checked, Watcher};
    let log_key = load_log_key(&args.log_key)?;
    let subjects = args.streams.subjects();
    let nats = async_nats::ConnectOptions::new()
        .connection_timeout(std::time::Duration::from_secs(3))
        .connect(&args.nats)
        .await
        .with_context(|| format!("connecting to NATS at {}", args.nats))?;
    let js = async_nats::jetstream::new(nats);
    // Records are published before the checkpoints that cover them: the log's end is read after
    // the checkpoints' end.
    let mut checkpoints = follow_stream(&js, subjects.checkpoints_stream(), args.once).await?;
    let mut log = follow_stream(&js, subjects.log_stream(), args.once).await?;
    let mut watcher = Watcher::new(log_key);
    eprintln!(
        "watching {} and {} on {}",
        subjects.checkpoints_stream(),
        subjects.log_stream(),
        args.nats
    );
    while let Some(item) = checkpoints.recv().await {
        let (_, payload) = item?;
        let note = String::from_utf8_lossy(&payload);
        let checked = match watcher.open(&note) {
            Ok(checkpoint) => {
                let mut outcome = None;
                while watcher.size() < checkpoint.size {
                    match log.recv().await {
                        Some(item) => {
                            let (sequence, record) = item?;
                            if let Err(alarm) = watcher.push_record(sequence, &record) {
                                outcome = Some(Err(alarm));
                                break;
                            }
                        }
                        None => break,
                    }
                }
                match outcome {
                    Some(alarm) => alarm,
                    None => watcher
                        .check(&checkpoint)
                        .map(|checked| (checked, checkpoint)),
                }
            }
            Err(alarm) => Err(alarm),
        };
        match checked {
            Ok((Checked::Matched, checkpoint)) => umlauf_cli::out!(
                "checkpoint {} verified: root {} is the published log's",
                checkpoint.size,
                to_hex(&checkpoint.root)
            )?,
            Ok((Checked::Repeated, _)) => {}
            Err(alarm) => {
                umlauf_cli::out!("ALARM ({}): {alarm}", alarm.code())?;
                eprintln!("ALARM ({}): {alarm}", alarm.code());
                return Ok(ExitCode::from(EXIT_FINDINGS));
            }
        }
    }
    umlauf_cli::out!(
        "no alarm: {} checkpoints verified against the published log of {} records",
        watcher.checked(),
        watcher.size()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Bytes as lowercase hex.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Reads a JetStream stream from its first message on, following new ones; with `once`, up to
/// the last message it holds now.
async fn follow_stream(
    js: &async_nats::jetstream::Context,
    name: &str,
    once: bool,
) -> anyhow::Result<mpsc::Receiver<anyhow::Result<(u64, Vec<u8>)>>> {
    if once {
        return Ok(read_stream(js, name).await?.1);
    }
    let stream = get_stream(js, name).await?;
    stream_messages(&stream, name, None).await
}

// ---- export ------------------------------------------------------------------------------------

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let anchors = args.anchors.load()?;
    let checkpoints = read_checkpoints(&args.checkpoints)?;
    let count = checkpoints.len();
    let store = open_store(&args.db, args.db_schema).await?;
    let written = export_store(&store, &anchors, checkpoints, &args.out).await;
    store.close().await;
    let written = written?;
    eprintln!(
        "wrote {written} records and {count} checkpoints to {}",
        args.out.display()
    );
    Ok(())
}

/// Writes the bundle to a temporary file beside `out` and moves it into place once complete, so
/// a failed export never leaves a bundle that looks whole.
async fn export_store(
    store: &Store,
    anchors: &TrustAnchors,
    checkpoints: Vec<String>,
    out: &Path,
) -> anyhow::Result<u64> {
    let head = store
        .head()
        .await
        .context("reading the log's head")?
        .position;
    let directory = match out.parent() {
        Some(directory) if !directory.as_os_str().is_empty() => directory,
        _ => Path::new("."),
    };
    let file = tempfile::NamedTempFile::new_in(directory)
        .with_context(|| format!("creating a file in {}", directory.display()))?;
    let mut writer = BundleWriter::new(BufWriter::new(file), anchors, head, checkpoints)
        .context("writing the bundle")?;
    let progress = progress_bar(head);
    let mut log = read_log(store, head);
    while let Some(item) = log.recv().await {
        let record = item.context("reading the log")?;
        writer
            .write_record(&record.bytes)
            .context("writing the bundle")?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    let file = writer
        .finish()
        .context("finishing the bundle")?
        .into_inner()
        .map_err(|error| error.into_error())
        .context("writing the bundle")?;
    file.as_file().sync_all().context("writing the bundle")?;
    file.persist(out)
        .map_err(|error| error.error)
        .with_context(|| format!("moving the bundle to {}", out.display()))?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://umlauf:secret@db:5432/umlauf"),
            "postgres://umlauf:***@db:5432/umlauf"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(redact("sqlite://data/umlauf.db"), "sqlite://data/umlauf.db");
    }
}
