//! Client settings: [`ClientConfig`] — the seeds, request timeout, retry and backoff bounds, the
//! auto-batcher's queue, the jitter seed, the checkpoint keys verified reads trust, TLS, and the
//! capability sent with every request.

use crate::caps::Capability;
use crate::transport::ClientTls;
use std::time::Duration;

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `host:port` of some nodes' client APIs.
    pub seeds: Vec<String>,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Most attempts per call (first try included).
    pub retry_attempts_max: u32,
    /// Most time spent on one call, retries included.
    pub retry_total: Duration,
    /// First backoff; doubles per attempt up to `backoff_max`, with jitter.
    pub backoff_base: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
    /// Transfers waiting for the auto-batcher; `submit_transfer` waits when full.
    pub batch_queue_max: usize,
    /// Seed of the backoff jitter; `None` seeds it from the clock. The simulation sets it so a
    /// run replays exactly.
    pub jitter_seed: Option<u64>,
    /// Checkpoint keys the verifying calls ([`Client::verified_transfer`] etc.) trust; they
    /// refuse to run without them.
    ///
    /// [`Client::verified_transfer`]: crate::Client::verified_transfer
    pub trusted_keys: Option<ledger::TrustedKeys>,
    /// The cluster a verified checkpoint must name. `None`: the first checkpoint accepted pins
    /// the cluster id for this client.
    pub cluster_id: Option<String>,
    /// A state file remembering the last checkpoint this client accepted, per cluster, across
    /// restarts ([`crate::trust_store`]): every later checkpoint must be proven consistent with
    /// it. `None`: remembered in memory only, for the life of the client.
    pub checkpoint_state: Option<std::path::PathBuf>,
    /// TLS to the cluster: `None` is cleartext HTTP. With it every node is called over HTTPS
    /// (seeds may be written `host:port` or `https://host:port`).
    pub tls: Option<ClientTls>,
    /// The capability sent as `Authorization: Bearer …` with every request (writes and admin
    /// operations need one).
    pub capability: Option<Capability>,
}

impl ClientConfig {
    /// Defaults with these seeds.
    pub fn new<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> Self {
        Self {
            seeds: seeds.into_iter().map(Into::into).collect(),
            request_timeout: Duration::from_secs(15),
            retry_attempts_max: 40,
            retry_total: Duration::from_secs(60),
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_secs(1),
            batch_queue_max: 4 * ledger::limits::BATCH_EVENTS_MAX,
            jitter_seed: None,
            trusted_keys: None,
            cluster_id: None,
            checkpoint_state: None,
            capability: None,
            tls: None,
        }
    }

    /// These settings, verifying checkpoints with `keys` for cluster `cluster_id`.
    pub fn with_trusted_keys(
        mut self,
        keys: ledger::TrustedKeys,
        cluster_id: Option<String>,
    ) -> Self {
        self.trusted_keys = Some(keys);
        self.cluster_id = cluster_id;
        self
    }
}
