//! `ron-ledger`: run one node (`start`), or a local cluster for trying things (`dev`).

use clap::{Parser, Subcommand};
use node::config::{self, Config};
use node::dev::{self, DevOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ron-ledger",
    version = node::version::text(),
    about = "A Raft-replicated ledger of record"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node.
    ///
    /// Example: ron-ledger start --config /etc/ron-ledger/node1.toml
    ///          ron-ledger start --amnesia --node-id 1 --api-addr 127.0.0.1:7001 --peer-addr 127.0.0.1:7101 --set auth.key_file=pki/caps.keys --set tls.mtls_required=false
    Start {
        /// TOML configuration file (see deploy/node.sample.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides `node_id`.
        #[arg(long)]
        node_id: Option<u64>,
        /// Overrides `data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Overrides `api_addr`.
        #[arg(long)]
        api_addr: Option<String>,
        /// Overrides `peer_addr`.
        #[arg(long)]
        peer_addr: Option<String>,
        /// Keep everything in memory (single node; implies --init).
        #[arg(long)]
        amnesia: bool,
        /// Initialise a single-node cluster if this node has never been initialised.
        #[arg(long)]
        init: bool,
        /// Any other key, dotted for sections: --set raft.heartbeat_ms=50
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Install the seccomp deny-list before starting (sets `seccomp = true`); refuse to start
        /// if it cannot be installed.
        #[arg(long)]
        seccomp: bool,
    },
    /// Start a local 3-node cluster on loopback and keep it in the foreground until Ctrl-C.
    ///
    /// Example: ron-ledger dev --data-dir ./ron-ledger-dev
    Dev {
        /// Where the nodes keep their data (one subdirectory each).
        #[arg(long, default_value = "ron-ledger-dev")]
        data_dir: PathBuf,
        /// Client API port of node 1; node i uses base+i-1, peer ports are +100.
        #[arg(long, default_value_t = 7001, value_parser = clap::value_parser!(u16).range(1024..=65000))]
        base_port: u16,
        /// Number of nodes.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=5))]
        nodes: u64,
        /// Install the seccomp deny-list before starting the cluster.
        #[arg(long)]
        seccomp: bool,
        /// Serve cleartext HTTP without TLS (the default is TLS 1.3 + mTLS from a dev PKI in
        /// <data-dir>/pki).
        #[arg(long)]
        insecure_plaintext: bool,
    },
    /// Restore a backup (`ronctl backup`) into this node's data directory, which must be absent
    /// or empty. Every file is checked against the manifest, the state is installed into a
    /// staging directory, its root recomputed from the leaves and its digest from the state and
    /// both compared with the manifest; only then is it moved into place. Nothing is written
    /// into the data directory when any check fails.
    ///
    /// --as-seed keeps the backup's membership: start the node, then add it as a learner
    /// (`ronctl cluster add-learner`); it catches up from the leader's log.
    /// --new-cluster makes this node the only voter of a new cluster (disaster recovery): start
    /// it, then add the other nodes as learners and promote them.
    ///
    /// Example: ron-ledger restore --config /etc/ron-ledger/node1.toml --backup /backups/b1 --new-cluster
    #[command(group(
        clap::ArgGroup::new("mode")
            .required(true)
            .args(["as_seed", "new_cluster"])
    ))]
    Restore {
        /// TOML configuration file of the node (as for `start`): data_dir, node_id, cluster_id
        /// and addresses come from it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The backup directory.
        #[arg(long)]
        backup: PathBuf,
        /// Overrides `data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Any other key, dotted for sections (as for `start`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Keep the backup's membership (seeding a member of the running cluster).
        #[arg(long)]
        as_seed: bool,
        /// Make this node the only voter of a new membership (disaster recovery).
        #[arg(long)]
        new_cluster: bool,
    },
    /// Create a development PKI: a CA, one certificate per node and a client/admin identity.
    ///
    /// Example: ron-ledger certs --out ./pki --nodes 3 --hosts 127.0.0.1,localhost --days 90
    Certs {
        /// Directory to write into (created 0700; files are written 0600).
        #[arg(long)]
        out: PathBuf,
        /// Number of node certificates.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
        nodes: u64,
        /// Host names and IPs the certificates are valid for (comma-separated).
        #[arg(long, default_value = "127.0.0.1,localhost", value_delimiter = ',')]
        hosts: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        /// Replace existing certificate files (an existing caps.keys is always kept).
        #[arg(long)]
        force: bool,
    },
    /// Ask this node's own client API whether it is ready (or only alive); exit 0 if it is.
    ///
    /// For container health checks: reads the same configuration as `start`.
    /// Example: ron-ledger probe --config /etc/ron-ledger/node.toml
    Probe {
        /// TOML configuration file (as for `start`); `RON_LEDGER_*` variables apply too.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Any other key, dotted for sections (as for `start`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Ask `/healthz` (the process answers) instead of `/readyz`.
        #[arg(long)]
        alive: bool,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Install the seccomp filter in this process, check that exec is denied and that ordinary
    /// work still runs, print one JSON line; exit 0 only if all of that held.
    #[command(hide = true)]
    SeccompSelftest,
}

/// `--set KEY=VALUE` arguments as configuration overrides; a malformed one is a usage error
/// (exit 2, said on stderr).
fn set_overrides(set: &[String]) -> Result<Vec<(String, String)>, ExitCode> {
    set.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => {
                eprintln!("ron-ledger: --set takes KEY=VALUE, got {kv:?}");
                Err(ExitCode::from(2))
            }
        })
        .collect()
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        // The request span carries `corr_id` and `peer`: every line logged while serving a
        // request names both.
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("ron-ledger: cannot start the runtime: {e}");
            None
        }
    }
}

/// Install the seccomp filter while this is still the only thread, so every thread the runtime
/// starts inherits it. Fails closed: `false` means do not start.
fn install_seccomp() -> bool {
    match node::security::seccomp::install() {
        Ok(()) => {
            tracing::info!(
                arch = std::env::consts::ARCH,
                denied = ?node::security::seccomp::DENIED_SYSCALLS,
                raw_sockets = "denied",
                "seccomp filter installed"
            );
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "seccomp requested but not installed; refusing to start");
            eprintln!("ron-ledger: seccomp requested but not installed, refusing to start: {e}");
            false
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Certs {
            out,
            nodes,
            hosts,
            days,
            force,
        } => {
            let nodes = usize::try_from(nodes).unwrap_or(usize::MAX);
            certs(&out, nodes, &hosts, days, force)
        }
        Command::Start {
            config,
            node_id,
            data_dir,
            api_addr,
            peer_addr,
            amnesia,
            init,
            set,
            seccomp,
        } => {
            let mut overrides = match set_overrides(&set) {
                Ok(o) => o,
                Err(code) => return code,
            };
            let mut push = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    overrides.push((k.to_string(), v));
                }
            };
            push("node_id", node_id.map(|n| n.to_string()));
            push("data_dir", data_dir.map(|d| d.display().to_string()));
            push("api_addr", api_addr);
            push("peer_addr", peer_addr);
            push("amnesia", amnesia.then(|| "true".to_string()));
            push("seccomp", seccomp.then(|| "true".to_string()));
            let config = match config::load(config.as_deref(), std::env::vars(), &overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("ron-ledger: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(&config);
            if config.seccomp && !install_seccomp() {
                return ExitCode::from(1);
            }
            let Some(runtime) = runtime() else {
                return ExitCode::from(1);
            };
            let init = init || config.amnesia;
            match runtime.block_on(node::start::run_until_signal(config, init, None)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ron-ledger: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Dev {
            data_dir,
            base_port,
            nodes,
            seccomp,
            insecure_plaintext,
        } => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                        tracing_subscriber::EnvFilter::new("warn,openraft=error")
                    }),
                )
                .try_init();
            if seccomp && !install_seccomp() {
                return ExitCode::from(1);
            }
            let Some(runtime) = runtime() else {
                return ExitCode::from(1);
            };
            match runtime.block_on(dev::run(DevOptions {
                data_dir,
                base_port,
                nodes,
                tls: !insecure_plaintext,
            })) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ron-ledger dev: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Probe {
            config,
            set,
            alive,
            timeout_ms,
        } => {
            let overrides = match set_overrides(&set) {
                Ok(o) => o,
                Err(code) => return code,
            };
            let config = match config::load(config.as_deref(), std::env::vars(), &overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("ron-ledger probe: {e}");
                    return ExitCode::from(2);
                }
            };
            let Some(runtime) = runtime() else {
                return ExitCode::from(1);
            };
            let check = if alive {
                node::probe::Check::Alive
            } else {
                node::probe::Check::Ready
            };
            let timeout = std::time::Duration::from_millis(timeout_ms);
            match runtime.block_on(node::probe::probe(&config, check, timeout)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ron-ledger probe: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Restore {
            config,
            backup,
            data_dir,
            set,
            as_seed: _,
            new_cluster,
        } => {
            let mut overrides = match set_overrides(&set) {
                Ok(o) => o,
                Err(code) => return code,
            };
            if let Some(d) = data_dir {
                overrides.push(("data_dir".into(), d.display().to_string()));
            }
            let config = match config::load(config.as_deref(), std::env::vars(), &overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("ron-ledger restore: {e}");
                    return ExitCode::from(2);
                }
            };
            restore(&config, &backup, new_cluster)
        }
        Command::SeccompSelftest => {
            let report = node::security::seccomp::selftest();
            match serde_json::to_string(&report) {
                Ok(line) => println!("{line}"),
                Err(e) => {
                    eprintln!("ron-ledger seccomp-selftest: {e}");
                    return ExitCode::from(1);
                }
            }
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn certs(
    out: &std::path::Path,
    nodes: usize,
    hosts: &[String],
    days: u32,
    force: bool,
) -> ExitCode {
    let keys = out.join("caps.keys");
    // The capability key ring is not part of the PKI: renewing certificates (with or without
    // --force) keeps an existing one, since a new root key would void every token minted.
    let keep_keys = keys.exists();
    if force {
        let files = node::security::pki::dev_pki_files(nodes)
            .into_iter()
            .map(|n| out.join(n));
        for path in files {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("ron-ledger certs: cannot remove {}: {e}", path.display());
                    return ExitCode::from(1);
                }
            }
        }
    }
    match node::security::pki::generate_dev_pki(out, nodes, hosts, days)
        .map_err(anyhow::Error::from)
        .and_then(|pki| {
            if keep_keys {
                Ok(pki)
            } else {
                node::security::capabilities::create_key_file(&keys, "k1").map(|()| pki)
            }
        }) {
        Ok(pki) => {
            println!("wrote a development PKI to {}:", pki.dir.display());
            for name in node::security::pki::dev_pki_files(nodes) {
                println!("  {name}");
            }
            if keep_keys {
                println!("  kept the existing caps.keys (capability key ring: tokens stay valid)");
            } else {
                println!(
                    "  caps.keys (capability root key, KID k1: [auth] key_file on every node)"
                );
            }
            println!(
                "mint tokens with: ronctl cap mint --keys {} --cluster-id <cluster_id> --ops admin",
                keys.display()
            );
            println!("node N: [tls] enabled = true, cert_file = node-N.pem, key_file = node-N.key, ca_file = ca.pem");
            println!("keep ca.key offline; it can mint identities for the whole cluster");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ron-ledger certs: {e}");
            ExitCode::from(1)
        }
    }
}

/// `ron-ledger restore`: exit 0 restored, 1 refused (the message names what is wrong), 2 usage.
fn restore(config: &Config, backup: &std::path::Path, new_cluster: bool) -> ExitCode {
    use raft_store::backup::RestoreMode;
    let Some(target) = config.data_dir.clone().filter(|_| !config.amnesia) else {
        eprintln!(
            "ron-ledger restore: the node has no data_dir (amnesia keeps nothing to restore into)"
        );
        return ExitCode::from(2);
    };
    let mode = if new_cluster {
        RestoreMode::NewCluster {
            node_id: config.node_id,
            node: raft_store::NodeInfo {
                api_addr: config.public_api_addr(),
                peer_addr: config.public_peer_addr(),
            },
        }
    } else {
        RestoreMode::Seed {
            node_id: config.node_id,
        }
    };
    let started = std::time::Instant::now();
    match raft_store::backup::restore(backup, &target, &config.cluster_id, mode) {
        Ok(m) => {
            println!(
                "restored {} into {}: cluster {}, last log id {}, tree size {}, root {}, state digest {} (checked; {} ms){}",
                backup.display(),
                target.display(),
                m.cluster_id,
                m.last_log_id
                    .map(|l| format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index))
                    .unwrap_or_else(|| "none".into()),
                m.tree_size,
                m.root,
                m.state_digest,
                started.elapsed().as_millis(),
                if new_cluster {
                    format!("; node {} is the only voter of a new membership: start it, then add the others as learners and promote them", config.node_id)
                } else {
                    "; start the node, then add it as a learner".to_string()
                },
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ron-ledger restore: refused: {e}");
            ExitCode::from(1)
        }
    }
}
