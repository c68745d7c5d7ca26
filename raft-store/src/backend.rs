//! The seam between openraft's storage traits and the two storage engines. [`LogStore`] and
//! [`StateMachine`] implement openraft once, over these blocking interfaces; RocksDB and memory
//! implement the interfaces.
//!
//! [`LogStore`]: crate::LogStore
//! [`StateMachine`]: crate::StateMachine

use crate::error::StoreError;
use crate::revocation::{AdminCommand, AdminOutcome, AdminWrite, RevocationRecord, TokenId};
use crate::snapshot::SnapshotData;
use crate::types::{LogId, NodeId, NodeInfo, StoredMembership};
use ledger::merkle::Hash;
use ledger::query::{self as q, IndexRead};
use ledger::{
    AccountRecord, BalanceEntry, Batch, Changes, ConsistencyProof, Filter, InclusionProof,
    LedgerMeta, Order, Outcome, ProofError, StateRead, Target, TransferRecord,
};
use serde::{Deserialize, Serialize};

/// openraft's snapshot metadata for our types.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeInfo>;

/// Meta keys of the log backend.
pub mod meta_key {
    /// The vote (saved synced).
    pub const VOTE: &str = "vote";
    /// The last purged log id.
    pub const PURGED: &str = "purged";
    /// The last committed log id (a hint; not synced).
    pub const COMMITTED: &str = "committed";
}

/// The Raft log and its metadata. Every call blocks until its effect is durable as documented.
pub trait LogBackend: Send + Sync + 'static {
    /// Whether calls block on I/O (and should run on a blocking thread).
    fn is_blocking(&self) -> bool;
    /// Append sealed entries `(index, bytes)`; durable (synced) when this returns.
    fn append(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError>;
    /// Entries with `start <= index < end`, in index order.
    fn read(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// The last entry, if any.
    fn last(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError>;
    /// Delete every entry with `index >= from`; durable when this returns.
    fn truncate(&self, from: u64) -> Result<(), StoreError>;
    /// Delete every entry with `index <= upto` and record `purged` under [`meta_key::PURGED`],
    /// atomically. A backend whose state can be behind its log after a crash makes the state
    /// durable first (the entries purged are the ones a crash would apply again).
    fn purge(&self, upto: u64, purged: Vec<u8>) -> Result<(), StoreError>;
    /// Read a metadata record.
    fn meta_get(&self, key: &'static str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Write a metadata record, synced if `sync`.
    fn meta_put(&self, key: &'static str, value: Vec<u8>, sync: bool) -> Result<(), StoreError>;
    /// The engine's disk figures, for `/metrics` (`None`: the engine keeps nothing on disk).
    fn disk_stats(&self) -> Option<DiskStats> {
        None
    }
}

/// What a storage engine has on disk, read when `/metrics` is scraped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Syncs of the write-ahead log since the store was opened.
    pub wal_syncs: u64,
    /// Bytes in write-ahead log files.
    pub wal_bytes: u64,
    /// Bytes in table (SST) files, every column family.
    pub table_bytes: u64,
    /// Bytes held in memtables (not yet flushed to tables: the log's are in the WAL too, the
    /// state's are not).
    pub memtable_bytes: u64,
}

/// What a backup stream covers, read from the same instant as the stream itself, and the
/// stream's size and checksum.
#[derive(Clone, Debug)]
pub struct BackupSummary {
    /// The applied state at the view.
    pub applied: AppliedState,
    /// The ledger metadata at the view.
    pub ledger: LedgerMeta,
    /// The state digest at the view.
    pub digest: Hash,
    /// Bytes in the stream.
    pub stream_bytes: u64,
    /// BLAKE3 of the stream.
    pub stream_blake3: Hash,
    /// The cluster's effective version at the view (it picks the stream's format).
    pub cluster_version: u32,
}

/// What the state machine has applied: stored in the same atomic write as the entry's changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedState {
    /// Last applied log id.
    pub last_applied: Option<LogId>,
    /// Membership as of the last applied membership entry.
    pub membership: StoredMembership,
}

/// The ledger state machine's storage.
pub trait StateBackend: Send + Sync + 'static {
    /// Whether calls block on I/O (and should run on a blocking thread).
    fn is_blocking(&self) -> bool;
    /// What has been applied.
    fn applied(&self) -> Result<AppliedState, StoreError>;
    /// The ledger metadata (timestamp, tree, root) as of the last applied entry.
    fn ledger_meta(&self) -> Result<LedgerMeta, StoreError>;
    /// What has been applied and the ledger metadata it produced, read at one instant (never the
    /// applied index of one entry with the tree of a later one).
    fn applied_with_meta(&self) -> Result<(AppliedState, LedgerMeta), StoreError>;
    /// Run `ledger::apply` for one batch against the current state (nothing is written).
    fn apply(&self, batch: &Batch) -> Result<(Outcome, Changes), StoreError>;
    /// Atomically write `changes` (if any) together with `applied`; durable before this returns
    /// if `sync` (otherwise when the backend next makes its state durable).
    fn commit(
        &self,
        changes: Option<Changes>,
        applied: &AppliedState,
        sync: bool,
    ) -> Result<(), StoreError>;
    /// Decide what an admin command does against the current deny-list and cluster version, at
    /// `log_index` (nothing is written): the outcome and what to write. An invalid command is
    /// [`AdminOutcome::Invalid`] and writes nothing.
    fn apply_admin(
        &self,
        cmd: &AdminCommand,
        log_index: u64,
    ) -> Result<(AdminOutcome, AdminWrite), StoreError> {
        crate::revocation::plan(cmd, log_index, self.cluster_version()?, |id| {
            self.revocation(id)
        })
    }
    /// Atomically write `write` (new deny-list entries, or a new cluster version) together with
    /// `applied`; durable before this returns if `sync`. The admin counterpart of
    /// [`StateBackend::commit`].
    fn commit_admin(
        &self,
        write: &AdminWrite,
        applied: &AppliedState,
        sync: bool,
    ) -> Result<(), StoreError>;
    /// The cluster's effective version as of the last applied entry
    /// ([`crate::cluster_version::BASE`] until one is recorded).
    fn cluster_version(&self) -> Result<u32, StoreError>;
    /// The deny-list record of `token_id`, if it was revoked (a point lookup: called on every
    /// write request).
    fn revocation(&self, token_id: &TokenId) -> Result<Option<RevocationRecord>, StoreError>;
    /// Up to `limit` deny-list records with token ids after `after` (from the start if `None`),
    /// in token id order.
    fn revocations(
        &self,
        after: Option<TokenId>,
        limit: usize,
    ) -> Result<Vec<RevocationRecord>, StoreError>;
    /// Write a snapshot of a consistent view of the state, keep it as the current snapshot, and
    /// return its metadata and data (positioned at the start).
    fn build_snapshot(&self) -> Result<(SnapshotMeta, SnapshotData), StoreError>;
    /// An empty buffer to receive a snapshot into.
    fn receive_buffer(&self) -> Result<SnapshotData, StoreError>;
    /// Replace the whole state with the snapshot read from `data`, atomically, and keep it as
    /// the current snapshot.
    fn install_snapshot(&self, meta: &SnapshotMeta, data: SnapshotSource)
        -> Result<(), StoreError>;
    /// A backup stream: the snapshot stream of one consistent view, written to an unlinked
    /// temporary file (positioned at the start; it disappears when closed), with what the view
    /// covers and the state digest read from the same view (see the `backup` module). Apply carries
    /// on meanwhile. Backends that keep nothing on disk refuse. Once `cancel` is set (the caller
    /// went away) the export stops early with an error.
    fn export_backup(
        &self,
        _cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<(BackupSummary, std::fs::File), StoreError> {
        Err(StoreError::DataDir(
            "this node keeps its state in memory (amnesia): there is no data directory to back up"
                .into(),
        ))
    }
    /// Make every committed write durable now (a clean stop: the next start then has nothing to
    /// apply again). Backends whose state is never behind what they report do nothing.
    fn make_durable(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The current snapshot, if any, positioned at the start.
    fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, SnapshotData)>, StoreError>;
    /// Digest of the entire replicated state: `ledger::digest` combined with the deny-list (see
    /// [`crate::revocation::combine_digest`]).
    fn digest(&self) -> Result<Hash, StoreError>;
    /// Look up an account (for queries; apply reads through `ledger::StateRead`).
    fn lookup_account(&self, id: u128) -> Result<Option<AccountRecord>, StoreError>;
    /// Look up a transfer.
    fn lookup_transfer(&self, id: u128) -> Result<Option<TransferRecord>, StoreError>;
    /// A transfer with where it stands (pending, posted, voided, expired, reversed), both from
    /// one read.
    fn lookup_transfer_read(&self, id: u128) -> Result<Option<ledger::TransferRead>, StoreError>;
    /// Ids of transfers that touched `account_id` with timestamps in `[from, to]`, oldest
    /// first, at most `limit`.
    fn account_history(
        &self,
        account_id: u128,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<u128>, StoreError>;
    /// Accounts matching `filter` (`ledger::query`), from one consistent view.
    fn query_accounts(&self, filter: &Filter) -> Result<Vec<AccountRecord>, StoreError>;
    /// Transfers matching `filter` (all, or one account's), with where each stands.
    fn query_transfers(
        &self,
        target: Target,
        filter: &Filter,
    ) -> Result<Vec<ledger::TransferRead>, StoreError>;
    /// Balance-history entries of `account_id` in `range`, as `(timestamp, entry)`.
    fn balances(
        &self,
        account_id: u128,
        range: BalanceRange,
    ) -> Result<Vec<(u64, BalanceEntry)>, StoreError>;
    /// The preimage of leaf `index` (see `ledger::canonical::decode_leaf`), if applied.
    fn leaf_data(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Inclusion proof of leaf `index` in the tree of the first `size` leaves. A `size` beyond
    /// the applied tree is [`StoreError::Proof`].
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError>;
    /// Consistency proof from the first `old` leaves to the first `new`. A `new` beyond the
    /// applied tree is [`StoreError::Proof`].
    fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof, StoreError>;
    /// The root of the first `size` leaves, from the stored nodes. A `size` beyond the applied
    /// tree is [`StoreError::Proof`].
    fn root_at(&self, size: u64) -> Result<Hash, StoreError>;
    /// The frontier of the first `size` leaves (`ledger::proof::frontier_at`). A `size` beyond
    /// the applied tree is [`StoreError::Proof`].
    fn frontier_at(&self, size: u64) -> Result<ledger::Frontier, StoreError>;
}

/// Which balance-history entries to read: timestamps in `[lo, hi]`, in `order`, at most `limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceRange {
    pub lo: u64,
    pub hi: u64,
    pub order: Order,
    pub limit: usize,
}

impl BalanceRange {
    /// The one entry in force at `timestamp`.
    pub fn as_of(timestamp: u64) -> Self {
        Self {
            lo: 0,
            hi: timestamp,
            order: Order::Desc,
            limit: 1,
        }
    }
}

/// An index entry that does not lead to a record agreeing with it: the index is damaged.
fn index_mismatch(what: &str, id: u128, ts: u64) -> StoreError {
    StoreError::Corruption {
        cf: "index",
        key: format!("{what} {id} at {ts}"),
        reason: "index entry does not match the record".into(),
    }
}

/// Run an accounts query on `s` and read each account; every result is checked against the
/// filter, so a damaged index answers an error, never a wrong account.
pub(crate) fn query_accounts<S: IndexRead + StateRead>(
    s: &S,
    filter: &Filter,
) -> Result<Vec<AccountRecord>, StoreError> {
    q::query(s, Target::Accounts, filter)?
        .into_iter()
        .map(|(ts, id)| match s.account(id)? {
            Some(r) if r.account.timestamp == ts && filter.matches_account(&r.account) => Ok(r),
            _ => Err(index_mismatch("account", id, ts)),
        })
        .collect()
}

/// Run a transfers query on `s` and read each transfer and its status, checked like
/// [`query_accounts`].
pub(crate) fn query_transfers<S: IndexRead + StateRead>(
    s: &S,
    target: Target,
    filter: &Filter,
) -> Result<Vec<ledger::TransferRead>, StoreError> {
    q::query(s, target, filter)?
        .into_iter()
        .map(|(ts, id)| match s.transfer(id)? {
            Some(r)
                if r.transfer.timestamp == ts && filter.matches_transfer(target, &r.transfer) =>
            {
                let status = s.status(id)?;
                Ok(ledger::TransferRead {
                    state: ledger::TransferState::of(&r.transfer, status),
                    transfer: r.transfer,
                })
            }
            _ => Err(index_mismatch("transfer", id, ts)),
        })
        .collect()
}

/// Balance-history entries of `account_id` in `range` on `s`.
pub(crate) fn balances<S: IndexRead>(
    s: &S,
    account_id: u128,
    range: BalanceRange,
) -> Result<Vec<(u64, BalanceEntry)>, StoreError> {
    Ok(q::balance_history(
        s,
        account_id,
        range.lo,
        range.hi,
        range.order,
        range.limit,
    )?)
}

/// Refuse a tree size beyond the applied tree (proofs must never read past it).
pub(crate) fn check_tree_size(size: u64, applied: u64) -> Result<(), StoreError> {
    if size > applied {
        return Err(ProofError::SizeBeyondTree {
            size,
            available: applied,
        }
        .into());
    }
    Ok(())
}

/// A received snapshot, ready to be read synchronously.
pub enum SnapshotSource {
    /// In memory.
    Memory(Vec<u8>),
    /// A file, positioned at the start.
    File(std::fs::File),
}

impl SnapshotSource {
    /// Convert openraft's snapshot buffer.
    pub async fn from_data(data: SnapshotData) -> Result<Self, StoreError> {
        Ok(match data {
            SnapshotData::Memory(c) => SnapshotSource::Memory(c.into_inner()),
            SnapshotData::File(f) => {
                use std::io::Seek;
                let mut f = f.into_std().await;
                f.rewind()?;
                SnapshotSource::File(f)
            }
        })
    }
}

/// Run `f` on a blocking thread when `blocking`, else inline (memory backends must stay on the
/// caller's task so that a simulation stays deterministic).
pub(crate) async fn run<T, F>(blocking: bool, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    if blocking {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    } else {
        f()
    }
}

/// Snapshot header for the given applied state and ledger meta.
pub(crate) fn header(applied: &AppliedState, ledger: LedgerMeta) -> crate::snapshot::SnapshotItem {
    crate::snapshot::SnapshotItem::Header {
        last_log_id: applied.last_applied,
        membership: applied.membership.clone(),
        ledger,
    }
}

/// Snapshot metadata for an applied state, with a unique id.
pub(crate) fn snapshot_meta(applied: &AppliedState, id_suffix: u64) -> SnapshotMeta {
    let id = match applied.last_applied {
        Some(l) => format!(
            "{}-{}-{}-{id_suffix}",
            l.leader_id.term, l.leader_id.node_id, l.index
        ),
        None => format!("0-0-0-{id_suffix}"),
    };
    SnapshotMeta {
        last_log_id: applied.last_applied,
        last_membership: applied.membership.clone(),
        snapshot_id: id,
    }
}
