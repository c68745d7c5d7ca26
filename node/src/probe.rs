//! `ron-ledger probe`: ask this node's own client API whether it is ready (`/readyz`) or alive
//! (`/healthz`), for container health checks and init steps in images that carry no HTTP client.
//!
//! It reads the node's configuration (the same file, `RON_LEDGER_*` variables and `--set` keys as
//! `start`), calls `api_addr` on loopback when the node listens on every address, over TLS 1.3
//! trusting only `tls.ca_file` when TLS is on, and succeeds only on `200`.

use crate::config::Config;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Which endpoint to ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// `/readyz`: a leader is known, not in safe mode, queues and apply lag low.
    Ready,
    /// `/healthz`: the process answers.
    Alive,
}

/// Where to reach the node's client API from the same host: a listener on every address
/// (`0.0.0.0`, `::`) is asked on loopback.
pub fn local_addr(api_addr: SocketAddr) -> SocketAddr {
    let ip = match api_addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, api_addr.port())
}

/// Call the node's `check` endpoint within `timeout`: `Ok` on `200`, else what was answered or
/// what failed.
pub async fn probe(config: &Config, check: Check, timeout: Duration) -> Result<(), String> {
    crate::security::tls::install_crypto_provider();
    let path = match check {
        Check::Ready => "/readyz",
        Check::Alive => "/healthz",
    };
    let addr = local_addr(config.api_addr);
    let mut builder = reqwest::Client::builder().timeout(timeout);
    let url = if config.tls.enabled {
        let ca_file = config
            .tls
            .ca_file
            .as_ref()
            .ok_or("tls.enabled is set but tls.ca_file is not")?;
        let ca = std::fs::read(ca_file)
            .map_err(|e| format!("cannot read tls.ca_file {}: {e}", ca_file.display()))?;
        let tls = crate::security::tls::client_config(&ca, None)?;
        builder = builder.tls_backend_preconfigured(tls);
        format!("https://{addr}{path}")
    } else {
        format!("http://{addr}{path}")
    };
    let client = builder.build().map_err(|e| e.to_string())?;
    let answer = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = answer.status();
    if status == reqwest::StatusCode::OK {
        return Ok(());
    }
    let body = answer.text().await.unwrap_or_default();
    Err(format!("{url} answered {status}: {}", body.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_listeners_are_asked_on_loopback() {
        let cases = [
            ("0.0.0.0:7001", "127.0.0.1:7001"),
            ("[::]:7001", "[::1]:7001"),
            ("10.1.2.3:7001", "10.1.2.3:7001"),
            ("127.0.0.1:9", "127.0.0.1:9"),
        ];
        for (listen, asked) in cases {
            assert_eq!(
                local_addr(listen.parse().unwrap()).to_string(),
                asked,
                "{listen}"
            );
        }
    }
}
