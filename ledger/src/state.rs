//! The ledger state behind a small interface, so that apply runs unchanged on an in-memory map or
//! on RocksDB: [`StateRead`] is what apply reads, [`Changes`] is what it produces, and the caller
//! commits a `Changes` atomically. [`MemoryState`] is the in-memory implementation.

use crate::canonical::LeafData;
use crate::merkle::Hash;
use crate::proof::{ProofError, TreeSource};
use crate::types::{AccountRecord, BalanceEntry, IndexKey, TransferRecord, TransferStatus};
use std::collections::{BTreeMap, BTreeSet, HashMap};

// Stored records, owned by `types`; re-exported here, where they have always been named.
pub use crate::types::{ExpiryKey, HistoryKey, LedgerMeta};

/// A storage read failed. Apply stops and the caller must not commit anything (safe mode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A stored record failed its checksum or did not decode.
    #[error("corrupt record in {what}")]
    Corruption {
        /// Which record (column family and key), never its contents.
        what: String,
    },
    /// The storage engine reported an error.
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// What apply reads. Implementations must return exactly what was last committed.
pub trait StateRead {
    /// Current ledger metadata.
    fn meta(&self) -> Result<LedgerMeta, ReadError>;
    /// An account by id.
    fn account(&self, id: u128) -> Result<Option<AccountRecord>, ReadError>;
    /// A transfer by id.
    fn transfer(&self, id: u128) -> Result<Option<TransferRecord>, ReadError>;
    /// The lifecycle status of a pending or reversed transfer.
    fn status(&self, id: u128) -> Result<Option<TransferStatus>, ReadError>;
    /// Up to `limit` entries of the expiry index with `expires_at <= now`, in key order.
    fn expiring(&self, now: u64, limit: usize) -> Result<Vec<ExpiryKey>, ReadError>;
}

/// Every effect of applying one log entry. Committing it must be atomic (all or nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Accounts created or updated (final value), sorted by id.
    pub accounts: Vec<AccountRecord>,
    /// Transfers created, sorted by id.
    pub transfers: Vec<TransferRecord>,
    /// Status changes, sorted by id.
    pub statuses: Vec<(u128, TransferStatus)>,
    /// Expiry index entries to add.
    pub expiry_put: Vec<ExpiryKey>,
    /// Expiry index entries to remove.
    pub expiry_delete: Vec<ExpiryKey>,
    /// History index entries: (account, timestamp) → transfer id.
    pub history: Vec<(HistoryKey, u128)>,
    /// Secondary index entries (see the `query` module), sorted.
    pub index: Vec<(IndexKey, u128)>,
    /// Balance-history entries of accounts with the `history` flag, sorted.
    pub balances: Vec<(HistoryKey, BalanceEntry)>,
    /// Leaf hashes appended to the tree, starting at leaf index `first_leaf`.
    pub leaves: Vec<Hash>,
    /// The preimage of each of `leaves` (`leaf_data[i].hash() == leaves[i]`).
    pub leaf_data: Vec<LeafData>,
    /// Index of the first leaf in `leaves`.
    pub first_leaf: u64,
    /// Perfect-subtree roots the new leaves complete, as `(level, index, hash)` (see
    /// [`crate::Frontier::push_recording`]), in the order they were completed.
    pub nodes: Vec<(u8, u64, Hash)>,
    /// The new metadata.
    pub meta: LedgerMeta,
}

/// The in-memory state: amnesia mode, simulations, tests and benchmarks.
#[derive(Clone, Debug, Default)]
pub struct MemoryState {
    meta: Option<LedgerMeta>,
    accounts: HashMap<u128, AccountRecord>,
    transfers: HashMap<u128, TransferRecord>,
    statuses: HashMap<u128, TransferStatus>,
    expiry: BTreeSet<ExpiryKey>,
    /// Per account, (timestamp, transfer id) in timestamp order: timestamps only grow, so
    /// commits append.
    history: BTreeMap<u128, Vec<(u64, u128)>>,
    /// The secondary indexes (see the `query` module).
    index: BTreeMap<IndexKey, u128>,
    /// Balance history of accounts with the `history` flag.
    balances: BTreeMap<HistoryKey, BalanceEntry>,
    leaves: Vec<Hash>,
    leaf_data: Vec<LeafData>,
    /// `nodes[level - 1][index]`: the perfect-subtree roots; appended in index order.
    nodes: Vec<Vec<Hash>>,
}

impl MemoryState {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make `changes` the current state.
    pub fn commit(&mut self, changes: Changes) {
        for record in changes.accounts {
            self.accounts.insert(record.account.id, record);
        }
        for record in changes.transfers {
            self.transfers.insert(record.transfer.id, record);
        }
        for (id, status) in changes.statuses {
            self.statuses.insert(id, status);
        }
        for key in changes.expiry_delete {
            self.expiry.remove(&key);
        }
        self.expiry.extend(changes.expiry_put);
        for (k, id) in changes.history {
            let entries = self.history.entry(k.account_id).or_default();
            match entries.last() {
                Some((ts, _)) if *ts >= k.timestamp => {
                    // Not newer than the last entry (never from apply; kept correct anyway).
                    let at = entries.partition_point(|(t, _)| *t < k.timestamp);
                    if entries.get(at).is_some_and(|(t, _)| *t == k.timestamp) {
                        entries[at].1 = id;
                    } else {
                        entries.insert(at, (k.timestamp, id));
                    }
                }
                _ => entries.push((k.timestamp, id)),
            }
        }
        self.index.extend(changes.index);
        self.balances.extend(changes.balances);
        debug_assert_eq!(self.leaves.len() as u64, changes.first_leaf);
        debug_assert_eq!(changes.leaves.len(), changes.leaf_data.len());
        self.leaves.extend(changes.leaves);
        self.leaf_data.extend(changes.leaf_data);
        for (level, index, hash) in changes.nodes {
            let level = usize::from(level.max(1));
            if self.nodes.len() < level {
                self.nodes.resize_with(level, Vec::new);
            }
            let row = &mut self.nodes[level - 1];
            // Apply completes each node once, in index order; a gap would be a bug upstream.
            debug_assert_eq!(row.len() as u64, index);
            if row.len() as u64 == index {
                row.push(hash);
            }
        }
        self.meta = Some(changes.meta);
    }

    /// Every account, in id order.
    pub fn accounts(&self) -> Vec<AccountRecord> {
        let mut all: Vec<AccountRecord> = self.accounts.values().copied().collect();
        all.sort_by_key(|r| r.account.id);
        all
    }

    /// Every transfer, in id order.
    pub fn transfers(&self) -> Vec<TransferRecord> {
        let mut all: Vec<TransferRecord> = self.transfers.values().cloned().collect();
        all.sort_by_key(|r| r.transfer.id);
        all
    }

    /// Every status, in id order.
    pub fn statuses(&self) -> Vec<(u128, TransferStatus)> {
        let mut all: Vec<(u128, TransferStatus)> =
            self.statuses.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// The expiry index in key order.
    pub fn expiry_index(&self) -> impl Iterator<Item = &ExpiryKey> {
        self.expiry.iter()
    }

    /// The history index in key order.
    pub fn history_index(&self) -> impl Iterator<Item = (HistoryKey, u128)> + '_ {
        self.history.iter().flat_map(|(account_id, entries)| {
            entries.iter().map(move |(timestamp, id)| {
                (
                    HistoryKey {
                        account_id: *account_id,
                        timestamp: *timestamp,
                    },
                    *id,
                )
            })
        })
    }

    /// One account's history index: (timestamp, transfer id) in timestamp order.
    pub(crate) fn history_of(&self, account_id: u128) -> Option<&[(u64, u128)]> {
        self.history.get(&account_id).map(Vec::as_slice)
    }

    /// The secondary indexes, for seeks.
    pub(crate) fn index_map(&self) -> &BTreeMap<IndexKey, u128> {
        &self.index
    }

    /// The balance history, for seeks.
    pub(crate) fn balance_map(&self) -> &BTreeMap<HistoryKey, BalanceEntry> {
        &self.balances
    }

    /// The secondary indexes in key order.
    pub fn index_entries(&self) -> impl Iterator<Item = (&IndexKey, &u128)> {
        self.index.iter()
    }

    /// The balance history in key order.
    pub fn balance_entries(&self) -> impl Iterator<Item = (&HistoryKey, &BalanceEntry)> {
        self.balances.iter()
    }

    /// Every leaf hash, in order.
    pub fn leaves(&self) -> &[Hash] {
        &self.leaves
    }

    /// The preimage of leaf `index`, if the tree has that many leaves.
    pub fn leaf_data(&self, index: u64) -> Option<&LeafData> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.leaf_data.get(i))
    }

    /// Transfers that touched `account_id` with timestamps in `[from, to]`, oldest first.
    pub fn account_history(&self, account_id: u128, from: u64, to: u64, limit: usize) -> Vec<u128> {
        let Some(entries) = self.history.get(&account_id) else {
            return Vec::new();
        };
        let start = entries.partition_point(|(t, _)| *t < from);
        entries[start..]
            .iter()
            .take_while(|(t, _)| *t <= to)
            .take(limit)
            .map(|(_, id)| *id)
            .collect()
    }

    /// A digest over the whole state, equal on every node that applied the same entries.
    pub fn digest(&self) -> Result<Hash, ReadError> {
        let mut digest = crate::digest::StateDigest::new(&self.meta()?);
        for r in self.accounts() {
            digest.account(&r);
        }
        for r in self.transfers() {
            digest.transfer(&r);
        }
        for (id, s) in self.statuses() {
            digest.status(id, s);
        }
        for k in &self.expiry {
            digest.expiry(k);
        }
        for (k, id) in self.history_index() {
            digest.history(&k, id);
        }
        for (k, id) in &self.index {
            digest.index(k, *id);
        }
        for (k, e) in &self.balances {
            digest.balance(k, e);
        }
        Ok(digest.finish())
    }
}

impl StateRead for MemoryState {
    fn meta(&self) -> Result<LedgerMeta, ReadError> {
        Ok(self.meta.clone().unwrap_or_else(LedgerMeta::empty))
    }

    fn account(&self, id: u128) -> Result<Option<AccountRecord>, ReadError> {
        Ok(self.accounts.get(&id).copied())
    }

    fn transfer(&self, id: u128) -> Result<Option<TransferRecord>, ReadError> {
        Ok(self.transfers.get(&id).cloned())
    }

    fn status(&self, id: u128) -> Result<Option<TransferStatus>, ReadError> {
        Ok(self.statuses.get(&id).copied())
    }

    fn expiring(&self, now: u64, limit: usize) -> Result<Vec<ExpiryKey>, ReadError> {
        Ok(self
            .expiry
            .iter()
            .take_while(|k| k.expires_at <= now)
            .take(limit)
            .copied()
            .collect())
    }
}

/// Proofs straight from memory: every perfect-subtree root is kept, so a proof costs O(log n)
/// lookups.
impl TreeSource for MemoryState {
    type Error = ProofError;

    fn leaf_hash(&self, index: u64) -> Result<Hash, ProofError> {
        self.leaves.leaf_hash(index)
    }

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, ProofError> {
        let row = usize::from(level)
            .checked_sub(1)
            .and_then(|l| self.nodes.get(l));
        Ok(row
            .and_then(|r| usize::try_from(index).ok().and_then(|i| r.get(i)))
            .copied())
    }
}
