//! openraft's network over the node's [`Connector`] (HTTP/2 in production): bincode bodies and a
//! timeout on every call. Snapshot transfer is
//! chunked by openraft (`snapshot_chunk_bytes` per call), so a large snapshot never times out.
//! This is the transport seam: TLS and the simulation replace the client here.

use crate::raft::incarnation::{IncarnationBook, Seen};
use crate::raft::peer_versions::PeerVersions;
use crate::raft::rpc;
use crate::seam::Clock;
use crate::seam::{Call, CallError, Connector};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use raft_store::{NodeId, NodeInfo, TypeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Creates one [`PeerClient`] per target node.
#[derive(Clone)]
pub struct Network {
    connector: Arc<dyn Connector>,
    rpc_timeout: Duration,
    book: Arc<IncarnationBook>,
    versions: Arc<PeerVersions>,
    clock: Arc<dyn Clock>,
}

impl Network {
    /// A network whose calls time out after `rpc_timeout`, judging peers' incarnations by
    /// `book` and recording the cluster versions they run in `versions` (at `clock`'s time).
    pub fn new(
        connector: Arc<dyn Connector>,
        rpc_timeout: Duration,
        book: Arc<IncarnationBook>,
        versions: Arc<PeerVersions>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            connector,
            rpc_timeout,
            book,
            versions,
            clock,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Self::Network {
        PeerClient {
            connector: self.connector.clone(),
            target,
            addr: node.peer_addr.clone(),
            rpc_timeout: self.rpc_timeout,
            book: self.book.clone(),
            versions: self.versions.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// The connection to one peer.
pub struct PeerClient {
    connector: Arc<dyn Connector>,
    target: NodeId,
    addr: String,
    rpc_timeout: Duration,
    book: Arc<IncarnationBook>,
    versions: Arc<PeerVersions>,
    clock: Arc<dyn Clock>,
}

impl PeerClient {
    /// One RPC: the answer, and what its incarnation says (see [`crate::raft::incarnation`]).
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<(Resp, Seen), RPCError<NodeId, NodeInfo, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = rpc::encode(req).map_err(network)?;
        let answer = self
            .connector
            .call(Call {
                method: "POST",
                addr: self.addr.clone(),
                path: path.to_string(),
                headers: crate::raft::rpc::request_headers(),
                body,
                timeout: ttl.min(self.rpc_timeout),
            })
            .await
            .map_err(|e| match e {
                CallError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&e)),
                _ => RPCError::Network(NetworkError::new(&e)),
            })?;
        if answer.status != 200 {
            // The refusal's text (a wire format it does not read, say), bounded.
            let why =
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]).into_owned();
            return Err(network(format!(
                "peer answered HTTP {}: {why}",
                answer.status
            )));
        }
        self.versions
            .record(self.target, answer.runs.as_deref(), self.clock.now_ns());
        let seen = self.book.seen(self.target, answer.incarnation.as_deref());
        let result: Result<Resp, E> = rpc::decode(&answer.body).map_err(network)?;
        result
            .map(|r| (r, seen))
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn network<E: std::error::Error>(e: String) -> RPCError<NodeId, NodeInfo, E> {
    RPCError::Network(NetworkError::new(&StrErr(e)))
}

/// A string as an error, for openraft's error wrappers.
#[derive(Debug)]
struct StrErr(String);

impl std::fmt::Display for StrErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StrErr {}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.call("/raft/append", &rpc, option.hard_ttl())
            .await
            .map(|(r, _)| r)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("/raft/snapshot", &rpc, option.hard_ttl())
            .await
            .map(|(r, _)| r)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        let candidate_last = rpc.last_log_id;
        let (resp, seen): (VoteResponse<NodeId>, Seen) =
            self.call("/raft/vote", &rpc, option.hard_ttl()).await?;
        // A voter that lost its store has forgotten its votes, and its empty or short log lets
        // it vote for a candidate missing committed entries. Its vote counts only once its log
        // holds at least what this candidate's does (it caught up from a leader since).
        if let Seen::NewStore { was, now } = seen {
            if resp.vote_granted && resp.last_log_id < candidate_last {
                crate::metrics::new_store_vote_refused();
                tracing::error!(
                    peer = self.target,
                    was = %was,
                    now = %now,
                    "a voter answered from a new data directory: its vote is not counted; replace it (remove it, re-add it as a learner, promote it: docs/OPERATIONS.md)"
                );
                return Err(network(format!(
                    "node {} has a new data directory (incarnation {now}, was {was}); its vote is not counted",
                    self.target
                )));
            }
        }
        Ok(resp)
    }
}
