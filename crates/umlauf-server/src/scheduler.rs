//! The deadline scheduler: closes circulations whose deadline has passed.
//!
//! It runs at start (so a circulation whose deadline passed while no service ran is closed right
//! after a restart) and then at an interval. Several replicas may run it at once: each decides the
//! close on the circulation as its stream says and appends at the expected version, so one wins
//! and the others get a conflict (or find the circulation closed) and do nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use umlauf_domain::circulation::{self, close_at_deadline};
use umlauf_domain::ids::CirculationId;
use umlauf_domain::{DomainError, StreamId};
use umlauf_store::{Append, Projection, StoreError};

use crate::error::RequestError;
use crate::pipeline::{Pipeline, recording_time};

/// Runs until `stop` turns true.
pub(crate) async fn run(
    pipeline: Arc<Pipeline>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        close_due(&pipeline).await;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
    }
}

/// Closes every circulation past its deadline now.
pub(crate) async fn close_due(pipeline: &Pipeline) {
    let due = match pipeline
        .store
        .circulations_past_deadline(chrono::Utc::now())
        .await
    {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(%error, "deadline scheduler: cannot list circulations past their deadline");
            return;
        }
    };
    for id in due {
        match close(pipeline, id).await {
            Ok(true) => tracing::info!(circulation = %id, "closed at the deadline"),
            Ok(false) => {}
            Err(error) => tracing::warn!(circulation = %id, %error, "deadline scheduler"),
        }
    }
}

/// Closes one circulation at its deadline; `Ok(false)` if someone else did, or it is not due.
async fn close(pipeline: &Pipeline, id: CirculationId) -> Result<bool, RequestError> {
    let head = pipeline.store.head().await?;
    let now = recording_time(&head);
    let stream = StreamId::Circulation(id);
    let circulation = pipeline.circulation(&stream).await?;
    let events = match close_at_deadline(&circulation, id, now) {
        Ok(events) if !events.is_empty() => events,
        Ok(_) | Err(DomainError::CirculationClosed(_) | DomainError::DeadlineNotReached { .. }) => {
            return Ok(false);
        }
        Err(error) => return Err(error.into()),
    };
    let expected_version = circulation.version;
    let after = events.iter().fold(circulation, circulation::evolve);
    let append = Append {
        stream,
        expected_version,
        projection: Projection::of_circulation(&after),
        events,
        depends_on: Vec::new(),
        expected_head: None,
        recorded_at: now,
        cause: None,
    };
    let appending = std::time::Instant::now();
    let appended = pipeline.store.append(append).await;
    pipeline.metrics.append(appending.elapsed(), &appended);
    match appended {
        Ok(_) => {
            pipeline.relay.notify_one();
            Ok(true)
        }
        // Another replica closed it, or appended first: the next round looks again.
        Err(StoreError::Conflict { .. } | StoreError::ClockBehind { .. }) => Ok(false),
        Err(error) => Err(error.into()),
    }
}
