//! The ledger state a simulated node runs on: raft-store's memory backend (kept outside the
//! simulated host so that it outlives a crash), behind a thin wrapper that models its
//! durability and can plant an apply-side bug.
//!
//! Durability, as the RocksDB backend has it: state writes skip the write-ahead log, so they are
//! durable only once the store flushes next ([`SimLog::flushes`]: the periodic write-back, a
//! purge of the log, which flushes first, and a snapshot install, which ends with a flush).
//! Recording a built snapshot does not flush: after a crash the state can be behind its current
//! snapshot, never behind the log's purge point. The wrapper keeps a copy of the state as of the
//! last flush while writes wait for the next one; [`SimState::crash`] puts that copy back — the
//! node comes back with a state behind its log, and openraft re-applies the rest.
//!
//! Planted bug [`crate::Bug::DoubleApplyAfterInstall`]: after a snapshot is installed, the next
//! ledger entry's balance changes are applied twice (every account it touches moves by twice
//! what the entry says), the bug a replay cursor left one entry behind the installed snapshot
//! would be. Only the simulation's wrapper does this; the product's backends are not involved.

use crate::storage::SimLog;
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
use std::sync::{Arc, Mutex};

/// One node's ledger state (see the module docs).
pub struct SimState {
    inner: MemoryStateBackend,
    /// The disk whose write-ahead log the state's writes go through.
    log: Arc<SimLog>,
    /// What a crash leaves (see the module docs).
    durable: Mutex<Durable>,
    double_apply_after_install: bool,
    /// A snapshot was installed and no ledger entry has been applied since.
    armed: AtomicBool,
    /// Snapshots installed on this node.
    installs: AtomicU64,
    /// Applied entries its power losses took from the state.
    entries_lost: AtomicU64,
}

impl SimState {
    /// A fresh state writing through `log`'s write-ahead log; with
    /// `double_apply_after_install`, the planted bug.
    pub fn new(log: Arc<SimLog>, double_apply_after_install: bool) -> Self {
        Self {
            inner: MemoryStateBackend::new(),
            log,
            durable: Mutex::default(),
            double_apply_after_install,
            armed: AtomicBool::new(false),
            installs: AtomicU64::new(0),
            entries_lost: AtomicU64::new(0),
        }
    }

    /// Applied entries this node's power losses took from its state.
    pub fn entries_lost(&self) -> u64 {
        self.entries_lost.load(Ordering::Relaxed)
    }

    /// A crash: the state's writes since the store's last flush are gone. Call with the log
    /// disk's own crash.
    pub fn crash(&self) {
        let mut d = self.lock_durable();
        if let Some(copy) = d.copy.take() {
            if d.flushes == self.log.flushes() {
                let index = |s: &MemoryStateBackend| {
                    s.applied()
                        .ok()
                        .and_then(|a| a.last_applied)
                        .map_or(0, |l| l.index)
                };
                let lost = index(&self.inner).saturating_sub(index(&copy));
                self.entries_lost.fetch_add(lost, Ordering::Relaxed);
                self.inner.restore_state(copy);
            }
        }
    }

    /// Before a state write: when the store has flushed since the last one (or nothing was
    /// written yet), the state as it is now is what the disk holds; keep a copy of it until
    /// the next flush.
    fn before_write(&self) {
        let flushes = self.log.flushes();
        let mut d = self.lock_durable();
        if d.copy.is_none() || d.flushes != flushes {
            d.copy = Some(self.inner.copy_state());
            d.flushes = flushes;
        }
    }

    fn lock_durable(&self) -> std::sync::MutexGuard<'_, Durable> {
        self.durable.lock().unwrap_or_else(|p| p.into_inner())
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

/// The state as the disk holds it while writes wait for a flush.
#[derive(Default)]
struct Durable {
    /// The store's flush count when `copy` was taken.
    flushes: u64,
    /// The state as of that flush; `None` when nothing was written since.
    copy: Option<MemoryStateBackend>,
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
        self.before_write();
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
        self.before_write();
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
        let built = self.inner.build_snapshot()?;
        // RocksDB records the new current snapshot with a synced write: the log's pending writes
        // become durable with it, the state's (which skip the WAL) do not.
        self.log.sync();
        Ok(built)
    }
    fn receive_buffer(&self) -> Result<SnapshotData, StoreError> {
        self.inner.receive_buffer()
    }
    fn install_snapshot(
        &self,
        meta: &SnapshotMeta,
        data: SnapshotSource,
    ) -> Result<(), StoreError> {
        // RocksDB ends an install with a flush of the whole store.
        self.inner.install_snapshot(meta, data)?;
        self.log.flush();
        *self.lock_durable() = Durable::default();
        self.installs.fetch_add(1, Ordering::Relaxed);
        self.armed.store(true, Ordering::SeqCst);
        Ok(())
    }
    fn make_durable(&self) -> Result<(), StoreError> {
        // A clean stop flushes the store, as RocksDB's does.
        self.log.flush();
        Ok(())
    }
    fn export_backup(
        &self,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<(BackupSummary, std::fs::File), StoreError> {
        self.inner.export_backup(cancel)
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

#[cfg(test)]
mod tests {
    use super::*;
    use raft_store::{LogBackend, LogId};

    fn applied(index: u64) -> AppliedState {
        AppliedState {
            last_applied: Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), index)),
            ..AppliedState::default()
        }
    }

    fn index(s: &SimState) -> u64 {
        s.applied().unwrap().last_applied.map_or(0, |l| l.index)
    }

    #[test]
    fn a_crash_rolls_the_state_back_to_the_stores_last_flush() {
        let log = Arc::new(SimLog::new(false));
        let state = SimState::new(log.clone(), false);
        state.commit(None, &applied(1), false).unwrap();
        log.append(vec![(2, b"entry".to_vec())]).unwrap(); // a synced append
        state.commit(None, &applied(2), false).unwrap();
        log.meta_put("vote", b"v".to_vec(), true).unwrap(); // a synced write does not carry it
        state.commit(None, &applied(3), false).unwrap();
        state.crash();
        assert_eq!(
            index(&state),
            0,
            "state writes are lost until the store flushes"
        );
        state.commit(None, &applied(1), false).unwrap();
        state.commit(None, &applied(2), false).unwrap();
        log.purge(1, b"p".to_vec()).unwrap(); // a purge flushes first
        state.commit(None, &applied(3), false).unwrap();
        state.crash();
        assert_eq!(index(&state), 2, "a write before a purge survives");
        state.commit(None, &applied(3), false).unwrap();
        log.flush(); // the periodic write-back
        state.crash();
        assert_eq!(index(&state), 3);
    }
}
