//! Property tests of the verifiable core: proofs over random trees verify, and any single change
//! to a proof, its leaf, its sizes or its root makes verification fail; stored nodes change
//! nothing but the number of reads; leaf preimages round-trip and hash as before; checkpoint
//! signatures bind every field. Failing cases are replayable from proptest's printed seed and
//! its regressions file.

use ledger::canonical::{
    account_bytes, account_leaf, decode_leaf, expiry_leaf, transfer_bytes, transfer_leaf, LeafData,
    LeafDecodeError, LeafEvent,
};
use ledger::checkpoint::{CheckpointError, CheckpointSigner, TrustedKeys};
use ledger::merkle::{leaf_hash, root_of, Frontier, Hash};
use ledger::proof::{consistency_proof, inclusion_proof, root_at, ProofError, TreeSource};
use ledger::{Account, AccountFlags, Transfer, TransferFlags};
use proptest::prelude::*;
use std::cell::Cell;
use std::collections::HashMap;

/// A tree as a store keeps it: leaves plus every perfect-subtree root, counting leaf reads.
struct StoredTree {
    leaves: Vec<Hash>,
    nodes: HashMap<(u8, u64), Hash>,
    leaf_reads: Cell<u64>,
}

impl StoredTree {
    fn new(leaves: &[Hash]) -> Self {
        let mut frontier = Frontier::default();
        let mut nodes = Vec::new();
        for leaf in leaves {
            frontier.push_recording(*leaf, &mut nodes);
        }
        Self {
            leaves: leaves.to_vec(),
            nodes: nodes.into_iter().map(|(l, i, h)| ((l, i), h)).collect(),
            leaf_reads: Cell::new(0),
        }
    }
}

impl TreeSource for StoredTree {
    type Error = ProofError;
    fn leaf_hash(&self, index: u64) -> Result<Hash, ProofError> {
        self.leaf_reads.set(self.leaf_reads.get() + 1);
        self.leaves[..].leaf_hash(index)
    }
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, ProofError> {
        Ok(self.nodes.get(&(level, index)).copied())
    }
}

fn leaves(n: u64, salt: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&(i ^ salt.rotate_left(17)).to_le_bytes()))
        .collect()
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut out = *h;
    out.0[(bit / 8) % 32] ^= 1 << (bit % 8);
    out
}

/// Every single-element change of a path: each element bit-flipped, removed, a random element
/// appended or inserted, two distinct elements swapped.
fn mutations(path: &[Hash], bit: usize) -> Vec<Vec<Hash>> {
    let mut out = Vec::new();
    for i in 0..path.len() {
        let mut p = path.to_vec();
        p[i] = flip(&p[i], bit);
        out.push(p);
        let mut p = path.to_vec();
        p.remove(i);
        out.push(p);
        for j in i + 1..path.len() {
            if path[i] != path[j] {
                let mut p = path.to_vec();
                p.swap(i, j);
                out.push(p);
            }
        }
    }
    for at in 0..=path.len() {
        let mut p = path.to_vec();
        p.insert(at, leaf_hash(&(bit as u64).to_le_bytes()));
        out.push(p);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_inclusion_proof_verifies_and_any_change_fails(
        size in 1u64..600, salt in any::<u64>(), pick in any::<u64>(), bit in 0usize..256,
    ) {
        let all = leaves(size + 1, salt);
        let tree = StoredTree::new(&all[..size as usize]);
        let root = root_of(&all[..size as usize]);
        let log = 64 - size.leading_zeros() as u64 + 1;
        for index in 0..size {
            tree.leaf_reads.set(0);
            let proof = inclusion_proof(&tree, index, size).unwrap();
            prop_assert!(tree.leaf_reads.get() <= log * log, "reads {}", tree.leaf_reads.get());
            proof.verify(&all[index as usize], &root).unwrap();
        }
        // One proof, every single change.
        let index = pick % size;
        let leaf = all[index as usize];
        let proof = inclusion_proof(&tree, index, size).unwrap();
        prop_assert_eq!(&proof, &inclusion_proof(&all[..size as usize], index, size).unwrap());
        prop_assert!(proof.verify(&flip(&leaf, bit), &root).is_err());
        prop_assert!(proof.verify(&leaf, &flip(&root, bit)).is_err());
        for path in mutations(&proof.path, bit) {
            let mut bad = proof.clone();
            bad.path = path;
            prop_assert!(bad.verify(&leaf, &root).is_err(), "{:?}", bad);
        }
        for other in [index.wrapping_sub(1), index + 1, index ^ 1, size, u64::MAX] {
            if other != index {
                let mut bad = proof.clone();
                bad.leaf_index = other;
                prop_assert!(bad.verify(&leaf, &root).is_err(), "index {}", other);
            }
        }
        // A different size, checked against that size's root (size and root come together
        // from a checkpoint).
        for other in [size - 1, size + 1] {
            if other > index {
                let mut bad = proof.clone();
                bad.tree_size = other;
                let other_root = root_of(&all[..other as usize]);
                prop_assert!(bad.verify(&leaf, &other_root).is_err(), "size {}", other);
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_any_change_fails(
        new in 1u64..600, salt in any::<u64>(), pick in any::<u64>(), bit in 0usize..256,
    ) {
        let all = leaves(new + 1, salt);
        let tree = StoredTree::new(&all[..new as usize]);
        let root_of_size = |n: u64| root_of(&all[..n as usize]);
        let old = pick % (new + 1);
        let proof = consistency_proof(&tree, old, new).unwrap();
        prop_assert_eq!(&proof, &consistency_proof(&all[..new as usize], old, new).unwrap());
        let (old_root, new_root) = (root_of_size(old), root_of_size(new));
        prop_assert_eq!(root_at(&tree, old).unwrap(), old_root);
        proof.verify(&old_root, &new_root).unwrap();
        if old > 0 {
            prop_assert!(proof.verify(&flip(&old_root, bit), &new_root).is_err());
        }
        // (From the empty tree any new root is consistent: documented in `ConsistencyProof`.)
        if 0 < old && old < new {
            prop_assert!(proof.verify(&old_root, &flip(&new_root, bit)).is_err());
        }
        for path in mutations(&proof.path, bit) {
            let mut bad = proof.clone();
            bad.path = path;
            prop_assert!(bad.verify(&old_root, &new_root).is_err(), "{:?}", bad);
        }
        for other in [old.wrapping_sub(1), old + 1] {
            if other != old && other <= new {
                let mut bad = proof.clone();
                bad.old_size = other;
                let r = root_of_size(other);
                // Unless the changed statement is true with this very path (e.g. 0→1 vs 1→1).
                if bad != consistency_proof(&tree, other, new).unwrap() {
                    prop_assert!(bad.verify(&r, &new_root).is_err(), "old {}", other);
                }
            }
        }
        for other in [new - 1, new + 1] {
            if other >= old && other != new && (old, other) != (0, 0) {
                let mut bad = proof.clone();
                bad.new_size = other;
                let r = root_of_size(other);
                let honest = StoredTree::new(&all[..other as usize]);
                if old > 0 && bad != consistency_proof(&honest, old, other).unwrap() {
                    prop_assert!(bad.verify(&old_root, &r).is_err(), "new {}", other);
                }
            }
        }
        // Every pair in a smaller prefix.
        let small = new.min(24);
        for n in 0..=small {
            for m in 0..=n {
                let p = consistency_proof(&tree, m, n).unwrap();
                p.verify(&root_of_size(m), &root_of_size(n)).unwrap();
            }
        }
    }

    #[test]
    fn leaf_preimages_round_trip_and_hash_as_before(
        a in any::<[u128; 6]>(), b in any::<(u64, u32, u32, u16, u16, u64, u16)>(),
        c in any::<(u128, u64)>(), t in any::<[u128; 6]>(),
        u in any::<(u64, u32, u32, u32, u16, u16, u64, u16)>(),
    ) {
        let account = Account {
            id: a[0], debits_pending: a[1], debits_posted: a[2], credits_pending: a[3],
            credits_posted: a[4], user_data_128: a[5], user_data_64: b.0, user_data_32: b.1,
            ledger: b.2, code: b.3, flags: AccountFlags(b.4), timestamp: b.5,
        };
        let transfer = Transfer {
            id: t[0], debit_account_id: t[1], credit_account_id: t[2], amount: t[3],
            pending_id: t[4], user_data_128: t[5], user_data_64: u.0, user_data_32: u.1,
            timeout: u.2, ledger: u.3, code: u.4, flags: TransferFlags(u.5), timestamp: u.6,
        };
        let events = [
            LeafEvent::Account { account, result: b.6 },
            LeafEvent::Transfer { transfer, result: u.7 },
            LeafEvent::Expiry { pending_id: c.0, timestamp: c.1 },
        ];
        // The hashing as it was before preimages were exposed, byte for byte.
        let mut old_account = vec![1u8];
        old_account.extend_from_slice(&account_bytes(&account));
        old_account.extend_from_slice(&b.6.to_le_bytes());
        let mut old_transfer = vec![2u8];
        old_transfer.extend_from_slice(&transfer_bytes(&transfer));
        old_transfer.extend_from_slice(&u.7.to_le_bytes());
        let mut old_expiry = vec![3u8];
        old_expiry.extend_from_slice(&c.0.to_le_bytes());
        old_expiry.extend_from_slice(&c.1.to_le_bytes());
        let old = [old_account, old_transfer, old_expiry];
        let hashes = [
            account_leaf(&account, b.6), transfer_leaf(&transfer, u.7), expiry_leaf(c.0, c.1),
        ];
        for ((event, old), hash) in events.iter().zip(&old).zip(hashes) {
            let data = event.data();
            prop_assert_eq!(data.as_bytes(), &old[..]);
            prop_assert_eq!(leaf_hash(&old[..]), hash);
            prop_assert_eq!(data.hash(), hash);
            prop_assert_eq!(decode_leaf(data.as_bytes()), Ok(*event));
            prop_assert_eq!(LeafData::from_bytes(data.as_bytes()), Ok(data));
            let mut longer = old.clone();
            longer.push(0);
            prop_assert!(decode_leaf(&longer).is_err());
            prop_assert!(decode_leaf(&old[..old.len() - 1]).is_err());
        }
    }

    #[test]
    fn decode_leaf_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_leaf(&data);
    }

    #[test]
    fn checkpoint_signature_binds_every_field(
        seed in any::<[u8; 32]>(), size in any::<u64>(), root in any::<[u8; 32]>(),
        ts in any::<u64>(), byte in 0usize..64, bit in 0u8..8,
    ) {
        let signer = CheckpointSigner::new("node-1", &seed).unwrap();
        let mut keys = TrustedKeys::new();
        keys.insert("node-1".into(), &signer.public_key_hex()).unwrap();
        let signed = signer.sign("prod", size, Hash(root), ts).unwrap();
        signed.verify(&keys).unwrap();
        let mut bad = signed.clone();
        bad.signature[byte] ^= 1 << bit;
        prop_assert!(bad.verify(&keys).is_err());
        let mut bad = signed.clone();
        bad.cluster_id.push('x');
        prop_assert_eq!(bad.verify(&keys), Err(CheckpointError::BadSignature));
        let mut bad = signed.clone();
        bad.tree_size ^= 1;
        prop_assert_eq!(bad.verify(&keys), Err(CheckpointError::BadSignature));
        let mut bad = signed.clone();
        bad.root = flip(&bad.root, usize::from(bit) * 31 + byte);
        prop_assert_eq!(bad.verify(&keys), Err(CheckpointError::BadSignature));
        let mut bad = signed.clone();
        bad.timestamp ^= 1 << (byte % 64);
        prop_assert_eq!(bad.verify(&keys), Err(CheckpointError::BadSignature));
        let mut bad = signed.clone();
        bad.kid = "node-2".into();
        prop_assert_eq!(bad.verify(&keys), Err(CheckpointError::UnknownKid("node-2".into())));
        // The same key trusted under another kid still refuses: the kid is signed.
        keys.insert("node-2".into(), &signer.public_key_hex()).unwrap();
        prop_assert_eq!(bad.verify(&keys), Err(CheckpointError::BadSignature));
    }
}

#[test]
fn decode_leaf_errors_are_specific() {
    let mut padded = ledger::canonical::account_leaf_data(&Account::default(), 0)
        .as_bytes()
        .to_vec();
    padded[1 + 124] = 1;
    assert_eq!(decode_leaf(&padded), Err(LeafDecodeError::NonZeroPadding));
    assert_eq!(decode_leaf(&[]), Err(LeafDecodeError::Empty));
    assert_eq!(decode_leaf(&[9, 0]), Err(LeafDecodeError::UnknownKind(9)));
    assert_eq!(
        decode_leaf(&[3; 24]),
        Err(LeafDecodeError::WrongLength {
            kind: 3,
            expected: 25,
            actual: 24
        })
    );
}

#[test]
fn signer_debug_never_prints_the_seed() {
    let signer = CheckpointSigner::new("k", &[0x07; 32]).unwrap();
    let debug = format!("{signer:?}");
    assert!(debug.contains(&signer.public_key_hex()));
    // The seed as hex, as decimal bytes, or as the array must not appear.
    assert!(!debug.contains(&"07".repeat(32)));
    assert!(!debug.contains("7, 7, 7"));
}

/// No tree of 0 leaves has a root other than the empty tree's: such a checkpoint is refused
/// even when properly signed (a verifier that remembered it could accept nothing later).
#[test]
fn a_checkpoint_of_no_leaves_carries_the_empty_root() {
    let signer = CheckpointSigner::new("k", &[0x09; 32]).unwrap();
    let keys =
        TrustedKeys::from_json(&format!(r#"{{"k": "{}"}}"#, signer.public_key_hex())).unwrap();
    let empty = ledger::merkle::empty_root();
    signer
        .sign("c", 0, empty, 1)
        .unwrap()
        .verify(&keys)
        .unwrap();
    assert_eq!(
        signer
            .sign("c", 0, leaf_hash(b"x"), 1)
            .unwrap()
            .verify(&keys),
        Err(CheckpointError::NotTheEmptyRoot)
    );
}

#[test]
fn trusted_keys_refuse_malformed_keys() {
    let bad_hex = TrustedKeys::from_json(r#"{"a": "zz"}"#).unwrap_err();
    assert!(matches!(bad_hex, CheckpointError::MalformedKey { ref kid, .. } if kid == "a"));
    // The identity point is a small-order (weak) key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = TrustedKeys::from_json(&format!(
        r#"{{"w": "{}"}}"#,
        ledger::wire::hex::encode(&identity)
    ))
    .unwrap_err();
    assert!(
        matches!(weak, CheckpointError::MalformedKey { .. }),
        "{weak:?}"
    );
    assert!(matches!(
        TrustedKeys::from_json("[1]"),
        Err(CheckpointError::MalformedKeySet(_))
    ));
}

/// A retired key verifies what it signed up to the size it was retired at, and nothing past it;
/// a history that names another public key for a KID already trusted is refused.
#[test]
fn a_retired_key_verifies_only_the_sizes_it_signed() {
    use ledger::checkpoint::KeyRecord;
    let old = CheckpointSigner::new("n1/old", &[0x11; 32]).unwrap();
    let new = CheckpointSigner::new("n1/new", &[0x22; 32]).unwrap();
    let mut keys = TrustedKeys::new();
    let retired = KeyRecord {
        kid: old.kid().into(),
        public_key: old.public_key_hex(),
        first_tree_size: 0,
        last_tree_size: Some(10),
    };
    keys.insert_record(&retired).unwrap();
    keys.insert_record(&KeyRecord {
        kid: new.kid().into(),
        public_key: new.public_key_hex(),
        first_tree_size: 10,
        last_tree_size: None,
    })
    .unwrap();
    let root = ledger::merkle::empty_root();
    old.sign("c", 10, root, 1).unwrap().verify(&keys).unwrap();
    new.sign("c", 11, root, 2).unwrap().verify(&keys).unwrap();
    assert!(matches!(
        old.sign("c", 11, root, 2).unwrap().verify(&keys),
        Err(CheckpointError::OutsideKeyRange {
            tree_size: 11,
            last: Some(10),
            ..
        })
    ));
    assert!(matches!(
        new.sign("c", 9, root, 2).unwrap().verify(&keys),
        Err(CheckpointError::OutsideKeyRange { first: 10, .. })
    ));
    let forged = KeyRecord {
        public_key: new.public_key_hex(),
        ..retired.clone()
    };
    assert!(matches!(
        keys.insert_record(&forged),
        Err(CheckpointError::MalformedKey { .. })
    ));
    let backwards = KeyRecord {
        first_tree_size: 11,
        ..retired
    };
    assert!(TrustedKeys::new().insert_record(&backwards).is_err());
    let in_use = KeyRecord {
        kid: "k".into(),
        public_key: "00".repeat(32),
        first_tree_size: 3,
        last_tree_size: None,
    };
    let json = serde_json::to_value(in_use).unwrap();
    assert_eq!(json["first_tree_size"], "3");
    assert!(json.get("last_tree_size").is_none(), "{json}");
}

#[test]
fn consistency_edge_cases_are_defined() {
    let all = leaves(9, 1);
    let empty = ledger::merkle::empty_root();
    let root = root_of(&all);
    // old == 0: empty path, old root must be the empty root; any new root.
    let p = consistency_proof(&all[..], 0, 9).unwrap();
    assert!(p.path.is_empty());
    p.verify(&empty, &root).unwrap();
    assert_eq!(p.verify(&root, &root), Err(ProofError::OldRootMismatch));
    // old == new: empty path, equal roots.
    let p = consistency_proof(&all[..], 9, 9).unwrap();
    assert!(p.path.is_empty());
    p.verify(&root, &root).unwrap();
    assert!(p.verify(&root, &empty).is_err());
    let mut longer = p.clone();
    longer.path.push(root);
    assert!(matches!(
        longer.verify(&root, &root),
        Err(ProofError::WrongPathLength {
            expected: 0,
            actual: 1
        })
    ));
    let mut backwards = p;
    backwards.old_size = 10;
    assert_eq!(
        backwards.verify(&root, &root),
        Err(ProofError::OldSizeExceedsNew { old: 10, new: 9 })
    );
}

#[test]
fn proof_json_uses_hex_and_decimal_strings() {
    let all = leaves(5, 3);
    let p = inclusion_proof(&all[..], 2, 5).unwrap();
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["leaf_index"], "2");
    assert_eq!(json["tree_size"], "5");
    assert_eq!(json["path"][0], all[3].to_hex());
    let back: ledger::InclusionProof = serde_json::from_value(json).unwrap();
    assert_eq!(back, p);
    let upper = serde_json::json!({"leaf_index": "2", "tree_size": "5",
        "path": [all[3].to_hex().to_uppercase()]});
    assert!(serde_json::from_value::<ledger::InclusionProof>(upper).is_err());
}
