//! The options the client subcommands share, each with its environment variable.
//!
//! They are flattened into each client subcommand rather than declared global: `umlauf serve`
//! and `umlauf bench` have options of their own, some with the same names, and clap cannot
//! propagate a global option to some subcommands only.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use umlauf_domain::ids::{Actor, BodyId};
use umlauf_nats::Subjects;
use umlauf_nats::client::Client;
use umlauf_proof::note::NoteVerifier;

use crate::key_file;
use crate::signer::Signer;

/// Where the deployment is: the NATS server and the deployment's names on it.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// The NATS server, or a comma-separated list of a cluster's nodes.
    #[arg(
        long,
        env = "UMLAUF_NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        value_name = "URL"
    )]
    pub nats_url: String,
    /// A NATS credentials file (`.creds`) to authenticate with.
    #[arg(long, env = "UMLAUF_NATS_CREDENTIALS", value_name = "FILE")]
    pub nats_credentials: Option<std::path::PathBuf>,
    /// The deployment's subject root: every subject is `<root>.v1.…`.
    #[arg(
        long,
        env = "UMLAUF_SUBJECT_ROOT",
        default_value = "umlauf",
        value_name = "TOKEN"
    )]
    pub subject_root: String,
    /// The prefix of the deployment's JetStream streams (`<prefix>_LOG`, `<prefix>_DECISIONS`,
    /// `<prefix>_CHECKPOINTS`).
    #[arg(
        long,
        env = "UMLAUF_STREAM_PREFIX",
        default_value = "UMLAUF",
        value_name = "PREFIX"
    )]
    pub stream_prefix: String,
}

impl Connection {
    /// The deployment's subjects and stream names.
    pub fn subjects(&self) -> Subjects {
        Subjects::new(&self.subject_root, &self.stream_prefix)
    }

    /// Connects to NATS.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        if self.subject_root.is_empty()
            || self
                .subject_root
                .contains(|c: char| c == '.' || c == '*' || c == '>' || c.is_whitespace())
        {
            anyhow::bail!(
                "the subject root {:?} must be one NATS token (no '.', '*', '>' or spaces)",
                self.subject_root
            );
        }
        Ok(Client::connect_with(
            &self.nats_url,
            self.nats_credentials.as_deref(),
            self.subjects(),
            Duration::from_secs(3),
        )
        .await?)
    }
}

/// Who signs: the key file, the body and the actor.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Signer")]
pub struct Identity {
    /// The signer's private key: a PKCS#8 PEM file, as `umlauf keygen` or
    /// `openssl genpkey -algorithm ed25519` writes it. It never leaves this machine.
    #[arg(long, env = "UMLAUF_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The body, e.g. `it-planungsrat`.
    #[arg(long, env = "UMLAUF_BODY", value_name = "ID")]
    pub body: Option<BodyId>,
    /// Who acts: a member id such as `DE-BY`, or `secretariat`, or `genesis`.
    #[arg(long = "as", env = "UMLAUF_ACTOR", value_name = "ACTOR", value_parser = parse_actor)]
    pub actor: Option<Actor>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub receipts: ReceiptOptions,
}

/// How the receipts of accepted commands are checked and kept.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Receipts")]
pub struct ReceiptOptions {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log_key: LogKeyOption,
    /// Write the receipt of the command's signed record (JSON, for `umlauf receipt verify`)
    /// to FILE.
    #[arg(long, value_name = "FILE")]
    pub save_receipt: Option<PathBuf>,
}

/// The log's verifier key, which every receipt is checked with.
#[derive(Debug, Clone, clap::Args)]
pub struct LogKeyOption {
    /// The log's verifier key, `<origin>+<hex8>+<base64>` as `umlauf serve` writes it next to
    /// its log key, or a file holding it. A command is reported accepted only once its receipt
    /// verifies with this key.
    #[arg(
        long = "log-key",
        env = "UMLAUF_LOG_KEY",
        default_value = "./data/log-key.vkey",
        value_name = "VKEY|FILE"
    )]
    pub log_key: String,
}

impl LogKeyOption {
    /// The verifier: the flag's text itself if it is a verifier key, else the file it names.
    pub fn verifier(&self) -> anyhow::Result<NoteVerifier> {
        if let Ok(verifier) = self.log_key.trim().parse::<NoteVerifier>() {
            return Ok(verifier);
        }
        let text = std::fs::read_to_string(&self.log_key).with_context(|| {
            format!(
                "cannot read the log's verifier key from {:?}: pass --log-key VKEY|FILE or set \
                 UMLAUF_LOG_KEY (the service writes it next to its log key, e.g. \
                 ./data/log-key.vkey)",
                self.log_key
            )
        })?;
        text.trim().parse::<NoteVerifier>().map_err(|error| {
            anyhow::anyhow!(
                "{} does not hold a log verifier key (<origin>+<hex8>+<base64>): {error}",
                self.log_key
            )
        })
    }
}

impl Identity {
    /// The body, which the command needs.
    pub fn body(&self) -> anyhow::Result<&BodyId> {
        self.body
            .as_ref()
            .context("which body? pass --body ID or set UMLAUF_BODY")
    }

    /// The actor, or `default` where the command has an obvious one.
    pub fn actor_or(&self, default: Option<Actor>) -> anyhow::Result<Actor> {
        self.actor
            .clone()
            .or(default)
            .context("who acts? pass --as MEMBER (or secretariat, genesis) or set UMLAUF_ACTOR")
    }

    /// Loads the key file and builds the signer for `body` acting as `actor`.
    pub fn signer_for(&self, body: BodyId, actor: Actor) -> anyhow::Result<Signer> {
        let path = self
            .key
            .as_ref()
            .context("no key to sign with: pass --key FILE or set UMLAUF_KEY")?;
        let key = key_file::load_signing_key(path)?;
        Ok(Signer::new(key, body, actor).checking_receipts(self.receipts.clone()))
    }

    /// The signer for the body given, acting as the actor given or `default_actor`.
    pub fn signer(&self, default_actor: Option<Actor>) -> anyhow::Result<Signer> {
        let body = self.body()?.clone();
        let actor = self.actor_or(default_actor)?;
        self.signer_for(body, actor)
    }
}

/// Parses an actor as the command JSON writes it.
pub fn parse_actor(text: &str) -> Result<Actor, String> {
    Actor::parse(text).map_err(|error| error.to_string())
}
