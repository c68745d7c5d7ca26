//! The node's and the SDK's network seams over turmoil: a listener axum can serve on, and one
//! HTTP/1.1 exchange per call over a simulated TCP connection (so partitions, holds, delays and
//! crashes act on every request exactly as they would on sockets) — in plaintext, or over
//! TLS 1.3 with a client certificate (mutual TLS), as in production.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use node::seam::{Answer, BoxFuture, Call, CallError, Connector};
use ron_ledger_client::transport::{HttpReply, HttpRequest, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// A turmoil TCP listener that axum can serve on.
pub struct SimListener(pub turmoil::net::TcpListener);

impl axum::serve::Listener for SimListener {
    type Io = turmoil::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok(pair) => return pair,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// How a simulated client connects: plaintext, or TLS 1.3 with this configuration (trusting only
/// the run's CA and presenting a client certificate; ALPN `http/1.1`, the only protocol spoken).
#[derive(Clone, Default)]
pub struct SimTls(Option<tokio_rustls::TlsConnector>);

impl SimTls {
    /// Plaintext.
    pub fn plain() -> Self {
        Self(None)
    }

    /// TLS with `config`; its ALPN list is replaced by `http/1.1`.
    pub fn with(mut config: rustls::ClientConfig) -> Self {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self(Some(tokio_rustls::TlsConnector::from(Arc::new(config))))
    }

    /// Whether calls use TLS.
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }
}

/// A request to send.
struct Request<'a> {
    addr: &'a str,
    method: &'a str,
    path: &'a str,
    headers: &'a [(&'a str, String)],
    body: Vec<u8>,
}

/// One request on a fresh simulated connection (TLS-wrapped when `tls` is on), bounded by
/// `timeout`; the node's [`Answer`] serves the SDK's transport too.
async fn exchange(tls: &SimTls, req: Request<'_>, timeout: Duration) -> Result<Answer, CallError> {
    let addr = req.addr;
    let work = async {
        let stream = turmoil::net::TcpStream::connect(addr)
            .await
            .map_err(|e| CallError::Unreachable(format!("{addr}: {e}")))?;
        match &tls.0 {
            None => http1(stream, req).await,
            Some(connector) => {
                // The certificate is checked against the host name, as a production client does.
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| CallError::Network(format!("{addr}: server name: {e}")))?;
                let stream = connector
                    .connect(name, stream)
                    .await
                    .map_err(|e| CallError::Network(format!("{addr}: tls: {e}")))?;
                http1(stream, req).await
            }
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(CallError::Timeout),
    }
}

/// One HTTP/1.1 exchange on `io`.
async fn http1<I>(io: I, req: Request<'_>) -> Result<Answer, CallError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| CallError::Network(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut builder = hyper::Request::builder()
        .method(req.method)
        .uri(req.path)
        .header("host", req.addr);
    for (k, v) in req.headers {
        builder = builder.header(*k, v.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(req.body)))
        .map_err(|e| CallError::Network(e.to_string()))?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| CallError::Network(e.to_string()))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let incarnation = resp
        .headers()
        .get(node::raft::incarnation::INCARNATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let runs = resp
        .headers()
        .get(node::cluster_version::RUNS_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| CallError::Network(e.to_string()))?
        .to_bytes()
        .to_vec();
    Ok(Answer {
        status,
        retry_after,
        incarnation,
        runs,
        body,
    })
}

/// The node's [`Connector`] over the simulated network: peer calls, forwarding and proxying to
/// the leader (with TLS on, presenting the node's own certificate, as `HttpConnector` does).
pub struct SimConnector(pub SimTls);

impl Connector for SimConnector {
    fn call(&self, call: Call) -> BoxFuture<'_, Result<Answer, CallError>> {
        Box::pin(async move {
            let req = Request {
                addr: &call.addr,
                method: call.method,
                path: &call.path,
                headers: &call.headers,
                body: call.body,
            };
            exchange(&self.0, req, call.timeout).await
        })
    }
}

/// The SDK's [`Transport`] over the simulated network (with TLS on, presenting the run's client
/// certificate).
pub struct SimTransport(pub SimTls);

impl Transport for SimTransport {
    fn send(
        &self,
        req: HttpRequest,
    ) -> ron_ledger_client::transport::BoxFuture<'_, Result<HttpReply, String>> {
        Box::pin(async move {
            let mut headers = if req.post {
                vec![("content-type", req.content_type.to_string())]
            } else {
                Vec::new()
            };
            if let Some(a) = req.authorization {
                headers.push(("authorization", a));
            }
            if let Some(a) = req.approval {
                headers.push(("x-ron-approval", a));
            }
            let method = if req.post { "POST" } else { "GET" };
            let call = Request {
                addr: &req.addr,
                method,
                path: &req.path,
                headers: &headers,
                body: req.body,
            };
            let ex = exchange(&self.0, call, req.timeout)
                .await
                .map_err(|e| e.to_string())?;
            Ok(HttpReply {
                status: ex.status,
                retry_after: ex.retry_after,
                body: ex.body,
            })
        })
    }
}
