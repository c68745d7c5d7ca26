//! Uncommitted writes of one entry over a [`StateRead`], with savepoints so that a failed
//! `linked` chain can be undone. Turned into a [`Changes`] at the end of the entry.

use crate::query::{account_entries, transfer_entries, BalanceEntry};
use crate::state::{Changes, IdMap, ReadError, StateRead};
use crate::types::{
    AccountRecord, ExpiryKey, HistoryKey, LedgerMeta, TransferRecord, TransferStatus,
};
use std::collections::HashMap;

enum Undo {
    /// An account write; the value it replaced (`None`: the write added the account).
    Account(Option<AccountRecord>),
    /// A transfer was added.
    Transfer,
    /// A status write; the value it replaced (`None`: the write added it).
    Status(Option<TransferStatus>),
}

/// A position to roll back to.
#[derive(Clone, Copy)]
pub(crate) struct Savepoint {
    undo: usize,
    expiry: usize,
    history: usize,
    balances: usize,
}

/// Records written by this entry, by id, in the order each id was first written: that order is
/// the entry's apply order, the same on every node, so `Changes` needs no sorting.
struct Written<V> {
    records: Vec<(u128, V)>,
    at: IdMap<usize>,
}

impl<V> Written<V> {
    fn with_capacity(n: usize) -> Self {
        let mut at = IdMap::default();
        at.reserve(n);
        Self {
            records: Vec::with_capacity(n),
            at,
        }
    }

    fn get(&self, id: u128) -> Option<&V> {
        self.at.get(&id).map(|&i| &self.records[i].1)
    }

    /// Write `value` under `id`; the value it replaced, if `id` was written before.
    fn put(&mut self, id: u128, value: V) -> Option<V> {
        match self.at.get(&id) {
            Some(&i) => Some(std::mem::replace(&mut self.records[i].1, value)),
            None => {
                self.at.insert(id, self.records.len());
                self.records.push((id, value));
                None
            }
        }
    }

    /// Undo the last write to `id`: restore `prev`, or drop `id` if that write added it (which
    /// is then the last record, since writes are undone newest first).
    fn undo(&mut self, id: u128, prev: Option<V>) {
        match prev {
            Some(v) => {
                if let Some(&i) = self.at.get(&id) {
                    self.records[i].1 = v;
                }
            }
            None => {
                debug_assert_eq!(self.records.last().map(|(last, _)| *last), Some(id));
                self.records.pop();
                self.at.remove(&id);
            }
        }
    }

    fn into_records(self) -> Vec<(u128, V)> {
        self.records
    }
}

pub(crate) struct Overlay<'a, S: StateRead> {
    base: &'a S,
    accounts: Written<AccountRecord>,
    transfers: Written<TransferRecord>,
    statuses: Written<TransferStatus>,
    /// (key, true = put / false = delete), in order; the last operation on a key wins.
    expiry: Vec<(ExpiryKey, bool)>,
    history: Vec<(HistoryKey, u128)>,
    /// Balance-history entries of `history`-flagged accounts, in the order they happened.
    balances: Vec<(HistoryKey, BalanceEntry)>,
    /// Undo records with the id they concern, newest last.
    undo: Vec<(u128, Undo)>,
}

impl<'a, S: StateRead> Overlay<'a, S> {
    /// An empty overlay sized for an entry of `events` events (each writes at most two
    /// accounts, one transfer or account record, and two history entries).
    pub(crate) fn new(base: &'a S, events: usize) -> Self {
        Self {
            base,
            accounts: Written::with_capacity(2 * events),
            transfers: Written::with_capacity(events),
            statuses: Written::with_capacity(0),
            expiry: Vec::new(),
            history: Vec::with_capacity(2 * events),
            balances: Vec::new(),
            undo: Vec::with_capacity(3 * events),
        }
    }

    pub(crate) fn base(&self) -> &S {
        self.base
    }

    pub(crate) fn account(&self, id: u128) -> Result<Option<AccountRecord>, ReadError> {
        match self.accounts.get(id) {
            Some(r) => Ok(Some(*r)),
            None => self.base.account(id),
        }
    }

    pub(crate) fn transfer(&self, id: u128) -> Result<Option<TransferRecord>, ReadError> {
        match self.transfers.get(id) {
            Some(r) => Ok(Some(r.clone())),
            None => self.base.transfer(id),
        }
    }

    pub(crate) fn status(&self, id: u128) -> Result<Option<TransferStatus>, ReadError> {
        match self.statuses.get(id) {
            Some(s) => Ok(Some(*s)),
            None => self.base.status(id),
        }
    }

    pub(crate) fn put_account(&mut self, record: AccountRecord) {
        let prev = self.accounts.put(record.account.id, record);
        self.undo.push((record.account.id, Undo::Account(prev)));
    }

    pub(crate) fn put_transfer(&mut self, record: TransferRecord) {
        let id = record.transfer.id;
        let prev = self.transfers.put(id, record);
        debug_assert!(prev.is_none(), "transfer ids are unique");
        self.undo.push((id, Undo::Transfer));
    }

    pub(crate) fn put_status(&mut self, id: u128, status: TransferStatus) {
        let prev = self.statuses.put(id, status);
        self.undo.push((id, Undo::Status(prev)));
    }

    pub(crate) fn expiry_put(&mut self, key: ExpiryKey) {
        self.expiry.push((key, true));
    }

    pub(crate) fn expiry_delete(&mut self, key: ExpiryKey) {
        self.expiry.push((key, false));
    }

    pub(crate) fn history(&mut self, key: HistoryKey, transfer_id: u128) {
        self.history.push((key, transfer_id));
    }

    pub(crate) fn balance(&mut self, key: HistoryKey, entry: BalanceEntry) {
        self.balances.push((key, entry));
    }

    pub(crate) fn savepoint(&self) -> Savepoint {
        Savepoint {
            undo: self.undo.len(),
            expiry: self.expiry.len(),
            history: self.history.len(),
            balances: self.balances.len(),
        }
    }

    pub(crate) fn rollback(&mut self, sp: Savepoint) {
        while self.undo.len() > sp.undo {
            match self.undo.pop() {
                Some((id, Undo::Account(prev))) => self.accounts.undo(id, prev),
                Some((id, Undo::Transfer)) => self.transfers.undo(id, None),
                Some((id, Undo::Status(prev))) => self.statuses.undo(id, prev),
                None => break,
            }
        }
        self.expiry.truncate(sp.expiry);
        self.history.truncate(sp.history);
        self.balances.truncate(sp.balances);
    }

    /// The entry's net effect. Records, history and balance entries come in apply order (the
    /// order each was first written), which is the same on every node; the expiry lists are
    /// sorted. Accounts stamped at or after `first_timestamp` (the entry's first) were created by
    /// it and are indexed; every transfer in the overlay is new and is indexed.
    pub(crate) fn into_changes(
        self,
        first_timestamp: u64,
        leaves: Vec<crate::merkle::Hash>,
        leaf_data: Vec<crate::canonical::LeafData>,
        first_leaf: u64,
        nodes: Vec<(u8, u64, crate::merkle::Hash)>,
        meta: LedgerMeta,
    ) -> Changes {
        let accounts: Vec<AccountRecord> = self
            .accounts
            .into_records()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let transfers: Vec<TransferRecord> = self
            .transfers
            .into_records()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let statuses = self.statuses.into_records();
        let mut last: HashMap<ExpiryKey, bool> = HashMap::new();
        for (key, put) in self.expiry {
            last.insert(key, put);
        }
        let mut expiry_put = Vec::new();
        let mut expiry_delete = Vec::new();
        for (key, put) in last {
            if put {
                expiry_put.push(key);
            } else {
                expiry_delete.push(key);
            }
        }
        expiry_put.sort_unstable();
        expiry_delete.sort_unstable();
        let mut index = Vec::with_capacity(transfers.len() * 5);
        for r in accounts
            .iter()
            .filter(|r| r.account.timestamp >= first_timestamp)
        {
            account_entries(&r.account, &mut index);
        }
        for r in &transfers {
            transfer_entries(&r.transfer, &mut index);
        }
        Changes {
            accounts,
            transfers,
            statuses,
            expiry_put,
            expiry_delete,
            history: self.history,
            index,
            balances: self.balances,
            leaves,
            leaf_data,
            first_leaf,
            nodes,
            meta,
        }
    }
}
