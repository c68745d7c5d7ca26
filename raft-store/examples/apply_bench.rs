//! Apply throughput benchmark (a program, not a test).
//!
//! Applies batches of 8,190 transfers over 10,000 accounts and reports transfers per second for:
//! - `core`: `ledger::apply` + `MemoryState::commit`, single thread (the deterministic core alone);
//! - `memory`: through the `StateMachine` on the in-memory backend;
//! - `rocksdb`: on RocksDB, each entry one atomic WriteBatch committed as the node commits it
//!   (without RocksDB's WAL and not flushed: the Raft log is the state's write-ahead log);
//!   optionally (`--with-log`) also appending each entry to the Raft log first (synced), in
//!   storage format 2 (what a cluster runs once its version has advanced) or, with
//!   `--storage-format 1`, in format 1 (release 0.1.0's, with the derived tables).
//!
//! It also splits the time: ledger logic vs Merkle hashing vs storage commit.
//!
//! ```text
//! cargo run --release -p raft-store --example apply_bench -- --batches 40
//! ```

use ledger::{apply, Account, Batch, MemoryState, Operation, Transfer};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use raft_store::{
    LogBackend, MemoryStateBackend, RocksBackend, StateBackend, StateMachine, TypeConfig,
};
use std::time::{Duration, Instant};

struct Args {
    accounts: u128,
    batches: u64,
    events: usize,
    with_log: bool,
    dir: Option<std::path::PathBuf>,
    only: Option<String>,
    storage_format: u32,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        accounts: 10_000,
        batches: 40,
        events: ledger::limits::BATCH_EVENTS_MAX,
        with_log: false,
        dir: None,
        only: None,
        storage_format: raft_store::STORAGE_FORMAT,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--accounts" => {
                a.accounts = value()?.parse().map_err(|e| format!("--accounts: {e}"))?
            }
            "--batches" => a.batches = value()?.parse().map_err(|e| format!("--batches: {e}"))?,
            "--events" => a.events = value()?.parse().map_err(|e| format!("--events: {e}"))?,
            "--dir" => a.dir = Some(value()?.into()),
            "--only" => a.only = Some(value()?),
            "--with-log" => a.with_log = true,
            "--storage-format" => {
                a.storage_format = value()?
                    .parse()
                    .map_err(|e| format!("--storage-format: {e}"))?;
                if !(raft_store::STORAGE_FORMAT_MIN..=raft_store::STORAGE_FORMAT)
                    .contains(&a.storage_format)
                {
                    return Err(format!(
                        "--storage-format: {} is not 1 or 2",
                        a.storage_format
                    ));
                }
            }
            "--help" | "-h" => {
                println!("apply_bench [--accounts N] [--batches N] [--events N] [--only core|memory|rocksdb] [--with-log] [--storage-format 1|2] [--dir PATH]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.events == 0 || a.events > ledger::limits::BATCH_EVENTS_MAX {
        return Err(format!(
            "--events must be 1..={}",
            ledger::limits::BATCH_EVENTS_MAX
        ));
    }
    Ok(a)
}

/// xorshift: fixed seed, so every run applies the same transfers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn account_batches(n: u128) -> Vec<Batch> {
    let ids: Vec<u128> = (1..=n).collect();
    ids.chunks(ledger::limits::BATCH_EVENTS_MAX)
        .map(|chunk| Batch {
            timestamp: 1,
            operations: vec![Operation::CreateAccounts(
                chunk
                    .iter()
                    .map(|id| Account {
                        id: *id,
                        ledger: 1,
                        code: 1,
                        ..Default::default()
                    })
                    .collect(),
            )],
        })
        .collect()
}

fn transfer_batch(rng: &mut Rng, b: u64, events: usize, accounts: u128) -> Batch {
    let transfers = (0..events)
        .map(|i| {
            let debit = 1 + u128::from(rng.next()) % accounts;
            let credit = 1 + (debit + u128::from(rng.next()) % (accounts - 1)) % accounts;
            Transfer {
                id: u128::from(b) << 32 | i as u128,
                debit_account_id: debit,
                credit_account_id: credit,
                amount: 1 + u128::from(rng.next() % 100),
                ledger: 1,
                code: 1,
                ..Default::default()
            }
        })
        .collect();
    Batch {
        timestamp: b * 1_000_000,
        operations: vec![Operation::CreateTransfers(transfers)],
    }
}

fn entry(index: u64, batch: Batch) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(raft_store::Command::Ledger(batch)),
    }
}

fn report(name: &str, transfers: u64, elapsed: Duration, detail: &str) {
    let rate = transfers as f64 / elapsed.as_secs_f64();
    println!(
        "{name:<10} {transfers:>9} transfers in {:>8.3} s = {rate:>12.0} transfers/s  {detail}",
        elapsed.as_secs_f64()
    );
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("apply_bench: {e}");
            std::process::exit(2);
        }
    };
    let run = |name: &str| args.only.as_deref().is_none_or(|o| o == name);
    let total = args.batches * args.events as u64;
    println!(
        "apply_bench: {} batches x {} transfers over {} accounts",
        args.batches, args.events, args.accounts
    );
    let batches: Vec<Batch> = {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        (0..args.batches)
            .map(|b| transfer_batch(&mut rng, b + 1, args.events, args.accounts))
            .collect()
    };

    if run("core") {
        let mut state = MemoryState::new();
        for b in account_batches(args.accounts) {
            let (_, c) = apply(&state, &b).expect("accounts");
            state.commit(c);
        }
        let (mut logic, mut commit) = (Duration::ZERO, Duration::ZERO);
        for b in &batches {
            let t = Instant::now();
            let (_, changes) = apply(&state, b).expect("apply");
            logic += t.elapsed();
            let t = Instant::now();
            state.commit(changes);
            commit += t.elapsed();
        }
        // The Merkle share of `logic`: hashing the same number of leaves alone.
        let t = Instant::now();
        let mut frontier = ledger::Frontier::default();
        for b in &batches {
            if let Operation::CreateTransfers(ts) = &b.operations[0] {
                for tr in ts {
                    frontier.push(ledger::canonical::transfer_leaf(tr, 0));
                }
            }
        }
        let hashing = t.elapsed();
        std::hint::black_box(frontier.root());
        report(
            "core",
            total,
            logic + commit,
            &format!(
                "(apply {:.3} s of which Merkle leaves+frontier {:.3} s, commit {:.3} s)",
                logic.as_secs_f64(),
                hashing.as_secs_f64(),
                commit.as_secs_f64()
            ),
        );
    }

    if run("memory") {
        let backend = MemoryStateBackend::new();
        let mut index = 1;
        for b in account_batches(args.accounts) {
            StateMachine::<TypeConfig, _>::apply_blocking(&backend, vec![entry(index, b)])
                .expect("accounts");
            index += 1;
        }
        let t = Instant::now();
        for b in &batches {
            StateMachine::<TypeConfig, _>::apply_blocking(&backend, vec![entry(index, b.clone())])
                .expect("apply");
            index += 1;
        }
        report(
            "memory",
            total,
            t.elapsed(),
            "(StateMachine on MemoryStateBackend, one entry per call)",
        );
    }

    if run("rocksdb") {
        let tmp;
        let dir = match &args.dir {
            Some(d) => d.clone(),
            None => {
                tmp = tempfile::tempdir().expect("tempdir");
                tmp.path().join("bench")
            }
        };
        let backend = RocksBackend::open(&dir).expect("open rocksdb");
        if args.storage_format >= 2 {
            // What a running cluster does first: raise the cluster version, which moves the
            // store to format 2.
            let raise = raft_store::AdminWrite {
                records: Vec::new(),
                cluster_version: Some(raft_store::FORMAT_2_CLUSTER_VERSION),
            };
            backend
                .commit_admin(&raise, &raft_store::AppliedState::default(), true)
                .expect("raise the cluster version");
        }
        assert_eq!(backend.format(), args.storage_format);
        let mut index = 1;
        for b in account_batches(args.accounts) {
            StateMachine::<TypeConfig, _>::apply_blocking(&backend, vec![entry(index, b)])
                .expect("accounts");
            index += 1;
        }
        let syncs_before = backend.wal_syncs();
        let (mut logic, mut commit, mut log) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let mut applied = raft_store::AppliedState::default();
        let start = Instant::now();
        for b in &batches {
            if args.with_log {
                let t = Instant::now();
                let e = entry(index, b.clone());
                let sealed = raft_store::record::seal(ledger::codec::Kind::LogEntry, &e);
                backend.append(vec![(index, sealed)]).expect("append");
                log += t.elapsed();
            }
            let t = Instant::now();
            let (_, changes) = backend.apply(b).expect("apply");
            logic += t.elapsed();
            let t = Instant::now();
            applied.last_applied = Some(LogId::new(CommittedLeaderId::new(1, 1), index));
            // As the node commits: not made durable here (the Raft log is the state's WAL).
            backend
                .commit(Some(changes), &applied, false)
                .expect("commit");
            commit += t.elapsed();
            index += 1;
        }
        let elapsed = start.elapsed();
        report(
            "rocksdb",
            total,
            elapsed,
            &format!(
                "(apply {:.3} s, commit {:.3} s, log append+fsync {:.3} s, {} WAL fsyncs)",
                logic.as_secs_f64(),
                commit.as_secs_f64(),
                log.as_secs_f64(),
                backend.wal_syncs() - syncs_before
            ),
        );
    }
}
