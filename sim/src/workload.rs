//! The simulated clients: the real SDK (discovery, retries with backoff, the same ids on every
//! resend) over the simulated network, submitting single and batched transfers, balancing
//! transfers, linked chains (some failing in the middle), pending transfers that are posted (in
//! full or in part), voided or left to expire, closing transfers (which close an account until
//! voided or expired), reversals under dual control, and linearizable reads. Every submission
//! and every answer is written to the shared [`History`] for the checkers. Beside them, an
//! operator changes the membership ([`membership`]) and a probe checks which clock a node
//! judges capability validity by ([`clock_probe`]).

use crate::net::{SimConnector, SimTransport};
use crate::{Shared, API_PORT, PEER_PORT};
use ledger::{Account, Transfer, TransferFlags};
use node::seam::{Call, Connector};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ron_ledger_client::{Capability, Client, ClientConfig, Consistency, Error};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use test_support::events::account;

/// Accounts of ledger 1 and ledger 2.
pub const LEDGER1: [u128; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
/// Accounts of ledger 2.
pub const LEDGER2: [u128; 4] = [101, 102, 103, 104];
/// An account that never exists (a chain that names it fails as a whole).
pub const MISSING: u128 = 999;

/// How a transfer was acknowledged.
#[derive(Clone, Copy, Debug)]
pub struct Ack {
    /// The cluster timestamp of the event that acknowledged it (for an `exists` answer to a
    /// resend, a later one than the transfer's own), if the answer carried one.
    pub timestamp: Option<u64>,
}

/// Everything the clients did and were told.
#[derive(Default)]
pub struct History {
    /// Every transfer ever sent, by id.
    pub submitted: BTreeMap<u128, Transfer>,
    /// Transfers acknowledged as applied (`ok`, or `exists` on a resend).
    pub acked: BTreeMap<u128, Ack>,
    /// Transfers acknowledged as rejected, with the code.
    pub rejected: BTreeMap<u128, u16>,
    /// Calls whose outcome is unknown (retries exhausted).
    pub unknown: u64,
    /// Linearizable reads performed.
    pub reads: u64,
    /// How many events got each result.
    pub results: BTreeMap<String, u64>,
    /// The latest cluster timestamp any answer carried.
    pub latest: u64,
    /// Capability probes answered as the node's own clock says they should be.
    pub probes: u64,
}

fn accounts() -> Vec<Account> {
    LEDGER1
        .iter()
        .map(|id| (*id, 1))
        .chain(LEDGER2.iter().map(|id| (*id, 2)))
        .map(|(id, ledger)| account(id, ledger))
        .collect()
}

struct Worker {
    client: Client,
    rng: StdRng,
    shared: Arc<Shared>,
    next_id: u128,
    /// Acknowledged pending transfers this client may post or void (closing ones only void).
    pending: Vec<Transfer>,
    /// Acknowledged posted transfers this client may reverse.
    posted: Vec<Transfer>,
    approval: Option<Capability>,
}

impl Worker {
    fn fresh_id(&mut self) -> u128 {
        self.next_id += 1;
        self.next_id
    }

    fn simple(&mut self, flags: u16) -> Transfer {
        let (pool, ledger): (&[u128], u32) = if self.rng.gen_bool(0.75) {
            (&LEDGER1, 1)
        } else {
            (&LEDGER2, 2)
        };
        let debit = pool[self.rng.gen_range(0..pool.len())];
        let mut credit = pool[self.rng.gen_range(0..pool.len())];
        if credit == debit {
            credit = pool[(pool.iter().position(|a| *a == debit).unwrap_or(0) + 1) % pool.len()];
        }
        Transfer {
            id: self.fresh_id(),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: self.rng.gen_range(1..=1_000),
            ledger,
            code: 1,
            flags: TransferFlags(flags),
            ..Default::default()
        }
    }

    /// A transfer that fails on the state, not on its own: a missing account, a pending
    /// transfer that does not exist, or more than can be posted.
    fn failing(&mut self) -> Transfer {
        let mut t = self.simple(0);
        match self.rng.gen_range(0..3) {
            0 => t.credit_account_id = MISSING,
            1 => {
                t = Transfer {
                    id: t.id,
                    pending_id: u128::from(u64::MAX) << 8,
                    flags: TransferFlags(TransferFlags::POST_PENDING_TRANSFER),
                    ..Default::default()
                }
            }
            _ => t.debit_account_id = MISSING,
        }
        t
    }

    /// Submit `batch`, record every answer; the acknowledged ones may be read back.
    async fn submit(&mut self, batch: Vec<Transfer>) {
        let floor = {
            let mut h = self.shared.history();
            for t in &batch {
                h.submitted.insert(t.id, *t);
            }
            h.latest
        };
        let reversal = batch.iter().any(Transfer::requires_governance);
        let answer = match (&self.approval, reversal) {
            (Some(approval), true) => self.client.reverse_transfers(batch.clone(), approval).await,
            _ => self.client.create_transfers(batch.clone()).await,
        };
        match answer {
            Ok(outcomes) => {
                let mut acked = Vec::new();
                {
                    let mut h = self.shared.history();
                    for (t, o) in batch.iter().zip(outcomes) {
                        *h.results.entry(o.result.as_str().to_string()).or_default() += 1;
                        if let Some(ts) = o.timestamp {
                            // Cluster time follows real time: an event sequenced after another
                            // was answered has a later timestamp, whoever leads and whatever
                            // its clock says.
                            if ts <= floor {
                                let what = format!(
                                    "cluster time went backwards: transfer {} was sequenced at {ts}, but an event answered before it was submitted had {floor}",
                                    t.id
                                );
                                drop(h);
                                self.shared.violation(what);
                                return;
                            }
                            h.latest = h.latest.max(ts);
                        }
                        if o.result.is_success() {
                            h.acked.insert(
                                t.id,
                                Ack {
                                    timestamp: o.timestamp,
                                },
                            );
                            acked.push(*t);
                        } else {
                            h.rejected.insert(t.id, o.result.code());
                        }
                    }
                }
                for t in acked {
                    let f = t.flags;
                    if f.has(TransferFlags::PENDING) {
                        self.pending.push(t);
                    } else if (f.0 & !TransferFlags::LINKED) == 0 && self.posted.len() < 64 {
                        self.posted.push(t);
                    }
                    if self.rng.gen_bool(0.3) {
                        self.read_back(t.id).await;
                    }
                }
            }
            Err(Error::Unavailable { .. }) => self.shared.history().unknown += 1,
            Err(e) => self
                .shared
                .violation(format!("a valid write was refused: {e}")),
        }
    }

    /// A linearizable read started after `id` was acknowledged must see it.
    async fn read_back(&mut self, id: u128) {
        match self.client.lookup_transfer(id, Consistency::Linearizable).await {
            Ok(Some(_)) => self.shared.history().reads += 1,
            Ok(None) => self.shared.violation(format!(
                "stale read: transfer {id} was acknowledged, then a linearizable read did not find it (at {:.3}s)",
                turmoil::sim_elapsed().unwrap_or_default().as_secs_f64()
            )),
            Err(Error::Unavailable { .. }) => {}
            Err(e) => self.shared.violation(format!("read of {id} failed: {e}")),
        }
    }

    async fn step(&mut self) {
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=29 => {
                let n = if self.rng.gen_bool(0.5) {
                    1
                } else {
                    self.rng.gen_range(2..=8)
                };
                let batch = (0..n).map(|_| self.simple(0)).collect();
                self.submit(batch).await;
            }
            30..=35 => {
                // Balancing: at most what the debit account can give (or the credit account
                // take); an amount of 0 means "as much as possible".
                let flag = if self.rng.gen_bool(0.5) {
                    TransferFlags::BALANCING_DEBIT
                } else {
                    TransferFlags::BALANCING_CREDIT
                };
                let mut t = self.simple(flag);
                if self.rng.gen_bool(0.3) {
                    t.amount = 0;
                }
                self.submit(vec![t]).await;
            }
            36..=49 => {
                // A linked chain of 2–4; 40% of them fail at a random member (the first, one in
                // the middle or the last), which must fail the whole chain.
                let n = self.rng.gen_range(2..=4);
                let mut chain: Vec<Transfer> = (0..n)
                    .map(|_| {
                        let flags = if self.rng.gen_bool(0.2) {
                            TransferFlags::PENDING
                        } else {
                            0
                        };
                        let mut t = self.simple(flags);
                        if flags != 0 {
                            t.timeout = self.rng.gen_range(1..=4);
                        }
                        t
                    })
                    .collect();
                if self.rng.gen_bool(0.4) {
                    let at = self.rng.gen_range(0..n);
                    let id = chain[at].id;
                    chain[at] = Transfer {
                        id,
                        ..self.failing()
                    };
                }
                for t in &mut chain[..n - 1] {
                    t.flags = TransferFlags(t.flags.0 | TransferFlags::LINKED);
                }
                self.submit(chain).await;
            }
            50..=61 => {
                let mut t = self.simple(TransferFlags::PENDING);
                t.timeout = self.rng.gen_range(1..=4);
                self.submit(vec![t]).await;
            }
            62..=65 => {
                // A closing transfer: the account stays closed until it is voided or expires
                // (this workload never posts one, which would close it for good).
                let flag = if self.rng.gen_bool(0.5) {
                    TransferFlags::CLOSING_DEBIT
                } else {
                    TransferFlags::CLOSING_CREDIT
                };
                let mut t = self.simple(TransferFlags::PENDING | flag);
                t.timeout = self.rng.gen_range(1..=2);
                self.submit(vec![t]).await;
            }
            66..=79 if !self.pending.is_empty() => {
                let at = self.rng.gen_range(0..self.pending.len());
                let p = self.pending.swap_remove(at);
                let closing = p.flags.has(TransferFlags::CLOSING_DEBIT)
                    || p.flags.has(TransferFlags::CLOSING_CREDIT);
                let post = !closing && self.rng.gen_bool(0.6);
                let (flag, amount) = if post {
                    // In full (0: the pending amount) or in part.
                    let amount = if self.rng.gen_bool(0.3) {
                        self.rng.gen_range(1..=p.amount)
                    } else {
                        0
                    };
                    (TransferFlags::POST_PENDING_TRANSFER, amount)
                } else {
                    (TransferFlags::VOID_PENDING_TRANSFER, 0)
                };
                let t = Transfer {
                    id: self.fresh_id(),
                    pending_id: p.id,
                    amount,
                    flags: TransferFlags(flag),
                    ..Default::default()
                };
                self.submit(vec![t]).await;
            }
            80..=86 if !self.posted.is_empty() && self.approval.is_some() => {
                // A reversal under dual control; sometimes of one already reversed, or with a
                // wrong amount, which must fail.
                let at = self.rng.gen_range(0..self.posted.len());
                let o = if self.rng.gen_bool(0.8) {
                    self.posted.swap_remove(at)
                } else {
                    self.posted[at]
                };
                let amount = if self.rng.gen_bool(0.1) {
                    o.amount + 1
                } else {
                    0
                };
                let t = Transfer {
                    id: self.fresh_id(),
                    pending_id: o.id,
                    amount,
                    flags: TransferFlags(TransferFlags::REVERSAL),
                    ..Default::default()
                };
                self.submit(vec![t]).await;
            }
            _ => {
                let acked: Vec<u128> = self.shared.history().acked.keys().copied().collect();
                if !acked.is_empty() {
                    let id = acked[self.rng.gen_range(0..acked.len())];
                    self.read_back(id).await;
                }
            }
        }
        let pause = self.rng.gen_range(5..=60);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

fn client_config(k: u64, seed: u64, seeds: Vec<String>, token: Option<&str>) -> ClientConfig {
    let mut config = ClientConfig::new(seeds);
    config.request_timeout = Duration::from_secs(3);
    config.retry_total = Duration::from_secs(20);
    config.jitter_seed = Some(seed ^ (k + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    config.capability = token.map(Capability::new);
    config
}

/// Client `k`: create the accounts (idempotently, every client sends the same ones), then run
/// operations until `until` of simulated time has passed.
pub async fn run(k: u64, seed: u64, seeds: Vec<String>, shared: Arc<Shared>, until: Duration) {
    let config = client_config(k, seed, seeds, shared.token());
    let client = match Client::with_transport(config, Arc::new(SimTransport(shared.client_tls()))) {
        Ok(c) => c,
        Err(e) => return shared.violation(format!("client {k}: {e}")),
    };
    loop {
        match client.create_accounts(accounts()).await {
            Ok(outcomes) if outcomes.iter().all(|o| o.result.is_success()) => break,
            Ok(outcomes) => {
                return shared.violation(format!("account setup refused: {outcomes:?}"));
            }
            Err(Error::Unavailable { .. }) => continue,
            Err(e) => return shared.violation(format!("account setup failed: {e}")),
        }
    }
    let mut worker = Worker {
        client,
        rng: StdRng::seed_from_u64(seed.wrapping_add(k.wrapping_mul(7919))),
        approval: shared.approval().map(Capability::new),
        shared,
        next_id: u128::from(k + 1) << 64,
        pending: Vec::new(),
        posted: Vec::new(),
    };
    let start = tokio::time::Instant::now();
    while start.elapsed() < until && !worker.shared.failed() {
        worker.step().await;
    }
}

/// The operator: while the clients write, add nodes 4 and 5 as learners, promote them
/// (3 -> 5 voters), then remove two voters, the current leader among them (5 -> 3); a removed
/// node is then shut down for good by the driver. Every step is retried until it succeeds;
/// one that has not within 30 s after the traffic is a violation.
pub async fn membership(seed: u64, seeds: Vec<String>, shared: Arc<Shared>, until: Duration) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6d65_6d62);
    let config = client_config(100, seed, seeds, shared.admin_token());
    let client = match Client::with_transport(config, Arc::new(SimTransport(shared.client_tls()))) {
        Ok(c) => c,
        Err(e) => return shared.violation(format!("operator: {e}")),
    };
    let start = tokio::time::Instant::now();
    let deadline = until + Duration::from_secs(30);
    tokio::time::sleep(Duration::from_millis(rng.gen_range(1_500..=3_500))).await;
    macro_rules! retried {
        ($what:expr, $call:expr) => {
            loop {
                if shared.failed() {
                    return;
                }
                match $call.await {
                    Ok(()) => break,
                    Err(e) if start.elapsed() > deadline => {
                        return shared
                            .violation(format!("operator: {} never succeeded: {e}", $what));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        };
    }
    for id in [4u64, 5] {
        let (api, peer) = (format!("n{id}:{API_PORT}"), format!("n{id}:{PEER_PORT}"));
        retried!(
            format!("adding learner {id}"),
            client.add_learner(id, &api, &peer)
        );
        shared.note(format!("n{id} added as a learner"));
    }
    retried!(
        "promoting 4 and 5",
        client.change_membership(&[1, 2, 3, 4, 5])
    );
    shared.note("voters 1,2,3,4,5".into());
    tokio::time::sleep(Duration::from_millis(rng.gen_range(1_000..=3_000))).await;
    let leader = shared.leader().unwrap_or(1);
    let others: Vec<u64> = (1..=5).filter(|n| *n != leader).collect();
    let other = others[rng.gen_range(0..others.len())];
    let keep: Vec<u64> = (1..=5).filter(|n| *n != leader && *n != other).collect();
    retried!("removing two voters", client.change_membership(&keep));
    shared.note(format!(
        "voters {} (removed n{leader}, the leader when asked, and n{other})",
        keep.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    ));
    shared.removed(leader);
    shared.removed(other);
}

/// The outcome of one probe: the error reason, or `accepted` when the token passed and the
/// request failed on its (empty) body; `None` when the node could not be asked.
async fn probe_once(shared: &Shared, node: u64, token: String) -> Option<String> {
    let connector = SimConnector(shared.client_tls());
    let answer = connector
        .call(Call {
            method: "POST",
            addr: format!("n{node}:{API_PORT}"),
            path: "/v1/accounts".into(),
            headers: vec![
                ("authorization", format!("Bearer {token}")),
                ("content-type", "application/json".into()),
            ],
            body: b"[]".to_vec(),
            timeout: Duration::from_secs(1),
        })
        .await
        .ok()?;
    let body = String::from_utf8_lossy(&answer.body);
    if body.contains("\"empty_batch\"") {
        Some("accepted".into())
    } else if let Some(at) = body.find("\"cap_") {
        let reason: String = body[at + 1..].chars().take_while(|c| *c != '"').collect();
        Some(reason)
    } else {
        None
    }
}

/// Capabilities are valid by the clock of the node that checks them: while a node's clock is
/// off by 5 s or more, a token valid only by its clock must pass and one valid only by the true
/// time must be refused (expired or not yet valid).
pub async fn clock_probe(seed: u64, shared: Arc<Shared>, until: Duration) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x636c_6f63);
    let Some(nodes) = u64::try_from(shared.skews.len()).ok().filter(|n| *n > 0) else {
        return;
    };
    let start = tokio::time::Instant::now();
    while start.elapsed() < until && !shared.failed() {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..=600))).await;
        let node = rng.gen_range(1..=nodes);
        let skew = shared.skew_ms(node);
        if skew.abs() < 5_000 || !shared.is_up(node) {
            continue;
        }
        let Some(auth) = shared.auth.as_ref() else {
            return;
        };
        let now_ms = i64::try_from(turmoil::since_epoch().unwrap_or_default().as_millis())
            .unwrap_or(i64::MAX);
        let secs = |ms: i64| u64::try_from(ms / 1_000).unwrap_or(0);
        let (node_now, true_now) = (secs(now_ms + skew), secs(now_ms));
        let ids: [u8; 16] = rng.gen();
        let mine = auth.windowed_token(ids, node_now - 2, node_now + 3);
        let ids: [u8; 16] = rng.gen();
        let theirs = auth.windowed_token(ids, true_now - 2, true_now + 3);
        let a = probe_once(&shared, node, mine).await;
        let b = probe_once(&shared, node, theirs).await;
        if shared.skew_ms(node) != skew {
            continue; // the clock jumped meanwhile
        }
        if let Some(reason) = a.as_deref().filter(|r| *r != "accepted") {
            return shared.violation(format!(
                "capabilities: node {node} (clock {skew:+} ms) refused a token valid by its own clock: {reason}"
            ));
        }
        if b.as_deref() == Some("accepted") {
            return shared.violation(format!(
                "capabilities: node {node} (clock {skew:+} ms) accepted a token valid only by the true clock"
            ));
        }
        if a.is_some() && b.is_some() {
            shared.history().probes += 1;
        }
    }
}
