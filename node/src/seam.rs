//! The seams between the node's logic and the outside world: how it reaches other nodes
//! ([`Connector`]) and what time it is ([`Clock`]). Listeners are the third seam: `Node::start_on`
//! takes any `axum::serve::Listener`. Production uses TCP, `reqwest` over HTTP/2 and the system
//! clock; the simulation substitutes simulated ones, and TLS/mTLS wraps the first two — without
//! touching ledger, Raft or API logic.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Set on client API requests a node relays to the leader, so a relayed request is never relayed
/// again (and is not charged to the relaying node's rate limit). On a TLS listener it counts only
/// over a connection with a node's certificate; from anyone else it is dropped on arrival.
pub const FORWARDED_HEADER: &str = "x-ron-forwarded";

/// Whether `id` may be used as a request's correlation id (`corr_id` in logs): 1 to 64 ASCII
/// letters, digits, `-`, `_` or `.`. Anything else is replaced by a fresh id on the client API
/// and dropped from a forwarded write.
pub fn well_formed_corr_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A boxed future, as trait objects need.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An HTTP request to another node.
pub struct Call {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// `host:port` of the target listener.
    pub addr: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Give up after this long.
    pub timeout: Duration,
}

/// An HTTP answer from another node.
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// `Retry-After`, if present.
    pub retry_after: Option<String>,
    /// `x-ron-incarnation` (a peer's data-directory identity), if present.
    pub incarnation: Option<String>,
    /// `x-ron-cluster-max` (the highest cluster version a peer runs), if present.
    pub runs: Option<String>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Why a call failed before an answer arrived.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Could not connect.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Timed out.
    #[error("timed out")]
    Timeout,
    /// Failed mid-way.
    #[error("network: {0}")]
    Network(String),
}

/// How the node reaches other nodes' listeners.
pub trait Connector: Send + Sync + 'static {
    /// Perform one call.
    fn call(&self, call: Call) -> BoxFuture<'_, Result<Answer, CallError>>;
}

/// What time it is, in nanoseconds since the Unix epoch. Only the leader's sequencer asks; apply
/// never does.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now_ns(&self) -> u64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// `reqwest` over HTTP/2 (one multiplexed connection per peer): cleartext with prior knowledge,
/// or TLS 1.3 with mutual authentication ([`HttpConnector::with_tls`]).
pub struct HttpConnector {
    client: reqwest::Client,
    scheme: &'static str,
}

impl HttpConnector {
    /// A connector whose connections are attempted for at most `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Result<Self, reqwest::Error> {
        crate::security::tls::install_crypto_provider();
        Ok(Self {
            client: reqwest::Client::builder()
                .http2_prior_knowledge()
                .connect_timeout(connect_timeout)
                .build()?,
            scheme: "http",
        })
    }

    /// A connector calling `https://` with `tls` (trusting only the cluster CA and presenting
    /// this node's certificate); the server name checked is the host part of the address.
    pub fn with_tls(
        connect_timeout: Duration,
        tls: rustls::ClientConfig,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder()
                .http2_prior_knowledge()
                .tls_backend_preconfigured(tls)
                .connect_timeout(connect_timeout)
                .build()?,
            scheme: "https",
        })
    }
}

impl Connector for HttpConnector {
    fn call(&self, call: Call) -> BoxFuture<'_, Result<Answer, CallError>> {
        Box::pin(async move {
            let url = format!("{}://{}{}", self.scheme, call.addr, call.path);
            let mut req = match call.method {
                "GET" => self.client.get(url),
                _ => self.client.post(url),
            };
            for (k, v) in call.headers {
                req = req.header(k, v);
            }
            let resp = req
                .timeout(call.timeout)
                .body(call.body)
                .send()
                .await
                .map_err(classify)?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let incarnation = resp
                .headers()
                .get(crate::raft::incarnation::INCARNATION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let runs = resp
                .headers()
                .get(crate::raft::rpc::RUNS_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.bytes().await.map_err(classify)?.to_vec();
            Ok(Answer {
                status,
                retry_after,
                incarnation,
                runs,
                body,
            })
        })
    }
}

fn classify(e: reqwest::Error) -> CallError {
    // A connect failure — a connect timeout too, which reqwest also counts as a timeout — never
    // reached the peer: nothing happened there.
    if e.is_connect() {
        CallError::Unreachable(e.to_string())
    } else if e.is_timeout() {
        CallError::Timeout
    } else {
        CallError::Network(e.to_string())
    }
}
