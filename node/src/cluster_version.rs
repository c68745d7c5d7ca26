//! Versions between nodes: the peer wire format every peer message names, what each member runs,
//! and the leader's rule for raising the cluster's effective version
//! ([`raft_store::cluster_version`]).
//!
//! - Every peer request and answer carries `x-ron-wire` (the peer wire format, [`PEER_WIRE`])
//!   and `x-ron-cluster-max` (the highest cluster version the sender runs). A message without
//!   them comes from release 0.1.0: wire format 1, cluster version 1. A node accepts wire
//!   formats [`PEER_WIRE_MIN`] to [`PEER_WIRE`] and refuses any other with HTTP 400 naming both,
//!   before reading the body: never a silent misread.
//! - Each node remembers, per member, the highest cluster version its latest answer named and
//!   when ([`PeerVersions`]).
//! - The leader raises the effective version ([`spawn_advancer`]) once every member of the
//!   current membership (voters and learners: both receive every entry) has answered within the
//!   last [`FRESH_FOR`] as a build that runs a higher one, and only to the lowest such version.
//!   Until then no node writes anything a member of the previous release cannot read. A member
//!   that answers as an older build again (rolled back) holds the version where it is. The
//!   version never goes down: once it has advanced, a node of the previous release cannot
//!   follow the cluster (it cannot decode the entry that raised it) and must not be started in
//!   it (`docs/OPERATIONS.md`, "Upgrading").

use crate::node::Node;
use raft_store::{AdminCommand, Command, NodeId, CLUSTER_VERSION};
use std::sync::Arc;
use std::time::Duration;

/// How often the leader checks whether the cluster can advance.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);

pub use crate::raft::peer_versions::{PeerVersions, FRESH_FOR};
pub use crate::raft::rpc::{
    check_wire, request_headers, runs, PEER_WIRE, PEER_WIRE_MIN, RUNS_HEADER, WIRE_HEADER,
};

/// On the leader, every [`CHECK_EVERY`]: if every member runs a higher cluster version than the
/// effective one, propose raising it (one proposal at a time; a follower does nothing).
pub fn spawn_advancer(node: Arc<Node>, mut stopped: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut last_reason = String::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = stopped.changed() => return,
            }
            if *stopped.borrow() {
                return;
            }
            match advance_once(&node).await {
                Ok(Some(v)) => {
                    tracing::info!(version = v, "every member runs cluster version {v}: raised")
                }
                Ok(None) => last_reason.clear(),
                Err(why) if why != last_reason => {
                    tracing::info!(reason = %why, "the cluster version stays where it is");
                    last_reason = why;
                }
                Err(_) => {}
            }
        }
    });
}

/// One check: `Ok(Some(v))` when this leader raised the version to `v`, `Ok(None)` when there
/// is nothing to do (not the leader, or already at this build's version), `Err(why)` when the
/// members do not all run a higher version yet.
async fn advance_once(node: &Node) -> Result<Option<u32>, String> {
    if node.safe.fault().is_some() || !node.is_leader() {
        return Ok(None);
    }
    let current = node.state.cluster_version().map_err(|e| e.to_string())?;
    if current >= CLUSTER_VERSION {
        return Ok(None);
    }
    let members: Vec<NodeId> = {
        let m = node.raft.metrics().borrow().clone();
        let ids = m.membership_config.membership().nodes().map(|(id, _)| *id);
        ids.collect()
    };
    let target = node
        .versions
        .lowest(members, node.id, node.clock.now_ns())?;
    if target <= current {
        return Err(format!(
            "a member runs cluster version {target} at most (effective: {current})"
        ));
    }
    node.raft
        .client_write(Command::Admin(AdminCommand::SetClusterVersion(target)))
        .await
        .map_err(|e| format!("proposing cluster version {target}: {e}"))?;
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_formats_of_this_and_the_previous_release_are_read_others_refused() {
        assert_eq!(check_wire(None), Ok(1));
        assert_eq!(check_wire(Some("1")), Ok(1));
        assert_eq!(check_wire(Some("2")), Ok(2));
        let e = check_wire(Some("3")).unwrap_err();
        assert!(
            e.contains("peer wire format 3") && e.contains("1 to 2"),
            "{e}"
        );
        assert!(check_wire(Some("0")).is_err());
        assert!(check_wire(Some("two"))
            .unwrap_err()
            .contains("not a number"));
    }
}
