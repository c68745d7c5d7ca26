//! The in-memory backend: amnesia mode (a single node with no files) and the simulation. It
//! implements the same interfaces as RocksDB and stores the same sealed records, so the log
//! and state behave identically (the deny-list included); it never touches the filesystem.

use crate::backend::{
    self, AppliedState, BalanceRange, LogBackend, SnapshotMeta, SnapshotSource, StateBackend,
};
use crate::error::StoreError;
use crate::restore::read_snapshot;
use crate::revocation::{self, AdminWrite, RevocationRecord, TokenId};
use crate::snapshot::{SnapshotData, SnapshotItem, SnapshotWriter};
use ledger::merkle::Hash;
use ledger::proof;
use ledger::{
    AccountRecord, BalanceEntry, Batch, Changes, ConsistencyProof, Filter, InclusionProof,
    LedgerMeta, MemoryState, Outcome, StateRead, Target,
};
use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// An in-memory Raft log.
#[derive(Default)]
pub struct MemoryLog {
    inner: Mutex<MemoryLogInner>,
}

#[derive(Default)]
struct MemoryLogInner {
    entries: BTreeMap<u64, Vec<u8>>,
    meta: HashMap<&'static str, Vec<u8>>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryLogInner> {
        // A poisoned lock means a panic mid-update; the data is still whole (every update is a
        // single map operation), so keep serving it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LogBackend for MemoryLog {
    fn is_blocking(&self) -> bool {
        false
    }

    fn append(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.entries.extend(entries);
        Ok(())
    }

    fn read(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let inner = self.lock();
        Ok(inner
            .entries
            .range(start..end)
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }

    fn last(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .lock()
            .entries
            .last_key_value()
            .map(|(k, v)| (*k, v.clone())))
    }

    fn truncate(&self, from: u64) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let _ = inner.entries.split_off(&from);
        Ok(())
    }

    fn purge(&self, upto: u64, purged: Vec<u8>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let keep = inner.entries.split_off(&upto.saturating_add(1));
        inner.entries = keep;
        inner.meta.insert(backend::meta_key::PURGED, purged);
        Ok(())
    }

    fn meta_get(&self, key: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().meta.get(key).cloned())
    }

    fn meta_put(&self, key: &'static str, value: Vec<u8>, _sync: bool) -> Result<(), StoreError> {
        self.lock().meta.insert(key, value);
        Ok(())
    }
}

/// The in-memory ledger state machine storage.
#[derive(Default)]
pub struct MemoryStateBackend {
    state: RwLock<MemoryState>,
    applied: RwLock<AppliedState>,
    /// The capability deny-list, by token id. Written only while holding the state write lock
    /// (like `applied`), so a reader holding the state read lock sees a consistent view.
    revoked: RwLock<BTreeMap<TokenId, RevocationRecord>>,
    /// The cluster's effective version, if one was recorded (written like `revoked`).
    cluster_version: RwLock<Option<u32>>,
    snapshot: Mutex<Option<(SnapshotMeta, Vec<u8>)>>,
    snapshots_built: AtomicU64,
}

impl MemoryStateBackend {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Read access to the ledger state (lookups).
    pub fn state(&self) -> RwLockReadGuard<'_, MemoryState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn state_mut(&self) -> RwLockWriteGuard<'_, MemoryState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn revoked(&self) -> RwLockReadGuard<'_, BTreeMap<TokenId, RevocationRecord>> {
        self.revoked.read().unwrap_or_else(|p| p.into_inner())
    }

    fn revoked_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<TokenId, RevocationRecord>> {
        self.revoked.write().unwrap_or_else(|p| p.into_inner())
    }

    fn version(&self) -> u32 {
        self.cluster_version
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or(crate::cluster_version::BASE)
    }

    /// A copy of what a crash can roll back: the ledger state, the applied position, the
    /// deny-list and the cluster version (not the current snapshot, which lives in its own
    /// fsynced file on a real disk). The simulation's durability model keeps one of these as
    /// "what the disk holds" while state writes wait for the next synced write.
    pub fn copy_state(&self) -> MemoryStateBackend {
        let state = self.state();
        let copy = MemoryStateBackend::new();
        *copy.state_mut() = state.clone();
        *copy.applied.write().unwrap_or_else(|p| p.into_inner()) = self
            .applied
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        *copy.revoked_mut() = self.revoked().clone();
        *copy
            .cluster_version
            .write()
            .unwrap_or_else(|p| p.into_inner()) = *self
            .cluster_version
            .read()
            .unwrap_or_else(|p| p.into_inner());
        copy
    }

    /// Put back what [`Self::copy_state`] copied (the current snapshot stays): a simulated
    /// power loss of the state's unsynced writes.
    pub fn restore_state(&self, copy: MemoryStateBackend) {
        let mut state = self.state_mut();
        let mut applied = self.applied.write().unwrap_or_else(|p| p.into_inner());
        let mut revoked = self.revoked_mut();
        *state = copy.state.into_inner().unwrap_or_else(|p| p.into_inner());
        *applied = copy.applied.into_inner().unwrap_or_else(|p| p.into_inner());
        *revoked = copy.revoked.into_inner().unwrap_or_else(|p| p.into_inner());
        *self
            .cluster_version
            .write()
            .unwrap_or_else(|p| p.into_inner()) = copy
            .cluster_version
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
    }

    fn export(&self) -> Result<(AppliedState, Vec<u8>), StoreError> {
        // Hold the read lock for the whole export: a consistent view. Apply waits meanwhile;
        // memory snapshots are fast compared with RocksDB ones.
        let state = self.state();
        let applied = self
            .applied
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut w = SnapshotWriter::versioned(
            Vec::new(),
            backend::header(&applied, state.meta()?),
            self.version(),
        )?;
        for r in state.accounts() {
            w.push(&SnapshotItem::Account(r))?;
        }
        for r in state.transfers() {
            w.push(&SnapshotItem::Transfer(r))?;
        }
        for (id, s) in state.statuses() {
            w.push(&SnapshotItem::Status(id, s))?;
        }
        for k in state.expiry_index() {
            w.push(&SnapshotItem::Expiry(*k))?;
        }
        for (k, id) in state.history_index() {
            w.push(&SnapshotItem::History(k, id))?;
        }
        for (k, id) in state.index_entries() {
            w.push(&SnapshotItem::Index(k, id))?;
        }
        for (k, e) in state.balance_entries() {
            w.push(&SnapshotItem::Balance(k, e))?;
        }
        for index in 0..state.leaves().len() as u64 {
            let data = state
                .leaf_data(index)
                .ok_or_else(|| StoreError::Corruption {
                    cf: "leaves",
                    key: index.to_string(),
                    reason: "leaf preimage missing".into(),
                })?;
            w.push(&SnapshotItem::Leaf(index, data.as_bytes().to_vec()))?;
        }
        for r in self.revoked().values() {
            w.push(&SnapshotItem::Revocation(r.clone()))?;
        }
        Ok((applied, w.finish()?))
    }
}

impl StateBackend for MemoryStateBackend {
    fn is_blocking(&self) -> bool {
        false
    }

    fn applied(&self) -> Result<AppliedState, StoreError> {
        Ok(self
            .applied
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone())
    }

    fn ledger_meta(&self) -> Result<LedgerMeta, StoreError> {
        Ok(self.state().meta()?)
    }

    fn applied_with_meta(&self) -> Result<(AppliedState, LedgerMeta), StoreError> {
        // `commit` holds the state lock while it replaces the applied state: holding the state
        // lock (same order: state, then applied) reads both from one commit.
        let state = self.state();
        let applied = self
            .applied
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok((applied, state.meta()?))
    }

    fn apply(&self, batch: &Batch) -> Result<(Outcome, Changes), StoreError> {
        Ok(ledger::apply(&*self.state(), batch)?)
    }

    fn commit(
        &self,
        changes: Option<Changes>,
        applied: &AppliedState,
        _sync: bool,
    ) -> Result<(), StoreError> {
        let mut state = self.state_mut();
        let mut current = self.applied.write().unwrap_or_else(|p| p.into_inner());
        if let Some(changes) = changes {
            state.commit(changes);
        }
        *current = applied.clone();
        Ok(())
    }

    fn commit_admin(
        &self,
        write: &AdminWrite,
        applied: &AppliedState,
        _sync: bool,
    ) -> Result<(), StoreError> {
        let _state = self.state_mut();
        let mut current = self.applied.write().unwrap_or_else(|p| p.into_inner());
        let mut revoked = self.revoked_mut();
        for r in &write.records {
            revoked.entry(r.token_id).or_insert_with(|| r.clone());
        }
        if let Some(v) = write.cluster_version {
            *self
                .cluster_version
                .write()
                .unwrap_or_else(|p| p.into_inner()) = Some(v);
        }
        *current = applied.clone();
        Ok(())
    }

    fn cluster_version(&self) -> Result<u32, StoreError> {
        Ok(self.version())
    }

    fn revocation(&self, token_id: &TokenId) -> Result<Option<RevocationRecord>, StoreError> {
        Ok(self.revoked().get(token_id).cloned())
    }

    fn revocations(
        &self,
        after: Option<TokenId>,
        limit: usize,
    ) -> Result<Vec<RevocationRecord>, StoreError> {
        use std::ops::Bound;
        let lower = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        Ok(self
            .revoked()
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn build_snapshot(&self) -> Result<(SnapshotMeta, SnapshotData), StoreError> {
        let (applied, bytes) = self.export()?;
        let n = self.snapshots_built.fetch_add(1, Ordering::Relaxed);
        let meta = backend::snapshot_meta(&applied, n);
        let mut current = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        // A build that finishes after a newer install never replaces it.
        if let Some((m, b)) = current.as_ref() {
            if m.last_log_id > meta.last_log_id {
                return Ok((m.clone(), SnapshotData::Memory(Cursor::new(b.clone()))));
            }
        }
        *current = Some((meta.clone(), bytes.clone()));
        Ok((meta, SnapshotData::Memory(Cursor::new(bytes))))
    }

    fn receive_buffer(&self) -> Result<SnapshotData, StoreError> {
        Ok(SnapshotData::default())
    }

    fn install_snapshot(
        &self,
        meta: &SnapshotMeta,
        data: SnapshotSource,
    ) -> Result<(), StoreError> {
        let bytes = match data {
            SnapshotSource::Memory(b) => b,
            SnapshotSource::File(mut f) => {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut f, &mut b)?;
                b
            }
        };
        let restored = read_snapshot(meta, &bytes[..])?;
        // Build the new state aside, then swap: the old state stays whole until the swap.
        let mut fresh = MemoryState::new();
        fresh.commit(restored.changes);
        let list: BTreeMap<TokenId, RevocationRecord> = restored
            .revoked
            .into_iter()
            .map(|r| (r.token_id, r))
            .collect();
        let mut state = self.state_mut();
        let mut applied = self.applied.write().unwrap_or_else(|p| p.into_inner());
        let mut revoked = self.revoked_mut();
        *state = fresh;
        *applied = restored.applied;
        *revoked = list;
        *self
            .cluster_version
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(restored.cluster_version);
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some((meta.clone(), bytes));
        Ok(())
    }

    fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, SnapshotData)>, StoreError> {
        Ok(self
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(m, b)| (m.clone(), SnapshotData::Memory(Cursor::new(b.clone())))))
    }

    fn digest(&self) -> Result<Hash, StoreError> {
        let state = self.state();
        Ok(crate::cluster_version::fold_digest(
            revocation::combine_digest(state.digest()?, self.revoked().values()),
            self.version(),
        ))
    }

    fn lookup_account(&self, id: u128) -> Result<Option<ledger::AccountRecord>, StoreError> {
        Ok(self.state().account(id)?)
    }

    fn lookup_transfer(&self, id: u128) -> Result<Option<ledger::TransferRecord>, StoreError> {
        Ok(self.state().transfer(id)?)
    }

    fn lookup_transfer_read(&self, id: u128) -> Result<Option<ledger::TransferRead>, StoreError> {
        let state = self.state();
        let Some(record) = state.transfer(id)? else {
            return Ok(None);
        };
        let status = state.status(id)?;
        Ok(Some(ledger::TransferRead {
            state: ledger::TransferState::of(&record.transfer, status),
            transfer: record.transfer,
        }))
    }

    fn account_history(
        &self,
        account_id: u128,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<u128>, StoreError> {
        Ok(self.state().account_history(account_id, from, to, limit))
    }

    fn query_accounts(&self, filter: &Filter) -> Result<Vec<AccountRecord>, StoreError> {
        backend::query_accounts(&*self.state(), filter)
    }

    fn query_transfers(
        &self,
        target: Target,
        filter: &Filter,
    ) -> Result<Vec<ledger::TransferRead>, StoreError> {
        backend::query_transfers(&*self.state(), target, filter)
    }

    fn balances(
        &self,
        account_id: u128,
        range: BalanceRange,
    ) -> Result<Vec<(u64, BalanceEntry)>, StoreError> {
        backend::balances(&*self.state(), account_id, range)
    }

    fn leaf_data(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.state().leaf_data(index).map(|d| d.as_bytes().to_vec()))
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError> {
        let state = self.state();
        backend::check_tree_size(size, state.meta()?.tree.size)?;
        Ok(proof::inclusion_proof(&*state, index, size)?)
    }

    fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof, StoreError> {
        let state = self.state();
        backend::check_tree_size(new, state.meta()?.tree.size)?;
        Ok(proof::consistency_proof(&*state, old, new)?)
    }

    fn frontier_at(&self, size: u64) -> Result<ledger::Frontier, StoreError> {
        let state = self.state();
        backend::check_tree_size(size, state.meta()?.tree.size)?;
        Ok(proof::frontier_at(&*state, size)?)
    }

    fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        let state = self.state();
        backend::check_tree_size(size, state.meta()?.tree.size)?;
        Ok(proof::root_at(&*state, size)?)
    }
}
