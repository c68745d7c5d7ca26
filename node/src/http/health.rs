//! What operators and orchestrators poll: `/healthz` (alive), `/readyz` (leader known, not in
//! safe mode, queue below high water, apply keeping up), `/v1/status` (this node's view of the
//! cluster) and `/metrics` (Prometheus text).

use crate::node::Node;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use raft_store::NodeId;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

/// `/v1/status`, `/healthz` and `/readyz` (`/metrics` is routed outside the body limit layer,
/// see `http::router`).
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/status", get(status))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({"status": "alive"}))).into_response()
}

async fn readyz(State(node): State<Arc<Node>>) -> Response {
    let m = node.raft.metrics().borrow().clone();
    let mut reasons: Vec<&str> = Vec::new();
    if m.current_leader.is_none() {
        reasons.push("no_leader");
    }
    if node.safe_mode().is_some() {
        reasons.push("safe_mode");
    }
    let high_water = (node.config.limits.queue_requests_max as u64) * 8 / 10;
    if node.sequencer.depth() >= high_water {
        reasons.push("queue_high_water");
    }
    let applied = m.last_applied.map_or(0, |l| l.index);
    let committed = committed_index(&node).unwrap_or(0);
    if committed.saturating_sub(applied) > 1_000 {
        reasons.push("apply_lagging");
    }
    if reasons.is_empty() {
        (StatusCode::OK, Json(json!({"ready": true}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reasons": reasons})),
        )
            .into_response()
    }
}

/// One member in `/v1/status`.
#[derive(Serialize)]
struct Member {
    id: NodeId,
    api_addr: String,
    peer_addr: String,
    voter: bool,
}

async fn status(State(node): State<Arc<Node>>) -> Response {
    let m = node.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let members: Vec<Member> = membership
        .nodes()
        .map(|(id, info)| Member {
            id: *id,
            api_addr: info.api_addr.clone(),
            peer_addr: info.peer_addr.clone(),
            voter: voters.contains(id),
        })
        .collect();
    let committed = committed_index(&node);
    // The applied index, tree size and root from one read of the state machine, so operators
    // can compare roots across nodes by index (openraft's metrics lag the state's commits).
    let view = node.state.applied_with_meta().ok();
    let applied_index = view
        .as_ref()
        .map_or(m.last_applied.map(|l| l.index), |(a, _)| {
            a.last_applied.map(|l| l.index)
        });
    let meta = view.map(|(_, meta)| meta);
    let role = format!("{:?}", m.state).to_lowercase();
    Json(json!({
        "node_id": node.id,
        "cluster_id": node.config.cluster_id,
        "role": role,
        "term": m.current_term,
        "leader": m.current_leader,
        "last_log_index": m.last_log_index,
        "committed_index": committed,
        "applied_index": applied_index,
        "snapshot_index": m.snapshot.map(|l| l.index),
        "purged_index": m.purged.map(|l| l.index),
        "tree_size": meta.as_ref().map(|x| x.tree.size.to_string()),
        "root": meta.as_ref().map(|x| x.root.to_hex()),
        "last_timestamp": meta.as_ref().map(|x| x.last_timestamp.to_string()),
        "members": members,
        "queue_depth": node.sequencer.depth(),
        "safe_mode": node.safe_mode(),
    }))
    .into_response()
}

fn committed_index(node: &Node) -> Option<u64> {
    let bytes = node
        .log
        .meta_get(raft_store::backend::meta_key::COMMITTED)
        .ok()??;
    let committed: Option<raft_store::LogId> =
        raft_store::record::open(ledger::codec::Kind::RaftMeta, "meta", b"committed", &bytes)
            .ok()?;
    committed.map(|c| c.index)
}

pub(crate) async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let applied = node
        .raft
        .metrics()
        .borrow()
        .last_applied
        .map_or(0, |l| l.index);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(applied, node.sequencer.depth()),
    )
        .into_response()
}
