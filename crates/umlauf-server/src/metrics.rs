//! The service's Prometheus metrics, one registry per [`crate::Server`] (so several services in
//! one process, as in the tests, count apart).
//!
//! Counters and the histogram are updated where things happen (the command pipeline, the
//! appends, the reminders); the gauges that describe a state (relay lag, open circulations) are
//! set when `/metrics` is scraped, from the same sources readiness reads.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use umlauf_domain::Command;
use umlauf_proof::dsse::Envelope;
use umlauf_store::{Appended, StoreError};

/// How many checkpoint sizes are remembered to count each signed checkpoint once, although
/// every append of a batch reports the batch's checkpoint.
const REMEMBERED_CHECKPOINTS: usize = 4096;

/// The labels of `umlauf_commands_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    /// The command's `type`, `unknown` if it could not be read.
    command: &'static str,
    /// `accepted` or `refused`.
    result: &'static str,
    /// The refusal's code; empty when accepted.
    code: &'static str,
}

/// The labels of `umlauf_reminders_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReminderLabels {
    /// `sent`, or `duplicate` when JetStream had it already (another replica, or before a
    /// restart).
    result: &'static str,
}

/// The metrics of one service.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    commands: Family<CommandLabels, Counter>,
    append_seconds: Histogram,
    checkpoints: Counter,
    counted_checkpoints: Mutex<(HashSet<u64>, VecDeque<u64>)>,
    reminders: Family<ReminderLabels, Counter>,
    relay_lag: Gauge,
    relay_published: Gauge,
    log_head: Gauge,
    open_circulations: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("umlauf");
        let commands = Family::<CommandLabels, Counter>::default();
        registry.register(
            "commands",
            "Signed commands received, by type and result (accepted, or refused with its code)",
            commands.clone(),
        );
        // 0.5 ms to about 16 s.
        let append_seconds = Histogram::new(exponential_buckets(0.000_5, 2.0, 16));
        registry.register(
            "append_seconds",
            "Time to append a decided command's records to the log, in seconds",
            append_seconds.clone(),
        );
        let checkpoints = Counter::default();
        registry.register(
            "checkpoints_signed",
            "Signed checkpoints committed by this service's appends",
            checkpoints.clone(),
        );
        let reminders = Family::<ReminderLabels, Counter>::default();
        registry.register(
            "reminders",
            "Reminders published to members who have not answered, by result",
            reminders.clone(),
        );
        let relay_lag = Gauge::default();
        registry.register(
            "relay_lag_records",
            "Records in the log not yet confirmed in the log stream",
            relay_lag.clone(),
        );
        let relay_published = Gauge::default();
        registry.register(
            "relay_published_position",
            "Every record up to this position is in the log stream",
            relay_published.clone(),
        );
        let log_head = Gauge::default();
        registry.register(
            "log_head_position",
            "The position of the log's newest record",
            log_head.clone(),
        );
        let open_circulations = Gauge::default();
        registry.register(
            "open_circulations",
            "Circulations opened and not yet closed",
            open_circulations.clone(),
        );
        Self {
            registry,
            commands,
            append_seconds,
            checkpoints,
            counted_checkpoints: Mutex::default(),
            reminders,
            relay_lag,
            relay_published,
            log_head,
            open_circulations,
        }
    }
}

impl Metrics {
    /// Counts one command: accepted, or refused with `code`. `envelope` is the request's bytes,
    /// read again only for the command's type.
    pub(crate) fn command(&self, envelope: &[u8], refused: Option<&'static str>) {
        let labels = CommandLabels {
            command: command_type(envelope),
            result: if refused.is_some() {
                "refused"
            } else {
                "accepted"
            },
            code: refused.unwrap_or(""),
        };
        self.commands.get_or_create(&labels).inc();
    }

    /// Records one append's latency, and the checkpoint its batch signed.
    pub(crate) fn append(&self, took: Duration, appended: &Result<Appended, StoreError>) {
        self.append_seconds.observe(took.as_secs_f64());
        let Ok(Appended {
            checkpoint: Some(note),
            ..
        }) = appended
        else {
            return;
        };
        // The note's second line is the tree size (C2SP checkpoint).
        let Some(size) = note
            .lines()
            .nth(1)
            .and_then(|line| line.parse::<u64>().ok())
        else {
            return;
        };
        let Ok(mut counted) = self.counted_checkpoints.lock() else {
            return;
        };
        let (seen, order) = &mut *counted;
        if seen.insert(size) {
            self.checkpoints.inc();
            order.push_back(size);
            if order.len() > REMEMBERED_CHECKPOINTS
                && let Some(oldest) = order.pop_front()
            {
                seen.remove(&oldest);
            }
        }
    }

    /// Counts one reminder: `duplicate` if JetStream dropped it as one.
    pub(crate) fn reminder(&self, duplicate: bool) {
        let result = if duplicate { "duplicate" } else { "sent" };
        self.reminders
            .get_or_create(&ReminderLabels { result })
            .inc();
    }

    /// Sets the gauges that describe the state, then encodes everything in the text format.
    pub(crate) fn encode(&self, state: &State) -> Result<String, std::fmt::Error> {
        self.log_head.set(gauge_value(state.head));
        self.relay_published.set(gauge_value(state.published));
        self.relay_lag
            .set(gauge_value(state.head.saturating_sub(state.published)));
        self.open_circulations
            .set(gauge_value(state.open_circulations));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// What the gauges show, read when `/metrics` is scraped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct State {
    /// The log's head position.
    pub(crate) head: u64,
    /// The relay's published position.
    pub(crate) published: u64,
    /// Open circulations.
    pub(crate) open_circulations: u64,
}

fn gauge_value(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The `type` of the command in an envelope, `unknown` if there is none that parses. Only the
/// fixed names of the command types are used as labels, never text from the request.
fn command_type(envelope: &[u8]) -> &'static str {
    Envelope::from_json(envelope)
        .ok()
        .and_then(|envelope| Command::from_json(&envelope.payload).ok())
        .map_or("unknown", |command| command.type_name())
}
