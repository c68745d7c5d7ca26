//! The cluster's effective version: the feature level every member has agreed to, through Raft.
//!
//! A build runs at most [`CLUSTER_VERSION`] and joins a cluster at [`CLUSTER_VERSION_MIN`] or
//! above (the previous release and this one). A cluster that never recorded a version is at
//! [`BASE`]: every store written by release 0.1.0, which had no such record.
//!
//! The version only moves up, and only through a committed [`crate::AdminCommand::SetClusterVersion`]
//! entry, which the leader proposes once every member has answered as a build that runs the new
//! version (the node's `cluster_version` module). Until then every node writes what the lowest
//! member reads: snapshots in the previous format, no new kind of log entry. An entry asking
//! for a version this build cannot run stops apply with [`StoreError::Unsupported`] rather than
//! applying it differently from its peers.
//!
//! The version is replicated state: committed with its entry's applied state, carried in
//! snapshots (format 4 and later) and, once above [`BASE`], folded into the state digest.

use crate::error::StoreError;
use ledger::merkle::Hash;

/// The highest cluster version this build runs.
pub const CLUSTER_VERSION: u32 = 2;
/// The lowest cluster version this build joins (the previous release's).
pub const CLUSTER_VERSION_MIN: u32 = 1;
/// The version of a cluster that never recorded one (release 0.1.0).
pub const BASE: u32 = 1;

/// What a `SetClusterVersion(target)` entry does against the `current` version: the new version
/// to record, or `Err(why)` for a command that changes nothing (the version never goes down or
/// stays put). A target this build cannot run is a storage error: the node stops applying
/// rather than diverge from members that can.
pub fn plan_advance(current: u32, target: u32) -> Result<Result<u32, String>, StoreError> {
    if target > CLUSTER_VERSION {
        return Err(StoreError::Unsupported(format!(
            "the cluster advanced to version {target}; this build runs versions \
             {CLUSTER_VERSION_MIN} to {CLUSTER_VERSION}: replace it with a newer release"
        )));
    }
    if target <= current {
        return Ok(Err(format!(
            "the cluster version is already {current} (asked for {target}); it never goes down"
        )));
    }
    Ok(Ok(target))
}

/// Check a version read from a store or a snapshot: within what this build runs.
pub fn check_supported(version: u32, source: &str) -> Result<u32, StoreError> {
    if (CLUSTER_VERSION_MIN..=CLUSTER_VERSION).contains(&version) {
        Ok(version)
    } else {
        Err(StoreError::Unsupported(format!(
            "{source} is at cluster version {version}; this build runs versions \
             {CLUSTER_VERSION_MIN} to {CLUSTER_VERSION}"
        )))
    }
}

/// The state digest with the cluster version folded in: unchanged at [`BASE`] (so a cluster of
/// the previous release and one that has not advanced agree on every digest), else a hash of
/// the digest and the version.
pub fn fold_digest(digest: Hash, version: u32) -> Hash {
    if version <= BASE {
        return digest;
    }
    let mut h = blake3::Hasher::new();
    h.update(b"ron-ledger/state-digest+cluster-version/v1");
    h.update(&digest.0);
    h.update(&version.to_le_bytes());
    Hash(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_only_moves_up_and_never_past_this_build() {
        assert_eq!(plan_advance(1, 2).unwrap(), Ok(2));
        assert!(plan_advance(2, 2).unwrap().is_err());
        assert!(plan_advance(2, 1).unwrap().is_err());
        let err = plan_advance(2, CLUSTER_VERSION + 1).unwrap_err();
        assert!(err.to_string().contains("replace it"), "{err}");
    }

    #[test]
    fn the_digest_changes_only_above_the_base_version() {
        let d = Hash([7; 32]);
        assert_eq!(fold_digest(d, BASE), d);
        assert_ne!(fold_digest(d, 2), d);
        assert_ne!(fold_digest(d, 2), fold_digest(d, 3));
    }

    #[test]
    fn versions_outside_what_this_build_runs_are_refused() {
        assert_eq!(check_supported(1, "x").unwrap(), 1);
        assert_eq!(
            check_supported(CLUSTER_VERSION, "x").unwrap(),
            CLUSTER_VERSION
        );
        assert!(check_supported(0, "x").is_err());
        assert!(check_supported(CLUSTER_VERSION + 1, "the store")
            .unwrap_err()
            .to_string()
            .contains("the store is at cluster version"));
    }
}
