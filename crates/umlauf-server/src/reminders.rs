//! Reminders: each elector of an open circulation who has neither voted nor objected is notified
//! on their own subject, `<root>.v1.reminders.<body>.<member>`, once the deadline is nearer than
//! `reminder_before`.
//!
//! Once per circulation, member and deadline, with any number of replicas and across restarts:
//! every reminder is published through JetStream to the `<prefix>_REMINDERS` stream with the
//! message id `<circulation>:<member>:<deadline>`, and the stream's duplicate window is longer
//! than `reminder_before`, so JetStream stores (and delivers) the first and drops every later
//! try, whoever makes it. This needs no table and no coordination between replicas, and the log
//! stays the record of the procedure only: a reminder is a notification, not an event. A
//! deadline moved later is a new deadline, so it gets a reminder of its own. Each replica also
//! remembers what it has published, so it does not try again every round.
//!
//! The payload is a JSON object: `body`, `circulation`, `title`, `deadline` (RFC 3339) and
//! `member`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::watch;
use umlauf_domain::ids::{CirculationId, MemberId};
use umlauf_nats::Subjects;

use crate::pipeline::Pipeline;

/// How much longer than `reminder_before` JetStream remembers a reminder's message id.
pub(crate) const WINDOW_MARGIN: Duration = Duration::from_secs(60 * 60);

/// A reminder already published by this process.
type Sent = (CirculationId, MemberId, DateTime<Utc>);

/// Runs until `stop` turns true: every `interval`, publishes the reminders that are due.
pub(crate) async fn run(
    pipeline: Arc<Pipeline>,
    jetstream: jetstream::Context,
    subjects: Subjects,
    before: Duration,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut sent = HashSet::new();
    loop {
        if let Err(error) = remind(&pipeline, &jetstream, &subjects, before, &mut sent).await {
            tracing::warn!(%error, "reminders: will try again");
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
    }
}

/// Publishes every reminder due now that this process has not published yet.
async fn remind(
    pipeline: &Pipeline,
    jetstream: &jetstream::Context,
    subjects: &Subjects,
    before: Duration,
    sent: &mut HashSet<Sent>,
) -> Result<(), String> {
    let head = pipeline.store.head().await.map_err(|e| e.to_string())?;
    pipeline
        .directory
        .catch_up(&pipeline.store, head.position)
        .await
        .map_err(|e| e.to_string())?;
    let open = pipeline.directory.open_circulations().await;
    let before = chrono::Duration::from_std(before).unwrap_or(chrono::Duration::MAX);
    let now = Utc::now();
    let mut still_open = HashSet::new();
    for circulation in &open {
        let Some(opened) = &circulation.opened else {
            continue;
        };
        still_open.insert(opened.circulation);
        let deadline = circulation.deadline.unwrap_or(opened.deadline);
        let due = deadline
            .checked_sub_signed(before)
            .is_none_or(|from| from <= now);
        if !due || now >= deadline {
            continue;
        }
        for member in opened.electorate.members.keys() {
            if circulation.answers.votes.contains_key(member)
                || circulation.answers.objections.contains(member)
            {
                continue;
            }
            let key = (opened.circulation, member.clone(), deadline);
            if sent.contains(&key) {
                continue;
            }
            let deadline_text = deadline.to_rfc3339_opts(SecondsFormat::AutoSi, true);
            let payload = serde_json::json!({
                "body": opened.body,
                "circulation": opened.circulation,
                "title": opened.title,
                "deadline": deadline_text,
                "member": member,
            });
            let message = PublishMessage::build()
                .payload(payload.to_string().into_bytes().into())
                .message_id(format!("{}:{member}:{deadline_text}", opened.circulation));
            let ack = jetstream
                .send_publish(subjects.reminder(&opened.body, member), message)
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            pipeline.metrics.reminder(ack.duplicate);
            if !ack.duplicate {
                tracing::info!(
                    circulation = %opened.circulation,
                    %member,
                    deadline = %deadline_text,
                    "reminder sent"
                );
            }
            sent.insert(key);
        }
    }
    sent.retain(|(circulation, _, _)| still_open.contains(circulation));
    Ok(())
}

/// Parses `reminder_before`: a whole number with a unit `s`, `m`, `h` or `d` (`24h`), or a
/// number of seconds; `None` for `0` or empty (no reminders).
pub(crate) fn parse_before(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds_per_unit: u64 = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use s, m, h or d, e.g. \"24h\")"
            ));
        }
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number with a unit, e.g. \"24h\""))?;
    let seconds = number
        .checked_mul(seconds_per_unit)
        .filter(|seconds| *seconds <= 366 * 24 * 60 * 60)
        .ok_or_else(|| format!("{text:?} is longer than a year"))?;
    Ok((seconds > 0).then(|| Duration::from_secs(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminder_before_reads_units_and_disables_with_zero() {
        assert_eq!(
            parse_before("24h").unwrap(),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            parse_before("90m").unwrap(),
            Some(Duration::from_secs(5_400))
        );
        assert_eq!(
            parse_before("2d").unwrap(),
            Some(Duration::from_secs(172_800))
        );
        assert_eq!(parse_before("45").unwrap(), Some(Duration::from_secs(45)));
        assert_eq!(parse_before("0").unwrap(), None);
        assert_eq!(parse_before("0h").unwrap(), None);
        assert_eq!(parse_before("").unwrap(), None);
        for bad in ["h", "1.5h", "24x", "-1h", "400d"] {
            assert!(parse_before(bad).is_err(), "{bad}");
        }
    }
}
