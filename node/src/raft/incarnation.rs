//! Data-directory identity ("incarnation"): a node that lost its Raft store (an emptied or
//! replaced data directory, same node id) has forgotten the votes it cast, and if its vote
//! counted it could help elect a leader that lacks committed entries. Every Raft store gets a
//! random incarnation when it is created (kept in the log's metadata, so it lives and dies with
//! the votes), every peer answer carries it (`x-ron-incarnation`), and every node remembers the
//! incarnation each peer first answered with (in its own log metadata). Nodes learn it from the
//! answers to their Raft RPCs and to the divergence check, which every node sends to every
//! member each `[divergence] check_interval_ms` — so followers know their peers too.
//!
//! A **voter** answering with another incarnation than remembered has lost its store. Its vote
//! is not counted (the answer is treated as a network error, with an error log line naming the
//! procedure) unless its log already holds at least what the candidate's does — it caught up
//! from a leader since, so it can no longer help elect a candidate missing committed entries.
//! A learner's new incarnation is simply remembered: the replacement procedure — remove the
//! member, re-add it as a learner, let it catch up, promote it — makes the new store known
//! before it votes again. Answers without the header (a node of an older release) are accepted.

use raft_store::{LogBackend, NodeId, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// The answer header carrying the answering node's incarnation.
pub const INCARNATION_HEADER: &str = "x-ron-incarnation";

/// Log metadata key of this store's incarnation.
const OWN_KEY: &str = "incarnation";
/// Log metadata key of the incarnations peers first answered with (JSON `{"id": "hex"}`).
const PEERS_KEY: &str = "peer_incarnations";

/// What an answer's incarnation means for the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Known (or first seen, or not sent, or the peer is not a voter): use the answer.
    Accept,
    /// A voter answered with a new store: do not count its vote.
    NewStore {
        /// The incarnation remembered.
        was: String,
        /// The one it answered with.
        now: String,
    },
}

/// This node's incarnation and what it knows of its peers'.
pub struct IncarnationBook {
    own: String,
    log: Arc<dyn LogBackend>,
    known: Mutex<BTreeMap<NodeId, String>>,
    voters: Mutex<BTreeSet<NodeId>>,
}

impl IncarnationBook {
    /// Read this store's incarnation (creating it, synced, on a new store) and the peers'.
    pub fn open(log: Arc<dyn LogBackend>) -> Result<Self, StoreError> {
        let own = match log.meta_get(OWN_KEY)? {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => {
                use rand::RngCore;
                let mut id = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut id);
                let own = ledger::wire::hex::encode(&id);
                log.meta_put(OWN_KEY, own.clone().into_bytes(), true)?;
                tracing::info!(incarnation = %own, "a new Raft store: this node's incarnation");
                own
            }
        };
        let known = match log.meta_get(PEERS_KEY)? {
            Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            None => BTreeMap::new(),
        };
        Ok(Self {
            own,
            log,
            known: Mutex::new(known),
            voters: Mutex::new(BTreeSet::new()),
        })
    }

    /// This store's incarnation.
    pub fn own(&self) -> &str {
        &self.own
    }

    /// The incarnation `peer` is known by (this node's own for itself), if known yet.
    pub fn known(&self, peer: NodeId, me: NodeId) -> Option<String> {
        if peer == me {
            return Some(self.own.clone());
        }
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&peer)
            .cloned()
    }

    /// The current voters (from the membership this node knows).
    pub fn set_voters(&self, voters: BTreeSet<NodeId>) {
        *self.voters.lock().unwrap_or_else(|p| p.into_inner()) = voters;
    }

    /// Judge `peer`'s answer carrying `incarnation` (`None`: not sent).
    pub fn seen(&self, peer: NodeId, incarnation: Option<&str>) -> Seen {
        let Some(now) = incarnation else {
            return Seen::Accept;
        };
        let voter = self
            .voters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&peer);
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        match known.get(&peer) {
            Some(was) if was == now => Seen::Accept,
            Some(was) if voter => Seen::NewStore {
                was: was.clone(),
                now: now.to_string(),
            },
            _ => {
                known.insert(peer, now.to_string());
                let bytes = serde_json::to_vec(&*known).unwrap_or_default();
                if let Err(e) = self.log.meta_put(PEERS_KEY, bytes, true) {
                    tracing::warn!(error = %e, peer, "peer incarnation not kept");
                }
                Seen::Accept
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_voter_with_a_new_store_is_refused_until_it_is_re_added_as_a_learner() {
        let log: Arc<dyn LogBackend> = Arc::new(raft_store::MemoryLog::new());
        let book = IncarnationBook::open(log.clone()).unwrap();
        let own = book.own().to_string();
        assert_eq!(own.len(), 32);
        book.set_voters([1, 2, 3].into());
        assert_eq!(book.seen(2, Some("aa")), Seen::Accept, "first seen");
        assert_eq!(book.seen(2, Some("aa")), Seen::Accept);
        assert_eq!(book.seen(2, None), Seen::Accept, "an older release");
        assert_eq!(
            book.seen(2, Some("bb")),
            Seen::NewStore {
                was: "aa".into(),
                now: "bb".into()
            }
        );
        // What is known survives a restart of this node (it lives in the log's metadata).
        let again = IncarnationBook::open(log).unwrap();
        assert_eq!(again.own(), own);
        again.set_voters([1, 2, 3].into());
        assert!(matches!(again.seen(2, Some("bb")), Seen::NewStore { .. }));
        // Removed and re-added as a learner: its new store becomes the known one.
        again.set_voters([1, 3].into());
        assert_eq!(again.seen(2, Some("bb")), Seen::Accept);
        again.set_voters([1, 2, 3].into());
        assert_eq!(again.seen(2, Some("bb")), Seen::Accept, "promoted");
    }
}
