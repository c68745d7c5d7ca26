//! How the SDK moves one HTTP request. Production uses [`ReqwestTransport`]; the simulation
//! supplies one over its simulated network, so the SDK's discovery and retry logic run unchanged.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, as trait objects need.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One request.
pub struct HttpRequest {
    /// POST (with `body`) or GET.
    pub post: bool,
    /// `host:port`.
    pub addr: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Content type of `body` (POST only).
    pub content_type: &'static str,
    /// Request body.
    pub body: Vec<u8>,
    /// Give up after this long.
    pub timeout: Duration,
    /// `Authorization` header value (the capability), if any. Never logged.
    pub authorization: Option<String>,
}

/// One answer.
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// Body.
    pub body: Vec<u8>,
}

/// Sends requests. An `Err` is a transport failure (no answer): the SDK retries it.
pub trait Transport: Send + Sync + 'static {
    /// Perform one request.
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpReply, String>>;
}

/// HTTP/1.1 over TCP with `reqwest`.
pub struct ReqwestTransport {
    http: reqwest::Client,
}

impl ReqwestTransport {
    /// A transport whose requests time out after `timeout` at most.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
        })
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpReply, String>> {
        Box::pin(async move {
            let url = format!("http://{}{}", req.addr, req.path);
            let mut builder = if req.post {
                self.http
                    .post(url)
                    .header("content-type", req.content_type)
                    .body(req.body)
            } else {
                self.http.get(url)
            };
            if let Some(a) = req.authorization {
                builder = builder.header("authorization", a);
            }
            let resp = builder
                .timeout(req.timeout)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.bytes().await.map_err(|e| e.to_string())?.to_vec();
            Ok(HttpReply {
                status,
                retry_after,
                body,
            })
        })
    }
}
