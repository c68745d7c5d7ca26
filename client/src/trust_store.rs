//! The client's memory of what it verified, across restarts: the last checkpoint it accepted,
//! per cluster, in a state file (like a trust-on-first-use store). A client configured with
//! [`ClientConfig::checkpoint_state`](crate::ClientConfig::checkpoint_state) starts from the
//! checkpoint it remembers, so a server that rewrote history while the client was down is
//! refused (`VerifyError::Fork` or `StaleCheckpoint`) instead of being trusted on first sight.
//!
//! The file is JSON, `{"format": "ron-ledger-client-state/1", "clusters": {"<cluster_id>":
//! <SignedCheckpoint>}}`, mode 0600, replaced atomically (written to a temporary file beside it,
//! synced, renamed, the directory synced) after every newly accepted checkpoint, under an
//! exclusive lock on `.<name>.lock` beside it so that clients sharing the file take turns
//! (waiting at most two seconds for it). It never goes back: a larger checkpoint of the cluster
//! saved by another client stays, one of the same size with another root is refused, and every
//! advance starts from the larger of the client's own checkpoint and the file's. A client configured without a cluster id trusts on
//! first use only while the file remembers no cluster; after that a server offering another
//! cluster is refused (`VerifyError::WrongCluster`). A file that cannot be read or parsed stops
//! verification with an error rather than being ignored.

use crate::error::Error;
use ledger::checkpoint::SignedCheckpoint;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How long a save waits for another client's lock on the file before it gives up.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The `format` of the state file this build reads and writes.
pub const STATE_FORMAT: &str = "ron-ledger-client-state/1";

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: String,
    #[serde(deserialize_with = "ledger::wire::unique_keys")]
    clusters: BTreeMap<String, SignedCheckpoint>,
}

/// The state file at one path.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    path: PathBuf,
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("checkpoint state file {}: {what}", path.display()))
}

impl CheckpointStore {
    /// The store kept in `path` (created on the first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn read(&self) -> Result<StateFile, Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StateFile {
                    format: STATE_FORMAT.into(),
                    clusters: BTreeMap::new(),
                })
            }
            Err(e) => return Err(invalid(&self.path, e)),
        };
        let mode = std::fs::metadata(&self.path)
            .map_err(|e| invalid(&self.path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(invalid(
                &self.path,
                format_args!("mode {:o}: it must be private (chmod 600)", mode & 0o777),
            ));
        }
        let file: StateFile = serde_json::from_str(&text).map_err(|e| invalid(&self.path, e))?;
        if file.format != STATE_FORMAT {
            return Err(invalid(
                &self.path,
                format_args!(
                    "format {:?}, this build reads {STATE_FORMAT:?}",
                    file.format
                ),
            ));
        }
        Ok(file)
    }

    /// The checkpoint remembered for `cluster`, if any.
    pub fn load(&self, cluster: &str) -> Result<Option<SignedCheckpoint>, Error> {
        Ok(self.read()?.clusters.remove(cluster))
    }

    /// The clusters the file remembers a checkpoint of, in name order.
    pub fn clusters(&self) -> Result<Vec<String>, Error> {
        Ok(self.read()?.clusters.into_keys().collect())
    }

    /// The directory the file is in, and its name.
    fn dir_and_name(&self) -> Result<(PathBuf, String), Error> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .ok_or_else(|| invalid(&self.path, "not a file name"))?;
        Ok((dir, name.to_string_lossy().into_owned()))
    }

    /// Remember `checkpoint` as the last accepted for its cluster (atomically, durably). Clients
    /// sharing the file take turns (an exclusive lock on `.<name>.lock` beside it), and the file
    /// never goes back: a larger checkpoint another client saved meanwhile stays, and one of the
    /// same size with another root is refused as the fork it is.
    pub fn save(&self, checkpoint: &SignedCheckpoint) -> Result<(), Error> {
        let (dir, name) = self.dir_and_name()?;
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(format!(".{name}.lock")))
            .and_then(|f| {
                // Never an unbounded wait (this runs on the caller's thread): another client's
                // save is short, so try for at most LOCK_WAIT, then fail the verification.
                let start = std::time::Instant::now();
                loop {
                    match rustix::fs::flock(
                        &f,
                        rustix::fs::FlockOperation::NonBlockingLockExclusive,
                    ) {
                        Ok(()) => return Ok(f),
                        Err(e)
                            if e == rustix::io::Errno::WOULDBLOCK
                                && start.elapsed() < LOCK_WAIT =>
                        {
                            std::thread::sleep(std::time::Duration::from_millis(5));
                        }
                        Err(e) => return Err(std::io::Error::from(e)),
                    }
                }
            })
            .map_err(|e| invalid(&self.path, format_args!("locking it: {e}")))?;
        let mut file = self.read()?;
        if let Some(stored) = file.clusters.get(&checkpoint.cluster_id) {
            if stored.tree_size > checkpoint.tree_size {
                return Ok(());
            }
            if stored.tree_size == checkpoint.tree_size && stored.root != checkpoint.root {
                return Err(invalid(
                    &self.path,
                    format_args!(
                        "it remembers another root of cluster {:?} at tree size {}: the \
                         cluster's history forked",
                        checkpoint.cluster_id, checkpoint.tree_size
                    ),
                ));
            }
        }
        file.clusters
            .insert(checkpoint.cluster_id.clone(), checkpoint.clone());
        let text = serde_json::to_vec_pretty(&file).map_err(|e| invalid(&self.path, e))?;
        static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let tmp = dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(&dir)?.sync_all()
        };
        let written = write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            invalid(&self.path, e)
        });
        drop(lock);
        written
    }
}
