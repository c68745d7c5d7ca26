//! The ledger state a simulated node runs on: raft-store's memory backend (kept outside the
//! simulated host so that it outlives a crash), behind a thin wrapper that can plant an apply-side
//! bug. Without a planted bug every call is passed through unchanged.
//!
//! Planted bug [`crate::Bug::DoubleApplyAfterInstall`]: after a snapshot is installed, the next
//! ledger entry's balance changes are applied twice (every account it touches moves by twice
//! what the entry says), the bug a replay cursor left one entry behind the installed snapshot
//! would be. Only the simulation's wrapper does this; the product's backends are not involved.

use ledger::{
    AccountRecord, BalanceEntry, Batch, Changes, ConsistencyProof, Filter, Hash, InclusionProof,
    LedgerMeta, Outcome, Target, TransferRecord,
};
use raft_store::backend::{BackupSummary, SnapshotSource};
use raft_store::revocation::{AdminCommand, AdminOutcome, AdminWrite, RevocationRecord, TokenId};
use raft_store::{
    AppliedState, BalanceRange, MemoryStateBackend, SnapshotData, SnapshotMeta, StateBackend,
    StoreError,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One node's ledger state (see the module docs).
#[derive(Default)]
pub struct SimState {
    inner: MemoryStateBackend,
    double_apply_after_install: bool,
    /// A snapshot was installed and no ledger entry has been applied since.
    armed: AtomicBool,
    /// Snapshots installed on this node.
    installs: AtomicU64,
}

impl SimState {
    /// A fresh state; with `double_apply_after_install`, the planted bug.
    pub fn new(double_apply_after_install: bool) -> Self {
        Self {
            double_apply_after_install,
            ..Self::default()
        }
    }

    /// The memory backend underneath (the checkers read it directly).
    pub fn memory(&self) -> &MemoryStateBackend {
        &self.inner
    }

    /// How many snapshots this node has installed.
    pub fn installs(&self) -> u64 {
        self.installs.load(Ordering::Relaxed)
    }

    /// The planted bug: every account in `changes` moves by twice what the entry moved it.
    /// Whether any balance changed (an entry that moves nothing leaves the bug armed).
    fn double(&self, changes: &mut Changes) -> Result<bool, StoreError> {
        fn twice(old: u128, new: u128) -> u128 {
            if new >= old {
                new.saturating_add(new - old)
            } else {
                new.saturating_sub(old - new)
            }
        }
        let mut moved = false;
        for r in &mut changes.accounts {
            let Some(old) = self.inner.lookup_account(r.account.id)? else {
                continue; // created by this entry: nothing to double
            };
            let (o, n) = (old.account, &mut r.account);
            let before = (
                n.debits_pending,
                n.debits_posted,
                n.credits_pending,
                n.credits_posted,
            );
            n.debits_pending = twice(o.debits_pending, n.debits_pending);
            n.debits_posted = twice(o.debits_posted, n.debits_posted);
            n.credits_pending = twice(o.credits_pending, n.credits_pending);
            n.credits_posted = twice(o.credits_posted, n.credits_posted);
            moved |= before
                != (
                    n.debits_pending,
                    n.debits_posted,
                    n.credits_pending,
                    n.credits_posted,
                );
        }
        Ok(moved)
    }
}

impl StateBackend for SimState {
    fn is_blocking(&self) -> bool {
        self.inner.is_blocking()
    }
    fn applied(&self) -> Result<AppliedState, StoreError> {
        self.inner.applied()
    }
    fn ledger_meta(&self) -> Result<LedgerMeta, StoreError> {
        self.inner.ledger_meta()
    }
    fn applied_with_meta(&self) -> Result<(AppliedState, LedgerMeta), StoreError> {
        self.inner.applied_with_meta()
    }
    fn apply(&self, batch: &Batch) -> Result<(Outcome, Changes), StoreError> {
        self.inner.apply(batch)
    }
    fn commit(
        &self,
        changes: Option<Changes>,
        applied: &AppliedState,
        sync: bool,
    ) -> Result<(), StoreError> {
        let mut changes = changes;
        if let Some(c) = changes.as_mut() {
            if self.double_apply_after_install
                && self.armed.load(Ordering::SeqCst)
                && self.double(c)?
            {
                self.armed.store(false, Ordering::SeqCst);
            }
        }
        self.inner.commit(changes, applied, sync)
    }
    fn apply_admin(
        &self,
        cmd: &AdminCommand,
        log_index: u64,
    ) -> Result<(AdminOutcome, AdminWrite), StoreError> {
        self.inner.apply_admin(cmd, log_index)
    }
    fn commit_admin(
        &self,
        write: &AdminWrite,
        applied: &AppliedState,
        sync: bool,
    ) -> Result<(), StoreError> {
        self.inner.commit_admin(write, applied, sync)
    }
    fn cluster_version(&self) -> Result<u32, StoreError> {
        self.inner.cluster_version()
    }
    fn revocation(&self, token_id: &TokenId) -> Result<Option<RevocationRecord>, StoreError> {
        self.inner.revocation(token_id)
    }
    fn revocations(
        &self,
        after: Option<TokenId>,
        limit: usize,
    ) -> Result<Vec<RevocationRecord>, StoreError> {
        self.inner.revocations(after, limit)
    }
    fn build_snapshot(&self) -> Result<(SnapshotMeta, SnapshotData), StoreError> {
        self.inner.build_snapshot()
    }
    fn receive_buffer(&self) -> Result<SnapshotData, StoreError> {
        self.inner.receive_buffer()
    }
    fn install_snapshot(
        &self,
        meta: &SnapshotMeta,
        data: SnapshotSource,
    ) -> Result<(), StoreError> {
        self.inner.install_snapshot(meta, data)?;
        self.installs.fetch_add(1, Ordering::Relaxed);
        self.armed.store(true, Ordering::SeqCst);
        Ok(())
    }
    fn export_backup(&self) -> Result<(BackupSummary, std::fs::File), StoreError> {
        self.inner.export_backup()
    }
    fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, SnapshotData)>, StoreError> {
        self.inner.current_snapshot()
    }
    fn digest(&self) -> Result<Hash, StoreError> {
        self.inner.digest()
    }
    fn lookup_account(&self, id: u128) -> Result<Option<AccountRecord>, StoreError> {
        self.inner.lookup_account(id)
    }
    fn lookup_transfer(&self, id: u128) -> Result<Option<TransferRecord>, StoreError> {
        self.inner.lookup_transfer(id)
    }
    fn lookup_transfer_read(&self, id: u128) -> Result<Option<ledger::TransferRead>, StoreError> {
        self.inner.lookup_transfer_read(id)
    }
    fn account_history(
        &self,
        account_id: u128,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<u128>, StoreError> {
        self.inner.account_history(account_id, from, to, limit)
    }
    fn query_accounts(&self, filter: &Filter) -> Result<Vec<AccountRecord>, StoreError> {
        self.inner.query_accounts(filter)
    }
    fn query_transfers(
        &self,
        target: Target,
        filter: &Filter,
    ) -> Result<Vec<ledger::TransferRead>, StoreError> {
        self.inner.query_transfers(target, filter)
    }
    fn balances(
        &self,
        account_id: u128,
        range: BalanceRange,
    ) -> Result<Vec<(u64, BalanceEntry)>, StoreError> {
        self.inner.balances(account_id, range)
    }
    fn leaf_data(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.leaf_data(index)
    }
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError> {
        self.inner.inclusion_proof(index, size)
    }
    fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof, StoreError> {
        self.inner.consistency_proof(old, new)
    }
    fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        self.inner.root_at(size)
    }
    fn frontier_at(&self, size: u64) -> Result<ledger::Frontier, StoreError> {
        self.inner.frontier_at(size)
    }
}
