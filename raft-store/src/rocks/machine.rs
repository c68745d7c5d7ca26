//! [`StateBackend`] for RocksDB: the apply path — one atomic `WriteBatch` per applied entry,
//! holding the entry's ledger changes (or new deny-list records) and the applied state, written
//! without RocksDB's WAL (the Raft log is the state's write-ahead log; the next flush makes it
//! durable, `RocksBackend::write_state`; flushed at once only when it moves the store to a new
//! storage format) — and every other
//! state-machine call, each answered by the part of the backend that owns its tables.
//!
//! This module decides what goes into an entry's batch and nothing else: it never encodes a key
//! or a record itself, and never reads or writes a snapshot file.

use super::db::{storage_format_at, RocksBackend, NODE_LEVEL_MIN};
use super::tree::StoredTree;
use crate::backend::{
    self, AppliedState, BalanceRange, SnapshotMeta, SnapshotSource, StateBackend,
};
use crate::backup::BackupSummary;
use crate::error::StoreError;
use crate::revocation::{AdminWrite, RevocationRecord, TokenId};
use crate::snapshot::SnapshotData;
use ledger::merkle::Hash;
use ledger::proof;
use ledger::{
    AccountRecord, BalanceEntry, Batch, Changes, ConsistencyProof, Filter, InclusionProof,
    LedgerMeta, Outcome, StateRead, Target, TransferRecord,
};
use rocksdb::WriteBatch;

impl StateBackend for RocksBackend {
    fn is_blocking(&self) -> bool {
        true
    }

    fn applied(&self) -> Result<AppliedState, StoreError> {
        let _gate = self.reading();
        self.applied_state()
    }

    fn ledger_meta(&self) -> Result<LedgerMeta, StoreError> {
        let _gate = self.reading();
        Ok(StateRead::meta(self)?)
    }

    fn applied_with_meta(&self) -> Result<(AppliedState, LedgerMeta), StoreError> {
        let _gate = self.reading();
        // Both records are written by one batch per commit; one RocksDB snapshot reads them
        // from the same commit.
        let view = self.view();
        Ok((view.applied()?, view.ledger_meta()?))
    }

    fn apply(&self, batch: &Batch) -> Result<(Outcome, Changes), StoreError> {
        let _gate = self.reading();
        Ok(ledger::apply(self, batch)?)
    }

    fn commit(
        &self,
        changes: Option<Changes>,
        applied: &AppliedState,
        sync: bool,
    ) -> Result<(), StoreError> {
        let _gate = self.reading();
        let mut batch = WriteBatch::default();
        if let Some(changes) = &changes {
            self.stage(&mut batch, changes)?;
        }
        self.stage_applied(&mut batch, applied)?;
        self.write_state(batch, sync)?;
        // Only once written: the cache never holds what the table does not.
        if let Some(changes) = &changes {
            self.accounts.committed(&changes.accounts);
        }
        Ok(())
    }

    fn commit_admin(
        &self,
        write: &AdminWrite,
        applied: &AppliedState,
        sync: bool,
    ) -> Result<(), StoreError> {
        let _gate = self.reading();
        let mut batch = WriteBatch::default();
        self.stage_revocations(&mut batch, &write.records)?;
        let mut moves = false;
        if let Some(v) = write.cluster_version {
            self.stage_cluster_version(&mut batch, v)?;
            // The entry that raises the cluster to format 2's version moves the store with it.
            moves = storage_format_at(v) == 2 && self.format() == 1;
            if moves {
                self.stage_format_2(&mut batch)?;
            }
        }
        self.stage_applied(&mut batch, applied)?;
        // Flushed when it moves the store: the format record must not wait for a later flush.
        self.write_state(batch, sync || moves)?;
        if moves {
            self.format.store(2, std::sync::atomic::Ordering::Release);
            tracing::info!(
                storage_format = 2,
                "the cluster advanced: this store moved to storage format 2 (no history table, \
                 Merkle nodes from level {NODE_LEVEL_MIN} up)"
            );
        }
        Ok(())
    }

    fn cluster_version(&self) -> Result<u32, StoreError> {
        self.stored_cluster_version()
    }

    fn make_durable(&self) -> Result<(), StoreError> {
        let _gate = self.reading();
        self.flush_state()
    }

    fn revocation(&self, token_id: &TokenId) -> Result<Option<RevocationRecord>, StoreError> {
        let _gate = self.reading();
        self.revocation_record(token_id)
    }

    fn revocations(
        &self,
        after: Option<TokenId>,
        limit: usize,
    ) -> Result<Vec<RevocationRecord>, StoreError> {
        let _gate = self.reading();
        self.revocation_page(after, limit)
    }

    fn build_snapshot(&self) -> Result<(SnapshotMeta, SnapshotData), StoreError> {
        self.build_snapshot_file()
    }

    fn receive_buffer(&self) -> Result<SnapshotData, StoreError> {
        self.receive_snapshot_file()
    }

    fn install_snapshot(
        &self,
        meta: &SnapshotMeta,
        data: SnapshotSource,
    ) -> Result<(), StoreError> {
        self.install_snapshot_file(meta, data)
    }

    fn export_backup(
        &self,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<(BackupSummary, std::fs::File), StoreError> {
        self.export_backup_file(cancel)
    }

    fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, SnapshotData)>, StoreError> {
        let _gate = self.reading();
        self.current_snapshot_file()
    }

    fn digest(&self) -> Result<Hash, StoreError> {
        let _gate = self.reading();
        self.view().digest()
    }

    fn lookup_account(&self, id: u128) -> Result<Option<AccountRecord>, StoreError> {
        let _gate = self.reading();
        self.account_record(id)
    }

    fn lookup_transfer(&self, id: u128) -> Result<Option<TransferRecord>, StoreError> {
        let _gate = self.reading();
        self.transfer_record(id)
    }

    fn lookup_transfer_read(&self, id: u128) -> Result<Option<ledger::TransferRead>, StoreError> {
        let _gate = self.reading();
        self.view().transfer_read(id)
    }

    fn account_history(
        &self,
        account_id: u128,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<u128>, StoreError> {
        let _gate = self.reading();
        self.view().history_range(account_id, from, to, limit)
    }

    fn query_accounts(&self, filter: &Filter) -> Result<Vec<AccountRecord>, StoreError> {
        let _gate = self.reading();
        backend::query_accounts(&self.view(), filter)
    }

    fn query_transfers(
        &self,
        target: Target,
        filter: &Filter,
    ) -> Result<Vec<ledger::TransferRead>, StoreError> {
        let _gate = self.reading();
        backend::query_transfers(&self.view(), target, filter)
    }

    fn balances(
        &self,
        account_id: u128,
        range: BalanceRange,
    ) -> Result<Vec<(u64, BalanceEntry)>, StoreError> {
        let _gate = self.reading();
        backend::balances(&self.view(), account_id, range)
    }

    fn leaf_data(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let _gate = self.reading();
        self.leaf_preimage(index)
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError> {
        let _gate = self.reading();
        backend::check_tree_size(size, StateRead::meta(self)?.tree.size)?;
        proof::inclusion_proof(&StoredTree(self), index, size)
    }

    fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof, StoreError> {
        let _gate = self.reading();
        backend::check_tree_size(new, StateRead::meta(self)?.tree.size)?;
        proof::consistency_proof(&StoredTree(self), old, new)
    }

    fn frontier_at(&self, size: u64) -> Result<ledger::Frontier, StoreError> {
        let _gate = self.reading();
        backend::check_tree_size(size, StateRead::meta(self)?.tree.size)?;
        proof::frontier_at(&StoredTree(self), size)
    }

    fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        let _gate = self.reading();
        backend::check_tree_size(size, StateRead::meta(self)?.tree.size)?;
        proof::root_at(&StoredTree(self), size)
    }
}
