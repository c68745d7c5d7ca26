//! The development PKI (`ron-ledger certs`, `ron-ledger dev`, tests): a node CA and one
//! certificate per node, a separate client CA and a client identity, every file written new and
//! owner-only. For development and tests, never production.

use crate::security::tls::{TlsError, TlsSection};
use std::path::{Path, PathBuf};

/// What [`generate_dev_pki`] wrote.
#[derive(Debug, Clone)]
pub struct DevPki {
    /// The directory.
    pub dir: PathBuf,
    /// `ca.pem`: the node CA.
    pub ca_cert: PathBuf,
    /// `client-ca.pem`: the CA of client identities (trusted on client API listeners only).
    pub client_ca: PathBuf,
    /// `node-N.pem` / `node-N.key`, N = 1..=nodes.
    pub nodes: Vec<(PathBuf, PathBuf)>,
    /// `client.pem` / `client.key`: an admin/client identity.
    pub client: (PathBuf, PathBuf),
}

impl DevPki {
    /// The `[tls]` section for node `n` (1-based) with these files.
    pub fn section(&self, n: usize) -> Option<TlsSection> {
        let (cert, key) = self.nodes.get(n.checked_sub(1)?)?;
        Some(TlsSection {
            enabled: true,
            cert_file: Some(cert.clone()),
            key_file: Some(key.clone()),
            ca_file: Some(self.ca_cert.clone()),
            client_ca_file: Some(self.client_ca.clone()),
            ..TlsSection::default()
        })
    }
}

/// The file names [`generate_dev_pki`] writes for `nodes` nodes.
pub fn dev_pki_files(nodes: usize) -> Vec<String> {
    let mut names = vec![
        "ca.pem".to_string(),
        "ca.key".to_string(),
        "client-ca.pem".to_string(),
        "client-ca.key".to_string(),
    ];
    for n in 1..=nodes {
        names.push(format!("node-{n}.pem"));
        names.push(format!("node-{n}.key"));
    }
    names.push("client.pem".into());
    names.push("client.key".into());
    names
}

/// The files of an existing dev PKI in `dir`, if all are there.
pub fn existing_dev_pki(dir: &Path, nodes: usize) -> Option<DevPki> {
    let pki = dev_pki_paths(dir, nodes);
    dev_pki_files(nodes)
        .iter()
        .all(|f| dir.join(f).is_file())
        .then_some(pki)
}

fn dev_pki_paths(dir: &Path, nodes: usize) -> DevPki {
    DevPki {
        dir: dir.to_path_buf(),
        ca_cert: dir.join("ca.pem"),
        client_ca: dir.join("client-ca.pem"),
        nodes: (1..=nodes)
            .map(|n| {
                (
                    dir.join(format!("node-{n}.pem")),
                    dir.join(format!("node-{n}.key")),
                )
            })
            .collect(),
        client: (dir.join("client.pem"), dir.join("client.key")),
    }
}

/// Create a development PKI in `dir` (created 0700 if missing): a node CA (`ca.pem`, `ca.key`),
/// one certificate per node signed by it (`node-N.pem`, `node-N.key`, SANs = `hosts`, usable as
/// server and client identity), a separate client CA (`client-ca.pem`, `client-ca.key`) and a
/// client/admin identity signed by that (`client.pem`, `client.key`), valid for `days` days. The
/// client identity is trusted on client API listeners only, never by the peer listener.
/// Every file is written 0600. Refuses to overwrite an existing file (remove the files of
/// [`dev_pki_files`] first to regenerate). For development and tests, not production.
pub fn generate_dev_pki(
    dir: &Path,
    nodes: usize,
    hosts: &[String],
    days: u32,
) -> Result<DevPki, TlsError> {
    let now = time::OffsetDateTime::now_utc();
    generate_pki_valid(
        dir,
        nodes,
        hosts,
        now - time::Duration::minutes(5),
        now + time::Duration::days(i64::from(days)),
    )
}

/// Like [`generate_dev_pki`] with an explicit validity window for the node and client
/// certificates (tests use it to make expired or not-yet-valid certificates).
pub fn generate_pki_valid(
    dir: &Path,
    nodes: usize,
    hosts: &[String],
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> Result<DevPki, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    if nodes == 0 || nodes > 100 {
        return Err(TlsError::Generate("nodes must be 1 to 100".into()));
    }
    if hosts.is_empty() {
        return Err(TlsError::Generate("at least one host is required".into()));
    }
    let pki = dev_pki_paths(dir, nodes);
    ensure_dir(dir)?;
    for name in dev_pki_files(nodes) {
        let path = dir.join(&name);
        if path.exists() {
            return Err(TlsError::Write {
                path,
                reason: "already exists; refusing to overwrite (use --force)".into(),
            });
        }
    }
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().map_err(gen)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(gen)?;
    ca.distinguished_name
        .push(DnType::CommonName, "ron-ledger dev CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = not_after.max(now) + time::Duration::days(365);
    let client_ca_key = KeyPair::generate().map_err(gen)?;
    let mut client_ca = ca.clone();
    client_ca.distinguished_name = rcgen::DistinguishedName::new();
    client_ca
        .distinguished_name
        .push(DnType::CommonName, "ron-ledger dev client CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(gen)?;
    let client_ca_cert = client_ca.self_signed(&client_ca_key).map_err(gen)?;
    let issuer = Issuer::new(ca, ca_key);
    let client_issuer = Issuer::new(client_ca, client_ca_key);
    write_file(&pki.ca_cert, ca_cert.pem().as_bytes())?;
    write_file(
        &dir.join("ca.key"),
        zeroize::Zeroizing::new(issuer.key().serialize_pem()).as_bytes(),
    )?;
    write_file(&pki.client_ca, client_ca_cert.pem().as_bytes())?;
    write_file(
        &dir.join("client-ca.key"),
        zeroize::Zeroizing::new(client_issuer.key().serialize_pem()).as_bytes(),
    )?;
    let leaf =
        |cn: String, sans: Vec<String>, issuer: &Issuer<'_, KeyPair>, out: &(PathBuf, PathBuf)| {
            let key = KeyPair::generate().map_err(gen)?;
            let mut params = CertificateParams::new(sans).map_err(gen)?;
            params.distinguished_name.push(DnType::CommonName, cn);
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            params.use_authority_key_identifier_extension = true;
            params.not_before = not_before;
            params.not_after = not_after;
            let cert = params.signed_by(&key, issuer).map_err(gen)?;
            write_file(&out.0, cert.pem().as_bytes())?;
            write_file(
                &out.1,
                zeroize::Zeroizing::new(key.serialize_pem()).as_bytes(),
            )
        };
    for (i, files) in pki.nodes.iter().enumerate() {
        leaf(
            format!("ron-ledger node {}", i + 1),
            hosts.to_vec(),
            &issuer,
            files,
        )?;
    }
    leaf(
        "ron-ledger client".into(),
        hosts.to_vec(),
        &client_issuer,
        &pki.client,
    )?;
    Ok(pki)
}

fn ensure_dir(dir: &Path) -> Result<(), TlsError> {
    let err = |e: std::io::Error| TlsError::Write {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    crate::security::files::write_new_private(path, bytes).map_err(|e| TlsError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["127.0.0.1".into(), "localhost".into()]
    }

    #[test]
    fn generated_pki_loads_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let pki = generate_dev_pki(&dir.path().join("pki"), 2, &hosts(), 3).unwrap();
        crate::security::tls::load(&pki.section(1).unwrap()).unwrap();
        crate::security::tls::load(&pki.section(2).unwrap()).unwrap();
        assert!(existing_dev_pki(&pki.dir, 2).is_some());
        let e = generate_dev_pki(&pki.dir, 2, &hosts(), 3).unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
    }
}
