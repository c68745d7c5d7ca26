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
    /// The cluster, a store or a snapshot is at a version this build does not run (see
    /// the `cluster_version` module).
    #[error("version: {0}")]
    Unsupported(String),
}

impl StoreError {
    /// Whether this error means stored data cannot be trusted (safe mode), as opposed to an
    /// I/O failure.
    pub fn is_corruption(&self) -> bool {
        match self {
            StoreError::Corruption { .. } | StoreError::LogGap(_) => true,
            // RocksDB's own block and WAL checksums.
            StoreError::Rocks(e) => e.kind() == rocksdb::ErrorKind::Corruption,
            _ => false,
        }
    }

    /// The safe-mode reason this error stands for when it stops a node (the reasons and their
    /// runbooks are in `docs/OPERATIONS.md`): `checksum_mismatch`, `log_gap`,
    /// `snapshot_invalid`, `version_unsupported` (the cluster advanced past this build),
    /// `disk_full` (ENOSPC, from RocksDB or a file operation),
    /// `fsync_failed` (an fsync or fdatasync that reported an error: what was written may not be
    /// on the disk), else `io_error` (a failed write, a bad data directory).
    pub fn safe_mode_reason(&self) -> &'static str {
        match self {
            StoreError::Corruption { .. } => "checksum_mismatch",
            StoreError::Rocks(e) if e.kind() == rocksdb::ErrorKind::Corruption => {
                "checksum_mismatch"
            }
            StoreError::LogGap(_) => "log_gap",
            StoreError::Snapshot(_) => "snapshot_invalid",
            StoreError::Unsupported(_) => "version_unsupported",
            StoreError::Io(e) if e.raw_os_error() == Some(ENOSPC) => "disk_full",
            _ if is_no_space(&self.to_string()) => "disk_full",
            _ if is_sync_failure(&self.to_string()) => "fsync_failed",
            _ => "io_error",
        }
    }

    pub(crate) fn into_raft(self, subject: ErrorSubject<NodeId>, verb: ErrorVerb) -> StorageError {
        StorageIOError::new(subject, verb, AnyError::new(&self)).into()
    }
}

/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;

/// Whether an error's text reports a full disk (RocksDB reports ENOSPC as an I/O error whose
/// message carries the OS's text).
fn is_no_space(text: &str) -> bool {
    text.contains("No space left on device") || text.contains("os error 28")
}

/// Whether an error's text reports a failed sync. RocksDB's POSIX environment words them
/// `While fdatasync: FILE: ...` and `While fsync: FILE: ...`.
fn is_sync_failure(text: &str) -> bool {
    text.contains("While fdatasync") || text.contains("While fsync")
}

/// The safe-mode reason of a fatal storage error as openraft reports it (its text carries the
/// [`StoreError`] that caused it, see `into_raft`); the one place that maps the two.
pub fn safe_mode_reason_of(raft_error_text: &str) -> &'static str {
    if raft_error_text.contains("corrupt record")
        || raft_error_text.contains("rocksdb: Corruption:")
    {
        "checksum_mismatch"
    } else if raft_error_text.contains("log is not contiguous")
        // openraft's own check when it re-applies the log at start: the log lacks entries the
        // state needs (it is behind what the log holds, docs/STORAGE.md).
        || raft_error_text.contains("Failed to get log entries, expected index")
    {
        "log_gap"
    } else if raft_error_text.contains("snapshot: ") {
        "snapshot_invalid"
    } else if is_no_space(raft_error_text) {
        "disk_full"
    } else if is_sync_failure(raft_error_text) {
        "fsync_failed"
    } else {
        "io_error"
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error maps to the same reason directly and through openraft's fatal error text.
    #[test]
    fn a_fatal_error_keeps_its_safe_mode_reason() {
        let cases = [
            (
                StoreError::Corruption {
                    cf: "log",
                    key: "00".into(),
                    reason: "crc".into(),
                },
                "checksum_mismatch",
            ),
            (StoreError::LogGap("7 after 5".into()), "log_gap"),
            (StoreError::Snapshot("truncated".into()), "snapshot_invalid"),
            (
                StoreError::Io(std::io::Error::from_raw_os_error(ENOSPC)),
                "disk_full",
            ),
            (
                StoreError::Io(std::io::Error::from_raw_os_error(5)),
                "io_error",
            ),
            (
                StoreError::Io(std::io::Error::other(
                    "While fdatasync: db/000012.log: Input/output error",
                )),
                "fsync_failed",
            ),
            (StoreError::DataDir("mode 0755".into()), "io_error"),
        ];
        for (e, reason) in cases {
            assert_eq!(e.safe_mode_reason(), reason, "{e}");
            let text = e.to_string();
            let raft = e.into_raft(ErrorSubject::Logs, ErrorVerb::Write);
            let fatal = openraft::error::Fatal::<NodeId>::StorageError(raft);
            assert_eq!(
                safe_mode_reason_of(&fatal.to_string()),
                reason,
                "{text}: {fatal}"
            );
        }
        // openraft's re-apply at start finding the log without an entry the state needs.
        let missing = openraft::StorageIOError::<NodeId>::read_log_at_index(
            8,
            openraft::AnyError::error(
                "Failed to get log entries, expected index: [8, 12), got [None, None)",
            ),
        );
        let fatal = openraft::error::Fatal::<NodeId>::StorageError(missing.into());
        assert_eq!(
            safe_mode_reason_of(&fatal.to_string()),
            "log_gap",
            "{fatal}"
        );
    }
}
