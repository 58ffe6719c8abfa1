//! `umlauf key register | revoke | list`.

use std::path::PathBuf;

use umlauf_domain::Action;
use umlauf_domain::command::{KeySpec, RevokeKey};
use umlauf_domain::ids::{Actor, KeyId};
use umlauf_domain::read_model::KeyState;

use crate::key_file;
use crate::options::{Connection, Identity, parse_actor};
use crate::signer::describe_reply;

/// `umlauf key …`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Register a public key: a member's (signed by the secretariat) or the secretariat's
    /// (signed by a genesis key).
    Register(RegisterArgs),
    /// Revoke a key: by the secretariat or the member holding it; a genesis key revokes the
    /// secretariat's keys.
    Revoke(RevokeArgs),
    /// List the body's keys.
    List(ListArgs),
}

/// Flags of `umlauf key register`.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// Whose key it is: a member id, or `secretariat`.
    #[arg(long, value_name = "ACTOR", value_parser = parse_actor)]
    pub holder: Actor,
    /// The public key, base64 of its 32 bytes.
    #[arg(long, value_name = "B64", required_unless_present = "key_file")]
    pub public_key: Option<String>,
    /// A PEM key file: a public key (`openssl pkey -pubout`), or a private key whose public half
    /// is taken.
    #[arg(long, value_name = "PEM", conflicts_with = "public_key")]
    pub key_file: Option<PathBuf>,
    /// A label, e.g. `CIO` or `deputy`.
    #[arg(long)]
    pub label: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub identity: Identity,
}

/// Flags of `umlauf key revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The key's id (64 hex digits, as `umlauf key list` shows it).
    #[arg(value_name = "KEY_ID")]
    pub key_id: KeyId,
    /// Why, for the record.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub identity: Identity,
}

/// Flags of `umlauf key list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print the query's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub identity: Identity,
}

/// Runs `umlauf key …`.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Register(args) => register(args).await,
        Command::Revoke(args) => revoke(args).await,
        Command::List(args) => list(args).await,
    }
}

async fn register(args: RegisterArgs) -> anyhow::Result<()> {
    let public_key = match (&args.public_key, &args.key_file) {
        (Some(text), _) => key_file::parse_public_key(text)?,
        (None, Some(path)) => key_file::domain_key(&key_file::load_public_key(path)?),
        (None, None) => anyhow::bail!("give --public-key B64 or --key-file PEM"),
    };
    // The secretariat's keys are registered by a genesis key, members' keys by the secretariat.
    let registrar = match args.holder {
        Actor::Secretariat => Actor::Genesis,
        _ => Actor::Secretariat,
    };
    let signer = args.identity.signer(Some(registrar))?;
    let client = args.connection.connect().await?;
    let action = Action::RegisterKey(KeySpec {
        holder: args.holder.clone(),
        public_key,
        label: args.label,
    });
    let (command, reply) = signer.submit(&client, action).await?;
    crate::out!(
        "registered key {} for {} in {}",
        KeyId::of(&public_key),
        args.holder,
        signer.body()
    )?;
    crate::out!("{}", describe_reply(&command, &reply))?;
    Ok(())
}

async fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let signer = args.identity.signer(Some(Actor::Secretariat))?;
    let client = args.connection.connect().await?;
    let action = Action::RevokeKey(RevokeKey {
        key_id: args.key_id,
        reason: args.reason,
    });
    let (command, reply) = signer.submit(&client, action).await?;
    crate::out!("revoked key {} in {}", args.key_id, signer.body())?;
    crate::out!("{}", describe_reply(&command, &reply))?;
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let body = args.identity.body()?;
    let client = args.connection.connect().await?;
    let keys = client.keys(body).await?;
    if args.json {
        crate::out!("{}", serde_json::to_string_pretty(&keys)?)?;
        return Ok(());
    }
    if keys.is_empty() {
        crate::out!("{body} has no keys (is it constituted?)")?;
        return Ok(());
    }
    let holder_width = keys
        .iter()
        .map(|key| key.holder.to_string().len())
        .max()
        .unwrap_or(0)
        .max("holder".len());
    crate::out!(
        "{:<64}  {:<holder_width$}  {:<7}  label",
        "key id",
        "holder",
        "state"
    )?;
    for key in keys {
        let state = match key.state {
            KeyState::Active => "active",
            KeyState::Revoked => "revoked",
        };
        crate::out!(
            "{:<64}  {:<holder_width$}  {state:<7}  {}",
            key.key_id.to_string(),
            key.holder.to_string(),
            key.label.unwrap_or_default()
        )?;
    }
    Ok(())
}
