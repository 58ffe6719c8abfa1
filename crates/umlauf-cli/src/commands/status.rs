//! `umlauf status` and `umlauf inbox`: what stands, and what awaits a member's vote.

use chrono::Utc;
use umlauf_domain::ids::CirculationId;

use crate::options::{Connection, Identity};
use crate::render::{Style, berlin_and_utc, status_table, time_left};

/// Flags of `umlauf status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The circulation's id.
    #[arg(value_name = "CIRCULATION")]
    pub circulation: uuid::Uuid,
    /// Print the query's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
}

/// Flags of `umlauf inbox`.
#[derive(Debug, clap::Args)]
pub struct InboxArgs {
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

/// `umlauf status`.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    let status = client.circulation(CirculationId(args.circulation)).await?;
    if args.json {
        crate::out!("{}", serde_json::to_string_pretty(&status)?)?;
        return Ok(());
    }
    let names = super::member_names(&client, &status.body).await;
    let table = status_table(&status, &names, Utc::now(), Style::for_stdout());
    crate::out!("{}", table.trim_end())?;
    Ok(())
}

/// `umlauf inbox`.
pub async fn inbox(args: InboxArgs) -> anyhow::Result<()> {
    let body = args.identity.body()?;
    let actor = args.identity.actor_or(None)?;
    let member = actor.member().ok_or_else(|| {
        anyhow::anyhow!("an inbox belongs to a member (--as DE-BY), not to {actor}")
    })?;
    let client = args.connection.connect().await?;
    let circulations = client.inbox(body, member).await?;
    if args.json {
        crate::out!("{}", serde_json::to_string_pretty(&circulations)?)?;
        return Ok(());
    }
    if circulations.is_empty() {
        crate::out!("Nothing awaits {member}'s vote in {body}.")?;
        return Ok(());
    }
    let now = Utc::now();
    crate::out!(
        "{} circulation{} await{} {member}'s vote in {body}:",
        circulations.len(),
        if circulations.len() == 1 { "" } else { "s" },
        if circulations.len() == 1 { "s" } else { "" },
    )?;
    for status in &circulations {
        crate::out!()?;
        crate::out!("  {}  {}", status.circulation, status.title)?;
        crate::out!(
            "  {:36}  {}, deadline {}, {}",
            "",
            status
                .preset
                .map_or_else(|| "custom rule".to_owned(), |preset| preset.to_string()),
            berlin_and_utc(status.deadline),
            time_left(status.deadline, now)
        )?;
    }
    crate::out!()?;
    crate::out!("Vote with: umlauf vote <CIRCULATION> yes|no|abstain [--statement TEXT]")?;
    Ok(())
}
