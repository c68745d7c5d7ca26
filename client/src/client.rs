//! The [`Client`] handle and its construction: the seeds checked, the transport built (HTTP, or
//! HTTPS with the configured TLS) or supplied, the shared state created, and the auto-batcher
//! started. The calls are `impl Client` blocks beside what they use: `writes`, `reads`,
//! `cluster`, `checkpoints` and `verified`.

use crate::batcher::Batcher;
use crate::config::ClientConfig;
use crate::discovery::normalize_seeds;
use crate::error::Error;
use crate::shared::{Shared, Unbatched};
use crate::transport::{ReqwestTransport, Transport};
use std::sync::Arc;

/// A ron-ledger client. Cheap to clone; clones share the cache and the batcher.
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    pub(crate) batcher: Batcher,
}

impl Client {
    /// A client for the cluster reachable through `config.seeds`. Must be called inside a tokio
    /// runtime (it starts the auto-batcher).
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let http = match &config.tls {
            Some(tls) => {
                ReqwestTransport::with_tls(config.request_timeout, tls).map_err(Error::Invalid)?
            }
            None => ReqwestTransport::new(config.request_timeout)
                .map_err(|e| Error::Invalid(e.to_string()))?,
        };
        Self::with_transport(config, Arc::new(http))
    }

    /// A client that sends its requests through `transport` (the simulation's network, for
    /// one). Must be called inside a tokio runtime.
    pub fn with_transport(
        config: ClientConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<Self, Error> {
        let mut config = config;
        normalize_seeds(&mut config)?;
        let queue_max = config.batch_queue_max;
        let shared = Arc::new(Shared::new(transport, config));
        let batcher = Batcher::start(
            Unbatched {
                shared: shared.clone(),
            },
            queue_max,
        );
        Ok(Client { shared, batcher })
    }

    /// The request machinery without the batcher's sender.
    pub(crate) fn clone_without_batcher(&self) -> Unbatched {
        Unbatched {
            shared: self.shared.clone(),
        }
    }
}
