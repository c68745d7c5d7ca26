//! Snapshots: built on one backend, streamed as bytes, installed on the other; after install the
//! root and state digest equal the source's at that index. A damaged snapshot is refused and
//! leaves the receiver untouched. Also: memory and RocksDB stay identical over random workloads.

use crate::common::workload_entry;
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use raft_store::{
    MemoryStateBackend, RocksBackend, SnapshotData, StateBackend, StateMachine, TypeConfig,
};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn read_all(mut data: SnapshotData) -> Vec<u8> {
    let mut out = Vec::new();
    data.read_to_end(&mut out).await.unwrap();
    out
}

/// Stream `bytes` into a receiver buffer in 64 KiB chunks, as openraft's chunked transfer does.
async fn receive<B: StateBackend>(
    sm: &mut StateMachine<TypeConfig, B>,
    bytes: &[u8],
) -> Box<SnapshotData> {
    let mut buf = sm.begin_receiving_snapshot().await.unwrap();
    for chunk in bytes.chunks(64 * 1024) {
        buf.write_all(chunk).await.unwrap();
    }
    buf.flush().await.unwrap();
    buf
}

#[test]
fn snapshot_moves_between_backends_with_identical_root() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let entries: Vec<_> = (1..=12).map(|i| workload_entry(11, i, 300)).collect();
        let rocks = Arc::new(RocksBackend::open(&dir.path().join("a")).unwrap());
        let mut source = StateMachine::<TypeConfig, _>::new(rocks.clone());
        source.apply(entries.clone()).await.unwrap();

        // RocksDB → memory.
        let snap = source
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let bytes = read_all(*snap.snapshot).await;
        let memory = Arc::new(MemoryStateBackend::new());
        let mut target = StateMachine::<TypeConfig, _>::new(memory.clone());
        let buf = receive(&mut target, &bytes).await;
        target.install_snapshot(&snap.meta, buf).await.unwrap();
        assert_eq!(
            target.applied_state().await.unwrap(),
            source.applied_state().await.unwrap()
        );
        assert_eq!(
            memory.ledger_meta().unwrap().root,
            rocks.ledger_meta().unwrap().root
        );
        assert_eq!(memory.digest().unwrap(), rocks.digest().unwrap());

        // Memory → another RocksDB node, which then serves it onwards.
        let snap2 = target
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let bytes2 = read_all(*snap2.snapshot).await;
        let rocks2 = Arc::new(RocksBackend::open(&dir.path().join("b")).unwrap());
        let mut third = StateMachine::<TypeConfig, _>::new(rocks2.clone());
        let buf = receive(&mut third, &bytes2).await;
        third.install_snapshot(&snap2.meta, buf).await.unwrap();
        assert_eq!(rocks2.digest().unwrap(), rocks.digest().unwrap());
        let current = third.get_current_snapshot().await.unwrap().expect("kept");
        assert_eq!(read_all(*current.snapshot).await, bytes2);
        // Exactly one snapshot file is kept, the received buffer was moved into place (no
        // leftovers), and its name does not come from the leader's snapshot id.
        let files: Vec<String> = std::fs::read_dir(dir.path().join("b").join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(
            files[0].ends_with(".snap") && !files[0].contains(&snap2.meta.snapshot_id),
            "{files:?}"
        );

        // Both continue identically after the install.
        let more: Vec<_> = (13..=15).map(|i| workload_entry(11, i, 300)).collect();
        let a = source.apply(more.clone()).await.unwrap();
        let b = third.apply(more).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(rocks2.digest().unwrap(), rocks.digest().unwrap());
    });
}

#[test]
fn damaged_snapshot_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let memory = Arc::new(MemoryStateBackend::new());
        let mut source = StateMachine::<TypeConfig, _>::new(memory);
        source
            .apply(
                (1..=5)
                    .map(|i| workload_entry(5, i, 50))
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        let snap = source
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let bytes = read_all(*snap.snapshot).await;

        let rocks = Arc::new(RocksBackend::open(&dir.path().join("r")).unwrap());
        let mut target = StateMachine::<TypeConfig, _>::new(rocks.clone());
        target
            .apply(
                (1..=3)
                    .map(|i| workload_entry(9, i, 10))
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        let before = (rocks.digest().unwrap(), rocks.applied().unwrap());

        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 1;
        let truncated = &bytes[..bytes.len() - 3];
        for bad in [&flipped[..], truncated] {
            let buf = receive(&mut target, bad).await;
            assert!(target.install_snapshot(&snap.meta, buf).await.is_err());
            assert_eq!((rocks.digest().unwrap(), rocks.applied().unwrap()), before);
        }
        // A snapshot announced under another log id is refused too.
        let mut meta = snap.meta.clone();
        meta.last_log_id = Some(crate::common::log_id(9, 99));
        let buf = receive(&mut target, &bytes).await;
        assert!(target.install_snapshot(&meta, buf).await.is_err());
        assert_eq!((rocks.digest().unwrap(), rocks.applied().unwrap()), before);
    });
}

#[test]
fn memory_and_rocksdb_agree_on_random_workloads() {
    // Each seed is printed; rerun one with RON_STORE_SEED=<seed>.
    let seeds: Vec<u64> = match std::env::var("RON_STORE_SEED") {
        Ok(s) => vec![s.parse().expect("RON_STORE_SEED is a u64")],
        Err(_) => (0..4).map(|i| 0x5eed_0000 + i).collect(),
    };
    for seed in seeds {
        println!("seed {seed}");
        let dir = tempfile::tempdir().unwrap();
        let rocks = RocksBackend::open(&dir.path().join("d")).unwrap();
        let memory = MemoryStateBackend::new();
        let mut index = 1;
        let mut rng = crate::common::Rng(seed);
        while index <= 20 {
            let n = 1 + rng.below(4);
            let entries: Vec<_> = (index..index + n)
                .map(|i| workload_entry(seed, i, 64))
                .collect();
            index += n;
            let a = StateMachine::<TypeConfig, _>::apply_blocking(&rocks, entries.clone()).unwrap();
            let b = StateMachine::<TypeConfig, _>::apply_blocking(&memory, entries).unwrap();
            assert_eq!(a, b, "seed {seed}");
            assert_eq!(
                rocks.digest().unwrap(),
                memory.digest().unwrap(),
                "seed {seed}"
            );
        }
        let totals =
            ledger::conservation::check(memory.state().accounts().iter().map(|r| &r.account));
        assert!(totals.is_ok(), "seed {seed}: {totals:?}");
    }
}

#[test]
fn an_interrupted_install_is_replayed_when_the_store_opens() {
    use ledger::codec::Kind;
    use raft_store::LogBackend;
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let source_backend = Arc::new(RocksBackend::open(&dir.path().join("s")).unwrap());
        let mut source = StateMachine::<TypeConfig, _>::new(source_backend.clone());
        let entries: Vec<_> = (1..=8).map(|i| workload_entry(21, i, 200)).collect();
        source.apply(entries).await.unwrap();
        let snap = source
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let bytes = read_all(*snap.snapshot).await;
        let want = (
            source_backend.digest().unwrap(),
            source_backend.applied().unwrap(),
        );

        let path = dir.path().join("t");
        {
            let rocks = Arc::new(RocksBackend::open(&path).unwrap());
            let mut target = StateMachine::<TypeConfig, _>::new(rocks.clone());
            let buf = receive(&mut target, &bytes).await;
            target.install_snapshot(&snap.meta, buf).await.unwrap();
            assert_eq!((rocks.digest().unwrap(), rocks.applied().unwrap()), want);
            // A crash in the middle of a later install of the same snapshot: its redo record is
            // in place, and the tables hold something else (here: more entries applied).
            let more: Vec<_> = (9..=11).map(|i| workload_entry(21, i, 200)).collect();
            target.apply(more).await.unwrap();
            assert_ne!(rocks.digest().unwrap(), want.0);
            let name = format!(
                "{}.snap",
                &blake3::hash(snap.meta.snapshot_id.as_bytes()).to_hex()[..32]
            );
            rocks
                .meta_put(
                    "install",
                    raft_store::record::seal(Kind::SnapshotMeta, &(&snap.meta, &name)),
                    true,
                )
                .unwrap();
        }
        // The next open replays the install before anything reads the state.
        let rocks = RocksBackend::open(&path).unwrap();
        assert_eq!((rocks.digest().unwrap(), rocks.applied().unwrap()), want);
        assert_eq!(
            rocks.meta_get("install").unwrap(),
            None,
            "redo record removed"
        );
        assert_eq!(
            rocks.ledger_meta().unwrap(),
            source_backend.ledger_meta().unwrap()
        );
        let size = rocks.ledger_meta().unwrap().tree.size;
        assert_eq!(
            rocks.root_at(size).unwrap(),
            source_backend.ledger_meta().unwrap().root,
            "the stored tree was rebuilt whole"
        );
        // A redo record whose file is gone stops the open, saying so, every time.
        rocks
            .meta_put(
                "install",
                raft_store::record::seal(Kind::SnapshotMeta, &(&snap.meta, "gone.snap")),
                true,
            )
            .unwrap();
        drop(rocks);
        for _ in 0..2 {
            let err = RocksBackend::open(&path).err().expect("refused");
            assert!(err.to_string().contains("cannot be replayed"), "{err}");
        }
    });
}

#[test]
fn a_cancelled_backup_export_stops_with_an_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let source = RocksBackend::open(&dir.path().join("s")).unwrap();
    let entries: Vec<_> = (1..=3).map(|i| workload_entry(34, i, 100)).collect();
    StateMachine::<TypeConfig, _>::apply_blocking(&source, entries).unwrap();
    let err = source
        .export_backup(&AtomicBool::new(true))
        .expect_err("a cancelled export must not answer");
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("s").join("snapshots"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_backup_restores_checked_and_a_lying_one_writes_nothing() {
    use raft_store::backup::{self, Manifest, RestoreMode};
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let source = RocksBackend::open(&dir.path().join("s")).unwrap();
    let entries: Vec<_> = (1..=6).map(|i| workload_entry(33, i, 100)).collect();
    StateMachine::<TypeConfig, _>::apply_blocking(&source, entries).unwrap();
    let (summary, mut file) = source.export_backup(&AtomicBool::new(false)).unwrap();
    // The stream is an unlinked file: nothing is left in the snapshot directory.
    assert_eq!(
        std::fs::read_dir(dir.path().join("s").join("snapshots"))
            .unwrap()
            .count(),
        0
    );
    let mut stream = Vec::new();
    file.read_to_end(&mut stream).unwrap();
    assert_eq!(stream.len() as u64, summary.stream_bytes);
    assert_eq!(summary.digest, source.digest().unwrap());
    let write_backup = |at: &std::path::Path, manifest: &Manifest| {
        std::fs::create_dir(at).unwrap();
        std::fs::write(at.join(backup::STREAM_FILE), &stream).unwrap();
        std::fs::write(
            at.join(backup::MANIFEST_FILE),
            serde_json::to_vec(manifest).unwrap(),
        )
        .unwrap();
    };
    let manifest = Manifest::new(&summary, "c1", 1, "test");
    let good = dir.path().join("good");
    write_backup(&good, &manifest);
    let mut lying = manifest.clone();
    lying.state_digest = "00".repeat(32);
    let bad = dir.path().join("bad");
    write_backup(&bad, &lying);

    let target = dir.path().join("t-bad");
    let err = backup::restore(&bad, &target, "c1", RestoreMode::Seed { node_id: 9 }).unwrap_err();
    assert!(err.to_string().contains("state digest"), "{err}");
    assert!(!target.exists() && !dir.path().join(".t-bad.restoring").exists());

    let target = dir.path().join("t");
    let restored = backup::restore(&good, &target, "c1", RestoreMode::Seed { node_id: 9 }).unwrap();
    assert_eq!(restored, manifest);
    let store = RocksBackend::open(&target).unwrap();
    assert_eq!(store.digest().unwrap(), source.digest().unwrap());
    assert_eq!(store.applied().unwrap(), source.applied().unwrap());
    // Restoring again into the now non-empty directory is refused.
    drop(store);
    let err = backup::restore(&good, &target, "c1", RestoreMode::Seed { node_id: 9 }).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}

/// A backup directory at `at`: the exported stream `file` and `manifest`.
fn write_backup_dir(
    at: &std::path::Path,
    mut file: std::fs::File,
    manifest: &raft_store::backup::Manifest,
) {
    use std::io::Read;
    std::fs::create_dir(at).unwrap();
    let mut stream = Vec::new();
    file.read_to_end(&mut stream).unwrap();
    std::fs::write(at.join(raft_store::backup::STREAM_FILE), &stream).unwrap();
    std::fs::write(
        at.join(raft_store::backup::MANIFEST_FILE),
        serde_json::to_vec(manifest).unwrap(),
    )
    .unwrap();
}

/// A backup whose only voter is the restoring node's id is refused for seeding: started, that
/// node would be a quorum on its own and take writes the cluster never sees. Another id seeds.
#[test]
fn seeding_a_node_that_is_the_backups_only_voter_is_refused() {
    use openraft::{EntryPayload, Membership};
    use raft_store::backup::{self, Manifest, RestoreMode};
    use raft_store::NodeInfo;
    let dir = tempfile::tempdir().unwrap();
    let source = RocksBackend::open(&dir.path().join("s")).unwrap();
    let nodes: std::collections::BTreeMap<u64, NodeInfo> = [(
        9,
        NodeInfo {
            api_addr: "127.0.0.1:1".into(),
            peer_addr: "127.0.0.1:2".into(),
        },
    )]
    .into();
    let membership = Membership::new(vec![[9u64].into()], nodes);
    let entries = vec![
        crate::common::entry(1, 1, EntryPayload::Membership(membership)),
        workload_entry(45, 2, 20),
    ];
    StateMachine::<TypeConfig, _>::apply_blocking(&source, entries).unwrap();
    let (summary, file) = source.export_backup(&AtomicBool::new(false)).unwrap();
    let at = dir.path().join("b");
    write_backup_dir(&at, file, &Manifest::new(&summary, "c1", 1, "test"));
    let target = dir.path().join("t9");
    let err = backup::restore(&at, &target, "c1", RestoreMode::Seed { node_id: 9 }).unwrap_err();
    assert!(err.to_string().contains("only voter"), "{err}");
    assert!(!target.exists() && !dir.path().join(".t9.restoring").exists());
    backup::restore(
        &at,
        &dir.path().join("t4"),
        "c1",
        RestoreMode::Seed { node_id: 4 },
    )
    .unwrap();
}

#[test]
fn a_backup_of_an_advanced_cluster_is_format_4_and_restores_with_its_version() {
    use openraft::EntryPayload;
    use raft_store::backup::{self, Manifest, RestoreMode};
    use raft_store::{AdminCommand, Command};
    let dir = tempfile::tempdir().unwrap();
    let source = RocksBackend::open(&dir.path().join("s")).unwrap();
    let mut entries: Vec<_> = (1..=4).map(|i| workload_entry(44, i, 50)).collect();
    entries.push(crate::common::entry(
        1,
        5,
        EntryPayload::Normal(Command::Admin(AdminCommand::SetClusterVersion(2))),
    ));
    StateMachine::<TypeConfig, _>::apply_blocking(&source, entries).unwrap();
    let (summary, file) = source.export_backup(&AtomicBool::new(false)).unwrap();
    assert_eq!(summary.cluster_version, 2);
    assert_eq!(
        summary.digest,
        source.digest().unwrap(),
        "the version is in the digest"
    );
    let manifest = Manifest::new(&summary, "c1", 1, "test");
    assert_eq!(manifest.snapshot_format, 4);
    assert_eq!(manifest.storage_format, raft_store::STORAGE_FORMAT);
    let at = dir.path().join("b");
    write_backup_dir(&at, file, &manifest);
    let target = dir.path().join("t");
    backup::restore(&at, &target, "c1", RestoreMode::Seed { node_id: 9 }).unwrap();
    let store = RocksBackend::open(&target).unwrap();
    assert_eq!(store.digest().unwrap(), source.digest().unwrap());
    drop(store);
    // A manifest claiming format 3 for this stream is refused.
    let mut lying = manifest.clone();
    lying.snapshot_format = 3;
    std::fs::write(
        at.join(backup::MANIFEST_FILE),
        serde_json::to_vec(&lying).unwrap(),
    )
    .unwrap();
    let err = backup::restore(
        &at,
        &dir.path().join("t2"),
        "c1",
        RestoreMode::Seed { node_id: 9 },
    )
    .unwrap_err();
    assert!(err.to_string().contains("the stream's format"), "{err}");
}

/// A snapshot older than the applied state is refused and changes nothing: an applied index
/// never goes back, whatever asks for the install.
#[test]
fn an_older_snapshot_is_refused_and_changes_nothing() {
    rt().block_on(async {
        let entries: Vec<_> = (1..=8).map(|i| workload_entry(5, i, 100)).collect();
        let source_backend = Arc::new(MemoryStateBackend::new());
        let mut source = StateMachine::<TypeConfig, _>::new(source_backend);
        source.apply(entries[..4].to_vec()).await.unwrap();
        let old = source
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let bytes = read_all(*old.snapshot).await;

        let memory = Arc::new(MemoryStateBackend::new());
        let mut target = StateMachine::<TypeConfig, _>::new(memory.clone());
        target.apply(entries.clone()).await.unwrap();
        let (before, digest) = (memory.applied().unwrap(), memory.digest().unwrap());
        let buf = receive(&mut target, &bytes).await;
        let err = target.install_snapshot(&old.meta, buf).await.unwrap_err();
        assert!(
            err.to_string().contains("older than the applied state"),
            "{err}"
        );
        assert_eq!(memory.applied().unwrap(), before);
        assert_eq!(memory.digest().unwrap(), digest);
    });
}

/// A store whose account cache is warm installs a snapshot of a different history, then applies
/// more: it must read the installed accounts, not the ones it cached before.
#[test]
fn an_install_replaces_what_apply_had_cached() {
    let dir = tempfile::tempdir().unwrap();
    let a = RocksBackend::open(&dir.path().join("a")).unwrap();
    let b = RocksBackend::open(&dir.path().join("b")).unwrap();
    let warm: Vec<_> = (1..=6).map(|i| workload_entry(101, i, 200)).collect();
    StateMachine::<TypeConfig, _>::apply_blocking(&a, warm).unwrap();
    let other: Vec<_> = (1..=8).map(|i| workload_entry(202, i, 200)).collect();
    StateMachine::<TypeConfig, _>::apply_blocking(&b, other).unwrap();
    let (meta, data) = b.build_snapshot().unwrap();
    let SnapshotData::File(file) = data else {
        panic!("a RocksDB snapshot is a file")
    };
    let file = file.try_into_std().unwrap();
    a.install_snapshot(&meta, raft_store::SnapshotSource::File(file))
        .unwrap();
    assert_eq!(a.digest().unwrap(), b.digest().unwrap());
    let more: Vec<_> = (9..=11).map(|i| workload_entry(202, i, 200)).collect();
    let ra = StateMachine::<TypeConfig, _>::apply_blocking(&a, more.clone()).unwrap();
    let rb = StateMachine::<TypeConfig, _>::apply_blocking(&b, more).unwrap();
    assert_eq!(ra, rb);
    assert_eq!(a.digest().unwrap(), b.digest().unwrap());
}
