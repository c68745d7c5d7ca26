//! `/v1/admin/*` cluster changes: initialise, add a learner, change the voters, trigger a
//! snapshot. They run on the leader (a follower proxies them). Authentication is not done here:
//! the admin gate in [`super::middleware`] wraps every `/v1/admin/*` route.

use crate::error::ApiError;
use crate::http::decode::read_body;
use crate::http::proxy::on_leader;
use crate::http::respond::err;
use crate::node::Node;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{InitializeError, RaftError};
use raft_store::{NodeId, NodeInfo};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The cluster-change routes under `/v1/admin/`.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/admin/init", post(admin_init))
        .route("/v1/admin/learners", post(admin_add_learner))
        .route("/v1/admin/learners/remove", post(admin_remove_learner))
        .route("/v1/admin/membership", post(admin_membership))
        .route("/v1/admin/snapshot", post(admin_snapshot))
        .route("/v1/admin/safe-mode/clear", post(admin_clear_safe_mode))
}

/// `POST /v1/admin/safe-mode/clear` (not proxied: safe mode is this node's): re-check what the
/// fault touched and, if the check passes, remove the safe-mode record so the next start is a
/// normal one. 409 `safe_mode_check_failed` when the check fails, 409 `not_in_safe_mode` when
/// there is nothing to clear.
async fn admin_clear_safe_mode(State(node): State<Arc<Node>>) -> Response {
    let Some(fault) = node.safe.fault() else {
        return err(
            &node,
            ApiError::new(
                StatusCode::CONFLICT,
                "not_in_safe_mode",
                "this node is not in safe mode (a Raft stop without a recorded fault clears by restart)",
            ),
        );
    };
    match recheck(&node, &fault.reason).await {
        Ok(checked) => {
            if let Err(e) = node.safe.clear_record() {
                return err(
                    &node,
                    ApiError::internal(format!("the safe-mode record could not be removed: {e}")),
                );
            }
            tracing::warn!(reason = %fault.reason, %checked, "safe mode cleared");
            Json(json!({
                "reason": fault.reason,
                "checked": checked,
                "restart_required": true,
            }))
            .into_response()
        }
        Err(why) => err(
            &node,
            ApiError::new(
                StatusCode::CONFLICT,
                "safe_mode_check_failed",
                format!("safe mode ({}) not cleared: {why}", fault.reason),
            ),
        ),
    }
}

/// The check clearing `reason` needs, as a description of what passed, or why it failed.
/// `root_mismatch`: the roots of every peer that answers agree with this node's, and at least
/// one answers. `disk_full`, `io_error`: a 1 MiB probe file can be written and synced in the
/// data directory. Every reason: every state record and log entry reads back and passes its
/// checksum (the state digest, and the whole log).
async fn recheck(node: &Arc<Node>, reason: &str) -> Result<String, String> {
    let mut checked = Vec::new();
    if reason == "root_mismatch" {
        let (_, disagreeing, agreeing, size) = crate::divergence::compare(node).await;
        if !disagreeing.is_empty() {
            return Err(format!(
                "nodes {disagreeing:?} still have another root at tree size {size} or below"
            ));
        }
        if agreeing == 0 {
            return Err("no peer answered to compare roots with".into());
        }
        checked.push(format!("roots agree with {agreeing} peer(s)"));
    }
    if matches!(reason, "disk_full" | "io_error") {
        if let Some(dir) = node
            .config
            .data_dir
            .clone()
            .filter(|_| !node.config.amnesia)
        {
            tokio::task::spawn_blocking(move || probe_write(&dir))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("a probe write in the data directory failed: {e}"))?;
            checked.push("a 1 MiB probe write and fsync succeeded".into());
        }
    }
    let (state, log) = (node.state.clone(), node.log.clone());
    let (entries, leaves) = tokio::task::spawn_blocking(move || {
        state.digest()?;
        Ok::<_, raft_store::StoreError>((read_back_log(log)?, read_back_leaves(&*state)?))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("reading the store back failed: {e}"))?;
    checked.push(format!(
        "every state record, {entries} log entries (each decoded, checksummed, in order) and \
         {leaves} Merkle leaves (each checksummed, together giving the stored root) read back"
    ));
    Ok(checked.join("; "))
}

/// Entries read back in one piece of the log check: one entry can hold up to
/// `ledger::limits::ENTRY_EVENTS_MAX` events (a few MiB), so a few at a time.
const READ_BACK_ENTRIES: u64 = 8;

/// Every log entry the node holds, decoded and checked (checksum, its own index, no gap), a
/// bounded chunk at a time. Returns how many.
fn read_back_log(log: Arc<dyn raft_store::LogBackend>) -> Result<u64, raft_store::StoreError> {
    let store = raft_store::LogStore::<raft_store::TypeConfig, dyn raft_store::LogBackend>::new(
        log.clone(),
    );
    let Some((last, _)) = log.last()? else {
        return Ok(0);
    };
    let first = store.last_purged()?.map_or(0, |p| p.index + 1);
    let mut start = first;
    while start <= last {
        let end = (start + READ_BACK_ENTRIES).min(last + 1);
        let got = store.read_entries(start, end)?;
        let from = got.first().map(|e| e.log_id.index);
        if from != Some(start) || got.len() as u64 != end - start {
            return Err(raft_store::StoreError::LogGap(format!(
                "entries {start}..{end} read back as {} starting at {from:?}",
                got.len()
            )));
        }
        start = end;
    }
    Ok(last + 1 - first)
}

/// Every Merkle leaf, checksummed on read, pushed into a fresh frontier whose root must be the
/// stored one (and the one the stored subtree roots give). Returns how many.
fn read_back_leaves(state: &dyn raft_store::StateBackend) -> Result<u64, raft_store::StoreError> {
    let meta = state.ledger_meta()?;
    let size = meta.tree.size;
    let mut frontier = ledger::Frontier::default();
    for index in 0..size {
        let data = state
            .leaf_data(index)?
            .ok_or_else(|| raft_store::StoreError::Corruption {
                cf: "leaves",
                key: index.to_string(),
                reason: "missing".into(),
            })?;
        frontier.push(ledger::merkle::leaf_hash(&data));
    }
    let subtrees = if size == 0 {
        meta.root
    } else {
        state.root_at(size)?
    };
    for (what, root) in [
        ("the leaves", frontier.root()),
        ("the subtree roots", subtrees),
    ] {
        if root != meta.root {
            return Err(raft_store::StoreError::Corruption {
                cf: "leaves",
                key: size.to_string(),
                reason: format!("{what} give another root than the stored one"),
            });
        }
    }
    Ok(size)
}

/// Write 1 MiB to a new file in `dir`, fsync it, remove it.
fn probe_write(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join("safe-mode-probe.tmp");
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::File::create(&path)?;
    let result = f.write_all(&vec![0u8; 1 << 20]).and_then(|()| f.sync_all());
    drop(f);
    let _ = std::fs::remove_file(&path);
    result
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InitRequest {
    /// The initial voters; empty = this node alone. Each member an object (see
    /// `decode::JsonObject`).
    #[serde(default)]
    members: BTreeMap<NodeId, crate::http::decode::JsonObject<NodeInfo>>,
}

async fn admin_init(State(node): State<Arc<Node>>, body: Body) -> Response {
    let body = match read_body(&node, body).await {
        Ok(b) => b,
        Err(e) => return err(&node, e),
    };
    let req: InitRequest = if body.is_empty() {
        InitRequest::default()
    } else {
        match crate::http::decode::json_object(&body) {
            Ok(r) => r,
            Err(e) => return err(&node, e),
        }
    };
    let mut members: BTreeMap<NodeId, NodeInfo> = req
        .members
        .into_iter()
        .map(|(id, crate::http::decode::JsonObject(info))| (id, info))
        .collect();
    for info in members.values() {
        if let Err(e) = check_member_addrs(&info.api_addr, &info.peer_addr) {
            return err(&node, e);
        }
    }
    if members.is_empty() {
        members.insert(
            node.id,
            NodeInfo {
                api_addr: node.config.public_api_addr(),
                peer_addr: node.config.public_peer_addr(),
            },
        );
    }
    match node.raft.initialize(members).await {
        Ok(()) => Json(json!({"initialized": true})).into_response(),
        Err(RaftError::APIError(InitializeError::NotAllowed(e))) => err(
            &node,
            ApiError::new(StatusCode::CONFLICT, "already_initialized", e.to_string()),
        ),
        Err(RaftError::APIError(e)) => err(
            &node,
            ApiError::bad_request("invalid_request", e.to_string()),
        ),
        Err(RaftError::Fatal(f)) => err(&node, ApiError::safe_mode(f.to_string())),
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LearnerRequest {
    node_id: NodeId,
    api_addr: String,
    peer_addr: String,
}

/// A request body read under the size cap and decoded as JSON (`invalid_json` otherwise), with
/// its bytes, which [`on_leader`] forwards as they came.
async fn read_json<T: serde::de::DeserializeOwned>(
    node: &Node,
    body: Body,
) -> Result<(T, axum::body::Bytes), ApiError> {
    let bytes = read_body(node, body).await?;
    let value = crate::http::decode::json_object(&bytes)?;
    Ok((value, bytes))
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RemoveLearnerRequest {
    node_id: NodeId,
}

/// `POST /v1/admin/learners/remove` `{"node_id": N}`: take learner N out of the membership
/// (`/v1/admin/membership` changes only the voters, and a learner left behind — one added at an
/// address that never answered, say — would stay forever). A voter is refused: make it a
/// non-voter with `/v1/admin/membership` first.
async fn admin_remove_learner(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (req, body) = match read_json::<RemoveLearnerRequest>(&node, body).await {
        Ok(r) => r,
        Err(e) => return err(&node, e),
    };
    if let Some(r) = on_leader(&node, &headers, "/v1/admin/learners/remove", body).await {
        return r;
    }
    let (member, voter) = {
        let metrics = node.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        (
            membership.get_node(&req.node_id).is_some(),
            membership.voter_ids().any(|id| id == req.node_id),
        )
    };
    if !member || voter {
        let why = if voter {
            "is a voter: take it out of the voters first (POST /v1/admin/membership)"
        } else {
            "is not a member"
        };
        return err(
            &node,
            ApiError::new(
                StatusCode::CONFLICT,
                "membership_change_failed",
                format!("node {} {why}", req.node_id),
            ),
        );
    }
    let change = openraft::ChangeMembers::RemoveNodes([req.node_id].into());
    let wait = std::time::Duration::from_millis(node.config.limits.write_timeout_ms);
    match tokio::time::timeout(wait, node.raft.change_membership(change, false)).await {
        Ok(Ok(resp)) => Json(json!({"log_index": resp.log_id.index})).into_response(),
        Ok(Err(e)) => err(&node, membership_error(e)),
        Err(_) => err(&node, ApiError::write_timeout()),
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct MembershipRequest {
    /// Exactly these voters.
    #[serde(default)]
    voters: Option<BTreeSet<NodeId>>,
    /// These learners become voters too (the others stay): concurrent promotions both land.
    #[serde(default)]
    add_voters: Option<BTreeSet<NodeId>>,
    /// These voters are removed from the membership (the others stay).
    #[serde(default)]
    remove_voters: Option<BTreeSet<NodeId>>,
}

impl MembershipRequest {
    /// The change asked for: exactly one of the three forms, none of them empty.
    fn change(self) -> Result<openraft::ChangeMembers<NodeId, NodeInfo>, ApiError> {
        let bad = |m: &str| ApiError::bad_request("invalid_request", m);
        match (self.voters, self.add_voters, self.remove_voters) {
            (Some(v), None, None) if !v.is_empty() => {
                Ok(openraft::ChangeMembers::ReplaceAllVoters(v))
            }
            (None, Some(v), None) if !v.is_empty() => Ok(openraft::ChangeMembers::AddVoterIds(v)),
            (None, None, Some(v)) if !v.is_empty() => Ok(openraft::ChangeMembers::RemoveVoters(v)),
            (None, None, None) => Err(bad("one of voters, add_voters, remove_voters is required")),
            (Some(_), None, None) | (None, Some(_), None) | (None, None, Some(_)) => {
                Err(bad("voters must not be empty"))
            }
            _ => Err(bad("only one of voters, add_voters, remove_voters")),
        }
    }
}

async fn admin_add_learner(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (req, body) = match read_json::<LearnerRequest>(&node, body).await {
        Ok(r) => r,
        Err(e) => return err(&node, e),
    };
    if req.node_id == 0 {
        return err(
            &node,
            ApiError::bad_request("invalid_request", "node_id must be 1 or more"),
        );
    }
    if let Err(e) = check_member_addrs(&req.api_addr, &req.peer_addr) {
        return err(&node, e);
    }
    if let Some(r) = on_leader(&node, &headers, "/v1/admin/learners", body).await {
        return r;
    }
    let info = NodeInfo {
        api_addr: req.api_addr,
        peer_addr: req.peer_addr,
    };
    // openraft keeps a member's entry when it is added again: a voter would stay a voter, and
    // other addresses would be dropped silently. Adding the same learner again (a retry after a
    // 504) is fine; anything else names what is there.
    let (existing, membership_index) = {
        let metrics = node.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voter = membership.voter_ids().any(|id| id == req.node_id);
        (
            membership
                .get_node(&req.node_id)
                .map(|known| (voter, known.clone())),
            metrics.membership_config.log_id().map_or(0, |l| l.index),
        )
    };
    if let Some((voter, known)) = &existing {
        if *voter || *known != info {
            let what = if *voter { "a voter" } else { "a learner" };
            return err(
                &node,
                ApiError::new(
                    StatusCode::CONFLICT,
                    "membership_change_failed",
                    format!(
                        "node {} is already {what} (api {}, peer {}); remove it first to add it \
                         again",
                        req.node_id, known.api_addr, known.peer_addr
                    ),
                ),
            );
        }
    }
    // openraft's own blocking add returns once the learner is within
    // `replication_lag_threshold` (5,000 entries) of the leader, so an empty learner on a short
    // log was reported caught up at once; the node waits itself: until the leader has matched
    // the learner's log up to the entry that added it (by appends or a snapshot install). The
    // same learner sent again (a retry after a 504) is not added again: the call waits for it.
    let wait = std::time::Duration::from_millis(node.config.limits.write_timeout_ms);
    let deadline = tokio::time::Instant::now() + wait;
    let index = if existing.is_some() {
        membership_index
    } else {
        match tokio::time::timeout(wait, node.raft.add_learner(req.node_id, info, false)).await {
            Ok(Ok(resp)) => resp.log_id.index,
            Ok(Err(e)) => return err(&node, membership_error(e)),
            Err(_) => return err(&node, learner_timeout()),
        }
    };
    let id = req.node_id;
    let caught_up = node
        .raft
        .wait(Some(
            deadline.saturating_duration_since(tokio::time::Instant::now()),
        ))
        .metrics(
            |m| {
                // A node that stopped leading meanwhile stops waiting (answered below).
                m.state != openraft::ServerState::Leader
                    || m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id))
                        .is_some_and(|matched| matched.is_some_and(|l| l.index >= index))
            },
            "the learner matched the leader's log",
        )
        .await;
    match caught_up {
        Ok(m) if m.state != openraft::ServerState::Leader => err(&node, ApiError::no_leader()),
        Ok(_) => Json(json!({"log_index": index})).into_response(),
        Err(openraft::metrics::WaitError::Timeout(..)) => err(&node, learner_timeout()),
        Err(openraft::metrics::WaitError::ShuttingDown) => {
            err(&node, ApiError::safe_mode("raft is shutting down"))
        }
    }
}

/// The learner was added but not seen caught up within the write timeout.
fn learner_timeout() -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        "the learner was not confirmed caught up in time; it stays added and keeps catching up \
         (send the same request again to wait for it, or see /v1/status)",
    )
    .retry_after(1)
}

/// Both addresses of a member to be, as `host:port`.
fn check_member_addrs(api_addr: &str, peer_addr: &str) -> Result<(), ApiError> {
    for (field, addr) in [("api_addr", api_addr), ("peer_addr", peer_addr)] {
        crate::config::check_host_port(addr).map_err(|reason| {
            ApiError::bad_request("invalid_request", format!("{field}: {reason}"))
        })?;
    }
    Ok(())
}

async fn admin_membership(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (req, body) = match read_json::<MembershipRequest>(&node, body).await {
        Ok(r) => r,
        Err(e) => return err(&node, e),
    };
    let change = match req.change() {
        Ok(c) => c,
        Err(e) => return err(&node, e),
    };
    if let Some(r) = on_leader(&node, &headers, "/v1/admin/membership", body).await {
        return r;
    }
    // Removing an id that is not a voter would change nothing and answer 200: name it instead
    // (checked on the leader, against the membership it holds).
    if let openraft::ChangeMembers::RemoveVoters(ids) = &change {
        let metrics = node.raft.metrics().borrow().clone();
        let voters: BTreeSet<NodeId> = metrics.membership_config.membership().voter_ids().collect();
        if let Some(id) = ids.iter().find(|id| !voters.contains(id)) {
            return err(
                &node,
                ApiError::new(
                    StatusCode::CONFLICT,
                    "membership_change_failed",
                    format!("node {id} is not a voter (a learner is removed with POST /v1/admin/learners/remove)"),
                ),
            );
        }
    }
    let wait = std::time::Duration::from_millis(node.config.limits.write_timeout_ms);
    match tokio::time::timeout(wait, node.raft.change_membership(change, false)).await {
        Ok(Ok(resp)) => Json(json!({"log_index": resp.log_id.index})).into_response(),
        Ok(Err(e)) => err(&node, membership_error(e)),
        Err(_) => err(&node, ApiError::write_timeout()),
    }
}

/// Membership errors: a lost leadership is retryable (`no_leader`), a stopped Raft is
/// `safe_mode`, anything else (e.g. a change already in progress) is a 409.
fn membership_error(
    e: RaftError<NodeId, openraft::error::ClientWriteError<NodeId, NodeInfo>>,
) -> ApiError {
    use openraft::error::ClientWriteError;
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => ApiError::no_leader(),
        RaftError::Fatal(f) => ApiError::safe_mode(f.to_string()),
        other => ApiError::new(
            StatusCode::CONFLICT,
            "membership_change_failed",
            other.to_string(),
        ),
    }
}

async fn admin_snapshot(State(node): State<Arc<Node>>) -> Response {
    match node.raft.trigger().snapshot().await {
        Ok(()) => Json(json!({"snapshot": "triggered"})).into_response(),
        Err(f) => err(&node, ApiError::safe_mode(f.to_string())),
    }
}
