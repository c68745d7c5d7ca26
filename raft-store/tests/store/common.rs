//! Shared helpers: deterministic workloads and entry construction.

use ledger::{Account, Batch, Operation, Transfer, TransferFlags};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership};
use raft_store::{Command, NodeInfo, TypeConfig};
use std::collections::{BTreeMap, BTreeSet};

pub const ACCOUNTS: u128 = 50;

/// A small deterministic generator (SplitMix64): workloads are replayable from their seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

pub fn entry(term: u64, index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload,
    }
}

pub fn membership_entry(index: u64) -> Entry<TypeConfig> {
    let voters: BTreeSet<u64> = [1, 2, 3].into_iter().collect();
    let nodes: BTreeMap<u64, NodeInfo> = voters
        .iter()
        .map(|id| {
            (
                *id,
                NodeInfo {
                    api_addr: format!("127.0.0.1:{}", 8000 + id),
                    peer_addr: format!("127.0.0.1:{}", 9000 + id),
                },
            )
        })
        .collect();
    entry(
        1,
        index,
        EntryPayload::Membership(Membership::new(vec![voters], nodes)),
    )
}

/// The accounts every workload starts with (entry 1's payload).
pub fn genesis() -> Batch {
    let accounts = (1..=ACCOUNTS)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            flags: ledger::AccountFlags(if id > 5 {
                ledger::AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
            } else {
                0
            }),
            ..Default::default()
        })
        .collect();
    Batch {
        timestamp: 1,
        operations: vec![Operation::CreateAccounts(accounts)],
    }
}

/// The batch for log index `index` (>= 2) of the workload with `seed`: a mix of plain, pending,
/// post, void and linked transfers, some of which fail. Deterministic in (seed, index).
pub fn batch(seed: u64, index: u64, events: usize) -> Batch {
    let mut rng = Rng(seed ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut transfers = Vec::with_capacity(events);
    for i in 0..events {
        let id = u128::from(index) * 100_000 + i as u128 + 1;
        let debit = 1 + u128::from(rng.below(ACCOUNTS as u64));
        let mut credit = 1 + u128::from(rng.below(ACCOUNTS as u64));
        if credit == debit {
            credit = debit % ACCOUNTS + 1;
        }
        let amount = u128::from(1 + rng.below(20));
        let t = match rng.below(10) {
            0 => Transfer {
                flags: TransferFlags(TransferFlags::PENDING),
                timeout: rng.below(3) as u32,
                ..plain(id, debit, credit, amount)
            },
            1 if index > 2 => Transfer {
                id,
                pending_id: u128::from(index - 1) * 100_000
                    + u128::from(rng.below(events as u64))
                    + 1,
                flags: TransferFlags(if rng.below(2) == 0 {
                    TransferFlags::POST_PENDING_TRANSFER
                } else {
                    TransferFlags::VOID_PENDING_TRANSFER
                }),
                ..Default::default()
            },
            2 => Transfer {
                flags: TransferFlags(TransferFlags::LINKED),
                ..plain(id, debit, credit, amount)
            },
            _ => plain(id, debit, credit, amount),
        };
        transfers.push(t);
    }
    Batch {
        // Cluster time advances 0.4 s per entry, so pending timeouts expire along the way.
        timestamp: index * 400_000_000,
        operations: vec![Operation::CreateTransfers(transfers)],
    }
}

fn plain(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 1,
        code: 1,
        ..Default::default()
    }
}

/// Entry `index` of the workload: 1 = membership, 2 = genesis accounts, then transfer batches.
pub fn workload_entry(seed: u64, index: u64, events: usize) -> Entry<TypeConfig> {
    match index {
        1 => membership_entry(1),
        2 => entry(1, 2, EntryPayload::Normal(Command::Ledger(genesis()))),
        _ => entry(
            1,
            index,
            EntryPayload::Normal(Command::Ledger(batch(seed, index, events))),
        ),
    }
}
