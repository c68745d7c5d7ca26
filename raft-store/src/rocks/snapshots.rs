//! Raft snapshots on RocksDB: snapshot files under `<data_dir>/snapshots` (mode 0600, written as
//! `*.tmp`, fsynced, then renamed to `<hash of the id>.snap` and the directory fsynced), the
//! current-snapshot record in the `meta` column family, export of a consistent view, and install
//! — one atomic write that replaces every replicated table, the applied state and the
//! current-snapshot record together.
//!
//! This module owns the snapshot directory and the current-snapshot record. It never uses a
//! snapshot id from the leader as a path, never lets a build replace a newer current snapshot,
//! and never touches the state before a received snapshot has been read and checked whole.

use super::db::RocksBackend;
use super::layout::{CF_META, KEY_END, KEY_SNAPSHOT, LEDGER_CFS, SNAPSHOT_CFS};
use crate::backend::{self, AppliedState, LogBackend, SnapshotMeta, SnapshotSource};
use crate::error::StoreError;
use crate::record::{open, seal};
use crate::restore::read_snapshot;
use crate::snapshot::{SnapshotData, SnapshotWriter};
use ledger::codec::Kind;
use rocksdb::WriteBatch;
use std::fs;
use std::io::{BufReader, BufWriter, Seek, Write};
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
    fn new_snapshot_file(&self, purpose: &str) -> Result<(u64, PathBuf, fs::File), StoreError> {
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

    /// Make `tmp` the current snapshot for `meta` — unless a newer one is already current and
    /// this is only a build — durably, and drop older files. `with` (an install's state
    /// replacement) is written in the same atomic batch as the new current-snapshot record, so a
    /// crash never leaves state and snapshot disagreeing. Returns the current snapshot.
    fn keep_snapshot(
        &self,
        meta: &SnapshotMeta,
        tmp: &Path,
        with: Option<WriteBatch>,
    ) -> Result<(SnapshotMeta, PathBuf), StoreError> {
        let _guard = self.snapshot_lock.lock().unwrap_or_else(|p| p.into_inner());
        if with.is_none() {
            if let Some((current, name)) = self.current_meta()? {
                if current.last_log_id > meta.last_log_id {
                    let _ = fs::remove_file(tmp);
                    return Ok((current, self.snapshot_dir.join(name)));
                }
            }
        }
        // The id comes from the leader: never use it as a path.
        let name = format!(
            "{}.snap",
            &blake3::hash(meta.snapshot_id.as_bytes()).to_hex()[..32]
        );
        let path = self.snapshot_dir.join(&name);
        fs::rename(tmp, &path)?;
        fs::File::open(&self.snapshot_dir)?.sync_all()?;
        let mut batch = with.unwrap_or_default();
        batch.put_cf(
            self.cf(CF_META)?,
            KEY_SNAPSHOT,
            seal(Kind::SnapshotMeta, &(meta, &name)),
        );
        self.write(batch, true)?;
        for entry in fs::read_dir(&self.snapshot_dir)? {
            let p = entry?.path();
            if p != path && p.extension().is_some_and(|e| e == "snap") {
                let _ = fs::remove_file(p);
            }
        }
        Ok((meta.clone(), path))
    }

    /// `StateBackend::build_snapshot`: export to a file, fsync it and keep it as the current
    /// snapshot (unless a newer one is).
    pub(super) fn build_snapshot_file(&self) -> Result<(SnapshotMeta, SnapshotData), StoreError> {
        let (n, tmp, file) = self.new_snapshot_file("build")?;
        let (applied, out) = self.export(BufWriter::new(file))?;
        let file = out
            .into_inner()
            .map_err(|e| StoreError::Io(e.into_error()))?;
        file.sync_all()?;
        let meta = backend::snapshot_meta(&applied, n);
        let (meta, path) = self.keep_snapshot(&meta, &tmp, None)?;
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

    /// `StateBackend::install_snapshot`: read and check `data` whole, put its file in place, then
    /// replace the state in one atomic write.
    pub(super) fn install_snapshot_file(
        &self,
        meta: &SnapshotMeta,
        data: SnapshotSource,
    ) -> Result<(), StoreError> {
        // Read and check everything before touching the state.
        let mut restored = match &data {
            SnapshotSource::Memory(bytes) => read_snapshot(meta, &bytes[..])?,
            SnapshotSource::File(f) => read_snapshot(meta, BufReader::new(f))?,
        };
        restored.changes.first_leaf = 0;
        // The snapshot file goes into place first (fsynced); then one atomic write replaces the
        // whole ledger state, the applied state and the current-snapshot record.
        let received = self
            .receiving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let tmp = match (data, received) {
            (SnapshotSource::File(f), Some(path)) => {
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
        let mut batch = WriteBatch::default();
        for cf in LEDGER_CFS {
            batch.delete_range_cf(self.cf(cf)?, &[][..], &KEY_END[..]);
        }
        self.stage(&mut batch, &restored.changes)?;
        self.stage_revocations(&mut batch, &restored.revoked)?;
        self.stage_cluster_version(&mut batch, restored.cluster_version)?;
        self.stage_applied(&mut batch, &restored.applied)?;
        self.keep_snapshot(meta, &tmp, Some(batch))?;
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
