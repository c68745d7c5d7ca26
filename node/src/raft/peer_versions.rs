//! What cluster version each member runs, as this node last heard it from their peer answers
//! (the `x-ron-cluster-max` header; see the cluster-version module for the rule that uses it).

use raft_store::{NodeId, CLUSTER_VERSION};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// How recently a member must have answered for its version to count.
pub const FRESH_FOR: Duration = Duration::from_secs(3);
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
            .insert(peer, (crate::raft::rpc::runs(header), now_ns));
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

#[cfg(test)]
mod tests {
    use super::*;

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
