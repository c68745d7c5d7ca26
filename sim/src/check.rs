//! The fault schedule and the checkers.
//!
//! During a run, every node reports every 20 ms of simulated time: whether it leads and in which
//! term, its applied index, the Merkle root and the cluster time at that index. Checked on the
//! spot: at most one leader per term; no node's applied index or cluster time ever decreases,
//! across crashes and snapshot installs included; every node that reaches an index has the same
//! root and cluster time there. Every 500 ms each node's state is checked: the
//! acknowledged-writes checker ([`acked_writes`]: every transfer acknowledged at a cluster time
//! the node has reached is in its state, unchanged) and the double-apply checker ([`balances`]:
//! every account's balances equal what its transfers add up to). Clients check that a
//! linearizable read never misses a write acknowledged before it began, that cluster timestamps
//! follow real time (an event sequenced after another was acknowledged has a later timestamp,
//! across leader changes and clock faults), and that a node checks capability validity against
//! its own clock. After the run: every node converges on the same applied index, root and state
//! digest; the two state checkers again on every node; nothing is in the state that was never
//! submitted or that was acknowledged as rejected; and value is conserved in every ledger.
//!
//! When anything fails, the two state checkers run on every node before the failure is
//! reported ([`diagnose`]), so a lost or changed acknowledged write is named as such even when a
//! root mismatch or a cluster that never converges noticed it first; then, and after
//! convergence, the acknowledged-writes checker across nodes by position ([`acked_positions`]).

use crate::{pick, rng_for, Scenario, Shared, Slot};
use ledger::merkle::leaf_hash;
use ledger::{Hash, LedgerMeta, Transfer, TransferFlags, TransferStatus};
use raft_store::StateBackend;
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What the nodes reported.
#[derive(Default)]
pub struct Observed {
    /// Term → the node that led it.
    pub leaders: BTreeMap<u64, u64>,
    applied_max: BTreeMap<u64, u64>,
    time_max: BTreeMap<u64, u64>,
    /// Power losses per node, as last reported.
    power_losses: BTreeMap<u64, u64>,
    roots: BTreeMap<u64, (Hash, u64)>,
}

impl Observed {
    /// A digest of what was observed, for comparing two runs of one seed.
    pub fn fingerprint(&self, faults: &[String], root: &Hash) -> String {
        let text = format!(
            "{:?}|{:?}|{faults:?}|{root}",
            self.leaders, self.applied_max
        );
        leaf_hash(text.as_bytes()).to_hex()[..16].to_string()
    }
}

impl Shared {
    /// A node's report (see the module docs for what is checked).
    /// `power_losses` counts the node's simulated power losses: its state shares the Raft log's
    /// write-ahead log unsynced (`docs/STORAGE.md`), so after one its applied index and cluster
    /// time may be behind what it reported before, and only from then on must they not go back.
    pub fn observe(
        &self,
        node: u64,
        power_losses: u64,
        leader_term: Option<u64>,
        applied: u64,
        meta: &LedgerMeta,
    ) {
        let (root, time) = (meta.root, meta.last_timestamp);
        let mut problems = Vec::new();
        {
            let mut o = self.observed();
            let seen = o.power_losses.entry(node).or_insert(0);
            if *seen != power_losses {
                *seen = power_losses;
                o.applied_max.remove(&node);
                o.time_max.remove(&node);
            }
            if let Some(term) = leader_term {
                // openraft 0.9 without its `single-term-leader` feature (ours) identifies a
                // leader by (term, node id), ordered in that order: a node that voted for n1 in
                // term 3 may vote again for n2 in term 3, and both lead in turn (seed 1452). What
                // that must never cost — two histories — the per-index root and acknowledged-
                // writes checkers catch; here a term's first leader is kept for the fingerprint.
                o.leaders.entry(term).or_insert(node);
            }
            let max = o.applied_max.entry(node).or_insert(0);
            if applied < *max {
                problems.push(format!(
                    "node {node}'s applied index went backwards: {} -> {applied}",
                    *max
                ));
            }
            *max = (*max).max(applied);
            let latest = o.time_max.entry(node).or_insert(0);
            if time < *latest {
                problems.push(format!(
                    "node {node}'s cluster time went backwards: {} -> {time} (at index {applied})",
                    *latest
                ));
            }
            *latest = (*latest).max(time);
            // A node whose state the run corrupted reports roots nobody else must match.
            let seen = if self.corrupted() == Some(node) {
                (root, time)
            } else {
                *o.roots.entry(applied).or_insert((root, time))
            };
            if seen.0 != root {
                problems.push(format!(
                    "node {node} has root {root} at index {applied}, another node had {}",
                    seen.0
                ));
            } else if seen.1 != time {
                problems.push(format!(
                    "node {node} has cluster time {time} at index {applied}, another node had {}",
                    seen.1
                ));
            }
        }
        for p in problems {
            self.violation(p);
        }
    }
}

enum Fault {
    Partition(String, String),
    OneWay(String, String),
    Isolate(String, Vec<String>),
    IsolateFollower(String, Vec<String>),
    Hold(String, String),
    Pause(String, Vec<String>),
    Crash(Arc<Slot>),
    CrashAll(Vec<Arc<Slot>>),
    FailingDisk(Arc<Slot>),
    Clock(Arc<Slot>, i64),
}

/// The seed's fault schedule: a new fault every 0.4–2 s of simulated time, each healed after
/// 0.3–3 s (a pause after 4.5–6 s), at most two at once and at most one of them a crash.
pub struct Faults {
    rng: StdRng,
    slots: Vec<Arc<Slot>>,
    /// Every host that is not a node (the clients, the operator, the probe).
    others: Vec<String>,
    removed: BTreeSet<u64>,
    next: Duration,
    active: Vec<(Duration, Fault)>,
    /// What was injected and when, for the failure report.
    pub log: Vec<String>,
}

impl Faults {
    /// The schedule for `scenario`, on the nodes `slots`, with `clients` client hosts.
    pub fn new(scenario: &Scenario, slots: &[Arc<Slot>], clients: usize) -> Self {
        let mut others: Vec<String> = (0..clients).map(|k| format!("c{k}")).collect();
        if scenario.faults {
            others.push("probe".into());
            if scenario.membership {
                others.push("admin".into());
            }
        }
        Self {
            rng: rng_for(scenario.seed, 3),
            slots: slots.to_vec(),
            others,
            removed: BTreeSet::new(),
            next: Duration::from_secs(2),
            active: Vec::new(),
            log: Vec::new(),
        }
    }

    /// The nodes still in service (not removed from the cluster).
    fn live(&self) -> Vec<Arc<Slot>> {
        self.slots
            .iter()
            .filter(|s| !self.removed.contains(&s.id))
            .cloned()
            .collect()
    }

    fn names(&self) -> Vec<String> {
        self.live().iter().map(|s| s.name.clone()).collect()
    }

    /// Whether node `id` was removed from the cluster (and shut down).
    pub fn is_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }

    /// Shut down, for good, the nodes the operator removed from the cluster.
    pub fn shut_down_removed(&mut self, sim: &mut turmoil::Sim<'_>, shared: &Shared) {
        for note in std::mem::take(&mut *shared.notes.lock().unwrap_or_else(|p| p.into_inner())) {
            self.log
                .push(format!("{:.3}s {note}", sim.elapsed().as_secs_f64()));
        }
        let removed: Vec<u64> =
            std::mem::take(&mut *shared.removed.lock().unwrap_or_else(|p| p.into_inner()));
        for id in removed {
            if !self.removed.insert(id) {
                continue;
            }
            let slot = self.slot(&format!("n{id}"));
            sim.crash(slot.name.as_str());
            slot.up.store(false, Ordering::SeqCst);
            self.log.push(format!(
                "{:.3}s n{id} removed from the cluster, shut down",
                sim.elapsed().as_secs_f64()
            ));
        }
    }

    fn leader(&self, shared: &Shared) -> String {
        format!("n{}", shared.leader().unwrap_or(1))
    }

    /// Called after every step: heal what is due, maybe inject something new.
    pub fn tick(&mut self, sim: &mut turmoil::Sim<'_>, shared: &Shared) {
        let now = sim.elapsed();
        // Runs every step: allocate nothing unless a fault is due.
        while let Some(i) = self.active.iter().position(|(at, _)| *at <= now) {
            let (_, f) = self.active.remove(i);
            self.undo(sim, f, now);
        }
        if now < self.next || self.active.len() >= 2 {
            return;
        }
        self.next = now + Duration::from_millis(self.rng.gen_range(400..=2_000));
        let mut heal_at = now + Duration::from_millis(self.rng.gen_range(300..=3_000));
        let names = self.names();
        if names.len() < 2 {
            return;
        }
        let a = pick(&mut self.rng, &names);
        let mut b = pick(&mut self.rng, &names);
        if a == b {
            b = names[(names.iter().position(|n| *n == a).unwrap_or(0) + 1) % names.len()].clone();
        }
        let crashing = self.active.iter().any(|(_, f)| {
            matches!(
                f,
                Fault::Crash(_) | Fault::CrashAll(_) | Fault::FailingDisk(_) | Fault::Pause(..)
            )
        });
        let roll = self.rng.gen_range(0..100);
        let fault = match roll {
            0..=13 => {
                sim.partition(a.as_str(), b.as_str());
                Fault::Partition(a, b)
            }
            14..=20 => {
                sim.partition_oneway(a.as_str(), b.as_str());
                Fault::OneWay(a, b)
            }
            21..=31 => {
                let l = self.leader(shared);
                let others: Vec<String> = names.into_iter().filter(|n| *n != l).collect();
                for o in &others {
                    sim.partition(l.as_str(), o.as_str());
                }
                Fault::Isolate(l, others)
            }
            32..=41 => {
                // A follower cut off from every node long enough to fall behind the leader's
                // snapshots: it catches up by a snapshot install racing the leader's purges.
                let l = self.leader(shared);
                let followers: Vec<String> = names.iter().filter(|n| **n != l).cloned().collect();
                let f = pick(&mut self.rng, &followers);
                let others: Vec<String> = names.into_iter().filter(|n| *n != f).collect();
                for o in &others {
                    sim.partition(f.as_str(), o.as_str());
                }
                heal_at = now + Duration::from_millis(self.rng.gen_range(1_500..=4_000));
                Fault::IsolateFollower(f, others)
            }
            42..=51 => {
                sim.hold(a.as_str(), b.as_str());
                Fault::Hold(a, b)
            }
            52..=57 if !crashing => {
                // A paused process: nothing reaches it and nothing leaves it, then everything
                // at once; long enough for pending transfers (1–4 s timeouts) to expire.
                let mut others: Vec<String> = names.iter().filter(|n| **n != a).cloned().collect();
                others.extend(self.others.iter().cloned());
                for o in &others {
                    sim.hold(a.as_str(), o.as_str());
                }
                heal_at = now + Duration::from_millis(self.rng.gen_range(4_500..=6_000));
                Fault::Pause(a, others)
            }
            58..=67 => {
                // The node's clock is set off, by a jump forwards or backwards, and jumps back
                // when healed.
                let slot = self.slot(&a);
                let ms = if self.rng.gen_bool(0.5) {
                    self.rng.gen_range(1_000..=90_000)
                } else {
                    -self.rng.gen_range(1_000..=60_000)
                };
                slot.skew.store(ms, Ordering::SeqCst);
                Fault::Clock(slot, ms)
            }
            68..=84 if !crashing => {
                let slot = self.slot(&a);
                sim.crash(a.as_str());
                slot.power_loss();
                slot.up.store(false, Ordering::SeqCst);
                Fault::Crash(slot)
            }
            85..=91 if !crashing && self.active.is_empty() => {
                let live = self.live();
                for s in &live {
                    sim.crash(s.name.as_str());
                    s.power_loss();
                    s.up.store(false, Ordering::SeqCst);
                }
                Fault::CrashAll(live)
            }
            92..=99 if !crashing => {
                let slot = self.slot(&a);
                slot.log.set_failing(true);
                Fault::FailingDisk(slot)
            }
            _ => return,
        };
        self.log
            .push(format!("{:.3}s {}", now.as_secs_f64(), describe(&fault)));
        self.active.push((heal_at, fault));
    }

    fn slot(&self, name: &str) -> Arc<Slot> {
        self.slots
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .unwrap_or_else(|| self.slots[0].clone())
    }

    /// Start a crashed node again, unless it was removed from the cluster meanwhile.
    fn restart(&self, sim: &mut turmoil::Sim<'_>, slot: &Slot) {
        if !self.removed.contains(&slot.id) {
            sim.bounce(slot.name.as_str());
            slot.up.store(true, Ordering::SeqCst);
        }
    }

    fn undo(&mut self, sim: &mut turmoil::Sim<'_>, fault: Fault, now: Duration) {
        match &fault {
            Fault::Partition(a, b) => sim.repair(a.as_str(), b.as_str()),
            Fault::OneWay(a, b) => sim.repair_oneway(a.as_str(), b.as_str()),
            Fault::Isolate(l, others) | Fault::IsolateFollower(l, others) => {
                for o in others {
                    sim.repair(l.as_str(), o.as_str());
                }
            }
            Fault::Hold(a, b) => sim.release(a.as_str(), b.as_str()),
            Fault::Pause(a, others) => {
                for o in others {
                    sim.release(a.as_str(), o.as_str());
                }
            }
            Fault::Crash(slot) => self.restart(sim, slot),
            Fault::CrashAll(slots) => {
                for s in slots {
                    self.restart(sim, s);
                }
            }
            Fault::FailingDisk(slot) => {
                // The operator replaces the disk: the node restarts on what was synced.
                sim.crash(slot.name.as_str());
                slot.power_loss();
                slot.log.set_failing(false);
                self.restart(sim, slot);
            }
            Fault::Clock(slot, _) => slot.skew.store(0, Ordering::SeqCst),
        }
        self.log.push(format!(
            "{:.3}s healed {}",
            now.as_secs_f64(),
            describe(&fault)
        ));
    }

    /// Undo every active fault.
    pub fn heal(&mut self, sim: &mut turmoil::Sim<'_>) {
        let now = sim.elapsed();
        for (_, f) in std::mem::take(&mut self.active) {
            self.undo(sim, f, now);
        }
    }
}

fn describe(f: &Fault) -> String {
    match f {
        Fault::Partition(a, b) => format!("partition {a}<->{b}"),
        Fault::OneWay(a, b) => format!("partition {a}->{b}"),
        Fault::Isolate(l, _) => format!("isolate leader {l}"),
        Fault::IsolateFollower(f, _) => format!("isolate follower {f}"),
        Fault::Hold(a, b) => format!("hold {a}<->{b}"),
        Fault::Pause(a, _) => format!("pause {a}"),
        Fault::Crash(s) => format!("crash {}", s.name),
        Fault::CrashAll(_) => "crash all".into(),
        Fault::FailingDisk(s) => format!("failing disk {}", s.name),
        Fault::Clock(s, ms) => format!("clock {} {ms:+} ms", s.name),
    }
}

/// Change the current leader's ledger state behind Raft's back: one account created directly
/// in its state, at its applied index (the simulation is single-threaded between steps, so
/// nothing applies meanwhile). Returns the node, or `None` while no leader is known.
pub fn corrupt_leader(slots: &[Arc<Slot>], shared: &Shared) -> Option<u64> {
    let leader = *shared.observed().leaders.values().last()?;
    let slot = slots.iter().find(|s| s.id == leader)?;
    let (applied, meta) = slot.state.applied_with_meta().ok()?;
    let batch = ledger::Batch {
        timestamp: meta.last_timestamp + 1,
        operations: vec![ledger::Operation::CreateAccounts(vec![ledger::Account {
            id: u128::MAX - 1,
            ledger: 1,
            code: 1,
            ..Default::default()
        }])],
    };
    let (_, changes) = slot.state.apply(&batch).ok()?;
    slot.state.commit(Some(changes), &applied, true).ok()?;
    *shared.corrupted.lock().unwrap_or_else(|p| p.into_inner()) = Some(leader);
    Some(leader)
}

/// After a run with a corrupted leader: that node entered safe mode with `root_mismatch` (any
/// other node's safe mode is a violation already), and the cluster acknowledged writes after
/// the corruption.
pub fn corruption_caught(shared: &Shared, acked_before: Option<usize>) -> Result<(), String> {
    let node = shared
        .corrupted()
        .ok_or("the run never found a leader to corrupt")?;
    let seen = shared
        .safe_modes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if !seen.contains(&(node, "root_mismatch".to_string())) {
        return Err(format!(
            "node {node}'s state was corrupted but it did not enter safe mode with root_mismatch (saw {seen:?})"
        ));
    }
    let before = acked_before.unwrap_or(0);
    let after = shared.history().acked.len();
    if after <= before {
        return Err(format!(
            "no write was acknowledged after node {node} was corrupted ({before} before)"
        ));
    }
    Ok(())
}

/// How a cluster that never converged is reported.
pub const NOT_CONVERGED: &str = "the cluster did not converge";

/// Step until every node has applied the same index and nothing moved for 3 s; at most 90 s.
pub fn converge(
    sim: &mut turmoil::Sim<'_>,
    slots: &[Arc<Slot>],
    shared: &Shared,
) -> Result<u64, String> {
    let start = sim.elapsed();
    let mut last: Vec<u64> = Vec::new();
    let mut stable_since = start;
    loop {
        sim.step().map_err(|e| format!("simulation error: {e}"))?;
        if let Some(v) = shared.first_violation() {
            return Err(v);
        }
        let now = sim.elapsed();
        let applied: Vec<u64> = slots
            .iter()
            .map(|s| {
                s.state
                    .applied()
                    .ok()
                    .and_then(|a| a.last_applied)
                    .map_or(0, |l| l.index)
            })
            .collect();
        if applied != last {
            last = applied;
            stable_since = now;
        } else if now - stable_since >= Duration::from_secs(3)
            && last.iter().all(|a| *a == last[0])
            && last[0] > 0
        {
            return Ok(last[0]);
        }
        if now - start > Duration::from_secs(90) {
            return Err(format!(
                "{NOT_CONVERGED} within 90 s after healing: applied {last:?}"
            ));
        }
    }
}

fn same_event(a: &Transfer, b: &Transfer) -> bool {
    (
        a.id,
        a.debit_account_id,
        a.credit_account_id,
        a.amount,
        a.pending_id,
    ) == (
        b.id,
        b.debit_account_id,
        b.credit_account_id,
        b.amount,
        b.pending_id,
    ) && (a.ledger, a.code, a.flags, a.timeout) == (b.ledger, b.code, b.flags, b.timeout)
}

/// The acknowledged-writes checker on one node's state as it is now: every transfer
/// acknowledged at a cluster time the node has reached (its last applied event is at that time
/// or later; cluster time only grows along the log) is in the state, exactly as submitted, and
/// at that time or earlier (a transfer lost and created again later has a later timestamp).
/// With `healed` (every fault healed and the cluster given its time to converge), every
/// acknowledged transfer must be there, whatever the node's cluster time.
pub fn acked_writes(slot: &Slot, shared: &Shared, healed: bool) -> Result<(), String> {
    let (applied, meta) = slot.state.applied_with_meta().map_err(|e| e.to_string())?;
    let index = applied.last_applied.map_or(0, |l| l.index);
    let h = shared.history();
    for (id, ack) in &h.acked {
        let due = healed || ack.timestamp.is_some_and(|ts| ts <= meta.last_timestamp);
        if !due {
            continue;
        }
        let at = ack
            .timestamp
            .map_or("no timestamp".to_string(), |t| format!("cluster time {t}"));
        let Some(r) = slot.state.lookup_transfer(*id).map_err(|e| e.to_string())? else {
            return Err(format!(
                "acknowledged writes: transfer {id} (acknowledged at {at}) is missing on node {}, which applied up to index {index}, cluster time {}",
                slot.id, meta.last_timestamp
            ));
        };
        let sent = &h.submitted[id];
        let moved = ack.timestamp.is_some_and(|t| r.transfer.timestamp > t);
        if !same_event(r.as_submitted(), sent) || moved {
            return Err(format!(
                "acknowledged writes: transfer {id} (acknowledged at {at}) changed on node {} (index {index}): submitted {sent:?}, the node has {:?} at cluster time {}",
                slot.id,
                r.as_submitted(),
                r.transfer.timestamp
            ));
        }
    }
    Ok(())
}

/// The acknowledged-writes checker across nodes, by position rather than by cluster time: the
/// ledger is append-only and every node applies the same events in the same order, so an
/// acknowledged transfer that some node holds at leaf `L` is at leaf `L` on every node that
/// holds more than `L` leaves. This names a lost acknowledged write on a node whose cluster time
/// has not reached the acknowledgement (a slow clock led the history that replaced it), which
/// [`acked_writes`] leaves alone. Each node's leaf count is read before its lookups, so a node
/// that applies in between can only be let off, never wrongly accused.
pub fn acked_positions(slots: &[Arc<Slot>], shared: &Shared) -> Result<(), String> {
    let h = shared.history();
    let nodes: Vec<(&Arc<Slot>, u64)> = slots
        .iter()
        .filter(|s| shared.corrupted() != Some(s.id))
        .map(|s| {
            Ok((
                s,
                s.state.ledger_meta().map_err(|e| e.to_string())?.tree.size,
            ))
        })
        .collect::<Result<_, String>>()?;
    for id in h.acked.keys() {
        let mut held = Vec::with_capacity(nodes.len());
        for (s, size) in &nodes {
            let leaf = s
                .state
                .lookup_transfer(*id)
                .map_err(|e| e.to_string())?
                .map(|r| r.leaf);
            held.push((s.id, *size, leaf));
        }
        // The first node (by id) holding it, at its position.
        let Some((a, at)) = held.iter().find_map(|(n, _, l)| l.map(|l| (*n, l))) else {
            continue;
        };
        for (b, size, leaf) in &held {
            if *size <= at || *leaf == Some(at) {
                continue;
            }
            let what = match leaf {
                None => "is missing".to_string(),
                Some(l) => format!("is at leaf {l}"),
            };
            return Err(format!(
                "acknowledged writes: transfer {id} is at leaf {at} on node {a} and {what} on node {b}, which holds {size} leaves"
            ));
        }
    }
    Ok(())
}

/// The double-apply checker on one node's state as it is now: every account's pending and
/// posted balances equal the sum of its transfers (pending ones while still pending), so an
/// entry whose effects were applied twice (or not at all) shows.
pub fn balances(slot: &Slot) -> Result<(), String> {
    let state = slot.state.memory().state();
    let statuses: BTreeMap<u128, TransferStatus> = state.statuses().into_iter().collect();
    let mut expect: BTreeMap<u128, [u128; 4]> = BTreeMap::new(); // dp, dpo, cp, cpo
    for r in state.transfers() {
        let t = &r.transfer;
        let f = t.flags;
        let (pending, posted) = if f.has(TransferFlags::PENDING) {
            let live = statuses.get(&t.id) == Some(&TransferStatus::Pending);
            (if live { t.amount } else { 0 }, 0)
        } else if f.has(TransferFlags::VOID_PENDING_TRANSFER) {
            (0, 0)
        } else {
            (0, t.amount)
        };
        let d = expect.entry(t.debit_account_id).or_default();
        d[0] += pending;
        d[1] += posted;
        let c = expect.entry(t.credit_account_id).or_default();
        c[2] += pending;
        c[3] += posted;
    }
    for a in state.accounts() {
        let got = [
            a.account.debits_pending,
            a.account.debits_posted,
            a.account.credits_pending,
            a.account.credits_posted,
        ];
        let want = expect.get(&a.account.id).copied().unwrap_or_default();
        if got != want {
            return Err(format!(
                "double apply: on node {}, account {} balances {got:?} differ from its transfers' sum {want:?} (pending/posted debits, credits)",
                slot.id, a.account.id
            ));
        }
    }
    Ok(())
}

/// Before a failure is reported: the acknowledged-writes and double-apply checkers on every
/// node (but one whose state the run corrupted on purpose); with `healed`, on nodes in service
/// once every fault was healed and the cluster had its time to converge, so every acknowledged
/// transfer must be on each. What they find is reported first, with what failed first after it.
pub fn diagnose(slots: &[Arc<Slot>], shared: &Shared, first: String, healed: bool) -> String {
    if first.starts_with("acknowledged writes: ") || first.starts_with("double apply: ") {
        return first;
    }
    let found = slots
        .iter()
        .filter(|s| shared.corrupted() != Some(s.id))
        .find_map(|s| {
            acked_writes(s, shared, healed)
                .and_then(|()| balances(s))
                .err()
        })
        .or_else(|| acked_positions(slots, shared).err());
    match found {
        Some(f) => format!("{f} (first noticed: {first})"),
        None => first,
    }
}

/// The checks after convergence (see the module docs).
pub fn final_state(slots: &[Arc<Slot>], shared: &Shared) -> Result<(), String> {
    for s in slots {
        acked_writes(s, shared, true)?;
        balances(s)?;
    }
    acked_positions(slots, shared)?;
    let first = &slots[0];
    let root = first.state.ledger_meta().map_err(|e| e.to_string())?.root;
    let digest = first.state.digest().map_err(|e| e.to_string())?;
    for s in &slots[1..] {
        let r = s.state.ledger_meta().map_err(|e| e.to_string())?.root;
        let d = s.state.digest().map_err(|e| e.to_string())?;
        if (r, d) != (root, digest) {
            return Err(format!(
                "nodes {} and {} converged on one index with different state (roots {root} / {r})",
                first.id, s.id
            ));
        }
    }
    let state = first.state.memory().state();
    let transfers = state.transfers();
    let accounts = state.accounts();
    let h = shared.history();
    for r in &transfers {
        let id = r.transfer.id;
        match h.submitted.get(&id) {
            None => {
                return Err(format!(
                    "transfer {id} is in the state but was never submitted"
                ))
            }
            Some(sent) if !same_event(r.as_submitted(), sent) => {
                return Err(format!("transfer {id} differs from what was submitted"));
            }
            Some(_) => {}
        }
        if let Some(code) = h.rejected.get(&id) {
            return Err(format!(
                "transfer {id} was acknowledged as rejected (code {code}) but is in the state"
            ));
        }
    }
    let plain: Vec<ledger::Account> = accounts.iter().map(|a| a.account).collect();
    ledger::conservation::check(plain.iter()).map_err(|e| e.to_string())?;
    Ok(())
}
