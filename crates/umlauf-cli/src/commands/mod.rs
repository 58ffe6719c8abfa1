//! The client subcommands: their flags and what they do.
//!
//! Each submodule has an `Args` struct (clap) and an async `run`. Refusals by the service are
//! returned as [`umlauf_nats::client::ClientError::Refused`] without added context, so the
//! binary prints them as `error: <code>: <message>`.

pub mod body;
pub mod circulation;
pub mod key;
pub mod keygen;
pub mod status;
pub mod watch;

use umlauf_nats::client::Client;

use crate::render::MemberNames;

/// The members' names of a body, from `query.body`; empty where the body or its names cannot be
/// read (the views then show ids alone).
pub async fn member_names(client: &Client, body: &umlauf_domain::ids::BodyId) -> MemberNames {
    match client.body(body).await {
        Ok(view) => view
            .members
            .into_iter()
            .map(|(id, member)| (id, member.name))
            .collect(),
        Err(_) => MemberNames::new(),
    }
}
