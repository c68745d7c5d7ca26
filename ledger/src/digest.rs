//! A digest over the entire ledger state, fed record by record in key order. Two nodes that
//! applied the same log agree on it; the simulation and the tests compare it across nodes and
//! across backends (memory vs RocksDB).

use crate::canonical::{account_bytes, status_bytes, transfer_bytes};
use crate::merkle::Hash;
use crate::types::{
    AccountRecord, BalanceEntry, ExpiryKey, HistoryKey, IndexKey, LedgerMeta, TransferRecord,
    TransferStatus,
};

/// Incremental state digest. Callers feed each table in key order: accounts, transfers, statuses,
/// expiry index, history index, secondary index, balance history.
pub struct StateDigest {
    hasher: blake3::Hasher,
}

impl StateDigest {
    /// Start a digest with the ledger metadata.
    pub fn new(meta: &LedgerMeta) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"ron-ledger/state-digest/v1");
        hasher.update(&meta.last_timestamp.to_le_bytes());
        hasher.update(&meta.tree.size.to_le_bytes());
        hasher.update(&meta.root.0);
        Self { hasher }
    }

    /// Add an account.
    pub fn account(&mut self, r: &AccountRecord) {
        self.hasher.update(b"A");
        self.hasher.update(&account_bytes(&r.account));
        self.hasher.update(&r.leaf.to_le_bytes());
    }

    /// Add a transfer.
    pub fn transfer(&mut self, r: &TransferRecord) {
        self.hasher.update(b"T");
        self.hasher.update(&transfer_bytes(&r.transfer));
        match &r.submitted {
            Some(s) => {
                self.hasher.update(b"S");
                self.hasher.update(&transfer_bytes(s));
            }
            None => {
                self.hasher.update(b"-");
            }
        }
        self.hasher.update(&r.leaf.to_le_bytes());
    }

    /// Add a status.
    pub fn status(&mut self, id: u128, s: TransferStatus) {
        self.hasher.update(b"S");
        self.hasher.update(&id.to_le_bytes());
        self.hasher.update(&status_bytes(s));
    }

    /// Add an expiry index entry.
    pub fn expiry(&mut self, k: &ExpiryKey) {
        self.hasher.update(b"E");
        self.hasher.update(&k.expires_at.to_le_bytes());
        self.hasher.update(&k.transfer_id.to_le_bytes());
    }

    /// Add a history index entry.
    pub fn history(&mut self, k: &HistoryKey, transfer_id: u128) {
        self.hasher.update(b"H");
        self.hasher.update(&k.account_id.to_le_bytes());
        self.hasher.update(&k.timestamp.to_le_bytes());
        self.hasher.update(&transfer_id.to_le_bytes());
    }

    /// Add a secondary index entry.
    pub fn index(&mut self, k: &IndexKey, id: u128) {
        self.hasher.update(b"I");
        self.hasher.update(&[k.field as u8]);
        self.hasher.update(&k.value.to_le_bytes());
        self.hasher.update(&k.timestamp.to_le_bytes());
        self.hasher.update(&id.to_le_bytes());
    }

    /// Add a balance-history entry.
    pub fn balance(&mut self, k: &HistoryKey, e: &BalanceEntry) {
        self.hasher.update(b"B");
        self.hasher.update(&k.account_id.to_le_bytes());
        self.hasher.update(&k.timestamp.to_le_bytes());
        for v in [
            e.debits_pending,
            e.debits_posted,
            e.credits_pending,
            e.credits_posted,
        ] {
            self.hasher.update(&v.to_le_bytes());
        }
        self.hasher.update(&e.leaf.to_le_bytes());
    }

    /// The digest.
    pub fn finish(self) -> Hash {
        Hash(*self.hasher.finalize().as_bytes())
    }
}
