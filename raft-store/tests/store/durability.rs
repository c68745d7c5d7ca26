//! The durability rules, one test each, on the RocksDB backend.

use crate::common::{entry, genesis, log_id, membership_entry, workload_entry};
use ledger::{Batch, Operation, StateRead, Transfer};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{EntryPayload, RaftLogReader, Vote};
use raft_store::{
    LogStore, MemoryStateBackend, RocksBackend, StateBackend, StateMachine, StoreError, TypeConfig,
};
use std::path::Path;
use std::sync::Arc;

type Log = LogStore<TypeConfig, RocksBackend>;
type Sm = StateMachine<TypeConfig, RocksBackend>;

fn open(dir: &Path) -> (Arc<RocksBackend>, Log, Sm) {
    let backend = Arc::new(RocksBackend::open(dir).expect("open"));
    (
        backend.clone(),
        LogStore::new(backend.clone()),
        StateMachine::new(backend),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Open the raw database to damage it the way a bad disk would.
pub fn raw_db(dir: &Path) -> rocksdb::DB {
    let names = [
        "log",
        "meta",
        "state",
        "accounts",
        "transfers",
        "statuses",
        "expiry",
        "history",
        "index",
        "balances",
        "leaves",
        "nodes",
        "revoked",
    ];
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(false);
    rocksdb::DB::open_cf(&opts, dir.join("db"), names).expect("raw open")
}

#[test]
fn append_is_reported_only_after_the_wal_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    rt().block_on(async {
        let (backend, mut log, _) = open(&data);
        let before = backend.wal_syncs();
        log.blocking_append(vec![membership_entry(1)])
            .await
            .unwrap();
        assert!(
            backend.wal_syncs() > before,
            "append returned without an fsync of the WAL"
        );
        let before = backend.wal_syncs();
        log.save_vote(&Vote::new(3, 1)).await.unwrap();
        assert!(
            backend.wal_syncs() > before,
            "vote saved without an fsync of the WAL"
        );
    });
    rt().block_on(async {
        let (_, mut log, _) = open(&data);
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
        let entries = log.try_get_log_entries(1..2).await.unwrap();
        assert_eq!(entries.len(), 1);
    });
}

#[test]
fn applied_entry_survives_reopen_with_the_same_root() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let entries: Vec<_> = (1..=6).map(|i| workload_entry(7, i, 200)).collect();
    // Reference: the same entries on the memory backend.
    let memory = MemoryStateBackend::new();
    let expected = StateMachine::<TypeConfig, _>::apply_blocking(&memory, entries.clone()).unwrap();
    rt().block_on(async {
        let (backend, _, mut sm) = open(&data);
        let before = backend.wal_syncs();
        let outcomes = sm.apply(entries.clone()).await.unwrap();
        assert_eq!(
            outcomes, expected,
            "memory and RocksDB give identical results"
        );
        assert_eq!(
            backend.wal_syncs(),
            before,
            "apply writes the state without an fsync of its own (the log is the WAL)"
        );
    });
    rt().block_on(async {
        let (backend, _, mut sm) = open(&data);
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 6)));
        assert_eq!(
            membership.log_id(),
            &Some(log_id(1, 1)),
            "membership stored with the entry"
        );
        assert_eq!(
            backend.ledger_meta().unwrap(),
            memory.ledger_meta().unwrap()
        );
        assert_eq!(backend.digest().unwrap(), memory.digest().unwrap());
        // Applying the same entries again (a replay) is refused, not double-applied.
        let replayed = sm.apply(entries.clone()).await.unwrap();
        assert_eq!(replayed.len(), entries.len(), "one reply per entry");
        assert!(
            replayed
                .iter()
                .all(|o| matches!(o, raft_store::Response::Ledger(o) if o.replies.is_empty())),
            "nothing re-applied"
        );
        assert_eq!(backend.digest().unwrap(), memory.digest().unwrap());
    });
}

#[test]
fn last_purged_log_id_is_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    rt().block_on(async {
        let (_, mut log, _) = open(&data);
        let entries: Vec<_> = (1..=10).map(|i| workload_entry(1, i, 5)).collect();
        log.blocking_append(entries).await.unwrap();
        log.purge(log_id(1, 5)).await.unwrap();
    });
    rt().block_on(async {
        let (_, mut log, _) = open(&data);
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 5)));
        assert_eq!(state.last_log_id, Some(log_id(1, 10)));
        let left = log.try_get_log_entries(0..100).await.unwrap();
        assert_eq!(left.first().map(|e| e.log_id.index), Some(6));
        assert_eq!(left.len(), 5);
        // Purging everything leaves the purge point as the last log id.
        log.purge(log_id(1, 10)).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 10)));
    });
}

/// Replication picks the entries to send before it reads them; a purge in between must not
/// make it send what is left after a `prev_log_id` it no longer follows (a gap in the follower's
/// log: simulation seed 2917). A bounded read that no longer starts where it was asked returns
/// nothing; one that does is unchanged.
#[test]
fn a_replication_read_of_purged_entries_returns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (_, mut log, _) = open(&dir.path().join("d"));
        let entries: Vec<_> = (1..=20).map(|i| workload_entry(1, i, 3)).collect();
        log.blocking_append(entries).await.unwrap();
        log.purge(log_id(1, 12)).await.unwrap();
        assert!(log.limited_get_log_entries(5, 21).await.unwrap().is_empty());
        assert!(log
            .limited_get_log_entries(12, 21)
            .await
            .unwrap()
            .is_empty());
        let left = log.limited_get_log_entries(13, 21).await.unwrap();
        let indexes: Vec<u64> = left.iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, (13..=20).collect::<Vec<_>>());
        // The unbounded read (apply, start-up) still returns what is there.
        assert_eq!(log.try_get_log_entries(5..21).await.unwrap().len(), 8);
    });
}

#[test]
fn the_log_never_has_holes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    rt().block_on(async {
        let (_, mut log, _) = open(&data);
        let entries: Vec<_> = (1..=4).map(|i| workload_entry(1, i, 3)).collect();
        log.blocking_append(entries).await.unwrap();
        let gap = log.blocking_append(vec![workload_entry(1, 6, 3)]).await;
        assert!(gap.is_err(), "appending 6 after 4 must fail");
        assert_eq!(log.try_get_log_entries(0..100).await.unwrap().len(), 4);
    });
    // A hole made behind the store's back is reported, not skipped.
    let db = raw_db(&data);
    db.delete_cf(db.cf_handle("log").unwrap(), 2u64.to_be_bytes())
        .unwrap();
    drop(db);
    let (_, log, _) = open(&data);
    let err = log.read_entries(1, 5).unwrap_err();
    assert!(matches!(err, StoreError::LogGap(_)), "{err}");
}

#[test]
fn corrupted_records_are_typed_errors_never_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    rt().block_on(async {
        let (_, mut log, mut sm) = open(&data);
        let entries: Vec<_> = (1..=3).map(|i| workload_entry(3, i, 20)).collect();
        log.blocking_append(entries.clone()).await.unwrap();
        sm.apply(entries).await.unwrap();
    });
    {
        let db = raw_db(&data);
        for (cf, key) in [
            ("log", 2u64.to_be_bytes().to_vec()),
            ("accounts", 7u128.to_be_bytes().to_vec()),
        ] {
            let handle = db.cf_handle(cf).unwrap();
            let mut value = db.get_cf(handle, &key).unwrap().expect("record present");
            let last = value.len() - 1;
            value[last] ^= 0x40; // one flipped bit
            db.put_cf(handle, &key, value).unwrap();
        }
    }
    let (backend, log, mut sm) = open(&data);
    let err = log.read_entries(1, 4).unwrap_err();
    assert!(
        matches!(err, StoreError::Corruption { cf: "log", .. }),
        "{err}"
    );
    let err = backend.account(7).unwrap_err();
    assert!(matches!(err, ledger::ReadError::Corruption { .. }), "{err}");
    assert!(
        backend.account(8).unwrap().is_some(),
        "other records still read"
    );
    // Apply that touches the corrupt account fails and writes nothing.
    let digest_before = backend.digest();
    let t = Transfer {
        id: 1,
        debit_account_id: 1,
        credit_account_id: 7,
        amount: 1,
        ledger: 1,
        code: 1,
        ..Default::default()
    };
    let e = entry(
        1,
        4,
        EntryPayload::Normal(raft_store::Command::Ledger(Batch {
            timestamp: 9,
            operations: vec![Operation::CreateTransfers(vec![t])],
        })),
    );
    let result = rt().block_on(sm.apply(vec![e]));
    assert!(result.is_err());
    assert_eq!(backend.applied().unwrap().last_applied, Some(log_id(1, 3)));
    assert!(
        digest_before.is_err(),
        "the digest refuses corrupt state too"
    );
}

#[test]
fn data_directory_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = RocksBackend::open(&data)
        .err()
        .expect("a world-readable data dir is refused");
    assert!(matches!(err, StoreError::DataDir(_)), "{err}");
    let fresh = dir.path().join("new");
    drop(RocksBackend::open(&fresh).unwrap());
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn genesis_creates_every_account() {
    let (outcome, _) = ledger::apply(&ledger::MemoryState::new(), &genesis()).unwrap();
    assert_eq!(outcome.tree_size, crate::common::ACCOUNTS as u64);
}

/// The recovery path of the one durable write path: the state's writes are not fsynced, so a
/// power loss can leave the state behind the log (never ahead: both share one WAL, written in
/// order). Here the state holds entries 0..=3 while the synced log holds 1..=6 and the saved
/// commit index is 6 — what a power loss after the log's last fsync leaves — and openraft's
/// start-up (the same call the node makes) re-applies 4..=6 to exactly the state, root and
/// digest of applying everything once.
#[test]
fn state_behind_the_log_is_reapplied_at_start_to_the_same_root() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    // A log as openraft starts it (index 0), then membership, accounts and transfers.
    let mut entries = vec![entry(1, 0, EntryPayload::Blank)];
    entries.extend((1..=6).map(|i| workload_entry(11, i, 150)));
    let memory = MemoryStateBackend::new();
    StateMachine::<TypeConfig, _>::apply_blocking(&memory, entries.clone()).unwrap();
    rt().block_on(async {
        let (_, mut log, mut sm) = open(&data);
        log.blocking_append(entries.clone()).await.unwrap();
        log.save_committed(Some(log_id(1, 6))).await.unwrap();
        sm.apply(entries[..4].to_vec()).await.unwrap();
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 3)), "the state is behind the log");
    });
    rt().block_on(async {
        let (backend, mut log, mut sm) = open(&data);
        openraft::StorageHelper::new(&mut log, &mut sm)
            .get_initial_state()
            .await
            .unwrap();
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(
            applied,
            Some(log_id(1, 6)),
            "re-applied up to the commit index"
        );
        assert_eq!(
            backend.ledger_meta().unwrap(),
            memory.ledger_meta().unwrap()
        );
        assert_eq!(backend.digest().unwrap(), memory.digest().unwrap());
    });
}
