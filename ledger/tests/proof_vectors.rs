//! The published test vectors (`docs/proof-vectors.json`): this build must reproduce every one
//! byte for byte, and every vector must verify as read from the file (the way another
//! language's implementation would use it).
//!
//! Regenerate after an intended change with:
//! `RON_WRITE_VECTORS=1 cargo test -p ledger --test proof_vectors`

use ledger::checkpoint::{CheckpointSigner, SignedCheckpoint, TrustedKeys};
use ledger::export::{build_bundle, verify_bundle, ExportBundle};
use ledger::merkle::{empty_root, leaf_hash, root_of, Hash};
use ledger::proof::{consistency_proof, inclusion_proof, ConsistencyProof, InclusionProof};
use ledger::wire::hex;
use ledger::{apply, Account, Batch, MemoryState, Operation, ProofError, Transfer};
use serde_json::{json, Value};

const VECTORS: &str = include_str!("../../docs/proof-vectors.json");
const SEED: [u8; 32] = [0x07; 32];
const KID: &str = "vector-key-1";
const CLUSTER: &str = "vector-cluster";
/// Tree sizes with every inclusion proof listed.
const SIZES: [u64; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 13, 16];
/// Consistency pairs listed.
const PAIRS: [(u64, u64); 12] = [
    (0, 5),
    (1, 1),
    (1, 2),
    (1, 8),
    (2, 5),
    (3, 7),
    (4, 8),
    (5, 13),
    (6, 8),
    (7, 13),
    (8, 13),
    (13, 16),
];

fn leaves() -> Vec<Hash> {
    (0..16u64).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

/// A tiny ledger: two accounts, a transfer, and a transfer rejected for an unknown account.
fn ledger_state() -> MemoryState {
    let mut state = MemoryState::new();
    let account = |id| Account {
        id,
        ledger: 700,
        code: 10,
        ..Default::default()
    };
    let transfer = |id, credit| Transfer {
        id,
        debit_account_id: 1,
        credit_account_id: credit,
        amount: 50,
        ledger: 700,
        code: 1,
        ..Default::default()
    };
    let batch = Batch {
        timestamp: 1_000,
        operations: vec![
            Operation::CreateAccounts(vec![account(1), account(2)]),
            Operation::CreateTransfers(vec![transfer(9, 2), transfer(10, 3)]),
        ],
    };
    let (_, changes) = apply(&state, &batch).expect("memory reads never fail");
    state.commit(changes);
    state
}

fn generate() -> Value {
    let all = leaves();
    let trees: Vec<Value> = SIZES
        .iter()
        .map(|&size| {
            let tree = &all[..size as usize];
            let proofs: Vec<InclusionProof> = (0..size)
                .map(|i| inclusion_proof(tree, i, size).unwrap())
                .collect();
            json!({"size": size.to_string(), "root": root_of(tree).to_hex(), "inclusion": proofs})
        })
        .collect();
    let consistency: Vec<Value> = PAIRS
        .iter()
        .map(|&(old, new)| {
            json!({
                "old_root": root_of(&all[..old as usize]).to_hex(),
                "new_root": root_of(&all[..new as usize]).to_hex(),
                "proof": consistency_proof(&all[..], old, new).unwrap(),
            })
        })
        .collect();

    let signer = CheckpointSigner::new(KID, &SEED).unwrap();
    let state = ledger_state();
    let meta = ledger::StateRead::meta(&state).unwrap();
    let signed = signer
        .sign(CLUSTER, meta.tree.size, meta.root, meta.last_timestamp)
        .unwrap();
    let signing_bytes = signed.checkpoint().signing_bytes().unwrap();
    let data = |i: u64| {
        state
            .leaf_data(i)
            .map(|d| d.as_bytes().to_vec())
            .ok_or(ProofError::IndexOutOfRange {
                index: i,
                size: meta.tree.size,
            })
    };
    let bundle = build_bundle(&state, data, signed.clone(), 1, 4).unwrap();
    let preimages: Vec<Value> = (0..meta.tree.size)
        .map(|i| {
            let d = state.leaf_data(i).unwrap();
            json!({"index": i.to_string(), "data": hex::encode(d.as_bytes()), "leaf_hash": d.hash().to_hex()})
        })
        .collect();

    json!({
        "description": "ron-ledger Merkle proof, checkpoint and export vectors. See docs/PROOFS.md. Regenerate: RON_WRITE_VECTORS=1 cargo test -p ledger --test proof_vectors",
        "merkle_version": 1,
        "empty_root": empty_root().to_hex(),
        "leaf_rule": "leaf i = BLAKE3(0x00 || 0x01 || u64_le(i))",
        "leaves": all.iter().map(Hash::to_hex).collect::<Vec<_>>(),
        "trees": trees,
        "consistency": consistency,
        "checkpoint": {
            "seed": hex::encode(&SEED),
            "public_key": signer.public_key_hex(),
            "signing_bytes": hex::encode(&signing_bytes),
            "signed": signed,
        },
        "ledger_leaves": preimages,
        "export_bundle": bundle,
    })
}

fn hash(v: &Value) -> Hash {
    Hash::from_hex(v.as_str().expect("hex string")).expect("64 hex digits")
}

#[test]
fn vectors_are_reproduced_and_verify() {
    let generated = generate();
    if std::env::var_os("RON_WRITE_VECTORS").is_some() {
        // Where Cargo runs this test from (the binary may come from another checkout).
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
        let path = format!("{dir}/../docs/proof-vectors.json");
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        println!("wrote {path}; rerun without RON_WRITE_VECTORS to check it");
        return;
    }
    let file: Value = serde_json::from_str(VECTORS).unwrap();
    assert_eq!(
        file, generated,
        "docs/proof-vectors.json differs from this build (regenerate only for an intended change)"
    );

    // Verify from the file alone.
    let leaves: Vec<Hash> = file["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(*leaf, leaf_hash(&(i as u64).to_le_bytes()));
    }
    let mut checked = 0;
    for tree in file["trees"].as_array().unwrap() {
        let root = hash(&tree["root"]);
        for p in tree["inclusion"].as_array().unwrap() {
            let proof: InclusionProof = serde_json::from_value(p.clone()).unwrap();
            proof
                .verify(&leaves[proof.leaf_index as usize], &root)
                .unwrap();
            checked += 1;
        }
    }
    assert_eq!(checked, SIZES.iter().sum::<u64>());
    for c in file["consistency"].as_array().unwrap() {
        let proof: ConsistencyProof = serde_json::from_value(c["proof"].clone()).unwrap();
        proof
            .verify(&hash(&c["old_root"]), &hash(&c["new_root"]))
            .unwrap();
    }
    let cp = &file["checkpoint"];
    let signer = CheckpointSigner::new(
        KID,
        &hex::decode_array(cp["seed"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(cp["public_key"], signer.public_key_hex());
    let keys = TrustedKeys::from_json(&json!({KID: cp["public_key"]}).to_string()).unwrap();
    let signed: SignedCheckpoint = serde_json::from_value(cp["signed"].clone()).unwrap();
    assert_eq!(
        hex::encode(&signed.checkpoint().signing_bytes().unwrap()),
        cp["signing_bytes"].as_str().unwrap()
    );
    signed.verify(&keys).unwrap();
    let bundle: ExportBundle = serde_json::from_value(file["export_bundle"].clone()).unwrap();
    let report = verify_bundle(&bundle, &keys).unwrap();
    assert_eq!(
        (report.events, report.accounts, report.transfers),
        (3, 1, 2)
    );
    assert_eq!(report.rejected, 1, "transfer 10 names a missing account");
}

#[test]
fn bundle_errors_name_the_first_failing_item() {
    use ledger::export::{BundleError, EventError};
    let file = generate();
    let keys = TrustedKeys::from_json(&json!({KID: file["checkpoint"]["public_key"]}).to_string())
        .unwrap();
    let good: ExportBundle = serde_json::from_value(file["export_bundle"].clone()).unwrap();
    verify_bundle(&good, &keys).unwrap();
    let check = |f: &dyn Fn(&mut ExportBundle), want: &dyn Fn(&BundleError) -> bool| {
        let mut b = good.clone();
        f(&mut b);
        let err = verify_bundle(&b, &keys).unwrap_err();
        assert!(want(&err), "{err:?}");
    };
    check(&|b| b.format = "ron-ledger-export/2".into(), &|e| {
        matches!(e, BundleError::Format(_))
    });
    check(&|b| b.cluster_id = "other".into(), &|e| {
        matches!(e, BundleError::ClusterMismatch { .. })
    });
    check(&|b| b.checkpoint.signature[0] ^= 1, &|e| {
        matches!(e, BundleError::Checkpoint(_))
    });
    check(&|b| b.to = b.checkpoint.tree_size + 1, &|e| {
        matches!(e, BundleError::Range { .. })
    });
    check(&|b| b.from = b.to, &|e| {
        matches!(e, BundleError::Range { .. })
    });
    check(
        &|b| {
            b.events.pop();
        },
        &|e| matches!(e, BundleError::EventCount { .. }),
    );
    check(&|b| b.events[1] = b.events[0].clone(), &|e| {
        matches!(
            e,
            BundleError::Event {
                index: 2,
                reason: EventError::WrongIndex { found: 1 }
            }
        )
    });
    check(&|b| b.events.swap(0, 2), &|e| {
        matches!(
            e,
            BundleError::Event {
                index: 1,
                reason: EventError::WrongIndex { found: 3 }
            }
        )
    });
    check(&|b| b.events[1].data[5] ^= 1, &|e| {
        matches!(
            e,
            BundleError::Event {
                index: 2,
                reason: EventError::Proof(ProofError::RootMismatch)
            }
        )
    });
    check(
        &|b| {
            b.events[2].data.pop();
        },
        &|e| {
            matches!(
                e,
                BundleError::Event {
                    index: 3,
                    reason: EventError::Decode(_)
                }
            )
        },
    );
    check(
        &|b| {
            b.events[0].proof.pop();
        },
        &|e| {
            matches!(
                e,
                BundleError::Event {
                    index: 1,
                    reason: EventError::Proof(ProofError::WrongPathLength { .. })
                }
            )
        },
    );
    check(&|b| b.events[0].proof[0].0[0] ^= 1, &|e| {
        matches!(
            e,
            BundleError::Event {
                index: 1,
                reason: EventError::Proof(ProofError::RootMismatch)
            }
        )
    });
}
