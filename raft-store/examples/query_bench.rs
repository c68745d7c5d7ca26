//! Query cost benchmark (a program, not a test): do the secondary indexes answer in
//! O(results · log n), never a scan?
//!
//! Builds a ledger of N transfers over 10,000 accounts (in-memory, and on RocksDB with
//! `--rocksdb`), then for each of several ledger sizes on the way times a fixed set of queries
//! that each return the same number of results whatever the size, and counts the index seeks each
//! makes (memory). If a query scanned, its seeks and time would grow with N; if it is
//! O(results · log n), seeks stay flat and time grows like log n.
//!
//! Transfers carry `code = 1 + id % 10` and `user_data_64 = id % 1000`, so `code = 3` matches a
//! tenth of them, `user_data_64 = 7` a thousandth, and both together a thousandth (every id with
//! id % 1000 = 7 has id % 10 = 7, so code 8): the conjunction walks two lists of very different
//! lengths.
//!
//! ```text
//! cargo run --release -p raft-store --example query_bench -- --transfers 1000000 [--rocksdb DIR]
//! ```

use ledger::query::{query, IndexField, IndexRead, Order};
use ledger::{
    apply, Account, BalanceEntry, Batch, Filter, MemoryState, Operation, ReadError, Side,
    StateRead, Target, Transfer,
};
use raft_store::{AppliedState, RocksBackend, StateBackend};
use std::cell::Cell;
use std::time::{Duration, Instant};

const ACCOUNTS: u128 = 10_000;
const BATCH: usize = 8_190;
const REPEATS: usize = 9;

/// Counts the seeks a query makes.
struct Counting<'a> {
    inner: &'a MemoryState,
    seeks: Cell<u64>,
}

impl IndexRead for Counting<'_> {
    fn index_seek(
        &self,
        field: IndexField,
        value: u128,
        timestamp: u64,
        order: Order,
    ) -> Result<Option<(u64, u128)>, ReadError> {
        self.seeks.set(self.seeks.get() + 1);
        self.inner.index_seek(field, value, timestamp, order)
    }

    fn balance_seek(
        &self,
        account_id: u128,
        timestamp: u64,
        order: Order,
    ) -> Result<Option<(u64, BalanceEntry)>, ReadError> {
        self.seeks.set(self.seeks.get() + 1);
        self.inner.balance_seek(account_id, timestamp, order)
    }
}

/// The queries: name, target, filter. Each but the last returns `limit` results once the ledger
/// holds enough transfers; the last matches nothing.
fn queries() -> Vec<(&'static str, Target, Filter)> {
    let page = |f: Filter| Filter { limit: 100, ..f };
    vec![
        (
            "newest 100 transfers",
            Target::Transfers,
            page(Filter {
                order: Order::Desc,
                ..Filter::default()
            }),
        ),
        (
            "code = 3, first 100",
            Target::Transfers,
            page(Filter {
                code: 3,
                ..Filter::default()
            }),
        ),
        (
            "user_data_64 = 7, newest 100",
            Target::Transfers,
            page(Filter {
                user_data_64: 7,
                order: Order::Desc,
                ..Filter::default()
            }),
        ),
        (
            "code = 8 and user_data_64 = 7, 100",
            Target::Transfers,
            page(Filter {
                code: 8,
                user_data_64: 7,
                ..Filter::default()
            }),
        ),
        (
            // Account 42 is debited by ids with id % 10,000 = 41, all of code 2.
            "account 42 debits, code = 2, 10",
            Target::AccountTransfers {
                account_id: 42,
                side: Side::Debits,
            },
            Filter {
                code: 2,
                limit: 10,
                ..Filter::default()
            },
        ),
        (
            // No transfer matches both: the walk costs the entries it skips, at most about twice
            // the shorter list (the account's debits), which grows with the ledger.
            "no match: account 42 debits, code = 3",
            Target::AccountTransfers {
                account_id: 42,
                side: Side::Debits,
            },
            Filter {
                code: 3,
                limit: 10,
                ..Filter::default()
            },
        ),
    ]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn transfer(id: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: 1 + id % ACCOUNTS,
        credit_account_id: 1 + (id * 7 + 3) % ACCOUNTS,
        amount: 1,
        ledger: 1,
        code: 1 + (id % 10) as u16,
        user_data_64: (id % 1000) as u64,
        ..Default::default()
    }
}

fn batches(total: u128) -> impl Iterator<Item = Batch> {
    let accounts: Vec<Account> = (1..=ACCOUNTS)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            ..Default::default()
        })
        .collect();
    let first = Batch {
        timestamp: 1,
        operations: vec![Operation::CreateAccounts(accounts)],
    };
    let mut next = 1u128;
    std::iter::once(first).chain(std::iter::from_fn(move || {
        if next > total {
            return None;
        }
        let end = (next + BATCH as u128).min(total + 1);
        let events: Vec<Transfer> = (next..end)
            .filter(|id| {
                let t = transfer(*id);
                t.debit_account_id != t.credit_account_id
            })
            .map(transfer)
            .collect();
        next = end;
        Some(Batch {
            timestamp: 1,
            operations: vec![Operation::CreateTransfers(events)],
        })
    }))
}

fn report_memory(state: &MemoryState) {
    let size = state.meta().expect("meta").tree.size;
    println!("memory, {size} leaves:");
    for (name, target, f) in queries() {
        let counting = Counting {
            inner: state,
            seeks: Cell::new(0),
        };
        let mut times = Vec::new();
        let mut results = 0;
        for _ in 0..REPEATS {
            counting.seeks.set(0);
            let t = Instant::now();
            results = query(&counting, target, &f).expect("query").len();
            times.push(t.elapsed());
        }
        println!(
            "  {name:<38} {results:>4} results  {:>6} seeks  median {:>9.1?}",
            counting.seeks.get(),
            median(times)
        );
    }
}

fn report_rocks(backend: &RocksBackend) {
    let size = backend.ledger_meta().expect("meta").tree.size;
    println!("rocksdb, {size} leaves:");
    for (name, target, f) in queries() {
        let mut times = Vec::new();
        let mut results = 0;
        for _ in 0..REPEATS {
            let t = Instant::now();
            results = backend.query_transfers(target, &f).expect("query").len();
            times.push(t.elapsed());
        }
        println!(
            "  {name:<38} {results:>4} results  median {:>9.1?} (records read too)",
            median(times)
        );
    }
}

fn main() {
    let mut total: u128 = 1_000_000;
    let mut rocks_dir = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--transfers" => {
                total = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--transfers N")
            }
            "--rocksdb" => {
                rocks_dir = Some(std::path::PathBuf::from(it.next().expect("--rocksdb DIR")))
            }
            _ => {
                eprintln!("query_bench [--transfers N] [--rocksdb DIR]");
                std::process::exit(2);
            }
        }
    }
    let checkpoints: Vec<u64> = [10_000u64, 100_000, 1_000_000, 10_000_000]
        .into_iter()
        .filter(|c| u128::from(*c) <= total)
        .collect();
    let rocks = rocks_dir.map(|dir| {
        std::fs::create_dir_all(&dir).expect("create dir");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod 0700");
        RocksBackend::open(&dir).expect("open rocksdb")
    });
    let mut state = MemoryState::new();
    let mut applied = 0u64;
    let mut next_report = 0;
    let started = Instant::now();
    for batch in batches(total) {
        let (_, changes) = apply(&state, &batch).expect("apply");
        if let Some(r) = &rocks {
            let (_, rc) = r.apply(&batch).expect("apply on rocksdb");
            assert_eq!(rc, changes, "both backends apply alike");
            r.commit(Some(rc), &AppliedState::default(), false)
                .expect("commit");
        }
        state.commit(changes);
        applied += match &batch.operations[0] {
            Operation::CreateTransfers(t) => t.len() as u64,
            Operation::CreateAccounts(_) => 0,
        };
        while next_report < checkpoints.len() && applied + 10 >= checkpoints[next_report] {
            println!("-- {applied} transfers applied ({:.1?})", started.elapsed());
            report_memory(&state);
            if let Some(r) = &rocks {
                report_rocks(r);
            }
            next_report += 1;
        }
    }
}
