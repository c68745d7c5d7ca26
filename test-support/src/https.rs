//! HTTPS reqwest clients for a dev PKI (`ron-ledger certs` or `node::security::pki::generate_dev_pki`):
//! TLS 1.3 with the ring provider, only the given CA trusted, optionally a client identity
//! (mutual TLS) and a capability sent with every request.

use std::path::Path;
use std::time::Duration;

/// What the client offers by ALPN in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    /// Nothing: the connection speaks HTTP/1.1 (the multi-process harness).
    None,
    /// `h2`, then `http/1.1`, as the node's own TLS clients do (the in-process node tests).
    H2Http1,
}

/// A client trusting only the CA in `ca` (PEM), presenting `identity` (certificate and key PEM
/// files) if given, sending `Authorization: Bearer <bearer>` with every request if given, with
/// a `timeout` per request.
pub fn client(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    bearer: Option<&str>,
    timeout: Duration,
    alpn: Alpn,
) -> reqwest::Client {
    // reqwest is built without a bundled rustls provider; install ring for this process.
    ron_ledger_client::install_crypto_provider();
    let mut tls = ron_ledger_client::ClientTls::from_files(ca, identity)
        .unwrap()
        .rustls_config()
        .unwrap();
    if alpn == Alpn::H2Http1 {
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = bearer {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .tls_backend_preconfigured(tls)
        .default_headers(headers)
        .build()
        .unwrap()
}
