//! Export bundles: a contiguous range of leaves `[from, to)` with their preimages and inclusion
//! proofs against one signed checkpoint, so a third party holding only the cluster's public
//! keys can check every exported event — rejected ones included — without trusting the
//! exporter. [`build_bundle`] assembles one from any [`TreeSource`]; [`verify_bundle`] checks one.
//!
//! JSON:
//!
//! ```text
//! {"format": "ron-ledger-export/1", "cluster_id": "prod", "from": "0", "to": "2",
//!  "checkpoint": { SignedCheckpoint },
//!  "events": [{"index": "0", "data": "<hex preimage>", "proof": ["<64 hex>", ...]}, ...]}
//! ```

use crate::canonical::{decode_leaf, LeafDecodeError, LeafEvent};
use crate::checkpoint::{CheckpointError, SignedCheckpoint, TrustedKeys};
use crate::merkle::{leaf_hash, Hash};
use crate::proof::{inclusion_proof, InclusionProof, ProofError, TreeSource};
use crate::wire;
use serde::{Deserialize, Serialize};

/// The `format` value of bundles this build writes and reads.
pub const BUNDLE_FORMAT: &str = "ron-ledger-export/1";
/// Most events one bundle may carry ([`verify_bundle`] refuses more).
pub const BUNDLE_EVENTS_MAX: u64 = 65_536;

/// A range of leaves with proofs against a signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportBundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// The cluster; equal to the checkpoint's.
    pub cluster_id: String,
    /// First leaf index (inclusive).
    #[serde(with = "wire::dec")]
    pub from: u64,
    /// End leaf index (exclusive); at most the checkpoint's tree size.
    #[serde(with = "wire::dec")]
    pub to: u64,
    /// The signed root every proof leads to.
    pub checkpoint: SignedCheckpoint,
    /// Leaves `from..to`, in order.
    pub events: Vec<ExportedEvent>,
}

/// One leaf of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEvent {
    /// Leaf index.
    #[serde(with = "wire::dec")]
    pub index: u64,
    /// The leaf preimage (see [`crate::canonical::decode_leaf`]).
    #[serde(with = "wire::hex")]
    pub data: Vec<u8>,
    /// Inclusion path in the checkpoint's tree.
    #[serde(with = "wire::hashes")]
    pub proof: Vec<Hash>,
}

/// What a verified bundle contained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleReport {
    /// The checkpoint's cluster.
    pub cluster_id: String,
    /// The checkpoint's tree size.
    #[serde(with = "wire::dec")]
    pub tree_size: u64,
    /// The checkpoint's root.
    #[serde(with = "wire::hash")]
    pub root: Hash,
    /// The checkpoint's cluster time.
    #[serde(with = "wire::dec")]
    pub timestamp: u64,
    /// The key that signed it.
    pub kid: String,
    /// Events checked.
    #[serde(with = "wire::dec")]
    pub events: u64,
    /// Of which create-account events.
    #[serde(with = "wire::dec")]
    pub accounts: u64,
    /// Of which create-transfer events.
    #[serde(with = "wire::dec")]
    pub transfers: u64,
    /// Of which expiries.
    #[serde(with = "wire::dec")]
    pub expiries: u64,
    /// Account and transfer events whose result code is not `ok` (0).
    #[serde(with = "wire::dec")]
    pub rejected: u64,
}

/// Why a bundle did not verify; names the first failing item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// `format` is not [`BUNDLE_FORMAT`].
    #[error("unsupported bundle format {0:?}")]
    Format(String),
    /// The bundle and its checkpoint name different clusters.
    #[error("bundle is for cluster {bundle:?}, its checkpoint for {checkpoint:?}")]
    ClusterMismatch {
        /// The bundle's cluster id.
        bundle: String,
        /// The checkpoint's cluster id.
        checkpoint: String,
    },
    /// The checkpoint's signature did not verify.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// Not `from < to <= tree_size`.
    #[error("range [{from}, {to}) is empty or beyond the checkpoint's {tree_size} leaves")]
    Range {
        /// The bundle's `from`.
        from: u64,
        /// The bundle's `to`.
        to: u64,
        /// The checkpoint's tree size.
        tree_size: u64,
    },
    /// More events than [`BUNDLE_EVENTS_MAX`].
    #[error("{count} events; a bundle carries at most {max}")]
    TooManyEvents {
        /// Events in the range.
        count: u64,
        /// The bound.
        max: u64,
    },
    /// The events list is not exactly one event per index of the range.
    #[error("{actual} events for a range of {expected}")]
    EventCount {
        /// `to - from`.
        expected: u64,
        /// Events given.
        actual: u64,
    },
    /// The event expected at leaf `index` failed.
    #[error("event {index}: {reason}")]
    Event {
        /// The leaf index expected at this position.
        index: u64,
        /// What failed.
        reason: EventError,
    },
}

/// What was wrong with one event of a bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event at this position carries another index (gap, duplicate or disorder).
    #[error("carries index {found}")]
    WrongIndex {
        /// The index it carries.
        found: u64,
    },
    /// The data is not a leaf preimage.
    #[error("data: {0}")]
    Decode(#[from] LeafDecodeError),
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
}

/// Assemble the bundle of leaves `[from, to)` of `src` against `checkpoint` (whose tree size
/// `src` must hold). `leaf_data` returns a leaf's preimage. The caller bounds the range by
/// [`BUNDLE_EVENTS_MAX`].
pub fn build_bundle<S, F>(
    src: &S,
    mut leaf_data: F,
    checkpoint: SignedCheckpoint,
    from: u64,
    to: u64,
) -> Result<ExportBundle, S::Error>
where
    S: TreeSource + ?Sized,
    F: FnMut(u64) -> Result<Vec<u8>, S::Error>,
{
    let size = checkpoint.tree_size;
    if from >= to || to > size {
        return Err(ProofError::IndexOutOfRange {
            index: to.max(from),
            size,
        }
        .into());
    }
    let mut events = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0));
    for index in from..to {
        let InclusionProof { path, .. } = inclusion_proof(src, index, size)?;
        events.push(ExportedEvent {
            index,
            data: leaf_data(index)?,
            proof: path,
        });
    }
    Ok(ExportBundle {
        format: BUNDLE_FORMAT.to_string(),
        cluster_id: checkpoint.cluster_id.clone(),
        from,
        to,
        checkpoint,
        events,
    })
}

/// Check a bundle end to end: format, cluster, checkpoint signature, `from < to <= tree_size`,
/// exactly the indexes `from..to` in order, every preimage decodes, every inclusion proof
/// leads from the preimage's leaf hash to the checkpoint's root.
pub fn verify_bundle(
    bundle: &ExportBundle,
    keys: &TrustedKeys,
) -> Result<BundleReport, BundleError> {
    if bundle.format != BUNDLE_FORMAT {
        return Err(BundleError::Format(bundle.format.clone()));
    }
    let cp = &bundle.checkpoint;
    if bundle.cluster_id != cp.cluster_id {
        return Err(BundleError::ClusterMismatch {
            bundle: bundle.cluster_id.clone(),
            checkpoint: cp.cluster_id.clone(),
        });
    }
    cp.verify(keys)?;
    let (from, to) = (bundle.from, bundle.to);
    if from >= to || to > cp.tree_size {
        return Err(BundleError::Range {
            from,
            to,
            tree_size: cp.tree_size,
        });
    }
    let count = to - from;
    if count > BUNDLE_EVENTS_MAX {
        return Err(BundleError::TooManyEvents {
            count,
            max: BUNDLE_EVENTS_MAX,
        });
    }
    if bundle.events.len() as u64 != count {
        return Err(BundleError::EventCount {
            expected: count,
            actual: bundle.events.len() as u64,
        });
    }
    let mut report = BundleReport {
        cluster_id: cp.cluster_id.clone(),
        tree_size: cp.tree_size,
        root: cp.root,
        timestamp: cp.timestamp,
        kid: cp.kid.clone(),
        events: count,
        accounts: 0,
        transfers: 0,
        expiries: 0,
        rejected: 0,
    };
    for (index, event) in (from..to).zip(&bundle.events) {
        let fail = |reason: EventError| BundleError::Event { index, reason };
        if event.index != index {
            return Err(fail(EventError::WrongIndex { found: event.index }));
        }
        let decoded = decode_leaf(&event.data).map_err(|e| fail(e.into()))?;
        let proof = InclusionProof {
            leaf_index: index,
            tree_size: cp.tree_size,
            path: event.proof.clone(),
        };
        proof
            .verify(&leaf_hash(&event.data), &cp.root)
            .map_err(|e| fail(e.into()))?;
        match decoded {
            LeafEvent::Account { result, .. } => {
                report.accounts += 1;
                report.rejected += u64::from(result != 0);
            }
            LeafEvent::Transfer { result, .. } => {
                report.transfers += 1;
                report.rejected += u64::from(result != 0);
            }
            LeafEvent::Expiry { .. } => report.expiries += 1,
        }
    }
    Ok(report)
}
