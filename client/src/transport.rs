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
    /// `X-Ron-Approval` header value (a reversal's second capability), if any. Never logged.
    pub approval: Option<String>,
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

/// HTTP over TCP with `reqwest`: cleartext HTTP/1.1, or HTTPS (TLS 1.3, HTTP/2 or 1.1 by ALPN)
/// trusting only the cluster CA when built [`ReqwestTransport::with_tls`].
pub struct ReqwestTransport {
    http: reqwest::Client,
    scheme: &'static str,
}

impl ReqwestTransport {
    /// A cleartext transport whose requests time out after `timeout` at most.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        install_crypto_provider();
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            scheme: "http",
        })
    }

    /// An HTTPS transport: the server must present a certificate signed by `tls.ca_pem` for the
    /// host it is reached at; `tls.client_cert_pem`/`client_key_pem` (both or neither) are
    /// presented as the client identity (mutual TLS; admin operations require it).
    pub fn with_tls(timeout: Duration, tls: &ClientTls) -> Result<Self, String> {
        let config = tls.rustls_config()?;
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .tls_backend_preconfigured(config)
                .build()
                .map_err(|e| e.to_string())?,
            scheme: "https",
        })
    }
}

/// TLS settings of the SDK: the cluster CA and, optionally, a client identity. PEM bytes (read
/// them from files with [`ClientTls::from_files`]).
#[derive(Clone)]
pub struct ClientTls {
    /// The cluster CA certificate(s), PEM: the only trust anchor.
    pub ca_pem: Vec<u8>,
    /// The client certificate chain, PEM (mutual TLS).
    pub client_cert_pem: Option<Vec<u8>>,
    /// The client private key, PEM; wiped from memory when dropped.
    pub client_key_pem: Option<zeroize::Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("client_cert", &self.client_cert_pem.is_some())
            .field(
                "client_key",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ClientTls {
    /// Read the CA and, if given, the client certificate and key from files.
    pub fn from_files(
        ca: &std::path::Path,
        identity: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Result<Self, String> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let (client_cert_pem, client_key_pem) = match identity {
            Some((cert, key)) => (Some(read(cert)?), Some(zeroize::Zeroizing::new(read(key)?))),
            None => (None, None),
        };
        Ok(Self {
            ca_pem: read(ca)?,
            client_cert_pem,
            client_key_pem,
        })
    }

    /// The rustls configuration: TLS 1.3, the ring provider, only the CA trusted.
    pub fn rustls_config(&self) -> Result<rustls::ClientConfig, String> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca_pem) {
            roots
                .add(cert.map_err(|e| format!("CA: {e}"))?)
                .map_err(|e| format!("CA: {e}"))?;
        }
        if roots.is_empty() {
            return Err("CA: no PEM certificate found".into());
        }
        let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
        match (&self.client_cert_pem, &self.client_key_pem) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("client certificate: {e}"))?;
                if chain.is_empty() {
                    return Err("client certificate: no PEM certificate found".into());
                }
                let key =
                    PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("client key: {e}"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("client certificate/key: {e}"))
            }
            (None, None) => Ok(builder.with_no_client_auth()),
            _ => Err("a client certificate needs its key and a key its certificate".into()),
        }
    }
}

/// Make ring the process-wide rustls provider unless one is installed already: `reqwest` is
/// built without a bundled provider and needs one even for cleartext clients.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpReply, String>> {
        Box::pin(async move {
            let url = format!("{}://{}{}", self.scheme, req.addr, req.path);
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
            if let Some(a) = req.approval {
                builder = builder.header("x-ron-approval", a);
            }
            let mut resp = builder
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
            let max = response_bytes_max(&req.path);
            if let Some(n) = resp.content_length().filter(|n| *n > max as u64) {
                return Err(format!(
                    "an answer of {n} bytes is over the client's limit of {max} bytes"
                ));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                if body.len() + chunk.len() > max {
                    return Err(format!(
                        "the answer grew over the client's limit of {max} bytes"
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpReply {
                status,
                retry_after,
                body,
            })
        })
    }
}

/// The most bytes of one answer the client reads, beyond which it stops reading and tries
/// elsewhere (a node answering without end, or with gigabytes, must not exhaust its memory):
/// far above any real answer — a page of 1,000 records or 4,096 streamed events is a few MB.
pub const RESPONSE_BYTES_MAX: usize = 64 << 20;
/// The same for an export bundle (`GET /v1/export`): 65,536 events, each with its leaf and an
/// inclusion proof of up to 64 hashes, as hex JSON.
pub const EXPORT_RESPONSE_BYTES_MAX: usize = 512 << 20;

/// The answer size limit of a request for `path`.
pub fn response_bytes_max(path: &str) -> usize {
    if path.starts_with("/v1/export") {
        EXPORT_RESPONSE_BYTES_MAX
    } else {
        RESPONSE_BYTES_MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_are_checked_before_any_request() {
        let none = ClientTls {
            ca_pem: b"not pem".to_vec(),
            client_cert_pem: None,
            client_key_pem: None,
        };
        assert!(none.rustls_config().unwrap_err().contains("CA"));
        let missing =
            ClientTls::from_files(std::path::Path::new("/nonexistent/ca.pem"), None).unwrap_err();
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
        let debug = format!(
            "{:?}",
            ClientTls {
                ca_pem: vec![],
                client_cert_pem: Some(vec![1]),
                client_key_pem: Some(zeroize::Zeroizing::new(b"SECRET".to_vec())),
            }
        );
        assert!(
            !debug.contains("SECRET") && debug.contains("redacted"),
            "{debug}"
        );
    }
}
