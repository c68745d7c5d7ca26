//! Who a cluster member is — [`NodeId`] and [`NodeInfo`] — and openraft's id-parameterised types
//! fixed to them (log ids, votes, stored membership, storage errors). Re-exported from `types`,
//! where the type configuration assembles them with the entry payload and the snapshot data.
//!
//! The lowest layer of the crate: it imports nothing from it, so errors and snapshots can name
//! these types without depending on the type configuration.

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

/// A log id (term, leader, index).
pub type LogId = openraft::LogId<NodeId>;
/// A vote.
pub type Vote = openraft::Vote<NodeId>;
/// The membership config as of some log id.
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
/// openraft's storage error for our node ids.
pub type StorageError = openraft::StorageError<NodeId>;
