//! The ron-ledger Rust SDK.
//!
//! - **Leader discovery**: configured with seed addresses; learns the members and the leader from
//!   `/v1/status` (a dead seed is skipped) and from the `leader` named in every response, caches
//!   the leader, sends writes straight to it, and re-discovers after a failover or a membership
//!   change.
//! - **Safe retries**: connection errors, timeouts, 503 (no leader), 429 (honouring
//!   `Retry-After`) and 504 are retried with capped exponential backoff and jitter, bounded in
//!   attempts and total time, always re-sending the same events (same ids), so a retry can never
//!   apply twice. An `exists` answer for an event this call had already sent is reported as
//!   `ok`, the event's original success. Any other 4xx is never retried: it is
//!   [`Error::Rejected`] with the server's reason code.
//! - **Auto-batching**: [`Client::submit_transfer`] coalesces concurrent callers' transfers into
//!   batches of up to 8,190 through a bounded queue; each caller gets its own result.
//! - Writes use the compact binary body; the types are the `ledger` crate's.
//! - **Verification** ([`verify`]): with trusted checkpoint keys configured, the client checks
//!   signed checkpoints, their consistency with the last one it accepted, and inclusion proofs
//!   of accounts, transfers and leaves ([`Client::verified_transfer`] and friends).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ron_ledger_client::Error> {
//! use ron_ledger_client::{Client, ClientConfig};
//! use ledger::Transfer;
//! let client = Client::new(ClientConfig::new(["127.0.0.1:7001", "127.0.0.1:7002"]))?;
//! let t = Transfer { id: 7, debit_account_id: 1, credit_account_id: 2, amount: 10,
//!                    ledger: 1, code: 1, ..Default::default() };
//! let result = client.create_transfers(vec![t]).await?;
//! println!("{:?}", result[0].result);
//! # Ok(()) }
//! ```

pub mod caps;
pub mod checkpoints;
pub mod retry;
pub mod transport;
pub mod verify;

pub use verify::{Verified, VerifyError};

use ledger::codec::{self, Kind};
use ledger::{Account, CreateAccountResult, CreateTransferResult, Operation, Transfer};
use retry::Backoff;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
pub use transport::{install_crypto_provider, ClientTls};
use transport::{HttpRequest, ReqwestTransport, Transport};

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
    pub trusted_keys: Option<ledger::TrustedKeys>,
    /// The cluster a verified checkpoint must name. `None`: the first checkpoint accepted pins
    /// the cluster id for this client.
    pub cluster_id: Option<String>,
    /// TLS to the cluster: `None` is cleartext HTTP. With it every node is called over HTTPS
    /// (seeds may be written `host:port` or `https://host:port`).
    pub tls: Option<ClientTls>,
    /// The capability sent as `Authorization: Bearer …` with every request (writes and admin
    /// operations need one).
    pub capability: Option<Capability>,
}

/// A capability token (`rlcap1.…`). Its `Debug` never shows the token, and its memory is wiped
/// when dropped.
#[derive(Clone)]
pub struct Capability(zeroize::Zeroizing<String>);

impl Capability {
    /// Wrap token text (surrounding whitespace removed).
    pub fn new(token: impl Into<String>) -> Self {
        let mut text = zeroize::Zeroizing::new(token.into());
        caps::trim_in_place(&mut text);
        Self(text)
    }

    /// The `Authorization` header value.
    fn header(&self) -> String {
        format!("Bearer {}", self.0.as_str())
    }
}

impl std::fmt::Debug for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capability(<redacted>)")
    }
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

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server refused the request (a 4xx other than 429); never retried.
    #[error("rejected ({status} {reason}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Reason code (see docs/API.md).
        reason: String,
        /// Server's message.
        message: String,
    },
    /// Retries exhausted (attempts or time) on transient failures. For writes the outcome may
    /// be unknown: calling again with the same ids is safe.
    #[error("unavailable after {attempts} attempts: {last}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// Bad configuration or input on the client side.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The server answered something this client cannot read.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server's answer did not verify against the trusted keys and the last accepted
    /// checkpoint: it is wrong, whatever the server's status said. Never retried.
    #[error("verification failed: {0}")]
    Verification(#[from] VerifyError),
}

/// One event's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventOutcome<R> {
    /// Result code. `exists` for an event this call already sent is reported as `ok`.
    pub result: R,
    /// Cluster timestamp (ns), when the event was sequenced.
    pub timestamp: Option<u64>,
    /// Merkle leaf index, when the event was sequenced.
    pub leaf: Option<u64>,
}

/// Write results.
#[derive(Debug, Deserialize)]
struct WireWrite {
    results: Vec<WireEvent>,
}

#[derive(Debug, Deserialize)]
struct WireEvent {
    result: String,
    timestamp: Option<String>,
    leaf: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireError {
    error: WireErrorBody,
    leader: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct WireErrorBody {
    reason: String,
    message: String,
}

/// A cluster member as `/v1/status` reports it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Member {
    /// Node id.
    pub id: u64,
    /// Client API address.
    pub api_addr: String,
    /// Peer address.
    pub peer_addr: String,
    /// Voter (else learner).
    pub voter: bool,
}

/// One node's `/v1/status`.
#[derive(Clone, Debug, Deserialize)]
pub struct Status {
    /// Node id.
    pub node_id: u64,
    /// Cluster name.
    pub cluster_id: String,
    /// `leader`, `follower`, `candidate`, `learner`.
    pub role: String,
    /// Current term.
    pub term: u64,
    /// Leader id, if known.
    pub leader: Option<u64>,
    /// Last log index.
    pub last_log_index: Option<u64>,
    /// Committed index.
    pub committed_index: Option<u64>,
    /// Applied index.
    pub applied_index: Option<u64>,
    /// Merkle tree size at the applied index.
    pub tree_size: Option<String>,
    /// Merkle root at the applied index.
    pub root: Option<String>,
    /// Members.
    pub members: Vec<Member>,
    /// Safe-mode reason, if any.
    pub safe_mode: Option<String>,
}

/// A page of an account's transfers.
#[derive(Clone, Debug, Deserialize)]
pub struct HistoryPage {
    /// Transfers, oldest first.
    pub transfers: Vec<Transfer>,
    /// Pass as `from` for the next page; `None` when this was the last.
    pub next_from: Option<String>,
}

/// Read consistency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Served by (or through) the leader after confirming leadership.
    #[default]
    Linearizable,
    /// This node's last applied state.
    Stale,
}

struct Shared {
    http: Arc<dyn Transport>,
    config: ClientConfig,
    /// Known members by id (from the last status).
    members: RwLock<BTreeMap<u64, String>>,
    /// The address writes go to first.
    leader: RwLock<Option<String>>,
    /// Calls made, to vary a configured jitter seed per call.
    calls: std::sync::atomic::AtomicU64,
    /// The newest checkpoint this client verified. Held across the fetches that advance it, so
    /// concurrent verifying calls advance it one at a time.
    checkpoint: tokio::sync::Mutex<Option<ledger::SignedCheckpoint>>,
}

/// A ron-ledger client. Cheap to clone; clones share the cache and the batcher.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    batcher: mpsc::Sender<Pending>,
}

/// How one attempt ended.
enum Attempt<T> {
    Done(T),
    /// Transient failure.
    Retry(String),
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
        if config.seeds.is_empty() {
            return Err(Error::Invalid("at least one seed address is needed".into()));
        }
        for seed in &mut config.seeds {
            if let Some(rest) = seed.strip_prefix("https://") {
                if config.tls.is_none() {
                    return Err(Error::Invalid(format!(
                        "seed {seed} is https but no TLS is configured (the cluster CA is needed)"
                    )));
                }
                *seed = rest.trim_end_matches('/').to_string();
            } else if let Some(rest) = seed.strip_prefix("http://") {
                if config.tls.is_some() {
                    return Err(Error::Invalid(format!(
                        "seed {seed} is http but TLS is configured"
                    )));
                }
                *seed = rest.trim_end_matches('/').to_string();
            }
        }
        let http = transport;
        let (tx, rx) = mpsc::channel(config.batch_queue_max.max(1));
        let shared = Arc::new(Shared {
            http,
            config,
            members: RwLock::new(BTreeMap::new()),
            leader: RwLock::new(None),
            calls: std::sync::atomic::AtomicU64::new(0),
            checkpoint: tokio::sync::Mutex::new(None),
        });
        let client = Client {
            shared,
            batcher: tx,
        };
        tokio::spawn(batcher(client.clone_without_batcher(), rx));
        Ok(client)
    }

    fn clone_without_batcher(&self) -> Unbatched {
        Unbatched {
            shared: self.shared.clone(),
        }
    }

    /// Create accounts; one outcome per account, in order.
    pub async fn create_accounts(
        &self,
        accounts: Vec<Account>,
    ) -> Result<Vec<EventOutcome<CreateAccountResult>>, Error> {
        self.clone_without_batcher()
            .write(Operation::CreateAccounts(accounts), "/v1/accounts")
            .await
    }

    /// Create transfers; one outcome per transfer, in order.
    pub async fn create_transfers(
        &self,
        transfers: Vec<Transfer>,
    ) -> Result<Vec<EventOutcome<CreateTransferResult>>, Error> {
        self.clone_without_batcher()
            .write(Operation::CreateTransfers(transfers), "/v1/transfers")
            .await
    }

    /// Create one transfer through the auto-batcher: concurrent calls share requests of up to
    /// 8,190 transfers.
    pub async fn submit_transfer(
        &self,
        transfer: Transfer,
    ) -> Result<EventOutcome<CreateTransferResult>, Error> {
        if transfer.flags.has(ledger::TransferFlags::LINKED) {
            return Err(Error::Invalid(
                "linked transfers belong together in one create_transfers call, not the auto-batcher".into(),
            ));
        }
        let (tx, rx) = oneshot::channel();
        self.batcher
            .send((transfer, tx))
            .await
            .map_err(|_| Error::Invalid("the client's batcher has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Invalid("the client's batcher has stopped".into()))?
    }

    /// Look up an account.
    pub async fn lookup_account(&self, id: u128, c: Consistency) -> Result<Option<Account>, Error> {
        self.clone_without_batcher()
            .get_opt(&format!("/v1/accounts/{id}"), c)
            .await
    }

    /// Look up a transfer.
    pub async fn lookup_transfer(
        &self,
        id: u128,
        c: Consistency,
    ) -> Result<Option<Transfer>, Error> {
        self.clone_without_batcher()
            .get_opt(&format!("/v1/transfers/{id}"), c)
            .await
    }

    /// One page of an account's transfers with timestamps in `[from, to]`.
    pub async fn account_transfers(
        &self,
        id: u128,
        from: u64,
        to: u64,
        limit: usize,
        c: Consistency,
    ) -> Result<Option<HistoryPage>, Error> {
        let path = format!("/v1/accounts/{id}/transfers?from={from}&to={to}&limit={limit}");
        self.clone_without_batcher().get_opt(&path, c).await
    }

    /// `/v1/status` of the node at `addr`.
    pub async fn status_of(&self, addr: &str) -> Result<Status, Error> {
        let u = self.clone_without_batcher();
        match u.once_get(addr, "/v1/status").await {
            Attempt::Done(r) => r.and_then(|v: Option<Status>| {
                v.ok_or_else(|| Error::Protocol("empty status".into()))
            }),
            Attempt::Retry(e) => Err(Error::Unavailable {
                attempts: 1,
                last: e,
            }),
        }
    }

    /// Status of every known member (and seed), keyed by address.
    pub async fn cluster_status(&self) -> Vec<(String, Result<Status, Error>)> {
        let u = self.clone_without_batcher();
        let _ = u.discover().await;
        let mut addrs: Vec<String> = u
            .shared
            .members
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for s in &u.shared.config.seeds {
            if !addrs.contains(s) {
                addrs.push(s.clone());
            }
        }
        let mut out = Vec::new();
        for a in addrs {
            let s = self.status_of(&a).await;
            out.push((a, s));
        }
        out
    }

    /// Add a learner (an admin operation; goes to the leader).
    pub async fn add_learner(
        &self,
        node_id: u64,
        api_addr: &str,
        peer_addr: &str,
    ) -> Result<(), Error> {
        let body =
            serde_json::json!({"node_id": node_id, "api_addr": api_addr, "peer_addr": peer_addr});
        self.clone_without_batcher()
            .admin("/v1/admin/learners", body)
            .await
    }

    /// Make exactly `voters` the voting members (promote learners, remove the rest).
    pub async fn change_membership(&self, voters: &[u64]) -> Result<(), Error> {
        let body = serde_json::json!({"voters": voters});
        self.clone_without_batcher()
            .admin("/v1/admin/membership", body)
            .await
    }

    /// The address writes currently go to, if known.
    pub fn cached_leader(&self) -> Option<String> {
        self.shared.leader.read().ok().and_then(|l| l.clone())
    }
}

/// The client's request machinery (without the batcher handle, so the batcher task can own one).
#[derive(Clone)]
struct Unbatched {
    shared: Arc<Shared>,
}

impl Unbatched {
    /// Ask seeds and members for status until one names a leader; cache members and leader.
    async fn discover(&self) -> Option<String> {
        let mut candidates: Vec<String> = self
            .shared
            .members
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for s in &self.shared.config.seeds {
            if !candidates.contains(s) {
                candidates.push(s.clone());
            }
        }
        for addr in candidates {
            let Attempt::Done(Ok(Some(status))) =
                self.once_get::<Status>(&addr, "/v1/status").await
            else {
                continue;
            };
            if let Ok(mut m) = self.shared.members.write() {
                *m = status
                    .members
                    .iter()
                    .map(|x| (x.id, x.api_addr.clone()))
                    .collect();
            }
            if let Some(l) = status
                .leader
                .and_then(|id| status.members.iter().find(|x| x.id == id))
            {
                let addr = l.api_addr.clone();
                if let Ok(mut cached) = self.shared.leader.write() {
                    *cached = Some(addr.clone());
                }
                return Some(addr);
            }
        }
        None
    }

    fn note_leader(&self, id: Option<u64>) {
        let Some(id) = id else { return };
        let addr = self
            .shared
            .members
            .read()
            .ok()
            .and_then(|m| m.get(&id).cloned());
        if let (Some(addr), Ok(mut cached)) = (addr, self.shared.leader.write()) {
            *cached = Some(addr);
        }
    }

    fn forget_leader(&self) {
        if let Ok(mut cached) = self.shared.leader.write() {
            *cached = None;
        }
    }

    /// Where to send the next attempt: the request's pinned node, else the cached leader, else
    /// whoever discovery finds, else the seeds in turn.
    async fn target(&self, req: &Req, attempt: u32) -> String {
        if let Some(addr) = &req.pin {
            return addr.clone();
        }
        if let Some(l) = self.shared.leader.read().ok().and_then(|l| l.clone()) {
            return l;
        }
        if let Some(l) = self.discover().await {
            return l;
        }
        let seeds = &self.shared.config.seeds;
        seeds[attempt as usize % seeds.len()].clone()
    }

    /// Send `req` until an attempt is final: retry transient failures (connection errors,
    /// timeouts, 429/502/503/504) with backoff, bounded in attempts and total time. Returns the
    /// body of a 2xx (`None` for a 404 when `req.not_found_ok`) and whether an earlier attempt
    /// may already have reached the server.
    async fn send(&self, req: &Req) -> Result<(Option<Vec<u8>>, bool), Error> {
        self.send_at(req)
            .await
            .map(|(body, resent, _)| (body, resent))
    }

    /// [`Unbatched::send`], also naming the node whose answer was final.
    async fn send_at(&self, req: &Req) -> Result<(Option<Vec<u8>>, bool, String), Error> {
        let cfg = &self.shared.config;
        let start = Instant::now();
        let call = self
            .shared
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = cfg
            .jitter_seed
            .map(|s| s ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut backoff = Backoff::new(cfg.backoff_base, cfg.backoff_max, seed);
        let mut last = String::new();
        for attempt in 0..cfg.retry_attempts_max {
            let addr = self.target(req, attempt).await;
            let (why, after) = match self.attempt(&addr, req).await {
                Ok(done) => return done.map(|body| (body, attempt > 0, addr)),
                Err(retry) => retry,
            };
            last = format!("{addr}: {why}");
            // A busy leader (429) is still the leader; anything else may mean it moved.
            if !why.starts_with("429") {
                self.forget_leader();
            }
            let pause = after.unwrap_or_else(|| backoff.next_delay());
            if start.elapsed() + pause > cfg.retry_total {
                return Err(Error::Unavailable {
                    attempts: attempt + 1,
                    last,
                });
            }
            tokio::time::sleep(pause).await;
        }
        Err(Error::Unavailable {
            attempts: cfg.retry_attempts_max,
            last,
        })
    }

    /// One attempt. `Ok(final result)` or `Err((why, retry-after))` to retry.
    #[allow(clippy::type_complexity)]
    async fn attempt(
        &self,
        addr: &str,
        req: &Req,
    ) -> Result<Result<Option<Vec<u8>>, Error>, (String, Option<Duration>)> {
        let reply = self
            .shared
            .http
            .send(HttpRequest {
                post: req.post,
                addr: addr.to_string(),
                path: req.path.clone(),
                content_type: req.content_type,
                body: req.body.clone(),
                timeout: self.shared.config.request_timeout,
                authorization: self
                    .shared
                    .config
                    .capability
                    .as_ref()
                    .map(Capability::header),
            })
            .await
            .map_err(|e| (e, None))?;
        let status = reply.status;
        let retry_after = reply
            .retry_after
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = reply.body;
        if (200..300).contains(&status) {
            if let Ok(w) = serde_json::from_slice::<LeaderHint>(&bytes) {
                self.note_leader(w.leader);
            }
            return Ok(Ok(Some(bytes)));
        }
        if status == 404 && req.not_found_ok {
            return Ok(Ok(None));
        }
        let err: Option<WireError> = serde_json::from_slice(&bytes).ok();
        if let Some(e) = &err {
            self.note_leader(e.leader);
        }
        let (reason, message) = err
            .map(|e| (e.error.reason, e.error.message))
            .unwrap_or_else(|| {
                (
                    "unknown".into(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                )
            });
        match status {
            429 | 502 | 503 | 504 => Err((format!("{status} {reason}"), retry_after)),
            _ => Ok(Err(Error::Rejected {
                status,
                reason,
                message,
            })),
        }
    }

    async fn write<R>(
        &self,
        op: Operation,
        path: &'static str,
    ) -> Result<Vec<EventOutcome<R>>, Error>
    where
        R: DeserializeOwned + Copy + PartialEq + ExistsIsOk,
    {
        op.check_bounds()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let req = Req {
            post: true,
            path: path.to_string(),
            content_type: "application/x-ron-ledger",
            body: codec::encode(Kind::Operation, &op),
            not_found_ok: false,
            pin: None,
        };
        let (body, resent) = self.send(&req).await?;
        let body = body.ok_or_else(|| Error::Protocol("empty write response".into()))?;
        let w: WireWrite =
            serde_json::from_slice(&body).map_err(|e| Error::Protocol(e.to_string()))?;
        parse_results::<R>(w.results, resent)
    }

    async fn once_get<T: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
    ) -> Attempt<Result<Option<T>, Error>> {
        let req = Req {
            post: false,
            path: path.to_string(),
            content_type: "",
            body: Vec::new(),
            not_found_ok: true,
            pin: None,
        };
        match self.attempt(addr, &req).await {
            Ok(Ok(Some(b))) => Attempt::Done(
                serde_json::from_slice(&b)
                    .map(Some)
                    .map_err(|e| Error::Protocol(e.to_string())),
            ),
            Ok(Ok(None)) => Attempt::Done(Ok(None)),
            Ok(Err(e)) => Attempt::Done(Err(e)),
            Err((why, _)) => Attempt::Retry(why),
        }
    }

    async fn get_opt<T: DeserializeOwned>(
        &self,
        path: &str,
        c: Consistency,
    ) -> Result<Option<T>, Error> {
        let path = match c {
            Consistency::Linearizable => path.to_string(),
            Consistency::Stale => {
                let sep = if path.contains('?') { '&' } else { '?' };
                format!("{path}{sep}consistency=stale")
            }
        };
        let req = Req {
            post: false,
            path,
            content_type: "",
            body: Vec::new(),
            not_found_ok: true,
            pin: None,
        };
        match self.send(&req).await?.0 {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Protocol(e.to_string())),
        }
    }

    async fn admin(&self, path: &str, body: serde_json::Value) -> Result<(), Error> {
        let req = Req {
            post: true,
            path: path.to_string(),
            content_type: "application/json",
            body: serde_json::to_vec(&body).map_err(|e| Error::Invalid(e.to_string()))?,
            not_found_ok: false,
            pin: None,
        };
        self.send(&req).await.map(|_| ())
    }
}

/// One HTTP request, re-sent unchanged by every retry.
struct Req {
    post: bool,
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
    not_found_ok: bool,
    /// Send every attempt to this node (reads that must see the tree a checkpoint came from).
    pin: Option<String>,
}

#[derive(Deserialize)]
struct LeaderHint {
    leader: Option<u64>,
}

/// Result codes whose `exists` means "already applied".
pub trait ExistsIsOk: Sized {
    /// The `exists` code.
    const EXISTS: Self;
    /// The `ok` code.
    const OK: Self;
}

impl ExistsIsOk for CreateAccountResult {
    const EXISTS: Self = CreateAccountResult::Exists;
    const OK: Self = CreateAccountResult::Ok;
}

impl ExistsIsOk for CreateTransferResult {
    const EXISTS: Self = CreateTransferResult::Exists;
    const OK: Self = CreateTransferResult::Ok;
}

fn parse_results<R>(events: Vec<WireEvent>, resent: bool) -> Result<Vec<EventOutcome<R>>, Error>
where
    R: DeserializeOwned + Copy + PartialEq + ExistsIsOk,
{
    events
        .into_iter()
        .map(|e| {
            let mut result: R = serde_json::from_value(serde_json::Value::String(e.result.clone()))
                .map_err(|_| Error::Protocol(format!("unknown result code {:?}", e.result)))?;
            // Our own earlier attempt may have applied it: that is this event's success.
            if resent && result == R::EXISTS {
                result = R::OK;
            }
            Ok(EventOutcome {
                result,
                timestamp: e.timestamp.and_then(|t| t.parse().ok()),
                leaf: e.leaf.and_then(|t| t.parse().ok()),
            })
        })
        .collect()
}

type Pending = (
    Transfer,
    oneshot::Sender<Result<EventOutcome<CreateTransferResult>, Error>>,
);

/// Requests the auto-batcher keeps in flight; more callers wait in its queue and join bigger
/// batches.
const BATCHES_IN_FLIGHT_MAX: usize = 4;

/// Coalesce queued transfers into batches of up to 8,190.
async fn batcher(client: Unbatched, mut rx: mpsc::Receiver<Pending>) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT_MAX));
    loop {
        // Wait for a free slot first, so that callers accumulate into the next batch meanwhile.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut group = vec![first];
        while group.len() < ledger::limits::BATCH_EVENTS_MAX {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let (transfers, replies): (Vec<Transfer>, Vec<_>) = group.into_iter().unzip();
        let c = client.clone();
        tokio::spawn(async move {
            let result = c
                .write::<CreateTransferResult>(
                    Operation::CreateTransfers(transfers),
                    "/v1/transfers",
                )
                .await;
            drop(permit);
            match result {
                Ok(results) if results.len() == replies.len() => {
                    for (reply, r) in replies.into_iter().zip(results) {
                        let _ = reply.send(Ok(r));
                    }
                }
                Ok(results) => {
                    let e = Error::Protocol(format!(
                        "{} results for {} transfers",
                        results.len(),
                        replies.len()
                    ));
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod seed_scheme_tests {
    use super::*;

    struct Never;
    impl Transport for Never {
        fn send(
            &self,
            _: HttpRequest,
        ) -> transport::BoxFuture<'_, Result<transport::HttpReply, String>> {
            Box::pin(async { Err("no network in this test".to_string()) })
        }
    }

    #[tokio::test]
    async fn seed_schemes_must_match_the_tls_setting() {
        let tls = ClientTls {
            ca_pem: Vec::new(),
            client_cert_pem: None,
            client_key_pem: None,
        };
        let mut c = ClientConfig::new(["https://127.0.0.1:7001"]);
        assert!(matches!(
            Client::with_transport(c.clone(), Arc::new(Never)),
            Err(Error::Invalid(_))
        ));
        c.tls = Some(tls.clone());
        assert!(Client::with_transport(c, Arc::new(Never)).is_ok());
        let mut c = ClientConfig::new(["http://127.0.0.1:7001"]);
        c.tls = Some(tls);
        assert!(matches!(
            Client::with_transport(c, Arc::new(Never)),
            Err(Error::Invalid(_))
        ));
    }
}
