//! One ron-ledger node: the state every handler shares ([`Node`]) and what it does for them —
//! who leads, safe mode, the deny-list, and submitting a prevalidated request to the sequencer
//! (here when this node leads, forwarded to the leader otherwise). Start-up and the listeners
//! are in `start`; this module never imports a handler.

use crate::checkpoints::Checkpoints;
use crate::config::Config;
use crate::error::ApiError;
use crate::pipeline::sequencer::{Receipt, Sequencer};
use crate::raft::rpc::{self, ForwardRequest};
use crate::seam::{Call, CallError, Clock, Connector};
use crate::security::capabilities::Auth;
use ledger::Operation;
use openraft::{Raft, ServerState};
use raft_store::{LogBackend, NodeId, NodeInfo, StateBackend, TypeConfig};
use std::sync::Arc;
use std::time::Duration;

/// The capabilities a write was accepted with on the node that received it (token ids only),
/// passed to the leader with a forwarded write. All `None` when capabilities are off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The request's capability (`Authorization`).
    pub token_id: Option<[u8; 16]>,
    /// A reversal's second approval (`X-Ron-Approval`).
    pub approval_id: Option<[u8; 16]>,
}

/// The state shared by every handler.
pub struct Node {
    /// This node's id.
    pub id: NodeId,
    /// The configuration it started with.
    pub config: Config,
    /// The Raft instance.
    pub raft: Raft<TypeConfig>,
    /// Ledger state, for reads.
    pub state: Arc<dyn StateBackend>,
    /// The log backend, for the committed index.
    pub log: Arc<dyn LogBackend>,
    /// The sequencer queue (used while this node leads).
    pub sequencer: Sequencer,
    /// How this node reaches others (forwarded writes, proxied reads, Raft RPC).
    pub connector: Arc<dyn Connector>,
    /// This node's signed checkpoints.
    pub checkpoints: Arc<Checkpoints>,
    /// Capability verification for writes and admin operations.
    pub auth: Arc<Auth>,
    /// What time it is (the system clock; simulated time in the simulation).
    pub clock: Arc<dyn Clock>,
    /// The faults this node found in itself (see [`crate::safe_mode`]).
    pub safe: crate::safe_mode::SafeMode,
    /// This store's incarnation and the peers' (see [`crate::raft::incarnation`]).
    pub incarnation: Arc<crate::raft::incarnation::IncarnationBook>,
    /// What cluster version each member runs (see the cluster-version module).
    pub versions: Arc<crate::raft::peer_versions::PeerVersions>,
    /// While this node leads: `(term, index)`, the last log index it held when its reads in that
    /// term began (see `http::consistency::linearize`).
    pub read_floor: std::sync::Mutex<(u64, u64)>,
    /// When this node last heard from a leader, and whether its pre-vote holds its elections
    /// back (`raft::prevote`).
    pub leader_contact: crate::raft::leader_contact::LeaderContact,
    /// Slots of the reads that hold memory or a task for long: event streams and exports
    /// (`limits.event_streams_max`, `limits.exports_max`).
    pub heavy_reads: HeavyReads,
}

/// Bounds on the reads that hold memory or a task for long. A read that finds no free slot is
/// 429 `busy` with `Retry-After`, not queued.
pub struct HeavyReads {
    streams: Arc<tokio::sync::Semaphore>,
    exports: Arc<tokio::sync::Semaphore>,
    /// One online backup at a time: each writes a copy of the whole state to disk first.
    backups: Arc<tokio::sync::Semaphore>,
}

impl HeavyReads {
    /// `streams` event streams and `exports` exports at once.
    pub fn new(streams: usize, exports: usize) -> Self {
        Self {
            streams: Arc::new(tokio::sync::Semaphore::new(streams)),
            exports: Arc::new(tokio::sync::Semaphore::new(exports)),
            backups: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// A slot for one event stream, held until the stream ends.
    pub fn stream(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.streams.clone().try_acquire_owned().map_err(|_| {
            ApiError::busy("this node serves limits.event_streams_max event streams already")
        })
    }

    /// The slot of the node's one online backup, held until its stream has been sent.
    pub fn backup(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.backups
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::busy("this node is taking a backup already (one at a time)"))
    }

    /// A slot for one export, held while it is built.
    pub fn export(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.exports
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::busy("this node builds limits.exports_max exports already"))
    }
}

impl Node {
    /// The leader this node can vouch for ([`Node::leader_now`]) and its address: where writes
    /// and admin calls are relayed. A leader not heard from lately is not relayed to (a paused
    /// or cut-off one would hold the request until its timeout).
    pub fn leader(&self) -> Option<(NodeId, NodeInfo)> {
        let leader = self.leader_now()?;
        let m = self.raft.metrics();
        let m = m.borrow();
        let info = m.membership_config.membership().get_node(&leader)?.clone();
        Some((leader, info))
    }

    /// Now, in whole seconds since the Unix epoch (capability validity is checked in seconds).
    pub fn now_secs(&self) -> u64 {
        self.clock.now_ns() / 1_000_000_000
    }

    /// `cap_revoked` if the token of `grant` is on the deny-list this node has applied.
    pub fn check_not_revoked(&self, grant: &ledger::capability::Grant) -> Result<(), ApiError> {
        self.check_token_not_revoked(&grant.id).inspect_err(|_| {
            tracing::info!(reason = "cap_revoked", kid = %grant.kid, "capability refused");
        })
    }

    /// The current leader's id, if this node can vouch for it now ([`Node::leader_now`]).
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_now()
    }

    /// How long this node vouches for a leader without fresh proof that it still leads: twice
    /// the longest election timeout.
    pub fn leader_vouch_window(&self) -> Duration {
        Duration::from_millis(self.config.raft.election_timeout_max_ms.saturating_mul(2))
    }

    /// The leader as this node can vouch for it now. openraft 0.9 keeps a leader leading, and a
    /// follower keeps naming its last leader, however long the rest of the cluster is silent;
    /// so this node names itself only while a quorum acknowledged it within
    /// [`Node::leader_vouch_window`] (as of openraft's last metrics report, plus the time since
    /// it), and another node only while an append or a snapshot chunk from a leader at least as
    /// new as this node's vote arrived within that window. Readiness, `/v1/status`,
    /// `raft_is_leader` and the leader hints of answers all use it: a leader cut off from its
    /// quorum, or a follower whose leader died, reports no leader.
    pub fn leader_now(&self) -> Option<NodeId> {
        let (state, leader, acked_ms) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.state, m.current_leader, m.millis_since_quorum_ack)
        };
        let window = self.leader_vouch_window();
        if state == ServerState::Leader {
            // The age as of openraft's last report, plus the time since: a core stuck in a
            // storage call stops reporting, and must not go on vouching for itself.
            let stale = self.leader_contact.since_report().as_millis();
            return acked_ms
                .filter(|ms| u128::from(*ms).saturating_add(stale) < window.as_millis())
                .map(|_| self.id);
        }
        leader.filter(|l| *l != self.id && self.leader_contact.recent(window))
    }

    /// Whether this node is the leader now.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// `Some(why)` when the node refuses writes: a fault it found in itself (such as
    /// `root_mismatch`), or Raft stopped after a storage fault.
    pub fn safe_mode(&self) -> Option<String> {
        if let Some(f) = self.safe.fault() {
            return Some(format!("{}: {}", f.reason, f.message));
        }
        match &self.raft.metrics().borrow().running_state {
            Ok(()) => None,
            Err(fatal) => Some(format!("raft stopped: {fatal}")),
        }
    }

    /// The reason code of the safe mode, if the node is in it (`raft_stopped` when Raft
    /// stopped after a storage fault).
    pub fn safe_mode_reason(&self) -> Option<String> {
        if let Some(f) = self.safe.fault() {
            return Some(f.reason);
        }
        self.raft
            .metrics()
            .borrow()
            .running_state
            .is_err()
            .then(|| "raft_stopped".to_string())
    }

    /// Enter safe mode for `fault` ([`crate::safe_mode::SafeMode::enter`]) and stop this node's
    /// Raft instance: it no longer votes, appends or leads, so a majority elsewhere carries on,
    /// and it applies nothing past the fault. The one way into safe mode: divergence detection,
    /// a storage fault that stopped Raft, and a checksum failure met by a read all come here.
    pub fn enter_safe_mode(&self, fault: crate::safe_mode::Fault) {
        if self.safe.enter(fault) {
            self.stop_raft();
        }
    }

    /// Stop Raft (safe mode), in the background; a second call is harmless.
    pub(crate) fn stop_raft(&self) {
        let raft = self.raft.clone();
        tokio::spawn(async move {
            if let Err(e) = raft.shutdown().await {
                tracing::warn!(error = %e, "raft did not stop cleanly");
            }
        });
    }

    /// Whether `token_id` is on the capability deny-list, as of this node's applied state (a
    /// point lookup; write prevalidation calls it for every request's token).
    pub fn is_revoked(&self, token_id: &[u8; 16]) -> Result<bool, ApiError> {
        self.state
            .revocation(token_id)
            .map(|r| r.is_some())
            .map_err(ApiError::storage)
    }

    /// Sequence a prevalidated request: here if this node leads, else at the leader.
    /// `accepted` names the capabilities the request was accepted with (checked against the
    /// deny-list again on the leader, and for a reversal, dual control again); `corr_id` the
    /// request's correlation id, carried to the leader with a forwarded write.
    pub async fn submit(
        &self,
        op: Operation,
        accepted: Accepted,
        corr_id: &str,
    ) -> Result<Receipt, ApiError> {
        if let Some(reason) = self.safe_mode() {
            return Err(ApiError::safe_mode(reason));
        }
        if self.is_leader() {
            return self.submit_local(op).await;
        }
        match self.leader() {
            Some((_, info)) => self.forward(&info, op, accepted, corr_id).await,
            None => Err(ApiError::no_leader()),
        }
    }

    /// What a forwarded write must carry for the leader to check it again: the ids of the
    /// capabilities it was accepted with. A reversal accepted under dual control is checked again
    /// on the leader: two tokens, of two holders, neither revoked.
    pub fn check_forwarded(&self, op: &Operation, accepted: Accepted) -> Result<(), ApiError> {
        if let Some(id) = accepted.token_id {
            self.check_token_not_revoked(&id)?;
        }
        if self.auth.enabled() && crate::security::capabilities::has_reversal(op) {
            crate::security::capabilities::dual_control(accepted.token_id, accepted.approval_id)?;
        }
        if let Some(id) = accepted.approval_id {
            self.check_token_not_revoked(&id)?;
        }
        Ok(())
    }

    /// `cap_revoked` if `token_id` is on the deny-list this node has applied.
    pub fn check_token_not_revoked(&self, token_id: &[u8; 16]) -> Result<(), ApiError> {
        if self.is_revoked(token_id)? {
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "cap_revoked",
                "this capability has been revoked",
            ));
        }
        Ok(())
    }

    /// Sequence on this node, which must be the leader.
    pub async fn submit_local(&self, op: Operation) -> Result<Receipt, ApiError> {
        if !self.is_leader() {
            return Err(ApiError::no_leader());
        }
        // An idle leader no quorum has acknowledged lately (cut off from its voters) would hold
        // the write until the write timeout and answer "outcome unknown"; refusing it now is
        // certain: nothing was proposed. While its earlier writes are still queued or in flight
        // (openraft may be in a slow log append, reporting nothing meanwhile) the write queues
        // behind them, as on any leader.
        if !self.sequencer.busy() && self.leader_now() != Some(self.id) {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "no_leader",
                "this node leads, but no quorum of voters has acknowledged it lately; nothing was \
                 done — retry with the same ids (another node may lead by now)",
            )
            .retry_after(1));
        }
        let rx = self.sequencer.submit(op)?;
        let timeout = Duration::from_millis(self.config.limits.write_timeout_ms);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ApiError::internal("the sequencer dropped the request")),
            Err(_) => Err(ApiError::write_timeout()),
        }
    }

    async fn forward(
        &self,
        leader: &NodeInfo,
        op: Operation,
        accepted: Accepted,
        corr_id: &str,
    ) -> Result<Receipt, ApiError> {
        let body = rpc::encode(&ForwardRequest {
            cluster_id: self.config.cluster_id.clone(),
            op,
            token_id: accepted.token_id,
            approval_token_id: accepted.approval_id,
            corr_id: corr_id.to_string(),
        })
        .map_err(ApiError::internal)?;
        let answer = self
            .connector
            .call(Call {
                method: "POST",
                addr: leader.peer_addr.clone(),
                path: "/internal/submit".into(),
                headers: crate::raft::rpc::request_headers(),
                body,
                timeout: Duration::from_millis(self.config.limits.write_timeout_ms + 1_000),
            })
            .await
            .map_err(|e| match e {
                // Never reached the leader: nothing was proposed.
                CallError::Unreachable(_) => ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "no_leader",
                    "the leader could not be reached (it may have just failed; an election may be \
                     in progress); nothing was done — retry with the same ids",
                )
                .retry_after(1),
                // Reached it, and the answer never came or broke off: it may have committed.
                CallError::Timeout | CallError::Network(_) => ApiError::write_timeout(),
            })?;
        if answer.status != 200 {
            return Err(ApiError::no_leader());
        }
        // The leader may have committed the write: an unreadable receipt is "outcome unknown"
        // (502, retried with the same ids), never a final failure.
        rpc::decode::<Result<Receipt, ApiError>>(&answer.body).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "bad_gateway",
                format!("unreadable reply from the leader ({e}); the outcome is unknown, retry with the same ids"),
            )
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::HeavyReads;

    #[test]
    fn heavy_reads_take_a_slot_each_and_give_it_back() {
        let reads = HeavyReads::new(1, 1);
        let export = reads.export().expect("a free export slot");
        let e = reads.export().expect_err("the only export slot is taken");
        assert_eq!((e.status, e.reason.as_str()), (429, "busy"));
        // Streams and exports have their own slots.
        let stream = reads.stream().expect("a free stream slot");
        assert!(reads.stream().is_err());
        drop(export);
        let _back = reads.export().expect("the export slot came back");
        drop(stream);
        let _back = reads.stream().expect("the stream slot came back");
        // One backup at a time.
        let backup = reads.backup().expect("the backup slot");
        assert!(reads.backup().is_err());
        drop(backup);
        let _back = reads.backup().expect("the backup slot came back");
    }
}
