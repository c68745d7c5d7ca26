//! `GET /v1/cluster`: every member's own view, gathered by this node — each member's
//! `/v1/status`, its latest signed checkpoint (`/v1/checkpoints/latest`) and the public keys it
//! signs with (`/v1/checkpoints/keys`), asked over the
//! node-to-node client that relays reads to the leader. The web console shows it, since a page
//! may fetch from its own origin only. Nothing here is trusted: a checkpoint relayed from another
//! member is verified by whoever reads it, like one fetched directly.

use crate::node::Node;
use crate::seam::Call;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use raft_store::NodeId;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long one member's answer is awaited: a member that is down shows as unreachable after
/// this, and never holds up the others (they are asked at once).
pub const MEMBER_CALL_TIMEOUT_MS: u64 = 2_000;

/// Largest member answer relayed (a status or checkpoint is well under 8 KiB).
const MEMBER_ANSWER_BYTES_MAX: usize = 64 * 1024;

/// The route, merged into the client API router.
pub fn routes() -> Router<Arc<Node>> {
    Router::new().route("/v1/cluster", get(cluster))
}

async fn cluster(
    State(node): State<Arc<Node>>,
    q: Result<
        axum::extract::Query<crate::http::decode::NoQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    if let Err(e) = crate::http::decode::query(q) {
        return crate::http::respond::err(&node, e);
    }
    let members: Vec<(NodeId, String)> = {
        let m = node.raft.metrics().borrow().clone();
        m.membership_config
            .membership()
            .nodes()
            .map(|(id, info)| (*id, info.api_addr.clone()))
            .collect()
    };
    // One task per member (the membership bounds them), all at once.
    let mut tasks = tokio::task::JoinSet::new();
    for (id, addr) in members {
        let node = node.clone();
        tasks.spawn(async move {
            let (status, checkpoint, keys) = tokio::join!(
                ask(&node, &addr, "/v1/status"),
                ask(&node, &addr, "/v1/checkpoints/latest"),
                ask(&node, &addr, "/v1/checkpoints/keys")
            );
            json!({
                "id": id,
                "api_addr": addr,
                "status": status,
                "checkpoint": checkpoint,
                "keys": keys,
            })
        });
    }
    let mut views = Vec::new();
    while let Some(view) = tasks.join_next().await {
        if let Ok(view) = view {
            views.push(view);
        }
    }
    views.sort_by_key(|v| v["id"].as_u64());
    Json(json!({"node_id": node.id, "members": views})).into_response()
}

/// A member's JSON answer to `GET path` as `{"ok": answer}`, or `{"error": why}`.
async fn ask(node: &Node, addr: &str, path: &str) -> Value {
    let answer = node
        .connector
        .call(Call {
            method: "GET",
            addr: addr.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_millis(MEMBER_CALL_TIMEOUT_MS),
        })
        .await;
    match answer {
        Err(e) => json!({"error": format!("unreachable: {e}")}),
        Ok(a) if a.body.len() > MEMBER_ANSWER_BYTES_MAX => {
            json!({"error": format!("answer of {} bytes is too large", a.body.len())})
        }
        Ok(a) => match serde_json::from_slice::<Value>(&a.body) {
            Ok(body) if a.status == 200 => json!({"ok": body}),
            Ok(body) => json!({"error": format!("status {}", a.status), "answer": body}),
            Err(_) => json!({"error": format!("status {}, not JSON", a.status)}),
        },
    }
}
