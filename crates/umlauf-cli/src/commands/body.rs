//! `umlauf body init`: constitutes a body from a body file, signed by a genesis key.

use std::path::PathBuf;

use anyhow::bail;
use umlauf_domain::Action;
use umlauf_domain::ids::Actor;

use crate::body_file::BodyFile;
use crate::options::{Connection, Identity};
use crate::signer::describe_reply;

/// `umlauf body …`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Constitute a body from a body file (members, groups, weight tables, presets, keys),
    /// signed by a genesis key acting as `genesis`.
    Init(InitArgs),
}

/// Flags of `umlauf body init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The body file (JSON; see deploy/bodies/it-planungsrat.json).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the signed command's JSON instead of submitting it.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub identity: Identity,
}

/// Runs `umlauf body …`.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init(args) => init(args).await,
    }
}

async fn init(args: InitArgs) -> anyhow::Result<()> {
    let file = BodyFile::read(&args.file)?;
    if let Some(body) = &args.identity.body
        && *body != file.body
    {
        bail!(
            "{} constitutes body {}, but --body (or UMLAUF_BODY) says {body}",
            args.file.display(),
            file.body
        );
    }
    let actor = args.identity.actor_or(Some(Actor::Genesis))?;
    if actor != Actor::Genesis {
        bail!("a body is constituted by a genesis key acting as genesis, not as {actor}");
    }
    let signer = args.identity.signer_for(file.body.clone(), actor)?;
    let base = args
        .file
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let constitution = file.constitution(signer.public_key(), &base, Vec::new())?;
    let summary = format!(
        "{} ({}): {} members ({} voting), {} groups, {} weight tables, {} presets, {} keys",
        file.body,
        file.name,
        constitution.members.len(),
        file.voting_members().count(),
        constitution.groups.len(),
        constitution.weight_tables.len(),
        constitution.presets.len(),
        constitution.keys.len(),
    );
    let action = Action::ConstituteBody(constitution);
    if args.dry_run {
        let command = signer.command(action);
        crate::out!("{}", serde_json::to_string_pretty(&command.to_value())?)?;
        return Ok(());
    }
    let client = args.connection.connect().await?;
    let (command, reply) = signer.submit(&client, action).await?;
    crate::out!("constituted {summary}")?;
    crate::out!("genesis key {}", signer.key_id())?;
    crate::out!("{}", describe_reply(&command, &reply))?;
    Ok(())
}
