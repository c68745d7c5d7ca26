//! `ron-ledger dev`: a local cluster on loopback with embedded defaults, in one process — each
//! node with its own RocksDB directory and its own two listeners — initialised and left running
//! in the foreground until Ctrl-C.

use crate::config::{Config, LimitsSection, LogSection, RaftSection};
use crate::node::Node;
use crate::start::RunningNode;
use anyhow::Context;
use raft_store::NodeInfo;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of the dev cluster.
pub struct DevOptions {
    /// Parent of the nodes' data directories.
    pub data_dir: PathBuf,
    /// First client API port; node i listens on `base_port + i - 1`, its peer port is +100.
    pub base_port: u16,
    /// Number of nodes (1, 3 or 5).
    pub nodes: u64,
    /// Serve TLS 1.3 with mutual TLS between nodes, from a dev PKI in `<data_dir>/pki`
    /// (generated on first run, reused after). `false` is the old cleartext behaviour.
    pub tls: bool,
}

/// Host names the dev certificates are valid for.
pub const DEV_HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];

/// Where the dev cluster keeps its PKI.
pub fn pki_dir(opts: &DevOptions) -> PathBuf {
    opts.data_dir.join("pki")
}

/// Where the dev cluster keeps its capability root keys (`caps.keys`) and the tokens it mints
/// at each start (`admin.token`: every operation including admin; `writer.token`: accounts and
/// transfers).
pub fn auth_dir(opts: &DevOptions) -> PathBuf {
    opts.data_dir.join("auth")
}

/// The dev cluster's id (the audience of its tokens).
pub const DEV_CLUSTER_ID: &str = "ron-ledger-dev";

/// Lifetime of the tokens `dev` mints at start (the default cap, 30 days).
const DEV_TOKEN_TTL_SECS: u64 = ledger::capability::DEFAULT_MAX_LIFETIME_SECS;

/// Create the key ring on first run, then mint fresh `admin.token` and `writer.token` files.
fn prepare_auth(opts: &DevOptions) -> anyhow::Result<PathBuf> {
    use ledger::capability::Op;
    let dir = auth_dir(opts);
    prepare(&dir)?;
    let keys = dir.join("caps.keys");
    if !keys.exists() {
        crate::security::capabilities::create_key_file(&keys, "dev-1")?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (name, ops) in [
        ("admin.token", &Op::ALL[..]),
        (
            "writer.token",
            &[Op::CreateAccounts, Op::CreateTransfers][..],
        ),
    ] {
        let token = crate::security::capabilities::mint_from_file(
            &keys,
            DEV_CLUSTER_ID,
            ops,
            now,
            DEV_TOKEN_TTL_SECS,
        )?;
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("replace {}", path.display()))?;
        }
        crate::security::files::write_private_file(&path, &format!("{}\n", token.encode()))?;
    }
    Ok(dir)
}

/// The configuration of dev node `id`.
pub fn node_config(opts: &DevOptions, id: u64) -> Config {
    let api = opts.base_port + (id as u16 - 1);
    Config {
        node_id: id,
        cluster_id: DEV_CLUSTER_ID.into(),
        data_dir: Some(opts.data_dir.join(format!("node-{id}"))),
        amnesia: false,
        api_addr: ([127, 0, 0, 1], api).into(),
        peer_addr: ([127, 0, 0, 1], api + 100).into(),
        advertise_api_addr: None,
        advertise_peer_addr: None,
        raft: RaftSection::default(),
        limits: LimitsSection::default(),
        checkpoint: Default::default(),
        readiness: Default::default(),
        divergence: Default::default(),
        auth: crate::config::AuthSection {
            key_file: Some(auth_dir(opts).join("caps.keys")),
            ..Default::default()
        },
        seccomp: false,
        uds: Default::default(),
        tls: if opts.tls {
            crate::security::tls::TlsSection {
                enabled: true,
                cert_file: Some(pki_dir(opts).join(format!("node-{id}.pem"))),
                key_file: Some(pki_dir(opts).join(format!("node-{id}.key"))),
                ca_file: Some(pki_dir(opts).join("ca.pem")),
                client_ca_file: Some(pki_dir(opts).join("client-ca.pem")),
                ..Default::default()
            }
        } else {
            // --insecure-plaintext: the explicit waiver a node needs to run without TLS.
            crate::security::tls::TlsSection {
                mtls_required: false,
                ..Default::default()
            }
        },
        log: LogSection {
            format: "text".into(),
            level: "warn".into(),
        },
    }
}

/// Initialise a fresh cluster from node 1 (no-op when it already is), then wait for a leader.
pub async fn initialize(nodes: &[RunningNode], timeout: Duration) -> anyhow::Result<u64> {
    let members: BTreeMap<u64, NodeInfo> = nodes
        .iter()
        .map(|n| {
            (
                n.node.id,
                NodeInfo {
                    api_addr: n.node.config.public_api_addr(),
                    peer_addr: n.node.config.public_peer_addr(),
                },
            )
        })
        .collect();
    let first = &nodes[0].node;
    if first.raft.is_initialized().await.unwrap_or(false) {
        tracing::info!("cluster already initialised; resuming");
    } else if let Err(e) = first.raft.initialize(members).await {
        tracing::warn!(error = %e, "initialise");
    }
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(leader) = nodes.iter().find_map(|n| n.node.leader_id()) {
            return Ok(leader);
        }
        if Instant::now() > deadline {
            anyhow::bail!("no leader elected within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Run the dev cluster until Ctrl-C.
pub async fn run(opts: DevOptions) -> anyhow::Result<()> {
    prepare(&opts.data_dir)?;
    let pki = if opts.tls {
        let dir = pki_dir(&opts);
        let nodes = usize::try_from(opts.nodes).unwrap_or(5);
        Some(match crate::security::pki::existing_dev_pki(&dir, nodes) {
            Some(pki) => pki,
            None => {
                let hosts: Vec<String> = DEV_HOSTS.iter().map(|h| h.to_string()).collect();
                crate::security::pki::generate_dev_pki(&dir, nodes, &hosts, 90)
                    .with_context(|| {
                        format!(
                            "generate dev PKI in {} (incomplete or made for fewer nodes: remove that directory to start over)",
                            dir.display()
                        )
                    })?
            }
        })
    } else {
        None
    };
    let auth = prepare_auth(&opts)?;
    let mut nodes = Vec::new();
    for id in 1..=opts.nodes {
        let config = node_config(&opts, id);
        nodes.push(
            Node::start(config)
                .await
                .with_context(|| format!("start node {id}"))?,
        );
    }
    let leader = initialize(&nodes, Duration::from_secs(15)).await?;
    let dir = opts
        .data_dir
        .canonicalize()
        .unwrap_or(opts.data_dir.clone());
    println!(
        "ron-ledger dev cluster: {} nodes, data under {}",
        nodes.len(),
        dir.display()
    );
    let scheme = if pki.is_some() { "https" } else { "http" };
    println!("  node  api                          peer");
    for n in &nodes {
        println!(
            "  {:<4}  {scheme}://{:<20}  {}",
            n.node.id, n.api_addr, n.peer_addr
        );
    }
    println!("leader: node {leader}");
    let api = nodes[0].api_addr.clone();
    // curl and ronctl check the certificate against the dev CA; --cert/--key present the client
    // identity.
    let d = |f: &Path| {
        f.canonicalize()
            .unwrap_or(f.to_path_buf())
            .display()
            .to_string()
    };
    let (curl, tls_flags) = match &pki {
        Some(p) => {
            println!(
                "TLS 1.3 on both listeners, mutual TLS between nodes; PKI in {}",
                d(&p.dir)
            );
            let (ca, cert, key) = (d(&p.ca_cert), d(&p.client.0), d(&p.client.1));
            (
                format!("curl -s --cacert {ca} --cert {cert} --key {key}"),
                format!(" --ca {ca} --cert {cert} --key {key}"),
            )
        }
        None => ("curl -s".to_string(), String::new()),
    };
    let auth = auth.canonicalize().unwrap_or(auth);
    println!(
        "capabilities: root keys in {0}/caps.keys; fresh tokens {0}/admin.token (all operations) and {0}/writer.token (accounts, transfers), valid 30 days",
        auth.display()
    );
    let bearer = format!(
        "-H \"Authorization: Bearer $(cat {})\"",
        auth.join("writer.token").display()
    );
    println!();
    println!("try:");
    println!("  {curl} {scheme}://{api}/v1/status");
    println!(
        "  {curl} {bearer} -X POST {scheme}://{api}/v1/accounts -d '[{{\"id\":\"1\",\"ledger\":1,\"code\":1}},{{\"id\":\"2\",\"ledger\":1,\"code\":1}}]'"
    );
    println!(
        "  {curl} {bearer} -X POST {scheme}://{api}/v1/transfers -d '[{{\"id\":\"100\",\"debit_account_id\":\"1\",\"credit_account_id\":\"2\",\"amount\":\"25\",\"ledger\":1,\"code\":1}}]'"
    );
    println!("  {curl} {scheme}://{api}/v1/accounts/2");
    println!(
        "  ronctl --seeds {scheme}://{api}{tls_flags} --token-file {} cluster status",
        auth.join("admin.token").display()
    );
    println!("Ctrl-C stops every node.");
    crate::start::shutdown_signal().await;
    println!("stopping...");
    for n in nodes {
        n.shutdown().await;
    }
    println!("stopped cleanly; data kept in {}", dir.display());
    Ok(())
}

fn prepare(dir: &Path) -> anyhow::Result<()> {
    raft_store::rocks::prepare_private_dir(dir)
        .with_context(|| format!("data directory {}", dir.display()))
}
