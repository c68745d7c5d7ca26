//! The fault schedule and the checkers.
//!
//! During a run, every node reports every 20 ms of simulated time: whether it leads and in which
//! term, its applied index and the Merkle root at that index. Checked on the spot: at most one
//! leader per term; no node's applied index ever decreases, across crashes included; every node
//! that reaches an index has the same root there. Clients check that a linearizable read never
//! misses a write acknowledged before it began. After the run: every node converges on the same
//! applied index, root and state digest; every acknowledged transfer is in the state exactly as
//! submitted; nothing is in it that was never submitted or that was acknowledged as rejected;
//! every account's balances equal what its transfers add up to (a double apply shows here); and
//! value is conserved in every ledger.

use crate::{pick, rng_for, Scenario, Shared, Slot};
use ledger::merkle::leaf_hash;
use ledger::{Hash, Transfer, TransferFlags, TransferStatus};
use raft_store::StateBackend;
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What the nodes reported.
#[derive(Default)]
pub struct Observed {
    /// Term → the node that led it.
    pub leaders: BTreeMap<u64, u64>,
    applied_max: BTreeMap<u64, u64>,
    roots: BTreeMap<u64, Hash>,
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
    pub fn observe(&self, node: u64, leader_term: Option<u64>, applied: u64, root: Hash) {
        let mut problems = Vec::new();
        {
            let mut o = self.observed();
            if let Some(term) = leader_term {
                let first = *o.leaders.entry(term).or_insert(node);
                if first != node {
                    problems.push(format!(
                        "two leaders in term {term}: nodes {first} and {node}"
                    ));
                }
            }
            let max = o.applied_max.entry(node).or_insert(0);
            if applied < *max {
                problems.push(format!(
                    "node {node}'s applied index went backwards: {} -> {applied}",
                    *max
                ));
            }
            *max = (*max).max(applied);
            // A node whose state the run corrupted reports roots nobody else must match.
            let seen = if self.corrupted() == Some(node) {
                root
            } else {
                *o.roots.entry(applied).or_insert(root)
            };
            if seen != root {
                problems.push(format!(
                    "node {node} has root {root} at index {applied}, another node had {seen}"
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
    Hold(String, String),
    Crash(Arc<Slot>),
    CrashAll(Vec<Arc<Slot>>),
    FailingDisk(Arc<Slot>),
}

/// The seed's fault schedule: a new fault every 0.4–2 s of simulated time, each healed after
/// 0.3–3 s, at most two at once and at most one of them a crash.
pub struct Faults {
    rng: StdRng,
    slots: Vec<Arc<Slot>>,
    next: Duration,
    active: Vec<(Duration, Fault)>,
    /// What was injected and when, for the failure report.
    pub log: Vec<String>,
}

impl Faults {
    /// The schedule for `scenario`.
    pub fn new(scenario: &Scenario, slots: &[Arc<Slot>]) -> Self {
        Self {
            rng: rng_for(scenario.seed, 3),
            slots: slots.to_vec(),
            next: Duration::from_secs(2),
            active: Vec::new(),
            log: Vec::new(),
        }
    }

    fn names(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.name.clone()).collect()
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
        let heal_at = now + Duration::from_millis(self.rng.gen_range(300..=3_000));
        let names = self.names();
        let a = pick(&mut self.rng, &names);
        let mut b = pick(&mut self.rng, &names);
        if a == b {
            b = names[(names.iter().position(|n| *n == a).unwrap_or(0) + 1) % names.len()].clone();
        }
        let crashing = self.active.iter().any(|(_, f)| {
            matches!(
                f,
                Fault::Crash(_) | Fault::CrashAll(_) | Fault::FailingDisk(_)
            )
        });
        let roll = self.rng.gen_range(0..100);
        let fault = match roll {
            0..=19 => {
                sim.partition(a.as_str(), b.as_str());
                Fault::Partition(a, b)
            }
            20..=29 => {
                sim.partition_oneway(a.as_str(), b.as_str());
                Fault::OneWay(a, b)
            }
            30..=44 => {
                let leader = shared
                    .observed()
                    .leaders
                    .last_key_value()
                    .map(|(_, n)| *n)
                    .unwrap_or(1);
                let l = format!("n{leader}");
                let others: Vec<String> = names.into_iter().filter(|n| *n != l).collect();
                for o in &others {
                    sim.partition(l.as_str(), o.as_str());
                }
                Fault::Isolate(l, others)
            }
            45..=59 => {
                sim.hold(a.as_str(), b.as_str());
                Fault::Hold(a, b)
            }
            60..=84 if !crashing => {
                let slot = self.slot(&a);
                sim.crash(a.as_str());
                slot.log.crash();
                Fault::Crash(slot)
            }
            85..=91 if !crashing && self.active.is_empty() => {
                for s in &self.slots {
                    sim.crash(s.name.as_str());
                    s.log.crash();
                }
                Fault::CrashAll(self.slots.clone())
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

    fn undo(&mut self, sim: &mut turmoil::Sim<'_>, fault: Fault, now: Duration) {
        match &fault {
            Fault::Partition(a, b) => sim.repair(a.as_str(), b.as_str()),
            Fault::OneWay(a, b) => sim.repair_oneway(a.as_str(), b.as_str()),
            Fault::Isolate(l, others) => {
                for o in others {
                    sim.repair(l.as_str(), o.as_str());
                }
            }
            Fault::Hold(a, b) => sim.release(a.as_str(), b.as_str()),
            Fault::Crash(slot) => sim.bounce(slot.name.as_str()),
            Fault::CrashAll(slots) => {
                for s in slots {
                    sim.bounce(s.name.as_str());
                }
            }
            Fault::FailingDisk(slot) => {
                // The operator replaces the disk: the node restarts on what was synced.
                sim.crash(slot.name.as_str());
                slot.log.crash();
                slot.log.set_failing(false);
                sim.bounce(slot.name.as_str());
            }
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
        Fault::Hold(a, b) => format!("hold {a}<->{b}"),
        Fault::Crash(s) => format!("crash {}", s.name),
        Fault::CrashAll(_) => "crash all".into(),
        Fault::FailingDisk(s) => format!("failing disk {}", s.name),
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
                "the cluster did not converge within 90 s after healing: applied {last:?}"
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

/// The checks after convergence (see the module docs).
pub fn final_state(slots: &[Arc<Slot>], shared: &Shared) -> Result<(), String> {
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
    let state = first.state.state();
    let transfers = state.transfers();
    let accounts = state.accounts();
    let statuses: BTreeMap<u128, TransferStatus> = state.statuses().into_iter().collect();
    let h = shared.history();
    let by_id: BTreeMap<u128, &ledger::TransferRecord> =
        transfers.iter().map(|r| (r.transfer.id, r)).collect();
    for id in &h.acked {
        let Some(r) = by_id.get(id) else {
            return Err(format!(
                "acknowledged transfer {id} is not in the final state"
            ));
        };
        let sent = &h.submitted[id];
        if !same_event(r.as_submitted(), sent) {
            return Err(format!(
                "transfer {id} differs from what was submitted: {:?} vs {sent:?}",
                r.as_submitted()
            ));
        }
    }
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
    // Balances from first principles.
    let mut expect: BTreeMap<u128, [u128; 4]> = BTreeMap::new(); // dp, dpo, cp, cpo
    for r in &transfers {
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
    for a in &accounts {
        let got = [
            a.account.debits_pending,
            a.account.debits_posted,
            a.account.credits_pending,
            a.account.credits_posted,
        ];
        let want = expect.get(&a.account.id).copied().unwrap_or_default();
        if got != want {
            return Err(format!(
                "account {} balances {got:?} differ from its transfers' sum {want:?} (pending/posted debits, credits)",
                a.account.id
            ));
        }
    }
    let plain: Vec<ledger::Account> = accounts.iter().map(|a| a.account).collect();
    ledger::conservation::check(plain.iter()).map_err(|e| e.to_string())?;
    Ok(())
}
