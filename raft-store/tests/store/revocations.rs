//! The capability deny-list on both backends: revoke through applied entries, idempotence (the
//! first record wins), paging in token id order, invalid commands as deterministic no-ops,
//! persistence across a RocksDB reopen, and snapshots that carry the list (and refuse a damaged
//! or old-format stream without touching the receiver). Revocations never move the Merkle root.

use crate::common::{entry, log_id, workload_entry};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::EntryPayload;
use raft_store::revocation::REVOCATIONS_PER_COMMAND_MAX;
use raft_store::{
    AdminCommand, AdminOutcome, Command, MemoryStateBackend, Response, Revocation,
    RevocationRecord, RevokeResult, RocksBackend, SnapshotData, StateBackend, StateMachine,
    TypeConfig,
};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn rev(id: u8, reason: &str) -> Revocation {
    Revocation {
        token_id: [id; 16],
        kid: "k1".into(),
        reason: reason.into(),
        revoked_at: 1_000 + u64::from(id),
    }
}

fn admin_entry(index: u64, list: Vec<Revocation>) -> openraft::Entry<TypeConfig> {
    entry(
        1,
        index,
        EntryPayload::Normal(Command::Admin(AdminCommand::Revoke(list))),
    )
}

fn apply<B: StateBackend>(backend: &B, entries: Vec<openraft::Entry<TypeConfig>>) -> Vec<Response> {
    StateMachine::<TypeConfig, B>::apply_blocking(backend, entries).unwrap()
}

fn revoked(results: &[RevokeResult]) -> Response {
    Response::Admin(AdminOutcome::Revoked(results.to_vec()))
}

/// The same scenario on any backend; returns the final deny-list.
fn scenario<B: StateBackend>(backend: &B) -> Vec<RevocationRecord> {
    use RevokeResult::{Exists, Ok};
    apply(backend, (1..=3).map(|i| workload_entry(2, i, 20)).collect());
    let meta = backend.ledger_meta().unwrap();
    let replies = apply(
        backend,
        vec![
            admin_entry(4, vec![rev(9, "leaked"), rev(3, "rotated"), rev(9, "dup")]),
            admin_entry(5, vec![rev(3, "again"), rev(1, "lost")]),
            // Invalid (reason over the bound): a no-op with an error result, never a failure.
            admin_entry(6, vec![rev(7, &"x".repeat(201))]),
            admin_entry(7, Vec::new()),
        ],
    );
    assert_eq!(replies[0], revoked(&[Ok, Ok, Exists]));
    assert_eq!(replies[1], revoked(&[Exists, Ok]));
    assert!(
        matches!(&replies[2], Response::Admin(AdminOutcome::Invalid(m)) if m.contains("reason"))
    );
    assert!(matches!(
        &replies[3],
        Response::Admin(AdminOutcome::Invalid(_))
    ));
    assert_eq!(backend.applied().unwrap().last_applied, Some(log_id(1, 7)));
    assert_eq!(
        backend.ledger_meta().unwrap(),
        meta,
        "revocations are not Merkle leaves"
    );

    // The first record of an id is kept, with the index that applied it.
    let r3 = backend.revocation(&[3; 16]).unwrap().unwrap();
    assert_eq!(
        (r3.reason.as_str(), r3.log_index, r3.revoked_at),
        ("rotated", 4, 1003)
    );
    assert_eq!(
        backend.revocation(&[9; 16]).unwrap().unwrap().reason,
        "leaked"
    );
    assert!(backend.revocation(&[7; 16]).unwrap().is_none());
    assert!(backend.revocation(&[2; 16]).unwrap().is_none());

    // Paging, in token id order.
    let all = backend.revocations(None, 100).unwrap();
    let ids: Vec<u8> = all.iter().map(|r| r.token_id[0]).collect();
    assert_eq!(ids, [1, 3, 9]);
    let first = backend.revocations(None, 2).unwrap();
    assert_eq!(first, all[..2]);
    let rest = backend.revocations(Some(first[1].token_id), 2).unwrap();
    assert_eq!(rest, all[2..]);
    assert!(backend.revocations(Some([9; 16]), 2).unwrap().is_empty());
    assert_eq!(backend.revocations(Some([2; 16]), 1).unwrap(), all[1..2]);
    assert!(backend.revocations(None, 0).unwrap().is_empty());
    all
}

#[test]
fn memory_and_rocksdb_apply_the_deny_list_identically() {
    let dir = tempfile::tempdir().unwrap();
    let memory = MemoryStateBackend::new();
    let rocks = RocksBackend::open(&dir.path().join("r")).unwrap();
    let a = scenario(&memory);
    let b = scenario(&rocks);
    assert_eq!(a, b);
    assert_eq!(memory.digest().unwrap(), rocks.digest().unwrap());
}

#[test]
fn the_digest_covers_the_deny_list() {
    let with = MemoryStateBackend::new();
    let without = MemoryStateBackend::new();
    let ledger: Vec<_> = (1..=3).map(|i| workload_entry(4, i, 10)).collect();
    apply(&with, ledger.clone());
    apply(&without, ledger);
    assert_eq!(with.digest().unwrap(), without.digest().unwrap());
    apply(&with, vec![admin_entry(4, vec![rev(5, "x")])]);
    assert_ne!(with.digest().unwrap(), without.digest().unwrap());
}

#[test]
fn a_full_command_applies_and_one_more_is_refused() {
    let memory = MemoryStateBackend::new();
    let full: Vec<Revocation> = (0..REVOCATIONS_PER_COMMAND_MAX as u32)
        .map(|i| {
            let mut r = rev(0, "bulk");
            r.token_id[..4].copy_from_slice(&i.to_be_bytes());
            r
        })
        .collect();
    let mut over = full.clone();
    over.push(rev(0xee, "one too many"));
    let replies = apply(&memory, vec![admin_entry(1, over), admin_entry(2, full)]);
    assert!(matches!(
        &replies[0],
        Response::Admin(AdminOutcome::Invalid(_))
    ));
    assert!(
        matches!(&replies[1], Response::Admin(AdminOutcome::Revoked(r)) if r.len() == REVOCATIONS_PER_COMMAND_MAX)
    );
    assert_eq!(
        memory.revocations(None, 5000).unwrap().len(),
        REVOCATIONS_PER_COMMAND_MAX
    );
}

#[test]
fn rocksdb_keeps_the_deny_list_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r");
    let before = {
        let rocks = RocksBackend::open(&path).unwrap();
        scenario(&rocks);
        (
            rocks.revocations(None, 100).unwrap(),
            rocks.digest().unwrap(),
        )
    };
    let rocks = RocksBackend::open(&path).unwrap();
    assert_eq!(
        (
            rocks.revocations(None, 100).unwrap(),
            rocks.digest().unwrap()
        ),
        before
    );
    assert!(rocks.revocation(&[9; 16]).unwrap().is_some());
    assert_eq!(rocks.applied().unwrap().last_applied, Some(log_id(1, 7)));
}

async fn read_all(mut data: SnapshotData) -> Vec<u8> {
    let mut out = Vec::new();
    data.read_to_end(&mut out).await.unwrap();
    out
}

async fn receive<B: StateBackend>(
    sm: &mut StateMachine<TypeConfig, B>,
    bytes: &[u8],
) -> Box<SnapshotData> {
    let mut buf = sm.begin_receiving_snapshot().await.unwrap();
    buf.write_all(bytes).await.unwrap();
    buf.flush().await.unwrap();
    buf
}

#[test]
fn snapshots_carry_the_deny_list_both_ways_and_replace_it() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        // RocksDB → memory.
        let rocks = Arc::new(RocksBackend::open(&dir.path().join("a")).unwrap());
        let list = scenario(&*rocks);
        let mut source = StateMachine::<TypeConfig, _>::new(rocks.clone());
        let snap = source
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let bytes = read_all(*snap.snapshot).await;
        assert_eq!(&bytes[..8], b"RLSNAP03");
        let memory = Arc::new(MemoryStateBackend::new());
        let mut target = StateMachine::<TypeConfig, _>::new(memory.clone());
        // The receiver had its own deny-list: install replaces it.
        apply(&*memory, vec![admin_entry(1, vec![rev(0x42, "stale")])]);
        let buf = receive(&mut target, &bytes).await;
        target.install_snapshot(&snap.meta, buf).await.unwrap();
        assert_eq!(memory.revocations(None, 100).unwrap(), list);
        assert!(memory.revocation(&[0x42; 16]).unwrap().is_none());
        assert_eq!(memory.digest().unwrap(), rocks.digest().unwrap());

        // Memory → a fresh RocksDB, which keeps it across a reopen.
        let snap = target
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let bytes = read_all(*snap.snapshot).await;
        let path = dir.path().join("b");
        {
            let rocks2 = Arc::new(RocksBackend::open(&path).unwrap());
            apply(&*rocks2, vec![admin_entry(1, vec![rev(0x43, "stale")])]);
            let mut sm2 = StateMachine::<TypeConfig, _>::new(rocks2.clone());
            let buf = receive(&mut sm2, &bytes).await;
            sm2.install_snapshot(&snap.meta, buf).await.unwrap();
        }
        let rocks2 = RocksBackend::open(&path).unwrap();
        assert_eq!(rocks2.revocations(None, 100).unwrap(), list);
        assert!(rocks2.revocation(&[0x43; 16]).unwrap().is_none());
        assert_eq!(rocks2.digest().unwrap(), rocks.digest().unwrap());
    });
}

#[test]
fn damaged_or_old_format_snapshots_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let memory = Arc::new(MemoryStateBackend::new());
        scenario(&*memory);
        let mut source = StateMachine::<TypeConfig, _>::new(memory);
        let snap = source
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let bytes = read_all(*snap.snapshot).await;

        let rocks = Arc::new(RocksBackend::open(&dir.path().join("r")).unwrap());
        apply(&*rocks, vec![admin_entry(1, vec![rev(0x42, "mine")])]);
        let mut target = StateMachine::<TypeConfig, _>::new(rocks.clone());
        let before = (
            rocks.digest().unwrap(),
            rocks.applied().unwrap(),
            rocks.revocations(None, 100).unwrap(),
        );
        let state = || {
            (
                rocks.digest().unwrap(),
                rocks.applied().unwrap(),
                rocks.revocations(None, 100).unwrap(),
            )
        };

        // The deny-list is the tail of the stream: damage a byte inside it.
        let mut flipped = bytes.clone();
        let at = flipped.len() - 40;
        flipped[at] ^= 0x10;
        let mut old = bytes.clone();
        old[..8].copy_from_slice(b"RLSNAP02");
        for (bad, expect) in [
            (&flipped[..], "snapshot"),
            (&old[..], "RLSNAP02"),
            (&bytes[..bytes.len() - 1], "snapshot"),
        ] {
            let buf = receive(&mut target, bad).await;
            let e = target.install_snapshot(&snap.meta, buf).await.unwrap_err();
            assert!(format!("{e:?}").contains(expect), "{e:?}");
            assert_eq!(state(), before);
        }
    });
}

#[test]
fn a_damaged_deny_list_record_is_a_typed_corruption_never_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r");
    scenario(&RocksBackend::open(&path).unwrap());
    {
        let db = crate::durability::raw_db(&path);
        let cf = db.cf_handle("revoked").unwrap();
        let mut value = db.get_cf(cf, [3u8; 16]).unwrap().unwrap();
        let last = value.len() - 1;
        value[last] ^= 0x01;
        db.put_cf(cf, [3u8; 16], &value).unwrap();
        // A valid record filed under another id is corruption too.
        let nine = db.get_cf(cf, [9u8; 16]).unwrap().unwrap();
        db.put_cf(cf, [8u8; 16], &nine).unwrap();
    }
    let rocks = RocksBackend::open(&path).unwrap();
    for id in [[3u8; 16], [8u8; 16]] {
        let e = rocks.revocation(&id).unwrap_err();
        assert!(e.is_corruption(), "{e}");
    }
    assert!(
        rocks.revocation(&[1; 16]).unwrap().is_some(),
        "others still read"
    );
    assert!(rocks.revocations(None, 100).unwrap_err().is_corruption());
    assert!(rocks.digest().unwrap_err().is_corruption());
}
