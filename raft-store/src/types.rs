//! The openraft type configuration for ron-ledger, and the node description stored in
//! membership.

use crate::revocation::{Command, Response};
use crate::snapshot::SnapshotData;
use serde::{Deserialize, Serialize};

/// A cluster member as recorded in the replicated membership config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// Where clients reach this node's HTTP API (`host:port`).
    pub api_addr: String,
    /// Where peers reach this node's Raft RPC listener (`host:port`).
    pub peer_addr: String,
}

impl std::fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "api={} peer={}", self.api_addr, self.peer_addr)
    }
}

/// Node ids are small integers chosen by the operator.
pub type NodeId = u64;

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

/// A log id (term, leader, index).
pub type LogId = openraft::LogId<NodeId>;
/// A vote.
pub type Vote = openraft::Vote<NodeId>;
/// The membership config as of some log id.
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
/// openraft's storage error for our node ids.
pub type StorageError = openraft::StorageError<NodeId>;
