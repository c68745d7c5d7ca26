//! What this build is: the release (the crates' version), the commit it was built from, and the
//! formats it reads and writes — reported by `ron-ledger --version` and `/v1/status`, so an
//! operator can tell the nodes of a cluster apart during an upgrade.

use serde::Serialize;
use std::sync::OnceLock;

/// The release version.
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");
/// The commit the binary was built from (`build.rs`), or `unknown`.
pub const COMMIT: &str = env!("LEDGER_COMMIT");

/// The versions a node reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Versions {
    pub release: &'static str,
    pub commit: &'static str,
    /// The storage format of the data directory (`raft_store::STORAGE_FORMAT`) and the oldest
    /// it opens.
    pub storage_format: u32,
    pub storage_format_min: u32,
    /// The snapshot stream's format (`raft_store::snapshot::SNAPSHOT_FORMAT`).
    pub snapshot_format: u32,
    /// The encoding version every log entry, state record and forwarded batch carries
    /// (`ledger::codec::CODEC_VERSION`); records of a later version are refused.
    pub record_codec: u8,
    /// The oldest snapshot format read (written while the cluster has not advanced).
    pub snapshot_format_min: u32,
    /// The peer wire format spoken, and the oldest read (`crate::cluster_version`).
    pub peer_wire: u32,
    pub peer_wire_min: u32,
    /// The highest cluster version this build runs, and the lowest it joins.
    pub cluster_version_max: u32,
    pub cluster_version_min: u32,
}

/// This build's versions.
pub fn versions() -> Versions {
    Versions {
        release: RELEASE,
        commit: COMMIT,
        storage_format: raft_store::STORAGE_FORMAT,
        storage_format_min: raft_store::STORAGE_FORMAT_MIN,
        snapshot_format: raft_store::snapshot::SNAPSHOT_FORMAT,
        record_codec: ledger::codec::CODEC_VERSION,
        snapshot_format_min: raft_store::snapshot::SNAPSHOT_FORMAT_MIN,
        peer_wire: crate::raft::rpc::PEER_WIRE,
        peer_wire_min: crate::raft::rpc::PEER_WIRE_MIN,
        cluster_version_max: raft_store::CLUSTER_VERSION,
        cluster_version_min: raft_store::CLUSTER_VERSION_MIN,
    }
}

/// The text of `--version`: `0.2.0-dev (commit 1a2b3c4d5e6f; storage format 2 (reads 1),
/// snapshot format 4 (reads 3), record codec 1, peer wire 2 (reads 1), cluster version 1 to 2)`.
pub fn text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let v = versions();
        format!(
            "{} (commit {}; storage format {} (reads {}), snapshot format {} (reads {}), record codec {}, \
             peer wire {} (reads {}), cluster version {} to {})",
            v.release,
            v.commit,
            v.storage_format,
            v.storage_format_min,
            v.snapshot_format,
            v.snapshot_format_min,
            v.record_codec,
            v.peer_wire,
            v.peer_wire_min,
            v.cluster_version_min,
            v.cluster_version_max
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_text_names_the_release_and_every_format() {
        let t = super::text();
        assert!(t.starts_with(env!("CARGO_PKG_VERSION")), "{t}");
        for part in [
            "commit ",
            "storage format 2 (reads 1)",
            "snapshot format 4 (reads 3)",
            "record codec 1",
            "peer wire 2 (reads 1)",
            "cluster version 1 to 2",
        ] {
            assert!(t.contains(part), "{t} lacks {part}");
        }
    }
}
