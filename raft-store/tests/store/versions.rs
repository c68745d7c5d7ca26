//! The cluster's effective version on both backends: a `SetClusterVersion` entry raises it (never
//! lowers it), persists across a RocksDB reopen, moves the state digest only once above the base
//! version, switches snapshots from format 3 (what the previous release installs) to format 4,
//! and travels in snapshots both ways; an entry asking for a version this build cannot run stops
//! apply with a typed error instead of applying it.

use crate::common::{entry, workload_entry};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::EntryPayload;
use raft_store::{
    AdminCommand, AdminOutcome, Command, MemoryStateBackend, Response, RocksBackend, SnapshotData,
    StateBackend, StateMachine, TypeConfig, CLUSTER_VERSION,
};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn set_version(index: u64, v: u32) -> openraft::Entry<TypeConfig> {
    entry(
        1,
        index,
        EntryPayload::Normal(Command::Admin(AdminCommand::SetClusterVersion(v))),
    )
}

fn apply<B: StateBackend>(backend: &B, entries: Vec<openraft::Entry<TypeConfig>>) -> Vec<Response> {
    StateMachine::<TypeConfig, B>::apply_blocking(backend, entries).unwrap()
}

async fn snapshot_bytes<B: StateBackend>(
    backend: Arc<B>,
) -> (openraft::SnapshotMeta<u64, raft_store::NodeInfo>, Vec<u8>) {
    let mut sm = StateMachine::<TypeConfig, _>::new(backend);
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut data: SnapshotData = *snap.snapshot;
    let mut out = Vec::new();
    data.read_to_end(&mut out).await.unwrap();
    (snap.meta, out)
}

async fn install<B: StateBackend>(
    backend: Arc<B>,
    meta: &openraft::SnapshotMeta<u64, raft_store::NodeInfo>,
    bytes: &[u8],
) -> Result<(), raft_store::types::StorageError> {
    let mut sm = StateMachine::<TypeConfig, _>::new(backend);
    let mut buf = sm.begin_receiving_snapshot().await.unwrap();
    buf.write_all(bytes).await.unwrap();
    buf.flush().await.unwrap();
    sm.install_snapshot(meta, buf).await
}

/// Advance on `backend` after a workload: the digests and snapshot formats before and after.
fn advance<B: StateBackend>(backend: &B) -> (raft_store::backend::AppliedState, [u8; 32]) {
    apply(backend, (1..=3).map(|i| workload_entry(4, i, 10)).collect());
    assert_eq!(backend.cluster_version().unwrap(), 1);
    let before = backend.digest().unwrap();
    let root = backend.ledger_meta().unwrap().root;
    let replies = apply(backend, vec![set_version(4, 2), set_version(5, 2)]);
    assert_eq!(replies[0], Response::Admin(AdminOutcome::ClusterVersion(2)));
    assert!(
        matches!(&replies[1], Response::Admin(AdminOutcome::Invalid(w)) if w.contains("already 2")),
        "{:?}",
        replies[1]
    );
    assert_eq!(backend.cluster_version().unwrap(), 2);
    assert_ne!(
        backend.digest().unwrap(),
        before,
        "the digest covers the version"
    );
    assert_eq!(
        backend.ledger_meta().unwrap().root,
        root,
        "the ledger is untouched"
    );
    (backend.applied().unwrap(), backend.digest().unwrap().0)
}

#[test]
fn both_backends_raise_the_version_identically_and_rocksdb_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r");
    let memory = advance(&MemoryStateBackend::new());
    let rocks = advance(&RocksBackend::open(&path).unwrap());
    assert_eq!(memory, rocks);
    let reopened = RocksBackend::open(&path).unwrap();
    assert_eq!(reopened.cluster_version().unwrap(), 2);
    assert_eq!(reopened.digest().unwrap().0, rocks.1);
}

#[test]
fn snapshots_use_the_old_format_until_the_cluster_advances_and_carry_the_version() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let rocks = Arc::new(RocksBackend::open(&dir.path().join("a")).unwrap());
        apply(&*rocks, (1..=3).map(|i| workload_entry(4, i, 10)).collect());
        let (_, old) = snapshot_bytes(rocks.clone()).await;
        assert_eq!(
            &old[..8],
            b"RLSNAP03",
            "a previous-release member can install it"
        );

        apply(&*rocks, vec![set_version(4, 2)]);
        let (meta, new) = snapshot_bytes(rocks.clone()).await;
        assert_eq!(&new[..8], b"RLSNAP04");

        // RocksDB → memory → a fresh RocksDB: the version travels, the digests agree.
        let memory = Arc::new(MemoryStateBackend::new());
        install(memory.clone(), &meta, &new).await.unwrap();
        assert_eq!(memory.cluster_version().unwrap(), 2);
        assert_eq!(memory.digest().unwrap(), rocks.digest().unwrap());
        let (meta2, again) = snapshot_bytes(memory.clone()).await;
        let path = dir.path().join("b");
        {
            let target = Arc::new(RocksBackend::open(&path).unwrap());
            install(target, &meta2, &again).await.unwrap();
        }
        let target = RocksBackend::open(&path).unwrap();
        assert_eq!(target.cluster_version().unwrap(), 2);
        assert_eq!(target.digest().unwrap(), rocks.digest().unwrap());
    });
}

#[test]
fn a_version_this_build_cannot_run_stops_apply_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksBackend::open(&dir.path().join("r")).unwrap();
    apply(&rocks, (1..=2).map(|i| workload_entry(4, i, 10)).collect());
    let before = (rocks.applied().unwrap(), rocks.digest().unwrap());
    let err = StateMachine::<TypeConfig, _>::apply_blocking(
        &rocks,
        vec![set_version(3, CLUSTER_VERSION + 1)],
    )
    .unwrap_err();
    assert_eq!(err.safe_mode_reason(), "version_unsupported");
    assert!(
        err.to_string().contains("replace it with a newer release"),
        "{err}"
    );
    assert_eq!((rocks.applied().unwrap(), rocks.digest().unwrap()), before);
}

#[test]
fn a_format_4_snapshot_without_its_version_or_of_an_unknown_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let source = Arc::new(MemoryStateBackend::new());
        apply(
            &*source,
            (1..=2).map(|i| workload_entry(4, i, 10)).collect(),
        );
        let (meta, v3) = snapshot_bytes(source.clone()).await;
        let target = Arc::new(RocksBackend::open(&dir.path().join("r")).unwrap());
        let before = target.digest().unwrap();
        // Format 3 bytes under a format 4 magic: the version item is missing.
        let mut relabelled = v3.clone();
        relabelled[..8].copy_from_slice(b"RLSNAP04");
        let mut future = v3.clone();
        future[..8].copy_from_slice(b"RLSNAP09");
        for (bad, expect) in [
            (&relabelled, "without a cluster version"),
            (&future, "newer than this build reads"),
        ] {
            let e = install(target.clone(), &meta, bad).await.unwrap_err();
            assert!(format!("{e:?}").contains(expect), "{e:?}");
            assert_eq!(target.digest().unwrap(), before);
        }
    });
}
