//! `umlauf watch`: follows decisions as they arrive, with a durable JetStream consumer.

use std::collections::BTreeMap;

use umlauf_domain::ids::BodyId;
use umlauf_nats::client::DecisionFilter;

use crate::options::Connection;
use crate::render::{MemberNames, Style, decision_view};

/// Flags of `umlauf watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Only this body's decisions; every body's without it.
    #[arg(long, env = "UMLAUF_BODY", value_name = "ID")]
    pub body: Option<BodyId>,
    /// The durable consumer's name: the server remembers what it has acknowledged, so a watcher
    /// that was offline resumes where it stopped. Default: `umlauf-watch-<body>` (or
    /// `umlauf-watch-all`).
    #[arg(long, value_name = "NAME")]
    pub durable: Option<String>,
    /// Print each decision message's JSON on one line, as received.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: Connection,
}

/// `umlauf watch`: prints each decision, then acknowledges it, until interrupted.
pub async fn run(args: WatchArgs) -> anyhow::Result<()> {
    let durable = args.durable.clone().unwrap_or_else(|| {
        format!(
            "umlauf-watch-{}",
            args.body.as_ref().map_or("all", BodyId::as_str)
        )
    });
    if durable.is_empty() || durable.contains(['.', '*', '>', ' ']) {
        anyhow::bail!("the durable name {durable:?} must not contain '.', '*', '>' or spaces");
    }
    let client = args.connection.connect().await?;
    let filter = match &args.body {
        Some(body) => DecisionFilter::Body(body),
        None => DecisionFilter::All,
    };
    let mut feed = client.follow_decisions(filter, Some(&durable)).await?;
    if !args.json {
        eprintln!(
            "watching decisions{} as durable consumer {durable} (Ctrl-C to stop)",
            args.body
                .as_ref()
                .map(|body| format!(" of {body}"))
                .unwrap_or_default()
        );
    }
    let style = Style::for_stdout();
    let mut names: BTreeMap<BodyId, MemberNames> = BTreeMap::new();
    loop {
        let delivery = tokio::select! {
            delivery = feed.next() => delivery,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(delivery) = delivery else {
            anyhow::bail!("the decision consumer ended");
        };
        let delivery = delivery?;
        if args.json {
            crate::out!("{}", String::from_utf8_lossy(delivery.payload()))?;
        } else {
            match &delivery.decision {
                Ok(decision) => {
                    if !names.contains_key(&decision.body) {
                        let fetched = super::member_names(&client, &decision.body).await;
                        names.insert(decision.body.clone(), fetched);
                    }
                    let body_names = names.get(&decision.body).cloned().unwrap_or_default();
                    crate::out!(
                        "{}",
                        decision_view(decision, delivery.subject(), &body_names, style)
                    )?;
                }
                Err(problem) => crate::out!(
                    "unreadable decision on {} ({problem}):\n{}\n",
                    delivery.subject(),
                    String::from_utf8_lossy(delivery.payload())
                )?,
            }
        }
        delivery.ack().await?;
    }
}
