//! Proofs from storage: both backends answer identical inclusion and consistency proofs and
//! historical roots, every one verifies against `ledger_meta().root`, sizes beyond the applied
//! tree are clean errors, and a node that installed a snapshot answers exactly like the source.

use crate::common::{workload_entry, Rng};
use ledger::merkle::leaf_hash;
use ledger::{decode_leaf, ProofError};
use raft_store::{
    MemoryStateBackend, RocksBackend, StateBackend, StateMachine, StoreError, TypeConfig,
};
use std::io::Read;

/// Every proof `a` gives for its current tree, checked, and compared with `b`'s.
fn assert_same_proofs<A: StateBackend, B: StateBackend>(a: &A, b: &B, rng: &mut Rng) {
    let meta = a.ledger_meta().unwrap();
    assert_eq!(meta, b.ledger_meta().unwrap());
    let size = meta.tree.size;
    assert!(size > 0);
    assert_eq!(a.root_at(size).unwrap(), meta.root);
    // Every leaf near both ends, and a sample in between.
    let mut indexes: Vec<u64> = (0..size.min(40))
        .chain(size.saturating_sub(40)..size)
        .collect();
    indexes.extend((0..60).map(|_| rng.below(size)));
    for index in indexes {
        let data = a.leaf_data(index).unwrap().expect("applied leaf has data");
        assert_eq!(b.leaf_data(index).unwrap().as_ref(), Some(&data));
        decode_leaf(&data).expect("stored preimage decodes");
        let proof = a.inclusion_proof(index, size).unwrap();
        assert_eq!(
            proof,
            b.inclusion_proof(index, size).unwrap(),
            "leaf {index}"
        );
        proof.verify(&leaf_hash(&data), &meta.root).unwrap();
    }
    for _ in 0..40 {
        let new = 1 + rng.below(size);
        let old = rng.below(new + 1);
        let (old_root, new_root) = (a.root_at(old).unwrap(), a.root_at(new).unwrap());
        assert_eq!(old_root, b.root_at(old).unwrap());
        assert_eq!(new_root, b.root_at(new).unwrap());
        let proof = a.consistency_proof(old, new).unwrap();
        assert_eq!(
            proof,
            b.consistency_proof(old, new).unwrap(),
            "{old}..{new}"
        );
        proof.verify(&old_root, &new_root).unwrap();
        let to_now = a.consistency_proof(old, size).unwrap();
        to_now.verify(&old_root, &meta.root).unwrap();
    }
    assert_eq!(a.leaf_data(size).unwrap(), None);
}

fn beyond<B: StateBackend>(backend: &B) {
    let size = backend.ledger_meta().unwrap().tree.size;
    let beyond = ProofError::SizeBeyondTree {
        size: size + 1,
        available: size,
    };
    let is_beyond = |e: StoreError| matches!(e, StoreError::Proof(p) if p == beyond);
    assert!(is_beyond(backend.inclusion_proof(0, size + 1).unwrap_err()));
    assert!(is_beyond(
        backend.consistency_proof(1, size + 1).unwrap_err()
    ));
    assert!(is_beyond(backend.root_at(size + 1).unwrap_err()));
    assert!(matches!(
        backend.inclusion_proof(size, size),
        Err(StoreError::Proof(ProofError::IndexOutOfRange { .. }))
    ));
    assert!(matches!(
        backend.consistency_proof(size, size - 1),
        Err(StoreError::Proof(ProofError::OldSizeExceedsNew { .. }))
    ));
}

#[test]
fn both_backends_give_identical_verifying_proofs() {
    let seed = 0x9f00f;
    println!("seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksBackend::open(&dir.path().join("d")).unwrap();
    let memory = MemoryStateBackend::new();
    let empty = memory.ledger_meta().unwrap();
    assert_eq!(memory.root_at(0).unwrap(), empty.root);
    assert!(memory.inclusion_proof(0, 0).is_err());
    let mut rng = Rng(seed);
    let mut index = 1;
    while index <= 14 {
        let n = 1 + rng.below(3);
        let entries: Vec<_> = (index..index + n)
            .map(|i| workload_entry(seed, i, 97))
            .collect();
        index += n;
        StateMachine::<TypeConfig, _>::apply_blocking(&rocks, entries.clone()).unwrap();
        StateMachine::<TypeConfig, _>::apply_blocking(&memory, entries).unwrap();
        if index > 2 {
            assert_same_proofs(&rocks, &memory, &mut rng);
        }
    }
    beyond(&rocks);
    beyond(&memory);
}

#[test]
fn proofs_are_identical_after_a_snapshot_install() {
    let seed = 0x5ca1e;
    println!("seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let source = RocksBackend::open(&dir.path().join("src")).unwrap();
    let entries: Vec<_> = (1..=9).map(|i| workload_entry(seed, i, 211)).collect();
    StateMachine::<TypeConfig, _>::apply_blocking(&source, entries).unwrap();
    let (meta, data) = source.build_snapshot().unwrap();
    let raft_store::SnapshotData::File(file) = data else {
        panic!("rocks snapshots are files");
    };
    let mut bytes = Vec::new();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async { file.into_std().await })
        .read_to_end(&mut bytes)
        .unwrap();

    let memory = MemoryStateBackend::new();
    memory
        .install_snapshot(
            &meta,
            raft_store::backend::SnapshotSource::Memory(bytes.clone()),
        )
        .unwrap();
    let rocks = RocksBackend::open(&dir.path().join("fresh")).unwrap();
    rocks
        .install_snapshot(&meta, raft_store::backend::SnapshotSource::Memory(bytes))
        .unwrap();
    let mut rng = Rng(seed);
    assert_same_proofs(&source, &memory, &mut rng);
    assert_same_proofs(&source, &rocks, &mut rng);

    // The installed nodes are the source's: both keep answering identically as the tree grows.
    let more: Vec<_> = (10..=12).map(|i| workload_entry(seed, i, 211)).collect();
    StateMachine::<TypeConfig, _>::apply_blocking(&source, more.clone()).unwrap();
    StateMachine::<TypeConfig, _>::apply_blocking(&rocks, more.clone()).unwrap();
    StateMachine::<TypeConfig, _>::apply_blocking(&memory, more).unwrap();
    assert_same_proofs(&source, &rocks, &mut rng);
    assert_same_proofs(&memory, &rocks, &mut rng);
}
