//! Divergence detection while running. Every `[divergence] check_interval_ms` a node takes its
//! applied tree size `S` and asks each other member, over the peer listener, for its Merkle root
//! at `min(S, the peer's size)` (`/internal/root`); it compares each answer with its own root at
//! that size (any earlier size of its own tree can be computed, so nodes at different sizes
//! still compare). The tree commits to every event and its result, in order, so two nodes that
//! applied the same log have the same root at every size.
//!
//! Judging is by majority, so that the node that diverged is the one that stops, whichever it
//! is: when at least a quorum of the voters contradicts this node, it enters safe mode with
//! reason `root_mismatch` ([`crate::node::Node::enter_safe_mode`]: it stops its Raft instance —
//! no more votes, appends or leadership — refuses writes and linearizable reads, and keeps
//! serving its stale state, proofs and checkpoints for diagnosis). A disagreement short of a
//! quorum (a peer diverged, or too few answered to tell) is logged and counted, and the
//! contradicting peer judges itself. Every mismatch counts in `root_mismatches_total`.
//!
//! Not covered: a difference that changes no event and no result (a balance computed wrongly
//! in a way no later transfer's outcome reveals) is not in the tree; the tests and the
//! simulation compare the full state digest for that.

use crate::node::Node;
use crate::raft::rpc;
use crate::safe_mode::Fault;
use crate::seam::Call;
use ledger::Hash;
use raft_store::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// `/internal/root`: the asker's tree size and cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RootQuery {
    /// The asker's cluster; another cluster's question is refused.
    pub cluster_id: String,
    /// The asker's applied tree size.
    pub tree_size: u64,
}

/// The answer: the root at `tree_size`, the smaller of the asked size and the answerer's own.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RootAnswer {
    /// The size the root is of.
    pub tree_size: u64,
    /// The answerer's root at that size.
    pub root: Hash,
}

/// Answer a peer's [`RootQuery`] from this node's applied tree.
pub fn answer(node: &Node, q: &RootQuery) -> Result<RootAnswer, String> {
    if q.cluster_id != node.config.cluster_id {
        return Err("the asking node belongs to another cluster".into());
    }
    let own = node
        .state
        .ledger_meta()
        .map_err(|e| e.to_string())?
        .tree
        .size;
    let tree_size = q.tree_size.min(own);
    let root = node.state.root_at(tree_size).map_err(|e| e.to_string())?;
    Ok(RootAnswer { tree_size, root })
}

/// What one round of comparisons says about this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every peer that answered has this node's root.
    Agree,
    /// A quorum of the voters contradicts this node: it is the one that diverged.
    Outvoted(Vec<NodeId>),
    /// Some peers contradict it, fewer than a quorum of the voters.
    Disputed(Vec<NodeId>),
}

/// Judge one round: `disagreeing` are the peers whose root differed from this node's; `voters`
/// the voting members (this node among them or not).
pub fn judge(voters: &BTreeSet<NodeId>, disagreeing: &[NodeId]) -> Verdict {
    if disagreeing.is_empty() {
        return Verdict::Agree;
    }
    let quorum = voters.len() / 2 + 1;
    let voting = disagreeing.iter().filter(|id| voters.contains(id)).count();
    if voting >= quorum {
        Verdict::Outvoted(disagreeing.to_vec())
    } else {
        Verdict::Disputed(disagreeing.to_vec())
    }
}

/// Compare with every peer now: the voters, the peers whose root differed from this node's,
/// how many agreed, and this node's tree size. Peers that do not answer, answer for an empty
/// tree, or whose size this node cannot compute a root at are left out.
pub async fn compare(node: &Node) -> (BTreeSet<NodeId>, Vec<NodeId>, usize, u64) {
    let Ok(meta) = node.state.ledger_meta() else {
        return (BTreeSet::new(), Vec::new(), 0, 0);
    };
    let membership = node
        .raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .clone();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    if meta.tree.size == 0 {
        return (voters, Vec::new(), 0, 0);
    }
    let query = RootQuery {
        cluster_id: node.config.cluster_id.clone(),
        tree_size: meta.tree.size,
    };
    let Ok(body) = rpc::encode(&query) else {
        return (voters, Vec::new(), 0, meta.tree.size);
    };
    let timeout = Duration::from_millis(node.config.raft.rpc_timeout_ms);
    let mut disagreeing = Vec::new();
    let mut agreeing = 0;
    for (id, info) in membership.nodes() {
        if *id == node.id {
            continue;
        }
        let call = node.connector.call(Call {
            method: "POST",
            addr: info.peer_addr.clone(),
            path: "/internal/root".into(),
            headers: crate::raft::rpc::request_headers(),
            body: body.clone(),
            timeout,
        });
        let theirs = match call.await {
            Ok(a) if a.status == 200 => {
                // Every node learns every peer's incarnation here, not only the leader (see
                // `crate::raft::incarnation`).
                if let crate::raft::incarnation::Seen::NewStore { was, now } =
                    node.incarnation.seen(*id, a.incarnation.as_deref())
                {
                    tracing::warn!(peer = id, %was, %now, "a voter answers from a new data directory");
                }
                node.versions
                    .record(*id, a.runs.as_deref(), node.clock.now_ns());
                match rpc::decode::<Result<RootAnswer, String>>(&a.body) {
                    Ok(Ok(r)) => r,
                    _ => continue,
                }
            }
            _ => continue,
        };
        if theirs.tree_size == 0 {
            continue;
        }
        let Ok(mine) = node.state.root_at(theirs.tree_size) else {
            continue;
        };
        if mine == theirs.root {
            agreeing += 1;
        } else {
            crate::metrics::root_mismatch();
            tracing::warn!(
                peer = id,
                tree_size = theirs.tree_size,
                root = %mine,
                peer_root = %theirs.root,
                "a peer has another Merkle root at the same tree size"
            );
            disagreeing.push(*id);
        }
    }
    (voters, disagreeing, agreeing, meta.tree.size)
}

/// Compare with every peer now ([`compare`]) and act on the verdict: an outvoted node enters
/// safe mode.
pub async fn check_once(node: &Arc<Node>) -> Verdict {
    let (voters, disagreeing, _, size) = compare(node).await;
    let verdict = judge(&voters, &disagreeing);
    if let Verdict::Outvoted(peers) = &verdict {
        node.enter_safe_mode(Fault {
            reason: "root_mismatch".into(),
            message: format!(
                "this node's Merkle root differs from that of {} of {} voters (nodes {peers:?}) at this node's tree size {} or below; its state diverged: wipe its data and let it rejoin from its peers",
                peers.len(),
                voters.len(),
                size
            ),
        });
    }
    verdict
}

/// Check every `interval` until `stopped` fires or the node is in safe mode.
pub fn spawn(node: Arc<Node>, interval: Duration, mut stopped: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stopped.changed() => return,
            }
            if node.safe_mode().is_some() {
                return;
            }
            check_once(&node).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_quorum_of_voters_outvotes_a_node() {
        let three: BTreeSet<NodeId> = [1, 2, 3].into();
        assert_eq!(judge(&three, &[]), Verdict::Agree);
        assert_eq!(judge(&three, &[2]), Verdict::Disputed(vec![2]));
        assert_eq!(judge(&three, &[2, 3]), Verdict::Outvoted(vec![2, 3]));
        let five: BTreeSet<NodeId> = [1, 2, 3, 4, 5].into();
        assert_eq!(judge(&five, &[2, 3]), Verdict::Disputed(vec![2, 3]));
        assert_eq!(judge(&five, &[2, 3, 4]), Verdict::Outvoted(vec![2, 3, 4]));
        // A learner's disagreement is reported but never outvotes a voter.
        assert_eq!(judge(&three, &[2, 9]), Verdict::Disputed(vec![2, 9]));
    }
}
