//! Deterministic fault simulation of ron-ledger.
//!
//! A run builds a 3- or 5-node cluster of the **real** node — ingress, prevalidation, forwarding,
//! the sequencer, openraft and raft-store — on turmoil's simulated network and clock, with clients
//! using the real SDK. The run's seed decides everything random: turmoil's network, openraft's
//! election timeouts (through [`raft_store::runtime::seed_thread_rng`]), the SDK's backoff
//! jitter, the workload and the fault schedule. A failing seed replays exactly.
//!
//! Checkers run during the run (cheap ones, every 20 ms of simulated time on every node) and
//! after it, once the faults are healed and the cluster has converged. See `docs/TESTING.md`.

pub mod check;
pub mod net;
pub mod storage;
pub mod workload;

use ledger::Hash;
use node::config::{AuthSection, LimitsSection, LogSection, RaftSection};
use node::node::{Backends, Seams};
use node::seam::Clock;
use node::{Config, Node};
use openraft::ServerState;
use raft_store::{MemoryStateBackend, NodeInfo, StateBackend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
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
}

/// One simulated run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Decides everything random.
    pub seed: u64,
    /// Cluster size (3 or 5).
    pub nodes: usize,
    /// Concurrent SDK clients.
    pub clients: usize,
    /// Simulated time of client traffic (faults are injected during it).
    pub traffic: Duration,
    /// Inject faults.
    pub faults: bool,
    /// A planted bug, if any.
    pub bug: Option<Bug>,
}

impl Scenario {
    /// The standard scenario for `seed`: every fourth seed runs 5 nodes.
    pub fn for_seed(seed: u64) -> Self {
        Self {
            seed,
            nodes: if seed % 4 == 3 { 5 } else { 3 },
            clients: 3,
            traffic: Duration::from_secs(12),
            faults: true,
            bug: None,
        }
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "cargo run -p sim --release -- --seed {} --nodes {} --clients {} --traffic-secs {}",
            self.seed,
            self.nodes,
            self.clients,
            self.traffic.as_secs()
        );
        if !self.faults {
            cmd.push_str(" --no-faults");
        }
        if self.bug == Some(Bug::AckBeforeSync) {
            cmd.push_str(" --plant ack-before-sync");
        }
        cmd
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
    auth: Option<SimAuth>,
}

/// The run's capability root key (a key file the nodes load, as in production) and the token
/// the clients write with. Both follow from the seed.
pub struct SimAuth {
    dir: std::path::PathBuf,
    key_file: std::path::PathBuf,
    token: String,
}

/// Simulated time starts here (seconds since the Unix epoch).
const EPOCH_SECS: u64 = 1_780_000_000;

impl SimAuth {
    fn new(seed: u64) -> Result<Self, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
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
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_file)
            .map_err(|e| format!("{}: {e}", key_file.display()))?;
        f.write_all(ring.to_json().as_bytes())
            .map_err(|e| format!("{}: {e}", key_file.display()))?;
        let key = ring.get("sim-k1").ok_or("sim key missing")?;
        use ledger::capability::{Caveat, Op, Token};
        let token = Token::mint(
            key,
            rng.gen(),
            EPOCH_SECS,
            vec![
                Caveat::ExpiresAt(EPOCH_SECS + ledger::capability::DEFAULT_MAX_LIFETIME_SECS),
                Caveat::Audience("sim".into()),
                Caveat::Ops(
                    [Op::CreateAccounts, Op::CreateTransfers]
                        .into_iter()
                        .collect(),
                ),
            ],
        )
        .map_err(|e| e.to_string())?
        .encode();
        Ok(Self {
            dir,
            key_file,
            token,
        })
    }

    /// The token clients send.
    pub fn token(&self) -> &str {
        &self.token
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

    /// The client history.
    pub fn history(&self) -> MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn observed(&self) -> MutexGuard<'_, check::Observed> {
        self.observed.lock().unwrap_or_else(|p| p.into_inner())
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

/// The cluster clock: turmoil's simulated wall clock.
struct SimClock;

impl Clock for SimClock {
    fn now_ns(&self) -> u64 {
        let since = turmoil::since_epoch().unwrap_or_default();
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
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
    pub state: Arc<MemoryStateBackend>,
}

fn node_config(id: u64, cluster: &str, key_file: Option<std::path::PathBuf>) -> Config {
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
            snapshot_every_entries: 150,
            keep_entries_after_snapshot: 40,
            rpc_timeout_ms: 1_000,
            snapshot_chunk_bytes: 16 * 1024,
        },
        limits: LimitsSection {
            write_timeout_ms: 4_000,
            ..LimitsSection::default()
        },
        log: LogSection::default(),
        checkpoint: Default::default(),
        auth: AuthSection {
            enabled: key_file.is_some(),
            key_file,
            ..AuthSection::default()
        },
        seccomp: false,
        uds: Default::default(),
        tls: Default::default(),
    }
}

/// The software of node host `slot`: start the node on the simulated listeners, initialise the
/// cluster on node 1's first boot, then observe it for the checkers.
async fn node_host(
    slot: Arc<Slot>,
    members: BTreeMap<u64, NodeInfo>,
    shared: Arc<Shared>,
) -> turmoil::Result {
    let api = net::SimListener(turmoil::net::TcpListener::bind(("0.0.0.0", API_PORT)).await?);
    let peer = net::SimListener(turmoil::net::TcpListener::bind(("0.0.0.0", PEER_PORT)).await?);
    let seams = Seams {
        connector: Arc::new(net::SimConnector),
        clock: Arc::new(SimClock),
        storage: Some(Backends {
            log: slot.log.clone(),
            state: slot.state.clone(),
        }),
    };
    let key_file = shared.auth.as_ref().map(|a| a.key_file.clone());
    let running = Node::start_on(node_config(slot.id, "sim", key_file), seams, api, peer)
        .await
        .map_err(|e| e.to_string())?;
    let raft = running.node.raft.clone();
    if slot.id == 1 && !raft.is_initialized().await.unwrap_or(true) {
        let _ = raft.initialize(members).await;
    }
    let mut since_flush = Duration::ZERO;
    let tick = Duration::from_millis(20);
    loop {
        tokio::time::sleep(tick).await;
        since_flush += tick;
        if since_flush >= Duration::from_millis(500) {
            // The operating system writes dirty pages back now and then.
            slot.log.flush();
            since_flush = Duration::ZERO;
        }
        let m = raft.metrics().borrow().clone();
        let leader_term = (m.state == ServerState::Leader).then_some(m.current_term);
        let applied = slot.state.applied()?.last_applied.map_or(0, |l| l.index);
        let root = slot.state.ledger_meta()?.root;
        shared.observe(slot.id, leader_term, applied, root);
    }
}

/// Run one scenario to the end: traffic with faults, healing, convergence, final checks.
pub fn run(scenario: &Scenario) -> Result<Report, Failure> {
    raft_store::runtime::seed_thread_rng(Some(scenario.seed));
    let auth = SimAuth::new(scenario.seed).map_err(|e| Failure {
        scenario: scenario.clone(),
        what: format!("capability key set-up: {e}"),
        faults: Vec::new(),
    })?;
    let shared = Arc::new(Shared {
        auth: Some(auth),
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

    let slots: Vec<Arc<Slot>> = (1..=scenario.nodes as u64)
        .map(|id| {
            Arc::new(Slot {
                id,
                name: format!("n{id}"),
                log: Arc::new(SimLog::new(scenario.bug == Some(Bug::AckBeforeSync))),
                state: Arc::new(MemoryStateBackend::new()),
            })
        })
        .collect();
    let members: BTreeMap<u64, NodeInfo> = slots
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
    for slot in &slots {
        let (slot, members, shared) = (slot.clone(), members.clone(), shared.clone());
        sim.host(slot.name.clone(), move || {
            node_host(slot.clone(), members.clone(), shared.clone())
        });
    }
    let seeds: Vec<String> = members.values().map(|m| m.api_addr.clone()).collect();
    for k in 0..scenario.clients as u64 {
        let (seeds, shared) = (seeds.clone(), shared.clone());
        let (seed, traffic) = (scenario.seed, scenario.traffic);
        sim.client(format!("c{k}"), async move {
            workload::run(k, seed, seeds, shared, traffic).await;
            Ok(())
        });
    }

    let mut faults = check::Faults::new(scenario, &slots);
    let fail = |what: String, faults: &check::Faults| Failure {
        scenario: scenario.clone(),
        what,
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
    }
    // Heal everything, then wait for every node to apply the same index.
    faults.heal(&mut sim);
    let applied = check::converge(&mut sim, &slots, &shared).map_err(|e| fail(e, &faults))?;
    check::final_state(&slots, &shared).map_err(|e| fail(e, &faults))?;
    let h = shared.history();
    let o = shared.observed();
    let root = slots[0]
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
    })
}

/// A small deterministic generator for the fault schedule.
pub(crate) fn rng_for(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

pub(crate) fn pick<T: Clone>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())].clone()
}
