//! The RocksDB backend: one database under `<data_dir>/db` with a column family per table
//! (`leaves` holds each leaf's preimage, `nodes` every perfect-subtree root keyed level‖index
//! big-endian, so proofs read O(log n) records, `revoked` the capability deny-list keyed by
//! token id), and
//! snapshot files under `<data_dir>/snapshots`. Log appends, votes, truncation and purges are
//! written with `sync = true` (the WAL is fsynced before the call returns); each applied entry is
//! one atomic `WriteBatch`, the last of every apply call synced.
//!
//! One part per concern, each readable alone; this file only names them:
//!
//! - `accounts`: the account cache in front of the `accounts` table, for apply's reads.
//! - `layout`: column family names, fixed keys and key encodings — the on-disk layout.
//! - `db`: [`RocksBackend`] itself: opening, column family handles, checked reads, writes.
//! - `log`: the Raft log and its metadata (`LogBackend`).
//! - `tables`: the ledger tables and the `state` records (`ledger::StateRead`, staging
//!   `Changes`).
//! - `tree`: the stored Merkle tree that proofs read.
//! - `revoked`: the capability deny-list.
//! - `view`: a consistent read-only view of the whole state (snapshot export, the digest).
//! - `snapshots`: snapshot files, the current-snapshot record, export.
//! - `install`: replacing the state from a received snapshot in bounded memory.
//! - `machine`: `StateBackend`: the atomic write per applied entry, and dispatch to the above.
//!
//! The parts depend on each other in that order (`layout` and `db` below everything, `machine`
//! on top); none imports from this file.

mod accounts;
mod db;
mod install;
mod layout;
mod log;
mod machine;
mod revoked;
mod snapshots;
mod tables;
mod tree;
mod view;

pub use accounts::ACCOUNT_CACHE_ENTRIES;
pub use db::{
    prepare_private_dir, storage_format_at, RocksBackend, FORMAT_2_CLUSTER_VERSION,
    MEMTABLES_BYTES_MAX, NODE_LEVEL_MIN, STORAGE_FORMAT, STORAGE_FORMAT_MIN,
};
pub use install::INSTALL_BATCH_BYTES_MAX;
