//! Reading state from a snapshot stream, for both backends: read and check the stream — the
//! header against what openraft announced, ledger items before the deny-list, leaves in index
//! order and matching the frontier and root the header claims, the deny-list in token id order
//! and within bounds — one record at a time, handing each checked record to a sink.
//!
//! Memory held while streaming is bounded whatever the snapshot's size: one frame
//! ([`crate::snapshot::FRAME_BYTES_MAX`]), the Merkle frontier (at most 64 hashes), the interior
//! nodes one leaf completes (at most 64), and the previous deny-list record. The whole-stream
//! checks (root, frontier, end marker) only pass at the end, so a sink that writes must write
//! where a failure can be undone (see `crate::rocks::snapshots`); the in-memory backend collects
//! into a `Changes` and swaps it in only after [`read_snapshot`] returned.

use crate::backend::{AppliedState, SnapshotMeta};
use crate::error::StoreError;
use crate::node::LogId;
use crate::revocation::{self, RevocationRecord};
use crate::snapshot::{SnapshotItem, SnapshotReader};
use ledger::canonical::LeafData;
use ledger::merkle::{Frontier, Hash};
use ledger::{Changes, LedgerMeta};

/// One checked record of a snapshot, as a backend stores it.
pub(crate) enum Record {
    /// An account, transfer, status, expiry, history, index or balance item.
    Ledger(SnapshotItem),
    /// A Merkle leaf's preimage at its index.
    Leaf(u64, LeafData),
    /// An interior node the leaves so far completed: `(level, index, hash)`.
    Node(u8, u64, Hash),
    /// A deny-list record.
    Revocation(RevocationRecord),
    /// The cluster's effective version the snapshot carries ([`crate::cluster_version::BASE`]
    /// in format 3): handed over first, before every other record.
    ClusterVersion(u32),
}

/// What a snapshot stream says besides its records.
pub(crate) struct Streamed {
    /// The applied state it carries.
    pub applied: AppliedState,
    /// The ledger metadata (timestamp, frontier, root), checked against the leaves.
    pub ledger: LedgerMeta,
    /// The cluster's effective version ([`crate::cluster_version::BASE`] in format 3).
    pub cluster_version: u32,
}

/// A whole snapshot, read and checked: what the in-memory backend installs.
pub(crate) struct Restored {
    /// The ledger state, in the form the backend commits.
    pub changes: Changes,
    /// The applied state the snapshot carries.
    pub applied: AppliedState,
    /// The deny-list, in token id order.
    pub revoked: Vec<RevocationRecord>,
    /// The cluster's effective version ([`crate::cluster_version::BASE`] in format 3).
    pub cluster_version: u32,
}

/// Read and check a whole snapshot stream, handing every record to `sink` as it is read (a
/// record is handed over before the checks that need the whole stream have passed). Returns
/// the applied state and ledger metadata once everything has been checked.
pub(crate) fn stream_snapshot(
    meta: &SnapshotMeta,
    input: impl std::io::Read,
    mut sink: impl FnMut(Record) -> Result<(), StoreError>,
) -> Result<Streamed, StoreError> {
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
    sink(Record::ClusterVersion(cluster_version))?;
    let mut tree = Frontier::default();
    let mut nodes = Vec::with_capacity(64);
    let mut last_revoked: Option<RevocationRecord> = None;
    while let Some(item) = reader.next_item()? {
        match item {
            SnapshotItem::Revocation(r) => {
                match &last_revoked {
                    Some(previous) => {
                        revocation::check_snapshot_list(&[previous.clone(), r.clone()])?
                    }
                    None => revocation::check_snapshot_list(std::slice::from_ref(&r))?,
                }
                last_revoked = Some(r.clone());
                sink(Record::Revocation(r))?;
            }
            _ if last_revoked.is_some() => {
                return Err(StoreError::Snapshot(
                    "ledger item after the deny-list".into(),
                ))
            }
            SnapshotItem::Leaf(i, data) => {
                if i != tree.size {
                    return Err(StoreError::Snapshot(format!("leaf {i} out of order")));
                }
                let data = LeafData::from_bytes(&data)
                    .map_err(|e| StoreError::Snapshot(format!("leaf {i}: {e}")))?;
                tree.push_recording(data.hash(), &mut nodes);
                sink(Record::Leaf(i, data))?;
                for (level, index, hash) in nodes.drain(..) {
                    sink(Record::Node(level, index, hash))?;
                }
            }
            SnapshotItem::Account(_)
            | SnapshotItem::Transfer(_)
            | SnapshotItem::Status(..)
            | SnapshotItem::Expiry(_)
            | SnapshotItem::History(..)
            | SnapshotItem::Index(..)
            | SnapshotItem::Balance(..) => sink(Record::Ledger(item))?,
            SnapshotItem::Header { .. }
            | SnapshotItem::End { .. }
            | SnapshotItem::ClusterVersion(_) => {
                return Err(StoreError::Snapshot("unexpected marker".into()))
            }
        }
    }
    // The leaves must produce the frontier and root the snapshot claims: a snapshot cannot
    // smuggle in a state whose history does not match.
    if tree != ledger_meta.tree || tree.root() != ledger_meta.root {
        return Err(StoreError::Snapshot(
            "leaves, frontier and root do not agree".into(),
        ));
    }
    Ok(Streamed {
        applied: AppliedState {
            last_applied: last_log_id,
            membership,
        },
        ledger: ledger_meta,
        cluster_version,
    })
}

/// Read and check a whole snapshot stream into what the in-memory backend installs. Nothing is
/// written. Holds the whole state in memory: that is what the in-memory backend keeps anyway.
pub(crate) fn read_snapshot(
    meta: &SnapshotMeta,
    input: impl std::io::Read,
) -> Result<Restored, StoreError> {
    let mut changes = Changes::default();
    let mut revoked = Vec::new();
    let streamed = stream_snapshot(meta, input, |record| {
        match record {
            Record::Ledger(item) => collect(&mut changes, item),
            Record::Leaf(_, data) => {
                changes.leaves.push(data.hash());
                changes.leaf_data.push(data);
            }
            Record::Node(level, index, hash) => changes.nodes.push((level, index, hash)),
            Record::Revocation(r) => revoked.push(r),
            // Returned in `Streamed` as well.
            Record::ClusterVersion(_) => {}
        }
        Ok(())
    })?;
    changes.meta = streamed.ledger;
    Ok(Restored {
        changes,
        applied: streamed.applied,
        revoked,
        cluster_version: streamed.cluster_version,
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

/// Gather one ledger item into a `Changes` (the form the in-memory backend commits).
fn collect(changes: &mut Changes, item: SnapshotItem) {
    match item {
        SnapshotItem::Account(r) => changes.accounts.push(r),
        SnapshotItem::Transfer(r) => changes.transfers.push(r),
        SnapshotItem::Status(id, s) => changes.statuses.push((id, s)),
        SnapshotItem::Expiry(k) => changes.expiry_put.push(k),
        SnapshotItem::History(k, id) => changes.history.push((k, id)),
        SnapshotItem::Index(k, id) => changes.index.push((k, id)),
        SnapshotItem::Balance(k, e) => changes.balances.push((k, e)),
        // `stream_snapshot` hands only the items above as ledger records.
        _ => {}
    }
}
