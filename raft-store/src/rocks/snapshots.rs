//! Raft snapshots on RocksDB: snapshot files under `<data_dir>/snapshots` (mode 0600, written as
//! `*.tmp`, fsynced, then renamed to `<hash of the id>.snap` and the directory fsynced), the
//! current-snapshot record in the `meta` column family, and export of a consistent view (install
//! is `super::install`).
//!
//! This module owns the snapshot directory and the current-snapshot record. It never uses a
//! snapshot id from the leader as a path, never lets a build replace a newer current snapshot,
//! and never touches the state before a received snapshot has been read and checked whole.

use super::db::RocksBackend;
use super::layout::{CF_META, KEY_SNAPSHOT, SNAPSHOT_CFS};
use super::view::Digesting;
use crate::backend::{self, AppliedState, LogBackend, SnapshotMeta};
use crate::backup::{BackupSummary, HashingWriter};
use crate::error::StoreError;
use crate::record::{open, seal};
use crate::snapshot::{SnapshotData, SnapshotWriter};
use ledger::codec::Kind;
use rocksdb::WriteBatch;
use std::fs;
use std::io::{BufWriter, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// openraft's view of a snapshot file.
fn file_data(file: fs::File) -> SnapshotData {
    SnapshotData::File(tokio::fs::File::from_std(file))
}

impl RocksBackend {
    /// Export a consistent view (a RocksDB snapshot) as snapshot items; apply continues
    /// meanwhile.
    fn export<W: Write>(&self, out: W) -> Result<(AppliedState, W), StoreError> {
        let view = self.view();
        let applied = view.applied()?;
        let mut w = SnapshotWriter::versioned(
            out,
            backend::header(&applied, view.ledger_meta()?),
            view.cluster_version()?,
        )?;
        view.for_each_item(&SNAPSHOT_CFS, |item| w.push(&item))?;
        Ok((applied, w.finish()?))
    }

    /// A new, empty, private `<purpose>-<n>.tmp` file in the snapshot directory, and its `n`
    /// (unique while this store is open).
    pub(super) fn new_snapshot_file(
        &self,
        purpose: &str,
    ) -> Result<(u64, PathBuf, fs::File), StoreError> {
        let n = self.snapshots_built.fetch_add(1, Ordering::Relaxed);
        let path = self.snapshot_dir.join(format!("{purpose}-{n}.tmp"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        Ok((n, path, file))
    }

    /// The current snapshot's metadata and file name, as recorded.
    fn current_meta(&self) -> Result<Option<(SnapshotMeta, String)>, StoreError> {
        match self.meta_get(KEY_SNAPSHOT)? {
            None => Ok(None),
            Some(bytes) => {
                open(Kind::SnapshotMeta, CF_META, KEY_SNAPSHOT.as_bytes(), &bytes).map(Some)
            }
        }
    }

    /// Make the built snapshot `tmp` the current snapshot for `meta` — unless a newer one is
    /// already current — durably, and drop older files. Returns the current snapshot.
    fn keep_snapshot(
        &self,
        meta: &SnapshotMeta,
        tmp: &Path,
    ) -> Result<(SnapshotMeta, PathBuf), StoreError> {
        let _guard = self.snapshot_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((current, name)) = self.current_meta()? {
            if current.last_log_id > meta.last_log_id {
                let _ = fs::remove_file(tmp);
                return Ok((current, self.snapshot_dir.join(name)));
            }
        }
        let (name, path) = self.place_snapshot(meta, tmp)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_META)?,
            KEY_SNAPSHOT,
            seal(Kind::SnapshotMeta, &(meta, &name)),
        );
        self.write(batch, true)?;
        self.remove_other_snapshots(&path);
        Ok((meta.clone(), path))
    }

    /// `StateBackend::build_snapshot`: export to a file, fsync it and keep it as the current
    /// snapshot (unless a newer one is).
    pub(super) fn build_snapshot_file(&self) -> Result<(SnapshotMeta, SnapshotData), StoreError> {
        // Never export a state an install is replacing.
        let _gate = self.install_gate.read().unwrap_or_else(|p| p.into_inner());
        let (n, tmp, file) = self.new_snapshot_file("build")?;
        let (applied, out) = self.export(BufWriter::new(file))?;
        let file = out
            .into_inner()
            .map_err(|e| StoreError::Io(e.into_error()))?;
        file.sync_all()?;
        let meta = backend::snapshot_meta(&applied, n);
        let (meta, path) = self.keep_snapshot(&meta, &tmp)?;
        let file = fs::File::open(path)?;
        Ok((meta, file_data(file)))
    }

    /// `StateBackend::receive_buffer`: a new file to receive into (an abandoned one is removed).
    pub(super) fn receive_snapshot_file(&self) -> Result<SnapshotData, StoreError> {
        let (_, path, file) = self.new_snapshot_file("receive")?;
        let previous = self
            .receiving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(path);
        if let Some(abandoned) = previous {
            let _ = fs::remove_file(abandoned);
        }
        Ok(file_data(file))
    }

    /// `StateBackend::export_backup`: the stream of one view into an unlinked file in the
    /// snapshot directory, hashed as it is written, with the digest fed from the same items.
    pub(super) fn export_backup_file(
        &self,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<(BackupSummary, fs::File), StoreError> {
        let _gate = self.reading();
        let (_, tmp, file) = self.new_snapshot_file("backup")?;
        // Unlinked at once: only the open file is left, so nothing stays behind whatever
        // happens to the caller.
        fs::remove_file(&tmp)?;
        let view = self.view();
        let applied = view.applied()?;
        let ledger = view.ledger_meta()?;
        let cluster_version = view.cluster_version()?;
        let mut digest = Digesting::new(&ledger);
        let mut out = HashingWriter::new(BufWriter::new(file));
        let mut w = SnapshotWriter::versioned(
            &mut out,
            backend::header(&applied, ledger.clone()),
            cluster_version,
        )?;
        view.for_each_item(&SNAPSHOT_CFS, |item| {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(StoreError::Io(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "backup cancelled: its caller went away",
                )));
            }
            digest.feed(&item);
            w.push(&item)
        })?;
        w.finish()?;
        let (stream_bytes, stream_blake3, buffered) = out.finish();
        let mut file = buffered
            .into_inner()
            .map_err(|e| StoreError::Io(e.into_error()))?;
        file.rewind()?;
        let summary = BackupSummary {
            applied,
            ledger,
            digest: digest.finish(cluster_version),
            cluster_version,
            stream_bytes,
            stream_blake3,
        };
        Ok((summary, file))
    }

    /// Forget the current snapshot (its record and its file): a restore that rewrote the
    /// membership does this, so that the node builds a snapshot of its new state at start.
    pub fn forget_current_snapshot(&self) -> Result<(), StoreError> {
        let _guard = self.snapshot_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_META)?, KEY_SNAPSHOT);
        self.write(batch, true)?;
        self.remove_other_snapshots(&self.snapshot_dir);
        Ok(())
    }

    /// `StateBackend::current_snapshot`: the current snapshot's file, from the start.
    pub(super) fn current_snapshot_file(
        &self,
    ) -> Result<Option<(SnapshotMeta, SnapshotData)>, StoreError> {
        let _guard = self.snapshot_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some((meta, name)) = self.current_meta()? else {
            return Ok(None);
        };
        let file = fs::File::open(self.snapshot_dir.join(name))?;
        Ok(Some((meta, file_data(file))))
    }
}
