//! What operators and orchestrators poll: `/healthz` (alive), `/readyz` (leader known, not in
//! safe mode, queue below high water, apply keeping up), `/v1/status` (this node's view of the
//! cluster) and `/metrics` (Prometheus text).

use crate::config::ReadinessSection;
use crate::http::decode::{query, NoQuery};
use crate::http::respond::err;
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

/// What `/readyz` judges, observed at one moment.
#[derive(Clone, Copy, Debug)]
struct Observed {
    leader_known: bool,
    safe_mode: bool,
    queue_depth: u64,
    queue_max: u64,
    committed: u64,
    applied: u64,
}

/// Why a node is not ready (empty: ready), by the `[readiness]` thresholds.
fn not_ready(o: Observed, r: &ReadinessSection) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    if !o.leader_known {
        reasons.push("no_leader");
    }
    if o.safe_mode {
        reasons.push("safe_mode");
    }
    let high_water = o
        .queue_max
        .saturating_mul(u64::from(r.queue_high_water_percent))
        .div_ceil(100);
    if o.queue_depth >= high_water.max(1) {
        reasons.push("queue_high_water");
    }
    if o.committed.saturating_sub(o.applied) > r.apply_lag_max {
        reasons.push("apply_lagging");
    }
    reasons
}

async fn readyz(State(node): State<Arc<Node>>) -> Response {
    let m = node.raft.metrics().borrow().clone();
    let observed = Observed {
        leader_known: node.leader_now().is_some(),
        safe_mode: node.safe_mode().is_some(),
        queue_depth: node.sequencer.depth(),
        queue_max: node.config.limits.queue_requests_max as u64,
        // A follower that was away knows how far the leader has committed before its own log
        // gets there: from the leader's appends.
        committed: committed_index(&node)
            .unwrap_or(0)
            .max(node.leader_contact.leader_commit()),
        applied: m.last_applied.map_or(0, |l| l.index),
    };
    let reasons = not_ready(observed, &node.config.readiness);
    if reasons.is_empty() {
        (StatusCode::OK, Json(json!({"ready": true}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "ready": false,
                "reasons": reasons,
                "safe_mode_reason": node.safe_mode_reason(),
            })),
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
    /// The data-directory identity this node knows the member by (`null`: not learned yet).
    incarnation: Option<String>,
    /// The highest cluster version the member's latest answer said it runs (this node's own
    /// for itself; `null`: not heard from).
    runs_cluster_version: Option<u32>,
}

async fn status(
    State(node): State<Arc<Node>>,
    q: Result<axum::extract::Query<NoQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(e) = query(q) {
        return err(&node, e);
    }
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
            incarnation: node.incarnation.known(*id, node.id),
            runs_cluster_version: if *id == node.id {
                Some(raft_store::CLUSTER_VERSION)
            } else {
                node.versions.runs(*id)
            },
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
        "leader": node.leader_now(),
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
        "safe_mode_reason": node.safe_mode_reason(),
        "version": crate::version::versions(),
        "cluster_version": node.state.cluster_version().ok(),
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

/// The data directory's file system: (bytes available to the node, size). `None` in amnesia
/// mode, or when it cannot be read (the gauges then keep their last value).
fn filesystem(node: &Node) -> Option<(u64, u64)> {
    if node.config.amnesia {
        return None;
    }
    let dir = node.config.data_dir.as_ref()?;
    let st = rustix::fs::statvfs(dir).ok()?;
    Some((
        st.f_bavail.saturating_mul(st.f_frsize),
        st.f_blocks.saturating_mul(st.f_frsize),
    ))
}

pub(crate) async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let m = node.raft.metrics().borrow().clone();
    let last_log_index = m.last_log_index.unwrap_or(0);
    let replication_lag = m
        .replication
        .as_ref()
        .map(|r| {
            r.iter()
                .filter(|(id, _)| **id != node.id)
                .map(|(id, matched)| {
                    let matched = matched.map_or(0, |l| l.index);
                    (*id, last_log_index.saturating_sub(matched))
                })
                .collect()
        })
        .unwrap_or_default();
    let scrape = crate::metrics::Scrape {
        applied_index: m.last_applied.map_or(0, |l| l.index),
        queue_depth: node.sequencer.depth(),
        term: m.current_term,
        last_log_index,
        committed_index: committed_index(&node).unwrap_or(0),
        leader: node.leader_now() == Some(node.id),
        replication_lag,
        disk: node.log.disk_stats(),
        filesystem: filesystem(&node),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&scrape),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Observed {
        Observed {
            leader_known: true,
            safe_mode: false,
            queue_depth: 0,
            queue_max: 1_000,
            committed: 50,
            applied: 50,
        }
    }

    #[test]
    fn each_not_ready_reason_follows_its_threshold() {
        let r = ReadinessSection::default();
        assert!(not_ready(healthy(), &r).is_empty());
        let no_leader = Observed {
            leader_known: false,
            ..healthy()
        };
        assert_eq!(not_ready(no_leader, &r), ["no_leader"]);
        let safe = Observed {
            safe_mode: true,
            ..healthy()
        };
        assert_eq!(not_ready(safe, &r), ["safe_mode"]);
        // 80 % of 1,000: 799 queued is ready, 800 is not.
        let queued = |queue_depth| Observed {
            queue_depth,
            ..healthy()
        };
        assert!(not_ready(queued(799), &r).is_empty());
        assert_eq!(not_ready(queued(800), &r), ["queue_high_water"]);
        let strict = ReadinessSection {
            queue_high_water_percent: 10,
            apply_lag_max: 5,
        };
        assert_eq!(not_ready(queued(100), &strict), ["queue_high_water"]);
        assert!(not_ready(queued(99), &strict).is_empty());
        // Apply lag: more than `apply_lag_max` entries committed but not applied.
        let lagging = |applied| Observed {
            committed: 1_100,
            applied,
            ..healthy()
        };
        assert!(
            not_ready(lagging(100), &r).is_empty(),
            "exactly 1,000 behind"
        );
        assert_eq!(not_ready(lagging(99), &r), ["apply_lagging"]);
        assert_eq!(not_ready(lagging(1_094), &strict), ["apply_lagging"]);
        assert!(not_ready(lagging(1_095), &strict).is_empty());
        // Several at once, in a fixed order.
        let all = Observed {
            leader_known: false,
            safe_mode: true,
            queue_depth: 1_000,
            queue_max: 1_000,
            committed: 5_000,
            applied: 0,
        };
        assert_eq!(
            not_ready(all, &r),
            [
                "no_leader",
                "safe_mode",
                "queue_high_water",
                "apply_lagging"
            ]
        );
    }
}
