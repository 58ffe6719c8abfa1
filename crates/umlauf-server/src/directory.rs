//! The bodies and open circulations as the log says, kept in memory and brought up to the log's
//! head before each decision.
//!
//! The service needs every body's state for each command (to authorize and decide) and every
//! registered key before it can even parse a command (the signature is checked first, and the key
//! id is all it has then). Folding the body streams on every request would read the same records
//! again and again; instead the directory reads each record of the log once, in position order,
//! and folds each record into the body or open circulation it belongs to. It also remembers the genesis key of the
//! log's first `BodyConstituted`, which is the deployment's genesis key under trust on first use.
//!
//! The directory is never more authoritative than the log: a decision made on it is appended at
//! an expected version, and a command whose state moved on is decided again.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::TryStreamExt as _;
use tokio::sync::Mutex;
use umlauf_domain::body::{self, Body};
use umlauf_domain::circulation::{self, Circulation};
use umlauf_domain::ids::{BodyId, CirculationId, KeyId, PublicKey};
use umlauf_domain::{Event, StreamId};
use umlauf_proof::VerifyingKey;
use umlauf_proof::keys::public_key_from_bytes;
use umlauf_store::{Store, StoreError};

#[derive(Debug, Default)]
struct Folded {
    /// Every record up to this position has been folded.
    position: u64,
    bodies: HashMap<BodyId, Arc<Body>>,
    /// Every key registered in any body, by id; the id is the key's hash, so one id is one key.
    keys: HashMap<KeyId, VerifyingKey>,
    /// The genesis key of the log's first `BodyConstituted`.
    first_genesis: Option<PublicKey>,
    /// Open circulations; a closed one is dropped, and read from its stream when addressed.
    circulations: HashMap<CirculationId, Arc<Circulation>>,
}

impl Folded {
    fn fold_body(&mut self, id: &BodyId, event: &Event) {
        if let (Event::BodyConstituted(constituted), None) = (event, &self.first_genesis) {
            self.first_genesis = Some(constituted.genesis_key);
        }
        if let Event::KeyRegistered(registered) = event
            && let Ok(key) = public_key_from_bytes(&registered.public_key.0)
        {
            self.keys.insert(registered.key_id, key);
        }
        let current = self.bodies.remove(id).unwrap_or_default();
        let next = body::evolve(Arc::unwrap_or_clone(current), event);
        self.bodies.insert(id.clone(), Arc::new(next));
    }

    fn fold_circulation(&mut self, id: CirculationId, event: &Event) {
        // Closed ones are dropped, so a stream that is not held here is either closed or has
        // just been opened (when the service started before it): either way it starts empty
        // only when its first event is the opening.
        let current = match self.circulations.remove(&id) {
            Some(current) => Arc::unwrap_or_clone(current),
            None if matches!(event, Event::CirculationOpened(_)) => Circulation::default(),
            None => return,
        };
        let next = circulation::evolve(current, event);
        if next.closed.is_none() {
            self.circulations.insert(id, Arc::new(next));
        }
    }
}

/// The bodies, keys and open circulations of the log, folded up to some position.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    folded: Mutex<Folded>,
}

impl Directory {
    /// Folds the log up to at least `position`.
    pub(crate) async fn catch_up(&self, store: &Store, position: u64) -> Result<(), StoreError> {
        let mut folded = self.folded.lock().await;
        if folded.position >= position {
            return Ok(());
        }
        let mut records = store.read_from(folded.position + 1);
        while let Some(stored) = records.try_next().await? {
            let event = stored.event()?;
            match &stored.record.stream {
                StreamId::Body(id) => folded.fold_body(id, &event),
                StreamId::Circulation(id) => folded.fold_circulation(*id, &event),
            }
            folded.position = stored.position();
            // Stop at the position asked for: reading on would cost another query.
            if folded.position >= position {
                break;
            }
        }
        Ok(())
    }

    /// An open circulation as folded; `None` if it is closed or unknown here.
    pub(crate) async fn circulation(&self, id: &CirculationId) -> Option<Arc<Circulation>> {
        self.folded.lock().await.circulations.get(id).cloned()
    }

    /// The body as folded; an empty body if it has not been constituted.
    pub(crate) async fn body(&self, id: &BodyId) -> Arc<Body> {
        self.folded
            .lock()
            .await
            .bodies
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// A key registered in any body.
    pub(crate) async fn key(&self, id: &KeyId) -> Option<VerifyingKey> {
        self.folded.lock().await.keys.get(id).copied()
    }

    /// The genesis key of the log's first constitution, if there is one.
    pub(crate) async fn first_genesis(&self) -> Option<PublicKey> {
        self.folded.lock().await.first_genesis
    }

    /// Every open circulation as folded.
    pub(crate) async fn open_circulations(&self) -> Vec<Arc<Circulation>> {
        self.folded
            .lock()
            .await
            .circulations
            .values()
            .filter(|circulation| circulation.is_open())
            .cloned()
            .collect()
    }
}
