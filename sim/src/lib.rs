//! Deterministic fault simulation of ron-ledger.
//!
//! A run builds a 3- or 5-node cluster of the **real** node — ingress, prevalidation, forwarding,
//! the sequencer, openraft and raft-store — on turmoil's simulated network and clock, with clients
//! using the real SDK. The run's seed decides everything random: turmoil's network, openraft's
//! election timeouts (through [`raft_store::runtime::seed_thread_rng`]), the SDK's backoff
//! jitter, the workload and the fault schedule. A failing seed replays exactly — in a fresh
//! process, as its replay command runs it: the trace also depends on tokio's process-wide task
//! ids (see `docs/TESTING.md`, "One run per process").
//!
//! With [`Scenario::tls`] every connection — client to node, node to node, forwarding and
//! proxying — runs TLS 1.3 with mutual TLS, on a development PKI generated for the run, exactly
//! as in production. The handshakes' randomness and the certificates' keys come from the
//! operating system, not the seed (see `docs/TESTING.md` on what that means for replays).
//!
//! Checkers run during the run (cheap ones, every 20 ms of simulated time on every node) and
//! after it, once the faults are healed and the cluster has converged. See `docs/TESTING.md`.

pub mod check;
pub mod net;
pub mod state;
pub mod storage;
pub mod workload;

use ledger::Hash;
use node::config::{AuthSection, LimitsSection, LogSection, RaftSection};
use node::seam::Clock;
use node::start::{Backends, Seams};
use node::{Config, Node};
use openraft::ServerState;
use raft_store::{NodeInfo, StateBackend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use state::SimState;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};
use storage::SimLog;
use workload::History;

/// Port of every node's client API.
pub const API_PORT: u16 = 7000;
/// Port of every node's peer listener.
pub const PEER_PORT: u16 = 7100;

/// A bug the simulation can plant, to show its checkers catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// The log acknowledges appends before they are synced.
    AckBeforeSync,
    /// After a snapshot install, the next entry's balance changes are applied twice (the
    /// simulation's state wrapper, [`state::SimState`], does it; product code is untouched).
    DoubleApplyAfterInstall,
}

impl Bug {
    /// Every plantable bug.
    pub const ALL: [Bug; 2] = [Bug::AckBeforeSync, Bug::DoubleApplyAfterInstall];

    /// The `--plant` name.
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeSync => "ack-before-sync",
            Bug::DoubleApplyAfterInstall => "double-apply-after-install",
        }
    }

    /// The bug named `name`.
    pub fn from_name(name: &str) -> Option<Bug> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// One simulated run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Decides everything random.
    pub seed: u64,
    /// Cluster size (3 or 5): the voters the cluster is initialised with.
    pub nodes: usize,
    /// Membership changes under load: a 3-voter cluster on five hosts adds the other two as
    /// learners, promotes them (3 -> 5), then removes two voters, the leader among them
    /// (5 -> 3); each removed node is then shut down for good.
    pub membership: bool,
    /// `raft.snapshot_every_entries` (small, so that snapshots are built, sent and installed
    /// while followers are cut off; `keep_entries_after_snapshot` is a quarter of it).
    pub snapshot_every: u64,
    /// Concurrent SDK clients.
    pub clients: usize,
    /// Simulated time of client traffic (faults are injected during it).
    pub traffic: Duration,
    /// Inject faults.
    pub faults: bool,
    /// A planted bug, if any.
    pub bug: Option<Bug>,
    /// Every connection over TLS 1.3 with mutual TLS (a dev PKI generated for the run).
    pub tls: bool,
    /// A third of the way into the traffic, change the leader's ledger state behind Raft's back
    /// (an extra event, as a bad disk or an apply bug would): the run passes only if that node,
    /// and no other, enters safe mode with `root_mismatch`, the others keep acknowledging
    /// writes, and they converge with every checker passing.
    pub corrupt_leader: bool,
}

impl Scenario {
    /// The standard scenario for `seed`: every fourth seed runs 5 nodes (seeds ≡ 3 mod 4), every
    /// fourth changes its membership 3 -> 5 -> 3 (seeds ≡ 1 mod 4), and every third snapshots
    /// every 40 entries instead of 150.
    pub fn for_seed(seed: u64) -> Self {
        Self {
            seed,
            nodes: if seed % 4 == 3 { 5 } else { 3 },
            membership: seed % 4 == 1,
            snapshot_every: if seed.is_multiple_of(3) { 40 } else { 150 },
            clients: 3,
            traffic: Duration::from_secs(12),
            faults: true,
            bug: None,
            tls: false,
            corrupt_leader: false,
        }
    }

    /// The `sim` binary's arguments that run exactly this scenario.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--seed".to_string(),
            self.seed.to_string(),
            "--nodes".into(),
            self.nodes.to_string(),
            "--clients".into(),
            self.clients.to_string(),
            "--traffic-secs".into(),
            self.traffic.as_secs().to_string(),
            "--membership".into(),
            self.membership.to_string(),
            "--snapshot-every".into(),
            self.snapshot_every.to_string(),
        ];
        if !self.faults {
            args.push("--no-faults".into());
        }
        if let Some(bug) = self.bug {
            args.extend(["--plant".into(), bug.name().into()]);
        }
        if self.tls {
            args.push("--tls".into());
        }
        if self.corrupt_leader {
            args.push("--corrupt-leader".into());
        }
        args
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        format!("cargo run -p sim --release -- {}", self.args().join(" "))
    }
}

/// What a passing run did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The scenario.
    pub seed: u64,
    /// Transfers acknowledged as applied.
    pub acked: usize,
    /// Transfers acknowledged as rejected.
    pub rejected: usize,
    /// Calls with an unknown outcome.
    pub unknown: u64,
    /// Linearizable reads checked.
    pub reads: u64,
    /// Raft index every node converged on.
    pub applied: u64,
    /// Distinct terms that had a leader.
    pub terms: usize,
    /// Faults injected, in order.
    pub faults: Vec<String>,
    /// Final Merkle root.
    pub root: Hash,
    /// Snapshots installed, over all nodes.
    pub installs: u64,
    /// Applied entries power losses took from the nodes' states (re-applied from the log).
    pub state_entries_lost: u64,
    /// How many events got each result code (what the checkers saw).
    pub results: BTreeMap<String, u64>,
    /// A digest of the run's observable trace; equal for two runs of one seed.
    pub fingerprint: String,
}

/// A failed run.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The scenario, to replay.
    pub scenario: Scenario,
    /// What went wrong.
    pub what: String,
    /// The faults injected before it.
    pub faults: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {} failed: {}", self.scenario.seed, self.what)?;
        writeln!(f, "  faults: {}", self.faults.join("; "))?;
        write!(f, "  replay: {}", self.scenario.replay_command())
    }
}

/// State shared by the simulated hosts and the driver.
#[derive(Default)]
pub struct Shared {
    history: Mutex<History>,
    observed: Mutex<check::Observed>,
    violations: Mutex<Vec<String>>,
    /// The node whose state the run corrupted (its roots are exempt from the root checker).
    corrupted: Mutex<Option<u64>>,
    /// Every (node, safe-mode reason) reported.
    safe_modes: Mutex<std::collections::BTreeSet<(u64, String)>>,
    auth: Option<SimAuth>,
    client_tls: net::SimTls,
    /// Nodes that have joined the cluster (reported a membership).
    joined: Mutex<BTreeSet<u64>>,
    /// Nodes removed from the cluster, to be shut down for good by the driver.
    removed: Mutex<Vec<u64>>,
    /// What the operator did, for the driver to log with the faults.
    notes: Mutex<Vec<String>>,
    /// Each node's clock offset from the simulated wall clock, in milliseconds (clock faults).
    skews: Vec<Arc<AtomicI64>>,
    /// Which nodes are up (not crashed, not shut down), for the probes.
    up: Vec<Arc<AtomicBool>>,
}

/// The run's capability root key (a key file the nodes load, as in production) and the token
/// the clients write with, both following from the seed; and with TLS on, the run's dev PKI
/// (`ron-ledger certs`' generator: a CA, a certificate per node and a client identity, every
/// one naming the hosts `n1`..`nN`, with fresh random keys).
pub struct SimAuth {
    dir: std::path::PathBuf,
    key_file: std::path::PathBuf,
    token: String,
    /// The second holder's reversal approval (dual control).
    approval: String,
    /// The operator's admin token (membership changes).
    admin: String,
    key: ledger::capability::RootKey,
    pki: Option<node::security::pki::DevPki>,
}

/// How often the operating system writes dirty pages back (Linux's `dirty_writeback_centisecs`
/// is 5 s): what a node loses in a crash is what it wrote, unsynced, since.
const WRITE_BACK: Duration = Duration::from_secs(5);

/// Simulated time starts here (seconds since the Unix epoch).
const EPOCH_SECS: u64 = 1_780_000_000;

impl SimAuth {
    fn new(seed: u64, tls_nodes: Option<usize>) -> Result<Self, String> {
        static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut rng = StdRng::seed_from_u64(seed ^ 0x6361_7073);
        let key: [u8; 32] = rng.gen();
        let root = ledger::capability::RootKey::new("sim-k1", key).map_err(|e| e.to_string())?;
        let mut ring = ledger::capability::KeyRing::default();
        ring.insert(root, false).map_err(|e| e.to_string())?;
        let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "ron-ledger-sim-{}-{seed}-{run}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let key_file = dir.join("caps.keys");
        let _ = std::fs::remove_file(&key_file);
        node::security::files::write_private_file(&key_file, &ring.to_json())
            .map_err(|e| format!("{e:#}"))?;
        let key = ring.get("sim-k1").ok_or("sim key missing")?;
        use ledger::capability::{holder_token_id, Caveat, Op};
        let mut mint = |holder: &str, ops: &[Op]| {
            test_support::tokens::try_mint(
                key,
                holder_token_id(holder, rng.gen()),
                EPOCH_SECS,
                ledger::capability::DEFAULT_MAX_LIFETIME_SECS,
                "sim",
                vec![Caveat::Ops(ops.iter().copied().collect())],
            )
            .map(|t| t.encode())
            .map_err(|e| e.to_string())
        };
        // The clients' token also allows reversals, approved by a second holder's token.
        let token = mint(
            "sim-clients",
            &[Op::CreateAccounts, Op::CreateTransfers, Op::Reverse],
        )?;
        let approval = mint("sim-approver", &[Op::Reverse])?;
        let admin = mint("sim-operator", &[Op::Admin])?;
        let key = key.clone();
        let pki = match tls_nodes {
            Some(nodes) => {
                let hosts: Vec<String> = (1..=nodes).map(|id| format!("n{id}")).collect();
                let pki = node::security::pki::generate_dev_pki(&dir.join("tls"), nodes, &hosts, 2)
                    .map_err(|e| e.to_string())?;
                Some(pki)
            }
            None => None,
        };
        Ok(Self {
            dir,
            key_file,
            token,
            approval,
            admin,
            key,
            pki,
        })
    }

    /// Node `id`'s `[tls]` section (TLS off without a PKI).
    fn tls_section(&self, id: u64) -> node::security::tls::TlsSection {
        self.pki
            .as_ref()
            .and_then(|p| p.section(usize::try_from(id).ok()?))
            .unwrap_or_default()
    }

    /// How the SDK connects: with TLS on, trusting the run's CA and presenting its client
    /// certificate.
    fn client_tls(&self) -> Result<net::SimTls, String> {
        let Some(pki) = &self.pki else {
            return Ok(net::SimTls::plain());
        };
        let (cert, key) = &pki.client;
        let tls = ron_ledger_client::ClientTls::from_files(&pki.ca_cert, Some((cert, key)))?;
        Ok(net::SimTls::with(tls.rustls_config()?))
    }

    /// The token clients send.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A token for `accounts.create` valid (by the node's clock) from `not_before` to
    /// `expires_at`, unix seconds: for probing which clock a node checks validity with.
    pub fn windowed_token(&self, id: [u8; 16], not_before: u64, expires_at: u64) -> String {
        use ledger::capability::{Caveat, Op};
        let issued_at = not_before.saturating_sub(10);
        test_support::tokens::try_mint(
            &self.key,
            id,
            issued_at,
            expires_at - issued_at,
            "sim",
            vec![
                Caveat::NotBefore(not_before),
                Caveat::Ops([Op::CreateAccounts].into_iter().collect()),
            ],
        )
        .map(|t| t.encode())
        .unwrap_or_default()
    }
}

impl Drop for SimAuth {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Shared {
    /// The token clients write with.
    pub fn token(&self) -> Option<&str> {
        self.auth.as_ref().map(SimAuth::token)
    }

    /// How the clients connect (plaintext or TLS).
    pub fn client_tls(&self) -> net::SimTls {
        self.client_tls.clone()
    }

    /// The second holder's approval for reversals.
    pub fn approval(&self) -> Option<&str> {
        self.auth.as_ref().map(|a| a.approval.as_str())
    }

    /// The operator's admin token.
    pub fn admin_token(&self) -> Option<&str> {
        self.auth.as_ref().map(|a| a.admin.as_str())
    }

    /// The client history.
    pub fn history(&self) -> MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn observed(&self) -> MutexGuard<'_, check::Observed> {
        self.observed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Node `node` was removed from the cluster: the driver shuts it down.
    pub fn removed(&self, node: u64) {
        self.removed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(node);
    }

    /// Something the operator did, for the run's log.
    pub fn note(&self, what: String) {
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }

    /// The current leader as last observed.
    pub fn leader(&self) -> Option<u64> {
        self.observed().leaders.last_key_value().map(|(_, n)| *n)
    }

    /// The nodes that have joined the cluster (reported a membership), removed ones included.
    pub fn joined(&self) -> BTreeSet<u64> {
        self.joined
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Node `id`'s clock offset, in milliseconds.
    pub fn skew_ms(&self, id: u64) -> i64 {
        self.skews
            .get(id as usize - 1)
            .map_or(0, |s| s.load(Ordering::SeqCst))
    }

    /// Whether node `id` is up.
    pub fn is_up(&self, id: u64) -> bool {
        self.up
            .get(id as usize - 1)
            .is_some_and(|u| u.load(Ordering::SeqCst))
    }

    /// The node whose state the run corrupted, if any.
    pub fn corrupted(&self) -> Option<u64> {
        *self.corrupted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A node reports that it is in safe mode for `reason`. Expected: `io_error` or
    /// `disk_full` (the schedule injects failing disks) and `root_mismatch` from the node whose
    /// state the run corrupted; anything else is a violation (a false alarm of the divergence
    /// check, or a fault the run did not inject).
    fn safe_mode(&self, node: u64, reason: String) {
        let new = self
            .safe_modes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((node, reason.clone()));
        let expected = matches!(reason.as_str(), "io_error" | "disk_full")
            || (reason == "root_mismatch" && self.corrupted() == Some(node));
        if new && !expected {
            self.violation(format!("node {node} entered safe mode: {reason}"));
        }
    }

    /// Record a checker failure.
    pub fn violation(&self, what: String) {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }

    /// Whether any checker failed.
    pub fn failed(&self) -> bool {
        !self
            .violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    fn first_violation(&self) -> Option<String> {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first()
            .cloned()
    }
}

/// A node's clock: turmoil's simulated wall clock plus the node's offset, which the clock faults
/// set (skew) and change at once (jumps, forwards and backwards).
struct SimClock(Arc<AtomicI64>);

impl Clock for SimClock {
    fn now_ns(&self) -> u64 {
        let since = turmoil::since_epoch().unwrap_or_default();
        let ns = i128::try_from(since.as_nanos()).unwrap_or(i128::MAX);
        let skewed = ns + i128::from(self.0.load(Ordering::SeqCst)) * 1_000_000;
        u64::try_from(skewed.max(0)).unwrap_or(u64::MAX)
    }
}

/// One node's storage, which outlives its simulated crashes.
pub struct Slot {
    /// Node id (1-based).
    pub id: u64,
    /// Host name.
    pub name: String,
    /// The log disk.
    pub log: Arc<SimLog>,
    /// The ledger state.
    pub state: Arc<SimState>,
    /// The node's clock offset, in milliseconds.
    pub skew: Arc<AtomicI64>,
    /// Whether the host is up.
    pub up: Arc<AtomicBool>,
    /// Power losses so far: after one, the node's state may be behind what it reported.
    power_losses: AtomicU64,
}

impl Slot {
    fn new(id: u64, scenario: &Scenario) -> Self {
        let log = Arc::new(SimLog::new(scenario.bug == Some(Bug::AckBeforeSync)));
        Slot {
            id,
            name: format!("n{id}"),
            log: log.clone(),
            state: Arc::new(SimState::new(
                log,
                scenario.bug == Some(Bug::DoubleApplyAfterInstall),
            )),
            skew: Arc::default(),
            up: Arc::new(AtomicBool::new(true)),
            power_losses: AtomicU64::new(0),
        }
    }
}

impl Slot {
    /// Power loss on this node's disk: the log's and the state's unsynced writes are gone.
    pub fn power_loss(&self) {
        self.log.crash();
        self.state.crash();
        self.power_losses.fetch_add(1, Ordering::SeqCst);
    }

    /// How many power losses this node has had.
    pub fn power_losses(&self) -> u64 {
        self.power_losses.load(Ordering::SeqCst)
    }
}

fn node_config(
    id: u64,
    snapshot_every: u64,
    cluster: &str,
    key_file: Option<std::path::PathBuf>,
    tls: node::security::tls::TlsSection,
) -> Config {
    Config {
        node_id: id,
        cluster_id: cluster.into(),
        data_dir: None,
        amnesia: true,
        api_addr: ([0, 0, 0, 0], API_PORT).into(),
        peer_addr: ([0, 0, 0, 0], PEER_PORT).into(),
        advertise_api_addr: Some(format!("n{id}:{API_PORT}")),
        advertise_peer_addr: Some(format!("n{id}:{PEER_PORT}")),
        raft: RaftSection {
            heartbeat_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1_000,
            // Small, so that snapshots are built, sent and installed in most runs.
            snapshot_every_entries: snapshot_every,
            keep_entries_after_snapshot: snapshot_every / 4,
            rpc_timeout_ms: 1_000,
            snapshot_chunk_bytes: 16 * 1024,
        },
        limits: LimitsSection {
            write_timeout_ms: 4_000,
            ..LimitsSection::default()
        },
        log: LogSection::default(),
        checkpoint: Default::default(),
        readiness: Default::default(),
        divergence: node::config::DivergenceSection {
            check_interval_ms: 500,
        },
        auth: AuthSection {
            enabled: key_file.is_some(),
            key_file,
            ..AuthSection::default()
        },
        seccomp: false,
        uds: Default::default(),
        tls,
    }
}

/// The software of node host `slot`: start the node on the simulated listeners, initialise the
/// cluster on node 1's first boot, then observe it for the checkers.
async fn node_host(
    slot: Arc<Slot>,
    members: BTreeMap<u64, NodeInfo>,
    shared: Arc<Shared>,
    snapshot_every: u64,
) -> turmoil::Result {
    let api = net::SimListener(turmoil::net::TcpListener::bind(("0.0.0.0", API_PORT)).await?);
    let peer = net::SimListener(turmoil::net::TcpListener::bind(("0.0.0.0", PEER_PORT)).await?);
    let tls = shared
        .auth
        .as_ref()
        .map(|a| a.tls_section(slot.id))
        .unwrap_or_default();
    // Loaded on every boot, once for the listeners and the outgoing calls, which present the
    // node's certificate as production's connector does.
    let material = if tls.enabled {
        Some(node::security::tls::load(&tls)?)
    } else {
        None
    };
    let connector = match &material {
        Some(m) => net::SimTls::with((*m.client).clone()),
        None => net::SimTls::plain(),
    };
    let seams = Seams {
        connector: Arc::new(net::SimConnector(connector)),
        clock: Arc::new(SimClock(slot.skew.clone())),
        storage: Some(Backends {
            log: slot.log.clone(),
            state: slot.state.clone(),
        }),
    };
    let key_file = shared.auth.as_ref().map(|a| a.key_file.clone());
    let config = node_config(slot.id, snapshot_every, "sim", key_file, tls);
    let running = match Node::start_with(config, seams, api, peer, material).await {
        Ok(running) => running,
        Err(e) if slot.log.is_failing() => {
            // The disk failed again as the node came back (seed 3392): a node never starts on a
            // store it cannot write, so it stays down in safe mode until the fault's heal
            // replaces the disk and restarts it. That is the product failing closed, not a
            // simulation error.
            let reason = raft_store::error::safe_mode_reason_of(&format!("{e:#}"));
            shared.safe_mode(slot.id, reason.to_string());
            return std::future::pending().await;
        }
        Err(e) => return Err(e.to_string().into()),
    };
    let raft = running.node.raft.clone();
    if slot.id == 1 && !raft.is_initialized().await.unwrap_or(true) {
        let _ = raft.initialize(members).await;
    }
    let (mut since_flush, mut since_check) = (Duration::ZERO, Duration::ZERO);
    let tick = Duration::from_millis(20);
    loop {
        tokio::time::sleep(tick).await;
        since_flush += tick;
        since_check += tick;
        if since_flush >= WRITE_BACK {
            // The operating system writes dirty pages back now and then.
            slot.log.flush();
            since_flush = Duration::ZERO;
        }
        let periodic = since_check >= Duration::from_millis(500);
        if periodic {
            since_check = Duration::ZERO;
        }
        if let Some(f) = running.node.safe.fault() {
            shared.safe_mode(slot.id, f.reason);
        }
        let m = raft.metrics().borrow().clone();
        let leader_term = (m.state == ServerState::Leader).then_some(m.current_term);
        let (applied, meta) = slot.state.applied_with_meta()?;
        let applied = applied.last_applied.map_or(0, |l| l.index);
        shared.observe(slot.id, slot.power_losses(), leader_term, applied, &meta);
        if m.membership_config.log_id().is_some() {
            shared
                .joined
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(slot.id);
        }
        if periodic && shared.corrupted() != Some(slot.id) {
            // The state checkers, on this node's state as it is now (see `check`).
            let found =
                check::acked_writes(&slot, &shared, false).and_then(|()| check::balances(&slot));
            if let Err(e) = found {
                shared.violation(e);
            }
        }
    }
}

/// Run one scenario to the end: traffic with faults, healing, convergence, final checks.
/// Two runs of a scenario give the same trace when each is the only run of a fresh process, as
/// with `sim --seed N` ([`Scenario::replay_command`]); see `docs/TESTING.md`.
pub fn run(scenario: &Scenario) -> Result<Report, Failure> {
    raft_store::runtime::seed_thread_rng(Some(scenario.seed));
    let setup = |e: String| Failure {
        scenario: scenario.clone(),
        what: format!("capability key / TLS set-up: {e}"),
        faults: Vec::new(),
    };
    if scenario.tls {
        node::security::tls::install_crypto_provider();
    }
    let hosts = if scenario.membership {
        5
    } else {
        scenario.nodes
    };
    let auth = SimAuth::new(scenario.seed, scenario.tls.then_some(hosts)).map_err(setup)?;
    let client_tls = auth.client_tls().map_err(setup)?;
    let slots: Vec<Arc<Slot>> = (1..=hosts as u64)
        .map(|id| Arc::new(Slot::new(id, scenario)))
        .collect();
    let shared = Arc::new(Shared {
        auth: Some(auth),
        client_tls,
        skews: slots.iter().map(|s| s.skew.clone()).collect(),
        up: slots.iter().map(|s| s.up.clone()).collect(),
        ..Shared::default()
    });
    let mut sim = turmoil::Builder::new()
        .rng_seed(scenario.seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
        .simulation_duration(scenario.traffic + Duration::from_secs(120))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(8))
        // Every call is its own connection, and a held link releases its SYNs all at once:
        // keep turmoil's accept backlog (which panics when full) well above that.
        .tcp_capacity(16 * 1024)
        .build();

    let info: BTreeMap<u64, NodeInfo> = slots
        .iter()
        .map(|s| {
            (
                s.id,
                NodeInfo {
                    api_addr: format!("{}:{API_PORT}", s.name),
                    peer_addr: format!("{}:{PEER_PORT}", s.name),
                },
            )
        })
        .collect();
    // The initial voters; with membership changes, the other two hosts wait to be added.
    let members: BTreeMap<u64, NodeInfo> = info
        .iter()
        .filter(|(id, _)| **id <= scenario.nodes as u64)
        .map(|(id, i)| (*id, i.clone()))
        .collect();
    let every = scenario.snapshot_every;
    for slot in &slots {
        let (slot, members, shared) = (slot.clone(), members.clone(), shared.clone());
        sim.host(slot.name.clone(), move || {
            node_host(slot.clone(), members.clone(), shared.clone(), every)
        });
    }
    let seeds: Vec<String> = info.values().map(|m| m.api_addr.clone()).collect();
    for k in 0..scenario.clients as u64 {
        let (seeds, shared) = (seeds.clone(), shared.clone());
        let (seed, traffic) = (scenario.seed, scenario.traffic);
        sim.client(format!("c{k}"), async move {
            workload::run(k, seed, seeds, shared, traffic).await;
            Ok(())
        });
    }
    if scenario.membership && scenario.faults {
        let (seeds, shared) = (seeds.clone(), shared.clone());
        let (seed, traffic) = (scenario.seed, scenario.traffic);
        sim.client("admin", async move {
            workload::membership(seed, seeds, shared, traffic).await;
            Ok(())
        });
    }
    if scenario.faults {
        let shared = shared.clone();
        let (seed, traffic) = (scenario.seed, scenario.traffic);
        sim.client("probe", async move {
            workload::clock_probe(seed, shared, traffic).await;
            Ok(())
        });
    }

    let mut faults = check::Faults::new(scenario, &slots, scenario.clients);
    let mut acked_at_corruption: Option<usize> = None;
    // A failure is reported by the most specific checker that sees it: the state checkers
    // (acknowledged writes, double apply) run on every node before the first violation is
    // named, so a lost acknowledged write is reported as one even when a root mismatch or a
    // stuck cluster noticed it first.
    let fail = |what: String, faults: &check::Faults| Failure {
        scenario: scenario.clone(),
        what: check::diagnose(&slots, &shared, what, false),
        faults: faults.log.clone(),
    };
    // Traffic, with faults; the clients finish on their own.
    loop {
        let done = sim
            .step()
            .map_err(|e| fail(format!("simulation error: {e}"), &faults))?;
        if let Some(v) = shared.first_violation() {
            return Err(fail(v, &faults));
        }
        if done {
            break;
        }
        if scenario.faults {
            faults.tick(&mut sim, &shared);
        }
        faults.shut_down_removed(&mut sim, &shared);
        if scenario.corrupt_leader
            && acked_at_corruption.is_none()
            && sim.elapsed() >= scenario.traffic / 3
        {
            if let Some(id) = check::corrupt_leader(&slots, &shared) {
                faults
                    .log
                    .push(format!("corrupted the state of node {id} (the leader)"));
                acked_at_corruption = Some(shared.history().acked.len());
            }
        }
    }
    // Heal everything, then wait for every node to apply the same index (every node but a
    // corrupted one, which must have stopped itself).
    faults.shut_down_removed(&mut sim, &shared);
    faults.heal(&mut sim);
    let corrupted = shared.corrupted();
    // Every node that joined the cluster and was not removed from it (removed nodes are shut
    // down; a node the run corrupted must have stopped itself).
    let joined = shared.joined();
    let healthy: Vec<Arc<Slot>> = slots
        .iter()
        .filter(|s| Some(s.id) != corrupted && joined.contains(&s.id) && !faults.is_removed(s.id))
        .cloned()
        .collect();
    if healthy.is_empty() {
        return Err(fail("no member left to check".into(), &faults));
    }
    // A cluster that does not converge is first asked whether a node in service lacks an
    // acknowledged write (every fault is healed by now).
    let applied = check::converge(&mut sim, &healthy, &shared).map_err(|e| {
        let healed = e.starts_with(check::NOT_CONVERGED);
        Failure {
            scenario: scenario.clone(),
            what: check::diagnose(if healed { &healthy } else { &slots }, &shared, e, healed),
            faults: faults.log.clone(),
        }
    })?;
    check::final_state(&healthy, &shared).map_err(|e| fail(e, &faults))?;
    if scenario.corrupt_leader {
        check::corruption_caught(&shared, acked_at_corruption).map_err(|e| fail(e, &faults))?;
    }
    let h = shared.history();
    let o = shared.observed();
    let root = healthy[0]
        .state
        .ledger_meta()
        .map_err(|e| fail(e.to_string(), &faults))?
        .root;
    Ok(Report {
        seed: scenario.seed,
        acked: h.acked.len(),
        rejected: h.rejected.len(),
        unknown: h.unknown,
        reads: h.reads,
        applied,
        terms: o.leaders.len(),
        fingerprint: o.fingerprint(&faults.log, &root),
        faults: faults.log.clone(),
        root,
        installs: slots.iter().map(|s| s.state.installs()).sum(),
        state_entries_lost: slots.iter().map(|s| s.state.entries_lost()).sum(),
        results: h.results.clone(),
    })
}

/// A small deterministic generator for the fault schedule.
pub(crate) fn rng_for(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

pub(crate) fn pick<T: Clone>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())].clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use node::seam::{Call, Connector};

    /// With TLS on, a node answers only TLS, its peer listener only a CA-signed client
    /// certificate, and the simulation's own clients (the SDK's and the node's) get through.
    #[test]
    fn tls_runs_speak_tls_with_client_certificates() {
        node::security::tls::install_crypto_provider();
        let auth = SimAuth::new(1, Some(1)).expect("set-up");
        let sdk = auth.client_tls().expect("client tls");
        let pki = auth.pki.clone().expect("pki");
        let node_tls = net::SimTls::with(
            (*node::security::tls::load(&auth.tls_section(1))
                .expect("load")
                .client)
                .clone(),
        );
        let anonymous = net::SimTls::with(
            ron_ledger_client::ClientTls::from_files(&pki.ca_cert, None)
                .and_then(|t| t.rustls_config())
                .expect("anonymous client tls"),
        );
        assert!(sdk.enabled() && node_tls.enabled() && !net::SimTls::plain().enabled());
        let shared = Arc::new(Shared {
            auth: Some(auth),
            client_tls: sdk.clone(),
            ..Shared::default()
        });
        let mut sim = turmoil::Builder::new()
            .rng_seed(1)
            .simulation_duration(Duration::from_secs(60))
            .build();
        let slot = Arc::new(Slot::new(1, &Scenario::for_seed(1)));
        let members: BTreeMap<u64, NodeInfo> = [(
            1,
            NodeInfo {
                api_addr: format!("n1:{API_PORT}"),
                peer_addr: format!("n1:{PEER_PORT}"),
            },
        )]
        .into();
        sim.host("n1", move || {
            node_host(slot.clone(), members.clone(), shared.clone(), 150)
        });
        sim.client("probe", async move {
            let get = |tls: &net::SimTls, port: u16| {
                let connector = net::SimConnector(tls.clone());
                async move {
                    connector
                        .call(Call {
                            method: "GET",
                            addr: format!("n1:{port}"),
                            path: "/v1/status".into(),
                            headers: Vec::new(),
                            body: Vec::new(),
                            timeout: Duration::from_secs(2),
                        })
                        .await
                        .map(|a| a.status)
                }
            };
            // The node is up once the SDK's identity gets an answer.
            let mut up = false;
            for _ in 0..50 {
                if get(&sdk, API_PORT).await.is_ok() {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let results = [
                ("sdk identity, api", up),
                (
                    "node identity, peer",
                    get(&node_tls, PEER_PORT).await.is_ok(),
                ),
                (
                    "no certificate, api",
                    get(&anonymous, API_PORT).await.is_ok(),
                ),
                (
                    "no certificate, peer",
                    get(&anonymous, PEER_PORT).await.is_err(),
                ),
                (
                    "plaintext, api",
                    get(&net::SimTls::plain(), API_PORT).await.is_err(),
                ),
                (
                    "plaintext, peer",
                    get(&net::SimTls::plain(), PEER_PORT).await.is_err(),
                ),
            ];
            let wrong: Vec<&str> = results.iter().filter(|r| !r.1).map(|r| r.0).collect();
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(format!("unexpected outcome: {wrong:?}").into())
            }
        });
        sim.run().expect("probe");
    }
}
