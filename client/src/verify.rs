//! Client-side verification: the SDK as an auditor of the node it talks to.
//!
//! With [`crate::ClientConfig::trusted_keys`] set, [`Client::verified_transfer`],
//! [`Client::verified_account`], [`Client::verified_leaf`] and
//! [`Client::latest_verified_checkpoint`] accept an answer only if it is proven against a signed
//! checkpoint that
//!
//! 1. is signed (strict Ed25519) by a trusted `kid` and names the expected cluster;
//! 2. is not older than the newest checkpoint this client accepted before, has the same root if
//!    it is the same size, and — if it is larger — comes with a consistency proof from the
//!    remembered size that verifies (so the history this client saw was extended, not rewritten);
//!
//! and then the inclusion proof must be for exactly the checkpoint's tree size (and the asked
//! leaf index), the answer's root must be the checkpoint's root, the leaf preimage must decode
//! and name the asked id and kind (applied with result `ok`), and the proof must lead from the
//! preimage's leaf hash to the checkpoint's root. Every failure is one [`VerifyError`]
//! variant. The hashing and proof checks are `ledger`'s ([`ledger::proof`],
//! [`ledger::checkpoint`], [`ledger::canonical`]); this module decides what to ask and what to
//! accept.
//!
//! The node signs its applied tree when asked for its latest checkpoint, so whatever it has
//! applied is provable at once; a node whose tree is behind the remembered checkpoint is refused
//! as [`VerifyError::StaleCheckpoint`].
//!
//! The checks are pure functions ([`check_checkpoint`], [`plan_advance`], [`check_consistency`],
//! [`check_inclusion`]); the `Client` methods fetch and apply them.
//!
//! [`Client::verified_transfer`]: crate::Client::verified_transfer
//! [`Client::verified_account`]: crate::Client::verified_account
//! [`Client::verified_leaf`]: crate::Client::verified_leaf
//! [`Client::latest_verified_checkpoint`]: crate::Client::latest_verified_checkpoint
//!
//! ```no_run
//! # async fn demo() -> Result<(), ron_ledger_client::Error> {
//! use ron_ledger_client::{Client, ClientConfig};
//! let keys = ledger::TrustedKeys::from_json(&std::fs::read_to_string("keys.json").unwrap())
//!     .unwrap();
//! let config = ClientConfig::new(["127.0.0.1:7001"]).with_trusted_keys(keys, Some("prod".into()));
//! let client = Client::new(config)?;
//! let t = client.verified_transfer(100).await?;
//! println!("transfer {} is leaf {} of the tree signed at size {}",
//!          t.value.id, t.leaf_index, t.checkpoint.tree_size);
//! # Ok(()) }
//! ```

use ledger::canonical::{decode_leaf, LeafDecodeError, LeafEvent};
use ledger::checkpoint::{CheckpointError, SignedCheckpoint, TrustedKeys};
use ledger::merkle::{leaf_hash, Hash};
use ledger::proof::{ConsistencyProof, InclusionProof, ProofError};
use ledger::{Account, Transfer};
use serde::Deserialize;

/// Why an answer was not accepted. The server is wrong (or lying) in every case.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The checkpoint names a key id that is not trusted.
    #[error("checkpoint signed by unknown key id {0:?}")]
    UnknownKid(String),
    /// The checkpoint's signature does not verify with the trusted key of its `kid`.
    #[error("checkpoint signature does not verify")]
    BadSignature,
    /// The checkpoint cannot even be laid out for verification (an oversized field).
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// The checkpoint is for another cluster.
    #[error("checkpoint is for cluster {offered:?}, expected {expected:?}")]
    WrongCluster {
        /// The configured (or first accepted) cluster id.
        expected: String,
        /// The checkpoint's.
        offered: String,
    },
    /// The checkpoint is older than one this client already accepted: a replay.
    #[error("stale checkpoint: tree size {offered} is older than the accepted {remembered}")]
    StaleCheckpoint {
        /// Tree size of the accepted checkpoint.
        remembered: u64,
        /// Tree size offered.
        offered: u64,
    },
    /// The checkpoint does not extend the accepted one: an equal size with another root, or
    /// a larger size whose consistency proof fails (`proof` says how).
    #[error(
        "fork: checkpoint of size {offered} root {offered_root} does not extend the accepted size \
         {remembered} root {remembered_root} ({})",
        fork_detail(.proof)
    )]
    Fork {
        /// Tree size of the accepted checkpoint.
        remembered: u64,
        /// Its root.
        remembered_root: Hash,
        /// Tree size offered.
        offered: u64,
        /// Root offered.
        offered_root: Hash,
        /// The consistency proof's failure; `None` for equal sizes with different roots.
        proof: Option<ProofError>,
    },
    /// A proof is for other sizes or another leaf than asked.
    #[error("{field}: asked for {expected}, the proof is for {found}")]
    WrongProofShape {
        /// `tree_size`, `leaf_index`, `old_size` or `new_size`.
        field: &'static str,
        /// What was asked.
        expected: u64,
        /// What the proof says.
        found: u64,
    },
    /// The root in the inclusion answer is not the checkpoint's.
    #[error("answer's root {answered} is not the checkpoint's root {checkpoint}")]
    RootMismatch {
        /// The checkpoint's root.
        checkpoint: Hash,
        /// The root the answer carried.
        answered: Hash,
    },
    /// The inclusion proof does not lead from the leaf to the checkpoint's root.
    #[error("inclusion proof does not verify: {0}")]
    InclusionFailed(ProofError),
    /// An event stream disagrees with itself: an event out of order, a frontier that is not
    /// the one this consumer computed, or a root its own leaves do not give.
    #[error("event stream at leaf {index}: {reason}")]
    StreamMismatch {
        /// The leaf index where it happened.
        index: u64,
        /// What disagreed.
        reason: String,
    },
    /// The leaf preimage is not a valid leaf.
    #[error("leaf data does not decode: {0}")]
    LeafUndecodable(LeafDecodeError),
    /// The leaf is of another kind or names another id than asked.
    #[error("leaf is {found}, expected {expected}")]
    LeafMismatch {
        /// What was asked, e.g. `transfer 7`.
        expected: String,
        /// What the leaf records, e.g. `transfer 8`.
        found: String,
    },
    /// The leaf records the asked event, but as rejected: it was never created.
    #[error("leaf records the event rejected with result code {result}")]
    NotApplied {
        /// The leaf's result code.
        result: u16,
    },
    /// The asked leaf index is not in the checkpoint's tree.
    #[error("leaf {index} is not in the checkpoint's tree of {tree_size} leaves")]
    BeyondCheckpoint {
        /// The asked index.
        index: u64,
        /// The checkpoint's tree size.
        tree_size: u64,
    },
}

fn fork_detail(proof: &Option<ProofError>) -> String {
    match proof {
        None => "same size, different root".into(),
        Some(e) => format!("consistency proof: {e}"),
    }
}

/// A value proven to be a leaf of the tree a trusted checkpoint signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified<T> {
    /// The value as the leaf records it: an account as created (zero balances), a transfer
    /// as applied, or the decoded leaf.
    pub value: T,
    /// Its leaf index.
    pub leaf_index: u64,
    /// The leaf preimage the proof covers.
    pub leaf_data: Vec<u8>,
    /// The verified checkpoint the proof leads to.
    pub checkpoint: SignedCheckpoint,
}

/// The answer of `GET /v1/proofs/inclusion`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct InclusionAnswer {
    /// The proof.
    pub proof: InclusionProof,
    /// The leaf preimage.
    #[serde(with = "ledger::wire::hex")]
    pub leaf_data: Vec<u8>,
    /// The root at the proof's tree size, as the server computed it.
    #[serde(with = "ledger::wire::hash")]
    pub root: Hash,
}

/// Which leaf an inclusion proof is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafQuery {
    /// Leaf number `index`.
    Index(u64),
    /// The leaf that created transfer `id`.
    Transfer(u128),
    /// The leaf that created account `id`.
    Account(u128),
}

impl LeafQuery {
    /// The query string that asks for it.
    pub(crate) fn query(self) -> String {
        match self {
            LeafQuery::Index(i) => format!("leaf={i}"),
            LeafQuery::Transfer(id) => format!("transfer_id={id}"),
            LeafQuery::Account(id) => format!("account_id={id}"),
        }
    }
}

impl std::fmt::Display for LeafQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeafQuery::Index(i) => write!(f, "leaf {i}"),
            LeafQuery::Transfer(id) => write!(f, "transfer {id}"),
            LeafQuery::Account(id) => write!(f, "account {id}"),
        }
    }
}

fn describe(event: &LeafEvent) -> String {
    match event {
        LeafEvent::Account { account, .. } => format!("account {}", account.id),
        LeafEvent::Transfer { transfer, .. } => format!("transfer {}", transfer.id),
        LeafEvent::Expiry { pending_id, .. } => format!("expiry of {pending_id}"),
    }
}

/// Check a checkpoint's signature with `keys`, then that it names `cluster_id` (if given).
pub fn check_checkpoint(
    cp: &SignedCheckpoint,
    keys: &TrustedKeys,
    cluster_id: Option<&str>,
) -> Result<(), VerifyError> {
    cp.verify(keys).map_err(|e| match e {
        CheckpointError::UnknownKid(kid) => VerifyError::UnknownKid(kid),
        CheckpointError::BadSignature => VerifyError::BadSignature,
        other => VerifyError::MalformedCheckpoint(other.to_string()),
    })?;
    match cluster_id {
        Some(expected) if expected != cp.cluster_id => Err(VerifyError::WrongCluster {
            expected: expected.to_string(),
            offered: cp.cluster_id.clone(),
        }),
        _ => Ok(()),
    }
}

/// What accepting an (authentic) checkpoint after the remembered one takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advance {
    /// Nothing remembered: accept it.
    First,
    /// The same size and root as remembered: nothing changes.
    Same,
    /// Larger: accept only with a verified consistency proof from `from` leaves.
    Extend {
        /// The remembered tree size.
        from: u64,
    },
}

/// Decide how `offered` relates to the `remembered` checkpoint: older is
/// [`VerifyError::StaleCheckpoint`], same size with another root is [`VerifyError::Fork`].
pub fn plan_advance(
    remembered: Option<&SignedCheckpoint>,
    offered: &SignedCheckpoint,
) -> Result<Advance, VerifyError> {
    let Some(r) = remembered else {
        return Ok(Advance::First);
    };
    if offered.tree_size < r.tree_size {
        return Err(VerifyError::StaleCheckpoint {
            remembered: r.tree_size,
            offered: offered.tree_size,
        });
    }
    if offered.tree_size == r.tree_size {
        return if offered.root == r.root {
            Ok(Advance::Same)
        } else {
            Err(fork(r, offered, None))
        };
    }
    Ok(Advance::Extend { from: r.tree_size })
}

fn fork(r: &SignedCheckpoint, o: &SignedCheckpoint, proof: Option<ProofError>) -> VerifyError {
    VerifyError::Fork {
        remembered: r.tree_size,
        remembered_root: r.root,
        offered: o.tree_size,
        offered_root: o.root,
        proof,
    }
}

/// Check that `proof` is from `old_size` leaves to `new_size` (`WrongProofShape` naming the
/// field that differs).
pub fn check_consistency_shape(
    proof: &ConsistencyProof,
    old_size: u64,
    new_size: u64,
) -> Result<(), VerifyError> {
    for (field, expected, found) in [
        ("old_size", old_size, proof.old_size),
        ("new_size", new_size, proof.new_size),
    ] {
        if expected != found {
            return Err(VerifyError::WrongProofShape {
                field,
                expected,
                found,
            });
        }
    }
    Ok(())
}

/// Check that `proof` is from `remembered`'s size to `offered`'s and verifies their roots.
pub fn check_consistency(
    remembered: &SignedCheckpoint,
    offered: &SignedCheckpoint,
    proof: &ConsistencyProof,
) -> Result<(), VerifyError> {
    check_consistency_shape(proof, remembered.tree_size, offered.tree_size)?;
    proof
        .verify(&remembered.root, &offered.root)
        .map_err(|e| fork(remembered, offered, Some(e)))
}

/// The transfer an (already decoded) leaf created, if it is the creation of transfer `id`.
pub fn transfer_of(event: &LeafEvent, id: u128) -> Result<Transfer, VerifyError> {
    match event {
        LeafEvent::Transfer { transfer, result } if transfer.id == id => match result {
            0 => Ok(*transfer),
            r => Err(VerifyError::NotApplied { result: *r }),
        },
        other => Err(VerifyError::LeafMismatch {
            expected: LeafQuery::Transfer(id).to_string(),
            found: describe(other),
        }),
    }
}

/// The account an (already decoded) leaf created, if it is the creation of account `id`.
pub fn account_of(event: &LeafEvent, id: u128) -> Result<Account, VerifyError> {
    match event {
        LeafEvent::Account { account, result } if account.id == id => match result {
            0 => Ok(*account),
            r => Err(VerifyError::NotApplied { result: *r }),
        },
        other => Err(VerifyError::LeafMismatch {
            expected: LeafQuery::Account(id).to_string(),
            found: describe(other),
        }),
    }
}

/// Check an inclusion answer for `query` against a verified checkpoint; returns the leaf
/// index and the decoded leaf.
pub fn check_inclusion(
    query: LeafQuery,
    cp: &SignedCheckpoint,
    answer: &InclusionAnswer,
) -> Result<(u64, LeafEvent), VerifyError> {
    let proof = &answer.proof;
    if proof.tree_size != cp.tree_size {
        return Err(VerifyError::WrongProofShape {
            field: "tree_size",
            expected: cp.tree_size,
            found: proof.tree_size,
        });
    }
    if let LeafQuery::Index(index) = query {
        if proof.leaf_index != index {
            return Err(VerifyError::WrongProofShape {
                field: "leaf_index",
                expected: index,
                found: proof.leaf_index,
            });
        }
    }
    if answer.root != cp.root {
        return Err(VerifyError::RootMismatch {
            checkpoint: cp.root,
            answered: answer.root,
        });
    }
    let event = decode_leaf(&answer.leaf_data).map_err(VerifyError::LeafUndecodable)?;
    match query {
        LeafQuery::Index(_) => {}
        LeafQuery::Transfer(id) => {
            transfer_of(&event, id)?;
        }
        LeafQuery::Account(id) => {
            account_of(&event, id)?;
        }
    }
    proof
        .verify(&leaf_hash(&answer.leaf_data), &cp.root)
        .map_err(VerifyError::InclusionFailed)?;
    Ok((proof.leaf_index, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::canonical::transfer_leaf_data;
    use ledger::checkpoint::CheckpointSigner;
    use ledger::merkle::root_of;
    use ledger::proof::{consistency_proof, inclusion_proof};

    fn setup() -> (Vec<Vec<u8>>, Vec<Hash>, CheckpointSigner, TrustedKeys) {
        let data: Vec<Vec<u8>> = (1..=7u128)
            .map(|id| {
                let t = Transfer {
                    id,
                    amount: 10,
                    ..Default::default()
                };
                transfer_leaf_data(&t, 0).as_bytes().to_vec()
            })
            .collect();
        let hashes = data.iter().map(|d| leaf_hash(d)).collect();
        let signer = CheckpointSigner::new("k", &[9u8; 32]).unwrap();
        let mut keys = TrustedKeys::new();
        keys.insert("k".into(), &signer.public_key_hex()).unwrap();
        (data, hashes, signer, keys)
    }

    #[test]
    fn plan_advance_table() {
        let (_, hashes, signer, _) = setup();
        let at = |n: usize| {
            signer
                .sign("c", n as u64, root_of(&hashes[..n]), 1)
                .unwrap()
        };
        let other = signer.sign("c", 5, hashes[0], 1).unwrap();
        assert_eq!(plan_advance(None, &at(5)), Ok(Advance::First));
        assert_eq!(plan_advance(Some(&at(5)), &at(5)), Ok(Advance::Same));
        assert_eq!(
            plan_advance(Some(&at(5)), &at(7)),
            Ok(Advance::Extend { from: 5 })
        );
        assert_eq!(
            plan_advance(Some(&at(5)), &at(3)),
            Err(VerifyError::StaleCheckpoint {
                remembered: 5,
                offered: 3
            })
        );
        assert!(matches!(
            plan_advance(Some(&at(5)), &other),
            Err(VerifyError::Fork { proof: None, .. })
        ));
        let p = consistency_proof(&hashes[..], 5, 7).unwrap();
        assert_eq!(check_consistency(&at(5), &at(7), &p), Ok(()));
        let p = consistency_proof(&hashes[..], 4, 7).unwrap();
        assert!(matches!(
            check_consistency(&at(5), &at(7), &p),
            Err(VerifyError::WrongProofShape {
                field: "old_size",
                ..
            })
        ));
    }

    #[test]
    fn inclusion_checks_in_order() {
        let (data, hashes, signer, keys) = setup();
        let cp = signer.sign("c", 7, root_of(&hashes), 1).unwrap();
        check_checkpoint(&cp, &keys, Some("c")).unwrap();
        let answer = InclusionAnswer {
            proof: inclusion_proof(&hashes[..], 2, 7).unwrap(),
            leaf_data: data[2].clone(),
            root: cp.root,
        };
        let (index, _) = check_inclusion(LeafQuery::Transfer(3), &cp, &answer).unwrap();
        assert_eq!(index, 2);
        check_inclusion(LeafQuery::Index(2), &cp, &answer).unwrap();
        assert!(matches!(
            check_inclusion(LeafQuery::Transfer(4), &cp, &answer),
            Err(VerifyError::LeafMismatch { .. })
        ));
        assert!(matches!(
            check_inclusion(LeafQuery::Account(3), &cp, &answer),
            Err(VerifyError::LeafMismatch { .. })
        ));
        assert!(matches!(
            check_inclusion(LeafQuery::Index(3), &cp, &answer),
            Err(VerifyError::WrongProofShape {
                field: "leaf_index",
                ..
            })
        ));
        let mut empty = answer.clone();
        empty.leaf_data.clear();
        assert!(matches!(
            check_inclusion(LeafQuery::Index(2), &cp, &empty),
            Err(VerifyError::LeafUndecodable(_))
        ));
        assert_eq!(
            check_checkpoint(&cp, &keys, Some("d")),
            Err(VerifyError::WrongCluster {
                expected: "d".into(),
                offered: "c".into()
            })
        );
    }
}
