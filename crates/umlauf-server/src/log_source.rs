//! The relay's view of the event store.

use futures_util::{StreamExt as _, TryStreamExt as _};
use umlauf_domain::ids::CirculationId;
use umlauf_nats::relay::{DecisionContext, LogEntry, LogSource};
use umlauf_store::{Store, StoreError};

/// The event store as the relay reads it.
#[derive(Debug, Clone)]
pub struct StoreLogSource {
    store: Store,
}

impl StoreLogSource {
    /// The log of `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl LogSource for StoreLogSource {
    type Error = StoreError;

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.store.head().await?.position)
    }

    async fn read_from(&self, position: u64, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        self.store
            .read_from(position)
            .take(limit)
            .map_ok(|stored| LogEntry {
                position: stored.position(),
                stream: stored.record.stream,
                bytes: stored.bytes,
            })
            .try_collect()
            .await
    }

    async fn decision_context(
        &self,
        circulation: CirculationId,
    ) -> Result<Option<DecisionContext>, StoreError> {
        Ok(self
            .store
            .circulation(&circulation)
            .await?
            .map(|status| DecisionContext {
                body: status.body,
                title: status.title,
            }))
    }

    async fn checkpoints_from(
        &self,
        size: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        self.store.checkpoints_from(size, limit).await
    }
}
