//! Restoring state from a snapshot stream, for both backends: read and check the whole stream
//! — the header against what openraft announced, ledger items before the deny-list, leaves in
//! index order and matching the frontier and root the header claims, the deny-list in token id
//! order and within bounds — into the `Changes` a backend commits, the applied state and the
//! deny-list.
//!
//! This module never writes: a backend replaces its state only after this has read and checked
//! everything.

use crate::backend::{AppliedState, SnapshotMeta};
use crate::error::StoreError;
use crate::node::LogId;
use crate::revocation::{self, RevocationRecord};
use crate::snapshot::{SnapshotItem, SnapshotReader};
use ledger::canonical::LeafData;
use ledger::merkle::Frontier;
use ledger::Changes;

/// A whole snapshot, read and checked: what a backend installs.
pub(crate) struct Restored {
    /// The ledger state, in the form both backends commit.
    pub changes: Changes,
    /// The applied state the snapshot carries.
    pub applied: AppliedState,
    /// The deny-list, in token id order.
    pub revoked: Vec<RevocationRecord>,
    /// The cluster's effective version ([`crate::cluster_version::BASE`] in format 3).
    pub cluster_version: u32,
}

/// Read and check a whole snapshot stream into what a backend installs. Nothing is written.
pub(crate) fn read_snapshot(
    meta: &SnapshotMeta,
    input: impl std::io::Read,
) -> Result<Restored, StoreError> {
    let (header, mut reader) = SnapshotReader::new(input)?;
    let SnapshotItem::Header {
        last_log_id,
        membership,
        ledger: ledger_meta,
    } = header
    else {
        return Err(StoreError::Snapshot("missing header".into()));
    };
    check_header(meta, last_log_id)?;
    let mut changes = Changes {
        meta: ledger_meta,
        ..Changes::default()
    };
    let mut revoked = Vec::new();
    let cluster_version = if reader.format() >= 4 {
        match reader.next_item()? {
            Some(SnapshotItem::ClusterVersion(v)) if v > crate::cluster_version::BASE => {
                crate::cluster_version::check_supported(v, "the snapshot")?
            }
            _ => {
                return Err(StoreError::Snapshot(
                    "format 4 without a cluster version after the header".into(),
                ))
            }
        }
    } else {
        crate::cluster_version::BASE
    };
    while let Some(item) = reader.next_item()? {
        match item {
            SnapshotItem::Revocation(r) => revoked.push(r),
            item if revoked.is_empty() => collect(&mut changes, item)?,
            _ => {
                return Err(StoreError::Snapshot(
                    "ledger item after the deny-list".into(),
                ))
            }
        }
    }
    check_leaves(&mut changes)?;
    revocation::check_snapshot_list(&revoked)?;
    Ok(Restored {
        changes,
        applied: AppliedState {
            last_applied: last_log_id,
            membership,
        },
        revoked,
        cluster_version,
    })
}

/// The snapshot must be the one openraft says it is.
fn check_header(meta: &SnapshotMeta, last_log_id: Option<LogId>) -> Result<(), StoreError> {
    if meta.last_log_id != last_log_id {
        return Err(StoreError::Snapshot(format!(
            "snapshot covers {last_log_id:?}, but was announced as {:?}",
            meta.last_log_id
        )));
    }
    Ok(())
}

/// Gather one snapshot item into a `Changes` (the form both backends commit).
fn collect(changes: &mut Changes, item: SnapshotItem) -> Result<(), StoreError> {
    match item {
        SnapshotItem::Account(r) => changes.accounts.push(r),
        SnapshotItem::Transfer(r) => changes.transfers.push(r),
        SnapshotItem::Status(id, s) => changes.statuses.push((id, s)),
        SnapshotItem::Expiry(k) => changes.expiry_put.push(k),
        SnapshotItem::History(k, id) => changes.history.push((k, id)),
        SnapshotItem::Index(k, id) => changes.index.push((k, id)),
        SnapshotItem::Balance(k, e) => changes.balances.push((k, e)),
        SnapshotItem::Leaf(i, data) => {
            if i != changes.leaves.len() as u64 {
                return Err(StoreError::Snapshot(format!("leaf {i} out of order")));
            }
            let data = LeafData::from_bytes(&data)
                .map_err(|e| StoreError::Snapshot(format!("leaf {i}: {e}")))?;
            changes.leaves.push(data.hash());
            changes.leaf_data.push(data);
        }
        SnapshotItem::Header { .. }
        | SnapshotItem::End { .. }
        | SnapshotItem::Revocation(_)
        | SnapshotItem::ClusterVersion(_) => {
            return Err(StoreError::Snapshot("unexpected marker".into()))
        }
    }
    Ok(())
}

/// The snapshot's leaves must produce the frontier and root it claims: a snapshot cannot smuggle
/// in a state whose history does not match. Replaying the leaves also yields every interior node
/// (`changes.nodes`), so a node that installed a snapshot answers proofs like one that applied
/// every entry.
fn check_leaves(changes: &mut Changes) -> Result<(), StoreError> {
    let mut tree = Frontier::default();
    let mut nodes = Vec::with_capacity(changes.leaves.len());
    for leaf in &changes.leaves {
        tree.push_recording(*leaf, &mut nodes);
    }
    let meta = &changes.meta;
    if tree != meta.tree || tree.root() != meta.root {
        return Err(StoreError::Snapshot(
            "leaves, frontier and root do not agree".into(),
        ));
    }
    changes.nodes = nodes;
    Ok(())
}
