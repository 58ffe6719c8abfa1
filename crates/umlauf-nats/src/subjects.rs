//! Subjects and stream names: the NATS half of the wire contract.
//!
//! Every subject starts with `<root>.v1.`; the root token (default `umlauf`) and the stream names
//! are configurable, so several deployments, or parallel tests, can share one NATS cluster
//! without seeing each other. Service subjects never overlap a stream's subjects: a stream that
//! captured requests would answer them with its own acknowledgement.

use umlauf_domain::StreamId;
use umlauf_domain::ids::{BodyId, CirculationId, MemberId};

/// The version token every subject carries after the root.
pub const VERSION: &str = "v1";

/// The NATS service's name, as `$SRV.PING.umlauf` and `nats micro ls` show it.
pub const SERVICE_NAME: &str = "umlauf";

/// The names a deployment uses on NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    root: String,
    log_stream: String,
    decisions_stream: String,
    checkpoints_stream: String,
}

impl Default for Subjects {
    fn default() -> Self {
        Self::new("umlauf", "UMLAUF")
    }
}

impl Subjects {
    /// Subjects under `root` (one token, e.g. `umlauf`) and streams named `<stream_prefix>_LOG`,
    /// `<stream_prefix>_DECISIONS` and `<stream_prefix>_CHECKPOINTS`.
    pub fn new(root: &str, stream_prefix: &str) -> Self {
        Self {
            root: root.to_owned(),
            log_stream: format!("{stream_prefix}_LOG"),
            decisions_stream: format!("{stream_prefix}_DECISIONS"),
            checkpoints_stream: format!("{stream_prefix}_CHECKPOINTS"),
        }
    }

    /// `<root>.v1`: the prefix of every subject, and the service's endpoint group.
    pub fn prefix(&self) -> String {
        format!("{}.{VERSION}", self.root)
    }

    /// The service endpoint that takes any signed command envelope.
    pub fn submit(&self) -> String {
        format!("{}.submit", self.prefix())
    }

    /// A query endpoint, e.g. `query("circulation")`.
    pub fn query(&self, name: &str) -> String {
        format!("{}.query.{name}", self.prefix())
    }

    /// The subject a log record is published on: `<root>.v1.log.body.<id>` or
    /// `<root>.v1.log.circulation.<uuid>`.
    pub fn log_record(&self, stream: &StreamId) -> String {
        match stream {
            StreamId::Body(body) => format!("{}.log.body.{body}", self.prefix()),
            StreamId::Circulation(id) => format!("{}.log.circulation.{id}", self.prefix()),
        }
    }

    /// Every log subject, as the log stream captures them.
    pub fn log_all(&self) -> String {
        format!("{}.log.>", self.prefix())
    }

    /// The subject a decision is published on: `<root>.v1.decisions.<body>.<circulation>`.
    pub fn decision(&self, body: &BodyId, circulation: &CirculationId) -> String {
        format!("{}.decisions.{body}.{circulation}", self.prefix())
    }

    /// Every decision of one body, or of all bodies.
    pub fn decisions_of(&self, body: Option<&BodyId>) -> String {
        match body {
            Some(body) => format!("{}.decisions.{body}.*", self.prefix()),
            None => format!("{}.decisions.>", self.prefix()),
        }
    }

    /// The subject signed checkpoints are published on.
    pub fn checkpoints(&self) -> String {
        format!("{}.checkpoints", self.prefix())
    }

    /// The subject a member's reminders are published on: `<root>.v1.reminders.<body>.<member>`.
    pub fn reminder(&self, body: &BodyId, member: &MemberId) -> String {
        format!("{}.reminders.{body}.{member}", self.prefix())
    }

    /// The JetStream stream holding one message per log record.
    pub fn log_stream(&self) -> &str {
        &self.log_stream
    }

    /// The JetStream stream holding one message per decision.
    pub fn decisions_stream(&self) -> &str {
        &self.decisions_stream
    }

    /// The JetStream stream holding every signed checkpoint.
    pub fn checkpoints_stream(&self) -> &str {
        &self.checkpoints_stream
    }

    /// Every member's reminders: `<root>.v1.reminders.>`.
    pub fn reminders_all(&self) -> String {
        format!("{}.reminders.>", self.prefix())
    }

    /// The JetStream stream holding the reminders: `<stream_prefix>_REMINDERS`.
    pub fn reminders_stream(&self) -> String {
        let prefix = self
            .log_stream
            .strip_suffix("_LOG")
            .unwrap_or(&self.log_stream);
        format!("{prefix}_REMINDERS")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_contract() {
        let subjects = Subjects::default();
        let body = BodyId::parse("it-planungsrat").unwrap();
        let circulation = CirculationId("5f0c3a86-1b7e-4d59-8a3e-0c7b1d2e4f60".parse().unwrap());
        assert_eq!(subjects.submit(), "umlauf.v1.submit");
        assert_eq!(subjects.query("inbox"), "umlauf.v1.query.inbox");
        assert_eq!(
            subjects.decision(&body, &circulation),
            "umlauf.v1.decisions.it-planungsrat.5f0c3a86-1b7e-4d59-8a3e-0c7b1d2e4f60"
        );
        assert_eq!(
            subjects.log_record(&StreamId::Body(body)),
            "umlauf.v1.log.body.it-planungsrat"
        );
        assert_eq!(subjects.log_stream(), "UMLAUF_LOG");
        // No stream may capture the service's requests.
        for captured in [
            subjects.log_all(),
            subjects.decisions_of(None),
            subjects.checkpoints(),
        ] {
            let prefix = captured.trim_end_matches('>');
            assert!(!subjects.submit().starts_with(prefix) || !captured.ends_with('>'));
            assert!(!subjects.query("circulation").starts_with(prefix) || !captured.ends_with('>'));
        }
    }
}
