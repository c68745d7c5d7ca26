//! Transport security: the `[tls]` configuration section, loading and checking the node's
//! certificate material (failing closed, naming the file), the rustls configurations of the two
//! listeners and of outgoing peer calls (the development PKI is in [`super::pki`]).
//!
//! Everything is TLS 1.3 only with the `ring` crypto provider, installed explicitly in each
//! configuration (no process-wide default, no aws-lc-rs).

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `[tls]`: certificates for both listeners and for outgoing peer calls.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// Serve both listeners over TLS 1.3 and call peers over TLS.
    pub enabled: bool,
    /// This node's certificate chain (PEM), leaf first; SANs must cover the host names peers and
    /// clients use to reach it.
    pub cert_file: Option<PathBuf>,
    /// This node's private key (PEM, PKCS#8/SEC1/PKCS#1); must be mode 0600 or stricter.
    pub key_file: Option<PathBuf>,
    /// The cluster CA (PEM): signs node certificates. The only trust anchor on the peer
    /// listener and for servers this node calls; also trusted on the client API listener (a
    /// follower relays admin calls to the leader with its node certificate).
    pub ca_file: Option<PathBuf>,
    /// The CA of client certificates (operators, applications), PEM. Trusted on the client API
    /// listener only — never on the peer listener, so a client identity cannot speak Raft or
    /// forward writes. Unset: only node certificates verify on the API listener.
    pub client_ca_file: Option<PathBuf>,
    /// The peer listener demands a client certificate signed by the CA (mutual TLS).
    pub mtls_required: bool,
    /// Client certificates on the client API listener: `optional` (a presented one must still be
    /// signed by the CA) or `required`.
    pub client_auth: ClientAuth,
}

impl Default for TlsSection {
    fn default() -> Self {
        Self {
            enabled: false,
            cert_file: None,
            key_file: None,
            ca_file: None,
            client_ca_file: None,
            mtls_required: true,
            client_auth: ClientAuth::Optional,
        }
    }
}

/// Whether the client API listener demands a client certificate.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A client may present a certificate; if it does, it must verify against the CA.
    #[default]
    Optional,
    /// Every client must present a certificate signed by the CA.
    Required,
}

/// Why TLS material could not be loaded or generated; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A `[tls]` key is missing while `enabled = true`.
    #[error("tls.{0} is required when tls.enabled = true")]
    MissingKey(&'static str),
    /// The file does not exist.
    #[error("{what} {path}: file not found")]
    Missing {
        /// Which file (certificate, key, CA).
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error("{what} {path}: cannot read: {error}")]
    Unreadable {
        /// Which file.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file holds no PEM item of the expected kind.
    #[error("{what} {path}: no PEM {kind} found")]
    NoPem {
        /// Which file.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The expected PEM item.
        kind: &'static str,
    },
    /// A private key file readable by group or others.
    #[error("key file {path}: mode {mode:o} is too open; it must be 0600 (chmod 600 {path})")]
    KeyMode {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The certificate does not verify against the CA now (expired, not yet valid, other CA, ...).
    #[error("certificate {path}: {reason}")]
    Certificate {
        /// The path.
        path: PathBuf,
        /// What rustls/webpki said.
        reason: String,
    },
    /// The CA file's certificates could not be used as trust anchors.
    #[error("CA file {path}: {reason}")]
    Ca {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key does not match the certificate or is unsupported.
    #[error("key file {path}: {reason}")]
    Key {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing generated PKI failed, or would overwrite a file.
    #[error("{path}: {reason}")]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(String),
}

/// Loaded and checked TLS material: the rustls configurations the node runs with.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The peer listener (client certificate required unless `mtls_required = false`).
    pub peer_server: Arc<ServerConfig>,
    /// The client API listener (client certificate optional or required per `client_auth`).
    pub api_server: Arc<ServerConfig>,
    /// Outgoing calls to peers and to the leader's API: trusts only the CA, presents this node's
    /// certificate.
    pub client: Arc<ClientConfig>,
    /// Tells a node's certificate (issued by the cluster CA, `ca_file`) from a client's (issued
    /// by `client_ca_file`) on the client API, where both are accepted: only a node may mark a
    /// request as relayed (`x-ron-forwarded`).
    pub node_certs: Arc<dyn ClientCertVerifier>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsMaterial { .. }")
    }
}

/// The crypto provider of every configuration: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Make ring the process-wide rustls provider unless one is installed already. `reqwest` (built
/// with `rustls-no-provider`) consults it for clients without a preconfigured TLS setup, and
/// panics when there is none; every place that builds a `reqwest::Client` calls this first.
pub fn install_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            TlsError::Missing {
                what,
                path: path.to_path_buf(),
            }
        } else {
            TlsError::Unreadable {
                what,
                path: path.to_path_buf(),
                error,
            }
        }
    })
}

/// Read a PEM certificate chain (one or more `CERTIFICATE` items).
pub fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            what,
            path: path.to_path_buf(),
            kind: "certificate",
        });
    }
    Ok(certs)
}

/// Read a PEM private key, refusing a file readable by group or others.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = zeroize::Zeroizing::new(read("key file", path)?);
    let loose = crate::security::files::loose_mode(path).map_err(|error| TlsError::Unreadable {
        what: "key file",
        path: path.to_path_buf(),
        error,
    })?;
    if let Some(mode) = loose {
        return Err(TlsError::KeyMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::NoPem {
        what: "key file",
        path: path.to_path_buf(),
        kind: "private key",
    })
}

/// A root store holding the CA file's certificates.
pub fn read_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("CA file", path)? {
        roots.add(cert).map_err(|e| TlsError::Ca {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(Arc::new(roots))
}

/// Load and check the node's TLS material: every file exists, is readable and holds PEM; the key
/// is 0600; the certificate is signed by the CA and valid now. Fails closed, naming the file.
pub fn load(section: &TlsSection) -> Result<TlsMaterial, TlsError> {
    let cert_path = section
        .cert_file
        .as_deref()
        .ok_or(TlsError::MissingKey("cert_file"))?;
    let key_path = section
        .key_file
        .as_deref()
        .ok_or(TlsError::MissingKey("key_file"))?;
    let ca_path = section
        .ca_file
        .as_deref()
        .ok_or(TlsError::MissingKey("ca_file"))?;
    let roots = read_roots(ca_path)?;
    // The API listener trusts node certificates and, if configured, client certificates.
    let api_roots = match &section.client_ca_file {
        None => roots.clone(),
        Some(path) => {
            let mut both = (*roots).clone();
            for cert in read_certs("client CA file", path)? {
                both.add(cert).map_err(|e| TlsError::Ca {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
            Arc::new(both)
        }
    };
    let chain = read_certs("certificate", cert_path)?;
    let key = read_key(key_path)?;
    let provider = provider();
    verify_own(&chain, &roots, &provider).map_err(|reason| TlsError::Certificate {
        path: cert_path.to_path_buf(),
        reason,
    })?;
    let key_err = |e: rustls::Error| TlsError::Key {
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    };
    let ca_err = |e: String| TlsError::Ca {
        path: ca_path.to_path_buf(),
        reason: e,
    };
    let server = |roots: &Arc<RootCertStore>,
                  require: bool|
     -> Result<Arc<ServerConfig>, TlsError> {
        let builder = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
        let builder = if require {
            builder
        } else {
            builder.allow_unauthenticated()
        };
        let verifier = builder.build().map_err(|e| ca_err(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(key_err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(key_err)?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    };
    let peer_server = server(&roots, section.mtls_required)?;
    let api_server = server(&api_roots, section.client_auth == ClientAuth::Required)?;
    let mut client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(key_err)?
        .with_root_certificates(roots.clone())
        .with_client_auth_cert(chain, key)
        .map_err(key_err)?;
    client.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    let node_certs = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| ca_err(e.to_string()))?;
    Ok(TlsMaterial {
        peer_server,
        api_server,
        client: Arc::new(client),
        node_certs,
    })
}

/// Check the node's own chain against the CA at the current time, as a peer would. The client
/// verifier is used because a node certificate serves both as server and as client identity.
fn verify_own(
    chain: &[CertificateDer<'static>],
    roots: &Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<(), String> {
    let (leaf, intermediates) = chain.split_first().ok_or("empty chain")?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A client configuration for SDKs and tests: trust `ca_pem`, optionally present a client
/// certificate; TLS 1.3, ring, ALPN h2 + http/1.1.
pub fn client_config(
    ca_pem: &[u8],
    identity: Option<(&[u8], &[u8])>,
) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(cert.map_err(|e| format!("CA: {e}"))?)
            .map_err(|e| format!("CA: {e}"))?;
    }
    if roots.is_empty() {
        return Err("CA: no PEM certificate found".into());
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert_pem, key_pem)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
            let key =
                PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate/key: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A short identity of a verified client certificate: `sha256:<hex>` of its DER.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    format!("sha256:{}", ledger::wire::hex::encode(digest.as_ref()))
}
