//! Backups and restore. A backup is a directory holding the snapshot stream of one consistent
//! view of the state (`state.rlsnap`, the format of [`crate::snapshot`]) and a manifest
//! (`manifest.json`) naming the cluster, the node, the applied log id, the tree size, the root,
//! the state digest, the formats, the release, and the size and BLAKE3 checksum of every file.
//!
//! Restoring checks every file against the manifest, installs the stream into a new store in a
//! staging directory beside the target (the same bounded-memory install a Raft snapshot takes,
//! which rebuilds the tree from the leaves and checks the root), recomputes the root from the
//! stored tree and the digest from the stored state and compares both with the manifest, and
//! only then moves the staging directory into place. Nothing is written into the target before
//! everything has been checked; a target that is not empty is refused.
//!
//! ```no_run
//! use raft_store::backup::{restore, RestoreMode};
//! let manifest = restore(
//!     "/backups/ledger-1".as_ref(),
//!     "/var/lib/ron-ledger".as_ref(),
//!     "prod",
//!     RestoreMode::Seed { node_id: 4 },
//! ).unwrap();
//! println!("restored tree size {}", manifest.tree_size);
//! ```

use crate::backend::StateBackend;
use crate::backend::{meta_key, AppliedState, LogBackend, SnapshotMeta, SnapshotSource};
use crate::error::StoreError;
use crate::record::seal;
use crate::rocks::{storage_format_at, RocksBackend};
use crate::snapshot::{SnapshotItem, SnapshotReader, SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_MIN};
use crate::types::{LogId, NodeId, NodeInfo, StoredMembership, Vote};
use ledger::codec::Kind;
use ledger::merkle::Hash;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The manifest's file name in a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The snapshot stream's file name in a backup directory.
pub const STREAM_FILE: &str = "state.rlsnap";
/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;
/// Largest manifest read (bytes): a manifest lists a handful of files.
pub const MANIFEST_BYTES_MAX: u64 = 64 << 10;

pub use crate::backend::BackupSummary;

/// One file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupFile {
    /// File name inside the backup directory (no path).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// BLAKE3 of the contents, lower-case hex.
    pub blake3: String,
}

/// A backup's manifest (`manifest.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub manifest_format: u32,
    /// The cluster the backup was taken from.
    pub cluster_id: String,
    /// The node that wrote the stream.
    pub node_id: NodeId,
    /// The last applied log id the backup covers.
    pub last_log_id: Option<LogId>,
    /// Leaves in the Merkle tree.
    pub tree_size: u64,
    /// Merkle root, hex.
    pub root: String,
    /// State digest (ledger tables and deny-list), hex.
    pub state_digest: String,
    /// Snapshot stream format of `state.rlsnap`.
    pub snapshot_format: u32,
    /// Storage format of the node that wrote it (informational: a restore writes this build's).
    pub storage_format: u32,
    /// Release (and commit) of the node that wrote it.
    pub release: String,
    /// Every file of the backup but the manifest.
    pub files: Vec<BackupFile>,
}

impl Manifest {
    /// The manifest of a backup whose stream `summary` describes.
    pub fn new(summary: &BackupSummary, cluster_id: &str, node_id: NodeId, release: &str) -> Self {
        Self {
            manifest_format: MANIFEST_FORMAT,
            cluster_id: cluster_id.to_string(),
            node_id,
            last_log_id: summary.applied.last_applied,
            tree_size: summary.ledger.tree.size,
            root: summary.ledger.root.to_hex(),
            state_digest: summary.digest.to_hex(),
            // Format 3 until the cluster advanced (`SnapshotWriter::versioned`).
            snapshot_format: if summary.cluster_version > crate::cluster_version::BASE {
                SNAPSHOT_FORMAT
            } else {
                SNAPSHOT_FORMAT_MIN
            },
            // A store is in format 2 from the cluster version that moves it (`crate::rocks`).
            storage_format: storage_format_at(summary.cluster_version),
            release: release.to_string(),
            files: vec![BackupFile {
                name: STREAM_FILE.to_string(),
                bytes: summary.stream_bytes,
                blake3: summary.stream_blake3.to_hex(),
            }],
        }
    }
}

/// Why a backup was not restored. Every message names what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The manifest is missing, unreadable, or not a manifest this build reads.
    #[error("backup manifest: {0}")]
    Manifest(String),
    /// A file is missing, extra, or does not match the manifest.
    #[error("backup file {name}: {reason}")]
    File {
        /// The file.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The restored state does not match what the manifest says.
    #[error("backup does not match its manifest: {what} is {found}, the manifest says {manifest}")]
    Mismatch {
        /// What was compared.
        what: &'static str,
        /// What the manifest says.
        manifest: String,
        /// What the restored state has.
        found: String,
    },
    /// The target directory cannot receive a restore.
    #[error("restore target: {0}")]
    Target(String),
    /// The stream is damaged or the store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A file operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// A writer that counts and hashes what passes through it.
pub(crate) struct HashingWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: blake3::Hasher::new(),
            bytes: 0,
        }
    }

    /// Bytes written, their BLAKE3, and the inner writer.
    pub(crate) fn finish(self) -> (u64, Hash, W) {
        (
            self.bytes,
            Hash(*self.hasher.finalize().as_bytes()),
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// BLAKE3 and size of a file, read in bounded chunks.
fn hash_file(path: &Path) -> Result<(u64, String), std::io::Error> {
    let mut file = fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hasher.finalize().to_hex().to_string()))
}

/// Read the manifest of the backup in `dir` and check every file against it: no file missing,
/// none extra, each of the size and checksum the manifest says.
pub fn check_backup(dir: &Path) -> Result<Manifest, BackupError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let file = fs::File::open(&manifest_path).map_err(|e| {
        BackupError::Manifest(format!("cannot open {}: {e}", manifest_path.display()))
    })?;
    let mut text = Vec::new();
    file.take(MANIFEST_BYTES_MAX + 1).read_to_end(&mut text)?;
    if text.len() as u64 > MANIFEST_BYTES_MAX {
        return Err(BackupError::Manifest(format!(
            "larger than {MANIFEST_BYTES_MAX} bytes"
        )));
    }
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| BackupError::Manifest(format!("not a backup manifest: {e}")))?;
    if manifest.manifest_format != MANIFEST_FORMAT {
        return Err(BackupError::Manifest(format!(
            "manifest format {}; this build reads format {MANIFEST_FORMAT}",
            manifest.manifest_format
        )));
    }
    if !(SNAPSHOT_FORMAT_MIN..=SNAPSHOT_FORMAT).contains(&manifest.snapshot_format) {
        return Err(BackupError::Manifest(format!(
            "snapshot format {}; this build reads formats {SNAPSHOT_FORMAT_MIN} to \
             {SNAPSHOT_FORMAT}",
            manifest.snapshot_format
        )));
    }
    let mut listed = BTreeSet::new();
    for f in &manifest.files {
        let plain = !f.name.is_empty()
            && f.name != "."
            && f.name != ".."
            && !f.name.contains('/')
            && f.name != MANIFEST_FILE;
        if !plain || !listed.insert(f.name.as_str()) {
            return Err(BackupError::Manifest(format!(
                "lists {:?}, which is not a file name of its own",
                f.name
            )));
        }
    }
    if !listed.contains(STREAM_FILE) {
        return Err(BackupError::Manifest(format!(
            "does not list {STREAM_FILE}"
        )));
    }
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != MANIFEST_FILE && !listed.contains(name.as_str()) {
            return Err(BackupError::File {
                name,
                reason: "is not listed in the manifest".into(),
            });
        }
    }
    for f in &manifest.files {
        let path = dir.join(&f.name);
        let (bytes, blake3) = hash_file(&path).map_err(|e| BackupError::File {
            name: f.name.clone(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                "is missing".into()
            } else {
                format!("cannot be read: {e}")
            },
        })?;
        if bytes != f.bytes {
            return Err(BackupError::File {
                name: f.name.clone(),
                reason: format!("has {bytes} bytes, the manifest says {}", f.bytes),
            });
        }
        if blake3 != f.blake3 {
            return Err(BackupError::File {
                name: f.name.clone(),
                reason: format!(
                    "has checksum {blake3}, the manifest says {} (the file is damaged)",
                    f.blake3
                ),
            });
        }
    }
    Ok(manifest)
}

/// How a restored store joins a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreMode {
    /// Keep the membership the backup carries: the node is then added to the running cluster
    /// as a learner and catches up from the leader's log, without a full snapshot transfer.
    /// Refused when `node_id` alone is a quorum of that membership (the backup's only voter):
    /// started, the node would elect itself and take writes the cluster never sees.
    Seed {
        /// This node's id.
        node_id: NodeId,
    },
    /// Disaster recovery: the restored node is the only voter of a new membership; the other
    /// nodes are added with the membership commands once it runs.
    NewCluster {
        /// This node's id.
        node_id: NodeId,
        /// This node's addresses.
        node: NodeInfo,
    },
}

/// Restore the backup in `backup` into the data directory `target` (absent or empty), for the
/// cluster `cluster_id`, joining as `mode` says. Returns the manifest it was checked against.
pub fn restore(
    backup: &Path,
    target: &Path,
    cluster_id: &str,
    mode: RestoreMode,
) -> Result<Manifest, BackupError> {
    let manifest = check_backup(backup)?;
    if manifest.cluster_id != cluster_id {
        return Err(BackupError::Manifest(format!(
            "the backup is of cluster {:?}, this node's cluster_id is {cluster_id:?}",
            manifest.cluster_id
        )));
    }
    check_target(target)?;
    let staging = staging_dir(target)?;
    if staging.exists() {
        // Left by an interrupted restore: it was never moved into place, nothing else uses it.
        fs::remove_dir_all(&staging)?;
    }
    let moved = restore_into(backup, &staging, &manifest, &mode).and_then(|()| {
        sync_tree(&staging)?;
        if target.exists() {
            fs::remove_dir(target)?;
        }
        fs::rename(&staging, target)?;
        Ok(())
    });
    if let Err(e) = moved {
        // Nothing was moved into place: the staging directory goes, whatever step failed.
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    sync_parent(target)?;
    Ok(manifest)
}

/// The target must be absent or an empty directory.
fn check_target(target: &Path) -> Result<(), BackupError> {
    if !target.exists() {
        return Ok(());
    }
    if !target.is_dir() {
        return Err(BackupError::Target(format!(
            "{} exists and is not a directory",
            target.display()
        )));
    }
    if fs::read_dir(target)?.next().is_some() {
        return Err(BackupError::Target(format!(
            "{} is not empty; restore only into a new or empty data directory (move the old one \
             aside first)",
            target.display()
        )));
    }
    Ok(())
}

/// `<parent>/.<name>.restoring`, beside the target so that the final rename stays on one
/// filesystem.
fn staging_dir(target: &Path) -> Result<PathBuf, BackupError> {
    let name = target.file_name().ok_or_else(|| {
        BackupError::Target(format!("{} has no directory name", target.display()))
    })?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(BackupError::Target(format!(
            "the parent of {} does not exist",
            target.display()
        )));
    }
    Ok(parent.join(format!(".{}.restoring", name.to_string_lossy())))
}

/// Install and check the backup into a new store at `staging`.
fn restore_into(
    backup: &Path,
    staging: &Path,
    manifest: &Manifest,
    mode: &RestoreMode,
) -> Result<(), BackupError> {
    let stream = backup.join(STREAM_FILE);
    let (header, reader) = SnapshotReader::new(fs::File::open(&stream)?)?;
    compare(
        "the stream's format",
        &manifest.snapshot_format,
        &reader.format(),
    )?;
    let SnapshotItem::Header {
        last_log_id,
        membership,
        ..
    } = header
    else {
        return Err(StoreError::Snapshot("missing header".into()).into());
    };
    compare(
        "the stream's last log id",
        &manifest.last_log_id,
        &last_log_id,
    )?;
    if let RestoreMode::Seed { node_id } = mode {
        let configs = membership.membership().get_joint_config();
        let alone = !configs.is_empty()
            && configs
                .iter()
                .all(|voters| voters.len() == 1 && voters.contains(node_id));
        if alone {
            return Err(BackupError::Manifest(format!(
                "node {node_id} is the only voter of the backup's membership: restored with \
                 --as-seed it would elect itself and take writes the cluster never sees; seed a \
                 node with another id, or restore with --new-cluster to start a new cluster"
            )));
        }
    }
    let store = RocksBackend::open(staging)?;
    let meta = SnapshotMeta {
        last_log_id,
        last_membership: membership,
        snapshot_id: format!("restored-{}", &manifest.files[0].blake3[..16]),
    };
    // The bounded install: checks the stream whole (leaves against the root), then writes.
    store.install_snapshot(&meta, SnapshotSource::File(fs::File::open(&stream)?))?;
    let (applied, ledger) = store.applied_with_meta()?;
    compare(
        "the applied log id",
        &manifest.last_log_id,
        &applied.last_applied,
    )?;
    compare("the tree size", &manifest.tree_size, &ledger.tree.size)?;
    compare(
        "the root in the stream",
        &manifest.root,
        &ledger.root.to_hex(),
    )?;
    let root = if ledger.tree.size == 0 {
        ledger.root
    } else {
        store.root_at(ledger.tree.size)?
    };
    compare(
        "the root recomputed from the stored tree",
        &manifest.root,
        &root.to_hex(),
    )?;
    compare(
        "the state digest recomputed from the stored state",
        &manifest.state_digest,
        &store.digest()?.to_hex(),
    )?;
    let last = applied.last_applied;
    let vote = match (mode, last) {
        (RestoreMode::NewCluster { node_id, node }, _) => {
            let voters: BTreeSet<NodeId> = [*node_id].into();
            let nodes: BTreeMap<NodeId, NodeInfo> = [(*node_id, node.clone())].into();
            let membership =
                StoredMembership::new(last, openraft::Membership::new(vec![voters], nodes));
            store.commit(
                None,
                &AppliedState {
                    last_applied: last,
                    membership,
                },
                true,
            )?;
            // The snapshot on disk names the old membership: drop it, so that the node builds
            // one of the new state at its first start.
            store.forget_current_snapshot()?;
            // Above every log id the restored state holds (openraft's rule: a vote is never
            // below the last log id's leader).
            last.map(|l| Vote::new(l.leader_id.term + 1, *node_id))
        }
        (RestoreMode::Seed { .. }, Some(l)) => {
            Some(Vote::new(l.leader_id.term, l.leader_id.node_id))
        }
        (RestoreMode::Seed { .. }, None) => None,
    };
    if let Some(vote) = vote {
        store.meta_put(meta_key::VOTE, seal(Kind::RaftMeta, &vote), true)?;
    }
    Ok(())
}

/// Refuse a difference between the manifest and what was restored.
fn compare<T: PartialEq + std::fmt::Debug>(
    what: &'static str,
    manifest: &T,
    found: &T,
) -> Result<(), BackupError> {
    if manifest == found {
        return Ok(());
    }
    Err(BackupError::Mismatch {
        what,
        manifest: format!("{manifest:?}"),
        found: format!("{found:?}"),
    })
}

/// fsync every file and directory under `dir`, and `dir` itself.
pub fn sync_tree(dir: &Path) -> Result<(), std::io::Error> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            sync_tree(&path)?;
        } else {
            fs::File::open(&path)?.sync_all()?;
        }
    }
    fs::File::open(dir)?.sync_all()
}

/// fsync the directory holding `path` (after a rename into it).
pub fn sync_parent(path: &Path) -> Result<(), std::io::Error> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::File::open(parent)?.sync_all()
}
