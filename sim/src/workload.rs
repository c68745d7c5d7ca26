//! The simulated clients: the real SDK (discovery, retries with backoff, the same ids on every
//! resend) over the simulated network, submitting single and batched transfers, linked chains,
//! pending transfers that are posted, voided or left to expire, and linearizable reads. Every
//! submission and every answer is written to the shared [`History`] for the checkers.

use crate::net::SimTransport;
use crate::Shared;
use ledger::{Account, Transfer, TransferFlags};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ron_ledger_client::{Client, ClientConfig, Consistency, Error};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use test_support::events::account;

/// Accounts of ledger 1 and ledger 2.
pub const LEDGER1: [u128; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
/// Accounts of ledger 2.
pub const LEDGER2: [u128; 4] = [101, 102, 103, 104];
/// An account that never exists (a chain that names it fails as a whole).
pub const MISSING: u128 = 999;

/// Everything the clients did and were told.
#[derive(Default)]
pub struct History {
    /// Every transfer ever sent, by id.
    pub submitted: BTreeMap<u128, Transfer>,
    /// Transfers acknowledged as applied (`ok`, or `exists` on a resend).
    pub acked: BTreeSet<u128>,
    /// Transfers acknowledged as rejected, with the code.
    pub rejected: BTreeMap<u128, u16>,
    /// Calls whose outcome is unknown (retries exhausted).
    pub unknown: u64,
    /// Linearizable reads performed.
    pub reads: u64,
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
    pending: Vec<Transfer>,
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

    /// Submit `batch`, record every answer; the acknowledged ones may be read back.
    async fn submit(&mut self, batch: Vec<Transfer>) {
        {
            let mut h = self.shared.history();
            for t in &batch {
                h.submitted.insert(t.id, *t);
            }
        }
        match self.client.create_transfers(batch.clone()).await {
            Ok(outcomes) => {
                let mut acked = Vec::new();
                {
                    let mut h = self.shared.history();
                    for (t, o) in batch.iter().zip(outcomes) {
                        if o.result.is_success() {
                            h.acked.insert(t.id);
                            acked.push(*t);
                        } else {
                            h.rejected.insert(t.id, o.result.code());
                        }
                    }
                }
                for t in acked {
                    if t.flags.has(TransferFlags::PENDING) {
                        self.pending.push(t);
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
                "stale read: transfer {id} was acknowledged, then a linearizable read did not find it"
            )),
            Err(Error::Unavailable { .. }) => {}
            Err(e) => self.shared.violation(format!("read of {id} failed: {e}")),
        }
    }

    async fn step(&mut self) {
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=44 => {
                let n = if self.rng.gen_bool(0.5) {
                    1
                } else {
                    self.rng.gen_range(2..=8)
                };
                let batch = (0..n).map(|_| self.simple(0)).collect();
                self.submit(batch).await;
            }
            45..=59 => {
                let n = self.rng.gen_range(2..=3);
                let mut chain: Vec<Transfer> =
                    (0..n).map(|_| self.simple(TransferFlags::LINKED)).collect();
                if let Some(last) = chain.last_mut() {
                    last.flags = TransferFlags(0);
                    if self.rng.gen_bool(0.3) {
                        last.credit_account_id = MISSING;
                    }
                }
                self.submit(chain).await;
            }
            60..=74 => {
                let mut t = self.simple(TransferFlags::PENDING);
                t.timeout = self.rng.gen_range(1..=4);
                self.submit(vec![t]).await;
            }
            75..=89 if !self.pending.is_empty() => {
                let at = self.rng.gen_range(0..self.pending.len());
                let p = self.pending.swap_remove(at);
                let flag = if self.rng.gen_bool(0.6) {
                    TransferFlags::POST_PENDING_TRANSFER
                } else {
                    TransferFlags::VOID_PENDING_TRANSFER
                };
                let t = Transfer {
                    id: self.fresh_id(),
                    pending_id: p.id,
                    flags: TransferFlags(flag),
                    ..Default::default()
                };
                self.submit(vec![t]).await;
            }
            _ => {
                let acked: Vec<u128> = self.shared.history().acked.iter().copied().collect();
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

/// Client `k`: create the accounts (idempotently, every client sends the same ones), then run
/// operations until `until` of simulated time has passed.
pub async fn run(k: u64, seed: u64, seeds: Vec<String>, shared: Arc<Shared>, until: Duration) {
    let mut config = ClientConfig::new(seeds);
    config.request_timeout = Duration::from_secs(3);
    config.retry_total = Duration::from_secs(20);
    config.jitter_seed = Some(seed ^ (k + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    config.capability = shared.token().map(ron_ledger_client::Capability::new);
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
        shared,
        next_id: u128::from(k + 1) << 64,
        pending: Vec::new(),
    };
    let start = tokio::time::Instant::now();
    while start.elapsed() < until && !worker.shared.failed() {
        worker.step().await;
    }
}
