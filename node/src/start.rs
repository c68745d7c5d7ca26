//! Starting a node: open storage (RocksDB, memory, or the simulation's), start Raft, the
//! sequencer and the checkpointer, load capability keys and TLS material (failing closed), bind
//! the client API (TCP, and a Unix socket when configured) and the peer listener, and serve both
//! through [`crate::serve`]. This is where the routers are assembled, so [`Node`] never depends
//! on its handlers.

use crate::checkpoints::{self, Checkpoints};
use crate::config::Config;
use crate::http;
use crate::node::Node;
use crate::pipeline::sequencer::Sequencer;
use crate::raft::network::Network;
use crate::raft::peer;
use crate::seam::{Clock, Connector, HttpConnector, SystemClock};
use crate::security::capabilities::Auth;
use crate::security::{tls, uds};
use crate::serve::{self, ServeOptions};
use anyhow::Context;
use openraft::{Raft, SnapshotPolicy};
use raft_store::{
    LogBackend, LogStore, MemoryLog, MemoryStateBackend, RocksBackend, StateBackend, StateMachine,
    TypeConfig,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The replaceable edges of a node: how it reaches peers, what time it is, and (for the
/// simulation) which storage it runs on.
pub struct Seams {
    /// Outgoing calls.
    pub connector: Arc<dyn Connector>,
    /// The sequencer's clock.
    pub clock: Arc<dyn Clock>,
    /// Storage to use instead of what the configuration names (RocksDB in `data_dir`, or memory
    /// with `amnesia`). The simulation passes backends that outlive a simulated crash.
    pub storage: Option<Backends>,
}

/// A log and a state backend, given to [`Node::start_on`] through [`Seams::storage`].
pub struct Backends {
    /// The Raft log.
    pub log: Arc<dyn LogBackend>,
    /// The ledger state.
    pub state: Arc<dyn StateBackend>,
}

/// A started node; dropping it does not stop it, call [`RunningNode::shutdown`].
pub struct RunningNode {
    /// The node.
    pub node: Arc<Node>,
    /// The bound client API address.
    pub api_addr: String,
    /// The bound peer address.
    pub peer_addr: String,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl RunningNode {
    /// Stop serving, then stop Raft.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for s in self.servers {
            // Idle HTTP/2 peer connections get GOAWAY; do not wait on a stuck one forever.
            let abort = s.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), s)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let _ = self.node.raft.shutdown().await;
        // Nothing is applied any more: put the state on disk, so that the next start has nothing
        // to apply again (a crash would cost only that re-apply, docs/STORAGE.md).
        let state = self.node.state.clone();
        let flushed = if state.is_blocking() {
            tokio::task::spawn_blocking(move || state.make_durable())
                .await
                .unwrap_or_else(|e| Err(raft_store::StoreError::Task(e.to_string())))
        } else {
            state.make_durable()
        };
        if let Err(e) = flushed {
            tracing::warn!(error = %e, "the state was not flushed at shutdown: the next start applies the log again");
        }
    }
}

impl Node {
    /// Open storage, start Raft, bind both listeners on TCP (and the client API on `uds.path`
    /// when set) and serve, with the production seams (HTTP/2 connector, system clock).
    ///
    /// With `[tls] enabled = true` the certificate material is loaded and checked first (start-up
    /// fails naming the file), both TCP listeners serve TLS 1.3 and peers are called over mTLS.
    pub async fn start(config: Config) -> anyhow::Result<RunningNode> {
        Self::start_storing(config, None).await
    }

    /// Like [`Node::start`], on `storage` instead of what the configuration names (`None`: the
    /// configured storage). The fault-injection test node passes a wrapped RocksDB store here.
    pub async fn start_storing(
        config: Config,
        storage: Option<Backends>,
    ) -> anyhow::Result<RunningNode> {
        let tls = if config.tls.enabled {
            Some(tls::load(&config.tls).context("tls")?)
        } else {
            None
        };
        let api = TcpListener::bind(config.api_addr)
            .await
            .with_context(|| format!("bind api_addr {}", config.api_addr))?;
        let peer = TcpListener::bind(config.peer_addr)
            .await
            .with_context(|| format!("bind peer_addr {}", config.peer_addr))?;
        // Bound before anything starts, so a bad socket path stops start-up (fail closed).
        let uds = match &config.uds.path {
            Some(path) => Some(
                uds::UdsListener::bind(path, config.uds.allowed_uids.clone(), config.uds.mode)
                    .context("bind uds.path")?,
            ),
            None => None,
        };
        let connect_timeout = Duration::from_millis(config.raft.rpc_timeout_ms);
        let connector = match &tls {
            Some(m) => HttpConnector::with_tls(connect_timeout, (*m.client).clone()),
            None => HttpConnector::new(connect_timeout),
        }
        .context("http client")?;
        let seams = Seams {
            connector: Arc::new(connector),
            clock: Arc::new(SystemClock),
            storage,
        };
        let (api, peer) = (serve::no_delay(api), serve::no_delay(peer));
        let mut running = Self::start_with(config, seams, api, peer, tls).await?;
        spawn_key_reloader(running.node.auth.clone());
        if let Some(uds) = uds {
            tracing::info!(node = running.node.id, socket = %uds.path().display(), "client api on unix socket");
            let app = http::router(running.node.clone());
            let stopped = running.stop.subscribe();
            let options = ServeOptions::from_limits(&running.node.config.limits, None, true);
            running
                .servers
                .push(serve::spawn(uds, app, options, stopped));
        }
        Ok(running)
    }

    /// Start on the given listeners and seams (the simulation's entry point). With
    /// `[tls] enabled = true` the listeners serve TLS with the configured material (the
    /// connector in `seams` is the caller's business).
    pub async fn start_on<L>(
        config: Config,
        seams: Seams,
        api_listener: L,
        peer_listener: L,
    ) -> anyhow::Result<RunningNode>
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug + std::fmt::Display,
    {
        let tls = if config.tls.enabled {
            Some(tls::load(&config.tls).context("tls")?)
        } else {
            None
        };
        Self::start_with(config, seams, api_listener, peer_listener, tls).await
    }

    /// Like [`Node::start_on`], with the TLS material already loaded (`None`: plaintext), for
    /// callers that also build their connector from it.
    pub async fn start_with<L>(
        config: Config,
        seams: Seams,
        api_listener: L,
        peer_listener: L,
        tls: Option<tls::TlsMaterial>,
    ) -> anyhow::Result<RunningNode>
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug + std::fmt::Display,
    {
        // Capability keys first: a bad key file stops start-up before Raft runs (fail closed).
        let auth = Arc::new(Auth::load(&config).context("capabilities")?);
        let rc = openraft::Config {
            cluster_name: config.cluster_id.clone(),
            // openraft 0.9 uses this one interval both to send heartbeats and as the deadline
            // of every AppendEntries call (heartbeats wait behind an append in flight). One full
            // entry (megabytes) cannot be promised to arrive within a heartbeat interval on a
            // loaded machine; a timed-out append is resent whole, forever, while the follower's
            // election timer runs out. So openraft gets the append budget here, and the node
            // sends the heartbeats itself every `heartbeat_ms` (`spawn_heartbeats`).
            heartbeat_interval: append_budget_ms(&config.raft),
            election_timeout_min: config.raft.election_timeout_min_ms,
            election_timeout_max: config.raft.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.raft.snapshot_every_entries),
            max_in_snapshot_log_to_keep: config.raft.keep_entries_after_snapshot,
            snapshot_max_chunk_size: config.raft.snapshot_chunk_bytes,
            install_snapshot_timeout: config.raft.rpc_timeout_ms,
            // Entries per append; the log store also bounds an append's bytes (one entry always
            // goes), since an entry can carry 32,760 transfers, a few MiB.
            max_payload_entries: 64,
            // Elections wait for a successful pre-vote round (`crate::raft::prevote`).
            enable_elect: false,
            ..Default::default()
        }
        .validate()
        .context("raft configuration")?;
        let rc = Arc::new(rc);

        let safe_mode_marker = (!config.amnesia)
            .then(|| config.data_dir.as_ref().map(|d| d.join("safe-mode.json")))
            .flatten();
        let backends = match seams.storage {
            Some(b) => b,
            None if config.amnesia => Backends {
                log: Arc::new(MemoryLog::new()),
                state: Arc::new(MemoryStateBackend::new()),
            },
            None => {
                let dir = config.data_dir.clone().context("data_dir")?;
                let backend = match RocksBackend::open(&dir) {
                    Ok(b) => Arc::new(b),
                    // A bad data directory (its mode, a missing parent) is a configuration
                    // error, not a fault of stored data.
                    Err(e) if e.safe_mode_reason() == "io_error" => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("open storage in {}", dir.display())))
                    }
                    Err(e) => {
                        let e = anyhow::Error::new(e)
                            .context(format!("open storage in {}", dir.display()));
                        return Err(fault_at_start(safe_mode_marker, e));
                    }
                };
                Backends {
                    log: backend.clone(),
                    state: backend,
                }
            }
        };
        crate::metrics::init();
        let (state, log) = (backends.state, backends.log);
        let book = Arc::new(
            crate::raft::incarnation::IncarnationBook::open(log.clone())
                .context("read the store's incarnation")?,
        );
        let versions = Arc::new(crate::raft::peer_versions::PeerVersions::new());
        let network = Network::new(
            seams.connector.clone(),
            Duration::from_millis(config.raft.rpc_timeout_ms),
            book.clone(),
            versions.clone(),
            seams.clock.clone(),
        );
        let raft = Raft::new(
            config.node_id,
            rc,
            network,
            LogStore::<TypeConfig, dyn LogBackend>::new(log.clone()),
            StateMachine::<TypeConfig, dyn StateBackend>::new(state.clone()),
        )
        .await
        .context("start raft");
        let raft = match raft {
            Ok(r) => r,
            Err(e) => return Err(fault_at_start(safe_mode_marker, e)),
        };
        // The voters the stored membership names, before any election can start.
        book.set_voters(voters_of(&raft));

        let signer = checkpoints::load_signer(&config).context("checkpoint signing key")?;
        let tree_size = state
            .ledger_meta()
            .context("read the applied state")?
            .tree
            .size;
        let checkpoints = Arc::new(
            Checkpoints::new(&config, signer, tree_size).context("checkpoint keys and log")?,
        );
        spawn_checkpointer(raft.clone(), state.clone(), checkpoints.clone());

        let clock = seams.clock;
        let sequencer = Sequencer::start(
            raft.clone(),
            clock.clone(),
            state.clone(),
            Duration::from_millis(config.limits.write_timeout_ms),
            config.limits.queue_requests_max,
            config.limits.entry_events_max,
            config.limits.inflight_entries_max,
        );
        let api_addr = api_listener.local_addr()?.to_string();
        let peer_addr = peer_listener.local_addr()?.to_string();
        let config_limits = config.limits.clone();
        let node = Arc::new(Node {
            id: config.node_id,
            config,
            raft,
            state,
            log,
            sequencer,
            connector: seams.connector,
            checkpoints,
            auth,
            clock,
            safe: crate::safe_mode::SafeMode::open(safe_mode_marker),
            incarnation: book,
            versions,
            read_floor: std::sync::Mutex::default(),
            leader_contact: Default::default(),
            heavy_reads: crate::node::HeavyReads::new(
                config_limits.event_streams_max,
                config_limits.exports_max,
            ),
        });
        if node.safe.fault().is_some() {
            // Recorded by an earlier run: come back in safe mode, not as if nothing happened.
            node.stop_raft();
        }
        spawn_fatal_watch(node.clone());
        let (stop, stopped) = watch::channel(false);
        let limits = &node.config.limits;
        let mut api_options =
            ServeOptions::from_limits(limits, tls.as_ref().map(|m| m.api_server.clone()), true);
        api_options.node_certs = tls.as_ref().map(|m| m.node_certs.clone());
        let peer_options =
            ServeOptions::from_limits(limits, tls.as_ref().map(|m| m.peer_server.clone()), false);
        let servers = vec![
            serve::spawn(
                api_listener,
                http::router(node.clone()),
                api_options,
                stopped.clone(),
            ),
            serve::spawn(
                peer_listener,
                peer::router(node.clone()),
                peer_options,
                stopped.clone(),
            ),
        ];
        crate::cluster_version::spawn_advancer(node.clone(), stopped.clone());
        spawn_heartbeats(
            node.raft.clone(),
            Duration::from_millis(node.config.raft.heartbeat_ms),
            stopped.clone(),
        );
        crate::raft::prevote::spawn(
            node.clone(),
            Duration::from_millis((node.config.raft.election_timeout_min_ms / 4).max(1)),
            stopped.clone(),
        );
        let every = node.config.divergence.check_interval_ms;
        if every > 0 {
            crate::divergence::spawn(node.clone(), Duration::from_millis(every), stopped);
        }
        tracing::info!(node = node.id, %api_addr, %peer_addr, "node started");
        Ok(RunningNode {
            node,
            api_addr,
            peer_addr,
            stop,
            servers,
        })
    }
}

/// Re-read the capability key file on SIGHUP (key rotation without a restart). A failed reload
/// is logged and the keys in force stay.
/// A storage fault met while starting (the store does not open, or Raft cannot read its log
/// back): recorded as safe mode with its reason where the disk allows (so it is not forgotten
/// by the next attempt) and logged at error level; start-up stops with an error naming the
/// reason and the runbook. A node never runs on a store it cannot read.
fn fault_at_start(marker: Option<std::path::PathBuf>, e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    let reason = raft_store::error::safe_mode_reason_of(&text);
    crate::safe_mode::SafeMode::open(marker).enter(crate::safe_mode::Fault {
        reason: reason.into(),
        message: text,
    });
    e.context(format!(
        "storage fault at start-up, safe mode {reason} (see the runbook for {reason} in docs/OPERATIONS.md)"
    ))
}

/// Run one node until SIGINT or SIGTERM (`ron-ledger start`): start it on `storage` (see
/// [`Node::start_storing`]), initialise a cluster of one when `init` is set and the node has never
/// been initialised, then shut down cleanly.
pub async fn run_until_signal(
    config: Config,
    init: bool,
    storage: Option<Backends>,
) -> anyhow::Result<()> {
    let running = Node::start_storing(config, storage).await?;
    if init && !running.node.raft.is_initialized().await.unwrap_or(false) {
        let members: std::collections::BTreeMap<u64, raft_store::NodeInfo> = [(
            running.node.id,
            raft_store::NodeInfo {
                api_addr: running.node.config.public_api_addr(),
                peer_addr: running.node.config.public_peer_addr(),
            },
        )]
        .into_iter()
        .collect();
        running
            .node
            .raft
            .initialize(members)
            .await
            .context("initialise single-node cluster")?;
    }
    println!(
        "ron-ledger node {} serving api on {} and peers on {}",
        running.node.id, running.api_addr, running.peer_addr
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn spawn_key_reloader(auth: Arc<Auth>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; capability keys reload only at restart");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if let Err(e) = auth.reload() {
                tracing::error!(error = %e, "capability keys not reloaded; the previous keys stay in force");
            }
        }
    });
}

/// The voters of the membership `raft` knows now.
fn voters_of(raft: &Raft<TypeConfig>) -> std::collections::BTreeSet<raft_store::NodeId> {
    raft.metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect()
}

/// When Raft stops on its own (a storage fault), count it and enter safe mode with the fault's
/// reason; count leader changes meanwhile. Ends with Raft.
fn spawn_fatal_watch(node: Arc<Node>) {
    tokio::spawn(async move {
        let mut metrics = node.raft.metrics();
        let mut leader = None;
        loop {
            let (fatal, now_leader) = {
                let m = metrics.borrow_and_update();
                (m.running_state.clone().err(), m.current_leader)
            };
            if now_leader != leader {
                if leader.is_some() {
                    crate::metrics::leader_changed();
                }
                leader = now_leader;
            }
            node.incarnation.set_voters(voters_of(&node.raft));
            if let Some(fatal) = fatal {
                let reason = match &fatal {
                    openraft::error::Fatal::Stopped => None,
                    openraft::error::Fatal::Panicked => Some("raft_panicked"),
                    other => Some(raft_store::error::safe_mode_reason_of(&other.to_string())),
                };
                if let Some(reason) = reason {
                    crate::metrics::storage_fault(reason);
                    node.enter_safe_mode(crate::safe_mode::Fault {
                        reason: reason.into(),
                        message: format!("raft stopped: {fatal}"),
                    });
                }
                return;
            }
            node.leader_contact.reported();
            if metrics.changed().await.is_err() {
                return;
            }
        }
    });
}

/// Sign checkpoints as the applied state grows (see [`Checkpoints::on_applied`]); ends with Raft.
fn spawn_checkpointer(
    raft: Raft<TypeConfig>,
    state: Arc<dyn StateBackend>,
    checkpoints: Arc<Checkpoints>,
) {
    tokio::spawn(async move {
        let mut metrics = raft.metrics();
        let mut applied = None;
        loop {
            let now = metrics.borrow_and_update().last_applied;
            if now != applied {
                applied = now;
                if let Err(e) = checkpoints.on_applied(&*state) {
                    tracing::error!(error = %e, "checkpoint");
                }
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    });
}

/// How long one AppendEntries call may take (openraft's `heartbeat_interval`, see where the
/// Raft config is built): the minimum election timeout less one heartbeat interval, and at most
/// `rpc_timeout_ms`. A follower waiting for a slow append still hears from the leader before its
/// election timer can fire.
pub fn append_budget_ms(raft: &crate::config::RaftSection) -> u64 {
    raft.election_timeout_min_ms
        .saturating_sub(raft.heartbeat_ms)
        .min(raft.rpc_timeout_ms)
        .max(raft.heartbeat_ms)
}

/// Send a heartbeat to every follower every `every` while this node leads (a no-op otherwise):
/// openraft's own timer runs at the append budget (see [`append_budget_ms`]).
fn spawn_heartbeats(
    raft: openraft::Raft<TypeConfig>,
    every: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stopped.changed() => return,
            }
            if *stopped.borrow() {
                return;
            }
            if raft.metrics().borrow().state == openraft::ServerState::Leader {
                // Refused only when leadership just moved; the next tick asks again.
                let _ = raft.trigger().heartbeat().await;
            }
        }
    });
}
