//! The JetStream streams of a deployment: the log, the decisions and the checkpoints.
//!
//! All three keep their messages on file, refuse deletion and purging (a subscriber must be able
//! to trust that what it missed is still there), and de-duplicate by message id within a window,
//! so a relay that publishes the same record twice (after a crash, or two replicas at once)
//! stores it once. [`ensure_streams`] creates them or brings an existing stream's settings up to
//! date; it is idempotent and safe to run from every replica at every start.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::subjects::Subjects;

/// How the streams are set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// Replicas of each stream in a JetStream cluster: 1 on a single server, 3 in the deployed
    /// cluster.
    pub replicas: usize,
    /// How long a message id is remembered for de-duplication on the log stream.
    pub log_duplicate_window: Duration,
    /// How long a message id is remembered on the decisions stream: long, since a decision is
    /// re-published after an outage of the relay.
    pub decisions_duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            replicas: 1,
            log_duplicate_window: Duration::from_secs(10 * 60),
            decisions_duplicate_window: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Why the streams could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot create or update JetStream stream {stream}: {source}")]
pub struct StreamsError {
    /// The stream.
    pub stream: String,
    /// What JetStream said.
    #[source]
    pub source: jetstream::context::CreateStreamError,
}

/// The configuration of the log stream.
pub fn log_stream_config(subjects: &Subjects, settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: subjects.log_stream().to_owned(),
        description: Some("umlauf log: one message per record, sequence = position".into()),
        subjects: vec![subjects.log_all()],
        duplicate_window: settings.log_duplicate_window,
        ..durable(settings)
    }
}

/// The configuration of the decisions stream.
pub fn decisions_stream_config(subjects: &Subjects, settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: subjects.decisions_stream().to_owned(),
        description: Some("umlauf decisions: one message per closed circulation".into()),
        subjects: vec![subjects.decisions_of(None)],
        duplicate_window: settings.decisions_duplicate_window,
        ..durable(settings)
    }
}

/// The configuration of the checkpoints stream.
pub fn checkpoints_stream_config(subjects: &Subjects, settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: subjects.checkpoints_stream().to_owned(),
        description: Some("umlauf checkpoints: every signed checkpoint".into()),
        subjects: vec![subjects.checkpoints()],
        duplicate_window: settings.log_duplicate_window,
        ..durable(settings)
    }
}

/// The configuration of the reminders stream. Reminders are published with the message id
/// `<circulation>:<member>:<deadline>`, so `duplicate_window` (at least the time before the
/// deadline that reminders are sent) makes each one stored once, from whichever replica and
/// however often it is tried; they are kept for twice that window.
pub fn reminders_stream_config(
    subjects: &Subjects,
    settings: &StreamSettings,
    duplicate_window: Duration,
) -> stream::Config {
    stream::Config {
        name: subjects.reminders_stream(),
        description: Some("umlauf reminders: one message per member and circulation".into()),
        subjects: vec![subjects.reminders_all()],
        duplicate_window,
        max_age: duplicate_window.saturating_mul(2),
        ..durable(settings)
    }
}

/// Creates the reminders stream, or updates its settings where it exists.
pub async fn ensure_reminders_stream(
    jetstream: &jetstream::Context,
    subjects: &Subjects,
    settings: &StreamSettings,
    duplicate_window: Duration,
) -> Result<(), StreamsError> {
    let config = reminders_stream_config(subjects, settings, duplicate_window);
    let name = config.name.clone();
    jetstream
        .create_or_update_stream(config)
        .await
        .map(drop)
        .map_err(|source| StreamsError {
            stream: name,
            source,
        })
}

/// What every stream shares: file storage, no deletion or purging, kept forever.
fn durable(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        num_replicas: settings.replicas.max(1),
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    }
}

/// Creates the three streams, or updates their settings where they exist.
pub async fn ensure_streams(
    jetstream: &jetstream::Context,
    subjects: &Subjects,
    settings: &StreamSettings,
) -> Result<(), StreamsError> {
    for config in [
        log_stream_config(subjects, settings),
        decisions_stream_config(subjects, settings),
        checkpoints_stream_config(subjects, settings),
    ] {
        let name = config.name.clone();
        jetstream
            .create_or_update_stream(config)
            .await
            .map_err(|source| StreamsError {
                stream: name,
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_stream_is_durable_and_captures_only_log_subjects() {
        let subjects = Subjects::new("t1", "T1");
        let config = log_stream_config(&subjects, &StreamSettings::default());
        assert_eq!(config.name, "T1_LOG");
        assert_eq!(config.subjects, ["t1.v1.log.>"]);
        assert!(config.deny_delete && config.deny_purge);
        assert_eq!(config.storage, stream::StorageType::File);
        assert_eq!(config.num_replicas, 1);
    }
}
