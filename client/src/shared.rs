//! The state every clone of a [`Client`](crate::Client) shares — the transport, the settings,
//! discovery's cache of members and leader, the call counter that varies the jitter, and the
//! newest accepted checkpoint — and [`Unbatched`], the handle without the batcher's sender that
//! the request machinery (and the batcher task itself) runs on.

use crate::config::ClientConfig;
use crate::transport::Transport;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

pub(crate) struct Shared {
    pub(crate) http: Arc<dyn Transport>,
    pub(crate) config: ClientConfig,
    /// Known members by id (from the last status).
    pub(crate) members: RwLock<BTreeMap<u64, String>>,
    /// The address writes go to first.
    pub(crate) leader: RwLock<Option<String>>,
    /// Calls made, to vary a configured jitter seed per call.
    pub(crate) calls: AtomicU64,
    /// The newest checkpoint this client verified. Held across the fetches that advance it, so
    /// concurrent verifying calls advance it one at a time.
    pub(crate) checkpoint: tokio::sync::Mutex<Option<ledger::SignedCheckpoint>>,
}

impl Shared {
    /// Fresh state: nothing discovered, no call made, no checkpoint accepted.
    pub(crate) fn new(http: Arc<dyn Transport>, config: ClientConfig) -> Self {
        Self {
            http,
            config,
            members: RwLock::new(BTreeMap::new()),
            leader: RwLock::new(None),
            calls: AtomicU64::new(0),
            checkpoint: tokio::sync::Mutex::new(None),
        }
    }
}

/// The client's request machinery (without the batcher handle, so the batcher task can own one).
#[derive(Clone)]
pub(crate) struct Unbatched {
    pub(crate) shared: Arc<Shared>,
}
