//! A simulated disk for the Raft log with a durability model: every write first lands in a
//! volatile layer (the page cache); a sync copies it to the durable layer; a crash throws the
//! volatile layer away. The ledger state ([`crate::state::SimState`]) lives in the same store, as
//! the RocksDB backend's state column families do beside the log's, but without the write-ahead
//! log: its writes become durable only when the store flushes ([`SimLog::flushes`]: the periodic
//! write-back, which stands for RocksDB flushing its memtables, a purge, which flushes first,
//! and a snapshot install); a crash rolls it back to what it was at the last flush.
//!
//! Planted bug [`crate::Bug::AckBeforeSync`]: appends are acknowledged without reaching the
//! write-ahead log, the bug a wrong `WriteOptions` (`disable_wal`) would be: a later synced
//! write (a vote, a truncation) does not carry them, only a flush of the store does (the
//! periodic write-back, or the one a purge starts with).

use raft_store::{LogBackend, StoreError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Clone, Default)]
struct Layer {
    entries: BTreeMap<u64, Vec<u8>>,
    meta: BTreeMap<&'static str, Vec<u8>>,
}

enum Op {
    Append(Vec<(u64, Vec<u8>)>),
    Truncate(u64),
    Purge(u64, Vec<u8>),
    Meta(&'static str, Vec<u8>),
}

impl Layer {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Append(entries) => {
                for (i, e) in entries {
                    self.entries.insert(*i, e.clone());
                }
            }
            Op::Truncate(from) => {
                self.entries.split_off(from);
            }
            Op::Purge(upto, purged) => {
                self.entries = self.entries.split_off(&(upto + 1));
                self.meta
                    .insert(raft_store::backend::meta_key::PURGED, purged.clone());
            }
            Op::Meta(k, v) => {
                self.meta.insert(k, v.clone());
            }
        }
    }
}

#[derive(Default)]
struct Disk {
    visible: Layer,
    durable: Layer,
    pending: Vec<Op>,
    /// Appends that bypassed the write-ahead log (the planted bug): only the write-back
    /// makes them durable.
    unlogged: Vec<Op>,
    /// Write-backs so far: flushes of the whole store, the state's writes included.
    flushes: u64,
}

impl Disk {
    fn write(&mut self, op: Op, sync: bool) {
        self.visible.apply(&op);
        // A truncation or purge removes unlogged appends it covers, as it does visible ones.
        match &op {
            Op::Truncate(from) => self.unlogged.retain(
                |o| !matches!(o, Op::Append(e) if e.first().is_some_and(|(i, _)| i >= from)),
            ),
            Op::Purge(upto, _) => self.unlogged.retain(
                |o| !matches!(o, Op::Append(e) if e.last().is_some_and(|(i, _)| i <= upto)),
            ),
            _ => {}
        }
        self.pending.push(op);
        if sync {
            self.sync();
        }
    }

    fn write_unlogged(&mut self, op: Op) {
        self.visible.apply(&op);
        self.unlogged.push(op);
    }

    fn sync(&mut self) {
        for op in self.pending.drain(..) {
            self.durable.apply(&op);
        }
    }

    fn write_back(&mut self) {
        self.flushes += 1;
        self.sync();
        for op in self.unlogged.drain(..) {
            self.durable.apply(&op);
        }
    }
}

/// One node's simulated log disk. Shared between the node (through [`LogBackend`]) and the
/// simulation, which crashes and flushes it.
#[derive(Default)]
pub struct SimLog {
    disk: Mutex<Disk>,
    ack_before_sync: bool,
    failing: AtomicBool,
}

impl SimLog {
    /// A disk; with `ack_before_sync`, appends are not synced (the planted bug).
    pub fn new(ack_before_sync: bool) -> Self {
        Self {
            ack_before_sync,
            ..Self::default()
        }
    }

    /// Power loss: everything not synced is gone.
    pub fn crash(&self) {
        let mut d = self.lock();
        d.pending.clear();
        d.unlogged.clear();
        d.visible = d.durable.clone();
    }

    /// The periodic write-back: the store's memtables flushed (the state's writes with them) and
    /// the operating system's write-back of the log.
    pub fn flush(&self) {
        self.lock().write_back();
    }

    /// A synced write made through the write-ahead log by someone else (the state): the
    /// pending writes become durable with it.
    pub fn sync(&self) {
        self.lock().sync();
    }

    /// How many times the whole store was flushed: every state write made before the latest
    /// flush is durable.
    pub fn flushes(&self) -> u64 {
        self.lock().flushes
    }

    /// While set, every write fails with an I/O error (a failing disk).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Whether the disk is failing now.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Io(std::io::Error::other(
                "simulated disk failure",
            )));
        }
        Ok(())
    }
}

impl LogBackend for SimLog {
    fn is_blocking(&self) -> bool {
        false
    }

    fn append(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), StoreError> {
        self.check()?;
        if self.ack_before_sync {
            self.lock().write_unlogged(Op::Append(entries));
        } else {
            self.lock().write(Op::Append(entries), true);
        }
        Ok(())
    }

    fn read(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        Ok(self
            .lock()
            .visible
            .entries
            .range(start..end)
            .map(|(i, e)| (*i, e.clone()))
            .collect())
    }

    fn last(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .lock()
            .visible
            .entries
            .last_key_value()
            .map(|(i, e)| (*i, e.clone())))
    }

    fn truncate(&self, from: u64) -> Result<(), StoreError> {
        self.check()?;
        self.lock().write(Op::Truncate(from), true);
        Ok(())
    }

    fn purge(&self, upto: u64, purged: Vec<u8>) -> Result<(), StoreError> {
        self.check()?;
        let mut d = self.lock();
        // As the RocksDB backend does: flush the store (the state with it) before the entries a
        // crash would apply again are gone.
        d.write_back();
        d.write(Op::Purge(upto, purged), true);
        Ok(())
    }

    fn meta_get(&self, key: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().visible.meta.get(key).cloned())
    }

    fn meta_put(&self, key: &'static str, value: Vec<u8>, sync: bool) -> Result<(), StoreError> {
        self.check()?;
        self.lock().write(Op::Meta(key, value), sync);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_keeps_synced_writes_and_drops_the_rest() {
        let log = SimLog::new(false);
        log.append(vec![(1, b"a".to_vec())]).unwrap();
        log.meta_put("committed", b"1".to_vec(), false).unwrap();
        log.crash();
        assert_eq!(log.last().unwrap(), Some((1, b"a".to_vec())));
        assert_eq!(log.meta_get("committed").unwrap(), None);
    }

    #[test]
    fn with_the_planted_bug_an_acknowledged_append_is_lost_on_crash() {
        let log = SimLog::new(true);
        log.append(vec![(1, b"a".to_vec())]).unwrap();
        // A synced write does not carry it either.
        log.meta_put("vote", b"1".to_vec(), true).unwrap();
        log.crash();
        assert_eq!(log.last().unwrap(), None);
        log.append(vec![(1, b"a".to_vec())]).unwrap();
        log.flush();
        log.crash();
        assert_eq!(log.last().unwrap(), Some((1, b"a".to_vec())));
    }
}
