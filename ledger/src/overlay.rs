//! Uncommitted writes of one entry over a [`StateRead`], with savepoints so that a failed
//! `linked` chain can be undone. Turned into a [`Changes`] at the end of the entry.

use crate::query::{account_entries, transfer_entries, BalanceEntry};
use crate::state::{Changes, ReadError, StateRead};
use crate::types::{
    AccountRecord, ExpiryKey, HistoryKey, LedgerMeta, TransferRecord, TransferStatus,
};
use std::collections::HashMap;

enum Undo {
    Account(u128, Option<AccountRecord>),
    Transfer(u128),
    Status(u128, Option<TransferStatus>),
}

/// A position to roll back to.
#[derive(Clone, Copy)]
pub(crate) struct Savepoint {
    undo: usize,
    expiry: usize,
    history: usize,
    balances: usize,
}

pub(crate) struct Overlay<'a, S: StateRead> {
    base: &'a S,
    accounts: HashMap<u128, AccountRecord>,
    transfers: HashMap<u128, TransferRecord>,
    statuses: HashMap<u128, TransferStatus>,
    /// (key, true = put / false = delete), in order; the last operation on a key wins.
    expiry: Vec<(ExpiryKey, bool)>,
    history: Vec<(HistoryKey, u128)>,
    /// Balance-history entries of `history`-flagged accounts, in the order they happened.
    balances: Vec<(HistoryKey, BalanceEntry)>,
    undo: Vec<Undo>,
}

impl<'a, S: StateRead> Overlay<'a, S> {
    pub(crate) fn new(base: &'a S) -> Self {
        Self {
            base,
            accounts: HashMap::new(),
            transfers: HashMap::new(),
            statuses: HashMap::new(),
            expiry: Vec::new(),
            history: Vec::new(),
            balances: Vec::new(),
            undo: Vec::new(),
        }
    }

    pub(crate) fn base(&self) -> &S {
        self.base
    }

    pub(crate) fn account(&self, id: u128) -> Result<Option<AccountRecord>, ReadError> {
        match self.accounts.get(&id) {
            Some(r) => Ok(Some(*r)),
            None => self.base.account(id),
        }
    }

    pub(crate) fn transfer(&self, id: u128) -> Result<Option<TransferRecord>, ReadError> {
        match self.transfers.get(&id) {
            Some(r) => Ok(Some(r.clone())),
            None => self.base.transfer(id),
        }
    }

    pub(crate) fn status(&self, id: u128) -> Result<Option<TransferStatus>, ReadError> {
        match self.statuses.get(&id) {
            Some(s) => Ok(Some(*s)),
            None => self.base.status(id),
        }
    }

    pub(crate) fn put_account(&mut self, record: AccountRecord) {
        let prev = self.accounts.insert(record.account.id, record);
        self.undo.push(Undo::Account(record.account.id, prev));
    }

    pub(crate) fn put_transfer(&mut self, record: TransferRecord) {
        let id = record.transfer.id;
        let prev = self.transfers.insert(id, record);
        debug_assert!(prev.is_none(), "transfer ids are unique");
        self.undo.push(Undo::Transfer(id));
    }

    pub(crate) fn put_status(&mut self, id: u128, status: TransferStatus) {
        let prev = self.statuses.insert(id, status);
        self.undo.push(Undo::Status(id, prev));
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
                Some(Undo::Account(id, prev)) => restore(&mut self.accounts, id, prev),
                Some(Undo::Transfer(id)) => {
                    self.transfers.remove(&id);
                }
                Some(Undo::Status(id, prev)) => restore(&mut self.statuses, id, prev),
                None => break,
            }
        }
        self.expiry.truncate(sp.expiry);
        self.history.truncate(sp.history);
        self.balances.truncate(sp.balances);
    }

    /// The entry's net effect, every list sorted so the result is byte-identical on every node.
    /// Accounts stamped at or after `first_timestamp` (the entry's first) were created by it and
    /// are indexed; every transfer in the overlay is new and is indexed.
    pub(crate) fn into_changes(
        self,
        first_timestamp: u64,
        leaves: Vec<crate::merkle::Hash>,
        leaf_data: Vec<crate::canonical::LeafData>,
        first_leaf: u64,
        nodes: Vec<(u8, u64, crate::merkle::Hash)>,
        meta: LedgerMeta,
    ) -> Changes {
        let mut accounts: Vec<AccountRecord> = self.accounts.into_values().collect();
        accounts.sort_unstable_by_key(|r| r.account.id);
        let mut transfers: Vec<TransferRecord> = self.transfers.into_values().collect();
        transfers.sort_unstable_by_key(|r| r.transfer.id);
        let mut statuses: Vec<(u128, TransferStatus)> = self.statuses.into_iter().collect();
        statuses.sort_unstable_by_key(|(id, _)| *id);
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
        let mut history = self.history;
        history.sort_unstable();
        let mut index = Vec::new();
        for r in accounts
            .iter()
            .filter(|r| r.account.timestamp >= first_timestamp)
        {
            account_entries(&r.account, &mut index);
        }
        for r in &transfers {
            transfer_entries(&r.transfer, &mut index);
        }
        index.sort_unstable();
        let mut balances = self.balances;
        balances.sort_unstable_by_key(|(k, _)| *k);
        Changes {
            accounts,
            transfers,
            statuses,
            expiry_put,
            expiry_delete,
            history,
            index,
            balances,
            leaves,
            leaf_data,
            first_leaf,
            nodes,
            meta,
        }
    }
}

fn restore<V>(map: &mut HashMap<u128, V>, id: u128, prev: Option<V>) {
    match prev {
        Some(v) => {
            map.insert(id, v);
        }
        None => {
            map.remove(&id);
        }
    }
}
