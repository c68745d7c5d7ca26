//! The node's own safe-mode latch: a fault this node found in itself (today: `root_mismatch`,
//! from divergence detection) that makes it refuse writes and linearizable reads until an
//! operator acts. Raft stopping after a storage error is the other way into safe mode (see
//! `Node::safe_mode`).
//!
//! Entering is recorded in `data_dir/safe-mode.json` (0600, replaced atomically; on a full disk
//! after freeing the 64 KiB kept aside in `safe-mode.reserve`), so a restarted node comes back in safe mode instead of as if nothing happened.
//! The operator clears it by removing that file once the cause is gone (for `root_mismatch`:
//! the node's data was wiped and it rejoined from its peers).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why the node is in safe mode, and what it saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// A reason code (`root_mismatch`).
    pub reason: String,
    /// What was found, for the operator.
    pub message: String,
}

/// Bytes kept aside beside the marker, in `safe-mode.reserve`, so that the marker can still be
/// written when the disk is full: entering safe mode removes the reserve and writes again if
/// the first write fails for want of space. Made at every start where it is missing, of random
/// (incompressible) bytes.
const RESERVE_BYTES: usize = 64 << 10;

/// The reserve file beside `marker` (`safe-mode.reserve`).
fn reserve_path(marker: &Path) -> PathBuf {
    marker.with_extension("reserve")
}

/// Make the reserve beside `marker` if it is missing (best effort: a node that cannot is still
/// a node; it logs why).
fn keep_reserve(marker: &Path) {
    let reserve = reserve_path(marker);
    if reserve.exists() {
        return;
    }
    // Not zeros: a compressing file system (ZFS, btrfs) would store those in almost no space,
    // and removing the file would then free almost nothing.
    let mut filler = vec![0u8; RESERVE_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut filler);
    if let Err(e) = crate::security::files::replace_private(&reserve, &filler) {
        tracing::warn!(path = %reserve.display(), error = %e, "no space kept aside for the safe-mode record: on a full disk it may not be written");
    }
}

/// The latch: empty, or the first fault found (later ones are logged, not recorded).
#[derive(Debug, Default)]
pub struct SafeMode {
    fault: Mutex<Option<Fault>>,
    marker: Option<PathBuf>,
}

impl SafeMode {
    /// A latch recorded in `marker` (`None`: in memory only, as in amnesia mode), holding the
    /// fault recorded there by an earlier run, if any. An unreadable marker is a fault too: the
    /// node cannot tell what it recorded.
    pub fn open(marker: Option<PathBuf>) -> Self {
        let fault = marker.as_ref().and_then(|path| match std::fs::read(path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).unwrap_or_else(|e| Fault {
                reason: "safe_mode_marker".into(),
                message: format!("{} is unreadable ({e})", path.display()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Fault {
                reason: "safe_mode_marker".into(),
                message: format!("{} cannot be read ({e})", path.display()),
            }),
        });
        if let Some(path) = &marker {
            keep_reserve(path);
        }
        if let Some(f) = &fault {
            crate::metrics::safe_mode(&f.reason);
            tracing::error!(
                reason = %f.reason,
                message = %f.message,
                "starting in safe mode, as recorded before the restart; remove the marker file once the cause is gone"
            );
        }
        Self {
            fault: Mutex::new(fault),
            marker,
        }
    }

    /// The fault, if the node is in safe mode.
    pub fn fault(&self) -> Option<Fault> {
        self.lock().clone()
    }

    /// Enter safe mode for `fault` (logged at error level, counted, recorded durably where the
    /// disk allows). Returns false if the node was in safe mode already.
    pub fn enter(&self, fault: Fault) -> bool {
        let mut held = self.lock();
        if let Some(first) = held.as_ref() {
            tracing::error!(reason = %fault.reason, message = %fault.message, first = %first.reason, "another fault while in safe mode");
            return false;
        }
        tracing::error!(reason = %fault.reason, message = %fault.message, "entering safe mode: writes and linearizable reads are refused");
        crate::metrics::safe_mode(&fault.reason);
        if let Some(path) = &self.marker {
            let write = || {
                serde_json::to_vec(&fault)
                    .map_err(std::io::Error::other)
                    .and_then(|bytes| crate::security::files::replace_private(path, &bytes))
            };
            let mut written = write();
            // A full disk (or quota): free the space kept aside for this, then write again.
            let full = |e: &std::io::Error| {
                matches!(
                    e.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                )
            };
            if written.as_ref().is_err_and(full) && std::fs::remove_file(reserve_path(path)).is_ok()
            {
                written = write();
            }
            if let Err(e) = written {
                tracing::error!(path = %path.display(), error = %e, "safe mode not recorded on disk: a restart would forget it");
            }
        }
        *held = Some(fault);
        true
    }

    /// Remove the durable record (after the operator's re-check passed): the next start is a
    /// normal one. The latch itself stays set in this process, whose Raft has stopped.
    pub fn clear_record(&self) -> std::io::Result<()> {
        if let Some(path) = &self.marker {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
        }
        tracing::warn!("safe mode cleared by an operator; restart the node to rejoin");
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Fault>> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_fault_survives_a_restart_until_the_marker_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("safe-mode.json");
        let latch = SafeMode::open(Some(path.clone()));
        assert_eq!(latch.fault(), None);
        let fault = Fault {
            reason: "root_mismatch".into(),
            message: "root at tree size 7 differs".into(),
        };
        assert!(latch.enter(fault.clone()));
        assert!(!latch.enter(Fault {
            reason: "other".into(),
            message: String::new(),
        }));
        assert_eq!(latch.fault(), Some(fault.clone()));
        assert_eq!(SafeMode::open(Some(path.clone())).fault(), Some(fault));
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(
            SafeMode::open(Some(path.clone())).fault().unwrap().reason,
            "safe_mode_marker"
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(SafeMode::open(Some(path)).fault(), None);
        assert_eq!(SafeMode::open(None).fault(), None);
    }
}
