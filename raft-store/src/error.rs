//! Typed storage errors. Corruption is its own variant: the node turns it into safe mode and never
//! serves the record as data.

use crate::node::{NodeId, StorageError};
use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record failed its checksum or did not decode. Carries the location only, never data.
    #[error("corrupt record in column family {cf} at key {key}: {reason}")]
    Corruption {
        /// Column family (or in-memory table).
        cf: &'static str,
        /// The key, hex-encoded.
        key: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The log has a hole or does not continue the previous entry.
    #[error("log is not contiguous: {0}")]
    LogGap(String),
    /// RocksDB reported an error (I/O, fsync, disk full, ...).
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A file operation failed (snapshots, directories).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The data directory or a file in it has unsafe permissions, or is not ours.
    #[error("data directory: {0}")]
    DataDir(String),
    /// A snapshot file is malformed.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// A proof or historical root was asked for with arguments the tree cannot answer (for
    /// example a size beyond the applied tree).
    #[error("proof: {0}")]
    Proof(#[from] ledger::ProofError),
    /// A background task failed to complete.
    #[error("background task: {0}")]
    Task(String),
}

impl StoreError {
    /// Whether this error means stored data cannot be trusted (safe mode), as opposed to an
    /// I/O failure.
    pub fn is_corruption(&self) -> bool {
        matches!(self, StoreError::Corruption { .. } | StoreError::LogGap(_))
    }

    pub(crate) fn into_raft(self, subject: ErrorSubject<NodeId>, verb: ErrorVerb) -> StorageError {
        StorageIOError::new(subject, verb, AnyError::new(&self)).into()
    }
}

impl From<ledger::ReadError> for StoreError {
    fn from(e: ledger::ReadError) -> Self {
        match e {
            ledger::ReadError::Corruption { what } => StoreError::Corruption {
                cf: "ledger",
                key: String::new(),
                reason: what,
            },
            ledger::ReadError::Backend(msg) => StoreError::Task(msg),
        }
    }
}

impl From<StoreError> for ledger::ReadError {
    fn from(e: StoreError) -> Self {
        if e.is_corruption() {
            ledger::ReadError::Corruption {
                what: e.to_string(),
            }
        } else {
            ledger::ReadError::Backend(e.to_string())
        }
    }
}
