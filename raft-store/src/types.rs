//! The openraft type configuration for ron-ledger, and (re-exported from `crate::node`, which
//! owns them) the node description stored in membership and the id-parameterised openraft types.

pub use crate::node::{LogId, NodeId, NodeInfo, StorageError, StoredMembership, Vote};
use crate::revocation::{Command, Response};
use crate::snapshot::SnapshotData;

/// What every ron-ledger Raft type configuration fixes: the log payload ([`Command`]: a ledger
/// batch or an admin command) and response ([`Response`]),
/// node ids and descriptions, entries and snapshot data. Only the async runtime may vary, so that
/// the simulation can substitute a deterministic one.
pub trait LedgerConfig:
    openraft::RaftTypeConfig<
    D = Command,
    R = Response,
    NodeId = NodeId,
    Node = NodeInfo,
    Entry = openraft::Entry<Self>,
    SnapshotData = SnapshotData,
>
{
}

impl<C> LedgerConfig for C where
    C: openraft::RaftTypeConfig<
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<C>,
        SnapshotData = SnapshotData,
    >
{
}

openraft::declare_raft_types!(
    /// The type configuration: tokio, with a seedable generator for election timeouts.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotData,
        AsyncRuntime = crate::runtime::LedgerRuntime,
);
