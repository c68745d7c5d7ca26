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
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The header naming the peer wire format of a request or answer.
pub const WIRE_HEADER: &str = "x-ron-wire";
/// The header naming the highest cluster version the sender runs.
pub const RUNS_HEADER: &str = "x-ron-cluster-max";
/// The peer wire format this build speaks: 2 adds the two version headers to the bincode bodies
/// of format 1 (release 0.1.0), which are unchanged.
pub const PEER_WIRE: u32 = 2;
/// The oldest peer wire format this build reads (the previous release's).
pub const PEER_WIRE_MIN: u32 = 1;
/// How recently a member must have answered for its version to count.
pub const FRESH_FOR: Duration = Duration::from_secs(3);
/// How often the leader checks whether the cluster can advance.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);

/// The headers this node puts on every peer request.
pub fn request_headers() -> Vec<(&'static str, String)> {
    vec![
        (WIRE_HEADER, PEER_WIRE.to_string()),
        (RUNS_HEADER, CLUSTER_VERSION.to_string()),
    ]
}

/// The peer wire format a request or answer names (`None`: the header is absent, release 0.1.0,
/// format 1), if this build reads it; else the refusal.
pub fn check_wire(header: Option<&str>) -> Result<u32, String> {
    let wire = match header {
        None => PEER_WIRE_MIN,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("peer wire format {v:?} is not a number"))?,
    };
    if (PEER_WIRE_MIN..=PEER_WIRE).contains(&wire) {
        Ok(wire)
    } else {
        Err(format!(
            "peer wire format {wire} is not read by this node (release {}, reads formats \
             {PEER_WIRE_MIN} to {PEER_WIRE}): run the same or adjacent releases in one cluster",
            crate::version::RELEASE
        ))
    }
}

/// The highest cluster version a peer's answer says it runs (`None` header: release 0.1.0, 1;
/// an unreadable one counts as 1, the lowest).
pub fn runs(header: Option<&str>) -> u32 {
    header
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(raft_store::cluster_version::BASE)
}

/// What this node has seen each member run, from their answers.
#[derive(Default)]
pub struct PeerVersions {
    seen: Mutex<BTreeMap<NodeId, (u32, u64)>>,
}

impl PeerVersions {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record an answer from `peer` at `now_ns` carrying `header` ([`RUNS_HEADER`]).
    pub fn record(&self, peer: NodeId, header: Option<&str>, now_ns: u64) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, (runs(header), now_ns));
    }

    /// The highest cluster version `peer` last said it runs (`None`: not heard from).
    pub fn runs(&self, peer: NodeId) -> Option<u32> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&peer)
            .map(|(v, _)| *v)
    }

    /// The version the cluster can advance to now, given its members (`me` runs
    /// [`CLUSTER_VERSION`]): the lowest version any member runs, counting only answers fresher
    /// than [`FRESH_FOR`] at `now_ns`; or why it cannot be known.
    pub fn lowest(
        &self,
        members: impl IntoIterator<Item = NodeId>,
        me: NodeId,
        now_ns: u64,
    ) -> Result<u32, String> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = FRESH_FOR.as_nanos() as u64;
        let mut lowest = CLUSTER_VERSION;
        for id in members {
            if id == me {
                continue;
            }
            match seen.get(&id) {
                Some((v, at)) if now_ns.saturating_sub(*at) <= fresh => lowest = lowest.min(*v),
                Some(_) => return Err(format!("node {id} has not answered lately")),
                None => return Err(format!("node {id} has not answered yet")),
            }
        }
        Ok(lowest)
    }
}

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

    #[test]
    fn the_lowest_version_counts_every_member_and_only_fresh_answers() {
        let book = PeerVersions::new();
        let s = 1_000_000_000u64;
        assert!(book.lowest([1, 2, 3], 1, 10 * s).is_err(), "nobody heard");
        book.record(2, Some("2"), 10 * s);
        assert!(book
            .lowest([1, 2, 3], 1, 10 * s)
            .unwrap_err()
            .contains("node 3"));
        book.record(3, None, 10 * s);
        assert_eq!(
            book.lowest([1, 2, 3], 1, 10 * s),
            Ok(1),
            "3 is release 0.1.0"
        );
        book.record(3, Some("2"), 11 * s);
        assert_eq!(book.lowest([1, 2, 3], 1, 11 * s), Ok(2));
        assert!(book
            .lowest([1, 2, 3], 1, 20 * s)
            .unwrap_err()
            .contains("not answered lately"));
        assert_eq!(book.runs(3), Some(2));
        assert_eq!(book.runs(4), None);
    }
}
