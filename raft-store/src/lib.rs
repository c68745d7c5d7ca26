//! openraft storage for ron-ledger.
//!
//! - [`LogStore`] implements openraft's `RaftLogStorage` and [`StateMachine`] its
//!   `RaftStateMachine` (storage-v2), once, over two narrow blocking interfaces:
//!   [`LogBackend`] and [`StateBackend`].
//! - [`RocksBackend`] implements both on one RocksDB database (column families for the log, the
//!   Raft metadata, and each ledger table), with checksummed records, synced appends and votes,
//!   and one atomic write per applied entry.
//! - [`revocation`] holds the entry payload ([`Command`]: a ledger batch or an admin command) and
//!   the capability deny-list that admin commands maintain (replicated, not in the Merkle tree).
//! - [`MemoryLog`] and [`MemoryStateBackend`] implement them in memory for amnesia mode and the
//!   simulation; they never create a file.
//!
//! ```no_run
//! use std::sync::Arc;
//! use raft_store::{LogStore, RocksBackend, StateMachine, TypeConfig};
//!
//! let backend = Arc::new(RocksBackend::open("/var/lib/ron-ledger".as_ref()).unwrap());
//! let log: LogStore<TypeConfig, _> = LogStore::new(backend.clone());
//! let sm: StateMachine<TypeConfig, _> = StateMachine::new(backend);
//! // hand `log` and `sm` to `openraft::Raft::new`.
//! ```

pub mod backend;
pub mod backup;
pub mod cluster_version;
pub mod error;
pub mod log_store;
pub mod memory;
mod node;
pub mod record;
mod restore;
pub mod revocation;
pub mod rocks;
pub mod runtime;
pub mod snapshot;
pub mod state_machine;
pub mod stats;
pub mod types;

pub use backend::{
    AppliedState, BalanceRange, DiskStats, LogBackend, SnapshotMeta, SnapshotSource, StateBackend,
};
pub use cluster_version::{CLUSTER_VERSION, CLUSTER_VERSION_MIN};
pub use error::StoreError;
pub use log_store::LogStore;
pub use memory::{MemoryLog, MemoryStateBackend};
pub use revocation::{
    AdminCommand, AdminOutcome, AdminWrite, Command, Response, Revocation, RevocationRecord,
    RevokeResult, TokenId,
};
pub use rocks::{
    RocksBackend, FORMAT_2_CLUSTER_VERSION, NODE_LEVEL_MIN, STORAGE_FORMAT, STORAGE_FORMAT_MIN,
};
pub use snapshot::{SnapshotData, SnapshotItem};
pub use state_machine::StateMachine;
pub use types::{LedgerConfig, LogId, NodeId, NodeInfo, StoredMembership, TypeConfig, Vote};
