//! Pre-vote (the Raft dissertation, §9.6), which openraft 0.9 lacks: a node stands for election
//! only after a quorum of the voters it knows of said they would vote for it.
//!
//! Without it, a voter that cannot win keeps raising its term and knocks out leaders that can.
//! The simulation found one (seed 5933): a node crashed while the cluster went from {1,2,3} to
//! {2,4,5}; back up, it still knew only {1,2,3}, whose other members were gone, so it stood for
//! election every election timeout, forever. openraft draws each node's election timeout once,
//! at start, so the live members {4,5} — slower by their draw, and waiting a timeout after
//! each term they learned from it — never got ahead of its term, and every leader they elected
//! was deposed by its next answer; it never heard from a leader, so it never caught up.
//!
//! Here openraft's own timer still decides *when* to elect, but elections are enabled
//! (`Raft::runtime_config().elect`) only while the last pre-vote round succeeded. Every `tick`
//! a voter that has not heard from a leader for `election_timeout_min` asks the voters of its
//! membership (each half of a joint one) at `/raft/prevote`; a peer says yes when the
//! candidate's last log id is at least its own and it has not itself heard from a leader for
//! `election_timeout_min` — terms are not compared, so a node can never be shut out by a term it
//! has not learned. A leader says no only while a quorum still acknowledges it (openraft 0.9
//! never steps a leader down by itself), a node whose Raft is stopped (safe mode) always says
//! no, and a voter answering from a new data directory counts only if its log holds the
//! candidate's, as with real votes. A peer that does not know the route (404: release 0.1.0
//! during a rolling upgrade) counts as a yes, its old behaviour — so pre-vote protects a cluster
//! fully once every member runs this release. A pre-vote changes no state: it only decides
//! whether openraft may elect, so it cannot affect safety, only who stands and when.

use crate::node::Node;
use crate::raft::incarnation::Seen;
use crate::raft::rpc;
use crate::seam::Call;
use openraft::{LogId, ServerState};
use raft_store::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// `/raft/prevote`: would the receiver vote for this candidate now?
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreVoteRequest {
    /// The candidate's cluster; another cluster's question is refused.
    pub cluster_id: String,
    /// The candidate.
    pub candidate: NodeId,
    /// The candidate's last log id.
    pub last_log_id: Option<LogId<NodeId>>,
}

/// The answer to a [`PreVoteRequest`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PreVoteAnswer {
    /// Whether the receiver would vote for the candidate.
    pub granted: bool,
    /// Why not, when not.
    pub why: String,
    /// The receiver's last log id: a voter answering from a new data directory counts only if
    /// its log holds the candidate's, as with real votes ([`crate::raft::incarnation`]).
    pub last_log_id: Option<LogId<NodeId>>,
}

/// Whether this node's Raft can take part in elections at all (not stopped: safe mode or a
/// fatal error).
fn running(node: &Node) -> bool {
    node.safe.fault().is_none() && node.raft.metrics().borrow().running_state.is_ok()
}

/// Answer a candidate's pre-vote.
pub fn answer(node: &Node, req: &PreVoteRequest) -> PreVoteAnswer {
    let own = node.raft.data_metrics().borrow().last_log;
    let no = |why: String| PreVoteAnswer {
        granted: false,
        why,
        last_log_id: own,
    };
    if req.cluster_id != node.config.cluster_id {
        return no("the candidate belongs to another cluster".into());
    }
    if !running(node) {
        return no(format!("node {}'s Raft is stopped", node.id));
    }
    let quiet = Duration::from_millis(node.config.raft.election_timeout_min_ms);
    let (leads, acked_ms) = {
        let m = node.raft.metrics();
        let m = m.borrow();
        (m.state == ServerState::Leader, m.millis_since_quorum_ack)
    };
    // A leader refuses only while a quorum still acknowledges it: openraft 0.9 never steps a
    // leader down by itself, and one that cannot replicate must not block every election.
    if leads && acked_ms.is_some_and(|ms| u128::from(ms) < quiet.as_millis()) {
        return no(format!("node {} leads", node.id));
    }
    if node.leader_contact.recent(quiet) {
        return no(format!(
            "node {} heard from a leader within {} ms",
            node.id,
            quiet.as_millis()
        ));
    }
    if req.last_log_id < own {
        return no(format!(
            "the candidate's log ends at {:?}, before node {}'s at {own:?}",
            req.last_log_id, node.id
        ));
    }
    PreVoteAnswer {
        granted: true,
        why: String::new(),
        last_log_id: own,
    }
}

/// Whether `granted` (this node among them) holds a majority of every configuration in `joint`.
pub fn quorum(joint: &[BTreeSet<NodeId>], granted: &BTreeSet<NodeId>) -> bool {
    joint
        .iter()
        .all(|voters| voters.iter().filter(|v| granted.contains(v)).count() > voters.len() / 2)
}

/// One pre-vote round: whether a quorum of this node's membership would vote for it now.
pub async fn round(node: &Arc<Node>) -> bool {
    let (joint, addrs) = {
        let m = node.raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        let joint: Vec<BTreeSet<NodeId>> = membership.get_joint_config().clone();
        let addrs: Vec<(NodeId, String)> = membership
            .voter_ids()
            .filter(|id| *id != node.id)
            .filter_map(|id| membership.get_node(&id).map(|n| (id, n.peer_addr.clone())))
            .collect();
        (joint, addrs)
    };
    let mut granted = BTreeSet::from([node.id]);
    if quorum(&joint, &granted) {
        return true;
    }
    let candidate_last = node.raft.data_metrics().borrow().last_log;
    let req = PreVoteRequest {
        cluster_id: node.config.cluster_id.clone(),
        candidate: node.id,
        last_log_id: candidate_last,
    };
    let Ok(body) = rpc::encode(&req) else {
        return true;
    };
    let timeout = Duration::from_millis(
        (node.config.raft.election_timeout_min_ms / 2).min(node.config.raft.rpc_timeout_ms),
    );
    let mut calls = tokio::task::JoinSet::new();
    for (id, addr) in addrs {
        let (connector, body, peers) = (node.connector.clone(), body.clone(), node.clone());
        calls.spawn(async move {
            let answer = connector
                .call(Call {
                    method: "POST",
                    addr,
                    path: "/raft/prevote".into(),
                    headers: rpc::request_headers(),
                    body,
                    timeout,
                })
                .await;
            let yes = match answer {
                Ok(a) if a.status == 200 => match rpc::decode::<PreVoteAnswer>(&a.body) {
                    Ok(v) if v.granted => {
                        // As with real votes (`raft::network`): a voter answering from a new
                        // data directory counts only once its log holds the candidate's.
                        let seen = peers.incarnation.seen(id, a.incarnation.as_deref());
                        match seen {
                            Seen::NewStore { was, now } if v.last_log_id < candidate_last => {
                                crate::metrics::new_store_vote_refused();
                                if peers.leader_contact.time_to_warn() {
                                    tracing::error!(
                                        peer = id,
                                        was = %was,
                                        now = %now,
                                        "a voter answered a pre-vote from a new data directory: its vote is not counted; replace it (remove it, re-add it as a learner, promote it: docs/OPERATIONS.md)"
                                    );
                                }
                                false
                            }
                            _ => true,
                        }
                    }
                    _ => false,
                },
                // A release without pre-vote: it votes as it always did.
                Ok(a) => a.status == 404,
                Err(_) => false,
            };
            (id, yes)
        });
    }
    while let Some(done) = calls.join_next().await {
        if let Ok((id, true)) = done {
            granted.insert(id);
            if quorum(&joint, &granted) {
                calls.abort_all();
                return true;
            }
        }
    }
    false
}

/// Keep this node's elections enabled exactly while its pre-vote rounds succeed: a round every
/// `tick` once no leader has been heard from for `election_timeout_min`, until `stopped` fires.
pub fn spawn(node: Arc<Node>, tick: Duration, mut stopped: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let quiet = Duration::from_millis(node.config.raft.election_timeout_min_ms);
        let mut first = true;
        loop {
            // The first round runs at once: a restarted single voter elects itself without a
            // tick's delay.
            if !std::mem::take(&mut first) {
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = stopped.changed() => return,
                }
            }
            if *stopped.borrow() {
                return;
            }
            let (leads, votes) = {
                let m = node.raft.metrics();
                let m = m.borrow();
                let votes = m
                    .membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == node.id);
                (m.state == ServerState::Leader, votes)
            };
            if !votes || !running(&node) {
                continue;
            }
            if !leads && node.leader_contact.recent(quiet) {
                // A leader is heard: no election is due, and none may start before a round
                // has found the leader gone.
                node.raft.runtime_config().elect(false);
                continue;
            }
            let ok = leads || round(&node).await;
            let was_held = node.leader_contact.hold_back(!ok);
            if !ok {
                crate::metrics::prevote_failed();
                if !was_held {
                    tracing::info!(
                        "pre-vote: a quorum of the voters this node knows would not vote for it; it does not stand for election"
                    );
                }
            } else if was_held {
                tracing::info!(
                    "pre-vote: a quorum would vote for this node; it may stand for election"
                );
            }
            node.raft.runtime_config().elect(ok);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_quorum_is_a_majority_of_every_configuration() {
        let three = vec![set(&[1, 2, 3])];
        assert!(!quorum(&three, &set(&[1])));
        assert!(quorum(&three, &set(&[1, 2])));
        assert!(quorum(&[set(&[1])], &set(&[1])));
        assert!(!quorum(&[set(&[2])], &set(&[1])));
        // Joint: {1,2,3} and {2,4,5}; 1 and 2 are a majority of the first only.
        let joint = vec![set(&[1, 2, 3]), set(&[2, 4, 5])];
        assert!(!quorum(&joint, &set(&[1, 2])));
        assert!(quorum(&joint, &set(&[1, 2, 4])));
        // Even sizes need more than half.
        assert!(!quorum(&[set(&[1, 2, 3, 4])], &set(&[1, 2])));
        assert!(quorum(&[set(&[1, 2, 3, 4])], &set(&[1, 2, 3])));
    }
}
