//! The ledger state behind a small interface, so that apply runs unchanged on an in-memory map or
//! on RocksDB: [`StateRead`] is what apply reads, [`Changes`] is what it produces, and the caller
//! commits a `Changes` atomically. [`MemoryState`] is the in-memory implementation.

use crate::canonical::LeafData;
use crate::merkle::Hash;
use crate::proof::{ProofError, TreeSource};
use crate::timelines::Timelines;
use crate::types::Order;
use crate::types::{
    AccountRecord, BalanceEntry, IndexField, IndexKey, TransferRecord, TransferStatus,
};
use std::collections::{BTreeSet, HashMap};

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
    /// Accounts created or updated (final value), in the order apply first wrote each (the same
    /// on every node; not sorted).
    pub accounts: Vec<AccountRecord>,
    /// Transfers created, in apply order.
    pub transfers: Vec<TransferRecord>,
    /// Status changes, in the order apply first wrote each.
    pub statuses: Vec<(u128, TransferStatus)>,
    /// Expiry index entries to add.
    pub expiry_put: Vec<ExpiryKey>,
    /// Expiry index entries to remove.
    pub expiry_delete: Vec<ExpiryKey>,
    /// History index entries: (account, timestamp) → transfer id, in apply order.
    pub history: Vec<(HistoryKey, u128)>,
    /// Secondary index entries (see the `query` module), in apply order.
    pub index: Vec<(IndexKey, u128)>,
    /// Balance-history entries of accounts with the `history` flag, in apply order.
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

/// The two secondary indexes whose entries, merged, are an account's history.
const ACCOUNT_SIDES: [IndexField; 2] = [
    IndexField::TransferDebitAccount,
    IndexField::TransferCreditAccount,
];

/// Two timelines merged in timestamp order.
struct Merged<'a> {
    a: &'a [(u64, u128)],
    b: &'a [(u64, u128)],
}

impl Merged<'_> {
    /// Drop the entries older than `timestamp`.
    fn skip_before(&mut self, timestamp: u64) {
        for side in [&mut self.a, &mut self.b] {
            *side = &side[side.partition_point(|(t, _)| *t < timestamp)..];
        }
    }
}

impl Iterator for Merged<'_> {
    type Item = (u64, u128);

    fn next(&mut self) -> Option<(u64, u128)> {
        let take_a = match (self.a.first(), self.b.first()) {
            (Some(a), Some(b)) => a.0 <= b.0,
            (a, _) => a.is_some(),
        };
        let side = if take_a { &mut self.a } else { &mut self.b };
        let (first, rest) = side.split_first()?;
        *side = rest;
        Some(*first)
    }
}

/// A map keyed by account or transfer id. Ids are chosen by clients, so the hash is seeded at
/// random per map (never iterated where order could matter: every listing sorts).
pub(crate) type IdMap<V> = HashMap<u128, V, foldhash::fast::RandomState>;

/// The in-memory state: amnesia mode, simulations, tests and benchmarks.
#[derive(Clone, Debug, Default)]
pub struct MemoryState {
    meta: Option<LedgerMeta>,
    accounts: IdMap<AccountRecord>,
    transfers: IdMap<TransferRecord>,
    statuses: IdMap<TransferStatus>,
    expiry: BTreeSet<ExpiryKey>,
    /// The secondary indexes (see the `query` module): per (field, value), ids by timestamp.
    /// An account's history (the transfers that touched it) is not kept apart: it is its
    /// debit- and credit-account timelines merged, as a RocksDB store of format 2 reads it.
    index: Timelines<(IndexField, u128), u128>,
    /// Balance history of accounts with the `history` flag, per account.
    balances: Timelines<u128, BalanceEntry>,
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
        // `changes.history` repeats the debit- and credit-account entries of `changes.index`
        // (the history is read from those: see `history_of`); only a format-1 store keeps it.
        for (k, id) in changes.index {
            self.index.insert((k.field, k.value), k.timestamp, id);
        }
        for (k, e) in changes.balances {
            self.balances.insert(k.account_id, k.timestamp, e);
        }
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

    /// The history index in key order: each account's debit- and credit-account entries, merged.
    pub fn history_index(&self) -> impl Iterator<Item = (HistoryKey, u128)> + '_ {
        let mut accounts: Vec<u128> = self
            .index
            .keys()
            .filter(|(field, _)| ACCOUNT_SIDES.contains(field))
            .map(|(_, account)| *account)
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        accounts.into_iter().flat_map(move |account_id| {
            self.history_of(account_id).map(move |(timestamp, id)| {
                (
                    HistoryKey {
                        account_id,
                        timestamp,
                    },
                    id,
                )
            })
        })
    }

    /// The transfers that touched `account_id`, oldest first: its debit- and credit-account
    /// timelines merged (a transfer debits and credits two different accounts, and no two
    /// transfers share a timestamp).
    fn history_of(&self, account_id: u128) -> Merged<'_> {
        Merged {
            a: self
                .index
                .of(&(IndexField::TransferDebitAccount, account_id)),
            b: self
                .index
                .of(&(IndexField::TransferCreditAccount, account_id)),
        }
    }

    /// The first (`Asc`) or last (`Desc`) history entry of `account_id` from `timestamp` on.
    pub(crate) fn history_seek(
        &self,
        account_id: u128,
        timestamp: u64,
        order: Order,
    ) -> Option<(u64, u128)> {
        let [debit, credit] =
            ACCOUNT_SIDES.map(|field| self.index.seek(&(field, account_id), timestamp, order));
        match (debit, credit, order) {
            (Some(d), Some(c), Order::Asc) => Some(if d.0 <= c.0 { d } else { c }),
            (Some(d), Some(c), Order::Desc) => Some(if d.0 >= c.0 { d } else { c }),
            (one, other, _) => one.or(other),
        }
    }

    /// The first (`Asc`) or last (`Desc`) entry of one secondary index from `timestamp` on.
    pub(crate) fn index_seek_in_memory(
        &self,
        field: IndexField,
        value: u128,
        timestamp: u64,
        order: Order,
    ) -> Option<(u64, u128)> {
        self.index.seek(&(field, value), timestamp, order)
    }

    /// The first (`Asc`) or last (`Desc`) balance-history entry of `account_id` from `timestamp`
    /// on.
    pub(crate) fn balance_seek_in_memory(
        &self,
        account_id: u128,
        timestamp: u64,
        order: Order,
    ) -> Option<(u64, BalanceEntry)> {
        self.balances.seek(&account_id, timestamp, order)
    }

    /// The secondary indexes in key order.
    pub fn index_entries(&self) -> impl Iterator<Item = (IndexKey, u128)> + '_ {
        self.index.iter().map(|((field, value), timestamp, id)| {
            (
                IndexKey {
                    field,
                    value,
                    timestamp,
                },
                id,
            )
        })
    }

    /// The balance history in key order.
    pub fn balance_entries(&self) -> impl Iterator<Item = (HistoryKey, BalanceEntry)> + '_ {
        self.balances.iter().map(|(account_id, timestamp, e)| {
            (
                HistoryKey {
                    account_id,
                    timestamp,
                },
                e,
            )
        })
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
        let mut entries = self.history_of(account_id);
        entries.skip_before(from);
        entries
            .take_while(|(t, _)| *t <= to)
            .take(limit)
            .map(|(_, id)| id)
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
        for (k, id) in self.index_entries() {
            digest.index(&k, id);
        }
        for (k, e) in self.balance_entries() {
            digest.balance(&k, &e);
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
