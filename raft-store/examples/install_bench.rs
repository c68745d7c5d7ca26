//! Snapshot install benchmark (a program, not a test): does installing a snapshot stay within a
//! memory bound whatever the ledger's size, and how long does it take?
//!
//! Two steps, each its own process so that the install's peak RSS is its own:
//!
//! ```text
//! install_bench build   --transfers 5000000 --dir /tmp/ib   # the stream of a ledger of N transfers
//! install_bench install --dir /tmp/ib                       # install it into a new RocksDB store
//! ```
//!
//! `build` applies N transfers over 10,000 accounts (batches of 8,190) to the in-memory state
//! and writes its snapshot stream to `<dir>/stream.rlsnap`, with the snapshot's metadata, root and
//! state digest beside it. `install` opens a new store in `<dir>/target`, moves the stream into
//! the place a received snapshot has (as openraft's chunked receive leaves it: no copy), installs
//! it through `StateBackend::install_snapshot`, checks the root and digest, and prints the time
//! and the process's peak resident memory (`VmHWM`) before and after; then takes a backup stream
//! of the installed store (`StateBackend::export_backup`) and prints its time and size.

use ledger::{apply, Account, Batch, MemoryState, Operation, StateRead, Transfer};
use raft_store::backend::SnapshotSource;
use raft_store::snapshot::SnapshotWriter;
use raft_store::{LogId, RocksBackend, SnapshotItem, SnapshotMeta, StateBackend, StoredMembership};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const ACCOUNTS: u128 = 10_000;
const BATCH: usize = 8_190;

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

/// Peak and current resident memory of this process, in KiB (`/proc/self/status`).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn build(total: u128, dir: &Path) {
    std::fs::create_dir_all(dir).expect("create dir");
    let started = Instant::now();
    let mut state = MemoryState::new();
    let accounts: Vec<Account> = (1..=ACCOUNTS)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            ..Default::default()
        })
        .collect();
    let mut batches = vec![Batch {
        timestamp: 1,
        operations: vec![Operation::CreateAccounts(accounts)],
    }];
    let mut index = 0u64;
    let mut next = 1u128;
    loop {
        for batch in batches.drain(..) {
            let (_, changes) = apply(&state, &batch).expect("apply");
            state.commit(changes);
            index += 1;
        }
        if next > total {
            break;
        }
        let end = (next + BATCH as u128).min(total + 1);
        let events: Vec<Transfer> = (next..end)
            .map(transfer)
            .filter(|t| t.debit_account_id != t.credit_account_id)
            .collect();
        next = end;
        batches.push(Batch {
            timestamp: 1,
            operations: vec![Operation::CreateTransfers(events)],
        });
    }
    let meta = state.meta().expect("meta");
    println!(
        "applied {} leaves in {:.1?}",
        meta.tree.size,
        started.elapsed()
    );
    let last_log_id = Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), index));
    let header = SnapshotItem::Header {
        last_log_id,
        membership: StoredMembership::default(),
        ledger: meta.clone(),
    };
    let started = Instant::now();
    let file = std::fs::File::create(dir.join("stream.rlsnap")).expect("create stream");
    let mut w = SnapshotWriter::new(BufWriter::with_capacity(1 << 20, file), header).expect("w");
    for r in state.accounts() {
        w.push(&SnapshotItem::Account(r)).expect("push");
    }
    for r in state.transfers() {
        w.push(&SnapshotItem::Transfer(r)).expect("push");
    }
    for (id, s) in state.statuses() {
        w.push(&SnapshotItem::Status(id, s)).expect("push");
    }
    for k in state.expiry_index() {
        w.push(&SnapshotItem::Expiry(*k)).expect("push");
    }
    for (k, id) in state.history_index() {
        w.push(&SnapshotItem::History(k, id)).expect("push");
    }
    for (k, id) in state.index_entries() {
        w.push(&SnapshotItem::Index(k, id)).expect("push");
    }
    for (k, e) in state.balance_entries() {
        w.push(&SnapshotItem::Balance(k, e)).expect("push");
    }
    for i in 0..state.leaves().len() as u64 {
        let data = state.leaf_data(i).expect("leaf").as_bytes().to_vec();
        w.push(&SnapshotItem::Leaf(i, data)).expect("push");
    }
    let mut out = w.finish().expect("finish");
    out.flush().expect("flush");
    let bytes = std::fs::metadata(dir.join("stream.rlsnap"))
        .expect("stat")
        .len();
    let digest = raft_store::revocation::combine_digest(state.digest().expect("digest"), []);
    let snapshot_meta = SnapshotMeta {
        last_log_id,
        last_membership: StoredMembership::default(),
        snapshot_id: format!("bench-{index}"),
    };
    let expected = serde_json::json!({
        "meta": snapshot_meta,
        "root": meta.root.to_hex(),
        "tree_size": meta.tree.size,
        "digest": digest.to_hex(),
    });
    std::fs::write(dir.join("expected.json"), expected.to_string()).expect("write expected");
    println!(
        "stream: {} bytes ({:.1} MiB) written in {:.1?}; builder peak RSS {:.0} MiB",
        bytes,
        bytes as f64 / (1 << 20) as f64,
        started.elapsed(),
        mib(memory_kib().0)
    );
}

fn install(dir: &Path) {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("expected.json"))
            .expect("json");
    let meta: SnapshotMeta = serde_json::from_value(expected["meta"].clone()).expect("meta");
    let target = dir.join("target");
    if target.exists() {
        std::fs::remove_dir_all(&target).expect("remove old target");
    }
    let store = RocksBackend::open(&target).expect("open target");
    let (peak_before, _) = memory_kib();
    // What openraft's chunked receive leaves: the stream in the receive buffer's file.
    drop(store.receive_buffer().expect("receive buffer"));
    let received: PathBuf = std::fs::read_dir(target.join("snapshots"))
        .expect("snapshots dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with(".tmp"))
        .expect("receive file");
    std::fs::rename(dir.join("stream.rlsnap"), &received).expect("move the stream into place");
    let file = std::fs::File::open(&received).expect("open received");
    let started = Instant::now();
    store
        .install_snapshot(&meta, SnapshotSource::File(file))
        .expect("install");
    let took = started.elapsed();
    let (peak, now) = memory_kib();
    let ledger = store.ledger_meta().expect("meta");
    assert_eq!(ledger.root.to_hex(), expected["root"], "root");
    assert_eq!(ledger.tree.size, expected["tree_size"], "tree size");
    let checked = Instant::now();
    assert_eq!(
        store.digest().expect("digest").to_hex(),
        expected["digest"],
        "digest"
    );
    println!(
        "installed {} leaves in {:.1?} (root and digest match; digest recomputed in {:.1?})",
        ledger.tree.size,
        took,
        checked.elapsed()
    );
    println!(
        "peak RSS: {:.0} MiB before the install (store open), {:.0} MiB after; RSS now {:.0} MiB",
        mib(peak_before),
        mib(peak),
        mib(now)
    );
    // A backup of the installed store: the stream of one view with its digest, as
    // `POST /v1/admin/backup` writes it.
    let started = Instant::now();
    let (summary, backup) = store
        .export_backup(&std::sync::atomic::AtomicBool::new(false))
        .expect("backup");
    drop(backup);
    assert_eq!(summary.digest.to_hex(), expected["digest"], "backup digest");
    println!(
        "backup stream of the installed store: {} bytes ({:.1} MiB) with its digest in {:.1?}; peak RSS {:.0} MiB",
        summary.stream_bytes,
        summary.stream_bytes as f64 / (1 << 20) as f64,
        started.elapsed(),
        mib(memory_kib().0)
    );
    // Give the stream back for the next run.
    let kept = std::fs::read_dir(target.join("snapshots"))
        .expect("snapshots dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "snap"))
        .expect("kept snapshot");
    std::fs::rename(kept, dir.join("stream.rlsnap")).expect("keep the stream");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut total: u128 = 1_000_000;
    let mut dir = PathBuf::from("/tmp/install-bench");
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--transfers" => {
                total = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--transfers N")
            }
            "--dir" => dir = PathBuf::from(args.next().expect("--dir DIR")),
            _ => command_usage(),
        }
    }
    match command.as_str() {
        "build" => build(total, &dir),
        "install" => install(&dir),
        _ => command_usage(),
    }
}

fn command_usage() {
    eprintln!("install_bench build [--transfers N] [--dir DIR] | install [--dir DIR]");
    std::process::exit(2);
}
