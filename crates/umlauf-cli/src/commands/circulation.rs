//! `umlauf open | vote | object | extend | withdraw`: the circulation's commands.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use chrono::Utc;
use sha2::{Digest as _, Sha256};
use umlauf_domain::command::{
    CastVote, ExtendDeadline, ObjectToProcedure, OpenCirculation, Proposal, RuleChoice,
    WithdrawCirculation,
};
use umlauf_domain::ids::{Actor, Choice, CirculationId, ProposalDigest};
use umlauf_domain::read_model::CirculationStatus;
use umlauf_domain::rule::{Preset, PresetParams};
use umlauf_domain::{Action, Event};
use umlauf_nats::client::Client;

use crate::deadline::parse_deadline;
use crate::options::{Connection, Identity};
use crate::render::{berlin_and_utc, time_left};
use crate::signer::{Signer, describe_reply};

/// Flags of `umlauf open`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("text_source").required(true).args(["proposal", "text"])))]
pub struct OpenArgs {
    /// The circulation's title.
    #[arg(long)]
    pub title: String,
    /// A file holding the proposal's text (UTF-8, taken byte for byte).
    #[arg(long, value_name = "FILE")]
    pub proposal: Option<PathBuf>,
    /// The proposal's text.
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,
    /// Where the proposal is published.
    #[arg(long, value_name = "URL")]
    pub reference: Option<String>,
    /// The rule preset, e.g. `it-planungsrat-resolution`.
    #[arg(long, value_name = "NAME")]
    pub preset: Preset,
    /// A preset parameter overriding the body's, e.g. `constitutional=true`; repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// The deadline: `2026-03-20 18:00` (this machine's local time), RFC 3339 with an offset or
    /// `Z`, or `+14d`.
    #[arg(long, value_name = "WHEN")]
    pub deadline: String,
    /// The new circulation's id (a UUID); a random one by default.
    #[arg(long, value_name = "UUID")]
    pub id: Option<uuid::Uuid>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub identity: Identity,
}

/// Flags of `umlauf vote`.
#[derive(Debug, clap::Args)]
pub struct VoteArgs {
    /// The circulation's id.
    #[arg(value_name = "CIRCULATION")]
    pub circulation: uuid::Uuid,
    /// yes, no or abstain.
    #[arg(value_name = "CHOICE", value_parser = parse_choice)]
    pub choice: Choice,
    /// A statement for the record (Protokollerklärung).
    #[arg(long)]
    pub statement: Option<String>,
    /// The proposal's text as you received it: the vote is refused locally unless it is
    /// exactly the circulated text.
    #[arg(long, value_name = "FILE")]
    pub proposal: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub identity: Identity,
}

/// Flags of `umlauf object`.
#[derive(Debug, clap::Args)]
pub struct ObjectArgs {
    /// The circulation's id.
    #[arg(value_name = "CIRCULATION")]
    pub circulation: uuid::Uuid,
    /// Why the member refuses the written procedure.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub identity: Identity,
}

/// Flags of `umlauf extend`.
#[derive(Debug, clap::Args)]
pub struct ExtendArgs {
    /// The circulation's id.
    #[arg(value_name = "CIRCULATION")]
    pub circulation: uuid::Uuid,
    /// The new deadline, later than the current one (forms as for `umlauf open`).
    #[arg(long, value_name = "WHEN")]
    pub deadline: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub identity: Identity,
}

/// Flags of `umlauf withdraw`.
#[derive(Debug, clap::Args)]
pub struct WithdrawArgs {
    /// The circulation's id.
    #[arg(value_name = "CIRCULATION")]
    pub circulation: uuid::Uuid,
    /// Why it is withdrawn.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub identity: Identity,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    Ok((key.trim().to_owned(), value.trim().to_owned()))
}

fn parse_choice(text: &str) -> Result<Choice, String> {
    match text {
        "yes" => Ok(Choice::Yes),
        "no" => Ok(Choice::No),
        "abstain" => Ok(Choice::Abstain),
        _ => Err(format!("{text:?} is not yes, no or abstain")),
    }
}

/// Preset parameters from `KEY=VALUE` pairs: `true` and `false` are booleans, anything else is
/// text; unknown keys are refused with the preset parameters' names.
pub fn preset_params(pairs: &[(String, String)]) -> anyhow::Result<Option<PresetParams>> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut object = serde_json::Map::new();
    for (key, value) in pairs {
        let value = match value.as_str() {
            "true" => serde_json::Value::Bool(true),
            "false" => serde_json::Value::Bool(false),
            text => serde_json::Value::String(text.to_owned()),
        };
        object.insert(key.clone(), value);
    }
    let params =
        serde_json::from_value(serde_json::Value::Object(object)).context("preset parameters")?;
    Ok(Some(params))
}

/// The digest of a proposal text's UTF-8 bytes.
pub fn proposal_digest(text: &str) -> ProposalDigest {
    ProposalDigest(Sha256::digest(text.as_bytes()).into())
}

/// `umlauf open`.
pub async fn open(args: OpenArgs) -> anyhow::Result<()> {
    let text = match (&args.proposal, &args.text) {
        (Some(path), _) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the proposal {}", path.display()))?,
        (None, Some(text)) => text.clone(),
        (None, None) => bail!("give the proposal's text: --proposal FILE or --text TEXT"),
    };
    let deadline = parse_deadline(&args.deadline, &chrono::Local, Utc::now())
        .map_err(anyhow::Error::msg)
        .context("--deadline")?;
    let circulation = CirculationId(args.id.unwrap_or_else(uuid::Uuid::new_v4));
    let signer = args.identity.signer(Some(Actor::Secretariat))?;
    let sha256 = proposal_digest(&text);
    let action = Action::OpenCirculation(OpenCirculation {
        circulation,
        title: args.title.clone(),
        proposal: Proposal {
            text: Some(text),
            reference: args.reference.clone(),
            sha256,
        },
        rule: RuleChoice::Preset {
            preset: args.preset,
            params: preset_params(&args.params)?,
        },
        deadline,
    });
    let client = args.connection.connect().await?;
    let (command, reply) = signer.submit(&client, action).await?;
    crate::out!("opened circulation {circulation}")?;
    crate::out!("  title     {}", args.title)?;
    crate::out!("  rule      {}", args.preset)?;
    crate::out!(
        "  deadline  {}, {}",
        berlin_and_utc(deadline),
        time_left(deadline, Utc::now())
    )?;
    crate::out!("  proposal  sha256 {sha256}")?;
    crate::out!("{}", describe_reply(&command, &reply))?;
    Ok(())
}

/// The proposal text of a circulation, from its opening record in the log stream, checked
/// against the digest the status reports.
pub async fn proposal_text(
    client: &Client,
    status: &CirculationStatus,
) -> anyhow::Result<Option<String>> {
    let record = client.opening_record(status.circulation).await?;
    let Event::CirculationOpened(opened) = record.event()? else {
        bail!(
            "the first record of circulation {} is {}, not CirculationOpened",
            status.circulation,
            record.event_type
        );
    };
    if opened.proposal.sha256 != status.proposal_sha256 {
        bail!(
            "the log's proposal digest {} differs from the status's {}",
            opened.proposal.sha256,
            status.proposal_sha256
        );
    }
    match opened.proposal.text {
        Some(text) if proposal_digest(&text) == status.proposal_sha256 => Ok(Some(text)),
        Some(_) => bail!("the proposal text in the log does not hash to its digest"),
        None => Ok(None),
    }
}

/// The body of a circulation, checked against `--body` if that is given.
fn body_of(identity: &Identity, status: &CirculationStatus) -> anyhow::Result<()> {
    if let Some(body) = &identity.body
        && *body != status.body
    {
        bail!(
            "circulation {} belongs to {}, not to {body}",
            status.circulation,
            status.body
        );
    }
    Ok(())
}

fn signer_for_circulation(
    identity: &Identity,
    status: &CirculationStatus,
    default_actor: Option<Actor>,
) -> anyhow::Result<Signer> {
    body_of(identity, status)?;
    let actor = identity.actor_or(default_actor)?;
    identity.signer_for(status.body.clone(), actor)
}

/// `umlauf vote`.
pub async fn vote(args: VoteArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    let status = client.circulation(CirculationId(args.circulation)).await?;
    let signer = signer_for_circulation(&args.identity, &status, None)?;
    if signer.actor().member().is_none() {
        bail!(
            "a vote is cast by a member (--as DE-BY), not by {}",
            signer.actor()
        );
    }
    if let Some(path) = &args.proposal {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the proposal {}", path.display()))?;
        if proposal_digest(&text) != status.proposal_sha256 {
            bail!(
                "{} is not the circulated proposal: its sha256 is {}, the circulation's {}",
                path.display(),
                proposal_digest(&text),
                status.proposal_sha256
            );
        }
    }
    crate::out!("circulation  {} ({})", status.circulation, status.body)?;
    crate::out!("title        {}", status.title)?;
    if let Some(preset) = status.preset {
        crate::out!("rule         {preset}")?;
    }
    crate::out!(
        "deadline     {}, {}",
        berlin_and_utc(status.deadline),
        time_left(status.deadline, Utc::now())
    )?;
    crate::out!("proposal     sha256 {}", status.proposal_sha256)?;
    match proposal_text(&client, &status).await {
        Ok(Some(text)) => {
            crate::out!("             (the text below, read from the log; its digest checked)")?;
            print_excerpt(&text, 20)?;
        }
        Ok(None) => crate::out!("             (circulated by reference; no text in the log)")?,
        Err(error) => {
            crate::out!("             (could not read the text from the log: {error:#})")?;
        }
    }
    crate::out!(
        "{} votes {} on the text with this digest.",
        signer.actor(),
        args.choice
    )?;
    let action = Action::CastVote(CastVote {
        circulation: status.circulation,
        choice: args.choice,
        proposal_sha256: status.proposal_sha256,
        statement: args.statement,
    });
    let (command, reply) = signer.submit(&client, action).await?;
    crate::out!("{}", describe_reply(&command, &reply))?;
    if reply.records.len() > 1 {
        crate::out!(
            "the circulation closed with this vote: see `umlauf status {}`",
            status.circulation
        )?;
    }
    Ok(())
}

fn print_excerpt(text: &str, lines: usize) -> std::io::Result<()> {
    let all: Vec<&str> = text.lines().collect();
    for line in all.iter().take(lines) {
        crate::out!("    | {line}")?;
    }
    if all.len() > lines {
        crate::out!("    | … ({} more lines)", all.len() - lines)?;
    }
    Ok(())
}

/// `umlauf object`.
pub async fn object(args: ObjectArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    let status = client.circulation(CirculationId(args.circulation)).await?;
    let signer = signer_for_circulation(&args.identity, &status, None)?;
    let action = Action::ObjectToProcedure(ObjectToProcedure {
        circulation: status.circulation,
        reason: args.reason,
    });
    let (command, reply) = signer.submit(&client, action).await?;
    crate::out!(
        "{} objects to the written procedure of {} ({})",
        signer.actor(),
        status.circulation,
        status.title
    )?;
    crate::out!("{}", describe_reply(&command, &reply))?;
    Ok(())
}

/// `umlauf extend`.
pub async fn extend(args: ExtendArgs) -> anyhow::Result<()> {
    let deadline = parse_deadline(&args.deadline, &chrono::Local, Utc::now())
        .map_err(anyhow::Error::msg)
        .context("--deadline")?;
    let client = args.connection.connect().await?;
    let status = client.circulation(CirculationId(args.circulation)).await?;
    let signer = signer_for_circulation(&args.identity, &status, Some(Actor::Secretariat))?;
    let action = Action::ExtendDeadline(ExtendDeadline {
        circulation: status.circulation,
        deadline,
    });
    let (command, reply) = signer.submit(&client, action).await?;
    crate::out!(
        "deadline of {} moved from {} to {}",
        status.circulation,
        berlin_and_utc(status.deadline),
        berlin_and_utc(deadline)
    )?;
    crate::out!("{}", describe_reply(&command, &reply))?;
    Ok(())
}

/// `umlauf withdraw`.
pub async fn withdraw(args: WithdrawArgs) -> anyhow::Result<()> {
    let client = args.connection.connect().await?;
    let status = client.circulation(CirculationId(args.circulation)).await?;
    let signer = signer_for_circulation(&args.identity, &status, Some(Actor::Secretariat))?;
    let action = Action::WithdrawCirculation(WithdrawCirculation {
        circulation: status.circulation,
        reason: args.reason,
    });
    let (command, reply) = signer.submit(&client, action).await?;
    crate::out!("withdrew {} ({})", status.circulation, status.title)?;
    crate::out!("{}", describe_reply(&command, &reply))?;
    Ok(())
}
