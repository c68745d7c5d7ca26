//! openraft's `RaftStateMachine` over a [`StateBackend`]: each entry's ledger changes (or, for an
//! admin command, its new deny-list records), the new `last_applied` and the membership are
//! committed in one atomic write.
//!
//! One durable write path: those writes are not fsynced, and on RocksDB they skip its WAL
//! altogether. The Raft log is the write-ahead log — every entry applied here was fsynced in the
//! logs of a majority before it committed, and was written to this node's log before it is
//! applied. RocksDB writes the state to disk when it flushes its memtables, every column family
//! at once (atomic flush), so what a crash — a SIGKILL as much as a power loss — leaves of the
//! state is the state after some applied entry: it can lose the last applied entries, never
//! their atomicity (each entry's write is one batch) and never the entries themselves. At start
//! openraft re-applies the log from the state's `last_applied` up to the saved commit index,
//! and the leader's commit index brings the rest. The log is never purged past durable state: a
//! purge flushes the state first (`RocksBackend`'s `LogBackend::purge`).

use crate::backend::{run, AppliedState, SnapshotSource, StateBackend};
use crate::error::StoreError;
use crate::revocation::{AdminOutcome, Command, Response};
use crate::snapshot::SnapshotData;
use crate::types::{LedgerConfig, StorageError, StoredMembership};
use ledger::Outcome;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use std::marker::PhantomData;
use std::sync::Arc;

/// The ledger state machine of one node.
pub struct StateMachine<C, B: ?Sized> {
    backend: Arc<B>,
    _config: PhantomData<fn() -> C>,
}

impl<C, B: ?Sized> Clone for StateMachine<C, B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            _config: PhantomData,
        }
    }
}

impl<C: LedgerConfig, B: StateBackend + ?Sized> StateMachine<C, B> {
    /// A state machine over `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        Self {
            backend,
            _config: PhantomData,
        }
    }

    /// The backend (for reads: lookups, status, digest).
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// Apply entries in order; blocking. Public so that tests and the crash harness can drive
    /// the state machine without a Raft instance.
    pub fn apply_blocking(
        backend: &B,
        entries: Vec<C::Entry>,
    ) -> Result<Vec<Response>, StoreError> {
        let mut applied = backend.applied()?;
        let mut replies = Vec::with_capacity(entries.len());
        // Never fsynced here: see the module documentation.
        let sync = false;
        for entry in entries {
            if let Some(last) = applied.last_applied {
                if entry.log_id.index <= last.index {
                    // Already applied (openraft never sends these; a replaying harness might):
                    // nothing to do, but keep one reply per entry as openraft requires.
                    replies.push(idle_outcome(backend)?);
                    continue;
                }
            }
            applied.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Normal(Command::Ledger(batch)) => {
                    let (outcome, changes) = backend.apply(&batch)?;
                    backend.commit(Some(changes), &applied, sync)?;
                    replies.push(Response::Ledger(outcome));
                }
                EntryPayload::Normal(Command::Admin(cmd)) => {
                    let (outcome, write) = backend.apply_admin(&cmd, entry.log_id.index)?;
                    backend.commit_admin(&write, &applied, sync)?;
                    if let AdminOutcome::ClusterVersion(v) = outcome {
                        tracing::info!(
                            version = v,
                            log_index = entry.log_id.index,
                            "the cluster's effective version is now {v}"
                        );
                    }
                    replies.push(Response::Admin(outcome));
                }
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    backend.commit(None, &applied, sync)?;
                    replies.push(idle_outcome(backend)?);
                }
                EntryPayload::Blank => {
                    backend.commit(None, &applied, sync)?;
                    replies.push(idle_outcome(backend)?);
                }
            }
        }
        Ok(replies)
    }
}

/// The reply to an entry that carries no ledger events: the current tree and timestamp.
fn idle_outcome<B: StateBackend + ?Sized>(backend: &B) -> Result<Response, StoreError> {
    let meta = backend.ledger_meta()?;
    Ok(Response::Ledger(Outcome {
        replies: Vec::new(),
        expired: 0,
        tree_size: meta.tree.size,
        root: meta.root,
        last_timestamp: meta.last_timestamp,
    }))
}

fn sm_err(e: StoreError, verb: ErrorVerb) -> StorageError {
    e.into_raft(ErrorSubject::StateMachine, verb)
}

fn snap_err(e: StoreError, verb: ErrorVerb) -> StorageError {
    e.into_raft(ErrorSubject::Snapshot(None), verb)
}

impl<C: LedgerConfig, B: StateBackend + ?Sized> RaftSnapshotBuilder<C> for StateMachine<C, B> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError> {
        let backend = self.backend.clone();
        let started = std::time::Instant::now();
        let built = run(self.backend.is_blocking(), move || backend.build_snapshot()).await;
        crate::stats::report(
            crate::stats::Event::SnapshotBuilt,
            started.elapsed(),
            built.is_ok(),
        );
        let (meta, data) = built.map_err(|e| snap_err(e, ErrorVerb::Write))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(data),
        })
    }
}

impl<C: LedgerConfig, B: StateBackend + ?Sized> RaftStateMachine<C> for StateMachine<C, B> {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<crate::types::LogId>, StoredMembership), StorageError> {
        let AppliedState {
            last_applied,
            membership,
        } = self
            .backend
            .applied()
            .map_err(|e| sm_err(e, ErrorVerb::Read))?;
        Ok((last_applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<C::Entry> = entries.into_iter().collect();
        let backend = self.backend.clone();
        run(self.backend.is_blocking(), move || {
            Self::apply_blocking(&backend, entries)
        })
        .await
        .map_err(|e| sm_err(e, ErrorVerb::Write))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        self.backend
            .receive_buffer()
            .map(Box::new)
            .map_err(|e| snap_err(e, ErrorVerb::Write))
    }

    async fn install_snapshot(
        &mut self,
        meta: &crate::backend::SnapshotMeta,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        let started = std::time::Instant::now();
        let source = SnapshotSource::from_data(*snapshot)
            .await
            .map_err(|e| snap_err(e, ErrorVerb::Read))?;
        let backend = self.backend.clone();
        let meta = meta.clone();
        let installed = run(self.backend.is_blocking(), move || {
            // openraft only installs a snapshot newer than what is applied; refuse anything
            // else here too, so a bug there can never move this node's applied index back.
            let applied = backend.applied()?.last_applied;
            if meta.last_log_id < applied {
                return Err(StoreError::Snapshot(format!(
                    "a snapshot up to {:?} is older than the applied state ({applied:?}); \
                     not installed",
                    meta.last_log_id
                )));
            }
            backend.install_snapshot(&meta, source)
        })
        .await;
        crate::stats::report(
            crate::stats::Event::SnapshotInstalled,
            started.elapsed(),
            installed.is_ok(),
        );
        installed.map_err(|e| snap_err(e, ErrorVerb::Write))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<C>>, StorageError> {
        let backend = self.backend.clone();
        let current = run(self.backend.is_blocking(), move || {
            backend.current_snapshot()
        })
        .await
        .map_err(|e| snap_err(e, ErrorVerb::Read))?;
        Ok(current.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(data),
        }))
    }
}
