//! Installing a snapshot on RocksDB in bounded memory. A received snapshot is checked whole
//! first (one streaming pass that writes nothing), then the state is replaced by streaming the
//! file a second time into write batches of at most [`INSTALL_BATCH_BYTES_MAX`] bytes.
//!
//! Atomicity comes from a redo record, not from one batch: before the first table is touched,
//! the `meta/install` record names the snapshot file (already fsynced and in place) and is
//! written synced. The chunks go to the memtables without the WAL; they are flushed to table
//! files (fsynced by RocksDB) before the last batch writes the ledger metadata, the applied
//! state, the cluster version and the current-snapshot record and deletes `meta/install` —
//! without the WAL too, like every state write, and flushed before the install returns. A
//! crash anywhere in
//! between leaves `meta/install` behind, and the next open replays the install from the file
//! before anything reads the state. While the state is being replaced, every state-machine
//! call waits on the install gate (`RocksBackend::install_gate`), so nothing reads a half
//! state.
//!
//! Memory during an install: one batch ([`INSTALL_BATCH_BYTES_MAX`]), one frame
//! ([`crate::snapshot::FRAME_BYTES_MAX`]), the Merkle frontier, and RocksDB's memtables (at most
//! [`super::MEMTABLES_BYTES_MAX`] for the whole store), whatever the snapshot's size: about
//! 300 MiB with RocksDB's caches and the program itself (`docs/BENCHMARKS.md`).

use super::db::{storage_format_at, RocksBackend, NODE_LEVEL_MIN};
use super::layout::{
    be128, expiry_key, history_key, index_key, node_key, CF_ACCOUNTS, CF_BALANCES, CF_EXPIRY,
    CF_HISTORY, CF_INDEX, CF_LEAVES, CF_META, CF_NODES, CF_STATE, CF_STATUSES, CF_TRANSFERS,
    KEY_END, KEY_INSTALL, KEY_LEDGER, KEY_SNAPSHOT, KEY_STORAGE_FORMAT, LEDGER_CFS,
};
use crate::backend::{AppliedState, SnapshotMeta, SnapshotSource};
use crate::error::StoreError;
use crate::record::{open, seal};
use crate::restore::{stream_snapshot, Record};
use crate::snapshot::SnapshotItem;
use ledger::codec::Kind;
use rocksdb::{FlushOptions, WriteBatch, WriteOptions};
use std::fs;
use std::io::{BufReader, Seek, Write};
use std::path::{Path, PathBuf};

/// Largest write batch an install builds before writing it (bytes of RocksDB's batch
/// representation): the part of an install's memory that is ours.
pub const INSTALL_BATCH_BYTES_MAX: usize = 4 << 20;

impl RocksBackend {
    /// `StateBackend::install_snapshot`: put `data` into a file of ours (fsynced), check it whole,
    /// then replace the state from it in bounded chunks (see the module docs).
    pub(super) fn install_snapshot_file(
        &self,
        meta: &SnapshotMeta,
        data: SnapshotSource,
    ) -> Result<(), StoreError> {
        let received = self
            .receiving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let tmp = match (data, received) {
            // The file openraft received into, still in its place (not one an abandoned
            // receive replaced).
            (SnapshotSource::File(f), Some(path)) if same_file(&f, &path) => {
                f.sync_all()?;
                path
            }
            (data, leftover) => {
                if let Some(p) = leftover {
                    let _ = fs::remove_file(p);
                }
                let (_, tmp, mut file) = self.new_snapshot_file("installed")?;
                match data {
                    SnapshotSource::Memory(bytes) => file.write_all(&bytes)?,
                    SnapshotSource::File(mut f) => {
                        f.rewind()?;
                        std::io::copy(&mut f, &mut file)?;
                    }
                }
                file.sync_all()?;
                tmp
            }
        };
        // Check everything before touching the state: nothing is written by this pass.
        let checked = fs::File::open(&tmp)
            .map_err(StoreError::from)
            .and_then(|f| stream_snapshot(meta, BufReader::new(f), |_| Ok(())));
        if let Err(e) = checked {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        // Lock order: the install gate, then the snapshot lock (builds take them in that order).
        let _gate = self.install_gate.write().unwrap_or_else(|p| p.into_inner());
        let _guard = self.snapshot_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (name, path) = self.place_snapshot(meta, &tmp)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_META)?,
            KEY_INSTALL,
            seal(Kind::SnapshotMeta, &(meta, &name)),
        );
        self.write(batch, true)?;
        self.replace_state(meta, &name, &path)?;
        self.remove_other_snapshots(&path);
        Ok(())
    }

    /// Finish an install a crash interrupted (`meta/install` present): replay it from its file.
    /// Called by `open` before anything reads the state.
    pub(super) fn resume_install(&self) -> Result<(), StoreError> {
        let Some(bytes) = self.db.get_cf(self.cf(CF_META)?, KEY_INSTALL)? else {
            return Ok(());
        };
        let (meta, name): (SnapshotMeta, String) =
            open(Kind::SnapshotMeta, CF_META, KEY_INSTALL.as_bytes(), &bytes)?;
        let path = self.snapshot_dir.join(&name);
        if !path.is_file() {
            return Err(StoreError::DataDir(format!(
                "an interrupted snapshot install cannot be replayed: its file {} is gone, so the \
                 ledger tables may be half replaced; replace this node's data (docs/OPERATIONS.md, \
                 \"A node that lost its data\")",
                path.display()
            )));
        }
        tracing::warn!(
            snapshot = %meta.snapshot_id,
            last_log_id = ?meta.last_log_id,
            "a snapshot install was interrupted: replaying it from {}",
            path.display()
        );
        self.replace_state(&meta, &name, &path)?;
        self.remove_other_snapshots(&path);
        Ok(())
    }

    /// Replace every replicated table from the checked snapshot file at `path` (see the module
    /// docs): chunks without the WAL, a flush, then one last batch, flushed too, that makes
    /// `meta` (file `name`) the current snapshot and removes `meta/install`.
    fn replace_state(
        &self,
        meta: &SnapshotMeta,
        name: &str,
        path: &Path,
    ) -> Result<AppliedState, StoreError> {
        // The state is replaced: nothing cached of the old one may be read again.
        self.accounts.clear();
        let mut unlogged = WriteOptions::default();
        unlogged.disable_wal(true);
        let mut batch = WriteBatch::default();
        for cf in LEDGER_CFS {
            batch.delete_range_cf(self.cf(cf)?, &[][..], &KEY_END[..]);
        }
        let file = fs::File::open(path)?;
        // The format the store is in afterwards: the snapshot's cluster version decides, as
        // apply's would have (`super::machine`'s `commit_admin`). It comes before every record.
        let mut format = 1;
        let streamed = stream_snapshot(meta, BufReader::new(file), |record| {
            if let Record::ClusterVersion(v) = record {
                format = storage_format_at(v);
                return Ok(());
            }
            self.stage_record(&mut batch, record, format)?;
            if batch.size_in_bytes() >= INSTALL_BATCH_BYTES_MAX {
                self.db.write_opt(std::mem::take(&mut batch), &unlogged)?;
            }
            Ok(())
        })?;
        self.db.write_opt(batch, &unlogged)?;
        // The chunks were not logged: put them in table files before the batch that ends the
        // install is logged.
        let mut flush = FlushOptions::default();
        flush.set_wait(true);
        let cfs = LEDGER_CFS
            .iter()
            .map(|cf| self.cf(cf))
            .collect::<Result<Vec<_>, _>>()?;
        self.db.flush_cfs_opt(&cfs, &flush)?;
        let mut last = WriteBatch::default();
        last.put_cf(
            self.cf(CF_STATE)?,
            KEY_LEDGER,
            seal(Kind::StateRecord, &streamed.ledger),
        );
        self.stage_cluster_version(&mut last, streamed.cluster_version)?;
        last.put_cf(
            self.cf(CF_META)?,
            KEY_STORAGE_FORMAT,
            seal(Kind::RaftMeta, &format),
        );
        self.stage_applied(&mut last, &streamed.applied)?;
        last.put_cf(
            self.cf(CF_META)?,
            KEY_SNAPSHOT,
            seal(Kind::SnapshotMeta, &(meta, name)),
        );
        last.delete_cf(self.cf(CF_META)?, KEY_INSTALL);
        // Like every state write, without the WAL, then flushed with everything else: a crash
        // before the flush leaves `meta/install`, and the next open replays the install.
        self.write_state(last, true)?;
        // Emptied again once the new state is whole: a read that began before the install (the
        // install gate keeps any from running across it today) cannot leave an old record.
        self.accounts.clear();
        self.format
            .store(format, std::sync::atomic::Ordering::Release);
        Ok(streamed.applied)
    }

    /// Add one checked snapshot record to `batch`: the same keys and records the apply path
    /// writes in storage `format` (`super::tables::RocksBackend::stage`).
    fn stage_record(
        &self,
        batch: &mut WriteBatch,
        record: Record,
        format: u32,
    ) -> Result<(), StoreError> {
        match record {
            Record::Ledger(item) => match item {
                SnapshotItem::Account(r) => {
                    batch.put_cf(self.cf(CF_ACCOUNTS)?, be128(r.account.id), state_record(&r))
                }
                SnapshotItem::Transfer(r) => batch.put_cf(
                    self.cf(CF_TRANSFERS)?,
                    be128(r.transfer.id),
                    state_record(&r),
                ),
                SnapshotItem::Status(id, s) => {
                    batch.put_cf(self.cf(CF_STATUSES)?, be128(id), state_record(&s))
                }
                SnapshotItem::Expiry(k) => {
                    batch.put_cf(self.cf(CF_EXPIRY)?, expiry_key(&k), state_record(&()))
                }
                // Format 2 reads history from the account indexes, which the snapshot also holds.
                SnapshotItem::History(..) if format >= 2 => {}
                SnapshotItem::History(k, id) => {
                    batch.put_cf(self.cf(CF_HISTORY)?, history_key(&k), state_record(&id))
                }
                SnapshotItem::Index(k, id) => {
                    batch.put_cf(self.cf(CF_INDEX)?, index_key(&k), state_record(&id))
                }
                SnapshotItem::Balance(k, e) => {
                    batch.put_cf(self.cf(CF_BALANCES)?, history_key(&k), state_record(&e))
                }
                _ => return Err(StoreError::Snapshot("unexpected item".into())),
            },
            Record::Leaf(index, data) => batch.put_cf(
                self.cf(CF_LEAVES)?,
                index.to_be_bytes(),
                seal(Kind::StateRecord, &data.as_bytes()),
            ),
            Record::Node(level, ..) if format >= 2 && level < NODE_LEVEL_MIN => {}
            Record::Node(level, index, hash) => batch.put_cf(
                self.cf(CF_NODES)?,
                node_key(level, index),
                state_record(&hash),
            ),
            Record::Revocation(r) => self.stage_revocations(batch, std::slice::from_ref(&r))?,
            Record::ClusterVersion(_) => {}
        }
        Ok(())
    }

    /// Move the checked file `tmp` to its place, `<hash of the id>.snap` (the id comes from the
    /// leader: never a path), and fsync the directory.
    pub(super) fn place_snapshot(
        &self,
        meta: &SnapshotMeta,
        tmp: &Path,
    ) -> Result<(String, PathBuf), StoreError> {
        let name = format!(
            "{}.snap",
            &blake3::hash(meta.snapshot_id.as_bytes()).to_hex()[..32]
        );
        let path = self.snapshot_dir.join(&name);
        fs::rename(tmp, &path)?;
        fs::File::open(&self.snapshot_dir)?.sync_all()?;
        Ok((name, path))
    }

    /// Remove every snapshot file but `keep`.
    pub(super) fn remove_other_snapshots(&self, keep: &Path) {
        let Ok(entries) = fs::read_dir(&self.snapshot_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p != keep && p.extension().is_some_and(|e| e == "snap") {
                let _ = fs::remove_file(p);
            }
        }
    }
}

/// Whether the open `file` is the file at `path`.
fn same_file(file: &fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A sealed state record.
fn state_record<T: serde::Serialize>(value: &T) -> Vec<u8> {
    seal(Kind::StateRecord, value)
}
