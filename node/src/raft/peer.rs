//! The peer listener: openraft's RPCs (append entries, vote, snapshot chunks) and followers'
//! forwarded writes, all bincode over HTTP/2. Every request's peer wire format is checked before
//! its body is read, and every answer names this node's incarnation and versions (see
//! [`crate::cluster_version`]).

use crate::error::ApiError;
use crate::node::{Accepted, Node};
use crate::pipeline::sequencer::Receipt;
use crate::raft::rpc::{self, ForwardRequest};
use crate::serve::PeerIdentity;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};
use raft_store::{NodeId, TypeConfig};
use serde::Serialize;
use std::sync::Arc;

/// Routes of the peer listener.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/prevote", post(prevote))
        .route("/internal/submit", post(submit))
        .route("/internal/root", post(root))
        .layer(DefaultBodyLimit::max(rpc::PEER_BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn(wire_format))
        .layer(axum::middleware::map_response_with_state(
            node.clone(),
            with_incarnation,
        ))
        .with_state(node)
}

/// Refuse a request in a peer wire format this build does not read (400, naming both), before
/// its body is decoded.
async fn wire_format(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let header = request
        .headers()
        .get(crate::raft::rpc::WIRE_HEADER)
        .map(|v| v.to_str().unwrap_or("?"));
    match crate::raft::rpc::check_wire(header) {
        Ok(_) => next.run(request).await,
        Err(why) => {
            tracing::warn!(reason = %why, path = %request.uri().path(), "peer request refused");
            (StatusCode::BAD_REQUEST, why).into_response()
        }
    }
}

/// Every peer answer names this store's incarnation (see [`crate::raft::incarnation`]), the
/// peer wire format and the highest cluster version this build runs.
async fn with_incarnation(State(node): State<Arc<Node>>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = axum::http::HeaderValue::from_str(node.incarnation.own()) {
        headers.insert(crate::raft::incarnation::INCARNATION_HEADER, v);
    }
    for (name, value) in crate::raft::rpc::request_headers() {
        if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}

fn reply<T: Serialize>(value: &T) -> Response {
    match rpc::encode(value) {
        Ok(bytes) => (StatusCode::OK, bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

fn bad(e: String) -> Response {
    (StatusCode::BAD_REQUEST, e).into_response()
}

async fn append(State(node): State<Arc<Node>>, body: Bytes) -> Response {
    let req: AppendEntriesRequest<TypeConfig> = match rpc::decode(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    // Contact counts when the append arrives from a leader at least as new as this node's vote:
    // a large append the leader gives up on before it completes (its per-call deadline) drops
    // this handler, yet the leader is alive and replicating.
    if req.vote >= node.raft.metrics().borrow().vote {
        node.leader_contact.heard();
        if let Some(commit) = req.leader_commit {
            node.leader_contact.leader_committed(commit.index);
        }
    }
    let resp = node.raft.append_entries(req).await;
    if matches!(&resp, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
        node.leader_contact.heard();
    }
    reply(&resp)
}

async fn vote(State(node): State<Arc<Node>>, body: Bytes) -> Response {
    let req: VoteRequest<NodeId> = match rpc::decode(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    reply(&node.raft.vote(req).await)
}

async fn snapshot(State(node): State<Arc<Node>>, body: Bytes) -> Response {
    let req: InstallSnapshotRequest<TypeConfig> = match rpc::decode(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let req_leader = req.vote;
    let resp = node.raft.install_snapshot(req).await;
    if resp
        .as_ref()
        .is_ok_and(|r| r.vote.leader_id() == req_leader.leader_id())
    {
        node.leader_contact.heard();
    }
    reply(&resp)
}

/// A candidate's pre-vote ([`crate::raft::prevote`]).
async fn prevote(State(node): State<Arc<Node>>, body: Bytes) -> Response {
    let req: crate::raft::prevote::PreVoteRequest = match rpc::decode(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    reply(&crate::raft::prevote::answer(&node, &req))
}

/// A peer's divergence check ([`crate::divergence`]): this node's root at the asked size (or
/// its own, if smaller).
async fn root(State(node): State<Arc<Node>>, body: Bytes) -> Response {
    let q: crate::divergence::RootQuery = match rpc::decode(&body) {
        Ok(q) => q,
        Err(e) => return bad(e),
    };
    reply(&crate::divergence::answer(&node, &q))
}

/// A follower's forwarded write, sequenced here under the client's correlation id: every line
/// logged for it names the same `corr_id` as the receiving node's lines.
async fn submit(
    State(node): State<Arc<Node>>,
    identity: Option<axum::Extension<PeerIdentity>>,
    body: Bytes,
) -> Response {
    let req: ForwardRequest = match rpc::decode(&body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let corr_id = if crate::seam::well_formed_corr_id(&req.corr_id) {
        req.corr_id.clone()
    } else {
        String::new()
    };
    let peer = identity.map(|i| i.0.addr).unwrap_or_default();
    let span = tracing::info_span!("request", corr_id = %corr_id, peer = %peer);
    tracing::Instrument::instrument(forwarded(node, req), span).await
}

async fn forwarded(node: Arc<Node>, req: ForwardRequest) -> Response {
    let events = req.op.len();
    let result: Result<Receipt, ApiError> = if req.cluster_id != node.config.cluster_id {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_cluster",
            "the forwarding node belongs to another cluster",
        ))
    } else if let Err(e) = req.op.check_bounds() {
        Err(ApiError::bad_request("too_many_events", e.to_string()))
    } else if let Err(e) = node.check_forwarded(
        &req.op,
        Accepted {
            token_id: req.token_id,
            approval_id: req.approval_token_id,
        },
    ) {
        Err(e)
    } else {
        node.submit_local(req.op).await
    };
    match &result {
        Ok(receipt) => {
            tracing::debug!(
                events,
                log_index = receipt.log_index,
                "forwarded write committed"
            )
        }
        Err(e) => tracing::info!(events, reason = %e.reason, "forwarded write refused"),
    }
    reply(&result)
}
