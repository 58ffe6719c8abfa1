//! `umlauf receipt verify`: checks a saved receipt with nothing but the log's public key.
//!
//! A receipt (`umlauf_proof::receipt::Receipt`, as `umlauf vote --save-receipt` writes it) names
//! a record's position and leaf hash, a signed checkpoint and the inclusion proof. `verify`
//! checks the checkpoint's signature with the log key and the inclusion proof; with a newer
//! checkpoint and the consistency proof from the receipt's tree to it (from files, or fetched
//! from the service with `--nats`), it also checks that the log has only grown since, so the
//! record is still in it.
//!
//! Exit codes: 0 when the receipt holds, 1 when it does not (malformed, not signed by the log
//! key, a proof that fails), 2 when the check cannot run (usage, files, NATS).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use umlauf_nats::client::Client;
use umlauf_nats::wire::{
    CheckpointQuery, CheckpointReply, ConsistencyQuery, ConsistencyReply, hashes_from_hex,
};
use umlauf_proof::checkpoint::Checkpoint;
use umlauf_proof::merkle::Hash;
use umlauf_proof::receipt::Receipt;

use crate::audit::{load_log_key, to_hex};

/// The exit code when the receipt does not hold.
const EXIT_INVALID: u8 = 1;
/// The exit code when the check cannot run.
const EXIT_UNUSABLE: u8 = 2;
/// Where the service writes the log's verifier key by default.
const DEFAULT_LOG_KEY: &str = "./data/log-key.vkey";

/// Flags of `umlauf receipt`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReceiptArgs {
    #[command(subcommand)]
    command: ReceiptCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ReceiptCommand {
    /// Check a saved receipt: the checkpoint's signature with the log key and the inclusion
    /// proof; with a newer checkpoint and a consistency proof (files, or --nats), also that the
    /// log has only grown since. Exits 0 when it holds, 1 when not, 2 when it cannot check.
    Verify(VerifyArgs),
}

/// Flags of `umlauf receipt verify`.
#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The receipt, in its JSON form.
    #[arg(value_name = "FILE")]
    receipt: PathBuf,
    /// The log key: a verifier key `<name>+<hex8>+<base64>`, or a file holding one.
    #[arg(long, env = "UMLAUF_LOG_KEY", default_value = DEFAULT_LOG_KEY, value_name = "VKEY|FILE")]
    log_key: String,
    /// The record's bytes, to check that they are the receipt's leaf.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// A newer signed checkpoint note of the same log.
    #[arg(
        long,
        value_name = "FILE",
        requires = "consistency_proof",
        conflicts_with = "nats"
    )]
    newer_checkpoint: Option<PathBuf>,
    /// The consistency proof from the receipt's checkpoint to the newer one: the JSON reply of
    /// the `consistency` query (`{"old_size":…,"new_size":…,"proof":[…]}`) or a JSON array of
    /// hex hashes.
    #[arg(long, value_name = "FILE", requires = "newer_checkpoint")]
    consistency_proof: Option<PathBuf>,
    /// Fetch the newest checkpoint and the consistency proof from the service on this NATS
    /// server.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// The deployment's subject root (with --nats).
    #[arg(
        long,
        env = "UMLAUF_SUBJECT_ROOT",
        default_value = "umlauf",
        value_name = "TOKEN"
    )]
    subject_root: String,
}

/// Runs `umlauf receipt …`.
pub(crate) async fn run(args: ReceiptArgs) -> anyhow::Result<ExitCode> {
    let ReceiptCommand::Verify(args) = args.command;
    Ok(match verify(args).await {
        Ok(Ok(lines)) => {
            for line in lines {
                umlauf_cli::out!("{line}")?;
            }
            ExitCode::SUCCESS
        }
        Ok(Err(invalid)) => {
            umlauf_cli::out!("the receipt is INVALID: {invalid:#}")?;
            ExitCode::from(EXIT_INVALID)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    })
}

/// The newer checkpoint and the consistency proof to it.
struct Newer {
    note: String,
    proof: Vec<Hash>,
}

/// `Err` when the check cannot run; `Ok(Err)` when the receipt does not hold.
async fn verify(args: VerifyArgs) -> anyhow::Result<Result<Vec<String>, anyhow::Error>> {
    let log_key = load_log_key(&args.log_key)?;
    let json = std::fs::read(&args.receipt)
        .with_context(|| format!("reading the receipt {}", args.receipt.display()))?;
    let record = match &args.record {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading the record {}", path.display()))?,
        ),
        None => None,
    };
    let receipt = match Receipt::from_json(&json) {
        Ok(receipt) => receipt,
        Err(error) => return Ok(Err(anyhow::Error::from(error).context("malformed receipt"))),
    };
    let checkpoint = match receipt.verify(record.as_deref(), &log_key) {
        Ok(checkpoint) => checkpoint,
        Err(error) => return Ok(Err(error.into())),
    };
    let mut lines = vec![format!(
        "the receipt holds: record {} (leaf {}) is in the log {} under its signed checkpoint of size {} (root {})",
        receipt.position,
        to_hex(&receipt.leaf_hash),
        checkpoint.origin,
        checkpoint.size,
        to_hex(&checkpoint.root)
    )];
    let newer = match (&args.newer_checkpoint, &args.consistency_proof, &args.nats) {
        (Some(note), Some(proof), None) => Some(newer_from_files(note, proof)?),
        (None, None, Some(url)) => {
            match newer_from_service(url, &args.subject_root, &checkpoint).await? {
                Ok(newer) => Some(newer),
                Err(invalid) => return Ok(Err(invalid)),
            }
        }
        (None, None, None) => None,
        _ => bail!("give --newer-checkpoint FILE with --consistency-proof FILE, or --nats URL"),
    };
    if let Some(newer) = newer {
        match receipt.verify_against_newer(&newer.note, &newer.proof, &log_key) {
            Ok(newer) => lines.push(format!(
                "the log has only grown since: the newer signed checkpoint of size {} (root {}) extends it, so the record is in it too",
                newer.size,
                to_hex(&newer.root)
            )),
            Err(error) => {
                return Ok(Err(anyhow::Error::from(error)
                    .context("the newer checkpoint is not a continuation of the receipt's log")));
            }
        }
    }
    Ok(Ok(lines))
}

fn newer_from_files(note: &std::path::Path, proof: &std::path::Path) -> anyhow::Result<Newer> {
    let note = std::fs::read_to_string(note)
        .with_context(|| format!("reading the checkpoint {}", note.display()))?;
    let text = std::fs::read(proof)
        .with_context(|| format!("reading the consistency proof {}", proof.display()))?;
    let hashes: Vec<String> = match serde_json::from_slice::<ConsistencyReply>(&text) {
        Ok(reply) => reply.proof,
        Err(_) => serde_json::from_slice(&text).with_context(|| {
            format!(
                "the consistency proof {} is neither a consistency reply nor a JSON array of hashes",
                proof.display()
            )
        })?,
    };
    let proof = hashes_from_hex(&hashes).with_context(|| {
        format!("the consistency proof holds something other than 64-hex-digit hashes: {hashes:?}")
    })?;
    Ok(Newer { note, proof })
}

/// Fetches the newest checkpoint and the consistency proof to it; `Ok(Err)` when the service's
/// answer shows the receipt does not hold (its log is now shorter).
async fn newer_from_service(
    url: &str,
    subject_root: &str,
    checkpoint: &Checkpoint,
) -> anyhow::Result<Result<Newer, anyhow::Error>> {
    // Only the subjects matter here; the stream prefix is not used.
    let subjects = umlauf_nats::Subjects::new(subject_root, "UMLAUF");
    let client = Client::connect(url, subjects, Duration::from_secs(3))
        .await
        .with_context(|| format!("connecting to NATS at {url}"))?;
    let newest: CheckpointReply = client
        .query("checkpoint", &CheckpointQuery::default())
        .await
        .context("asking the service for its newest checkpoint")?;
    let note = newest.checkpoint;
    let Some(size) = claimed_size(&note) else {
        return Ok(Err(anyhow::anyhow!(
            "the service's newest checkpoint is not a checkpoint note"
        )));
    };
    if size < checkpoint.size {
        return Ok(Err(anyhow::anyhow!(
            "the service's newest checkpoint has size {size}, smaller than the receipt's {}: the log was cut",
            checkpoint.size
        )));
    }
    let reply: ConsistencyReply = client
        .query(
            "consistency",
            &ConsistencyQuery {
                old_size: checkpoint.size,
                new_size: size,
            },
        )
        .await
        .context("asking the service for the consistency proof")?;
    let Some(proof) = hashes_from_hex(&reply.proof) else {
        return Ok(Err(anyhow::anyhow!(
            "the service's consistency proof holds something other than hashes"
        )));
    };
    Ok(Ok(Newer { note, proof }))
}

/// The size a checkpoint note claims, read without verifying it.
fn claimed_size(note: &str) -> Option<u64> {
    let body = &note[..note.rfind("\n\n")? + 1];
    Checkpoint::from_body(body)
        .ok()
        .map(|checkpoint| checkpoint.size)
}
