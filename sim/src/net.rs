//! The node's and the SDK's network seams over turmoil: a listener axum can serve on, and one
//! HTTP/1.1 exchange per call over a simulated TCP connection (so partitions, holds, delays and
//! crashes act on every request exactly as they would on sockets).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use node::seam::{Answer, BoxFuture, Call, CallError, Connector};
use ron_ledger_client::transport::{HttpReply, HttpRequest, Transport};
use std::net::SocketAddr;
use std::time::Duration;

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

/// One request on a fresh simulated connection, bounded by `timeout`; the node's [`Answer`]
/// serves the SDK's transport too.
async fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Answer, CallError> {
    let work = async {
        let stream = turmoil::net::TcpStream::connect(addr)
            .await
            .map_err(|e| CallError::Unreachable(format!("{addr}: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CallError::Network(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CallError::Network(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| CallError::Network(e.to_string()))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
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
            body,
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(CallError::Timeout),
    }
}

/// The node's [`Connector`] over the simulated network.
pub struct SimConnector;

impl Connector for SimConnector {
    fn call(&self, call: Call) -> BoxFuture<'_, Result<Answer, CallError>> {
        Box::pin(async move {
            exchange(
                &call.addr,
                call.method,
                &call.path,
                &call.headers,
                call.body,
                call.timeout,
            )
            .await
        })
    }
}

/// The SDK's [`Transport`] over the simulated network.
pub struct SimTransport;

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
            let method = if req.post { "POST" } else { "GET" };
            let ex = exchange(
                &req.addr,
                method,
                &req.path,
                &headers,
                req.body,
                req.timeout,
            )
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
