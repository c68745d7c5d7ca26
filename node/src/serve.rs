//! The node's own serve loop (in place of `axum::serve`), shared by both listeners, TCP or
//! simulated: a connection cap, an optional TLS 1.3 handshake under a deadline, protocol
//! detection under the header-read deadline, HTTP/1 or HTTP/2 via hyper, the caller's identity
//! ([`PeerIdentity`]) on every request, a per-request deadline (408 `timeout`), a per-IP token
//! bucket on the client API (429 `busy`), and graceful shutdown on the stop signal.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Who sent a request: inserted into every request's extensions by the serve loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The remote address as the listener reports it (`ip:port` for TCP).
    pub addr: String,
    /// `sha256:<hex>` fingerprint of the client certificate, present only when the connection is
    /// TLS and the client presented a certificate that verified against the cluster CA.
    pub client_cert: Option<String>,
    /// The client certificate is a node's: it verifies against the cluster CA itself, not only
    /// against the client CA the API also trusts. Only such a connection may relay requests
    /// (`x-ron-forwarded`); the header is removed from any other TLS connection's requests.
    pub node_cert: bool,
}

impl PeerIdentity {
    /// The kind of caller, for `auth_failures_total{peer}`: `node` (a node certificate),
    /// `client` (a client certificate), `unix` (the Unix socket), else `anonymous`.
    pub fn kind(&self) -> &'static str {
        if self.node_cert {
            "node"
        } else if self.client_cert.is_some() {
            "client"
        } else if self.addr.starts_with("uid=") {
            "unix"
        } else {
            "anonymous"
        }
    }

    /// The rate-limit key: the host part of `addr` (the IP for TCP), or all of it.
    pub fn host(&self) -> &str {
        match self.addr.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => &self.addr,
        }
    }
}

/// How one listener serves.
#[derive(Clone)]
pub struct ServeOptions {
    /// TLS on this listener, or cleartext.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Open connections allowed; a new one beyond this is closed at once.
    pub connections_max: usize,
    /// Deadline of the TLS handshake.
    pub handshake_timeout: Duration,
    /// Deadline for a request's headers (and for the first bytes of a connection).
    pub header_read_timeout: Duration,
    /// Deadline for a whole request (408 after it).
    pub request_timeout: Duration,
    /// Per-IP token bucket (client API only).
    pub rate: Option<Arc<RateLimiter>>,
    /// Recognises node certificates among the client certificates a TLS listener accepts
    /// ([`PeerIdentity::node_cert`]); `None` where no client certificate is a node's.
    pub node_certs: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    /// An HTTP/2 connection with no new request for this long is closed gracefully (GOAWAY;
    /// requests in flight finish). HTTP/1 idle connections end at `header_read_timeout`.
    pub http2_idle: Duration,
}

impl ServeOptions {
    /// The options of a listener, from the `[limits]` section.
    pub fn from_limits(
        limits: &crate::config::LimitsSection,
        tls: Option<Arc<rustls::ServerConfig>>,
        rate_limited: bool,
    ) -> Self {
        Self {
            tls,
            connections_max: limits.connections_max,
            handshake_timeout: Duration::from_millis(limits.handshake_timeout_ms),
            header_read_timeout: Duration::from_millis(limits.header_read_timeout_ms),
            request_timeout: Duration::from_millis(limits.request_timeout_ms),
            rate: rate_limited.then(|| {
                Arc::new(RateLimiter::new(
                    limits.rate_per_peer_per_sec,
                    limits.rate_burst,
                    RATE_PEERS_MAX,
                ))
            }),
            http2_idle: Duration::from_millis(HTTP2_IDLE_MS),
            node_certs: None,
        }
    }
}

/// An HTTP/2 connection without a new request for this long is closed gracefully, so idle
/// connections cannot hold connection slots forever (peers send heartbeats every few hundred ms).
pub const HTTP2_IDLE_MS: u64 = 60_000;

/// Distinct peer IPs tracked by one rate limiter (bounds its memory).
pub const RATE_PEERS_MAX: usize = 65_536;

/// A TCP listener whose accepted connections have `TCP_NODELAY` set.
pub type NoDelayListener =
    axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)>;

/// `listener`, with `TCP_NODELAY` on every connection it accepts. An answer is a small write
/// that often follows another small write on the same connection (an HTTP/2 window update, the
/// answer to another stream): with Nagle's algorithm the kernel holds it until the client
/// acknowledges the earlier one, and a client delaying its acknowledgement adds ~40 ms
/// (measured: p99 of 64 single-transfer requests in flight 49 ms with it, 16-21 ms without,
/// docs/BENCHMARKS.md).
pub fn no_delay(listener: tokio::net::TcpListener) -> NoDelayListener {
    use axum::serve::ListenerExt;
    let set: fn(&mut tokio::net::TcpStream) = |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on an accepted connection");
        }
    };
    listener.tap_io(set)
}

/// Serve `app` on `listener` until `stopped` turns true; connections then finish their requests
/// (the caller bounds how long it waits).
pub fn spawn<L>(
    listener: L,
    app: Router,
    options: ServeOptions,
    stopped: watch::Receiver<bool>,
) -> JoinHandle<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Display,
{
    tokio::spawn(run(listener, app, options, stopped))
}

async fn run<L>(
    mut listener: L,
    app: Router,
    options: ServeOptions,
    mut stopped: watch::Receiver<bool>,
) where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Display,
{
    let mut app = app.layer(axum::middleware::from_fn_with_state(
        options.request_timeout,
        request_timeout,
    ));
    if let Some(rate) = options.rate.clone() {
        app = app.layer(axum::middleware::from_fn_with_state(rate, rate_limit));
    }
    let acceptor = options.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(options.connections_max));
    let mut connections = JoinSet::new();
    loop {
        let (io, addr) = tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            crate::metrics::connection_rejected();
            drop(io);
            continue;
        };
        let connection = Connection {
            addr: addr.to_string(),
            app: app.clone(),
            acceptor: acceptor.clone(),
            options: options.clone(),
            stopped: stopped.clone(),
        };
        connections.spawn(async move {
            connection.serve(io).await;
            drop(slot);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

struct Connection {
    addr: String,
    app: Router,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    options: ServeOptions,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(acceptor) = self.acceptor.clone() else {
            let identity = PeerIdentity {
                addr: self.addr.clone(),
                client_cert: None,
                node_cert: false,
            };
            return self.http(io, identity).await;
        };
        // Until HTTP is being served nothing is in flight: stopping ends the connection at once.
        let mut stopped = self.stopped.clone();
        let handshake = tokio::select! {
            r = tokio::time::timeout(self.options.handshake_timeout, acceptor.accept(io)) => r,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let stream = match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                crate::metrics::tls_handshake_failure();
                tracing::debug!(peer = %self.addr, error = %e, "tls handshake failed");
                return;
            }
            Err(_) => {
                crate::metrics::tls_handshake_failure();
                tracing::debug!(peer = %self.addr, "tls handshake timed out");
                return;
            }
        };
        let chain = stream.get_ref().1.peer_certificates();
        let client_cert = chain
            .and_then(|chain| chain.first())
            .map(crate::security::tls::fingerprint);
        let node_cert = match (chain, &self.options.node_certs) {
            (Some([leaf, intermediates @ ..]), Some(nodes)) => nodes
                .verify_client_cert(leaf, intermediates, rustls::pki_types::UnixTime::now())
                .is_ok(),
            _ => false,
        };
        let identity = PeerIdentity {
            addr: self.addr.clone(),
            client_cert,
            node_cert,
        };
        self.http(stream, identity).await
    }

    /// Tell HTTP/2 (its connection preface) from HTTP/1 within the header deadline, then serve.
    async fn http<I>(self, mut io: I, identity: PeerIdentity)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        let mut head = Vec::with_capacity(PREFACE.len());
        let sniff = async {
            let mut buf = [0u8; 24];
            while head.len() < PREFACE.len() && PREFACE.starts_with(&head) {
                let want = PREFACE.len() - head.len();
                let n = io.read(&mut buf[..want]).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                head.extend_from_slice(&buf[..n]);
            }
            Ok::<bool, std::io::Error>(head == PREFACE)
        };
        let mut stopped = self.stopped.clone();
        let sniffed = tokio::select! {
            r = tokio::time::timeout(self.options.header_read_timeout, sniff) => r,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let h2 = match sniffed {
            Ok(Ok(h2)) => h2,
            _ => return,
        };
        let io = TokioIo::new(Prefixed {
            head,
            read: 0,
            inner: io,
        });
        // Milliseconds after `opened` at which the latest request arrived (HTTP/2 idle check).
        let opened = Instant::now();
        let last_request_ms = Arc::new(AtomicU64::new(0));
        let seen = last_request_ms.clone();
        // On TLS, only a node's certificate may mark a request as relayed; from anyone else the
        // header is dropped before any layer sees it (cleartext cannot tell who is a node).
        let strip_relay = self.acceptor.is_some() && !identity.node_cert;
        let peer = identity.addr.clone();
        let service = tower::ServiceExt::map_request(self.app, move |mut req: Request<_>| {
            seen.store(millis_since(opened), Ordering::Relaxed);
            if strip_relay
                && req
                    .headers_mut()
                    .remove(crate::seam::FORWARDED_HEADER)
                    .is_some()
            {
                tracing::debug!(peer = %identity.addr, "dropped x-ron-forwarded from a non-node connection");
            }
            req.extensions_mut().insert(identity.clone());
            req
        });
        // Requests of this connection whose answer has not been sent in full: an HTTP/2
        // connection is idle only while there are none (a long backup or event stream is not).
        let in_flight = Arc::new(AtomicU64::new(0));
        let flights = in_flight.clone();
        let service = tower::ServiceExt::map_future(service, move |answer| {
            let guard = InFlight::start(&flights);
            async move {
                let response: Response = answer.await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    axum::body::Body::new(Tracked {
                        body,
                        _guard: guard,
                    })
                }))
            }
        });
        let service = TowerToHyperService::new(service);
        if h2 {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder.timer(TokioTimer::new());
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            let limit = self.options.http2_idle;
            let idle = async {
                loop {
                    if in_flight.load(Ordering::Relaxed) > 0 {
                        tokio::time::sleep(limit).await;
                        continue;
                    }
                    let last = Duration::from_millis(last_request_ms.load(Ordering::Relaxed));
                    let quiet = opened.elapsed().saturating_sub(last);
                    if quiet >= limit {
                        return;
                    }
                    tokio::time::sleep(limit - quiet).await;
                }
            };
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stopped.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
                _ = idle => conn.as_mut().graceful_shutdown(),
            }
            // A client that never acknowledges the GOAWAY's ping would keep the connection open;
            // requests in flight are bounded by the request deadline anyway.
            let _ = tokio::time::timeout(self.options.request_timeout, conn).await;
        } else {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(self.options.header_read_timeout);
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => Some(r),
                _ = stopped.wait_for(|s| *s) => None,
            };
            let ended = match ended {
                Some(r) => r,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                note_refusal(&e, &peer);
            }
        }
    }
}

/// Why the HTTP library refused a request before any route saw it, as a reason code (also the
/// `rejected_total` label) and the status it answered: a malformed request line or header
/// (including a bad `Content-Length` or a `Transfer-Encoding` other than `chunked`) is 400, a
/// request target over hyper's URI limit (65,534 bytes) 414, a request head over its buffer or
/// with more than 100 headers 431. `None` for anything that is not a refusal (the peer went
/// away, a header-read timeout on an idle connection).
pub fn refusal(e: &hyper::Error) -> Option<(&'static str, u16)> {
    if e.is_parse_too_large() {
        // hyper's two "too large" kinds differ only in their message.
        return Some(if e.to_string().starts_with("URI too long") {
            ("uri_too_long", 414)
        } else {
            ("headers_too_large", 431)
        });
    }
    e.is_parse().then_some(("malformed_request", 400))
}

/// Count and log a request the HTTP library refused before routing. hyper answers these itself
/// with a bare status line (no body, no request id): it offers no hook to write one.
fn note_refusal(e: &hyper::Error, peer: &str) {
    match refusal(e) {
        Some((reason, status)) => {
            crate::metrics::rejected(reason);
            tracing::info!(%peer, reason, status, error = %e, "request refused before routing");
        }
        None => tracing::debug!(%peer, error = %e, "connection ended with an error"),
    }
}

/// One request of a connection in flight, from its arrival until its answer's body has been
/// sent (or dropped).
struct InFlight(Arc<AtomicU64>);

impl InFlight {
    fn start(count: &Arc<AtomicU64>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An answer's body that keeps its request counted in flight until it ends.
struct Tracked {
    body: axum::body::Body,
    _guard: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

fn millis_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// An IO whose first bytes (read while detecting the protocol) are replayed before the rest.
struct Prefixed<I> {
    head: Vec<u8>,
    read: usize,
    inner: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.read < self.head.len() {
            let n = buf.remaining().min(self.head.len() - self.read);
            let start = self.read;
            buf.put_slice(&self.head[start..start + n]);
            self.read += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Admin operations whose work grows with the ledger and that one operator starts at a time:
/// an online backup (the node writes the whole stream before it answers) and the safe-mode
/// re-check (it reads the whole store back). Not cut at the request deadline, which would
/// abandon them half done on a large ledger; both need an admin capability (and on a TLS node a
/// client certificate).
const UNBOUNDED_ADMIN_PATHS: [&str; 2] = ["/v1/admin/backup", "/v1/admin/safe-mode/clear"];

/// 408 `timeout` when a request (including reading its body) takes longer than the deadline
/// (except [`UNBOUNDED_ADMIN_PATHS`]).
async fn request_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::POST && UNBOUNDED_ADMIN_PATHS.contains(&req.uri().path())
    {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            crate::metrics::rejected("timeout");
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!("the request took longer than {} ms", limit.as_millis()),
            )
            .into_response()
        }
    }
}

/// 429 `busy` with Retry-After when the sender's IP is over its token bucket. A request that a
/// node relays for its own clients (the forwarding header over a connection whose certificate
/// is a node's, [`PeerIdentity::node_cert`]) is not charged to the relaying node's address: its
/// client was charged there. A client certificate with the header is charged like any client.
async fn rate_limit(State(rate): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    let identity = req.extensions().get::<PeerIdentity>();
    let relayed = identity.is_some_and(|p| p.node_cert)
        && req.headers().contains_key(crate::seam::FORWARDED_HEADER);
    if relayed {
        return next.run(req).await;
    }
    let host = identity.map(|p| p.host().to_string()).unwrap_or_default();
    match rate.take(&host, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(retry_after_secs) => {
            crate::metrics::rejected("busy");
            ApiError::busy("rate limit exceeded for this address; retry later")
                .retry_after(retry_after_secs)
                .into_response()
        }
    }
}

/// Token buckets per peer host, in a map bounded to `peers_max` entries.
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    peers_max: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_sec` tokens per second per peer, at most `burst` saved up, `peers_max` peers tracked.
    pub fn new(per_sec: u32, burst: u32, peers_max: usize) -> Self {
        Self {
            per_sec: f64::from(per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            peers_max: peers_max.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `peer` at `now`; `Err(seconds)` to wait when none is left.
    pub fn take(&self, peer: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !buckets.contains_key(peer) && buckets.len() >= self.peers_max {
            // Forgetting a bucket that has refilled loses nothing; if every tracked peer is
            // active, forget an arbitrary one (it gets at most one extra burst).
            let (per_sec, burst) = (self.per_sec, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec < burst
            });
            if buckets.len() >= self.peers_max {
                if let Some(victim) = buckets.keys().next().cloned() {
                    buckets.remove(&victim);
                }
            }
        }
        let bucket = buckets.entry(peer.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_sec;
            Err((wait.ceil() as u64).max(1))
        }
    }

    /// Peers currently tracked.
    pub fn tracked(&self) -> usize {
        match self.buckets.lock() {
            Ok(b) => b.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The request deadline cuts an ordinary request at its limit, and leaves the admin
    /// operations whose work grows with the ledger (a backup, the safe-mode re-check) alone.
    #[tokio::test]
    async fn the_deadline_spares_only_the_long_admin_operations() {
        use axum::body::Body;
        use axum::routing::post;
        use tower::ServiceExt;
        let slow = || async {
            // A handler slower than the deadline below (the work being cut or not).
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            "done"
        };
        let app = axum::Router::new()
            .route("/v1/admin/backup", post(slow))
            .route("/v1/admin/safe-mode/clear", post(slow))
            .route("/v1/admin/snapshot", post(slow))
            .route("/v1/admin/backup-not", post(slow))
            .layer(axum::middleware::from_fn_with_state(
                std::time::Duration::from_millis(50),
                super::request_timeout,
            ));
        for (path, status) in [
            ("/v1/admin/backup", 200),
            ("/v1/admin/safe-mode/clear", 200),
            ("/v1/admin/snapshot", 408),
            ("/v1/admin/backup-not", 408),
        ] {
            let req = axum::http::Request::post(path).body(Body::empty()).unwrap();
            let answer = app.clone().oneshot(req).await.unwrap();
            assert_eq!(answer.status().as_u16(), status, "{path}");
        }
    }

    #[tokio::test]
    async fn accepted_connections_have_nodelay_set() {
        use axum::serve::Listener;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr);
        let mut plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain_client = tokio::net::TcpStream::connect(plain.local_addr().unwrap());
        let mut tapped = no_delay(listener);
        let ((accepted, _), _client) = tokio::join!(tapped.accept(), client);
        assert!(
            accepted.nodelay().unwrap(),
            "the tapped listener's connection"
        );
        // The kernel's default, so the check above is not vacuous.
        let ((accepted, _), _client) = tokio::join!(Listener::accept(&mut plain), plain_client);
        assert!(
            !accepted.nodelay().unwrap(),
            "a plain listener's connection"
        );
    }

    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills_and_the_map_stays_bounded() {
        let rate = RateLimiter::new(10, 5, 3);
        let t0 = Instant::now();
        for _ in 0..5 {
            rate.take("a", t0).unwrap();
        }
        assert_eq!(rate.take("a", t0), Err(1));
        rate.take("a", t0 + Duration::from_millis(100)).unwrap();
        for i in 0..100 {
            let _ = rate.take(&format!("p{i}"), t0);
            assert!(rate.tracked() <= 3);
        }
    }

    #[test]
    fn host_strips_the_port() {
        let p = |a: &str| PeerIdentity {
            addr: a.into(),
            client_cert: None,
            node_cert: false,
        };
        assert_eq!(p("127.0.0.1:8080").host(), "127.0.0.1");
        assert_eq!(p("[::1]:80").host(), "[::1]");
        assert_eq!(p("/run/x.sock").host(), "/run/x.sock");
    }
}
