//! The storage format a store records, and the stores a build refuses to open: a newer format,
//! and a store from before release 0.1.0 (no query indexes). A store 0.1.0 wrote (no record) is
//! opened as is and marked once. A store moves from format 1 to 2 with the entry that raises the
//! cluster version (or with a snapshot of such a cluster), and answers exactly as before.

use crate::common::{entry, workload_entry, ACCOUNTS};
use crate::durability::raw_db;
use ledger::codec::Kind;
use ledger::query::{Filter, Order, Side, Target};
use openraft::EntryPayload;
use raft_store::{
    AdminCommand, Command, MemoryStateBackend, RocksBackend, StateBackend, StateMachine,
    TypeConfig, NODE_LEVEL_MIN, STORAGE_FORMAT, STORAGE_FORMAT_MIN,
};
use std::path::Path;

/// The storage format recorded in the store at `data`, read without the backend.
fn recorded(data: &Path) -> Option<u32> {
    let db = raw_db(data);
    let meta = db.cf_handle("meta").unwrap();
    db.get_cf(meta, "storage_format")
        .unwrap()
        .map(|b| raft_store::record::open(Kind::RaftMeta, "meta", b"storage_format", &b).unwrap())
}

fn refusal(data: &Path) -> String {
    match RocksBackend::open(data) {
        Ok(_) => panic!("the store opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_new_store_records_its_format_and_reopens() {
    // Format 1 until the cluster advances: a member can still be rolled back to 0.1.0.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    drop(RocksBackend::open(&data).unwrap());
    assert_eq!(recorded(&data), Some(STORAGE_FORMAT_MIN));
    drop(RocksBackend::open(&data).unwrap());
    assert_eq!(recorded(&data), Some(STORAGE_FORMAT_MIN));
}

#[test]
fn a_store_without_a_format_record_is_read_as_is_and_marked_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    drop(RocksBackend::open(&data).unwrap());
    {
        // What release 0.1.0 left: the same layout, no record.
        let db = raw_db(&data);
        db.delete_cf(db.cf_handle("meta").unwrap(), "storage_format")
            .unwrap();
    }
    assert_eq!(recorded(&data), None);
    drop(RocksBackend::open(&data).unwrap());
    assert_eq!(recorded(&data), Some(STORAGE_FORMAT_MIN));
}

#[test]
fn a_newer_format_is_refused_naming_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    drop(RocksBackend::open(&data).unwrap());
    {
        let db = raw_db(&data);
        let newer = raft_store::record::seal(Kind::RaftMeta, &(STORAGE_FORMAT + 1));
        db.put_cf(db.cf_handle("meta").unwrap(), "storage_format", newer)
            .unwrap();
    }
    let e = refusal(&data);
    assert!(
        e.contains(&format!("storage format {}", STORAGE_FORMAT + 1))
            && e.contains(&format!("formats 1 to {STORAGE_FORMAT}"))
            && e.contains("newer release"),
        "{e}"
    );
    // Refused without being changed.
    assert_eq!(recorded(&data), Some(STORAGE_FORMAT + 1));
}

#[test]
fn a_store_from_before_the_query_indexes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    {
        // The column families of a build before 0.1.0: no `index`, no `balances`.
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let old = [
            "log",
            "meta",
            "state",
            "accounts",
            "transfers",
            "statuses",
            "expiry",
            "history",
            "leaves",
            "nodes",
            "revoked",
        ];
        drop(rocksdb::DB::open_cf(&opts, data.join("db"), old).unwrap());
    }
    let e = refusal(&data);
    assert!(e.contains("older than ron-ledger 0.1.0"), "{e}");
    // Refused without being changed: still no index column family.
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), data.join("db")).unwrap();
    assert!(!cfs.iter().any(|c| c == "index"), "{cfs:?}");
}

/// Everything a client can read that format 2 derives instead of storing: each account's
/// history (whole, and a window with a limit), its transfers through the account index in both
/// orders, and inclusion and consistency proofs at every tree size from `sizes`.
#[derive(Debug, PartialEq)]
struct Answers {
    history: Vec<Vec<u128>>,
    account_transfers: Vec<Vec<u128>>,
    proofs: Vec<(ledger::InclusionProof, ledger::ConsistencyProof)>,
}

fn answers(b: &impl StateBackend, size: u64) -> Answers {
    let mut history = Vec::new();
    let mut account_transfers = Vec::new();
    for account in 1..=ACCOUNTS {
        history.push(b.account_history(account, 0, u64::MAX, usize::MAX).unwrap());
        history.push(
            b.account_history(account, 2_000_000_000, 4_000_000_000, 5)
                .unwrap(),
        );
        for order in [Order::Asc, Order::Desc] {
            let filter = Filter {
                order,
                limit: 7,
                ..Filter::default()
            };
            let target = Target::AccountTransfers {
                account_id: account,
                side: Side::Both,
            };
            let found = b.query_transfers(target, &filter).unwrap();
            account_transfers.push(found.iter().map(|t| t.transfer.id).collect());
        }
    }
    let proofs = [0, 1, 15, 16, 17, size / 2, size - 1]
        .into_iter()
        .map(|i| {
            (
                b.inclusion_proof(i, size).unwrap(),
                b.consistency_proof(i + 1, size).unwrap(),
            )
        })
        .collect();
    Answers {
        history,
        account_transfers,
        proofs,
    }
}

fn raise_to_2(index: u64) -> openraft::Entry<TypeConfig> {
    entry(
        1,
        index,
        EntryPayload::Normal(Command::Admin(AdminCommand::SetClusterVersion(2))),
    )
}

/// Keys of a column family of the store at `data`, read without the backend.
fn keys(data: &Path, cf: &str) -> Vec<Box<[u8]>> {
    let db = raw_db(data);
    let cf = db.cf_handle(cf).unwrap();
    db.iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|item| item.unwrap().0)
        .collect()
}

#[test]
fn the_cluster_version_moves_a_store_to_format_2_and_every_answer_stays_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let rocks = RocksBackend::open(&data).unwrap();
    let memory = MemoryStateBackend::new();
    let first: Vec<_> = (1..=8).map(|i| workload_entry(7, i, 120)).collect();
    StateMachine::<TypeConfig, _>::apply_blocking(&rocks, first.clone()).unwrap();
    StateMachine::<TypeConfig, _>::apply_blocking(&memory, first).unwrap();
    let size = rocks.ledger_meta().unwrap().tree.size;
    assert!(size > 64, "{size}");
    let before = answers(&rocks, size);
    assert_eq!(before, answers(&memory, size));
    assert!(before.history.iter().any(|h| h.len() > 5));
    assert_eq!(rocks.format(), 1);

    // The entry that raises the cluster version moves the store, in the same write.
    StateMachine::<TypeConfig, _>::apply_blocking(&rocks, vec![raise_to_2(9)]).unwrap();
    StateMachine::<TypeConfig, _>::apply_blocking(&memory, vec![raise_to_2(9)]).unwrap();
    assert_eq!(rocks.format(), STORAGE_FORMAT);
    assert_eq!(answers(&rocks, size), before);
    assert_eq!(rocks.digest().unwrap(), memory.digest().unwrap());

    // And it goes on in format 2, answering as the memory backend (which keeps everything).
    let more: Vec<_> = (10..=14).map(|i| workload_entry(7, i, 120)).collect();
    StateMachine::<TypeConfig, _>::apply_blocking(&rocks, more.clone()).unwrap();
    StateMachine::<TypeConfig, _>::apply_blocking(&memory, more).unwrap();
    let size = rocks.ledger_meta().unwrap().tree.size;
    let after = answers(&rocks, size);
    assert_eq!(after, answers(&memory, size));
    assert_eq!(rocks.digest().unwrap(), memory.digest().unwrap());
    let digest = rocks.digest().unwrap();
    drop(rocks);

    // What is stored: no history, no node below the lowest kept level, format 2 recorded.
    assert_eq!(recorded(&data), Some(STORAGE_FORMAT));
    assert!(keys(&data, "history").is_empty());
    let nodes = keys(&data, "nodes");
    assert!(!nodes.is_empty());
    assert!(
        nodes.iter().all(|k| k[0] >= NODE_LEVEL_MIN),
        "a low node was kept"
    );
    // The index still holds both sides of every transfer.
    assert!(!keys(&data, "index").is_empty());

    // Reopened, it is still format 2 and answers the same.
    let rocks = RocksBackend::open(&data).unwrap();
    assert_eq!(rocks.format(), STORAGE_FORMAT);
    assert_eq!(rocks.digest().unwrap(), digest);
    assert_eq!(answers(&rocks, size), after);

    // Its snapshot carries the history (a 0.1.0 member or format-1 store reads it) and moves a
    // new store, which starts in format 1, to format 2 as it installs.
    let (meta, data_file) = rocks.build_snapshot().unwrap();
    let raft_store::SnapshotData::File(file) = data_file else {
        panic!("a RocksDB snapshot is a file")
    };
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file.try_into_std().unwrap(), &mut bytes).unwrap();
    let fresh = RocksBackend::open(&dir.path().join("f")).unwrap();
    assert_eq!(fresh.format(), 1);
    fresh
        .install_snapshot(&meta, raft_store::SnapshotSource::Memory(bytes.clone()))
        .unwrap();
    assert_eq!(fresh.format(), STORAGE_FORMAT);
    assert_eq!(fresh.digest().unwrap(), digest);
    assert_eq!(answers(&fresh, size), after);
    drop(fresh);
    assert!(keys(&dir.path().join("f"), "history").is_empty());
    // Into the memory backend too (the stream is the same whatever the sender stores).
    let mem2 = MemoryStateBackend::new();
    mem2.install_snapshot(&meta, raft_store::SnapshotSource::Memory(bytes))
        .unwrap();
    assert_eq!(mem2.digest().unwrap(), digest);
}
